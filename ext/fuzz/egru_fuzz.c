/*
 * egru_fuzz.c - libFuzzer harness over the public C API of the edgegru runtime (edgegru.h).
 *
 * Build and run: make -C ext fuzz FUZZ_SECONDS=N (ASan + UBSan), make -C ext fuzz-msan (MSan),
 * make -C ext fuzz-coverage (line coverage of ext/src by the corpus). docs/security.md explains
 * the design; egru_fuzz_input.h describes the input layout shared with the mutator.
 *
 * One input = a control block (kernel set, batch, seq_len, which optional paths to run, how to
 * read input values), a pool of bytes the input values are drawn from, and an .egru blob. The
 * blob is copied to a 64-byte aligned buffer of exactly its size (so ASan sees any read past its
 * end), and everything the runtime is asked to use (arena, fold and pack memory, sessions,
 * outputs) is a heap block of exactly the size the runtime's *_size call asked for.
 *
 * Besides crashes and sanitizer reports the harness aborts on broken API contracts that are
 * cheap to check: a status outside the enum, a NULL status string or kernel name, a failed
 * egru_model_init that does not leave the model zeroed, a wrong-kind forward pass that is not
 * EGRU_ERR_WRONG_INPUT, an output buffer written by a call that failed.
 *
 * EGRU_FUZZ_REF_ONLY (the MSan build): only the scalar reference kernels run, see
 * docs/security.md (clang 14's MSan does not model _mm256_maskstore_ps and would report the
 * AVX2 kernels' results as uninitialised).
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgegru.h"
#include "egru_fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Caps that keep one execution cheap (thousands per second): bigger shapes are skipped. */
#define FUZZ_MAX_BYTES   (4u << 20) /* arena, fold, pack, session memory, one output buffer */
#define FUZZ_MAX_MACS    4000000u   /* multiply-accumulates of one forward pass             */
#define FUZZ_MAX_BATCH   4u
#define FUZZ_MAX_SEQ_LEN 16u
#define FUZZ_MAX_STEPS   8u /* session steps */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "egru_fuzz: contract broken at %s:%d: %s\n", __FILE__, __LINE__,       \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Every status the runtime returns must be one of the enum's values. */
static egru_status_t st(egru_status_t s)
{
    CHECK((int)s <= 0 && (int)s > -EGRU_STATUS_COUNT);
    CHECK(egru_status_str(s) != NULL);
    return s;
}

/* ---- input values, drawn from the pool ---------------------------------------------------- */

typedef struct pool {
    const uint8_t *p;
    size_t n, i;
} pool_t;

static uint8_t pool_byte(pool_t *pl)
{
    if (pl->n == 0) {
        return 0;
    }
    uint8_t b = pl->p[pl->i % pl->n];
    pl->i++;
    return b;
}

static uint32_t pool_u32(pool_t *pl)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        v |= (uint32_t)pool_byte(pl) << (8 * k);
    }
    return v;
}

static const float specials[] = {
    0.0f,    -0.0f,  1.0f,   -1.0f,         NAN,      -NAN,    INFINITY, -INFINITY,
    FLT_MIN, 1e-40f, 1e-45f, -1e-40f,       3e38f,    FLT_MAX, -FLT_MAX, 1e-37f,
    88.0f,   -88.0f, 1e10f,  -1e10f,        0.5f,     1e-8f,   -1e-8f,   1e-3f,
    20.0f,   -20.0f, 127.0f, 2147483648.0f, 3.7e-37f, 100.0f,  1e-30f,   -3e38f,
};
#define N_SPECIALS (sizeof specials / sizeof specials[0])

/* One float input: mode 0 raw bits, 1 a special value, 2 a small finite value, 3 mostly small
 * with some specials. */
