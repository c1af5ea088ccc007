/*
 * egru_lstm_cell_f32.c - one LSTM step for a block of rows (see egru_layers.h, docs/format.md).
 *
 * Weights, rows grouped by gate in Keras' order i (input), f (forget), c (cell), o (output):
 *   kernel (4H, I), recurrent (4H, H), bias (4H).
 * f = recurrent_activation, g = activation:
 *   a = kernel . x + bias (given: xp) + recurrent . h    (4H)
 *   i = f(a_i), fg = f(a_f), cc = g(a_c), o = f(a_o)
 *   c = fg * c + i * cc;  h = o * g(c)
 * state: h (rows, H) then c (rows, H). scratch: the recurrent products (rows, 4H).
 */
#include "../kernels/egru_kernels.h"
#include "egru_layers.h"

void egru_lstm_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                        size_t xp_stride, uint32_t rows, const uint8_t *valid, float *state,
                        float *scratch, int8_t *q, uint32_t step)
{
    const uint32_t H = layer->units;
    uint32_t b, j;

    if (!EGRU_CFG_OP_LSTM) {
        return; /* left out of this build: egru_model_init refused the model */
    }
    egru_rnn_recurrent_f32(layer, w, state, rows, 0, 4 * H, NULL, scratch, q, step);
    for (b = 0; b < rows; ++b) {
        float *a = xp + b * xp_stride, *hp = scratch + (size_t)b * 4 * H;
        float *h = state + (size_t)b * H, *c = state + (size_t)(rows + b) * H;
        for (j = 0; j < 4 * H; ++j) {
            a[j] += hp[j];
        }
        if (valid && !valid[b]) {
            continue;
        }
        egru_activate_f32(layer, layer->recurrent_activation, a, 2 * H);     /* i, f */
        egru_activate_f32(layer, layer->activation, a + 2 * H, H);           /* cc   */
        egru_activate_f32(layer, layer->recurrent_activation, a + 3 * H, H); /* o    */
        for (j = 0; j < H; ++j) {
            c[j] = a[H + j] * c[j] + a[j] * a[2 * H + j];
            hp[j] = c[j];
        }
        egru_activate_f32(layer, layer->activation, hp, H);
        for (j = 0; j < H; ++j) {
            h[j] = a[3 * H + j] * hp[j];
        }
    }
}
