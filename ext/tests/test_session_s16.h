/*
 * test_session_s16.h - C tests of int16x8 sessions (egru_session_*_s16, egru_session_s16.c),
 * included by test_session.c (one test program). The models are .egru files written by the
 * Python writer (egru_session_s16_models.h, gen_session_s16_models.py). The main property: fed
 * one step at a time, a session gives at every step exactly (memcmp) what egru_forward_*_s16
 * gives for the prefix of t + 1 steps, with every kernel set this build and CPU have; the forward
 * pass itself equals the numpy emulation (tests/test_int16x8_runtime.py). Then the contracts of
 * edgegru.h: the other dtype refused, the state layout and ranges, snapshots, reset, bad input
 * changing nothing, models that cannot stream, memory that grows with the batch only.
 */
#ifndef TEST_SESSION_S16_H
#define TEST_SESSION_S16_H

#include <stdlib.h>
#include <string.h>

#include "edgegru.h"
#include "egru_session_s16_models.h"
#include "egru_test.h"

#define S16_B       3u /* rows */
#define S16_T       7u /* steps */
#define S16_MAX_OUT 64u

static uint32_t s16_seed = 77u;

static uint32_t s16_next(void)
{
    s16_seed = s16_seed * 1664525u + 1013904223u;
    return s16_seed >> 8;
}

/* The blob copied to a multiple of EGRU_BLOB_ALIGN (the arrays have byte alignment). */
static uint8_t s16_mem[5][4096 + EGRU_BLOB_ALIGN];

static int s16_load(egru_model_t *m, unsigned slot, const uint8_t *blob, size_t n)
{
    uint8_t *p = s16_mem[slot];
    p += (EGRU_BLOB_ALIGN - (uintptr_t)p % EGRU_BLOB_ALIGN) % EGRU_BLOB_ALIGN;
    if (n > 4096) {
        return 0;
    }
    memcpy(p, blob, n);
    return egru_model_init(m, p, n) == EGRU_OK;
}

/* Inputs of one model: ids (B, T) with id 0 (masked with mask_zero) on some steps, or int16
 * features (B, T, dim) with all-zero steps (the mask value 0.0 quantizes to 0) and -32768s. */
typedef struct s16_input {
    int32_t ids[S16_B * S16_T];
    int16_t x[S16_B * S16_T * 8];
    uint8_t valid[S16_B * S16_T];
} s16_input_t;

static void s16_make_input(const egru_model_t *m, s16_input_t *in)
{
    uint32_t b, t, j;
    for (b = 0; b < S16_B; ++b) {
        for (t = 0; t < S16_T; ++t) {
            const int masked = (b == 0 && t >= 4) || (b == 1 && t < 2) || (b == 2 && t == 3);
            in->ids[b * S16_T + t] = masked ? 0 : (int32_t)(1u + s16_next() % (m->input_dim - 1u));
            in->valid[b * S16_T + t] = (uint8_t)(s16_next() % 4u != 0);
            for (j = 0; m->input_kind == EGRU_INPUT_FEATURES && j < m->input_dim; ++j) {
                int32_t v = (int32_t)(s16_next() % 65536u) - 32768;
                v = s16_next() % 3u ? v / 4 : v; /* mostly in range, some at the ends */
                in->x[(b * S16_T + t) * m->input_dim + j] = (int16_t)(masked ? 0 : v);
            }
        }
    }
}

/* One step t of every row: into out (B * output_dim). */
static egru_status_t s16_step(egru_session_t *s, const s16_input_t *in, uint32_t t,
                              const uint8_t *valid, int16_t *out)
{
    const egru_model_t *m = s->model;
    int32_t ids[S16_B];
    int16_t x[S16_B * 8];
    uint8_t v[S16_B];
    const uint32_t dim = m->input_kind == EGRU_INPUT_FEATURES ? m->input_dim : 0u;
    uint32_t b;
    for (b = 0; b < S16_B; ++b) {
        ids[b] = in->ids[b * S16_T + t];
        v[b] = valid ? valid[b * S16_T + t] : 1u;
        memcpy(x + b * dim, in->x + (b * S16_T + t) * dim, dim * sizeof(int16_t));
    }
    if (m->input_kind == EGRU_INPUT_TOKENS) {
        return egru_session_step_tokens_s16(s, ids, out, S16_B * s->output_dim);
    }
    return egru_session_step_features_s16(s, x, valid ? v : NULL, out, S16_B * s->output_dim);
}

