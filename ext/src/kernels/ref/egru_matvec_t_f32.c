/* egru_matvec_t_f32.c - reference matrix-vector product on transposed ("packed") weights (see
 * egru_kernels.h): y = W . x + bias with W stored as W^T, one input column's weights contiguous.
 * Each y[r] sums its products in column order, as egru_matvec_f32 does. */
#include "../egru_kernels.h"

void egru_matvec_t_f32(const float *wt, uint32_t ld, const float *x, const float *bias, float *y,
                       uint32_t rows, uint32_t cols)
{
    uint32_t r, c;
    for (r = 0; r < rows; ++r) {
        y[r] = 0.0f;
    }
    for (c = 0; c < cols; ++c) {
        const float *col = wt + (uint64_t)c * ld, xc = x[c];
        for (r = 0; r < rows; ++r) {
            y[r] += col[r] * xc;
        }
    }
    if (bias) {
        for (r = 0; r < rows; ++r) {
            y[r] += bias[r];
        }
    }
}
