/*
 * egru_forward_s16.c - forward passes of int16x8 models (header quant_version 2): integer-only
 * inference, no floating-point operation (docs/quantization.md, "int16x8"; edgegru.int16x8 is the
 * specification, and this file computes its integers).
 *
 * Plan: one batch row at a time, one step at a time. Layers [0, seq_end) run on every step
 * (Embedding, Masking, Dense per step, and recurrent layers, each updating its state); when a
 * recurrent layer without RETURN_SEQUENCES ends the sequence, the layers after it run once on its
 * final state. A go_backwards recurrent layer (only the first recurrent layer may be one: the
 * layers before it are per-step, so feeding the input steps last to first is the same as
 * reversing that layer's input) reads input step T - 1 - p at step p; outputs stay in processing
 * order, as in Keras. So the arena does not grow with the sequence length or the batch:
 *
 *     buf[2]   2 x max_width int16      step values, ping-pong
 *     gx, gh   2 x max(4 max_units, max_width) int32   gate sums in G (Dense: gx)
 *     rh       max_units int16          GRU reset_before: r * h
 *     states   per recurrent layer, in order: h (H int16, rounded up to an even count), and an
 *              LSTM's cell c (H int32, in G)
 *
 * Masks: a step's validity comes from the Embedding (mask_zero: id 0 is masked), or the first
 * layer's Masking (the caller's `valid` bytes, else every int16 feature equal to the quantized
 * mask value); a recurrent layer with MASKED keeps its state on a masked step and outputs it.
 * Keras passes a go_backwards layer's mask on unchanged, while its outputs are in processing
 * order: so at step p the layers after the first (go_backwards) recurrent layer see the validity
 * of input step p, not of the step T - 1 - p it read.
 */
#include <string.h>

#include "../egru_internal.h"
#include "../kernels/egru_kernels.h"
#include "egru_q16.h"
#include "egru_s16_internal.h"

#if EGRU_CFG_INT16X8

int egru_s16_is_rnn(uint32_t op)
{
    return op == EGRU_OP_GRU || op == EGRU_OP_LSTM || op == EGRU_OP_SIMPLE_RNN;
}

/* int32 words of a recurrent layer's state: h (int16, in pairs), and an LSTM's c. */
size_t egru_s16_state_words(const egru_layer_t *l)
{
    return (l->units + 1u) / 2u + (l->op == EGRU_OP_LSTM ? l->units : 0u);
}

egru_status_t egru_s16_make_plan(const egru_model_t *m, egru_s16_plan_t *p)
{
    egru_layer_t l;
    uint32_t k, seen_rnn = 0;
    size_t states = 0;
    memset(p, 0, sizeof *p);
    p->seq_end = m->layer_count;
    p->first_rnn = m->layer_count;
    for (k = 0; k < m->layer_count; ++k) {
        egru_status_t s = egru_model_layer(m, k, &l); /* validated by egru_model_init */
        if (s != EGRU_OK) {
            return s;
        }
        if (l.op == EGRU_OP_CONV1D || l.op == EGRU_OP_GLOBAL_POOL || l.op == EGRU_OP_FLATTEN) {
            p->sequence = 1;
        }
        if (egru_s16_is_rnn(l.op)) {
            const uint32_t g = egru_s16_rnn_gates(l.op) * l.units;
            p->gates = g > p->gates ? g : p->gates;
            p->units = l.units > p->units ? l.units : p->units;
            if (!seen_rnn) {
                p->first_rnn = k;
                p->reversed = (l.flags & EGRU_FLAG_GO_BACKWARDS) != 0;
            } else if (l.flags & EGRU_FLAG_GO_BACKWARDS) {
                p->sequence = 1; /* it needs its input's last step first */
            }
            if (l.flags & EGRU_FLAG_BIDIRECTIONAL) {
                p->sequence = 1;
            }
            seen_rnn = 1;
            states += egru_s16_state_words(&l);
            if (!(l.flags & EGRU_FLAG_RETURN_SEQUENCES) && p->seq_end == m->layer_count) {
                p->seq_end = k + 1;
            }
        }
    }
    p->width = m->max_width;
    p->gates = p->width > p->gates ? p->width : p->gates;
    /* int16 buffers rounded up to whole int32 words, so that every region stays aligned */
    p->off_buf1 = 4u * ((p->width + 1u) / 2u);
    p->off_gx = 2u * p->off_buf1;
    p->off_gh = p->off_gx + 4u * (size_t)p->gates;
    p->off_rh = p->off_gh + 4u * (size_t)p->gates;
    p->off_state = p->off_rh + 4u * ((p->units + 1u) / 2u);
    p->bytes = p->off_state + 4u * states + 3u; /* 3: the arena may start unaligned */
    return EGRU_OK;
}

