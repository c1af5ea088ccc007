/*
 * egru_forward_seq_s16.c - the sequence plan of int16x8 models: the layers that need a whole
 * sequence, or steps not seen yet (Conv1D, GlobalPool, Flatten, Bidirectional, a go_backwards
 * recurrent layer after another one). docs/quantization.md, "int16x8", defines every integer;
 * edgegru.int16x8.forward_int is the specification.
 *
 * One batch row at a time, one layer at a time over the row's whole sequence:
 *
 *     seq[2]   2 x (max over layers of steps * width) int16, ping-pong: a layer's input and
 *              output sequences, (steps, width) row-major
 *     valid    steps bytes: the validity of each step of the current sequence (1 without a mask)
 *     win      the widest Conv1D window, kernel_size * in int16 (padding steps are 0)
 *     gx, gh   2 x max(4 max_units, max_width) int32: gate sums in G (other layers: gx)
 *     rh       max_units int16 (GRU reset_before: r * h)
 *     state    the largest recurrent layer's state (h int16, an LSTM's c int32); the layers run
 *              one after the other, and a Bidirectional layer's directions too
 *
 * so the arena grows with the sequence length (not with the batch); egru_s16_arena_size gives it.
 * Masks follow Keras as the emulation does: a recurrent layer keeps its state on a masked step;
 * a one-direction layer outputs that state in processing order (go_backwards: step p is input
 * step T - 1 - p) and passes the mask on unchanged; a Bidirectional layer writes each direction
 * at its input step, 0 on masked steps, then merges; Conv1D, GlobalPool and Flatten drop the mask
 * (GlobalPool, when it receives one, pools the valid steps only).
 */
#include <string.h>

#include "egru_s16_internal.h"

#if EGRU_CFG_INT16X8

/* Output steps of `l` over `steps` input steps; 0 when the shape does not fit (a Conv1D with
 * 'valid' padding longer than the input, a Flatten of another length). */
static uint32_t out_steps(const egru_layer_t *l, uint32_t steps)
{
    const uint32_t k = l->params[0], s = l->params[1], d = l->params[2];
    switch (l->op) {
    case EGRU_OP_GRU:
    case EGRU_OP_LSTM:
    case EGRU_OP_SIMPLE_RNN: return (l->flags & EGRU_FLAG_RETURN_SEQUENCES) ? steps : 1u;
    case EGRU_OP_CONV1D: {
        const uint32_t e = d * (k - 1u) + 1u; /* fits: egru_model_init checks d * (k - 1) */
        if (l->params[3] != EGRU_PADDING_VALID) {
            return steps / s + (steps % s != 0u);
        }
        return steps < e ? 0u : (steps - e) / s + 1u;
    }
    case EGRU_OP_GLOBAL_POOL: return 1u;
    case EGRU_OP_FLATTEN: return steps == l->params[0] ? 1u : 0u;
    default: return steps;
    }
}

/* The zero steps a Conv1D adds on the left (TensorFlow's split for 'same'). */
static uint64_t left_padding(const egru_layer_t *l, uint32_t steps)
{
    const uint32_t k = l->params[0], s = l->params[1], d = l->params[2];
    const uint64_t e = (uint64_t)d * (k - 1u) + 1u, out = out_steps(l, steps);
    uint64_t total;
    switch (l->params[3]) {
    case EGRU_PADDING_CAUSAL: return e - 1u;
    case EGRU_PADDING_SAME:
        total = (out - 1u) * s + e;
        return total > steps ? (total - steps) >> 1 : 0u;
    default: return 0u;
    }
}