static float pool_float(pool_t *pl, uint32_t mode)
{
    switch (mode & 3u) {
    case 0: {
        uint32_t u = pool_u32(pl);
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    case 1: return specials[pool_byte(pl) % N_SPECIALS];
    case 2: return (float)(int8_t)pool_byte(pl) / 16.0f;
    default: {
        uint8_t b = pool_byte(pl);
        return b < 200 ? (float)((int)b - 100) / 25.0f : specials[b % N_SPECIALS];
    }
    }
}

/* One token id: mostly valid, with special_ids some out of range or negative. */
static int32_t pool_id(pool_t *pl, uint32_t input_dim, int special_ids)
{
    uint8_t b = pool_byte(pl);
    if (special_ids && b >= 240) {
        switch (b & 7u) {
        case 0: return -1;
        case 1: return INT32_MIN;
        case 2: return INT32_MAX;
        case 3: return (int32_t)input_dim;
        case 4: return (int32_t)(input_dim + 1u);
        case 5: return (int32_t)(input_dim - 1u);
        case 6: return -(int32_t)(input_dim & 0x7fffffffu);
        default: return 0;
        }
    }
    uint32_t v = (uint32_t)b | (uint32_t)pool_byte(pl) << 8;
    return input_dim ? (int32_t)(v % input_dim) : 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    return p;
}

#define CANARY 0xA5u

/* On error the output must be untouched: fill it with CANARY first, check after. */
static void fill_canary(float *out, size_t count)
{
    memset(out, CANARY, count * sizeof *out);
}

static void check_canary(const float *out, size_t count)
{
    const uint8_t *b = (const uint8_t *)out;
    for (size_t i = 0; i < count * sizeof *out; i++) {
        CHECK(b[i] == CANARY);
    }
}

/* After a call that was given count floats of output in a buffer of count + 1 canary-filled
 * floats: a failed call wrote nothing, a successful one nothing past count. */
static void check_output(egru_status_t s, const float *out, size_t count)
{
    if (s != EGRU_OK) {
        check_canary(out, count + 1);
    } else {
        check_canary(out + count, 1);
    }
}

/* Multiply-accumulates of one forward pass (an estimate from the decoded layers). */
static uint64_t model_macs(const egru_model_t *m, uint32_t batch, uint32_t seq_len)
{
    uint64_t macs = 0;
    for (uint32_t i = 0; i < m->layer_count; i++) {
        egru_layer_t l;
        if (egru_model_layer(m, i, &l) == EGRU_OK) {
            macs += (uint64_t)l.macs_per_step + l.output_dim + 1u;
        }
    }
    return macs * batch * seq_len;
}

/* The inputs of one forward pass (or session step), of the model's kind. */
typedef struct inputs {
    int32_t *ids;
    float *x;
    size_t count;
} inputs_t;

static int make_inputs(const egru_model_t *m, const fuzz_ctrl_t *c, pool_t *pl, size_t rows,
                       inputs_t *in)
{
    in->ids = NULL;
    in->x = NULL;
    if (m->input_kind == EGRU_INPUT_TOKENS) {
        in->count = rows;
        in->ids = xmalloc(rows * sizeof *in->ids);
        for (size_t i = 0; i < rows; i++) {
            in->ids[i] = pool_id(pl, m->input_dim, c->flags & FUZZ_SPECIAL_IDS);
        }
        return 1;
    }
    if ((uint64_t)rows * m->input_dim * sizeof(float) > FUZZ_MAX_BYTES) {
        return 0;
    }
    in->count = rows * m->input_dim;
    in->x = xmalloc(in->count * sizeof *in->x);
    for (size_t i = 0; i < in->count; i++) {
        in->x[i] = pool_float(pl, c->value_mode);
    }
    return 1;
}

static void free_inputs(inputs_t *in)
{
    free(in->ids);
    free(in->x);
}

/* One forward pass with exactly sized buffers; wrong sizes and the wrong input kind too. */
static void run_forward(const egru_model_t *m, const fuzz_ctrl_t *c, pool_t *pl, uint32_t batch,
                        uint32_t seq_len)
{
    size_t arena_bytes = 0, count = 0;
    if (st(egru_arena_size(m, batch, seq_len, &arena_bytes)) != EGRU_OK ||
        st(egru_output_count(m, batch, seq_len, &count)) != EGRU_OK) {
        return;
    }
    if (arena_bytes > FUZZ_MAX_BYTES || count > FUZZ_MAX_BYTES / sizeof(float) ||
        model_macs(m, batch, seq_len) > FUZZ_MAX_MACS) {
        return;
    }
    inputs_t in;
    if (!make_inputs(m, c, pl, (size_t)batch * seq_len, &in)) {
        return;
    }
    void *arena = xmalloc(arena_bytes);
    float *out = xmalloc((count + 1) * sizeof *out);
    int tokens = m->input_kind == EGRU_INPUT_TOKENS;

    fill_canary(out, count + 1);
    egru_status_t s =
        tokens ? egru_forward_tokens(m, in.ids, batch, seq_len, out, count, arena, arena_bytes)
               : egru_forward_features(m, in.x, batch, seq_len, out, count, arena, arena_bytes);
    check_output(st(s), out, count);

    if (c->flags & FUZZ_WRONG_SIZES) {
        fill_canary(out, count + 1);
        s = tokens
                ? egru_forward_tokens(m, in.ids, batch, seq_len, out, count + 1, arena, arena_bytes)
                : egru_forward_features(m, in.x, batch, seq_len, out, count + 1, arena,
                                        arena_bytes);
        CHECK(st(s) != EGRU_OK);
        check_canary(out, count + 1);
    }

    /* The low-memory plan, in an arena of exactly egru_arena_size_min() bytes (its own
     * allocation: ASan sees any byte past it), and a chunked plan in one byte less than the fast
     * plan's: the same output as the fast plan, bit for bit (NaN where it has NaN); one byte
     * less than the minimum runs nothing. */
    size_t min_bytes = 0;
    if (st(s) == EGRU_OK && st(egru_arena_size_min(m, batch, seq_len, &min_bytes)) == EGRU_OK) {
        size_t sizes[2] = {min_bytes, arena_bytes - 1};
        float *again = xmalloc((count + 1) * sizeof *again);
        CHECK(min_bytes > 0 && min_bytes <= arena_bytes);
        for (int k = 0; k < 2; ++k) {
            void *small = xmalloc(sizes[k] ? sizes[k] : 1);
            fill_canary(again, count + 1);
            egru_status_t s2 =
                tokens
                    ? egru_forward_tokens(m, in.ids, batch, seq_len, again, count, small, sizes[k])
                    : egru_forward_features(m, in.x, batch, seq_len, again, count, small, sizes[k]);
            if (sizes[k] >= min_bytes) {
                CHECK(st(s2) == EGRU_OK);
                for (size_t i = 0; i < count; ++i) {
                    CHECK(memcmp(&again[i], &out[i], sizeof *out) == 0 ||
                          (again[i] != again[i] && out[i] != out[i]));
                }
                check_canary(again + count, 1);
            }
            free(small);
        }
        if (min_bytes > 1) {
            void *small = xmalloc(min_bytes - 1);
            s = tokens ? egru_forward_tokens(m, in.ids, batch, seq_len, again, count, small,
                                             min_bytes - 1)
                       : egru_forward_features(m, in.x, batch, seq_len, again, count, small,
                                               min_bytes - 1);
            CHECK(st(s) == EGRU_ERR_ARENA_TOO_SMALL);
            free(small);
        }
        free(again);
    }

    /* The wrong kind: a token model given features, a features model given ids. */
    fill_canary(out, count + 1);
    if (tokens) {
        size_t nx = (size_t)batch * seq_len * m->input_dim;
        if (nx <= FUZZ_MAX_BYTES / sizeof(float)) {
            float *x = xmalloc(nx * sizeof *x);
            for (size_t i = 0; i < nx; i++) {
                x[i] = pool_float(pl, c->value_mode);
            }
            s = egru_forward_features(m, x, batch, seq_len, out, count, arena, arena_bytes);
            CHECK(st(s) == EGRU_ERR_WRONG_INPUT);
            free(x);
        }
    } else {
        size_t n = (size_t)batch * seq_len;
        int32_t *ids = xmalloc(n * sizeof *ids);
        for (size_t i = 0; i < n; i++) {
            ids[i] = (int32_t)pool_u32(pl);
        }
        s = egru_forward_tokens(m, ids, batch, seq_len, out, count, arena, arena_bytes);
        CHECK(st(s) == EGRU_ERR_WRONG_INPUT);
        free(ids);
    }
    check_canary(out, count + 1);

    free(out);
    free(arena);
    free_inputs(&in);
}

/* Snapshot save / restore: a snapshot with one value from the pool (it may break the finiteness
 * or the 0/1 flags) restores, or is refused and changes nothing (state, flags, step count). */
static void run_snapshot(egru_session_t *ses, const fuzz_ctrl_t *c, pool_t *pl)
{
    size_t n = 0;
    CHECK(st(egru_session_snapshot_size(ses, &n)) == EGRU_OK);
    CHECK(n == ses->state_count + (size_t)ses->rnn_count * ses->batch);
    if (n > FUZZ_MAX_BYTES / sizeof(float)) {
        return;
    }
    float *orig = xmalloc((n + 1) * sizeof *orig), *snap = xmalloc((n + 1) * sizeof *snap);
    float *after = xmalloc((n + 1) * sizeof *after);
    const uint64_t steps = ses->steps;
    CHECK(st(egru_session_save(ses, orig, n)) == EGRU_OK);
    CHECK(st(egru_session_save(ses, snap, n + 1)) == EGRU_ERR_OUTPUT_SIZE);
    memcpy(snap, orig, n * sizeof *snap);
    if (n) {
        snap[pool_u32(pl) % n] = pool_float(pl, c->value_mode);
    }
    CHECK(st(egru_session_restore(ses, snap, n + 1, 0)) == EGRU_ERR_BAD_SHAPE);
    egru_status_t s = st(egru_session_restore(ses, snap, n, steps + pool_byte(pl)));
    CHECK(st(egru_session_save(ses, after, n)) == EGRU_OK);
    if (s == EGRU_OK) {
        CHECK(memcmp(after, snap, n * sizeof *after) == 0);
    } else {
        CHECK(ses->steps == steps && memcmp(after, orig, n * sizeof *after) == 0);
    }
    free(after);
    free(snap);
    free(orig);
}

/* A streaming session: steps, state get / set, reset, wrong kinds and sizes. */
static void run_session(const egru_model_t *m, const fuzz_ctrl_t *c, pool_t *pl, uint32_t batch)
{
    egru_session_t zero;
    memset(&zero, 0, sizeof zero);
    size_t n0 = 0;
    CHECK(st(egru_session_state_size(&zero, &n0)) == EGRU_ERR_NULL_ARG);
    CHECK(st(egru_session_reset(&zero)) == EGRU_ERR_NULL_ARG);

    uint32_t bad_index = 0;
    egru_status_t s = st(egru_session_check(m, &bad_index));
    if (s != EGRU_OK) {
        CHECK(bad_index < m->layer_count);
    }
    size_t bytes = 0;
    (void)st(egru_session_size(m, UINT32_MAX, &bytes));
    if (st(egru_session_size(m, batch, &bytes)) != EGRU_OK || bytes > FUZZ_MAX_BYTES) {
        return;
    }
    void *mem = xmalloc(bytes);
    egru_session_t ses;
    if (bytes > 0) {
        CHECK(st(egru_session_init(&ses, m, batch, mem, bytes - 1)) != EGRU_OK);
    }
    if (st(egru_session_init(&ses, m, batch, mem, bytes)) != EGRU_OK) {
        free(mem);
        return;
    }
    size_t count = (size_t)batch * ses.output_dim;
    if (count > FUZZ_MAX_BYTES / sizeof(float)) {
        free(mem);
        return;
    }
    float *out = xmalloc((count + 1) * sizeof *out);
    size_t state_count = 0;
    CHECK(st(egru_session_state_size(&ses, &state_count)) == EGRU_OK);
    CHECK(state_count == ses.state_count);
    float *state = NULL;
    if (state_count <= FUZZ_MAX_BYTES / sizeof(float)) {
        state = xmalloc((state_count + 1) * sizeof *state);
    }
    int tokens = m->input_kind == EGRU_INPUT_TOKENS;
    uint32_t steps = 1u + c->session_steps % FUZZ_MAX_STEPS;
    for (uint32_t t = 0; t < steps; t++) {
        inputs_t in;
        if (!make_inputs(m, c, pl, batch, &in)) {
            break;
        }
        fill_canary(out, count + 1);
        s = tokens ? egru_session_step_tokens(&ses, in.ids, out, count)
                   : egru_session_step_features(&ses, in.x, out, count);
        check_output(st(s), out, count);
        if (c->flags & FUZZ_WRONG_SIZES) {
            fill_canary(out, count + 1);
            s = tokens ? egru_session_step_tokens(&ses, in.ids, out, count + 1)
                       : egru_session_step_features(&ses, in.x, out, count + 1);
            CHECK(st(s) != EGRU_OK);
            check_canary(out, count + 1);
        }
        /* the wrong kind */
        if (tokens) {
            size_t nx = (size_t)batch * m->input_dim;
            if (nx <= FUZZ_MAX_BYTES / sizeof(float)) {
                float *x = xmalloc(nx * sizeof *x);
                memset(x, 0, nx * sizeof *x);
                CHECK(st(egru_session_step_features(&ses, x, out, count)) == EGRU_ERR_WRONG_INPUT);
                free(x);
            }
        } else {
            int32_t *ids = xmalloc(batch * sizeof *ids);
            memset(ids, 0, batch * sizeof *ids);
            CHECK(st(egru_session_step_tokens(&ses, ids, out, count)) == EGRU_ERR_WRONG_INPUT);
            free(ids);
        }
        free_inputs(&in);

        if (state && (c->flags2 & FUZZ_STATE)) {
            CHECK(st(egru_session_get_state(&ses, state, state_count)) == EGRU_OK);
            (void)st(egru_session_get_state(&ses, state, state_count + 1));
            for (size_t i = 0; i < state_count && i < 64; i++) {
                state[pool_byte(pl) % (state_count ? state_count : 1)] =
                    pool_float(pl, c->value_mode);
            }
            (void)st(egru_session_set_state(&ses, state, state_count));
            (void)st(egru_session_set_state(&ses, state, state_count + 1));
            run_snapshot(&ses, c, pl);
        }
        if ((c->flags2 & FUZZ_RESET) && t == steps / 2) {
            CHECK(st(egru_session_reset(&ses)) == EGRU_OK);
            CHECK(ses.steps == 0);
        }
    }
    free(state);
    free(out);
    free(mem);
}

/* ---- graphs: egru_run and graph sessions ------------------------------------------------- */

#define FUZZ_MAX_IO 64u /* model inputs or outputs the harness drives (more: skipped) */

/* Two floats equal bit for bit, or both NaN (a NaN's payload may differ between code paths). */
static int same_float(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b);
}

