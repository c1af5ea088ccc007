/*
 * egru_layers.h - one function per layer op, each running one sequence (one batch row).
 *
 * Contracts shared by all: `layer` comes from egru_model_layer() (validated); sequences are
 * row-major (steps, width); `in` and `out` never overlap; `mask` is NULL or one byte per input
 * step (non-zero: the step is valid); nothing is allocated.
 */
#ifndef EGRU_LAYERS_H
#define EGRU_LAYERS_H

#include <string.h>

#include "../kernels/egru_kernels.h"
#include "edgegru.h"

/* out[t] = table[ids[t]] for t < steps; with EGRU_FLAG_MASK_ZERO also mask_out[t] = ids[t] != 0.
 * out: (steps, dim). Each id is read exactly once and checked where it is read (the caller's
 * ids may change under it): EGRU_ERR_TOKEN_RANGE at the first id outside [0, vocab) (vocab =
 * layer->input_dim), with out and mask_out written for the steps before it only; else EGRU_OK. */
egru_status_t egru_embedding_f32(const egru_layer_t *layer, const int32_t *ids, uint32_t steps,
                                 float *out, uint8_t *mask_out);

/* One time step of a recurrent cell, one direction, for a block of `rows` rows. xp: row b's input
 * projection kernel . x + bias (G*H) at xp + b * xp_stride, computed beforehand for all steps
 * (egru_rnn_f32), used as scratch and overwritten; state: the cell states, h (rows, H) first
 * (LSTM: then c (rows, H)), updated in place; valid: NULL (every row steps) or one flag per row:
 * rows whose flag is 0 keep their state; scratch: rows * 4H floats; q: max(I, H) bytes of
 * scratch for int8 models; step: the processing index of this step, whose parity only sets the
 * order in which the recurrent product visits its weights (egru_rnn_recurrent_f32; the results
 * do not depend on it). */
typedef void (*egru_cell_step_f32_fn)(const egru_layer_t *layer, const egru_rnn_weights_t *w,
                                      float *xp, size_t xp_stride, uint32_t rows,
                                      const uint8_t *valid, float *state, float *scratch, int8_t *q,
                                      uint32_t step);
void egru_gru_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                       size_t xp_stride, uint32_t rows, const uint8_t *valid, float *state,
                       float *scratch, int8_t *q, uint32_t step);
void egru_lstm_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                        size_t xp_stride, uint32_t rows, const uint8_t *valid, float *state,
                        float *scratch, int8_t *q, uint32_t step);
void egru_simple_rnn_cell_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, float *xp,
                              size_t xp_stride, uint32_t rows, const uint8_t *valid, float *state,
                              float *scratch, int8_t *q, uint32_t step);

/* Y[b] = R[row0 : row0 + count] . H[b] + bias for b < rows, with the layer's kernel set: R the
 * direction's recurrent matrix (G*H, H), on its packed copy when the model was packed
 * (egru_model_pack), or its int8 copy (then each row of h is quantized into q, H bytes).
 * h: (rows, H); bias: `count` floats or NULL; y: (rows, count). step: the caller's step index; a
 * single row's packed product visits its output rows in blocks of EGRU_RECURRENT_BLOCK, first to
 * last on even steps and last to first on odd ones, so a step starts on the weights the previous
 * step read last, still in the L1 cache when the matrix is not much larger than it (a third less
 * L2 traffic for GRU(64)). Every output is the same sum either way (bit-identical). */
#define EGRU_RECURRENT_BLOCK 64u
/* The packed recurrent matrix (egru_model_pack) is stored in panels of EGRU_RECURRENT_BLOCK
 * outputs: panel p holds outputs [64p, 64p + w) with w = min(64, G*H - 64p), as (H, w) row-major
 * (one input's w weights contiguous), and starts at float 64 * p * H; so a block's weights are one
 * contiguous run that the hardware prefetcher streams (measured on a Zen 4: 4 % faster than the
 * whole (H, G*H) layout at H = 128, 10 % at 256, 18 % at 512, where the matrix is read from L3).
 * With rows > 1, a product spanning several panels runs one matmul_t per panel into a tmp of
 * rows x EGRU_RECURRENT_BLOCK floats and copies the outputs into y: every output is the same sum
 * (batch invariance, egru_kernels.h). y is the start of a cell's scratch
 * (egru_rnn_cell_scratch_floats(rows, H) floats: every cell's product writes there) and tmp is
 * its end, y + rows * 4H. */
