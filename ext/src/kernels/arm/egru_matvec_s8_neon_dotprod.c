/* egru_matvec_s8_neon_dotprod.c - int8 matrix-vector product with the Armv8.2 dot-product
 * instruction (SDOT: four int8 products summed into each int32 lane, one instruction per 16
 * multiply-adds), same contract as egru_matvec_s8, bit for bit (the int32 sums are exact in any
 * order, the float scaling is the reference's). Built for every aarch64 target with a function
 * attribute and chosen at run time only when the CPU reports the feature (egru_kernels_neon). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include "../egru_kernels.h"
#include "egru_neon.h"

#define EGRU_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

void egru_matvec_s8_neon_dotprod(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                                 const float *bias, float *y, uint32_t rows, uint32_t cols);

/* The sums of row `row` from column c16 on (the columns no 16-wide chunk covered), then the
 * reference's float steps. */
EGRU_DOTPROD void egru_matvec_s8_neon_dotprod(const int8_t *w, const float *scale, const int8_t *xq,
                                              float sx, const float *bias, float *y, uint32_t rows,
                                              uint32_t cols)
{
    const uint32_t c16 = cols & ~15u;
    uint32_t r = 0, c, k;
    for (; r + 4 <= rows; r += 4) { /* four rows share each chunk of x */
        int32x4_t a[4];
        for (k = 0; k < 4; ++k) {
            a[k] = vdupq_n_s32(0);
        }
        for (c = 0; c < c16; c += 16) {
            const int8x16_t x = vld1q_s8(xq + c);
            for (k = 0; k < 4; ++k) {
                a[k] = vdotq_s32(a[k], vld1q_s8(w + (uint64_t)(r + k) * cols + c), x);
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
            a = vdotq_s32(a, vld1q_s8(w + (uint64_t)r * cols + c), vld1q_s8(xq + c));
        }
        egru_s8_row_finish(vaddvq_s32(a), w + (uint64_t)r * cols, xq, c16, cols, scale[r], sx,
                           bias ? bias + r : bias, y + r);
    }
}
#else
typedef int egru_matvec_s8_neon_dotprod_unused; /* ISO C forbids an empty translation unit */
#endif
