/* egru_matmul_t_f32_neon.c - Y = X . W^T + bias on transposed weights, NEON (same contract as
 * egru_matmul_t_f32): one egru_matvec_t_f32_neon per row of X. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include "../egru_kernels.h"

void egru_matvec_t_f32_neon(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t rows, uint32_t cols);
void egru_matmul_t_f32_neon(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t n, uint32_t rows, uint32_t cols);

void egru_matmul_t_f32_neon(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t n, uint32_t rows, uint32_t cols)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        egru_matvec_t_f32_neon(wt, ld, x + (uint64_t)i * cols, bias, y + (uint64_t)i * rows, rows,
                               cols);
    }
}
#else
typedef int egru_matmul_t_f32_neon_unused; /* ISO C forbids an empty translation unit */
#endif
