/*
 * egru_graph_session.c - streaming over a graph model: every node run on one time step per
 * call, each recurrent node's state carried in caller memory between calls (edgegru.h "Graph
 * sessions", docs/streaming.md "Graphs").
 *
 * A step is egru_run's executor (egru_graph_run_node) over a plan of one step of `batch` rows,
 * made once at init (egru_graph_steps with every input at one step, egru_graph_plan): every
 * value is then (batch, width) floats, its mask (batch) bytes. Recurrent nodes run with
 * carry = 1: from their own state as the previous step left it. The layer functions compute
 * each row and step on its own (the products are batch invariant, egru_kernels.h), so a step
 * gives what the whole-sequence run gives at that step, bit for bit.
 *
 * Session memory, each region starting at a multiple of SESSION_ALIGN (16 bytes):
 *
 *   [ model ][ plan ][ inputs ][ states ][ values ][ scratch ][ ids ][ fresh ]
 *
 * model: a copy of the egru_model_t as at init. plan: an egru_gvalues_t (the value regions of
 * one step). inputs: n_inputs egru_input_t, the step's inputs as the nodes read them (TOKENS
 * inputs point to `ids`). states: per recurrent node in node order, egru_rnn_state_floats(layer,
 * batch) floats (h (batch, H), for LSTM c (batch, H), then the rows' "valid step seen" flags).
 * values: the plan's value regions. scratch: the plan's largest node scratch. ids: batch int32
 * per TOKENS model input, the step's ids copied (checked once, read once). fresh: one byte per
 * node, 1 until the node's first step after init or reset (a recurrent node then loads its
 * initial-state inputs), cleared for a node by set_state.
 */
#include <math.h>
#include <string.h>

#include "egru_internal.h"
#include "layers/egru_layers.h"

#define SESSION_ALIGN  16u
#define SESSION_LIMIT  (1ull << 56)
#define S_ALIGN_UP(n)  (((n) + (SESSION_ALIGN - 1)) & ~(uint64_t)(SESSION_ALIGN - 1))
#define ONE_STEP_STEPS 1u

static int is_rnn(uint32_t op)
{
    return op == EGRU_OP_GRU || op == EGRU_OP_LSTM || op == EGRU_OP_SIMPLE_RNN;
}

static uint32_t n_in(const egru_model_t *m, uint32_t k)
{
    return egru_rd_u16(egru_node_record(m, k) + EGRU_NODE_INPUT_COUNT);
}

/* Value id of node k's input i (i < inputs) or output i - inputs. */
static uint32_t value_of(const egru_model_t *m, uint32_t k, uint32_t i)
{
    return egru_graph_io(m, egru_rd_u32(egru_node_record(m, k) + EGRU_NODE_IO_FIRST) + i);
}

/* The model input index of value v, or -1 when v is no model input. */
static int32_t input_index(const egru_model_t *m, uint32_t v)
{
    uint32_t i;
    for (i = 0; i < m->graph_input_count; ++i) {
        if (egru_graph_io(m, i) == v) {
            return (int32_t)i;
        }
    }
    return -1;
}

static int is_vector(const egru_model_t *m, uint32_t v)
{
    return egru_value_kind(m, v) == EGRU_VALUE_VECTOR;
}

/* Whether value v is a VECTOR computed from VECTOR model inputs alone, through nodes that are
 * not recurrent (a vector model input, or e.g. a Dense of one): the same at every step when its
 * inputs are, so it may give a recurrent node its initial state (loaded at the first step). */
