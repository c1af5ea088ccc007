/*
 * egru_graph.c - the general entry point egru_run, and the graph runtime (docs/format.md
 * "Graphs", docs/c_api.md "Graphs").
 *
 * Chains go to the chain functions (egru_forward.c) unchanged. A graph runs block by block of
 * rows (the fast plan: up to GRAPH_ROW_BLOCK rows; the low-memory plan: one row), and within a
 * block node by node in file order, each node over whole sequences with the layer functions of
 * layers/ (as egru_forward.c's run_layer). The products are batch invariant (egru_kernels.h), so
 * every plan gives the same outputs bit for bit.
 *
 * Arena, from its first multiple of the plan's alignment:
 *
 *   [ value regions ][ state ][ scratch ]
 *
 * value regions: every value but the model inputs (the caller's buffers) gets rows * steps *
 * width floats, unless it is a model output (written into the caller's buffer), followed by its
 * mask (rows * steps bytes) when it carries one. A region is live from the node that writes the
 * value to the last node that reads it (both included); regions are placed greedily, largest
 * first (ties: lower value id first), each at the lowest offset where it overlaps no placed
 * region whose lifetime meets its own (TFLite Micro's greedy planner). A MASKING view
 * (find_views: Masking(0.0) read only as an attention's value or key) has no region; its
 * readers read its input, which lives until the view's last reader. state: the largest
 * recurrent node's state (egru_rnn_state_floats); scratch: the largest node scratch (recurrent
 * cells, Dense's int8 input, a merge's mask fold).
 *
 * Per-value bookkeeping lives on the stack (EGRU_GRAPH_MAX_VALUES entries, egru_internal.h);
 * nothing is allocated.
 */
#include <math.h>
#include <string.h>

#include "egru_internal.h"
#include "layers/egru_layers.h"

#define GRAPH_ROW_BLOCK  16u
#define GRAPH_FAST_ALIGN 64u
#define GRAPH_LOW_ALIGN  16u
#define GRAPH_LIMIT      (1ull << 56) /* bytes of any region or total: no wrap below */
#define G_ALIGN_UP(n, a) (((n) + ((a)-1)) & ~(uint64_t)((a)-1))
#define NOT_PLACED       (~(uint64_t)0)

/* The planner's types (egru_internal.h, shared with the graph sessions). */
typedef egru_gvalues_t gvalues_t;
typedef egru_gplan_t gplan_t;
typedef egru_gblock_t gblock_t;

