/* egru_quantize_s8_avx512.c - dynamic quantization of a product's input vector, AVX-512 (same
 * contract as egru_quantize_s8, bit for bit: max is exact in any order, and each value takes the
 * same float multiply and round-half-to-even conversion as in the reference). The last n % 16
 * values are one masked chunk (lanes that are off read as 0, which changes no maximum, and are
 * never stored). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <string.h>

#include "../egru_kernels.h"
#include "egru_avx512.h"

float egru_quantize_s8_avx512(const float *x, int8_t *q, uint32_t n);

/* The largest of the 16 lanes. */
EGRU_AVX512 static inline float hmax512(__m512 v)
{
    const __m256 h = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 m8 = _mm256_max_ps(_mm512_castps512_ps256(v), h);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    return _mm_cvtss_f32(m4);
}

/* clamp(rint(x * inv), -127, 127) for 16 lanes, as int8. vcvtps2dq rounds with MXCSR: round half
 * to even, as rintf in the default mode; vpmovsdb narrows (the values are already in range). */
EGRU_AVX512 static inline __m128i quant16(__m512 x, __m512 inv)
{
    __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(x, inv));
    v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
    return _mm512_cvtsepi32_epi8(v);
}

EGRU_AVX512 float egru_quantize_s8_avx512(const float *x, int8_t *q, uint32_t n)
{
    __m512 mv = _mm512_setzero_ps(), inv16;
    float m, inv;
    uint32_t j = 0;
    for (; j + 16 <= n; j += 16) {
        mv = _mm512_max_ps(mv, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
    }
    if (j < n) {
        mv = _mm512_max_ps(mv, _mm512_abs_ps(_mm512_maskz_loadu_ps(egru_mask16(n - j), x + j)));
    }
    m = hmax512(mv);
    if (m == 0.0f) {
        memset(q, 0, n);
        return 0.0f;
    }
    inv = 127.0f / m;
    inv16 = _mm512_set1_ps(inv);
    for (j = 0; j + 16 <= n; j += 16) {
        _mm_storeu_si128((__m128i *)(void *)(q + j), quant16(_mm512_loadu_ps(x + j), inv16));
    }
    if (j < n) {
        const __mmask16 k = egru_mask16(n - j);
        _mm_mask_storeu_epi8(q + j, k, quant16(_mm512_maskz_loadu_ps(k, x + j), inv16));
    }
    return m / 127.0f;
}
#else
typedef int egru_quantize_s8_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
