/*
 * translate.c - greedy decoding of the date translator (examples/translate.py) in C alone: the
 * encoder and the decoder-step models and the test inputs are compiled in (tools/egru2c.py
 * writes the headers, examples/translate.py --c-dir writes them all), the scratch memory is a
 * static array, nothing calls malloc. The same file builds for the host (cc) and for a
 * bare-metal Cortex-M4F in QEMU (arm-none-eabi-gcc with ../cortex_m/startup.c; Makefile).
 *
 * For each input row: state = encoder(ids of the row); token = START_TOKEN; OUT_LEN times:
 * (probs, state) = decoder_step(token, state), token = argmax(probs) (the first maximum, as
 * numpy's argmax). With attention (translate.py --attention) the encoder also gives its output
 * sequence, which every decoder step reads too; the models' inputs and outputs are told apart
 * by kind (tokens, vector, sequence). Prints one line per row: the decoded characters
 * (OUT_CHARS[token], '?' for the start or end token). Exit status 0, or 1 after "error: ..." on a
 * failing call.
 *
 * Memory: one row at a time (batch 1). The arena is the largest of the two models' low-memory
 * plans (egru_run_arena_size(..., 1, ...)); the decoder step's does not depend on the length
 * of the input sentence: it sees one token and one state per call, and with attention the
 * encoder's sequence is an input (enc_seq, this program's buffer) that the attention reads in
 * one pass without scratch, its Masking(0.0) (the source mask) a view of that buffer
 * (docs/format.md "ATTENTION", "Running a graph"). tests/test_translate*.py check it with two
 * padded lengths.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "edgegru.h"

#include ENCODER_HEADER /* encoder[], ENCODER_SIZE */
#include DECODER_HEADER /* decoder[], DECODER_SIZE */
#include INPUT_HEADER   /* input[] int32 ids (INPUT_BATCH, INPUT_STEPS) */
#include META_HEADER    /* OUT_LEN, START_TOKEN, VOCAB, UNITS, OUT_CHARS */

#ifndef ARENA_BYTES
#define ARENA_BYTES 65536
#endif

static unsigned char arena[ARENA_BYTES] __attribute__((aligned(16)));
static float state[2][UNITS];
static float probs[VOCAB];
static float enc_seq[INPUT_STEPS * UNITS]; /* the encoder's outputs, for an attention decoder */

static int fail(const char *what, egru_status_t status)
{
    printf("error: %s: %s\n", what, egru_status_str(status));
    return 1;
}

/* The first index of the largest of n floats. */
static int32_t argmax(const float *p, uint32_t n)
{
    uint32_t i, best = 0;
    for (i = 1; i < n; ++i) {
        if (p[i] > p[best]) {
            best = i;
        }
    }
    return (int32_t)best;
}

/* Which of a model's inputs or outputs has each role, found by kind (docs/c_api.md "Graphs"):
 * token ids, a state vector, a sequence (the encoder's outputs, for an attention decoder). */
typedef struct roles {
    int token, state, seq; /* index, or -1 when the model has none */
    uint32_t count;
} roles_t;

static egru_status_t find_roles(const egru_model_t *m, int outputs, roles_t *r)
{
    uint32_t n_in = 0, n_out = 0, i;
    egru_status_t s = egru_model_io(m, &n_in, &n_out);
    r->token = r->state = r->seq = -1;
    r->count = outputs ? n_out : n_in;
    for (i = 0; s == EGRU_OK && i < r->count && i < 3u; ++i) {
        egru_io_info_t info;
        s = outputs ? egru_model_output(m, i, &info) : egru_model_input(m, i, &info);
        if (s == EGRU_OK && info.kind == EGRU_VALUE_TOKENS) {
            r->token = (int)i;
        } else if (s == EGRU_OK && info.kind == EGRU_VALUE_VECTOR) {
            r->state = (int)i;
        } else if (s == EGRU_OK) {
            r->seq = (int)i;
        }
    }
    return s == EGRU_OK && r->count > 3u ? EGRU_ERR_WRONG_INPUT : s;
}

