/*
 * test_graph.c - graph files (docs/format.md "Graphs") and egru_run: the reader's rules on
 * hostile files (each rule broken with valid checksums, every truncation, every byte flipped),
 * the io description, the steps, both arena plans (outputs within tolerance of a float64 numpy
 * evaluation, tests/graph_cases.py, and equal bit for bit between the plans and to a run of
 * fewer rows), the up-front input checks, and egru_run on a chain. Data:
 * egru_graph_models.h (gen_graph_models.py): each hostile variant is its base file plus a patch
 * (length, (offset, byte) edits), rebuilt here in a static buffer.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edgegru.h"
#include "egru_graph_models.h"
#include "egru_test.h"

#define ARENA_BYTES (8u << 20)
#define OUT_FLOATS  (1u << 18)

static uint8_t arena[ARENA_BYTES] __attribute__((aligned(64)));
static uint8_t copy[1u << 16] __attribute__((aligned(64)));
static float outs[2][GRAPH_MAX_IO][OUT_FLOATS / GRAPH_MAX_IO];
static uint8_t variant[GRAPH_VARIANT_MAX] __attribute__((aligned(64)));

#if defined(__SANITIZE_ADDRESS__)
#define GRAPH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GRAPH_ASAN 1
#endif
#endif
#ifdef GRAPH_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* Under AddressSanitizer, bytes [n, cap) of buf become unaddressable and [0, n) addressable, so
 * a reader that looks past the n bytes it was given fails here as it would past the end of an
 * n-byte array; elsewhere a no-op. buf: cap bytes, n <= cap. */
static void fence(uint8_t *buf, size_t cap, size_t n)
{
#ifdef GRAPH_ASAN
    ASAN_UNPOISON_MEMORY_REGION(buf, cap);
    ASAN_POISON_MEMORY_REGION(buf + n, cap - n);
#else
    (void)buf;
    (void)cap;
    (void)n;
#endif
}

/* Hostile variant b rebuilt in `variant` (64-byte aligned, as a model file must be): the first
 * b->size bytes of its base file (zeros past the base's end), its patch written over them. The
 * bytes past b->size are fenced off (fence). Returns variant; valid until the next call. */
static const uint8_t *build_variant(const graph_hostile_t *b)
{
    const size_t keep = b->size < b->base_size ? b->size : b->base_size;
    uint32_t k;
    fence(variant, sizeof variant, sizeof variant);
    memcpy(variant, b->base, keep);
    memset(variant + keep, 0, b->size - keep);
    for (k = 0; k < b->patch_count; ++k) {
        const graph_patch_t *p = &graph_patch[b->patch_first + k];
        variant[p->offset] = p->byte;
    }
    fence(variant, sizeof variant, b->size);
    return variant;
}

static egru_status_t run(const egru_model_t *m, const graph_case_t *c, uint32_t batch,
                         uint32_t row0, float (*dst)[OUT_FLOATS / GRAPH_MAX_IO], size_t arena_bytes)
{
    egru_input_t in[GRAPH_MAX_IO];
    egru_output_t out[GRAPH_MAX_IO];
    uint32_t i;
    for (i = 0; i < c->n_in; ++i) {
        const size_t row = (size_t)(c->in_kind[i] == 3 ? 1u : c->in_steps[i]) *
                           (c->in_kind[i] == 1 ? 1u : c->in_width[i]);
        in[i].data = c->in_kind[i] == 1 ? (const void *)((const int32_t *)c->in[i] + row0 * row)
                                        : (const void *)((const float *)c->in[i] + row0 * row);
        in[i].steps = c->in_steps[i];
    }
    for (i = 0; i < c->n_out; ++i) {
        out[i].data = dst[i];
        out[i].count = (size_t)batch * c->out_steps[i] * c->out_width[i];
    }
    return egru_run(m, batch, in, c->n_in, out, c->n_out, arena, arena_bytes);
}

static int close_to(const float *a, const float *b, size_t n, float tol)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        const float d = fabsf(a[i] - b[i]);
        if (!(d <= tol * (1.0f + fabsf(b[i]))) && !(isnan(a[i]) && isnan(b[i]))) {
            printf("  at %zu: %.9g vs %.9g\n", i, (double)a[i], (double)b[i]);
            return 0;
        }
    }
    return 1;
}

