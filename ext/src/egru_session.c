/*
 * egru_session.c - streaming: the layer chain run one time step at a time, with every recurrent
 * layer's state carried in caller memory between steps (docs/streaming.md).
 *
 * Session memory, each region starting at a multiple of SESSION_ALIGN (16 bytes):
 *
 *   [ model ][ states ][ step A ][ step B ][ cell scratch ][ mask: batch bytes ]
 *
 * model: a copy of the egru_model_t as it was at init (kernel set, fold, pack), so that the
 * session runs as it was set up whatever is done to the caller's model later; each step decodes
 * its layers from it (a few hundred instructions per layer, no memory per layer). The states
 * hold, for each recurrent layer in model order, egru_rnn_state_floats(layer, batch) floats: h
 * (batch, H), for LSTM c (batch, H), then the rows' "valid step seen" flags (batch). Layer k
 * writes step A (k even) or step B (k odd), each sized for the widest output written there,
 * (batch, width); the last layer writes the caller's output and a features model's first layer
 * reads the caller's input. Every layer runs all rows in one call: a (batch, width) block is
 * `batch` steps of one row for the per-step layers, and `batch` rows of one step for the
 * recurrent ones.
 *
 * int16x8 models (quant_version 2) get their own layout and steps (int16x8/egru_session_s16.c):
 * check, size, init and reset dispatch there; the float step, state and snapshot functions
 * refuse their sessions (EGRU_ERR_WRONG_DTYPE), which session->s16 marks.
 */
#include <math.h>
#include <string.h>

#include "egru_internal.h"
#include "int16x8/egru_session_s16.h"
#include "layers/egru_layers.h"

#define FLOAT_LIMIT   (1ull << 58)
#define SESSION_ALIGN 16u
#define ALIGN_UP(n)   (((n) + (SESSION_ALIGN - 1)) & ~(uint64_t)(SESSION_ALIGN - 1))

static int is_recurrent(egru_op_t op)
{
    return op == EGRU_OP_GRU || op == EGRU_OP_LSTM || op == EGRU_OP_SIMPLE_RNN;
}

egru_status_t egru_session_check(const egru_model_t *model, uint32_t *layer_index)
{
    egru_layer_t layer;
    uint32_t k;
    if (!model) {
        return EGRU_ERR_NULL_ARG;
    }
    if (model->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER; /* not initialised */
    }
    if (model->quant_version == EGRU_QUANT_VERSION_INT16X8) {
        return egru_s16_session_check(model, layer_index); /* an allow-list of its own */
    }
    if (!EGRU_CFG_FLOAT || model->input_kind == EGRU_INPUT_GRAPH) {
        return EGRU_ERR_UNSUPPORTED; /* an integer-only build (egru_features.h) */
    }
    for (k = 0; k < model->layer_count; ++k) {
        (void)egru_model_layer(model, k, &layer); /* validated by egru_model_init */
        if (layer.op == EGRU_OP_CONV1D || layer.op == EGRU_OP_GLOBAL_POOL ||
            layer.op == EGRU_OP_FLATTEN ||
            (layer.flags & (EGRU_FLAG_BIDIRECTIONAL | EGRU_FLAG_GO_BACKWARDS))) {
            if (layer_index) {
                *layer_index = k;
            }
            return EGRU_ERR_UNSUPPORTED;
        }
    }
    return EGRU_OK;
}

/* Byte offsets of the regions (from the aligned start), and the total with alignment slack. */
typedef struct layout {
    uint64_t state, buf_a, buf_b, scratch, mask, total;
    uint64_t state_count;
    uint32_t rnn_count;
} layout_t;

/* Counts in floats stay below 2^58 and are multiplied by a uint32 batch only after a check that
 * they fit 32 bits, so no count wraps in uint64_t; there is no 64-bit division (which a 32-bit
 * core would call a library routine for). */
