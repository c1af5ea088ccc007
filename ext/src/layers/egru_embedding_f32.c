/* egru_embedding_f32.c - token id -> vector lookup (see egru_layers.h). */
#include <string.h>

#include "egru_layers.h"

egru_status_t egru_embedding_f32(const egru_layer_t *layer, const int32_t *ids, uint32_t steps,
                                 float *out, uint8_t *mask_out)
{
    /* The ids are the caller's memory, which another thread may change during the call: each
     * is read exactly once (a volatile read into a local), checked, and only that local is used
     * to index. */
    const volatile int32_t *src = ids;
    const uint32_t dim = layer->output_dim, vocab = layer->input_dim;
    uint32_t t, j;
    if (!EGRU_CFG_OP_EMBEDDING) {
        return EGRU_ERR_UNSUPPORTED; /* left out of this build: egru_model_init refused it */
    }
    for (t = 0; t < steps; ++t) {
        const int32_t id = src[t];
        float *y = out + (size_t)t * dim;
        if (id < 0 || (uint32_t)id >= vocab) {
            return EGRU_ERR_TOKEN_RANGE;
        }
        if (EGRU_CFG_INT8 &&
            layer->table_s8) { /* int8 rows: scale[id] * q[id][j] (docs/quantization.md) */
            const int8_t *q = layer->table_s8 + (size_t)id * dim;
            const float s = layer->table_scale[id];
            for (j = 0; j < dim; ++j) {
                y[j] = s * (float)q[j];
            }
        } else {
            memcpy(y, layer->table + (size_t)id * dim, dim * sizeof(float));
        }
        if (EGRU_CFG_MASK && (layer->flags & EGRU_FLAG_MASK_ZERO)) {
            mask_out[t] = id != 0;
        }
    }
    return EGRU_OK;
}