static int run(void)
{
    egru_model_t enc, dec;
    egru_status_t s;
    roles_t enc_out, dec_in, dec_out;
    size_t need_enc = 0, need_dec = 0;
    const uint32_t enc_steps[1] = {INPUT_STEPS};
    uint32_t dec_steps[3] = {1u, 1u, 1u}, row, i;

    if ((s = egru_model_init(&enc, encoder, ENCODER_SIZE)) != EGRU_OK) {
        return fail("encoder", s);
    }
    if ((s = egru_model_init(&dec, decoder, DECODER_SIZE)) != EGRU_OK) {
        return fail("decoder step", s);
    }
    /* The encoder gives the state (and, for attention, its output sequence); the decoder step
     * reads a token and the state (and the encoder's sequence) and gives the next token's
     * probabilities (a sequence of one step) and the new state. */
    if ((s = find_roles(&enc, 1, &enc_out)) != EGRU_OK ||
        (s = find_roles(&dec, 0, &dec_in)) != EGRU_OK ||
        (s = find_roles(&dec, 1, &dec_out)) != EGRU_OK) {
        return fail("model inputs and outputs", s);
    }
    if (enc_out.state < 0 || dec_in.token < 0 || dec_in.state < 0 || dec_out.seq < 0 ||
        dec_out.state < 0 || (dec_in.seq >= 0) != (enc_out.seq >= 0)) {
        return fail("model inputs and outputs", EGRU_ERR_WRONG_INPUT);
    }
    if (dec_in.seq >= 0) {
        dec_steps[dec_in.seq] = INPUT_STEPS; /* the encoder's sequence: one step per source id */
    }
    if ((s = egru_run_arena_size(&enc, 1u, enc_steps, 1, &need_enc)) != EGRU_OK ||
        (s = egru_run_arena_size(&dec, 1u, dec_steps, 1, &need_dec)) != EGRU_OK) {
        return fail("arena size", s);
    }
    printf("@arena_encoder %lu\n@arena_decoder_step %lu\n", (unsigned long)need_enc,
           (unsigned long)need_dec);
    if (need_enc > sizeof arena || need_dec > sizeof arena) {
        return fail("arena", EGRU_ERR_ARENA_TOO_SMALL);
    }
    for (row = 0; row < INPUT_BATCH; ++row) {
        char text[OUT_LEN + 1];
        int32_t token = START_TOKEN;
        int cur = 0;
        egru_input_t src;
        egru_output_t eo[2];
        src.data = input + (size_t)row * INPUT_STEPS;
        src.steps = INPUT_STEPS;
        eo[enc_out.state].data = state[0];
        eo[enc_out.state].count = UNITS;
        if (enc_out.seq >= 0) {
            eo[enc_out.seq].data = enc_seq;
            eo[enc_out.seq].count = (size_t)INPUT_STEPS * UNITS;
        }
        if ((s = egru_run(&enc, 1u, &src, 1u, eo, enc_out.count, arena, sizeof arena)) != EGRU_OK) {
            return fail("encoder", s);
        }
        for (i = 0; i < OUT_LEN; ++i) {
            egru_input_t in[3];
            egru_output_t out[2];
            in[dec_in.token].data = &token;
            in[dec_in.token].steps = 1u;
            in[dec_in.state].data = state[cur];
            in[dec_in.state].steps = 0u; /* ignored for a vector */
            if (dec_in.seq >= 0) {
                in[dec_in.seq].data = enc_seq;
                in[dec_in.seq].steps = INPUT_STEPS;
            }
            out[dec_out.seq].data = probs;
            out[dec_out.seq].count = VOCAB;
            out[dec_out.state].data = state[cur ^ 1];
            out[dec_out.state].count = UNITS;
            if ((s = egru_run(&dec, 1u, in, dec_in.count, out, dec_out.count, arena,
                              sizeof arena)) != EGRU_OK) {
                return fail("decoder step", s);
            }
            cur ^= 1;
            token = argmax(probs, VOCAB);
            text[i] = token < (int32_t)(sizeof OUT_CHARS - 1) ? OUT_CHARS[token] : '?';
        }
        text[OUT_LEN] = '\0';
        printf("%s\n", text);
    }
    return 0;
}

#if defined(__arm__)
/* ../cortex_m/startup.c's vector table names a SysTick handler; this program does not time. */
void SysTick_Handler(void);
void SysTick_Handler(void)
{
}
#endif

/* On the Cortex-M build ../cortex_m/startup.c calls main and exits QEMU with its status
 * (semihosting, through newlib's rdimon). */
int main(void)
{
    return run();
}
