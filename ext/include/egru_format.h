/*
 * egru_format.h - on-disk constants of the .egru file format, version 1.0.
 *
 * docs/format.md is the normative description; this header mirrors it. Every value here is
 * append-only: a removed value stays as a comment and is never reused. src/edgegru/format.py
 * holds the same numbers for the Python writer, and a test checks that the two agree.
 */
#ifndef EGRU_FORMAT_H
#define EGRU_FORMAT_H

#define EGRU_MAGIC_0 'E'
#define EGRU_MAGIC_1 'G'
#define EGRU_MAGIC_2 'R'
#define EGRU_MAGIC_3 'U'

#define EGRU_FORMAT_VERSION_MAJOR 1
/* Minor 1 added: LSTM, SimpleRNN, Conv1D, pooling, normalisation, Activation, Flatten, Masking
 * ops; activations 5..9; flags GO_BACKWARDS..MASK_ZERO; roles SCALE, SHIFT. A writer stamps the
 * lowest minor that can describe its file, so 1.0 readers still read 1.0-only models. */
#define EGRU_FORMAT_VERSION_MINOR 4
/* Minor 2 added: S8 tensors with SYMMETRIC_PER_ROW scales (int8 models, header quant_version 1,
 * docs/quantization.md) for the KERNEL and RECURRENT matrices of recurrent layers, the KERNEL of
 * DENSE and the TABLE of EMBEDDING. Minor 3 added: int16x8 files (header quant_version 2): every
 * matrix S8 and one S32 QPARAMS tensor per layer (docs/format.md, "Integer-only files"). Minor 4
 * added: graph files (header input_kind 3; docs/format.md, "Graphs"): a graph header, node
 * fields in longer layer records, a value table, an io table; ops MERGE, CONCATENATE,
 * REPEAT_VECTOR, ATTENTION, TIME_STEPS, DOT, RESHAPE, PERMUTE (graph files only). */
/* The quantization semantics this runtime implements (header quant_version; 0: none): 1 the
 * int8 scheme, 2 (EGRU_QUANT_VERSION_INT16X8) the integer-only one. */
#define EGRU_QUANT_VERSION         1
#define EGRU_QUANT_VERSION_INT16X8 2
#define EGRU_QUANT_VERSION_NEWEST  2

/* Sizes of the fixed parts in version 1.0. Newer minors may write larger ones. */
#define EGRU_HEADER_SIZE        128u
#define EGRU_LAYER_RECORD_SIZE  64u
#define EGRU_TENSOR_RECORD_SIZE 64u
/* Alignment the 1.0 writer uses for the data section and every tensor. */
#define EGRU_FILE_ALIGNMENT 64u
/* Smallest alignment a file may declare, and the alignment the runtime requires of the blob. */
#define EGRU_MIN_ALIGNMENT 16u
#define EGRU_BLOB_ALIGN    16u

/* Header field offsets (bytes from the start of the file). */
#define EGRU_HDR_MAGIC               0u
#define EGRU_HDR_VERSION_MAJOR       4u
#define EGRU_HDR_VERSION_MINOR       6u
#define EGRU_HDR_HEADER_SIZE         8u
#define EGRU_HDR_FLAGS               12u
#define EGRU_HDR_ALIGNMENT           16u
#define EGRU_HDR_FILE_SIZE           20u
#define EGRU_HDR_LAYER_COUNT         24u
#define EGRU_HDR_LAYER_RECORD_SIZE   28u
#define EGRU_HDR_LAYER_TABLE_OFFSET  32u
#define EGRU_HDR_TENSOR_COUNT        36u
#define EGRU_HDR_TENSOR_RECORD_SIZE  40u
#define EGRU_HDR_TENSOR_TABLE_OFFSET 44u
#define EGRU_HDR_DATA_OFFSET         48u
#define EGRU_HDR_DATA_SIZE           52u
#define EGRU_HDR_META_OFFSET         56u
#define EGRU_HDR_META_SIZE           60u
#define EGRU_HDR_INPUT_KIND          64u
#define EGRU_HDR_INPUT_DIM           68u
#define EGRU_HDR_OUTPUT_DIM          72u
#define EGRU_HDR_QUANT_VERSION       76u
#define EGRU_HDR_PAYLOAD_CRC         120u
#define EGRU_HDR_HEADER_CRC          124u

/* Layer record field offsets. */
#define EGRU_LYR_OP                   0u
#define EGRU_LYR_FLAGS                2u
#define EGRU_LYR_INPUT_DIM            4u
#define EGRU_LYR_OUTPUT_DIM           8u
#define EGRU_LYR_FIRST_TENSOR         12u
#define EGRU_LYR_TENSOR_COUNT         16u
#define EGRU_LYR_ACTIVATION           20u
#define EGRU_LYR_RECURRENT_ACTIVATION 21u
#define EGRU_LYR_PARAMS               24u /* u32 params[10], meaning per op (below) */