/* The forward pass over steps [0, len) of every row; writes the last step's output (or the whole
 * output of a last-state model) to out (B * output_dim). */
static int s16_forward_prefix(const egru_model_t *m, const s16_input_t *in, uint32_t len,
                              const uint8_t *valid, int16_t *out)
{
    int32_t ids[S16_B * S16_T];
    int16_t x[S16_B * S16_T * 8], y[S16_B * S16_T * S16_MAX_OUT];
    uint8_t v[S16_B * S16_T];
    size_t count = 0, bytes = 0;
    void *arena;
    const uint32_t dim = m->input_kind == EGRU_INPUT_FEATURES ? m->input_dim : 0u;
    uint32_t b;
    egru_status_t st;
    for (b = 0; b < S16_B; ++b) {
        memcpy(ids + b * len, in->ids + b * S16_T, len * sizeof(int32_t));
        memcpy(v + b * len, valid ? valid + b * S16_T : in->valid, len);
        memcpy(x + b * len * dim, in->x + b * S16_T * dim, len * dim * sizeof(int16_t));
    }
    if (egru_output_count(m, S16_B, len, &count) != EGRU_OK ||
        egru_arena_size(m, S16_B, len, &bytes) != EGRU_OK || !(arena = malloc(bytes))) {
        return 0;
    }
    st =
        m->input_kind == EGRU_INPUT_TOKENS
            ? egru_forward_tokens_s16(m, ids, S16_B, len, y, count, arena, bytes)
            : egru_forward_features_s16(m, x, valid ? v : NULL, S16_B, len, y, count, arena, bytes);
    free(arena);
    for (b = 0; b < S16_B; ++b) {
        const size_t at = m->output_is_sequence ? ((size_t)b * len + len - 1u) * m->output_dim
                                                : (size_t)b * m->output_dim;
        memcpy(out + b * m->output_dim, y + at, m->output_dim * sizeof(int16_t));
    }
    return st == EGRU_OK;
}

static void *s16_session(egru_session_t *s, const egru_model_t *m, uint32_t batch)
{
    size_t bytes = 0;
    void *mem;
    if (egru_session_size(m, batch, &bytes) != EGRU_OK || !(mem = malloc(bytes))) {
        memset(s, 0, sizeof *s);
        return NULL;
    }
    if (egru_session_init(s, m, batch, mem, bytes) != EGRU_OK) {
        free(mem);
        return NULL;
    }
    return mem;
}

/* Every step against the forward pass of its prefix, with every kernel set. */
static void s16_test_prefixes(const uint8_t *blob, size_t n, int use_valid)
{
    static const egru_kernels_t sets[] = {EGRU_KERNELS_REF, EGRU_KERNELS_CORTEX_M,
                                          EGRU_KERNELS_AVX2, EGRU_KERNELS_AVX512,
                                          EGRU_KERNELS_NEON};
    egru_model_t m;
    s16_input_t in;
    unsigned k;
    uint32_t t;
    CHECK(s16_load(&m, 0, blob, n));
    CHECK(m.quant_version == EGRU_QUANT_VERSION_INT16X8 && m.output_dim <= S16_MAX_OUT);
    s16_make_input(&m, &in);
    for (k = 0; k < sizeof sets / sizeof sets[0]; ++k) {
        egru_session_t s;
        void *mem;
        if (!egru_kernels_available(sets[k]) || egru_model_use_kernels(&m, sets[k]) != EGRU_OK) {
            continue;
        }
        mem = s16_session(&s, &m, S16_B);
        CHECK(mem != NULL && egru_session_check(&m, NULL) == EGRU_OK);
        for (t = 0; mem && t < S16_T; ++t) {
            int16_t got[S16_B * S16_MAX_OUT], want[S16_B * S16_MAX_OUT];
            CHECK(s16_step(&s, &in, t, use_valid ? in.valid : NULL, got) == EGRU_OK);
            CHECK(s16_forward_prefix(&m, &in, t + 1u, use_valid ? in.valid : NULL, want));
            CHECK(memcmp(got, want, S16_B * m.output_dim * sizeof(int16_t)) == 0);
        }
        CHECK(s.steps == S16_T);
        free(mem);
    }
}

