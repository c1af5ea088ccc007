/*
 * egru_fuzz_mutator.c - structure-aware libFuzzer mutator for egru_fuzz.c.
 *
 * A random byte change almost always breaks one of the two CRC-32s of an .egru file, and the
 * parser stops at the checksum (docs/format.md, checks 3 and 5). This mutator therefore
 *   1. mutates one part of the input (egru_fuzz_input.h): the blob, the pool or the control
 *      block with libFuzzer's own LLVMFuzzerMutate, or one field of a header, layer or tensor
 *      record set to a boundary value, or one weight / scale / int8 value set to a special
 *      value (NaN, inf, denormal, 3e38, -128, ...), or the blob's length;
 *   2. repairs both CRCs (payload CRC over [128, file_size) when file_size fits the blob, then
 *      the header CRC over [0, 124)), except for 1 mutation in 32 so the checksum path stays
 *      covered.
 * LLVMFuzzerCustomCrossOver combines the control block and pool of one input with the blob of
 * another, or splices a chunk of one blob into the other at the same offset, then repairs.
 */
#include <stdint.h>
#include <string.h>

#include "edgegru.h"
#include "egru_fuzz_input.h"

/* libFuzzer is not instrumented, so under MSan the bytes its mutators write look uninitialised
 * to the instrumented code that reads them next (this mutator's CRC repair): they are input,
 * i.e. initialised by definition, and are unpoisoned. */
#if defined(__has_feature)
#if __has_feature(memory_sanitizer)
#include <sanitizer/msan_interface.h>
#define UNPOISON(p, n) __msan_unpoison((p), (n))
#endif
#endif
#ifndef UNPOISON
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *data1, size_t size1, const uint8_t *data2,
                                 size_t size2, uint8_t *out, size_t max_out_size,
                                 unsigned int seed);

/* LLVMFuzzerMutate, its result marked initialised (UNPOISON). */
static size_t lf_mutate(uint8_t *data, size_t size, size_t max_size)
{
    size_t n = LLVMFuzzerMutate(data, size, max_size);
    UNPOISON(data, n);
    return n;
}

typedef struct rng {
    uint64_t s;
} rng_t;

static uint32_t rnd(rng_t *r, uint32_t n) /* uniform-ish in [0, n), n >= 1 */
{
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((r->s >> 33) % (n ? n : 1u));
}

static uint32_t boundary_u32(rng_t *r, uint32_t cur, uint32_t file_size)
{
    static const uint32_t v[] = {
        0u,          1u,          2u,          3u,          4u,          7u,          8u,
        15u,         16u,         17u,         31u,         32u,         63u,         64u,
        65u,         127u,        128u,        129u,        255u,        256u,        1023u,
        4096u,       65535u,      65536u,      133144u,     140000u,     0x7fffffffu, 0x80000000u,
        0xfffffffeu, 0xffffffffu, 0x3f800000u, 0x7fc00000u, 0x7f800000u, 0xff800000u, 0x00000001u,
        0x7f7fffffu, 0x358637bdu, 0x0001c3b3u};
    switch (rnd(r, 8)) {
    case 0: return cur + 1u;
    case 1: return cur - 1u;
    case 2: return cur * 2u;
    case 3: return cur / 2u;
    case 4: return file_size + rnd(r, 3) - 1u;
    case 5: return cur ^ (1u << rnd(r, 32));
    default: return v[rnd(r, (uint32_t)(sizeof v / sizeof v[0]))];
    }
}

/* Sets the field at b[off] (width 1, 2 or 4 bytes) to a boundary value or flips one bit. */
static void mutate_field(rng_t *r, uint8_t *b, size_t n, size_t off, unsigned width,
                         uint32_t file_size)
{
    if (off + width > n) {
        return;
    }
    uint32_t cur = width == 4   ? fuzz_rd32(b + off)
                   : width == 2 ? (uint32_t)b[off] | (uint32_t)b[off + 1] << 8
                                : b[off];
    uint32_t v;
    if (width == 4) {
        v = boundary_u32(r, cur, file_size);
    } else if (rnd(r, 3) == 0) {
        v = cur ^ (1u << rnd(r, 8u * width));
    } else {
        static const uint32_t small[] = {0, 1, 2,  3,  4,  5,  6,    7,
                                         8, 9, 10, 11, 12, 13, 0xff, 0xffff};
        v = rnd(r, 4) == 0 ? cur + 1u : small[rnd(r, 16)];
    }
    b[off] = (uint8_t)v;
    if (width >= 2) {
        b[off + 1] = (uint8_t)(v >> 8);
    }
    if (width == 4) {
        b[off + 2] = (uint8_t)(v >> 16);
        b[off + 3] = (uint8_t)(v >> 24);
    }
}

