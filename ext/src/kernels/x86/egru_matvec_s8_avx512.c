/* egru_matvec_s8_avx512.c - int8 matrix-vector product, AVX-512 BW (same contract as
 * egru_matvec_s8, bit for bit: the int32 sums are exact in any order, and the float scaling is the
 * reference's multiply, multiply, add, unfused).
 *
 * 64 columns at a time, the AVX2 kernel's idiom on 512 bits: w is negated where x < 0 (a masked
 * subtract from zero: AVX-512 has no vpsignb) so that vpmaddubsw can multiply |x| (unsigned,
 * <= 127) by w * sign(x) (signed); each int16 pair sum is at most 2 * 127 * 127 = 32258, so it
 * never saturates; vpmaddwd by ones widens to int32. The loops over rows and chunks are
 * egru_matvec_s8_avx512_body.h, shared with the vpdpbusd version, egru_matvec_s8_avx512_vnni.c. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx512.h"

void egru_matvec_s8_avx512(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                           const float *bias, float *y, uint32_t rows, uint32_t cols);

/* acc plus the sum of 64 products w * x (int8), as 16 int32 partial sums; ax = |x| and neg = the
 * lanes where x < 0. */
EGRU_AVX512 static inline __m512i dot64(__m512i acc, __m512i wv, __m512i ax, __mmask64 neg)
{
    const __m512i ws = _mm512_mask_sub_epi8(wv, neg, _mm512_setzero_si512(), wv);
    const __m512i prod = _mm512_maddubs_epi16(ax, ws);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(prod, _mm512_set1_epi16(1)));
}

/* ax for dot64: |x| (<= 127, unsigned for the multiply) */
EGRU_AVX512 static inline __m512i prep_x(__m512i x)
{
    return _mm512_abs_epi8(x);
}

#define EGRU_S8_SUMS   0
#define EGRU_S8_NAME   egru_matvec_s8_avx512
#define EGRU_S8_TARGET EGRU_AVX512
#include "egru_matvec_s8_avx512_body.h"
#else
typedef int egru_matvec_s8_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