/* Tensor record field offsets. */
#define EGRU_TNS_DTYPE        0u
#define EGRU_TNS_QUANT        1u
#define EGRU_TNS_RANK         2u
#define EGRU_TNS_ROLE         3u
#define EGRU_TNS_DIMS         4u
#define EGRU_TNS_DATA_OFFSET  20u
#define EGRU_TNS_DATA_SIZE    24u
#define EGRU_TNS_SCALE_OFFSET 28u
#define EGRU_TNS_SCALE_COUNT  32u

#define EGRU_MAX_RANK 4u

/* What the model consumes (header input_kind). */
typedef enum egru_input_kind {
    EGRU_INPUT_TOKENS = 1,   /* int32 token ids, (batch, T), 0 <= id < input_dim */
    EGRU_INPUT_FEATURES = 2, /* float32 frames, (batch, T, input_dim)            */
    EGRU_INPUT_GRAPH = 3     /* 1.4: a graph file; its inputs are values (below)  */
} egru_input_kind_t;

/* Graph files (1.4, docs/format.md "Graphs"). Sizes of the fixed parts: */
#define EGRU_GRAPH_HEADER_SIZE 160u /* header_size of a graph file, at least     */
#define EGRU_NODE_RECORD_SIZE  80u  /* layer_record_size of a graph file, at least */
#define EGRU_VALUE_RECORD_SIZE 16u  /* value_record_size, at least               */
/* The graph header, at offset 128 (inside the payload checksum). */
#define EGRU_GHDR_VALUE_COUNT        128u /* u32 >= 2                       */
#define EGRU_GHDR_VALUE_RECORD_SIZE  132u /* u32 >= 16                      */
#define EGRU_GHDR_VALUE_TABLE_OFFSET 136u /* u32                            */
#define EGRU_GHDR_IO_COUNT           140u /* u32 entries of the io table    */
#define EGRU_GHDR_IO_TABLE_OFFSET    144u /* u32, multiple of 4             */
#define EGRU_GHDR_INPUT_COUNT        148u /* u16 >= 1                       */
#define EGRU_GHDR_OUTPUT_COUNT       150u /* u16 >= 1                       */
/* Node fields, at these offsets of each layer record of a graph file. */
#define EGRU_NODE_IO_FIRST     64u /* u32: io table index of the node's first input */
#define EGRU_NODE_INPUT_COUNT  68u /* u16 >= 1                                      */
#define EGRU_NODE_OUTPUT_COUNT 70u /* u16 >= 1                                      */
/* Value record fields. */
#define EGRU_VAL_KIND          0u /* u8: egru_value_kind_t (edgegru.h): 1 tokens, 2 sequence, 3 vector */
#define EGRU_VAL_FLAGS         1u /* u8: EGRU_VALUE_FLAG_MASKED                                      */
#define EGRU_VAL_WIDTH         4u /* u32 >= 1: features per step (tokens: the vocabulary)            */
#define EGRU_VALUE_FLAG_MASKED 0x1u /* a mask travels with the value (sequences only) */

/* Layer operations (layer record op). */
typedef enum egru_op {
    EGRU_OP_EMBEDDING = 1,
    EGRU_OP_GRU = 2,
    EGRU_OP_DENSE = 3,
    /* 1.1 */
    EGRU_OP_LSTM = 4,
    EGRU_OP_SIMPLE_RNN = 5,
    EGRU_OP_CONV1D = 6,      /* params: kernel_size, stride, dilation, egru_padding_t */
    EGRU_OP_GLOBAL_POOL = 7, /* params: egru_pool_t; sequence -> vector              */
    EGRU_OP_AFFINE = 8,      /* y = x * SCALE + SHIFT per feature (folded norms)       */
    EGRU_OP_LAYER_NORM = 9,  /* params: epsilon (f32 bits)                            */
    EGRU_OP_ACTIVATION = 10, /* activation applied per step                           */
    EGRU_OP_FLATTEN = 11,    /* params: the fixed number of steps; sequence -> vector */
    EGRU_OP_MASKING = 12,    /* params: mask_value (f32 bits); creates the mask       */
    /* 1.4, graph files only */
    EGRU_OP_MERGE = 13,         /* params: egru_merge_op_t; >= 2 inputs of one shape     */
    EGRU_OP_CONCATENATE = 14,   /* params: egru_concat_axis_t; >= 2 inputs               */
    EGRU_OP_REPEAT_VECTOR = 15, /* params: the steps n >= 1; vector -> sequence          */
    EGRU_OP_ATTENTION = 16,     /* params: egru_attention_score_t, causal, scale, weight  */
    EGRU_OP_TIME_STEPS = 17,    /* params: egru_time_steps_t, start, end, size            */
    EGRU_OP_DOT = 18,           /* params: normalize 0 / 1; two vectors -> a vector of 1  */
    EGRU_OP_RESHAPE = 19,       /* params: input steps, output steps (0: a vector)        */
    EGRU_OP_PERMUTE = 20        /* params: the input's steps T; (T, C) -> (C, T)          */
} egru_op_t;
#define EGRU_OP_MAX 20

