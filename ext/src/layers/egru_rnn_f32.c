/*
 * egru_rnn_f32.c - runs a recurrent layer over a block of sequences: direction, go_backwards,
 * masking, bidirectional merge (see egru_layers.h for the contract, Keras semantics in docs/).
 *
 * All rows of the block advance together, one time step at a time, so the recurrent product of
 * a step is one matrix-matrix product over the rows (kernel set matmul / matmul_t) instead of a
 * matrix-vector product per row: the weights are read once per step for the whole block.
 */
#include <string.h>

#include "egru_layers.h"

static egru_cell_step_f32_fn cell_of(egru_op_t op)
{
    switch (op) {
    case EGRU_OP_LSTM: return egru_lstm_cell_f32;
    case EGRU_OP_SIMPLE_RNN: return egru_simple_rnn_cell_f32;
    default: return egru_gru_cell_f32;
    }
}

static uint32_t gates(const egru_layer_t *layer)
{
    return layer->op == EGRU_OP_LSTM ? 4u : layer->op == EGRU_OP_GRU ? 3u : 1u;
}

static uint32_t dirs(const egru_layer_t *layer)
{
    return (layer->flags & EGRU_FLAG_BIDIRECTIONAL) ? 2u : 1u;
}

/* Floats of one row's cell state alone (GRU, SIMPLE_RNN: h; LSTM: h, c). */
uint32_t egru_rnn_cell_floats(const egru_layer_t *layer)
{
    return (layer->op == EGRU_OP_LSTM ? 2u : 1u) * layer->units;
}

uint64_t egru_rnn_state_floats(const egru_layer_t *layer, uint32_t rows)
{
    return (uint64_t)dirs(layer) * rows * (egru_rnn_cell_floats(layer) + 1u);
}

/* Bytes of the int8 buffer a quantized product's input needs (an input step or a state). */
static uint32_t q_bytes(const egru_layer_t *layer)
{
    return layer->input_dim > layer->units ? layer->input_dim : layer->units;
}

/* The input projections of all rows and steps (rows * steps, G*H; none when the layer is
 * input_projected); the cell's scratch (egru_rnn_cell_scratch_floats: rows * 4H covers GRU, LSTM
 * and SIMPLE_RNN, then the recurrent product's tmp for rows > 1); the int8 input buffer (q_bytes,
 * rounded up to floats); the rows' valid flags of one step (rows bytes, rounded up to floats); for
 * bidirectional layers merged by sum/ave/mul the backward outputs: (rows, steps, H), or (rows, H)
 * for the last state. */
uint64_t egru_rnn_scratch_floats(const egru_layer_t *layer, uint32_t rows, uint32_t steps,
                                 uint32_t window)
{
    const uint64_t H = layer->units;
    uint64_t n = egru_rnn_cell_scratch_floats(rows, layer->units);
    if (!layer->input_projected) { /* else the projections are the input (egru_model_fold) */
        n += (uint64_t)rows * (window < steps ? window : steps) * gates(layer) * H;
    }
    n += ((uint64_t)q_bytes(layer) + sizeof(float) - 1) / sizeof(float);
    n += ((uint64_t)rows + sizeof(float) - 1) / sizeof(float);
    if ((layer->flags & EGRU_FLAG_BIDIRECTIONAL) && layer->params[0] != EGRU_MERGE_CONCAT) {
        n += (uint64_t)rows * (layer->flags & EGRU_FLAG_RETURN_SEQUENCES ? steps : 1u) * H;
    }
    return n;
}

/* The product on the packed panels (egru_layers.h): outputs [row0, row0 + count) of every row,
 * one panel segment at a time, the panels in alternating order from step to step. */
