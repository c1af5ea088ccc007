/* egru_matvec_f32_avx512.c - matrix-vector product, AVX-512 (same contract as egru_matvec_f32).
 * Each row's result is this set's canonical sum (egru_kernels.h, "Batch invariance"): one
 * 16-lane accumulator, lane j adding the products of columns j, j + 16, ... in column order with
 * fused multiply-adds (the last cols % 16 columns as one masked chunk), the lanes added in
 * egru_hsum512's order, the bias last. Sixteen rows at a time (sixteen independent FMA chains),
 * their sums done together by egru_hsum16_ps with the same additions; rows left over from the
 * blocks of sixteen go one at a time, so a row's result does not depend on rows or on where its
 * block starts, and egru_matmul_f32_avx512 reduces each output the same way. The sums are
 * reordered relative to the reference, so results agree within float rounding
 * (docs/kernels.md). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx512.h"

void egru_matvec_f32_avx512(const float *w, const float *x, const float *bias, float *y,
                            uint32_t rows, uint32_t cols);

EGRU_AVX512 void egru_matvec_f32_avx512(const float *w, const float *x, const float *bias, float *y,
                                        uint32_t rows, uint32_t cols)
{
    const uint32_t c16 = cols & ~15u;
    const __mmask16 m = egru_mask16(cols - c16);
    uint32_t r = 0, c, k;
    for (; r + 16 <= rows; r += 16) {
        const float *w0 = w + (uint64_t)r * cols;
        __m512 a[16], s;
#pragma GCC unroll 16
        for (k = 0; k < 16; ++k) {
            a[k] = _mm512_setzero_ps();
        }
        for (c = 0; c < c16; c += 16) {
            const __m512 xv = _mm512_loadu_ps(x + c);
#pragma GCC unroll 16
            for (k = 0; k < 16; ++k) {
                a[k] = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + (uint64_t)k * cols + c), xv, a[k]);
            }
        }
        if (c16 < cols) { /* the last columns, as one masked chunk */
            const __m512 xv = _mm512_maskz_loadu_ps(m, x + c16);
#pragma GCC unroll 16
            for (k = 0; k < 16; ++k) {
                const __m512 wv = _mm512_maskz_loadu_ps(m, w0 + (uint64_t)k * cols + c16);
                a[k] = _mm512_fmadd_ps(wv, xv, a[k]);
            }
        }
        s = egru_hsum16_ps(a); /* lane k: row r + k */
        if (bias) {
            s = _mm512_add_ps(s, _mm512_loadu_ps(bias + r));
        }
        _mm512_storeu_ps(y + r, s);
    }
    for (; r < rows; ++r) {
        const float *row = w + (uint64_t)r * cols;
        __m512 a = _mm512_setzero_ps();
        for (c = 0; c < c16; c += 16) {
            a = _mm512_fmadd_ps(_mm512_loadu_ps(row + c), _mm512_loadu_ps(x + c), a);
        }
        if (c16 < cols) {
            a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, row + c16),
                                _mm512_maskz_loadu_ps(m, x + c16), a);
        }
        {
            const float sum = egru_hsum512(a);
            y[r] = bias ? sum + bias[r] : sum;
        }
    }
}
#else
typedef int egru_matvec_f32_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