egru_status_t egru_s16_arena_size(const egru_model_t *model, uint32_t seq_len, size_t *arena_bytes)
{
    egru_s16_plan_t p;
    egru_s16_seq_plan_t q;
    egru_status_t s = egru_s16_make_plan(model, &p);
    if (s == EGRU_OK && EGRU_S16_SEQUENCE_PLAN && p.sequence) {
        s = egru_s16_seq_plan(model, seq_len, &q);
        p.bytes = q.bytes;
    }
    if (s == EGRU_OK) {
        *arena_bytes = p.bytes;
    }
    return s;
}

egru_status_t egru_s16_out_steps(const egru_model_t *model, uint32_t seq_len, uint32_t *steps)
{
    egru_s16_plan_t p;
    egru_s16_seq_plan_t q;
    egru_status_t s = egru_s16_make_plan(model, &p);
    *steps = model->output_is_sequence ? seq_len : 1u;
    if (s == EGRU_OK && EGRU_S16_SEQUENCE_PLAN && p.sequence &&
        (s = egru_s16_seq_plan(model, seq_len, &q)) == EGRU_OK) {
        *steps = q.out_steps;
    }
    return s;
}

/* floor(sqrt(v)), exact, for v < 2^62. */
static uint32_t isqrt64(uint64_t v)
{
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)r;
}

/* run(): step-wise layers decoded once per call (stack: this many egru_layer_t, one of them the
 * first layer, which run() decodes anyway) */
#define EGRU_S16_STEP_CACHE 2u

#define S16_W_MAX ((((uint64_t)1) << 62) - 1u) /* LayerNorm's largest W */

/* LayerNorm of one step (docs/quantization.md), the mean exact: with S the sum, q = floor(S / C)
 * and r = S - q C, D_j = C (x_j - q) - r and U = C sum (x_j - q)^2 - r^2 (C^2 times the variance);
 * t_j = D_j / sqrt(W) in Q22 with W = min(U + E, 2^62 - 1), by an integer reciprocal square root;
 * then per feature satG(mul(t_j, gamma multiplier) + beta) into g. C <= 2^14 (egru_model_init):
 * |D_j| < 2^30, U < 2^60, |D_j * inv| < 2^62. */
static void layer_norm(const egru_layer_t *l, const int16_t *in, int32_t *g)
{
    const int32_t *qp = l->qparams;
    const qprod_t p = egru_s16_qprod(l, 0, l->output_dim);
    const uint32_t c = l->output_dim;
    const uint64_t e = ((uint64_t)(uint32_t)qp[EGRU_QP_AUX_M] << 31) + (uint32_t)qp[EGRU_QP_AUX_N];
    int64_t sum = 0, q, r;
    uint64_t v = 0, w, inv = 0;
    uint32_t j, k = 0, bits = 0;
    for (j = 0; j < c; ++j) {
        sum += in[j];
    }
    q = egru_s16_floor_div(sum, c);
    r = sum - q * (int64_t)c; /* 0 <= r < c */
    for (j = 0; j < c; ++j) { /* |x_j - q| <= 65534: at most 2^32 per term */
        const int64_t d = in[j] - q;
        v += (uint64_t)(d * d);
    }
    w = (uint64_t)c * v - (uint64_t)(r * r);   /* U >= 0: C sum (x - mean)^2 */
    w = w > S16_W_MAX - e ? S16_W_MAX : w + e; /* e <= 2^62 - 1 (words 6, 7 >= 0) */
    if (w != 0) {
        while (bits < 64u && (w >> bits) != 0) {
            ++bits;
        }
        k = (62u - bits) >> 1;
        inv = ((uint64_t)1 << 62) / isqrt64(w << (2u * k)); /* R in [2^30, 2^31) */
    }
    for (j = 0; j < c; ++j) {
        const int64_t d = (int64_t)c * (in[j] - q) - r;
        const int64_t t = egru_q16_rshift(d * (int64_t)inv, 40u - k); /* 62 - 22 - k */
        g[j] = egru_q16_sat_g(egru_q16_mul(t, p.m[j], (uint32_t)p.n[j]) + p.bias[j]);
    }
}