static void packed_product(const egru_kernel_set_t *k, const float *rt, uint32_t GH, uint32_t H,
                           const float *h, uint32_t rows, uint32_t row0, uint32_t count,
                           const float *bias, float *y, float *tmp, uint32_t step)
{
    const uint32_t P = EGRU_RECURRENT_BLOCK, first = row0 / P,
                   n = (row0 + count - 1) / P - first + 1;
    uint32_t i, b;
    if (rows == 1 && GH <= P) { /* one panel holds every output (G*H <= 64): the loop's only pass */
        k->matvec_t_f32(rt + row0, GH, h, bias, y, count, H);
        return;
    }
    for (i = 0; i < n; ++i) {
        const uint32_t p = first + ((step & 1u) ? n - 1 - i : i), start = p * P;
        const uint32_t lo = row0 > start ? row0 : start, off = lo - row0;
        const uint32_t m = (row0 + count < start + P ? row0 + count : start + P) - lo;
        const uint32_t width = GH - start < P ? GH - start : P; /* the panel's ld */
        const float *wt = rt + (size_t)start * H + (lo - start);
        const float *bb = bias ? bias + off : NULL;
        if (rows == 1) {
            k->matvec_t_f32(wt, width, h, bb, y + off, m, H);
            continue;
        }
        /* one panel: the outputs are y's whole rows; else through tmp into place */
        k->matmul_t_f32(wt, width, h, bb, n == 1 ? y : tmp, rows, m, H);
        for (b = 0; n > 1 && b < rows; ++b) {
            memcpy(y + (size_t)b * count + off, tmp + (size_t)b * m, m * sizeof(float));
        }
    }
}

uint32_t egru_split(const egru_workers_t *workers, uint32_t n, uint32_t align, uint64_t macs,
                    uint32_t *chunk)
{
    uint32_t parts, c;
    *chunk = n;
    if (!workers || workers->count <= 1 || n <= align || macs < EGRU_SPLIT_MIN_MACS) {
        return 1u;
    }
    parts = workers->count < (n + align - 1) / align ? workers->count : (n + align - 1) / align;
    c = (n + parts - 1) / parts;
    c = (c + align - 1) / align * align; /* whole multiples of align, the last part shorter */
    *chunk = c;
    return (n + c - 1) / c;
}

void egru_run_tasks(const egru_workers_t *workers, egru_task_fn task, void *arg, uint32_t parts)
{
    uint32_t i;
    if (parts > 1 && workers) {
        workers->run(workers->ctx, task, arg, parts);
        return;
    }
    for (i = 0; i < parts; ++i) {
        task(arg, i);
    }
}

void egru_rnn_rows_f32(const egru_rnn_split_t *s, uint32_t r0, uint32_t m, const float *bias,
                       float *y)
{
    const egru_layer_t *layer = s->layer;
    const egru_rnn_weights_t *w = s->w;
    const uint32_t H = layer->units;
    if (w->recurrent_s8) {
        egru_recurrent_s8(layer->kernels, w, r0, s->qh, s->sx, bias, y, m, H);
    } else if (EGRU_CFG_PACK && w->recurrent_t) { /* egru_model_pack: panels of 64 outputs */
        packed_product(layer->kernels, w->recurrent_t, gates(layer) * H, H, s->hin, 1u, r0, m, bias,
                       y, NULL, 0u);
    } else {
        layer->kernels->matvec_f32(w->recurrent + (size_t)r0 * H, s->hin, bias, y, m, H);
    }
}

static void split_task(void *arg, uint32_t index)
{
    const egru_rnn_split_t *s = (const egru_rnn_split_t *)arg;
    const uint32_t H = s->layer->units, u0 = index * s->chunk;
    const uint32_t u1 = H - u0 < s->chunk ? H : u0 + s->chunk;
    const uint32_t blocks = (u1 - u0 + EGRU_RECURRENT_BLOCK - 1) / EGRU_RECURRENT_BLOCK;
    uint32_t b;
    for (b = 0; b < blocks; ++b) {
        const uint32_t u = u0 + EGRU_RECURRENT_BLOCK * ((s->step & 1u) ? blocks - 1 - b : b);
        s->block(s, u, u1 - u < EGRU_RECURRENT_BLOCK ? u1 - u : EGRU_RECURRENT_BLOCK);
    }
}

