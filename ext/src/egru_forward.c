/*
 * egru_forward.c - arena planning and the forward pass over the layer chain.
 *
 * One runner, two kinds of plan (docs/embedded.md, "RAM: the low-memory plan"):
 *
 * - The fast plan (R = min(batch, EGRU_ROW_BLOCK) rows at a time, C = seq_len): every layer
 *   processes the whole sequence of a block of rows before the next layer starts, so a recurrent
 *   layer computes the input projections of all steps in one matrix product and advances the R
 *   rows together (one matrix-matrix recurrent product per step). Memory grows with R * seq_len.
 * - Chunked plans (one row at a time, C < seq_len steps at a time; C = 1 is the low-memory plan
 *   egru_arena_size_min sizes): the layers run on C steps of the row, then on the next C steps,
 *   with every recurrent layer's state kept between chunks. For a chain whose layers can run step
 *   by step (per-step layers, forward recurrent layers) the arena does not depend on seq_len. A
 *   layer that needs its whole input (a "whole-sequence" layer: Bidirectional or go_backwards
 *   recurrent, Conv1D, GlobalPooling, Flatten) gets its input materialized for the one row
 *   (steps x width floats), and so does its output when the layers after it run in chunks.
 *
 * The chain splits into phases: a phase is a run of step-wise layers over one time axis, ended
 * by a recurrent layer without return_sequences (its output is one step: the layers after it run
 * once, after the last chunk), by a whole-sequence layer (not part of any phase) or by the end.
 * The products give the same result for one input whether computed alone or in a batch
 * (egru_kernels.h), so every plan gives the same output bit for bit.
 *
 * Arena, each region at a multiple of the plan's alignment (64 bytes fast, 16 chunked):
 *
 *   [ buf A ][ buf B ][ seq 0 ][ seq 1 ][ states ][ layer scratch ][ mask ]
 *
 * buf A / buf B: ping-pong outputs of one chunk (layer k writes bufs[k & 1], sized for the
 * layers that write it; the last layer
 * writes the caller's output; a features model's first layer reads the caller's input in place).
 * seq 0 / seq 1 (chunked plans only): the materialized input and output of whole-sequence
 * layers. states: the fast plan reuses one region (each layer finishes before the next starts);
 * chunked plans keep every recurrent layer's state. mask: one byte per row and step, (rows,
 * steps), once an Embedding(mask_zero) or a Masking layer has made one; layers flagged
 * EGRU_FLAG_MASKED read it (chunked plans keep one chunk of it, or the whole row when a
 * whole-sequence layer reads it).
 */
#include <math.h>
#include <string.h>

#include "egru_internal.h"
#include "layers/egru_layers.h"

#define PLAN_LIMIT (1ull << 56) /* floats */
/* Rows run together in the fast plan. 16 rows make the recurrent product compute-bound for the
 * SIMD kernels (each weight read serves 16 rows) while the arena stays within a few times one
 * row's. */
#define EGRU_ROW_BLOCK 16u
/* Layers of a phase that chunked plans decode once per row instead of once per chunk (on the
 * stack: about 200 bytes each on a 32-bit core). 2 covers Embedding -> recurrent and the
 * features -> recurrent phase of the usual models. */
#define EGRU_PHASE_CACHE 2u
/* Region alignment: a cache line in the fast plan; in chunked plans 16 bytes (what any kernel
 * set's vector loads like, and little padding in a small arena). */
#define FAST_ALIGN     64u
#define CHUNKED_ALIGN  16u
#define ALIGN_UP(n, a) (((n) + ((a)-1)) & ~(uint64_t)((a)-1))