static int fixed_vector(const egru_model_t *m, uint32_t v)
{
    uint8_t fixed[EGRU_GRAPH_MAX_VALUES]; /* value_count <= this (egru_model_init) */
    egru_layer_t layer;
    uint32_t k, i;
    memset(fixed, 0, sizeof fixed);
    for (i = 0; i < m->graph_input_count; ++i) {
        fixed[egru_graph_io(m, i)] = (uint8_t)is_vector(m, egru_graph_io(m, i));
    }
    for (k = 0; k < m->layer_count; ++k) { /* file order: every input's producer comes first */
        const uint32_t ni = n_in(m, k);
        const uint32_t no = egru_rd_u16(egru_node_record(m, k) + EGRU_NODE_OUTPUT_COUNT);
        int all;
        (void)egru_model_layer(m, k, &layer);
        all = !is_rnn(layer.op);
        for (i = 0; i < ni; ++i) {
            all = all && fixed[value_of(m, k, i)];
        }
        for (i = 0; i < no; ++i) {
            const uint32_t y = value_of(m, k, ni + i);
            fixed[y] = (uint8_t)(all && is_vector(m, y));
        }
    }
    return fixed[v];
}

/* Whether node k runs step by step (edgegru.h, "Graph sessions"). */
static int node_streams(const egru_model_t *m, uint32_t k)
{
    const uint32_t ni = n_in(m, k), y = value_of(m, k, ni);
    egru_layer_t layer;
    uint32_t i;
    (void)egru_model_layer(m, k, &layer); /* validated by egru_model_init */
    switch (layer.op) {
    case EGRU_OP_GRU:
    case EGRU_OP_LSTM:
    case EGRU_OP_SIMPLE_RNN:
        if ((layer.flags & (EGRU_FLAG_BIDIRECTIONAL | EGRU_FLAG_GO_BACKWARDS)) ||
            is_vector(m, value_of(m, k, 0))) {
            return 0;
        }
        for (i = 1; i < ni; ++i) { /* initial states: vectors fixed over the steps */
            if (!fixed_vector(m, value_of(m, k, i))) {
                return 0;
            }
        }
        return 1;
    case EGRU_OP_CONCATENATE:
        if (layer.params[0] != EGRU_CONCAT_FEATURES) {
            return 0;
        }
        break;
    case EGRU_OP_EMBEDDING:
    case EGRU_OP_MASKING:
    case EGRU_OP_DENSE:
    case EGRU_OP_AFFINE:
    case EGRU_OP_LAYER_NORM:
    case EGRU_OP_ACTIVATION:
    case EGRU_OP_MERGE: break;
    default: return 0; /* CONV1D, GLOBAL_POOL, FLATTEN, REPEAT_VECTOR */
    }
    for (i = 0; i < ni; ++i) { /* per step: sequences to sequences, vectors to vectors */
        if (is_vector(m, value_of(m, k, i)) != is_vector(m, y)) {
            return 0;
        }
    }
    return 1;
}

egru_status_t egru_graph_session_check(const egru_model_t *model, uint32_t *node_index)
{
    uint32_t k;
    if (!model) {
        return EGRU_ERR_NULL_ARG;
    }
    if (model->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER; /* not initialised */
    }
    if (model->input_kind != EGRU_INPUT_GRAPH) {
        return EGRU_ERR_WRONG_INPUT; /* a chain: egru_session_* */
    }
    if (!EGRU_CFG_GRAPH || !EGRU_CFG_FLOAT || model->quant_version == EGRU_QUANT_VERSION_INT16X8) {
        return EGRU_ERR_UNSUPPORTED;
    }
    for (k = 0; k < model->layer_count; ++k) {
        if (!node_streams(model, k)) {
            if (node_index) {
                *node_index = k;
            }
            return EGRU_ERR_UNSUPPORTED;
        }
    }
    return EGRU_OK;
}

/* Byte offsets of the regions (from the aligned start), and the total with alignment slack. */
typedef struct glayout {
    uint64_t plan, inputs, states, values, scratch, ids, fresh, total;
    uint64_t state_floats;
    uint32_t rnn_count, token_inputs;
} glayout_t;

