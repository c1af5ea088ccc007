/*
 * egru_simple_rnn_cell_f32.c - one SimpleRNN step for a block of rows (see egru_layers.h and
 * docs/format.md).
 *
 * Weights: kernel (H, I), recurrent (H, H), bias (H).  h = g(kernel . x + bias + recurrent . h),
 * g = activation. xp: kernel . x + bias (given). scratch: the recurrent products (rows, H).
 */
#include <string.h>

#include "../kernels/egru_kernels.h"
#include "egru_layers.h"

void egru_simple_rnn_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                              size_t xp_stride, uint32_t rows, const uint8_t *valid, float *state,
                              float *scratch, int8_t *q, uint32_t step)
{
    const uint32_t H = layer->units;
    uint32_t b, j;

    if (!EGRU_CFG_OP_SIMPLE_RNN) {
        return; /* left out of this build: egru_model_init refused the model */
    }
    egru_rnn_recurrent_f32(layer, w, state, rows, 0, H, NULL, scratch, q, step);
    for (b = 0; b < rows; ++b) {
        float *a = xp + b * xp_stride;
        const float *hp = scratch + (size_t)b * H;
        if (valid && !valid[b]) {
            continue;
        }
        for (j = 0; j < H; ++j) {
            a[j] += hp[j];
        }
        egru_activate_f32(layer, layer->activation, a, H);
        memcpy(state + (size_t)b * H, a, H * sizeof(float));
    }
}
