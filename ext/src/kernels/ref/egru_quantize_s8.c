/* egru_quantize_s8.c - reference dynamic quantization of a product's input vector (see
 * egru_kernels.h and docs/quantization.md, quant_version 1). */
#include <math.h>

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
        for (j = 0; j < n; ++j) {
            q[j] = 0;
        }
        return 0.0f;
    }
    inv = 127.0f / m;
    for (j = 0; j < n; ++j) {
        float v = rintf(x[j] * inv); /* round half to even (the default rounding mode) */
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        q[j] = (int8_t)v;
    }
    return m / 127.0f;
}