static void test_case(const graph_case_t *c)
{
    egru_model_t m;
    egru_io_info_t info;
    uint32_t n_in = 0, n_out = 0, i, steps;
    size_t fast = 0, low = 0, count;
    float *x;
    int32_t *ids;
    printf("case %s\n", c->name);
    CHECK(egru_model_init(&m, c->blob, c->size) == EGRU_OK);
    CHECK(egru_model_io(&m, &n_in, &n_out) == EGRU_OK && n_in == c->n_in && n_out == c->n_out);
    for (i = 0; i < n_in; ++i) {
        CHECK(egru_model_input(&m, i, &info) == EGRU_OK && info.kind == c->in_kind[i] &&
              info.width == c->in_width[i]);
    }
    for (i = 0; i < n_out; ++i) {
        CHECK(egru_model_output(&m, i, &info) == EGRU_OK && info.kind == c->out_kind[i] &&
              info.width == c->out_width[i]);
        CHECK(egru_run_output_steps(&m, c->in_steps, i, &steps) == EGRU_OK &&
              steps == c->out_steps[i]);
    }
    CHECK(egru_model_input(&m, n_in, &info) == EGRU_ERR_INDEX);
    CHECK(egru_model_output(&m, n_out, &info) == EGRU_ERR_INDEX);
    CHECK(egru_run_output_steps(&m, c->in_steps, n_out, &steps) == EGRU_ERR_INDEX);
    CHECK(egru_run_arena_size(&m, c->batch, c->in_steps, 0, &fast) == EGRU_OK);
    CHECK(egru_run_arena_size(&m, c->batch, c->in_steps, 1, &low) == EGRU_OK);
    CHECK(low <= fast && fast <= ARENA_BYTES);
    printf("  arena: fast %zu, low-memory %zu bytes\n", fast, low);
    if (strcmp(c->name, "deep") == 0) {
        /* 8 intermediate values of batch * T * 8 floats: two live at a time, so the fast plan
         * holds two regions (and the Dense scratch), not eight. */
        const size_t value = (size_t)c->batch * c->in_steps[0] * 8u * sizeof(float);
        CHECK(fast >= 2u * value && fast <= 2u * value + 1024u);
        CHECK(low <= 2u * (value / c->batch) + 512u);
    }
    /* The single-input functions refuse a graph; graphs do not stream. */
    CHECK(egru_arena_size(&m, 1, 4, &count) == EGRU_ERR_WRONG_INPUT);
    CHECK(egru_arena_size_min(&m, 1, 4, &count) == EGRU_ERR_WRONG_INPUT);
    CHECK(egru_output_count(&m, 1, 4, &count) == EGRU_ERR_WRONG_INPUT);
    CHECK(egru_forward_features(&m, outs[1][0], 1, 1, outs[1][1], 1, arena, ARENA_BYTES) ==
          EGRU_ERR_WRONG_INPUT);
    CHECK(egru_session_check(&m, NULL) == EGRU_ERR_UNSUPPORTED);
    CHECK(egru_model_fold_size(&m, &count) == EGRU_ERR_UNSUPPORTED);

    /* The fast plan, then the low-memory one: expected values, equal bits. */
    CHECK(run(&m, c, c->batch, 0, outs[0], fast) == EGRU_OK);
    for (i = 0; i < n_out; ++i) {
        CHECK(close_to(outs[0][i], c->expected[i], c->expected_count[i], c->tol));
    }
    memset(outs[1], 0xAB, sizeof outs[1]);
    CHECK(run(&m, c, c->batch, 0, outs[1], low) == EGRU_OK);
    for (i = 0; i < n_out; ++i) {
        CHECK(memcmp(outs[0][i], outs[1][i], c->expected_count[i] * sizeof(float)) == 0);
    }
    CHECK(run(&m, c, c->batch, 0, outs[1], low - 1) == EGRU_ERR_ARENA_TOO_SMALL);
    /* Rows 1.. alone give the same bits (batch invariance; a different block split). */
    if (c->batch > 1) {
        CHECK(run(&m, c, c->batch - 1, 1, outs[1], ARENA_BYTES) == EGRU_OK);
        for (i = 0; i < n_out; ++i) {
            const size_t row = c->expected_count[i] / c->batch;
            CHECK(memcmp(outs[0][i] + row, outs[1][i],
                         (c->expected_count[i] - row) * sizeof(float)) == 0);
        }
    }
    /* Packed recurrent weights (what the Python layer does for the SIMD sets): the same
     * values, both plans still equal. */
    {
        static float pack[1u << 16];
        size_t pack_bytes = 0;
        egru_model_t packed = m;
        CHECK(egru_model_pack_size(&packed, &pack_bytes) == EGRU_OK && pack_bytes <= sizeof pack);
        CHECK(egru_model_pack(&packed, pack, sizeof pack) == EGRU_OK);
        CHECK(run(&packed, c, c->batch, 0, outs[1], fast) == EGRU_OK);
        for (i = 0; i < n_out; ++i) {
            CHECK(close_to(outs[1][i], c->expected[i], c->expected_count[i], c->tol));
        }
        CHECK(run(&packed, c, c->batch, 0, outs[0], low) == EGRU_OK);
        for (i = 0; i < n_out; ++i) {
            CHECK(memcmp(outs[0][i], outs[1][i], c->expected_count[i] * sizeof(float)) == 0);
        }
    }
    /* The caller's mistakes, each found before any output is written. */
    {
        egru_input_t in[GRAPH_MAX_IO];
        egru_output_t out[GRAPH_MAX_IO];
        for (i = 0; i < c->n_in; ++i) {
            in[i].data = c->in[i];
            in[i].steps = c->in_steps[i];
        }
        for (i = 0; i < c->n_out; ++i) {
            out[i].data = outs[1][i];
            out[i].count = c->expected_count[i];
        }
        CHECK(egru_run(&m, c->batch, in, n_in - 1, out, n_out, arena, fast) ==
              EGRU_ERR_WRONG_INPUT);
        CHECK(egru_run(&m, c->batch, in, n_in, out, n_out - 1, arena, fast) ==
              EGRU_ERR_OUTPUT_SIZE);
        out[n_out - 1].count += 1;
        CHECK(egru_run(&m, c->batch, in, n_in, out, n_out, arena, fast) == EGRU_ERR_OUTPUT_SIZE);
        out[n_out - 1].count -= 1;
        CHECK(egru_run(&m, 0, in, n_in, out, n_out, arena, fast) == EGRU_ERR_BAD_SHAPE);
        CHECK(egru_run(&m, c->batch, in, n_in, NULL, n_out, arena, fast) == EGRU_ERR_NULL_ARG);
        for (i = 0; i < n_in; ++i) {
            if (c->in_kind[i] == 3) {
                continue;
            }
            in[i].steps = 0;
            CHECK(egru_run(&m, c->batch, in, n_in, out, n_out, arena, fast) == EGRU_ERR_BAD_SHAPE);
            in[i].steps = c->in_steps[i];
        }
        for (i = 0; i < n_in; ++i) { /* a bad value in the last row of each input */
            const size_t n = (size_t)c->batch * (c->in_kind[i] == 3 ? 1u : c->in_steps[i]) *
                             (c->in_kind[i] == 1 ? 1u : c->in_width[i]);
            memset(outs[1], 0x5A, sizeof outs[1]);
            if (c->in_kind[i] == 1) {
                ids = (int32_t *)(void *)copy;
                memcpy(ids, c->in[i], n * sizeof *ids);
                ids[n - 1] = (int32_t)c->in_width[i];
                in[i].data = ids;
                CHECK(egru_run(&m, c->batch, in, n_in, out, n_out, arena, fast) ==
                      EGRU_ERR_TOKEN_RANGE);
                ids[n - 1] = -1;
                CHECK(egru_run(&m, c->batch, in, n_in, out, n_out, arena, fast) ==
                      EGRU_ERR_TOKEN_RANGE);
            } else {
                x = (float *)(void *)copy;
                memcpy(x, c->in[i], n * sizeof *x);
                x[n - 1] = NAN;
                in[i].data = x;
                CHECK(egru_run(&m, c->batch, in, n_in, out, n_out, arena, fast) ==
                      EGRU_ERR_NONFINITE);
                x[n - 1] = INFINITY;
                CHECK(egru_run(&m, c->batch, in, n_in, out, n_out, arena, fast) ==
                      EGRU_ERR_NONFINITE);
            }
            CHECK(((const uint8_t *)outs[1])[0] == 0x5A &&
                  ((const uint8_t *)outs[1])[sizeof outs[1] - 1] == 0x5A);
            in[i].data = c->in[i];
        }
    }
}