/* One step of a layer that is not recurrent and works step by step (Embedding, Masking,
 * Dense, Activation, Affine, LayerNorm): `in` (input_dim int16 at the input scale; unused by the
 * Embedding, which reads row `id`) to `out` (output_dim int16 at the output scale). *valid: the
 * step's validity, set by the Embedding (mask_zero) and by Masking (from *valid_in when given,
 * else from the int16 features). g: output_dim int32 of scratch. */
void egru_s16_step_layer(const egru_layer_t *l, const int16_t *in, int16_t *out, int32_t id,
                         int *valid, const uint8_t *valid_in, int32_t *g)
{
    const int32_t *q = l->qparams;
    uint32_t j;
    switch (l->op) {          /* each case only in a build that holds its op (egru_features.h) */
    case EGRU_OP_EMBEDDING: { /* row id, dequantized into the output's scale */
        const qprod_t p = egru_s16_qprod(l, 0, l->input_dim);
        if (!EGRU_CFG_OP_EMBEDDING) {
            break;
        }
        const int8_t *row = l->table_s8 + (size_t)id * l->output_dim;
        for (j = 0; j < l->output_dim; ++j) {
            out[j] = (int16_t)egru_q16_sat16(egru_q16_mul(row[j], p.m[id], (uint32_t)p.n[id]));
        }
        *valid = !(l->flags & EGRU_FLAG_MASK_ZERO) || id != 0;
        break;
    }
    case EGRU_OP_MASKING: {
        int any = 0;
        if (!EGRU_CFG_OP_MASKING) {
            break;
        }
        for (j = 0; j < l->output_dim; ++j) {
            any = any || in[j] != q[EGRU_QP_MASK_Q];
        }
        *valid = valid_in ? *valid_in != 0 : any;
        for (j = 0; j < l->output_dim; ++j) {
            out[j] = *valid ? in[j] : 0;
        }
        break;
    }
    case EGRU_OP_DENSE: {
        const qprod_t p = egru_s16_qprod(l, 0, l->output_dim);
        egru_s16_product(l->kernels, l->kernel_s8, p, 0, in, g, l->output_dim, l->input_dim);
        egru_q16_activate(l->activation, g, l->output_dim);
        egru_s16_store_out(l, g, out, l->output_dim);
        break;
    }
    case EGRU_OP_ACTIVATION: /* into G by the input's multiplier, the activation, the output */
        if (!EGRU_CFG_OP_ACTIVATION) {
            break;
        }
        for (j = 0; j < l->output_dim; ++j) {
            g[j] =
                egru_q16_sat_g(egru_q16_mul(in[j], q[EGRU_QP_AUX_M], (uint32_t)q[EGRU_QP_AUX_N]));
        }
        egru_q16_activate(l->activation, g, l->output_dim);
        egru_s16_store_out(l, g, out, l->output_dim);
        break;
    case EGRU_OP_AFFINE: { /* per feature: satG(mul(x, m) + bias), m signed */
        const qprod_t p = egru_s16_qprod(l, 0, l->output_dim);
        if (!EGRU_CFG_OP_AFFINE) {
            break;
        }
        for (j = 0; j < l->output_dim; ++j) {
            g[j] = egru_q16_sat_g(egru_q16_mul(in[j], p.m[j], (uint32_t)p.n[j]) + p.bias[j]);
        }
        egru_s16_store_out(l, g, out, l->output_dim);
        break;
    }
    case EGRU_OP_LAYER_NORM:
        if (!EGRU_CFG_OP_LAYER_NORM) {
            break;
        }
        layer_norm(l, in, g);
        egru_s16_store_out(l, g, out, l->output_dim);
        break;
    default: break; /* egru_s16_make_plan sends every other op to the sequence plan */
    }
}

/* Runs layers [from, to) on one step's int16 values `in` (NULL for the Embedding's id), with the
 * step's validity *valid (updated by a Masking or Embedding layer); returns the last output (in
 * one of the buffers, or a recurrent layer's state) and its width. `state` walks the recurrent
 * layers' states from the first of layer `from`. After layer `switch_at` (the first recurrent
 * layer, when it goes backwards) the validity becomes `valid_after`. */
