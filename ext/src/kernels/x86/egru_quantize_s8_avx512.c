/* egru_quantize_s8_avx512.c - dynamic quantization of a product's input vector, AVX-512 (same
 * contract as egru_quantize_s8, bit for bit on every input: the maximum of the |x| bit patterns is
 * an exact integer maximum in any order, the NaN / infinite / tiny cases are decided by the same
 * egru_quantize_s8_scale, and each value takes the same float multiply and round-half-to-even
 * conversion as in the reference). The last n % 16 values are one masked chunk (lanes that are off
 * read as 0, which changes no maximum, and are never stored). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <string.h>

#include "../egru_kernels.h"
#include "egru_avx512.h"

float egru_quantize_s8_avx512(const float *x, int8_t *q, uint32_t n);

/* The largest of the 16 unsigned lanes. */
EGRU_AVX512 static inline uint32_t hmax512_epu32(__m512i v)
{
    uint32_t lanes[16], m = 0;
    int i;
    _mm512_storeu_si512((void *)lanes, v);
    for (i = 0; i < 16; ++i) {
        m = lanes[i] > m ? lanes[i] : m;
    }
    return m;
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
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i mv = _mm512_setzero_si512();
    __m512 inv16;
    float inv, sx;
    uint32_t j = 0;
    for (; j + 16 <= n; j += 16) { /* |x| bit patterns, as unsigned: an exact maximum */
        const __m512i b = _mm512_castps_si512(_mm512_loadu_ps(x + j));
        mv = _mm512_max_epu32(mv, _mm512_and_si512(b, abs_mask));
    }
    if (j < n) {
        const __m512i b = _mm512_castps_si512(_mm512_maskz_loadu_ps(egru_mask16(n - j), x + j));
        mv = _mm512_max_epu32(mv, _mm512_and_si512(b, abs_mask));
    }
    sx = egru_quantize_s8_scale(hmax512_epu32(mv), &inv);
    if (inv == 0.0f) { /* NaN or infinite (sx NaN), or below EGRU_QUANT_S8_MIN (sx 0): q = 0 */
        memset(q, 0, n);
        return sx;
    }
    inv16 = _mm512_set1_ps(inv);
    for (j = 0; j + 16 <= n; j += 16) {
        _mm_storeu_si128((__m128i *)(void *)(q + j), quant16(_mm512_loadu_ps(x + j), inv16));
    }
    if (j < n) {
        const __mmask16 k = egru_mask16(n - j);
        _mm_mask_storeu_epi8(q + j, k, quant16(_mm512_maskz_loadu_ps(k, x + j), inv16));
    }
    return sx;
}
#else
typedef int egru_quantize_s8_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