static egru_status_t plan(const egru_model_t *m, uint32_t batch, layout_t *l)
{
    egru_layer_t layer;
    uint64_t scratch = 0, state_count = 0, blocks = 0; /* blocks: state floats per row */
    uint64_t width[2] = {0, 0};                        /* step A, step B: floats per row */
    uint32_t k;
    egru_status_t s = egru_session_check(m, NULL);
    memset(l, 0, sizeof *l);
    if (s != EGRU_OK) {
        return s;
    }
    if (batch == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    for (k = 0; k < m->layer_count; ++k) {
        (void)egru_model_layer(m, k, &layer);
        if (is_recurrent(layer.op)) {
            const uint64_t need = egru_rnn_scratch_floats(&layer, batch, 1u, 1u);
            scratch = need > scratch ? need : scratch;
            blocks += egru_rnn_state_floats(&layer, 1u);
            state_count += (uint64_t)batch * egru_rnn_cell_floats(&layer);
            l->rnn_count++;
        }
        if (layer.op == EGRU_OP_DENSE && (layer.input_dim + 3u) / 4u > scratch) {
            scratch = (layer.input_dim + 3u) / 4u; /* int8 models quantize the input */
        }
        if (k + 1 < m->layer_count && layer.output_dim > width[k & 1u]) {
            width[k & 1u] = layer.output_dim;
        }
    }
    if (blocks > 0xFFFFFFFFu || scratch > FLOAT_LIMIT || (uint64_t)batch * blocks > FLOAT_LIMIT) {
        return EGRU_ERR_BAD_SHAPE;
    }
    l->state = ALIGN_UP((uint64_t)sizeof(egru_model_t));
    l->buf_a = l->state + ALIGN_UP((uint64_t)batch * blocks * sizeof(float));
    l->buf_b = l->buf_a + ALIGN_UP((uint64_t)batch * width[0] * sizeof(float));
    l->scratch = l->buf_b + ALIGN_UP((uint64_t)batch * width[1] * sizeof(float));
    l->mask = l->scratch + ALIGN_UP(scratch * sizeof(float));
    l->total = l->mask + ALIGN_UP((uint64_t)batch) + SESSION_ALIGN;
    if (l->total > (uint64_t)(size_t)-1) { /* the state alone is smaller than the total */
        return EGRU_ERR_BAD_SHAPE;
    }
    l->state_count = state_count;
    return EGRU_OK;
}

egru_status_t egru_session_size(const egru_model_t *model, uint32_t batch, size_t *bytes)
{
    layout_t l;
    egru_status_t s;
    if (!model || !bytes) {
        return EGRU_ERR_NULL_ARG;
    }
    if (model->layer_count != 0 && model->quant_version == EGRU_QUANT_VERSION_INT16X8) {
        return egru_s16_session_size(model, batch, bytes);
    }
    if (!EGRU_CFG_FLOAT) {
        return EGRU_ERR_UNSUPPORTED; /* an integer-only build links no float session code */
    }
    if ((s = plan(model, batch, &l)) != EGRU_OK) {
        return s;
    }
    *bytes = (size_t)l.total;
    return EGRU_OK;
}

/* Zero every state block (cell state and seen flag). */
static void zero_state(egru_session_t *s)
{
    size_t floats = 0;
    uint32_t k;
    egru_layer_t layer;
    for (k = 0; k < s->frozen->layer_count; ++k) {
        (void)egru_model_layer(s->frozen, k, &layer);
        if (is_recurrent(layer.op)) {
            floats += (size_t)egru_rnn_state_floats(&layer, s->batch);
        }
    }
    memset(s->state, 0, floats * sizeof(float));
    s->steps = 0;
}

egru_status_t egru_session_init(egru_session_t *session, const egru_model_t *model, uint32_t batch,
                                void *mem, size_t bytes)
{
    layout_t l;
    uint8_t *base;
    egru_status_t s;
    if (!session) {
        return EGRU_ERR_NULL_ARG;
    }
    memset(session, 0, sizeof *session);
    if (!model || !mem) {
        return EGRU_ERR_NULL_ARG;
    }
    if (model->layer_count != 0 && model->quant_version == EGRU_QUANT_VERSION_INT16X8) {
        return egru_s16_session_init(session, model, batch, mem, bytes);
    }
    if (!EGRU_CFG_FLOAT) {
        return EGRU_ERR_UNSUPPORTED;
    }
    if ((s = plan(model, batch, &l)) != EGRU_OK) {
        return s;
    }
    if (bytes < l.total) {
        return EGRU_ERR_ARENA_TOO_SMALL;
    }
    base = (uint8_t *)(((uintptr_t)mem + (SESSION_ALIGN - 1)) & ~(uintptr_t)(SESSION_ALIGN - 1));
    memset(base, 0, (size_t)(l.total - SESSION_ALIGN));
    session->model = model;
    session->batch = batch;
    session->output_dim = model->output_dim;
    session->rnn_count = l.rnn_count;
    session->state_count = (size_t)l.state_count;
    memcpy(base, model, sizeof *model);
    session->frozen = (const egru_model_t *)(void *)base;
    session->state = (float *)(void *)(base + l.state);
    session->bufs[0] = (float *)(void *)(base + l.buf_a);
    session->bufs[1] = (float *)(void *)(base + l.buf_b);
    session->scratch = (float *)(void *)(base + l.scratch);
    session->mask = base + l.mask;
    return EGRU_OK;
}

/* The checks every step shares. */
static egru_status_t check_step(const egru_session_t *s, uint32_t kind, const void *in,
                                const float *out, size_t out_count)
{
    if (!s || !in || !out) {
        return EGRU_ERR_NULL_ARG;
    }
    if (!s->model) {
        return EGRU_ERR_NULL_ARG; /* not initialised, or its init failed */
    }
    if (s->s16) {
        return EGRU_ERR_WRONG_DTYPE; /* int16x8: egru_session_step_*_s16 */
    }
    if (s->model->input_kind != kind) {
        return EGRU_ERR_WRONG_INPUT;
    }
    if (out_count != (size_t)s->batch * s->output_dim) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    return EGRU_OK;
}

/* Runs the chain on one step of every row. Exactly one of ids / x is non-NULL. EGRU_OK, or
 * EGRU_ERR_TOKEN_RANGE when the Embedding (always layer 0) reads an id out of range (only when
 * the caller changed the ids after the up-front check): then no state has changed and no step is
 * counted (`out` is only written when the Embedding is the last layer). */
static egru_status_t run_step(egru_session_t *s, const int32_t *ids, const float *x, float *out)
{
    const uint32_t B = s->batch, L = s->frozen->layer_count;
    const float *cur = x;
    float *state = s->state;
    uint32_t k, b;

    for (k = 0; k < L; ++k) {
        egru_layer_t decoded;
        const egru_layer_t *layer = &decoded;
        uint32_t n;
        (void)egru_model_layer(s->frozen, k, &decoded); /* validated by egru_model_init */
        n = layer->output_dim;
        float *dst = (k + 1 == L) ? out : s->bufs[k & 1u];
        switch (layer->op) {
        case EGRU_OP_EMBEDDING: {
            const egru_status_t status = egru_embedding_f32(layer, ids, B, dst, s->mask);
            if (status != EGRU_OK) {
                return status;
            }
            break;
        }
        case EGRU_OP_GRU:
        case EGRU_OP_LSTM:
        case EGRU_OP_SIMPLE_RNN: {
            const float *seen = state + (size_t)B * egru_rnn_cell_floats(layer);
            egru_rnn_f32(layer, cur, s->mask, B, 1u, 1u, dst, state, s->scratch);
            for (b = 0; b < B; ++b) {
                /* Until a valid step, a last-state output is zero (Keras' masked output starts
                 * at zero): only differs from the state after egru_session_set_state(). */
                if (seen[b] == 0.0f) {
                    memset(dst + (size_t)b * n, 0, (size_t)n * sizeof(float));
                }
            }
            state += egru_rnn_state_floats(layer, B);
            break;
        }
        case EGRU_OP_DENSE: egru_dense_f32(layer, cur, B, dst, (int8_t *)(void *)s->scratch); break;
        case EGRU_OP_AFFINE: egru_affine_f32(layer, cur, B, dst); break;
        case EGRU_OP_LAYER_NORM: egru_layer_norm_f32(layer, cur, B, dst); break;
        case EGRU_OP_ACTIVATION:
            memcpy(dst, cur, (size_t)B * n * sizeof(float));
            for (b = 0; b < B; ++b) {
                egru_activate_f32(layer, layer->activation, dst + (size_t)b * n, n);
            }
            break;
        case EGRU_OP_MASKING: egru_masking_f32(layer, cur, B, dst, s->mask); break;
        default: break; /* CONV1D, GLOBAL_POOL, FLATTEN: rejected by egru_session_check */
        }
        cur = dst;
    }
    s->steps++;
    return EGRU_OK;
}

egru_status_t egru_session_step_tokens(egru_session_t *session, const int32_t *ids, float *out,
                                       size_t out_count)
{
    uint32_t b;
    egru_status_t s = check_step(session, EGRU_INPUT_TOKENS, ids, out, out_count);
    if (s != EGRU_OK) {
        return s;
    }
    /* Checked up front so that nothing changes on a bad id; the Embedding checks each id again
     * where it reads it (the caller's ids may change during the call). */
    for (b = 0; b < session->batch; ++b) {
        if (ids[b] < 0 || (uint32_t)ids[b] >= session->model->input_dim) {
            return EGRU_ERR_TOKEN_RANGE;
        }
    }
    return run_step(session, ids, NULL, out);
}

egru_status_t egru_session_step_features(egru_session_t *session, const float *x, float *out,
                                         size_t out_count)
{
    size_t i, n;
    egru_status_t s = check_step(session, EGRU_INPUT_FEATURES, x, out, out_count);
    if (s != EGRU_OK) {
        return s;
    }
    n = (size_t)session->batch * session->model->input_dim;
    for (i = 0; i < n; ++i) {
        if (!isfinite(x[i])) {
            return EGRU_ERR_NONFINITE;
        }
    }
    return run_step(session, NULL, x, out);
}

egru_status_t egru_session_reset(egru_session_t *session)
{
    if (!session || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    if (session->s16) {
        egru_s16_session_reset(session);
        return EGRU_OK;
    }
    zero_state(session);
    return EGRU_OK;
}

egru_status_t egru_session_state_size(const egru_session_t *session, size_t *count)
{
    if (!session || !count || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    *count = session->state_count;
    return EGRU_OK;
}

/* Copies between the flat public layout (per layer, per part, (batch, units)) and the states
 * (per layer: the same parts, then the seen flags): into `flat` when it is not NULL, else from
 * `from` into the states, clearing the seen flags. */
static void copy_state(const egru_session_t *s, float *flat, const float *from)
{
    float *state = s->state;
    uint32_t k;
    for (k = 0; k < s->frozen->layer_count; ++k) {
        egru_layer_t decoded;
        const egru_layer_t *layer = &decoded;
        size_t cells;
        (void)egru_model_layer(s->frozen, k, &decoded);
        if (!is_recurrent(layer->op)) {
            continue;
        }
        cells = (size_t)s->batch * egru_rnn_cell_floats(layer);
        if (flat) {
            memcpy(flat, state, cells * sizeof(float));
            flat += cells;
        } else {
            memcpy(state, from, cells * sizeof(float));
            memset(state + cells, 0, (size_t)s->batch * sizeof(float));
            from += cells;
        }
        state += egru_rnn_state_floats(layer, s->batch);
    }
}

egru_status_t egru_session_get_state(const egru_session_t *session, float *state, size_t count)
{
    if (!session || !state || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    if (session->s16) {
        return EGRU_ERR_WRONG_DTYPE; /* int16x8: egru_session_get_state_s16 */
    }
    if (count != session->state_count) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    copy_state(session, state, NULL);
    return EGRU_OK;
}

egru_status_t egru_session_set_state(egru_session_t *session, const float *state, size_t count)
{
    size_t i;
    if (!session || !state || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    if (session->s16) {
        return EGRU_ERR_WRONG_DTYPE; /* int16x8: egru_session_set_state_s16 */
    }
    if (count != session->state_count) {
        return EGRU_ERR_BAD_SHAPE;
    }
    for (i = 0; i < count; ++i) {
        if (!isfinite(state[i])) {
            return EGRU_ERR_NONFINITE;
        }
    }
    copy_state(session, NULL, state);
    return EGRU_OK;
}

/* The state region is one block: per recurrent layer its cells, then its seen flags (see the
 * layout at the top); a snapshot is that block as it is. */
egru_status_t egru_session_snapshot_size(const egru_session_t *session, size_t *count)
{
    if (!session || !count || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    *count = session->state_count + (size_t)session->rnn_count * session->batch;
    return EGRU_OK;
}

egru_status_t egru_session_save(const egru_session_t *session, float *snapshot, size_t count)
{
    size_t n = 0;
    egru_status_t s = egru_session_snapshot_size(session, &n);
    if (s != EGRU_OK || !snapshot) {
        return EGRU_ERR_NULL_ARG;
    }
    if (session->s16) {
        return EGRU_ERR_WRONG_DTYPE; /* int16x8: egru_session_save_s16 */
    }
    if (count != n) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    memcpy(snapshot, session->state, n * sizeof(float));
    return EGRU_OK;
}

egru_status_t egru_session_restore(egru_session_t *session, const float *snapshot, size_t count,
                                   uint64_t steps)
{
    size_t n = 0, pos = 0, i;
    uint32_t k;
    egru_status_t s = egru_session_snapshot_size(session, &n);
    if (s != EGRU_OK || !snapshot) {
        return EGRU_ERR_NULL_ARG;
    }
    if (session->s16) {
        return EGRU_ERR_WRONG_DTYPE; /* int16x8: egru_session_restore_s16 */
    }
    if (count != n) {
        return EGRU_ERR_BAD_SHAPE;
    }
    for (k = 0; k < session->frozen->layer_count; ++k) {
        egru_layer_t decoded;
        const egru_layer_t *layer = &decoded;
        size_t cells;
        (void)egru_model_layer(session->frozen, k, &decoded);
        if (!is_recurrent(layer->op)) {
            continue;
        }
        cells = (size_t)session->batch * egru_rnn_cell_floats(layer);
        for (i = 0; i < cells; ++i) {
            if (!isfinite(snapshot[pos + i])) {
                return EGRU_ERR_NONFINITE;
            }
        }
        for (i = cells; i < cells + session->batch; ++i) {
            if (snapshot[pos + i] != 0.0f && snapshot[pos + i] != 1.0f) {
                return EGRU_ERR_BAD_SHAPE;
            }
        }
        pos += cells + session->batch;
    }
    memcpy(session->state, snapshot, n * sizeof(float));
    session->steps = steps;
    return EGRU_OK;
}
