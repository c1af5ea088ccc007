/*
 * egru_forward.c - arena planning and the forward pass over the layer chain.
 *
 * The batch runs in blocks of up to EGRU_ROW_BLOCK rows: every layer processes the whole block
 * before the next layer starts, so a recurrent layer advances all rows of the block together and
 * its recurrent product is a matrix-matrix product (the weights are read once per step for the
 * block). Arena layout for one block (blocks run one after another and reuse it), each region
 * starting at a multiple of EGRU_BLOB_ALIGN:
 *
 *   [ seq A ][ seq B ][ recurrent state ][ layer scratch ][ mask: rows * seq_len bytes ]
 *
 * seq A and seq B each hold the largest intermediate output (rows x steps x width) of the chain.
 * Layer k reads the previous output and writes the other buffer (ping-pong); the last layer
 * writes straight into the caller's output; a feature model's first layer reads the caller's
 * input in place. The mask holds one byte per row and input step, (rows, steps), once an
 * Embedding(mask_zero) or a Masking layer has made one; layers flagged EGRU_FLAG_MASKED read it.
 */
#include <math.h>
#include <string.h>

#include "egru_internal.h"
#include "layers/egru_layers.h"

#define PLAN_LIMIT (1ull << 56) /* floats */
/* Rows run together. 16 rows make the recurrent product compute-bound for the SIMD kernels
 * (each weight read serves 16 rows) while the arena stays within a few times one row's. */
#define EGRU_ROW_BLOCK 16u
#define ALIGN_UP(n)    (((n) + (EGRU_BLOB_ALIGN - 1)) & ~(uint64_t)(EGRU_BLOB_ALIGN - 1))

/* The floats each arena region needs for one block of `rows` rows of seq_len steps, and the
 * output's shape. */
typedef struct plan {
    uint32_t rows;           /* rows per block: min(batch, EGRU_ROW_BLOCK) */
    uint64_t seq_floats;     /* each of seq A and seq B                 */
    uint64_t state_floats;   /* the largest recurrent layer's state     */
    uint64_t scratch_floats; /* the largest layer scratch               */
    uint32_t out_steps;      /* output steps (1 when not a sequence)    */
} plan_t;

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
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

static egru_status_t make_plan(const egru_model_t *m, uint32_t batch, uint32_t seq_len, plan_t *p)
{
    uint32_t k, steps = seq_len, R;
    egru_layer_t layer;
    memset(p, 0, sizeof *p);
    p->rows = R = batch < EGRU_ROW_BLOCK ? batch : EGRU_ROW_BLOCK;
    if ((uint64_t)R * seq_len > 0xFFFFFFFFu) {
        return EGRU_ERR_BAD_SHAPE; /* a block's rows * steps are counted in uint32 */
    }
    for (k = 0; k < m->layer_count; ++k) {
        uint32_t out_steps;
        (void)egru_model_layer(m, k, &layer); /* validated by egru_model_init */
        out_steps = layer_out_steps(&layer, steps);
        if (out_steps == 0) {
            return EGRU_ERR_BAD_SHAPE; /* Conv1D input too short, or Flatten's T differs */
        }
        if (k + 1 < m->layer_count) {
            p->seq_floats = max_u64(p->seq_floats, (uint64_t)R * out_steps * layer.output_dim);
        }
        if (layer.op == EGRU_OP_GRU || layer.op == EGRU_OP_LSTM || layer.op == EGRU_OP_SIMPLE_RNN) {
            p->state_floats = max_u64(p->state_floats, egru_rnn_state_floats(&layer, R));
            p->scratch_floats =
                max_u64(p->scratch_floats, egru_rnn_scratch_floats(&layer, R, steps));
        }
        if (layer.op == EGRU_OP_DENSE) { /* int8 models quantize each step's input */
            p->scratch_floats = max_u64(p->scratch_floats, (layer.input_dim + 3u) / 4u);
        }
        steps = out_steps;
    }
    p->out_steps = steps;
    /* Keep every byte count below 2^60 so that the layout arithmetic cannot wrap. */
    if (p->seq_floats > PLAN_LIMIT || p->state_floats > PLAN_LIMIT ||
        p->scratch_floats > PLAN_LIMIT) {
        return EGRU_ERR_BAD_SHAPE;
    }
    return EGRU_OK;
}

/* Byte offsets of the arena regions (relative to the aligned arena start), and the total. */
typedef struct layout {
    uint64_t seq_b, state, scratch, mask, total;
} layout_t;

static layout_t arena_layout(const plan_t *p, uint32_t seq_len)
{
    layout_t l;
    const uint64_t seq_bytes = ALIGN_UP(p->seq_floats * sizeof(float));
    l.seq_b = seq_bytes;
    l.state = l.seq_b + seq_bytes;
    l.scratch = l.state + ALIGN_UP(p->state_floats * sizeof(float));
    l.mask = l.scratch + ALIGN_UP(p->scratch_floats * sizeof(float));
    /* The arena itself may start anywhere: reserve room to align its start. */
    l.total = l.mask + ALIGN_UP((uint64_t)p->rows * seq_len) + EGRU_BLOB_ALIGN;
    return l;
}