static const uint8_t header_fields[][2] = {
    {EGRU_HDR_VERSION_MAJOR, 2},
    {EGRU_HDR_VERSION_MINOR, 2},
    {EGRU_HDR_HEADER_SIZE, 4},
    {EGRU_HDR_FLAGS, 4},
    {EGRU_HDR_ALIGNMENT, 4},
    {EGRU_HDR_FILE_SIZE, 4},
    {EGRU_HDR_LAYER_COUNT, 4},
    {EGRU_HDR_LAYER_RECORD_SIZE, 4},
    {EGRU_HDR_LAYER_TABLE_OFFSET, 4},
    {EGRU_HDR_TENSOR_COUNT, 4},
    {EGRU_HDR_TENSOR_RECORD_SIZE, 4},
    {EGRU_HDR_TENSOR_TABLE_OFFSET, 4},
    {EGRU_HDR_DATA_OFFSET, 4},
    {EGRU_HDR_DATA_SIZE, 4},
    {EGRU_HDR_META_OFFSET, 4},
    {EGRU_HDR_META_SIZE, 4},
    {EGRU_HDR_INPUT_KIND, 4},
    {EGRU_HDR_INPUT_DIM, 4},
    {EGRU_HDR_OUTPUT_DIM, 4},
    {EGRU_HDR_QUANT_VERSION, 4},
    {80, 4},
};
static const uint8_t layer_fields[][2] = {
    {EGRU_LYR_OP, 2},
    {EGRU_LYR_FLAGS, 2},
    {EGRU_LYR_INPUT_DIM, 4},
    {EGRU_LYR_OUTPUT_DIM, 4},
    {EGRU_LYR_FIRST_TENSOR, 4},
    {EGRU_LYR_TENSOR_COUNT, 4},
    {EGRU_LYR_ACTIVATION, 1},
    {EGRU_LYR_RECURRENT_ACTIVATION, 1},
    {22, 2},
    {EGRU_LYR_PARAMS, 4},
    {EGRU_LYR_PARAMS + 4, 4},
    {EGRU_LYR_PARAMS + 8, 4},
    {EGRU_LYR_PARAMS + 12, 4},
    {EGRU_LYR_PARAMS + 16, 4},
    {EGRU_LYR_PARAMS + 36, 4},
};
static const uint8_t tensor_fields[][2] = {
    {EGRU_TNS_DTYPE, 1},
    {EGRU_TNS_QUANT, 1},
    {EGRU_TNS_RANK, 1},
    {EGRU_TNS_ROLE, 1},
    {EGRU_TNS_DIMS, 4},
    {EGRU_TNS_DIMS + 4, 4},
    {EGRU_TNS_DIMS + 8, 4},
    {EGRU_TNS_DIMS + 12, 4},
    {EGRU_TNS_DATA_OFFSET, 4},
    {EGRU_TNS_DATA_SIZE, 4},
    {EGRU_TNS_SCALE_OFFSET, 4},
    {EGRU_TNS_SCALE_COUNT, 4},
    {EGRU_TNS_SCALE_COUNT + 4, 4},
};
/* Graph files (docs/format.md "Graphs"): the graph header, a node's io fields, a value
 * record. */
static const uint8_t graph_fields[][2] = {
    {EGRU_GHDR_VALUE_COUNT, 4},        {EGRU_GHDR_VALUE_RECORD_SIZE, 4},
    {EGRU_GHDR_VALUE_TABLE_OFFSET, 4}, {EGRU_GHDR_IO_COUNT, 4},
    {EGRU_GHDR_IO_TABLE_OFFSET, 4},    {EGRU_GHDR_INPUT_COUNT, 2},
    {EGRU_GHDR_OUTPUT_COUNT, 2},
};
static const uint8_t node_fields[][2] = {
    {EGRU_NODE_IO_FIRST, 4},
    {EGRU_NODE_INPUT_COUNT, 2},
    {EGRU_NODE_OUTPUT_COUNT, 2},
};
static const uint8_t value_fields[][2] = {
    {EGRU_VAL_KIND, 1},
    {EGRU_VAL_FLAGS, 1},
    {EGRU_VAL_WIDTH, 4},
};
#define COUNT(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

