/*
 * test_runtime.c - C unit tests of the edgegru runtime, independent of Python.
 *
 * The models are written by a small .egru writer in this file (following docs/format.md, not
 * the Python writer), and the forward pass is compared with a double-precision GRU written here
 * from the equations. Prints one line per failed check and a final "N passed, N failed" line;
 * exits non-zero on any failure.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgegru.h"
#include "egru_test.h"
#include "layers/egru_layers.h" /* egru_embedding_f32, called directly by test_token_reads */

/* Float agreement between the float32 runtime and the float64 model in this file: products of
 * <= 16 terms of magnitude <= 1, a few dozen steps; float32 rounding stays below 1e-6. */
#define FP32_TOL 1e-5

/* ------------------------------------------------------------------------------------------ */
/* A tiny .egru writer                                                                         */

#define MAX_BLOB    (1 << 16)
#define MAX_TENSORS 16
#define MAX_LAYERS  8

typedef struct {
    uint16_t op, flags;
    uint32_t in, out;
    uint8_t act, ract;
    uint32_t param0; /* params[0] (bidirectional: merge mode; LayerNorm: epsilon bits) */
} layer_spec;

/* s8: written as an S8 tensor (per-row symmetric, as docs/quantization.md) instead of F32. */
typedef struct {
    uint8_t role, rank;
    uint32_t dims[2];
    const float *data;
    uint8_t s8;
} tensor_spec;

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Recomputes both CRCs of the first `avail` bytes of b, as a writer would for the file_size the
 * header states (clamped to what exists, so a corrupted file_size cannot read past the buffer). */
static void refresh_crcs(uint8_t *b, uint32_t avail)
{
    uint32_t size = get32(b + EGRU_HDR_FILE_SIZE);
    size = size < 128 ? 128 : size > avail ? avail : size;
    put32(b + EGRU_HDR_PAYLOAD_CRC, egru_crc32(0, b + 128, size - 128));
    put32(b + EGRU_HDR_HEADER_CRC, egru_crc32(0, b, 124));
}

/* Per-row int8 quantization of a (rows, cols) float matrix, from docs/quantization.md: scale =
 * max |row| / 127, q = round-half-even(x / scale) clamped to +-127 (0 for an all-zero row). */
static void quantize_rows(const float *x, uint32_t rows, uint32_t cols, int8_t *q, float *scale)
{
    uint32_t r, c;
    for (r = 0; r < rows; ++r) {
        float m = 0.0f;
        for (c = 0; c < cols; ++c) {
            m = fabsf(x[(size_t)r * cols + c]) > m ? fabsf(x[(size_t)r * cols + c]) : m;
        }
        scale[r] = m / 127.0f;
        for (c = 0; c < cols; ++c) {
            const float v = m > 0.0f ? rintf(x[(size_t)r * cols + c] / scale[r]) : 0.0f;
            q[(size_t)r * cols + c] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : v);
        }
    }
}

/* Writes a model into b (64-byte aligned, zeroed by the caller, large enough); returns its size.
 * Any S8 tensor makes it an int8 file (quant_version 1). */
static uint32_t write_model(uint8_t *b, uint32_t input_kind, uint32_t input_dim,
                            const layer_spec *layers, const uint32_t *tensors_per_layer,
                            uint32_t n_layers, const tensor_spec *tensors, uint32_t n_tensors)
{
    uint32_t layer_off = 128, tensor_off = layer_off + 64 * n_layers;
    uint32_t data_off = (tensor_off + 64 * n_tensors + 63) & ~63u, pos = 0, k, first = 0;
    uint32_t quantized = 0;
    for (k = 0; k < n_layers; ++k) {
        uint8_t *r = b + layer_off + 64 * k;
        put16(r + 0, layers[k].op);
        put16(r + 2, layers[k].flags);
        put32(r + 4, layers[k].in);
        put32(r + 8, layers[k].out);
        put32(r + 12, first);
        put32(r + 16, tensors_per_layer[k]);
        r[20] = layers[k].act;
        r[21] = layers[k].ract;
        put32(r + 24, layers[k].param0);
        first += tensors_per_layer[k];
    }
    for (k = 0; k < n_tensors; ++k) {
        uint8_t *r = b + tensor_off + 64 * k;
        const uint32_t rows = tensors[k].dims[0];
        uint32_t n = rows * (tensors[k].rank == 2 ? tensors[k].dims[1] : 1);
        r[0] = EGRU_DTYPE_F32;
        r[2] = tensors[k].rank;
        r[3] = tensors[k].role;
        put32(r + 4, tensors[k].dims[0]);
        if (tensors[k].rank == 2) {
            put32(r + 8, tensors[k].dims[1]);
        }
        put32(r + 20, pos);
        if (tensors[k].s8) {
            r[0] = EGRU_DTYPE_S8;
            r[1] = EGRU_QUANT_SYMMETRIC_PER_ROW;
            put32(r + 24, n);
            quantize_rows(tensors[k].data, rows, n / rows, (int8_t *)(void *)(b + data_off + pos),
                          (float *)(void *)(b + data_off + ((pos + n + 63) & ~63u)));
            pos = (pos + n + 63) & ~63u;
            put32(r + 28, pos);
            put32(r + 32, rows);
            pos = (pos + 4 * rows + 63) & ~63u;
            quantized = 1;
            continue;
        }
        put32(r + 24, 4 * n);
        memcpy(b + data_off + pos, tensors[k].data, 4 * n); /* the test host is little-endian */
        pos = (pos + 4 * n + 63) & ~63u;
    }
    memcpy(b, "EGRU", 4);
    put16(b + 4, 1);
    put32(b + 8, 128);
    put32(b + 16, 64);
    put32(b + 20, data_off + pos);
    put32(b + 24, n_layers);
    put32(b + 28, 64);
    put32(b + 32, layer_off);
    put32(b + 36, n_tensors);
    put32(b + 40, 64);
    put32(b + 44, tensor_off);
    put32(b + 48, data_off);
    put32(b + 52, pos);
    put32(b + 64, input_kind);
    put32(b + 68, input_dim);
    put32(b + 72, layers[n_layers - 1].out);
    if (quantized) {
        put16(b + EGRU_HDR_VERSION_MINOR, 2);
        put32(b + EGRU_HDR_QUANT_VERSION, EGRU_QUANT_VERSION);
    }
    refresh_crcs(b, data_off + pos);
    return data_off + pos;
}

/* ------------------------------------------------------------------------------------------ */
/* Test models: features (T, 3) -> GRU(4) -> Dense(2, softmax); tokens -> Embedding(10, 3) ->  */
/* GRU(4, return_sequences) -> Dense(2, sigmoid) per step.                                     */

enum { I = 3, H = 4, O = 2, V = 10 };
static float w_gru[3 * H * I], r_gru[3 * H * H], bi_gru[3 * H], br_gru[3 * H];
static float w_dense[O * H], b_dense[O], table[V * I];
static unsigned long rng_state = 12345;

static float uniform(float scale) /* in [-scale, scale) */
{
    rng_state = rng_state * 1103515245ul + 12345ul;
    return scale * ((float)((rng_state >> 8) & 0xFFFFu) / 32768.0f - 1.0f);
}

static void fill(float *v, size_t n, float scale)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        v[i] = uniform(scale);
    }
}

static uint32_t build_features_model(uint8_t *b, int reset_after)
{
    layer_spec layers[2] = {{EGRU_OP_GRU, 0, I, H, EGRU_ACT_TANH, EGRU_ACT_SIGMOID, 0},
                            {EGRU_OP_DENSE, 0, H, O, EGRU_ACT_SOFTMAX, 0, 0}};
    uint32_t counts[2] = {4, 2};
    tensor_spec t[6] = {{EGRU_ROLE_KERNEL, 2, {3 * H, I}, w_gru, 0},
                        {EGRU_ROLE_RECURRENT, 2, {3 * H, H}, r_gru, 0},
                        {EGRU_ROLE_INPUT_BIAS, 1, {3 * H, 0}, bi_gru, 0},
                        {EGRU_ROLE_RECURRENT_BIAS, 1, {3 * H, 0}, br_gru, 0},
                        {EGRU_ROLE_KERNEL, 2, {O, H}, w_dense, 0},
                        {EGRU_ROLE_BIAS, 1, {O, 0}, b_dense, 0}};
    layers[0].flags = (uint16_t)(reset_after ? EGRU_FLAG_RESET_AFTER : 0);
    memset(b, 0, MAX_BLOB);
    return write_model(b, EGRU_INPUT_FEATURES, I, layers, counts, 2, t, 6);
}

