/* egru_sigmoid_f32_avx512.c - logistic sigmoid, AVX-512: 1 / (1 + exp(-x)) with egru_exp512 and
 * an exact division, the last n % 16 values as one masked chunk; |error| <= 3e-7 absolute,
 * <= 2.5e-7 relative where the result is a normal float (docs/kernels.md), NaN kept. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx512.h"

void egru_sigmoid_f32_avx512(float *v, uint32_t n);

EGRU_AVX512 void egru_sigmoid_f32_avx512(float *v, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(v + i, egru_sigmoid512(_mm512_loadu_ps(v + i)));
    }
    if (i < n) {
        const __mmask16 m = egru_mask16(n - i);
        _mm512_mask_storeu_ps(v + i, m, egru_sigmoid512(_mm512_maskz_loadu_ps(m, v + i)));
    }
}
#else
typedef int egru_sigmoid_f32_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
