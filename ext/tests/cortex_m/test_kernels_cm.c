/*
 * test_kernels_cm.c - ext/tests/test_kernels.c on a Cortex-M core (make check-cortex-m): the same
 * test functions, against the same double-precision and reference results, for the sets an
 * M-profile build has (ref and cortex_m; AUTO must be cortex_m there). test_kernels.c's product
 * test (441 shapes x 1-9 rows of X, its bound computed in double, which these FPUs do in
 * software) takes about a minute per set under QEMU on the M4F, so it runs whole on the cortex_m
 * set where that set has its own assembly (FPU: EGRU_CM_FULL_PRODUCTS=1, set by the Makefile for
 * the M4F and M7); every set on every core also runs the same checks on the shapes below, which
 * cover every column tail of the 8- and 4-wide blocks and every row tail of the 4-row blocks, and
 * the model shapes of docs/kernels.md ("Cortex-M"). Prints "N passed, N failed" like
 * test_kernels.c and exits non-zero on any failure.
 */
int egru_test_kernels_main(void); /* test_kernels.c's main, renamed: not run here */
#define main egru_test_kernels_main
#include "../test_kernels.c"
#undef main

#include "edgegru.h"

#ifndef EGRU_CM_FULL_PRODUCTS
#define EGRU_CM_FULL_PRODUCTS 0
#endif

/* test_products' checks on fewer shapes: rows {1..5, 7, 8, 9, 16, 17, 48, 65, 192} x cols
 * {1..9, 12, 13, 15, 16, 17, 24, 31, 33, 64, 65, 70}, n = 1..3 rows of X. */
static void test_products_cm(const egru_kernel_set_t *k)
{
    const uint32_t rs[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 48, 65, 192};
    const uint32_t cs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 16, 17, 24, 31, 33, 64, 65, 70};
    uint32_t a, b, n, i, r, bad = 0, cases = 0;
    for (a = 0; a < sizeof rs / sizeof *rs; ++a) {
        for (b = 0; b < sizeof cs / sizeof *cs; ++b) {
            const uint32_t rows = rs[a], cols = cs[b];
            for (i = 0; i < rows * cols; ++i) {
                w[i] = uniform();
            }
            for (i = 0; i < MAX_N * cols; ++i) {
                x[i] = uniform() * 3.0f;
            }
            for (i = 0; i < rows; ++i) {
                bias[i] = uniform();
            }
            for (n = 1; n <= 3; ++n) {
                const float *bb = (n % 2) ? bias : NULL;
                guard_set(y, n * rows);
                k->matmul_f32(w, x, bb, y, n, rows, cols);
                bad += guard_hit(y, n * rows);
                for (i = 0; i < n; ++i) {
                    for (r = 0; r < rows; ++r) {
                        bad += !within_bound(y[i * rows + r], r, x + i * cols, cols, bb);
                    }
                }
                pack(rows, cols, rows + PAD);
                guard_set(y, n * rows);
                k->matmul_t_f32(wt, rows + PAD, x, bb, y, n, rows, cols);
                bad += guard_hit(y, n * rows);
                for (i = 0; i < n; ++i) {
                    for (r = 0; r < rows; ++r) {
                        bad += !within_bound(y[i * rows + r], r, x + i * cols, cols, bb);
                    }
                }
                cases += 2;
            }
            guard_set(y, rows);
            k->matvec_f32(w, x, bias, y, rows, cols);
            bad += guard_hit(y, rows);
            for (r = 0; r < rows; ++r) {
                bad += !within_bound(y[r], r, x, cols, bias);
            }
            guard_set(y, rows);
            k->matvec_t_f32(wt, rows + PAD, x, NULL, y, rows, cols);
            bad += guard_hit(y, rows);
            for (r = 0; r < rows; ++r) {
                bad += !within_bound(y[r], r, x, cols, NULL);
            }
            cases += 2;
        }
    }
    CHECK(bad == 0, "%s: %u products outside the bound in %u cases (Cortex-M shapes)", k->name, bad,
          cases);
}