/* TIME_STEPS params[0] (1.4): a sequence -> a sequence of other steps; docs/format.md. */
typedef enum egru_time_steps {
    EGRU_STEPS_CROP = 1,    /* drop start steps at the start, end at the end (Cropping1D)      */
    EGRU_STEPS_PAD = 2,     /* add start zero steps at the start, end at the end (ZeroPadding1D) */
    EGRU_STEPS_UPSAMPLE = 3 /* each step repeated size >= 1 times (UpSampling1D)             */
} egru_time_steps_t;

/* ATTENTION params[0] (1.4): [query, value(, key)] -> (Tq, value width); docs/format.md. */
typedef enum egru_attention_score {
    EGRU_ATTENTION_DOT = 1,     /* s = scale * (q . k)                                    */
    EGRU_ATTENTION_CONCAT = 2,  /* s = weight * sum(tanh(scale * (q + k)))                */
    EGRU_ATTENTION_ADDITIVE = 3 /* s = sum(SCALE * tanh(q + k)), SCALE 1 without a tensor */
} egru_attention_score_t;

/* MERGE params[0] (1.4). */
typedef enum egru_merge_op {
    EGRU_MERGE_ADD = 1,
    EGRU_MERGE_SUBTRACT = 2, /* exactly 2 inputs: first minus second */
    EGRU_MERGE_MULTIPLY = 3,
    EGRU_MERGE_AVERAGE = 4, /* the sum in input order, then / count */
    EGRU_MERGE_MAXIMUM = 5,
    EGRU_MERGE_MINIMUM = 6
} egru_merge_op_t;
#define EGRU_MERGE_OP_MAX 6

/* CONCATENATE params[0] (1.4). */
typedef enum egru_concat_axis {
    EGRU_CONCAT_TIME = 1,    /* sequences of one width; the steps add up          */
    EGRU_CONCAT_FEATURES = 2 /* all sequences of equal steps or all vectors        */
} egru_concat_axis_t;

/* Recurrent layers (GRU, LSTM, SIMPLE_RNN) with EGRU_FLAG_BIDIRECTIONAL: params[0]. */
typedef enum egru_merge {
    EGRU_MERGE_CONCAT = 1, /* [forward | backward] */
    EGRU_MERGE_SUM = 2,
    EGRU_MERGE_AVE = 3,
    EGRU_MERGE_MUL = 4
} egru_merge_t;
#define EGRU_MERGE_MAX 4

/* CONV1D params[3]. */
typedef enum egru_padding {
    EGRU_PADDING_VALID = 0,
    EGRU_PADDING_SAME = 1,  /* left (total)/2, the rest on the right (TensorFlow's split) */
    EGRU_PADDING_CAUSAL = 2 /* dilation * (kernel_size - 1) on the left                  */
} egru_padding_t;
#define EGRU_PADDING_MAX 2

/* GLOBAL_POOL params[0]. */
typedef enum egru_pool { EGRU_POOL_AVERAGE = 1, EGRU_POOL_MAX = 2 } egru_pool_t;
#define EGRU_POOL_MAX_KIND 2

/* Layer flag bits (layer record flags). */
#define EGRU_FLAG_RETURN_SEQUENCES 0x1u
#define EGRU_FLAG_RESET_AFTER      0x2u
#define EGRU_FLAG_USE_BIAS         0x4u
/* 1.1 */
#define EGRU_FLAG_GO_BACKWARDS  0x8u  /* recurrent: steps last to first, outputs in that order */
#define EGRU_FLAG_BIDIRECTIONAL 0x10u /* recurrent: a forward and a backward layer, merged     */
#define EGRU_FLAG_MASKED        0x20u /* the layer receives the mask of its input             */
#define EGRU_FLAG_MASK_ZERO     0x40u /* EMBEDDING: id 0 masks its step (Keras mask_zero)     */