egru_status_t egru_s16_seq_plan(const egru_model_t *m, uint32_t seq_len, egru_s16_seq_plan_t *p)
{
    egru_layer_t l;
    uint32_t k, steps = seq_len;
    uint64_t win = 0, gates = m->max_width, units = 0;
    uint64_t seq = m->input_kind == EGRU_INPUT_TOKENS ? 0u : (uint64_t)seq_len * m->input_dim;
    uint64_t state = 0, total;
    memset(p, 0, sizeof *p);
    for (k = 0; k < m->layer_count; ++k) {
        uint32_t t;
        (void)egru_model_layer(m, k, &l); /* validated by egru_model_init */
        t = out_steps(&l, steps);
        if (t == 0) {
            return EGRU_ERR_BAD_SHAPE; /* Conv1D input too short, or Flatten's T differs */
        }
        seq = (uint64_t)t * l.output_dim > seq ? (uint64_t)t * l.output_dim : seq;
        if (l.op == EGRU_OP_CONV1D) {
            const uint64_t w = (uint64_t)l.params[0] * l.input_dim;
            win = w > win ? w : win;
        }
        if (egru_s16_is_rnn(l.op)) {
            const uint64_t g = (uint64_t)egru_s16_rnn_gates(l.op) * l.units;
            const uint64_t s = egru_s16_state_words(&l);
            gates = g > gates ? g : gates;
            units = l.units > units ? l.units : units;
            state = s > state ? s : state;
        }
        steps = t;
    }
    p->out_steps = m->output_is_sequence ? steps : 1u;
    { /* offsets in 64 bits, stored once the total is known to fit size_t (32-bit targets) */
        const uint64_t seq1 = 4u * ((seq + 1u) / 2u), valid = 2u * seq1;
        const uint64_t at_win = valid + 4u * (((uint64_t)seq_len + 3u) / 4u);
        const uint64_t at_gx = at_win + 4u * ((win + 1u) / 2u), at_gh = at_gx + 4u * gates;
        const uint64_t at_rh = at_gh + 4u * gates, at_state = at_rh + 4u * ((units + 1u) / 2u);
        total = at_state + 4u * state + 3u; /* 3: the arena may start unaligned */
        if (seq > (uint64_t)0x7FFFFFFF || total > (uint64_t)((size_t)-1)) {
            return EGRU_ERR_BAD_SHAPE; /* beyond any arena */
        }
        p->off_seq1 = (size_t)seq1;
        p->off_valid = (size_t)valid;
        p->off_win = (size_t)at_win;
        p->off_gx = (size_t)at_gx;
        p->off_gh = (size_t)at_gh;
        p->off_rh = (size_t)at_rh;
        p->off_state = (size_t)at_state;
    }
    p->bytes = (size_t)total;
    return EGRU_OK;
}

/* The arena's regions for one row. */
typedef struct seq_ctx {
    int16_t *seq[2], *win, *rh;
    uint8_t *valid;
    int32_t *gx, *gh, *state;
} seq_ctx_t;

/* Conv1D over `steps` steps of src into dst: each output step's window gathered into c->win
 * (kernel_size steps of input_dim values, 0 outside the input), one product, the activation. */
static void conv1d(const egru_layer_t *l, const seq_ctx_t *c, const int16_t *src, uint32_t steps,
                   int16_t *dst)
{
    const uint32_t k = l->params[0], s = l->params[1], d = l->params[2];
    const uint32_t in = l->input_dim, out = l->output_dim, t_out = out_steps(l, steps);
    const int64_t left = (int64_t)left_padding(l, steps);
    const qprod_t q = egru_s16_qprod(l, 0, out);
    uint32_t t, j;
    for (t = 0; t < t_out; ++t) {
        for (j = 0; j < k; ++j) {
            const int64_t at = (int64_t)t * s + (int64_t)j * d - left;
            int16_t *w = c->win + (size_t)j * in;
            if (at >= 0 && at < (int64_t)steps) {
                memcpy(w, src + (size_t)at * in, in * sizeof *w);
            } else {
                memset(w, 0, in * sizeof *w);
            }
        }
        egru_s16_product(l->kernels, l->kernel_s8, q, 0, c->win, c->gx, out, k * in);
        egru_q16_activate(l->activation, c->gx, out);
        egru_s16_store_out(l, c->gx, dst + (size_t)t * out, out);
    }
}

/* GlobalPool of `steps` steps (only the valid ones when the layer receives a mask): max, or the
 * mean rounded half up, floor((2 sum + n) / (2 n)); 0 when no step is valid. */
