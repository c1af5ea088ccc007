/* egru_quantize_s8_cortex_m.c - int8 quantization of a product's input for Cortex-M (same
 * contract as egru_quantize_s8, bit for bit on every input). The maximum and the scale are the
 * shared helpers' (egru_abs_bits_max, egru_quantize_s8_scale: integer compares, exact). The
 * rounding avoids libm's rintf (a call of about 40 instructions on newlib): v = x * inv is within
 * 127 * (1 + 2^-23) in magnitude, so adding 1.5 * 2^23 rounds it to an integer, half to even, in
 * the default rounding mode, exactly as rintf does, and the integer is the difference of the two
 * bit patterns; the clamp to [-127, 127] is the reference's. */
#include "../egru_kernels.h"
#include "egru_cortex_m.h"

float egru_quantize_s8_cortex_m(const float *x, int8_t *q, uint32_t n)
{
    const float shift = 12582912.0f; /* 1.5 * 2^23 */
    float inv;
    uint32_t j;
    const float sx = egru_quantize_s8_scale(egru_abs_bits_max(x, 0, n, 0), &inv);
    if (inv == 0.0f) {
        memset(q, 0, n);
        return sx;
    }
    for (j = 0; j < n; ++j) {
        int32_t v = (int32_t)(egru_cm_bits(x[j] * inv + shift) - egru_cm_bits(shift));
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[j] = (int8_t)v;
    }
    return sx;
}
