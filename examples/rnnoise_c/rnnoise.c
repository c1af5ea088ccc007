/*
 * rnnoise.c - the RNNoise-style denoiser of examples/rnnoise.py streamed frame by frame in C
 * alone: the model and the test frames are compiled in (tools/egru2c.py writes the headers,
 * examples/rnnoise.py --c-dir writes them), the session memory is a static array, nothing calls
 * malloc. The same file builds for the host (cc) and for a bare-metal Cortex-M4F in QEMU
 * (arm-none-eabi-gcc with ../cortex_m/startup.c; Makefile).
 *
 * A graph session (egru_graph_session_*, edgegru.h) runs the whole graph on ONE frame per call
 * and keeps each of the three GRUs' states between calls, as a real-time denoiser would: the
 * memory it needs does not depend on the number of frames. Prints one line per frame: the
 * BANDS gains, then the VAD probability ("%.9g" each, space-separated). Exit status 0, or 1
 * after "error: ..." on a failing call.
 */
#include <stdint.h>
#include <stdio.h>

#include "edgegru.h"

#include MODEL_HEADER /* model[], MODEL_SIZE */
#include INPUT_HEADER /* input[] float32 (INPUT_BATCH = 1, INPUT_STEPS, INPUT_DIM) */

#ifndef SESSION_BYTES
#define SESSION_BYTES 65536
#endif
#define MAX_WIDTH 64 /* the widest output (the gains: BANDS) */

static unsigned char mem[SESSION_BYTES] __attribute__((aligned(16)));
static float outs[2][MAX_WIDTH];

static int fail(const char *what, egru_status_t status)
{
    printf("error: %s: %s\n", what, egru_status_str(status));
    return 1;
}

static int run(void)
{
    egru_model_t m;
    egru_graph_session_t s;
    egru_io_info_t info[2];
    egru_status_t st;
    size_t need = 0;
    uint32_t n_in = 0, n_out = 0, t, j, k;
    uint32_t node = 0;

    if ((st = egru_model_init(&m, model, MODEL_SIZE)) != EGRU_OK) {
        return fail("model", st);
    }
    if ((st = egru_model_io(&m, &n_in, &n_out)) != EGRU_OK) {
        return fail("model io", st);
    }
    if (n_in != 1 || n_out != 2) {
        return fail("model io (one input, two outputs expected)", EGRU_ERR_WRONG_INPUT);
    }
    for (j = 0; j < 2; ++j) {
        if ((st = egru_model_output(&m, j, &info[j])) != EGRU_OK) {
            return fail("output", st);
        }
        if (info[j].width > MAX_WIDTH) {
            return fail("output width", EGRU_ERR_OUTPUT_SIZE);
        }
    }
    if ((st = egru_graph_session_check(&m, &node)) != EGRU_OK) {
        printf("node %lu cannot stream\n", (unsigned long)node);
        return fail("stream", st);
    }
    if ((st = egru_graph_session_size(&m, 1u, &need)) != EGRU_OK) {
        return fail("session size", st);
    }
    printf("@session_bytes %lu\n", (unsigned long)need);
    if ((st = egru_graph_session_init(&s, &m, 1u, mem, sizeof mem)) != EGRU_OK) {
        return fail("session", st);
    }
    for (t = 0; t < INPUT_STEPS; ++t) {
        egru_input_t in;
        egru_output_t out[2];
        in.data = input + (size_t)t * INPUT_DIM; /* frame t of row 0 */
        in.steps = 1u;
        for (j = 0; j < 2; ++j) {
            out[j].data = outs[j];
            out[j].count = info[j].width;
        }
        if ((st = egru_graph_session_step(&s, &in, 1u, out, 2u)) != EGRU_OK) {
            return fail("step", st);
        }
        for (j = 0; j < 2; ++j) {
            for (k = 0; k < info[j].width; ++k) {
                printf(j + k ? " %.9g" : "%.9g", (double)outs[j][k]);
            }
        }
        printf("\n");
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
