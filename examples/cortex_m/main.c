/*
 * main.c - one forward pass of an edgegru model on a bare-metal Cortex-M4, from C alone.
 *
 * The model and its input are compiled in as const arrays (tools/egru2c.py writes both headers);
 * the scratch memory is a static array. Nothing here or in the runtime calls malloc. Each output
 * float is printed on its own line with printf("%.9g\n") through newlib's semihosting (rdimon);
 * the program exits with status 0 on success and 1 on any error (via semihosting SYS_EXIT).
 *
 * Build with MODEL_HEADER and INPUT_HEADER defined as the generated headers' paths (the Makefile
 * does that from MODEL_H and INPUT_H); they must be generated with --name model and --name input.
 */
#include <stdio.h>
#include <stdlib.h>

#include "edgegru.h"

#include MODEL_HEADER
#include INPUT_HEADER

/* Scratch for egru_forward_*: must be at least egru_arena_size() for the input's shape. */
#ifndef ARENA_BYTES
#define ARENA_BYTES 16384
#endif
/* Capacity of the output buffer, in floats. */
#ifndef MAX_OUTPUTS
#define MAX_OUTPUTS 1024
#endif

static unsigned char arena[ARENA_BYTES] __attribute__((aligned(16)));
static float outputs[MAX_OUTPUTS];

static int fail(const char *what, egru_status_t status)
{
    printf("error: %s: %s\n", what, egru_status_str(status));
    return EXIT_FAILURE;
}

int main(void)
{
    egru_model_t m;
    size_t need = 0, count = 0;
    egru_status_t s = egru_model_init(&m, model, MODEL_SIZE);
    if (s != EGRU_OK) {
        return fail("egru_model_init", s);
    }
    s = egru_arena_size(&m, INPUT_BATCH, INPUT_STEPS, &need);
    if (s != EGRU_OK) {
        return fail("egru_arena_size", s);
    }
    if (need > sizeof arena) {
        printf("error: the model needs %lu bytes of arena, ARENA_BYTES is %lu\n",
               (unsigned long)need, (unsigned long)sizeof arena);
        return EXIT_FAILURE;
    }
    s = egru_output_count(&m, INPUT_BATCH, INPUT_STEPS, &count);
    if (s != EGRU_OK) {
        return fail("egru_output_count", s);
    }
    if (count > MAX_OUTPUTS) {
        printf("error: the output has %lu floats, MAX_OUTPUTS is %lu\n", (unsigned long)count,
               (unsigned long)MAX_OUTPUTS);
        return EXIT_FAILURE;
    }
#if INPUT_IS_TOKENS
    s = egru_forward_tokens(&m, input, INPUT_BATCH, INPUT_STEPS, outputs, count, arena, need);
#else
    s = egru_forward_features(&m, input, INPUT_BATCH, INPUT_STEPS, outputs, count, arena, need);
#endif
    if (s != EGRU_OK) {
        return fail("forward pass", s);
    }
    for (size_t i = 0; i < count; i++) {
        printf("%.9g\n", (double)outputs[i]);
    }
    return EXIT_SUCCESS;
}
