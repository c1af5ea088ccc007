/*
 * egru_gru_f32.c - a GRU layer over one sequence (see egru_layers.h and docs/format.md).
 *
 * Weights, rows grouped by gate in the order z (update), r (reset), h (candidate):
 *   kernel (3H, I), recurrent (3H, H), input_bias (3H), recurrent_bias (3H).
 * One step, f = recurrent_activation, g = activation:
 *   xp = kernel . x + input_bias                         (3H)
 *   z  = f(xp_z + R_z . h + c_z),  r = f(xp_r + R_r . h + c_r)
 *   reset_after:  hh = g(xp_h + r * (R_h . h + c_h))
 *   otherwise:    hh = g(xp_h + R_h . (r * h) + c_h)
 *   h  = z * h + (1 - z) * hh
 */
#include <string.h>

#include "../kernels/egru_kernels.h"
#include "egru_layers.h"

void egru_gru_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out,
                  float *scratch)
{
    const uint32_t n_in = layer->input_dim, H = layer->output_dim;
    const int reset_after = (layer->flags & EGRU_FLAG_RESET_AFTER) != 0;
    const int sequences = (layer->flags & EGRU_FLAG_RETURN_SEQUENCES) != 0;
    const float *rec_h = layer->recurrent + (size_t)2 * H * H; /* candidate block of R */
    float *h = scratch;                                        /* (H)  state                 */
    float *xp = h + H;                                         /* (3H) input projection      */
    float *hp = xp + 3 * H;                                    /* (3H) recurrent projection  */
    float *rh = hp + 3 * H;                                    /* (H)  r * h (reset_after=0) */
    uint32_t t, j;

    memset(h, 0, H * sizeof(float));
    for (t = 0; t < steps; ++t) {
        egru_matvec_f32(layer->kernel, in + (size_t)t * n_in, layer->input_bias, xp, 3 * H, n_in);
        if (reset_after) {
            egru_matvec_f32(layer->recurrent, h, layer->recurrent_bias, hp, 3 * H, H);
        } else {
            egru_matvec_f32(layer->recurrent, h, layer->recurrent_bias, hp, 2 * H, H);
        }
        for (j = 0; j < 2 * H; ++j) {
            xp[j] += hp[j]; /* z and r pre-activations */
        }
        egru_activate_f32(layer->recurrent_activation, xp, 2 * H);
        if (reset_after) {
            for (j = 0; j < H; ++j) {
                xp[2 * H + j] += xp[H + j] * hp[2 * H + j];
            }
        } else {
            for (j = 0; j < H; ++j) {
                rh[j] = xp[H + j] * h[j];
            }
            egru_matvec_f32(rec_h, rh, layer->recurrent_bias + 2 * H, hp + 2 * H, H, H);
            for (j = 0; j < H; ++j) {
                xp[2 * H + j] += hp[2 * H + j];
            }
        }
        egru_activate_f32(layer->activation, xp + 2 * H, H);
        for (j = 0; j < H; ++j) {
            const float z = xp[j];
            h[j] = z * h[j] + (1.0f - z) * xp[2 * H + j];
        }
        if (sequences) {
            memcpy(out + (size_t)t * H, h, H * sizeof(float));
        }
    }
    if (!sequences) {
        memcpy(out, h, H * sizeof(float));
    }
}
