/*
 * egru_pack.c - egru_model_pack: transposed copies of the recurrent weights for the kernel sets'
 * matvec_t / matmul_t kernels (see edgegru.h).
 *
 * Layout of the caller's memory, from its first multiple of EGRU_PACK_ALIGN (64, a cache line):
 *   [ offsets: layer_count * EGRU_PACK_SLOTS uint32 ] then, per recurrent layer and direction,
 *   [ kernel_t (I, G*H) ][ recurrent_t: panels of EGRU_RECURRENT_BLOCK outputs, each (H, width)
 *   (layers/egru_layers.h) ] for float weights, or [ recurrent_sums (G*H) int32 ] for int8 ones
 *   (int8 matrices stay row-major in the blob: egru_matvec_s8 reads them in place), each block
 *   starting at a multiple of EGRU_PACK_ALIGN (so that, when G*H is a multiple of 16, every
 *   column of a block starts a cache line and the kernels' loads of a block of rows touch no
 *   more lines than they must). Offsets count 4-byte words from the table's start.
 */
#include <string.h>

#include "egru_internal.h"
#include "layers/egru_layers.h"

#define ALIGN_FLOATS (EGRU_PACK_ALIGN / sizeof(float))
#define ALIGN_UP(n)  (((n) + (ALIGN_FLOATS - 1)) & ~(uint64_t)(ALIGN_FLOATS - 1))
#define PACK_LIMIT   0xFFFFFFF0ull /* offsets are uint32 floats */

static uint32_t gates(egru_op_t op)
{
    return op == EGRU_OP_LSTM ? 4u : op == EGRU_OP_GRU ? 3u : op == EGRU_OP_SIMPLE_RNN ? 1u : 0u;
}

/* Walks the layers; with `table` non-NULL also fills the offsets and the transposed copies.
 * Returns the floats the table and blocks take, or 0 when they would not fit uint32 offsets. */
static uint64_t layout(const egru_model_t *m, uint32_t *table)
{
    uint64_t at = ALIGN_UP((uint64_t)m->layer_count * EGRU_PACK_SLOTS);
    uint32_t k, d, r, c;
    for (k = 0; k < m->layer_count; ++k) {
        egru_layer_t layer;
        uint32_t G, H, I, dirs;
        (void)egru_model_layer(m, k, &layer); /* validated by egru_model_init */
        if ((G = gates(layer.op)) == 0) {
            continue;
        }
        H = layer.units;
        I = layer.input_projected ? 0u : layer.input_dim; /* folded: a table lookup, no kernel */
        dirs = (layer.flags & EGRU_FLAG_BIDIRECTIONAL) ? 2u : 1u;
        for (d = 0; d < dirs; ++d) {
            const egru_rnn_weights_t *w = &layer.rnn[d];
            /* int8 matrices stay row-major (egru_matvec_s8); their row sums are packed */
            const uint32_t KI = w->kernel ? I : 0u, RH = w->recurrent ? H : 0u;
            const uint32_t S = w->recurrent_s8 ? G * H : 0u;
            const uint64_t kernel_at = at, rec_at = at + ALIGN_UP((uint64_t)KI * G * H);
            const uint64_t sums_at = rec_at + ALIGN_UP((uint64_t)RH * G * H);
            at = sums_at + ALIGN_UP(S);
            if (at > PACK_LIMIT) {
                return 0;
            }
            if (table) {
                float *base = (float *)(void *)table, *kt = base + kernel_at, *rt = base + rec_at;
                int32_t *sums = (int32_t *)(void *)(table + sums_at);
                table[EGRU_PACK_SLOTS * k + 2 * d] = KI ? (uint32_t)kernel_at : 0u;
                table[EGRU_PACK_SLOTS * k + 2 * d + 1] = RH ? (uint32_t)rec_at : 0u;
                table[EGRU_PACK_SLOTS * k + 4 + d] = S ? (uint32_t)sums_at : 0u;
                for (r = 0; r < S; ++r) { /* exact: |sum| <= 128 * H, H <= EGRU_S8_MAX_COLS */
                    int32_t acc = 0;
                    for (c = 0; c < H; ++c) {
                        acc += w->recurrent_s8[(size_t)r * H + c];
                    }
                    sums[r] = acc;
                }
                for (r = 0; r < G * H; ++r) {
                    /* recurrent: panels of EGRU_RECURRENT_BLOCK outputs (egru_layers.h) */
                    const uint32_t p = r / EGRU_RECURRENT_BLOCK, r0 = p * EGRU_RECURRENT_BLOCK;
                    const uint32_t width =
                        G * H - r0 < EGRU_RECURRENT_BLOCK ? G * H - r0 : EGRU_RECURRENT_BLOCK;
                    float *panel = rt + (size_t)r0 * H;
                    for (c = 0; c < KI; ++c) {
                        kt[(size_t)c * G * H + r] = w->kernel[(size_t)r * I + c];
                    }
                    for (c = 0; c < RH; ++c) {
                        panel[(size_t)c * width + (r - r0)] = w->recurrent[(size_t)r * H + c];
                    }
                }
            }
        }
    }
    return at;
}

egru_status_t egru_model_pack_size(const egru_model_t *model, size_t *bytes)
{
    uint64_t floats, n;
    if (!model || !bytes) {
        return EGRU_ERR_NULL_ARG;
    }
    if (!EGRU_CFG_PACK) {
        return EGRU_ERR_UNSUPPORTED; /* left out of this build (egru_features.h) */
    }
    if (model->layer_count == 0) {
        return EGRU_ERR_BAD_LAYER; /* not initialised */
    }
    if (model->quant_version == EGRU_QUANT_VERSION_INT16X8) {
        return EGRU_ERR_UNSUPPORTED; /* integer-only products read the int8 rows in place */
    }
    if (model->pack) {
        return EGRU_ERR_UNSUPPORTED;
    }
    if ((floats = layout(model, NULL)) == 0) {
        return EGRU_ERR_UNSUPPORTED;
    }
    n = floats * sizeof(float) + EGRU_PACK_ALIGN; /* room to align the start */
    if (n > (uint64_t)(size_t)-1) {
        return EGRU_ERR_UNSUPPORTED;
    }
    *bytes = (size_t)n;
    return EGRU_OK;
}

egru_status_t egru_model_pack(egru_model_t *model, void *mem, size_t bytes)
{
    size_t need = 0;
    uint32_t *table;
    egru_status_t s;
    if (!model || !mem) {
        return EGRU_ERR_NULL_ARG;
    }
    if ((s = egru_model_pack_size(model, &need)) != EGRU_OK) {
        return s; /* EGRU_ERR_UNSUPPORTED without EGRU_CFG_PACK */
    }
    if (!EGRU_CFG_PACK) {
        return EGRU_ERR_UNSUPPORTED; /* (lets the compiler drop layout) */
    }
    if (bytes < need) {
        return EGRU_ERR_ARENA_TOO_SMALL;
    }
    table = (uint32_t *)(void *)(((uintptr_t)mem + (EGRU_PACK_ALIGN - 1)) &
                                 ~(uintptr_t)(EGRU_PACK_ALIGN - 1));
    memset(table, 0, (size_t)model->layer_count * EGRU_PACK_SLOTS * sizeof(uint32_t));
    (void)layout(model, table);
    model->pack = table;
    egru_model_refresh_layer_cache(model); /* recurrent layers point at their packed copies */
    return EGRU_OK;
}
