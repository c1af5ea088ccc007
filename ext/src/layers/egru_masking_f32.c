/* egru_masking_f32.c - Keras' Masking layer (see egru_layers.h): a step whose features all equal
 * mask_value (params[0], f32 bits) is masked, and its output is zero. */
#include "egru_layers.h"

void egru_masking_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out,
                      uint8_t *mask_out)
{
    const uint32_t n = layer->output_dim;
    const float value = egru_param_f32(layer->params[0]);
    uint32_t t, c;
    if (!EGRU_CFG_OP_MASKING || !EGRU_CFG_MASK) {
        return; /* left out of this build: egru_model_init refused the model */
    }
    for (t = 0; t < steps; ++t) {
        const float *x = in + (size_t)t * n;
        uint8_t valid = 0;
        for (c = 0; c < n; ++c) {
            valid |= x[c] != value;
        }
        mask_out[t] = valid;
        for (c = 0; c < n; ++c) {
            out[(size_t)t * n + c] = valid ? x[c] : 0.0f;
        }
    }
}
