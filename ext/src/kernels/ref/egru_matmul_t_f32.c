/* egru_matmul_t_f32.c - reference matrix product on transposed ("packed") weights, one
 * matrix-vector product per row of X (see egru_kernels.h). */
#include "../egru_kernels.h"

void egru_matmul_t_f32(const float *wt, uint32_t ld, const float *x, const float *bias, float *y,
                       uint32_t n, uint32_t rows, uint32_t cols)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        egru_matvec_t_f32(wt, ld, x + (uint64_t)i * cols, bias, y + (uint64_t)i * rows, rows, cols);
    }
}
