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

/* egru_model_pack's memory starts (at the first multiple of EGRU_BLOB_ALIGN) with a table of
 * EGRU_PACK_SLOTS uint32 per layer: offsets, in floats from the table's start, of the forward
 * kernel_t, forward recurrent_t, backward kernel_t, backward recurrent_t; 0 means none. */
#define EGRU_PACK_SLOTS 4u

/* The int16x8 plan's arena bytes (egru_forward_s16.c): what egru_arena_size and
 * egru_arena_size_min return for a quant_version 2 model. */
egru_status_t egru_s16_arena_size(const egru_model_t *model, uint32_t seq_len, size_t *arena_bytes);
/* Output steps of an int16x8 model for seq_len input steps (a Conv1D may shorten them). */
egru_status_t egru_s16_out_steps(const egru_model_t *model, uint32_t seq_len, uint32_t *steps);

#endif /* EGRU_INTERNAL_H */
