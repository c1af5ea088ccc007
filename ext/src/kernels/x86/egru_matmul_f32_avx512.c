/* egru_matmul_f32_avx512.c - Y = X . W^T + bias, AVX-512 (same contract as egru_matmul_f32).
 * Blocks of 8 weight rows x 2 input rows share their loads (16 accumulators), their sixteen
 * horizontal sums done together (egru_hsum16_ps: lanes 0-7 the first input row's outputs, 8-15
 * the second's); the leftovers go through the matrix-vector kernel. Every output is reduced
 * exactly as egru_matvec_f32_avx512 reduces a row (the same FMA chain and masked tail, the same
 * addition tree, the bias last), so Y[i] equals egru_matvec_f32_avx512 on X[i] bit for bit,
 * whatever n (egru_kernels.h, "Batch invariance"). Sums are reordered relative to the
 * reference. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx512.h"

void egru_matvec_f32_avx512(const float *w, const float *x, const float *bias, float *y,
                            uint32_t rows, uint32_t cols);
void egru_matmul_f32_avx512(const float *w, const float *x, const float *bias, float *y, uint32_t n,
                            uint32_t rows, uint32_t cols);

EGRU_AVX512 void egru_matmul_f32_avx512(const float *w, const float *x, const float *bias, float *y,
                                        uint32_t n, uint32_t rows, uint32_t cols)
{
    const uint32_t c16 = cols & ~15u, r8 = rows & ~7u;
    const __mmask16 m = egru_mask16(cols - c16);
    uint32_t i = 0, r, c, k;
    for (; i + 2 <= n; i += 2) {
        const float *x0 = x + (uint64_t)i * cols, *x1 = x0 + cols;
        float *y0 = y + (uint64_t)i * rows, *y1 = y0 + rows;
        for (r = 0; r < r8; r += 8) {
            __m512 a[16], s; /* a[k]: weight row r + k times x0; a[8 + k]: times x1 */
            __m256 lo, hi;
#pragma GCC unroll 16
            for (k = 0; k < 16; ++k) {
                a[k] = _mm512_setzero_ps();
            }
            for (c = 0; c < c16; c += 16) {
                const __m512 v0 = _mm512_loadu_ps(x0 + c), v1 = _mm512_loadu_ps(x1 + c);
#pragma GCC unroll 16
                for (k = 0; k < 8; ++k) {
                    const __m512 wk = _mm512_loadu_ps(w + (uint64_t)(r + k) * cols + c);
                    a[k] = _mm512_fmadd_ps(wk, v0, a[k]);
                    a[8 + k] = _mm512_fmadd_ps(wk, v1, a[8 + k]);
                }
            }
            if (c16 < cols) { /* the last columns, as one masked chunk */
                const __m512 v0 = _mm512_maskz_loadu_ps(m, x0 + c16),
                             v1 = _mm512_maskz_loadu_ps(m, x1 + c16);
#pragma GCC unroll 16
                for (k = 0; k < 8; ++k) {
                    const __m512 wk = _mm512_maskz_loadu_ps(m, w + (uint64_t)(r + k) * cols + c16);
                    a[k] = _mm512_fmadd_ps(wk, v0, a[k]);
                    a[8 + k] = _mm512_fmadd_ps(wk, v1, a[8 + k]);
                }
            }
            s = egru_hsum16_ps(a);
            lo = _mm512_castps512_ps256(s);
            hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1));
            if (bias) {
                const __m256 b = _mm256_loadu_ps(bias + r);
                lo = _mm256_add_ps(lo, b);
                hi = _mm256_add_ps(hi, b);
            }
            _mm256_storeu_ps(y0 + r, lo);
            _mm256_storeu_ps(y1 + r, hi);
        }
        if (r8 < rows) {
            const uint64_t off = (uint64_t)r8 * cols;
            egru_matvec_f32_avx512(w + off, x0, bias ? bias + r8 : bias, y0 + r8, rows - r8, cols);
            egru_matvec_f32_avx512(w + off, x1, bias ? bias + r8 : bias, y1 + r8, rows - r8, cols);
        }
    }
    for (; i < n; ++i) {
        egru_matvec_f32_avx512(w, x + (uint64_t)i * cols, bias, y + (uint64_t)i * rows, rows, cols);
    }
}
#else
typedef int egru_matmul_f32_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
