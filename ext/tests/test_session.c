/*
 * test_session.c - C unit tests of streaming (egru_session_*), independent of Python.
 *
 * Models are written by a small .egru writer in this file (docs/format.md). The main property:
 * feeding a sequence one step at a time gives, at every step t, what egru_forward_*() gives for
 * the prefix of t + 1 steps (its last step for a sequence output, else the whole output); the
 * forward pass itself is tested against float64 models in test_runtime.c and tests/. The state
 * layout is checked against double-precision cells written here from the equations. int16x8
 * sessions: test_session_s16.h (against egru_forward_*_s16 on each prefix, bit for bit). Prints one
 * line per failed check and a final "N passed, N failed" line; exits non-zero on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgegru.h"
#include "egru_test.h"
#include "test_session_s16.h"

static double worst_diff; /* largest |step - forward| seen over all streaming comparisons */

/* Streaming runs the same float32 kernels as the forward pass in the same order. */
#define STEP_TOL 1e-6
/* float32 runtime vs the float64 cells below: a few terms of magnitude <= 1. */
#define FP32_TOL 1e-5

/* ------------------------------------------------------------------------------------------ */
/* A model builder and .egru writer                                                            */

#define MAX_BLOB    (1 << 16)
#define MAX_LAYERS  8
#define MAX_TENSORS 24

typedef struct {
    uint32_t op, flags, in, out, act, ract, params[4], first, count;
} layer_spec;

typedef struct {
    uint32_t role, rank, dims[3];
    const float *data;
} tensor_spec;

typedef struct {
    uint32_t kind, input_dim, width, n_layers, n_tensors;
    layer_spec layers[MAX_LAYERS];
    tensor_spec tensors[MAX_TENSORS];
} builder;

static float pool[1 << 15];
static size_t pool_used;
static unsigned long rng_state = 2024;

static float uniform(float scale) /* in [-scale, scale) */
{
    rng_state = rng_state * 1103515245ul + 12345ul;
    return scale * ((float)((rng_state >> 8) & 0xFFFFu) / 32768.0f - 1.0f);
}

static void start(builder *bd, uint32_t kind, uint32_t input_dim)
{
    memset(bd, 0, sizeof *bd);
    bd->kind = kind;
    bd->input_dim = input_dim;
    bd->width = input_dim;
}

/* A tensor of random values in [-scale, scale); d1, d2 = 0 end the shape. */
static void tensor(builder *bd, uint32_t role, uint32_t d0, uint32_t d1, uint32_t d2, float scale)
{
    tensor_spec *t = &bd->tensors[bd->n_tensors++];
    size_t n = (size_t)d0 * (d1 ? d1 : 1) * (d2 ? d2 : 1), i;
    float *data = pool + pool_used;
    t->role = role;
    t->rank = d2 ? 3u : d1 ? 2u : 1u;
    t->dims[0] = d0;
    t->dims[1] = d1;
    t->dims[2] = d2;
    for (i = 0; i < n; ++i) {
        data[i] = uniform(scale);
    }
    t->data = data;
    pool_used += n;
}

static layer_spec *layer(builder *bd, uint32_t op, uint32_t flags, uint32_t out, uint32_t act)
{
    layer_spec *l = &bd->layers[bd->n_layers++];
    l->op = op;
    l->flags = flags;
    l->in = bd->width;
    l->out = out;
    l->act = act;
    l->first = bd->n_tensors;
    bd->width = out;
    return l;
}

static void embedding(builder *bd, uint32_t dim, int mask_zero)
{
    layer(bd, EGRU_OP_EMBEDDING, mask_zero ? EGRU_FLAG_MASK_ZERO : 0u, dim, 0);
    tensor(bd, EGRU_ROLE_TABLE, bd->input_dim, dim, 0, 1.0f);
}

/* A recurrent layer (GRU, LSTM, SIMPLE_RNN); bidirectional ones concatenate. */
static void rnn(builder *bd, uint32_t op, uint32_t units, uint32_t flags)
{
    const uint32_t G = op == EGRU_OP_GRU ? 3u : op == EGRU_OP_LSTM ? 4u : 1u, in = bd->width;
    const uint32_t dirs = (flags & EGRU_FLAG_BIDIRECTIONAL) ? 2u : 1u;
    const float ks = 1.0f / sqrtf((float)in), rs = 1.0f / sqrtf((float)units);
    layer_spec *l = layer(bd, op, flags, dirs * units, EGRU_ACT_TANH);
    uint32_t d;
    l->ract = op == EGRU_OP_SIMPLE_RNN ? 0u : EGRU_ACT_SIGMOID;
    l->params[0] = dirs == 2 ? EGRU_MERGE_CONCAT : 0u;
    for (d = 0; d < dirs; ++d) {
        tensor(bd, EGRU_ROLE_KERNEL, G * units, in, 0, 1.7f * ks);
        tensor(bd, EGRU_ROLE_RECURRENT, G * units, units, 0, 1.7f * rs);
        if (op == EGRU_OP_GRU) {
            tensor(bd, EGRU_ROLE_INPUT_BIAS, G * units, 0, 0, 0.5f);
            tensor(bd, EGRU_ROLE_RECURRENT_BIAS, G * units, 0, 0, 0.5f);
        } else {
            tensor(bd, EGRU_ROLE_BIAS, G * units, 0, 0, 0.5f);
        }
    }
}

