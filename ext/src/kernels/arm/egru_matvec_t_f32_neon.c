/* egru_matvec_t_f32_neon.c - matrix-vector product on transposed weights, NEON (same contract as
 * egru_matvec_t_f32). Outputs are vectorised: for each input column, x[c] multiplies up to eight
 * 4-lane accumulators (32 rows) at once; rows left over (fewer than four) are scalar, with fmaf.
 * Each y[r] is one fused multiply-add chain over the columns in the reference's order, starting
 * from 0, then the bias, whichever path computes it, so a row's result does not depend on rows or
 * on where its block starts (egru_kernels.h, "Batch invariance"); only the fused multiply-add
 * rounding differs from the reference (docs/kernels.md). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include "../egru_kernels.h"
#include "egru_neon.h"

void egru_matvec_t_f32_neon(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t rows, uint32_t cols);

/* Rows [0, 4 * nv) of the block at wt / bias / y; nv is a constant at every call. */
static inline __attribute__((always_inline)) void block(const float *wt, uint32_t ld,
                                                        const float *x, const float *bias, float *y,
                                                        uint32_t cols, const int nv)
{
    float32x4_t a[8];
    uint32_t c;
    int k;
    for (k = 0; k < nv; ++k) {
        a[k] = vdupq_n_f32(0.0f);
    }
    for (c = 0; c < cols; ++c) {
        const float *col = wt + (uint64_t)c * ld;
        for (k = 0; k < nv; ++k) {
            a[k] = vfmaq_n_f32(a[k], vld1q_f32(col + 4 * k), x[c]);
        }
    }
    for (k = 0; k < nv; ++k) {
        vst1q_f32(y + 4 * k, bias ? vaddq_f32(a[k], vld1q_f32(bias + 4 * k)) : a[k]);
    }
}

void egru_matvec_t_f32_neon(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t rows, uint32_t cols)
{
    uint32_t r = 0, c;
    for (; r + 32 <= rows; r += 32) {
        block(wt + r, ld, x, bias ? bias + r : bias, y + r, cols, 8);
    }
    for (; r + 4 <= rows; r += 4) {
        block(wt + r, ld, x, bias ? bias + r : bias, y + r, cols, 1);
    }
    for (; r < rows; ++r) { /* fmaf: the vector lanes' fused multiply-add, so the same result */
        float acc = 0.0f;
        for (c = 0; c < cols; ++c) {
            acc = fmaf(wt[(uint64_t)c * ld + r], x[c], acc);
        }
        y[r] = bias ? acc + bias[r] : acc;
    }
}
#else
typedef int egru_matvec_t_f32_neon_unused; /* ISO C forbids an empty translation unit */
#endif