int egru_rnn_split_step(egru_rnn_split_t *s, float *hin, int8_t *q, uint64_t macs)
{
    const egru_layer_t *layer = s->layer;
    const uint32_t H = layer->units;
    uint32_t parts;
    if (!layer->workers || layer->activation == EGRU_ACT_SOFTMAX ||
        layer->recurrent_activation == EGRU_ACT_SOFTMAX) {
        return 0;
    }
    parts = egru_split(layer->workers, H, 16u, macs, &s->chunk);
    if (parts <= 1) {
        return 0;
    }
    s->hin = hin;
    s->qh = q;
    s->sx = 0.0f;
    if (s->w->recurrent_s8) {
        s->sx = layer->kernels->quantize_s8(s->state, q, H); /* as egru_linear_s8, once */
    } else {
        memcpy(hin, s->state, H * sizeof(float));
    }
    egru_run_tasks(layer->workers, split_task, s, parts);
    return 1;
}

void egru_rnn_recurrent_f32(const egru_layer_t *layer, const egru_rnn_weights_t *w, const float *h,
                            uint32_t rows, uint32_t row0, uint32_t count, const float *bias,
                            float *y, int8_t *q, uint32_t step)
{
    const uint32_t H = layer->units;
    uint32_t b;
    if (w->recurrent_s8) { /* int8: each row's state quantized on its own */
        for (b = 0; b < rows; ++b) {
            const float sx = layer->kernels->quantize_s8(h + (size_t)b * H, q, H);
            egru_recurrent_s8(layer->kernels, w, row0, q, sx, bias, y + (size_t)b * count, count,
                              H);
        }
    } else if (EGRU_CFG_PACK && w->recurrent_t) { /* egru_model_pack: panels of 64 outputs */
        packed_product(layer->kernels, w->recurrent_t, gates(layer) * H, H, h, rows, row0, count,
                       bias, y, y + (size_t)rows * 4u * H, step);
    } else if (rows == 1) {
        layer->kernels->matvec_f32(w->recurrent + (size_t)row0 * H, h, bias, y, count, H);
    } else {
        layer->kernels->matmul_f32(w->recurrent + (size_t)row0 * H, h, bias, y, rows, count, H);
    }
}

/* Where one direction writes its outputs: row b, output position q (a step, or 0 for the last
 * state) at base + b * row_stride + q * step_stride. */
typedef struct out_map {
    float *base;
    size_t row_stride, step_stride;
} out_map_t;

/* One float product over n input steps, split by steps over the workers: task i computes
 * steps [i * chunk, (i + 1) * chunk) (the same bits as one product: batch invariance). */
typedef struct project_split {
    const egru_layer_t *layer;
    const egru_rnn_weights_t *w;
    const float *x;
    float *y;
    uint32_t n, chunk;
} project_split_t;

static void project_task(void *arg, uint32_t index)
{
    const project_split_t *p = (const project_split_t *)arg;
    const uint32_t GH = gates(p->layer) * p->layer->units, I = p->layer->input_dim;
    const uint32_t s0 = index * p->chunk;
    const uint32_t n = p->n - s0 < p->chunk ? p->n - s0 : p->chunk;
    const float *x = p->x + (size_t)s0 * I;
    float *y = p->y + (size_t)s0 * GH;
    if (p->w->kernel_t) { /* egru_model_pack */
        p->layer->kernels->matmul_t_f32(p->w->kernel_t, GH, x, p->w->bias, y, n, GH, I);
    } else {
        p->layer->kernels->matmul_f32(p->w->kernel, x, p->w->bias, y, n, GH, I);
    }
}

/* The input projections of input steps t0 .. t0 + count - 1 of every row into proj, (rows,
 * window, G*H): one matrix product per row (one for the whole block when the window is the
 * whole sequence; split by steps over the workers when there are some), or per step for int8
 * weights. */