static uint32_t build_tokens_model(uint8_t *b)
{
    layer_spec layers[3] = {{EGRU_OP_EMBEDDING, 0, V, I, 0, 0, 0},
                            {EGRU_OP_GRU, EGRU_FLAG_RESET_AFTER | EGRU_FLAG_RETURN_SEQUENCES, I, H,
                             EGRU_ACT_TANH, EGRU_ACT_SIGMOID, 0},
                            {EGRU_OP_DENSE, 0, H, O, EGRU_ACT_SIGMOID, 0, 0}};
    uint32_t counts[3] = {1, 4, 2};
    tensor_spec t[7] = {{EGRU_ROLE_TABLE, 2, {V, I}, table, 0},
                        {EGRU_ROLE_KERNEL, 2, {3 * H, I}, w_gru, 0},
                        {EGRU_ROLE_RECURRENT, 2, {3 * H, H}, r_gru, 0},
                        {EGRU_ROLE_INPUT_BIAS, 1, {3 * H, 0}, bi_gru, 0},
                        {EGRU_ROLE_RECURRENT_BIAS, 1, {3 * H, 0}, br_gru, 0},
                        {EGRU_ROLE_KERNEL, 2, {O, H}, w_dense, 0},
                        {EGRU_ROLE_BIAS, 1, {O, 0}, b_dense, 0}};
    memset(b, 0, MAX_BLOB);
    return write_model(b, EGRU_INPUT_TOKENS, V, layers, counts, 3, t, 7);
}

/* ------------------------------------------------------------------------------------------ */
/* Double-precision model, from the GRU equations (docs/format.md).                            */

