/*
 * egru_model.c - zero-copy parsing and validation of an .egru blob (docs/format.md).
 *
 * Everything is checked before any weight is touched, in the order the format spec lists.
 * Arithmetic on sizes and offsets is done in uint64_t so that no check can be defeated by
 * 32-bit wrap-around. Nothing here allocates or writes outside the caller's egru_model_t.
 */
#include <string.h>

#include "egru_internal.h"
#include "kernels/egru_kernels.h"

#define U32_LIMIT 0xFFFFFFFFull

/* [offset, offset + size) lies inside [lo, hi). */
static int range_inside(uint64_t offset, uint64_t size, uint64_t lo, uint64_t hi)
{
    return offset >= lo && offset <= hi && size <= hi - offset;
}

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static uint32_t dtype_size(uint32_t dtype)
{
    switch (dtype) {
    case EGRU_DTYPE_F32: return 4;
    case EGRU_DTYPE_S8: return 1;
    case EGRU_DTYPE_S32: return 4;
    default: return 0;
    }
}

static const uint8_t *tensor_record(const egru_model_t *m, uint32_t index)
{
    return m->tensor_table + (size_t)index * m->tensor_record_size;
}

static const uint8_t *layer_record(const egru_model_t *m, uint32_t index)
{
    return m->layer_table + (size_t)index * m->layer_record_size;
}

/* The n little-endian float32 values at p are finite (not NaN, not +-inf) and, when sign is
 * 0x80000000u, have a clear sign bit (>= 0, -0.0 excluded). */
static int floats_ok(const uint8_t *p, uint32_t n, uint32_t sign)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        const uint32_t bits = egru_rd_u32(p + 4 * i);
        if ((bits & sign) || (bits & 0x7F800000u) == 0x7F800000u) {
            return 0;
        }
    }
    return 1;
}

/* Check one tensor record against the rules of docs/format.md (step 7), and, unless `trusted`
 * (EGRU_INIT_TRUSTED_PAYLOAD), its data: int8 values in [-127, 127] with finite scales >= 0,
 * float32 values finite. The record checks (dtype, shape, size, placement inside the data
 * section) always run: they are what keeps every later read inside the blob. No pointer into the
 * data section is formed before the range it points to is known to lie inside the section. */
static egru_status_t check_tensor(const egru_model_t *m, uint32_t alignment, uint32_t index,
                                  int trusted)
{
    const uint8_t *t = tensor_record(m, index);
    uint32_t dtype = t[EGRU_TNS_DTYPE], quant = t[EGRU_TNS_QUANT];
    uint32_t rank = t[EGRU_TNS_RANK], role = t[EGRU_TNS_ROLE];
    uint32_t offset = egru_rd_u32(t + EGRU_TNS_DATA_OFFSET);
    uint32_t size = egru_rd_u32(t + EGRU_TNS_DATA_SIZE);
    uint64_t elements = 1;
    uint32_t d, i;
    const uint8_t *data;

    if (dtype == 0 || dtype > EGRU_DTYPE_MAX || quant > EGRU_QUANT_MAX || role == 0 ||
        role > EGRU_ROLE_MAX || rank == 0 || rank > EGRU_MAX_RANK) {
        return EGRU_ERR_BAD_TENSOR;
    }
    for (d = 0; d < EGRU_MAX_RANK; ++d) {
        uint32_t dim = egru_rd_u32(t + EGRU_TNS_DIMS + 4 * d);
        if (d < rank) {
            if (dim == 0) {
                return EGRU_ERR_BAD_TENSOR;
            }
            elements *= dim;
            if (elements > U32_LIMIT) {
                return EGRU_ERR_BAD_TENSOR;
            }
        } else if (dim != 0) {
            return EGRU_ERR_BAD_TENSOR;
        }
    }
    if (elements * dtype_size(dtype) != size || offset % alignment != 0 ||
        !range_inside(offset, size, 0, m->data_size)) {
        return EGRU_ERR_BAD_TENSOR;
    }
    if (dtype == EGRU_DTYPE_S8) { /* 1.2: int8 with one float scale per row */
        const uint32_t scale_off = egru_rd_u32(t + EGRU_TNS_SCALE_OFFSET);
        const uint32_t rows = egru_rd_u32(t + EGRU_TNS_DIMS);
        const uint8_t *sc;
        if (m->quant_version == EGRU_QUANT_VERSION           ? !EGRU_CFG_INT8
            : m->quant_version == EGRU_QUANT_VERSION_INT16X8 ? !EGRU_CFG_INT16X8
                                                             : 1) {
            return EGRU_ERR_UNSUPPORTED; /* int8 left out of this build, or semantics it lacks */
        }
        if (quant != EGRU_QUANT_SYMMETRIC_PER_ROW ||
            egru_rd_u32(t + EGRU_TNS_SCALE_COUNT) != rows || scale_off % alignment != 0 ||
            !range_inside(scale_off, (uint64_t)rows * 4u, 0, m->data_size)) {
            return EGRU_ERR_BAD_TENSOR;
        }
        if (trusted) {
            return EGRU_OK;
        }
        sc = m->data + scale_off; /* both ranges are inside the data section now */
        data = m->data + offset;
        if (!floats_ok(sc, rows, 0x80000000u)) { /* scales finite and >= 0 */
            return EGRU_ERR_BAD_TENSOR;
        }
        for (i = 0; i < size; ++i) { /* -128 (0x80) is outside the symmetric range */
            if (data[i] == 0x80u) {
                return EGRU_ERR_BAD_TENSOR;
            }
        }
        return EGRU_OK;
    }
    if ((dtype == EGRU_DTYPE_S32) != (role == EGRU_ROLE_QPARAMS)) {
        return EGRU_ERR_BAD_TENSOR; /* S32 holds QPARAMS, and QPARAMS are S32 (1.3) */
    }
    if (dtype == EGRU_DTYPE_S32) { /* an int16x8 layer's integer parameters */
        if (m->quant_version != EGRU_QUANT_VERSION_INT16X8 || quant != EGRU_QUANT_NONE ||
            rank != 1 || egru_rd_u32(t + EGRU_TNS_SCALE_OFFSET) != 0 ||
            egru_rd_u32(t + EGRU_TNS_SCALE_COUNT) != 0) {
            return EGRU_ERR_BAD_TENSOR;
        }
        return EGRU_CFG_INT16X8 ? EGRU_OK : EGRU_ERR_UNSUPPORTED; /* values: check_qparams */
    }
    if (quant != EGRU_QUANT_NONE) {
        return EGRU_ERR_BAD_TENSOR; /* an F32 tensor is not quantized */
    }
    if (egru_rd_u32(t + EGRU_TNS_SCALE_OFFSET) != 0 || egru_rd_u32(t + EGRU_TNS_SCALE_COUNT) != 0) {
        return EGRU_ERR_BAD_TENSOR;
    }
    /* every float32 weight finite (docs/format.md) */
    return trusted || floats_ok(m->data + offset, size / 4, 0) ? EGRU_OK : EGRU_ERR_BAD_TENSOR;
}

/* The tensor at `index` has the role and the shape an op requires; returns its data or NULL.
 * dims[k] == 0 ends the shape (rank = number of leading non-zero dims). The record was checked by
 * check_tensor. */
static const float *expect_tensor(const egru_model_t *m, uint32_t index, uint32_t role, uint64_t d0,
                                  uint64_t d1, uint64_t d2)
{
    const uint8_t *t = tensor_record(m, index);
    const uint64_t want[3] = {d0, d1, d2};
    uint32_t rank = d2 ? 3u : d1 ? 2u : 1u, k;
    if (t[EGRU_TNS_ROLE] != role || t[EGRU_TNS_RANK] != rank ||
        t[EGRU_TNS_DTYPE] != EGRU_DTYPE_F32) {
        return NULL;
    }
    for (k = 0; k < rank; ++k) {
        if (egru_rd_u32(t + EGRU_TNS_DIMS + 4 * k) != want[k]) {
            return NULL;
        }
    }
    return (const float *)(const void *)(m->data + egru_rd_u32(t + EGRU_TNS_DATA_OFFSET));
}

/* A weight matrix (d0, d1) that may be float32 or int8 (1.2): sets *f32, or *s8 and *scale;
 * returns 0 when the tensor does not have the role and shape. */
static int expect_weights(const egru_model_t *m, uint32_t index, uint32_t role, uint64_t d0,
                          uint64_t d1, const float **f32, const int8_t **s8, const float **scale)
{
    const uint8_t *t = tensor_record(m, index);
    *f32 = NULL;
    *s8 = NULL;
    *scale = NULL;
    if (t[EGRU_TNS_DTYPE] == EGRU_DTYPE_F32) {
        return (*f32 = expect_tensor(m, index, role, d0, d1, 0)) != NULL;
    }
    if (t[EGRU_TNS_ROLE] != role || t[EGRU_TNS_RANK] != 2 || egru_rd_u32(t + EGRU_TNS_DIMS) != d0 ||
        egru_rd_u32(t + EGRU_TNS_DIMS + 4) != d1) {
        return 0;
    }
    *s8 = (const int8_t *)(const void *)(m->data + egru_rd_u32(t + EGRU_TNS_DATA_OFFSET));
    *scale = (const float *)(const void *)(m->data + egru_rd_u32(t + EGRU_TNS_SCALE_OFFSET));
    return 1;
}

static int act_is_elementwise(uint32_t act)
{
    return act <= EGRU_ACT_MAX && act != EGRU_ACT_SOFTMAX;
}

/* Gate blocks per recurrent op; 0 for other ops. */
static uint32_t rnn_gates(uint32_t op)
{
    switch (op) {
    case EGRU_OP_GRU: return 3;
    case EGRU_OP_LSTM: return 4;
    case EGRU_OP_SIMPLE_RNN: return 1;
    default: return 0;
    }
}

/* Decode the weights of one direction of a recurrent layer from tensors first..first+n-1. */
static int decode_rnn(const egru_model_t *m, uint32_t op, uint32_t first, uint64_t G, uint64_t H,
                      uint64_t in, egru_rnn_weights_t *w)
{
    const int kernel = expect_weights(m, first, EGRU_ROLE_KERNEL, G * H, in, &w->kernel,
                                      &w->kernel_s8, &w->kernel_scale);
    const int recurrent = expect_weights(m, first + 1, EGRU_ROLE_RECURRENT, G * H, H, &w->recurrent,
                                         &w->recurrent_s8, &w->recurrent_scale);
    if (op == EGRU_OP_GRU) {
        w->bias = expect_tensor(m, first + 2, EGRU_ROLE_INPUT_BIAS, G * H, 0, 0);
        w->recurrent_bias = expect_tensor(m, first + 3, EGRU_ROLE_RECURRENT_BIAS, G * H, 0, 0);
        return kernel && recurrent && w->bias && w->recurrent_bias;
    }
    w->bias = expect_tensor(m, first + 2, EGRU_ROLE_BIAS, G * H, 0, 0);
    return kernel && recurrent && w->bias;
}