static void project(const egru_layer_t *layer, const egru_rnn_weights_t *w, const float *in,
                    uint32_t rows, uint32_t steps, uint32_t t0, uint32_t count, uint32_t window,
                    float *proj, int8_t *q)
{
    const uint32_t GH = gates(layer) * layer->units, I = layer->input_dim;
    const uint32_t blocks = count == steps ? 1u : rows, n = count == steps ? rows * steps : count;
    uint32_t b;
    size_t i;
    if (EGRU_CFG_WORKERS && blocks == 1 && !w->kernel_s8 && layer->workers) {
        project_split_t p;
        const uint32_t parts = egru_split(layer->workers, n, 8u, (uint64_t)n * GH * I, &p.chunk);
        p.layer = layer;
        p.w = w;
        p.x = in + (size_t)t0 * I;
        p.y = proj;
        p.n = n;
        egru_run_tasks(layer->workers, project_task, &p, parts);
        return;
    }
    for (b = 0; b < blocks; ++b) {
        const float *x = in + ((size_t)b * steps + t0) * I;
        float *y = proj + (size_t)b * window * GH;
        if (w->kernel_s8) { /* int8: each step's input quantized on its own */
            for (i = 0; i < n; ++i) {
                egru_linear_s8(layer->kernels, w->kernel_s8, w->kernel_scale, x + i * I, q, w->bias,
                               y + i * GH, GH, I);
            }
        } else if (w->kernel_t) { /* egru_model_pack */
            layer->kernels->matmul_t_f32(w->kernel_t, GH, x, w->bias, y, n, GH, I);
        } else {
            layer->kernels->matmul_f32(w->kernel, x, w->bias, y, n, GH, I);
        }
    }
}

/* One step of a block of several rows split by rows over the workers: task i runs the cell on
 * rows [i * chunk, (i + 1) * chunk) (their states, projections and cell scratch are their own:
 * rows never interact, and the products give each row the same bits in any block, batch
 * invariance). `sub` is the layer without its workers, so that a task of one row does not split
 * again (a task never calls run). GRU and SimpleRNN (state: h (rows, H), so a block of rows is
 * contiguous) with float recurrent weights (the int8 path quantizes each row into the one q). */
typedef struct rows_split {
    egru_layer_t sub;
    const egru_rnn_weights_t *w;
    egru_cell_step_f32_fn step;
    float *xp, *state, *cell;
    size_t xp_stride;
    const uint8_t *valid;
    int8_t *q;
    uint32_t rows, chunk, p;
} rows_split_t;

static void rows_task(void *arg, uint32_t index)
{
    const rows_split_t *s = (const rows_split_t *)arg;
    const uint32_t r0 = index * s->chunk, H = s->sub.units;
    const uint32_t n = s->rows - r0 < s->chunk ? s->rows - r0 : s->chunk;
    /* Each part's cell scratch is its rows' share of the block's, rows x (4H + the recurrent
     * product's tmp: egru_rnn_cell_scratch_floats), so no part's tmp is another part's rows. */
    s->step(&s->sub, s->w, s->xp + r0 * s->xp_stride, s->xp_stride, n,
            s->valid ? s->valid + r0 : NULL, s->state + (size_t)r0 * H,
            s->cell + (size_t)r0 * (4u * H + EGRU_RECURRENT_BLOCK), s->q, s->p);
}

/* The rows split for this layer and block: the number of parts (1: none). */
static uint32_t rows_parts(const egru_layer_t *layer, const egru_rnn_weights_t *w, uint32_t rows,
                           uint32_t *chunk)
{
    const uint64_t H = layer->units;
    if (!EGRU_CFG_WORKERS || !layer->workers || rows < 2 || w->recurrent_s8 ||
        layer->op == EGRU_OP_LSTM) {
        return 1u;
    }
    return egru_split(layer->workers, rows, 1u, rows * gates(layer) * H * H, chunk);
}