/* The float API refuses an int16x8 session and the reverse; zeroed sessions are refused. */
static void s16_test_dtypes(void)
{
    egru_model_t q, f;
    egru_session_t sq, sf, zero;
    void *mq, *mf;
    float fbuf[256];
    int32_t ibuf[256];
    int16_t iout[64];
    int16_t x[S16_B * 4];
    CHECK(s16_load(&q, 0, s16_model_masking_gru, sizeof s16_model_masking_gru));
    CHECK(s16_load(&f, 1, s16_model_float_masking_gru, sizeof s16_model_float_masking_gru));
    mq = s16_session(&sq, &q, S16_B);
    mf = s16_session(&sf, &f, S16_B);
    CHECK(mq && mf && sq.state_count == sf.state_count && sq.output_dim == sf.output_dim);
    memset(x, 0, sizeof x);
    memset(fbuf, 0, sizeof fbuf);
    memset(ibuf, 0, sizeof ibuf);
    CHECK(egru_session_step_features(&sq, fbuf, fbuf, S16_B * sq.output_dim) ==
          EGRU_ERR_WRONG_DTYPE);
    CHECK(egru_session_get_state(&sq, fbuf, sq.state_count) == EGRU_ERR_WRONG_DTYPE);
    CHECK(egru_session_set_state(&sq, fbuf, sq.state_count) == EGRU_ERR_WRONG_DTYPE);
    CHECK(egru_session_save(&sq, fbuf, sq.state_count + S16_B) == EGRU_ERR_WRONG_DTYPE);
    CHECK(egru_session_restore(&sq, fbuf, sq.state_count + S16_B, 0) == EGRU_ERR_WRONG_DTYPE);
    CHECK(egru_session_step_features_s16(&sf, x, NULL, iout, S16_B * sf.output_dim) ==
          EGRU_ERR_WRONG_DTYPE);
    CHECK(egru_session_get_state_s16(&sf, ibuf, sf.state_count) == EGRU_ERR_WRONG_DTYPE);
    CHECK(egru_session_set_state_s16(&sf, ibuf, sf.state_count) == EGRU_ERR_WRONG_DTYPE);
    CHECK(egru_session_save_s16(&sf, ibuf, sf.state_count + S16_B) == EGRU_ERR_WRONG_DTYPE);
    CHECK(egru_session_restore_s16(&sf, ibuf, sf.state_count + S16_B, 0) == EGRU_ERR_WRONG_DTYPE);
    CHECK(egru_session_step_tokens_s16(&sq, ibuf, iout, S16_B * sq.output_dim) ==
          EGRU_ERR_WRONG_INPUT);
    CHECK(egru_session_step_features_s16(&sq, x, NULL, iout, S16_B * sq.output_dim + 1u) ==
          EGRU_ERR_OUTPUT_SIZE);
    CHECK(egru_session_step_features_s16(&sq, NULL, NULL, iout, S16_B * sq.output_dim) ==
          EGRU_ERR_NULL_ARG);
    memset(&zero, 0, sizeof zero);
    CHECK(egru_session_step_features_s16(&zero, x, NULL, iout, 0) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_get_state_s16(&zero, ibuf, 0) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_set_state_s16(&zero, ibuf, 0) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_restore_s16(&zero, ibuf, 0, 0) == EGRU_ERR_NULL_ARG);
    CHECK(egru_session_reset(&zero) == EGRU_ERR_NULL_ARG);
    free(mq);
    free(mf);
}

/* Reset, the state's layout and ranges, snapshots, bad ids, on the token model (GRU
 * reset_before with sequences, then LSTM(3) with the last state). */
