/* egru_matvec_f32_avx2.c - matrix-vector product, AVX2+FMA (same contract as egru_matvec_f32).
 * Each row's result is this set's canonical sum (egru_kernels.h, "Batch invariance"): one 8-lane
 * accumulator, lane j adding the products of columns j, j + 8, j + 16, ... in column order with
 * fused multiply-adds (the last cols % 8 columns as one masked chunk, its lanes that are off
 * adding 0 * 0), then the lanes added in egru_hsum256's order, the bias last. Eight rows at a time
 * (eight independent FMA chains: enough to keep two FMA units busy through their latency), their
 * eight horizontal sums done together by egru_hsum8x8 with the same additions; the rows left over
 * go one at a time, so a row's result does not depend on rows or on where its block starts, and
 * egru_matmul_f32_avx2 reduces each output the same way. The sums are reordered relative to the
 * reference, so results agree with it within float rounding (docs/kernels.md). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_matvec_f32_avx2(const float *w, const float *x, const float *bias, float *y,
                          uint32_t rows, uint32_t cols);

EGRU_AVX2 void egru_matvec_f32_avx2(const float *w, const float *x, const float *bias, float *y,
                                    uint32_t rows, uint32_t cols)
{
    const uint32_t c8 = cols & ~7u;
    uint32_t r = 0, c;
    int k;
    for (; r + 8 <= rows; r += 8) {
        const float *w0 = w + (uint64_t)r * cols;
        __m256 a[8], s;
#pragma GCC unroll 8
        for (k = 0; k < 8; ++k) {
            a[k] = _mm256_setzero_ps();
        }
        for (c = 0; c < c8; c += 8) {
            const __m256 xv = _mm256_loadu_ps(x + c);
#pragma GCC unroll 8
            for (k = 0; k < 8; ++k) {
                a[k] = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + (uint64_t)k * cols + c), xv, a[k]);
            }
        }
        if (c8 < cols) { /* the last columns, as one masked chunk */
            const __m256i m = egru_tail_mask(cols - c8);
            const __m256 xv = _mm256_maskload_ps(x + c8, m);
#pragma GCC unroll 8
            for (k = 0; k < 8; ++k) {
                const __m256 wv = _mm256_maskload_ps(w0 + (uint64_t)k * cols + c8, m);
                a[k] = _mm256_fmadd_ps(wv, xv, a[k]);
            }
        }
        s = egru_hsum8x8(a); /* lane k: row r + k */
        if (bias) {
            s = _mm256_add_ps(s, _mm256_loadu_ps(bias + r));
        }
        _mm256_storeu_ps(y + r, s);
    }
    for (; r < rows; ++r) {
        const float *row = w + (uint64_t)r * cols;
        __m256 a = _mm256_setzero_ps();
        for (c = 0; c < c8; c += 8) {
            a = _mm256_fmadd_ps(_mm256_loadu_ps(row + c), _mm256_loadu_ps(x + c), a);
        }
        if (c8 < cols) {
            const __m256i m = egru_tail_mask(cols - c8);
            a = _mm256_fmadd_ps(_mm256_maskload_ps(row + c8, m), _mm256_maskload_ps(x + c8, m), a);
        }
        {
            const float sum = egru_hsum256(a);
            y[r] = bias ? sum + bias[r] : sum;
        }
    }
}
#else
typedef int egru_matvec_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
