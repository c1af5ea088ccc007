/* egru_matvec_f32_avx2.c - matrix-vector product, AVX2+FMA (same contract as egru_matvec_f32).
 * Eight rows at a time, one 8-lane accumulator per row (eight independent FMA chains: enough
 * to keep two FMA units busy through their latency), the eight horizontal sums done together; the
 * sums are reordered relative to the reference, so results agree within float rounding
 * (docs/kernels.md). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_matvec_f32_avx2(const float *w, const float *x, const float *bias, float *y,
                          uint32_t rows, uint32_t cols);

/* Eight horizontal sums at once: a[k] -> lane k of the result. */
EGRU_AVX2 static __m256 hsum8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5,
                              __m256 a6, __m256 a7)
{
    const __m256 b0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    const __m256 b1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    /* b0 = [rows 0-3 low halves | rows 0-3 high halves], b1 likewise for rows 4-7. */
    return _mm256_add_ps(_mm256_permute2f128_ps(b0, b1, 0x20),
                         _mm256_permute2f128_ps(b0, b1, 0x31));
}

EGRU_AVX2 void egru_matvec_f32_avx2(const float *w, const float *x, const float *bias, float *y,
                                    uint32_t rows, uint32_t cols)
{
    const uint32_t c8 = cols & ~7u;
    uint32_t r = 0, c;
    for (; r + 8 <= rows; r += 8) {
        const float *w0 = w + (uint64_t)r * cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0;
        __m256 a7 = a0, s;
        for (c = 0; c < c8; c += 8) {
            const __m256 xv = _mm256_loadu_ps(x + c);
            const float *wc = w0 + c;
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wc), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wc + cols), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(wc + 2 * (uint64_t)cols), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(wc + 3 * (uint64_t)cols), xv, a3);
            a4 = _mm256_fmadd_ps(_mm256_loadu_ps(wc + 4 * (uint64_t)cols), xv, a4);
            a5 = _mm256_fmadd_ps(_mm256_loadu_ps(wc + 5 * (uint64_t)cols), xv, a5);
            a6 = _mm256_fmadd_ps(_mm256_loadu_ps(wc + 6 * (uint64_t)cols), xv, a6);
            a7 = _mm256_fmadd_ps(_mm256_loadu_ps(wc + 7 * (uint64_t)cols), xv, a7);
        }
        if (c8 < cols) { /* the last columns, as one masked chunk */
            const __m256i m = egru_tail_mask(cols - c8);
            const __m256 xv = _mm256_maskload_ps(x + c8, m);
            const float *wc = w0 + c8;
            a0 = _mm256_fmadd_ps(_mm256_maskload_ps(wc, m), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_maskload_ps(wc + cols, m), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_maskload_ps(wc + 2 * (uint64_t)cols, m), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_maskload_ps(wc + 3 * (uint64_t)cols, m), xv, a3);
            a4 = _mm256_fmadd_ps(_mm256_maskload_ps(wc + 4 * (uint64_t)cols, m), xv, a4);
            a5 = _mm256_fmadd_ps(_mm256_maskload_ps(wc + 5 * (uint64_t)cols, m), xv, a5);
            a6 = _mm256_fmadd_ps(_mm256_maskload_ps(wc + 6 * (uint64_t)cols, m), xv, a6);
            a7 = _mm256_fmadd_ps(_mm256_maskload_ps(wc + 7 * (uint64_t)cols, m), xv, a7);
        }
        s = hsum8(a0, a1, a2, a3, a4, a5, a6, a7); /* lane k: row r + k */
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