static void test_hostile(void)
{
    size_t h, n, k;
    egru_model_t m;
    const graph_case_t *c = &graph_cases[0];
    for (h = 0; h < sizeof graph_hostile / sizeof graph_hostile[0]; ++h) {
        const graph_hostile_t *b = &graph_hostile[h];
        const egru_status_t s = egru_model_init(&m, build_variant(b), b->size);
        if (s != (egru_status_t)b->status) {
            printf("  %s: got %d (%s), want %d\n", b->name, (int)s, egru_status_str(s), b->status);
        }
        CHECK(s == (egru_status_t)b->status);
        CHECK(m.layer_count == 0);
    }
    /* Every truncation, every byte flipped (the checksums, or else a rule, catch each). */
    CHECK(c->size <= sizeof copy);
    for (n = 0; n < c->size; ++n) {
        fence(copy, sizeof copy, n);
        memcpy(copy, c->blob, n);
        CHECK(egru_model_init(&m, copy, n) != EGRU_OK);
    }
    fence(copy, sizeof copy, sizeof copy);
    for (k = 0; k < c->size; ++k) {
        memcpy(copy, c->blob, c->size);
        copy[k] ^= 0x41;
        if (egru_model_init(&m, copy, c->size) == EGRU_OK) {
            printf("  byte %zu flipped: accepted\n", k);
            ++failed;
        } else {
            ++passed;
        }
    }
    /* Trusted payload: the payload CRC is skipped, the rules still hold. */
    for (h = 0; h < sizeof graph_hostile / sizeof graph_hostile[0]; ++h) {
        const graph_hostile_t *b = &graph_hostile[h];
        CHECK(egru_model_init_flags(&m, build_variant(b), b->size, EGRU_INIT_TRUSTED_PAYLOAD) ==
              (egru_status_t)b->status);
    }
}

