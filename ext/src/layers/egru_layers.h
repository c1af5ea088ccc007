/*
 * egru_layers.h - one function per layer op, each running one sequence (one batch row).
 *
 * Contracts shared by all: `layer` comes from egru_model_layer() (validated); sequences are
 * row-major (steps, width); `in` and `out` never overlap; `mask` is NULL or one byte per input
 * step (non-zero: the step is valid); nothing is allocated.
 */
#ifndef EGRU_LAYERS_H
#define EGRU_LAYERS_H

#include "edgegru.h"
#include "../kernels/egru_kernels.h"

/* out[t] = table[ids[t]] for t < steps; with EGRU_FLAG_MASK_ZERO also mask_out[t] = ids[t] != 0.
 * ids must already be checked to lie in [0, vocab). out: (steps, dim). */
void egru_embedding_f32(const egru_layer_t *layer, const int32_t *ids, uint32_t steps, float *out,
                        uint8_t *mask_out);

/* One time step of a recurrent cell, one direction. xp: (G*H) the step's input projection
 * kernel . x + bias, computed beforehand for all steps (egru_rnn_f32), used as scratch and
 * overwritten; state: the cell state, updated in place, h first (LSTM: h then c); scratch: 4H. */
typedef void (*egru_cell_step_f32_fn)(const egru_layer_t *layer, const egru_rnn_weights_t *w,
                                      float *xp, float *state, float *scratch);
void egru_gru_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                       float *state, float *scratch);
void egru_lstm_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                        float *state, float *scratch);
void egru_simple_rnn_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                              float *state, float *scratch);

/* Floats of state per direction: the cell's state (GRU, SIMPLE_RNN: h; LSTM: h, c) plus one
 * flag "a valid step has been seen" (masked outputs before it are zero, as in Keras). */
uint32_t egru_rnn_state_floats(const egru_layer_t *layer);
/* Floats of scratch one call of egru_rnn_f32 needs for `steps` input steps. */
uint64_t egru_rnn_scratch_floats(const egru_layer_t *layer, uint32_t steps);

/* Runs a recurrent layer (GRU, LSTM or SIMPLE_RNN; one direction, go_backwards or
 * bidirectional) over `steps` steps, starting from and updating `state` (one
 * egru_rnn_state_floats() block per direction; zero it for a fresh sequence).
 * in: (steps, I); out: (steps, output_dim) with RETURN_SEQUENCES, else (output_dim).
 * Masked steps (mask[t] == 0, with EGRU_FLAG_MASKED) leave the state unchanged; their sequence
 * output is the previous output (zero before the first valid step), or zero when bidirectional.
 * go_backwards: steps run last to first and outputs stay in processing order (Keras). Backward
 * direction of a bidirectional layer: outputs are aligned back to input time, then merged. */
void egru_rnn_f32(const egru_layer_t *layer, const float *in, const uint8_t *mask, uint32_t steps,
                  float *out, float *state, float *scratch);

/* y[t] = act(kernel . x[t] + bias) for each of `steps` steps. in: (steps, in); out: (steps, out).
 */
void egru_dense_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out);

/* Output steps of a Conv1D over `steps` input steps; 0 when the input is too short (valid). */
uint32_t egru_conv1d_out_steps(const egru_layer_t *layer, uint32_t steps);
/* 1-D convolution, channels last. in: (steps, in); out: (egru_conv1d_out_steps(), out). */
void egru_conv1d_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out);

/* Average or max over valid steps (all steps without a mask). in: (steps, dim); out: (dim). */
void egru_global_pool_f32(const egru_layer_t *layer, const float *in, const uint8_t *mask,
                          uint32_t steps, float *out);

/* out[t] = in[t] * scale + shift, per feature. */
void egru_affine_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out);

/* out[t] = (in[t] - mean) / sqrt(var + eps) * scale + shift over the features of each step. */
void egru_layer_norm_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out);

/* mask_out[t] = any(in[t] != mask_value); out[t] = in[t] * mask_out[t] (Keras Masking). */
void egru_masking_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out,
                      uint8_t *mask_out);

/* Applies `act` in place to n values (SOFTMAX: over all n), with the layer's kernel set. */
void egru_activate_f32(const egru_layer_t *layer, egru_act_t act, float *v, uint32_t n);

/* Reinterprets a u32 layer parameter as the float it stores. */
float egru_param_f32(uint32_t bits);

#endif /* EGRU_LAYERS_H */
