/* egru_matmul_f32_neon.c - Y = X . W^T + bias, NEON (same contract as egru_matmul_f32).
 * Blocks of 4 weight rows x 2 input rows share their loads (16 accumulators: two per output).
 * Every output is reduced exactly as egru_matvec_f32_neon reduces a row (egru_neon.h,
 * egru_rowsum4_neon), and the leftover weight rows and input rows go through
 * egru_matvec_f32_neon itself, so Y[i] equals egru_matvec_f32_neon on X[i] bit for bit, whatever
 * n (egru_kernels.h, "Batch invariance"). Sums are reordered relative to the reference. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include "../egru_kernels.h"
#include "egru_neon.h"

void egru_matvec_f32_neon(const float *w, const float *x, const float *bias, float *y,
                          uint32_t rows, uint32_t cols);
void egru_matmul_f32_neon(const float *w, const float *x, const float *bias, float *y, uint32_t n,
                          uint32_t rows, uint32_t cols);

void egru_matmul_f32_neon(const float *w, const float *x, const float *bias, float *y, uint32_t n,
                          uint32_t rows, uint32_t cols)
{
    const uint32_t c8 = cols & ~7u, rest = cols - c8, r4 = rows & ~3u;
    const float32x4_t zero = vdupq_n_f32(0.0f);
    uint32_t i = 0, r, c;
    int k;
    for (; i + 2 <= n; i += 2) {
        const float *x0 = x + (uint64_t)i * cols, *x1 = x0 + cols;
        float *y0 = y + (uint64_t)i * rows, *y1 = y0 + rows;
        /* The last chunks of both inputs (see egru_matvec_f32_neon). */
        const float32x4_t x0a = rest ? egru_chunk_neon(x0, c8, cols) : zero;
        const float32x4_t x1a = rest ? egru_chunk_neon(x1, c8, cols) : zero;
        const float32x4_t x0b = rest > 4 ? egru_chunk_neon(x0, c8 + 4, cols) : zero;
        const float32x4_t x1b = rest > 4 ? egru_chunk_neon(x1, c8 + 4, cols) : zero;
        for (r = 0; r < r4; r += 4) {
            /* a0/b0[k]: weight row r + k times x0 (even / odd chunks); a1/b1[k]: times x1 */
            float32x4_t a0[4], b0[4], a1[4], b1[4], s0, s1;
            for (k = 0; k < 4; ++k) {
                a0[k] = b0[k] = a1[k] = b1[k] = zero;
            }
            for (c = 0; c < c8; c += 8) {
                const float32x4_t v0 = vld1q_f32(x0 + c), u0 = vld1q_f32(x0 + c + 4);
                const float32x4_t v1 = vld1q_f32(x1 + c), u1 = vld1q_f32(x1 + c + 4);
                for (k = 0; k < 4; ++k) {
                    const float *wk = w + (uint64_t)(r + k) * cols + c;
                    const float32x4_t wa = vld1q_f32(wk), wb = vld1q_f32(wk + 4);
                    a0[k] = vfmaq_f32(a0[k], wa, v0);
                    b0[k] = vfmaq_f32(b0[k], wb, u0);
                    a1[k] = vfmaq_f32(a1[k], wa, v1);
                    b1[k] = vfmaq_f32(b1[k], wb, u1);
                }
            }
            for (k = 0; rest && k < 4; ++k) {
                const float *wk = w + (uint64_t)(r + k) * cols;
                const float32x4_t wa = egru_chunk_neon(wk, c8, cols);
                a0[k] = vfmaq_f32(a0[k], wa, x0a);
                a1[k] = vfmaq_f32(a1[k], wa, x1a);
                if (rest > 4) {
                    const float32x4_t wb = egru_chunk_neon(wk, c8 + 4, cols);
                    b0[k] = vfmaq_f32(b0[k], wb, x0b);
                    b1[k] = vfmaq_f32(b1[k], wb, x1b);
                }
            }
            s0 = egru_rowsum4_neon(a0, b0);
            s1 = egru_rowsum4_neon(a1, b1);
            if (bias) {
                const float32x4_t bv = vld1q_f32(bias + r);
                s0 = vaddq_f32(s0, bv);
                s1 = vaddq_f32(s1, bv);
            }
            vst1q_f32(y0 + r, s0);
            vst1q_f32(y1 + r, s1);
        }
        if (r4 < rows) {
            const uint64_t off = (uint64_t)r4 * cols;
            egru_matvec_f32_neon(w + off, x0, bias ? bias + r4 : bias, y0 + r4, rows - r4, cols);
            egru_matvec_f32_neon(w + off, x1, bias ? bias + r4 : bias, y1 + r4, rows - r4, cols);
        }
    }
    for (; i < n; ++i) {
        egru_matvec_f32_neon(w, x + (uint64_t)i * cols, bias, y + (uint64_t)i * rows, rows, cols);
    }
}
#else
typedef int egru_matmul_f32_neon_unused; /* ISO C forbids an empty translation unit */
#endif