static void s16_test_state_snapshot_reset(void)
{
    egru_model_t m;
    egru_session_t s, t2, fresh;
    void *ms, *mt, *mf;
    s16_input_t in;
    int32_t st[64], st2[64], snap[64], bad[64];
    int16_t a[S16_B * S16_MAX_OUT], b2[S16_B * S16_MAX_OUT], c[S16_B * S16_MAX_OUT];
    size_t count = 0, snap_count = 0, i;
    uint32_t t;
    int32_t ids[S16_B];
    CHECK(s16_load(&m, 0, s16_model_tokens_gru_lstm, sizeof s16_model_tokens_gru_lstm));
    s16_make_input(&m, &in);
    ms = s16_session(&s, &m, S16_B);
    mt = s16_session(&t2, &m, S16_B);
    mf = s16_session(&fresh, &m, S16_B);
    CHECK(ms && mt && mf);
    if (!ms || !mt || !mf) {
        return;
    }
    CHECK(egru_session_state_size(&s, &count) == EGRU_OK && count == S16_B * (4u + 2u * 3u));
    CHECK(egru_session_snapshot_size(&s, &snap_count) == EGRU_OK &&
          snap_count == count + 2u * S16_B);
    for (t = 0; t < 5; ++t) {
        CHECK(s16_step(&s, &in, t, NULL, a) == EGRU_OK);
    }
    CHECK(egru_session_get_state_s16(&s, st, count) == EGRU_OK);
    CHECK(egru_session_get_state_s16(&s, st, count + 1u) == EGRU_ERR_OUTPUT_SIZE);
    for (i = 0; i < count; ++i) { /* h within the symmetric int16 range, c within G */
        const int32_t lim = i >= S16_B * 7u ? 1073741824 : 32767;
        CHECK(st[i] >= -lim && st[i] <= lim);
    }
    /* the snapshot continues exactly (row 0 is masked from step 4: its seen flags matter) */
    CHECK(egru_session_save_s16(&s, snap, snap_count) == EGRU_OK);
    CHECK(egru_session_save_s16(&s, snap, snap_count - 1u) == EGRU_ERR_OUTPUT_SIZE);
    CHECK(egru_session_restore_s16(&t2, snap, snap_count, 5) == EGRU_OK && t2.steps == 5);
    for (t = 5; t < S16_T; ++t) {
        CHECK(s16_step(&s, &in, t, NULL, a) == EGRU_OK);
        CHECK(s16_step(&t2, &in, t, NULL, b2) == EGRU_OK);
        CHECK(memcmp(a, b2, S16_B * m.output_dim * sizeof(int16_t)) == 0);
    }
    /* a set state continues as the original on valid steps */
    CHECK(egru_session_get_state_s16(&s, st, count) == EGRU_OK);
    CHECK(egru_session_set_state_s16(&t2, st, count) == EGRU_OK);
    CHECK(egru_session_get_state_s16(&t2, st2, count) == EGRU_OK);
    CHECK(memcmp(st, st2, count * sizeof(int32_t)) == 0);
    for (t = 0; t < 3; ++t) {
        for (i = 0; i < S16_B; ++i) {
            ids[i] = (int32_t)(1u + (t + i) % 19u);
        }
        CHECK(egru_session_step_tokens_s16(&s, ids, a, S16_B * m.output_dim) == EGRU_OK);
        CHECK(egru_session_step_tokens_s16(&t2, ids, b2, S16_B * m.output_dim) == EGRU_OK);
        CHECK(memcmp(a, b2, S16_B * m.output_dim * sizeof(int16_t)) == 0);
    }
    /* out-of-range values, counts, flags: refused, nothing changes */
    CHECK(egru_session_get_state_s16(&s, st, count) == EGRU_OK);
    memcpy(bad, st, count * sizeof(int32_t));
    bad[1] = 32768; /* an h */
    CHECK(egru_session_set_state_s16(&s, bad, count) == EGRU_ERR_BAD_SHAPE);
    bad[1] = -32768;
    CHECK(egru_session_set_state_s16(&s, bad, count) == EGRU_ERR_BAD_SHAPE);
    memcpy(bad, st, count * sizeof(int32_t));
    bad[S16_B * 7u] = 1073741825; /* the LSTM's first c */
    CHECK(egru_session_set_state_s16(&s, bad, count) == EGRU_ERR_BAD_SHAPE);
    CHECK(egru_session_set_state_s16(&s, st, count - 1u) == EGRU_ERR_BAD_SHAPE);
    CHECK(egru_session_save_s16(&s, snap, snap_count) == EGRU_OK);
    memcpy(bad, snap, snap_count * sizeof(int32_t));
    bad[S16_B * 4u] = 2; /* the GRU's first flag */
    CHECK(egru_session_restore_s16(&s, bad, snap_count, 9) == EGRU_ERR_BAD_SHAPE);
    CHECK(egru_session_restore_s16(&s, snap, snap_count + 1u, 9) == EGRU_ERR_BAD_SHAPE);
    CHECK(egru_session_get_state_s16(&s, st2, count) == EGRU_OK);
    CHECK(memcmp(st, st2, count * sizeof(int32_t)) == 0 && s.steps == 10);
    /* a bad id: TOKEN_RANGE, state, step count and output untouched */
    ids[0] = 3;
    ids[1] = 20;
    ids[2] = 1;
    memset(c, 0x5A, sizeof c);
    CHECK(egru_session_step_tokens_s16(&s, ids, c, S16_B * m.output_dim) == EGRU_ERR_TOKEN_RANGE);
    ids[1] = -1;
    CHECK(egru_session_step_tokens_s16(&s, ids, c, S16_B * m.output_dim) == EGRU_ERR_TOKEN_RANGE);
    CHECK(c[0] == 0x5A5A && c[S16_B * m.output_dim - 1u] == 0x5A5A && s.steps == 10);
    CHECK(egru_session_get_state_s16(&s, st2, count) == EGRU_OK);
    CHECK(memcmp(st, st2, count * sizeof(int32_t)) == 0);
    /* reset: the zero state, the same as a fresh session */
    CHECK(egru_session_reset(&s) == EGRU_OK && s.steps == 0);
    CHECK(egru_session_get_state_s16(&s, st2, count) == EGRU_OK);
    for (i = 0; i < count; ++i) {
        CHECK(st2[i] == 0);
    }
    for (t = 0; t < S16_T; ++t) {
        CHECK(s16_step(&s, &in, t, NULL, a) == EGRU_OK);
        CHECK(s16_step(&fresh, &in, t, NULL, b2) == EGRU_OK);
        CHECK(memcmp(a, b2, S16_B * m.output_dim * sizeof(int16_t)) == 0);
    }
    free(ms);
    free(mt);
    free(mf);
}