/* The op is built into this runtime (egru_features.h). */
static int op_supported(uint32_t op)
{
    switch (op) {
    case EGRU_OP_EMBEDDING: return EGRU_CFG_OP_EMBEDDING;
    case EGRU_OP_GRU: return EGRU_CFG_OP_GRU;
    case EGRU_OP_DENSE: return EGRU_CFG_OP_DENSE;
    case EGRU_OP_LSTM: return EGRU_CFG_OP_LSTM;
    case EGRU_OP_SIMPLE_RNN: return EGRU_CFG_OP_SIMPLE_RNN;
    case EGRU_OP_CONV1D: return EGRU_CFG_OP_CONV1D;
    case EGRU_OP_GLOBAL_POOL: return EGRU_CFG_OP_GLOBAL_POOL;
    case EGRU_OP_AFFINE: return EGRU_CFG_OP_AFFINE;
    case EGRU_OP_LAYER_NORM: return EGRU_CFG_OP_LAYER_NORM;
    case EGRU_OP_ACTIVATION: return EGRU_CFG_OP_ACTIVATION;
    case EGRU_OP_FLATTEN: return EGRU_CFG_OP_FLATTEN;
    case EGRU_OP_MASKING: return EGRU_CFG_OP_MASKING;
    case EGRU_OP_MERGE:
    case EGRU_OP_CONCATENATE:
    case EGRU_OP_REPEAT_VECTOR:
    case EGRU_OP_ATTENTION:
    case EGRU_OP_TIME_STEPS:
    case EGRU_OP_DOT:
    case EGRU_OP_RESHAPE:
    case EGRU_OP_PERMUTE: return EGRU_CFG_GRAPH;
    default: return 0;
    }
}

/* The activation is built into this runtime (egru_features.h; LINEAR always is). */
static int act_supported(uint32_t act)
{
    switch (act) {
    case EGRU_ACT_LINEAR: return 1;
    case EGRU_ACT_RELU: return EGRU_CFG_ACT_RELU;
    case EGRU_ACT_SIGMOID: return EGRU_CFG_ACT_SIGMOID;
    case EGRU_ACT_TANH: return EGRU_CFG_ACT_TANH;
    case EGRU_ACT_SOFTMAX: return EGRU_CFG_ACT_SOFTMAX;
    case EGRU_ACT_HARD_SIGMOID: return EGRU_CFG_ACT_HARD_SIGMOID;
    case EGRU_ACT_ELU: return EGRU_CFG_ACT_ELU;
    case EGRU_ACT_SOFTSIGN: return EGRU_CFG_ACT_SOFTSIGN;
    case EGRU_ACT_SOFTPLUS: return EGRU_CFG_ACT_SOFTPLUS;
    case EGRU_ACT_LEAKY_RELU: return EGRU_CFG_ACT_LEAKY_RELU;
    default: return 0;
    }
}

/* Allowed flag bits per op. */
static uint32_t allowed_flags(uint32_t op)
{
    switch (op) {
    case EGRU_OP_EMBEDDING: return EGRU_FLAG_MASK_ZERO;
    case EGRU_OP_GRU:
    case EGRU_OP_LSTM:
    case EGRU_OP_SIMPLE_RNN:
        return EGRU_FLAG_RETURN_SEQUENCES | EGRU_FLAG_USE_BIAS | EGRU_FLAG_GO_BACKWARDS |
               EGRU_FLAG_BIDIRECTIONAL | EGRU_FLAG_MASKED |
               (op == EGRU_OP_GRU ? EGRU_FLAG_RESET_AFTER : 0u);
    case EGRU_OP_DENSE:
    case EGRU_OP_CONV1D: return EGRU_FLAG_USE_BIAS | EGRU_FLAG_MASKED;
    default: return EGRU_FLAG_MASKED;
    }
}

/* The ops int16x8 implements (docs/format.md, "Integer-only files"): Embedding, Masking, Dense,
 * and GRU / LSTM / SimpleRNN in one direction with gates in U (sigmoid or hard_sigmoid; the
 * others have none). Where in the chain they may be is check_layers' business. */
static int int16x8_op(uint32_t op, uint32_t flags, uint32_t ract)
{
    (void)flags; /* Bidirectional: both directions, every merge mode */
    switch (op) {
    case EGRU_OP_EMBEDDING:
    case EGRU_OP_MASKING:
    case EGRU_OP_DENSE:
    case EGRU_OP_CONV1D:
    case EGRU_OP_GLOBAL_POOL:
    case EGRU_OP_AFFINE:
    case EGRU_OP_LAYER_NORM:
    case EGRU_OP_ACTIVATION:
    case EGRU_OP_FLATTEN:
    case EGRU_OP_SIMPLE_RNN: return 1;
    case EGRU_OP_GRU:
    case EGRU_OP_LSTM:
        return ract == EGRU_ACT_SIGMOID || ract == EGRU_ACT_HARD_SIGMOID || ract == EGRU_ACT_TANH ||
               ract == EGRU_ACT_SOFTSIGN;
    default: return 0;
    }
}

/* A multiplier (m, n): m in [2^30, 2^31) and n in [0, 62], or (0, 0). */
static int multiplier_ok(int32_t m, int32_t n)
{
    return (m == 0 && n == 0) || (m >= 0x40000000 && n >= 0 && n <= 62);
}

/* A positive finite float32, on its bits (no float operation). */
static int positive_float_bits(int32_t v)
{
    const uint32_t b = (uint32_t)v;
    return b != 0 && !(b & 0x80000000u) && (b & 0x7F800000u) != 0x7F800000u;
}

/* `rows` (m, n, bias) triples of a product's rows: m[], then n[], then bias[] (Affine: m signed,
 * its magnitude a multiplier). */
static int products_ok(const int32_t *p, uint32_t rows, int is_signed)
{
    uint32_t i;
    for (i = 0; i < rows; ++i) {
        const int32_t m = p[i], b = p[2u * rows + i];
        if (!multiplier_ok(is_signed && m < 0 && m != INT32_MIN ? -m : m, p[rows + i]) ||
            b < -0x40000000 || b > 0x40000000) {
            return 0;
        }
    }
    return 1;
}

/* The activations whose int16x8 outputs are in U (docs/quantization.md, "Activations"). */
static int act_is_unit(uint32_t act)
{
    return act == EGRU_ACT_SIGMOID || act == EGRU_ACT_TANH || act == EGRU_ACT_HARD_SIGMOID ||
           act == EGRU_ACT_SOFTSIGN || act == EGRU_ACT_SOFTMAX;
}

/* The output conversion a header must hold (words 2-4): the activation's format for the ops
 * with one (Dense, Conv1D, Activation, recurrent: their output or state), G with a multiplier for
 * Affine and LayerNorm, none (0, (0, 0)) for the rest; (0, 0) whenever the format is U. */
static int out_conversion_ok(const egru_layer_t *layer, const int32_t *q)
{
    const uint32_t op = layer->op;
    const int32_t fmt = q[EGRU_QP_OUT_FMT];
    const int none = q[EGRU_QP_OUT_M] == 0 && q[EGRU_QP_OUT_N] == 0;
    if (op == EGRU_OP_DENSE || op == EGRU_OP_CONV1D || op == EGRU_OP_ACTIVATION || rnn_gates(op)) {
        return fmt == act_is_unit(layer->activation) && (fmt == 0 || none);
    }
    if (op == EGRU_OP_AFFINE || op == EGRU_OP_LAYER_NORM) {
        return fmt == 0;
    }
    return fmt == 0 && none;
}

/* The values of an int16x8 layer's QPARAMS words (decode_layer checked their count): the header
 * (words 5-7 per op, docs/format.md), then per S8 tensor its rows' triples; a Bidirectional
 * layer holds two blocks of a one-direction layer's layout with equal headers. */
static egru_status_t check_qparams(const egru_layer_t *layer)
{
    const int32_t *q = layer->qparams;
    const uint32_t op = layer->op;
    const int bidi = rnn_gates(op) && (layer->flags & EGRU_FLAG_BIDIRECTIONAL);
    const uint32_t blocks = bidi ? 2u : 1u;
    const uint32_t block = layer->qparams_count / blocks; /* words per block */
    const uint32_t rows = (block - EGRU_QP_HEADER_WORDS) / 3u;
    const int second = op == EGRU_OP_ACTIVATION || bidi; /* words 6, 7: a second multiplier */
    uint32_t b;
    if (!multiplier_ok(q[EGRU_QP_OUT_M], q[EGRU_QP_OUT_N]) || !out_conversion_ok(layer, q) ||
        !positive_float_bits(q[EGRU_QP_OUT_SCALE]) ||
        (op == EGRU_OP_EMBEDDING ? q[EGRU_QP_IN_SCALE] != 0
                                 : !positive_float_bits(q[EGRU_QP_IN_SCALE])) ||
        (second                     ? !multiplier_ok(q[6], q[7])
         : op == EGRU_OP_LAYER_NORM ? q[6] < 0 || q[7] < 0 /* its epsilon E = w6 2^31 + w7 */
                                    : q[6] != 0 || q[7] != 0) ||
        (op == EGRU_OP_MASKING ? q[EGRU_QP_MASK_Q] < -32767 || q[EGRU_QP_MASK_Q] > 32767
         : bidi                ? !positive_float_bits(q[EGRU_QP_MASK_Q])
                               : q[EGRU_QP_MASK_Q] != 0)) {
        return EGRU_ERR_BAD_TENSOR;
    }
    for (b = 0; b < blocks; ++b) {
        const int32_t *h = q + (size_t)b * block, *p = h + EGRU_QP_HEADER_WORDS;
        if (b && memcmp(h, q, EGRU_QP_HEADER_WORDS * sizeof *q) != 0) {
            return EGRU_ERR_BAD_TENSOR; /* the backward block's header is the forward one's */
        }
        if (rnn_gates(op)) { /* two products of rows / 2 each: kernel, recurrent */
            if (!products_ok(p, rows / 2u, 0) || !products_ok(p + 3u * (rows / 2u), rows / 2u, 0)) {
                return EGRU_ERR_BAD_TENSOR;
            }
        } else if (!products_ok(p, rows, op == EGRU_OP_AFFINE || op == EGRU_OP_LAYER_NORM)) {
            return EGRU_ERR_BAD_TENSOR;
        }
    }
    return EGRU_OK;
}

