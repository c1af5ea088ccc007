/*
 * edgegru.h - the one public header of the edgegru C runtime.
 *
 * Runs Keras GRU models stored in .egru files (docs/format.md) in memory the caller owns.
 * C99, no dependency beyond libc/libm, no allocation anywhere, no global mutable state: every
 * function is reentrant, and one model may be used from several threads at once as long as each
 * thread passes its own arena.
 *
 * Life cycle:
 *
 *     egru_model_t model;                                   // caller-owned, a few dozen bytes
 *     egru_status_t s = egru_model_init(&model, blob, blob_size);   // validates; copies nothing
 *     size_t need;
 *     s = egru_arena_size(&model, batch, seq_len, &need);  // ask how much scratch a shape needs
 *     ... provide `need` bytes of arena (static array, stack, heap: the caller decides) ...
 *     s = egru_forward_tokens(&model, ids, batch, seq_len, out, out_count, arena, need);
 *
 * Ownership: the model keeps pointers into `blob`; the blob must outlive the model and must not
 * change while it is used. The arena is scratch memory: its content is undefined after a call and
 * it can be reused for any later call of the same or a smaller shape.
 */
#ifndef EDGEGRU_H
#define EDGEGRU_H

#include <stddef.h>
#include <stdint.h>

#include "egru_format.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EGRU_VERSION_STRING "0.1.0"

/* One status enum for the whole runtime. EGRU_OK is 0, errors are negative; values are
 * append-only. egru_status_str() gives a one-line message for every value. */
typedef enum egru_status {
    EGRU_OK = 0,
    EGRU_ERR_NULL_ARG = -1,         /* a required pointer argument is NULL                     */
    EGRU_ERR_TRUNCATED = -2,        /* the blob is shorter than the header or file_size        */
    EGRU_ERR_MISALIGNED = -3,       /* the blob does not start at a multiple of EGRU_BLOB_ALIGN */
    EGRU_ERR_BAD_MAGIC = -4,        /* not an .egru file                                       */
    EGRU_ERR_VERSION = -5,          /* format major version not supported by this runtime      */
    EGRU_ERR_CHECKSUM = -6,         /* header or payload CRC-32 mismatch: the file is corrupt  */
    EGRU_ERR_BAD_HEADER = -7,       /* a header field is out of its valid range                */
    EGRU_ERR_OUT_OF_BOUNDS = -8,    /* a table or section lies outside the file                */
    EGRU_ERR_BAD_TENSOR = -9,       /* a tensor record is invalid                              */
    EGRU_ERR_BAD_LAYER = -10,       /* a layer record is invalid or inconsistent               */
    EGRU_ERR_UNSUPPORTED = -11,     /* valid file, but a feature this build cannot run         */
    EGRU_ERR_BAD_SHAPE = -12,       /* batch or sequence length zero, or too large             */
    EGRU_ERR_ARENA_TOO_SMALL = -13, /* the arena is smaller than egru_arena_size_min() says   */
    EGRU_ERR_OUTPUT_SIZE = -14,     /* the output buffer size does not match the shape         */
    EGRU_ERR_TOKEN_RANGE = -15,     /* a token id is < 0 or >= the vocabulary size             */
    EGRU_ERR_NONFINITE = -16,       /* the input contains NaN or an infinity                   */
    EGRU_ERR_WRONG_INPUT = -17,     /* tokens given to a features model, or the reverse        */
    EGRU_ERR_INDEX = -18,           /* a layer index is out of range                           */
    EGRU_ERR_S8_TOO_WIDE = -19, /* an int8 weight matrix has more than EGRU_S8_MAX_COLS columns */
    EGRU_ERR_WRONG_DTYPE = -20, /* float data for an int16x8 model (use the _s16 functions), or
                                   int16 data for a float or int8 one                       */
    /* Not a status: makes the enum as wide as int on ABIs with short enums (arm-none-eabi), so
     * that any int converts to egru_status_t unchanged (egru_status_str(INT_MIN) is "unknown"). */
    EGRU_STATUS_INT_WIDTH_ = -0x7FFFFFFF - 1
} egru_status_t;
#define EGRU_STATUS_COUNT 21 /* number of values: 0 .. -(EGRU_STATUS_COUNT - 1) */

/* Message for a status code; never NULL (unknown codes give "unknown status"). */
const char *egru_status_str(egru_status_t status);

/* CRC-32/ISO-HDLC (zlib's crc32). Start with crc = 0; chain calls to continue a checksum. */
uint32_t egru_crc32(uint32_t crc, const void *data, size_t size);

struct egru_kernel_set; /* the compute kernels a model runs with (src/kernels/egru_kernels.h) */

/* Worker threads, provided by the caller (docs/c_api.md, "Threads"): the runtime links no
 * threading library and creates no thread; a host that wants several cores on one forward pass
 * gives it a `run` function that spreads tasks over threads it owns.
 *
 * A task is task(arg, index). run(ctx, task, arg, count) must call task(arg, i) exactly once for
 * every i < count (2 <= count <= the workers' count), concurrently where it can, in any order and
 * on any threads (the calling thread may run some or all of them), and return only after every
 * one of them has returned: each call is a barrier. Tasks neither block nor call run; they write
 * disjoint memory, so the results are the same bits whichever thread runs which task, and the
 * same as with no workers at all. run is called from the thread of the forward pass or session
 * step; when one model (or several sessions of it) runs on several threads at once, run is
 * called concurrently too: it must be reentrant (e.g. run the tasks of a call that finds the
 * threads busy on the calling thread; see src/edgegru/_egru_tpool.c). count: the threads run can
 * use, the calling thread included (>= 1; 1 = no splitting). */
typedef void (*egru_task_fn)(void *arg, uint32_t index);
typedef struct egru_workers {
    void (*run)(void *ctx, egru_task_fn task, void *arg, uint32_t count);
    void *ctx;      /* passed to run as is */
    uint32_t count; /* threads available to one run call, the caller's included; >= 1 */
} egru_workers_t;

/* Kernel sets: EGRU_KERNELS_AUTO picks the fastest one this build and this CPU have (checked at
 * run time; on M-profile Arm targets the cortex_m set, chosen at compile time); REF forces the
 * scalar reference kernels, the specification the others are tested against. A firmware may leave
 * ref or cortex_m out (EGRU_CFG_KERNELS_REF / _CORTEX_M, egru_features.h). */