/* What a plan needs, in floats (mask: bytes), and the output's shape. */
typedef struct plan {
    uint32_t rows;           /* R: rows per block                                    */
    uint32_t chunk;          /* C: steps per chunk (seq_len for the fast plan)       */
    int chunked;             /* C < seq_len: one row at a time (rows == 1)           */
    int mask_whole;          /* chunked, and a whole-sequence layer reads the mask   */
    uint32_t align;          /* region alignment: FAST_ALIGN or CHUNKED_ALIGN        */
    uint64_t buf_floats[2];  /* buf A, buf B                                         */
    uint64_t seq_floats[2];  /* seq 0, seq 1                                         */
    uint64_t state_floats;   /* all the states the plan keeps at once                */
    uint64_t scratch_floats; /* the largest layer scratch                            */
    uint64_t mask_bytes;     /* the mask                                             */
    uint32_t out_steps;      /* output steps (1 when not a sequence)                 */
} plan_t;

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static int is_recurrent(egru_op_t op)
{
    return op == EGRU_OP_GRU || op == EGRU_OP_LSTM || op == EGRU_OP_SIMPLE_RNN;
}

/* A layer that needs its whole input sequence before it can give any output. */
static int is_whole_sequence(const egru_layer_t *layer)
{
    /* The flags a build supports (egru_features.h): a build without any whole-sequence layer
     * compiles the seq-region code away. */
    const uint32_t flags = (EGRU_CFG_BIDIRECTIONAL ? EGRU_FLAG_BIDIRECTIONAL : 0u) |
                           (EGRU_CFG_GO_BACKWARDS ? EGRU_FLAG_GO_BACKWARDS : 0u);
    switch (layer->op) {
    case EGRU_OP_CONV1D: return EGRU_CFG_OP_CONV1D;
    case EGRU_OP_GLOBAL_POOL: return EGRU_CFG_OP_GLOBAL_POOL;
    case EGRU_OP_FLATTEN: return EGRU_CFG_OP_FLATTEN;
    default: return is_recurrent(layer->op) && (layer->flags & flags) != 0;
    }
}

/* A step-wise recurrent layer that ends its phase: its output is its last state. */
static int ends_phase(const egru_layer_t *layer)
{
    return is_recurrent(layer->op) && !(layer->flags & EGRU_FLAG_RETURN_SEQUENCES);
}

/* Output steps of `layer` for `steps` input steps; 0 when the shape does not fit the layer. */
static uint32_t layer_out_steps(const egru_layer_t *layer, uint32_t steps)
{
    switch (layer->op) {
    case EGRU_OP_GRU:
    case EGRU_OP_LSTM:
    case EGRU_OP_SIMPLE_RNN: return (layer->flags & EGRU_FLAG_RETURN_SEQUENCES) ? steps : 1u;
    case EGRU_OP_CONV1D: return egru_conv1d_out_steps(layer, steps);
    case EGRU_OP_GLOBAL_POOL: return 1u;
    case EGRU_OP_FLATTEN: return steps == layer->params[0] ? 1u : 0u;
    default: return steps;
    }
}

/* The plan for blocks of `rows` rows and chunks of `chunk` steps (rows == 1 when chunk <
 * seq_len). Walks the chain exactly as run_blocks does and takes, per region, the most any
 * layer needs. */