/* An S8 tensor of role and shape (d0, d1, d2) (d2 = 0: rank 2): its values and row scales. */
static int expect_s8(const egru_model_t *m, uint32_t index, uint32_t role, uint32_t d0, uint32_t d1,
                     uint32_t d2, const int8_t **s8, const float **scale)
{
    const uint8_t *t = tensor_record(m, index);
    if (t[EGRU_TNS_DTYPE] != EGRU_DTYPE_S8 || t[EGRU_TNS_ROLE] != role ||
        t[EGRU_TNS_RANK] != (d2 ? 3u : 2u) || egru_rd_u32(t + EGRU_TNS_DIMS) != d0 ||
        egru_rd_u32(t + EGRU_TNS_DIMS + 4) != d1 ||
        (d2 && egru_rd_u32(t + EGRU_TNS_DIMS + 8) != d2)) {
        return 0;
    }
    *s8 = (const int8_t *)(const void *)(m->data + egru_rd_u32(t + EGRU_TNS_DATA_OFFSET));
    *scale = (const float *)(const void *)(m->data + egru_rd_u32(t + EGRU_TNS_SCALE_OFFSET));
    return 1;
}

/* Decode and check layer `index` on its own (op, flags, activations, params, tensors); the chain
 * is checked by egru_model_init. Tensor records must already have passed check_tensor. */
static egru_status_t decode_layer(const egru_model_t *m, uint32_t index, egru_layer_t *out)
{
    const uint8_t *r = layer_record(m, index);
    uint32_t op = egru_rd_u16(r + EGRU_LYR_OP), flags = egru_rd_u16(r + EGRU_LYR_FLAGS);
    uint32_t in = egru_rd_u32(r + EGRU_LYR_INPUT_DIM), dim = egru_rd_u32(r + EGRU_LYR_OUTPUT_DIM);
    uint32_t first = egru_rd_u32(r + EGRU_LYR_FIRST_TENSOR);
    uint32_t count = egru_rd_u32(r + EGRU_LYR_TENSOR_COUNT);
    uint32_t act = r[EGRU_LYR_ACTIVATION], ract = r[EGRU_LYR_RECURRENT_ACTIVATION], k;
    uint32_t G = rnn_gates(op), units = dim, need = 0;
    uint64_t params = 0, macs = 0;
    int ok = 1;
    uint32_t p0;
    egru_status_t s;

    memset(out, 0, sizeof *out);
    for (k = 0; k < 10; ++k) {
        out->params[k] = egru_rd_u32(r + EGRU_LYR_PARAMS + 4 * k);
    }
    if (op == 0 || op > EGRU_OP_MAX || in == 0 || dim == 0 || (flags & ~allowed_flags(op)) ||
        !range_inside(first, count, 0, m->tensor_count) || act > EGRU_ACT_MAX ||
        ract > EGRU_ACT_MAX || (!G && ract != 0)) {
        return EGRU_ERR_BAD_LAYER;
    }
    if (EGRU_CFG_GRAPH && op >= EGRU_OP_MERGE && m->input_kind != EGRU_INPUT_GRAPH) {
        return EGRU_ERR_BAD_LAYER; /* graph ops exist in graph files only */
    }
    if (!op_supported(op)) {
        /* Refused before decoding, so that a left-out op's decoding code goes from the build
         * too; feature_supported checks the rest of what the layer needs. */
        return EGRU_ERR_UNSUPPORTED;
    }
    if (EGRU_CFG_INT16X8 && m->quant_version == EGRU_QUANT_VERSION_INT16X8) {
        /* int16x8 (docs/format.md, "Integer-only files"): the ops it implements, every matrix
         * S8 (checked below), and the layer's last tensor its QPARAMS (S32, rank 1: checked by
         * check_tensor; the words' values by check_qparams at init). */
        const uint8_t *t = count ? tensor_record(m, first + count - 1) : NULL;
        if (!int16x8_op(op, flags, ract)) {
            return EGRU_ERR_UNSUPPORTED;
        }
        if (!t || t[EGRU_TNS_ROLE] != EGRU_ROLE_QPARAMS) {
            return EGRU_ERR_BAD_LAYER;
        }
        out->qparams =
            (const int32_t *)(const void *)(m->data + egru_rd_u32(t + EGRU_TNS_DATA_OFFSET));
        out->qparams_count = egru_rd_u32(t + EGRU_TNS_DIMS);
        --count;
    }
    switch (op) {
    case EGRU_OP_EMBEDDING:
        need = 1;
        ok = act == 0 && count == need;
        ok = ok && expect_weights(m, first, EGRU_ROLE_TABLE, in, dim, &out->table, &out->table_s8,
                                  &out->table_scale);
        params = (uint64_t)in * dim;
        break;
    case EGRU_OP_GRU:
    case EGRU_OP_LSTM:
    case EGRU_OP_SIMPLE_RNN: {
        const uint32_t dirs = (flags & EGRU_FLAG_BIDIRECTIONAL) ? 2u : 1u;
        const uint32_t per_dir = op == EGRU_OP_GRU ? 4u : 3u;
        const uint32_t merge = out->params[0];
        if (dirs == 2) {
            ok = merge >= 1 && merge <= EGRU_MERGE_MAX && !(flags & EGRU_FLAG_GO_BACKWARDS);
            units = merge == EGRU_MERGE_CONCAT ? dim / 2 : dim;
            ok = ok && (merge != EGRU_MERGE_CONCAT || dim % 2 == 0);
        } else {
            ok = merge == 0;
        }
        ok = ok && act_is_elementwise(act) && act_is_elementwise(ract) && count == dirs * per_dir &&
             (uint64_t)G * units <= U32_LIMIT;
        for (k = 0; ok && k < dirs; ++k) {
            ok = decode_rnn(m, op, first + k * per_dir, G, units, in, &out->rnn[k]);
        }
        /* The runtime implements each matrix (kernel, recurrent) as float32 or int8 per layer,
         * not per direction: both directions must agree on each (docs/format.md, step 8). */
        ok = ok && (dirs == 1 || (!out->rnn[0].kernel_s8 == !out->rnn[1].kernel_s8 &&
                                  !out->rnn[0].recurrent_s8 == !out->rnn[1].recurrent_s8));
        params = dirs * ((uint64_t)G * units * (in + units) +
                         (op == EGRU_OP_GRU ? 2u : 1u) * (uint64_t)G * units);
        macs = dirs * (uint64_t)G * units * (in + units);
        break;
    }
    case EGRU_OP_DENSE:
        ok = count == 2;
        ok = ok && expect_weights(m, first, EGRU_ROLE_KERNEL, dim, in, &out->kernel,
                                  &out->kernel_s8, &out->kernel_scale);
        ok = ok && (out->bias = expect_tensor(m, first + 1, EGRU_ROLE_BIAS, dim, 0, 0)) != NULL;
        params = (uint64_t)dim * in + dim;
        macs = (uint64_t)dim * in;
        break;
    case EGRU_OP_CONV1D: {
        const uint32_t ksize = out->params[0], stride = out->params[1], dil = out->params[2];
        ok = count == 2 && ksize >= 1 && stride >= 1 && dil >= 1 &&
             out->params[3] <= EGRU_PADDING_MAX && act != EGRU_ACT_SOFTMAX &&
             (uint64_t)dil * (ksize - 1) < U32_LIMIT;
        if (out->qparams) { /* int16x8: the kernel is S8, one scale per output channel */
            ok = ok && expect_s8(m, first, EGRU_ROLE_KERNEL, dim, ksize, in, &out->kernel_s8,
                                 &out->kernel_scale);
        } else {
            ok = ok &&
                 (out->kernel = expect_tensor(m, first, EGRU_ROLE_KERNEL, dim, ksize, in)) != NULL;
        }
        ok = ok && (out->bias = expect_tensor(m, first + 1, EGRU_ROLE_BIAS, dim, 0, 0)) != NULL;
        params = (uint64_t)dim * ksize * in + dim;
        macs = (uint64_t)dim * ksize * in;
        break;
    }
    case EGRU_OP_GLOBAL_POOL:
        ok = count == 0 && act == 0 && dim == in && out->params[0] >= 1 &&
             out->params[0] <= EGRU_POOL_MAX_KIND;
        break;
    case EGRU_OP_AFFINE:
    case EGRU_OP_LAYER_NORM:
        ok = count == 2 && act == 0 && dim == in;
        ok = ok && (out->scale = expect_tensor(m, first, EGRU_ROLE_SCALE, dim, 0, 0)) != NULL;
        ok = ok && (out->shift = expect_tensor(m, first + 1, EGRU_ROLE_SHIFT, dim, 0, 0)) != NULL;
        params = 2u * (uint64_t)dim;
        break;
    case EGRU_OP_ACTIVATION: ok = count == 0 && dim == in; break;
    case EGRU_OP_FLATTEN:
        ok = count == 0 && act == 0 && out->params[0] >= 1 && (uint64_t)in * out->params[0] == dim;
        break;
    case EGRU_OP_MASKING: ok = count == 0 && act == 0 && dim == in; break;
    case EGRU_OP_MERGE:
    case EGRU_OP_CONCATENATE:
    case EGRU_OP_REPEAT_VECTOR: /* graph files: no tensors, one parameter */
        if (!EGRU_CFG_GRAPH) {
            ok = 0; /* refused by op_supported already */
            break;
        }
        p0 = out->params[0];
        ok = count == 0 && act == 0 &&
             (op == EGRU_OP_MERGE         ? p0 >= 1 && p0 <= EGRU_MERGE_OP_MAX && dim == in
              : op == EGRU_OP_CONCATENATE ? p0 == EGRU_CONCAT_TIME || p0 == EGRU_CONCAT_FEATURES
                                          : p0 >= 1 && dim == in);
        for (k = 1; k < 10; ++k) {
            ok = ok && out->params[k] == 0;
        }
        break;
    case EGRU_OP_RESHAPE: /* graph files: (params[0] or 1) * in == (params[1] or 1) * dim */
    case EGRU_OP_PERMUTE: /* graph files: params[0] = T >= 1 = dim */
        ok = EGRU_CFG_GRAPH && count == 0 && act == 0 &&
             (op == EGRU_OP_PERMUTE
                  ? out->params[0] >= 1u && out->params[0] == dim && out->params[1] == 0
                  : (uint64_t)(out->params[0] ? out->params[0] : 1u) * in ==
                        (uint64_t)(out->params[1] ? out->params[1] : 1u) * dim);
        for (k = 2; k < 10; ++k) {
            ok = ok && out->params[k] == 0;
        }
        break;
    case EGRU_OP_DOT: /* graph files: params[0] normalize 0 / 1, the rest zero */
        ok = EGRU_CFG_GRAPH && count == 0 && act == 0 && dim == 1u && out->params[0] <= 1u;
        for (k = 1; k < 10; ++k) {
            ok = ok && out->params[k] == 0;
        }
        break;
    case EGRU_OP_TIME_STEPS:
        /* graph files: params mode, start, end (crop / pad), size >= 1 (upsample; else 0) */
        p0 = out->params[0];
        ok = EGRU_CFG_GRAPH && count == 0 && act == 0 && dim == in && p0 >= EGRU_STEPS_CROP &&
             p0 <= EGRU_STEPS_UPSAMPLE;
        ok = ok && (p0 == EGRU_STEPS_UPSAMPLE
                        ? out->params[1] == 0 && out->params[2] == 0 && out->params[3] >= 1
                        : out->params[3] == 0);
        for (k = 4; k < 10; ++k) {
            ok = ok && out->params[k] == 0;
        }
        break;
    case EGRU_OP_ATTENTION:
        /* graph files: params score, causal (0 / 1), scale and concat weight (f32 bits, finite;
         * dot / concat only), masks ignored (0 / 1; 1 only for dot, not causal: the Keras Dot
         * pattern); additive: 0 or 1 SCALE tensor (in), the rest zero. */
        if (!EGRU_CFG_GRAPH) {
            ok = 0;
            break;
        }
        p0 = out->params[0];
        ok = act == 0 && p0 >= EGRU_ATTENTION_DOT && p0 <= EGRU_ATTENTION_ADDITIVE &&
             out->params[1] <= 1u;
        if (p0 == EGRU_ATTENTION_ADDITIVE) {
            ok = ok && count <= 1u && out->params[2] == 0 && out->params[3] == 0;
            ok = ok && (count == 0 ||
                        (out->scale = expect_tensor(m, first, EGRU_ROLE_SCALE, in, 0, 0)) != NULL);
            params = count ? in : 0u;
        } else {
            ok = ok && count == 0 && (out->params[2] & 0x7F800000u) != 0x7F800000u &&
                 (out->params[3] & 0x7F800000u) != 0x7F800000u &&
                 (p0 == EGRU_ATTENTION_CONCAT || out->params[3] == 0);
        }
        ok = ok && (out->params[4] == 0 ||
                    (out->params[4] == 1u && p0 == EGRU_ATTENTION_DOT && out->params[1] == 0));
        for (k = 5; k < 10; ++k) {
            ok = ok && out->params[k] == 0;
        }
        break;
    }
    /* Float parameters (params[0]), checked on their bits (no float operation, so that an
     * integer-only build links no soft-float helper): LayerNorm epsilon finite and >= 0 (0 is
     * Keras' formula as written; a negative one makes sqrt(var + eps) NaN on low-variance
     * steps; -0.0 counts as 0); Masking mask_value not NaN (it would equal nothing, so never
     * mask). */
    p0 = out->params[0];
    ok = ok &&
         !(op == EGRU_OP_LAYER_NORM &&
           ((p0 & 0x7F800000u) == 0x7F800000u || ((p0 & 0x80000000u) && p0 != 0x80000000u))) &&
         !(op == EGRU_OP_MASKING && (p0 & 0x7F800000u) == 0x7F800000u && (p0 & 0x007FFFFFu));
    /* int16x8: every matrix is S8, and the QPARAMS hold 8 words + 3 per row of them (per
     * direction of a Bidirectional layer; per feature of an Affine one). */
    if (EGRU_CFG_INT16X8 && ok && out->qparams) {
        const uint32_t dirs = (flags & EGRU_FLAG_BIDIRECTIONAL) ? 2u : 1u;
        uint64_t rows = 0;
        switch (op) {
        case EGRU_OP_EMBEDDING:
            rows = in;
            ok = out->table_s8 != NULL;
            break;
        case EGRU_OP_DENSE:
        case EGRU_OP_CONV1D:
            rows = dim;
            ok = out->kernel_s8 != NULL;
            break;
        case EGRU_OP_LAYER_NORM:
            ok = dim <= 16384u; /* 2^14: its sums stay exact */
            /* fall through */
        case EGRU_OP_AFFINE: rows = dim; break;
        case EGRU_OP_GRU:
        case EGRU_OP_LSTM:
        case EGRU_OP_SIMPLE_RNN:
            rows = 2u * (uint64_t)G * units;
            for (k = 0; k < dirs; ++k) {
                ok = ok && out->rnn[k].kernel_s8 && out->rnn[k].recurrent_s8;
            }
            break;
        default: break; /* Masking, GlobalPool, Flatten, Activation: the header only */
        }
        ok = ok && out->qparams_count == dirs * (EGRU_QP_HEADER_WORDS + 3u * rows);
    }
    /* An int8 product wider than EGRU_S8_MAX_COLS could overflow its int32 sums (both
     * directions of a recurrent layer agree on dtypes and widths: rnn[0] speaks for both). */
    s = !ok || params > U32_LIMIT || macs > U32_LIMIT ? EGRU_ERR_BAD_LAYER
        : ((out->kernel_s8 || out->rnn[0].kernel_s8) &&
           (op == EGRU_OP_CONV1D ? (uint64_t)out->params[0] * in : in) > EGRU_S8_MAX_COLS) ||
                (out->rnn[0].recurrent_s8 && units > EGRU_S8_MAX_COLS)
            ? EGRU_ERR_S8_TOO_WIDE
            : EGRU_OK;
    if (s != EGRU_OK) {
        memset(out, 0, sizeof *out);
        return s;
    }
    out->op = (egru_op_t)op;
    out->flags = flags;
    out->input_dim = in;
    out->output_dim = dim;
    out->units = units;
    out->activation = (egru_act_t)act;
    out->recurrent_activation = (egru_act_t)ract;
    out->param_count = (uint32_t)params;
    out->macs_per_step = (uint32_t)macs;
    out->kernels = m->kernels ? m->kernels : egru_kernels_ref();
    out->workers = m->workers;
    if (EGRU_CFG_FOLD && m->fold && index == 0) {
        out->table = m->fold; /* rows of projections instead of embeddings */
        out->table_s8 = NULL;
        out->table_scale = NULL;
        out->output_dim = m->fold_width;
    } else if (EGRU_CFG_FOLD && m->fold && index == 1) {
        out->input_dim = m->fold_width;
        out->input_projected = 1;
    }
    if (EGRU_CFG_PACK && m->pack &&
        rnn_gates(op)) { /* egru_model_pack: offsets in floats from the table */
        const uint32_t *off = m->pack + (size_t)EGRU_PACK_SLOTS * index;
        const float *base = (const float *)(const void *)m->pack;
        uint32_t d;
        for (d = 0; d < 2; ++d) {
            out->rnn[d].kernel_t = off[2 * d] ? base + off[2 * d] : NULL;
            out->rnn[d].recurrent_t = off[2 * d + 1] ? base + off[2 * d + 1] : NULL;
            out->rnn[d].recurrent_sums =
                off[4 + d] ? (const int32_t *)(const void *)(base + off[4 + d]) : NULL;
        }
    }
    return EGRU_OK;
}

