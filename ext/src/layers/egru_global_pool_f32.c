/*
 * egru_global_pool_f32.c - average or max over time (see egru_layers.h).
 * Average with a mask: sum over valid steps / number of valid steps (Keras' masked mean; a row
 * with no valid step gives 0 / 0 = NaN, as Keras does). Max: over valid steps when masked; a NaN
 * at any step gives NaN (TensorFlow's reduce_max, which Keras calls, propagates NaN), and once the
 * running maximum is NaN it stays NaN.
 */
#include <string.h>

#include "egru_layers.h"

void egru_global_pool_f32(const egru_layer_t *layer, const float *in, const uint8_t *mask,
                          uint32_t steps, float *out)
{
    const uint32_t n = layer->output_dim;
    const uint8_t *m = EGRU_CFG_MASK && (layer->flags & EGRU_FLAG_MASKED) ? mask : NULL;
    const int average = layer->params[0] == EGRU_POOL_AVERAGE;
    uint32_t t, c, count = 0;
    int first = 1;

    if (!EGRU_CFG_OP_GLOBAL_POOL) {
        return; /* left out of this build: egru_model_init refused the model */
    }
    memset(out, 0, n * sizeof(float));
    for (t = 0; t < steps; ++t) {
        const float *x = in + (size_t)t * n;
        if (m && !m[t]) {
            continue;
        }
        ++count;
        for (c = 0; c < n; ++c) {
            if (average) {
                out[c] += x[c];
            } else {
                out[c] = (first || x[c] > out[c] || x[c] != x[c]) ? x[c] : out[c];
            }
        }
        first = 0;
    }
    if (average) {
        for (c = 0; c < n; ++c) {
            out[c] /= (float)count;
        }
    }
}