/* The inputs and outputs of one egru_run: descriptors, their data and the output buffers (one
 * canary float past each output's count). */
typedef struct gio {
    uint32_t ni, no;
    egru_io_info_t in_info[FUZZ_MAX_IO], out_info[FUZZ_MAX_IO];
    uint32_t in_steps[FUZZ_MAX_IO], out_steps[FUZZ_MAX_IO];
    egru_input_t in[FUZZ_MAX_IO];
    egru_output_t out[FUZZ_MAX_IO];
    void *in_data[FUZZ_MAX_IO];
    float *out_data[FUZZ_MAX_IO];
    size_t in_count[FUZZ_MAX_IO]; /* values (ids or floats) of each input */
} gio_t;

static void gio_free(gio_t *g)
{
    for (uint32_t i = 0; i < FUZZ_MAX_IO; i++) {
        free(g->in_data[i]);
        free(g->out_data[i]);
        g->in_data[i] = NULL;
        g->out_data[i] = NULL;
    }
}

static void gio_fill_canary(gio_t *g)
{
    for (uint32_t j = 0; j < g->no; j++) {
        fill_canary(g->out_data[j], g->out[j].count + 1);
    }
}

/* After egru_run / a graph session step: untouched outputs on error, nothing past any count. */
static void gio_check(const gio_t *g, egru_status_t s)
{
    for (uint32_t j = 0; j < g->no; j++) {
        check_output(s, g->out_data[j], g->out[j].count);
    }
}

/* The model's inputs and outputs (egru_model_io / _input / _output), checked against their
 * contracts; 0 when the model has more than FUZZ_MAX_IO of either. */
static int gio_describe(const egru_model_t *m, gio_t *g)
{
    egru_io_info_t info;
    memset(g, 0, sizeof *g);
    CHECK(st(egru_model_io(m, &g->ni, &g->no)) == EGRU_OK);
    if (m->input_kind == EGRU_INPUT_GRAPH) {
        CHECK(g->ni == m->graph_input_count && g->no == m->graph_output_count);
    } else {
        CHECK(g->ni == 1 && g->no == 1);
    }
    CHECK(g->ni >= 1 && g->no >= 1);
    CHECK(st(egru_model_input(m, g->ni, &info)) == EGRU_ERR_INDEX);
    CHECK(st(egru_model_output(m, g->no, &info)) == EGRU_ERR_INDEX);
    CHECK(st(egru_model_input(m, UINT32_MAX, &info)) == EGRU_ERR_INDEX);
    if (g->ni > FUZZ_MAX_IO || g->no > FUZZ_MAX_IO) {
        return 0;
    }
    for (uint32_t i = 0; i < g->ni; i++) {
        CHECK(st(egru_model_input(m, i, &g->in_info[i])) == EGRU_OK);
        CHECK(g->in_info[i].kind >= EGRU_VALUE_TOKENS && g->in_info[i].kind <= EGRU_VALUE_VECTOR);
        CHECK(g->in_info[i].width >= 1);
    }
    for (uint32_t j = 0; j < g->no; j++) {
        CHECK(st(egru_model_output(m, j, &g->out_info[j])) == EGRU_OK);
        CHECK(g->out_info[j].kind == EGRU_VALUE_SEQUENCE ||
              g->out_info[j].kind == EGRU_VALUE_VECTOR);
        CHECK(g->out_info[j].width >= 1);
    }
    return 1;
}

/* Input data for `batch` rows of in_steps[i] steps each, drawn from the pool; output buffers
 * of batch * out_steps[j] * width floats. 0 when a buffer would be too large. */
static int gio_alloc(gio_t *g, const fuzz_ctrl_t *c, pool_t *pl, uint32_t batch)
{
    for (uint32_t i = 0; i < g->ni; i++) {
        const egru_io_info_t *f = &g->in_info[i];
        const uint64_t steps = f->kind == EGRU_VALUE_VECTOR ? 1u : g->in_steps[i];
        const uint64_t n = (uint64_t)batch * steps * (f->kind == EGRU_VALUE_TOKENS ? 1u : f->width);
        if (n > FUZZ_MAX_BYTES / sizeof(float)) {
            return 0;
        }
        g->in_count[i] = (size_t)n;
        if (f->kind == EGRU_VALUE_TOKENS) {
            int32_t *ids = xmalloc((size_t)n * sizeof *ids);
            for (size_t k = 0; k < n; k++) {
                ids[k] = pool_id(pl, f->width, c->flags & FUZZ_SPECIAL_IDS);
            }
            g->in_data[i] = ids;
        } else {
            float *x = xmalloc((size_t)n * sizeof *x);
            for (size_t k = 0; k < n; k++) {
                x[k] = pool_float(pl, c->value_mode);
            }
            g->in_data[i] = x;
        }
        g->in[i].data = g->in_data[i];
        g->in[i].steps = g->in_steps[i];
    }
    for (uint32_t j = 0; j < g->no; j++) {
        const uint64_t n = (uint64_t)batch * g->out_steps[j] * g->out_info[j].width;
        if (n > FUZZ_MAX_BYTES / sizeof(float)) {
            return 0;
        }
        g->out_data[j] = xmalloc(((size_t)n + 1) * sizeof(float));
        g->out[j].data = g->out_data[j];
        g->out[j].count = (size_t)n;
    }
    return 1;
}

/* Multiply-accumulates of one egru_run, bounded: every node's per-step cost times the steps of
 * the longest value (the model's inputs and outputs, and any value the fast arena can hold). */
static uint64_t graph_macs(const egru_model_t *m, const gio_t *g, uint32_t batch, size_t arena)
{
    uint64_t per_step = 0, steps = arena / sizeof(float) / (batch < 16u ? batch : 16u) + 1u;
    for (uint32_t i = 0; i < g->ni; i++) {
        steps = g->in_steps[i] > steps ? g->in_steps[i] : steps;
    }
    for (uint32_t j = 0; j < g->no; j++) {
        steps = g->out_steps[j] > steps ? g->out_steps[j] : steps;
    }
    for (uint32_t k = 0; k < m->layer_count; k++) {
        egru_layer_t l;
        if (egru_model_layer(m, k, &l) == EGRU_OK) {
            per_step += (uint64_t)l.macs_per_step + l.output_dim + l.input_dim + 1u;
            if (l.op == EGRU_OP_ATTENTION) { /* every query step against every value step */
                per_step += ((uint64_t)l.input_dim + l.output_dim + 1u) * steps;
            }
        }
    }
    return per_step * batch * steps;
}

static int is_zero(const void *p, size_t n);
static void run_graph_session(const egru_model_t *m, const fuzz_ctrl_t *c, pool_t *pl,
                              uint32_t batch, gio_t *g, egru_status_t run_status);

/* egru_run of a chain or a graph: both plans in arenas of exactly their size, the same outputs
 * bit for bit; one byte less than the low-memory plan runs nothing; wrong descriptor counts and
 * sizes; then a graph session over the same inputs. */