/* [a, a + n) and [b, b + k) overlap (both non-empty). */
static int ranges_overlap(uint64_t a, uint64_t n, uint64_t b, uint64_t k)
{
    return n != 0 && k != 0 && a < b + k && b < a + n;
}

/* The graph part of the header of a graph file (docs/format.md "Graphs"): sizes, counts, the
 * value and io tables inside [header_size, file_size) and overlapping nothing else. */
static egru_status_t check_graph_header(egru_model_t *m, const uint8_t *b, uint32_t header_size,
                                        uint32_t file_size, uint32_t layer_off, uint32_t tensor_off,
                                        uint32_t data_off, uint32_t meta_off, uint64_t layer_bytes,
                                        uint64_t tensor_bytes)
{
    const uint32_t value_off = egru_rd_u32(b + EGRU_GHDR_VALUE_TABLE_OFFSET);
    const uint32_t io_off = egru_rd_u32(b + EGRU_GHDR_IO_TABLE_OFFSET);
    uint64_t value_bytes, io_bytes;
    m->value_count = egru_rd_u32(b + EGRU_GHDR_VALUE_COUNT);
    m->value_record_size = egru_rd_u32(b + EGRU_GHDR_VALUE_RECORD_SIZE);
    m->io_count = egru_rd_u32(b + EGRU_GHDR_IO_COUNT);
    m->graph_input_count = egru_rd_u16(b + EGRU_GHDR_INPUT_COUNT);
    m->graph_output_count = egru_rd_u16(b + EGRU_GHDR_OUTPUT_COUNT);
    if (header_size < EGRU_GRAPH_HEADER_SIZE || m->layer_record_size < EGRU_NODE_RECORD_SIZE ||
        m->input_dim != 0 || m->output_dim != 0 || m->value_count < 2 ||
        m->value_record_size < EGRU_VALUE_RECORD_SIZE || io_off % 4u != 0 ||
        m->graph_input_count == 0 || m->graph_output_count == 0) {
        return EGRU_ERR_BAD_HEADER;
    }
    value_bytes = (uint64_t)m->value_count * m->value_record_size;
    io_bytes = (uint64_t)m->io_count * 4u;
    if (!range_inside(value_off, value_bytes, header_size, file_size) ||
        !range_inside(io_off, io_bytes, header_size, file_size) ||
        ranges_overlap(value_off, value_bytes, io_off, io_bytes) ||
        ranges_overlap(value_off, value_bytes, layer_off, layer_bytes) ||
        ranges_overlap(value_off, value_bytes, tensor_off, tensor_bytes) ||
        ranges_overlap(value_off, value_bytes, data_off, m->data_size) ||
        ranges_overlap(value_off, value_bytes, meta_off, m->meta_size) ||
        ranges_overlap(io_off, io_bytes, layer_off, layer_bytes) ||
        ranges_overlap(io_off, io_bytes, tensor_off, tensor_bytes) ||
        ranges_overlap(io_off, io_bytes, data_off, m->data_size) ||
        ranges_overlap(io_off, io_bytes, meta_off, m->meta_size)) {
        return EGRU_ERR_OUT_OF_BOUNDS;
    }
    if (m->quant_version == EGRU_QUANT_VERSION_INT16X8) {
        return EGRU_ERR_UNSUPPORTED; /* int16x8 graphs: not yet */
    }
    if (m->value_count > EGRU_GRAPH_MAX_VALUES) {
        return EGRU_ERR_UNSUPPORTED; /* more values than this build plans (egru_internal.h) */
    }
    m->value_table = b + value_off;
    m->io_table = b + io_off;
    return EGRU_OK;
}

