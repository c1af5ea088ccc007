/* egru_matvec_s8_s16_avx512.c - the int16x8 product into G, AVX-512 BW (same contract as
 * egru_matvec_s8_s16, kernels/ref/egru_matvec_s8_s16.c, bit for bit: the sums are exact, and each
 * row's requantization is the reference's own egru_q16_mul and egru_q16_sat_g).
 *
 * 32 columns at a time: the 32 weights sign-extended to int16 (vpmovsxbw), vpmaddwd with 32 x
 * values, so each of the 16 int32 lanes adds two products per chunk. Sixteen rows at a time share
 * each chunk of x (sixteen accumulators, reduced together by egru_hsum16_epi32); rows left over
 * go one by one.
 *
 * Exactness, as in the AVX2 kernel: every product has |w x| <= 127 * 32767 = 4,161,409; the
 * columns go in blocks of EGRU_S16_BLOCK = 512 (the last one shorter), within which every lane,
 * every horizontal partial sum and the block total are sums of a subset of at most 512 products,
 * so |partial| <= 512 * 4,161,409 = 2,130,641,408 < 2^31 - 1 (a lane alone: 2 products per
 * chunk, at most 16 chunks, 32 products); each block's exact int32 total is added into the row's
 * int64 sum (|sum| < 2^39 for cols <= EGRU_S8_MAX_COLS).
 *
 * Tails: a row's last cols % 32 columns are one masked load of the weights (lanes off read as 0
 * and touch no memory) against a zero-padded copy of x's last partial chunk, made once per call:
 * no load reads past w[rows * cols) or x[cols); unaligned loads only. */
#include "../egru_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && EGRU_CFG_INT16X8
#include <string.h>

#include "../../int16x8/egru_q16.h"
#include "egru_avx512.h"

void egru_matvec_s8_s16_avx512(const int8_t *w, const int16_t *x, const int32_t *m,
                               const int32_t *n, const int32_t *bias, int32_t *g, uint32_t rows,
                               uint32_t cols);

/* Columns per block of exact int32 sums (see above): a multiple of 32, at most 516. */
#define EGRU_S16_BLOCK 512u

/* acc plus the products of 32 int8 weights wv (in a 256-bit register) and 32 x values. */
EGRU_AVX512 static inline __m512i madd32(__m512i acc, __m256i wv, __m512i xv)
{
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_cvtepi8_epi16(wv), xv));
}

/* Weights [0, 32) of p. */
EGRU_AVX512 static inline __m256i load32(const int8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* Weights [0, tail) of p (0 < tail < 32), 0 in the other lanes, reading only p[0, tail). */
EGRU_AVX512 static inline __m256i load_tail(const int8_t *p, __mmask64 mt)
{
    return _mm512_castsi512_si256(_mm512_maskz_loadu_epi8(mt, p));
}

/* One row's requantization: the reference's steps. */
static inline int32_t requant(int64_t acc, int32_t m, int32_t n, int32_t bias)
{
    return egru_q16_sat_g(egru_q16_mul(acc, m, (uint32_t)n) + bias);
}

EGRU_AVX512 void egru_matvec_s8_s16_avx512(const int8_t *w, const int16_t *x, const int32_t *m,
                                           const int32_t *n, const int32_t *bias, int32_t *g,
                                           uint32_t rows, uint32_t cols)
{
    const uint32_t c32 = cols & ~31u, tail = cols - c32;
    const __mmask64 mt = tail ? egru_mask64(tail) : 0;
    int16_t xt[32] = {0}; /* x's last partial chunk, zero beyond cols */
    uint32_t r = 0, j0, c, k;
    __m512i xtv;
    memcpy(xt, x + c32, tail * sizeof *x);
    xtv = _mm512_loadu_si512(xt);
    for (; r + 16 <= rows; r += 16) { /* sixteen rows share each chunk of x */
        const int8_t *w0 = w + (size_t)r * cols;
        int64_t acc[16];
#pragma GCC unroll 16
        for (k = 0; k < 16; ++k) {
            acc[k] = 0;
        }
        for (j0 = 0; j0 < cols; j0 += EGRU_S16_BLOCK) {
            const uint32_t end = cols - j0 < EGRU_S16_BLOCK ? cols : j0 + EGRU_S16_BLOCK;
            const uint32_t cend = end < c32 ? end : c32; /* the full chunks of this block */
            __m512i a[16];
            int32_t part[16];
#pragma GCC unroll 16
            for (k = 0; k < 16; ++k) {
                a[k] = _mm512_setzero_si512();
            }
            for (c = j0; c < cend; c += 32) {
                const __m512i xv = _mm512_loadu_si512(x + c);
#pragma GCC unroll 16
                for (k = 0; k < 16; ++k) {
                    a[k] = madd32(a[k], load32(w0 + (size_t)k * cols + c), xv);
                }
            }
            if (end == cols && tail) {
#pragma GCC unroll 16
                for (k = 0; k < 16; ++k) {
                    a[k] = madd32(a[k], load_tail(w0 + (size_t)k * cols + c32, mt), xtv);
                }
            }
            _mm512_storeu_si512(part, egru_hsum16_epi32(a));
#pragma GCC unroll 16
            for (k = 0; k < 16; ++k) {
                acc[k] += part[k];
            }
        }
        for (k = 0; k < 16; ++k) {
            g[r + k] = requant(acc[k], m[r + k], n[r + k], bias[r + k]);
        }
    }
    for (; r < rows; ++r) {
        const int8_t *row = w + (size_t)r * cols;
        int64_t acc = 0;
        for (j0 = 0; j0 < cols; j0 += EGRU_S16_BLOCK) {
            const uint32_t end = cols - j0 < EGRU_S16_BLOCK ? cols : j0 + EGRU_S16_BLOCK;
            const uint32_t cend = end < c32 ? end : c32;
            __m512i a = _mm512_setzero_si512();
            for (c = j0; c < cend; c += 32) {
                a = madd32(a, load32(row + c), _mm512_loadu_si512(x + c));
            }
            if (end == cols && tail) {
                a = madd32(a, load_tail(row + c32, mt), xtv);
            }
            acc += egru_hsum512_epi32(a);
        }
        g[r] = requant(acc, m[r], n[r], bias[r]);
    }
}
#else
typedef int egru_matvec_s8_s16_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