/* The layout for `batch` rows; g: the plan of one step, filled. */
static egru_status_t layout_of(const egru_model_t *m, uint32_t batch, egru_gvalues_t *g,
                               glayout_t *l)
{
    uint32_t ones[EGRU_GRAPH_MAX_VALUES];
    egru_gplan_t p;
    egru_layer_t layer;
    egru_status_t s = egru_graph_session_check(m, NULL);
    uint32_t i, k;
    memset(l, 0, sizeof *l);
    if (s != EGRU_OK) {
        return s;
    }
    if (batch == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    for (i = 0; i < m->graph_input_count; ++i) {
        ones[i] = ONE_STEP_STEPS;
        l->token_inputs += egru_value_kind(m, egru_graph_io(m, i)) == EGRU_VALUE_TOKENS;
    }
    if ((s = egru_graph_steps(m, ones, g)) != EGRU_OK ||
        (s = egru_graph_plan(m, batch, SESSION_ALIGN, g, &p)) != EGRU_OK) {
        return s;
    }
    for (k = 0; k < m->layer_count; ++k) {
        (void)egru_model_layer(m, k, &layer);
        if (is_rnn(layer.op)) {
            l->state_floats += egru_rnn_state_floats(&layer, batch);
            l->rnn_count++;
        }
    }
    if (l->state_floats > SESSION_LIMIT / sizeof(float) || p.values_bytes > SESSION_LIMIT ||
        p.scratch_floats > SESSION_LIMIT / sizeof(float) ||
        (uint64_t)batch * l->token_inputs > SESSION_LIMIT / sizeof(int32_t)) {
        return EGRU_ERR_BAD_SHAPE;
    }
    l->plan = S_ALIGN_UP((uint64_t)sizeof(egru_model_t));
    l->inputs = l->plan + S_ALIGN_UP((uint64_t)sizeof(egru_gvalues_t));
    l->states = l->inputs + S_ALIGN_UP((uint64_t)m->graph_input_count * sizeof(egru_input_t));
    l->values = l->states + S_ALIGN_UP(l->state_floats * sizeof(float));
    l->scratch = l->values + S_ALIGN_UP(p.values_bytes);
    l->ids = l->scratch + S_ALIGN_UP(p.scratch_floats * sizeof(float));
    l->fresh = l->ids + S_ALIGN_UP((uint64_t)batch * l->token_inputs * sizeof(int32_t));
    l->total = l->fresh + S_ALIGN_UP((uint64_t)m->layer_count) + SESSION_ALIGN;
    return l->total > (uint64_t)(size_t)-1 ? EGRU_ERR_BAD_SHAPE : EGRU_OK;
}

egru_status_t egru_graph_session_size(const egru_model_t *model, uint32_t batch, size_t *bytes)
{
    egru_gvalues_t g;
    glayout_t l;
    egru_status_t s;
    if (!model || !bytes) {
        return EGRU_ERR_NULL_ARG;
    }
    if ((s = layout_of(model, batch, &g, &l)) != EGRU_OK) {
        return s;
    }
    *bytes = (size_t)l.total;
    return EGRU_OK;
}

static void zero_states(egru_graph_session_t *s)
{
    size_t floats = 0;
    uint32_t k;
    egru_layer_t layer;
    for (k = 0; k < s->frozen->layer_count; ++k) {
        (void)egru_model_layer(s->frozen, k, &layer);
        if (is_rnn(layer.op)) {
            floats += (size_t)egru_rnn_state_floats(&layer, s->batch);
        }
    }
    memset(s->states, 0, floats * sizeof(float));
    memset(s->fresh, 1, s->frozen->layer_count);
    s->steps = 0;
}

egru_status_t egru_graph_session_init(egru_graph_session_t *session, const egru_model_t *model,
                                      uint32_t batch, void *mem, size_t bytes)
{
    glayout_t l;
    uint8_t *base;
    egru_status_t s;
    if (!session) {
        return EGRU_ERR_NULL_ARG;
    }
    memset(session, 0, sizeof *session);
    if (!model || !mem) {
        return EGRU_ERR_NULL_ARG;
    }
    base = (uint8_t *)(((uintptr_t)mem + (SESSION_ALIGN - 1)) & ~(uintptr_t)(SESSION_ALIGN - 1));
    /* The plan is made where it stays, once the memory is known to be large enough. */
    {
        egru_gvalues_t g;
        if ((s = layout_of(model, batch, &g, &l)) != EGRU_OK) {
            return s;
        }
        if (bytes < l.total) {
            return EGRU_ERR_ARENA_TOO_SMALL;
        }
        memset(base, 0, (size_t)(l.total - SESSION_ALIGN));
        memcpy(base + l.plan, &g, sizeof g);
    }
    memcpy(base, model, sizeof *model);
    session->model = model;
    session->batch = batch;
    session->n_inputs = model->graph_input_count;
    session->n_outputs = model->graph_output_count;
    session->rnn_count = l.rnn_count;
    session->frozen = (const egru_model_t *)(void *)base;
    session->plan = base + l.plan;
    session->values = base + l.values;
    session->states = (float *)(void *)(base + l.states);
    session->scratch = (float *)(void *)(base + l.scratch);
    session->ids = (int32_t *)(void *)(base + l.ids);
    session->fresh = base + l.fresh;
    zero_states(session);
    return EGRU_OK;
}

/* The step's inputs as the nodes read them (in session memory, after the plan). */
static egru_input_t *step_inputs(const egru_graph_session_t *s)
{
    const uint64_t off = S_ALIGN_UP((uint64_t)sizeof(egru_gvalues_t));
    return (egru_input_t *)(void *)((uint8_t *)s->plan + off);
}

/* Whether model input i (a VECTOR) is read by a node other than as a recurrent initial state. */
static int read_per_step(const egru_model_t *m, uint32_t i)
{
    const uint32_t v = egru_graph_io(m, i);
    egru_layer_t layer;
    uint32_t k, j;
    for (k = 0; k < m->layer_count; ++k) {
        (void)egru_model_layer(m, k, &layer);
        for (j = 0; j < n_in(m, k); ++j) {
            if (value_of(m, k, j) == v && (j == 0 || !is_rnn(layer.op))) {
                return 1;
            }
        }
    }
    return 0;
}

egru_status_t egru_graph_session_step(egru_graph_session_t *session, const egru_input_t *inputs,
                                      uint32_t n_inputs, const egru_output_t *outputs,
                                      uint32_t n_outputs)
{
    const egru_model_t *m;
    const egru_gvalues_t *g;
    egru_input_t *ins;
    egru_gblock_t blk;
    float *state;
    uint32_t i, k, tok = 0;
    size_t j, B;
    if (!session || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    m = session->frozen;
    g = (const egru_gvalues_t *)session->plan;
    ins = step_inputs(session);
    B = session->batch;
    if ((!inputs && n_inputs) || (!outputs && n_outputs)) {
        return EGRU_ERR_NULL_ARG;
    }
    if (n_inputs != m->graph_input_count) {
        return EGRU_ERR_WRONG_INPUT;
    }
    if (n_outputs != m->graph_output_count) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    for (i = 0; i < n_inputs; ++i) {
        const uint32_t v = egru_graph_io(m, i);
        if (!inputs[i].data && (!is_vector(m, v) || read_per_step(m, i))) {
            return EGRU_ERR_NULL_ARG;
        }
    }
    for (i = 0; i < n_outputs; ++i) {
        const uint32_t v = egru_graph_io(m, n_inputs + i);
        if (!outputs[i].data) {
            return EGRU_ERR_NULL_ARG;
        }
        if (outputs[i].count != B * egru_value_width(m, v)) {
            return EGRU_ERR_OUTPUT_SIZE;
        }
    }
    /* Inputs checked before anything changes; ids copied first, so they are read once. */
    for (i = 0; i < n_inputs; ++i) {
        const uint32_t v = egru_graph_io(m, i), w = egru_value_width(m, v);
        ins[i].data = inputs[i].data;
        ins[i].steps = ONE_STEP_STEPS;
        if (egru_value_kind(m, v) == EGRU_VALUE_TOKENS) {
            int32_t *ids = session->ids + (size_t)tok++ * B;
            memcpy(ids, inputs[i].data, B * sizeof(int32_t));
            for (j = 0; j < B; ++j) {
                if (ids[j] < 0 || (uint32_t)ids[j] >= w) {
                    return EGRU_ERR_TOKEN_RANGE;
                }
            }
            ins[i].data = ids;
        } else if (inputs[i].data) {
            const float *x = (const float *)inputs[i].data;
            for (j = 0; j < B * w; ++j) {
                if (!isfinite(x[j])) {
                    return EGRU_ERR_NONFINITE;
                }
            }
        }
    }
    blk.m = m;
    blk.g = g;
    blk.inputs = ins;
    blk.outputs = outputs;
    blk.base = session->values;
    blk.b0 = 0;
    blk.carry = 1;
    state = session->states;
    for (k = 0; k < m->layer_count; ++k) {
        egru_layer_t layer;
        egru_status_t s;
        (void)egru_model_layer(m, k, &layer);
        if (is_rnn(layer.op) && session->fresh[k]) {
            /* The first step: the initial states, as egru_run (forward only: one direction):
             * a vector model input, or a value an earlier node wrote in this step. */
            const uint32_t H = layer.units;
            for (i = 1; i < n_in(m, k); ++i) {
                const uint32_t v = value_of(m, k, i);
                const int32_t io = input_index(m, v);
                const float *h0 =
                    io >= 0 ? (const float *)ins[io].data : egru_graph_value_ptr(&blk, v);
                if (h0) {
                    memcpy(state + (size_t)(i - 1) * B * H, h0, B * H * sizeof(float));
                }
            }
        }
        s = egru_graph_run_node(&blk, k, session->batch, state, session->scratch);
        if (s != EGRU_OK) {
            return s; /* not reached: the ids were checked in session memory */
        }
        session->fresh[k] = 0;
        if (is_rnn(layer.op)) {
            state += egru_rnn_state_floats(&layer, session->batch);
        }
    }
    session->steps++;
    return EGRU_OK;
}

egru_status_t egru_graph_session_reset(egru_graph_session_t *session)
{
    if (!session || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    zero_states(session);
    return EGRU_OK;
}

/* Node `node`'s state block and its layer; EGRU_ERR_INDEX when it has none. */
static egru_status_t node_state(const egru_graph_session_t *s, uint32_t node, float **block,
                                egru_layer_t *layer)
{
    float *state = s->states;
    uint32_t k;
    if (node >= s->frozen->layer_count) {
        return EGRU_ERR_INDEX;
    }
    for (k = 0; k <= node; ++k) {
        (void)egru_model_layer(s->frozen, k, layer);
        if (k == node) {
            break;
        }
        if (is_rnn(layer->op)) {
            state += egru_rnn_state_floats(layer, s->batch);
        }
    }
    if (!is_rnn(layer->op)) {
        return EGRU_ERR_INDEX;
    }
    *block = state;
    return EGRU_OK;
}

egru_status_t egru_graph_session_state_size(const egru_graph_session_t *session, uint32_t node,
                                            size_t *count)
{
    egru_layer_t layer;
    float *block;
    egru_status_t s;
    if (!session || !count || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    if ((s = node_state(session, node, &block, &layer)) != EGRU_OK) {
        return s;
    }
    *count = (size_t)session->batch * egru_rnn_cell_floats(&layer);
    return EGRU_OK;
}

egru_status_t egru_graph_session_get_state(const egru_graph_session_t *session, uint32_t node,
                                           float *state, size_t count)
{
    egru_layer_t layer;
    float *block;
    egru_status_t s;
    if (!session || !state || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    if ((s = node_state(session, node, &block, &layer)) != EGRU_OK) {
        return s;
    }
    if (count != (size_t)session->batch * egru_rnn_cell_floats(&layer)) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    memcpy(state, block, count * sizeof(float));
    return EGRU_OK;
}

egru_status_t egru_graph_session_set_state(egru_graph_session_t *session, uint32_t node,
                                           const float *state, size_t count)
{
    egru_layer_t layer;
    float *block;
    egru_status_t s;
    size_t i;
    if (!session || !state || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    if ((s = node_state(session, node, &block, &layer)) != EGRU_OK) {
        return s;
    }
    if (count != (size_t)session->batch * egru_rnn_cell_floats(&layer)) {
        return EGRU_ERR_BAD_SHAPE;
    }
    for (i = 0; i < count; ++i) {
        if (!isfinite(state[i])) {
            return EGRU_ERR_NONFINITE;
        }
    }
    memcpy(block, state, count * sizeof(float));
    memset(block + count, 0, (size_t)session->batch * sizeof(float)); /* the seen flags */
    session->fresh[node] = 0;
    return EGRU_OK;
}

/* Floats of the snapshot: per recurrent node its state block (cells, seen flags) and one fresh
 * flag. */
static size_t snapshot_floats(const egru_graph_session_t *s)
{
    size_t n = 0;
    uint32_t k;
    egru_layer_t layer;
    for (k = 0; k < s->frozen->layer_count; ++k) {
        (void)egru_model_layer(s->frozen, k, &layer);
        if (is_rnn(layer.op)) {
            n += (size_t)egru_rnn_state_floats(&layer, s->batch) + 1u;
        }
    }
    return n;
}

egru_status_t egru_graph_session_snapshot_size(const egru_graph_session_t *session, size_t *count)
{
    if (!session || !count || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    *count = snapshot_floats(session);
    return EGRU_OK;
}

/* Copies the snapshot out of the session (`out` not NULL) or checks `in` (`out` NULL, `apply`
 * 0) or copies `in` into the session (`apply` 1). */
static egru_status_t snapshot_walk(const egru_graph_session_t *s, float *out, const float *in,
                                   int apply)
{
    float *state = s->states;
    size_t pos = 0, i;
    uint32_t k;
    egru_layer_t layer;
    for (k = 0; k < s->frozen->layer_count; ++k) {
        size_t cells, n;
        (void)egru_model_layer(s->frozen, k, &layer);
        if (!is_rnn(layer.op)) {
            continue;
        }
        n = (size_t)egru_rnn_state_floats(&layer, s->batch);
        cells = n - s->batch; /* one direction: cells, then batch seen flags */
        if (out) {
            memcpy(out + pos, state, n * sizeof(float));
            out[pos + n] = s->fresh[k] ? 1.0f : 0.0f;
        } else if (apply) { /* the flags as 0.0f / 1.0f (a -0.0f reads as 0.0f) */
            memcpy(state, in + pos, cells * sizeof(float));
            for (i = cells; i < n; ++i) {
                state[i] = in[pos + i] != 0.0f ? 1.0f : 0.0f;
            }
            s->fresh[k] = in[pos + n] != 0.0f;
        } else {
            for (i = 0; i < cells; ++i) {
                if (!isfinite(in[pos + i])) {
                    return EGRU_ERR_NONFINITE;
                }
            }
            for (i = cells; i <= n; ++i) { /* the seen flags and the fresh flag */
                if (in[pos + i] != 0.0f && in[pos + i] != 1.0f) {
                    return EGRU_ERR_BAD_SHAPE;
                }
            }
        }
        state += n;
        pos += n + 1u;
    }
    return EGRU_OK;
}

egru_status_t egru_graph_session_save(const egru_graph_session_t *session, float *snapshot,
                                      size_t count)
{
    if (!session || !snapshot || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    if (count != snapshot_floats(session)) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    return snapshot_walk(session, snapshot, NULL, 0);
}

egru_status_t egru_graph_session_restore(egru_graph_session_t *session, const float *snapshot,
                                         size_t count, uint64_t steps)
{
    egru_status_t s;
    if (!session || !snapshot || !session->model) {
        return EGRU_ERR_NULL_ARG;
    }
    if (count != snapshot_floats(session)) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if ((s = snapshot_walk(session, NULL, snapshot, 0)) != EGRU_OK) {
        return s;
    }
    (void)snapshot_walk(session, NULL, snapshot, 1);
    session->steps = steps;
    return EGRU_OK;
}