static void run_graph(const egru_model_t *m, const fuzz_ctrl_t *c, pool_t *pl, uint32_t batch,
                      uint32_t seq_len, int with_session)
{
    gio_t g;
    size_t fast = 0, low = 0;
    uint32_t steps = 0;
    if (!gio_describe(m, &g)) {
        return;
    }
    const int graph = m->input_kind == EGRU_INPUT_GRAPH;
    /* FUZZ_STEPS: every input its own steps (a graph must then refuse or run them). */
    for (uint32_t i = 0; i < g.ni; i++) {
        g.in_steps[i] =
            (c->flags2 & FUZZ_STEPS) && graph ? 1u + pool_byte(pl) % FUZZ_MAX_SEQ_LEN : seq_len;
    }
    CHECK(st(egru_run_output_steps(m, g.in_steps, g.no, &steps)) == EGRU_ERR_INDEX);
    egru_status_t s = EGRU_OK;
    for (uint32_t j = 0; j < g.no && s == EGRU_OK; j++) {
        s = st(egru_run_output_steps(m, g.in_steps, j, &g.out_steps[j]));
        if (s == EGRU_OK) {
            CHECK(g.out_steps[j] >= 1);
            CHECK(g.out_info[j].kind != EGRU_VALUE_VECTOR || g.out_steps[j] == 1);
        }
    }
    egru_status_t sf = st(egru_run_arena_size(m, batch, g.in_steps, 0, &fast));
    egru_status_t sl = st(egru_run_arena_size(m, batch, g.in_steps, 1, &low));
    if (s != EGRU_OK) {
        if (graph) { /* steps that do not fit the graph: refused by every sizing call */
            CHECK(s == EGRU_ERR_BAD_SHAPE && sf == s && sl == s);
        }
        return;
    }
    CHECK(st(egru_run_arena_size(m, 0, g.in_steps, 0, &fast)) == EGRU_ERR_BAD_SHAPE || !graph);
    (void)st(egru_run_arena_size(m, UINT32_MAX, g.in_steps, 0, &fast));
    sf = st(egru_run_arena_size(m, batch, g.in_steps, 0, &fast));
    if (sf != EGRU_OK || sl != EGRU_OK) {
        return;
    }
    CHECK(low > 0 && low <= fast);
    if (fast > FUZZ_MAX_BYTES || graph_macs(m, &g, batch, fast) > FUZZ_MAX_MACS ||
        !gio_alloc(&g, c, pl, batch)) {
        gio_free(&g);
        return;
    }
    void *arena = xmalloc(fast);
    gio_fill_canary(&g);
    s = st(egru_run(m, batch, g.in, g.ni, g.out, g.no, arena, fast));
    gio_check(&g, s);
    free(arena);
    if (!graph && s == EGRU_ERR_WRONG_DTYPE) { /* an int16x8 chain */
        CHECK(m->quant_version == EGRU_QUANT_VERSION_INT16X8);
    }

    /* the low-memory plan: the same status and bits (a chain: run_forward checks its plans) */
    float *again[FUZZ_MAX_IO] = {0};
    egru_output_t out2[FUZZ_MAX_IO];
    for (uint32_t j = 0; j < g.no; j++) {
        again[j] = xmalloc((g.out[j].count + 1) * sizeof(float));
        fill_canary(again[j], g.out[j].count + 1);
        out2[j].data = again[j];
        out2[j].count = g.out[j].count;
    }
    if (!graph) {
        low = fast;
    }
    arena = xmalloc(low);
    egru_status_t s2 = st(egru_run(m, batch, g.in, g.ni, out2, g.no, arena, low));
    free(arena);
    CHECK(s2 == s);
    for (uint32_t j = 0; j < g.no; j++) {
        check_output(s2, again[j], g.out[j].count);
        for (size_t i = 0; s == EGRU_OK && i < g.out[j].count; i++) {
            CHECK(same_float(again[j][i], g.out_data[j][i]));
        }
    }
    /* one byte less than the low-memory plan (a chain: run_forward checks its minimum) */
    if (graph) {
        arena = xmalloc(low - 1 ? low - 1 : 1);
        for (uint32_t j = 0; j < g.no; j++) {
            fill_canary(again[j], g.out[j].count + 1);
        }
        s2 = st(egru_run(m, batch, g.in, g.ni, out2, g.no, arena, low - 1));
        CHECK(s2 != EGRU_OK);
        CHECK(s != EGRU_OK || s2 == EGRU_ERR_ARENA_TOO_SMALL);
        for (uint32_t j = 0; j < g.no; j++) {
            check_canary(again[j], g.out[j].count + 1);
        }
        free(arena);
    }

    if (c->flags & FUZZ_WRONG_SIZES) {
        egru_input_t in_more[FUZZ_MAX_IO + 1];
        egru_output_t out_more[FUZZ_MAX_IO + 1];
        arena = xmalloc(fast);
        for (uint32_t j = 0; j < g.no; j++) {
            fill_canary(again[j], g.out[j].count + 1);
        }
        memcpy(in_more, g.in, g.ni * sizeof *in_more);
        in_more[g.ni] = g.in[0];
        memcpy(out_more, out2, g.no * sizeof *out_more);
        out_more[g.no] = out2[0];
        CHECK(st(egru_run(m, batch, in_more, g.ni + 1, out2, g.no, arena, fast)) ==
              EGRU_ERR_WRONG_INPUT);
        CHECK(st(egru_run(m, batch, g.in, g.ni, out_more, g.no + 1, arena, fast)) ==
              EGRU_ERR_OUTPUT_SIZE);
        CHECK(st(egru_run(m, batch, g.in, g.ni - 1, out2, g.no, arena, fast)) ==
              EGRU_ERR_WRONG_INPUT);
        out_more[g.no - 1].count += 1;
        CHECK(st(egru_run(m, batch, g.in, g.ni, out_more, g.no, arena, fast)) != EGRU_OK);
        out_more[g.no - 1].count -= 1;
        in_more[g.ni - 1].data = NULL;
        CHECK(st(egru_run(m, batch, in_more, g.ni, out2, g.no, arena, fast)) != EGRU_OK);
        CHECK(st(egru_run(m, 0, g.in, g.ni, out2, g.no, arena, fast)) != EGRU_OK);
        for (uint32_t j = 0; j < g.no; j++) {
            check_canary(again[j], g.out[j].count + 1);
        }
        free(arena);
    }
    for (uint32_t j = 0; j < g.no; j++) {
        free(again[j]);
    }
    if (graph && with_session) {
        run_graph_session(m, c, pl, batch, &g, s);
    }
    gio_free(&g);
}

/* Snapshot save / restore of a graph session: a snapshot with one value from the pool restores,
 * or is refused and changes nothing (states, flags, step count). */
static void run_graph_snapshot(egru_graph_session_t *ses, const fuzz_ctrl_t *c, pool_t *pl)
{
    size_t n = 0;
    CHECK(st(egru_graph_session_snapshot_size(ses, &n)) == EGRU_OK);
    if (n > FUZZ_MAX_BYTES / sizeof(float)) {
        return;
    }
    float *orig = xmalloc((n + 1) * sizeof *orig), *snap = xmalloc((n + 1) * sizeof *snap);
    float *after = xmalloc((n + 1) * sizeof *after);
    const uint64_t steps = ses->steps;
    CHECK(st(egru_graph_session_save(ses, orig, n)) == EGRU_OK);
    CHECK(st(egru_graph_session_save(ses, snap, n + 1)) == EGRU_ERR_OUTPUT_SIZE);
    memcpy(snap, orig, n * sizeof *snap);
    if (n) {
        snap[pool_u32(pl) % n] = pool_float(pl, c->value_mode);
    }
    CHECK(st(egru_graph_session_restore(ses, snap, n + 1, 0)) == EGRU_ERR_BAD_SHAPE);
    egru_status_t s = st(egru_graph_session_restore(ses, snap, n, steps + pool_byte(pl)));
    CHECK(st(egru_graph_session_save(ses, after, n)) == EGRU_OK);
    if (s == EGRU_OK) { /* the same values (a -0.0 flag comes back as 0.0) */
        for (size_t i = 0; i < n; i++) {
            CHECK(after[i] == snap[i]);
        }
    } else {
        CHECK(ses->steps == steps && memcmp(after, orig, n * sizeof *after) == 0);
    }
    free(after);
    free(snap);
    free(orig);
}

/* A graph session over g's inputs (step t: step t of every TOKENS / SEQUENCE input, the VECTOR
 * inputs as they are): when egru_run succeeded on inputs of equal steps, each step's SEQUENCE
 * outputs equal that step of egru_run's, and after the last step the VECTOR outputs equal
 * egru_run's, bit for bit (NaN where NaN). Then: a saved snapshot restored gives the same next
 * step; reset gives the first step again; state get / set of every node; wrong sizes. */
