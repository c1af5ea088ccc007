/* egru_matvec_s8.c - reference int8 matrix-vector product (see egru_kernels.h and
 * docs/quantization.md, quant_version 1): int32 accumulation, then one float scale per row. */
#include "../egru_kernels.h"

void egru_matvec_s8(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                    const float *bias, float *y, uint32_t rows, uint32_t cols)
{
    uint32_t r, c;
    for (r = 0; r < rows; ++r) {
        const int8_t *row = w + (uint64_t)r * cols;
        int32_t acc = 0;
        float v;
        for (c = 0; c < cols; ++c) {
            acc += (int32_t)row[c] * xq[c];
        }
        v = (float)acc * (scale[r] * sx);
        y[r] = bias ? v + bias[r] : v;
    }
}