typedef enum egru_kernels {
    EGRU_KERNELS_AUTO = 0,
    EGRU_KERNELS_REF = 1,
    EGRU_KERNELS_AVX2 = 2,    /* x86-64 with AVX2 and FMA */
    EGRU_KERNELS_NEON = 3,    /* aarch64 */
    EGRU_KERNELS_AVX512 = 4,  /* x86-64 with AVX-512 F, BW, VL and FMA (int8: VNNI if present) */
    EGRU_KERNELS_CORTEX_M = 5 /* Cortex-M (int8 on the DSP extension if present); every target,
                                 AUTO on M-profile targets (chosen at compile time) */
} egru_kernels_t;

/* A parsed, validated model: a view into the caller's blob. Treat the fields as read-only. */
typedef struct egru_model {
    const uint8_t *blob;        /* start of the file                              */
    uint32_t file_size;         /* bytes of the file (header file_size)           */
    const uint8_t *layer_table; /* layer_count records of layer_record_size bytes */
    uint32_t layer_count;
    uint32_t layer_record_size;
    const uint8_t *tensor_table; /* tensor_count records of tensor_record_size     */
    uint32_t tensor_count;
    uint32_t tensor_record_size;
    const uint8_t *data; /* data section                                   */
    uint32_t data_size;
    const uint8_t *meta; /* UTF-8 JSON, meta_size bytes, not terminated; NULL if none */
    uint32_t meta_size;
    uint32_t input_kind;         /* egru_input_kind_t                              */
    uint32_t input_dim;          /* vocabulary size or features per step           */
    uint32_t output_dim;         /* output width (per step when output_is_sequence) */
    uint32_t output_is_sequence; /* 1: output is (batch, T, output_dim); 0: (batch, output_dim) */
    uint32_t max_width;          /* widest step (input or output) of any layer      */
    uint32_t max_units;          /* largest GRU hidden size (0 if none)            */
    uint32_t param_count;        /* number of weights and biases                   */
    uint32_t quant_version;      /* 0: all float32; 1: int8 tensors; 2: int16x8, integer-only
                                    (docs/quantization.md): run with the _s16 functions     */
    const struct egru_kernel_set *kernels; /* set by egru_model_init / egru_model_use_kernels */
    const float *fold;    /* egru_model_fold: (vocab, fold_width) projections, or NULL */
    uint32_t fold_width;  /* directions * gates * units of the folded recurrent layer   */
    const uint32_t *pack; /* egru_model_pack: offsets table then transposed weights, or NULL */
    /* egru_model_cache_layers: layer_count decoded layers, or NULL */
    struct egru_layer *layer_cache;
    /* Graph files (input_kind EGRU_INPUT_GRAPH, docs/format.md "Graphs"); 0 / NULL for a chain.
     * input_dim and output_dim are 0 for a graph: see egru_model_input / egru_model_output. */
    const uint8_t *value_table; /* value_count records of value_record_size bytes          */
    uint32_t value_count;
    uint32_t value_record_size;
    const uint8_t *io_table; /* io_count little-endian u32 value ids                      */
    uint32_t io_count;
    uint32_t graph_input_count;    /* model inputs (the first io entries)                     */
    uint32_t graph_output_count;   /* model outputs (the next io entries)                    */
    const egru_workers_t *workers; /* egru_model_use_workers; NULL: one thread               */
} egru_model_t;

/* Weights of one direction of a recurrent layer; G gate blocks (GRU 3: z|r|h, LSTM 4: i|f|c|o,
 * SIMPLE_RNN 1), H units, I inputs. Row-major, output-major (docs/format.md). */
typedef struct egru_rnn_weights {
    const float *kernel;         /* (G*H, I)                                     */
    const float *recurrent;      /* (G*H, H)                                     */
    const float *bias;           /* (G*H): GRU input bias; LSTM, SIMPLE_RNN bias */
    const float *recurrent_bias; /* (G*H): GRU only; NULL otherwise              */
    /* int8 models (docs/quantization.md): kernel / recurrent are NULL and these are set instead:
     * the same shapes as int8, and one float scale per row. */
    const int8_t *kernel_s8, *recurrent_s8;
    const float *kernel_scale, *recurrent_scale;
    const float *kernel_t; /* egru_model_pack: kernel transposed (I, G*H), else NULL    */
    /* egru_model_pack: recurrent transposed, in panels of 64 outputs (panel p: outputs
     * [64p, 64p + w), w = min(64, G*H - 64p), (H, w) row-major, at float 64 * p * H), else NULL */
    const float *recurrent_t;
    /* egru_model_pack, int8 models: per row of recurrent_s8 the sum of its weights (G*H int32;
     * kernel sets with matvec_s8_sums use them), else NULL */
    const int32_t *recurrent_sums;
} egru_rnn_weights_t;

/* A decoded layer: what egru_model_layer() returns. Weight pointers point into the blob; which
 * are set depends on op (docs/format.md), the others are NULL. */
typedef struct egru_layer {
    egru_op_t op;
    uint32_t flags;      /* EGRU_FLAG_* bits                                          */
    uint32_t input_dim;  /* width of one input step (EMBEDDING: vocabulary)           */
    uint32_t output_dim; /* width of one output step (bidirectional concat: 2 * units) */
    uint32_t units;      /* recurrent: H per direction; other ops: output_dim         */
    egru_act_t activation;
    egru_act_t recurrent_activation;
    uint32_t params[10]; /* op-specific parameters (egru_format.h)                    */
    uint32_t param_count;
    uint32_t macs_per_step; /* multiply-accumulates per input time step                */
    const float *table;     /* EMBEDDING (vocab, dim)                                    */
    const float *kernel;    /* DENSE (out, in); CONV1D (out, kernel_size, in)             */
    const float *bias;      /* DENSE, CONV1D (out)                                        */
    const float *scale;     /* AFFINE, LAYER_NORM (dim)                                   */
    const float *shift;     /* AFFINE, LAYER_NORM (dim)                                   */
    /* int8 models: EMBEDDING table / DENSE kernel as int8 with one scale per row (then table /
     * kernel are NULL). */
    const int8_t *table_s8, *kernel_s8;
    const float *table_scale, *kernel_scale;
    const struct egru_kernel_set *kernels; /* the model's kernel set                       */
    uint32_t input_projected;              /* recurrent: the input steps are already its input
                                              projections, [forward | backward] (egru_model_fold)   */
    egru_rnn_weights_t rnn[2]; /* GRU, LSTM, SIMPLE_RNN: [forward, backward]; [1] only   */
                               /* with EGRU_FLAG_BIDIRECTIONAL                           */
    /* int16x8 models (quant_version 2): the layer's QPARAMS words (docs/format.md, "Integer-only
     * files"; EGRU_QP_* in egru_format.h), qparams_count of them; NULL otherwise. */
    const int32_t *qparams;
    uint32_t qparams_count;
    const egru_workers_t *workers; /* the model's workers (egru_model_use_workers), or NULL   */
} egru_layer_t;

