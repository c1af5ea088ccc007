/* egru_matmul_f32_avx2.c - Y = X . W^T + bias, AVX2+FMA (same contract as egru_matmul_f32).
 * Blocks of 4 weight rows x 2 input rows share their loads (8 accumulators). Every output is
 * reduced exactly as egru_matvec_f32_avx2 reduces a row (one 8-lane FMA chain over the columns,
 * the last cols % 8 as one masked chunk; the eight sums of a block by egru_hsum8x8, the bias
 * last), and the leftover weight rows and input rows go through egru_matvec_f32_avx2 itself, so
 * Y[i] equals egru_matvec_f32_avx2 on X[i] bit for bit, whatever n (egru_kernels.h, "Batch
 * invariance"). Sums are reordered relative to the reference. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_matvec_f32_avx2(const float *w, const float *x, const float *bias, float *y,
                          uint32_t rows, uint32_t cols);
void egru_matmul_f32_avx2(const float *w, const float *x, const float *bias, float *y, uint32_t n,
                          uint32_t rows, uint32_t cols);

EGRU_AVX2 void egru_matmul_f32_avx2(const float *w, const float *x, const float *bias, float *y,
                                    uint32_t n, uint32_t rows, uint32_t cols)
{
    const uint32_t c8 = cols & ~7u, r4 = rows & ~3u;
    const __m256i m = egru_tail_mask(cols - c8); /* used only when c8 < cols */
    uint32_t i = 0, r, c;
    int k;
    for (; i + 2 <= n; i += 2) {
        const float *x0 = x + (uint64_t)i * cols, *x1 = x0 + cols;
        float *y0 = y + (uint64_t)i * rows, *y1 = y0 + rows;
        for (r = 0; r < r4; r += 4) {
            __m256 a[8], s; /* a[k]: weight row r + k times x0; a[4 + k]: times x1 */
#pragma GCC unroll 8
            for (k = 0; k < 8; ++k) {
                a[k] = _mm256_setzero_ps();
            }
            for (c = 0; c < c8; c += 8) {
                const __m256 v0 = _mm256_loadu_ps(x0 + c), v1 = _mm256_loadu_ps(x1 + c);
#pragma GCC unroll 4
                for (k = 0; k < 4; ++k) {
                    const __m256 wk = _mm256_loadu_ps(w + (uint64_t)(r + k) * cols + c);
                    a[k] = _mm256_fmadd_ps(wk, v0, a[k]);
                    a[4 + k] = _mm256_fmadd_ps(wk, v1, a[4 + k]);
                }
            }
            if (c8 < cols) { /* the last columns, as one masked chunk */
                const __m256 v0 = _mm256_maskload_ps(x0 + c8, m),
                             v1 = _mm256_maskload_ps(x1 + c8, m);
#pragma GCC unroll 4
                for (k = 0; k < 4; ++k) {
                    const __m256 wk = _mm256_maskload_ps(w + (uint64_t)(r + k) * cols + c8, m);
                    a[k] = _mm256_fmadd_ps(wk, v0, a[k]);
                    a[4 + k] = _mm256_fmadd_ps(wk, v1, a[4 + k]);
                }
            }
            s = egru_hsum8x8(a); /* lanes 0-3: y0[r..r+3], lanes 4-7: y1[r..r+3] */
            if (bias) {
                s = _mm256_add_ps(s, _mm256_broadcast_ps((const __m128 *)(const void *)(bias + r)));
            }
            _mm_storeu_ps(y0 + r, _mm256_castps256_ps128(s));
            _mm_storeu_ps(y1 + r, _mm256_extractf128_ps(s, 1));
        }
        if (r4 < rows) {
            const uint64_t off = (uint64_t)r4 * cols;
            egru_matvec_f32_avx2(w + off, x0, bias ? bias + r4 : bias, y0 + r4, rows - r4, cols);
            egru_matvec_f32_avx2(w + off, x1, bias ? bias + r4 : bias, y1 + r4, rows - r4, cols);
        }
    }
    for (; i < n; ++i) {
        egru_matvec_f32_avx2(w, x + (uint64_t)i * cols, bias, y + (uint64_t)i * rows, rows, cols);
    }
}
#else
typedef int egru_matmul_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
