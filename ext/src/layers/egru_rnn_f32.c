/*
 * egru_rnn_f32.c - runs a recurrent layer over a sequence: direction, go_backwards, masking,
 * bidirectional merge (see egru_layers.h for the contract, Keras semantics in docs/).
 */
#include <string.h>

#include "egru_layers.h"

static egru_cell_step_f32_fn cell_of(egru_op_t op)
{
    switch (op) {
    case EGRU_OP_LSTM: return egru_lstm_cell_f32;
    case EGRU_OP_SIMPLE_RNN: return egru_simple_rnn_cell_f32;
    default: return egru_gru_cell_f32;
    }
}

/* Floats of the cell state alone (without the seen-valid flag). */
static uint32_t cell_state_floats(const egru_layer_t *layer)
{
    return (layer->op == EGRU_OP_LSTM ? 2u : 1u) * layer->units;
}

uint32_t egru_rnn_state_floats(const egru_layer_t *layer)
{
    return cell_state_floats(layer) + 1u;
}

static uint32_t gates(const egru_layer_t *layer)
{
    return layer->op == EGRU_OP_LSTM ? 4u : layer->op == EGRU_OP_GRU ? 3u : 1u;
}

/* The input projections of all steps (steps, G*H), the cell's scratch (4H covers GRU, LSTM and
 * SIMPLE_RNN), and for bidirectional layers merged by sum/ave/mul the backward outputs: (steps,
 * H), or (H) for the last state. */
uint64_t egru_rnn_scratch_floats(const egru_layer_t *layer, uint32_t steps)
{
    const uint64_t H = layer->units;
    uint64_t n = (uint64_t)steps * gates(layer) * H + 4u * H;
    if ((layer->flags & EGRU_FLAG_BIDIRECTIONAL) && layer->params[0] != EGRU_MERGE_CONCAT) {
        n += (layer->flags & EGRU_FLAG_RETURN_SEQUENCES ? (uint64_t)steps : 1u) * H;
    }
    return n;
}

/* One direction over the sequence. The input projections of all steps are computed first, as
 * one matrix product (proj: (steps, G*H)), so each step only adds the recurrent product. Output
 * step for processing index p goes to out + position * stride, position = p (processing order)
 * or the input time (aligned). */
static void run_direction(const egru_layer_t *layer, int dir, const float *in, const uint8_t *mask,
                          uint32_t steps, int reverse, int aligned, int zero_masked, float *out,
                          uint32_t stride, float *state, float *scratch)
{
    const egru_rnn_weights_t *w = &layer->rnn[dir];
    const egru_cell_step_f32_fn step = cell_of(layer->op);
    const uint32_t H = layer->units, GH = gates(layer) * layer->units;
    const int sequences = (layer->flags & EGRU_FLAG_RETURN_SEQUENCES) != 0;
    float *seen = state + cell_state_floats(layer); /* 1.0f once a valid step was processed */
    float *proj = scratch, *cell = scratch + (size_t)steps * GH;
    uint32_t p;

    if (layer->input_projected) { /* egru_model_fold: in holds [forward | backward] rows */
        for (p = 0; p < steps; ++p) {
            memcpy(proj + (size_t)p * GH, in + (size_t)p * layer->input_dim + (size_t)dir * GH,
                   GH * sizeof(float));
        }
    } else {
        layer->kernels->matmul_f32(w->kernel, in, w->bias, proj, steps, GH, layer->input_dim);
    }
    for (p = 0; p < steps; ++p) {
        const uint32_t t = reverse ? steps - 1 - p : p;
        const int valid = !mask || mask[t];
        if (valid) {
            step(layer, w, proj + (size_t)t * GH, state, cell);
            *seen = 1.0f;
        }
        if (sequences) {
            float *y = out + (size_t)(aligned ? t : p) * stride;
            if (valid || (!zero_masked && *seen != 0.0f)) {
                memcpy(y, state, H * sizeof(float));
            } else {
                memset(y, 0, H * sizeof(float));
            }
        }
    }
    if (!sequences) {
        memcpy(out, state, H * sizeof(float));
    }
}

static void merge(uint32_t mode, float *a, const float *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        switch (mode) {
        case EGRU_MERGE_SUM: a[i] += b[i]; break;
        case EGRU_MERGE_AVE: a[i] = (a[i] + b[i]) * 0.5f; break;
        default: a[i] *= b[i]; break; /* EGRU_MERGE_MUL */
        }
    }
}

void egru_rnn_f32(const egru_layer_t *layer, const float *in, const uint8_t *mask, uint32_t steps,
                  float *out, float *state, float *scratch)
{
    const uint32_t H = layer->units, block = egru_rnn_state_floats(layer);
    const uint8_t *m = (layer->flags & EGRU_FLAG_MASKED) ? mask : NULL;
    const int sequences = (layer->flags & EGRU_FLAG_RETURN_SEQUENCES) != 0;
    uint32_t mode = layer->params[0];
    float *cell = scratch, *back;

    if (!(layer->flags & EGRU_FLAG_BIDIRECTIONAL)) {
        const int backwards = (layer->flags & EGRU_FLAG_GO_BACKWARDS) != 0;
        run_direction(layer, 0, in, m, steps, backwards, 0, 0, out, H, state, cell);
        return;
    }
    /* Bidirectional (Keras): masked sequence outputs are zero; the backward layer's outputs are
     * flipped back to input time; concat puts forward first. */
    if (mode == EGRU_MERGE_CONCAT) {
        const uint32_t stride = sequences ? 2 * H : 0;
        run_direction(layer, 0, in, m, steps, 0, 1, 1, out, stride, state, cell);
        run_direction(layer, 1, in, m, steps, 1, 1, 1, out + H, stride, state + block, cell);
        return;
    }
    back = scratch + (size_t)steps * gates(layer) * H + 4u * (size_t)H; /* (steps, H) or (H) */
    run_direction(layer, 0, in, m, steps, 0, 1, 1, out, H, state, cell);
    run_direction(layer, 1, in, m, steps, 1, 1, 1, back, H, state + block, cell);
    merge(mode, out, back, (size_t)(sequences ? steps : 1u) * H);
}
