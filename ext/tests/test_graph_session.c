/*
 * test_graph_session.c - graph sessions (edgegru.h "Graph sessions"): every graph of
 * egru_graph_models.h that streams, stepped through its inputs, gives at every step what egru_run
 * gives bit for bit (SEQUENCE outputs: that step of the whole-sequence run; VECTOR outputs: the
 * run over the steps so far; egru_run itself is checked against a float64 evaluation by
 * test_graph.c), per-node state get / set (a set state acts as the initial-state input), reset,
 * snapshots (save / restore: the same steps again), a graph that cannot stream refused naming its
 * first blocking node, and hostile arguments.
 */
#include <math.h>
#include <string.h>

#include "edgegru.h"
#include "egru_graph_models.h"
#include "egru_test.h"

#define ARENA_BYTES (4u << 20)
#define BUF_FLOATS  (1u << 16)

static uint8_t arena[ARENA_BYTES] __attribute__((aligned(64)));
static uint8_t smem[1u << 20];
static float whole[GRAPH_MAX_IO][BUF_FLOATS];  /* egru_run on the whole sequences */
static float prefix[GRAPH_MAX_IO][BUF_FLOATS]; /* egru_run on steps 0 .. t */
static float step_out[GRAPH_MAX_IO][BUF_FLOATS];
static float xbuf[GRAPH_MAX_IO][BUF_FLOATS]; /* the prefix inputs, (batch, t + 1, width) */
static float sbuf[GRAPH_MAX_IO][BUF_FLOATS]; /* one step's inputs, (batch, width) */

static size_t in_row(const graph_case_t *c, uint32_t i, uint32_t steps)
{
    return (size_t)(c->in_kind[i] == 3 ? 1u : steps) * (c->in_kind[i] == 1 ? 1u : c->in_width[i]);
}

static size_t out_row(const graph_case_t *c, uint32_t j, uint32_t steps)
{
    return (size_t)(c->out_kind[j] == 3 ? 1u : steps) * c->out_width[j];
}

/* egru_run on the first `steps` steps of every sequence input; state: NULL or the initial state
 * to put into VECTOR input `state_input` instead of the case's. */
static egru_status_t run_prefix(const egru_model_t *m, const graph_case_t *c, uint32_t steps,
                                float (*dst)[BUF_FLOATS], int state_input, const float *state)
{
    egru_input_t in[GRAPH_MAX_IO];
    egru_output_t out[GRAPH_MAX_IO];
    uint32_t i, b;
    for (i = 0; i < c->n_in; ++i) {
        const size_t full = in_row(c, i, c->in_steps[i]), part = in_row(c, i, steps);
        for (b = 0; b < c->batch; ++b) { /* int32 and float: 4 bytes each */
            memcpy((uint8_t *)xbuf[i] + b * part * 4u, (const uint8_t *)c->in[i] + b * full * 4u,
                   part * 4u);
        }
        in[i].data = (int)i == state_input ? (const void *)state : (const void *)xbuf[i];
        in[i].steps = steps;
    }
    for (i = 0; i < c->n_out; ++i) {
        out[i].data = dst[i];
        out[i].count = c->batch * out_row(c, i, steps);
    }
    return egru_run(m, c->batch, in, c->n_in, out, c->n_out, arena, sizeof arena);
}

/* Step t's inputs into sbuf. */
static void step_inputs(const graph_case_t *c, uint32_t t, egru_input_t *in)
{
    uint32_t i, b;
    for (i = 0; i < c->n_in; ++i) {
        const size_t full = in_row(c, i, c->in_steps[i]);
        const size_t w = c->in_kind[i] == 1 ? 1u : c->in_width[i];
        const size_t at = c->in_kind[i] == 3 ? 0u : (size_t)t * w;
        for (b = 0; b < c->batch; ++b) {
            memcpy((uint8_t *)sbuf[i] + b * w * 4u,
                   (const uint8_t *)c->in[i] + (b * full + at) * 4u, w * 4u);
        }
        in[i].data = sbuf[i];
        in[i].steps = 1;
    }
}