egru_status_t egru_arena_size(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                              size_t *arena_bytes)
{
    plan_t p;
    layout_t l;
    egru_status_t s;
    if (!model || !arena_bytes) {
        return EGRU_ERR_NULL_ARG;
    }
    if (model->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER; /* not initialised */
    }
    if (batch == 0 || seq_len == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if ((s = make_plan(model, batch, seq_len, &p)) != EGRU_OK) {
        return s;
    }
    l = arena_layout(&p, seq_len);
    if (l.total > (uint64_t)(size_t)-1) {
        return EGRU_ERR_BAD_SHAPE;
    }
    *arena_bytes = (size_t)l.total;
    return EGRU_OK;
}

egru_status_t egru_output_count(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                size_t *count)
{
    uint64_t n;
    plan_t p;
    egru_status_t s;
    if (!model || !count) {
        return EGRU_ERR_NULL_ARG;
    }
    if (model->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER;
    }
    if (batch == 0 || seq_len == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if ((s = make_plan(model, batch, seq_len, &p)) != EGRU_OK) {
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
    layout_t l;
    egru_status_t s;
    if (!m || !in || !out || !arena) {
        return EGRU_ERR_NULL_ARG;
    }
    if (m->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER; /* not initialised */
    }
    if (batch == 0 || seq_len == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if ((s = make_plan(m, batch, seq_len, p)) != EGRU_OK) {
        return s;
    }
    l = arena_layout(p, seq_len);
    if (l.total > (uint64_t)(size_t)-1) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if (m->input_kind != kind) {
        return EGRU_ERR_WRONG_INPUT;
    }
    if ((uint64_t)batch * m->output_dim * p->out_steps > (uint64_t)((size_t)-1 / sizeof(float))) {
        return EGRU_ERR_BAD_SHAPE;
    }
    if ((uint64_t)batch * m->output_dim * p->out_steps != out_count) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    if (arena_bytes < l.total) {
        return EGRU_ERR_ARENA_TOO_SMALL;
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

/* Runs the chain over the batch, block by block (plan p from check_call). Exactly one of ids / x
 * is non-NULL. EGRU_OK, or EGRU_ERR_TOKEN_RANGE when the Embedding reads an id out of range
 * (only possible when the caller changed the ids after the up-front check): then the blocks
 * before have written their rows of `out`, and nothing after runs. */
static egru_status_t run_blocks(const egru_model_t *m, const plan_t *p, const int32_t *ids,
                                const float *x, uint32_t batch, uint32_t seq_len, float *out,
                                void *arena)
{
    const layout_t l = arena_layout(p, seq_len);
    uint8_t *base =
        (uint8_t *)(((uintptr_t)arena + (EGRU_BLOB_ALIGN - 1)) & ~(uintptr_t)(EGRU_BLOB_ALIGN - 1));
    float *bufs[2], *state, *scratch;
    uint8_t *mask;
    const size_t out_row = (size_t)m->output_dim * p->out_steps;
    uint32_t b0, k, r;

    bufs[0] = (float *)(void *)base;
    bufs[1] = (float *)(void *)(base + l.seq_b);
    state = (float *)(void *)(base + l.state);
    scratch = (float *)(void *)(base + l.scratch);
    mask = base + l.mask;
    for (b0 = 0; b0 < batch; b0 += p->rows) {
        const uint32_t rows = batch - b0 < p->rows ? batch - b0 : p->rows;
        const float *cur = x ? x + (size_t)b0 * seq_len * m->input_dim : NULL;
        uint32_t steps = seq_len;
        for (k = 0; k < m->layer_count; ++k) {
            egru_layer_t layer;
            float *dst = (k + 1 == m->layer_count) ? out + b0 * out_row : bufs[k & 1u];
            const size_t n = (size_t)rows * steps; /* per-step layers see rows * steps steps */
            uint32_t out_steps;
            (void)egru_model_layer(m, k, &layer); /* validated by egru_model_init */
            out_steps = layer_out_steps(&layer, steps);
            switch (layer.op) {
            case EGRU_OP_EMBEDDING: {
                const egru_status_t s =
                    egru_embedding_f32(&layer, ids + (size_t)b0 * seq_len, (uint32_t)n, dst, mask);
                if (s != EGRU_OK) {
                    return s;
                }
                break;
            }
            case EGRU_OP_GRU:
            case EGRU_OP_LSTM:
            case EGRU_OP_SIMPLE_RNN:
                memset(state, 0, (size_t)egru_rnn_state_floats(&layer, rows) * sizeof(float));
                egru_rnn_f32(&layer, cur, mask, rows, steps, dst, state, scratch);
                break;
            case EGRU_OP_DENSE:
                egru_dense_f32(&layer, cur, (uint32_t)n, dst, (int8_t *)(void *)scratch);
                break;
            case EGRU_OP_CONV1D:
                for (r = 0; r < rows; ++r) {
                    egru_conv1d_f32(&layer, cur + (size_t)r * steps * layer.input_dim, steps,
                                    dst + (size_t)r * out_steps * layer.output_dim);
                }
                break;
            case EGRU_OP_GLOBAL_POOL:
                for (r = 0; r < rows; ++r) {
                    egru_global_pool_f32(&layer, cur + (size_t)r * steps * layer.input_dim,
                                         mask + (size_t)r * steps, steps,
                                         dst + (size_t)r * layer.output_dim);
                }
                break;
            case EGRU_OP_AFFINE: egru_affine_f32(&layer, cur, (uint32_t)n, dst); break;
            case EGRU_OP_LAYER_NORM: egru_layer_norm_f32(&layer, cur, (uint32_t)n, dst); break;
            case EGRU_OP_ACTIVATION: activate_steps(&layer, cur, (uint32_t)n, dst); break;
            case EGRU_OP_FLATTEN: /* (T, C) row-major is already (T * C) */
                memcpy(dst, cur, n * layer.input_dim * sizeof(float));
                break;
            case EGRU_OP_MASKING: egru_masking_f32(&layer, cur, (uint32_t)n, dst, mask); break;
            }
            cur = dst;
            steps = out_steps;
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