/* One direction over the block. The input projections are computed ahead of the steps that use
 * them, `window` steps at a time (all steps at once when window >= steps: one matrix product
 * for the block), so each step only adds the recurrent product. Output position for processing
 * index p is p (processing order) or the input time t (aligned). */
static void run_direction(const egru_layer_t *layer, int dir, const float *in, const uint8_t *mask,
                          uint32_t rows, uint32_t steps, uint32_t window, int reverse, int aligned,
                          int zero_masked, out_map_t o, float *state, float *scratch)
{
    const egru_rnn_weights_t *w = &layer->rnn[dir];
    const egru_cell_step_f32_fn step = cell_of(layer->op);
    const uint32_t H = layer->units, GH = gates(layer) * layer->units;
    const uint32_t win = window < steps ? window : steps; /* steps per projection window */
    const int sequences = (layer->flags & EGRU_FLAG_RETURN_SEQUENCES) != 0;
    float *seen = state + (size_t)rows * egru_rnn_cell_floats(layer); /* 1.0f once valid */
    float *proj = scratch,
          *cell = scratch + (layer->input_projected ? 0u : (size_t)rows * win * GH);
    size_t stride = GH;                   /* floats from one step's projections to the next's */
    size_t row_stride = (size_t)win * GH; /* ... and from one row's to the next's */
    uint32_t t_lo = 0;                    /* the first input step the window holds */
    int8_t *q = (int8_t *)(void *)(cell + egru_rnn_cell_scratch_floats(rows, H));
    rows_split_t rs;
    const uint32_t row_parts = rows_parts(layer, w, rows, &rs.chunk);
    uint8_t *valid = (uint8_t *)(void *)(cell + egru_rnn_cell_scratch_floats(rows, H) +
                                         (q_bytes(layer) + sizeof(float) - 1) / sizeof(float));
    uint32_t p, b;
    int windowed;

    if (row_parts > 1) {
        rs.sub = *layer;
        rs.sub.workers = NULL;
        rs.w = w;
        rs.step = step;
        rs.state = state;
        rs.cell = cell;
        rs.q = q;
        rs.rows = rows;
    }
    if (layer->input_projected) {
        /* egru_model_fold: `in` already holds the projections, [forward | backward] per step, in
         * a buffer of the arena or the session that nothing reads after this layer: the cells
         * use this direction's part as their xp scratch in place (the directions' parts do not
         * overlap), instead of a copy. */
        proj = (float *)(uintptr_t)in + (size_t)dir * GH;
        stride = layer->input_dim;
        row_stride = (size_t)steps * stride;
    } else if (win == steps) {
        project(layer, w, in, rows, steps, 0, steps, steps, proj, q);
    }
    /* Loop invariants in locals: the step calls below could, as far as the compiler knows,
     * change what `layer` points at, so it would reload them every step. */
    windowed = !layer->input_projected && win < steps;
    for (p = 0; p < steps; ++p) {
        const uint32_t t = reverse ? steps - 1 - p : p;
        const size_t pos = sequences ? (aligned ? t : p) : 0;
        uint32_t any = rows;
        if (mask) {
            for (any = 0, b = 0; b < rows; ++b) {
                valid[b] = (uint8_t)(mask[(size_t)b * steps + t] != 0);
                any += valid[b];
            }
        }
        if (windowed && p % win == 0) { /* the next window */
            const uint32_t count = steps - p < win ? steps - p : win;
            t_lo = reverse ? steps - p - count : p;
            project(layer, w, in, rows, steps, t_lo, count, win, proj, q);
        }
        if (any && row_parts > 1) {
            rs.xp = proj + (size_t)(t - t_lo) * stride;
            rs.xp_stride = row_stride;
            rs.valid = any == rows ? NULL : valid;
            rs.p = p;
            egru_run_tasks(layer->workers, rows_task, &rs, row_parts);
        } else if (any) {
            step(layer, w, proj + (size_t)(t - t_lo) * stride, row_stride, rows,
                 any == rows ? NULL : valid, state, cell, q, p);
        }
        if (!mask) { /* every row valid at every step */
            for (b = 0; b < rows; ++b) {
                seen[b] = 1.0f;
                if (sequences) {
                    memcpy(o.base + b * o.row_stride + pos * o.step_stride, state + (size_t)b * H,
                           H * sizeof(float));
                }
            }
            continue;
        }
        for (b = 0; b < rows; ++b) {
            seen[b] = valid[b] ? 1.0f : seen[b];
            if (sequences) {
                float *y = o.base + b * o.row_stride + pos * o.step_stride;
                if (valid[b] || (!zero_masked && seen[b] != 0.0f)) {
                    memcpy(y, state + (size_t)b * H, H * sizeof(float));
                } else {
                    memset(y, 0, H * sizeof(float));
                }
            }
        }
    }
    if (!sequences) {
        for (b = 0; b < rows; ++b) {
            memcpy(o.base + b * o.row_stride, state + (size_t)b * H, H * sizeof(float));
        }
    }
}

