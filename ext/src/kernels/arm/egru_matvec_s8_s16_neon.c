/* egru_matvec_s8_s16_neon.c - the int16x8 product into G, NEON (same contract as
 * egru_matvec_s8_s16, kernels/ref/egru_matvec_s8_s16.c, bit for bit: the sums are exact, and each
 * row's requantization is the reference's own egru_q16_mul and egru_q16_sat_g).
 *
 * 16 columns at a time: the 16 weights sign-extended to int16 (vmovl_s8), then vmlal_s16 /
 * vmlal_high_s16 with 16 x values into an int32x4 accumulator, so each lane adds four products
 * per chunk. Four rows at a time share each chunk of x; rows left over go one by one.
 *
 * Exactness: every product has |w x| <= 127 * 32767 = 4,161,409. The columns go in blocks of
 * EGRU_S16_BLOCK = 512 (the last one shorter), within which every lane, the scalar tail and the
 * lanes' sum (vaddvq_s32) hold a sum of a subset of at most 512 products, so |partial| <= 512 *
 * 4,161,409 = 2,130,641,408 < 2^31 - 1 whatever the order (a lane alone: 4 products per chunk, at
 * most 32 chunks, 128 products); each block's exact int32 total is added into the row's int64 sum
 * (|sum| < 2^39 for cols <= EGRU_S8_MAX_COLS).
 *
 * Tails: a row's last cols % 16 columns take one 8-column step (8 weights, 8 x values) when at
 * least 8 remain, then at most 7 scalar products; no load reads past w[rows * cols) or x[cols),
 * and nothing needs aligned pointers (vld1 loads need only element alignment). */
#include "../egru_kernels.h"

#if defined(__aarch64__) && defined(__ARM_NEON) && EGRU_CFG_INT16X8
#include "../../int16x8/egru_q16.h"
#include "egru_neon.h"

void egru_matvec_s8_s16_neon(const int8_t *w, const int16_t *x, const int32_t *m, const int32_t *n,
                             const int32_t *bias, int32_t *g, uint32_t rows, uint32_t cols);

/* Columns per block of exact int32 sums (see above): a multiple of 16, at most 516. */
#define EGRU_S16_BLOCK 512u

/* acc plus the 16 products w[0..16) * (x0 | x1), four per lane. */
static inline int32x4_t madd16(int32x4_t acc, const int8_t *w, int16x8_t x0, int16x8_t x1)
{
    const int8x16_t wv = vld1q_s8(w);
    const int16x8_t w0 = vmovl_s8(vget_low_s8(wv)), w1 = vmovl_high_s8(wv);
    acc = vmlal_s16(acc, vget_low_s16(w0), vget_low_s16(x0));
    acc = vmlal_high_s16(acc, w0, x0);
    acc = vmlal_s16(acc, vget_low_s16(w1), vget_low_s16(x1));
    return vmlal_high_s16(acc, w1, x1);
}

/* The columns [c, end) of row past its 16-column chunks (end - c < 16): one 8-column step when
 * at least 8 remain, then scalar products; an int32 part of one block. */
static inline int32_t tail_sum(const int8_t *row, const int16_t *x, uint32_t c, uint32_t end)
{
    int32_t s = 0;
    if (c + 8 <= end) {
        const int16x8_t wv = vmovl_s8(vld1_s8(row + c)), xv = vld1q_s16(x + c);
        s = vaddvq_s32(vmlal_high_s16(vmull_s16(vget_low_s16(wv), vget_low_s16(xv)), wv, xv));
        c += 8;
    }
    for (; c < end; ++c) {
        s += (int32_t)row[c] * x[c];
    }
    return s;
}

/* One row's requantization: the reference's steps. */
static inline int32_t requant(int64_t acc, int32_t m, int32_t n, int32_t bias)
{
    return egru_q16_sat_g(egru_q16_mul(acc, m, (uint32_t)n) + bias);
}

void egru_matvec_s8_s16_neon(const int8_t *w, const int16_t *x, const int32_t *m, const int32_t *n,
                             const int32_t *bias, int32_t *g, uint32_t rows, uint32_t cols)
{
    uint32_t r = 0, j0, c, k;
    for (; r + 4 <= rows; r += 4) { /* four rows share each chunk of x */
        const int8_t *p[4]; /* the rows, each its own pointer: no chain of address additions */
        int64_t acc[4] = {0, 0, 0, 0};
        for (k = 0; k < 4; ++k) {
            p[k] = w + (size_t)(r + k) * cols;
        }
        for (j0 = 0; j0 < cols; j0 += EGRU_S16_BLOCK) {
            const uint32_t end = cols - j0 < EGRU_S16_BLOCK ? cols : j0 + EGRU_S16_BLOCK;
            const uint32_t c16 = j0 + ((end - j0) & ~15u);
            int32x4_t a[4];
            for (k = 0; k < 4; ++k) {
                a[k] = vdupq_n_s32(0);
            }
            for (c = j0; c < c16; c += 16) {
                const int16x8_t x0 = vld1q_s16(x + c), x1 = vld1q_s16(x + c + 8);
                for (k = 0; k < 4; ++k) {
                    a[k] = madd16(a[k], p[k] + c, x0, x1);
                }
            }
            for (k = 0; k < 4; ++k) {
                acc[k] += vaddvq_s32(a[k]);
                if (c16 < end) {
                    acc[k] += tail_sum(p[k], x, c16, end);
                }
            }
        }
        for (k = 0; k < 4; ++k) {
            g[r + k] = requant(acc[k], m[r + k], n[r + k], bias[r + k]);
        }
    }
    for (; r < rows; ++r) {
        const int8_t *row = w + (size_t)r * cols;
        int64_t acc = 0;
        for (j0 = 0; j0 < cols; j0 += EGRU_S16_BLOCK) {
            const uint32_t end = cols - j0 < EGRU_S16_BLOCK ? cols : j0 + EGRU_S16_BLOCK;
            const uint32_t c16 = j0 + ((end - j0) & ~15u);
            int32x4_t a = vdupq_n_s32(0);
            for (c = j0; c < c16; c += 16) {
                a = madd16(a, row + c, vld1q_s16(x + c), vld1q_s16(x + c + 8));
            }
            acc += vaddvq_s32(a);
            if (c16 < end) {
                acc += tail_sum(row, x, c16, end);
            }
        }
        g[r] = requant(acc, m[r], n[r], bias[r]);
    }
}
#else
typedef int egru_matvec_s8_s16_neon_unused; /* ISO C forbids an empty translation unit */
#endif
