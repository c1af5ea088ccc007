/* egru_matvec_f32.c - reference matrix-vector product (see egru_kernels.h). */
#include "../egru_kernels.h"

void egru_matvec_f32(const float *w, const float *x, const float *bias, float *y, uint32_t rows,
                     uint32_t cols)
{
    uint32_t r, c;
    for (r = 0; r < rows; ++r) {
        const float *row = w + (uint64_t)r * cols;
        float acc = 0.0f;
        for (c = 0; c < cols; ++c) {
            acc += row[c] * x[c];
        }
        y[r] = bias ? acc + bias[r] : acc;
    }
}