/* Steps 1-6 of the spec: the header, the checksums and the placement of every section; the
 * payload CRC (step 5) only when not `trusted`. */
static egru_status_t check_header(egru_model_t *m, const uint8_t *b, size_t blob_size,
                                  uint32_t *alignment, int trusted)
{
    uint32_t header_size, file_size, layer_off, tensor_off, data_off, meta_off;
    uint64_t layer_bytes, tensor_bytes;

    if (blob_size < EGRU_HEADER_SIZE) {
        return EGRU_ERR_TRUNCATED;
    }
    if ((uintptr_t)b % EGRU_BLOB_ALIGN != 0) {
        return EGRU_ERR_MISALIGNED;
    }
    if (b[0] != EGRU_MAGIC_0 || b[1] != EGRU_MAGIC_1 || b[2] != EGRU_MAGIC_2 ||
        b[3] != EGRU_MAGIC_3) {
        return EGRU_ERR_BAD_MAGIC;
    }
    if (egru_rd_u16(b + EGRU_HDR_VERSION_MAJOR) != EGRU_FORMAT_VERSION_MAJOR) {
        return EGRU_ERR_VERSION;
    }
    if (egru_crc32(0, b, EGRU_HDR_HEADER_CRC) != egru_rd_u32(b + EGRU_HDR_HEADER_CRC)) {
        return EGRU_ERR_CHECKSUM;
    }
    header_size = egru_rd_u32(b + EGRU_HDR_HEADER_SIZE);
    file_size = egru_rd_u32(b + EGRU_HDR_FILE_SIZE);
    *alignment = egru_rd_u32(b + EGRU_HDR_ALIGNMENT);
    m->quant_version = egru_rd_u32(b + EGRU_HDR_QUANT_VERSION);
    m->layer_count = egru_rd_u32(b + EGRU_HDR_LAYER_COUNT);
    m->layer_record_size = egru_rd_u32(b + EGRU_HDR_LAYER_RECORD_SIZE);
    m->tensor_count = egru_rd_u32(b + EGRU_HDR_TENSOR_COUNT);
    m->tensor_record_size = egru_rd_u32(b + EGRU_HDR_TENSOR_RECORD_SIZE);
    if (header_size < EGRU_HEADER_SIZE || file_size < header_size || m->layer_count == 0 ||
        m->layer_record_size < EGRU_LAYER_RECORD_SIZE ||
        m->tensor_record_size < EGRU_TENSOR_RECORD_SIZE || *alignment < EGRU_MIN_ALIGNMENT ||
        (*alignment & (*alignment - 1)) != 0) {
        return EGRU_ERR_BAD_HEADER;
    }
    if (m->quant_version > EGRU_QUANT_VERSION_NEWEST ||
        (!EGRU_CFG_FLOAT && m->quant_version != EGRU_QUANT_VERSION_INT16X8) ||
        (!EGRU_CFG_INT16X8 && m->quant_version == EGRU_QUANT_VERSION_INT16X8)) {
        return EGRU_ERR_UNSUPPORTED; /* quantization semantics newer than this runtime */
    }
    if (file_size > blob_size) {
        return EGRU_ERR_TRUNCATED;
    }
    if (!trusted && egru_crc32(0, b + EGRU_HEADER_SIZE, file_size - EGRU_HEADER_SIZE) !=
                        egru_rd_u32(b + EGRU_HDR_PAYLOAD_CRC)) {
        return EGRU_ERR_CHECKSUM;
    }

    layer_off = egru_rd_u32(b + EGRU_HDR_LAYER_TABLE_OFFSET);
    tensor_off = egru_rd_u32(b + EGRU_HDR_TENSOR_TABLE_OFFSET);
    data_off = egru_rd_u32(b + EGRU_HDR_DATA_OFFSET);
    meta_off = egru_rd_u32(b + EGRU_HDR_META_OFFSET);
    m->data_size = egru_rd_u32(b + EGRU_HDR_DATA_SIZE);
    m->meta_size = egru_rd_u32(b + EGRU_HDR_META_SIZE);
    layer_bytes = (uint64_t)m->layer_count * m->layer_record_size;
    tensor_bytes = (uint64_t)m->tensor_count * m->tensor_record_size;
    if (!range_inside(layer_off, layer_bytes, header_size, file_size) ||
        !range_inside(tensor_off, tensor_bytes, header_size, file_size) ||
        !range_inside(data_off, m->data_size, header_size, file_size) ||
        (m->meta_size != 0 && !range_inside(meta_off, m->meta_size, header_size, file_size))) {
        return EGRU_ERR_OUT_OF_BOUNDS;
    }
    if (data_off % *alignment != 0) {
        return EGRU_ERR_BAD_HEADER;
    }
    m->blob = b;
    m->file_size = file_size;
    m->layer_table = b + layer_off;
    m->tensor_table = b + tensor_off;
    m->data = b + data_off;
    m->meta = m->meta_size ? b + meta_off : NULL;
    m->input_kind = egru_rd_u32(b + EGRU_HDR_INPUT_KIND);
    m->input_dim = egru_rd_u32(b + EGRU_HDR_INPUT_DIM);
    m->output_dim = egru_rd_u32(b + EGRU_HDR_OUTPUT_DIM);
    if (m->input_kind == EGRU_INPUT_GRAPH) {
        if (!EGRU_CFG_GRAPH) {
            return EGRU_ERR_UNSUPPORTED; /* graph files are left out of this build */
        }
        return check_graph_header(m, b, header_size, file_size, layer_off, tensor_off, data_off,
                                  meta_off, layer_bytes, tensor_bytes);
    }
    if ((m->input_kind != EGRU_INPUT_TOKENS && m->input_kind != EGRU_INPUT_FEATURES) ||
        m->input_dim == 0 || m->output_dim == 0) {
        return EGRU_ERR_BAD_HEADER;
    }
    return EGRU_OK;
}

/* Everything the decoded layer needs is built into this runtime (egru_features.h): both
 * activation slots, Bidirectional / go_backwards, masks (made or received), the GRU reset mode
 * and int8 matrices (its op: decode_layer refused a left-out one already). With op_supported,
 * the place a configured-out feature is refused: egru_model_init returns EGRU_ERR_UNSUPPORTED
 * for such a model rather than run it without that code. */
static int feature_supported(const egru_layer_t *layer)
{
    const uint32_t f = layer->flags;
    const int is_gru = layer->op == EGRU_OP_GRU;
    const int s8 = layer->table_s8 || layer->kernel_s8 || layer->rnn[0].kernel_s8 ||
                   layer->rnn[0].recurrent_s8 || layer->rnn[1].kernel_s8 ||
                   layer->rnn[1].recurrent_s8;
    return act_supported(layer->activation) && act_supported(layer->recurrent_activation) &&
           (EGRU_CFG_BIDIRECTIONAL || !(f & EGRU_FLAG_BIDIRECTIONAL)) &&
           (EGRU_CFG_GO_BACKWARDS || !(f & EGRU_FLAG_GO_BACKWARDS)) &&
           (EGRU_CFG_MASK ||
            !((f & (EGRU_FLAG_MASK_ZERO | EGRU_FLAG_MASKED)) || layer->op == EGRU_OP_MASKING)) &&
           (EGRU_CFG_GRU_RESET_AFTER || !is_gru || !(f & EGRU_FLAG_RESET_AFTER)) &&
           (EGRU_CFG_GRU_RESET_BEFORE || !is_gru || (f & EGRU_FLAG_RESET_AFTER)) &&
           (EGRU_CFG_INT8 || !s8 || layer->qparams);
}

/* Step 8: every layer decodes, tensors are used in order, widths chain, sequences and masks
 * flow where their consumers need them. */
static egru_status_t check_layers(egru_model_t *m)
{
    uint32_t k, next_tensor = 0, width = m->input_dim, is_sequence = 1, has_mask = 0;
    uint64_t params = 0;
    egru_layer_t layer;

    for (k = 0; k < m->layer_count; ++k) {
        egru_status_t s = decode_layer(m, k, &layer);
        const uint32_t op = layer.op;
        if (s != EGRU_OK) {
            return s;
        }
        if (!feature_supported(&layer)) {
            return EGRU_ERR_UNSUPPORTED; /* a feature this build leaves out (egru_features.h) */
        }
        if (EGRU_CFG_INT16X8 && layer.qparams) { /* int16x8: the words' values; Masking first */
            if ((s = check_qparams(&layer)) != EGRU_OK) {
                return s;
            }
            if (op == EGRU_OP_MASKING && k != 0) {
                return EGRU_ERR_UNSUPPORTED;
            }
        }
        if (egru_rd_u32(layer_record(m, k) + EGRU_LYR_FIRST_TENSOR) != next_tensor ||
            layer.input_dim != width) {
            return EGRU_ERR_BAD_LAYER;
        }
        next_tensor += egru_rd_u32(layer_record(m, k) + EGRU_LYR_TENSOR_COUNT);
        /* A token model starts with its Embedding; nothing else may hold one. */
        if ((op == EGRU_OP_EMBEDDING) != (k == 0 && m->input_kind == EGRU_INPUT_TOKENS)) {
            return EGRU_ERR_BAD_LAYER;
        }
        /* Ops that need a sequence, and a mask only where one exists. */
        if (!is_sequence && (rnn_gates(op) || op == EGRU_OP_CONV1D || op == EGRU_OP_GLOBAL_POOL ||
                             op == EGRU_OP_FLATTEN || op == EGRU_OP_MASKING)) {
            return EGRU_ERR_BAD_LAYER;
        }
        if ((layer.flags & EGRU_FLAG_MASKED) && !has_mask) {
            return EGRU_ERR_BAD_LAYER;
        }
        has_mask = (layer.flags & EGRU_FLAG_MASKED) != 0;
        if (op == EGRU_OP_MASKING || (layer.flags & EGRU_FLAG_MASK_ZERO)) {
            has_mask = 1;
        }
        if (rnn_gates(op)) {
            is_sequence = (layer.flags & EGRU_FLAG_RETURN_SEQUENCES) != 0;
            m->max_units = layer.units > m->max_units ? layer.units : m->max_units;
        } else if (op == EGRU_OP_GLOBAL_POOL || op == EGRU_OP_FLATTEN) {
            is_sequence = 0;
        }
        if (!is_sequence || op == EGRU_OP_CONV1D) {
            has_mask = 0; /* a mask lives on the input's time steps only */
        }
        if (op != EGRU_OP_EMBEDDING && layer.input_dim > m->max_width) {
            m->max_width = layer.input_dim;
        }
        m->max_width = layer.output_dim > m->max_width ? layer.output_dim : m->max_width;
        params += layer.param_count;
        width = layer.output_dim;
    }
    if (next_tensor != m->tensor_count || width != m->output_dim || params > U32_LIMIT) {
        return EGRU_ERR_BAD_LAYER;
    }
    m->output_is_sequence = is_sequence;
    m->param_count = (uint32_t)params;
    return EGRU_OK;
}