/* Offset of record `i` of a table described at header offsets (count, size, table), or 0. */
static size_t record_at(const uint8_t *b, size_t n, uint32_t count_off, uint32_t size_off,
                        uint32_t table_off, rng_t *r)
{
    uint32_t count = fuzz_rd32(b + count_off), rs = fuzz_rd32(b + size_off);
    uint32_t table = fuzz_rd32(b + table_off);
    if (count == 0 || rs == 0) {
        return 0;
    }
    uint64_t at = (uint64_t)table + (uint64_t)rnd(r, count < 64u ? count : 64u) * rs;
    return at + 64u <= n ? (size_t)at : 0;
}

/* One tensor's data (or scales) gets a special value. */
static void mutate_tensor_data(rng_t *r, uint8_t *b, size_t n)
{
    size_t rec = record_at(b, n, EGRU_HDR_TENSOR_COUNT, EGRU_HDR_TENSOR_RECORD_SIZE,
                           EGRU_HDR_TENSOR_TABLE_OFFSET, r);
    if (!rec) {
        return;
    }
    uint32_t data = fuzz_rd32(b + EGRU_HDR_DATA_OFFSET);
    int scales = rnd(r, 4) == 0 && b[rec + EGRU_TNS_DTYPE] == EGRU_DTYPE_S8;
    uint32_t off = fuzz_rd32(b + rec + (scales ? EGRU_TNS_SCALE_OFFSET : EGRU_TNS_DATA_OFFSET));
    uint32_t size = scales ? 4u * fuzz_rd32(b + rec + EGRU_TNS_SCALE_COUNT)
                           : fuzz_rd32(b + rec + EGRU_TNS_DATA_SIZE);
    if (size == 0) {
        return;
    }
    uint64_t at = (uint64_t)data + off;
    if (b[rec + EGRU_TNS_DTYPE] == EGRU_DTYPE_S8 && !scales) {
        static const uint8_t q[] = {0x80, 0x7f, 0x81, 0x00, 0xff, 0x01};
        at += rnd(r, size);
        if (at < n) {
            b[at] = q[rnd(r, COUNT(q))];
        }
        return;
    }
    static const uint32_t f[] = {0x7fc00000u,
                                 0xffc00000u,
                                 0x7f800000u,
                                 0xff800000u,
                                 0x00000001u,
                                 0x0001c3b3u,
                                 0x7f61d4a0u /* 3e38 */,
                                 0x7f7fffffu,
                                 0x00000000u,
                                 0x80000000u,
                                 0x3f800000u,
                                 0xbf800000u,
                                 0x01000000u /* 2.4e-38 */};
    at += 4u * (uint64_t)rnd(r, size / 4u ? size / 4u : 1u);
    if (at + 4u <= n) {
        fuzz_wr32(b + at, f[rnd(r, COUNT(f))]);
    }
}

/* Both CRCs recomputed (payload first: the header CRC covers payload_crc32). */
static void repair(uint8_t *b, size_t n)
{
    if (n < EGRU_HEADER_SIZE) {
        return;
    }
    uint32_t fs = fuzz_rd32(b + EGRU_HDR_FILE_SIZE);
    if (fs >= EGRU_HEADER_SIZE && fs <= n) {
        fuzz_wr32(b + EGRU_HDR_PAYLOAD_CRC,
                  egru_crc32(0, b + EGRU_HEADER_SIZE, fs - EGRU_HEADER_SIZE));
    }
    fuzz_wr32(b + EGRU_HDR_HEADER_CRC, egru_crc32(0, b, EGRU_HDR_HEADER_CRC));
}