const int16_t *egru_s16_run_layers(egru_s16_row_ctx_t *c, uint32_t from, uint32_t to,
                                   const int16_t *in, int32_t id, int *valid, int32_t *state,
                                   const uint8_t *valid_in, uint32_t switch_at, int valid_after)
{
    egru_layer_t decoded;
    uint32_t k, side = 0;
    const int16_t *cur = in;
    for (k = from; k < to; ++k) {
        int16_t *dst = c->buf[side];
        const egru_layer_t *l = &decoded;
        if (k - c->cache_from < c->cache_count) {
            l = &c->cache[k - c->cache_from];
        } else {
            (void)egru_model_layer(c->m, k, &decoded); /* validated by egru_model_init */
        }
        if (!egru_s16_is_rnn(l->op)) {
            egru_s16_step_layer(l, cur, dst, id, valid, valid_in, c->gx);
            cur = dst;
            side ^= 1u;
            continue;
        }
        {
            int16_t *h = (int16_t *)(void *)state;
            int32_t *cell = state + (l->units + 1u) / 2u;
            if (!(l->flags & EGRU_FLAG_MASKED) || *valid) {
                egru_rnn_step_s16(l, cur, h, cell, c->gx, c->gh, c->rh);
            }
            state += egru_s16_state_words(l);
            cur = h;
            if (k == switch_at) {
                *valid = valid_after;
            }
            /* nothing written to dst */
        }
    }
    return cur;
}

