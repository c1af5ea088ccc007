/*
 * egru_session_s16.c - streaming sessions of int16x8 models (quant_version 2): the integer-only
 * layer chain run one time step at a time, every recurrent layer's state carried in caller memory
 * between steps (docs/streaming.md, "int16x8"). No floating-point operation.
 *
 * A step runs, for each batch row, the forward pass's one-row, one-step chain
 * (egru_s16_run_layers, egru_forward_s16.c) on that row's states, so a step's output is exactly
 * (bit for bit) what egru_forward_*_s16 gives for the steps fed so far, at the last one. The chain
 * is run in segments that each end at a recurrent layer, so that between two segments the
 * session can keep the rows' "valid step seen" flags as the float sessions do: until a row has
 * had a valid (unmasked) step since init, reset or set_state, a recurrent layer outputs zero for
 * it on a masked step (Keras' masked output starts from zero, not from the state). From the zero
 * state this is the forward pass's output anyway (the kept state is still zero); it matters only
 * after egru_session_set_state_s16.
 *
 * Session memory, each region starting at a multiple of SESSION_ALIGN (16 bytes) from the first
 * such address in the caller's memory:
 *
 *   [ model ][ private ][ rnn table ][ states ][ seen ][ ids ][ zeros ][ scratch ]
 *
 *   model     a copy of the egru_model_t as at init (its kernel set)
 *   private   s16_session_t below: the plan and the regions' addresses
 *   rnn table one rnn_slot_t per recurrent layer, in model order
 *   states    batch rows of row_words int32 each: per recurrent layer in model order h (units
 *             int16, rounded up to an even count) then an LSTM's c (units int32, in G): the
 *             forward pass's state layout (egru_s16_state_words), one copy per row
 *   seen      rnn_count * batch bytes, 0 or 1: layer r's flag of row b at r * batch + b
 *   ids       batch int32: the step's token ids, copied once and checked on the copy (so another
 *             thread changing the caller's ids cannot put an unchecked id into the chain)
 *   zeros     max_units int16, always 0: a recurrent layer's output before the row's first
 *             valid step
 *   scratch   the forward plan's step regions (egru_s16_make_plan: two step buffers, the gate
 *             sums, GRU's r * h), shared by the rows, which run one after the other
 *
 * Nothing in it depends on the number of steps; only states, seen and ids grow with the batch.
 */
#include <string.h>

#include "egru_s16_internal.h"
#include "egru_session_s16.h"

#if EGRU_CFG_INT16X8

#define SESSION_ALIGN 16u
#define ALIGN_UP(n)   (((n) + (SESSION_ALIGN - 1)) & ~(uint64_t)(SESSION_ALIGN - 1))
#define COUNT_LIMIT   (1ull << 58) /* every count stays below it, so no uint64_t sum wraps */

/* One recurrent layer of the chain. */
typedef struct rnn_slot {
    uint32_t index;  /* layer index                                               */
    uint32_t units;  /* H                                                         */
    uint32_t lstm;   /* 1: the state is h then c                                  */
    uint32_t masked; /* EGRU_FLAG_MASKED: a masked step keeps the state           */
    uint32_t offset; /* int32 words from a row's first state word to this layer's h */
} rnn_slot_t;

/* The private part of an int16x8 session (egru_session_t.s16 points at it). */
typedef struct s16_session {
    egru_s16_plan_t plan;
    uint32_t rnn_count, row_words; /* recurrent layers; int32 state words of one row */
    uint32_t first_masking;        /* layer 0 is a Masking layer (the `valid` bytes apply) */
    const rnn_slot_t *rnn;
    int32_t *states;
    uint8_t *seen;
    int32_t *ids;
    const int16_t *zeros;
    uint8_t *scratch;
} s16_session_t;

/* Byte offsets of the regions from the aligned start, and the total with alignment slack. */
typedef struct layout {
    uint64_t priv, rnn, states, seen, ids, zeros, scratch, total;
    uint64_t state_count, row_words;
    uint32_t rnn_count;
    egru_s16_plan_t plan;
} layout_t;