/* Graph files: whether a node of `layer` reads a mask (its MASKED flag must say so) and whether
 * its first output carries one, given whether any / every / the first of its inputs carries one
 * (docs/format.md "Graphs", "Mask rules"). */
static int node_reads_mask(const egru_layer_t *layer, int any, int first, uint32_t input_count)
{
    switch (layer->op) {
    case EGRU_OP_MERGE:
    case EGRU_OP_CONCATENATE: return any;
    case EGRU_OP_DENSE:
    case EGRU_OP_ACTIVATION:
    case EGRU_OP_AFFINE:
    case EGRU_OP_LAYER_NORM: return first;
    case EGRU_OP_GRU:
    case EGRU_OP_LSTM:
    case EGRU_OP_SIMPLE_RNN:
        /* Keras 3 hands mask= only to a call with one tensor argument: a recurrent node with
         * initial states runs unmasked (its sequence output still carries the mask). */
        return first && input_count == 1u;
    case EGRU_OP_GLOBAL_POOL: return first && layer->params[0] == EGRU_POOL_AVERAGE;
    case EGRU_OP_ATTENTION: /* see check_graph: the query's or the value's; none ignoring masks */
        return any && layer->params[4] == 0;
    default: return 0; /* Conv1D, Flatten end it; Embedding, Masking make one; RepeatVector */
    }
}

static int node_writes_mask(const egru_layer_t *layer, int any, int every, int first)
{
    switch (layer->op) {
    case EGRU_OP_MERGE: return every;
    case EGRU_OP_CONCATENATE: return any;
    case EGRU_OP_DENSE:
    case EGRU_OP_ACTIVATION:
    case EGRU_OP_AFFINE:
    case EGRU_OP_LAYER_NORM: return first;
    case EGRU_OP_GRU:
    case EGRU_OP_LSTM:
    case EGRU_OP_SIMPLE_RNN: return first && (layer->flags & EGRU_FLAG_RETURN_SEQUENCES) != 0;
    case EGRU_OP_MASKING: return 1;
    case EGRU_OP_EMBEDDING: return (layer->flags & EGRU_FLAG_MASK_ZERO) != 0;
    case EGRU_OP_ATTENTION: return first && layer->params[4] == 0; /* the query's mask */
    default: return 0;
    }
}

/* The params an op uses (the others must be zero). */
static uint32_t graph_params_used(const egru_layer_t *layer)
{
    switch (layer->op) {
    case EGRU_OP_GRU:
    case EGRU_OP_LSTM:
    case EGRU_OP_SIMPLE_RNN: return (layer->flags & EGRU_FLAG_BIDIRECTIONAL) ? 1u : 0u;
    case EGRU_OP_ATTENTION: return 5u; /* params[4]: masks ignored; checked by decode_layer */
    case EGRU_OP_CONV1D:
    case EGRU_OP_TIME_STEPS:
    case EGRU_OP_RESHAPE:
    case EGRU_OP_PERMUTE: return 4u; /* checked further by decode_layer */
    case EGRU_OP_GLOBAL_POOL:
    case EGRU_OP_LAYER_NORM:
    case EGRU_OP_FLATTEN:
    case EGRU_OP_MASKING:
    case EGRU_OP_MERGE:
    case EGRU_OP_CONCATENATE:
    case EGRU_OP_REPEAT_VECTOR:
    case EGRU_OP_DOT: return 1u;
    default: return 0u; /* Embedding, Dense, Affine, Activation */
    }
}

/* Step 8 for a graph file (docs/format.md "Graphs", "Rules a reader checks"): every node
 * decodes as a layer, reads model inputs and values of earlier nodes only, writes values no one
 * else writes, with the kinds, widths and masks its op gives; nodes naming the same tensors are
 * the same layer; every io entry and tensor belongs to one node. */