static void global_pool(const egru_layer_t *l, const uint8_t *valid, const int16_t *src,
                        uint32_t steps, int16_t *dst)
{
    const int masked = (l->flags & EGRU_FLAG_MASKED) != 0;
    const uint32_t dim = l->output_dim;
    uint32_t j, t;
    for (j = 0; j < dim; ++j) {
        int64_t acc = l->params[0] == EGRU_POOL_MAX ? -EGRU_Q16_QMAX : 0, n = 0;
        for (t = 0; t < steps; ++t) {
            const int16_t v = src[(size_t)t * dim + j];
            if (masked && !valid[t]) {
                continue;
            }
            ++n;
            if (l->params[0] == EGRU_POOL_MAX) {
                acc = v > acc ? v : acc;
            } else {
                acc += v;
            }
        }
        dst[j] =
            (int16_t)(n == 0                          ? 0
                      : l->params[0] == EGRU_POOL_MAX ? acc
                                                      : egru_s16_floor_div(2 * acc + n, 2 * n));
    }
}

/* The Bidirectional merge of a forward value a and a backward value b (header words 6, 7). */
static int16_t merge(const egru_layer_t *l, int32_t a, int32_t b)
{
    const int32_t *q = l->qparams;
    const int64_t v = l->params[0] == EGRU_MERGE_MUL ? (int64_t)a * b : (int64_t)a + b;
    return (int16_t)egru_q16_sat16(egru_q16_mul(v, q[EGRU_QP_AUX_M], (uint32_t)q[EGRU_QP_AUX_N]));
}

/* A recurrent layer (one direction, or both of a Bidirectional one) over `steps` steps of src
 * into dst: its sequence (steps, output_dim) or its last output (output_dim). */
static void recurrent(const egru_layer_t *l, const seq_ctx_t *c, const int16_t *src, uint32_t steps,
                      int16_t *dst)
{
    const int bidi = (l->flags & EGRU_FLAG_BIDIRECTIONAL) != 0;
    const int seq = (l->flags & EGRU_FLAG_RETURN_SEQUENCES) != 0;
    const int masked = (l->flags & EGRU_FLAG_MASKED) != 0;
    const int concat = bidi && l->params[0] == EGRU_MERGE_CONCAT;
    const uint32_t H = l->units, in = l->input_dim, width = l->output_dim;
    int16_t *h = (int16_t *)(void *)c->state;
    int32_t *cell = c->state + (H + 1u) / 2u;
    uint32_t dir, p, j;
    for (dir = 0; dir < (bidi ? 2u : 1u); ++dir) {
        egru_layer_t one = *l; /* this direction, as a one-direction layer (docs/format.md) */
        const int reverse = dir == 1u || (l->flags & EGRU_FLAG_GO_BACKWARDS);
        if (dir == 1u) {
            one.rnn[0] = l->rnn[1];
            one.qparams = l->qparams + l->qparams_count / 2u;
        }
        memset(c->state, 0, 4u * egru_s16_state_words(l));
        for (p = 0; p < steps; ++p) {
            const uint32_t t = reverse ? steps - 1u - p : p;
            const int ok = !masked || c->valid[t];
            int16_t *o;
            if (ok) {
                egru_rnn_step_s16(&one, src + (size_t)t * in, h, cell, c->gx, c->gh, c->rh);
            }
            if (!seq && p + 1u < steps) {
                continue;
            }
            /* a one-direction layer writes the kept state at processing step p; a
             * Bidirectional one each direction at input step t, 0 on a masked step */
            o = dst + (seq ? (size_t)(bidi ? t : p) * width : 0u) + (concat && dir ? H : 0u);
            for (j = 0; j < H; ++j) {
                const int16_t v = bidi && seq && !ok ? 0 : h[j];
                o[j] = bidi && !concat && dir ? merge(l, o[j], v) : v;
            }
        }
    }
}

