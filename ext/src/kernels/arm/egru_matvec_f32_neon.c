/* egru_matvec_f32_neon.c - matrix-vector product, NEON (same contract as egru_matvec_f32).
 * Each row's result is this set's canonical sum (egru_neon.h, egru_rowsum4_neon): 4-column chunks
 * alternating between two accumulators, the last chunk zero-padded, then the fixed pairwise
 * additions and the bias. Four rows at a time (eight independent FMA chains), their four sums
 * reduced together; the rows left over go one at a time with the same additions, so a row's
 * result does not depend on rows or on where its block starts, and egru_matmul_f32_neon reduces
 * each output the same way (egru_kernels.h, "Batch invariance"). The sums are reordered relative
 * to the reference, so results agree with it within float rounding (docs/kernels.md). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include "../egru_kernels.h"
#include "egru_neon.h"

void egru_matvec_f32_neon(const float *w, const float *x, const float *bias, float *y,
                          uint32_t rows, uint32_t cols);

void egru_matvec_f32_neon(const float *w, const float *x, const float *bias, float *y,
                          uint32_t rows, uint32_t cols)
{
    const uint32_t c8 = cols & ~7u, rest = cols - c8; /* rest < 8 columns after the 8-chunks */
    /* The chunks after the 8-column steps: x[c8..] in xa (4 columns, or rest < 4 zero-padded)
     * into accumulator 0, and when rest > 4, x[c8 + 4..] zero-padded in xb into accumulator 1. */
    const float32x4_t zero = vdupq_n_f32(0.0f);
    const float32x4_t xa = rest ? egru_chunk_neon(x, c8, cols) : zero;
    const float32x4_t xb = rest > 4 ? egru_chunk_neon(x, c8 + 4, cols) : zero;
    uint32_t r = 0, c;
    int k;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + (uint64_t)r * cols;
        float32x4_t a[4], b[4], s;
        for (k = 0; k < 4; ++k) {
            a[k] = zero;
            b[k] = zero;
        }
        for (c = 0; c < c8; c += 8) {
            const float32x4_t x0 = vld1q_f32(x + c), x1 = vld1q_f32(x + c + 4);
            for (k = 0; k < 4; ++k) {
                const float *wk = w0 + (uint64_t)k * cols + c;
                a[k] = vfmaq_f32(a[k], vld1q_f32(wk), x0);
                b[k] = vfmaq_f32(b[k], vld1q_f32(wk + 4), x1);
            }
        }
        for (k = 0; rest && k < 4; ++k) {
            const float *wk = w0 + (uint64_t)k * cols;
            a[k] = vfmaq_f32(a[k], egru_chunk_neon(wk, c8, cols), xa);
            if (rest > 4) {
                b[k] = vfmaq_f32(b[k], egru_chunk_neon(wk, c8 + 4, cols), xb);
            }
        }
        s = egru_rowsum4_neon(a, b); /* lane k: row r + k */
        if (bias) {
            s = vaddq_f32(s, vld1q_f32(bias + r));
        }
        vst1q_f32(y + r, s);
    }
    for (; r < rows; ++r) {
        const float *row = w + (uint64_t)r * cols;
        float32x4_t a = zero, b = zero;
        float s;
        for (c = 0; c < c8; c += 8) {
            a = vfmaq_f32(a, vld1q_f32(row + c), vld1q_f32(x + c));
            b = vfmaq_f32(b, vld1q_f32(row + c + 4), vld1q_f32(x + c + 4));
        }
        if (rest) {
            a = vfmaq_f32(a, egru_chunk_neon(row, c8, cols), xa);
            if (rest > 4) {
                b = vfmaq_f32(b, egru_chunk_neon(row, c8 + 4, cols), xb);
            }
        }
        s = egru_rowsum1_neon(a, b);
        y[r] = bias ? s + bias[r] : s;
    }
}
#else
typedef int egru_matvec_f32_neon_unused; /* ISO C forbids an empty translation unit */
#endif
