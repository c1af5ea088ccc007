/* egru_tanh_f32_avx2.c - hyperbolic tangent, AVX2+FMA: sign(x) * (1 - 2 / (exp(2|x|) + 1)) with
 * egru_exp256 and an exact division; |error| < 3e-7 absolute against exact tanh (measured worst
 * 1.5e-7, near |x| = 1e-3: the relative precision of small results is lost, not the absolute). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <math.h>

#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_tanh_f32_avx2(float *v, uint32_t n);

EGRU_AVX2 void egru_tanh_f32_avx2(float *v, uint32_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(v + i);
        const __m256 ax = _mm256_andnot_ps(sign, x);
        const __m256 e = egru_exp256(_mm256_mul_ps(two, ax));
        const __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
        _mm256_storeu_ps(v + i, _mm256_or_ps(t, _mm256_and_ps(sign, x)));
    }
    for (; i < n; ++i) {
        v[i] = tanhf(v[i]);
    }
}
#else
typedef int egru_tanh_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
