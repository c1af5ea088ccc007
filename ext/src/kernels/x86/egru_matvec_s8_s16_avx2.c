/* egru_matvec_s8_s16_avx2.c - the int16x8 product into G, AVX2 (same contract as
 * egru_matvec_s8_s16, kernels/ref/egru_matvec_s8_s16.c, bit for bit: the sums are exact, and each
 * row's requantization is the reference's own egru_q16_mul and egru_q16_sat_g).
 *
 *     g[i] = satG(mul(sum_j w[i][j] * x[j], (m[i], n[i])) + bias[i]),   i < rows
 *
 * 16 columns at a time: the 16 weights sign-extended to int16 (vpmovsxbw), vpmaddwd with 16 x
 * values, so each int32 lane adds two products per chunk. Eight rows at a time share each chunk
 * of x (eight accumulators), rows left over go one by one.
 *
 * Exactness. Every product has |w x| <= 127 * 32767 = 4,161,409. The columns go in blocks of
 * EGRU_S16_BLOCK = 512 (the last one shorter); within a block everything is int32: each lane of an
 * accumulator, the 128-bit step and the scalar tail, and the horizontal sum of the lanes, hold a
 * sum of a subset of the block's at most 512 products, so |partial| <= 512 * 4,161,409 =
 * 2,130,641,408 < 2^31 - 1 = 2,147,483,647 whatever the order (a lane alone takes 2 products per
 * chunk, at most 32 chunks = 64 products per block: far below its limit of 516). Each block's
 * exact int32 total is then added into the row's int64 sum (|sum| <= 4,161,409 * cols < 2^39 for
 * cols <= EGRU_S8_MAX_COLS). Integer sums do not depend on their order, so the sum is the
 * reference's, and so is g.
 *
 * Tails: a row's last cols % 16 columns are one 16-column step against a zero-padded copy of x's
 * last partial chunk when the 16 weight bytes stay inside the matrix ("The tail chunk", below),
 * else one 8-column step (128-bit loads of 8 weights and 8 x values) when at least 8 remain, then
 * at most 7 scalar products; no load reads past w[rows * cols) or x[cols), and nothing needs
 * aligned pointers (unaligned loads only). */
#include "../egru_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && EGRU_CFG_INT16X8
#include <string.h>

#include "../../int16x8/egru_q16.h"
#include "egru_avx2.h"

void egru_matvec_s8_s16_avx2(const int8_t *w, const int16_t *x, const int32_t *m, const int32_t *n,
                             const int32_t *bias, int32_t *g, uint32_t rows, uint32_t cols);

/* Columns per block of exact int32 sums (see above): a multiple of 16, at most 516. */
#define EGRU_S16_BLOCK 512u

/* acc plus the 16 products w[0..16) * x (x: 16 int16 lanes), as 8 int32 lanes. */
EGRU_AVX2 static inline __m256i madd16(__m256i acc, const int8_t *w, __m256i xv)
{
    const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(wv, xv));
}

/* The 8 products w[0..8) * x (x: 8 int16 lanes), as 4 int32 lanes. */
EGRU_AVX2 static inline __m128i madd8(const int8_t *w, __m128i xv)
{
    const __m128i wv = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)w));
    return _mm_madd_epi16(wv, xv);
}

/* Sum of the 4 int32 lanes of v (exact within a block). */
EGRU_AVX2 static inline int32_t hsum128_epi32(__m128i v)
{
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4E));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xB1));
    return _mm_cvtsi128_si32(v);
}

