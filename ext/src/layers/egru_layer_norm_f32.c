/* egru_layer_norm_f32.c - layer normalisation over the features of each step (see
 * egru_layers.h). Mean and biased variance are accumulated in double, then
 * y = (x - mean) / sqrt(var + eps) * scale + shift; eps is params[0] (f32 bits). */
#include <math.h>

#include "egru_layers.h"

void egru_layer_norm_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out)
{
    const uint32_t n = layer->output_dim;
    const double eps = egru_param_f32(layer->params[0]);
    uint32_t t, c;
    for (t = 0; t < steps; ++t) {
        const float *x = in + (size_t)t * n;
        float *y = out + (size_t)t * n;
        double mean = 0.0, var = 0.0, inv;
        for (c = 0; c < n; ++c) {
            mean += x[c];
        }
        mean /= n;
        for (c = 0; c < n; ++c) {
            var += (x[c] - mean) * (x[c] - mean);
        }
        inv = 1.0 / sqrt(var / n + eps);
        for (c = 0; c < n; ++c) {
            y[c] = (float)((x[c] - mean) * inv) * layer->scale[c] + layer->shift[c];
        }
    }
}
