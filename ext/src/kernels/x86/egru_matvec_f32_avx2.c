/* egru_matvec_f32_avx2.c - matrix-vector product, AVX2+FMA (same contract as egru_matvec_f32).
 * Four rows at a time, two 8-lane accumulators per row over 16 columns; the sums are reordered
 * relative to the reference, so results agree within float rounding (docs/kernels.md). */
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
    const uint32_t c16 = cols & ~15u;
    uint32_t r = 0, c, i;
    for (; r + 4 <= rows; r += 4) {
        const float *wr[4];
        __m256 a[4], b[4];
        for (i = 0; i < 4; ++i) {
            wr[i] = w + (uint64_t)(r + i) * cols;
            a[i] = _mm256_setzero_ps();
            b[i] = _mm256_setzero_ps();
        }
        for (c = 0; c < c16; c += 16) {
            const __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
            for (i = 0; i < 4; ++i) {
                a[i] = _mm256_fmadd_ps(_mm256_loadu_ps(wr[i] + c), x0, a[i]);
                b[i] = _mm256_fmadd_ps(_mm256_loadu_ps(wr[i] + c + 8), x1, b[i]);
            }
        }
        for (i = 0; i < 4; ++i) {
            const float s = egru_hsum256(_mm256_add_ps(a[i], b[i])) + dot_tail(wr[i], x, c16, cols);
            y[r + i] = bias ? s + bias[r + i] : s;
        }
    }
    for (; r < rows; ++r) {
        const float *row = w + (uint64_t)r * cols;
        __m256 a = _mm256_setzero_ps();
        for (c = 0; c + 8 <= cols; c += 8) {
            a = _mm256_fmadd_ps(_mm256_loadu_ps(row + c), _mm256_loadu_ps(x + c), a);
        }
        {
            const float s = egru_hsum256(a) + dot_tail(row, x, c, cols);
            y[r] = bias ? s + bias[r] : s;
        }
    }
}
#else
typedef int egru_matvec_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