static egru_status_t step(egru_graph_session_t *s, const graph_case_t *c, egru_input_t *in)
{
    egru_output_t out[GRAPH_MAX_IO];
    uint32_t j;
    for (j = 0; j < c->n_out; ++j) {
        out[j].data = step_out[j];
        out[j].count = (size_t)c->batch * c->out_width[j];
    }
    return egru_graph_session_step(s, in, c->n_in, out, c->n_out);
}

/* Whether the step's outputs equal, bit for bit, the whole run at step t (SEQUENCE) and the
 * prefix run (VECTOR). */
static int step_matches(const graph_case_t *c, uint32_t t)
{
    uint32_t j, b;
    for (j = 0; j < c->n_out; ++j) {
        const size_t w = c->out_width[j];
        for (b = 0; b < c->batch; ++b) {
            const float *want = c->out_kind[j] == 3
                                    ? prefix[j] + b * w
                                    : whole[j] + (b * (size_t)c->in_steps[0] + t) * w;
            if (memcmp(step_out[j] + b * w, want, w * sizeof(float)) != 0) {
                printf("  step %u output %u row %u differs\n", t, j, b);
                return 0;
            }
        }
    }
    return 1;
}

static void test_streams(const graph_case_t *c)
{
    egru_model_t m;
    egru_graph_session_t s;
    egru_input_t in[GRAPH_MAX_IO];
    size_t bytes = 0, bytes1 = 0, count = 0;
    uint32_t t, node = 99, i, vec_input = 99, ok = 1;
    const uint32_t T = c->in_steps[0];
    printf("case %s (streams)\n", c->name);
    CHECK(egru_model_init(&m, c->blob, c->size) == EGRU_OK);
    CHECK(egru_graph_session_check(&m, &node) == EGRU_OK && node == 99);
    CHECK(egru_session_check(&m, NULL) == EGRU_ERR_UNSUPPORTED); /* chains only */
    CHECK(egru_graph_session_size(&m, c->batch, &bytes) == EGRU_OK && bytes <= sizeof smem);
    CHECK(egru_graph_session_size(&m, 1, &bytes1) == EGRU_OK && bytes1 < bytes);
    CHECK(egru_graph_session_init(&s, &m, c->batch, smem, bytes - 1) == EGRU_ERR_ARENA_TOO_SMALL);
    CHECK(s.model == NULL);
    CHECK(egru_graph_session_init(&s, &m, c->batch, smem + 3, bytes) == EGRU_OK); /* any align */
    CHECK(s.n_inputs == c->n_in && s.n_outputs == c->n_out && s.batch == c->batch);
    CHECK(run_prefix(&m, c, T, whole, -1, NULL) == EGRU_OK);
    for (i = 1; i < c->n_in; ++i) {
        CHECK(c->in_steps[i] == T || c->in_kind[i] == 3); /* the cases' sequences agree */
        vec_input = c->in_kind[i] == 3 ? i : vec_input;
    }
    for (t = 0; t < T; ++t) {
        CHECK(run_prefix(&m, c, t + 1, prefix, -1, NULL) == EGRU_OK);
        step_inputs(c, t, in);
        CHECK(step(&s, c, in) == EGRU_OK);
        ok &= (uint32_t)step_matches(c, t);
    }
    CHECK(ok);
    CHECK(s.steps == T);
    /* reset: a fresh stream again */
    CHECK(egru_graph_session_reset(&s) == EGRU_OK && s.steps == 0);
    for (ok = 1, t = 0; t < T; ++t) {
        CHECK(run_prefix(&m, c, t + 1, prefix, -1, NULL) == EGRU_OK);
        step_inputs(c, t, in);
        CHECK(step(&s, c, in) == EGRU_OK);
        ok &= (uint32_t)step_matches(c, t);
    }
    CHECK(ok);
    /* Snapshot: saved after step 2, the rest stepped, restored: the same steps again, bit for
     * bit; hostile snapshots (a flag 0.5, a NaN state, a wrong count) change nothing. */
    {
        static float snap[BUF_FLOATS], snap2[BUF_FLOATS], rest[GRAPH_MAX_IO][BUF_FLOATS];
        size_t sn = 0, per = 0;
        uint32_t j, k, rnn = 0;
        const uint32_t at = T > 2 ? 2u : 0u;
        CHECK(egru_graph_session_snapshot_size(&s, &sn) == EGRU_OK && sn <= BUF_FLOATS);
        for (k = 0; k < m.layer_count; ++k) { /* per recurrent node: state, seen, fresh */
            if (egru_graph_session_state_size(&s, k, &count) == EGRU_OK) {
                per += count + c->batch + 1u;
                ++rnn;
            }
        }
        CHECK(sn == per && rnn == s.rnn_count);
        CHECK(egru_graph_session_reset(&s) == EGRU_OK);
        for (t = 0; t < at; ++t) {
            step_inputs(c, t, in);
            CHECK(step(&s, c, in) == EGRU_OK);
        }
        CHECK(egru_graph_session_save(&s, snap, sn) == EGRU_OK);
        CHECK(egru_graph_session_save(&s, snap2, sn + 1) == EGRU_ERR_OUTPUT_SIZE);
        for (t = at; t < T; ++t) {
            step_inputs(c, t, in);
            CHECK(step(&s, c, in) == EGRU_OK);
            for (j = 0; j < c->n_out; ++j) {
                memcpy(rest[j] + (size_t)(t - at) * c->batch * c->out_width[j], step_out[j],
                       (size_t)c->batch * c->out_width[j] * sizeof(float));
            }
        }
        CHECK(egru_graph_session_save(&s, snap2, sn) == EGRU_OK);
        CHECK(egru_graph_session_restore(&s, snap, sn + 1, at) == EGRU_ERR_BAD_SHAPE);
        if (rnn) { /* the first node's block: state, then flags, then fresh */
            const float keep = snap[sn - 1];
            snap[sn - 1] = 0.5f;
            CHECK(egru_graph_session_restore(&s, snap, sn, at) == EGRU_ERR_BAD_SHAPE);
            snap[sn - 1] = keep;
            const float keep0 = snap[0];
            snap[0] = NAN;
            CHECK(egru_graph_session_restore(&s, snap, sn, at) == EGRU_ERR_NONFINITE);
            snap[0] = keep0;
            CHECK(egru_graph_session_save(&s, snap2 + sn, sn) == EGRU_OK);
            CHECK(memcmp(snap2, snap2 + sn, sn * sizeof(float)) == 0); /* unchanged */
            CHECK(s.steps == T);
        }
        CHECK(egru_graph_session_restore(&s, snap, sn, at) == EGRU_OK && s.steps == at);
        for (ok = 1, t = at; t < T; ++t) {
            step_inputs(c, t, in);
            CHECK(step(&s, c, in) == EGRU_OK);
            for (j = 0; j < c->n_out; ++j) {
                ok &= memcmp(rest[j] + (size_t)(t - at) * c->batch * c->out_width[j], step_out[j],
                             (size_t)c->batch * c->out_width[j] * sizeof(float)) == 0;
            }
        }
        CHECK(ok);
        CHECK(egru_graph_session_snapshot_size(NULL, &sn) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_snapshot_size(&s, NULL) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_save(&s, NULL, sn) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_restore(&s, NULL, sn, 0) == EGRU_ERR_NULL_ARG);
    }
    /* States: node 0 is the GRU reading the VECTOR input as its initial state (the "states"
     * graph): its state set to some values, the input NULL, equals egru_run with that input. */
    if (vec_input != 99) {
        float h[BUF_FLOATS], got[BUF_FLOATS], bad = 1.0f;
        const size_t n = (size_t)c->batch * c->in_width[vec_input];
        CHECK(egru_graph_session_state_size(&s, 0, &count) == EGRU_OK && count == n);
        for (i = 0; i < n; ++i) {
            h[i] = 0.5f * sinf((float)i);
        }
        CHECK(egru_graph_session_reset(&s) == EGRU_OK);
        CHECK(egru_graph_session_set_state(&s, 0, h, n) == EGRU_OK);
        CHECK(egru_graph_session_get_state(&s, 0, got, n) == EGRU_OK);
        CHECK(memcmp(got, h, n * sizeof(float)) == 0);
        for (ok = 1, t = 0; t < T; ++t) {
            CHECK(run_prefix(&m, c, t + 1, prefix, (int)vec_input, h) == EGRU_OK);
            CHECK(run_prefix(&m, c, T, whole, (int)vec_input, h) == EGRU_OK);
            step_inputs(c, t, in);
            in[vec_input].data = NULL; /* read only as an initial state: may be NULL */
            CHECK(step(&s, c, in) == EGRU_OK);
            ok &= (uint32_t)step_matches(c, t);
        }
        CHECK(ok);
        /* hostile state calls: nothing changes */
        CHECK(egru_graph_session_get_state(&s, 0, got, n) == EGRU_OK);
        CHECK(egru_graph_session_set_state(&s, 0, h, n + 1) == EGRU_ERR_BAD_SHAPE);
        CHECK(egru_graph_session_get_state(&s, 0, h, n - 1) == EGRU_ERR_OUTPUT_SIZE);
        h[3] = NAN;
        CHECK(egru_graph_session_set_state(&s, 0, h, n) == EGRU_ERR_NONFINITE);
        CHECK(egru_graph_session_get_state(&s, 0, h, n) == EGRU_OK);
        CHECK(memcmp(got, h, n * sizeof(float)) == 0);
        CHECK(egru_graph_session_state_size(&s, 1, &count) == EGRU_ERR_INDEX); /* a Dense */
        CHECK(egru_graph_session_state_size(&s, m.layer_count, &count) == EGRU_ERR_INDEX);
        CHECK(egru_graph_session_state_size(&s, 0xFFFFFFFFu, &count) == EGRU_ERR_INDEX);
        CHECK(egru_graph_session_get_state(&s, 2, h, n) == EGRU_ERR_INDEX);
        CHECK(egru_graph_session_set_state(&s, 2, &bad, 1) == EGRU_ERR_INDEX);
        CHECK(egru_graph_session_set_state(NULL, 0, h, n) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_set_state(&s, 0, NULL, n) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_get_state(&s, 0, NULL, n) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_state_size(&s, 0, NULL) == EGRU_ERR_NULL_ARG);
    }
    /* Hostile steps: checked before anything changes. */
    {
        egru_output_t out[GRAPH_MAX_IO];
        float before[BUF_FLOATS], after[BUF_FLOATS];
        const uint64_t steps = s.steps;
        const uint32_t last = c->n_out - 1;
        const int has_state = egru_graph_session_state_size(&s, 0, &count) == EGRU_OK;
        uint32_t j;
        CHECK(has_state == (vec_input != 99)); /* node 0: the GRU of "states", else a Dense */
        CHECK(!has_state || egru_graph_session_get_state(&s, 0, before, count) == EGRU_OK);
        step_inputs(c, 0, in);
        for (j = 0; j < c->n_out; ++j) {
            out[j].data = step_out[j];
            out[j].count = (size_t)c->batch * c->out_width[j];
        }
        CHECK(egru_graph_session_step(&s, in, c->n_in - 1, out, c->n_out) == EGRU_ERR_WRONG_INPUT);
        CHECK(egru_graph_session_step(&s, in, c->n_in + 1, out, c->n_out) == EGRU_ERR_WRONG_INPUT);
        CHECK(egru_graph_session_step(&s, in, c->n_in, out, c->n_out - 1) == EGRU_ERR_OUTPUT_SIZE);
        CHECK(egru_graph_session_step(&s, NULL, c->n_in, out, c->n_out) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_step(&s, in, c->n_in, NULL, c->n_out) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_step(NULL, in, c->n_in, out, c->n_out) == EGRU_ERR_NULL_ARG);
        out[last].count += 1;
        CHECK(egru_graph_session_step(&s, in, c->n_in, out, c->n_out) == EGRU_ERR_OUTPUT_SIZE);
        out[last].count -= 1;
        out[0].data = NULL;
        CHECK(egru_graph_session_step(&s, in, c->n_in, out, c->n_out) == EGRU_ERR_NULL_ARG);
        out[0].data = step_out[0];
        in[0].data = NULL; /* a sequence input: always needed */
        CHECK(egru_graph_session_step(&s, in, c->n_in, out, c->n_out) == EGRU_ERR_NULL_ARG);
        in[0].data = sbuf[0];
        sbuf[0][c->in_width[0] + 1] = INFINITY;
        CHECK(egru_graph_session_step(&s, in, c->n_in, out, c->n_out) == EGRU_ERR_NONFINITE);
        sbuf[0][c->in_width[0] + 1] = NAN;
        CHECK(egru_graph_session_step(&s, in, c->n_in, out, c->n_out) == EGRU_ERR_NONFINITE);
        if (has_state) {
            CHECK(egru_graph_session_get_state(&s, 0, after, count) == EGRU_OK);
            CHECK(memcmp(before, after, count * sizeof(float)) == 0);
        }
        CHECK(s.steps == steps);
    }
    {
        egru_graph_session_t zero;
        memset(&zero, 0, sizeof zero);
        CHECK(egru_graph_session_step(&zero, in, c->n_in, NULL, 0) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_reset(&zero) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_reset(NULL) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_state_size(&zero, 0, &count) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_init(&zero, &m, 0, smem, sizeof smem) == EGRU_ERR_BAD_SHAPE);
        CHECK(egru_graph_session_init(&zero, NULL, 1, smem, sizeof smem) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_init(&zero, &m, 1, NULL, sizeof smem) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_init(NULL, &m, 1, smem, sizeof smem) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_size(&m, 0, &bytes) == EGRU_ERR_BAD_SHAPE);
        CHECK(egru_graph_session_size(&m, 0xFFFFFFFFu, &bytes) == EGRU_OK ||
              egru_graph_session_size(&m, 0xFFFFFFFFu, &bytes) == EGRU_ERR_BAD_SHAPE);
        CHECK(egru_graph_session_size(NULL, 1, &bytes) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_size(&m, 1, NULL) == EGRU_ERR_NULL_ARG);
        CHECK(egru_graph_session_check(NULL, &node) == EGRU_ERR_NULL_ARG);
    }
}