static int32_t *words_at(uint8_t *p)
{
    return (int32_t *)(void *)p;
}

egru_status_t egru_s16_session_check(const egru_model_t *model, uint32_t *layer_index)
{
    egru_layer_t l;
    uint32_t k;
    int ended = 0; /* a recurrent layer without RETURN_SEQUENCES has been seen */
    if (model->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER; /* not initialised */
    }
    for (k = 0; k < model->layer_count; ++k) {
        int ok;
        (void)egru_model_layer(model, k, &l); /* validated by egru_model_init */
        switch (l.op) {
        case EGRU_OP_EMBEDDING:
        case EGRU_OP_MASKING:
        case EGRU_OP_DENSE:
        case EGRU_OP_ACTIVATION:
        case EGRU_OP_AFFINE:
        case EGRU_OP_LAYER_NORM: ok = 1; break; /* per step: egru_s16_step_layer */
        case EGRU_OP_GRU:
        case EGRU_OP_LSTM:
        case EGRU_OP_SIMPLE_RNN:
            /* one direction, forwards; a recurrent layer after the one that ends the sequence
             * would run once per sequence in the forward pass, not once per step */
            ok = !ended && !(l.flags & (EGRU_FLAG_BIDIRECTIONAL | EGRU_FLAG_GO_BACKWARDS));
            ended = ended || !(l.flags & EGRU_FLAG_RETURN_SEQUENCES);
            break;
        default: ok = 0; break; /* an allow-list: Conv1D, GlobalPool, Flatten, any newer op */
        }
        if (!ok) {
            if (layer_index) {
                *layer_index = k;
            }
            return EGRU_ERR_UNSUPPORTED;
        }
    }
    return EGRU_OK;
}