static egru_status_t make_plan(const egru_model_t *m, uint32_t rows, uint32_t chunk,
                               uint32_t seq_len, plan_t *p)
{
    uint32_t k, steps = seq_len;
    int prev_whole = 0, region = -1; /* the seq region holding the current input, as run_blocks */
    egru_layer_t layer;
    memset(p, 0, sizeof *p);
    p->rows = rows;
    p->chunk = chunk;
    p->chunked = chunk < seq_len;
    p->align = p->chunked ? CHUNKED_ALIGN : FAST_ALIGN;
    if ((uint64_t)rows * seq_len > 0xFFFFFFFFu) {
        return EGRU_ERR_BAD_SHAPE; /* a block's rows * steps are counted in uint32 */
    }
    for (k = 0; k < m->layer_count; ++k) {
        const int last = k + 1 == m->layer_count;
        const uint32_t c = steps < chunk ? steps : chunk; /* steps of this layer per chunk */
        uint32_t out_steps;
        (void)egru_model_layer(m, k, &layer); /* validated by egru_model_init */
        out_steps = layer_out_steps(&layer, steps);
        if (out_steps == 0) {
            return EGRU_ERR_BAD_SHAPE; /* Conv1D input too short, or Flatten's T differs */
        }
        if (is_whole_sequence(&layer)) {
            /* Input: the whole row, materialized in a seq region when the layers before ran in
             * several chunks (else it is the previous layer's buffer, counted there, or the
             * caller's input). Output: likewise for the layers after it. */
            if (k > 0 && !prev_whole && steps > chunk) { /* the phase before writes a region */
                region = region == 0 ? 1 : 0;
                p->seq_floats[region] =
                    max_u64(p->seq_floats[region], (uint64_t)steps * layer.input_dim);
            }
            if (!last) {
                const uint64_t out = (uint64_t)rows * out_steps * layer.output_dim;
                if (out_steps > chunk) {
                    region = region == 0 ? 1 : 0;
                    p->seq_floats[region] = max_u64(p->seq_floats[region], out);
                } else {
                    region = -1;
                    p->buf_floats[k & 1u] = max_u64(p->buf_floats[k & 1u], out);
                }
            }
            if (p->chunked && (layer.flags & EGRU_FLAG_MASKED)) {
                p->mask_whole = 1;
            }
        } else if (!last) {
            const uint32_t per_chunk = layer_out_steps(&layer, c);
            p->buf_floats[k & 1u] =
                max_u64(p->buf_floats[k & 1u], (uint64_t)rows * per_chunk * layer.output_dim);
        }
        if (is_recurrent(layer.op)) {
            const uint64_t state = egru_rnn_state_floats(&layer, rows);
            const uint32_t call_steps = is_whole_sequence(&layer) ? steps : c;
            /* A whole-sequence recurrent layer of a chunked plan projects `chunk` steps at a
             * time: what it keeps is its input and output, not T steps of projections. */
            p->state_floats =
                p->chunked ? p->state_floats + state : max_u64(p->state_floats, state);
            p->scratch_floats = max_u64(p->scratch_floats,
                                        egru_rnn_scratch_floats(&layer, rows, call_steps, chunk));
        }
        if (layer.op == EGRU_OP_DENSE) { /* int8 models quantize each step's input */
            p->scratch_floats = max_u64(p->scratch_floats, (layer.input_dim + 3u) / 4u);
        }
        if (ends_phase(&layer)) {
            region = -1; /* the next phase reads this layer's one-step buffer */
        }
        steps = out_steps;
        prev_whole = is_whole_sequence(&layer);
        if (p->state_floats > PLAN_LIMIT) {
            return EGRU_ERR_BAD_SHAPE;
        }
    }
    p->out_steps = steps;
    p->mask_bytes = (uint64_t)rows * (p->chunked && !p->mask_whole ? chunk : seq_len);
    /* Keep every byte count below 2^60 so that the layout arithmetic cannot wrap. */
    if (p->buf_floats[0] > PLAN_LIMIT || p->buf_floats[1] > PLAN_LIMIT ||
        p->seq_floats[0] > PLAN_LIMIT || p->seq_floats[1] > PLAN_LIMIT ||
        p->scratch_floats > PLAN_LIMIT) {
        return EGRU_ERR_BAD_SHAPE;
    }
    return EGRU_OK;
}

/* Byte offsets of the arena regions (relative to the aligned arena start), and the total. */
typedef struct layout {
    uint64_t buf_b, seq0, seq1, state, scratch, mask, total;
} layout_t;

static layout_t arena_layout(const plan_t *p)
{
    const uint32_t a = p->align;
    layout_t l;
    l.buf_b = ALIGN_UP(p->buf_floats[0] * sizeof(float), a);
    l.seq0 = l.buf_b + ALIGN_UP(p->buf_floats[1] * sizeof(float), a);
    l.seq1 = l.seq0 + ALIGN_UP(p->seq_floats[0] * sizeof(float), a);
    l.state = l.seq1 + ALIGN_UP(p->seq_floats[1] * sizeof(float), a);
    l.scratch = l.state + ALIGN_UP(p->state_floats * sizeof(float), a);
    l.mask = l.scratch + ALIGN_UP(p->scratch_floats * sizeof(float), a);
    /* The arena itself may start anywhere: reserve room to align its start. */
    l.total = l.mask + ALIGN_UP(p->mask_bytes, a) + a;
    return l;
}