/* Parse and validate the blob (every check of docs/format.md, CRCs included): the structure,
 * every float32 weight finite (EGRU_ERR_BAD_TENSOR), float layer parameters and per-direction
 * weight dtypes (EGRU_ERR_BAD_LAYER), int8 product widths (EGRU_ERR_S8_TOO_WIDE); O(parameters).
 * Nothing later re-validates the file. On success fills *model and returns EGRU_OK; on failure
 * returns the first problem found and leaves *model zeroed. The blob must start at a multiple of
 * EGRU_BLOB_ALIGN and may be longer than the file. A model that needs a feature this build leaves
 * out (an op, activation, mask, Bidirectional, go_backwards, GRU reset mode or int8 set to 0 in
 * egru_features.h: docs/embedded.md) is refused with EGRU_ERR_UNSUPPORTED, never mis-run. */
egru_status_t egru_model_init(egru_model_t *model, const void *blob, size_t blob_size);

/* egru_model_init_flags flag: the payload was verified when it was stored (e.g. its CRC checked
 * once at flash time), so init skips what is O(file size): the payload CRC (step 5 of
 * docs/format.md) and the scans of the weight values (float32 weights finite; int8 values not
 * -128, int8 scales finite and >= 0). The header and its CRC, and every structural check (tables,
 * offsets and sizes inside the file, records, shapes, roles, dtypes, layer parameters, int8
 * widths, the features of this build) still run, and they alone keep every read of the runtime
 * inside the blob: a corrupted trusted payload can give wrong numbers (NaN, garbage), never an
 * out-of-bounds access. */
#define EGRU_INIT_TRUSTED_PAYLOAD 0x1u

/* egru_model_init with `flags` (0 or EGRU_INIT_TRUSTED_PAYLOAD; egru_model_init is flags = 0).
 * EGRU_ERR_UNSUPPORTED for an unknown flag bit. */
egru_status_t egru_model_init_flags(egru_model_t *model, const void *blob, size_t blob_size,
                                    uint32_t flags);

/* Choose the kernel set the model runs with (egru_model_init chose EGRU_KERNELS_AUTO).
 * EGRU_ERR_UNSUPPORTED when this build or this CPU lacks the requested set; the model keeps its
 * previous set then. Not thread-safe against concurrent forward passes of the same model. */
egru_status_t egru_model_use_kernels(egru_model_t *model, egru_kernels_t kernels);

/* Run the model's recurrent layers on several threads (docs/c_api.md, "Threads"):
 * `workers` (the contract above) is kept by pointer and must stay valid and unchanged while the
 * model, or a session initialised from it, is used; NULL (or count <= 1) runs on the calling
 * thread only (the default). With workers, a block of one row (batch 1, the chunked plans, a
 * session of batch 1, a graph run on one row) splits each step of a recurrent layer by units:
 * task w computes the gate rows of its units (GRU: z, r and candidate; LSTM: i, f, c, o; slices
 * of a multiple of 16 units) and then their element-wise update, one barrier per step; and the
 * input projection of a whole block of steps by steps; a block of several rows splits the
 * steps of a GRU or SimpleRNN with float weights by rows. Small layers (below
 * EGRU_SPLIT_MIN_MACS multiply-adds per barrier), int16x8 models, int8 input projections,
 * several rows of an LSTM or of int8 weights, one row of a GRU with reset_after = 0 and layers
 * with a softmax activation run on the calling thread.
 * Results are bit-identical to one thread (the products are batch invariant, egru_kernels.h).
 * EGRU_ERR_BAD_SHAPE when workers->count is 0, EGRU_ERR_NULL_ARG when run is NULL,
 * EGRU_ERR_UNSUPPORTED (count > 1) in a build without EGRU_CFG_WORKERS (the default on M-profile
 * targets, egru_features.h); the model keeps its previous workers then. Not thread-safe against
 * concurrent forward passes of the same model (as egru_model_use_kernels). */
egru_status_t egru_model_use_workers(egru_model_t *model, const egru_workers_t *workers);
/* The smallest product (multiply-adds per barrier: a GRU step's 3 * units * units, a block's
 * input projection) that egru_model_use_workers' splitting spreads over the workers; smaller
 * ones cost less than waking another core. */
#define EGRU_SPLIT_MIN_MACS 16384u

/* 1 when this build and this CPU have the kernel set, else 0 (AUTO: always 1; REF: unless the
 * build leaves it out, EGRU_CFG_KERNELS_REF 0, the default on Cortex-M, whose cortex_m set gives
 * the same bits). */
int egru_kernels_available(egru_kernels_t kernels);

/* Name of the model's kernel set ("ref", "avx2", "neon"). */
const char *egru_model_kernels_name(const egru_model_t *model);

/* Optional speed-up for token models whose Embedding feeds a recurrent layer: precompute, for
 * every token id, that layer's input projection (kernel . table[id] + bias, per direction), so
 * that a forward pass looks it up instead of multiplying. Costs vocab * fold_width floats of
 * memory the caller provides (egru_model_fold_size says how many bytes), which must stay valid
 * and unchanged while the model is used. Afterwards egru_model_layer() describes layer 0 as a
 * table of projections and layer 1 as taking them (input_projected). EGRU_ERR_UNSUPPORTED when
 * the model does not start with Embedding -> recurrent layer. Results are bit-equal to the
 * unfolded model's with the same kernel set and packing (the same products, computed once: fold
 * after egru_model_use_kernels and egru_model_pack).
 * The memory is the (vocab, fold_width) table, then, when the Embedding table or the recurrent
 * kernel is int8, one row of scratch (dim floats and dim bytes rounded up to 4); the size and the
 * layout come from one plan, so egru_model_fold writes exactly egru_model_fold_size() bytes. */
egru_status_t egru_model_fold_size(const egru_model_t *model, size_t *bytes);
egru_status_t egru_model_fold(egru_model_t *model, void *mem, size_t bytes);