/* Models that cannot stream, sizes, memory. */
static void s16_test_check_and_memory(void)
{
    egru_model_t m;
    egru_session_t s;
    uint32_t index = 99;
    size_t b16 = 0, b32 = 0, b48 = 0, small = 0;
    static uint8_t mem[8192];
    CHECK(s16_load(&m, 0, s16_model_go_backwards, sizeof s16_model_go_backwards));
    CHECK(egru_session_check(&m, &index) == EGRU_ERR_UNSUPPORTED && index == 0);
    CHECK(egru_session_size(&m, 1, &small) == EGRU_ERR_UNSUPPORTED);
    CHECK(egru_session_init(&s, &m, 1, mem, sizeof mem) == EGRU_ERR_UNSUPPORTED && !s.model);
    CHECK(s16_load(&m, 0, s16_model_masking_gru, sizeof s16_model_masking_gru));
    CHECK(egru_session_size(&m, 0, &small) == EGRU_ERR_BAD_SHAPE);
    CHECK(egru_session_size(&m, 16, &b16) == EGRU_OK &&
          egru_session_size(&m, 32, &b32) == EGRU_OK && egru_session_size(&m, 48, &b48) == EGRU_OK);
    /* per row: GRU(6) 3 state words, one flag, one id: 16 rows add 16 * (12 + 1 + 4) bytes */
    CHECK(b32 - b16 == 16u * 17u && b48 - b32 == 16u * 17u);
    CHECK(egru_session_size(&m, 1, &small) == EGRU_OK && small < sizeof mem);
    CHECK(egru_session_init(&s, &m, 1, mem, small - 1u) == EGRU_ERR_ARENA_TOO_SMALL && !s.model);
    CHECK(egru_session_init(&s, &m, 1, mem + 1, small) == EGRU_OK && s.batch == 1);
    CHECK(s16_load(&m, 0, s16_model_affine_rnn, sizeof s16_model_affine_rnn));
    CHECK(egru_session_check(&m, &index) == EGRU_OK);
}

static void test_s16_sessions(void)
{
    s16_test_prefixes(s16_model_masking_gru, sizeof s16_model_masking_gru, 0);
    s16_test_prefixes(s16_model_masking_gru, sizeof s16_model_masking_gru, 1);
    s16_test_prefixes(s16_model_tokens_gru_lstm, sizeof s16_model_tokens_gru_lstm, 0);
    s16_test_prefixes(s16_model_affine_rnn, sizeof s16_model_affine_rnn, 0);
    s16_test_dtypes();
    s16_test_state_snapshot_reset();
    s16_test_check_and_memory();
}

#endif /* TEST_SESSION_S16_H */
