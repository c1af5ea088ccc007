/* egru_quantize_s8_avx2.c - dynamic quantization of a product's input vector, AVX2 (same contract
 * as egru_quantize_s8, bit for bit: max is exact in any order, and each value takes the same
 * float multiply and round-half-to-even conversion as in the reference). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <math.h>
#include <string.h>

#include "../egru_kernels.h"
#include "egru_avx2.h"

float egru_quantize_s8_avx2(const float *x, int8_t *q, uint32_t n);

EGRU_AVX2 float egru_quantize_s8_avx2(const float *x, int8_t *q, uint32_t n)
{
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
    __m256 mv = _mm256_setzero_ps(), inv8;
    __m128 m4;
    float m, inv;
    uint32_t j = 0;
    for (; j + 8 <= n; j += 8) {
        mv = _mm256_max_ps(mv, _mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask));
    }
    m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    m = _mm_cvtss_f32(m4);
    for (; j < n; ++j) {
        const float a = fabsf(x[j]);
        m = a > m ? a : m;
    }
    if (m == 0.0f) {
        memset(q, 0, n);
        return 0.0f;
    }
    inv = 127.0f / m;
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
    return m / 127.0f;
}
#else
typedef int egru_quantize_s8_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
