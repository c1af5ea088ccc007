/*
 * egru_rnn_step_s16.c - one step of an int16x8 GRU (both reset modes), LSTM or SimpleRNN
 * (docs/quantization.md, "int16x8"; edgegru.int16x8._gru_step / _lstm_step / _rnn_step are the
 * specification). Gate order as Keras: GRU z, r, h; LSTM i, f, c, o. No floating-point operation.
 */
#include "egru_s16_internal.h"

#if EGRU_CFG_INT16X8

static int32_t sat_add(int32_t a, int32_t b)
{
    return egru_q16_sat_g((int64_t)a + b);
}

/* One step of a GRU, LSTM or SimpleRNN on input x: h (and an LSTM's c) updated in place. */
void egru_rnn_step_s16(const egru_layer_t *l, const int16_t *x, int16_t *h, int32_t *c, int32_t *gx,
                       int32_t *gh, int16_t *rh)
{
    const egru_kernel_set_t *ks = l->kernels;
    const egru_rnn_weights_t *w = &l->rnn[0];
    const uint32_t H = l->units, in = l->input_dim, G = egru_s16_rnn_gates(l->op);
    const uint32_t f = l->recurrent_activation, act = l->activation;
    const qprod_t qx = egru_s16_qprod(l, 0, G * H), qh = egru_s16_qprod(l, G * H, G * H);
    const int unit = egru_q16_act_is_unit(act);
    uint32_t j;
    egru_s16_product(ks, w->kernel_s8, qx, 0, x, gx, G * H, in);
    if (l->op == EGRU_OP_SIMPLE_RNN) {
        egru_s16_product(ks, w->recurrent_s8, qh, 0, h, gh, H, H);
        for (j = 0; j < H; ++j) {
            gx[j] = sat_add(gx[j], gh[j]);
        }
        egru_q16_activate(act, gx, H);
        egru_s16_store_out(l, gx, h, H);
        return;
    }
    if (l->op == EGRU_OP_LSTM) { /* gates i, f, c, o; c' = fg c + i g; h' = o act(c') */
        egru_s16_product(ks, w->recurrent_s8, qh, 0, h, gh, 4u * H, H);
        for (j = 0; j < 4u * H; ++j) {
            gx[j] = sat_add(gx[j], gh[j]);
        }
        egru_q16_activate(f, gx, 2u * H);
        egru_q16_activate(act, gx + 2u * H, H);
        egru_q16_activate(f, gx + 3u * H, H);
        for (j = 0; j < H; ++j) {
            const int64_t ig = (int64_t)gx[j] * gx[2u * H + j];
            c[j] = egru_q16_sat_g(egru_q16_rshift((int64_t)gx[H + j] * c[j], 15) +
                                  egru_q16_rshift(ig, unit ? 14u : 15u));
            gh[j] = c[j];
        }
        egru_q16_activate(act, gh, H);
        for (j = 0; j < H; ++j) {
            const int64_t v = egru_q16_rshift((int64_t)gx[3u * H + j] * gh[j], 15);
            gh[j] = (int32_t)v; /* U: |v| <= 32768; G: within G */
        }
        if (unit) {
            for (j = 0; j < H; ++j) {
                h[j] = (int16_t)egru_q16_sat16(gh[j]);
            }
        } else {
            egru_s16_store_out(l, gh, h, H);
        }
        return;
    }
    /* GRU, gates z, r, h */
    if (l->flags & EGRU_FLAG_RESET_AFTER) {
        egru_s16_product(ks, w->recurrent_s8, qh, 0, h, gh, 3u * H, H);
        for (j = 0; j < 2u * H; ++j) {
            gx[j] = sat_add(gx[j], gh[j]);
        }
        egru_q16_activate(f, gx, 2u * H);
        for (j = 0; j < H; ++j) { /* n = gx_h + r * gh_h */
            const int64_t rg = egru_q16_rshift((int64_t)gx[H + j] * gh[2u * H + j], 15);
            gx[2u * H + j] = sat_add(gx[2u * H + j], egru_q16_sat_g(rg));
        }
    } else {
        egru_s16_product(ks, w->recurrent_s8, qh, 0, h, gh, 2u * H, H);
        for (j = 0; j < 2u * H; ++j) {
            gx[j] = sat_add(gx[j], gh[j]);
        }
        egru_q16_activate(f, gx, 2u * H);
        for (j = 0; j < H; ++j) { /* rh = r * h, at the state's scale */
            rh[j] = (int16_t)egru_q16_sat16(egru_q16_rshift((int64_t)gx[H + j] * h[j], 15));
        }
        egru_s16_product(ks, w->recurrent_s8, qh, 2u * H, rh, gh, H, H);
        for (j = 0; j < H; ++j) {
            gx[2u * H + j] = sat_add(gx[2u * H + j], gh[j]);
        }
    }
    egru_q16_activate(act, gx + 2u * H, H);
    egru_s16_store_out(l, gx + 2u * H, rh, H); /* hh, as the state's int16 */
    for (j = 0; j < H; ++j) {                  /* h' = z h + (1 - z) hh */
        const int64_t z = gx[j];
        h[j] = (int16_t)egru_q16_sat16(egru_q16_rshift(z * h[j] + (EGRU_Q16_ONE - z) * rh[j], 15));
    }
}

#endif /* EGRU_CFG_INT16X8 */