static double sigm(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static void gru_step_f64(const double *x, double *h, int reset_after)
{
    double z[H], r[H], hh[H], rh[H];
    int j, c;
    for (j = 0; j < H; ++j) {
        double az = bi_gru[j] + br_gru[j], ar = bi_gru[H + j] + br_gru[H + j];
        for (c = 0; c < I; ++c) {
            az += w_gru[j * I + c] * x[c];
            ar += w_gru[(H + j) * I + c] * x[c];
        }
        for (c = 0; c < H; ++c) {
            az += r_gru[j * H + c] * h[c];
            ar += r_gru[(H + j) * H + c] * h[c];
        }
        z[j] = sigm(az);
        r[j] = sigm(ar);
        rh[j] = r[j] * h[j];
    }
    for (j = 0; j < H; ++j) {
        double xh = bi_gru[2 * H + j], uh = br_gru[2 * H + j];
        for (c = 0; c < I; ++c) {
            xh += w_gru[(2 * H + j) * I + c] * x[c];
        }
        for (c = 0; c < H; ++c) {
            uh += r_gru[(2 * H + j) * H + c] * (reset_after ? h[c] : rh[c]);
        }
        hh[j] = tanh(reset_after ? xh + r[j] * uh : xh + uh);
    }
    for (j = 0; j < H; ++j) {
        h[j] = z[j] * h[j] + (1.0 - z[j]) * hh[j];
    }
}

static void dense_f64(const double *h, double *y, int softmax)
{
    int o, c;
    double sum = 0.0;
    for (o = 0; o < O; ++o) {
        y[o] = b_dense[o];
        for (c = 0; c < H; ++c) {
            y[o] += w_dense[o * H + c] * h[c];
        }
    }
    for (o = 0; o < O; ++o) {
        y[o] = softmax ? exp(y[o]) : sigm(y[o]);
        sum += y[o];
    }
    for (o = 0; softmax && o < O; ++o) {
        y[o] /= sum;
    }
}

/* ------------------------------------------------------------------------------------------ */

static unsigned char blob_storage[MAX_BLOB + 64];
static unsigned char copy_storage[MAX_BLOB + 64];
static unsigned char arena_storage[1 << 16];

static uint8_t *aligned(unsigned char *p)
{
    return (uint8_t *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

static void test_crc_and_status(void)
{
    int code, other;
    CHECK(egru_crc32(0, "123456789", 9) == 0xCBF43926u); /* the standard check value */
    CHECK(egru_crc32(egru_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u);
    for (code = 0; code < EGRU_STATUS_COUNT; ++code) {
        const char *msg = egru_status_str((egru_status_t)-code);
        CHECK(msg != NULL && strcmp(msg, "unknown status") != 0);
        for (other = 0; other < code; ++other) {
            CHECK(strcmp(msg, egru_status_str((egru_status_t)-other)) != 0);
        }
    }
    CHECK(strcmp(egru_status_str((egru_status_t)-EGRU_STATUS_COUNT), "unknown status") == 0);
    CHECK(strcmp(egru_status_str((egru_status_t)1), "unknown status") == 0);
    /* Regression: the range is checked before the code is negated (-INT_MIN overflows). */
    CHECK(strcmp(egru_status_str((egru_status_t)INT_MIN), "unknown status") == 0);
    CHECK(strcmp(egru_status_str((egru_status_t)INT_MAX), "unknown status") == 0);
}

/* out (batch, O) of the features model on x (batch, T, I) against the float64 model. */
static void check_features_outputs(const float *x, const float *out, int batch, int T,
                                   int reset_after)
{
    int row, t, o;
    for (row = 0; row < batch; ++row) {
        double h[H] = {0}, xs[I], y[O];
        for (t = 0; t < T; ++t) {
            for (o = 0; o < I; ++o) {
                xs[o] = x[(row * T + t) * I + o];
            }
            gru_step_f64(xs, h, reset_after);
        }
        dense_f64(h, y, 1);
        for (o = 0; o < O; ++o) {
            CHECK(fabs(out[row * O + o] - y[o]) <= FP32_TOL);
        }
    }
}

static void test_features_forward(int reset_after)
{
    enum { B = 3, T = 7 };
    uint8_t *b = aligned(blob_storage);
    uint32_t size = build_features_model(b, reset_after);
    egru_model_t m;
    float x[B * T * I], out[B * O];
    size_t need = 0, count = 0;

    fill(x, B * T * I, 1.0f);
    CHECK(egru_model_init(&m, b, size) == EGRU_OK);
    if (reset_after) {
        printf("kernel set chosen by auto: %s\n", egru_model_kernels_name(&m));
    }
    CHECK(m.output_dim == O && m.output_is_sequence == 0 && m.max_units == H);
    CHECK(m.param_count == 3 * H * I + 3 * H * H + 6 * H + O * H + O);
    CHECK(egru_arena_size(&m, B, T, &need) == EGRU_OK && need <= sizeof arena_storage);
    CHECK(egru_output_count(&m, B, T, &count) == EGRU_OK && count == B * O);
    CHECK(egru_forward_features(&m, x, B, T, out, B * O, arena_storage, need) == EGRU_OK);
    check_features_outputs(x, out, B, T, reset_after);
    /* The arena may be reused, unaligned, and exactly as large as asked. */
    CHECK(egru_forward_features(&m, x, B, T, out, B * O, arena_storage + 1, need) == EGRU_OK);
    /* Smaller arenas run chunked plans, down to the low-memory plan, with the same output bit
     * for bit; below egru_arena_size_min nothing runs. */
    {
        float fast[B * O], low[B * O];
        size_t min = 0, sizes[3];
        const uint32_t lens[3] = {10, 200, 5000};
        int i;
        memcpy(fast, out, sizeof fast);
        CHECK(egru_arena_size_min(&m, B, T, &min) == EGRU_OK && min < need);
        CHECK(egru_forward_features(&m, x, B, T, low, B * O, arena_storage, need - 1) == EGRU_OK);
        CHECK(memcmp(low, fast, sizeof fast) == 0);
        memset(low, 0, sizeof low);
        CHECK(egru_forward_features(&m, x, B, T, low, B * O, arena_storage + 3, min) == EGRU_OK);
        CHECK(memcmp(low, fast, sizeof fast) == 0);
        CHECK(egru_forward_features(&m, x, B, T, out, B * O, arena_storage, min - 1) ==
              EGRU_ERR_ARENA_TOO_SMALL);
        /* A step-wise chain: the low-memory arena depends neither on T nor on the batch. */
        for (i = 0; i < 3; ++i) {
            CHECK(egru_arena_size_min(&m, 1, lens[i], &sizes[i]) == EGRU_OK);
        }
        CHECK(sizes[0] == sizes[1] && sizes[1] == sizes[2] && sizes[0] == min);
        CHECK(egru_arena_size_min(&m, 1000, 1u << 30, &sizes[0]) == EGRU_OK && sizes[0] == min);
        CHECK(egru_arena_size_min(&m, B, 0, &sizes[0]) == EGRU_ERR_BAD_SHAPE);
        CHECK(egru_arena_size_min(NULL, B, T, &sizes[0]) == EGRU_ERR_NULL_ARG);
        CHECK(egru_arena_size_min(&m, B, T, NULL) == EGRU_ERR_NULL_ARG);
    }
    /* Error paths. */
    CHECK(egru_forward_features(&m, x, B, T, out, B * O - 1, arena_storage, need) ==
          EGRU_ERR_OUTPUT_SIZE);
    CHECK(egru_forward_features(&m, x, B, 0, out, 0, arena_storage, need) == EGRU_ERR_BAD_SHAPE);
    /* A block of 16 rows of 2^28 steps would count 2^32 steps: refused before any planning. */
    CHECK(egru_arena_size(&m, 16, 1u << 28, &need) == EGRU_ERR_BAD_SHAPE);
    CHECK(egru_arena_size(&m, B, T, &need) == EGRU_OK);
    CHECK(egru_forward_features(&m, NULL, B, T, out, B * O, arena_storage, need) ==
          EGRU_ERR_NULL_ARG);
    CHECK(egru_forward_tokens(&m, (const int32_t *)(const void *)x, B, T, out, B * O, arena_storage,
                              need) == EGRU_ERR_WRONG_INPUT);
    x[5] = (float)NAN;
    out[0] = 42.0f;
    CHECK(egru_forward_features(&m, x, B, T, out, B * O, arena_storage, need) ==
          EGRU_ERR_NONFINITE);
    CHECK(out[0] == 42.0f); /* nothing written on error */
    x[5] = (float)INFINITY;
    CHECK(egru_forward_features(&m, x, B, T, out, B * O, arena_storage, need) ==
          EGRU_ERR_NONFINITE);
}

static void test_tokens_forward(void)
{
    enum { B = 2, T = 5 };
    uint8_t *b = aligned(blob_storage);
    uint32_t size = build_tokens_model(b);
    egru_model_t m;
    egru_layer_t layer;
    int32_t ids[B * T] = {1, 2, 3, 4, 9, 0, 0, 7, 5, 5};
    float out[B * T * O];
    size_t need = 0;
    int row, t, o;

    fill(table, V * I, 1.0f);
    size = build_tokens_model(b);
    CHECK(egru_model_init(&m, b, size) == EGRU_OK);
    CHECK(m.output_is_sequence == 1 && m.input_kind == EGRU_INPUT_TOKENS);
    CHECK(egru_model_layer(&m, 1, &layer) == EGRU_OK && layer.op == EGRU_OP_GRU &&
          layer.macs_per_step == 3 * H * I + 3 * H * H);
    CHECK(egru_model_layer(&m, 3, &layer) == EGRU_ERR_INDEX);
    CHECK(egru_arena_size(&m, B, T, &need) == EGRU_OK && need <= sizeof arena_storage);
    CHECK(egru_forward_tokens(&m, ids, B, T, out, B * T * O, arena_storage, need) == EGRU_OK);
    for (row = 0; row < B; ++row) {
        double h[H] = {0}, xs[I], y[O];
        for (t = 0; t < T; ++t) {
            for (o = 0; o < I; ++o) {
                xs[o] = table[ids[row * T + t] * I + o];
            }
            gru_step_f64(xs, h, 1);
            dense_f64(h, y, 0);
            for (o = 0; o < O; ++o) {
                CHECK(fabs(out[(row * T + t) * O + o] - y[o]) <= FP32_TOL);
            }
        }
    }
    ids[3] = V;
    CHECK(egru_forward_tokens(&m, ids, B, T, out, B * T * O, arena_storage, need) ==
          EGRU_ERR_TOKEN_RANGE);
    ids[3] = -1;
    CHECK(egru_forward_tokens(&m, ids, B, T, out, B * T * O, arena_storage, need) ==
          EGRU_ERR_TOKEN_RANGE);
}

/* egru_model_fold: lookups of precomputed projections give the same numbers as the products
 * (bit-equal with the reference kernels: the same sums in the same order). */
static void test_fold(void)
{
    enum { B = 2, T = 5 };
    static float lut[V * 3 * H];
    uint8_t *b = aligned(blob_storage);
    uint32_t size = build_tokens_model(b);
    egru_model_t plain, folded;
    int32_t ids[B * T] = {1, 2, 3, 4, 9, 0, 0, 7, 5, 5};
    float out[B * T * O], out_folded[B * T * O];
    size_t need = 0, fold_bytes = 0;
    egru_layer_t layer;
    CHECK(egru_model_init(&plain, b, size) == EGRU_OK);
    CHECK(egru_model_use_kernels(&plain, EGRU_KERNELS_REF) == EGRU_OK);
    folded = plain;
    CHECK(egru_model_fold_size(&folded, &fold_bytes) == EGRU_OK && fold_bytes == sizeof lut);
    CHECK(egru_model_fold(&folded, lut, fold_bytes - 1) == EGRU_ERR_ARENA_TOO_SMALL);
    CHECK(egru_model_fold(&folded, lut, fold_bytes) == EGRU_OK);
    CHECK(egru_model_fold_size(&folded, &fold_bytes) == EGRU_ERR_UNSUPPORTED); /* only once */
    CHECK(egru_model_layer(&folded, 1, &layer) == EGRU_OK && layer.input_projected == 1 &&
          layer.input_dim == 3 * H);
    CHECK(egru_arena_size(&folded, B, T, &need) == EGRU_OK && need <= sizeof arena_storage);
    CHECK(egru_forward_tokens(&plain, ids, B, T, out, B * T * O, arena_storage, need) == EGRU_OK);
    CHECK(egru_forward_tokens(&folded, ids, B, T, out_folded, B * T * O, arena_storage, need) ==
          EGRU_OK);
    CHECK(memcmp(out, out_folded, sizeof out) == 0);
    {
        uint32_t features_size = build_features_model(b, 1);
        CHECK(egru_model_init(&plain, b, features_size) == EGRU_OK);
        CHECK(egru_model_fold_size(&plain, &fold_bytes) == EGRU_ERR_UNSUPPORTED);
    }
}

/* Every single-byte corruption and every truncation is rejected; none crashes. */
static void test_corruption(void)
{
    uint8_t *b = aligned(blob_storage), *c = aligned(copy_storage);
    uint32_t size = build_tokens_model(b), i, rejected = 0, truncated = 0;
    egru_model_t m;
    for (i = 0; i < size; ++i) {
        memcpy(c, b, size);
        c[i] ^= 0x5A;
        rejected += egru_model_init(&m, c, size) != EGRU_OK;
        c[i] = (uint8_t)(b[i] + 1);
        rejected += egru_model_init(&m, c, size) != EGRU_OK;
    }
    CHECK(rejected == 2 * size);
    for (i = 0; i < size; ++i) {
        truncated += egru_model_init(&m, b, i) != EGRU_OK;
    }
    CHECK(truncated == size);
    CHECK(egru_model_init(&m, b, size + 64) == EGRU_OK); /* a longer buffer is fine */
    memcpy(copy_storage + 1, b, size);
    CHECK(egru_model_init(&m, copy_storage + 1, size) == EGRU_ERR_MISALIGNED);
    CHECK(egru_model_init(&m, NULL, size) == EGRU_ERR_NULL_ARG);
    CHECK(egru_model_init(NULL, b, size) == EGRU_ERR_NULL_ARG);
}

/* Corrupt header and record fields and fix the CRCs, so that the structural checks, not the
 * checksums, must catch them. Any outcome but a crash or an out-of-bounds access (the sanitizer
 * build checks that) is acceptable; a model that is accepted must also run. */
static void test_structural_fuzz(void)
{
    uint8_t *b = aligned(blob_storage), *c = aligned(copy_storage);
    uint32_t size = build_tokens_model(b), round, accepted = 0, rejected = 0;
    int32_t ids[4] = {1, 2, 3, 4};
    float out[4 * 64];
    egru_model_t m;
    for (round = 0; round < 20000; ++round) {
        uint32_t pos, n_bytes = 1 + (round % 4), k;
        size_t need, count;
        memcpy(c, b, size);
        /* Mostly the header and tables (the first 128 + 3*64 + 7*64 bytes), some data. */
        rng_state = rng_state * 1103515245ul + 12345ul;
        pos = (uint32_t)((rng_state >> 8) % (round % 8 ? 768u : size));
        for (k = 0; k < n_bytes && pos + k < size; ++k) {
            rng_state = rng_state * 1103515245ul + 12345ul;
            c[pos + k] = (uint8_t)(rng_state >> 16);
        }
        if (pos >= 120 && pos < 128) {
            continue; /* the CRC fields themselves: refresh_crcs would undo the change */
        }
        refresh_crcs(c, size);
        if (egru_model_init(&m, c, size) != EGRU_OK) {
            ++rejected;
            continue;
        }
        ++accepted;
        if (egru_arena_size(&m, 1, 4, &need) == EGRU_OK && need <= sizeof arena_storage &&
            egru_output_count(&m, 1, 4, &count) == EGRU_OK && count <= 4 * 64) {
            (void)egru_forward_tokens(&m, ids, 1, 4, out, count, arena_storage, need);
        }
    }
    CHECK(rejected > 0);
    printf("structural fuzz: %u accepted, %u rejected\n", accepted, rejected);
}

/* egru_model_pack: the products on transposed copies give the same numbers as on the blob's
 * weights (bit-equal with the reference kernels, whose sums run in the same order in both
 * layouts; within FP32_TOL of the float64 model with every kernel set), for a batch larger than
 * one block of rows, with both reset_after modes; the blob is not touched. */
static void test_pack(void)
{
    enum { B = 19, T = 6 };
    static unsigned char pack_storage[8192];
    static float x[B * T * I], out[B * O], out_packed[B * T * O];
    const egru_kernels_t sets[] = {EGRU_KERNELS_REF, EGRU_KERNELS_AVX2, EGRU_KERNELS_NEON,
                                   EGRU_KERNELS_AVX512};
    uint8_t *b = aligned(blob_storage);
    egru_model_t plain, packed;
    egru_layer_t layer;
    size_t need = 0, pack_bytes = 0;
    uint32_t k, crc;
    int reset_after;
    fill(x, B * T * I, 1.0f);
    for (reset_after = 0; reset_after < 2; ++reset_after) {
        uint32_t size = build_features_model(b, reset_after);
        crc = egru_crc32(0, b, size);
        for (k = 0; k < sizeof sets / sizeof *sets; ++k) {
            if (!egru_kernels_available(sets[k])) {
                continue;
            }
            CHECK(egru_model_init(&plain, b, size) == EGRU_OK);
            CHECK(egru_model_use_kernels(&plain, sets[k]) == EGRU_OK);
            packed = plain;
            CHECK(egru_model_pack_size(&packed, &pack_bytes) == EGRU_OK &&
                  pack_bytes <= sizeof pack_storage);
            CHECK(egru_model_pack(&packed, pack_storage + 3, pack_bytes - 1) ==
                  EGRU_ERR_ARENA_TOO_SMALL);
            CHECK(egru_model_pack(&packed, pack_storage + 3, pack_bytes) == EGRU_OK);
            CHECK(egru_model_pack_size(&packed, &pack_bytes) == EGRU_ERR_UNSUPPORTED); /* once */
            CHECK(egru_model_layer(&packed, 0, &layer) == EGRU_OK && layer.rnn[0].kernel_t &&
                  layer.rnn[0].recurrent_t && !layer.rnn[1].kernel_t);
            CHECK(egru_model_layer(&packed, 1, &layer) == EGRU_OK && !layer.rnn[0].recurrent_t);
            CHECK(egru_arena_size(&packed, B, T, &need) == EGRU_OK && need <= sizeof arena_storage);
            CHECK(egru_forward_features(&plain, x, B, T, out, B * O, arena_storage, need) ==
                  EGRU_OK);
            CHECK(egru_forward_features(&packed, x, B, T, out_packed, B * O, arena_storage, need) ==
                  EGRU_OK);
            if (sets[k] == EGRU_KERNELS_REF) {
                CHECK(memcmp(out, out_packed, sizeof out) == 0);
            }
            check_features_outputs(x, out_packed, B, T, reset_after);
        }
        CHECK(egru_crc32(0, b, size) == crc);
    }
    CHECK(egru_model_pack_size(NULL, &pack_bytes) == EGRU_ERR_NULL_ARG);
    CHECK(egru_model_pack(&plain, NULL, 64) == EGRU_ERR_NULL_ARG);
}

/* egru_model_cache_layers: a model with the cache gives the same layers and the same bits as one
 * without, after each call that changes what decoding gives (kernels, fold, pack). */
static void test_layer_cache(void)
{
    enum { B = 3, T = 7 };
    static unsigned char cache_storage[4096], pack_a[8192], pack_b[8192];
    static float lut_a[V * 3 * H], lut_b[V * 3 * H];
    static float x[B * T * I], out_a[B * T * O], out_b[B * T * O];
    const egru_kernels_t sets[] = {EGRU_KERNELS_REF, EGRU_KERNELS_AVX2, EGRU_KERNELS_NEON,
                                   EGRU_KERNELS_AVX512};
    int32_t ids[B * T];
    uint8_t *b = aligned(blob_storage);
    egru_model_t plain, cached, fresh;
    egru_layer_t la, lb;
    size_t need = 0, bytes = 0, n = 0;
    uint32_t k, kind, i;
    fill(x, B * T * I, 1.0f);
    for (i = 0; i < B * T; ++i) {
        ids[i] = (int32_t)((i * 7u + 3u) % V);
    }
    if (!EGRU_CFG_LAYER_CACHE) { /* left out of this build */
        CHECK(egru_model_init(&cached, b, build_tokens_model(b)) == EGRU_OK);
        CHECK(egru_model_cache_layers_size(&cached, &bytes) == EGRU_ERR_UNSUPPORTED);
        CHECK(egru_model_cache_layers(&cached, cache_storage, sizeof cache_storage) ==
              EGRU_ERR_UNSUPPORTED);
        return;
    }
    for (kind = 0; kind < 3; ++kind) { /* tokens; features reset_after; features reset before */
        const uint32_t size =
            kind == 0 ? build_tokens_model(b) : build_features_model(b, kind == 1);
        for (k = 0; k < sizeof sets / sizeof *sets; ++k) {
            uint32_t step, j;
            if (!egru_kernels_available(sets[k])) {
                continue;
            }
            CHECK(egru_model_init(&plain, b, size) == EGRU_OK);
            CHECK(egru_model_init(&cached, b, size) == EGRU_OK);
            CHECK(egru_model_cache_layers_size(&cached, &bytes) == EGRU_OK &&
                  bytes <= sizeof cache_storage - 3);
            CHECK(egru_model_cache_layers(&cached, cache_storage + 3, bytes - 1) ==
                  EGRU_ERR_ARENA_TOO_SMALL);
            CHECK(egru_model_cache_layers(&cached, cache_storage + 3, bytes) == EGRU_OK);
            CHECK(egru_model_cache_layers_size(&cached, &bytes) == EGRU_ERR_UNSUPPORTED);
            CHECK(egru_model_cache_layers(&cached, cache_storage, sizeof cache_storage) ==
                  EGRU_ERR_UNSUPPORTED); /* once */
            /* step 0: as initialised; 1: another kernel set; 2: packed; 3: folded (tokens) */
            for (step = 0; step < 4; ++step) {
                if (step == 1) {
                    CHECK(egru_model_use_kernels(&plain, sets[k]) == EGRU_OK);
                    CHECK(egru_model_use_kernels(&cached, sets[k]) == EGRU_OK);
                } else if (step == 2) {
                    CHECK(egru_model_pack_size(&plain, &n) == EGRU_OK && n <= sizeof pack_a);
                    CHECK(egru_model_pack(&plain, pack_a, n) == EGRU_OK);
                    CHECK(egru_model_pack(&cached, pack_b, n) == EGRU_OK);
                } else if (step == 3) {
                    if (kind != 0) {
                        continue;
                    }
                    CHECK(egru_model_fold_size(&plain, &n) == EGRU_OK && n <= sizeof lut_a);
                    CHECK(egru_model_fold(&plain, lut_a, n) == EGRU_OK);
                    CHECK(egru_model_fold(&cached, lut_b, n) == EGRU_OK);
                }
                for (j = 0; j < plain.layer_count; ++j) {
                    CHECK(egru_model_layer(&plain, j, &la) == EGRU_OK);
                    CHECK(egru_model_layer(&cached, j, &lb) == EGRU_OK);
                    CHECK(la.op == lb.op && la.input_dim == lb.input_dim &&
                          la.output_dim == lb.output_dim && la.kernels == lb.kernels &&
                          la.input_projected == lb.input_projected &&
                          (la.rnn[0].recurrent_t != NULL) == (lb.rnn[0].recurrent_t != NULL));
                }
                CHECK(egru_arena_size(&cached, B, T, &need) == EGRU_OK &&
                      need <= sizeof arena_storage);
                if (kind == 0) {
                    CHECK(egru_forward_tokens(&plain, ids, B, T, out_a, B * T * O, arena_storage,
                                              need) == EGRU_OK);
                    CHECK(egru_forward_tokens(&cached, ids, B, T, out_b, B * T * O, arena_storage,
                                              need) == EGRU_OK);
                    CHECK(memcmp(out_a, out_b, B * T * O * sizeof(float)) == 0);
                } else {
                    CHECK(egru_forward_features(&plain, x, B, T, out_a, B * O, arena_storage,
                                                need) == EGRU_OK);
                    CHECK(egru_forward_features(&cached, x, B, T, out_b, B * O, arena_storage,
                                                need) == EGRU_OK);
                    CHECK(memcmp(out_a, out_b, B * O * sizeof(float)) == 0);
                    check_features_outputs(x, out_b, B, T, kind == 1);
                }
            }
        }
    }
    memset(&fresh, 0, sizeof fresh);
    CHECK(egru_model_cache_layers_size(&fresh, &bytes) == EGRU_ERR_BAD_LAYER); /* no model */
    CHECK(egru_model_cache_layers_size(NULL, &bytes) == EGRU_ERR_NULL_ARG);
    CHECK(egru_model_cache_layers_size(&plain, NULL) == EGRU_ERR_NULL_ARG);
    CHECK(egru_model_cache_layers(&plain, NULL, 64) == EGRU_ERR_NULL_ARG);
}

/* ------------------------------------------------------------------------------------------ */
/* Hostile files (issue #10): dtype mixes, non-finite weights and parameters, int8 widths, ids  */
/* that change during a call.                                                                  */

static float w_gru_b[3 * H * I], r_gru_b[3 * H * H], w_dense2[O * 2 * H];

/* tokens -> Embedding(V, I) -> Bidirectional(GRU(H, reset_after, return_sequences), concat) ->
 * Dense(O, sigmoid). s8[k]: tensor k of (table, forward kernel, forward recurrent, backward
 * kernel, backward recurrent, dense kernel) written as int8. */
static uint32_t build_bidir_model(uint8_t *b, const uint8_t s8[6])
{
    layer_spec layers[3] = {
        {EGRU_OP_EMBEDDING, 0, V, I, 0, 0, 0},
        {EGRU_OP_GRU, EGRU_FLAG_RESET_AFTER | EGRU_FLAG_RETURN_SEQUENCES | EGRU_FLAG_BIDIRECTIONAL,
         I, 2 * H, EGRU_ACT_TANH, EGRU_ACT_SIGMOID, EGRU_MERGE_CONCAT},
        {EGRU_OP_DENSE, 0, 2 * H, O, EGRU_ACT_SIGMOID, 0, 0}};
    uint32_t counts[3] = {1, 8, 2};
    tensor_spec t[11] = {{EGRU_ROLE_TABLE, 2, {V, I}, table, s8[0]},
                         {EGRU_ROLE_KERNEL, 2, {3 * H, I}, w_gru, s8[1]},
                         {EGRU_ROLE_RECURRENT, 2, {3 * H, H}, r_gru, s8[2]},
                         {EGRU_ROLE_INPUT_BIAS, 1, {3 * H, 0}, bi_gru, 0},
                         {EGRU_ROLE_RECURRENT_BIAS, 1, {3 * H, 0}, br_gru, 0},
                         {EGRU_ROLE_KERNEL, 2, {3 * H, I}, w_gru_b, s8[3]},
                         {EGRU_ROLE_RECURRENT, 2, {3 * H, H}, r_gru_b, s8[4]},
                         {EGRU_ROLE_INPUT_BIAS, 1, {3 * H, 0}, br_gru, 0},
                         {EGRU_ROLE_RECURRENT_BIAS, 1, {3 * H, 0}, bi_gru, 0},
                         {EGRU_ROLE_KERNEL, 2, {O, 2 * H}, w_dense2, s8[5]},
                         {EGRU_ROLE_BIAS, 1, {O, 0}, b_dense, 0}};
    memset(b, 0, MAX_BLOB);
    return write_model(b, EGRU_INPUT_TOKENS, V, layers, counts, 3, t, 11);
}

/* Regression (issue #10 item 1): a Bidirectional layer whose directions differ in a matrix's
 * dtype (forward kernel F32, backward kernel S8 made egru_model_fold write past its memory) is
 * rejected; every accepted mix folds into exactly egru_model_fold_size() bytes (malloc'd, so the
 * sanitizer sees the end) and gives the unfolded model's outputs. */
static void test_dtype_mix(void)
{
    enum { B = 3, T = 4 };
    static const uint8_t rejected[][6] = {{0, 0, 0, 1, 0, 0}, {0, 1, 0, 0, 0, 0},
                                          {0, 0, 1, 0, 0, 0}, {0, 0, 0, 0, 1, 0},
                                          {1, 1, 1, 0, 1, 1}, {1, 1, 1, 1, 0, 1}};
    static const uint8_t accepted[][6] = {
        {0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0}, {0, 1, 0, 1, 0, 0}, {0, 0, 1, 0, 1, 0},
        {1, 1, 1, 1, 1, 1}, {0, 1, 1, 1, 1, 0}, {1, 0, 1, 0, 1, 1}};
    const egru_kernels_t sets[] = {EGRU_KERNELS_REF, EGRU_KERNELS_AVX2, EGRU_KERNELS_NEON,
                                   EGRU_KERNELS_AVX512};
    uint8_t *b = aligned(blob_storage);
    int32_t ids[B * T] = {1, 2, 3, 4, 9, 0, 0, 7, 5, 5, 8, 6};
    float out[B * T * O], out_folded[B * T * O];
    egru_model_t m, folded;
    size_t k, j, need = 0, fold_bytes = 0;
    for (k = 0; k < sizeof rejected / sizeof *rejected; ++k) {
        const uint32_t size = build_bidir_model(b, rejected[k]);
        CHECK(egru_model_init(&m, b, size) == EGRU_ERR_BAD_LAYER);
        if (egru_model_fold_size(&m, &fold_bytes) == EGRU_OK) { /* only before the fix */
            void *mem = malloc(fold_bytes);
            (void)egru_model_fold(&m, mem, fold_bytes); /* wrote past mem: a heap overflow */
            free(mem);
        }
    }
    for (k = 0; k < sizeof accepted / sizeof *accepted; ++k) {
        const uint32_t size = build_bidir_model(b, accepted[k]);
        const int scratch = accepted[k][0] || accepted[k][1] || accepted[k][3];
        CHECK(egru_model_init(&m, b, size) == EGRU_OK);
        CHECK(egru_model_fold_size(&m, &fold_bytes) == EGRU_OK);
        /* The table of projections (vocab, 2 * 3H), plus one int8 row of scratch when a product
         * or the table is int8: I floats and I bytes rounded up to 4. */
        CHECK(fold_bytes ==
              V * 6 * H * sizeof(float) + (scratch ? I * sizeof(float) + ((I + 3u) & ~3u) : 0u));
        for (j = 0; j < sizeof sets / sizeof *sets; ++j) {
            void *mem;
            if (!egru_kernels_available(sets[j])) {
                continue;
            }
            CHECK(egru_model_use_kernels(&m, sets[j]) == EGRU_OK);
            folded = m;
            mem = malloc(fold_bytes);
            CHECK(mem != NULL && egru_model_fold(&folded, mem, fold_bytes) == EGRU_OK);
            CHECK(egru_arena_size(&folded, B, T, &need) == EGRU_OK && need <= sizeof arena_storage);
            CHECK(egru_forward_tokens(&m, ids, B, T, out, B * T * O, arena_storage, need) ==
                  EGRU_OK);
            CHECK(egru_forward_tokens(&folded, ids, B, T, out_folded, B * T * O, arena_storage,
                                      need) == EGRU_OK);
            if (sets[j] == EGRU_KERNELS_REF) {
                CHECK(memcmp(out, out_folded, sizeof out) == 0); /* the same sums, same order */
            } else {
                size_t e;
                for (e = 0; e < (size_t)B * T * O; ++e) {
                    CHECK(fabsf(out[e] - out_folded[e]) <= FP32_TOL);
                }
            }
            free(mem);
        }
    }
}

/* Data of tensor k of a file written by write_model. */
static uint8_t *tensor_data(uint8_t *b, uint32_t k)
{
    const uint8_t *r = b + get32(b + EGRU_HDR_TENSOR_TABLE_OFFSET) + 64 * k;
    return b + get32(b + EGRU_HDR_DATA_OFFSET) + get32(r + EGRU_TNS_DATA_OFFSET);
}

/* Regression (issue #10 item 3): a NaN or infinite float32 weight anywhere (here: the GRU's
 * recurrent bias, the table of a float and of an int8 model's Dense bias) is EGRU_ERR_BAD_TENSOR
 * at egru_model_init; a large finite one is accepted. Also an S8 scale table placed outside the
 * data section (checked before any pointer to it is formed). */
static void test_nonfinite_weights(void)
{
    static const uint32_t bad[] = {0x7FC00000u, 0xFFC00001u, 0x7F800000u, 0xFF800000u};
    static const uint8_t int8_table[6] = {1, 0, 0, 0, 0, 0};
    const float big = 3e38f;
    uint8_t *b = aligned(blob_storage);
    egru_model_t m;
    uint32_t size, k;
    for (k = 0; k < sizeof bad / sizeof *bad; ++k) {
        size = build_tokens_model(b);
        memcpy(tensor_data(b, 4) + 4 * 5, &bad[k], 4); /* recurrent bias [5] */
        refresh_crcs(b, size);
        CHECK(egru_model_init(&m, b, size) == EGRU_ERR_BAD_TENSOR);
        size = build_tokens_model(b);
        memcpy(tensor_data(b, 0) + 4 * (V * I - 1), &bad[k], 4); /* the table's last value */
        refresh_crcs(b, size);
        CHECK(egru_model_init(&m, b, size) == EGRU_ERR_BAD_TENSOR);
        size = build_bidir_model(b, int8_table);
        memcpy(tensor_data(b, 10), &bad[k], 4); /* dense bias [0] of an int8 file */
        refresh_crcs(b, size);
        CHECK(egru_model_init(&m, b, size) == EGRU_ERR_BAD_TENSOR);
    }
    size = build_tokens_model(b);
    memcpy(tensor_data(b, 4), &big, 4);
    refresh_crcs(b, size);
    CHECK(egru_model_init(&m, b, size) == EGRU_OK);
    /* The int8 table's scale offset near 2^32: out of the data section, rejected. */
    size = build_bidir_model(b, int8_table);
    put32(b + get32(b + EGRU_HDR_TENSOR_TABLE_OFFSET) + EGRU_TNS_SCALE_OFFSET, 0xFFFFFFC0u);
    refresh_crcs(b, size);
    CHECK(egru_model_init(&m, b, size) == EGRU_ERR_BAD_TENSOR);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* egru_model_init's status on the features model of `layers` (with the six tensors t) after
 * setting layers[index].param0 to `value`. */
static egru_status_t init_with_param0(layer_spec *layers, uint32_t index, uint32_t value,
                                      const uint32_t *counts, uint32_t n_layers,
                                      const tensor_spec *t)
{
    uint8_t *b = aligned(blob_storage);
    egru_model_t m;
    uint32_t size;
    layers[index].param0 = value;
    memset(b, 0, MAX_BLOB);
    size = write_model(b, EGRU_INPUT_FEATURES, I, layers, counts, n_layers, t, 6);
    return egru_model_init(&m, b, size);
}

/* Float layer parameters (issue #10 item 5): LayerNorm epsilon finite and >= 0, Masking
 * mask_value not NaN. features (T, I) -> [Masking(value) ->] GRU(H) -> LayerNorm(epsilon). */
static void test_float_params(void)
{
    static float ln_scale[H], ln_shift[H];
    static const uint32_t bad_eps[] = {0x7FC00000u, 0x7F800000u, 0xFF800000u,
                                       0xBA83126Fu /* -1e-3 */,
                                       0x80000001u /* the smallest negative */};
    const uint32_t good_eps[] = {0u, 0x80000000u /* -0.0 */, f32_bits(1e-3f), f32_bits(1e30f)};
    static const uint32_t bad_mask[] = {0x7FC00000u, 0xFFC00000u, 0x7F800001u};
    const uint32_t good_mask[] = {0u, f32_bits(-1.5f), 0x7F800000u, 0xFF800000u};
    uint32_t k, counts[3] = {4, 2, 0}, mcounts[3] = {0, 4, 2};
    layer_spec ln[2] = {{EGRU_OP_GRU, 0, I, H, EGRU_ACT_TANH, EGRU_ACT_SIGMOID, 0},
                        {EGRU_OP_LAYER_NORM, 0, H, H, 0, 0, 0}};
    layer_spec mk[3] = {{EGRU_OP_MASKING, 0, I, I, 0, 0, 0},
                        {EGRU_OP_GRU, EGRU_FLAG_MASKED, I, H, EGRU_ACT_TANH, EGRU_ACT_SIGMOID, 0},
                        {EGRU_OP_LAYER_NORM, 0, H, H, 0, 0, f32_bits(1e-3f)}};
    tensor_spec t[6] = {{EGRU_ROLE_KERNEL, 2, {3 * H, I}, w_gru, 0},
                        {EGRU_ROLE_RECURRENT, 2, {3 * H, H}, r_gru, 0},
                        {EGRU_ROLE_INPUT_BIAS, 1, {3 * H, 0}, bi_gru, 0},
                        {EGRU_ROLE_RECURRENT_BIAS, 1, {3 * H, 0}, br_gru, 0},
                        {EGRU_ROLE_SCALE, 1, {H, 0}, ln_scale, 0},
                        {EGRU_ROLE_SHIFT, 1, {H, 0}, ln_shift, 0}};
    fill(ln_scale, H, 1.0f);
    fill(ln_shift, H, 0.5f);
    for (k = 0; k < sizeof bad_eps / sizeof *bad_eps; ++k) {
        CHECK(init_with_param0(ln, 1, bad_eps[k], counts, 2, t) == EGRU_ERR_BAD_LAYER);
    }
    for (k = 0; k < sizeof good_eps / sizeof *good_eps; ++k) {
        CHECK(init_with_param0(ln, 1, good_eps[k], counts, 2, t) == EGRU_OK);
    }
    for (k = 0; k < sizeof bad_mask / sizeof *bad_mask; ++k) {
        CHECK(init_with_param0(mk, 0, bad_mask[k], mcounts, 3, t) == EGRU_ERR_BAD_LAYER);
    }
    for (k = 0; k < sizeof good_mask / sizeof *good_mask; ++k) {
        CHECK(init_with_param0(mk, 0, good_mask[k], mcounts, 3, t) == EGRU_OK);
    }
}

/* The float scaling after an exact int32 sum: (float)acc * (scale_w * scale_x), three float32
 * roundings of relative size <= 2^-24 each (docs/quantization.md). */
#define S8_SCALE_REL_TOL 4e-7

/* Regression (issue #10 item 4): an int8 product matrix wider than EGRU_S8_MAX_COLS is
 * EGRU_ERR_S8_TOO_WIDE (Dense and recurrent kernels); one exactly at the bound computes the exact
 * sum in every kernel set, bit-identically (all q = 127: the largest partial sums there are); a
 * float32 Dense of 140000 inputs in an int8 model runs (the converter writes such a matrix as
 * float32). */
static void test_s8_width(void)
{
    enum { WIDE = 140000 };
    static unsigned char big_storage[(1u << 20) + 64];
    static float ones[WIDE];
    static float one[3] = {1.0f, 1.0f, 1.0f}, zero[3] = {0.0f, 0.0f, 0.0f};
    const egru_kernels_t sets[] = {EGRU_KERNELS_REF, EGRU_KERNELS_AVX2, EGRU_KERNELS_NEON,
                                   EGRU_KERNELS_AVX512};
    uint8_t *b = aligned(big_storage);
    egru_model_t m;
    uint32_t size, k, counts[2] = {2, 2}, rcounts[1] = {3};
    size_t need = 0, count = 0;
    float out = 0.0f, first = 0.0f;
    void *arena;
    int have_first = 0;
    layer_spec dense[2] = {{EGRU_OP_DENSE, 0, EGRU_S8_MAX_COLS, 1, 0, 0, 0},
                           {EGRU_OP_DENSE, 0, 1, 1, 0, 0, 0}};
    layer_spec rnn[1] = {{EGRU_OP_SIMPLE_RNN, 0, EGRU_S8_MAX_COLS + 1, 1, EGRU_ACT_LINEAR, 0, 0}};
    tensor_spec t[4] = {{EGRU_ROLE_KERNEL, 2, {1, EGRU_S8_MAX_COLS}, ones, 1},
                        {EGRU_ROLE_BIAS, 1, {1, 0}, zero, 0},
                        {EGRU_ROLE_KERNEL, 2, {1, 1}, one, 1},
                        {EGRU_ROLE_BIAS, 1, {1, 0}, zero, 0}};
    tensor_spec rt[3] = {{EGRU_ROLE_KERNEL, 2, {1, EGRU_S8_MAX_COLS + 1}, ones, 1},
                         {EGRU_ROLE_RECURRENT, 2, {1, 1}, one, 1},
                         {EGRU_ROLE_BIAS, 1, {1, 0}, zero, 0}};
    for (k = 0; k < WIDE; ++k) {
        ones[k] = 1.0f;
    }
    arena = malloc(1u << 20);
    /* At the bound: 131072 products 127 * 127, summed exactly; the result is 131072. */
    memset(b, 0, sizeof big_storage - 64);
    size = write_model(b, EGRU_INPUT_FEATURES, EGRU_S8_MAX_COLS, dense, counts, 2, t, 4);
    CHECK(egru_model_init(&m, b, size) == EGRU_OK);
    for (k = 0; k < sizeof sets / sizeof *sets; ++k) {
        if (!egru_kernels_available(sets[k])) {
            continue;
        }
        CHECK(egru_model_use_kernels(&m, sets[k]) == EGRU_OK);
        CHECK(egru_arena_size(&m, 1, 1, &need) == EGRU_OK && need <= (1u << 20));
        CHECK(egru_forward_features(&m, ones, 1, 1, &out, 1, arena, need) == EGRU_OK);
        CHECK(fabs(out - (double)EGRU_S8_MAX_COLS) <= S8_SCALE_REL_TOL * EGRU_S8_MAX_COLS * 3);
        if (!have_first) {
            first = out;
            have_first = 1;
        }
        CHECK(memcmp(&out, &first, sizeof out) == 0); /* int8: bit-identical in every set */
    }
    /* One column more: rejected, as a Dense and as a recurrent kernel. */
    dense[0].in = t[0].dims[1] = EGRU_S8_MAX_COLS + 1;
    memset(b, 0, sizeof big_storage - 64);
    size = write_model(b, EGRU_INPUT_FEATURES, EGRU_S8_MAX_COLS + 1, dense, counts, 2, t, 4);
    CHECK(egru_model_init(&m, b, size) == EGRU_ERR_S8_TOO_WIDE);
    memset(b, 0, sizeof big_storage - 64);
    size = write_model(b, EGRU_INPUT_FEATURES, EGRU_S8_MAX_COLS + 1, rnn, rcounts, 1, rt, 3);
    CHECK(egru_model_init(&m, b, size) == EGRU_ERR_S8_TOO_WIDE);
    rt[0].s8 = 0; /* the same layer with a float32 kernel is fine */
    memset(b, 0, sizeof big_storage - 64);
    size = write_model(b, EGRU_INPUT_FEATURES, EGRU_S8_MAX_COLS + 1, rnn, rcounts, 1, rt, 3);
    CHECK(egru_model_init(&m, b, size) == EGRU_OK);
    /* The 1 x 140000 Dense on 1.0: as float32 in an int8 model it gives 140000. */
    dense[0].in = t[0].dims[1] = WIDE;
    t[0].s8 = 0;
    memset(b, 0, sizeof big_storage - 64);
    size = write_model(b, EGRU_INPUT_FEATURES, WIDE, dense, counts, 2, t, 4);
    CHECK(egru_model_init(&m, b, size) == EGRU_OK && m.quant_version == EGRU_QUANT_VERSION);
    for (k = 0; k < sizeof sets / sizeof *sets; ++k) {
        if (!egru_kernels_available(sets[k])) {
            continue;
        }
        CHECK(egru_model_use_kernels(&m, sets[k]) == EGRU_OK);
        CHECK(egru_arena_size(&m, 1, 1, &need) == EGRU_OK && need <= (1u << 20));
        CHECK(egru_output_count(&m, 1, 1, &count) == EGRU_OK && count == 1);
        CHECK(egru_forward_features(&m, ones, 1, 1, &out, 1, arena, need) == EGRU_OK);
        /* float32 sum of 140000 ones is exact (< 2^24); then the int8 Dense's scaling. */
        CHECK(fabs(out - (double)WIDE) <= S8_SCALE_REL_TOL * WIDE * 3);
    }
    free(arena);
}

/* Regression (issue #10 item 2): the Embedding checks each id where it reads it, once, so ids
 * that change after the up-front check give EGRU_ERR_TOKEN_RANGE, never an out-of-bounds read
 * (the sanitizer build checks that). Directly on the layer, float, int8 and folded; and through
 * egru_forward_tokens with ids that the call itself changes: they alias `out`, and the first
 * block of 16 rows writes its (sigmoid, in (0, 1)) outputs over the ids of row 16, which are
 * then the bits of floats, >= 2^29 as ids. */
static void test_token_reads(void)
{
    enum { B = 17, T = 5 };
    static const uint8_t int8_table[6] = {1, 0, 0, 0, 0, 0};
    static float lut[V * 3 * H];
    static const int32_t bad[] = {INT32_MAX, INT32_MIN, -1, V, V + 1};
    uint8_t *b = aligned(blob_storage);
    egru_model_t m, folded;
    egru_layer_t layer;
    float row[2][6 * H];
    uint8_t mask[2];
    size_t need = 0, fold_bytes = 0;
    uint32_t k, variant;
    for (variant = 0; variant < 3; ++variant) {
        uint32_t size = variant == 1 ? build_bidir_model(b, int8_table) : build_tokens_model(b);
        int32_t ids[2] = {V - 1, 0};
        const egru_model_t *use = &m;
        CHECK(egru_model_init(&m, b, size) == EGRU_OK);
        if (variant == 2) {
            folded = m;
            CHECK(egru_model_fold_size(&folded, &fold_bytes) == EGRU_OK &&
                  fold_bytes <= sizeof lut);
            CHECK(egru_model_fold(&folded, lut, fold_bytes) == EGRU_OK);
            use = &folded;
        }
        CHECK(egru_model_layer(use, 0, &layer) == EGRU_OK && layer.op == EGRU_OP_EMBEDDING);
        CHECK(egru_embedding_f32(&layer, ids, 2, row[0], mask) == EGRU_OK);
        if (variant == 0) {
            CHECK(memcmp(row[0], table + (V - 1) * I, I * sizeof(float)) == 0);
            CHECK(memcmp(row[0] + I, table, I * sizeof(float)) == 0);
        }
        for (k = 0; k < sizeof bad / sizeof *bad; ++k) {
            ids[1] = bad[k];
            CHECK(egru_embedding_f32(&layer, ids, 2, row[1], mask) == EGRU_ERR_TOKEN_RANGE);
            ids[0] = bad[k];
            CHECK(egru_embedding_f32(&layer, ids, 2, row[1], mask) == EGRU_ERR_TOKEN_RANGE);
            ids[0] = 1;
        }
        /* Through the forward pass: ids aliasing the output (one block of 16 rows, then 1). */
        {
            float *out = (float *)malloc((size_t)B * T * O * sizeof(float));
            int32_t *alias = (int32_t *)(void *)out;
            uint32_t i;
            for (i = 0; i < B * T; ++i) {
                alias[i] = (int32_t)(1 + i % (V - 1));
            }
            CHECK(egru_arena_size(use, B, T, &need) == EGRU_OK && need <= sizeof arena_storage);
            CHECK(egru_forward_tokens(use, alias, B, T, out, (size_t)B * T * O, arena_storage,
                                      need) == EGRU_ERR_TOKEN_RANGE);
            free(out);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Worker threads (egru_model_use_workers): a split step gives the bits of one thread.         */

/* A workers object whose run calls the tasks one after the other, last index first (any order
 * is allowed), and checks that each index runs exactly once and count fits. */
typedef struct fake_workers {
    uint32_t runs, bad;
} fake_workers_t;

static void fake_run(void *ctx, egru_task_fn task, void *arg, uint32_t count)
{
    fake_workers_t *f = (fake_workers_t *)ctx;
    uint32_t i;
    f->bad += count < 2 || count > 3;
    ++f->runs;
    for (i = count; i-- > 0;) {
        task(arg, i);
    }
}

/* 200 units: 3 workers get slices of 80, 80 and 40 units (a slice of blocks of 64 and 16), 2
 * workers 112 and 88; WG: rows for up to 4 gates (LSTM). */
enum { WI = 24, WH = 200, WT = 9, WG = 4 * WH };
static float wk[2][WG * WI], wr[2][WG * WH], wbi[2][WG], wbr[2][WG];
static float wkt[2][WI * WG], wrt[2][WH * WG];
static int8_t wk8[2][WG * WI], wr8[2][WG * WH];
static float wks[2][WG], wrs[2][WG];

static void quantize_s8_rows(const float *x, uint32_t rows, uint32_t cols, int8_t *q, float *scale)
{
    uint32_t r, c;
    for (r = 0; r < rows; ++r) {
        float m = 0.0f;
        for (c = 0; c < cols; ++c) {
            m = fabsf(x[r * cols + c]) > m ? fabsf(x[r * cols + c]) : m;
        }
        scale[r] = m / 127.0f;
        for (c = 0; c < cols; ++c) {
            q[r * cols + c] = (int8_t)lrintf(m > 0.0f ? x[r * cols + c] * 127.0f / m : 0.0f);
        }
    }
}

/* One recurrent layer run by egru_rnn_f32 (batch 1) with and without workers: the same bits. */
static void check_split_layer(egru_layer_t *layer, const float *in, const uint8_t *mask)
{
    static float out[2][WT * 2 * WH], state[2][6 * WH], scratch[2][1 << 15];
    fake_workers_t f = {0, 0};
    const egru_workers_t workers = {fake_run, &f, 3};
    const uint64_t need = egru_rnn_scratch_floats(layer, 1, WT, WT);
    int k, split;
    CHECK(need <= (1 << 15) && egru_rnn_state_floats(layer, 1) <= 6 * WH);
    for (k = 0; k < 2; ++k) {
        memset(out[k], 0, sizeof out[k]);
        memset(state[k], 0, sizeof state[k]);
        layer->workers = k ? &workers : NULL;
        egru_rnn_f32(layer, in, mask, 1, WT, WT, out[k], state[k], scratch[k]);
    }
    layer->workers = NULL;
    CHECK(memcmp(out[0], out[1], sizeof out[0]) == 0);
    CHECK(memcmp(state[0], state[1], sizeof state[0]) == 0);
    CHECK(f.bad == 0);
    /* Split: the steps (each valid step: 7 of 9 when masked) of every layer but a GRU with
     * reset_after = 0, and the projections of float kernels. */
    split =
        EGRU_CFG_WORKERS && (layer->op != EGRU_OP_GRU || (layer->flags & EGRU_FLAG_RESET_AFTER));
    CHECK((f.runs >= (mask ? 7u : WT)) == split);
    if (!split) {
        /* only the input projection, once per direction, and none for int8 kernels */
        CHECK(f.runs ==
              (!EGRU_CFG_WORKERS || layer->rnn[0].kernel_s8 ? 0u : (layer->rnn[1].bias ? 2u : 1u)));
    }
}

/* A block of WB rows (the fast plan's batch > 1): steps split by rows (GRU and SimpleRNN with
 * float recurrent weights), the same bits. */
enum { WB = 5 };
static void check_split_rows(egru_layer_t *layer, const float *in, const uint8_t *mask)
{
    static float out[2][WB * WT * 2 * WH], state[2][WB * 6 * WH], scratch[2][1 << 17];
    fake_workers_t f = {0, 0};
    const egru_workers_t workers = {fake_run, &f, 3};
    const uint64_t need = egru_rnn_scratch_floats(layer, WB, WT, WT);
    const uint32_t projections = layer->rnn[0].kernel_s8 ? 0u : layer->rnn[1].bias ? 2u : 1u;
    int k;
    CHECK(need <= (1 << 17) && egru_rnn_state_floats(layer, WB) <= WB * 6 * WH);
    for (k = 0; k < 2; ++k) {
        memset(out[k], 0, sizeof out[k]);
        memset(state[k], 0, sizeof state[k]);
        layer->workers = k ? &workers : NULL;
        egru_rnn_f32(layer, in, mask, WB, WT, WT, out[k], state[k], scratch[k]);
    }
    layer->workers = NULL;
    CHECK(memcmp(out[0], out[1], sizeof out[0]) == 0);
    CHECK(memcmp(state[0], state[1], sizeof state[0]) == 0);
    CHECK(f.bad == 0);
    CHECK((f.runs > projections) ==
          (EGRU_CFG_WORKERS && layer->op != EGRU_OP_LSTM && !layer->rnn[0].recurrent_s8));
}

static void test_workers(void)
{
    const egru_kernels_t sets[] = {EGRU_KERNELS_REF, EGRU_KERNELS_AVX2, EGRU_KERNELS_AVX512,
                                   EGRU_KERNELS_NEON, EGRU_KERNELS_CORTEX_M};
    static float in[WT * WI], in_rows[WB * WT * WI];
    uint8_t mask[WT], mask_rows[WB * WT];
    uint32_t k, d, c, r, variant;
    fake_workers_t f = {0, 0};
    egru_workers_t workers = {fake_run, &f, 2};
    egru_model_t m;
    uint8_t *b = aligned(blob_storage);
    uint32_t size = build_features_model(b, 1);

    fill(in, WT * WI, 1.0f);
    for (d = 0; d < 2; ++d) {
        fill(wk[d], WG * WI, 0.3f);
        fill(wr[d], WG * WH, 0.07f);
        fill(wbi[d], WG, 0.3f);
        fill(wbr[d], WG, 0.3f);
        quantize_s8_rows(wk[d], WG, WI, wk8[d], wks[d]);
        quantize_s8_rows(wr[d], WG, WH, wr8[d], wrs[d]);
    }
    for (k = 0; k < WT; ++k) {
        mask[k] = (uint8_t)(k % 4 != 1);
    }
    fill(in_rows, WB * WT * WI, 1.0f);
    for (k = 0; k < WB * WT; ++k) { /* row b masks steps t with (t + b) % 4 == 1; row 4: all */
        mask_rows[k] = (uint8_t)(k / WT != 4 && (k % WT + k / WT) % 4 != 1);
    }
    for (k = 0; k < sizeof sets / sizeof *sets; ++k) {
        if (!egru_kernels_available(sets[k])) {
            continue;
        }
        /* variant bits: 1 packed, 2 int8, 4 masked, 8 bidirectional (sum), 16 hard_sigmoid
         * gates (no fused GRU kernel), 32 reset_before, 64 return_sequences; 128 SimpleRNN,
         * 256 LSTM instead of GRU */
        for (variant = 0; variant < 512; ++variant) {
            egru_layer_t layer;
            const int bidir = (variant & 8) != 0, packed = (variant & 1) && !(variant & 2);
            const uint32_t G = variant & 128 ? 1u : variant & 256 ? 4u : 3u;
            if (((variant & 1) && (variant & 2)) || ((variant & 128) && (variant & 256))) {
                continue; /* int8 weights are not packed */
            }
            if ((variant & (128 | 256)) && (variant & 32)) {
                continue;
            }
            for (d = 0; d < 2; ++d) {
                for (r = 0; r < G * WH; ++r) { /* packed copies: (cols, G*H) */
                    for (c = 0; c < WI; ++c) {
                        wkt[d][c * G * WH + r] = wk[d][r * WI + c];
                    }
                    for (c = 0; c < WH; ++c) {
                        wrt[d][c * G * WH + r] = wr[d][r * WH + c];
                    }
                }
            }
            memset(&layer, 0, sizeof layer);
            layer.op = variant & 128   ? EGRU_OP_SIMPLE_RNN
                       : variant & 256 ? EGRU_OP_LSTM
                                       : EGRU_OP_GRU;
            layer.flags = (variant & 32 ? 0u : EGRU_FLAG_RESET_AFTER) |
                          (variant & 64 ? EGRU_FLAG_RETURN_SEQUENCES : 0u) |
                          (variant & 4 ? EGRU_FLAG_MASKED : 0u) |
                          (bidir ? EGRU_FLAG_BIDIRECTIONAL : 0u);
            if (layer.op != EGRU_OP_GRU) {
                layer.flags &= ~EGRU_FLAG_RESET_AFTER;
            }
            layer.params[0] = EGRU_MERGE_SUM;
            layer.input_dim = WI;
            layer.units = WH;
            layer.output_dim = WH;
            layer.activation = EGRU_ACT_TANH;
            layer.recurrent_activation = variant & 16 ? EGRU_ACT_HARD_SIGMOID : EGRU_ACT_SIGMOID;
            layer.kernels = egru_kernels_get((int)sets[k]);
            for (d = 0; d < (bidir ? 2u : 1u); ++d) {
                egru_rnn_weights_t *w = &layer.rnn[d];
                w->bias = wbi[d];
                w->recurrent_bias = layer.op == EGRU_OP_GRU ? wbr[d] : NULL;
                if (variant & 2) {
                    w->kernel_s8 = wk8[d];
                    w->recurrent_s8 = wr8[d];
                    w->kernel_scale = wks[d];
                    w->recurrent_scale = wrs[d];
                } else {
                    w->kernel = wk[d];
                    w->recurrent = wr[d];
                }
                if (packed) {
                    w->kernel_t = wkt[d];
                    w->recurrent_t = wrt[d];
                }
            }
            check_split_layer(&layer, in, variant & 4 ? mask : NULL);
            if (!(variant & 16)) { /* (half of them: the unit split covers the gate kinds) */
                check_split_rows(&layer, in_rows, variant & 4 ? mask_rows : NULL);
            }
        }
    }
    /* The public setter: NULL or count 1 is one thread; a bad object leaves the model as it
     * was; decoded layers carry the workers. */
    CHECK(egru_model_init(&m, b, size) == EGRU_OK && m.workers == NULL);
    CHECK(egru_model_use_workers(NULL, &workers) == EGRU_ERR_NULL_ARG);
    if (!EGRU_CFG_WORKERS) { /* left out of this build: refused, the model keeps one thread */
        CHECK(egru_model_use_workers(&m, &workers) == EGRU_ERR_UNSUPPORTED && m.workers == NULL);
        return;
    }
    CHECK(egru_model_use_workers(&m, &workers) == EGRU_OK && m.workers == &workers);
    {
        egru_layer_t layer;
        CHECK(egru_model_layer(&m, 0, &layer) == EGRU_OK && layer.workers == &workers);
    }
    workers.count = 0;
    CHECK(egru_model_use_workers(&m, &workers) == EGRU_ERR_BAD_SHAPE && m.workers == &workers);
    workers.count = 2;
    workers.run = NULL;
    CHECK(egru_model_use_workers(&m, &workers) == EGRU_ERR_NULL_ARG && m.workers == &workers);
    workers.run = fake_run;
    workers.count = 1;
    CHECK(egru_model_use_workers(&m, &workers) == EGRU_OK && m.workers == NULL);
    CHECK(egru_model_use_workers(&m, NULL) == EGRU_OK && m.workers == NULL);
}

int main(void)
{
    fill(w_gru, sizeof w_gru / 4, 0.5f);
    fill(r_gru, sizeof r_gru / 4, 0.5f);
    fill(bi_gru, sizeof bi_gru / 4, 0.3f);
    fill(br_gru, sizeof br_gru / 4, 0.3f);
    fill(w_dense, sizeof w_dense / 4, 0.5f);
    fill(b_dense, sizeof b_dense / 4, 0.3f);
    fill(w_gru_b, sizeof w_gru_b / 4, 0.5f);
    fill(r_gru_b, sizeof r_gru_b / 4, 0.5f);
    fill(w_dense2, sizeof w_dense2 / 4, 0.5f);
    test_crc_and_status();
    test_features_forward(1);
    test_features_forward(0);
    test_tokens_forward();
    test_fold();
    test_pack();
    test_layer_cache();
    test_corruption();
    test_structural_fuzz();
    test_dtype_mix();
    test_nonfinite_weights();
    test_float_params();
    test_s8_width();
    test_token_reads();
    test_workers();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
