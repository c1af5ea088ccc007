/* egru_quantize_s8.c - reference dynamic quantization of a product's input vector (see
 * egru_kernels.h and docs/quantization.md, quant_version 1). */
#include <math.h>
#include <string.h>

#include "../egru_kernels.h"

float egru_quantize_s8(const float *x, int8_t *q, uint32_t n)
{
    float m = 0.0f, inv;
    uint32_t j;
    for (j = 0; j < n; ++j) {
        const float a = fabsf(x[j]);
        m = a > m ? a : m;
    }
    if (m == 0.0f) {
        memset(q, 0, n);
        return 0.0f;
    }
    inv = 127.0f / m;
    egru_quantize_s8_range(x, q, 0, n, inv);
    return m / 127.0f;
}
