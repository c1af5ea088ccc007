/*
 * egru_simple_rnn_cell_f32.c - one SimpleRNN step (see egru_layers.h and docs/format.md).
 *
 * Weights: kernel (H, I), recurrent (H, H), bias (H).  h = g(kernel . x + bias + recurrent . h),
 * g = activation. xp: kernel . x + bias (given). scratch: the recurrent projection (H).
 */
#include <string.h>

#include "../kernels/egru_kernels.h"
#include "egru_layers.h"

void egru_simple_rnn_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                              float *state, float *scratch)
{
    const uint32_t H = layer->units;
    float *a = xp, *hp = scratch;
    uint32_t j;

    layer->kernels->matvec_f32(w->recurrent, state, NULL, hp, H, H);
    for (j = 0; j < H; ++j) {
        a[j] += hp[j];
    }
    egru_activate_f32(layer, layer->activation, a, H);
    memcpy(state, a, H * sizeof(float));
}
