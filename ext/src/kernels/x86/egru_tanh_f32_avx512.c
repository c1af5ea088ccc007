/* egru_tanh_f32_avx512.c - hyperbolic tangent, AVX-512: sign(x) * m / (m + 2) with m = expm1(2|x|)
 * (egru_tanh512), relative accuracy near 0; |error| <= 3e-7 absolute and <= 2.5e-7 relative to the
 * exact tanh where it is a normal float (docs/kernels.md); NaN gives NaN, +-inf give +-1. The last
 * n % 16 values are one masked chunk. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx512.h"

void egru_tanh_f32_avx512(float *v, uint32_t n);

EGRU_AVX512 void egru_tanh_f32_avx512(float *v, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(v + i, egru_tanh512(_mm512_loadu_ps(v + i)));
    }
    if (i < n) {
        const __mmask16 m = egru_mask16(n - i);
        _mm512_mask_storeu_ps(v + i, m, egru_tanh512(_mm512_maskz_loadu_ps(m, v + i)));
    }
}
#else
typedef int egru_tanh_f32_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