static int is_rnn(uint32_t op)
{
    return op == EGRU_OP_GRU || op == EGRU_OP_LSTM || op == EGRU_OP_SIMPLE_RNN;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static uint32_t node_inputs(const egru_model_t *m, uint32_t k)
{
    return egru_rd_u16(egru_node_record(m, k) + EGRU_NODE_INPUT_COUNT);
}

static uint32_t node_outputs(const egru_model_t *m, uint32_t k)
{
    return egru_rd_u16(egru_node_record(m, k) + EGRU_NODE_OUTPUT_COUNT);
}

/* Value id of node k's input i (i < inputs) or output i - inputs. */
static uint32_t node_value(const egru_model_t *m, uint32_t k, uint32_t i)
{
    return egru_graph_io(m, egru_rd_u32(egru_node_record(m, k) + EGRU_NODE_IO_FIRST) + i);
}

/* The MASKING views (egru_gvalues_t.view): a MASKING node with mask value 0 (or -0) whose
 * output is no model output and is read only by ATTENTION nodes, as value or key (never as the
 * query, whose mask the output carries). Its output then needs no region of Tv steps: the
 * attention reads the MASKING's input, which holds the same numbers (Masking(0.0) keeps a valid
 * step and zeroes a step whose features are all 0 already), and tests each value step for a
 * nonzero feature for its mask. So an attention decoder step whose encoder sequence is a model
 * input under Masking(0.0) plans no memory that grows with the sequence. The input's lifetime
 * is extended to the view's last reader. */
static void find_views(const egru_model_t *m, gvalues_t *g)
{
    uint32_t k, n, i;
    egru_layer_t layer, reader;
    for (k = 0; k < m->layer_count; ++k) {
        const uint32_t x = node_value(m, k, 0), y = node_value(m, k, 1);
        int ok, read = 0;
        (void)egru_model_layer(m, k, &layer);
        ok = layer.op == EGRU_OP_MASKING && (layer.params[0] & 0x7FFFFFFFu) == 0u &&
             g->io[y] == INT32_MAX;
        for (n = k + 1; ok && n < m->layer_count; ++n) {
            for (i = 0; ok && i < node_inputs(m, n); ++i) {
                if (node_value(m, n, i) == y) {
                    (void)egru_model_layer(m, n, &reader);
                    ok = reader.op == EGRU_OP_ATTENTION && i > 0;
                    read = 1;
                }
            }
        }
        if (ok && read) {
            g->view[y] = x;
            g->last[x] = g->last[x] > g->last[y] ? g->last[x] : g->last[y];
        }
    }
}

/* Steps of every value for the caller's input steps, lifetimes, MASKING views;
 * EGRU_ERR_BAD_SHAPE when the steps do not fit the graph. */
egru_status_t egru_graph_steps(const egru_model_t *m, const uint32_t *input_steps, gvalues_t *g)
{
    uint32_t i, k, v;
    egru_layer_t layer;
    for (v = 0; v < m->value_count; ++v) {
        g->steps[v] = 0;
        g->first[v] = 0;
        g->last[v] = 0;
        g->io[v] = INT32_MAX;
        g->view[v] = EGRU_GRAPH_NO_VIEW;
    }
    for (i = 0; i < m->graph_input_count; ++i) {
        v = egru_graph_io(m, i);
        g->io[v] = (int32_t)i;
        g->steps[v] = egru_value_kind(m, v) == EGRU_VALUE_VECTOR ? 1u : input_steps[i];
        if (g->steps[v] == 0) {
            return EGRU_ERR_BAD_SHAPE;
        }
    }
    for (i = 0; i < m->graph_output_count; ++i) {
        g->io[egru_graph_io(m, m->graph_input_count + i)] = -1 - (int32_t)i;
    }
    for (k = 0; k < m->layer_count; ++k) {
        const uint32_t ni = node_inputs(m, k), no = node_outputs(m, k);
        const uint32_t T = g->steps[node_value(m, k, 0)];
        uint64_t out = T;
        (void)egru_model_layer(m, k, &layer); /* validated by egru_model_init */
        for (i = 0; i < ni; ++i) {
            v = node_value(m, k, i);
            g->last[v] = k;
        }
        switch (layer.op) {
        case EGRU_OP_GRU:
        case EGRU_OP_LSTM:
        case EGRU_OP_SIMPLE_RNN: out = (layer.flags & EGRU_FLAG_RETURN_SEQUENCES) ? T : 1u; break;
        case EGRU_OP_CONV1D: out = egru_conv1d_out_steps(&layer, T); break;
        case EGRU_OP_GLOBAL_POOL: out = 1u; break;
        case EGRU_OP_FLATTEN: out = T == layer.params[0] ? 1u : 0u; break;
        case EGRU_OP_REPEAT_VECTOR: out = layer.params[0]; break;
        case EGRU_OP_RESHAPE: /* the input's steps are fixed (a vector: 1) */
            out = T == (layer.params[0] ? layer.params[0] : 1u)
                      ? (layer.params[1] ? layer.params[1] : 1u)
                      : 0u;
            break;
        case EGRU_OP_PERMUTE: out = T == layer.params[0] ? layer.input_dim : 0u; break;
        case EGRU_OP_TIME_STEPS: /* 0 (too short to crop) fails the call */
            if (layer.params[0] == EGRU_STEPS_CROP) {
                out = T > (uint64_t)layer.params[1] + layer.params[2]
                          ? T - (uint64_t)layer.params[1] - layer.params[2]
                          : 0u;
            } else {
                out = layer.params[0] == EGRU_STEPS_PAD
                          ? T + (uint64_t)layer.params[1] + layer.params[2]
                          : (uint64_t)T * layer.params[3];
                out = out > 0xFFFFFFFFu ? 0u : out;
            }
            break;
        case EGRU_OP_ATTENTION: /* the query's steps; a key has the value's */
            out =
                ni == 3 && g->steps[node_value(m, k, 2)] != g->steps[node_value(m, k, 1)] ? 0u : T;
            break;
        case EGRU_OP_MERGE:
        case EGRU_OP_CONCATENATE:
            if (layer.op == EGRU_OP_CONCATENATE && layer.params[0] == EGRU_CONCAT_TIME) {
                for (out = 0, i = 0; i < ni; ++i) {
                    out += g->steps[node_value(m, k, i)];
                }
                out = out > 0xFFFFFFFFu ? 0u : out;
            } else {
                for (i = 1; i < ni; ++i) {
                    out = g->steps[node_value(m, k, i)] == T ? out : 0u;
                }
            }
            break;
        default: break;
        }
        if (out == 0) {
            return EGRU_ERR_BAD_SHAPE;
        }
        for (i = 0; i < no; ++i) {
            v = node_value(m, k, ni + i);
            g->steps[v] = i == 0 ? (uint32_t)out : 1u; /* final states are vectors */
            g->first[v] = k;
            g->last[v] = k;
        }
    }
    find_views(m, g);
    return EGRU_OK;
}

/* The plan of `rows` rows (value regions placed) and its arena bytes; g from graph_steps. */
egru_status_t egru_graph_plan(const egru_model_t *m, uint32_t rows, uint32_t align, gvalues_t *g,
                              gplan_t *p)
{
    uint32_t v, k, n;
    egru_layer_t layer;
    memset(p, 0, sizeof *p);
    p->rows = rows;
    p->align = align;
    for (v = 0; v < m->value_count; ++v) {
        const uint64_t step_vals = (uint64_t)rows * g->steps[v];
        const uint64_t floats = step_vals * egru_value_width(m, v);
        g->offset[v] = NOT_PLACED;
        g->size[v] = 0;
        g->data[v] = 0;
        if (floats > GRAPH_LIMIT / sizeof(float)) {
            return EGRU_ERR_BAD_SHAPE;
        }
        if ((g->io[v] >= 0 && g->io[v] != INT32_MAX) || g->view[v] != EGRU_GRAPH_NO_VIEW) {
            continue; /* a model input: the caller's buffer; a view: its input's */
        }
        g->data[v] = g->io[v] == INT32_MAX ? G_ALIGN_UP(floats * sizeof(float), align) : 0u;
        g->size[v] = g->data[v] + (egru_value_masked(m, v) ? G_ALIGN_UP(step_vals, align) : 0u);
    }
    /* Greedy first fit, largest first. */
    for (n = 0; n < m->value_count; ++n) {
        uint32_t best = EGRU_GRAPH_MAX_VALUES, u;
        uint64_t at = 0;
        int moved = 1;
        for (v = 0; v < m->value_count; ++v) {
            if (g->size[v] && g->offset[v] == NOT_PLACED &&
                (best == EGRU_GRAPH_MAX_VALUES || g->size[v] > g->size[best])) {
                best = v;
            }
        }
        if (best == EGRU_GRAPH_MAX_VALUES) {
            break;
        }
        while (moved) { /* the lowest offset clear of every conflicting placed region */
            moved = 0;
            for (u = 0; u < m->value_count; ++u) {
                if (g->offset[u] != NOT_PLACED && g->first[u] <= g->last[best] &&
                    g->first[best] <= g->last[u] && at < g->offset[u] + g->size[u] &&
                    g->offset[u] < at + g->size[best]) {
                    at = g->offset[u] + g->size[u];
                    moved = 1;
                }
            }
        }
        g->offset[best] = at;
        p->values_bytes = max_u64(p->values_bytes, at + g->size[best]);
        if (p->values_bytes > GRAPH_LIMIT) {
            return EGRU_ERR_BAD_SHAPE;
        }
    }
    for (k = 0; k < m->layer_count; ++k) {
        const uint32_t T = g->steps[node_value(m, k, 0)];
        (void)egru_model_layer(m, k, &layer);
        if (is_rnn(layer.op)) {
            p->state_floats = max_u64(p->state_floats, egru_rnn_state_floats(&layer, rows));
            p->scratch_floats =
                max_u64(p->scratch_floats, egru_rnn_scratch_floats(&layer, rows, T, T));
        } else if (layer.op == EGRU_OP_DENSE) {
            p->scratch_floats = max_u64(p->scratch_floats, (layer.input_dim + 3u) / 4u);
        } else if (layer.op == EGRU_OP_MERGE) { /* the running mask of maximum / minimum */
            p->scratch_floats = max_u64(p->scratch_floats, ((uint64_t)rows * T + 3u) / 4u);
        } /* ATTENTION: none (an online softmax into its output row, run_attention) */
    }
    if (p->state_floats > GRAPH_LIMIT / 8u || p->scratch_floats > GRAPH_LIMIT / 8u) {
        return EGRU_ERR_BAD_SHAPE;
    }
    p->total = G_ALIGN_UP(p->values_bytes, align) +
               G_ALIGN_UP(p->state_floats * sizeof(float), align) +
               G_ALIGN_UP(p->scratch_floats * sizeof(float), align) + align;
    return p->total > (uint64_t)(size_t)-1 ? EGRU_ERR_BAD_SHAPE : EGRU_OK;
}

float *egru_graph_value_ptr(const gblock_t *b, uint32_t v)
{
    const uint32_t u = b->g->view[v] != EGRU_GRAPH_NO_VIEW ? b->g->view[v] : v; /* no view's view */
    const size_t row = (size_t)b->g->steps[u] * egru_value_width(b->m, u);
    const int32_t io = b->g->io[u];
    v = u;
    if (io >= 0 && io != INT32_MAX && egru_value_kind(b->m, v) == EGRU_VALUE_TOKENS) {
        /* int32 ids (rows, steps): returned as a float pointer, read back as ids */
        return (float *)(uintptr_t)((const int32_t *)b->inputs[io].data +
                                    (size_t)b->b0 * b->g->steps[v]);
    }
    if (io >= 0 && io != INT32_MAX) {
        return (float *)(uintptr_t)b->inputs[io].data + (size_t)b->b0 * row;
    }
    if (io < 0) {
        return b->outputs[-1 - io].data + (size_t)b->b0 * row;
    }
    return (float *)(void *)(b->base + b->g->offset[v]);
}

static uint8_t *mask_ptr(const gblock_t *b, uint32_t v)
{
    return egru_value_masked(b->m, v) && b->g->view[v] == EGRU_GRAPH_NO_VIEW
               ? b->base + b->g->offset[v] + b->g->data[v]
               : NULL;
}

/* MERGE over `ni` inputs of n = rows * T steps of W floats (docs/format.md, "MERGE" and its mask
 * rules). out / out_mask: the output (out_mask NULL when it carries none); tmp: n bytes. */
static void run_merge(const gblock_t *b, uint32_t k, uint32_t mode, uint32_t ni, size_t n,
                      uint32_t W, float *out, uint8_t *out_mask, uint8_t *tmp)
{
    const uint32_t x0 = node_value(b->m, k, 0);
    const size_t total = n * W;
    size_t i, j;
    uint32_t in;
    memcpy(out, egru_graph_value_ptr(b, x0), total * sizeof(float));
    if (mode == EGRU_MERGE_MAXIMUM || mode == EGRU_MERGE_MINIMUM) {
        /* acc = x0; per next x: where x is masked x := acc, where acc is masked acc := x; acc =
         * op(acc, x); acc's mask the OR of both while both carry one. */
        const uint8_t *m0 = mask_ptr(b, x0);
        uint8_t *acc_mask = out_mask ? out_mask : tmp;
        int acc_has = m0 != NULL;
        if (m0) {
            memcpy(acc_mask, m0, n);
        }
        for (in = 1; in < ni; ++in) {
            const uint32_t xv = node_value(b->m, k, in);
            const float *x = egru_graph_value_ptr(b, xv);
            const uint8_t *xm = mask_ptr(b, xv);
            for (i = 0; i < n; ++i) {
                const int x_masked = xm && !xm[i], acc_masked = acc_has && !acc_mask[i];
                for (j = 0; j < W; ++j) {
                    float a = out[i * W + j], c = x[i * W + j];
                    c = x_masked ? a : c;
                    a = acc_masked ? c : a;
                    out[i * W + j] = mode == EGRU_MERGE_MAXIMUM ? (a > c ? a : c) : (a < c ? a : c);
                }
            }
            if (acc_has && xm) {
                for (i = 0; i < n; ++i) {
                    acc_mask[i] = (uint8_t)(acc_mask[i] || xm[i]);
                }
            } else {
                acc_has = 0;
            }
        }
        return;
    }
    if (mode == EGRU_MERGE_MULTIPLY) { /* masked steps count as 1 */
        const uint8_t *m0 = mask_ptr(b, x0);
        for (i = 0; m0 && i < n; ++i) {
            for (j = 0; !m0[i] && j < W; ++j) {
                out[i * W + j] = 1.0f;
            }
        }
    }
    for (in = 1; in < ni; ++in) {
        const uint32_t xv = node_value(b->m, k, in);
        const float *x = egru_graph_value_ptr(b, xv);
        const uint8_t *xm = mask_ptr(b, xv);
        for (i = 0; i < n; ++i) {
            for (j = 0; j < W; ++j) {
                float *o = out + i * W + j;
                switch (mode) {
                case EGRU_MERGE_ADD:
                case EGRU_MERGE_AVERAGE: *o += x[i * W + j]; break;
                case EGRU_MERGE_SUBTRACT: *o -= x[i * W + j]; break;
                default: *o *= (xm && !xm[i]) ? 1.0f : x[i * W + j]; break; /* multiply */
                }
            }
        }
    }
    if (mode == EGRU_MERGE_AVERAGE) {
        const float count = (float)ni;
        for (i = 0; i < total; ++i) {
            out[i] /= count;
        }
    }
    if (out_mask) { /* every input carries a mask: the OR of theirs */
        memset(out_mask, 0, n);
        for (in = 0; in < ni; ++in) {
            const uint8_t *xm = mask_ptr(b, node_value(b->m, k, in));
            for (i = 0; i < n; ++i) {
                out_mask[i] = (uint8_t)(out_mask[i] || xm[i]);
            }
        }
        for (i = 0; mode == EGRU_MERGE_MULTIPLY && i < n; ++i) {
            if (!out_mask[i]) { /* no input valid: 0 */
                memset(out + i * W, 0, W * sizeof(float));
            }
        }
    }
}

/* CONCATENATE of node k over `rows` rows. */
static void run_concat(const gblock_t *b, uint32_t k, uint32_t axis, uint32_t ni, uint32_t rows,
                       float *out, uint8_t *out_mask)
{
    const uint32_t y = node_value(b->m, k, ni);
    const uint32_t T = b->g->steps[y], W = egru_value_width(b->m, y);
    uint32_t r, t, in, off;
    for (r = 0; r < rows; ++r) {
        off = 0; /* steps (time) or features (features) written so far */
        for (in = 0; in < ni; ++in) {
            const uint32_t xv = node_value(b->m, k, in);
            const uint32_t Tx = b->g->steps[xv], Wx = egru_value_width(b->m, xv);
            const float *x = egru_graph_value_ptr(b, xv) + (size_t)r * Tx * Wx;
            const uint8_t *xm = mask_ptr(b, xv);
            if (axis == EGRU_CONCAT_TIME) {
                memcpy(out + ((size_t)r * T + off) * W, x, (size_t)Tx * Wx * sizeof(float));
                for (t = 0; out_mask && t < Tx; ++t) {
                    out_mask[(size_t)r * T + off + t] = xm ? xm[(size_t)r * Tx + t] : 1u;
                }
                off += Tx;
            } else {
                for (t = 0; t < T; ++t) {
                    memcpy(out + ((size_t)r * T + t) * W + off, x + (size_t)t * Wx,
                           Wx * sizeof(float));
                    if (out_mask) { /* valid where any input is; no mask: valid */
                        const uint8_t valid = xm ? xm[(size_t)r * T + t] != 0 : 1u;
                        uint8_t *o = out_mask + (size_t)r * T + t;
                        *o = (uint8_t)(in == 0 ? valid : (*o || valid));
                    }
                }
                off += Wx;
            }
        }
    }
}

/* Whether a step of w floats has a nonzero feature: the mask Masking(0.0) would give it (a
 * MASKING view, egru_gvalues_t.view). */
static int any_nonzero(const float *x, uint32_t w)
{
    uint32_t c;
    for (c = 0; c < w; ++c) {
        if (x[c] != 0.0f) {
            return 1;
        }
    }
    return 0;
}

/* ATTENTION of node k over `rows` rows (docs/format.md "ATTENTION"): per row and query step,
 * the scores against the Tv key steps, masked ones (value mask, causal) lowered by 1e9 in
 * float32 as Keras does, a softmax, the weighted sum of the value steps; zero at masked query
 * steps. One pass over the key steps (online softmax): the running maximum `top`, the running
 * sum of exp(s - top), and the output row itself as the accumulator of exp(s - top) * v,
 * rescaled by exp(old top - new top) when the maximum rises, divided by the sum at the end; no
 * scratch, so the node's memory does not grow with Tv (nor with Tq * Tv). A value that is a
 * MASKING view (Masking(0.0), egru_graph_steps) has its mask computed here: a step is valid
 * when one of its features is nonzero (its floats are the Masking's, zeros at masked steps).
 * The output mask (the query's) is copied. */
static void run_attention(const gblock_t *b, uint32_t k, const egru_layer_t *layer, uint32_t rows,
                          float *out, uint8_t *out_mask)
{
    const uint32_t ni = node_inputs(b->m, k);
    const uint32_t qv = node_value(b->m, k, 0), vv = node_value(b->m, k, 1);
    const uint32_t kv = node_value(b->m, k, ni - 1);
    const uint32_t Tq = b->g->steps[qv], Tv = b->g->steps[vv];
    const uint32_t D = layer->input_dim, W = layer->output_dim, mode = layer->params[0];
    /* params[4] = 1 (the Keras Dot pattern): no mask is read and none written (egru_model.c);
     * a MASKING view's zero test is no mask for it either (its numbers are the input's) */
    const int ignore = layer->params[4] != 0;
    const uint8_t *q_mask = ignore ? NULL : mask_ptr(b, qv);
    const uint8_t *v_mask = ignore ? NULL : mask_ptr(b, vv);
    const int v_view = !ignore && b->g->view[vv] != EGRU_GRAPH_NO_VIEW;
    float scale = 1.0f, weight = 1.0f;
    uint32_t r, t, j, d;
    if (mode != EGRU_ATTENTION_ADDITIVE) {
        memcpy(&scale, &layer->params[2], sizeof scale);
        memcpy(&weight, &layer->params[3], sizeof weight);
    }
    for (r = 0; r < rows; ++r) {
        const float *q = egru_graph_value_ptr(b, qv) + (size_t)r * Tq * D;
        const float *key = egru_graph_value_ptr(b, kv) + (size_t)r * Tv * D;
        const float *val = egru_graph_value_ptr(b, vv) + (size_t)r * Tv * W;
        for (t = 0; t < Tq; ++t) {
            const float *qt = q + (size_t)t * D;
            float *y = out + ((size_t)r * Tq + t) * W;
            float top = -INFINITY, sum = 0.0f;
            memset(y, 0, W * sizeof(float));
            if (q_mask && !q_mask[(size_t)r * Tq + t]) {
                continue;
            }
            for (j = 0; j < Tv; ++j) {
                const float *kj = key + (size_t)j * D, *vj = val + (size_t)j * W;
                float s = 0.0f;
                int valid = v_mask ? v_mask[(size_t)r * Tv + j] != 0 : 1;
                for (d = 0; d < D; ++d) {
                    if (mode == EGRU_ATTENTION_DOT) {
                        s += qt[d] * kj[d];
                    } else if (mode == EGRU_ATTENTION_CONCAT) {
                        s += tanhf(scale * (qt[d] + kj[d]));
                    } else {
                        s += (layer->scale ? layer->scale[d] : 1.0f) * tanhf(qt[d] + kj[d]);
                    }
                }
                s = mode == EGRU_ATTENTION_DOT      ? s * scale
                    : mode == EGRU_ATTENTION_CONCAT ? weight * s
                                                    : s;
                valid = v_view ? any_nonzero(vj, W) : valid;
                if (!valid || (layer->params[1] && j > t)) {
                    s = s - 1e9f;
                }
                if (s > top) { /* a new maximum: rescale what was summed (0 the first time) */
                    const float c = expf(top - s);
                    sum = sum * c + 1.0f;
                    for (d = 0; d < W; ++d) {
                        y[d] = y[d] * c + vj[d];
                    }
                    top = s;
                } else {
                    const float p = expf(s - top);
                    sum += p;
                    for (d = 0; p != 0.0f && d < W; ++d) { /* p 0: a masked step, nothing */
                        y[d] += p * vj[d];
                    }
                }
            }
            for (d = 0; d < W; ++d) {
                y[d] /= sum;
            }
        }
    }
    if (out_mask) {
        memcpy(out_mask, q_mask, (size_t)rows * Tq);
    }
}

/* TIME_STEPS of `rows` rows: T input steps -> To output steps of W floats (docs/format.md). */
static void run_time_steps(const egru_layer_t *layer, const float *in, uint32_t rows, uint32_t T,
                           uint32_t To, float *out)
{
    const uint32_t W = layer->output_dim, start = layer->params[1];
    const size_t step = (size_t)W * sizeof(float);
    uint32_t r, t, i;
    for (r = 0; r < rows; ++r) {
        const float *x = in + (size_t)r * T * W;
        float *y = out + (size_t)r * To * W;
        if (layer->params[0] == EGRU_STEPS_CROP) {
            memcpy(y, x + (size_t)start * W, (size_t)To * step);
        } else if (layer->params[0] == EGRU_STEPS_PAD) {
            memset(y, 0, (size_t)To * step);
            memcpy(y + (size_t)start * W, x, (size_t)T * step);
        } else {
            for (t = 0; t < T; ++t) {
                for (i = 0; i < layer->params[3]; ++i) {
                    memcpy(y + ((size_t)t * layer->params[3] + i) * W, x + (size_t)t * W, step);
                }
            }
        }
    }
}

/* DOT of two vectors a, b (rows, C) -> out (rows, 1); normalize: each times
 * min(1 / sqrt(sum x^2), 1e7) first (Keras' normalize, epsilon 1e-7). */
static void run_dot(const float *a, const float *b, uint32_t rows, uint32_t C, int normalize,
                    float *out)
{
    uint32_t r, j;
    for (r = 0; r < rows; ++r) {
        const float *x = a + (size_t)r * C, *y = b + (size_t)r * C;
        float sx = 0.0f, sy = 0.0f, dot = 0.0f, ix = 1.0f, iy = 1.0f;
        for (j = 0; j < C; ++j) {
            sx += x[j] * x[j];
            sy += y[j] * y[j];
        }
        if (normalize) {
            ix = 1.0f / sqrtf(sx);
            iy = 1.0f / sqrtf(sy);
            ix = ix < 1e7f ? ix : 1e7f;
            iy = iy < 1e7f ? iy : 1e7f;
        }
        for (j = 0; j < C; ++j) {
            dot += (x[j] * ix) * (y[j] * iy);
        }
        out[r] = dot;
    }
}

/* Runs node k on the block's `rows` rows. */
egru_status_t egru_graph_run_node(const gblock_t *b, uint32_t k, uint32_t rows, float *state,
                                  float *scratch)
{
    const egru_model_t *m = b->m;
    const uint32_t ni = node_inputs(m, k), no = node_outputs(m, k);
    const uint32_t x0 = node_value(m, k, 0), y0 = node_value(m, k, ni);
    const uint32_t T = b->g->steps[x0];
    const size_t n = (size_t)rows * T;
    const float *in = egru_graph_value_ptr(b, x0);
    const uint8_t *in_mask = mask_ptr(b, x0);
    float *out = egru_graph_value_ptr(b, y0);
    uint8_t *out_mask = mask_ptr(b, y0);
    egru_layer_t layer;
    uint32_t r, i;
    (void)egru_model_layer(m, k, &layer);
    switch (layer.op) {
    case EGRU_OP_EMBEDDING:
        if (EGRU_CFG_OP_EMBEDDING) {
            return egru_embedding_f32(&layer, (const int32_t *)(const void *)in, (uint32_t)n, out,
                                      out_mask);
        }
        break;
    case EGRU_OP_GRU:
    case EGRU_OP_LSTM:
    case EGRU_OP_SIMPLE_RNN:
        if (EGRU_CFG_OP_GRU || EGRU_CFG_OP_LSTM || EGRU_CFG_OP_SIMPLE_RNN) {
            const uint32_t H = layer.units, cell = egru_rnn_cell_floats(&layer);
            const uint32_t parts = cell / H; /* 1: h; 2: h, c (LSTM) */
            const size_t block = (size_t)rows * (cell + 1u);
            if (!b->carry) { /* a whole sequence: from the initial states */
                memset(state, 0, (size_t)egru_rnn_state_floats(&layer, rows) * sizeof(float));
            }
            for (i = 1; i < ni && !b->carry; ++i) { /* initial states: per direction h (, c) */
                const float *s0 = egru_graph_value_ptr(b, node_value(m, k, i));
                const uint32_t d = (i - 1) / parts, part = (i - 1) % parts;
                memcpy(state + d * block + (size_t)part * rows * H, s0,
                       (size_t)rows * H * sizeof(float));
            }
            /* MASKED clear: no mask reaches it (or Keras' rule for initial states), though
             * its sequence output may carry its input's (copied below). */
            egru_rnn_f32(&layer, in, (layer.flags & EGRU_FLAG_MASKED) ? in_mask : NULL, rows, T, T,
                         out, state, scratch);
            for (i = 1; i < no; ++i) { /* final states, same layout */
                float *s1 = egru_graph_value_ptr(b, node_value(m, k, ni + i));
                const uint32_t d = (i - 1) / parts, part = (i - 1) % parts;
                memcpy(s1, state + d * block + (size_t)part * rows * H,
                       (size_t)rows * H * sizeof(float));
            }
        }
        break;
    case EGRU_OP_DENSE:
        if (EGRU_CFG_OP_DENSE) {
            egru_dense_f32(&layer, in, (uint32_t)n, out, (int8_t *)(void *)scratch);
        }
        break;
    case EGRU_OP_CONV1D:
        if (EGRU_CFG_OP_CONV1D) {
            const uint32_t To = egru_conv1d_out_steps(&layer, T);
            for (r = 0; r < rows; ++r) {
                egru_conv1d_f32(&layer, in + (size_t)r * T * layer.input_dim, T,
                                out + (size_t)r * To * layer.output_dim);
            }
        }
        break;
    case EGRU_OP_GLOBAL_POOL:
        if (EGRU_CFG_OP_GLOBAL_POOL) {
            for (r = 0; r < rows; ++r) {
                egru_global_pool_f32(&layer, in + (size_t)r * T * layer.input_dim,
                                     in_mask ? in_mask + (size_t)r * T : NULL, T,
                                     out + (size_t)r * layer.output_dim);
            }
        }
        break;
    case EGRU_OP_AFFINE:
        if (EGRU_CFG_OP_AFFINE) {
            egru_affine_f32(&layer, in, (uint32_t)n, out);
        }
        break;
    case EGRU_OP_LAYER_NORM:
        if (EGRU_CFG_OP_LAYER_NORM) {
            egru_layer_norm_f32(&layer, in, (uint32_t)n, out);
        }
        break;
    case EGRU_OP_ACTIVATION:
        if (EGRU_CFG_OP_ACTIVATION) {
            memcpy(out, in, n * layer.output_dim * sizeof(float));
            for (i = 0; i < n; ++i) {
                egru_activate_f32(&layer, layer.activation, out + (size_t)i * layer.output_dim,
                                  layer.output_dim);
            }
        }
        break;
    case EGRU_OP_FLATTEN:
        if (EGRU_CFG_OP_FLATTEN) {
            memcpy(out, in, n * layer.input_dim * sizeof(float));
        }
        break;
    case EGRU_OP_MASKING:
        if (b->g->view[y0] != EGRU_GRAPH_NO_VIEW) {
            return EGRU_OK; /* a view (find_views): its readers read the input */
        }
        if (EGRU_CFG_OP_MASKING) {
            egru_masking_f32(&layer, in, (uint32_t)n, out, out_mask);
        }
        return EGRU_OK;
    case EGRU_OP_MERGE:
        run_merge(b, k, layer.params[0], ni, n, layer.output_dim, out, out_mask,
                  (uint8_t *)(void *)scratch);
        return EGRU_OK;
    case EGRU_OP_CONCATENATE:
        run_concat(b, k, layer.params[0], ni, rows, out, out_mask);
        return EGRU_OK;
    case EGRU_OP_ATTENTION: run_attention(b, k, &layer, rows, out, out_mask); return EGRU_OK;
    case EGRU_OP_RESHAPE: /* the same bytes per row */
        memcpy(out, in, n * layer.input_dim * sizeof(float));
        return EGRU_OK;
    case EGRU_OP_PERMUTE: /* (T, C) -> (C, T) per row */
        for (r = 0; r < rows; ++r) {
            uint32_t t, c;
            for (t = 0; t < T; ++t) {
                for (c = 0; c < layer.input_dim; ++c) {
                    out[((size_t)r * layer.input_dim + c) * T + t] =
                        in[((size_t)r * T + t) * layer.input_dim + c];
                }
            }
        }
        return EGRU_OK;
    case EGRU_OP_DOT:
        run_dot(in, egru_graph_value_ptr(b, node_value(m, k, 1)), rows, layer.input_dim,
                layer.params[0] != 0, out);
        return EGRU_OK;
    case EGRU_OP_TIME_STEPS:
        run_time_steps(&layer, in, rows, T, b->g->steps[y0], out);
        return EGRU_OK;
    case EGRU_OP_REPEAT_VECTOR:
        for (r = 0; r < rows; ++r) {
            for (i = 0; i < layer.params[0]; ++i) {
                memcpy(out + ((size_t)r * layer.params[0] + i) * layer.output_dim,
                       in + (size_t)r * layer.input_dim, layer.output_dim * sizeof(float));
            }
        }
        return EGRU_OK;
    }
    if (out_mask && in_mask && layer.op != EGRU_OP_EMBEDDING) {
        memcpy(out_mask, in_mask, n); /* the ops that pass their input's mask on */
    }
    return EGRU_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Public API */

static int is_graph(const egru_model_t *m)
{
    return m->input_kind == EGRU_INPUT_GRAPH;
}

egru_status_t egru_model_io(const egru_model_t *m, uint32_t *n_inputs, uint32_t *n_outputs)
{
    if (!m || !n_inputs || !n_outputs) {
        return EGRU_ERR_NULL_ARG;
    }
    if (m->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER; /* not initialised */
    }
    *n_inputs = is_graph(m) ? m->graph_input_count : 1u;
    *n_outputs = is_graph(m) ? m->graph_output_count : 1u;
    return EGRU_OK;
}

static egru_status_t io_info(const egru_model_t *m, uint32_t index, int output,
                             egru_io_info_t *info)
{
    uint32_t v;
    if (!m || !info) {
        return EGRU_ERR_NULL_ARG;
    }
    if (m->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER;
    }
    if (!is_graph(m)) {
        if (index != 0) {
            return EGRU_ERR_INDEX;
        }
        if (output) {
            info->kind = m->output_is_sequence ? EGRU_VALUE_SEQUENCE : EGRU_VALUE_VECTOR;
            info->width = m->output_dim;
        } else {
            info->kind =
                m->input_kind == EGRU_INPUT_TOKENS ? EGRU_VALUE_TOKENS : EGRU_VALUE_SEQUENCE;
            info->width = m->input_dim;
        }
        return EGRU_OK;
    }
    if (index >= (output ? m->graph_output_count : m->graph_input_count)) {
        return EGRU_ERR_INDEX;
    }
    v = egru_graph_io(m, (output ? m->graph_input_count : 0u) + index);
    info->kind = egru_value_kind(m, v);
    info->width = egru_value_width(m, v);
    return EGRU_OK;
}

egru_status_t egru_model_input(const egru_model_t *m, uint32_t index, egru_io_info_t *info)
{
    return io_info(m, index, 0, info);
}

egru_status_t egru_model_output(const egru_model_t *m, uint32_t index, egru_io_info_t *info)
{
    return io_info(m, index, 1, info);
}

egru_status_t egru_run_output_steps(const egru_model_t *m, const uint32_t *input_steps,
                                    uint32_t index, uint32_t *steps)
{
    gvalues_t g;
    egru_status_t s;
    if (!m || !input_steps || !steps) {
        return EGRU_ERR_NULL_ARG;
    }
    if (m->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER;
    }
    if (!is_graph(m)) {
        size_t count;
        if (index != 0) {
            return EGRU_ERR_INDEX;
        }
        if ((s = egru_output_count(m, 1u, input_steps[0], &count)) != EGRU_OK) {
            return s;
        }
        *steps = (uint32_t)(count / m->output_dim);
        return EGRU_OK;
    }
    if (!EGRU_CFG_GRAPH) {
        return EGRU_ERR_UNSUPPORTED;
    }
    if (index >= m->graph_output_count) {
        return EGRU_ERR_INDEX;
    }
    if ((s = egru_graph_steps(m, input_steps, &g)) != EGRU_OK) {
        return s;
    }
    *steps = g.steps[egru_graph_io(m, m->graph_input_count + index)];
    return EGRU_OK;
}

static egru_status_t plan_of(const egru_model_t *m, uint32_t batch, int low, gvalues_t *g,
                             gplan_t *p)
{
    const uint32_t rows = low ? 1u : (batch < GRAPH_ROW_BLOCK ? batch : GRAPH_ROW_BLOCK);
    return egru_graph_plan(m, rows, low ? GRAPH_LOW_ALIGN : GRAPH_FAST_ALIGN, g, p);
}

egru_status_t egru_run_arena_size(const egru_model_t *m, uint32_t batch,
                                  const uint32_t *input_steps, int low_memory, size_t *bytes)
{
    gvalues_t g;
    gplan_t p;
    egru_status_t s;
    if (!m || !input_steps || !bytes) {
        return EGRU_ERR_NULL_ARG;
    }
    if (m->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER;
    }
    if (!is_graph(m)) {
        return low_memory ? egru_arena_size_min(m, batch, input_steps[0], bytes)
                          : egru_arena_size(m, batch, input_steps[0], bytes);
    }
    if (!EGRU_CFG_GRAPH) {
        return EGRU_ERR_UNSUPPORTED;
    }
    if (batch == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if ((s = egru_graph_steps(m, input_steps, &g)) != EGRU_OK ||
        (s = plan_of(m, batch, low_memory != 0, &g, &p)) != EGRU_OK) {
        return s;
    }
    *bytes = (size_t)p.total;
    return EGRU_OK;
}

/* A chain through the chain functions. */
static egru_status_t run_chain(const egru_model_t *m, uint32_t batch, const egru_input_t *inputs,
                               uint32_t n_inputs, const egru_output_t *outputs, uint32_t n_outputs,
                               void *arena, size_t arena_bytes)
{
    if (n_inputs != 1) {
        return EGRU_ERR_WRONG_INPUT;
    }
    if (n_outputs != 1) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    if (m->quant_version == EGRU_QUANT_VERSION_INT16X8) {
        return EGRU_ERR_WRONG_DTYPE; /* integer-only: the _s16 functions */
    }
    if (m->input_kind == EGRU_INPUT_TOKENS) {
        return egru_forward_tokens(m, (const int32_t *)inputs[0].data, batch, inputs[0].steps,
                                   outputs[0].data, outputs[0].count, arena, arena_bytes);
    }
    return egru_forward_features(m, (const float *)inputs[0].data, batch, inputs[0].steps,
                                 outputs[0].data, outputs[0].count, arena, arena_bytes);
}

egru_status_t egru_run(const egru_model_t *m, uint32_t batch, const egru_input_t *inputs,
                       uint32_t n_inputs, const egru_output_t *outputs, uint32_t n_outputs,
                       void *arena, size_t arena_bytes)
{
    uint32_t steps[EGRU_GRAPH_MAX_VALUES];
    gvalues_t g;
    gplan_t p;
    gblock_t blk;
    egru_status_t s;
    uint32_t i, k;
    uint8_t *base;
    float *state, *scratch;

    if (!m || (!inputs && n_inputs) || (!outputs && n_outputs) || !arena) {
        return EGRU_ERR_NULL_ARG;
    }
    if (m->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER;
    }
    if (!is_graph(m)) {
        return run_chain(m, batch, inputs, n_inputs, outputs, n_outputs, arena, arena_bytes);
    }
    if (!EGRU_CFG_GRAPH || !EGRU_CFG_FLOAT) {
        return EGRU_ERR_UNSUPPORTED;
    }
    if (n_inputs != m->graph_input_count) {
        return EGRU_ERR_WRONG_INPUT;
    }
    if (n_outputs != m->graph_output_count) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    for (i = 0; i < n_inputs; ++i) {
        if (!inputs[i].data) {
            return EGRU_ERR_NULL_ARG;
        }
        steps[i] = inputs[i].steps;
    }
    for (i = 0; i < n_outputs; ++i) {
        if (!outputs[i].data) {
            return EGRU_ERR_NULL_ARG;
        }
    }
    if (batch == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if ((s = egru_graph_steps(m, steps, &g)) != EGRU_OK) {
        return s;
    }
    for (i = 0; i < n_outputs; ++i) { /* the caller's sizes */
        const uint32_t v = egru_graph_io(m, n_inputs + i);
        const uint64_t want = (uint64_t)batch * g.steps[v] * egru_value_width(m, v);
        if (want > (uint64_t)((size_t)-1 / sizeof(float))) {
            return EGRU_ERR_BAD_SHAPE;
        }
        if (want != outputs[i].count) {
            return EGRU_ERR_OUTPUT_SIZE;
        }
    }
    for (i = 0; i < n_inputs; ++i) {
        const uint32_t v = egru_graph_io(m, i), w = egru_value_width(m, v);
        if ((uint64_t)batch * g.steps[v] * w > (uint64_t)((size_t)-1 / sizeof(float))) {
            return EGRU_ERR_BAD_SHAPE;
        }
    }
    /* The fast plan when it fits, else the low-memory one. */
    if ((s = plan_of(m, batch, 0, &g, &p)) != EGRU_OK || p.total > arena_bytes) {
        if ((s = plan_of(m, batch, 1, &g, &p)) != EGRU_OK) {
            return s;
        }
        if (p.total > arena_bytes) {
            return EGRU_ERR_ARENA_TOO_SMALL;
        }
    }
    /* Inputs checked up front, so that no output is written on a bad one. */
    for (i = 0; i < n_inputs; ++i) {
        const uint32_t v = egru_graph_io(m, i), w = egru_value_width(m, v);
        const size_t count =
            (size_t)batch * g.steps[v] * (egru_value_kind(m, v) == EGRU_VALUE_TOKENS ? 1u : w);
        size_t j;
        if (egru_value_kind(m, v) == EGRU_VALUE_TOKENS) {
            const int32_t *ids = (const int32_t *)inputs[i].data;
            for (j = 0; j < count; ++j) {
                if (ids[j] < 0 || (uint32_t)ids[j] >= w) {
                    return EGRU_ERR_TOKEN_RANGE;
                }
            }
        } else {
            const float *x = (const float *)inputs[i].data;
            for (j = 0; j < count; ++j) {
                if (!isfinite(x[j])) {
                    return EGRU_ERR_NONFINITE;
                }
            }
        }
    }
    base = (uint8_t *)(((uintptr_t)arena + (p.align - 1)) & ~(uintptr_t)(p.align - 1));
    state = (float *)(void *)(base + G_ALIGN_UP(p.values_bytes, p.align));
    scratch = state + G_ALIGN_UP(p.state_floats * sizeof(float), p.align) / sizeof(float);
    blk.m = m;
    blk.g = &g;
    blk.inputs = inputs;
    blk.outputs = outputs;
    blk.base = base;
    blk.carry = 0;
    for (blk.b0 = 0; blk.b0 < batch; blk.b0 += p.rows) {
        const uint32_t rows = batch - blk.b0 < p.rows ? batch - blk.b0 : p.rows;
        for (k = 0; k < m->layer_count; ++k) {
            if ((s = egru_graph_run_node(&blk, k, rows, state, scratch)) != EGRU_OK) {
                return s; /* an id changed under the call: EGRU_ERR_TOKEN_RANGE */
            }
        }
    }
    return EGRU_OK;
}