void egru_rnn_recurrent_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, const float *h,
                            uint32_t rows, uint32_t row0, uint32_t count, const float *bias,
                            float *y, int8_t *q, uint32_t step);

/* Floats of a cell's scratch for `rows` rows: its own rows x 4H, then for rows > 1 the recurrent
 * product's tmp (rows x EGRU_RECURRENT_BLOCK), which egru_rnn_recurrent_f32 finds at
 * y + rows * 4H. */
static inline uint64_t egru_rnn_cell_scratch_floats(uint32_t rows, uint32_t units)
{
    return (uint64_t)rows * 4u * units + (rows > 1 ? (uint64_t)rows * EGRU_RECURRENT_BLOCK : 0u);
}

/* Splitting over the model's workers (egru_model_use_workers). egru_split: how many parts of
 * `chunk` items (a multiple of `align`; the last part may be shorter) `n` items split into
 * for `workers`: 1 (chunk = n) when workers is NULL, n <= align or macs (the work of the n
 * items) is below EGRU_SPLIT_MIN_MACS. egru_run_tasks: task(arg, i) for i < parts, on the
 * workers when parts > 1, else on this thread; returns when all have returned. */
uint32_t egru_split(const egru_workers_t *workers, uint32_t n, uint32_t align, uint64_t macs,
                    uint32_t *chunk);
void egru_run_tasks(const egru_workers_t *workers, egru_task_fn task, void *arg, uint32_t parts);

/* One batch-1 recurrent step split by units over layer->workers (docs/c_api.md "Threads"):
 * egru_rnn_split_step runs s->block(s, u, m) for consecutive blocks of up to
 * EGRU_RECURRENT_BLOCK units covering [0, H), spread over the workers in slices of a multiple of
 * 16 units (blocks last to first on odd steps, as egru_rnn_recurrent_f32), after copying h into
 * `hin` (H floats of the cell's scratch: the products read it, so that no block reads a unit
 * another block has updated) or, for int8 weights, quantizing it once into q. A block computes
 * rows of the recurrent product with egru_rnn_rows_f32 and then the cell's element-wise update
 * of its units only. Returns 0, having done nothing, when the step is not split (no workers, a
 * softmax activation, fewer than EGRU_SPLIT_MIN_MACS multiply-adds, one slice): the caller runs
 * it. The same bits either way (batch invariance; the element-wise parts do not depend on
 * position). */
typedef struct egru_rnn_split egru_rnn_split_t;
typedef void (*egru_rnn_block_fn)(const egru_rnn_split_t *s, uint32_t u, uint32_t m);
struct egru_rnn_split {
    const egru_layer_t *layer;
    const egru_rnn_weights_t *w;
    float *xp, *state, *scratch; /* the cell's arguments */
    const float *hin;            /* the copy of h the products read (float weights) */
    const int8_t *qh;            /* h quantized (int8 weights), with scale sx */
    float sx;
    uint32_t chunk, step;
    int fused; /* GRU: the kernel set's gru_gates_f32 applies */
    egru_rnn_block_fn block;
};
int egru_rnn_split_step(egru_rnn_split_t *s, float *hin, int8_t *q, uint64_t macs);
/* A split of one cell's step: its arguments and its block function (egru_rnn_split_step sets
 * the rest). */
static inline egru_rnn_split_t egru_rnn_split_of(const egru_layer_t *layer,
                                                 const egru_rnn_weights_t *w, float *xp,
                                                 float *state, float *scratch, uint32_t step,
                                                 int fused, egru_rnn_block_fn block)
{
    egru_rnn_split_t s;
    memset(&s, 0, sizeof s);
    s.layer = layer;
    s.w = w;
    s.xp = xp;
    s.state = state;
    s.scratch = scratch;
    s.step = step;
    s.fused = fused;
    s.block = block;
    return s;
}
/* y[k] = row r0 + k of R . h (+ bias[k] when bias is not NULL) for k < m, R the direction's
 * recurrent matrix (G*H, H) (packed, row-major or int8, as egru_rnn_recurrent_f32 picks). */
