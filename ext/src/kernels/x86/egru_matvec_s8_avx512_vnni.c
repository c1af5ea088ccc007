/* egru_matvec_s8_avx512_vnni.c - int8 matrix-vector product with AVX-512 VNNI (vpdpbusd: four
 * unsigned x signed byte products summed into each int32 lane, one instruction per 64
 * multiply-adds), same contract as egru_matvec_s8, bit for bit (the int32 sums are exact in any
 * order, the float scaling is the reference's). vpdpbusd multiplies unsigned by signed bytes, so
 * the operands are |x| (<= 127) and w with x's sign moved onto it, as in egru_matvec_s8_avx512.c;
 * a group of four products is at most 4 * 127 * 127 and vpdpbusd does not saturate. The loops
 * (16 rows x 64 columns, a masked last chunk) are egru_matvec_s8_avx512_body.h, shared with
 * egru_matvec_s8_avx512.c. Built for every x86-64 target with a function attribute and chosen at
 * run time only when the CPU reports avx512vnni (egru_kernels_avx512). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx512.h"

void egru_matvec_s8_avx512_vnni(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                                const float *bias, float *y, uint32_t rows, uint32_t cols);

/* acc plus the sum of 64 products w * x (int8), as 16 int32 partial sums; ax = |x| and neg = the
 * lanes where x < 0. */
EGRU_AVX512_VNNI static inline __m512i dot64(__m512i acc, __m512i wv, __m512i ax, __mmask64 neg)
{
    return _mm512_dpbusd_epi32(acc, ax, _mm512_mask_sub_epi8(wv, neg, _mm512_setzero_si512(), wv));
}

/* ax for dot64: |x| (<= 127, unsigned for the multiply) */
EGRU_AVX512_VNNI static inline __m512i prep_x(__m512i x)
{
    return _mm512_abs_epi8(x);
}

#define EGRU_S8_SUMS   0
#define EGRU_S8_NAME   egru_matvec_s8_avx512_vnni
#define EGRU_S8_TARGET EGRU_AVX512_VNNI
#include "egru_matvec_s8_avx512_body.h"
#else
typedef int egru_matvec_s8_avx512_vnni_unused; /* ISO C forbids an empty translation unit */
#endif
