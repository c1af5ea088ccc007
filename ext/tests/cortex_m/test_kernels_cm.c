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