static egru_status_t check_graph(egru_model_t *m)
{
    uint8_t written[EGRU_GRAPH_MAX_VALUES];
    const uint32_t n_in = m->graph_input_count, n_out = m->graph_output_count;
    uint32_t k, i, v, pos = n_in + n_out, next_tensor = 0;
    uint64_t params = 0;
    egru_layer_t layer;

    memset(written, 0, sizeof written);
    for (v = 0; v < m->value_count; ++v) {
        const uint8_t *r = m->value_table + (size_t)v * m->value_record_size;
        const uint32_t kind = r[EGRU_VAL_KIND], flags = r[EGRU_VAL_FLAGS];
        if (kind < EGRU_VALUE_TOKENS || kind > EGRU_VALUE_VECTOR ||
            egru_rd_u32(r + EGRU_VAL_WIDTH) == 0 || (flags & ~EGRU_VALUE_FLAG_MASKED) ||
            ((flags & EGRU_VALUE_FLAG_MASKED) && kind != EGRU_VALUE_SEQUENCE)) {
            return EGRU_ERR_BAD_LAYER;
        }
    }
    if ((uint64_t)n_in + n_out > m->io_count) {
        return EGRU_ERR_BAD_LAYER;
    }
    for (i = 0; i < m->io_count; ++i) {
        if (egru_graph_io(m, i) >= m->value_count) {
            return EGRU_ERR_BAD_LAYER;
        }
    }
    for (i = 0; i < n_in; ++i) { /* distinct, unmasked model inputs */
        v = egru_graph_io(m, i);
        if (written[v] || egru_value_masked(m, v)) {
            return EGRU_ERR_BAD_LAYER;
        }
        written[v] = 1;
    }
    for (k = 0; k < m->layer_count; ++k) {
        const uint8_t *rec = m->layer_table + (size_t)k * m->layer_record_size;
        const uint32_t io_first = egru_rd_u32(rec + EGRU_NODE_IO_FIRST);
        const uint32_t ni = egru_rd_u16(rec + EGRU_NODE_INPUT_COUNT);
        const uint32_t no = egru_rd_u16(rec + EGRU_NODE_OUTPUT_COUNT);
        const uint32_t first = egru_rd_u32(rec + EGRU_LYR_FIRST_TENSOR);
        const uint32_t count = egru_rd_u32(rec + EGRU_LYR_TENSOR_COUNT);
        uint32_t any = 0, every = 1, x0, y0, kx, ky, S = 0, want_out;
        uint64_t width_sum = 0;
        egru_status_t s;
        if (io_first != pos || ni == 0 || no == 0 || (uint64_t)pos + ni + no > m->io_count) {
            return EGRU_ERR_BAD_LAYER;
        }
        pos += ni + no;
        if ((s = decode_layer(m, k, &layer)) != EGRU_OK) {
            return s;
        }
        if (!feature_supported(&layer)) {
            return EGRU_ERR_UNSUPPORTED;
        }
        /* SimpleRNN has no recurrent activation (0, docs/format.md "Layer records"); unused
         * params are zero. Both checked in graph files (chain files keep 1.3's checks). */
        if (layer.op == EGRU_OP_SIMPLE_RNN && layer.recurrent_activation != EGRU_ACT_LINEAR) {
            return EGRU_ERR_BAD_LAYER;
        }
        for (i = graph_params_used(&layer); i < 10; ++i) {
            if (layer.params[i] != 0) {
                return EGRU_ERR_BAD_LAYER;
            }
        }
        /* Tensors: the next unused range, or exactly an earlier node's (a shared layer: equal
         * records but for MASKED and the node fields). */
        if (count != 0 && first < next_tensor) {
            uint32_t j;
            for (j = 0; j < k; ++j) {
                const uint8_t *o = m->layer_table + (size_t)j * m->layer_record_size;
                if (egru_rd_u32(o + EGRU_LYR_FIRST_TENSOR) == first &&
                    egru_rd_u32(o + EGRU_LYR_TENSOR_COUNT) == count) {
                    break; /* (a node without tensors may name the same first index) */
                }
            }
            if (j == k) {
                return EGRU_ERR_BAD_LAYER;
            } else {
                const uint8_t *o = m->layer_table + (size_t)j * m->layer_record_size;
                uint32_t b;
                if (((egru_rd_u16(rec + EGRU_LYR_FLAGS) ^ egru_rd_u16(o + EGRU_LYR_FLAGS)) &
                     ~EGRU_FLAG_MASKED) != 0) {
                    return EGRU_ERR_BAD_LAYER;
                }
                for (b = 0; b < EGRU_LAYER_RECORD_SIZE; ++b) {
                    if ((b < EGRU_LYR_FLAGS || b >= EGRU_LYR_FLAGS + 2u) && rec[b] != o[b]) {
                        return EGRU_ERR_BAD_LAYER;
                    }
                }
            }
        } else {
            if (first != next_tensor) {
                return EGRU_ERR_BAD_LAYER;
            }
            next_tensor += count; /* <= tensor_count: decode_layer checked the range */
            params += layer.param_count;
        }
        /* Reads: values already written; their kinds and widths. */
        for (i = 0; i < ni; ++i) {
            v = egru_graph_io(m, io_first + i);
            if (!written[v]) {
                return EGRU_ERR_BAD_LAYER; /* not a model input nor written by an earlier node */
            }
            if (egru_value_kind(m, v) == EGRU_VALUE_TOKENS && layer.op != EGRU_OP_EMBEDDING) {
                return EGRU_ERR_BAD_LAYER;
            }
            any |= (uint32_t)egru_value_masked(m, v);
            every &= (uint32_t)egru_value_masked(m, v);
            width_sum += egru_value_width(m, v);
        }
        for (i = 0; i < no; ++i) {
            v = egru_graph_io(m, io_first + ni + i);
            if (written[v]) {
                return EGRU_ERR_BAD_LAYER; /* a model input, or written twice */
            }
            written[v] = 2;
        }
        x0 = egru_graph_io(m, io_first);
        y0 = egru_graph_io(m, io_first + ni);
        kx = egru_value_kind(m, x0);
        ky = egru_value_kind(m, y0);
        if (egru_value_width(m, x0) != layer.input_dim ||
            egru_value_width(m, y0) != layer.output_dim) {
            return EGRU_ERR_BAD_LAYER;
        }
        want_out = kx;
        switch (layer.op) {
        case EGRU_OP_EMBEDDING:
            if (kx != EGRU_VALUE_TOKENS || ni != 1 || no != 1) {
                return EGRU_ERR_BAD_LAYER;
            }
            want_out = EGRU_VALUE_SEQUENCE;
            break;
        case EGRU_OP_GRU:
        case EGRU_OP_LSTM:
        case EGRU_OP_SIMPLE_RNN:
            S = (layer.op == EGRU_OP_LSTM ? 2u : 1u) *
                ((layer.flags & EGRU_FLAG_BIDIRECTIONAL) ? 2u : 1u);
            if (kx != EGRU_VALUE_SEQUENCE || (ni != 1 && ni != 1 + S) || (no != 1 && no != 1 + S)) {
                return EGRU_ERR_BAD_LAYER;
            }
            for (i = 1; i < ni; ++i) { /* initial states */
                v = egru_graph_io(m, io_first + i);
                if (egru_value_kind(m, v) != EGRU_VALUE_VECTOR ||
                    egru_value_width(m, v) != layer.units) {
                    return EGRU_ERR_BAD_LAYER;
                }
            }
            for (i = 1; i < no; ++i) { /* final states */
                v = egru_graph_io(m, io_first + ni + i);
                if (egru_value_kind(m, v) != EGRU_VALUE_VECTOR ||
                    egru_value_width(m, v) != layer.units || egru_value_masked(m, v)) {
                    return EGRU_ERR_BAD_LAYER;
                }
            }
            want_out = (layer.flags & EGRU_FLAG_RETURN_SEQUENCES) ? EGRU_VALUE_SEQUENCE
                                                                  : EGRU_VALUE_VECTOR;
            break;
        case EGRU_OP_CONV1D:
        case EGRU_OP_MASKING:
        case EGRU_OP_GLOBAL_POOL:
        case EGRU_OP_FLATTEN:
            if (kx != EGRU_VALUE_SEQUENCE || ni != 1 || no != 1) {
                return EGRU_ERR_BAD_LAYER;
            }
            want_out = (layer.op == EGRU_OP_GLOBAL_POOL || layer.op == EGRU_OP_FLATTEN)
                           ? EGRU_VALUE_VECTOR
                           : EGRU_VALUE_SEQUENCE;
            break;
        case EGRU_OP_MERGE:
        case EGRU_OP_CONCATENATE: {
            const int time = layer.op == EGRU_OP_CONCATENATE && layer.params[0] == EGRU_CONCAT_TIME;
            if (ni < 2 || no != 1 || kx == EGRU_VALUE_TOKENS ||
                (layer.op == EGRU_OP_MERGE && layer.params[0] == EGRU_MERGE_SUBTRACT && ni != 2) ||
                (time && kx != EGRU_VALUE_SEQUENCE)) {
                return EGRU_ERR_BAD_LAYER;
            }
            for (i = 1; i < ni; ++i) {
                v = egru_graph_io(m, io_first + i);
                if (egru_value_kind(m, v) != kx || ((layer.op == EGRU_OP_MERGE || time) &&
                                                    egru_value_width(m, v) != layer.input_dim)) {
                    return EGRU_ERR_BAD_LAYER;
                }
            }
            if (layer.op == EGRU_OP_CONCATENATE && !time && width_sum != layer.output_dim) {
                return EGRU_ERR_BAD_LAYER;
            }
            if (time && layer.output_dim != layer.input_dim) {
                return EGRU_ERR_BAD_LAYER;
            }
            break;
        }
        case EGRU_OP_REPEAT_VECTOR:
            if (kx != EGRU_VALUE_VECTOR || ni != 1 || no != 1) {
                return EGRU_ERR_BAD_LAYER;
            }
            want_out = EGRU_VALUE_SEQUENCE;
            break;
        case EGRU_OP_RESHAPE: /* steps 0: a vector */
        case EGRU_OP_PERMUTE:
            if (ni != 1 || no != 1 ||
                kx != (layer.op == EGRU_OP_PERMUTE || layer.params[0] ? EGRU_VALUE_SEQUENCE
                                                                      : EGRU_VALUE_VECTOR)) {
                return EGRU_ERR_BAD_LAYER;
            }
            want_out = layer.op == EGRU_OP_PERMUTE || layer.params[1] ? EGRU_VALUE_SEQUENCE
                                                                      : EGRU_VALUE_VECTOR;
            break;
        case EGRU_OP_DOT: /* two vectors of input_dim */
            v = egru_graph_io(m, io_first + 1);
            if (kx != EGRU_VALUE_VECTOR || ni != 2 || no != 1 ||
                egru_value_kind(m, v) != EGRU_VALUE_VECTOR ||
                egru_value_width(m, v) != layer.input_dim) {
                return EGRU_ERR_BAD_LAYER;
            }
            break;
        case EGRU_OP_TIME_STEPS:
            if (kx != EGRU_VALUE_SEQUENCE || ni != 1 || no != 1) {
                return EGRU_ERR_BAD_LAYER;
            }
            break;
        case EGRU_OP_ATTENTION: /* [query, value(, key)]: sequences; key width = query's */
            if (kx != EGRU_VALUE_SEQUENCE || (ni != 2 && ni != 3) || no != 1) {
                return EGRU_ERR_BAD_LAYER;
            }
            for (i = 1; i < ni; ++i) {
                v = egru_graph_io(m, io_first + i);
                if (egru_value_kind(m, v) != EGRU_VALUE_SEQUENCE) {
                    return EGRU_ERR_BAD_LAYER;
                }
            }
            v = egru_graph_io(m, io_first + ni - 1); /* the key (the value without one) */
            if (egru_value_width(m, egru_graph_io(m, io_first + 1)) != layer.output_dim ||
                egru_value_width(m, v) != layer.input_dim) {
                return EGRU_ERR_BAD_LAYER;
            }
            /* a mask is read from the query and the value only (a key's is ignored) */
            any = egru_value_masked(m, x0) || egru_value_masked(m, egru_graph_io(m, io_first + 1));
            want_out = EGRU_VALUE_SEQUENCE;
            break;
        default: /* per-step ops: a sequence or a vector, kept */
            if (ni != 1 || no != 1) {
                return EGRU_ERR_BAD_LAYER;
            }
            break;
        }
        if (ky != want_out) {
            return EGRU_ERR_BAD_LAYER;
        }
        {
            const int first_masked = egru_value_masked(m, x0);
            const int reads = node_reads_mask(&layer, any != 0, first_masked, ni);
            const int writes = node_writes_mask(&layer, any != 0, every != 0, first_masked);
            if (((layer.flags & EGRU_FLAG_MASKED) != 0) != reads ||
                egru_value_masked(m, y0) != writes) {
                return EGRU_ERR_BAD_LAYER;
            }
        }
        if (rnn_gates(layer.op)) {
            m->max_units = layer.units > m->max_units ? layer.units : m->max_units;
        }
        if (layer.op != EGRU_OP_EMBEDDING && layer.input_dim > m->max_width) {
            m->max_width = layer.input_dim;
        }
        m->max_width = layer.output_dim > m->max_width ? layer.output_dim : m->max_width;
    }
    if (pos != m->io_count || next_tensor != m->tensor_count || params > U32_LIMIT) {
        return EGRU_ERR_BAD_LAYER;
    }
    for (v = 0; v < m->value_count; ++v) {
        if (!written[v]) {
            return EGRU_ERR_BAD_LAYER; /* a value no node writes */
        }
    }
    for (i = 0; i < n_out; ++i) { /* written by nodes, listed once */
        uint32_t j;
        v = egru_graph_io(m, n_in + i);
        if (written[v] != 2) {
            return EGRU_ERR_BAD_LAYER;
        }
        for (j = 0; j < i; ++j) {
            if (egru_graph_io(m, n_in + j) == v) {
                return EGRU_ERR_BAD_LAYER;
            }
        }
    }
    m->param_count = (uint32_t)params;
    return EGRU_OK;
}

egru_status_t egru_model_init_flags(egru_model_t *model, const void *blob, size_t blob_size,
                                    uint32_t flags)
{
    const int trusted = (flags & EGRU_INIT_TRUSTED_PAYLOAD) != 0;
    egru_status_t s;
    uint32_t alignment = 0, k;

    if (!model) {
        return EGRU_ERR_NULL_ARG;
    }
    memset(model, 0, sizeof *model);
    if (!blob) {
        return EGRU_ERR_NULL_ARG;
    }
    if (flags & ~(uint32_t)EGRU_INIT_TRUSTED_PAYLOAD) {
        return EGRU_ERR_UNSUPPORTED; /* a flag this runtime does not know */
    }
    s = check_header(model, (const uint8_t *)blob, blob_size, &alignment, trusted);
    for (k = 0; s == EGRU_OK && k < model->tensor_count; ++k) {
        s = check_tensor(model, alignment, k, trusted);
    }
    if (s == EGRU_OK) {
        s = EGRU_CFG_GRAPH && model->input_kind == EGRU_INPUT_GRAPH ? check_graph(model)
                                                                    : check_layers(model);
    }
    if (s == EGRU_OK) {
        (void)egru_model_use_kernels(model, EGRU_KERNELS_AUTO);
    }
    if (s == EGRU_OK && !host_is_little_endian()) {
        s = EGRU_ERR_UNSUPPORTED; /* weights are used in place as native little-endian floats */
    }
    if (s != EGRU_OK) {
        memset(model, 0, sizeof *model);
    }
    return s;
}