/* Optional speed-up for the SIMD kernel sets: copy every recurrent layer's kernel and recurrent
 * matrices, transposed ((I, G*H) row-major, and panels of 64 outputs each (H, 64) row-major: one
 * input's weights contiguous; egru_rnn_weights_t), into
 * memory the caller provides (egru_model_pack_size says how many bytes; any alignment: the copies
 * start at cache-line (64-byte) boundaries inside it), which must
 * stay valid and unchanged while the model is used. Forward passes and sessions then run the
 * products on the copies with the kernel set's matvec_t / matmul_t kernels, which vectorise over
 * outputs (no horizontal sums, so small inputs cost nothing extra) and take whole blocks of
 * steps at once. Results stay within the kernel bounds of docs/kernels.md. The blob is not
 * touched. EGRU_ERR_UNSUPPORTED when the model was packed already. */
egru_status_t egru_model_pack_size(const egru_model_t *model, size_t *bytes);
egru_status_t egru_model_pack(egru_model_t *model, void *mem, size_t bytes);

/* Decode layer `index` (0-based) of an initialised model (a copy from the layer cache when there
 * is one). */
egru_status_t egru_model_layer(const egru_model_t *model, uint32_t index, egru_layer_t *layer);

/* Optional speed-up for hosts: decode every layer once into memory the caller provides
 * (egru_model_cache_layers_size says how many bytes: layer_count egru_layer_t, plus room to align
 * them; any alignment), which must stay valid and unchanged while the model is used. A forward
 * pass decodes each layer several times (planning, then running it, per block of rows), and
 * decoding re-reads and re-checks the layer's records: about half of a call's fixed cost for a
 * small model (measured 0.5 us of a GRU(16) call's 0.6 us at T = 1 on a Zen 4). With the cache,
 * egru_model_layer copies the decoded layer instead; egru_model_use_kernels, egru_model_fold and
 * egru_model_pack refresh it, so it always describes the model as it is. The same results bit for
 * bit (the same layer descriptions; egru_model_use_workers refreshes it too). Sessions keep their
 * own decoded layers and do not need it. Not thread-safe against concurrent forward passes of the
 * same model (like the calls that refresh it). EGRU_ERR_UNSUPPORTED when the model has a layer
 * cache already. */
egru_status_t egru_model_cache_layers_size(const egru_model_t *model, size_t *bytes);
egru_status_t egru_model_cache_layers(egru_model_t *model, void *mem, size_t bytes);

/* Bytes of arena of the fast plan for `batch` sequences of `seq_len` steps: blocks of up to 16
 * rows, whole sequences at a time, memory that grows with batch and seq_len (with
 * EGRU_CFG_FAST_PLAN = 0: egru_arena_size_min). batch >= 1 and seq_len >= 1, else
 * EGRU_ERR_BAD_SHAPE. */
egru_status_t egru_arena_size(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                              size_t *arena_bytes);

/* Bytes of arena of the low-memory plan: the smallest arena with which egru_forward_tokens /
 * egru_forward_features succeed for this shape (docs/embedded.md). The forward functions choose
 * their plan from the arena they are given: the fast plan when egru_arena_size() bytes fit, else
 * chunks of steps one row at a time (the longest chunk that fits), else
 * EGRU_ERR_ARENA_TOO_SMALL; every plan gives the same output, bit for bit. For a chain whose
 * layers all run step by step (Embedding, Dense, normalisations, activations, Masking, forward
 * GRU/LSTM/SimpleRNN) this size does not depend on seq_len; a Bidirectional or go_backwards
 * recurrent layer, Conv1D, GlobalPooling or Flatten adds its whole input (and, when the layers
 * after it run in chunks, its output) for one row. */
egru_status_t egru_arena_size_min(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                  size_t *arena_bytes);

/* Number of floats the output of a forward pass holds: batch * seq_len * output_dim when the
 * model's output is a sequence, batch * output_dim otherwise. */
egru_status_t egru_output_count(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                size_t *count);

/* Forward pass of a token model. ids: (batch, seq_len) row-major int32, each in
 * [0, input_dim). out: egru_output_count() floats, row-major (batch, [seq_len,] output_dim).
 * The whole input is checked before anything is computed; on error `out` is untouched.
 * The initial GRU states are zero; no state is carried between calls.
 * If the caller changes `ids` during the call (another thread), the result is
 * EGRU_ERR_TOKEN_RANGE (then `out` may be partly written) or the output for some mix of the old
 * and new values, never an out-of-bounds read: the Embedding reads each id once and checks it. */
egru_status_t egru_forward_tokens(const egru_model_t *model, const int32_t *ids, uint32_t batch,
                                  uint32_t seq_len, float *out, size_t out_count, void *arena,
                                  size_t arena_bytes);

/* Forward pass of a features model. x: (batch, seq_len, input_dim) row-major float32, all finite.
 * Otherwise as egru_forward_tokens(). */
egru_status_t egru_forward_features(const egru_model_t *model, const float *x, uint32_t batch,
                                    uint32_t seq_len, float *out, size_t out_count, void *arena,
                                    size_t arena_bytes);

/* ------------------------------------------------------------------------------------------ */
/* The general entry point: any model, chain or graph (docs/c_api.md, "Graphs").
 *
 * A model has n_inputs inputs and n_outputs outputs (a chain: 1 and 1), each a value of a kind:
 * TOKENS: int32 ids (batch, steps), 0 <= id < width (the vocabulary); SEQUENCE: float32
 * (batch, steps, width); VECTOR: float32 (batch, width). All arrays are row-major, in the
 * model's order (Keras' model.inputs / model.outputs). The caller gives the steps of every
 * TOKENS and SEQUENCE input; the steps of everything else follow from them
 * (egru_run_output_steps). The single-input functions above (egru_arena_size, _min,
 * egru_output_count, egru_forward_tokens / _features) return EGRU_ERR_WRONG_INPUT for a graph
 * model; egru_run runs chains too, through them, with their behaviour. Graph models stream
 * through the egru_graph_session_* functions (not egru_session_*: EGRU_ERR_UNSUPPORTED) and do
 * not fold (egru_model_fold). */
typedef enum egru_value_kind {
    EGRU_VALUE_TOKENS = 1,
    EGRU_VALUE_SEQUENCE = 2,
    EGRU_VALUE_VECTOR = 3
} egru_value_kind_t;

