/* egru_internal.h - helpers shared by the runtime's translation units; not installed. */
#ifndef EGRU_INTERNAL_H
#define EGRU_INTERNAL_H

#include "edgegru.h"
#include "egru_features.h"

/* Little-endian decoding, byte by byte: correct on any host and at any alignment. */
static inline uint16_t egru_rd_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t egru_rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Graph files (EGRU_CFG_GRAPH, egru_features.h). A graph has at most EGRU_GRAPH_MAX_VALUES
 * values (the reader refuses more with EGRU_ERR_UNSUPPORTED): the planner keeps a few words per
 * value on the stack. */
#ifndef EGRU_GRAPH_MAX_VALUES
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
#define EGRU_GRAPH_MAX_VALUES 64u
#else
#define EGRU_GRAPH_MAX_VALUES 512u
#endif
#endif

/* Value v's fields and io table entry i of a validated graph model. */
static inline uint32_t egru_value_kind(const egru_model_t *m, uint32_t v)
{
    return m->value_table[(size_t)v * m->value_record_size + EGRU_VAL_KIND];
}
static inline uint32_t egru_value_width(const egru_model_t *m, uint32_t v)
{
    return egru_rd_u32(m->value_table + (size_t)v * m->value_record_size + EGRU_VAL_WIDTH);
}
static inline int egru_value_masked(const egru_model_t *m, uint32_t v)
{
    return (m->value_table[(size_t)v * m->value_record_size + EGRU_VAL_FLAGS] &
            EGRU_VALUE_FLAG_MASKED) != 0;
}
static inline uint32_t egru_graph_io(const egru_model_t *m, uint32_t i)
{
    return egru_rd_u32(m->io_table + (size_t)i * 4u);
}
/* Node k's io range: its inputs start at io_first, its outputs right after them. */
static inline const uint8_t *egru_node_record(const egru_model_t *m, uint32_t k)
{
    return m->layer_table + (size_t)k * m->layer_record_size;
}

/* The graph planner and executor (egru_graph.c), shared with the graph sessions
 * (egru_graph_session.c). What the planner knows of each value for one call: */
typedef struct egru_gvalues {
    uint32_t steps[EGRU_GRAPH_MAX_VALUES];  /* 1 for a VECTOR                               */
    uint32_t first[EGRU_GRAPH_MAX_VALUES];  /* the node writing it (model inputs: 0)         */
    uint32_t last[EGRU_GRAPH_MAX_VALUES];   /* the last node reading it (>= first)           */
    int32_t io[EGRU_GRAPH_MAX_VALUES];      /* model input i: i; model output j: -1 - j; else
                                               INT32_MAX                                   */
    uint64_t offset[EGRU_GRAPH_MAX_VALUES]; /* byte offset of its region; ~0: none           */
    uint64_t size[EGRU_GRAPH_MAX_VALUES];   /* bytes of its region (0: none)                 */
    uint64_t data[EGRU_GRAPH_MAX_VALUES];   /* bytes of its floats within the region         */
    uint32_t view[EGRU_GRAPH_MAX_VALUES];   /* EGRU_GRAPH_NO_VIEW, or for the output of a
                                               MASKING with mask value 0 that only ATTENTION
                                               nodes read, as value or key: the MASKING's input.
                                               The view has no region: its floats are the
                                               input's (equal to Masking's: x where valid, and
                                               a masked step is all zeros already), its mask is
                                               computed by the attention; the MASKING node does
                                               not run (egru_graph_steps)                    */
} egru_gvalues_t;
#define EGRU_GRAPH_NO_VIEW 0xFFFFFFFFu

/* A plan of `rows` rows: value regions, then the largest state and scratch, `align`ed. */
typedef struct egru_gplan {
    uint32_t rows, align;
    uint64_t values_bytes, state_floats, scratch_floats, total;
} egru_gplan_t;

/* Where value v of the current block lives (egru_graph_value_ptr). */
typedef struct egru_gblock {
    const egru_model_t *m;
    const egru_gvalues_t *g;
    const egru_input_t *inputs;
    const egru_output_t *outputs;
    uint8_t *base; /* the value regions */
    uint32_t b0;   /* the block's first row */
    int carry;     /* 0: recurrent nodes start from their initial-state inputs (zero without);
                      1 (sessions): they continue from `state` as it is, reading no input but
                      the sequence */
} egru_gblock_t;

/* Steps of every value for the model inputs' steps, and lifetimes; EGRU_ERR_BAD_SHAPE when they
 * do not fit the graph. */
egru_status_t egru_graph_steps(const egru_model_t *m, const uint32_t *input_steps,
                               egru_gvalues_t *g);
/* Places the value regions of `rows` rows (g from egru_graph_steps) and sizes the plan. */
egru_status_t egru_graph_plan(const egru_model_t *m, uint32_t rows, uint32_t align,
                              egru_gvalues_t *g, egru_gplan_t *p);
/* Value v of the block: a float pointer into the caller's buffers or the value regions (TOKENS
 * model inputs: their int32 ids, cast). */
float *egru_graph_value_ptr(const egru_gblock_t *b, uint32_t v);
/* Runs node k on `rows` rows of the block; state: egru_rnn_state_floats(layer, rows) floats for
 * a recurrent node; scratch: the plan's scratch_floats. */
egru_status_t egru_graph_run_node(const egru_gblock_t *b, uint32_t k, uint32_t rows, float *state,
                                  float *scratch);

/* Decodes every layer into model->layer_cache again, if the model has one
 * (egru_model_cache_layers); called by the functions that change what decoding gives. */
#if EGRU_CFG_LAYER_CACHE
void egru_model_refresh_layer_cache(egru_model_t *model);
#else
#define egru_model_refresh_layer_cache(model) ((void)(model))
#endif

/* Alignment of egru_model_pack's table and blocks, in bytes: a cache line, so that a kernel
 * streaming a block of packed rows loads whole lines (at 16-byte alignment every 64-row block of a
 * column straddles one more line: measured 25-50 % slower products on a Zen 4). */
#define EGRU_PACK_ALIGN 64u

/* egru_model_pack's memory starts (at the first multiple of EGRU_PACK_ALIGN) with a table of
 * EGRU_PACK_SLOTS uint32 per layer: offsets, in 4-byte words from the table's start, of the
 * forward kernel_t, forward recurrent_t, backward kernel_t, backward recurrent_t, forward
 * recurrent_sums, backward recurrent_sums; 0 means none. */
#define EGRU_PACK_SLOTS 6u

/* The int16x8 plan's arena bytes (egru_forward_s16.c): what egru_arena_size and
 * egru_arena_size_min return for a quant_version 2 model. */
egru_status_t egru_s16_arena_size(const egru_model_t *model, uint32_t seq_len, size_t *arena_bytes);
/* Output steps of an int16x8 model for seq_len input steps (a Conv1D may shorten them). */
egru_status_t egru_s16_out_steps(const egru_model_t *model, uint32_t seq_len, uint32_t *steps);

#endif /* EGRU_INTERNAL_H */
