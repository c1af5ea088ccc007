/* egru_layer_norm_f32.c - layer normalisation over the features of each step (see
 * egru_layers.h), in float (no double: a single-precision FPU runs it in hardware):
 * y = (x - mean) / sqrt(var + eps) * scale + shift, biased variance, eps = params[0] (f32 bits).
 *
 * The sums run on the values shifted by the step's first feature x0 (d_c = x_c - x0, exact when
 * x_c and x0 are within a factor 2 of each other), so a large common offset (mean 1e3, std 1e-2)
 * costs no precision: m = mean(d), and x - mean = d - m, var = mean((d - m)^2), both computed on
 * numbers of the size of the spread, not of the offset. Non-finite values: a NaN or +-inf feature
 * makes the whole step NaN (as the float64 formula does: inf - inf); a zero variance with eps = 0
 * gives 0 * inf = NaN, also as written. Deviations beyond ~1.8e19 overflow their square to inf
 * (var = inf, y = shift), as Keras' own float32 computation does. */
#include <math.h>

#include "egru_layers.h"

/* Both sums add blocks of SUM_BLOCK terms first, then the block sums: rounding error grows with
 * SUM_BLOCK + n / SUM_BLOCK terms instead of n. Measured against float64 numpy on (8, 50, n)
 * normal inputs, n = 4..256, mean 0 / 1e3 / -5e4, std 1e-3..10: max |error| of the normalised
 * values 6.7e-7 (about one float ulp of values near 4; with a plain sum 5.4e-6 at n = 256). */
#define SUM_BLOCK 16u

/* sum over c of (x[c] - x0) */
static float sum_shifted(const float *x, uint32_t n, float x0)
{
    float total = 0.0f, part = 0.0f;
    uint32_t c;
    for (c = 0; c < n; ++c) {
        part += x[c] - x0;
        if (c % SUM_BLOCK == SUM_BLOCK - 1) {
            total += part;
            part = 0.0f;
        }
    }
    return total + part;
}

/* sum over c of ((x[c] - x0) - m)^2 */
static float sum_squares(const float *x, uint32_t n, float x0, float m)
{
    float total = 0.0f, part = 0.0f;
    uint32_t c;
    for (c = 0; c < n; ++c) {
        const float d = (x[c] - x0) - m;
        part += d * d;
        if (c % SUM_BLOCK == SUM_BLOCK - 1) {
            total += part;
            part = 0.0f;
        }
    }
    return total + part;
}

void egru_layer_norm_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out)
{
    const uint32_t n = layer->output_dim;
    const float eps = egru_param_f32(layer->params[0]);
    uint32_t t, c;
    if (!EGRU_CFG_OP_LAYER_NORM) {
        return; /* left out of this build: egru_model_init refused the model */
    }
    for (t = 0; t < steps; ++t) {
        const float *x = in + (size_t)t * n;
        float *y = out + (size_t)t * n;
        const float x0 = x[0];
        const float m = sum_shifted(x, n, x0) / (float)n;
        const float inv = 1.0f / sqrtf(sum_squares(x, n, x0, m) / (float)n + eps);
        for (c = 0; c < n; ++c) {
            y[c] = ((x[c] - x0) - m) * inv * layer->scale[c] + layer->shift[c];
        }
    }
}