typedef struct egru_io_info {
    uint32_t kind;  /* egru_value_kind_t */
    uint32_t width; /* features per step; TOKENS: vocabulary */
} egru_io_info_t;

typedef struct egru_input {
    const void *data; /* int32 ids (TOKENS, (batch, steps)) or float32 ((batch, steps, width)
                         SEQUENCE, (batch, width) VECTOR); all finite, ids in range */
    uint32_t steps;   /* >= 1; ignored for VECTOR */
} egru_input_t;

typedef struct egru_output {
    float *data;  /* written by egru_run; not overlapping any input or the arena */
    size_t count; /* floats provided; must equal batch * steps * width (steps: 1 for a VECTOR) */
} egru_output_t;

/* The numbers of model inputs and outputs (a chain: 1, 1). */
egru_status_t egru_model_io(const egru_model_t *m, uint32_t *n_inputs, uint32_t *n_outputs);
/* Kind and width of model input `index` (a chain: TOKENS of input_dim or SEQUENCE of
 * input_dim); EGRU_ERR_INDEX when index >= n_inputs. */
egru_status_t egru_model_input(const egru_model_t *m, uint32_t index, egru_io_info_t *info);
/* Kind and width of model output `index` (a chain: SEQUENCE or VECTOR of output_dim). */
egru_status_t egru_model_output(const egru_model_t *m, uint32_t index, egru_io_info_t *info);
/* Steps of output `index` (1 for a VECTOR) for model inputs of input_steps[i] steps (one entry
 * per model input; ignored for VECTOR inputs). EGRU_ERR_BAD_SHAPE when the steps do not fit the
 * graph (a zero, a Conv1D input too short, a Flatten's T, merged inputs of different steps). */
egru_status_t egru_run_output_steps(const egru_model_t *m, const uint32_t *input_steps,
                                    uint32_t index, uint32_t *steps);
/* Bytes of arena for egru_run of `batch` rows with these input steps: low_memory 0 = the fast
 * plan (blocks of up to 16 rows), 1 = the low-memory plan (the smallest arena egru_run
 * accepts). A chain: egru_arena_size / egru_arena_size_min. A graph: every value but the model
 * inputs and outputs (which are the caller's buffers) gets a region of rows * steps * width
 * floats (and its mask, rows * steps bytes) live from the node writing it to the last node
 * reading it, placed greedily, largest first, at the lowest offset free during its lifetime;
 * plus the largest recurrent state and the largest node scratch. Deterministic. */
egru_status_t egru_run_arena_size(const egru_model_t *m, uint32_t batch,
                                  const uint32_t *input_steps, int low_memory, size_t *bytes);
/* Runs the model on `batch` rows: inputs[n_inputs], outputs[n_outputs] in the model's order
 * (n_inputs / n_outputs must equal egru_model_io's: else EGRU_ERR_WRONG_INPUT /
 * EGRU_ERR_OUTPUT_SIZE; each output's count must equal batch * steps * width, else
 * EGRU_ERR_OUTPUT_SIZE). Checked before any output is written: shapes (EGRU_ERR_BAD_SHAPE),
 * token ids (EGRU_ERR_TOKEN_RANGE), NaN / inf in float inputs (EGRU_ERR_NONFINITE), the arena
 * (at least egru_run_arena_size(low_memory = 1), else EGRU_ERR_ARENA_TOO_SMALL; the fast plan
 * when it fits). Graph nodes run in file order over whole sequences of a block of rows (up to
 * 16; 1 in the low-memory plan); every plan gives the same outputs bit for bit. Recurrent nodes
 * start from their initial-state inputs (zero without) and write their final states. An int16x8
 * chain: EGRU_ERR_WRONG_DTYPE (use the _s16 functions). */
egru_status_t egru_run(const egru_model_t *m, uint32_t batch, const egru_input_t *inputs,
                       uint32_t n_inputs, const egru_output_t *outputs, uint32_t n_outputs,
                       void *arena, size_t arena_bytes);

/* ------------------------------------------------------------------------------------------ */
/*
 * int16x8 models (header quant_version 2, docs/quantization.md "int16x8"): integer-only
 * inference, no floating-point operation. Inputs and outputs are int16 at the model's input and
 * output scales (real value = scale * q). The float functions above refuse these models with
 * EGRU_ERR_WRONG_DTYPE, and these refuse float and int8 models the same way. egru_arena_size and
 * egru_arena_size_min give the int16x8 plan's arena (the same number): for a model whose layers
 * run step by step (Embedding, Masking, Dense, Activation, Affine, LayerNorm, one-direction
 * recurrent layers, go_backwards only on the first) it does not depend on seq_len or batch (one
 * row and one step at a time: two step buffers, the gate sums and every recurrent layer's
 * state); a Conv1D, GlobalPool, Flatten, Bidirectional or later go_backwards layer needs the
 * whole sequence (one row and one layer at a time: two int16 sequences of seq_len x width values
 * and seq_len validity bytes, growing with seq_len, not with batch). egru_output_count gives the
 * number of int16 outputs.
 */

/* The float32 bit patterns of the model's input scale (features models; 0 for token models) and
 * output scale, for hosts that quantize and dequantize: x_q = sat16(rint(x / input_scale)),
 * y = output_scale * y_q. EGRU_ERR_WRONG_DTYPE for a model that is not int16x8. */
egru_status_t egru_model_scales(const egru_model_t *model, uint32_t *input_scale_bits,
                                uint32_t *output_scale_bits);

/* Forward pass of an int16x8 token model: ids as for egru_forward_tokens; out:
 * egru_output_count() int16 values at the output scale. Otherwise as egru_forward_tokens. */
egru_status_t egru_forward_tokens_s16(const egru_model_t *model, const int32_t *ids, uint32_t batch,
                                      uint32_t seq_len, int16_t *out, size_t out_count, void *arena,
                                      size_t arena_bytes);

/* Forward pass of an int16x8 features model. x: (batch, seq_len, input_dim) int16 at the input
 * scale (-32768 reads as -32767, the symmetric range's end). valid: NULL, or (batch, seq_len)
 * bytes, non-zero for a valid step: when the model starts with a Masking layer, it replaces that
 * layer's comparison of the int16 features with the quantized mask value (hosts compare the
 * float features with mask_value, Keras' semantics, and pass the result); ignored otherwise.
 * Otherwise as egru_forward_features. */