static void run_graph_session(const egru_model_t *m, const fuzz_ctrl_t *c, pool_t *pl,
                              uint32_t batch, gio_t *g, egru_status_t run_status)
{
    egru_graph_session_t zero, ses;
    memset(&zero, 0, sizeof zero);
    size_t n = 0;
    CHECK(st(egru_graph_session_reset(&zero)) == EGRU_ERR_NULL_ARG);
    CHECK(st(egru_graph_session_state_size(&zero, 0, &n)) == EGRU_ERR_NULL_ARG);
    CHECK(st(egru_graph_session_snapshot_size(&zero, &n)) == EGRU_ERR_NULL_ARG);
    CHECK(st(egru_graph_session_step(&zero, g->in, g->ni, g->out, g->no)) == EGRU_ERR_NULL_ARG);

    uint32_t bad = UINT32_MAX;
    egru_status_t s = st(egru_graph_session_check(m, &bad));
    CHECK(s == EGRU_OK || bad < m->layer_count || m->quant_version == EGRU_QUANT_VERSION_INT16X8);
    size_t bytes = 0;
    (void)st(egru_graph_session_size(m, UINT32_MAX, &bytes));
    CHECK(st(egru_graph_session_size(m, 0, &bytes)) != EGRU_OK);
    s = st(egru_graph_session_size(m, batch, &bytes));
    if (s != EGRU_OK || bytes > FUZZ_MAX_BYTES) {
        return;
    }
    void *mem = xmalloc(bytes);
    memset(&ses, 0x5a, sizeof ses);
    CHECK(st(egru_graph_session_init(&ses, m, batch, mem, bytes - 1)) == EGRU_ERR_ARENA_TOO_SMALL);
    CHECK(is_zero(&ses, sizeof ses));
    CHECK(st(egru_graph_session_init(&ses, m, batch, mem, bytes)) == EGRU_OK);
    CHECK(ses.n_inputs == g->ni && ses.n_outputs == g->no && ses.steps == 0);

    /* Per-step inputs and outputs: batch rows of one step. */
    egru_input_t in[FUZZ_MAX_IO];
    egru_output_t out[FUZZ_MAX_IO], out0[FUZZ_MAX_IO];
    float *obuf[FUZZ_MAX_IO] = {0}, *first[FUZZ_MAX_IO] = {0};
    uint32_t T = UINT32_MAX;
    int equal_steps = 1;
    for (uint32_t i = 0; i < g->ni; i++) {
        if (g->in_info[i].kind != EGRU_VALUE_VECTOR) {
            equal_steps = equal_steps && (T == UINT32_MAX || T == g->in_steps[i]);
            T = g->in_steps[i] < T ? g->in_steps[i] : T;
        }
    }
    if (T == UINT32_MAX) { /* vector inputs only */
        T = 1;
    }
    const uint32_t S = T; /* the inputs' steps (when equal_steps) */
    T = T < FUZZ_MAX_STEPS ? T : FUZZ_MAX_STEPS;
    int compare = run_status == EGRU_OK && equal_steps;
    size_t step_bytes = 0;
    for (uint32_t i = 0; i < g->ni; i++) {
        const egru_io_info_t *f = &g->in_info[i];
        step_bytes += (size_t)batch * (f->kind == EGRU_VALUE_TOKENS ? 4u : 4u * f->width);
    }
    uint8_t *step_in = xmalloc(step_bytes);
    for (uint32_t j = 0; j < g->no; j++) {
        const size_t cnt = (size_t)batch * g->out_info[j].width;
        obuf[j] = xmalloc((cnt + 1) * sizeof(float));
        first[j] = xmalloc((cnt + 1) * sizeof(float));
        out[j].data = obuf[j];
        out[j].count = cnt;
        out0[j].data = first[j];
        out0[j].count = cnt;
    }
    /* step t's inputs gathered from g's (batch, steps, width) arrays */
#define GATHER(t)                                                                                  \
    do {                                                                                           \
        uint8_t *p_ = step_in;                                                                     \
        for (uint32_t i = 0; i < g->ni; i++) {                                                     \
            const egru_io_info_t *f = &g->in_info[i];                                              \
            const size_t w = f->kind == EGRU_VALUE_TOKENS ? 1u : f->width;                         \
            const size_t st_ = f->kind == EGRU_VALUE_VECTOR ? 1u : g->in_steps[i];                 \
            const size_t tt = f->kind == EGRU_VALUE_VECTOR ? 0u : (t) % st_;                       \
            for (uint32_t b = 0; b < batch; b++) {                                                 \
                memcpy(p_ + (size_t)b * w * 4u,                                                    \
                       (const uint8_t *)g->in_data[i] + ((size_t)b * st_ + tt) * w * 4u, w * 4u);  \
            }                                                                                      \
            in[i].data = p_;                                                                       \
            in[i].steps = 0;                                                                       \
            p_ += (size_t)batch * w * 4u;                                                          \
        }                                                                                          \
    } while (0)

    egru_status_t s0 = EGRU_OK;
    for (uint32_t t = 0; t < T; t++) {
        GATHER(t);
        for (uint32_t j = 0; j < g->no; j++) {
            fill_canary(obuf[j], out[j].count + 1);
        }
        s = st(egru_graph_session_step(&ses, in, g->ni, out, g->no));
        for (uint32_t j = 0; j < g->no; j++) {
            check_output(s, obuf[j], out[j].count);
        }
        CHECK(ses.steps == (s == EGRU_OK ? t + 1u : t));
        if (t == 0) {
            s0 = s;
            for (uint32_t j = 0; j < g->no; j++) {
                memcpy(first[j], obuf[j], (out[j].count + 1) * sizeof(float));
            }
        }
        if (s != EGRU_OK) { /* a step of inputs egru_run accepted is accepted too */
            CHECK(!compare);
            break;
        }
        for (uint32_t j = 0; compare && j < g->no; j++) {
            const uint32_t W = g->out_info[j].width, To = g->out_steps[j];
            const int seq = g->out_info[j].kind == EGRU_VALUE_SEQUENCE;
            CHECK(!seq || To == S); /* a streaming graph keeps the steps */
            if (!seq && t + 1 != S) {
                continue; /* a vector output: egru_run's is the one after the last step */
            }
            for (uint32_t b = 0; b < batch; b++) {
                for (uint32_t w = 0; w < W; w++) {
                    const float want =
                        g->out_data[j][seq ? ((size_t)b * To + t) * W + w : (size_t)b * W + w];
                    CHECK(same_float(obuf[j][(size_t)b * W + w], want));
                }
            }
        }
    }
    if (compare) { /* a refused step of a graph egru_run ran cannot be */
        CHECK(s == EGRU_OK);
    }

    /* snapshot: save, step, restore, the same step again */
    size_t snap_n = 0;
    CHECK(st(egru_graph_session_snapshot_size(&ses, &snap_n)) == EGRU_OK);
    if (s == EGRU_OK && snap_n <= FUZZ_MAX_BYTES / sizeof(float)) {
        float *snap = xmalloc((snap_n + 1) * sizeof *snap);
        const uint64_t steps = ses.steps;
        CHECK(st(egru_graph_session_save(&ses, snap, snap_n)) == EGRU_OK);
        GATHER(T);
        s = st(egru_graph_session_step(&ses, in, g->ni, out, g->no));
        if (s == EGRU_OK) {
            float *again[FUZZ_MAX_IO] = {0};
            egru_output_t out2[FUZZ_MAX_IO];
            for (uint32_t j = 0; j < g->no; j++) {
                again[j] = xmalloc((out[j].count + 1) * sizeof(float));
                out2[j].data = again[j];
                out2[j].count = out[j].count;
            }
            /* refused only for a state that went non-finite (inf inputs to a recurrent node) */
            s = st(egru_graph_session_restore(&ses, snap, snap_n, steps));
            CHECK(s == EGRU_OK || s == EGRU_ERR_NONFINITE);
            if (s == EGRU_OK) {
                CHECK(ses.steps == steps);
                CHECK(st(egru_graph_session_step(&ses, in, g->ni, out2, g->no)) == EGRU_OK);
            }
            for (uint32_t j = 0; j < g->no; j++) {
                for (size_t i = 0; s == EGRU_OK && i < out[j].count; i++) {
                    CHECK(same_float(again[j][i], obuf[j][i]));
                }
                free(again[j]);
            }
        }
        free(snap);
    }

    /* reset: the first step again, bit for bit */
    CHECK(st(egru_graph_session_reset(&ses)) == EGRU_OK);
    CHECK(ses.steps == 0);
    GATHER(0);
    for (uint32_t j = 0; j < g->no; j++) {
        fill_canary(obuf[j], out[j].count + 1);
    }
    s = st(egru_graph_session_step(&ses, in, g->ni, out, g->no));
    CHECK(s == s0);
    for (uint32_t j = 0; j < g->no; j++) {
        check_output(s, obuf[j], out[j].count);
        for (size_t i = 0; s == EGRU_OK && i < out[j].count; i++) {
            CHECK(same_float(obuf[j][i], first[j][i]));
        }
    }

    /* wrong counts and sizes: refused, nothing written, the step count unchanged */
    if (c->flags & FUZZ_WRONG_SIZES) {
        const uint64_t steps = ses.steps;
        for (uint32_t j = 0; j < g->no; j++) {
            fill_canary(obuf[j], out[j].count + 1);
        }
        CHECK(st(egru_graph_session_step(&ses, in, g->ni - 1, out, g->no)) == EGRU_ERR_WRONG_INPUT);
        CHECK(st(egru_graph_session_step(&ses, in, g->ni, out, g->no - 1)) == EGRU_ERR_OUTPUT_SIZE);
        out[0].count += 1;
        CHECK(st(egru_graph_session_step(&ses, in, g->ni, out, g->no)) == EGRU_ERR_OUTPUT_SIZE);
        out[0].count -= 1;
        const uint32_t gone = pool_byte(pl) % g->ni; /* a VECTOR may be NULL, if read once */
        const void *keep = in[gone].data;
        in[gone].data = NULL;
        s = st(egru_graph_session_step(&ses, in, g->ni, out, g->no));
        /* a sequence is needed every step; a VECTOR may be NULL (then another input's bad value
         * may still refuse the step) */
        CHECK(s == EGRU_ERR_NULL_ARG || g->in_info[gone].kind == EGRU_VALUE_VECTOR);
        in[gone].data = keep;
        if (s != EGRU_OK) {
            CHECK(ses.steps == steps);
            for (uint32_t j = 0; j < g->no; j++) {
                check_canary(obuf[j], out[j].count + 1);
            }
        }
        out[g->no - 1].data = NULL;
        CHECK(st(egru_graph_session_step(&ses, in, g->ni, out, g->no)) == EGRU_ERR_NULL_ARG);
        out[g->no - 1].data = obuf[g->no - 1];
        CHECK(st(egru_graph_session_step(&ses, NULL, g->ni, out, g->no)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_step(&ses, in, g->ni, NULL, g->no)) == EGRU_ERR_NULL_ARG);
    }

    /* states: every node (and past the last), get, overwrite from the pool, set */
    if (c->flags2 & FUZZ_STATE) {
        for (uint32_t k = 0; k <= m->layer_count; k++) {
            size_t cnt = 0;
            s = st(egru_graph_session_state_size(&ses, k, &cnt));
            if (s != EGRU_OK) {
                CHECK(s == EGRU_ERR_INDEX);
                continue;
            }
            CHECK(k < m->layer_count);
            if (cnt > FUZZ_MAX_BYTES / sizeof(float)) {
                continue;
            }
            float *a = xmalloc((cnt + 1) * sizeof *a), *b = xmalloc((cnt + 1) * sizeof *b);
            CHECK(st(egru_graph_session_get_state(&ses, k, a, cnt)) == EGRU_OK);
            CHECK(st(egru_graph_session_get_state(&ses, k, b, cnt + 1)) == EGRU_ERR_OUTPUT_SIZE);
            CHECK(st(egru_graph_session_set_state(&ses, k, a, cnt + 1)) == EGRU_ERR_BAD_SHAPE);
            memcpy(b, a, cnt * sizeof *b);
            for (size_t i = 0; cnt && i < 8; i++) {
                b[pool_u32(pl) % cnt] = pool_float(pl, c->value_mode);
            }
            s = st(egru_graph_session_set_state(&ses, k, b, cnt));
            CHECK(st(egru_graph_session_get_state(&ses, k, a + 0, cnt)) == EGRU_OK);
            if (s == EGRU_OK) {
                CHECK(memcmp(a, b, cnt * sizeof *a) == 0);
            } else {
                CHECK(s == EGRU_ERR_NONFINITE);
            }
            free(a);
            free(b);
        }
        run_graph_snapshot(&ses, c, pl);
        GATHER(1);
        for (uint32_t j = 0; j < g->no; j++) {
            fill_canary(obuf[j], out[j].count + 1);
        }
        s = st(egru_graph_session_step(&ses, in, g->ni, out, g->no));
        for (uint32_t j = 0; j < g->no; j++) {
            check_output(s, obuf[j], out[j].count);
        }
    }
#undef GATHER
    for (uint32_t j = 0; j < g->no; j++) {
        free(obuf[j]);
        free(first[j]);
    }
    free(step_in);
    free(mem);
}