/* Shape, buffer and arena checks of both entry points. */
static egru_status_t check_call(const egru_model_t *m, uint32_t kind, const void *in,
                                uint32_t batch, uint32_t seq_len, const int16_t *out,
                                size_t out_count, const void *arena, size_t arena_bytes,
                                egru_s16_plan_t *p, egru_s16_seq_plan_t *q)
{
    uint64_t n;
    uint32_t steps;
    egru_status_t s;
    if (!m || !in || !out || !arena) {
        return EGRU_ERR_NULL_ARG;
    }
    if (m->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER; /* not initialised */
    }
    if (m->quant_version != EGRU_QUANT_VERSION_INT16X8) {
        return EGRU_ERR_WRONG_DTYPE; /* float and int8 models: egru_forward_tokens/_features */
    }
    if (batch == 0 || seq_len == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if (m->input_kind != kind) {
        return EGRU_ERR_WRONG_INPUT;
    }
    if ((s = egru_s16_make_plan(m, p)) != EGRU_OK ||
        (EGRU_S16_SEQUENCE_PLAN && p->sequence &&
         (s = egru_s16_seq_plan(m, seq_len, q)) != EGRU_OK)) {
        return s;
    }
    if (p->sequence && !EGRU_S16_SEQUENCE_PLAN) {
        return EGRU_ERR_UNSUPPORTED; /* egru_model_init refused such a model already */
    }
    steps = p->sequence ? q->out_steps : m->output_is_sequence ? seq_len : 1u;
    n = (uint64_t)batch * m->output_dim * steps;
    if (n > (uint64_t)((size_t)-1 / sizeof(int16_t)) ||
        (uint64_t)batch * seq_len * (kind == EGRU_INPUT_TOKENS ? 2u : m->input_dim) >
            (uint64_t)((size_t)-1 / sizeof(int16_t))) { /* ids: int32, two int16 each */
        return EGRU_ERR_BAD_SHAPE;
    }
    if (n != out_count) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    return arena_bytes < (p->sequence ? q->bytes : p->bytes) ? EGRU_ERR_ARENA_TOO_SMALL : EGRU_OK;
}

/* The validity of input step `at` as the first layer makes it (1 without a mask). */
static int input_valid(const egru_layer_t *first, const int32_t *ids, const int16_t *x,
                       const uint8_t *valid, size_t at)
{
    uint32_t j;
    if (first->op == EGRU_OP_EMBEDDING) {
        return !(first->flags & EGRU_FLAG_MASK_ZERO) || ids[at] != 0;
    }
    if (first->op != EGRU_OP_MASKING) {
        return 1;
    }
    if (valid) {
        return valid[at] != 0;
    }
    for (j = 0; j < first->input_dim; ++j) {
        const int32_t v = x[at * first->input_dim + j];
        if ((v < -EGRU_Q16_QMAX ? -EGRU_Q16_QMAX : v) != first->qparams[EGRU_QP_MASK_Q]) {
            return 1;
        }
    }
    return 0;
}

static egru_status_t run(const egru_model_t *m, const egru_s16_plan_t *p, const int32_t *ids,
                         const int16_t *x, const uint8_t *valid, uint32_t batch, uint32_t seq_len,
                         int16_t *out, void *arena)
{
    uint8_t *base = (uint8_t *)arena + ((4u - (uintptr_t)arena % 4u) % 4u);
    const uint32_t in_dim = m->input_dim, out_dim = m->output_dim;
    const size_t state_bytes = p->bytes - 3u - p->off_state;
    egru_s16_row_ctx_t c;
    egru_layer_t steps[EGRU_S16_STEP_CACHE]; /* steps[0]: the first layer */
    const egru_layer_t *const first = &steps[0];
    uint32_t b, t;
    (void)egru_model_layer(m, 0, &steps[0]); /* validated by egru_model_init */
    /* The step-wise layers [0, seq_end), decoded once when they are few (the common model: one
     * recurrent layer, perhaps after an Embedding or Masking), not at every step. */
    c.cache = steps, c.cache_from = 0, c.cache_count = 1;
    if (p->seq_end <= EGRU_S16_STEP_CACHE) {
        for (; c.cache_count < p->seq_end; ++c.cache_count) {
            (void)egru_model_layer(m, c.cache_count, &steps[c.cache_count]);
        }
    }
    c.m = m;
    c.buf[0] = (int16_t *)(void *)base;
    c.buf[1] = (int16_t *)(void *)(base + p->off_buf1);
    c.gx = (int32_t *)(void *)(base + p->off_gx);
    c.gh = (int32_t *)(void *)(base + p->off_gh);
    c.rh = (int16_t *)(void *)(base + p->off_rh);
    c.state = (int32_t *)(void *)(base + p->off_state);
    for (b = 0; b < batch; ++b) {
        const int16_t *last = NULL;
        memset(c.state, 0, state_bytes);
        for (t = 0; t < seq_len; ++t) {
            const uint32_t src = p->reversed ? seq_len - 1u - t : t;
            const size_t at = (size_t)b * seq_len + src;
            int16_t *step = c.buf[1]; /* the step's int16 input, copied so -32768 reads -32767 */
            int32_t id = 0;
            int ok = 1;
            uint32_t j;
            if (ids) {
                id = ids[at];
                if (id < 0 || (uint32_t)id >= in_dim) {
                    return EGRU_ERR_TOKEN_RANGE; /* checked up front; the caller changed ids */
                }
                step = NULL;
            } else {
                for (j = 0; j < in_dim; ++j) {
                    const int16_t v = x[at * in_dim + j];
                    step[j] = v < -EGRU_Q16_QMAX ? (int16_t)-EGRU_Q16_QMAX : v;
                }
            }
            /* the first layer reads `step` in buf[1] and writes buf[0]: no overlap */
            last = egru_s16_run_layers(
                &c, 0, p->seq_end, step, id, &ok, c.state, valid ? valid + at : NULL,
                p->reversed ? p->first_rnn : m->layer_count,
                p->reversed ? input_valid(first, ids, x, valid, (size_t)b * seq_len + t) : 1);
            if (m->output_is_sequence) {
                memcpy(out + ((size_t)b * seq_len + t) * out_dim, last, out_dim * sizeof *out);
            }
        }
        if (!m->output_is_sequence) {
            int ok = 1;
            int32_t *st = c.state;
            egru_layer_t l;
            uint32_t k;
            for (k = 0; k + 1 < p->seq_end; ++k) { /* the states of the layers before the end */
                (void)egru_model_layer(m, k, &l);
                st += egru_s16_is_rnn(l.op) ? egru_s16_state_words(&l) : 0;
            }
            last = (const int16_t *)(const void *)st; /* the ending layer's h */
            if (p->seq_end < m->layer_count) {        /* the head: per-step layers, once */
                last = egru_s16_run_layers(&c, p->seq_end, m->layer_count, last, 0, &ok, st, NULL,
                                           m->layer_count, 1);
            }
            memcpy(out + (size_t)b * out_dim, last, out_dim * sizeof *out);
        }
    }
    return EGRU_OK;
}

egru_status_t egru_model_scales(const egru_model_t *model, uint32_t *input_scale_bits,
                                uint32_t *output_scale_bits)
{
    egru_layer_t l;
    egru_status_t s;
    if (!model || !input_scale_bits || !output_scale_bits) {
        return EGRU_ERR_NULL_ARG;
    }
    if (model->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER;
    }
    if (model->quant_version != EGRU_QUANT_VERSION_INT16X8) {
        return EGRU_ERR_WRONG_DTYPE;
    }
    if ((s = egru_model_layer(model, 0, &l)) != EGRU_OK) {
        return s;
    }
    *input_scale_bits = (uint32_t)l.qparams[EGRU_QP_IN_SCALE];
    if ((s = egru_model_layer(model, model->layer_count - 1u, &l)) != EGRU_OK) {
        return s;
    }
    *output_scale_bits = (uint32_t)l.qparams[EGRU_QP_OUT_SCALE];
    return EGRU_OK;
}

egru_status_t egru_forward_tokens_s16(const egru_model_t *model, const int32_t *ids, uint32_t batch,
                                      uint32_t seq_len, int16_t *out, size_t out_count, void *arena,
                                      size_t arena_bytes)
{
    egru_s16_plan_t p;
    egru_s16_seq_plan_t q;
    size_t i, n;
    egru_status_t s = check_call(model, EGRU_INPUT_TOKENS, ids, batch, seq_len, out, out_count,
                                 arena, arena_bytes, &p, &q);
    if (s != EGRU_OK) {
        return s;
    }
    n = (size_t)batch * seq_len; /* up front, so that `out` stays untouched on a bad id */
    for (i = 0; i < n; ++i) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= model->input_dim) {
            return EGRU_ERR_TOKEN_RANGE;
        }
    }
    return EGRU_S16_SEQUENCE_PLAN && p.sequence
               ? egru_s16_run_sequence(model, &q, ids, NULL, NULL, batch, seq_len, out, arena)
               : run(model, &p, ids, NULL, NULL, batch, seq_len, out, arena);
}