void egru_rnn_rows_f32(const egru_rnn_split_t *s, uint32_t r0, uint32_t m, const float *bias,
                       float *y);

/* Floats of one row's cell state (GRU, SIMPLE_RNN: h; LSTM: h and c). */
uint32_t egru_rnn_cell_floats(const egru_layer_t *layer);
/* Floats of state of a block of `rows` rows, all directions. Per direction: h (rows, H), for
 * LSTM c (rows, H), then one flag per row "a valid step has been seen" (masked outputs before
 * it are zero, as in Keras). The directions follow each other, forward first. */
uint64_t egru_rnn_state_floats(const egru_layer_t *layer, uint32_t rows);
/* Floats of scratch one call of egru_rnn_f32 needs for `rows` rows of `steps` steps with
 * projection window `window`. */
uint64_t egru_rnn_scratch_floats(const egru_layer_t *layer, uint32_t rows, uint32_t steps,
                                 uint32_t window);

/* Runs a recurrent layer (GRU, LSTM or SIMPLE_RNN; one direction, go_backwards or
 * bidirectional) over a block of `rows` sequences of `steps` steps, all rows advancing together,
 * starting from and updating `state` (egru_rnn_state_floats(layer, rows) floats; zero it for
 * fresh sequences). in: (rows, steps, I); mask: NULL or (rows, steps); out: (rows, steps,
 * output_dim) with RETURN_SEQUENCES, else (rows, output_dim). Masked steps (mask == 0, with
 * EGRU_FLAG_MASKED) leave a row's state unchanged; their sequence output is the previous output
 * (zero before the first valid step), or zero when bidirectional. go_backwards: steps run last to
 * first and outputs stay in processing order (Keras). Backward direction of a bidirectional
 * layer: outputs are aligned back to input time, then merged. When the layer is input_projected
 * (egru_model_fold), `in` holds the projections and is overwritten (used as the cells' scratch).
 * window: the input projections are computed `window` steps at a time, just before those steps
 * run (>= steps: all at once, one matrix product for the block, the fastest; 1: the least
 * scratch); the results do not depend on it (the products are batch invariant, egru_kernels.h).
 */
void egru_rnn_f32(const egru_layer_t *layer, const float *in, const uint8_t *mask, uint32_t rows,
                  uint32_t steps, uint32_t window, float *out, float *state, float *scratch);

/* y[t] = act(kernel . x[t] + bias) for each of `steps` steps. in: (steps, in); out: (steps, out);
 * q: scratch of input_dim bytes, used by int8 models. */
void egru_dense_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out,
                    int8_t *q);

/* y = W . x + bias for an int8 W (rows, cols) with per-row scales (docs/quantization.md): x is
 * quantized into q (cols bytes of scratch) first. */
static inline void egru_linear_s8(const egru_kernel_set_t *k, const int8_t *w, const float *scale,
                                  const float *x, int8_t *q, const float *bias, float *y,
                                  uint32_t rows, uint32_t cols)
{
    const float sx = k->quantize_s8(x, q, cols);
    k->matvec_s8(w, scale, q, sx, bias, y, rows, cols);
}

/* Rows [r0, r0 + rows) of the int8 recurrent product W . x + bias (egru_matvec_s8, xq and sx
 * from quantize_s8): with the packed row sums (egru_model_pack) through the set's matvec_s8_sums
 * when it has one, which gives the same bits. */
static inline void egru_recurrent_s8(const egru_kernel_set_t *k, const egru_rnn_weights_t *w,
                                     uint32_t r0, const int8_t *xq, float sx, const float *bias,
                                     float *y, uint32_t rows, uint32_t cols)
{
    const int8_t *rw = w->recurrent_s8 + (size_t)r0 * cols;
    if (k->matvec_s8_sums && w->recurrent_sums) {
        k->matvec_s8_sums(rw, w->recurrent_sums + r0, w->recurrent_scale + r0, xq, sx, bias, y,
                          rows, cols);
    } else {
        k->matvec_s8(rw, w->recurrent_scale + r0, xq, sx, bias, y, rows, cols);
    }
}

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
