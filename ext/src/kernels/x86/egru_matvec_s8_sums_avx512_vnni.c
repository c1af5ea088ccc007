/* egru_matvec_s8_sums_avx512_vnni.c - int8 matrix-vector product with AVX-512 VNNI given the row
 * sums of w (contract: egru_matvec_s8_sums, results bit for bit egru_matvec_s8's). vpdpbusd
 * multiplies unsigned by signed bytes: here the unsigned operand is x + 128 (x ^ 0x80, made once
 * per call for each 64-column chunk of x) and the signed one w as stored, so a chunk costs one
 * vpdpbusd and no per-weight sign fix-up (egru_matvec_s8_avx512_vnni.c negates w where x < 0,
 * one more operation per 64 weights: measured about 20-35 % slower on a Zen 4 for W1's 384 x 128
 * recurrent matrix). Each row's total is sum (x + 128) w = sum w x + 128 sum w: the precomputed
 * 128 * sums[r] is taken off in wrapping int32 arithmetic (vpdpbusd wraps, a group of four is at
 * most 4 * 255 * 128, and the true sum fits int32 for cols < 2^17, so the result is exact). The
 * loops are egru_matvec_s8_avx512_body.h. Chosen at run time only when the CPU reports avx512vnni
 * (egru_kernels_avx512). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx512.h"

void egru_matvec_s8_sums_avx512_vnni(const int8_t *w, const int32_t *sums, const float *scale,
                                     const int8_t *xq, float sx, const float *bias, float *y,
                                     uint32_t rows, uint32_t cols);

/* ax for dot64: x + 128 as unsigned bytes */
EGRU_AVX512_VNNI static inline __m512i prep_x(__m512i x)
{
    return _mm512_xor_si512(x, _mm512_set1_epi8((char)0x80));
}

/* acc plus the sums of four products (x + 128) * w per int32 lane (neg is not needed) */
EGRU_AVX512_VNNI static inline __m512i dot64(__m512i acc, __m512i wv, __m512i ax, __mmask64 neg)
{
    (void)neg;
    return _mm512_dpbusd_epi32(acc, ax, wv);
}

#define EGRU_S8_SUMS   1
#define EGRU_S8_NAME   egru_matvec_s8_sums_avx512_vnni
#define EGRU_S8_TARGET EGRU_AVX512_VNNI
#include "egru_matvec_s8_avx512_body.h"
#else
typedef int egru_matvec_s8_sums_avx512_vnni_unused; /* ISO C forbids an empty translation unit */
#endif
