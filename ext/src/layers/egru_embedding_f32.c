/* egru_embedding_f32.c - token id -> vector lookup (see egru_layers.h). */
#include <string.h>

#include "egru_layers.h"

void egru_embedding_f32(const egru_layer_t *layer, const int32_t *ids, uint32_t steps, float *out,
                        uint8_t *mask_out)
{
    uint32_t t, dim = layer->output_dim;
    for (t = 0; t < steps; ++t) {
        memcpy(out + (size_t)t * dim, layer->table + (size_t)ids[t] * dim, dim * sizeof(float));
        if (layer->flags & EGRU_FLAG_MASK_ZERO) {
            mask_out[t] = ids[t] != 0;
        }
    }
}
