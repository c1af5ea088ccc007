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

/* floor(v / 2^s) for 0 <= s <= 31 (an arithmetic shift; GCC and clang compile it to one). */
static EGRU_Q16_INLINE int32_t asr32(int32_t v, uint32_t s)
{
    return v >= 0 ? v >> s : ~(~v >> s);
}

/* satG(a + b) for G values a, b (|a|, |b| <= 2^30) in 32 bits: the sum wraps only at
 * a = b = 2^30, and whenever it leaves [-2^30, 2^30] (wrapped or not) a has its sign. The
 * unsigned-to-signed conversion is modulo 2^32, as GCC and clang define it. */
static EGRU_Q16_INLINE int32_t add_g(int32_t a, int32_t b)
{
    const int32_t s = (int32_t)((uint32_t)a + (uint32_t)b);
    if ((uint32_t)s + (uint32_t)EGRU_Q16_G_SAT <= 2u * (uint32_t)EGRU_Q16_G_SAT) {
        return s;
    }
    return a > 0 ? EGRU_Q16_G_SAT : -EGRU_Q16_G_SAT;
}

/* satG(rshift(u * g, 15)) for u in U ([0, 32768]) and a G value g, in 32 bits: with
 * g = hi * 2^15 + lo (0 <= lo < 2^15), u * g = u * hi * 2^15 + u * lo, so the result is
 * u * hi + floor((u * lo + 2^14) / 2^15); |u * hi| <= 2^30 and u * lo < 2^30, and |result| <=
 * 2^30 (no saturation needed). */
static EGRU_Q16_INLINE int32_t mul_u_g(int32_t u, int32_t g)
{
    const int32_t hi = asr32(g, 15), lo = g & 0x7FFF;
    return u * hi + (int32_t)(((uint32_t)(u * lo) + 16384u) >> 15);
}

/* sat16 of an int32, in 32 bits. */
static EGRU_Q16_INLINE int32_t sat16_32(int32_t v)
{
    return v < -EGRU_Q16_QMAX ? -EGRU_Q16_QMAX : v > EGRU_Q16_QMAX ? EGRU_Q16_QMAX : v;
}

/* h' = sat16(rshift(z h + (32768 - z) hh, 15)) for z in U and int16 h, hh, in 32 bits:
 * z h + (32768 - z) hh = 32768 hh + z (h - hh), and |z (h - hh)| <= 32768 * 65535 < 2^31. */
static EGRU_Q16_INLINE int16_t blend(int32_t z, int32_t h, int32_t hh)
{
    return (int16_t)sat16_32(hh + asr32(z * (h - hh) + 16384, 15));
}

/* The GRU's element-wise part with sigmoid gates, a tanh candidate and a Q15 state (output
 * format U), one pass per unit: gx, gh the two products' 3 * units G sums (z, r, h), h updated
 * in place. reset_after: n = gx_h + r * gh_h. reset_before (gh unused): gx_h already holds
 * gx_h + R_h (r h) and gx[0, units) holds z. Same integers as the separate passes. */
static void gru_tail_sig_tanh(const int32_t *gx, const int32_t *gh, int16_t *h, uint32_t units,
                              int reset_after)
{
    /* Cortex-M with the DSP extension: the same integers with DSP saturation (egru_kernels.h) */
#ifdef EGRU_CM_GRU_TAIL_S16
    EGRU_CM_GRU_TAIL_S16(gx, gh, h, units, reset_after);
#else
    uint32_t j;
    for (j = 0; j < units; ++j) {
        int32_t z, n, hh;
        if (reset_after) {
            const int32_t r = egru_q16_sigmoid_inline(add_g(gx[units + j], gh[units + j]));
            z = egru_q16_sigmoid_inline(add_g(gx[j], gh[j]));
            n = add_g(gx[2u * units + j], mul_u_g(r, gh[2u * units + j]));
        } else {
            z = gx[j];
            n = gx[2u * units + j];
        }
        hh = sat16_32(egru_q16_tanh_inline(n)); /* U to the Q15 state */
        h[j] = blend(z, h[j], hh);
    }
#endif
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
    int fast;
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
    fast = f == EGRU_ACT_SIGMOID && act == EGRU_ACT_TANH && l->qparams[EGRU_QP_OUT_FMT] == 1;
    if (l->flags & EGRU_FLAG_RESET_AFTER) {
        egru_s16_product(ks, w->recurrent_s8, qh, 0, h, gh, 3u * H, H);
        if (fast) {
            gru_tail_sig_tanh(gx, gh, h, H, 1);
            return;
        }
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
        if (fast) {
            gru_tail_sig_tanh(gx, gh, h, H, 0);
            return;
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