/* The plan of `rows` rows and `chunk` steps, and its arena size. */
static egru_status_t sized_plan(const egru_model_t *m, uint32_t rows, uint32_t chunk,
                                uint32_t seq_len, plan_t *p, uint64_t *bytes)
{
    egru_status_t s = make_plan(m, rows, chunk, seq_len, p);
    if (s != EGRU_OK) {
        return s;
    }
    *bytes = arena_layout(p).total;
    return *bytes > (uint64_t)(size_t)-1 ? EGRU_ERR_BAD_SHAPE : EGRU_OK;
}

/* The fast plan: blocks of up to EGRU_ROW_BLOCK rows, whole sequences. */
static egru_status_t fast_plan(const egru_model_t *m, uint32_t batch, uint32_t seq_len, plan_t *p,
                               uint64_t *bytes)
{
    return sized_plan(m, batch < EGRU_ROW_BLOCK ? batch : EGRU_ROW_BLOCK, seq_len, seq_len, p,
                      bytes);
}

/* The low-memory plan: the smaller of one row of whole sequences (the fast layout: for short
 * sequences, keeping one state at a time and the mask of the whole row can take less) and one
 * row one step at a time. */
static egru_status_t low_plan(const egru_model_t *m, uint32_t seq_len, plan_t *p, uint64_t *bytes)
{
    plan_t whole;
    uint64_t whole_bytes;
    egru_status_t s = sized_plan(m, 1u, 1u, seq_len, p, bytes);
    if (EGRU_CFG_FAST_PLAN &&
        sized_plan(m, 1u, seq_len, seq_len, &whole, &whole_bytes) == EGRU_OK &&
        (s != EGRU_OK || whole_bytes < *bytes)) {
        *p = whole;
        *bytes = whole_bytes;
        return EGRU_OK;
    }
    return s;
}

/* The plan the forward functions run in `arena_bytes`: the fast plan when it fits (and is built
 * in, EGRU_CFG_FAST_PLAN), else one row of whole sequences, else one row in the longest chunk
 * of steps that fits (powers of two), else the low-memory plan, else EGRU_ERR_ARENA_TOO_SMALL. */
static egru_status_t choose_plan(const egru_model_t *m, uint32_t batch, uint32_t seq_len,
                                 size_t arena_bytes, plan_t *p)
{
    uint64_t need = 0;
    uint32_t chunk;
    egru_status_t s;
    if (EGRU_CFG_FAST_PLAN &&
        (fast_plan(m, batch, seq_len, p, &need) == EGRU_OK && need <= arena_bytes)) {
        return EGRU_OK; /* (a fast plan too large to count falls through to the others) */
    }
    if (EGRU_CFG_FAST_PLAN &&
        (sized_plan(m, 1u, seq_len, seq_len, p, &need) == EGRU_OK && need <= arena_bytes)) {
        return EGRU_OK;
    }
    for (chunk = 1u << 30; chunk > 1; chunk >>= 1) { /* the longest chunk that fits */
        if (chunk < seq_len && sized_plan(m, 1u, chunk, seq_len, p, &need) == EGRU_OK &&
            need <= arena_bytes) {
            return EGRU_OK;
        }
    }
    if ((s = sized_plan(m, 1u, 1u, seq_len, p, &need)) != EGRU_OK) {
        return s;
    }
    return need <= arena_bytes ? EGRU_OK : EGRU_ERR_ARENA_TOO_SMALL;
}

