/*
 * egru_forward.c - arena planning and the forward pass over the layer chain.
 *
 * Arena layout for one batch row (rows are run one after another and reuse it):
 *
 *   [ seq A: seq_len * max_width floats ][ seq B: same ][ GRU scratch: 8 * max_units floats ]
 *
 * each region starting at a multiple of EGRU_BLOB_ALIGN. Layer k reads the previous layer's
 * output and writes the other sequence buffer (ping-pong); the last layer writes straight into
 * the caller's output. A feature model's first layer reads the caller's input in place.
 */
#include <math.h>
#include <string.h>

#include "egru_internal.h"
#include "layers/egru_layers.h"

#define ALIGN_UP(n) (((n) + (EGRU_BLOB_ALIGN - 1)) & ~(uint64_t)(EGRU_BLOB_ALIGN - 1))

static uint64_t seq_buffer_bytes(const egru_model_t *m, uint32_t seq_len)
{
    return ALIGN_UP((uint64_t)seq_len * m->max_width * sizeof(float));
}

size_t egru_row_arena_bytes(const egru_model_t *m, uint32_t seq_len)
{
    uint64_t total = 2 * seq_buffer_bytes(m, seq_len) +
                     ALIGN_UP(egru_gru_scratch_floats(m->max_units) * sizeof(float));
    /* The arena itself may start anywhere: reserve room to align its start. */
    total += EGRU_BLOB_ALIGN;
    return total > (uint64_t)(size_t)-1 ? 0 : (size_t)total;
}

egru_status_t egru_arena_size(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                              size_t *arena_bytes)
{
    size_t bytes;
    if (!model || !arena_bytes) {
        return EGRU_ERR_NULL_ARG;
    }
    if (model->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER; /* not initialised */
    }
    if (batch == 0 || seq_len == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    bytes = egru_row_arena_bytes(model, seq_len);
    if (bytes == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    *arena_bytes = bytes;
    return EGRU_OK;
}

egru_status_t egru_output_count(const egru_model_t *model, uint32_t batch, uint32_t seq_len,
                                size_t *count)
{
    uint64_t n;
    if (!model || !count) {
        return EGRU_ERR_NULL_ARG;
    }
    if (model->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER;
    }
    if (batch == 0 || seq_len == 0) {
        return EGRU_ERR_BAD_SHAPE;
    }
    n = (uint64_t)batch * model->output_dim * (model->output_is_sequence ? seq_len : 1u);
    if (n > (uint64_t)((size_t)-1 / sizeof(float))) {
        return EGRU_ERR_BAD_SHAPE;
    }
    *count = (size_t)n;
    return EGRU_OK;
}

/* Shape, buffer and arena checks shared by both entry points. */
static egru_status_t check_call(const egru_model_t *m, uint32_t kind, const void *in,
                                uint32_t batch, uint32_t seq_len, const float *out,
                                size_t out_count, const void *arena, size_t arena_bytes)
{
    size_t need, count;
    egru_status_t s;
    if (!m || !in || !out || !arena) {
        return EGRU_ERR_NULL_ARG;
    }
    if ((s = egru_arena_size(m, batch, seq_len, &need)) != EGRU_OK) {
        return s;
    }
    if (m->input_kind != kind) {
        return EGRU_ERR_WRONG_INPUT;
    }
    if ((s = egru_output_count(m, batch, seq_len, &count)) != EGRU_OK) {
        return s;
    }
    if (count != out_count) {
        return EGRU_ERR_OUTPUT_SIZE;
    }
    if (arena_bytes < need) {
        return EGRU_ERR_ARENA_TOO_SMALL;
    }
    if ((uint64_t)batch * seq_len * m->input_dim > (uint64_t)((size_t)-1 / sizeof(float))) {
        return EGRU_ERR_BAD_SHAPE;
    }
    return EGRU_OK;
}

/* Runs the chain for batch row by row. Exactly one of ids / x is non-NULL. */
static void run_rows(const egru_model_t *m, const int32_t *ids, const float *x, uint32_t batch,
                     uint32_t seq_len, float *out, void *arena)
{
    const size_t seq_floats = (size_t)(seq_buffer_bytes(m, seq_len) / sizeof(float));
    const size_t out_row = (size_t)m->output_dim * (m->output_is_sequence ? seq_len : 1u);
    uintptr_t base = ((uintptr_t)arena + (EGRU_BLOB_ALIGN - 1)) & ~(uintptr_t)(EGRU_BLOB_ALIGN - 1);
    float *bufs[2];
    float *scratch;
    uint32_t b, k;

    bufs[0] = (float *)base;
    bufs[1] = bufs[0] + seq_floats;
    scratch = bufs[1] + seq_floats;
    for (b = 0; b < batch; ++b) {
        const float *cur = x ? x + (size_t)b * seq_len * m->input_dim : NULL;
        uint32_t steps = seq_len;
        for (k = 0; k < m->layer_count; ++k) {
            egru_layer_t layer;
            float *dst = (k + 1 == m->layer_count) ? out + b * out_row : bufs[k & 1u];
            (void)egru_model_layer(m, k, &layer); /* validated by egru_model_init */
            switch (layer.op) {
            case EGRU_OP_EMBEDDING:
                egru_embedding_f32(&layer, ids + (size_t)b * seq_len, steps, dst);
                break;
            case EGRU_OP_GRU:
                egru_gru_f32(&layer, cur, steps, dst, scratch);
                if (!(layer.flags & EGRU_FLAG_RETURN_SEQUENCES)) {
                    steps = 1;
                }
                break;
            case EGRU_OP_DENSE: egru_dense_f32(&layer, cur, steps, dst); break;
            }
            cur = dst;
        }
    }
}

egru_status_t egru_forward_tokens(const egru_model_t *model, const int32_t *ids, uint32_t batch,
                                  uint32_t seq_len, float *out, size_t out_count, void *arena,
                                  size_t arena_bytes)
{
    size_t i, n;
    egru_status_t s = check_call(model, EGRU_INPUT_TOKENS, ids, batch, seq_len, out, out_count,
                                 arena, arena_bytes);
    if (s != EGRU_OK) {
        return s;
    }
    n = (size_t)batch * seq_len;
    for (i = 0; i < n; ++i) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= model->input_dim) {
            return EGRU_ERR_TOKEN_RANGE;
        }
    }
    run_rows(model, ids, NULL, batch, seq_len, out, arena);
    return EGRU_OK;
}

egru_status_t egru_forward_features(const egru_model_t *model, const float *x, uint32_t batch,
                                    uint32_t seq_len, float *out, size_t out_count, void *arena,
                                    size_t arena_bytes)
{
    size_t i, n;
    egru_status_t s = check_call(model, EGRU_INPUT_FEATURES, x, batch, seq_len, out, out_count,
                                 arena, arena_bytes);
    if (s != EGRU_OK) {
        return s;
    }
    n = (size_t)batch * seq_len * model->input_dim;
    for (i = 0; i < n; ++i) {
        if (!isfinite(x[i])) {
            return EGRU_ERR_NONFINITE;
        }
    }
    run_rows(model, NULL, x, batch, seq_len, out, arena);
    return EGRU_OK;
}
