/* egru_matvec_f32_avx2.c - matrix-vector product, AVX2+FMA (same contract as egru_matvec_f32).
 * Four rows at a time, one 8-lane accumulator per row (four independent FMA chains), the four
 * horizontal sums done together; the sums are reordered relative to the reference, so results
 * agree within float rounding (docs/kernels.md). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_matvec_f32_avx2(const float *w, const float *x, const float *bias, float *y,
                          uint32_t rows, uint32_t cols);

EGRU_AVX2 static float dot_tail(const float *w, const float *x, uint32_t c, uint32_t cols)
{
    float s = 0.0f;
    for (; c < cols; ++c) {
        s += w[c] * x[c];
    }
    return s;
}

EGRU_AVX2 void egru_matvec_f32_avx2(const float *w, const float *x, const float *bias, float *y,
                                    uint32_t rows, uint32_t cols)
{
    const uint32_t c8 = cols & ~7u;
    uint32_t r = 0, c;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + (uint64_t)r * cols, *w1 = w0 + cols, *w2 = w1 + cols;
        const float *w3 = w2 + cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        __m128 s01, s23, s;
        for (c = 0; c < c8; c += 8) {
            const __m256 xv = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + c), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + c), xv, a3);
        }
        /* Four horizontal sums at once: pairwise hadd, then fold the 128-bit halves. */
        a0 = _mm256_hadd_ps(a0, a1);
        a2 = _mm256_hadd_ps(a2, a3);
        a0 = _mm256_hadd_ps(a0, a2);
        s01 = _mm256_castps256_ps128(a0);
        s23 = _mm256_extractf128_ps(a0, 1);
        s = _mm_add_ps(s01, s23); /* lanes: rows r, r+1, r+2, r+3 */
        if (c8 < cols) {
            const __m128 t = _mm_set_ps(dot_tail(w3, x, c8, cols), dot_tail(w2, x, c8, cols),
                                        dot_tail(w1, x, c8, cols), dot_tail(w0, x, c8, cols));
            s = _mm_add_ps(s, t);
        }
        if (bias) {
            s = _mm_add_ps(s, _mm_loadu_ps(bias + r));
        }
        _mm_storeu_ps(y + r, s);
    }
    for (; r < rows; ++r) {
        const float *row = w + (uint64_t)r * cols;
        __m256 a = _mm256_setzero_ps();
        for (c = 0; c < c8; c += 8) {
            a = _mm256_fmadd_ps(_mm256_loadu_ps(row + c), _mm256_loadu_ps(x + c), a);
        }
        {
            const float s = egru_hsum256(a) + dot_tail(row, x, c8, cols);
            y[r] = bias ? s + bias[r] : s;
        }
    }
}
#else
typedef int egru_matvec_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
