/*
 * egru_conv1d_f32.c - 1-D convolution over time, channels last (see egru_layers.h).
 *
 * kernel (out, k, in) row-major: w[o][j][c] multiplies input channel c at tap j. With stride s,
 * dilation d and effective width e = d * (k - 1) + 1, output step t reads input steps
 * t * s + j * d - left for j < k, where `left` is the padding before the sequence; steps outside
 * [0, T) are zero (padding). valid: left 0, T_out = (T - e) / s + 1. same: T_out = ceil(T / s),
 * total padding max((T_out - 1) * s + e - T, 0), left half rounded down (TensorFlow). causal:
 * left d * (k - 1), T_out = ceil(T / s).
 */
#include "egru_layers.h"

uint32_t egru_conv1d_out_steps(const egru_layer_t *layer, uint32_t steps)
{
    /* 32-bit divisions only (no __aeabi_uldivmod on a 32-bit core): e = d * (k - 1) + 1 fits
     * uint32 (egru_model_init checks d * (k - 1) < 2^32 - 1), s >= 1. */
    const uint32_t k = layer->params[0], s = layer->params[1], d = layer->params[2];
    const uint32_t e = d * (k - 1) + 1;
    if (layer->params[3] != EGRU_PADDING_VALID) {
        return steps / s + (steps % s != 0); /* ceil(steps / s) */
    }
    return steps < e ? 0u : (steps - e) / s + 1;
}

static uint64_t left_padding(const egru_layer_t *layer, uint32_t steps)
{
    const uint32_t k = layer->params[0], s = layer->params[1], d = layer->params[2];
    const uint64_t e = (uint64_t)d * (k - 1) + 1;
    const uint64_t out = egru_conv1d_out_steps(layer, steps);
    uint64_t total;
    switch (layer->params[3]) {
    case EGRU_PADDING_CAUSAL: return e - 1;
    case EGRU_PADDING_SAME: /* out >= 1 here (steps >= 1); the halving is a shift */
        total = (out - 1) * s + e;
        return total > steps ? (total - steps) >> 1 : 0;
    default: return 0;
    }
}

void egru_conv1d_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out)
{
    const uint32_t k = layer->params[0], s = layer->params[1], d = layer->params[2];
    const uint32_t n_in = layer->input_dim, n_out = layer->output_dim;
    const uint32_t t_out = egru_conv1d_out_steps(layer, steps);
    const int64_t left = (int64_t)left_padding(layer, steps);
    uint32_t t, o, j, c;

    if (!EGRU_CFG_OP_CONV1D) {
        return; /* left out of this build: egru_model_init refused the model */
    }
    for (t = 0; t < t_out; ++t) {
        float *y = out + (size_t)t * n_out;
        for (o = 0; o < n_out; ++o) {
            const float *w = layer->kernel + (size_t)o * k * n_in;
            float acc = 0.0f;
            for (j = 0; j < k; ++j) {
                const int64_t src = (int64_t)t * s + (int64_t)j * d - left;
                if (src < 0 || src >= (int64_t)steps) {
                    continue;
                }
                for (c = 0; c < n_in; ++c) {
                    acc += w[(size_t)j * n_in + c] * in[(size_t)src * n_in + c];
                }
            }
            y[o] = acc + layer->bias[o];
        }
        egru_activate_f32(layer, layer->activation, y, n_out);
    }
}