static void test_refused(const graph_case_t *c, uint32_t first)
{
    egru_model_t m;
    egru_graph_session_t s;
    size_t bytes = 0;
    uint32_t node = 0;
    printf("case %s (refused)\n", c->name);
    CHECK(egru_model_init(&m, c->blob, c->size) == EGRU_OK);
    CHECK(egru_graph_session_check(&m, &node) == EGRU_ERR_UNSUPPORTED && node == first);
    CHECK(egru_graph_session_check(&m, NULL) == EGRU_ERR_UNSUPPORTED);
    CHECK(egru_graph_session_size(&m, 1, &bytes) == EGRU_ERR_UNSUPPORTED);
    CHECK(egru_graph_session_init(&s, &m, 1, smem, sizeof smem) == EGRU_ERR_UNSUPPORTED);
    CHECK(s.model == NULL);
}

/* A chain streams with egru_session_*; the graph functions refuse it. */
static void test_chain(void)
{
    egru_model_t m;
    egru_graph_session_t s;
    size_t bytes = 0;
    uint32_t node = 7;
    CHECK(egru_model_init(&m, chain_blob, sizeof chain_blob) == EGRU_OK);
    CHECK(egru_session_check(&m, NULL) == EGRU_OK);
    CHECK(egru_graph_session_check(&m, &node) == EGRU_ERR_WRONG_INPUT && node == 7);
    CHECK(egru_graph_session_size(&m, 1, &bytes) == EGRU_ERR_WRONG_INPUT);
    CHECK(egru_graph_session_init(&s, &m, 1, smem, sizeof smem) == EGRU_ERR_WRONG_INPUT);
    CHECK(s.model == NULL);
}

int main(void)
{
    size_t k;
    egru_model_t zero;
    (void)put32; /* egru_test.h's writers: not needed here */
    graph_load_blobs();
    memset(&zero, 0, sizeof zero);
    CHECK(egru_graph_session_check(&zero, NULL) == EGRU_ERR_BAD_LAYER);
    for (k = 0; k < sizeof graph_cases / sizeof graph_cases[0]; ++k) {
        const graph_case_t *c = &graph_cases[k];
        if (strncmp(c->name, "masks", 5) == 0) {
            test_refused(c, 9); /* "masks": the Concatenate along time */
        } else {
            test_streams(c); /* "states", "deep" */
        }
    }
    test_chain();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
