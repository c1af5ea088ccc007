/* egru_matvec_s8_avx512_body.h - the loop structure the AVX-512 int8 products share
 * (egru_matvec_s8_avx512.c with vpmaddubsw + vpmaddwd, egru_matvec_s8_avx512_vnni.c with vpdpbusd,
 * egru_matvec_s8_sums_avx512_vnni.c with vpdpbusd on biased x; contracts: egru_matvec_s8,
 * egru_matvec_s8_sums). Sixteen rows at a time share each 64-column chunk of x (sixteen
 * accumulators), their sums reduced together (egru_hsum16_epi32); rows left over go one by one. A
 * row's last cols % 64 columns are one masked load (lanes that are off read as 0, adding nothing),
 * so no load reads past the matrix.
 *
 * Not a header of declarations: a function body, included once by each of those files after
 * they define EGRU_S8_NAME (the function), EGRU_S8_TARGET (its target attribute), EGRU_S8_SUMS (1:
 * the egru_matvec_s8_sums signature and a correction of each row's sum, else 0),
 * `static inline __m512i prep_x(__m512i x)` and
 * `static inline __m512i dot64(__m512i acc, __m512i wv, __m512i ax, __mmask64 neg)`: acc plus 16
 * int32 partial sums of the 64 products of w with x, given ax = prep_x(x) and neg = the lanes
 * where x < 0. Without sums: ax = |x|, and dot64 moves x's sign onto w. With sums: ax = x + 128
 * as unsigned bytes (x ^ 0x80), dot64 sums (x + 128) * w, and 128 * sums[r] is taken off each
 * row's total (int32, wrapping: the true sum fits int32, so the wrapped one is exact). */
EGRU_S8_TARGET void EGRU_S8_NAME(const int8_t *w,
#if EGRU_S8_SUMS
                                 const int32_t *sums,
#endif
                                 const float *scale, const int8_t *xq, float sx, const float *bias,
                                 float *y, uint32_t rows, uint32_t cols)
{
    const uint32_t c64 = cols & ~63u, tail = cols - c64;
    const __mmask64 mt = tail ? egru_mask64(tail) : 0;
    __m512i xst = _mm512_setzero_si512(), axt = xst;
    __mmask64 negt = 0;
    uint32_t r = 0, c, k;
    if (tail) { /* the last chunk of x, zero beyond the end */
        xst = _mm512_maskz_loadu_epi8(mt, xq + c64);
        axt = prep_x(xst); /* lanes past the end: w reads 0 there, so they add nothing */
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
            const __m512i xs = _mm512_loadu_si512(xq + c), ax = prep_x(xs);
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
#if EGRU_S8_SUMS
        egru_s8_scale_store16(_mm512_sub_epi32(egru_hsum16_epi32(a),
                                               _mm512_slli_epi32(_mm512_loadu_si512(sums + r), 7)),
                              scale + r, sx, bias ? bias + r : bias, y + r);
#else
        egru_s8_scale_store16(egru_hsum16_epi32(a), scale + r, sx, bias ? bias + r : bias, y + r);
#endif
    }
    for (; r < rows; ++r) {
        const int8_t *row = w + (uint64_t)r * cols;
        __m512i acc = _mm512_setzero_si512();
        for (c = 0; c < c64; c += 64) {
            const __m512i xs = _mm512_loadu_si512(xq + c);
            acc = dot64(acc, _mm512_loadu_si512(row + c), prep_x(xs), _mm512_movepi8_mask(xs));
        }
        if (tail) {
            acc = dot64(acc, _mm512_maskz_loadu_epi8(mt, row + c64), axt, negt);
        }
#if EGRU_S8_SUMS
        egru_s8_finish1((int32_t)((uint32_t)egru_hsum512_epi32(acc) - ((uint32_t)sums[r] << 7)),
                        scale[r], sx, bias ? bias + r : bias, y + r);
#else
        egru_s8_finish1(egru_hsum512_epi32(acc), scale[r], sx, bias ? bias + r : bias, y + r);
#endif
    }
}