static egru_status_t plan(const egru_model_t *m, uint32_t batch, layout_t *lo)
{
    egru_layer_t l;
    uint32_t k;
    egru_status_t s = egru_s16_session_check(m, NULL);
    memset(lo, 0, sizeof *lo);
    if (s != EGRU_OK) {
        return s;
    }
    if (batch == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if ((s = egru_s16_make_plan(m, &lo->plan)) != EGRU_OK) {
        return s;
    }
    for (k = 0; k < m->layer_count; ++k) {
        (void)egru_model_layer(m, k, &l);
        if (egru_s16_is_rnn(l.op)) {
            lo->row_words += egru_s16_state_words(&l);
            lo->state_count += (uint64_t)(l.op == EGRU_OP_LSTM ? 2u : 1u) * l.units * batch;
            lo->rnn_count++;
        }
    }
    if (lo->row_words > 0xFFFFFFFFu || (uint64_t)batch * lo->row_words > COUNT_LIMIT) {
        return EGRU_ERR_BAD_SHAPE;
    }
    lo->priv = ALIGN_UP((uint64_t)sizeof(egru_model_t));
    lo->rnn = lo->priv + ALIGN_UP((uint64_t)sizeof(s16_session_t));
    lo->states = lo->rnn + ALIGN_UP((uint64_t)lo->rnn_count * sizeof(rnn_slot_t));
    lo->seen = lo->states + ALIGN_UP((uint64_t)batch * lo->row_words * sizeof(int32_t));
    lo->ids = lo->seen + ALIGN_UP((uint64_t)lo->rnn_count * batch);
    lo->zeros = lo->ids + ALIGN_UP((uint64_t)batch * sizeof(int32_t));
    lo->scratch = lo->zeros + ALIGN_UP((uint64_t)(lo->plan.units + 1u) * sizeof(int16_t));
    lo->total = lo->scratch + ALIGN_UP((uint64_t)lo->plan.off_state) + SESSION_ALIGN;
    if (lo->total > (uint64_t)(size_t)-1) {
        return EGRU_ERR_BAD_SHAPE;
    }
    return EGRU_OK;
}

egru_status_t egru_s16_session_size(const egru_model_t *model, uint32_t batch, size_t *bytes)
{
    layout_t lo;
    egru_status_t s = plan(model, batch, &lo);
    if (s == EGRU_OK) {
        *bytes = (size_t)lo.total;
    }
    return s;
}

egru_status_t egru_s16_session_init(egru_session_t *session, const egru_model_t *model,
                                    uint32_t batch, void *mem, size_t bytes)
{
    layout_t lo;
    uint8_t *base;
    s16_session_t *q;
    rnn_slot_t *slots;
    egru_layer_t l;
    uint32_t k, r = 0, offset = 0;
    egru_status_t s = plan(model, batch, &lo);
    if (s != EGRU_OK) {
        return s;
    }
    if (bytes < lo.total) {
        return EGRU_ERR_ARENA_TOO_SMALL;
    }
    base = (uint8_t *)(((uintptr_t)mem + (SESSION_ALIGN - 1)) & ~(uintptr_t)(SESSION_ALIGN - 1));
    memset(base, 0, (size_t)(lo.total - SESSION_ALIGN));
    memcpy(base, model, sizeof *model);
    q = (s16_session_t *)(void *)(base + lo.priv);
    slots = (rnn_slot_t *)(void *)(base + lo.rnn);
    q->plan = lo.plan;
    q->rnn_count = lo.rnn_count;
    q->row_words = (uint32_t)lo.row_words;
    q->rnn = slots;
    q->states = words_at(base + lo.states);
    q->seen = base + lo.seen;
    q->ids = words_at(base + lo.ids);
    q->zeros = (const int16_t *)(const void *)(base + lo.zeros);
    q->scratch = base + lo.scratch;
    for (k = 0; k < model->layer_count; ++k) {
        (void)egru_model_layer(model, k, &l);
        if (k == 0) {
            q->first_masking = l.op == EGRU_OP_MASKING;
        }
        if (egru_s16_is_rnn(l.op)) {
            slots[r].index = k;
            slots[r].units = l.units;
            slots[r].lstm = l.op == EGRU_OP_LSTM;
            slots[r].masked = (l.flags & EGRU_FLAG_MASKED) != 0;
            slots[r].offset = offset;
            offset += (uint32_t)egru_s16_state_words(&l);
            ++r;
        }
    }
    session->model = model;
    session->batch = batch;
    session->output_dim = model->output_dim;
    session->rnn_count = lo.rnn_count;
    session->state_count = (size_t)lo.state_count;
    session->steps = 0;
    session->frozen = (const egru_model_t *)(void *)base;
    session->s16 = q;
    return EGRU_OK;
}

void egru_s16_session_reset(egru_session_t *session)
{
    s16_session_t *q = (s16_session_t *)session->s16;
    memset(q->states, 0, (size_t)session->batch * q->row_words * sizeof(int32_t));
    memset(q->seen, 0, (size_t)q->rnn_count * session->batch);
    session->steps = 0;
}

/* The checks every integer function shares: an initialised int16x8 session. */
static egru_status_t check_session(const egru_session_t *s)
{
    if (!s || !s->model) {
        return EGRU_ERR_NULL_ARG; /* NULL, not initialised, or its init failed */
    }
    return s->s16 ? EGRU_OK : EGRU_ERR_WRONG_DTYPE; /* float sessions: the float functions */
}

static egru_status_t check_step(const egru_session_t *s, uint32_t kind, const void *in,
                                const int16_t *out, size_t out_count)
{
    egru_status_t st;
    if (!s || !in || !out) {
        return EGRU_ERR_NULL_ARG;
    }
    if ((st = check_session(s)) != EGRU_OK) {
        return st;
    }
    if (s->frozen->input_kind != kind) {
        return EGRU_ERR_WRONG_INPUT;
    }
    return out_count == (size_t)s->batch * s->output_dim ? EGRU_OK : EGRU_ERR_OUTPUT_SIZE;
}

/* One step of row b: x its int16 features (NULL for a token model, then `id`), valid its
 * validity byte for a first Masking layer (or NULL); writes output_dim values to out. */
static void run_row(const egru_session_t *s, const s16_session_t *q, uint32_t b, const int16_t *x,
                    int32_t id, const uint8_t *valid, int16_t *out)
{
    const egru_model_t *m = s->frozen;
    const egru_s16_plan_t *p = &q->plan;
    int32_t *states = q->states + (size_t)b * q->row_words;
    egru_s16_row_ctx_t c;
    const int16_t *cur = NULL;
    uint32_t r, from = 0;
    int ok = 1;
    c.cache = NULL, c.cache_from = 0, c.cache_count = 0; /* every layer decoded per step */
    c.m = m;
    c.buf[0] = (int16_t *)(void *)q->scratch;
    c.buf[1] = (int16_t *)(void *)(q->scratch + p->off_buf1);
    c.gx = words_at(q->scratch + p->off_gx);
    c.gh = words_at(q->scratch + p->off_gh);
    c.rh = (int16_t *)(void *)(q->scratch + p->off_rh);
    c.state = states;
    if (x) { /* copied as the forward pass does: -32768 reads as -32767; read once */
        uint32_t j;
        for (j = 0; j < m->input_dim; ++j) {
            const int16_t v = x[j];
            c.buf[1][j] = v < -EGRU_Q16_QMAX ? (int16_t)-EGRU_Q16_QMAX : v;
        }
        cur = c.buf[1];
    }
    /* Segments [from, recurrent layer]: each starts from the input copy (in buf[1]), a state or
     * the zeros, never from buf[0], the first buffer a segment writes. */
    for (r = 0; r < q->rnn_count; ++r) {
        const rnn_slot_t *slot = &q->rnn[r];
        uint8_t *seen = q->seen + (size_t)r * s->batch + b;
        cur = egru_s16_run_layers(&c, from, slot->index + 1u, cur, id, &ok, states + slot->offset,
                                  valid, m->layer_count, 1);
        if (!slot->masked || ok) {
            *seen = 1;
        }
        if (!*seen) {
            cur = q->zeros;
        }
        from = slot->index + 1u;
    }
    if (from < m->layer_count) { /* per-step layers after the last recurrent one, or a head */
        cur = egru_s16_run_layers(&c, from, m->layer_count, cur, id, &ok, states, valid,
                                  m->layer_count, 1);
    }
    memcpy(out, cur, (size_t)s->output_dim * sizeof *out);
}

egru_status_t egru_session_step_tokens_s16(egru_session_t *session, const int32_t *ids,
                                           int16_t *out, size_t out_count)
{
    s16_session_t *q;
    uint32_t b;
    egru_status_t s = check_step(session, EGRU_INPUT_TOKENS, ids, out, out_count);
    if (s != EGRU_OK) {
        return s;
    }
    q = (s16_session_t *)session->s16;
    for (b = 0; b < session->batch; ++b) {
        q->ids[b] = ids[b];
    }
    for (b = 0; b < session->batch; ++b) { /* on the copy: nothing changes on a bad id */
        if (q->ids[b] < 0 || (uint32_t)q->ids[b] >= session->frozen->input_dim) {
            return EGRU_ERR_TOKEN_RANGE;
        }
    }
    for (b = 0; b < session->batch; ++b) {
        run_row(session, q, b, NULL, q->ids[b], NULL, out + (size_t)b * session->output_dim);
    }
    session->steps++;
    return EGRU_OK;
}

egru_status_t egru_session_step_features_s16(egru_session_t *session, const int16_t *x,
                                             const uint8_t *valid, int16_t *out, size_t out_count)
{
    const s16_session_t *q;
    uint32_t b;
    egru_status_t s = check_step(session, EGRU_INPUT_FEATURES, x, out, out_count);
    if (s != EGRU_OK) {
        return s;
    }
    q = (const s16_session_t *)session->s16;
    if (!q->first_masking) {
        valid = NULL; /* as egru_forward_features_s16: only a first Masking layer reads it */
    }
    for (b = 0; b < session->batch; ++b) {
        run_row(session, q, b, x + (size_t)b * session->frozen->input_dim, 0,
                valid ? valid + b : NULL, out + (size_t)b * session->output_dim);
    }
    session->steps++;
    return EGRU_OK;
}

/* Copies between the flat public layout (per recurrent layer, per part h then c, (batch, units)
 * int32; with `seen`, the layer's batch flags after its parts) and the per-row states: into
 * `flat` when it is not NULL, else from `from`. Values are not checked here. */
static void copy_states(const egru_session_t *s, const s16_session_t *q, int32_t *flat,
                        const int32_t *from, int seen)
{
    uint32_t r, b, j;
    size_t pos = 0;
    for (r = 0; r < q->rnn_count; ++r) {
        const rnn_slot_t *slot = &q->rnn[r];
        const uint32_t H = slot->units, hw = (H + 1u) / 2u;
        uint8_t *flags = q->seen + (size_t)r * s->batch;
        for (b = 0; b < s->batch; ++b) {
            int16_t *h = (int16_t *)(void *)(q->states + (size_t)b * q->row_words + slot->offset);
            for (j = 0; j < H; ++j, ++pos) {
                if (flat) {
                    flat[pos] = h[j];
                } else {
                    h[j] = (int16_t)from[pos];
                }
            }
        }
        for (b = 0; slot->lstm && b < s->batch; ++b) {
            int32_t *c = q->states + (size_t)b * q->row_words + slot->offset + hw;
            if (flat) {
                memcpy(flat + pos, c, H * sizeof(int32_t));
            } else {
                memcpy(c, from + pos, H * sizeof(int32_t));
            }
            pos += H;
        }
        if (seen) {
            for (b = 0; b < s->batch; ++b, ++pos) {
                if (flat) {
                    flat[pos] = flags[b];
                } else {
                    flags[b] = (uint8_t)(from[pos] != 0);
                }
            }
        } else if (!flat) {
            memset(flags, 0, s->batch); /* a set state acts as Keras' initial_state */
        }
    }
}

/* Every value of a flat state (with `seen`: a snapshot) in its range: h in [-32767, 32767] (the
 * int16 tensors' symmetric range), c in G ([-2^30, 2^30]), flags 0 or 1. */
static int values_ok(const egru_session_t *s, const s16_session_t *q, const int32_t *v, int seen)
{
    uint32_t r;
    size_t pos = 0, i;
    for (r = 0; r < q->rnn_count; ++r) {
        const rnn_slot_t *slot = &q->rnn[r];
        const size_t cells = (size_t)s->batch * slot->units;
        for (i = 0; i < cells; ++i, ++pos) {
            if (v[pos] < -EGRU_Q16_QMAX || v[pos] > EGRU_Q16_QMAX) {
                return 0;
            }
        }
        for (i = 0; slot->lstm && i < cells; ++i, ++pos) {
            if (v[pos] < -EGRU_Q16_G_SAT || v[pos] > EGRU_Q16_G_SAT) {
                return 0;
            }
        }
        for (i = 0; seen && i < s->batch; ++i, ++pos) {
            if (v[pos] != 0 && v[pos] != 1) {
                return 0;
            }
        }
    }
    return 1;
}

egru_status_t egru_session_get_state_s16(const egru_session_t *session, int32_t *state,
                                         size_t count)
{
    egru_status_t s = check_session(session);
    if (s != EGRU_OK || !state) {
        return s != EGRU_OK ? s : EGRU_ERR_NULL_ARG;
    }
    if (count != session->state_count) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    copy_states(session, (const s16_session_t *)session->s16, state, NULL, 0);
    return EGRU_OK;
}

egru_status_t egru_session_set_state_s16(egru_session_t *session, const int32_t *state,
                                         size_t count)
{
    egru_status_t s = check_session(session);
    if (s != EGRU_OK || !state) {
        return s != EGRU_OK ? s : EGRU_ERR_NULL_ARG;
    }
    if (count != session->state_count ||
        !values_ok(session, (const s16_session_t *)session->s16, state, 0)) {
        return EGRU_ERR_BAD_SHAPE;
    }
    copy_states(session, (const s16_session_t *)session->s16, NULL, state, 0);
    return EGRU_OK;
}

egru_status_t egru_session_save_s16(const egru_session_t *session, int32_t *snapshot, size_t count)
{
    egru_status_t s = check_session(session);
    if (s != EGRU_OK || !snapshot) {
        return s != EGRU_OK ? s : EGRU_ERR_NULL_ARG;
    }
    if (count != session->state_count + (size_t)session->rnn_count * session->batch) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    copy_states(session, (const s16_session_t *)session->s16, snapshot, NULL, 1);
    return EGRU_OK;
}

egru_status_t egru_session_restore_s16(egru_session_t *session, const int32_t *snapshot,
                                       size_t count, uint64_t steps)
{
    egru_status_t s = check_session(session);
    if (s != EGRU_OK || !snapshot) {
        return s != EGRU_OK ? s : EGRU_ERR_NULL_ARG;
    }
    if (count != session->state_count + (size_t)session->rnn_count * session->batch ||
        !values_ok(session, (const s16_session_t *)session->s16, snapshot, 1)) {
        return EGRU_ERR_BAD_SHAPE;
    }
    copy_states(session, (const s16_session_t *)session->s16, NULL, snapshot, 1);
    session->steps = steps;
    return EGRU_OK;
}

#else /* EGRU_CFG_INT16X8 0: int16x8 models are refused at init; every call here refuses too */

egru_status_t egru_s16_session_check(const egru_model_t *model, uint32_t *layer_index)
{
    (void)model;
    (void)layer_index;
    return EGRU_ERR_UNSUPPORTED;
}

egru_status_t egru_s16_session_size(const egru_model_t *model, uint32_t batch, size_t *bytes)
{
    (void)model;
    (void)batch;
    (void)bytes;
    return EGRU_ERR_UNSUPPORTED;
}

egru_status_t egru_s16_session_init(egru_session_t *session, const egru_model_t *model,
                                    uint32_t batch, void *mem, size_t bytes)
{
    (void)session;
    (void)model;
    (void)batch;
    (void)mem;
    (void)bytes;
    return EGRU_ERR_UNSUPPORTED;
}

void egru_s16_session_reset(egru_session_t *session)
{
    (void)session;
}

egru_status_t egru_session_step_tokens_s16(egru_session_t *session, const int32_t *ids,
                                           int16_t *out, size_t out_count)
{
    (void)session;
    (void)ids;
    (void)out;
    (void)out_count;
    return EGRU_ERR_UNSUPPORTED;
}

egru_status_t egru_session_step_features_s16(egru_session_t *session, const int16_t *x,
                                             const uint8_t *valid, int16_t *out, size_t out_count)
{
    (void)session;
    (void)x;
    (void)valid;
    (void)out;
    (void)out_count;
    return EGRU_ERR_UNSUPPORTED;
}

egru_status_t egru_session_get_state_s16(const egru_session_t *session, int32_t *state,
                                         size_t count)
{
    (void)session;
    (void)state;
    (void)count;
    return EGRU_ERR_UNSUPPORTED;
}

egru_status_t egru_session_set_state_s16(egru_session_t *session, const int32_t *state,
                                         size_t count)
{
    (void)session;
    (void)state;
    (void)count;
    return EGRU_ERR_UNSUPPORTED;
}

egru_status_t egru_session_save_s16(const egru_session_t *session, int32_t *snapshot, size_t count)
{
    (void)session;
    (void)snapshot;
    (void)count;
    return EGRU_ERR_UNSUPPORTED;
}

egru_status_t egru_session_restore_s16(egru_session_t *session, const int32_t *snapshot,
                                       size_t count, uint64_t steps)
{
    (void)session;
    (void)snapshot;
    (void)count;
    (void)steps;
    return EGRU_ERR_UNSUPPORTED;
}

#endif /* EGRU_CFG_INT16X8 */
