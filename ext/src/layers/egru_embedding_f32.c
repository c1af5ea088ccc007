/* egru_embedding_f32.c - token id -> vector lookup (see egru_layers.h). */
#include <string.h>

#include "egru_layers.h"

void egru_embedding_f32(const egru_layer_t *layer, const int32_t *ids, uint32_t steps, float *out,
                        uint8_t *mask_out)
{
    uint32_t t, j, dim = layer->output_dim;
    for (t = 0; t < steps; ++t) {
        float *y = out + (size_t)t * dim;
        if (layer->table_s8) { /* int8 rows: scale[id] * q[id][j] (docs/quantization.md) */
            const int8_t *q = layer->table_s8 + (size_t)ids[t] * dim;
            const float s = layer->table_scale[ids[t]];
            for (j = 0; j < dim; ++j) {
                y[j] = s * (float)q[j];
            }
        } else {
            memcpy(y, layer->table + (size_t)ids[t] * dim, dim * sizeof(float));
        }
        if (layer->flags & EGRU_FLAG_MASK_ZERO) {
            mask_out[t] = ids[t] != 0;
        }
    }
}
