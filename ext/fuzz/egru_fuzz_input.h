/*
 * egru_fuzz_input.h - layout of one fuzz input, shared by the harness (egru_fuzz.c), the
 * mutator (egru_fuzz_mutator.c) and the seed writer (tools/gen_fuzz_corpus.py).
 *
 *     offset 0   control block, FUZZ_CTRL_SIZE bytes (fields below, little-endian)
 *     offset 16  pool: pool_size bytes the input values (ids, features, states) are drawn from
 *     then       the .egru blob: every remaining byte
 *
 * An input shorter than the control block reads as zeros after its end; a pool_size beyond the
 * end is cut to what is there. Every byte string is a valid input.
 */
#ifndef EGRU_FUZZ_INPUT_H
#define EGRU_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_CTRL_SIZE 16u
#define FUZZ_POOL_MAX  4096u

/* control block byte offsets */
#define FUZZ_C_KERNELS    0u  /* index into the available kernel sets; bit 7: run every set   */
#define FUZZ_C_BATCH      1u  /* batch = 1 + value % 4                                         */
#define FUZZ_C_SEQ_LEN    2u  /* seq_len = 1 + value % 16; bit 7: a Flatten model's fixed T    */
#define FUZZ_C_FLAGS      3u  /* FUZZ_FOLD .. FUZZ_WRONG_SIZES                                 */
#define FUZZ_C_VALUE_MODE 4u  /* features: 0 raw f32 bits, 1 specials, 2 small, 3 mixed        */
#define FUZZ_C_STEPS      5u  /* session steps = 1 + value % 8                                 */
#define FUZZ_C_FLAGS2     6u  /* FUZZ_STATE .. FUZZ_WORKERS                                    */
#define FUZZ_C_STATUS     8u  /* i32: a code given to egru_status_str                          */
#define FUZZ_C_POOL_SIZE  12u /* u16: pool bytes (at most FUZZ_POOL_MAX)                       */

/* FUZZ_C_FLAGS bits */
#define FUZZ_FOLD        0x01u /* egru_model_fold, then forward on the folded model            */
#define FUZZ_PACK        0x02u /* egru_model_pack, then forward on the packed model            */
#define FUZZ_SESSION     0x04u /* a streaming session                                          */
#define FUZZ_SPECIAL_IDS 0x08u /* token ids: some negative or >= vocabulary                    */
#define FUZZ_TRUNCATE    0x10u /* egru_model_init told a blob_size smaller than the blob       */
#define FUZZ_MISALIGNED  0x20u /* egru_model_init on a misaligned copy too                     */
#define FUZZ_WRONG_SIZES 0x40u /* forward / step with wrong output and arena sizes             */

/* FUZZ_C_FLAGS2 bits */
#define FUZZ_STATE   0x01u /* session: get_state, overwrite from the pool, set_state         */
#define FUZZ_RESET   0x02u /* session: reset half-way                                        */
#define FUZZ_WIDE    0x04u /* ignore the blob: run a synthesized int8 Dense of ~133,144 inputs  */
#define FUZZ_MISUSE  0x08u /* NULL arguments, a zeroed model, misaligned / short memory         */
#define FUZZ_STEPS   0x10u /* graphs: each input its own steps (from the pool), not seq_len     */
#define FUZZ_WORKERS 0x20u /* egru_model_use_workers: 2..4 workers run in turn, last first     */

typedef struct fuzz_ctrl {
    uint32_t kernels, batch, seq_len, flags, value_mode, session_steps, flags2;
    int32_t status_code;
    uint32_t pool_size;
} fuzz_ctrl_t;

static inline uint32_t fuzz_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void fuzz_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Pool bytes an input of `size` bytes whose control block is `ctrl` really has. */
static inline size_t fuzz_pool_size(const uint8_t *ctrl, size_t size)
{
    size_t n = (size_t)ctrl[FUZZ_C_POOL_SIZE] | (size_t)ctrl[FUZZ_C_POOL_SIZE + 1] << 8;
    if (n > FUZZ_POOL_MAX) {
        n = FUZZ_POOL_MAX;
    }
    if (size < FUZZ_CTRL_SIZE) {
        return 0;
    }
    return n < size - FUZZ_CTRL_SIZE ? n : size - FUZZ_CTRL_SIZE;
}

/* Splits an input into its control block, pool and blob. */
static inline void fuzz_split(const uint8_t *data, size_t size, fuzz_ctrl_t *c,
                              const uint8_t **pool, size_t *pool_n, const uint8_t **blob,
                              size_t *blob_n)
{
    uint8_t ctrl[FUZZ_CTRL_SIZE];
    memset(ctrl, 0, sizeof ctrl);
    if (size > 0) {
        memcpy(ctrl, data, size < FUZZ_CTRL_SIZE ? size : FUZZ_CTRL_SIZE);
    }
    c->kernels = ctrl[FUZZ_C_KERNELS];
    c->batch = ctrl[FUZZ_C_BATCH];
    c->seq_len = ctrl[FUZZ_C_SEQ_LEN];
    c->flags = ctrl[FUZZ_C_FLAGS];
    c->value_mode = ctrl[FUZZ_C_VALUE_MODE];
    c->session_steps = ctrl[FUZZ_C_STEPS];
    c->flags2 = ctrl[FUZZ_C_FLAGS2];
    c->status_code = (int32_t)fuzz_rd32(ctrl + FUZZ_C_STATUS);
    *pool_n = fuzz_pool_size(ctrl, size);
    c->pool_size = (uint32_t)*pool_n;
    size_t head = size < FUZZ_CTRL_SIZE ? size : FUZZ_CTRL_SIZE;
    *pool = data + head;
    *blob = data + head + *pool_n;
    *blob_n = size - head - *pool_n;
}

#endif /* EGRU_FUZZ_INPUT_H */
