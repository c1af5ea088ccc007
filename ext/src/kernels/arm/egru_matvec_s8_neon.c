/* egru_matvec_s8_neon.c - int8 matrix-vector product, NEON (same contract as egru_matvec_s8, bit
 * for bit: the int32 sums are exact in any order, the float scaling is the reference's).
 *
 * 16 columns at a time per row: vmull_s8 gives int16 products (|p| <= 127 * 127 fits), vpadalq_s16
 * adds their pairs into four int32 lanes. Four rows at a time; the last cols % 16 columns and rows
 * are scalar. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include "../egru_kernels.h"
#include "egru_neon.h"

void egru_matvec_s8_neon(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                         const float *bias, float *y, uint32_t rows, uint32_t cols);

static int32x4_t dot16(int32x4_t acc, const int8_t *w, int8x16_t x)
{
    const int8x16_t wv = vld1q_s8(w);
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(wv), vget_low_s8(x)));
    return vpadalq_s16(acc, vmull_high_s8(wv, x));
}

void egru_matvec_s8_neon(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                         const float *bias, float *y, uint32_t rows, uint32_t cols)
{
    const uint32_t c16 = cols & ~15u;
    uint32_t r = 0, c, k;
    for (; r + 4 <= rows; r += 4) {
        int32x4_t a[4];
        for (k = 0; k < 4; ++k) {
            a[k] = vdupq_n_s32(0);
        }
        for (c = 0; c < c16; c += 16) {
            const int8x16_t x = vld1q_s8(xq + c);
            for (k = 0; k < 4; ++k) {
                a[k] = dot16(a[k], w + (uint64_t)(r + k) * cols + c, x);
            }
        }
        for (k = 0; k < 4; ++k) {
            egru_s8_row_finish(vaddvq_s32(a[k]), w + (uint64_t)(r + k) * cols, xq, c16, cols,
                               scale[r + k], sx, bias ? bias + r + k : bias, y + r + k);
        }
    }
    for (; r < rows; ++r) {
        int32x4_t a = vdupq_n_s32(0);
        for (c = 0; c < c16; c += 16) {
            a = dot16(a, w + (uint64_t)r * cols + c, vld1q_s8(xq + c));
        }
        egru_s8_row_finish(vaddvq_s32(a), w + (uint64_t)r * cols, xq, c16, cols, scale[r], sx,
                           bias ? bias + r : bias, y + r);
    }
}
#else
typedef int egru_matvec_s8_neon_unused; /* ISO C forbids an empty translation unit */
#endif