/* The cortex_m set against the reference, float products bit for bit: each row adds its products
 * in column order with one rounded multiply and one rounded add (VMLA), as egru_matvec_f32 does,
 * so on these IEEE single-precision cores (hardware FPU or soft float) they are equal. */
static void test_products_equal_ref(const egru_kernel_set_t *k)
{
    const egru_kernel_set_t *ref = egru_kernels_ref();
    const uint32_t rs[] = {1, 3, 4, 5, 8, 9, 48, 192};
    const uint32_t cs[] = {1, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 64, 70};
    static float y_ref[MAX_N * MAX_ROWS];
    uint32_t a, b, i, bad = 0;
    for (a = 0; a < sizeof rs / sizeof *rs; ++a) {
        for (b = 0; b < sizeof cs / sizeof *cs; ++b) {
            const uint32_t rows = rs[a], cols = cs[b];
            for (i = 0; i < rows * cols; ++i) {
                w[i] = uniform();
            }
            for (i = 0; i < 2 * cols; ++i) {
                x[i] = uniform() * 3.0f;
            }
            for (i = 0; i < rows; ++i) {
                bias[i] = uniform();
            }
            ref->matmul_f32(w, x, bias, y_ref, 2, rows, cols);
            k->matmul_f32(w, x, bias, y, 2, rows, cols);
            bad += memcmp(y, y_ref, 2 * rows * sizeof *y) != 0;
            ref->matvec_f32(w, x, NULL, y_ref, rows, cols);
            k->matvec_f32(w, x, NULL, y, rows, cols);
            bad += memcmp(y, y_ref, rows * sizeof *y) != 0;
        }
    }
    CHECK(bad == 0, "%s: float products differ from the reference's bits in %u cases", k->name,
          bad);
}

#if EGRU_CFG_INT16X8
/* 32 random bits (the file's generator). */
static uint32_t bits32(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 32);
}

/* The int16x8 product (egru_matvec_s8_s16) of set k against the reference, bit for bit: rows
 * 1..9, 16, 17, 33, 192; cols 1..17 (every tail of the 8-column blocks and the 4-column step),
 * 64, 127..129 (the 128-column slices), 516 (the widest int32 sum) and 517, 700 (the reference's
 * blocks); random and extreme weights and x (+-127, +-32767), multipliers with n from 0 to 62
 * (the n >= 33 fast path and the others), (0, 0), and biases up to +-2^30; unaligned w. */
static void test_s16_cm(const egru_kernel_set_t *k)
{
    static int8_t wbuf[192 * 700 + 3];
    static int16_t xs[700];
    static int32_t m[192], n[192], b[192], g[192], g_ref[192];
    const uint32_t rs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 33, 192};
    const uint32_t cs[] = {1,  2,  3,  4,  5,  6,  7,   8,   9,   10,  11,  12,
                           13, 14, 15, 16, 17, 64, 127, 128, 129, 516, 517, 700};
    uint32_t a, c, i, r, bad = 0, cases = 0, mode;
    for (mode = 0; mode < 3; ++mode) { /* 0: random, 1: extreme values, 2: unaligned rows */
        for (a = 0; a < sizeof rs / sizeof rs[0]; ++a) {
            for (c = 0; c < sizeof cs / sizeof cs[0]; ++c) {
                const uint32_t rows = rs[a], cols = cs[c];
                int8_t *ws = wbuf + (mode == 2 ? 1 + (cols & 1) : 0);
                if ((uint64_t)rows * cols > 192u * 700u) {
                    continue;
                }
                for (i = 0; i < rows * cols; ++i) {
                    const int32_t v = (int32_t)(bits32() % 255u) - 127;
                    ws[i] = (int8_t)(mode == 1 ? (v < 0 ? -127 : 127) : v);
                }
                for (i = 0; i < cols; ++i) {
                    const int32_t v = (int32_t)(bits32() % 65535u) - 32767;
                    xs[i] = (int16_t)(mode == 1 ? (v < 0 ? -32767 : 32767) : v);
                }
                for (r = 0; r < rows; ++r) {
                    const uint32_t kind = bits32() % 8u;
                    m[r] = kind == 0 ? 0 : (int32_t)(0x40000000u + (bits32() & 0x3FFFFFFFu));
                    n[r] = kind == 0 ? 0
                                     : (int32_t)(kind == 1 ? bits32() % 33u : 20u + bits32() % 43u);
                    b[r] = (int32_t)(bits32() % 0x7FFFFFFFu) - 0x3FFFFFFF;
                }
                egru_matvec_s8_s16(ws, xs, m, n, b, g_ref, rows, cols);
                k->matvec_s8_s16(ws, xs, m, n, b, g, rows, cols);
                bad += memcmp(g, g_ref, rows * sizeof *g) != 0;
                ++cases;
            }
        }
    }
    CHECK(bad == 0 && cases > 0, "%s: matvec_s8_s16 differs from the reference in %u of %u cases",
          k->name, bad, cases);
}