/* Everything a caller can do with one model and one kernel set. */
static void run_model(const egru_model_t *model, const fuzz_ctrl_t *c, pool_t *pl, uint32_t batch,
                      uint32_t seq_len)
{
    CHECK(egru_model_kernels_name(model) != NULL);
    run_forward(model, c, pl, batch, seq_len);
    run_graph(model, c, pl, batch, seq_len, 0);

    void *fold_mem = NULL, *pack_mem = NULL;
    egru_model_t m = *model;
    if (c->flags & FUZZ_FOLD) {
        size_t bytes = 0;
        if (st(egru_model_fold_size(&m, &bytes)) == EGRU_OK && bytes <= FUZZ_MAX_BYTES) {
            fold_mem = xmalloc(bytes);
            if (bytes > 0) {
                egru_model_t tmp = m;
                (void)st(egru_model_fold(&tmp, fold_mem, bytes - 1));
            }
            if (st(egru_model_fold(&m, fold_mem, bytes)) == EGRU_OK) {
                run_forward(&m, c, pl, batch, seq_len);
            }
        }
    }
    if (c->flags & FUZZ_PACK) {
        size_t bytes = 0;
        if (st(egru_model_pack_size(&m, &bytes)) == EGRU_OK && bytes <= FUZZ_MAX_BYTES) {
            pack_mem = xmalloc(bytes);
            if (st(egru_model_pack(&m, pack_mem, bytes)) == EGRU_OK) {
                CHECK(st(egru_model_pack(&m, pack_mem, bytes)) == EGRU_ERR_UNSUPPORTED);
                run_forward(&m, c, pl, batch, seq_len);
                if (m.input_kind == EGRU_INPUT_GRAPH && !(c->flags & FUZZ_SESSION)) {
                    run_graph(&m, c, pl, batch, seq_len, 0);
                }
            }
        }
    }
    if (c->flags & FUZZ_SESSION) {
        run_session(&m, c, pl, batch);
        if (m.input_kind == EGRU_INPUT_GRAPH) {
            run_graph(&m, c, pl, batch, seq_len, 1); /* egru_run, then a graph session */
        }
    }
    free(pack_mem);
    free(fold_mem);
}

/* A features model of one int8 Dense (out x in), 1 <= out <= 2, with `in` around the width at
 * which an int8 product's int32 sum can overflow (127 * 127 * 133,144 > 2^31 - 1): inputs that
 * wide need files larger than the fuzzer's max_len, so they are written here, in memory the
 * caller frees, from the pool (weights, scales, width). Returns the blob, *size its bytes. */
