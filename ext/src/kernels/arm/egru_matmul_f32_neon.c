/* egru_matmul_f32_neon.c - Y = X . W^T + bias, NEON (same contract as egru_matmul_f32).
 * Blocks of 4 weight rows x 2 input rows share their loads (8 accumulators); the leftovers go
 * through the matrix-vector kernel. Sums are reordered relative to the reference. */
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
    const uint32_t c4 = cols & ~3u, r4 = rows & ~3u;
    uint32_t i = 0, r, c, k, j;
    for (; i + 2 <= n; i += 2) {
        const float *x0 = x + (uint64_t)i * cols, *x1 = x0 + cols;
        float *y0 = y + (uint64_t)i * rows, *y1 = y0 + rows;
        for (r = 0; r < r4; r += 4) {
            float32x4_t a[4], b[4];
            for (k = 0; k < 4; ++k) {
                a[k] = vdupq_n_f32(0.0f);
                b[k] = vdupq_n_f32(0.0f);
            }
            for (c = 0; c < c4; c += 4) {
                const float32x4_t v0 = vld1q_f32(x0 + c), v1 = vld1q_f32(x1 + c);
                for (k = 0; k < 4; ++k) {
                    const float32x4_t wk = vld1q_f32(w + (uint64_t)(r + k) * cols + c);
                    a[k] = vfmaq_f32(a[k], wk, v0);
                    b[k] = vfmaq_f32(b[k], wk, v1);
                }
            }
            for (k = 0; k < 4; ++k) {
                const float *wk = w + (uint64_t)(r + k) * cols;
                float s0 = vaddvq_f32(a[k]), s1 = vaddvq_f32(b[k]);
                for (j = c4; j < cols; ++j) {
                    s0 += wk[j] * x0[j];
                    s1 += wk[j] * x1[j];
                }
                y0[r + k] = bias ? s0 + bias[r + k] : s0;
                y1[r + k] = bias ? s1 + bias[r + k] : s1;
            }
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
