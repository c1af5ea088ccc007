/* egru_tanh_f32_avx2.c - hyperbolic tangent, AVX2+FMA: sign(x) * m / (m + 2) with m = expm1(2|x|)
 * (egru_tanh256), relative accuracy near 0; |error| <= 3e-7 absolute and <= 2.5e-7 relative to the
 * exact tanh where it is a normal float (docs/kernels.md); NaN gives NaN, +-inf give +-1. The last,
 * partial vector is masked, so every element gets the same formula. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_tanh_f32_avx2(float *v, uint32_t n);

EGRU_AVX2 void egru_tanh_f32_avx2(float *v, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(v + i, egru_tanh256(_mm256_loadu_ps(v + i)));
    }
    if (i < n) {
        const __m256i m = egru_tail_mask(n - i);
        _mm256_maskstore_ps(v + i, m, egru_tanh256(_mm256_maskload_ps(v + i, m)));
    }
}
#else
typedef int egru_tanh_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