egru_status_t egru_forward_features_s16(const egru_model_t *model, const int16_t *x,
                                        const uint8_t *valid, uint32_t batch, uint32_t seq_len,
                                        int16_t *out, size_t out_count, void *arena,
                                        size_t arena_bytes);

/* ------------------------------------------------------------------------------------------ */
/*
 * Streaming: one time step per call, every recurrent layer's state carried between calls
 * (docs/streaming.md; the Python face is Model.stream()).
 *
 *     egru_session_t s;                                  // caller-owned
 *     size_t bytes;
 *     egru_session_size(&model, batch, &bytes);          // EGRU_ERR_UNSUPPORTED: cannot stream
 *     egru_session_init(&s, &model, batch, mem, bytes);  // zero state; mem: `bytes`, any align
 *     for each step: egru_session_step_tokens(&s, ids_t, out, batch * s.output_dim);
 *
 * A step runs the whole layer chain on ONE step of each batch row and allocates nothing. Its
 * output (batch, output_dim) is what a forward pass over all the steps fed so far gives at its
 * last step: the last step of a sequence output, or, for a model whose last recurrent layer has
 * return_sequences = 0, the whole output, its head run on the current state as if the sequence
 * ended here. A masked step (Embedding mask_zero id 0, or a Masking step whose features all
 * equal mask_value) leaves the states unchanged and gives the Keras output of a masked step.
 * Models with a Bidirectional or go_backwards recurrent layer, Conv1D, GlobalPooling or Flatten
 * need steps not seen yet, or the whole sequence, and cannot stream (EGRU_ERR_UNSUPPORTED).
 * A session is not thread-safe; one model may serve many sessions and forward passes at once.
 * Every session function refuses an uninitialised (zeroed) session with EGRU_ERR_NULL_ARG.
 *
 * int16x8 models (quant_version 2) stream through the same egru_session_check / _size / _init /
 * _reset / _state_size / _snapshot_size and the _s16 functions at the end of this section, in
 * integers only (int16 steps, int32 states; no floating-point operation). The float step, state
 * and snapshot functions refuse an int16x8 session with EGRU_ERR_WRONG_DTYPE, and the _s16 ones
 * refuse a float or int8 session the same way.
 */

/* A streaming session. Caller-owned; egru_session_init() fills it; treat every field as
 * read-only. The fields after `steps` point into the caller's session memory. */
typedef struct egru_session {
    const egru_model_t *model;  /* the model; it and its blob must outlive the session        */
    uint32_t batch;             /* rows per step                                              */
    uint32_t output_dim;        /* values per row of a step's output (out: batch * output_dim) */
    uint32_t rnn_count;         /* recurrent layers, i.e. state-carrying layers               */
    size_t state_count;         /* values of the state (egru_session_get_state; _s16: int32)  */
    uint64_t steps;             /* steps run since init or the last reset                     */
    const egru_model_t *frozen; /* private: a copy of the model as at init, in session memory */
    float *state;               /* private: per recurrent layer, per row, a state block       */
    float *bufs[2];             /* private: (batch, max_width) ping-pong step buffers         */
    float *scratch;             /* private: recurrent cell scratch                            */
    uint8_t *mask;              /* private: (batch) mask of the current step                 */
    void *s16;                  /* private: int16x8 sessions' regions; NULL for float ones    */
} egru_session_t;

/* EGRU_OK when the model can stream; else EGRU_ERR_UNSUPPORTED and, when `layer_index` is not
 * NULL, the index of the first layer that cannot (Bidirectional, go_backwards, Conv1D,
 * GlobalPooling, Flatten). int16x8 models: an allow-list, every layer an Embedding, Masking,
 * Dense, Activation, Affine, LayerNorm, or a one-direction forward GRU / LSTM / SimpleRNN, and no
 * recurrent layer after one with return_sequences = 0; the first other layer is the one
 * reported. */
egru_status_t egru_session_check(const egru_model_t *model, uint32_t *layer_index);

/* Bytes of session memory a session of `batch` rows needs (any alignment). batch >= 1. Float,
 * int8 and int16x8 models (each gets its own layout; it does not depend on any step count). */
egru_status_t egru_session_size(const egru_model_t *model, uint32_t batch, size_t *bytes);

/* Lays the session out in `mem` (at least egru_session_size() bytes, owned by the caller and
 * kept for the session's life) with every state zero. The session keeps a copy of the model as
 * it is now (its kernel set, fold, pack and workers: what egru_model_use_kernels / _fold /
 * _pack / _use_workers did before), so later changes to *model do not affect it (the workers
 * object itself must outlive the session). On error *session is zeroed. */
egru_status_t egru_session_init(egru_session_t *session, const egru_model_t *model, uint32_t batch,
                                void *mem, size_t bytes);

/* One step of a token model. ids: (batch) int32, each in [0, input_dim). out: out_count ==
 * batch * output_dim floats, row-major (batch, output_dim). The input is checked before
 * anything changes; on error the state and `out` are untouched. Ids changed by another thread
 * during the call: as egru_forward_tokens (EGRU_ERR_TOKEN_RANGE with the state unchanged and the
 * step not counted, or a step on some mix of the values; never an out-of-bounds read). */
egru_status_t egru_session_step_tokens(egru_session_t *session, const int32_t *ids, float *out,
                                       size_t out_count);

/* One step of a features model. x: (batch, input_dim) row-major float32, all finite. Otherwise
 * as egru_session_step_tokens(). */
egru_status_t egru_session_step_features(egru_session_t *session, const float *x, float *out,
                                         size_t out_count);

/* Back to the zero state (a fresh stream; Keras' reset_state()). Float and int16x8 sessions. */
egru_status_t egru_session_reset(egru_session_t *session);

/* Values of the state (floats; int32 for int16x8 sessions): sum over recurrent layers of
 * parts * batch * units, parts = 2 for LSTM (h, c) and 1 otherwise. Same as
 * session->state_count. */
egru_status_t egru_session_state_size(const egru_session_t *session, size_t *count);

/* Copies the state out, flat: for each recurrent layer in model order, for each part (h, then c
 * for LSTM), a row-major (batch, units) block. count must equal egru_session_state_size()
 * (else EGRU_ERR_OUTPUT_SIZE). */
egru_status_t egru_session_get_state(const egru_session_t *session, float *state, size_t count);