static uint8_t *wide_model(pool_t *pl, size_t *size)
{
    static const uint32_t widths[] = {133143u, 133144u, 133145u, 140000u, 1u << 18};
    uint8_t pick = pool_byte(pl);
    uint32_t in = pick < 128 ? widths[pick % 5u] : 133000u + (pool_byte(pl) | 256u * (pick & 31u));
    uint32_t out = 1u + pool_byte(pl) % 2u;
    uint32_t qn = out * in, q_end = (qn + 63u) & ~63u, s_end = q_end + 64u;
    uint32_t data_off = EGRU_HEADER_SIZE + EGRU_LAYER_RECORD_SIZE + 2u * EGRU_TENSOR_RECORD_SIZE;
    uint32_t data_size = s_end + 4u * out, fs = data_off + data_size;
    uint8_t *b = NULL;
    CHECK(posix_memalign((void **)&b, 64, fs) == 0);
    memset(b, 0, fs);
    memcpy(b, "EGRU", 4);
    b[EGRU_HDR_VERSION_MAJOR] = 1;
    b[EGRU_HDR_VERSION_MINOR] = 2;
    static const uint32_t hdr[][2] = {
        {EGRU_HDR_HEADER_SIZE, EGRU_HEADER_SIZE},
        {EGRU_HDR_ALIGNMENT, 64u},
        {EGRU_HDR_LAYER_COUNT, 1u},
        {EGRU_HDR_LAYER_RECORD_SIZE, EGRU_LAYER_RECORD_SIZE},
        {EGRU_HDR_LAYER_TABLE_OFFSET, EGRU_HEADER_SIZE},
        {EGRU_HDR_TENSOR_COUNT, 2u},
        {EGRU_HDR_TENSOR_RECORD_SIZE, EGRU_TENSOR_RECORD_SIZE},
        {EGRU_HDR_TENSOR_TABLE_OFFSET, EGRU_HEADER_SIZE + EGRU_LAYER_RECORD_SIZE},
        {EGRU_HDR_INPUT_KIND, EGRU_INPUT_FEATURES},
        {EGRU_HDR_QUANT_VERSION, 1u},
    };
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) {
        fuzz_wr32(b + hdr[i][0], hdr[i][1]);
    }
    fuzz_wr32(b + EGRU_HDR_FILE_SIZE, fs);
    fuzz_wr32(b + EGRU_HDR_DATA_OFFSET, data_off);
    fuzz_wr32(b + EGRU_HDR_DATA_SIZE, data_size);
    fuzz_wr32(b + EGRU_HDR_INPUT_DIM, in);
    fuzz_wr32(b + EGRU_HDR_OUTPUT_DIM, out);
    uint8_t *l = b + EGRU_HEADER_SIZE;
    l[EGRU_LYR_OP] = EGRU_OP_DENSE;
    l[EGRU_LYR_FLAGS] = EGRU_FLAG_USE_BIAS;
    fuzz_wr32(l + EGRU_LYR_INPUT_DIM, in);
    fuzz_wr32(l + EGRU_LYR_OUTPUT_DIM, out);
    fuzz_wr32(l + EGRU_LYR_TENSOR_COUNT, 2u);
    uint8_t *k = l + EGRU_LAYER_RECORD_SIZE, *bias = k + EGRU_TENSOR_RECORD_SIZE;
    k[EGRU_TNS_DTYPE] = EGRU_DTYPE_S8;
    k[EGRU_TNS_QUANT] = EGRU_QUANT_SYMMETRIC_PER_ROW;
    k[EGRU_TNS_RANK] = 2;
    k[EGRU_TNS_ROLE] = EGRU_ROLE_KERNEL;
    fuzz_wr32(k + EGRU_TNS_DIMS, out);
    fuzz_wr32(k + EGRU_TNS_DIMS + 4, in);
    fuzz_wr32(k + EGRU_TNS_DATA_SIZE, qn);
    fuzz_wr32(k + EGRU_TNS_SCALE_OFFSET, q_end);
    fuzz_wr32(k + EGRU_TNS_SCALE_COUNT, out);
    bias[EGRU_TNS_DTYPE] = EGRU_DTYPE_F32;
    bias[EGRU_TNS_RANK] = 1;
    bias[EGRU_TNS_ROLE] = EGRU_ROLE_BIAS;
    fuzz_wr32(bias + EGRU_TNS_DIMS, out);
    fuzz_wr32(bias + EGRU_TNS_DATA_OFFSET, s_end);
    fuzz_wr32(bias + EGRU_TNS_DATA_SIZE, 4u * out);
    uint8_t *d = b + data_off;
    uint8_t w = pool_byte(pl);
    for (uint32_t i = 0; i < qn; i++) { /* one weight, or the pool, repeated */
        int8_t q = (int8_t)((w & 1u) ? pool_byte(pl) : w);
        d[i] = (uint8_t)(q == -128 ? -127 : q);
    }
    for (uint32_t r = 0; r < out; r++) {
        float sc = fabsf(pool_float(pl, 2)) / 127.0f;
        memcpy(d + q_end + 4u * r, &sc, 4);
    }
    fuzz_wr32(b + EGRU_HDR_PAYLOAD_CRC, egru_crc32(0, b + EGRU_HEADER_SIZE, fs - EGRU_HEADER_SIZE));
    fuzz_wr32(b + EGRU_HDR_HEADER_CRC, egru_crc32(0, b, EGRU_HDR_HEADER_CRC));
    *size = fs;
    return b;
}

/* Caller mistakes: every function given NULL pointers or a zeroed (uninitialised) model must
 * fail with a status, and fold / pack must refuse misaligned or too little memory. */
