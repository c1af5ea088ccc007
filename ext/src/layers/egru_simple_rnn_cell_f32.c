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

/* One block of a batch-1 step split by units (egru_rnn_split_step): rows u .. u + m of the
 * product, then the activation of those units, as below. */
static void simple_rnn_block(const egru_rnn_split_t *s, uint32_t u, uint32_t m)
{
    float y[EGRU_RECURRENT_BLOCK], *a = s->xp + u;
    uint32_t j;
    egru_rnn_rows_f32(s, u, m, NULL, y);
    for (j = 0; j < m; ++j) {
        a[j] += y[j];
    }
    egru_activate_f32(s->layer, s->layer->activation, a, m);
    memcpy(s->state + u, a, m * sizeof(float));
}

void egru_simple_rnn_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                              size_t xp_stride, uint32_t rows, const uint8_t *valid, float *state,
                              float *scratch, int8_t *q, uint32_t step)
{
    const uint32_t H = layer->units;
    uint32_t b, j;

    if (!EGRU_CFG_OP_SIMPLE_RNN) {
        return; /* left out of this build: egru_model_init refused the model */
    }
    if (EGRU_CFG_WORKERS && rows == 1 && (!valid || valid[0]) && layer->workers) {
        egru_rnn_split_t s =
            egru_rnn_split_of(layer, w, xp, state, scratch, step, 0, simple_rnn_block);
        if (egru_rnn_split_step(&s, scratch, q, (uint64_t)H * H)) {
            return;
        }
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
