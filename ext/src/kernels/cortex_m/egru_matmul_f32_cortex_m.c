/* egru_matmul_f32_cortex_m.c - Y = X . W^T + bias for Cortex-M (same contract as
 * egru_matmul_f32): one egru_matvec_f32_cortex_m per row of X, so every row of Y is exactly what
 * this set's matvec_f32 gives for that input (batch invariance: the low-memory plan steps one row
 * at a time through matvec and must agree with the whole-sequence plan bit for bit). */
#include "../egru_kernels.h"

void egru_matmul_f32_cortex_m(const float *w, const float *x, const float *bias, float *y,
                              uint32_t n, uint32_t rows, uint32_t cols)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        egru_matvec_f32_cortex_m(w, x + (size_t)i * cols, bias, y + (size_t)i * rows, rows, cols);
    }
}
