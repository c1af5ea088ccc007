/* egru_internal.h - helpers shared by the runtime's translation units; not installed. */
#ifndef EGRU_INTERNAL_H
#define EGRU_INTERNAL_H

#include "edgegru.h"

/* Little-endian decoding, byte by byte: correct on any host and at any alignment. */
static inline uint16_t egru_rd_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t egru_rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Bytes of arena one row of a forward pass uses (two ping-pong sequence buffers and the GRU
 * scratch), rounded up to EGRU_BLOB_ALIGN; 0 when it would overflow size_t. */
size_t egru_row_arena_bytes(const egru_model_t *model, uint32_t seq_len);

#endif /* EGRU_INTERNAL_H */