/* Random edits of a graph file's payload with the checksums made valid again: the reader
 * refuses or accepts each without reading out of bounds (ASan: make check-sanitize), and an
 * accepted one runs (when its inputs still fit the case's buffers) without a crash, the low-memory
 * plan giving the fast plan's bits. */
static void test_structural_corruption(const graph_case_t *c, uint32_t iterations)
{
    static float got[2][GRAPH_MAX_IO][4096];
    uint32_t it, state = 0x9E3779B9u, accepted = 0, ran = 0;
    const uint32_t data_off = (uint32_t)c->blob[48] | (uint32_t)c->blob[49] << 8 |
                              (uint32_t)c->blob[50] << 16 | (uint32_t)c->blob[51] << 24;
    for (it = 0; it < iterations; ++it) {
        egru_model_t m;
        uint32_t n_in, n_out, i, e, edits;
        size_t fast, low;
        int fits = 1;
        memcpy(copy, c->blob, c->size);
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        edits = 1u + state % 3u;
        for (e = 0; e < edits; ++e) {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            /* mostly the tables (before the data section), where the structure is */
            copy[128u + state % ((state & 0x300u) ? data_off - 128u : (uint32_t)c->size - 128u)] ^=
                (uint8_t)(1u << (state >> 29));
        }
        put32(copy + 120, egru_crc32(0, copy + 128, c->size - 128));
        put32(copy + 124, egru_crc32(0, copy, 124));
        if (egru_model_init(&m, copy, c->size) != EGRU_OK) {
            continue;
        }
        ++accepted;
        if (egru_model_io(&m, &n_in, &n_out) != EGRU_OK || n_in != c->n_in ||
            n_out > GRAPH_MAX_IO) {
            continue;
        }
        for (i = 0; i < n_in; ++i) {
            egru_io_info_t info;
            fits = fits && egru_model_input(&m, i, &info) == EGRU_OK &&
                   info.kind == c->in_kind[i] && info.width == c->in_width[i];
        }
        if (!fits || egru_run_arena_size(&m, c->batch, c->in_steps, 0, &fast) != EGRU_OK ||
            egru_run_arena_size(&m, c->batch, c->in_steps, 1, &low) != EGRU_OK ||
            fast > ARENA_BYTES) {
            continue;
        }
        {
            egru_input_t in[GRAPH_MAX_IO];
            egru_output_t out[2][GRAPH_MAX_IO];
            egru_status_t s0, s1;
            for (i = 0; i < n_in; ++i) {
                in[i].data = c->in[i];
                in[i].steps = c->in_steps[i];
            }
            for (i = 0; i < n_out; ++i) {
                egru_io_info_t info;
                uint32_t steps = 0;
                (void)egru_model_output(&m, i, &info);
                fits = fits && egru_run_output_steps(&m, c->in_steps, i, &steps) == EGRU_OK &&
                       (uint64_t)c->batch * steps * info.width <= 4096u;
                out[0][i].data = got[0][i];
                out[1][i].data = got[1][i];
                out[0][i].count = out[1][i].count = (size_t)c->batch * steps * info.width;
            }
            if (!fits) {
                continue;
            }
            ++ran;
            s0 = egru_run(&m, c->batch, in, n_in, out[0], n_out, arena, fast);
            s1 = egru_run(&m, c->batch, in, n_in, out[1], n_out, arena, low);
            CHECK(s0 == s1);
            for (i = 0; s0 == EGRU_OK && i < n_out; ++i) {
                CHECK(memcmp(got[0][i], got[1][i], out[0][i].count * sizeof(float)) == 0);
            }
        }
    }
    printf("  %s: %u random edits, %u accepted, %u run\n", c->name, iterations, accepted, ran);
}