/* Sets the state from the layout of egru_session_get_state() (count must match, else
 * EGRU_ERR_BAD_SHAPE; all finite, else EGRU_ERR_NONFINITE; on error nothing changes). The
 * state acts as Keras' initial_state: until a row's next valid step, a recurrent layer outputs
 * zero for it on masked steps (Keras' masked output starts from zero, not from the state). */
egru_status_t egru_session_set_state(egru_session_t *session, const float *state, size_t count);

/* A snapshot: everything a session carries from step to step except its step count, so that a
 * session restored from it continues bit for bit (what pickling a Python stream uses). Layout,
 * snapshot_size values: for each recurrent layer in model order, its state blocks (the layer's
 * part of egru_session_get_state's layout), then its rows' "valid step seen" flags, batch floats
 * of 0.0 or 1.0 (1.0 once the row has had an unmasked step since init, reset or set_state). */
egru_status_t egru_session_snapshot_size(const egru_session_t *session, size_t *count);

/* Copies the snapshot out. count must equal egru_session_snapshot_size() (else
 * EGRU_ERR_OUTPUT_SIZE). */
egru_status_t egru_session_save(const egru_session_t *session, float *snapshot, size_t count);

/* Restores a snapshot taken from a session of the same model and batch, and sets the step count
 * to `steps`. count must match (else EGRU_ERR_BAD_SHAPE); states finite (else EGRU_ERR_NONFINITE)
 * and flags exactly 0.0 or 1.0 (else EGRU_ERR_BAD_SHAPE); on error nothing changes. */
egru_status_t egru_session_restore(egru_session_t *session, const float *snapshot, size_t count,
                                   uint64_t steps);

/* int16x8 sessions. Semantics, checks and layouts as the float functions above, in integers: a
 * step's output is exactly (bit for bit) what egru_forward_*_s16 gives for the steps fed so far,
 * at the last one (or its whole output, the head run on the current state); a masked step as
 * there. The state is every recurrent layer's h (int16 values at the layer's state scale, the
 * scale of its output; widened to int32) and an LSTM's c (int32 in the gate domain G, scale
 * 2^-16), in egru_session_get_state's layout (state_count int32 values). Session memory:
 * egru_session_size; it grows with the batch only (per row the states, their flags and one id). */

/* One step of an int16x8 token model. ids: (batch) int32, each in [0, input_dim), read once
 * (copied into the session, then checked: EGRU_ERR_TOKEN_RANGE, and nothing changes). out:
 * out_count == batch * output_dim int16 at the model's output scale, row-major. */
egru_status_t egru_session_step_tokens_s16(egru_session_t *session, const int32_t *ids,
                                           int16_t *out, size_t out_count);

/* One step of an int16x8 features model. x: (batch, input_dim) int16 at the model's input scale
 * (-32768 reads as -32767). valid: NULL, or (batch) bytes, non-zero for a valid step: for a
 * model whose first layer is a Masking layer it replaces that layer's comparison of the int16
 * features with the quantized mask value (as in egru_forward_features_s16); ignored otherwise.
 * out as egru_session_step_tokens_s16. */
egru_status_t egru_session_step_features_s16(egru_session_t *session, const int16_t *x,
                                             const uint8_t *valid, int16_t *out, size_t out_count);

/* The state as int32 (layout of egru_session_get_state; count must equal state_count, else
 * EGRU_ERR_OUTPUT_SIZE). */
egru_status_t egru_session_get_state_s16(const egru_session_t *session, int32_t *state,
                                         size_t count);

/* Sets it (as egru_session_set_state: it acts as Keras' initial_state, the "valid step seen"
 * flags are cleared). EGRU_ERR_BAD_SHAPE when count differs or a value is out of its range: h in
 * [-32767, 32767], c in [-2^30, 2^30]; on error nothing changes. */
egru_status_t egru_session_set_state_s16(egru_session_t *session, const int32_t *state,
                                         size_t count);

/* The snapshot (egru_session_save's layout, snapshot_size int32: per recurrent layer its state
 * blocks as egru_session_get_state_s16, then its rows' flags, 0 or 1); count as there. */
egru_status_t egru_session_save_s16(const egru_session_t *session, int32_t *snapshot, size_t count);

/* Restores a snapshot of egru_session_save_s16 taken from a session of the same model and batch,
 * and sets the step count. EGRU_ERR_BAD_SHAPE when count differs or a value is out of its range
 * (as set_state_s16; flags 0 or 1); on error nothing changes. */
egru_status_t egru_session_restore_s16(egru_session_t *session, const int32_t *snapshot,
                                       size_t count, uint64_t steps);

/* ------------------------------------------------------------------------------------------ */
/*
 * Graph sessions: streaming over a graph model (docs/streaming.md "Graphs").
 *
 *     egru_graph_session_t s;                                     // caller-owned
 *     egru_graph_session_size(&model, batch, &bytes);             // EGRU_ERR_UNSUPPORTED: no
 *     egru_graph_session_init(&s, &model, batch, mem, bytes);     // zero states
 *     for each step: egru_graph_session_step(&s, inputs, n_inputs, outputs, n_outputs);
 *
 * One step advances every TOKENS and SEQUENCE model input by one step: inputs[i].data is
 * (batch) int32 ids or (batch, width) floats (inputs[i].steps is ignored). Nodes run in file
 * order on that step of every row, each recurrent node continuing from its own state (one per
 * node: a shared layer applied twice has two). VECTOR model inputs: (batch, width) floats; one
 * read by any node as a per-step value must be given at every step; one read only as recurrent
 * nodes' initial states is read at the first step after init or reset (NULL: zero initial
 * states) and ignored afterwards (it may then be NULL). Each output gets batch * width floats:
 * a SEQUENCE output's value at this step, a VECTOR output (a last state, a final state) what
 * egru_run gives on the steps fed so far. So the outputs of step t equal, bit for bit, step t of
 * egru_run over the whole sequences (SEQUENCE outputs) and egru_run over steps 0 .. t (VECTOR
 * outputs), masks included (an Embedding mask_zero id 0 or a Masking step masks as there).
 *
 * A graph streams when every node can run step by step: Embedding, Masking, Dense, Activation,
 * Affine, LayerNorm, MERGE, CONCATENATE along features, and forward recurrent layers (no
 * go_backwards, not Bidirectional) whose initial states, if any, are vectors fixed over the
 * steps: VECTOR model inputs, or values computed from them alone by nodes that are not recurrent
 * (e.g. a Dense of a conditioning vector; such an input is read by a node, so it is given at
 * every step), loaded at the first step.
 * Conv1D, GlobalPooling, Flatten, RepeatVector, CONCATENATE along time and the others need the
 * whole sequence: EGRU_ERR_UNSUPPORTED, egru_graph_session_check names the first such node.
 * Float and int8 graphs; not thread-safe; a zeroed session is refused (EGRU_ERR_NULL_ARG).
 * Chain models stream with egru_session_* (these functions refuse them: EGRU_ERR_WRONG_INPUT).
 */