egru_status_t egru_s16_run_sequence(const egru_model_t *m, const egru_s16_seq_plan_t *p,
                                    const int32_t *ids, const int16_t *x, const uint8_t *valid,
                                    uint32_t batch, uint32_t seq_len, int16_t *out, void *arena)
{
    uint8_t *base = (uint8_t *)arena + ((4u - (uintptr_t)arena % 4u) % 4u);
    const uint32_t in_dim = m->input_dim;
    const size_t out_row = (size_t)m->output_dim * p->out_steps;
    seq_ctx_t c;
    egru_layer_t l;
    uint32_t b, k, t, j;
    c.seq[0] = (int16_t *)(void *)base;
    c.seq[1] = (int16_t *)(void *)(base + p->off_seq1);
    c.valid = base + p->off_valid;
    c.win = (int16_t *)(void *)(base + p->off_win);
    c.gx = (int32_t *)(void *)(base + p->off_gx);
    c.gh = (int32_t *)(void *)(base + p->off_gh);
    c.rh = (int16_t *)(void *)(base + p->off_rh);
    c.state = (int32_t *)(void *)(base + p->off_state);
    for (b = 0; b < batch; ++b) {
        uint32_t steps = seq_len, side = 0;
        memset(c.valid, 1, seq_len);
        if (!ids) { /* the row's features, -32768 read as -32767 */
            const int16_t *row = x + (size_t)b * seq_len * in_dim;
            for (j = 0; j < seq_len * in_dim; ++j) {
                c.seq[0][j] = row[j] < -EGRU_Q16_QMAX ? (int16_t)-EGRU_Q16_QMAX : row[j];
            }
        }
        for (k = 0; k < m->layer_count; ++k) {
            const int16_t *src = c.seq[side];
            int16_t *dst = c.seq[side ^ 1u];
            (void)egru_model_layer(m, k, &l); /* validated by egru_model_init */
            switch (l.op) {
            case EGRU_OP_CONV1D: conv1d(&l, &c, src, steps, dst); break;
            case EGRU_OP_GLOBAL_POOL: global_pool(&l, c.valid, src, steps, dst); break;
            case EGRU_OP_FLATTEN:
                memcpy(dst, src, (size_t)steps * l.input_dim * sizeof *dst);
                break;
            case EGRU_OP_GRU:
            case EGRU_OP_LSTM:
            case EGRU_OP_SIMPLE_RNN: recurrent(&l, &c, src, steps, dst); break;
            default: /* step by step: Embedding, Masking, Dense, Activation, Affine */
                for (t = 0; t < steps; ++t) {
                    const size_t at = (size_t)b * seq_len + t;
                    int32_t id = 0;
                    int ok = c.valid[t];
                    if (ids) {
                        id = ids[at];
                        if (id < 0 || (uint32_t)id >= in_dim) {
                            return EGRU_ERR_TOKEN_RANGE; /* checked up front; the caller changed
                                                            ids */
                        }
                    }
                    /* the Embedding reads ids, not src (input_dim is its vocabulary) */
                    egru_s16_step_layer(
                        &l, l.op == EGRU_OP_EMBEDDING ? src : src + (size_t)t * l.input_dim,
                        dst + (size_t)t * l.output_dim, id, &ok,
                        valid && l.op == EGRU_OP_MASKING ? valid + at : NULL, c.gx);
                    c.valid[t] = (uint8_t)(ok != 0);
                }
                break;
            }
            t = out_steps(&l, steps);
            if (l.op == EGRU_OP_CONV1D || l.op == EGRU_OP_GLOBAL_POOL || l.op == EGRU_OP_FLATTEN ||
                (egru_s16_is_rnn(l.op) && !(l.flags & EGRU_FLAG_RETURN_SEQUENCES))) {
                memset(c.valid, 1, t); /* these drop the mask (it lives on the input's steps) */
            }
            steps = t;
            side ^= 1u;
        }
        memcpy(out + (size_t)b * out_row, c.seq[side], out_row * sizeof *out);
    }
    return EGRU_OK;
}

#endif /* EGRU_CFG_INT16X8 */
