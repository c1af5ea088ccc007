/*
 * egru_layers.h - one function per layer op, each running one sequence (one batch row).
 *
 * Contracts shared by all: `layer` comes from egru_model_layer() (validated); sequences are
 * row-major (steps, width); `in` and `out` never overlap; nothing is allocated.
 */
#ifndef EGRU_LAYERS_H
#define EGRU_LAYERS_H

#include "edgegru.h"

/* out[t] = table[ids[t]] for t < steps. ids must already be checked to lie in [0, vocab).
 * out: (steps, dim). */
void egru_embedding_f32(const egru_layer_t *layer, const int32_t *ids, uint32_t steps, float *out);

/* Runs a GRU over `steps` input steps from the zero state.
 * in: (steps, I). out: (steps, H) with RETURN_SEQUENCES, else (H) = the last state.
 * scratch: egru_gru_scratch_floats(H) floats. */
void egru_gru_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out,
                  float *scratch);

/* Floats of scratch egru_gru_f32 needs for `units` = H: state (H), input projection (3H),
 * recurrent projection (3H), reset-gated state (H). */
#define egru_gru_scratch_floats(units) (8u * (uint64_t)(units))

/* y[t] = act(kernel . x[t] + bias) for each of `steps` steps. in: (steps, in); out: (steps, out).
 */
void egru_dense_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out);

/* Applies an elementwise activation (not SOFTMAX) in place to n values. */
void egru_activate_f32(egru_act_t act, float *v, uint32_t n);

#endif /* EGRU_LAYERS_H */