/* Activations (layer record activation, recurrent_activation). */
typedef enum egru_act {
    EGRU_ACT_LINEAR = 0,
    EGRU_ACT_RELU = 1,
    EGRU_ACT_SIGMOID = 2,
    EGRU_ACT_TANH = 3,
    EGRU_ACT_SOFTMAX = 4,
    /* 1.1 */
    EGRU_ACT_HARD_SIGMOID = 5, /* relu6(x + 3) / 6 (Keras 3)            */
    EGRU_ACT_ELU = 6,          /* x > 0 ? x : exp(x) - 1                */
    EGRU_ACT_SOFTSIGN = 7,     /* x / (1 + |x|)                         */
    EGRU_ACT_SOFTPLUS = 8,     /* log(1 + exp(x))                       */
    EGRU_ACT_LEAKY_RELU = 9    /* x > 0 ? x : 0.2 x (Keras' default)    */
} egru_act_t;
#define EGRU_ACT_MAX 9

/* Element types (tensor record dtype). */
typedef enum egru_dtype {
    EGRU_DTYPE_F32 = 1,
    EGRU_DTYPE_S8 = 2, /* 1.2: int8 weights with per-row scales (docs/quantization.md)    */
    EGRU_DTYPE_S32 = 3 /* 1.3: int32, only for the QPARAMS of int16x8 files                   */
} egru_dtype_t;
#define EGRU_DTYPE_MAX 3

/* Quantization kinds (tensor record quant). */
typedef enum egru_quant {
    EGRU_QUANT_NONE = 0,
    EGRU_QUANT_SYMMETRIC_PER_ROW = 1 /* w[i][j] = scale[i] * q[i][j] (S8, 1.2)              */
} egru_quant_t;
#define EGRU_QUANT_MAX 1

/* Widest int8 product (columns of an S8 KERNEL or RECURRENT matrix; the folded product of
 * egru_model_fold multiplies the same KERNEL, so it is covered). An int8 product sums cols terms
 * q * w in int32 with |q| <= 127 (the run-time quantization clamps to +-127) and |w| <= 127 (-128
 * is rejected), so every partial sum, in any order and any kernel set, is at most
 * cols * 127 * 127 = cols * 16129 in magnitude: 2^17 * 16129 = 2,114,060,288 <= INT32_MAX =
 * 2,147,483,647 (the exact limit is 133,144 columns; 133,145 could overflow). The parser rejects
 * wider S8 matrices with EGRU_ERR_S8_TOO_WIDE; the converter keeps such a matrix float32. */
#define EGRU_S8_MAX_COLS 131072u

/* Tensor roles (tensor record role): what a tensor is to its layer. */
typedef enum egru_role {
    EGRU_ROLE_TABLE = 1,          /* EMBEDDING (vocab, dim)                */
    EGRU_ROLE_KERNEL = 2,         /* GRU (3H, I), DENSE (out, in)          */
    EGRU_ROLE_RECURRENT = 3,      /* GRU (3H, H)                           */
    EGRU_ROLE_INPUT_BIAS = 4,     /* GRU (3H)                              */
    EGRU_ROLE_RECURRENT_BIAS = 5, /* GRU (3H)                              */
    EGRU_ROLE_BIAS = 6,           /* DENSE (out), LSTM (4H), SIMPLE_RNN (H), CONV1D (out) */
    /* 1.1 */
    EGRU_ROLE_SCALE = 7, /* AFFINE, LAYER_NORM (C) */
    EGRU_ROLE_SHIFT = 8, /* AFFINE, LAYER_NORM (C) */
    /* 1.3 */
    EGRU_ROLE_QPARAMS = 9 /* int16x8: the layer's integer parameters, S32 (below) */
} egru_role_t;
#define EGRU_ROLE_MAX 9

/* Words of a QPARAMS tensor (docs/format.md, "Integer-only files"): a header of
 * EGRU_QP_HEADER_WORDS, then per S8 tensor of the layer with r rows: r multipliers m, r shifts
 * n, r biases (G). A multiplier (m, n) is m * 2^-n with m in [2^30, 2^31) and n in [0, 62], or
 * (0, 0). */
#define EGRU_QP_IN_SCALE     0u /* float32 bits of the input's scale (informational)   */
#define EGRU_QP_OUT_SCALE    1u /* float32 bits of the output's (state's) scale        */
#define EGRU_QP_OUT_M        2u /* G -> int16 output multiplier (out_fmt 0)             */
#define EGRU_QP_OUT_N        3u
#define EGRU_QP_OUT_FMT      4u /* 0: G converted by (OUT_M, OUT_N); 1: U, sat16       */
#define EGRU_QP_MASK_Q       5u /* MASKING: the int16 mask value; 0 otherwise           */
#define EGRU_QP_STATE_SCALE  5u /* BIDIRECTIONAL: float32 bits of the states' scale     */
#define EGRU_QP_AUX_M        6u /* ACTIVATION: input -> G; BIDIRECTIONAL: the merge's   */
#define EGRU_QP_AUX_N        7u /* multiplier (0, 0 for concat); 0 otherwise            */
#define EGRU_QP_HEADER_WORDS 8u

#endif /* EGRU_FORMAT_H */
