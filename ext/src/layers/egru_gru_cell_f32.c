/*
 * egru_gru_cell_f32.c - one GRU step (see egru_layers.h and docs/format.md).
 *
 * Weights, rows grouped by gate in the order z (update), r (reset), h (candidate):
 *   kernel (3H, I), recurrent (3H, H), bias (3H) (input bias), recurrent_bias (3H).
 * f = recurrent_activation, g = activation:
 *   xp = kernel . x + bias                               (3H, computed by the caller)
 *   z  = f(xp_z + R_z . h + c_z),  r = f(xp_r + R_r . h + c_r)
 *   reset_after:  hh = g(xp_h + r * (R_h . h + c_h))
 *   otherwise:    hh = g(xp_h + R_h . (r * h) + c_h)
 *   h  = z * h + (1 - z) * hh
 * scratch: hp (3H), rh (H).
 */
#include "../kernels/egru_kernels.h"
#include "egru_layers.h"

void egru_gru_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                       float *state, float *scratch)
{
    const uint32_t H = layer->units;
    const egru_kernel_set_t *k = layer->kernels;
    float *h = state, *hp = scratch, *rh = hp + 3 * H;
    uint32_t j;

    if (layer->flags & EGRU_FLAG_RESET_AFTER) {
        k->matvec_f32(w->recurrent, h, w->recurrent_bias, hp, 3 * H, H);
    } else {
        k->matvec_f32(w->recurrent, h, w->recurrent_bias, hp, 2 * H, H);
    }
    for (j = 0; j < 2 * H; ++j) {
        xp[j] += hp[j]; /* z and r pre-activations */
    }
    egru_activate_f32(layer, layer->recurrent_activation, xp, 2 * H);
    if (layer->flags & EGRU_FLAG_RESET_AFTER) {
        for (j = 0; j < H; ++j) {
            xp[2 * H + j] += xp[H + j] * hp[2 * H + j];
        }
    } else {
        for (j = 0; j < H; ++j) {
            rh[j] = xp[H + j] * h[j];
        }
        k->matvec_f32(w->recurrent + (size_t)2 * H * H, rh, w->recurrent_bias + 2 * H, hp + 2 * H,
                      H, H);
        for (j = 0; j < H; ++j) {
            xp[2 * H + j] += hp[2 * H + j];
        }
    }
    egru_activate_f32(layer, layer->activation, xp + 2 * H, H);
    for (j = 0; j < H; ++j) {
        const float z = xp[j];
        h[j] = z * h[j] + (1.0f - z) * xp[2 * H + j];
    }
}
