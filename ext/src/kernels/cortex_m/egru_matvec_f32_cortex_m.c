/* egru_matvec_f32_cortex_m.c - matrix-vector product for Cortex-M (same contract as
 * egru_matvec_f32), blocked to keep values in registers: four rows at a time, eight columns per
 * inner iteration (eight x values and each row's eight weights loaded as contiguous runs, which
 * GCC turns into vldmia, and 32 multiply-adds into four accumulators), then the last columns and
 * the last rows one by one. Each row still adds its products in column order, one multiply and one
 * add per product (VMLA on an FPU rounds both, like the reference's separate operations), so on an
 * IEEE single-precision FPU the result equals the reference's bit for bit; within the bound of
 * docs/kernels.md in any case. */
#include "../egru_kernels.h"

/* y[0..4) for rows w0..w3 (each cols long). */
static void rows4(const float *w0, uint32_t cols, const float *x, const float *bias, float *y)
{
    const float *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    uint32_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        const float x0 = x[c], x1 = x[c + 1], x2 = x[c + 2], x3 = x[c + 3];
        const float x4 = x[c + 4], x5 = x[c + 5], x6 = x[c + 6], x7 = x[c + 7];
        a0 += w0[c] * x0;
        a0 += w0[c + 1] * x1;
        a0 += w0[c + 2] * x2;
        a0 += w0[c + 3] * x3;
        a0 += w0[c + 4] * x4;
        a0 += w0[c + 5] * x5;
        a0 += w0[c + 6] * x6;
        a0 += w0[c + 7] * x7;
        a1 += w1[c] * x0;
        a1 += w1[c + 1] * x1;
        a1 += w1[c + 2] * x2;
        a1 += w1[c + 3] * x3;
        a1 += w1[c + 4] * x4;
        a1 += w1[c + 5] * x5;
        a1 += w1[c + 6] * x6;
        a1 += w1[c + 7] * x7;
        a2 += w2[c] * x0;
        a2 += w2[c + 1] * x1;
        a2 += w2[c + 2] * x2;
        a2 += w2[c + 3] * x3;
        a2 += w2[c + 4] * x4;
        a2 += w2[c + 5] * x5;
        a2 += w2[c + 6] * x6;
        a2 += w2[c + 7] * x7;
        a3 += w3[c] * x0;
        a3 += w3[c + 1] * x1;
        a3 += w3[c + 2] * x2;
        a3 += w3[c + 3] * x3;
        a3 += w3[c + 4] * x4;
        a3 += w3[c + 5] * x5;
        a3 += w3[c + 6] * x6;
        a3 += w3[c + 7] * x7;
    }
    for (; c < cols; ++c) {
        const float xc = x[c];
        a0 += w0[c] * xc;
        a1 += w1[c] * xc;
        a2 += w2[c] * xc;
        a3 += w3[c] * xc;
    }
    if (bias) {
        a0 += bias[0];
        a1 += bias[1];
        a2 += bias[2];
        a3 += bias[3];
    }
    y[0] = a0;
    y[1] = a1;
    y[2] = a2;
    y[3] = a3;
}

void egru_matvec_f32_cortex_m(const float *w, const float *x, const float *bias, float *y,
                              uint32_t rows, uint32_t cols)
{
    uint32_t r = 0, c;
    for (; r + 4 <= rows; r += 4) {
        rows4(w + (size_t)r * cols, cols, x, bias ? bias + r : NULL, y + r);
    }
    for (; r < rows; ++r) {
        const float *row = w + (size_t)r * cols;
        float acc = 0.0f;
        for (c = 0; c < cols; ++c) {
            acc += row[c] * x[c];
        }
        y[r] = bias ? acc + bias[r] : acc;
    }
}