egru_status_t egru_forward_features_s16(const egru_model_t *model, const int16_t *x,
                                        const uint8_t *valid, uint32_t batch, uint32_t seq_len,
                                        int16_t *out, size_t out_count, void *arena,
                                        size_t arena_bytes)
{
    egru_s16_plan_t p;
    egru_s16_seq_plan_t q;
    egru_layer_t first;
    egru_status_t s = check_call(model, EGRU_INPUT_FEATURES, x, batch, seq_len, out, out_count,
                                 arena, arena_bytes, &p, &q);
    if (s != EGRU_OK) {
        return s;
    }
    (void)egru_model_layer(model, 0, &first);
    if (first.op != EGRU_OP_MASKING) {
        valid = NULL;
    }
    return EGRU_S16_SEQUENCE_PLAN && p.sequence
               ? egru_s16_run_sequence(model, &q, NULL, x, valid, batch, seq_len, out, arena)
               : run(model, &p, NULL, x, valid, batch, seq_len, out, arena);
}

#else /* EGRU_CFG_INT16X8 0: the API refuses every call */

egru_status_t egru_s16_arena_size(const egru_model_t *model, uint32_t seq_len, size_t *arena_bytes)
{
    (void)model;
    (void)seq_len;
    (void)arena_bytes;
    return EGRU_ERR_UNSUPPORTED;
}

egru_status_t egru_s16_out_steps(const egru_model_t *model, uint32_t seq_len, uint32_t *steps)
{
    (void)model;
    (void)seq_len;
    (void)steps;
    return EGRU_ERR_UNSUPPORTED;
}

egru_status_t egru_model_scales(const egru_model_t *model, uint32_t *input_scale_bits,
                                uint32_t *output_scale_bits)
{
    (void)model;
    (void)input_scale_bits;
    (void)output_scale_bits;
    return EGRU_ERR_UNSUPPORTED;
}

egru_status_t egru_forward_tokens_s16(const egru_model_t *model, const int32_t *ids, uint32_t batch,
                                      uint32_t seq_len, int16_t *out, size_t out_count, void *arena,
                                      size_t arena_bytes)
{
    (void)model;
    (void)ids;
    (void)batch;
    (void)seq_len;
    (void)out;
    (void)out_count;
    (void)arena;
    (void)arena_bytes;
    return EGRU_ERR_UNSUPPORTED;
}

egru_status_t egru_forward_features_s16(const egru_model_t *model, const int16_t *x,
                                        const uint8_t *valid, uint32_t batch, uint32_t seq_len,
                                        int16_t *out, size_t out_count, void *arena,
                                        size_t arena_bytes)
{
    (void)model;
    (void)x;
    (void)valid;
    (void)batch;
    (void)seq_len;
    (void)out;
    (void)out_count;
    (void)arena;
    (void)arena_bytes;
    return EGRU_ERR_UNSUPPORTED;
}

#endif
