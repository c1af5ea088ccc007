/*
 * egru_gru_cell_f32.c - one GRU step for a block of rows (see egru_layers.h, docs/format.md).
 *
 * Weights, rows grouped by gate in the order z (update), r (reset), h (candidate):
 *   kernel (3H, I), recurrent (3H, H), bias (3H) (input bias), recurrent_bias (3H).
 * f = recurrent_activation, g = activation:
 *   xp = kernel . x + bias                               (3H, computed by the caller)
 *   z  = f(xp_z + R_z . h + c_z),  r = f(xp_r + R_r . h + c_r)
 *   reset_after:  hh = g(xp_h + r * (R_h . h + c_h))
 *   otherwise:    hh = g(xp_h + R_h . (r * h) + c_h)
 *   h  = z * h + (1 - z) * hh
 * The recurrent products of all rows are one matrix product. scratch: hp (rows, 3H), rh (rows,
 * H).
 */
#include "../kernels/egru_kernels.h"
#include "egru_layers.h"

void egru_gru_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                       size_t xp_stride, uint32_t rows, const uint8_t *valid, float *state,
                       float *scratch, int8_t *q)
{
    const uint32_t H = layer->units;
    const int after = (layer->flags & EGRU_FLAG_RESET_AFTER) != 0;
    const uint32_t nr = after ? 3 * H : 2 * H; /* rows of the first recurrent product */
    float *hp = scratch, *rh = hp + (size_t)rows * 3 * H;
    uint32_t b, j;

    egru_rnn_recurrent_f32(layer, w, state, rows, 0, nr, w->recurrent_bias, hp, q);
    for (b = 0; b < rows; ++b) {
        float *x = xp + b * xp_stride;
        const float *hb = hp + (size_t)b * nr, *h = state + (size_t)b * H;
        for (j = 0; j < 2 * H; ++j) {
            x[j] += hb[j]; /* z and r pre-activations */
        }
        egru_activate_f32(layer, layer->recurrent_activation, x, 2 * H);
        if (after) {
            for (j = 0; j < H; ++j) {
                x[2 * H + j] += x[H + j] * hb[2 * H + j];
            }
        } else {
            for (j = 0; j < H; ++j) {
                rh[(size_t)b * H + j] = x[H + j] * h[j];
            }
        }
    }
    if (!after) { /* R_h . (r * h) for all rows, into hp (no longer needed) as (rows, H) */
        egru_rnn_recurrent_f32(layer, w, rh, rows, 2 * H, H, w->recurrent_bias + 2 * H, hp, q);
    }
    for (b = 0; b < rows; ++b) {
        float *x = xp + b * xp_stride, *h = state + (size_t)b * H;
        if (!after) {
            for (j = 0; j < H; ++j) {
                x[2 * H + j] += hp[(size_t)b * H + j];
            }
        }
        egru_activate_f32(layer, layer->activation, x + 2 * H, H);
        if (!valid || valid[b]) {
            for (j = 0; j < H; ++j) {
                const float z = x[j];
                h[j] = z * h[j] + (1.0f - z) * x[2 * H + j];
            }
        }
    }
}