/* Structure-aware moves on a blob of n bytes with room for max; returns the new length. */
static size_t mutate_blob(rng_t *r, uint8_t *b, size_t n, size_t max)
{
    if (n < EGRU_HEADER_SIZE) {
        return lf_mutate(b, n, max);
    }
    uint32_t fs = fuzz_rd32(b + EGRU_HDR_FILE_SIZE);
    const int graph = n >= EGRU_GRAPH_HEADER_SIZE && fuzz_rd32(b + EGRU_HDR_INPUT_KIND) == 3u;
    switch (rnd(r, graph ? 16 : 12)) {
    case 0:
    case 1:
    case 2: return lf_mutate(b, n, max);
    case 3: {
        uint32_t k = rnd(r, COUNT(header_fields));
        mutate_field(r, b, n, header_fields[k][0], header_fields[k][1], fs);
        return n;
    }
    case 4:
    case 5: {
        size_t rec = record_at(b, n, EGRU_HDR_LAYER_COUNT, EGRU_HDR_LAYER_RECORD_SIZE,
                               EGRU_HDR_LAYER_TABLE_OFFSET, r);
        if (rec) {
            uint32_t k = rnd(r, COUNT(layer_fields));
            mutate_field(r, b, n, rec + layer_fields[k][0], layer_fields[k][1], fs);
        }
        return n;
    }
    case 6:
    case 7: {
        size_t rec = record_at(b, n, EGRU_HDR_TENSOR_COUNT, EGRU_HDR_TENSOR_RECORD_SIZE,
                               EGRU_HDR_TENSOR_TABLE_OFFSET, r);
        if (rec) {
            uint32_t k = rnd(r, COUNT(tensor_fields));
            mutate_field(r, b, n, rec + tensor_fields[k][0], tensor_fields[k][1], fs);
        }
        return n;
    }
    case 8:
    case 9: mutate_tensor_data(r, b, n); return n;
    case 10: { /* a whole layer record copied over another */
        size_t a = record_at(b, n, EGRU_HDR_LAYER_COUNT, EGRU_HDR_LAYER_RECORD_SIZE,
                             EGRU_HDR_LAYER_TABLE_OFFSET, r);
        size_t c = record_at(b, n, EGRU_HDR_LAYER_COUNT, EGRU_HDR_LAYER_RECORD_SIZE,
                             EGRU_HDR_LAYER_TABLE_OFFSET, r);
        if (a && c && a != c) {
            memmove(b + a, b + c, EGRU_LAYER_RECORD_SIZE);
        }
        return n;
    }
    case 12: { /* graphs: a graph header field or a node's io fields */
        if (rnd(r, 3) == 0) {
            uint32_t k = rnd(r, COUNT(graph_fields));
            mutate_field(r, b, n, graph_fields[k][0], graph_fields[k][1], fs);
            return n;
        }
        size_t rec = record_at(b, n, EGRU_HDR_LAYER_COUNT, EGRU_HDR_LAYER_RECORD_SIZE,
                               EGRU_HDR_LAYER_TABLE_OFFSET, r);
        if (rec) {
            uint32_t k = rnd(r, COUNT(node_fields));
            mutate_field(r, b, n, rec + node_fields[k][0], node_fields[k][1], fs);
        }
        return n;
    }
    case 13: { /* graphs: a value record field */
        size_t rec = record_at(b, n, EGRU_GHDR_VALUE_COUNT, EGRU_GHDR_VALUE_RECORD_SIZE,
                               EGRU_GHDR_VALUE_TABLE_OFFSET, r);
        if (rec) {
            uint32_t k = rnd(r, COUNT(value_fields));
            mutate_field(r, b, n, rec + value_fields[k][0], value_fields[k][1], fs);
        }
        return n;
    }
    case 14:
    case 15: { /* graphs: an io table entry made another value id (or a boundary value) */
        uint32_t count = fuzz_rd32(b + EGRU_GHDR_IO_COUNT);
        uint32_t values = fuzz_rd32(b + EGRU_GHDR_VALUE_COUNT);
        uint64_t at = (uint64_t)fuzz_rd32(b + EGRU_GHDR_IO_TABLE_OFFSET) +
                      4u * (uint64_t)rnd(r, count ? (count < 1024u ? count : 1024u) : 1u);
        if (at + 4u <= n) {
            uint32_t v = rnd(r, 8) ? rnd(r, values ? values : 1u) : boundary_u32(r, 0, fs);
            fuzz_wr32(b + at, v);
        }
        return n;
    }
    default: { /* the length: cut the blob, or grow it, or make file_size disagree */
        uint32_t k = rnd(r, 3);
        if (k == 0 && n > EGRU_HEADER_SIZE) {
            return EGRU_HEADER_SIZE + rnd(r, (uint32_t)(n - EGRU_HEADER_SIZE));
        }
        if (k == 1 && n + 64u <= max) {
            memset(b + n, rnd(r, 2) ? 0 : 0xff, 64u);
            return n + 64u;
        }
        fuzz_wr32(b + EGRU_HDR_FILE_SIZE, (uint32_t)n - rnd(r, 2) * 4u);
        return n;
    }
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    rng_t r = {(uint64_t)seed * 0x9E3779B97F4A7C15ull + 1u};
    UNPOISON(data, size);
    if (size < FUZZ_CTRL_SIZE || max_size < FUZZ_CTRL_SIZE + EGRU_HEADER_SIZE) {
        return lf_mutate(data, size, max_size);
    }
    size_t pool_n = fuzz_pool_size(data, size);
    size_t head = FUZZ_CTRL_SIZE + pool_n;
    size_t blob_n = size - head;
    uint32_t what = rnd(&r, 16);
    if (what < 11) {
        blob_n = mutate_blob(&r, data + head, blob_n, max_size - head);
    } else if (what < 13) { /* the control block */
        if (rnd(&r, 2)) {
            data[rnd(&r, FUZZ_CTRL_SIZE)] = (uint8_t)rnd(&r, 256);
        } else {
            data[FUZZ_C_FLAGS] ^= (uint8_t)(1u << rnd(&r, 8));
        }
        if (fuzz_pool_size(data, size) != pool_n) { /* keep the blob where it is */
            data[FUZZ_C_POOL_SIZE] = (uint8_t)pool_n;
            data[FUZZ_C_POOL_SIZE + 1] = (uint8_t)(pool_n >> 8);
        }
    } else if (what < 15) { /* the pool, resized in place: the blob moves with it */
        uint8_t pool[FUZZ_POOL_MAX];
        memcpy(pool, data + FUZZ_CTRL_SIZE, pool_n);
        size_t room = max_size - FUZZ_CTRL_SIZE - blob_n;
        size_t cap = room < FUZZ_POOL_MAX ? room : FUZZ_POOL_MAX;
        if (cap == 0) {
            return size;
        }
        size_t new_n = lf_mutate(pool, pool_n < cap ? pool_n : cap, cap);
        memmove(data + FUZZ_CTRL_SIZE + new_n, data + head, blob_n);
        memcpy(data + FUZZ_CTRL_SIZE, pool, new_n);
        data[FUZZ_C_POOL_SIZE] = (uint8_t)new_n;
        data[FUZZ_C_POOL_SIZE + 1] = (uint8_t)(new_n >> 8);
        head = FUZZ_CTRL_SIZE + new_n;
    } else {
        return lf_mutate(data, size, max_size); /* anything, unrepaired too */
    }
    if (rnd(&r, 32) != 0) {
        repair(data + head, blob_n);
    }
    return head + blob_n;
}

size_t LLVMFuzzerCustomCrossOver(const uint8_t *data1, size_t size1, const uint8_t *data2,
                                 size_t size2, uint8_t *out, size_t max_out_size, unsigned int seed)
{
    rng_t r = {(uint64_t)seed * 0xD1B54A32D192ED03ull + 7u};
    UNPOISON(data1, size1);
    UNPOISON(data2, size2);
    if (size1 < FUZZ_CTRL_SIZE || size2 < FUZZ_CTRL_SIZE) {
        return 0;
    }
    size_t head1 = FUZZ_CTRL_SIZE + fuzz_pool_size(data1, size1);
    size_t head2 = FUZZ_CTRL_SIZE + fuzz_pool_size(data2, size2);
    size_t blob1 = size1 - head1, blob2 = size2 - head2;
    if (rnd(&r, 2)) { /* control block and pool of input 1, blob of input 2 */
        if (head1 + blob2 > max_out_size) {
            return 0;
        }
        memcpy(out, data1, head1);
        memcpy(out + head1, data2 + head2, blob2);
        return head1 + blob2;
    }
    /* input 1 with a chunk of blob 2 at the same offset */
    if (size1 > max_out_size || blob1 == 0 || blob2 == 0) {
        return 0;
    }
    memcpy(out, data1, size1);
    size_t lim = blob1 < blob2 ? blob1 : blob2;
    size_t at = rnd(&r, (uint32_t)lim);
    size_t len = 1u + rnd(&r, 256);
    if (at + len > lim) {
        len = lim - at;
    }
    memcpy(out + head1 + at, data2 + head2 + at, len);
    repair(out + head1, blob1);
    return size1;
}