static void test_chain(void)
{
    egru_model_t m;
    egru_input_t in;
    egru_output_t out;
    uint32_t n_in, n_out, steps = 4, got;
    size_t a, b;
    egru_io_info_t info;
    CHECK(egru_model_init(&m, chain_blob, sizeof chain_blob) == EGRU_OK);
    CHECK(egru_model_io(&m, &n_in, &n_out) == EGRU_OK && n_in == 1 && n_out == 1);
    CHECK(egru_model_input(&m, 0, &info) == EGRU_OK && info.kind == EGRU_VALUE_SEQUENCE &&
          info.width == 3);
    CHECK(egru_model_output(&m, 0, &info) == EGRU_OK && info.kind == EGRU_VALUE_SEQUENCE &&
          info.width == 4);
    CHECK(egru_model_input(&m, 1, &info) == EGRU_ERR_INDEX);
    CHECK(egru_run_output_steps(&m, &steps, 0, &got) == EGRU_OK && got == 4);
    CHECK(egru_run_arena_size(&m, 5, &steps, 0, &a) == EGRU_OK);
    CHECK(egru_arena_size(&m, 5, 4, &b) == EGRU_OK && a == b);
    CHECK(egru_run_arena_size(&m, 5, &steps, 1, &a) == EGRU_OK);
    CHECK(egru_arena_size_min(&m, 5, 4, &b) == EGRU_OK && a == b);
    in.data = chain_in;
    in.steps = 4;
    out.data = outs[0][0];
    out.count = 5 * 4 * 4;
    CHECK(egru_run(&m, 5, &in, 1, &out, 1, arena, ARENA_BYTES) == EGRU_OK);
    CHECK(close_to(outs[0][0], chain_out, 80, 2e-5f));
    CHECK(egru_forward_features(&m, chain_in, 5, 4, outs[1][0], 80, arena, ARENA_BYTES) == EGRU_OK);
    CHECK(memcmp(outs[0][0], outs[1][0], 80 * sizeof(float)) == 0);
    CHECK(egru_run(&m, 5, &in, 2, &out, 1, arena, ARENA_BYTES) == EGRU_ERR_WRONG_INPUT);
    CHECK(egru_run(&m, 5, &in, 1, &out, 2, arena, ARENA_BYTES) == EGRU_ERR_OUTPUT_SIZE);
    out.count = 79;
    CHECK(egru_run(&m, 5, &in, 1, &out, 1, arena, ARENA_BYTES) == EGRU_ERR_OUTPUT_SIZE);
}

int main(void)
{
    size_t c;
    graph_load_blobs();
    for (c = 0; c < sizeof graph_cases / sizeof graph_cases[0]; ++c) {
        test_case(&graph_cases[c]);
    }
    test_hostile();
    test_structural_corruption(&graph_cases[0], 10000);
    test_structural_corruption(&graph_cases[1], 10000);
    test_chain();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
