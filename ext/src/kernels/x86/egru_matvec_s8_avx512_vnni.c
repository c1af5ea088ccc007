/* egru_matvec_s8_avx512_vnni.c - int8 matrix-vector product with AVX-512 VNNI (vpdpbusd: four
 * unsigned x signed byte products summed into each int32 lane, one instruction per 64
 * multiply-adds), same contract as egru_matvec_s8, bit for bit (the int32 sums are exact in any
 * order, the float scaling is the reference's). vpdpbusd multiplies unsigned by signed bytes, so
 * the operands are |x| (<= 127) and w with x's sign moved onto it, as in egru_matvec_s8_avx512.c;
 * a group of four products is at most 4 * 127 * 127 and vpdpbusd does not saturate. The
 * structure is egru_matvec_s8_avx512's: 16 rows x 64 columns, a masked last chunk. Built for every
 * x86-64 target with a function attribute and chosen at run time only when the CPU reports
 * avx512vnni (egru_kernels_avx512). */
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

EGRU_AVX512_VNNI void egru_matvec_s8_avx512_vnni(const int8_t *w, const float *scale,
                                                 const int8_t *xq, float sx, const float *bias,
                                                 float *y, uint32_t rows, uint32_t cols)
{
    const uint32_t c64 = cols & ~63u, tail = cols - c64;
    const __mmask64 mt = tail ? egru_mask64(tail) : 0;
    __m512i xst = _mm512_setzero_si512(), axt = xst;
    __mmask64 negt = 0;
    uint32_t r = 0, c, k;
    if (tail) { /* the last chunk of x, zero beyond the end */
        xst = _mm512_maskz_loadu_epi8(mt, xq + c64);
        axt = _mm512_abs_epi8(xst);
        negt = _mm512_movepi8_mask(xst);
    }
    for (; r + 16 <= rows; r += 16) { /* sixteen rows share each chunk of x */
        const int8_t *w0 = w + (uint64_t)r * cols;
        __m512i a[16];
#pragma GCC unroll 16
        for (k = 0; k < 16; ++k) {
            a[k] = _mm512_setzero_si512();
        }
        for (c = 0; c < c64; c += 64) {
            const __m512i xs = _mm512_loadu_si512(xq + c), ax = _mm512_abs_epi8(xs);
            const __mmask64 neg = _mm512_movepi8_mask(xs);
#pragma GCC unroll 16
            for (k = 0; k < 16; ++k) {
                a[k] = dot64(a[k], _mm512_loadu_si512(w0 + (uint64_t)k * cols + c), ax, neg);
            }
        }
        if (tail) {
#pragma GCC unroll 16
            for (k = 0; k < 16; ++k) {
                const __m512i wv = _mm512_maskz_loadu_epi8(mt, w0 + (uint64_t)k * cols + c64);
                a[k] = dot64(a[k], wv, axt, negt);
            }
        }
        egru_s8_scale_store16(egru_hsum16_epi32(a), scale + r, sx, bias ? bias + r : bias, y + r);
    }
    for (; r < rows; ++r) {
        const int8_t *row = w + (uint64_t)r * cols;
        __m512i acc = _mm512_setzero_si512();
        for (c = 0; c < c64; c += 64) {
            const __m512i xs = _mm512_loadu_si512(xq + c);
            acc = dot64(acc, _mm512_loadu_si512(row + c), _mm512_abs_epi8(xs),
                        _mm512_movepi8_mask(xs));
        }
        if (tail) {
            acc = dot64(acc, _mm512_maskz_loadu_epi8(mt, row + c64), axt, negt);
        }
        egru_s8_finish1(egru_hsum512_epi32(acc), scale[r], sx, bias ? bias + r : bias, y + r);
    }
}
#else
typedef int egru_matvec_s8_avx512_vnni_unused; /* ISO C forbids an empty translation unit */
#endif
