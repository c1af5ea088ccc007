/* egru_tanh_f32_avx512.c - hyperbolic tangent, AVX-512: sign(x) * (1 - 2 / (exp(2|x|) + 1)) with
 * egru_exp512 and an exact division, the last n % 16 values as one masked chunk; |error| < 3e-7
 * absolute against exact tanh (the AVX2 formula and error, docs/kernels.md). The sign bit moves
 * with integer logic (AVX-512 F; the float and/or forms need AVX-512 DQ). */
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
