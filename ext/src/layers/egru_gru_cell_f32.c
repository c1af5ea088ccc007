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
 * H), then the recurrent product's tmp (egru_rnn_cell_scratch_floats; hp is the y of both
 * products).
 */
#include <string.h>

#include "../kernels/egru_kernels.h"
#include "egru_layers.h"

/* The element-wise parts, on one row; restrict lets the compiler vectorise them (the caller's
 * arrays never overlap: xz/xr/xh are disjoint thirds of one row's projections). */
static void add_f32(float *restrict a, const float *restrict b, uint32_t n)
{
    uint32_t j;
    for (j = 0; j < n; ++j) {
        a[j] += b[j];
    }
}

/* xh += r * hh (reset_after) */
static void reset_after_f32(float *restrict xh, const float *restrict r, const float *restrict hh,
                            uint32_t n)
{
    uint32_t j;
    for (j = 0; j < n; ++j) {
        xh[j] += r[j] * hh[j];
    }
}

/* rh = r * h (reset before the recurrent product) */
static void mul_f32(float *restrict rh, const float *restrict r, const float *restrict h,
                    uint32_t n)
{
    uint32_t j;
    for (j = 0; j < n; ++j) {
        rh[j] = r[j] * h[j];
    }
}

/* h = z * h + (1 - z) * hh */
static void update_f32(float *restrict h, const float *restrict z, const float *restrict hh,
                       uint32_t n)
{
    uint32_t j;
    for (j = 0; j < n; ++j) {
        h[j] = z[j] * h[j] + (1.0f - z[j]) * hh[j];
    }
}

/* One block of a batch-1 reset_after step split by units (egru_rnn_split_step): units u .. u + m
 * get the z, r and candidate rows of R . h + c (rows u, H + u, 2H + u) into hp + 3u as
 * [z m | r m | h m] (the blocks partition hp), then their gates into h[u .. u + m). */
static void gru_block(const egru_rnn_split_t *s, uint32_t u, uint32_t m)
{
    const egru_layer_t *layer = s->layer;
    const uint32_t H = layer->units;
    const float *rb = s->w->recurrent_bias;
    float *hb = s->scratch + (size_t)3 * u, *xz = s->xp + u, *xr = xz + H, *xh = xr + H;
    float xs[3 * EGRU_RECURRENT_BLOCK]; /* the fused kernel's x: z | r | h of the block */
    uint32_t g;
    for (g = 0; g < 3; ++g) {
        const uint32_t gg = (s->step & 1u) ? 2 - g : g; /* the weights last to first on odd steps */
        egru_rnn_rows_f32(s, gg * H + u, m, rb ? rb + gg * H + u : NULL, hb + (size_t)gg * m);
    }
    if (s->fused) {
        memcpy(xs, xz, m * sizeof(float));
        memcpy(xs + m, xr, m * sizeof(float));
        memcpy(xs + 2 * m, xh, m * sizeof(float));
        layer->kernels->gru_gates_f32(xs, hb, s->state + u, m, 1);
        return;
    }
    /* The separate passes of egru_gru_cell_f32 on this block's units (element-wise: the same
     * bits as over all units) */
    add_f32(xz, hb, m);
    add_f32(xr, hb + m, m);
    egru_activate_f32(layer, layer->recurrent_activation, xz, m);
    egru_activate_f32(layer, layer->recurrent_activation, xr, m);
    reset_after_f32(xh, xr, hb + 2 * m, m);
    egru_activate_f32(layer, layer->activation, xh, m);
    update_f32(s->state + u, xz, xh, m);
}

/* The step split over the workers when it can be (egru_rnn_split_step); 0 when not. scratch:
 * hp (3H) then the copy of h (H, where reset_before keeps rh). */
static int gru_split_step(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                          float *state, float *scratch, int8_t *q, uint32_t step)
{
    const uint32_t H = layer->units;
    const int fused = layer->kernels->gru_gates_f32 &&
                      layer->recurrent_activation == EGRU_ACT_SIGMOID &&
                      layer->activation == EGRU_ACT_TANH;
    egru_rnn_split_t s = egru_rnn_split_of(layer, w, xp, state, scratch, step, fused, gru_block);
    return egru_rnn_split_step(&s, scratch + (size_t)3 * H, q, 3ull * H * H);
}

void egru_gru_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                       size_t xp_stride, uint32_t rows, const uint8_t *valid, float *state,
                       float *scratch, int8_t *q, uint32_t step)
{
    const uint32_t H = layer->units;
    /* A constant when the build has one reset mode only (egru_features.h): the other one's code
     * goes. egru_model_init refused models of a mode left out. */
    const int after = !EGRU_CFG_GRU_RESET_BEFORE ||
                      (EGRU_CFG_GRU_RESET_AFTER && (layer->flags & EGRU_FLAG_RESET_AFTER) != 0);
    const uint32_t nr = after ? 3 * H : 2 * H; /* rows of the first recurrent product */
    float *hp = scratch, *rh = hp + (size_t)rows * 3 * H;
    uint32_t b;

    if (!EGRU_CFG_OP_GRU) {
        return; /* left out of this build: egru_model_init refused the model */
    }
    if (EGRU_CFG_WORKERS && after && rows == 1 && (!valid || valid[0]) && layer->workers &&
        gru_split_step(layer, w, xp, state, scratch, q, step)) {
        return;
    }
    egru_rnn_recurrent_f32(layer, w, state, rows, 0, nr, w->recurrent_bias, hp, q, step);
    if (after && layer->kernels && layer->kernels->gru_gates_f32 &&
        layer->recurrent_activation == EGRU_ACT_SIGMOID && layer->activation == EGRU_ACT_TANH) {
        for (b = 0; b < rows; ++b) { /* the same steps, fused by the kernel set */
            layer->kernels->gru_gates_f32(xp + b * xp_stride, hp + (size_t)b * nr,
                                          state + (size_t)b * H, H, !valid || valid[b]);
        }
        return;
    }
    for (b = 0; b < rows; ++b) {
        float *x = xp + b * xp_stride;
        const float *hb = hp + (size_t)b * nr;
        add_f32(x, hb, 2 * H); /* z and r pre-activations */
        egru_activate_f32(layer, layer->recurrent_activation, x, 2 * H);
        if (after) {
            reset_after_f32(x + 2 * H, x + H, hb + 2 * H, H);
        } else {
            mul_f32(rh + (size_t)b * H, x + H, state + (size_t)b * H, H);
        }
    }
    if (!after) { /* R_h . (r * h) for all rows, into hp (no longer needed) as (rows, H) */
        egru_rnn_recurrent_f32(layer, w, rh, rows, 2 * H, H, w->recurrent_bias + 2 * H, hp, q,
                               step);
    }
    for (b = 0; b < rows; ++b) {
        float *x = xp + b * xp_stride;
        if (!after) {
            add_f32(x + 2 * H, hp + (size_t)b * H, H);
        }
        egru_activate_f32(layer, layer->activation, x + 2 * H, H);
        if (!valid || valid[b]) {
            update_f32(state + (size_t)b * H, x, x + 2 * H, H);
        }
    }
}
