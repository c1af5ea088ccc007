# Declarations of the C runtime's public header (ext/include/edgegru.h); nothing else.
from libc.stdint cimport int16_t, int32_t, uint8_t, uint32_t, uint64_t


cdef extern from "edgegru.h" nogil:
    ctypedef int egru_status_t
    int EGRU_OK
    int EGRU_STATUS_COUNT
    int EGRU_ERR_TRUNCATED
    int EGRU_ERR_TOKEN_RANGE
    int EGRU_ERR_NULL_ARG
    int EGRU_ERR_NONFINITE
    int EGRU_ERR_BAD_SHAPE
    int EGRU_ERR_WRONG_DTYPE
    int EGRU_INPUT_TOKENS
    int EGRU_INPUT_FEATURES
    int EGRU_BLOB_ALIGN
    const char *EGRU_VERSION_STRING

    ctypedef struct egru_model_t:
        const uint8_t *blob
        uint32_t file_size
        uint32_t layer_count
        uint32_t tensor_count
        uint32_t data_size
        const uint8_t *meta
        uint32_t meta_size
        uint32_t input_kind
        uint32_t input_dim
        uint32_t output_dim
        uint32_t output_is_sequence
        uint32_t max_width
        uint32_t max_units
        uint32_t param_count
        uint32_t quant_version

    ctypedef struct egru_layer_t:
        int op
        uint32_t flags
        uint32_t input_dim
        uint32_t output_dim
        int activation
        int recurrent_activation
        uint32_t params[10]
        uint32_t param_count
        uint32_t macs_per_step
        const int32_t *qparams
        uint32_t qparams_count

    ctypedef int egru_kernels_t
    int EGRU_KERNELS_AUTO
    int EGRU_KERNELS_REF
    int EGRU_KERNELS_AVX2
    int EGRU_KERNELS_NEON
    int EGRU_KERNELS_AVX512
    int EGRU_KERNELS_CORTEX_M
    egru_status_t egru_model_use_kernels(egru_model_t *model, egru_kernels_t kernels)
    ctypedef struct egru_workers_t:
        uint32_t count
    egru_status_t egru_model_use_workers(egru_model_t *model, const egru_workers_t *workers)
    const char *egru_model_kernels_name(const egru_model_t *model)
    int egru_kernels_available(egru_kernels_t kernels)
    egru_status_t egru_model_fold_size(const egru_model_t *model, size_t *bytes)
    egru_status_t egru_model_fold(egru_model_t *model, void *mem, size_t bytes)
    egru_status_t egru_model_pack_size(const egru_model_t *model, size_t *bytes)
    egru_status_t egru_model_pack(egru_model_t *model, void *mem, size_t bytes)

    const char *egru_status_str(egru_status_t status)
    uint32_t egru_crc32(uint32_t crc, const void *data, size_t size)
    egru_status_t egru_model_init(egru_model_t *model, const void *blob, size_t blob_size)
    egru_status_t egru_model_layer(const egru_model_t *model, uint32_t index, egru_layer_t *layer)
    egru_status_t egru_model_cache_layers_size(const egru_model_t *model, size_t *bytes)
    egru_status_t egru_model_cache_layers(egru_model_t *model, void *mem, size_t bytes)
    egru_status_t egru_arena_size(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                  size_t *arena_bytes)
    egru_status_t egru_arena_size_min(const egru_model_t *model, uint32_t batch,
                                      uint32_t seq_len, size_t *arena_bytes)
    egru_status_t egru_output_count(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                    size_t *count)
    egru_status_t egru_forward_tokens(const egru_model_t *model, const int32_t *ids,
                                      uint32_t batch, uint32_t seq_len, float *out,
                                      size_t out_count, void *arena, size_t arena_bytes)
    egru_status_t egru_forward_features(const egru_model_t *model, const float *x,
                                        uint32_t batch, uint32_t seq_len, float *out,
                                        size_t out_count, void *arena, size_t arena_bytes)

    # Graphs and the general entry point (docs/c_api.md, "Graphs"); chains have 1 input, 1 output.
    int EGRU_VALUE_TOKENS
    int EGRU_VALUE_SEQUENCE
    int EGRU_VALUE_VECTOR
    ctypedef struct egru_io_info_t:
        uint32_t kind
        uint32_t width
    ctypedef struct egru_input_t:
        const void *data
        uint32_t steps
    ctypedef struct egru_output_t:
        float *data
        size_t count
    egru_status_t egru_model_io(const egru_model_t *model, uint32_t *n_inputs,
                                uint32_t *n_outputs)
    egru_status_t egru_model_input(const egru_model_t *model, uint32_t index,
                                   egru_io_info_t *info)
    egru_status_t egru_model_output(const egru_model_t *model, uint32_t index,
                                    egru_io_info_t *info)
    egru_status_t egru_run_output_steps(const egru_model_t *model, const uint32_t *input_steps,
                                        uint32_t index, uint32_t *steps)
    egru_status_t egru_run_arena_size(const egru_model_t *model, uint32_t batch,
                                      const uint32_t *input_steps, int low_memory, size_t *bytes)
    egru_status_t egru_run(const egru_model_t *model, uint32_t batch,
                           const egru_input_t *inputs, uint32_t n_inputs,
                           const egru_output_t *outputs, uint32_t n_outputs, void *arena,
                           size_t arena_bytes)

    # int16x8 models (quant_version 2): integer-only forward passes.
    egru_status_t egru_model_scales(const egru_model_t *model, uint32_t *input_scale_bits,
                                    uint32_t *output_scale_bits)
    egru_status_t egru_forward_tokens_s16(const egru_model_t *model, const int32_t *ids,
                                          uint32_t batch, uint32_t seq_len, int16_t *out,
                                          size_t out_count, void *arena, size_t arena_bytes)
    egru_status_t egru_forward_features_s16(const egru_model_t *model, const int16_t *x,
                                            const uint8_t *valid, uint32_t batch,
                                            uint32_t seq_len, int16_t *out, size_t out_count,
                                            void *arena, size_t arena_bytes)

    # Streaming (egru_session_*). The public fields.
    int EGRU_ERR_UNSUPPORTED
    ctypedef struct egru_session_t:
        const egru_model_t *model
        uint32_t batch
        uint32_t output_dim
        uint32_t rnn_count
        size_t state_count
        uint64_t steps

    egru_status_t egru_session_check(const egru_model_t *model, uint32_t *layer_index)
    egru_status_t egru_session_size(const egru_model_t *model, uint32_t batch, size_t *bytes)
    egru_status_t egru_session_init(egru_session_t *session, const egru_model_t *model,
                                    uint32_t batch, void *mem, size_t bytes)
    egru_status_t egru_session_step_tokens(egru_session_t *session, const int32_t *ids,
                                           float *out, size_t out_count)
    egru_status_t egru_session_step_features(egru_session_t *session, const float *x,
                                             float *out, size_t out_count)
    egru_status_t egru_session_reset(egru_session_t *session)
    egru_status_t egru_session_state_size(const egru_session_t *session, size_t *count)
    egru_status_t egru_session_get_state(const egru_session_t *session, float *state,
                                         size_t count)
    egru_status_t egru_session_set_state(egru_session_t *session, const float *state,
                                         size_t count)
    egru_status_t egru_session_snapshot_size(const egru_session_t *session, size_t *count)
    egru_status_t egru_session_save(const egru_session_t *session, float *snapshot,
                                    size_t count)
    egru_status_t egru_session_restore(egru_session_t *session, const float *snapshot,
                                       size_t count, uint64_t steps)

    # int16x8 sessions: the shared functions above, and these in integers.
    egru_status_t egru_session_step_tokens_s16(egru_session_t *session, const int32_t *ids,
                                               int16_t *out, size_t out_count)
    egru_status_t egru_session_step_features_s16(egru_session_t *session, const int16_t *x,
                                                 const uint8_t *valid, int16_t *out,
                                                 size_t out_count)
    egru_status_t egru_session_get_state_s16(const egru_session_t *session, int32_t *state,
                                             size_t count)
    egru_status_t egru_session_set_state_s16(egru_session_t *session, const int32_t *state,
                                             size_t count)
    egru_status_t egru_session_save_s16(const egru_session_t *session, int32_t *snapshot,
                                        size_t count)
    egru_status_t egru_session_restore_s16(egru_session_t *session, const int32_t *snapshot,
                                           size_t count, uint64_t steps)

    # Graph sessions (egru_graph_session_*): streaming over a graph model. The public fields.
    ctypedef struct egru_graph_session_t:
        const egru_model_t *model
        uint32_t batch
        uint32_t n_inputs
        uint32_t n_outputs
        uint32_t rnn_count
        uint64_t steps

    egru_status_t egru_graph_session_check(const egru_model_t *model, uint32_t *node_index)
    egru_status_t egru_graph_session_size(const egru_model_t *model, uint32_t batch,
                                          size_t *bytes)
    egru_status_t egru_graph_session_init(egru_graph_session_t *session,
                                          const egru_model_t *model, uint32_t batch, void *mem,
                                          size_t bytes)
    egru_status_t egru_graph_session_step(egru_graph_session_t *session,
                                          const egru_input_t *inputs, uint32_t n_inputs,
                                          const egru_output_t *outputs, uint32_t n_outputs)
    egru_status_t egru_graph_session_reset(egru_graph_session_t *session)
    egru_status_t egru_graph_session_state_size(const egru_graph_session_t *session,
                                                uint32_t node, size_t *count)
    egru_status_t egru_graph_session_get_state(const egru_graph_session_t *session,
                                               uint32_t node, float *state, size_t count)
    egru_status_t egru_graph_session_set_state(egru_graph_session_t *session, uint32_t node,
                                               const float *state, size_t count)
    egru_status_t egru_graph_session_snapshot_size(const egru_graph_session_t *session,
                                                   size_t *count)
    egru_status_t egru_graph_session_save(const egru_graph_session_t *session, float *snapshot,
                                          size_t count)
    egru_status_t egru_graph_session_restore(egru_graph_session_t *session,
                                             const float *snapshot, size_t count, uint64_t steps)


cdef extern from "_egru_tpool.h" nogil:
    # The pthread workers of load(..., threads=N) (src/edgegru/_egru_tpool.c).
    ctypedef struct egru_tpool_t:
        pass
    uint32_t EGRU_TPOOL_MAX_THREADS
    egru_tpool_t *egru_tpool_create(uint32_t threads)
    void egru_tpool_destroy(egru_tpool_t *pool)
    const egru_workers_t *egru_tpool_workers(const egru_tpool_t *pool)
    void egru_tpool_wake(egru_tpool_t *pool)
