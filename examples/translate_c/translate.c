/*
 * translate.c - greedy decoding of the date translator (examples/translate.py) in C alone: the
 * encoder and the decoder-step models and the test inputs are compiled in (tools/egru2c.py
 * writes the headers, examples/translate.py --c-dir writes them all), the scratch memory is a
 * static array, nothing calls malloc. The same file builds for the host (cc) and for a
 * bare-metal Cortex-M4F in QEMU (arm-none-eabi-gcc with ../cortex_m/startup.c; Makefile).
 *
 * For each input row: state = encoder(ids of the row); token = START_TOKEN; OUT_LEN times:
 * (probs, state) = decoder_step(token, state), token = argmax(probs) (the first maximum, as
 * numpy's argmax). Prints one line per row: the decoded characters (OUT_CHARS[token], '?' for
 * the start or end token). Exit status 0, or 1 after "error: ..." on a failing call.
 *
 * Memory: one row at a time (batch 1). The arena is the largest of the two models' low-memory
 * plans (egru_run_arena_size(..., 1, ...)); the decoder step's does not depend on the length
 * of the input sentence (it sees one token and one state per call).
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

static int run(void)
{
    egru_model_t enc, dec;
    egru_status_t s;
    size_t need_enc = 0, need_dec = 0;
    const uint32_t enc_steps[1] = {INPUT_STEPS};
    const uint32_t dec_steps[2] = {1u, 1u}; /* the token: 1 step; the state: a vector */
    uint32_t row, i;

    if ((s = egru_model_init(&enc, encoder, ENCODER_SIZE)) != EGRU_OK) {
        return fail("encoder", s);
    }
    if ((s = egru_model_init(&dec, decoder, DECODER_SIZE)) != EGRU_OK) {
        return fail("decoder step", s);
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
        egru_output_t h0;
        src.data = input + (size_t)row * INPUT_STEPS;
        src.steps = INPUT_STEPS;
        h0.data = state[0];
        h0.count = UNITS;
        if ((s = egru_run(&enc, 1u, &src, 1u, &h0, 1u, arena, sizeof arena)) != EGRU_OK) {
            return fail("encoder", s);
        }
        for (i = 0; i < OUT_LEN; ++i) {
            egru_input_t in[2];
            egru_output_t out[2];
            in[0].data = &token;
            in[0].steps = 1u;
            in[1].data = state[cur];
            in[1].steps = 0u; /* ignored for a vector */
            out[0].data = probs;
            out[0].count = VOCAB;
            out[1].data = state[cur ^ 1];
            out[1].count = UNITS;
            if ((s = egru_run(&dec, 1u, in, 2u, out, 2u, arena, sizeof arena)) != EGRU_OK) {
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

/* On the Cortex-M build ../cortex_m/startup.c calls main and exits QEMU with its status
 * (semihosting, through newlib's rdimon). */
int main(void)
{
    return run();
}