#ifdef EGRU_CM_GRU_TAIL_S16
/* The specification's primitives, in int64 (egru_q16.h's inline ones, written again here; its
 * header would shadow this file's globals): satG, sat16, rshift (round half up). The tables'
 * sigmoid and tanh are the runtime's functions. */
int32_t egru_q16_sigmoid(int32_t g);
int32_t egru_q16_tanh(int32_t g);

static int64_t spec_clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static int64_t spec_sat_g(int64_t v)
{
    return spec_clamp(v, -1073741824, 1073741824);
}

static int64_t spec_sat16(int64_t v)
{
    return spec_clamp(v, -32767, 32767);
}

static int64_t spec_rshift15(int64_t v) /* floor((v + 2^14) / 2^15), |v| < 2^62 */
{
    const int64_t t = v + 16384;
    return t >= 0 ? t / 32768 : -((-t + 32767) / 32768);
}

/* A G value: uniform over G, or near an edge the tail's 32-bit arithmetic handles (+-2^30, the
 * sigmoid's and tanh's clamps 2^20 - 1 and 2^19 - 1, 0), or small. */
static int32_t g_value(void)
{
    static const int32_t edges[] = {0,          1,           -1,       1073741824, -1073741824,
                                    1073741823, -1073741823, 1048575,  -1048575,   1048576,
                                    -1048576,   1048577,     -1048577, 524287,     -524287,
                                    524288,     -524288,     2047,     -2048,      536870912};
    const uint32_t kind = bits32() % 4u;
    if (kind == 0) {
        return edges[bits32() % (sizeof edges / sizeof edges[0])];
    }
    if (kind == 1) {
        return (int32_t)(bits32() % 4194305u) - 2097152; /* |g| <= 2^21 */
    }
    return (int32_t)(bits32() % 2147483649u) - 1073741824; /* [-2^30, 2^30] */
}

/* The element-wise GRU tail (egru_gru_tail_s16_cortex_m) against the specification's formulas
 * written here with egru_q16.h's 64-bit primitives (edgegru.int16x8._gru_step): both reset modes,
 * units 1..9, 16, 64, 65; G sums uniform over G and at its edges (+-2^30, where the sums
 * saturate), z in U with its ends, states over all of int16 (-32768 included). */