static void dense(builder *bd, uint32_t out, uint32_t act)
{
    const uint32_t in = bd->width;
    layer(bd, EGRU_OP_DENSE, EGRU_FLAG_USE_BIAS, out, act);
    tensor(bd, EGRU_ROLE_KERNEL, out, in, 0, 1.7f / sqrtf((float)in));
    tensor(bd, EGRU_ROLE_BIAS, out, 0, 0, 0.5f);
}

static void scale_shift(builder *bd, uint32_t op, uint32_t epsilon_bits)
{
    const uint32_t n = bd->width;
    layer(bd, op, 0, n, 0)->params[0] = epsilon_bits;
    tensor(bd, EGRU_ROLE_SCALE, n, 0, 0, 1.5f);
    tensor(bd, EGRU_ROLE_SHIFT, n, 0, 0, 0.5f);
}

/* A layer without tensors: Masking (params[0] = mask value bits 0: 0.0f), Activation,
 * GlobalPool (params[0] = kind), Flatten (params[0] = steps; out = steps * width). */
static void plain(builder *bd, uint32_t op, uint32_t flags, uint32_t out, uint32_t act,
                  uint32_t param)
{
    layer(bd, op, flags, out, act)->params[0] = param;
}

static void conv1d(builder *bd, uint32_t out, uint32_t ksize)
{
    const uint32_t in = bd->width;
    layer_spec *l = layer(bd, EGRU_OP_CONV1D, EGRU_FLAG_USE_BIAS, out, EGRU_ACT_RELU);
    l->params[0] = ksize;
    l->params[1] = 1;
    l->params[2] = 1;
    l->params[3] = EGRU_PADDING_CAUSAL;
    tensor(bd, EGRU_ROLE_KERNEL, out, ksize, in, 0.5f);
    tensor(bd, EGRU_ROLE_BIAS, out, 0, 0, 0.5f);
}

/* Writes the model into b (64-byte aligned, MAX_BLOB bytes); returns its size. */
static uint32_t write_model(builder *bd, uint8_t *b)
{
    uint32_t layer_off = 128, tensor_off = layer_off + 64 * bd->n_layers;
    uint32_t data_off = (tensor_off + 64 * bd->n_tensors + 63) & ~63u, pos = 0, k, d;
    memset(b, 0, MAX_BLOB);
    for (k = 0; k < bd->n_layers; ++k) {
        const layer_spec *l = &bd->layers[k];
        const uint32_t next = k + 1 < bd->n_layers ? bd->layers[k + 1].first : bd->n_tensors;
        uint8_t *r = b + layer_off + 64 * k;
        put16(r + 0, l->op);
        put16(r + 2, l->flags);
        put32(r + 4, l->in);
        put32(r + 8, l->out);
        put32(r + 12, l->first);
        put32(r + 16, next - l->first);
        r[20] = (uint8_t)l->act;
        r[21] = (uint8_t)l->ract;
        for (d = 0; d < 4; ++d) {
            put32(r + 24 + 4 * d, l->params[d]);
        }
    }
    for (k = 0; k < bd->n_tensors; ++k) {
        const tensor_spec *t = &bd->tensors[k];
        uint8_t *r = b + tensor_off + 64 * k;
        uint32_t n = 1;
        r[0] = EGRU_DTYPE_F32;
        r[2] = (uint8_t)t->rank;
        r[3] = (uint8_t)t->role;
        for (d = 0; d < t->rank; ++d) {
            put32(r + 4 + 4 * d, t->dims[d]);
            n *= t->dims[d];
        }
        put32(r + 20, pos);
        put32(r + 24, 4 * n);
        memcpy(b + data_off + pos, t->data, 4 * n); /* the test host is little-endian */
        pos = (pos + 4 * n + 63) & ~63u;
    }
    memcpy(b, "EGRU", 4);
    put16(b + 4, 1);
    put16(b + 6, 1);
    put32(b + 8, 128);
    put32(b + 16, 64);
    put32(b + 20, data_off + pos);
    put32(b + 24, bd->n_layers);
    put32(b + 28, 64);
    put32(b + 32, layer_off);
    put32(b + 36, bd->n_tensors);
    put32(b + 40, 64);
    put32(b + 44, tensor_off);
    put32(b + 48, data_off);
    put32(b + 52, pos);
    put32(b + 64, bd->kind);
    put32(b + 68, bd->input_dim);
    put32(b + 72, bd->width);
    put32(b + 120, egru_crc32(0, b + 128, data_off + pos - 128));
    put32(b + 124, egru_crc32(0, b, 124));
    return data_off + pos;
}

static unsigned char blob_storage[MAX_BLOB + 64];