egru_status_t egru_model_init(egru_model_t *model, const void *blob, size_t blob_size)
{
    return egru_model_init_flags(model, blob, blob_size, 0);
}

egru_status_t egru_model_layer(const egru_model_t *model, uint32_t index, egru_layer_t *layer)
{
    if (!model || !layer) {
        return EGRU_ERR_NULL_ARG;
    }
    if (index >= model->layer_count) {
        return EGRU_ERR_INDEX;
    }
    if (EGRU_CFG_LAYER_CACHE && model->layer_cache) {
        *layer = model->layer_cache[index];
        return EGRU_OK;
    }
    return decode_layer(model, index, layer);
}

/* Decodes every layer into the cache again (after a change of kernels, fold or pack, which
 * decode_layer reads). The layers were validated by egru_model_init. */
#if EGRU_CFG_LAYER_CACHE
void egru_model_refresh_layer_cache(egru_model_t *model)
{
    uint32_t k;
    for (k = 0; EGRU_CFG_LAYER_CACHE && model->layer_cache && k < model->layer_count; ++k) {
        (void)decode_layer(model, k, &model->layer_cache[k]);
    }
}
#endif

#define CACHE_ALIGN ((uintptr_t)sizeof(void *) * 2u) /* egru_layer_t holds pointers and words */

egru_status_t egru_model_cache_layers_size(const egru_model_t *model, size_t *bytes)
{
    uint64_t n;
    if (!model || !bytes) {
        return EGRU_ERR_NULL_ARG;
    }
    if (!EGRU_CFG_LAYER_CACHE) {
        return EGRU_ERR_UNSUPPORTED; /* left out of this build (egru_features.h) */
    }
    if (model->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER; /* not initialised */
    }
    if (model->layer_cache) {
        return EGRU_ERR_UNSUPPORTED;
    }
    n = (uint64_t)model->layer_count * sizeof(egru_layer_t) + CACHE_ALIGN;
    if (n > (uint64_t)(size_t)-1) {
        return EGRU_ERR_UNSUPPORTED;
    }
    *bytes = (size_t)n;
    return EGRU_OK;
}

egru_status_t egru_model_cache_layers(egru_model_t *model, void *mem, size_t bytes)
{
    size_t need = 0;
    egru_status_t s;
    if (!model || !mem) {
        return EGRU_ERR_NULL_ARG;
    }
    if ((s = egru_model_cache_layers_size(model, &need)) != EGRU_OK) {
        return s; /* EGRU_ERR_UNSUPPORTED without EGRU_CFG_LAYER_CACHE */
    }
    if (!EGRU_CFG_LAYER_CACHE) {
        return EGRU_ERR_UNSUPPORTED; /* (lets the compiler drop the rest) */
    }
    if (bytes < need) {
        return EGRU_ERR_ARENA_TOO_SMALL;
    }
    model->layer_cache =
        (egru_layer_t *)(void *)(((uintptr_t)mem + (CACHE_ALIGN - 1)) & ~(CACHE_ALIGN - 1));
    egru_model_refresh_layer_cache(model);
    return EGRU_OK;
}

egru_status_t egru_model_use_kernels(egru_model_t *model, egru_kernels_t kernels)
{
    const egru_kernel_set_t *set;
    if (!model) {
        return EGRU_ERR_NULL_ARG;
    }
    set = egru_kernels_get((int)kernels); /* the mapping lives in kernels/egru_kernel_sets.c */
    if (!set) {
        return EGRU_ERR_UNSUPPORTED;
    }
    model->kernels = set;
    egru_model_refresh_layer_cache(model); /* layers carry their kernel set */
    return EGRU_OK;
}

egru_status_t egru_model_use_workers(egru_model_t *model, const egru_workers_t *workers)
{
    if (!model) {
        return EGRU_ERR_NULL_ARG;
    }
    if (workers && !workers->run) {
        return EGRU_ERR_NULL_ARG;
    }
    if (workers && workers->count == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if (!EGRU_CFG_WORKERS && workers && workers->count > 1) {
        return EGRU_ERR_UNSUPPORTED; /* left out of this build (egru_features.h) */
    }
    model->workers = workers && workers->count > 1 ? workers : NULL;
    egru_model_refresh_layer_cache(model); /* layers carry the workers */
    return EGRU_OK;
}

int egru_kernels_available(egru_kernels_t kernels)
{
    return egru_kernels_get((int)kernels) != NULL;
}

const char *egru_model_kernels_name(const egru_model_t *model)
{
    return model && model->kernels ? model->kernels->name : "ref";
}

/* Everything egru_model_fold_size and egru_model_fold need, derived once by plan_fold so that
 * the size reserved and the memory written agree by construction. Memory layout: the table of
 * projections (vocab, width) floats, then, when `scratch` is set (an int8 table, or an int8
 * kernel in any direction), one embedding row dequantized (dim floats) and its quantized copy
 * (dim bytes, rounded up to 4). */
typedef struct fold_plan {
    egru_layer_t emb, rnn;
    uint32_t width, dirs, scratch;
    uint64_t table_floats, bytes;
} fold_plan_t;

/* EGRU_ERR_UNSUPPORTED when the model cannot be folded (or was folded already). */
static egru_status_t plan_fold(const egru_model_t *model, fold_plan_t *p)
{
    uint32_t d;
    memset(p, 0, sizeof *p);
    if (model->fold || model->quant_version == EGRU_QUANT_VERSION_INT16X8 ||
        model->input_kind == EGRU_INPUT_GRAPH || model->layer_count < 2 ||
        decode_layer(model, 0, &p->emb) != EGRU_OK || decode_layer(model, 1, &p->rnn) != EGRU_OK ||
        p->emb.op != EGRU_OP_EMBEDDING || !rnn_gates(p->rnn.op)) {
        return EGRU_ERR_UNSUPPORTED;
    }
    p->dirs = (p->rnn.flags & EGRU_FLAG_BIDIRECTIONAL) ? 2u : 1u;
    /* width <= the layer's param_count, and vocab * dim <= the Embedding's: both < 2^32, so no
     * product below wraps in uint64_t. */
    p->width = p->dirs * rnn_gates(p->rnn.op) * p->rnn.units;
    p->scratch = p->emb.table_s8 != NULL;
    for (d = 0; d < p->dirs; ++d) {
        p->scratch = p->scratch || p->rnn.rnn[d].kernel_s8 != NULL;
    }
    p->table_floats = (uint64_t)p->emb.input_dim * p->width;
    p->bytes = p->table_floats * sizeof(float);
    if (p->scratch) {
        p->bytes += (uint64_t)p->emb.output_dim * sizeof(float) + ((p->emb.output_dim + 3u) & ~3u);
    }
    if (p->bytes > (uint64_t)(size_t)-1) {
        return EGRU_ERR_UNSUPPORTED;
    }
    return EGRU_OK;
}

egru_status_t egru_model_fold_size(const egru_model_t *model, size_t *bytes)
{
    fold_plan_t p;
    egru_status_t s;
    if (!model || !bytes) {
        return EGRU_ERR_NULL_ARG;
    }
    if (!EGRU_CFG_FOLD) {
        return EGRU_ERR_UNSUPPORTED; /* left out of this build (egru_features.h) */
    }
    if ((s = plan_fold(model, &p)) != EGRU_OK) {
        return s;
    }
    *bytes = (size_t)p.bytes;
    return EGRU_OK;
}

egru_status_t egru_model_fold(egru_model_t *model, void *mem, size_t bytes)
{
    fold_plan_t p;
    egru_status_t s;
    uint32_t v, d, gh, dim;
    float *lut = (float *)mem, *tmp = NULL;
    int8_t *q = NULL;
    if (!model || !mem) {
        return EGRU_ERR_NULL_ARG;
    }
    if (!EGRU_CFG_FOLD) {
        return EGRU_ERR_UNSUPPORTED; /* left out of this build (egru_features.h) */
    }
    if ((s = plan_fold(model, &p)) != EGRU_OK) {
        return s;
    }
    if (bytes < p.bytes) {
        return EGRU_ERR_ARENA_TOO_SMALL;
    }
    if ((uintptr_t)mem % sizeof(float) != 0) {
        return EGRU_ERR_MISALIGNED;
    }
    dim = p.emb.output_dim;
    gh = p.width / p.dirs;
    if (p.scratch) { /* int8: the row scratch after the table (plan_fold reserved it) */
        tmp = lut + p.table_floats;
        q = (int8_t *)(void *)(tmp + dim);
    }
    for (v = 0; v < p.emb.input_dim; ++v) {
        /* The same steps as the unfolded layers (egru_embedding_f32, egru_rnn_f32's input
         * projection: matvec_t on the packed kernel when the model is packed, else matvec; a
         * whole sequence's matmul gives the same bits per step, batch invariance), so the
         * projections are bit-equal to the ones they replace with the same kernel set. */
        const float *row = p.emb.table ? p.emb.table + (size_t)v * dim : NULL;
        uint32_t j;
        if (!row) { /* int8 table: p.scratch is set */
            for (j = 0; j < dim; ++j) {
                tmp[j] = p.emb.table_scale[v] * (float)p.emb.table_s8[(size_t)v * dim + j];
            }
            row = tmp;
        }
        for (d = 0; d < p.dirs; ++d) {
            float *out = lut + (size_t)v * p.width + (size_t)d * gh;
            const egru_rnn_weights_t *w = &p.rnn.rnn[d];
            if (w->kernel_s8) { /* p.scratch is set */
                const float sx = p.rnn.kernels->quantize_s8(row, q, dim);
                p.rnn.kernels->matvec_s8(w->kernel_s8, w->kernel_scale, q, sx, w->bias, out, gh,
                                         dim);
            } else if (w->kernel_t) { /* packed: the product the unfolded packed layer runs */
                p.rnn.kernels->matvec_t_f32(w->kernel_t, gh, row, w->bias, out, gh, dim);
            } else {
                p.rnn.kernels->matvec_f32(w->kernel, row, w->bias, out, gh, dim);
            }
        }
    }
    model->fold = lut;
    model->fold_width = p.width;
    /* The folded layers now pass fold_width floats per step between them. */
    model->max_width = p.width > model->max_width ? p.width : model->max_width;
    egru_model_refresh_layer_cache(model); /* layers 0 and 1 changed */
    return EGRU_OK;
}
