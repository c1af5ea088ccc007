/* egru_affine_f32.c - per-feature scale and shift: BatchNormalization and Normalization folded
 * at conversion (see egru_layers.h). */
#include "egru_layers.h"

void egru_affine_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out)
{
    const uint32_t n = layer->output_dim;
    uint32_t t, c;
    if (!EGRU_CFG_OP_AFFINE) {
        return; /* left out of this build: egru_model_init refused the model */
    }
    for (t = 0; t < steps; ++t) {
        for (c = 0; c < n; ++c) {
            const size_t i = (size_t)t * n + c;
            out[i] = in[i] * layer->scale[c] + layer->shift[c];
        }
    }
}
