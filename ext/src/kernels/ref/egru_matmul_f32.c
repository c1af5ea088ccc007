/* egru_matmul_f32.c - reference matrix product, one matrix-vector product per row of X (see
 * egru_kernels.h): the same additions in the same order as egru_matvec_f32. */
#include "../egru_kernels.h"

void egru_matmul_f32(const float *w, const float *x, const float *bias, float *y, uint32_t n,
                     uint32_t rows, uint32_t cols)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        egru_matvec_f32(w, x + (uint64_t)i * cols, bias, y + (uint64_t)i * rows, rows, cols);
    }
}