/* Builds and parses the model; returns 1 on success. */
static int load(builder *bd, egru_model_t *m)
{
    uint8_t *b = (uint8_t *)(((uintptr_t)blob_storage + 63) & ~(uintptr_t)63);
    uint32_t size = write_model(bd, b);
    egru_status_t s = egru_model_init(m, b, size);
    if (s != EGRU_OK) {
        printf("model init: %s\n", egru_status_str(s));
    }
    return s == EGRU_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Inputs                                                                                      */

enum { B = 5, T = 9 };

/* Row r of a masked input is padded: post, pre, middle, none, all (as tests/ir_models.py). */
static int padded(int row, int t)
{
    switch (row % 5) {
    case 0: return t >= T / 2;
    case 1: return t < T / 3;
    case 2: return t >= T / 3 && t < T / 2;
    case 3: return 0;
    default: return 1;
    }
}

static void make_ids(const egru_model_t *m, int32_t *ids, int masked)
{
    int r, t;
    for (r = 0; r < B; ++r) {
        for (t = 0; t < T; ++t) {
            rng_state = rng_state * 1103515245ul + 12345ul;
            ids[r * T + t] = 1 + (int32_t)((rng_state >> 8) % (m->input_dim - 1));
            if (masked && padded(r, t)) {
                ids[r * T + t] = 0;
            }
        }
    }
}

static void make_x(const egru_model_t *m, float *x, int masked)
{
    const uint32_t D = m->input_dim;
    uint32_t r, t, c;
    for (r = 0; r < B; ++r) {
        for (t = 0; t < T; ++t) {
            for (c = 0; c < D; ++c) {
                x[(r * T + t) * D + c] = masked && padded((int)r, (int)t) ? 0.0f : uniform(1.5f);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Streaming vs forward on every prefix                                                        */

static unsigned char arena_storage[1 << 18];

/* Session memory of exactly `bytes` bytes from malloc, starting at `offset` bytes into the block
 * (so that any alignment is exercised and the sanitizer sees every byte past the end). */
static void *session_memory(size_t bytes, size_t offset, void **block)
{
    *block = malloc(bytes + offset);
    return (unsigned char *)*block + offset;
}

/* Streams ids or x (B rows of T steps) through a fresh session and compares every step with
 * the forward pass over the prefix. */
static void stream_matches_forward(const egru_model_t *m, const int32_t *ids, const float *x,
                                   size_t mem_offset)
{
    const uint32_t D = m->input_dim, O = m->output_dim;
    egru_session_t s;
    size_t bytes = 0, need = 0;
    void *block, *mem;
    int32_t ids_t[B], prefix_ids[B * T];
    static float x_t[B * 64], prefix_x[B * T * 64], out_t[B * 64], out_f[B * T * 64];
    uint32_t r, t, c, u;
    double diff = 0.0;

    CHECK(egru_session_size(m, B, &bytes) == EGRU_OK && bytes > 0);
    mem = session_memory(bytes, mem_offset, &block);
    CHECK(egru_session_init(&s, m, B, mem, bytes) == EGRU_OK);
    CHECK(s.batch == B && s.output_dim == O && s.model == m && s.steps == 0);
    for (t = 0; t < T; ++t) {
        const uint32_t len = t + 1, steps_out = m->output_is_sequence ? len : 1u;
        egru_status_t st;
        for (r = 0; r < B; ++r) {
            for (u = 0; u < len; ++u) {
                if (ids) {
                    prefix_ids[r * len + u] = ids[r * T + u];
                } else {
                    memcpy(prefix_x + (r * len + u) * D, x + (r * T + u) * D, D * sizeof(float));
                }
            }
            if (ids) {
                ids_t[r] = ids[r * T + t];
            } else {
                memcpy(x_t + r * D, x + (r * T + t) * D, D * sizeof(float));
            }
        }
        st = ids ? egru_session_step_tokens(&s, ids_t, out_t, (size_t)B * O)
                 : egru_session_step_features(&s, x_t, out_t, (size_t)B * O);
        CHECK(st == EGRU_OK);
        CHECK(egru_arena_size(m, B, len, &need) == EGRU_OK && need <= sizeof arena_storage);
        st = ids ? egru_forward_tokens(m, prefix_ids, B, len, out_f, (size_t)B * steps_out * O,
                                       arena_storage, need)
                 : egru_forward_features(m, prefix_x, B, len, out_f, (size_t)B * steps_out * O,
                                         arena_storage, need);
        CHECK(st == EGRU_OK);
        for (r = 0; r < B; ++r) {
            for (c = 0; c < O; ++c) {
                const float want = out_f[(r * steps_out + steps_out - 1) * O + c];
                const double d = fabs((double)out_t[r * O + c] - (double)want);
                diff = d > diff ? d : diff;
            }
        }
    }
    CHECK(s.steps == T);
    CHECK(diff <= STEP_TOL);
    worst_diff = diff > worst_diff ? diff : worst_diff;
    free(block);
}

static void check_streams(builder *bd, int masked)
{
    egru_model_t m;
    static int32_t ids[B * T];
    static float x[B * T * 64];
    if (!load(bd, &m)) {
        CHECK(0);
        return;
    }
    CHECK(egru_session_check(&m, NULL) == EGRU_OK);
    if (m.input_kind == EGRU_INPUT_TOKENS) {
        make_ids(&m, ids, masked);
        stream_matches_forward(&m, ids, NULL, 0);
        stream_matches_forward(&m, ids, NULL, 3); /* unaligned session memory */
    } else {
        make_x(&m, x, masked);
        stream_matches_forward(&m, NULL, x, 0);
        stream_matches_forward(&m, NULL, x, 7);
    }
}

static void test_streams_match_forward(void)
{
    builder bd;
    int reset_after;
    /* Features -> GRU (last state) -> Dense(softmax), both GRU flavours. */
    for (reset_after = 0; reset_after < 2; ++reset_after) {
        start(&bd, EGRU_INPUT_FEATURES, 3);
        rnn(&bd, EGRU_OP_GRU, 6, EGRU_FLAG_USE_BIAS | (reset_after ? EGRU_FLAG_RESET_AFTER : 0u));
        dense(&bd, 4, EGRU_ACT_SOFTMAX);
        check_streams(&bd, 0);
    }
    /* Tokens, Embedding(mask_zero) -> GRU(sequences, masked) -> Dense(sigmoid) per step. */
    start(&bd, EGRU_INPUT_TOKENS, 11);
    embedding(&bd, 4, 1);
    rnn(&bd, EGRU_OP_GRU, 5,
        EGRU_FLAG_USE_BIAS | EGRU_FLAG_RESET_AFTER | EGRU_FLAG_RETURN_SEQUENCES | EGRU_FLAG_MASKED);
    plain(&bd, EGRU_OP_ACTIVATION, EGRU_FLAG_MASKED, 5, EGRU_ACT_SOFTSIGN, 0);
    dense(&bd, 2, EGRU_ACT_SIGMOID);
    check_streams(&bd, 1);
    check_streams(&bd, 0);
    /* Tokens, Embedding(mask_zero) -> SimpleRNN (last state, masked) -> Dense. */
    start(&bd, EGRU_INPUT_TOKENS, 9);
    embedding(&bd, 3, 1);
    rnn(&bd, EGRU_OP_SIMPLE_RNN, 4, EGRU_FLAG_USE_BIAS | EGRU_FLAG_MASKED);
    dense(&bd, 1, EGRU_ACT_SIGMOID);
    check_streams(&bd, 1);
    /* Features, Masking -> LSTM(sequences) -> SimpleRNN(sequences) -> GRU (last), all masked. */
    start(&bd, EGRU_INPUT_FEATURES, 3);
    plain(&bd, EGRU_OP_MASKING, 0, 3, 0, 0);
    rnn(&bd, EGRU_OP_LSTM, 5, EGRU_FLAG_USE_BIAS | EGRU_FLAG_RETURN_SEQUENCES | EGRU_FLAG_MASKED);
    rnn(&bd, EGRU_OP_SIMPLE_RNN, 4,
        EGRU_FLAG_USE_BIAS | EGRU_FLAG_RETURN_SEQUENCES | EGRU_FLAG_MASKED);
    rnn(&bd, EGRU_OP_GRU, 3, EGRU_FLAG_USE_BIAS | EGRU_FLAG_MASKED);
    dense(&bd, 2, EGRU_ACT_LINEAR);
    check_streams(&bd, 1);
    /* Per-step layers around recurrent ones: Dense -> Affine -> LSTM(sequences) -> LayerNorm ->
     * GRU(reset_before, sequences) -> Activation(softmax): a sequence output. */
    start(&bd, EGRU_INPUT_FEATURES, 4);
    dense(&bd, 6, EGRU_ACT_RELU);
    scale_shift(&bd, EGRU_OP_AFFINE, 0);
    rnn(&bd, EGRU_OP_LSTM, 5, EGRU_FLAG_USE_BIAS | EGRU_FLAG_RETURN_SEQUENCES);
    scale_shift(&bd, EGRU_OP_LAYER_NORM, 0x3A83126Fu); /* 1e-3f */
    rnn(&bd, EGRU_OP_GRU, 4, EGRU_FLAG_USE_BIAS | EGRU_FLAG_RETURN_SEQUENCES);
    plain(&bd, EGRU_OP_ACTIVATION, 0, 4, EGRU_ACT_SOFTMAX, 0);
    check_streams(&bd, 0);
    /* No recurrent layer: the stream is stateless. */
    start(&bd, EGRU_INPUT_TOKENS, 7);
    embedding(&bd, 3, 0);
    dense(&bd, 2, EGRU_ACT_TANH);
    check_streams(&bd, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Models that cannot stream                                                                   */

static void expect_unsupported(builder *bd, uint32_t bad_layer)
{
    egru_model_t m;
    egru_session_t s;
    uint32_t index = 99;
    size_t bytes = 1234;
    static unsigned char mem[4096];
    if (!load(bd, &m)) {
        CHECK(0);
        return;
    }
    CHECK(egru_session_check(&m, &index) == EGRU_ERR_UNSUPPORTED && index == bad_layer);
    CHECK(egru_session_size(&m, 1, &bytes) == EGRU_ERR_UNSUPPORTED && bytes == 1234);
    memset(&s, 0x5A, sizeof s);
    CHECK(egru_session_init(&s, &m, 1, mem, sizeof mem) == EGRU_ERR_UNSUPPORTED);
    CHECK(s.model == NULL && s.batch == 0); /* zeroed on error */
}

static void test_unsupported(void)
{
    builder bd;
    start(&bd, EGRU_INPUT_FEATURES, 3); /* Bidirectional */
    rnn(&bd, EGRU_OP_GRU, 4, EGRU_FLAG_USE_BIAS | EGRU_FLAG_BIDIRECTIONAL);
    expect_unsupported(&bd, 0);
    start(&bd, EGRU_INPUT_FEATURES, 3); /* go_backwards, after a streamable layer */
    rnn(&bd, EGRU_OP_LSTM, 4, EGRU_FLAG_USE_BIAS | EGRU_FLAG_RETURN_SEQUENCES);
    rnn(&bd, EGRU_OP_GRU, 4, EGRU_FLAG_USE_BIAS | EGRU_FLAG_GO_BACKWARDS);
    expect_unsupported(&bd, 1);
    start(&bd, EGRU_INPUT_FEATURES, 3); /* Conv1D (even causal) */
    dense(&bd, 4, EGRU_ACT_RELU);
    conv1d(&bd, 4, 2);
    rnn(&bd, EGRU_OP_GRU, 4, EGRU_FLAG_USE_BIAS);
    expect_unsupported(&bd, 1);
    start(&bd, EGRU_INPUT_FEATURES, 3); /* GlobalPooling */
    rnn(&bd, EGRU_OP_GRU, 4, EGRU_FLAG_USE_BIAS | EGRU_FLAG_RETURN_SEQUENCES);
    plain(&bd, EGRU_OP_GLOBAL_POOL, 0, 4, 0, EGRU_POOL_AVERAGE);
    expect_unsupported(&bd, 1);
    start(&bd, EGRU_INPUT_FEATURES, 3); /* Flatten */
    rnn(&bd, EGRU_OP_GRU, 4, EGRU_FLAG_USE_BIAS | EGRU_FLAG_RETURN_SEQUENCES);
    plain(&bd, EGRU_OP_FLATTEN, 0, 4 * 6, 0, 6);
    dense(&bd, 2, EGRU_ACT_LINEAR);
    expect_unsupported(&bd, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* State: layout, get/set, reset                                                               */

static double sigm(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

/* a[j] = bias[j] + kernel[j] . x + recurrent[j] . h for the n = G*H rows of one direction. */
static void preact(const egru_rnn_weights_t *w, uint32_t n, uint32_t I, uint32_t H, const float *x,
                   const double *h, double *a)
{
    uint32_t j, c;
    for (j = 0; j < n; ++j) {
        a[j] = w->bias[j];
        for (c = 0; c < I; ++c) {
            a[j] += (double)w->kernel[j * I + c] * x[c];
        }
        for (c = 0; c < H; ++c) {
            a[j] += (double)w->recurrent[j * H + c] * h[c];
        }
    }
}

/* Single-layer models (features -> LSTM or SimpleRNN, sequences): the flat state layout is
 * (parts, batch, units), checked by stepping from a set state against float64 cells. */
static void test_state_layout(uint32_t op)
{
    enum { U = 5, D = 3 };
    const uint32_t parts = op == EGRU_OP_LSTM ? 2u : 1u, G = op == EGRU_OP_LSTM ? 4u : 1u;
    builder bd;
    egru_model_t m;
    egru_layer_t lay;
    egru_session_t s;
    float state[2 * B * U], got[2 * B * U], x[B * D], out[B * U];
    static unsigned char mem[1 << 14];
    size_t bytes = 0, count = 0;
    uint32_t r, j, i;
    double worst = 0.0, worst_state = 0.0;

    start(&bd, EGRU_INPUT_FEATURES, D);
    rnn(&bd, op, U, EGRU_FLAG_USE_BIAS | EGRU_FLAG_RETURN_SEQUENCES);
    if (!load(&bd, &m)) {
        CHECK(0);
        return;
    }
    CHECK(egru_model_layer(&m, 0, &lay) == EGRU_OK);
    CHECK(egru_session_size(&m, B, &bytes) == EGRU_OK && bytes <= sizeof mem);
    CHECK(egru_session_init(&s, &m, B, mem, bytes) == EGRU_OK);
    CHECK(egru_session_state_size(&s, &count) == EGRU_OK && count == parts * B * U);
    CHECK(s.state_count == count && s.rnn_count == 1);
    for (i = 0; i < count; ++i) {
        state[i] = uniform(0.9f);
    }
    for (i = 0; i < B * D; ++i) {
        x[i] = uniform(1.0f);
    }
    CHECK(egru_session_set_state(&s, state, count) == EGRU_OK);
    CHECK(egru_session_get_state(&s, got, count) == EGRU_OK);
    CHECK(memcmp(got, state, count * sizeof(float)) == 0);
    CHECK(egru_session_step_features(&s, x, out, B * U) == EGRU_OK);
    CHECK(egru_session_get_state(&s, got, count) == EGRU_OK);
    for (r = 0; r < B; ++r) {
        double h[U], c[U], a[4 * U], hn[U], cn[U];
        for (j = 0; j < U; ++j) {
            h[j] = state[r * U + j];                            /* part 0: h, row r */
            c[j] = parts == 2 ? state[B * U + r * U + j] : 0.0; /* part 1: c, row r */
        }
        preact(&lay.rnn[0], G * U, D, U, x + r * D, h, a);
        for (j = 0; j < U; ++j) {
            if (op == EGRU_OP_LSTM) { /* gates i | f | c | o */
                cn[j] = sigm(a[U + j]) * c[j] + sigm(a[j]) * tanh(a[2 * U + j]);
                hn[j] = sigm(a[3 * U + j]) * tanh(cn[j]);
            } else {
                hn[j] = tanh(a[j]);
                cn[j] = 0.0;
            }
            worst = fmax(worst, fabs(out[r * U + j] - hn[j]));
            worst_state = fmax(worst_state, fabs(got[r * U + j] - hn[j]));
            if (parts == 2) {
                worst_state = fmax(worst_state, fabs(got[B * U + r * U + j] - cn[j]));
            }
        }
    }
    CHECK(worst <= FP32_TOL);
    CHECK(worst_state <= FP32_TOL);
}

/* Embedding(7, 3, mask_zero) -> LSTM(4, return_sequences) -> GRU(4), both masked: the model of
 * the state tests (a masked step's output depends on the state and the seen flags). */
static int load_masked_stack(builder *bd, egru_model_t *m)
{
    start(bd, EGRU_INPUT_TOKENS, 7);
    embedding(bd, 3, 1);
    rnn(bd, EGRU_OP_LSTM, 4, EGRU_FLAG_USE_BIAS | EGRU_FLAG_RETURN_SEQUENCES | EGRU_FLAG_MASKED);
    rnn(bd, EGRU_OP_GRU, 4, EGRU_FLAG_USE_BIAS | EGRU_FLAG_RESET_AFTER | EGRU_FLAG_MASKED);
    return load(bd, m);
}

/* After set_state, until the next valid step, a masked step keeps the state and outputs zero
 * (Keras' initial_state); a reset stream is a fresh stream. */
static void test_set_state_masked_and_reset(void)
{
    builder bd;
    egru_model_t m;
    egru_session_t s, fresh;
    static unsigned char mem[1 << 14], mem2[1 << 14];
    float state[64], got[64], out[B * 4], out2[B * 4];
    int32_t ids[B] = {0, 0, 0, 0, 0}, ids2[B] = {3, 1, 4, 1, 5};
    size_t bytes = 0, count = 0, i;
    int k, zero = 1;

    if (!load_masked_stack(&bd, &m)) {
        CHECK(0);
        return;
    }
    CHECK(egru_session_size(&m, B, &bytes) == EGRU_OK && bytes <= sizeof mem);
    CHECK(egru_session_init(&s, &m, B, mem, bytes) == EGRU_OK);
    CHECK(egru_session_state_size(&s, &count) == EGRU_OK && count == B * (2 * 4 + 4));
    for (i = 0; i < count; ++i) {
        state[i] = uniform(0.9f);
    }
    CHECK(egru_session_set_state(&s, state, count) == EGRU_OK);
    CHECK(egru_session_step_tokens(&s, ids, out, B * 4) == EGRU_OK); /* all masked */
    for (i = 0; i < B * 4; ++i) {
        zero = zero && out[i] == 0.0f;
    }
    CHECK(zero);
    CHECK(egru_session_get_state(&s, got, count) == EGRU_OK);
    CHECK(memcmp(got, state, count * sizeof(float)) == 0);
    /* get -> set round trip into another session: the same outputs from then on. */
    CHECK(egru_session_step_tokens(&s, ids2, out, B * 4) == EGRU_OK);
    CHECK(egru_session_get_state(&s, got, count) == EGRU_OK);
    CHECK(egru_session_init(&fresh, &m, B, mem2, bytes) == EGRU_OK);
    CHECK(egru_session_set_state(&fresh, got, count) == EGRU_OK);
    for (k = 0; k < 4; ++k) {
        ids2[k % B] = (ids2[k % B] + 2) % 7;
        CHECK(egru_session_step_tokens(&s, ids2, out, B * 4) == EGRU_OK);
        CHECK(egru_session_step_tokens(&fresh, ids2, out2, B * 4) == EGRU_OK);
        CHECK(memcmp(out, out2, sizeof out) == 0);
    }
    /* reset == a fresh session, also after set_state. */
    CHECK(egru_session_reset(&s) == EGRU_OK && s.steps == 0);
    CHECK(egru_session_get_state(&s, got, count) == EGRU_OK);
    for (i = 0, zero = 1; i < count; ++i) {
        zero = zero && got[i] == 0.0f;
    }
    CHECK(zero);
    CHECK(egru_session_init(&fresh, &m, B, mem2, bytes) == EGRU_OK);
    for (k = 0; k < 5; ++k) {
        ids2[(k + 2) % B] = k % 3; /* some 0 (masked) ids */
        CHECK(egru_session_step_tokens(&s, ids2, out, B * 4) == EGRU_OK);
        CHECK(egru_session_step_tokens(&fresh, ids2, out2, B * 4) == EGRU_OK);
        CHECK(memcmp(out, out2, sizeof out) == 0);
    }
}

/* save -> restore into another session continues bit for bit, seen flags included (a masked step
 * of a row that has seen a valid step outputs its state; set_state would clear the flags and make
 * it output zero); a bad snapshot changes nothing. */
static void test_snapshot_restore(void)
{
    builder bd;
    egru_model_t m;
    egru_session_t s, copy;
    static unsigned char mem[1 << 14], mem2[1 << 14];
    float snap[128], bad[128], state[128], out[B * 4], out2[B * 4];
    int32_t ids[B] = {3, 0, 4, 0, 5}, masked[B] = {0, 0, 0, 0, 0};
    size_t bytes = 0, n = 0, count = 0, i;
    int k, nonzero = 0;

    if (!load_masked_stack(&bd, &m)) {
        CHECK(0);
        return;
    }
    CHECK(egru_session_size(&m, B, &bytes) == EGRU_OK && bytes <= sizeof mem);
    CHECK(egru_session_init(&s, &m, B, mem, bytes) == EGRU_OK);
    CHECK(egru_session_state_size(&s, &count) == EGRU_OK);
    CHECK(egru_session_snapshot_size(&s, &n) == EGRU_OK && n == count + 2 * B && n <= 128);
    CHECK(egru_session_step_tokens(&s, ids, out, B * 4) == EGRU_OK); /* rows 1, 3 unseen */
    CHECK(egru_session_save(&s, snap, n - 1) == EGRU_ERR_OUTPUT_SIZE);
    CHECK(egru_session_save(&s, snap, n) == EGRU_OK);

    CHECK(egru_session_init(&copy, &m, B, mem2, bytes) == EGRU_OK);
    memcpy(bad, snap, sizeof bad);
    bad[0] = NAN;
    CHECK(egru_session_restore(&copy, bad, n, 9) == EGRU_ERR_NONFINITE);
    bad[0] = snap[0];
    bad[B * 4 * 2] = 0.5f; /* LSTM block: h, c (B x 4 each), then its B flags */
    CHECK(egru_session_restore(&copy, bad, n, 9) == EGRU_ERR_BAD_SHAPE);
    CHECK(egru_session_restore(&copy, snap, n + 1, 9) == EGRU_ERR_BAD_SHAPE);
    CHECK(copy.steps == 0);
    CHECK(egru_session_get_state(&copy, state, count) == EGRU_OK);
    for (i = 0; i < count; ++i) {
        nonzero = nonzero || state[i] != 0.0f;
    }
    CHECK(!nonzero); /* the refused restores changed nothing */
    CHECK(egru_session_restore(&copy, snap, n, s.steps) == EGRU_OK && copy.steps == s.steps);
    for (k = 0; k < 4; ++k) {
        const int32_t *step = (k % 2) ? ids : masked;
        CHECK(egru_session_step_tokens(&s, step, out, B * 4) == EGRU_OK);
        CHECK(egru_session_step_tokens(&copy, step, out2, B * 4) == EGRU_OK);
        CHECK(memcmp(out, out2, sizeof out) == 0);
        ids[k % B] = (ids[k % B] + 1) % 7;
    }
    CHECK(copy.steps == s.steps);
    /* The flags matter: through set_state (flags cleared) a masked step of row 0 outputs zero,
     * through restore it outputs the row's state. */
    CHECK(egru_session_save(&s, snap, n) == EGRU_OK);
    CHECK(egru_session_get_state(&s, state, count) == EGRU_OK);
    CHECK(egru_session_restore(&copy, snap, n, 0) == EGRU_OK);
    CHECK(egru_session_step_tokens(&copy, masked, out, B * 4) == EGRU_OK);
    CHECK(egru_session_set_state(&copy, state, count) == EGRU_OK);
    CHECK(egru_session_step_tokens(&copy, masked, out2, B * 4) == EGRU_OK);
    CHECK(out[0] != 0.0f && out2[0] == 0.0f);
    CHECK(egru_session_save(NULL, snap, n) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_restore(&copy, NULL, n, 0) == EGRU_ERR_NULL_ARG);
}

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */

static void test_errors(void)
{
    builder bd;
    egru_model_t m, unset;
    egru_session_t s, zeroed;
    static unsigned char mem[1 << 14];
    float out[2 * 3], x[2 * 2] = {0.5f, -0.5f, 0.25f, 1.0f}, state[2 * 2 * 3], before[12];
    int32_t ids[2] = {1, 2};
    size_t bytes = 0, count = 0;
    uint32_t index = 0;

    start(&bd, EGRU_INPUT_FEATURES, 2);
    rnn(&bd, EGRU_OP_LSTM, 3, EGRU_FLAG_USE_BIAS);
    if (!load(&bd, &m)) {
        CHECK(0);
        return;
    }
    memset(&unset, 0, sizeof unset);
    memset(&zeroed, 0, sizeof zeroed);
    CHECK(egru_session_check(NULL, &index) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_check(&unset, &index) == EGRU_ERR_BAD_LAYER);
    CHECK(egru_session_size(NULL, 2, &bytes) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_size(&m, 2, NULL) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_size(&m, 0, &bytes) == EGRU_ERR_BAD_SHAPE);
    CHECK(egru_session_size(&m, 0xFFFFFFFFu, &bytes) == EGRU_OK || sizeof(size_t) < 8);
    CHECK(egru_session_size(&m, 2, &bytes) == EGRU_OK && bytes <= sizeof mem);
    CHECK(egru_session_init(NULL, &m, 2, mem, bytes) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_init(&s, NULL, 2, mem, bytes) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_init(&s, &m, 2, NULL, bytes) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_init(&s, &m, 0, mem, bytes) == EGRU_ERR_BAD_SHAPE);
    CHECK(egru_session_init(&s, &m, 2, mem, bytes - 1) == EGRU_ERR_ARENA_TOO_SMALL);
    CHECK(s.model == NULL);
    /* An uninitialised (zeroed) session is refused everywhere. */
    CHECK(egru_session_step_features(&zeroed, x, out, 6) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_reset(&zeroed) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_state_size(&zeroed, &count) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_get_state(&zeroed, state, 12) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_set_state(&zeroed, state, 12) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_reset(NULL) == EGRU_ERR_NULL_ARG);

    CHECK(egru_session_init(&s, &m, 2, mem, bytes) == EGRU_OK);
    CHECK(egru_session_state_size(&s, NULL) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_state_size(&s, &count) == EGRU_OK && count == 12);
    CHECK(egru_session_step_features(&s, x, out, 6) == EGRU_OK);
    CHECK(egru_session_get_state(&s, before, 12) == EGRU_OK);
    CHECK(egru_session_step_features(NULL, x, out, 6) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_step_features(&s, NULL, out, 6) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_step_features(&s, x, NULL, 6) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_step_features(&s, x, out, 5) == EGRU_ERR_OUTPUT_SIZE);
    CHECK(egru_session_step_features(&s, x, out, 7) == EGRU_ERR_OUTPUT_SIZE);
    CHECK(egru_session_step_tokens(&s, ids, out, 6) == EGRU_ERR_WRONG_INPUT);
    x[3] = (float)NAN;
    out[0] = 42.0f;
    CHECK(egru_session_step_features(&s, x, out, 6) == EGRU_ERR_NONFINITE);
    x[3] = -(float)INFINITY;
    CHECK(egru_session_step_features(&s, x, out, 6) == EGRU_ERR_NONFINITE);
    CHECK(out[0] == 42.0f && s.steps == 1); /* nothing written, nothing stepped */
    CHECK(egru_session_get_state(&s, state, 11) == EGRU_ERR_OUTPUT_SIZE);
    CHECK(egru_session_get_state(&s, NULL, 12) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_set_state(&s, state, 13) == EGRU_ERR_BAD_SHAPE);
    CHECK(egru_session_set_state(&s, NULL, 12) == EGRU_ERR_NULL_ARG);
    memset(state, 0, sizeof state);
    state[7] = (float)NAN;
    CHECK(egru_session_set_state(&s, state, 12) == EGRU_ERR_NONFINITE);
    CHECK(egru_session_get_state(&s, state, 12) == EGRU_OK);
    CHECK(memcmp(state, before, sizeof before) == 0); /* errors changed no state */

    /* Token range on a token model; the state is untouched. */
    start(&bd, EGRU_INPUT_TOKENS, 5);
    embedding(&bd, 2, 1);
    rnn(&bd, EGRU_OP_GRU, 3, EGRU_FLAG_USE_BIAS | EGRU_FLAG_MASKED);
    if (!load(&bd, &m)) {
        CHECK(0);
        return;
    }
    CHECK(egru_session_size(&m, 2, &bytes) == EGRU_OK && bytes <= sizeof mem);
    CHECK(egru_session_init(&s, &m, 2, mem, bytes) == EGRU_OK);
    CHECK(egru_session_step_tokens(&s, ids, out, 6) == EGRU_OK);
    CHECK(egru_session_get_state(&s, before, 6) == EGRU_OK);
    ids[1] = 5;
    CHECK(egru_session_step_tokens(&s, ids, out, 6) == EGRU_ERR_TOKEN_RANGE);
    ids[1] = -1;
    CHECK(egru_session_step_tokens(&s, ids, out, 6) == EGRU_ERR_TOKEN_RANGE);
    CHECK(egru_session_step_features(&s, x, out, 6) == EGRU_ERR_WRONG_INPUT);
    CHECK(egru_session_get_state(&s, state, 6) == EGRU_OK);
    CHECK(memcmp(state, before, 6 * sizeof(float)) == 0 && s.steps == 1);
}

/* Random byte changes to a streamable model with fixed CRCs: whatever egru_model_init accepts
 * must stream without a crash or an out-of-bounds access (the sanitizer build checks that). */
static void test_session_fuzz(void)
{
    builder bd;
    egru_model_t m;
    egru_session_t s;
    static unsigned char copy[MAX_BLOB + 64];
    static unsigned char mem[1 << 16];
    uint8_t *b = (uint8_t *)(((uintptr_t)blob_storage + 63) & ~(uintptr_t)63);
    uint8_t *c = (uint8_t *)(((uintptr_t)copy + 63) & ~(uintptr_t)63);
    uint32_t size, round, streamed = 0;
    int32_t ids[2] = {1, 0};
    float out[2 * 256];

    start(&bd, EGRU_INPUT_TOKENS, 6);
    embedding(&bd, 3, 1);
    rnn(&bd, EGRU_OP_LSTM, 4, EGRU_FLAG_USE_BIAS | EGRU_FLAG_RETURN_SEQUENCES | EGRU_FLAG_MASKED);
    dense(&bd, 2, EGRU_ACT_SOFTMAX);
    size = write_model(&bd, b);
    for (round = 0; round < 3000; ++round) {
        uint32_t pos;
        size_t bytes;
        rng_state = rng_state * 1103515245ul + 12345ul;
        pos = 128 + (uint32_t)((rng_state >> 8) % (3 * 64u + 9 * 64u));
        memcpy(c, b, size);
        rng_state = rng_state * 1103515245ul + 12345ul;
        c[pos] = (uint8_t)(rng_state >> 16);
        put32(c + 120, egru_crc32(0, c + 128, size - 128));
        put32(c + 124, egru_crc32(0, c, 124));
        if (egru_model_init(&m, c, size) != EGRU_OK ||
            egru_session_size(&m, 2, &bytes) != EGRU_OK || bytes > sizeof mem ||
            m.output_dim > 256 || egru_session_init(&s, &m, 2, mem, bytes) != EGRU_OK) {
            continue;
        }
        ids[0] = (int32_t)(round % m.input_dim);
        (void)egru_session_step_tokens(&s, ids, out, 2 * (size_t)m.output_dim);
        (void)egru_session_step_tokens(&s, ids, out, 2 * (size_t)m.output_dim);
        ++streamed;
    }
    CHECK(streamed > 0);
}

int main(void)
{
    test_streams_match_forward();
    test_unsupported();
    test_state_layout(EGRU_OP_LSTM);
    test_state_layout(EGRU_OP_SIMPLE_RNN);
    test_set_state_masked_and_reset();
    test_snapshot_restore();
    test_errors();
    test_session_fuzz();
    test_s16_sessions();
    printf("session: largest |step - forward on the prefix| %.3g\n", worst_diff);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
