/* egru_quantize_s8_avx2.c - dynamic quantization of a product's input vector, AVX2 (same contract
 * as egru_quantize_s8, bit for bit on every input: the maximum of the |x| bit patterns is an exact
 * integer maximum in any order, the NaN / infinite / tiny cases are decided by the same
 * egru_quantize_s8_scale, and each value takes the same float multiply and round-half-to-even
 * conversion as in the reference). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <string.h>

#include "../egru_kernels.h"
#include "egru_avx2.h"

float egru_quantize_s8_avx2(const float *x, int8_t *q, uint32_t n);

EGRU_AVX2 float egru_quantize_s8_avx2(const float *x, int8_t *q, uint32_t n)
{
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
    __m256i mv = _mm256_setzero_si256();
    __m256 inv8;
    __m128i m4;
    float inv, sx;
    uint32_t j = 0;
    for (; j + 8 <= n; j += 8) { /* |x| bit patterns, as non-negative int32: an exact maximum */
        const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(x + j));
        mv = _mm256_max_epu32(mv, _mm256_and_si256(b, abs_mask));
    }
    m4 = _mm_max_epu32(_mm256_castsi256_si128(mv), _mm256_extracti128_si256(mv, 1));
    m4 = _mm_max_epu32(m4, _mm_shuffle_epi32(m4, 0x4E));
    m4 = _mm_max_epu32(m4, _mm_shuffle_epi32(m4, 0xB1));
    sx = egru_quantize_s8_scale(egru_abs_bits_max(x, j, n, (uint32_t)_mm_cvtsi128_si32(m4)), &inv);
    if (inv == 0.0f) { /* NaN or infinite (sx NaN), or below EGRU_QUANT_S8_MIN (sx 0): q = 0 */
        memset(q, 0, n);
        return sx;
    }
    inv8 = _mm256_set1_ps(inv);
    for (j = 0; j + 8 <= n; j += 8) {
        /* cvtps rounds with MXCSR: round half to even, as rintf in the default mode */
        __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), inv8));
        __m128i p;
        v = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
        p = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        p = _mm_packs_epi16(p, p);
        _mm_storel_epi64((__m128i *)(void *)(q + j), p);
    }
    egru_quantize_s8_range(x, q, j, n, inv);
    return sx;
}
#else
typedef int egru_quantize_s8_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