/* Sum of the 8 int32 lanes of v. */
EGRU_AVX2 static inline int32_t hsum256_epi32(__m256i v)
{
    return hsum128_epi32(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

/* The 8 int32 lanes of each of a[0..8) summed: lane k of the result = sum of a[k]. */
EGRU_AVX2 static inline __m256i hsum8_epi32(const __m256i *a)
{
    const __m256i b0 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    const __m256i b1 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(b0, b1, 0x20),
                            _mm256_permute2x128_si256(b0, b1, 0x31));
}

/* The columns [c, end) of row past its 16-column chunks (end - c < 16): one 8-column step when
 * at least 8 remain, then scalar products; an int32 part of one block. */
EGRU_AVX2 static inline int32_t tail_sum(const int8_t *row, const int16_t *x, uint32_t c,
                                         uint32_t end)
{
    int32_t s = 0;
    if (c + 8 <= end) {
        s = hsum128_epi32(madd8(row + c, _mm_loadu_si128((const __m128i *)(const void *)(x + c))));
        c += 8;
    }
    for (; c < end; ++c) {
        s += (int32_t)row[c] * x[c];
    }
    return s;
}

/* The tail chunk of a row (its last cols % 16 columns, in the last block): when 16 bytes from
 * its start stay inside the matrix (every row but the last one or two when cols < 16, and more
 * with longer rows), one madd16 of those bytes against xt, x's last partial chunk zero-padded:
 * the bytes past the row's end (the next row's first weights) meet zeros and add nothing, and the
 * block still holds at most 512 nonzero products. Otherwise tail_sum. */

/* One row's requantization: the reference's steps. */
static inline int32_t requant(int64_t acc, int32_t m, int32_t n, int32_t bias)
{
    return egru_q16_sat_g(egru_q16_mul(acc, m, (uint32_t)n) + bias);
}

EGRU_AVX2 void egru_matvec_s8_s16_avx2(const int8_t *w, const int16_t *x, const int32_t *m,
                                       const int32_t *n, const int32_t *bias, int32_t *g,
                                       uint32_t rows, uint32_t cols)
{
    const uint32_t tail = cols % 16;
    const size_t wlen = (size_t)rows * cols;
    int16_t xt[16] = {0}; /* x's last partial chunk, zero beyond cols */
    uint32_t r = 0, j0, c, k;
    __m256i xtv;
    memcpy(xt, x + (cols - tail), tail * sizeof *x);
    xtv = _mm256_loadu_si256((const __m256i *)(const void *)xt);
    for (; r + 8 <= rows; r += 8) { /* eight rows share each chunk of x */
        const int8_t *p[8]; /* the rows, each its own pointer: no chain of address additions */
        int64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma GCC unroll 8
        for (k = 0; k < 8; ++k) {
            p[k] = w + (size_t)(r + k) * cols;
        }
        for (j0 = 0; j0 < cols; j0 += EGRU_S16_BLOCK) {
            const uint32_t end = cols - j0 < EGRU_S16_BLOCK ? cols : j0 + EGRU_S16_BLOCK;
            const uint32_t c16 = j0 + ((end - j0) & ~15u);
            __m256i a[8];
            int32_t part[8];
#pragma GCC unroll 8
            for (k = 0; k < 8; ++k) {
                a[k] = _mm256_setzero_si256();
            }
            for (c = j0; c < c16; c += 16) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(x + c));
#pragma GCC unroll 8
                for (k = 0; k < 8; ++k) {
                    a[k] = madd16(a[k], p[k] + c, xv);
                }
            }
            if (c16 < end) { /* the tail (end = cols): "The tail chunk" */
#pragma GCC unroll 8
                for (k = 0; k < 8; ++k) {
                    if ((size_t)(p[k] - w) + c16 + 16 <= wlen) {
                        a[k] = madd16(a[k], p[k] + c16, xtv);
                    } else {
                        acc[k] += tail_sum(p[k], x, c16, end);
                    }
                }
            }
            _mm256_storeu_si256((__m256i *)(void *)part, hsum8_epi32(a));
            for (k = 0; k < 8; ++k) {
                acc[k] += part[k];
            }
        }
        for (k = 0; k < 8; ++k) {
            g[r + k] = requant(acc[k], m[r + k], n[r + k], bias[r + k]);
        }
    }
    for (; r < rows; ++r) {
        const int8_t *row = w + (size_t)r * cols;
        int64_t acc = 0;
        for (j0 = 0; j0 < cols; j0 += EGRU_S16_BLOCK) {
            const uint32_t end = cols - j0 < EGRU_S16_BLOCK ? cols : j0 + EGRU_S16_BLOCK;
            const uint32_t c16 = j0 + ((end - j0) & ~15u);
            __m256i a = _mm256_setzero_si256();
            for (c = j0; c < c16; c += 16) {
                a = madd16(a, row + c, _mm256_loadu_si256((const __m256i *)(const void *)(x + c)));
            }
            if (c16 < end && (size_t)(row - w) + c16 + 16 <= wlen) {
                a = madd16(a, row + c16, xtv);
            } else if (c16 < end) {
                acc += tail_sum(row, x, c16, end);
            }
            acc += hsum256_epi32(a);
        }
        g[r] = requant(acc, m[r], n[r], bias[r]);
    }
}
#else
typedef int egru_matvec_s8_s16_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