static egru_status_t check_model_shape(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                       const void *result)
{
    if (!model || !result) {
        return EGRU_ERR_NULL_ARG;
    }
    if (model->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER; /* not initialised */
    }
    if (batch == 0 || seq_len == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if (EGRU_CFG_GRAPH && model->input_kind == EGRU_INPUT_GRAPH) {
        return EGRU_ERR_WRONG_INPUT; /* a graph: egru_run */
    }
    return EGRU_OK;
}

/* egru_arena_size (low = 0) and egru_arena_size_min (low = 1). */
static egru_status_t arena_size_of(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                   int low, size_t *arena_bytes)
{
    plan_t p;
    uint64_t need = 0;
    egru_status_t s = check_model_shape(model, batch, seq_len, arena_bytes);
    if (EGRU_CFG_INT16X8 && s == EGRU_OK && model->quant_version == EGRU_QUANT_VERSION_INT16X8) {
        return EGRU_CFG_INT16X8 ? egru_s16_arena_size(model, seq_len, arena_bytes)
                                : EGRU_ERR_UNSUPPORTED;
    }
    if (s == EGRU_OK) {
        s = EGRU_CFG_FAST_PLAN && !low ? fast_plan(model, batch, seq_len, &p, &need)
                                       : low_plan(model, seq_len, &p, &need);
    }
    if (s == EGRU_OK) {
        *arena_bytes = (size_t)need;
    }
    return s;
}

egru_status_t egru_arena_size(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                              size_t *arena_bytes)
{
    return arena_size_of(model, batch, seq_len, 0, arena_bytes);
}

egru_status_t egru_arena_size_min(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                  size_t *arena_bytes)
{
    return arena_size_of(model, batch, seq_len, 1, arena_bytes);
}

egru_status_t egru_output_count(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                size_t *count)
{
    uint64_t n;
    plan_t p;
    egru_status_t s = check_model_shape(model, batch, seq_len, count);
    if (s != EGRU_OK) {
        return s;
    }
    if (EGRU_CFG_INT16X8 && model->quant_version == EGRU_QUANT_VERSION_INT16X8) {
        if ((s = egru_s16_out_steps(model, seq_len, &p.out_steps)) != EGRU_OK) {
            return s;
        }
    } else if ((s = make_plan(model, 1u, seq_len, seq_len, &p)) != EGRU_OK) {
        return s;
    }
    n = (uint64_t)batch * model->output_dim * p.out_steps;
    if (n > (uint64_t)((size_t)-1 / sizeof(float))) {
        return EGRU_ERR_BAD_SHAPE;
    }
    *count = (size_t)n;
    return EGRU_OK;
}

/* Shape, buffer and arena checks shared by both entry points; on success *p is the plan. */
static egru_status_t check_call(const egru_model_t *m, uint32_t kind, const void *in,
                                uint32_t batch, uint32_t seq_len, const float *out,
                                size_t out_count, const void *arena, size_t arena_bytes, plan_t *p)
{
    egru_status_t s;
    if (!m || !in || !out || !arena) {
        return EGRU_ERR_NULL_ARG;
    }
    if (m->quant_version == EGRU_QUANT_VERSION_INT16X8) {
        return EGRU_ERR_WRONG_DTYPE; /* integer-only: egru_forward_*_s16 */
    }
    if (!EGRU_CFG_FLOAT) {
        return EGRU_ERR_UNSUPPORTED; /* an integer-only build (egru_features.h) */
    }
    if ((s = check_model_shape(m, batch, seq_len, out)) != EGRU_OK) {
        return s;
    }
    if ((s = choose_plan(m, batch, seq_len, arena_bytes, p)) != EGRU_OK &&
        s != EGRU_ERR_ARENA_TOO_SMALL) {
        return s;
    }
    if (m->input_kind != kind) {
        return EGRU_ERR_WRONG_INPUT;
    }
    {
        /* The output steps of the plan choose_plan made last (they depend on seq_len alone, not
         * on the plan's rows or chunk; when no plan fits the arena, its last make_plan, of the
         * one-step plan, succeeded all the same). */
        const uint32_t out_steps = p->out_steps;
        if ((uint64_t)batch * m->output_dim * out_steps > (uint64_t)((size_t)-1 / sizeof(float))) {
            return EGRU_ERR_BAD_SHAPE;
        }
        if ((uint64_t)batch * m->output_dim * out_steps != out_count) {
            return EGRU_ERR_OUTPUT_SIZE;
        }
    }
    if (s == EGRU_ERR_ARENA_TOO_SMALL) {
        return s;
    }
    if ((uint64_t)batch * seq_len * m->input_dim > (uint64_t)((size_t)-1 / sizeof(float))) {
        return EGRU_ERR_BAD_SHAPE;
    }
    return EGRU_OK;
}

/* The Activation layer: `act` on each step (softmax per step). */
static void activate_steps(const egru_layer_t *layer, const float *in, uint32_t steps, float *out)
{
    const uint32_t n = layer->output_dim;
    uint32_t t;
    memcpy(out, in, (size_t)steps * n * sizeof(float));
    for (t = 0; t < steps; ++t) {
        egru_activate_f32(layer, layer->activation, out + (size_t)t * n, n);
    }
}

/* Runs one layer on `rows` rows of `steps` input steps. in: (rows, steps, input_dim), or the
 * ids (rows * steps) for the Embedding; dst: (rows, out steps, output_dim); state: a recurrent
 * layer's state (egru_rnn_state_floats(layer, rows) floats), carried in and out; mask: (rows,
 * steps) bytes. EGRU_OK, or the Embedding's EGRU_ERR_TOKEN_RANGE. */
static egru_status_t run_layer(const egru_layer_t *layer, const int32_t *ids, const float *in,
                               uint32_t rows, uint32_t steps, uint32_t window, float *dst,
                               float *state, float *scratch, uint8_t *mask)
{
    const size_t n = (size_t)rows * steps; /* per-step layers see rows * steps steps */
    uint32_t r;
    switch (layer->op) {
    case EGRU_OP_EMBEDDING:
        if (EGRU_CFG_OP_EMBEDDING) {
            return egru_embedding_f32(layer, ids, (uint32_t)n, dst, mask);
        }
        break;
    case EGRU_OP_GRU:
    case EGRU_OP_LSTM:
    case EGRU_OP_SIMPLE_RNN:
        if (EGRU_CFG_OP_GRU || EGRU_CFG_OP_LSTM || EGRU_CFG_OP_SIMPLE_RNN) {
            egru_rnn_f32(layer, in, mask, rows, steps, window, dst, state, scratch);
        }
        break;
    case EGRU_OP_DENSE:
        if (EGRU_CFG_OP_DENSE) {
            egru_dense_f32(layer, in, (uint32_t)n, dst, (int8_t *)(void *)scratch);
        }
        break;
    case EGRU_OP_CONV1D:
        if (EGRU_CFG_OP_CONV1D) {
            const uint32_t out_steps = egru_conv1d_out_steps(layer, steps);
            for (r = 0; r < rows; ++r) {
                egru_conv1d_f32(layer, in + (size_t)r * steps * layer->input_dim, steps,
                                dst + (size_t)r * out_steps * layer->output_dim);
            }
        }
        break;
    case EGRU_OP_GLOBAL_POOL:
        if (EGRU_CFG_OP_GLOBAL_POOL) {
            for (r = 0; r < rows; ++r) {
                egru_global_pool_f32(layer, in + (size_t)r * steps * layer->input_dim,
                                     mask + (size_t)r * steps, steps,
                                     dst + (size_t)r * layer->output_dim);
            }
        }
        break;
    case EGRU_OP_AFFINE:
        if (EGRU_CFG_OP_AFFINE) {
            egru_affine_f32(layer, in, (uint32_t)n, dst);
        }
        break;
    case EGRU_OP_LAYER_NORM:
        if (EGRU_CFG_OP_LAYER_NORM) {
            egru_layer_norm_f32(layer, in, (uint32_t)n, dst);
        }
        break;
    case EGRU_OP_ACTIVATION:
        if (EGRU_CFG_OP_ACTIVATION) {
            activate_steps(layer, in, (uint32_t)n, dst);
        }
        break;
    case EGRU_OP_FLATTEN: /* (T, C) row-major is already (T * C) */
        if (EGRU_CFG_OP_FLATTEN) {
            memcpy(dst, in, n * layer->input_dim * sizeof(float));
        }
        break;
    case EGRU_OP_MASKING:
        if (EGRU_CFG_OP_MASKING) {
            egru_masking_f32(layer, in, (uint32_t)n, dst, mask);
        }
        break;
    case EGRU_OP_MERGE:
    case EGRU_OP_CONCATENATE:
    case EGRU_OP_REPEAT_VECTOR:
    case EGRU_OP_ATTENTION:
    case EGRU_OP_TIME_STEPS:
    case EGRU_OP_DOT:
    case EGRU_OP_RESHAPE:
    case EGRU_OP_PERMUTE: break; /* graph files only (egru_graph.c) */
    }
    return EGRU_OK;
}

/* Runs the chain over the batch, block by block, phase by phase, chunk by chunk (plan p from
 * check_call; the walk make_plan sized). Exactly one of ids / x is non-NULL. EGRU_OK, or
 * EGRU_ERR_TOKEN_RANGE when the Embedding reads an id out of range (only possible when the
 * caller changed the ids after the up-front check): then the rows before have written their part
 * of `out` (and the current row possibly some of its steps), and nothing after runs. */
static egru_status_t run_blocks(const egru_model_t *m, const plan_t *p, const int32_t *ids,
                                const float *x, uint32_t batch, uint32_t seq_len, float *out,
                                void *arena)
{
    const layout_t l = arena_layout(p);
    uint8_t *base = (uint8_t *)(((uintptr_t)arena + (p->align - 1)) & ~(uintptr_t)(p->align - 1));
    float *bufs[2], *seq[2], *state, *scratch;
    uint8_t *mask;
    const uint32_t L = m->layer_count;
    const size_t out_row = (size_t)m->output_dim * p->out_steps;
    uint32_t b0;

    bufs[0] = (float *)(void *)base;
    bufs[1] = (float *)(void *)(base + l.buf_b);
    seq[0] = (float *)(void *)(base + l.seq0);
    seq[1] = (float *)(void *)(base + l.seq1);
    state = (float *)(void *)(base + l.state);
    scratch = (float *)(void *)(base + l.scratch);
    mask = base + l.mask;
    for (b0 = 0; b0 < batch; b0 += p->rows) {
        const uint32_t rows = batch - b0 < p->rows ? batch - b0 : p->rows;
        float *row_out = out + b0 * out_row;
        /* The current input sequence (rows, steps, width), and the seq region it is in (-1:
         * none). A chunk of it starts at in_seq + t0 * width: rows == 1 whenever t0 > 0. */
        const float *in_seq = x ? x + (size_t)b0 * seq_len * m->input_dim : NULL;
        uint32_t width = m->input_dim, steps = seq_len, k = 0;
        int in_region = -1;
        size_t state_base = 0; /* chunked plans: the next recurrent layer's state offset */
        egru_layer_t layer, cache[EGRU_PHASE_CACHE];

        while (k < L) {
            uint32_t e, t0, c, c_max, end_steps, end_width, kk0;
            int use_cache;
            int end_region = -1;
            float *end_dst = NULL;
            (void)egru_model_layer(m, k, &layer); /* validated by egru_model_init */
            if (is_whole_sequence(&layer)) {
                const uint32_t out_steps = layer_out_steps(&layer, steps);
                float *dst = bufs[k & 1u];
                egru_status_t s;
                if (k + 1 == L) {
                    dst = row_out;
                } else if (out_steps > p->chunk) {
                    end_region = in_region == 0 ? 1 : 0;
                    dst = seq[end_region];
                }
                if (is_recurrent(layer.op)) {
                    memset(state + state_base, 0,
                           (size_t)egru_rnn_state_floats(&layer, rows) * sizeof(float));
                }
                s = run_layer(&layer, NULL, in_seq, rows, steps, p->chunk, dst, state + state_base,
                              scratch, mask);
                if (s != EGRU_OK) {
                    return s;
                }
                if (p->chunked && is_recurrent(layer.op)) {
                    state_base += (size_t)egru_rnn_state_floats(&layer, rows);
                }
                in_seq = dst;
                in_region = end_region;
                steps = out_steps;
                width = layer.output_dim;
                ++k;
                continue;
            }
            /* A phase: layers k .. e - 1, step-wise, over `steps` steps in chunks. */
            for (e = k; e < L; ++e) {
                (void)egru_model_layer(m, e, &layer);
                if (is_whole_sequence(&layer)) {
                    break;
                }
                if (ends_phase(&layer)) {
                    ++e;
                    break;
                }
            }
            (void)egru_model_layer(m, e - 1, &layer);
            end_steps = ends_phase(&layer) ? 1u : steps;
            end_width = layer.output_dim;
            if (e < L && end_steps > p->chunk) { /* a whole-sequence layer reads the phase */
                end_region = in_region == 0 ? 1 : 0;
            }
            c_max = steps < p->chunk ? steps : p->chunk;
            /* Many chunks of a short phase (the low-memory plan): decode its layers once. */
            use_cache = steps > c_max && e - k <= EGRU_PHASE_CACHE;
            for (kk0 = k; use_cache && kk0 < e; ++kk0) {
                (void)egru_model_layer(m, kk0, &cache[kk0 - k]);
            }
            for (t0 = 0; t0 < steps; t0 += c) {
                const float *cur = in_seq ? in_seq + (size_t)t0 * width : NULL;
                uint8_t *chunk_mask = mask + (p->chunked && p->mask_whole ? t0 : 0u);
                size_t state_off = state_base;
                uint32_t kk;
                c = steps - t0 < c_max ? steps - t0 : c_max;
                for (kk = k; kk < e; ++kk) {
                    float *dst = bufs[kk & 1u];
                    const egru_layer_t *lp = use_cache ? &cache[kk - k] : &layer;
                    egru_status_t s;
                    if (!use_cache) {
                        (void)egru_model_layer(m, kk, &layer);
                    }
                    if (kk + 1 == L) {
                        dst = row_out + (ends_phase(lp) ? 0u : (size_t)t0 * lp->output_dim);
                    } else if (kk + 1 == e && end_region >= 0) {
                        dst = seq[end_region] + (size_t)t0 * lp->output_dim;
                    }
                    if (is_recurrent(lp->op) && t0 == 0) {
                        memset(state + state_off, 0,
                               (size_t)egru_rnn_state_floats(lp, rows) * sizeof(float));
                    }
                    s = run_layer(lp, ids ? ids + (size_t)b0 * seq_len + t0 : NULL, cur, rows, c, c,
                                  dst, state + state_off, scratch, chunk_mask);
                    if (s != EGRU_OK) {
                        return s;
                    }
                    if (p->chunked && is_recurrent(lp->op)) {
                        state_off += (size_t)egru_rnn_state_floats(lp, rows);
                    }
                    cur = dst;
                    end_dst = dst;
                }
            }
            if (p->chunked) {
                for (; k < e; ++k) {
                    (void)egru_model_layer(m, k, &layer);
                    if (is_recurrent(layer.op)) {
                        state_base += (size_t)egru_rnn_state_floats(&layer, rows);
                    }
                }
            }
            k = e;
            in_seq = end_region >= 0 ? seq[end_region] : end_dst;
            in_region = end_region;
            steps = end_steps;
            width = end_width;
        }
    }
    return EGRU_OK;
}

egru_status_t egru_forward_tokens(const egru_model_t *model, const int32_t *ids, uint32_t batch,
                                  uint32_t seq_len, float *out, size_t out_count, void *arena,
                                  size_t arena_bytes)
{
    size_t i, n;
    plan_t p;
    egru_status_t s = check_call(model, EGRU_INPUT_TOKENS, ids, batch, seq_len, out, out_count,
                                 arena, arena_bytes, &p);
    if (s != EGRU_OK) {
        return s;
    }
    /* Checked up front so that `out` stays untouched on a bad id; the Embedding checks each id
     * again where it reads it (the caller's ids may change during the call). */
    n = (size_t)batch * seq_len;
    for (i = 0; i < n; ++i) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= model->input_dim) {
            return EGRU_ERR_TOKEN_RANGE;
        }
    }
    return run_blocks(model, &p, ids, NULL, batch, seq_len, out, arena);
}

egru_status_t egru_forward_features(const egru_model_t *model, const float *x, uint32_t batch,
                                    uint32_t seq_len, float *out, size_t out_count, void *arena,
                                    size_t arena_bytes)
{
    size_t i, n;
    plan_t p;
    egru_status_t s = check_call(model, EGRU_INPUT_FEATURES, x, batch, seq_len, out, out_count,
                                 arena, arena_bytes, &p);
    if (s != EGRU_OK) {
        return s;
    }
    n = (size_t)batch * seq_len * model->input_dim;
    for (i = 0; i < n; ++i) {
        if (!isfinite(x[i])) {
            return EGRU_ERR_NONFINITE;
        }
    }
    return run_blocks(model, &p, NULL, x, batch, seq_len, out, arena);
}
