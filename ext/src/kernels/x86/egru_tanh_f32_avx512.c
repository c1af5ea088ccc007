/* egru_tanh_f32_avx512.c - hyperbolic tangent, AVX-512: sign(x) * (1 - 2 / (exp(2|x|) + 1)) with
 * egru_exp512 and an exact division, the last n % 16 values as one masked chunk; |error| < 3e-7
 * absolute against exact tanh (the AVX2 formula and error, docs/kernels.md). The sign bit moves
 * with integer logic (AVX-512 F; the float and/or forms need AVX-512 DQ). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx512.h"

void egru_tanh_f32_avx512(float *v, uint32_t n);

EGRU_AVX512 static inline __m512 tanh16(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f);
    const __m512i sign = _mm512_set1_epi32(INT32_MIN);
    const __m512i xi = _mm512_castps_si512(x);
    const __m512 ax = _mm512_castsi512_ps(_mm512_andnot_si512(sign, xi));
    const __m512 e = egru_exp512(_mm512_mul_ps(two, ax));
    const __m512 t = _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(e, one)));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), _mm512_and_si512(sign, xi)));
}

EGRU_AVX512 void egru_tanh_f32_avx512(float *v, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(v + i, tanh16(_mm512_loadu_ps(v + i)));
    }
    if (i < n) {
        const __mmask16 m = egru_mask16(n - i);
        _mm512_mask_storeu_ps(v + i, m, tanh16(_mm512_maskz_loadu_ps(m, v + i)));
    }
}
#else
typedef int egru_tanh_f32_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
