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
#define EGRU_FORMAT_VERSION_MINOR 0

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
    EGRU_INPUT_TOKENS = 1,  /* int32 token ids, (batch, T), 0 <= id < input_dim */
    EGRU_INPUT_FEATURES = 2 /* float32 frames, (batch, T, input_dim)            */
} egru_input_kind_t;

/* Layer operations (layer record op). */
typedef enum egru_op { EGRU_OP_EMBEDDING = 1, EGRU_OP_GRU = 2, EGRU_OP_DENSE = 3 } egru_op_t;
#define EGRU_OP_MAX 3

/* Layer flag bits (layer record flags). */
#define EGRU_FLAG_RETURN_SEQUENCES 0x1u
#define EGRU_FLAG_RESET_AFTER      0x2u
#define EGRU_FLAG_USE_BIAS         0x4u

/* Activations (layer record activation, recurrent_activation). */
typedef enum egru_act {
    EGRU_ACT_LINEAR = 0,
    EGRU_ACT_RELU = 1,
    EGRU_ACT_SIGMOID = 2,
    EGRU_ACT_TANH = 3,
    EGRU_ACT_SOFTMAX = 4
} egru_act_t;
#define EGRU_ACT_MAX 4

/* Element types (tensor record dtype). */
typedef enum egru_dtype {
    EGRU_DTYPE_F32 = 1,
    EGRU_DTYPE_S8 = 2, /* reserved for int8 models; rejected by 1.0 runtimes */
    EGRU_DTYPE_S32 = 3 /* reserved for int8 models; rejected by 1.0 runtimes */
} egru_dtype_t;
#define EGRU_DTYPE_MAX 3

/* Quantization kinds (tensor record quant). */
typedef enum egru_quant {
    EGRU_QUANT_NONE = 0,
    EGRU_QUANT_SYMMETRIC_PER_ROW = 1 /* w[i][j] = scale[i] * q[i][j]; reserved in 1.0 */
} egru_quant_t;
#define EGRU_QUANT_MAX 1

/* Tensor roles (tensor record role): what a tensor is to its layer. */
typedef enum egru_role {
    EGRU_ROLE_TABLE = 1,          /* EMBEDDING (vocab, dim)                */
    EGRU_ROLE_KERNEL = 2,         /* GRU (3H, I), DENSE (out, in)          */
    EGRU_ROLE_RECURRENT = 3,      /* GRU (3H, H)                           */
    EGRU_ROLE_INPUT_BIAS = 4,     /* GRU (3H)                              */
    EGRU_ROLE_RECURRENT_BIAS = 5, /* GRU (3H)                              */
    EGRU_ROLE_BIAS = 6            /* DENSE (out)                           */
} egru_role_t;
#define EGRU_ROLE_MAX 6

#endif /* EGRU_FORMAT_H */
