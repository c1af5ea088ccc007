/* egru_s16_internal.h - what the int16x8 files share (not part of the API): the layout of a
 * layer's QPARAMS products, and one recurrent step. */
#ifndef EGRU_S16_INTERNAL_H
#define EGRU_S16_INTERNAL_H

#include "../egru_internal.h"
#include "../kernels/egru_kernels.h"
#include "egru_q16.h"

/* The multipliers of S8 tensor `t` (0 first) of a layer, whose tensors before it hold `before`
 * rows: m, n and bias arrays of `rows` words each. */
typedef struct qprod {
    const int32_t *m, *n, *bias;
} qprod_t;

static inline qprod_t egru_s16_qprod(const egru_layer_t *l, uint32_t before, uint32_t rows)
{
    const int32_t *p = l->qparams + EGRU_QP_HEADER_WORDS + 3u * (size_t)before;
    qprod_t q;
    q.m = p;
    q.n = p + rows;
    q.bias = p + 2u * (size_t)rows;
    return q;
}

/* The layer's output (n G or U values in v) to its int16 tensor. */
static inline void egru_s16_store_out(const egru_layer_t *l, const int32_t *v, int16_t *out,
                                      uint32_t n)
{
    const int32_t *q = l->qparams;
    egru_q16_to_s16(v, out, n, (uint32_t)q[EGRU_QP_OUT_FMT], q[EGRU_QP_OUT_M],
                    (uint32_t)q[EGRU_QP_OUT_N]);
}

/* The product of S8 rows [r0, r0 + rows) of w (cols wide) with x into g. */
static inline void egru_s16_product(const egru_kernel_set_t *ks, const int8_t *w, qprod_t q,
                                    uint32_t r0, const int16_t *x, int32_t *g, uint32_t rows,
                                    uint32_t cols)
{
    ks->matvec_s8_s16(w + (size_t)r0 * cols, x, q.m + r0, q.n + r0, q.bias + r0, g, rows, cols);
}

/* 1 when the build holds an op that needs the sequence plan (egru_forward_seq_s16.c); a
 * firmware configured for step-wise models only leaves that plan out of its image. */
#define EGRU_S16_SEQUENCE_PLAN                                                                     \
    (EGRU_CFG_OP_CONV1D || EGRU_CFG_OP_GLOBAL_POOL || EGRU_CFG_OP_FLATTEN ||                       \
     EGRU_CFG_BIDIRECTIONAL || EGRU_CFG_GO_BACKWARDS)

/* floor(a / b) for b > 0. */
static inline int64_t egru_s16_floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static inline uint32_t egru_s16_rnn_gates(uint32_t op)
{
    return op == EGRU_OP_GRU ? 3u : op == EGRU_OP_LSTM ? 4u : 1u;
}

/* The one-row, one-step plan of an int16x8 model (egru_forward_s16.c): offsets of its regions
 * in the arena. */
typedef struct egru_s16_plan {
    uint32_t width, gates, units; /* max_width, rows of a gate-sum buffer, max_units     */
    uint32_t seq_end;             /* layers [0, seq_end) run on every step              */
    uint32_t reversed;            /* the first recurrent layer goes backwards           */
    uint32_t first_rnn;           /* its index (layer_count when there is none)         */
    uint32_t sequence;            /* 1: a layer needs the whole sequence (egru_forward_seq_s16.c) */
    size_t off_buf1, off_gx, off_gh, off_rh, off_state, bytes; /* from the aligned start */
} egru_s16_plan_t;

egru_status_t egru_s16_make_plan(const egru_model_t *m, egru_s16_plan_t *p);

/* Everything one row's pass needs, carved from the arena by the plan. */
typedef struct egru_s16_row_ctx {
    const egru_model_t *m;
    int16_t *buf[2];
    int32_t *gx, *gh, *state;
    int16_t *rh;
    /* Layers [cache_from, cache_from + cache_count) decoded once by the caller (egru_s16_run_layers
     * decodes the others at every step); cache_count 0: none. */
    const egru_layer_t *cache;
    uint32_t cache_from, cache_count;
} egru_s16_row_ctx_t;

int egru_s16_is_rnn(uint32_t op);

/* int32 words of a recurrent layer's state: h (int16, in pairs), and an LSTM's c. */
size_t egru_s16_state_words(const egru_layer_t *l);

/* Runs layers [from, to) of one step (egru_forward_s16.c states the contract). */
const int16_t *egru_s16_run_layers(egru_s16_row_ctx_t *c, uint32_t from, uint32_t to,
                                   const int16_t *in, int32_t id, int *valid, int32_t *state,
                                   const uint8_t *valid_in, uint32_t switch_at, int valid_after);

/* One step of a layer that works step by step and is not recurrent (egru_forward_s16.c). */
void egru_s16_step_layer(const egru_layer_t *l, const int16_t *in, int16_t *out, int32_t id,
                         int *valid, const uint8_t *valid_in, int32_t *g);

/* The sequence plan (egru_forward_seq_s16.c): offsets of its regions for one row of seq_len
 * steps, the output's steps, the arena's bytes. EGRU_ERR_BAD_SHAPE when a layer cannot take the
 * steps it gets (a Conv1D with 'valid' padding on fewer steps than its window, a Flatten of
 * another length). */
typedef struct egru_s16_seq_plan {
    uint32_t out_steps;
    size_t off_seq1, off_valid, off_win, off_gx, off_gh, off_rh, off_state, bytes;
} egru_s16_seq_plan_t;

egru_status_t egru_s16_seq_plan(const egru_model_t *m, uint32_t seq_len, egru_s16_seq_plan_t *p);

/* Runs the model with the sequence plan; arguments as egru_forward_*_s16's, checked by them. */
egru_status_t egru_s16_run_sequence(const egru_model_t *m, const egru_s16_seq_plan_t *p,
                                    const int32_t *ids, const int16_t *x, const uint8_t *valid,
                                    uint32_t batch, uint32_t seq_len, int16_t *out, void *arena);

/* One step of a GRU, LSTM or SimpleRNN layer (direction 0's weights, products 0 and 1 of its
 * QPARAMS) on the int16 input x (input_dim values at the layer's input scale): h (units int16 at
 * the state scale) and an LSTM's c (units int32 in G) updated in place. Scratch: gx and gh
 * hold G * units int32 each (G = 3 GRU, 4 LSTM, 1 SimpleRNN), rh units int16. */
void egru_rnn_step_s16(const egru_layer_t *l, const int16_t *x, int16_t *h, int32_t *c, int32_t *gx,
                       int32_t *gh, int16_t *rh);

#endif /* EGRU_S16_INTERNAL_H */
