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
        float m = 0.0f, var = 0.0f, inv;
        for (c = 0; c < n; ++c) {
            m += x[c] - x0;
        }
        m /= (float)n;
        for (c = 0; c < n; ++c) {
            const float d = (x[c] - x0) - m;
            var += d * d;
        }
        inv = 1.0f / sqrtf(var / (float)n + eps);
        for (c = 0; c < n; ++c) {
            y[c] = ((x[c] - x0) - m) * inv * layer->scale[c] + layer->shift[c];
        }
    }
}
