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

/* One block of a batch-1 step split by units (egru_rnn_split_step): the i, f, c and o rows of
 * units u .. u + m (rows gH + u), then the cell update of those units, as below. */
static void lstm_block(const egru_rnn_split_t *s, uint32_t u, uint32_t m)
{
    const egru_layer_t *layer = s->layer;
    const uint32_t H = layer->units;
    float y[4 * EGRU_RECURRENT_BLOCK];
    float *ai = s->xp + u, *af = ai + H, *ac = af + H, *ao = ac + H;
    float *h = s->state + u, *c = s->state + H + u;
    uint32_t g, j;
    for (g = 0; g < 4; ++g) {
        const uint32_t gg = (s->step & 1u) ? 3 - g : g;
        egru_rnn_rows_f32(s, gg * H + u, m, NULL, y + (size_t)gg * m);
    }
    for (g = 0; g < 4; ++g) {
        float *a = s->xp + (size_t)g * H + u;
        for (j = 0; j < m; ++j) {
            a[j] += y[g * m + j];
        }
    }
    egru_activate_f32(layer, layer->recurrent_activation, ai, m);
    egru_activate_f32(layer, layer->recurrent_activation, af, m);
    egru_activate_f32(layer, layer->activation, ac, m);
    egru_activate_f32(layer, layer->recurrent_activation, ao, m);
    for (j = 0; j < m; ++j) {
        c[j] = af[j] * c[j] + ai[j] * ac[j];
        y[j] = c[j];
    }
    egru_activate_f32(layer, layer->activation, y, m);
    for (j = 0; j < m; ++j) {
        h[j] = ao[j] * y[j];
    }
}

void egru_lstm_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                        size_t xp_stride, uint32_t rows, const uint8_t *valid, float *state,
                        float *scratch, int8_t *q, uint32_t step)
{
    const uint32_t H = layer->units;
    uint32_t b, j;

    if (!EGRU_CFG_OP_LSTM) {
        return; /* left out of this build: egru_model_init refused the model */
    }
    if (EGRU_CFG_WORKERS && rows == 1 && (!valid || valid[0]) && layer->workers) {
        egru_rnn_split_t s = egru_rnn_split_of(layer, w, xp, state, scratch, step, 0, lstm_block);
        if (egru_rnn_split_step(&s, scratch, q, 4ull * H * H)) { /* the products: on the stack */
            return;
        }
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
