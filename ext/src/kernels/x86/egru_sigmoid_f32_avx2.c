/* egru_sigmoid_f32_avx2.c - logistic sigmoid, AVX2+FMA: 1 / (1 + exp(-x)) with egru_exp256 and an
 * exact division; |error| < 3e-7 absolute against the reference (docs/kernels.md). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <math.h>

#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_sigmoid_f32_avx2(float *v, uint32_t n);

EGRU_AVX2 void egru_sigmoid_f32_avx2(float *v, uint32_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(v + i);
        const __m256 e = egru_exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
        _mm256_storeu_ps(v + i, _mm256_div_ps(one, _mm256_add_ps(one, e)));
    }
    for (; i < n; ++i) {
        v[i] = 1.0f / (1.0f + expf(-v[i]));
    }
}
#else
typedef int egru_sigmoid_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