static void run_misuse(const egru_model_t *model)
{
    egru_model_t zero, m = *model;
    memset(&zero, 0, sizeof zero);
    egru_layer_t l;
    egru_session_t ses;
    size_t n = 0;
    float out[4], x[4] = {0};
    int32_t ids[4] = {0};
    uint64_t mem[8];
    CHECK(st(egru_model_init(NULL, mem, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_model_init(&m, NULL, 256)) != EGRU_OK);
    m = *model;
    CHECK(st(egru_model_use_kernels(NULL, EGRU_KERNELS_REF)) != EGRU_OK);
    CHECK(st(egru_model_layer(NULL, 0, &l)) != EGRU_OK);
    CHECK(st(egru_model_layer(model, 0, NULL)) != EGRU_OK);
    CHECK(st(egru_model_layer(&zero, 0, &l)) != EGRU_OK);
    CHECK(egru_model_kernels_name(&zero) != NULL);
    const egru_model_t *models[2] = {NULL, &zero};
    for (int k = 0; k < 2; k++) {
        const egru_model_t *z = models[k];
        CHECK(st(egru_arena_size(z, 1, 1, &n)) != EGRU_OK);
        CHECK(st(egru_output_count(z, 1, 1, &n)) != EGRU_OK);
        CHECK(st(egru_forward_tokens(z, ids, 1, 1, out, 1, mem, sizeof mem)) != EGRU_OK);
        CHECK(st(egru_forward_features(z, x, 1, 1, out, 1, mem, sizeof mem)) != EGRU_OK);
        CHECK(st(egru_model_fold_size(z, &n)) != EGRU_OK);
        CHECK(st(egru_model_pack_size(z, &n)) != EGRU_OK);
        CHECK(st(egru_session_check(z, NULL)) != EGRU_OK);
        CHECK(st(egru_session_size(z, 1, &n)) != EGRU_OK);
        CHECK(st(egru_session_init(&ses, z, 1, mem, sizeof mem)) != EGRU_OK);
        uint32_t a = 0, b = 0;
        egru_io_info_t info;
        egru_input_t gin = {x, 1};
        egru_output_t gout = {out, 1};
        egru_graph_session_t gs;
        CHECK(st(egru_model_io(z, &a, &b)) != EGRU_OK);
        CHECK(st(egru_model_input(z, 0, &info)) != EGRU_OK);
        CHECK(st(egru_model_output(z, 0, &info)) != EGRU_OK);
        CHECK(st(egru_run_output_steps(z, &a, 0, &b)) != EGRU_OK);
        CHECK(st(egru_run_arena_size(z, 1, &a, 0, &n)) != EGRU_OK);
        CHECK(st(egru_run(z, 1, &gin, 1, &gout, 1, mem, sizeof mem)) != EGRU_OK);
        CHECK(st(egru_graph_session_check(z, &a)) != EGRU_OK);
        CHECK(st(egru_graph_session_size(z, 1, &n)) != EGRU_OK);
        CHECK(st(egru_graph_session_init(&gs, z, 1, mem, sizeof mem)) != EGRU_OK);
    }
    {
        uint32_t a = 0, b = 0, one = 1;
        egru_io_info_t info;
        egru_output_t gout = {out, 1};
        egru_graph_session_t gs;
        CHECK(st(egru_model_io(model, NULL, &b)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_model_io(model, &a, NULL)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_model_input(model, 0, NULL)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_model_output(model, 0, NULL)) == EGRU_ERR_NULL_ARG);
        (void)info;
        CHECK(st(egru_run_output_steps(model, NULL, 0, &b)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_run_output_steps(model, &one, 0, NULL)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_run_arena_size(model, 1, NULL, 0, &n)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_run_arena_size(model, 1, &one, 1, NULL)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_run(model, 1, NULL, 1, &gout, 1, mem, sizeof mem)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_run(model, 1, NULL, 0, NULL, 0, NULL, 0)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_init(NULL, model, 1, mem, sizeof mem)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_init(&gs, model, 1, NULL, sizeof mem)) != EGRU_OK);
        CHECK(is_zero(&gs, sizeof gs));
        CHECK(st(egru_graph_session_check(NULL, &a)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_size(model, 1, NULL)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_step(NULL, NULL, 0, NULL, 0)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_reset(NULL)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_state_size(NULL, 0, &n)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_get_state(NULL, 0, x, 1)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_set_state(NULL, 0, x, 1)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_snapshot_size(NULL, &n)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_save(NULL, x, 1)) == EGRU_ERR_NULL_ARG);
        CHECK(st(egru_graph_session_restore(NULL, x, 1, 0)) == EGRU_ERR_NULL_ARG);
        if (model->input_kind != EGRU_INPUT_GRAPH) {
            CHECK(st(egru_graph_session_check(model, &a)) == EGRU_ERR_WRONG_INPUT);
            CHECK(st(egru_graph_session_size(model, 1, &n)) == EGRU_ERR_WRONG_INPUT);
        }
    }
    CHECK(st(egru_arena_size(model, 1, 1, NULL)) != EGRU_OK);
    CHECK(st(egru_output_count(model, 1, 1, NULL)) != EGRU_OK);
    CHECK(st(egru_forward_tokens(model, NULL, 1, 1, out, 1, mem, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_forward_features(model, NULL, 1, 1, out, 1, mem, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_forward_features(model, x, 1, 1, NULL, 1, mem, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_forward_features(model, x, 1, 1, out, 1, NULL, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_model_fold_size(model, NULL)) != EGRU_OK);
    CHECK(st(egru_model_fold(NULL, mem, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_model_fold(&m, NULL, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_model_pack_size(model, NULL)) != EGRU_OK);
    CHECK(st(egru_model_pack(NULL, mem, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_model_pack(&m, NULL, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_session_size(model, 1, NULL)) != EGRU_OK);
    CHECK(st(egru_session_size(model, 0, &n)) != EGRU_OK);
    CHECK(st(egru_session_init(NULL, model, 1, mem, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_session_init(&ses, model, 1, NULL, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_session_init(&ses, model, 0, mem, sizeof mem)) != EGRU_OK);
    CHECK(st(egru_session_step_tokens(NULL, ids, out, 1)) != EGRU_OK);
    CHECK(st(egru_session_step_features(NULL, x, out, 1)) != EGRU_OK);
    CHECK(st(egru_session_reset(NULL)) != EGRU_OK);
    CHECK(st(egru_session_state_size(NULL, &n)) != EGRU_OK);
    CHECK(st(egru_session_get_state(NULL, x, 1)) != EGRU_OK);
    CHECK(st(egru_session_set_state(NULL, x, 1)) != EGRU_OK);
    /* fold into misaligned memory (when the model folds), and into one byte too few */
    size_t bytes = 0;
    if (st(egru_model_fold_size(model, &bytes)) == EGRU_OK && bytes <= FUZZ_MAX_BYTES) {
        uint8_t *buf = xmalloc(bytes + 1u);
        CHECK(st(egru_model_fold(&m, buf + 1, bytes)) != EGRU_OK);
        m = *model;
        free(buf);
    }
    if (st(egru_model_pack_size(model, &bytes)) == EGRU_OK && bytes > 0 &&
        bytes <= FUZZ_MAX_BYTES) {
        uint8_t *buf = xmalloc(bytes);
        CHECK(st(egru_model_pack(&m, buf, bytes - 1)) != EGRU_OK);
        free(buf);
    }
}

/* egru_workers_t whose run calls the tasks one after the other, last index first (any order is
 * allowed), checking that count fits. */
static void seq_run(void *ctx, egru_task_fn task, void *arg, uint32_t count)
{
    const egru_workers_t *w = ctx;
    CHECK(count >= 1 && count <= w->count);
    for (uint32_t i = count; i-- > 0;) {
        task(arg, i);
    }
}

static int is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i]) {
            return 0;
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ctrl_t c;
    const uint8_t *pool_p, *blob_p;
    size_t pool_n, blob_n;
    fuzz_split(data, size, &c, &pool_p, &pool_n, &blob_p, &blob_n);
    pool_t pl = {pool_p, pool_n, 0};

    CHECK(egru_status_str((egru_status_t)c.status_code) != NULL);

    /* The blob at a 64-byte aligned address, in a block of exactly its size. */
    size_t alloc_n = blob_n ? blob_n : 1;
    uint8_t *blob = NULL;
    CHECK(posix_memalign((void **)&blob, 64, alloc_n) == 0);
    if (blob_n) {
        memcpy(blob, blob_p, blob_n);
    }
    size_t given = blob_n;
    if ((c.flags & FUZZ_TRUNCATE) && given > 0) {
        given -= 1u + pool_byte(&pl) % given;
    }

    if (c.flags2 & FUZZ_WIDE) {
        free(blob);
        blob = wide_model(&pl, &blob_n);
        given = blob_n;
        c.batch = 0; /* one row of one step: the product is the cost */
        c.seq_len = 0;
        c.flags &= ~(uint32_t)(FUZZ_TRUNCATE | FUZZ_MISALIGNED | FUZZ_SESSION | FUZZ_WRONG_SIZES);
    }

    egru_model_t model;
    memset(&model, 0x5a, sizeof model);
    egru_status_t s = st(egru_model_init(&model, blob, given));
    if (s != EGRU_OK) {
        CHECK(is_zero(&model, sizeof model));
        free(blob);
        return 0;
    }
    if (c.flags & FUZZ_MISALIGNED) {
        /* The same bytes at an address that is 8 mod 16 must be refused. */
        uint8_t *mis = NULL;
        CHECK(posix_memalign((void **)&mis, 64, given + 8u) == 0);
        memcpy(mis + 8, blob, given);
        egru_model_t m2;
        CHECK(st(egru_model_init(&m2, mis + 8, given)) == EGRU_ERR_MISALIGNED);
        free(mis);
    }

    /* Layers: every index, and some out of range. */
    uint32_t flatten_t = 0;
    for (uint32_t i = 0; i < model.layer_count + 2u; i++) {
        egru_layer_t l;
        s = st(egru_model_layer(&model, i, &l));
        CHECK((s == EGRU_OK) == (i < model.layer_count));
        if (s == EGRU_OK && l.op == EGRU_OP_FLATTEN) {
            flatten_t = l.params[0];
        }
    }
    egru_layer_t l;
    CHECK(st(egru_model_layer(&model, UINT32_MAX, &l)) == EGRU_ERR_INDEX);

    /* Shapes: checked sizing with extreme arguments, then the shape this input runs. */
    size_t n = 0;
    CHECK(st(egru_arena_size(&model, 0, 1, &n)) == EGRU_ERR_BAD_SHAPE);
    CHECK(st(egru_arena_size(&model, 1, 0, &n)) == EGRU_ERR_BAD_SHAPE);
    (void)st(egru_arena_size(&model, UINT32_MAX, UINT32_MAX, &n));
    (void)st(egru_output_count(&model, UINT32_MAX, UINT32_MAX, &n));
    (void)st(egru_output_count(&model, 0, 0, &n));
    uint32_t batch = 1u + c.batch % FUZZ_MAX_BATCH;
    uint32_t seq_len = 1u + c.seq_len % FUZZ_MAX_SEQ_LEN;
    if ((c.seq_len & 0x80u) && flatten_t >= 1u && flatten_t <= 64u) {
        seq_len = flatten_t;
    }

    /* Kernel sets this build and CPU have (the MSan build: the reference set only). */
    static const egru_kernels_t all[] = {EGRU_KERNELS_REF, EGRU_KERNELS_AVX2, EGRU_KERNELS_NEON,
                                         EGRU_KERNELS_AVX512};
    egru_kernels_t sets[4];
    uint32_t nsets = 0;
    for (uint32_t k = 0; k < 4; k++) {
        int have = egru_kernels_available(all[k]);
        CHECK(have == 0 || have == 1);
        if (!have) {
            const void *before = model.kernels;
            CHECK(st(egru_model_use_kernels(&model, all[k])) == EGRU_ERR_UNSUPPORTED);
            CHECK(model.kernels == before);
        }
#ifdef EGRU_FUZZ_REF_ONLY
        have = have && all[k] == EGRU_KERNELS_REF;
#endif
        if (have) {
            sets[nsets++] = all[k];
        }
    }
    CHECK(st(egru_model_use_kernels(&model, (egru_kernels_t)99)) != EGRU_OK);
    CHECK(egru_kernels_available(EGRU_KERNELS_AUTO) == 1);
    CHECK(st(egru_model_use_kernels(&model, EGRU_KERNELS_AUTO)) == EGRU_OK);
    if (c.flags2 & FUZZ_MISUSE) {
        run_misuse(&model);
    }
    egru_workers_t workers = {seq_run, NULL, 1};
    if (c.flags2 & FUZZ_WORKERS) {
        workers.ctx = &workers;
        workers.count = 2u + pool_byte(&pl) % 3u;
        CHECK(st(egru_model_use_workers(&model, &workers)) == EGRU_OK);
    }
    uint32_t first = c.kernels % nsets;
    uint32_t last = (c.kernels & 0x80u) ? nsets : first + 1u;
    for (uint32_t k = first; k < last; k++) {
        CHECK(st(egru_model_use_kernels(&model, sets[k])) == EGRU_OK);
        run_model(&model, &c, &pl, batch, seq_len);
    }
    free(blob);
    return 0;
}