static void merge(uint32_t mode, float *a, const float *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        switch (mode) {
        case EGRU_MERGE_SUM: a[i] += b[i]; break;
        case EGRU_MERGE_AVE: a[i] = (a[i] + b[i]) * 0.5f; break;
        default: a[i] *= b[i]; break; /* EGRU_MERGE_MUL */
        }
    }
}

void egru_rnn_f32(const egru_layer_t *layer, const float *in, const uint8_t *mask, uint32_t rows,
                  uint32_t steps, uint32_t window, float *out, float *state, float *scratch)
{
    const uint32_t H = layer->units, D = layer->output_dim;
    const uint8_t *m = (EGRU_CFG_MASK && (layer->flags & EGRU_FLAG_MASKED)) ? mask : NULL;
    const int sequences = (layer->flags & EGRU_FLAG_RETURN_SEQUENCES) != 0;
    const size_t out_row = (sequences ? (size_t)steps : 1u) * D;
    const size_t block = (size_t)rows * (egru_rnn_cell_floats(layer) + 1u); /* one direction */
    const uint32_t mode = layer->params[0];
    out_map_t fwd = {out, out_row, D}, bwd;
    float *back;

    if (!EGRU_CFG_BIDIRECTIONAL || !(layer->flags & EGRU_FLAG_BIDIRECTIONAL)) {
        const int backwards = EGRU_CFG_GO_BACKWARDS && (layer->flags & EGRU_FLAG_GO_BACKWARDS);
        run_direction(layer, 0, in, m, rows, steps, window, backwards, 0, 0, fwd, state, scratch);
        return;
    }
    /* Bidirectional (Keras): masked sequence outputs are zero; the backward layer's outputs are
     * flipped back to input time; concat puts forward first. */
    if (mode == EGRU_MERGE_CONCAT) {
        bwd = fwd;
        bwd.base = out + H;
        run_direction(layer, 0, in, m, rows, steps, window, 0, 1, 1, fwd, state, scratch);
        run_direction(layer, 1, in, m, rows, steps, window, 1, 1, 1, bwd, state + block, scratch);
        return;
    }
    back = scratch + egru_rnn_scratch_floats(layer, rows, steps, window) -
           (size_t)rows * (sequences ? steps : 1u) * H; /* the last region of the scratch */
    bwd.base = back;
    bwd.row_stride = out_row;
    bwd.step_stride = H;
    run_direction(layer, 0, in, m, rows, steps, window, 0, 1, 1, fwd, state, scratch);
    run_direction(layer, 1, in, m, rows, steps, window, 1, 1, 1, bwd, state + block, scratch);
    merge(mode, out, back, (size_t)rows * out_row);
}