/* A graph session. Caller-owned; egru_graph_session_init() fills it; fields read-only. */
typedef struct egru_graph_session {
    const egru_model_t *model;  /* the model; it and its blob must outlive the session        */
    uint32_t batch;             /* rows per step                                              */
    uint32_t n_inputs;          /* model inputs (egru_model_io)                               */
    uint32_t n_outputs;         /* model outputs                                              */
    uint32_t rnn_count;         /* recurrent nodes, each with its own state                   */
    uint64_t steps;             /* steps run since init or the last reset                     */
    const egru_model_t *frozen; /* private: a copy of the model as at init, in session memory */
    void *plan;                 /* private: the value plan of one step                        */
    uint8_t *values;            /* private: the value regions of one step                     */
    float *states;              /* private: per recurrent node, its state block                */
    float *scratch;             /* private: the largest node's scratch                        */
    int32_t *ids;               /* private: the step's token ids, copied, per TOKENS input    */
    uint8_t *fresh;             /* private: per node, 1 until its first step after init/reset */
} egru_graph_session_t;

/* EGRU_OK when the graph can stream (above); else EGRU_ERR_UNSUPPORTED and, when node_index is
 * not NULL, the index of the first node that cannot. A chain: EGRU_ERR_WRONG_INPUT; an int16x8
 * model: EGRU_ERR_UNSUPPORTED; a build without EGRU_CFG_GRAPH: EGRU_ERR_UNSUPPORTED. */
egru_status_t egru_graph_session_check(const egru_model_t *model, uint32_t *node_index);

/* Bytes of session memory for `batch` (>= 1) rows, any alignment; it does not depend on any
 * step count: the frozen model, the plan, every value of one step (batch * width floats, and a
 * mask), each recurrent node's state, one node's scratch, the token ids and the node flags. */
egru_status_t egru_graph_session_size(const egru_model_t *model, uint32_t batch, size_t *bytes);

/* Lays the session out in `mem` (at least egru_graph_session_size() bytes, caller-owned, kept
 * for the session's life), every state zero. The model is copied as it is now. On error
 * *session is zeroed. */
egru_status_t egru_graph_session_init(egru_graph_session_t *session, const egru_model_t *model,
                                      uint32_t batch, void *mem, size_t bytes);

/* One step (above). n_inputs / n_outputs must equal the model's (else EGRU_ERR_WRONG_INPUT /
 * EGRU_ERR_OUTPUT_SIZE); outputs[j].count must be batch * width (else EGRU_ERR_OUTPUT_SIZE);
 * a required input NULL: EGRU_ERR_NULL_ARG; token ids in range (EGRU_ERR_TOKEN_RANGE), floats
 * finite (EGRU_ERR_NONFINITE). Everything is checked before anything changes (ids are copied
 * into the session first); on error the states, the step count and the outputs are untouched. */
egru_status_t egru_graph_session_step(egru_graph_session_t *session, const egru_input_t *inputs,
                                      uint32_t n_inputs, const egru_output_t *outputs,
                                      uint32_t n_outputs);

/* Back to the zero states; initial-state inputs are read again at the next step. */
egru_status_t egru_graph_session_reset(egru_graph_session_t *session);

/* Values of node `node`'s state: parts * batch * units (parts 2 for LSTM: h, c; else 1).
 * EGRU_ERR_INDEX when node >= layer_count or the node is not recurrent. */
egru_status_t egru_graph_session_state_size(const egru_graph_session_t *session, uint32_t node,
                                            size_t *count);

/* Copies node `node`'s state out: per part (h, then c), a row-major (batch, units) block.
 * count must equal egru_graph_session_state_size() (else EGRU_ERR_OUTPUT_SIZE). */
egru_status_t egru_graph_session_get_state(const egru_graph_session_t *session, uint32_t node,
                                           float *state, size_t count);

/* Sets node `node`'s state (that layout; count must match, else EGRU_ERR_BAD_SHAPE; finite,
 * else EGRU_ERR_NONFINITE; on error nothing changes). It acts as the node's initial state, as
 * an initial-state input does in egru_run (the node's "valid step seen" flags are cleared, and
 * its initial-state inputs are not read at the next step). A decoder session set from an
 * encoder's final state continues as egru_run of a graph feeding one into the other. */
egru_status_t egru_graph_session_set_state(egru_graph_session_t *session, uint32_t node,
                                           const float *state, size_t count);

/* A snapshot of a graph session: everything it carries from one step to the next except its
 * step count, so that a session restored from it continues bit for bit (what pickling a Python
 * graph stream uses). Layout, snapshot_size values: for each recurrent node in node order, its
 * state (egru_graph_session_get_state's layout), then its rows' "valid step seen" flags (batch
 * floats, 0.0 or 1.0: 1.0 once the row has had an unmasked step since init, reset or
 * set_state), then the node's "fresh" flag (one float, 1.0 until its first step after init or
 * reset, i.e. while it will still read its initial-state inputs; 0.0 after, or after
 * set_state). */
egru_status_t egru_graph_session_snapshot_size(const egru_graph_session_t *session, size_t *count);

/* Copies the snapshot out. count must equal egru_graph_session_snapshot_size() (else
 * EGRU_ERR_OUTPUT_SIZE). */
egru_status_t egru_graph_session_save(const egru_graph_session_t *session, float *snapshot,
                                      size_t count);

/* Restores a snapshot taken from a session of the same model and batch and sets the step count
 * to `steps`. count must match (else EGRU_ERR_BAD_SHAPE); states finite (else
 * EGRU_ERR_NONFINITE); every flag exactly 0.0 or 1.0 (else EGRU_ERR_BAD_SHAPE); on error
 * nothing changes. */
egru_status_t egru_graph_session_restore(egru_graph_session_t *session, const float *snapshot,
                                         size_t count, uint64_t steps);

#ifdef __cplusplus
}
#endif

#endif /* EDGEGRU_H */