static void test_gru_tail_s16_cm(void)
{
    static int32_t gx[3 * 65], gh[3 * 65];
    static int16_t h[65], want[65];
    const uint32_t us[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 64, 65};
    uint32_t a, i, j, rep, bad = 0, cases = 0;
    int ra;
    for (ra = 0; ra < 2; ++ra) {
        for (a = 0; a < sizeof us / sizeof us[0]; ++a) {
            for (rep = 0; rep < 40; ++rep) {
                const uint32_t u = us[a];
                for (i = 0; i < 3u * u; ++i) {
                    gx[i] = g_value();
                    gh[i] = g_value();
                }
                for (j = 0; j < u; ++j) {
                    const uint32_t e = bits32() % 8u;
                    h[j] = (int16_t)(e == 0   ? -32768
                                     : e == 1 ? 32767
                                     : e == 2 ? -32767
                                              : (int32_t)(bits32() & 0xFFFFu) - 32768);
                    if (!ra) { /* z in U */
                        const uint32_t zk = bits32() % 6u;
                        gx[j] = zk == 0 ? 0 : zk == 1 ? 32768 : (int32_t)(bits32() % 32769u);
                    }
                }
                for (j = 0; j < u; ++j) {
                    int64_t z, n, hh;
                    if (ra) {
                        const int64_t r =
                            egru_q16_sigmoid((int32_t)spec_sat_g((int64_t)gx[u + j] + gh[u + j]));
                        z = egru_q16_sigmoid((int32_t)spec_sat_g((int64_t)gx[j] + gh[j]));
                        n = spec_sat_g((int64_t)gx[2u * u + j] +
                                       spec_sat_g(spec_rshift15(r * gh[2u * u + j])));
                    } else {
                        z = gx[j];
                        n = gx[2u * u + j];
                    }
                    hh = spec_sat16(egru_q16_tanh((int32_t)n));
                    want[j] = (int16_t)spec_sat16(spec_rshift15(z * h[j] + (32768 - z) * hh));
                }
                egru_gru_tail_s16_cortex_m(gx, gh, h, u, ra);
                bad += memcmp(h, want, u * sizeof *h) != 0;
                ++cases;
            }
        }
    }
    CHECK(bad == 0 && cases > 0,
          "cortex_m: the int16x8 GRU tail differs from the specification in %u of %u cases", bad,
          cases);
}
#endif
#endif

int main(void)
{
    const egru_kernel_set_t *sets[2];
    egru_model_t probe;
    uint32_t i;
    sets[0] = egru_kernels_ref();
    sets[1] = egru_kernels_cortex_m();
    memset(&probe, 0, sizeof probe);
    CHECK(egru_kernels_get(EGRU_KERNELS_AUTO) == sets[1] &&
              egru_model_use_kernels(&probe, EGRU_KERNELS_AUTO) == EGRU_OK &&
              strcmp(egru_model_kernels_name(&probe), "cortex_m") == 0,
          "AUTO is not the cortex_m set on this M-profile build");
    printf("kernel set chosen by auto: %s\n", egru_model_kernels_name(&probe));
#if EGRU_CFG_INT16X8 && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    printf("cortex_m int16x8: DSP (SXTB16/SMLAD)\n");
#elif EGRU_CFG_INT16X8 && defined(__thumb2__)
    printf("cortex_m int16x8: Thumb-2 (LDRSB/MLA)\n");
#elif EGRU_CFG_INT16X8 && defined(__ARM_ARCH_6M__)
    printf("cortex_m int16x8: ARMv6-M (LDRSB/MULS)\n");
#endif
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    printf("cortex_m int8: DSP (SMLAD/SXTB16)\n");
#else
    printf("cortex_m int8: portable C\n");
#endif
#if defined(__ARM_FP) && (__ARM_FP & 4)
    printf("cortex_m fp32: FPU (VLDMIA/VMLA)\n");
#else
    printf("cortex_m fp32: portable C (soft float)\n");
#endif
    for (i = 0; i < 2; ++i) {
        printf("kernel set: %s\n", sets[i]->name);
        test_products_cm(sets[i]);
        test_activations(sets[i]);
        test_activations_relative(sets[i]);
        test_activations_nonfinite(sets[i]);
        test_gru_gates(sets[i]);
        test_int8(sets[i]);
        test_int8_nonfinite(sets[i]);
        test_int8_edges(sets[i]);
    }
    test_int8_alt();
#if EGRU_CFG_INT16X8
    test_s16_cm(sets[1]);
#ifdef EGRU_CM_GRU_TAIL_S16
    test_gru_tail_s16_cm();
    printf("cortex_m: int16x8 GRU tail (Thumb-2) checked\n");
#endif
#endif
    test_products_equal_ref(sets[1]);
    test_cortex_m_activations_equal_ref();
    if (EGRU_CM_FULL_PRODUCTS) {
        test_products(sets[1]);
        printf("cortex_m: full product test run\n");
    }
    test_scalar_activations_nonfinite();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
