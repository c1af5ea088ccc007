/* egru_quantize_s8.c - reference dynamic quantization of a product's input vector (see
 * egru_kernels.h and docs/quantization.md, quant_version 1, including the rule for NaN, infinite,
 * tiny and zero inputs). */
#include <string.h>

#include "../egru_kernels.h"

float egru_quantize_s8(const float *x, int8_t *q, uint32_t n)
{
    float inv;
    const float sx = egru_quantize_s8_scale(egru_abs_bits_max(x, 0, n, 0), &inv);
    if (inv == 0.0f) {
        memset(q, 0, n);
        return sx;
    }
    egru_quantize_s8_range(x, q, 0, n, inv);
    return sx;
}
