# Declarations of the C runtime's public header (ext/include/edgegru.h); nothing else.
from libc.stdint cimport int32_t, uint8_t, uint32_t


cdef extern from "edgegru.h" nogil:
    ctypedef int egru_status_t
    int EGRU_OK
    int EGRU_STATUS_COUNT
    int EGRU_ERR_TRUNCATED
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

    ctypedef struct egru_layer_t:
        int op
        uint32_t flags
        uint32_t input_dim
        uint32_t output_dim
        int activation
        int recurrent_activation
        uint32_t param_count
        uint32_t macs_per_step

    const char *egru_status_str(egru_status_t status)
    uint32_t egru_crc32(uint32_t crc, const void *data, size_t size)
    egru_status_t egru_model_init(egru_model_t *model, const void *blob, size_t blob_size)
    egru_status_t egru_model_layer(const egru_model_t *model, uint32_t index, egru_layer_t *layer)
    egru_status_t egru_arena_size(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                  size_t *arena_bytes)
    egru_status_t egru_output_count(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                    size_t *count)
    egru_status_t egru_forward_tokens(const egru_model_t *model, const int32_t *ids,
                                      uint32_t batch, uint32_t seq_len, float *out,
                                      size_t out_count, void *arena, size_t arena_bytes)
    egru_status_t egru_forward_features(const egru_model_t *model, const float *x,
                                        uint32_t batch, uint32_t seq_len, float *out,
                                        size_t out_count, void *arena, size_t arena_bytes)
