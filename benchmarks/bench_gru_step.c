/* bench_gru_step.c - one GRU step at batch 1 (the recurrent product on packed weights in the
 * forward pass's blocks of EGRU_RECURRENT_BLOCK output rows, visited in alternating order from
 * step to step, then the fused gates) timed per part and as a chain of dependent steps (h feeds
 * the next step), for every kernel set this CPU has, on the shapes of the benchmark workloads
 * (docs/benchmarks.md): W1 GRU(128) (input projection folded: not in the step), W2 GRU(64),
 * W3 GRU(16), W4 GRU(128) with its 64-input projection. benchmarks/gru_step.py builds and runs it.
 *
 * Per round, every set is timed back to back on the same data (the best of 3 batches of calls);
 * printed: the median over rounds of ns per step, and of the per-round ratio to the first set
 * (below 1: faster), with quartiles.
 *
 *     bench_gru_step [rounds]        (default 31)
 *
 * Not part of the runtime: uses clock_gettime and malloc. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/egru_kernels.h"
#include "layers/egru_layers.h"

enum { MAX_SETS = 4, PARTS = 6 };
/* product: the packed float product as the forward pass runs it; gates: gru_gates_f32; step:
 * input projection (W4), product and gates, h feeding the next step; s8 whole: the int8 product
 * of an int8 model (quantize h, matvec_s8 on all rows at once); s8 blocks: the same in blocks of
 * EGRU_RECURRENT_BLOCK rows in alternating order; strided: the float product on the whole
 * transposed matrix (the packed layout before panels). */
static const char *const part_names[PARTS] = {"product",  "gates",     "step",
                                              "s8 whole", "s8 blocks", "strided"};

typedef struct shape {
    const char *name;
    uint32_t units, inputs; /* inputs 0: the input projection is not part of the step */
} shape_t;

typedef struct data {
    uint32_t H, I;
    float *wt, *kt, *bias, *rbias, *x, *xp, *xp0, *hp, *h, *scale;
    int8_t *w8, *q;
} data_t;

static uint64_t rng = 12345;
static float rand_f(float scale)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return scale * ((float)((rng >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The recurrent product of one step, as egru_rnn_recurrent_f32 runs it for one row: the packed
 * matrix in panels of EGRU_RECURRENT_BLOCK outputs, each (H, width) row-major, in alternating
 * order (layers/egru_layers.h). */
static void product(const egru_kernel_set_t *k, const data_t *d, uint32_t step)
{
    const uint32_t count = 3 * d->H, P = EGRU_RECURRENT_BLOCK, n = (count + P - 1) / P;
    uint32_t i;
    for (i = 0; i < n; ++i) {
        const uint32_t p = (step & 1u) ? n - 1 - i : i, r = p * P;
        const uint32_t width = count - r < P ? count - r : P;
        k->matvec_t_f32(d->wt + (size_t)r * d->H, width, d->h, d->rbias + r, d->hp + r, width,
                        d->H);
    }
}

/* The same product on the whole (H, 3H) transposed matrix in blocks of EGRU_RECURRENT_BLOCK
 * outputs (each block a strided walk: the layout before the panels). */
static void product_strided(const egru_kernel_set_t *k, const data_t *d, uint32_t step)
{
    const uint32_t count = 3 * d->H,
                   blocks = (count + EGRU_RECURRENT_BLOCK - 1) / EGRU_RECURRENT_BLOCK;
    uint32_t b;
    for (b = 0; b < blocks; ++b) {
        const uint32_t r = EGRU_RECURRENT_BLOCK * ((step & 1u) ? blocks - 1 - b : b);
        const uint32_t n = count - r < EGRU_RECURRENT_BLOCK ? count - r : EGRU_RECURRENT_BLOCK;
        k->matvec_t_f32(d->wt + r, count, d->h, d->rbias + r, d->hp + r, n, d->H);
    }
}

/* The int8 recurrent product of one step (rows 3H, cols H): all rows at once, or in blocks of
 * EGRU_RECURRENT_BLOCK rows visited in alternating order as egru_rnn_recurrent_f32 does. */
static void product_s8(const egru_kernel_set_t *k, const data_t *d, uint32_t step, int blocked)
{
    const uint32_t count = 3 * d->H, H = d->H;
    const uint32_t blocks = blocked ? (count + EGRU_RECURRENT_BLOCK - 1) / EGRU_RECURRENT_BLOCK : 1;
    const uint32_t size = blocked ? EGRU_RECURRENT_BLOCK : count;
    const float sh = k->quantize_s8(d->h, d->q, H);
    uint32_t b;
    for (b = 0; b < blocks; ++b) {
        const uint32_t r = size * ((step & 1u) ? blocks - 1 - b : b);
        const uint32_t n = count - r < size ? count - r : size;
        k->matvec_s8(d->w8 + (size_t)r * H, d->scale + r, d->q, sh, d->rbias + r, d->hp + r, n, H);
    }
}

static void run(const egru_kernel_set_t *k, data_t *d, int part, uint32_t reps)
{
    uint32_t i;
    for (i = 0; i < reps; ++i) {
        if (part == 5) {
            product_strided(k, d, i);
        } else if (part == 3 || part == 4) {
            product_s8(k, d, i, part == 4);
        } else if (part == 0) {
            product(k, d, i);
        } else if (part == 1) {
            memcpy(d->xp, d->xp0, 3 * d->H * sizeof(float));
            k->gru_gates_f32(d->xp, d->hp, d->h, d->H, 1);
        } else { /* a whole step: input projection (W4), product, gates; h feeds the next */
            if (d->I) {
                k->matvec_t_f32(d->kt, 3 * d->H, d->x, d->bias, d->xp, 3 * d->H, d->I);
            } else {
                memcpy(d->xp, d->xp0, 3 * d->H * sizeof(float));
            }
            product(k, d, i);
            k->gru_gates_f32(d->xp, d->hp, d->h, d->H, 1);
        }
    }
}

static double time_part(const egru_kernel_set_t *k, data_t *d, int part, uint32_t reps)
{
    double best = 1e30;
    int t;
    for (t = 0; t < 3; ++t) {
        const double t0 = now();
        double dt;
        run(k, d, part, reps);
        dt = (now() - t0) / reps;
        best = dt < best ? dt : best;
    }
    return best;
}

/* Every buffer starts `misalign` bytes past a 64-byte boundary (argv[2], default 0): what a
 * 16-byte aligned allocation gives a kernel that streams weights. */
static size_t misalign = 0;
static float *alloc_rand(size_t n, float scale)
{
    char *base = (char *)aligned_alloc(64, ((n * sizeof(float) + 127) / 64) * 64);
    float *p = (float *)(void *)(base + misalign);
    size_t i;
    if (!base) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (i = 0; i < n; ++i) {
        p[i] = rand_f(scale);
    }
    return p;
}

int main(int argc, char **argv)
{
    static const shape_t shapes[] = {{"W1 GRU(128)", 128, 0},
                                     {"W2 GRU(64)", 64, 0},
                                     {"W3 GRU(16)", 16, 0},
                                     {"W4 64->GRU(128)", 128, 64}};
    const egru_kernel_set_t *sets[MAX_SETS];
    const uint32_t rounds = argc > 1 ? (uint32_t)atoi(argv[1]) : 31;
    misalign = argc > 2 ? (size_t)atoi(argv[2]) : 0;
    uint32_t nsets = 0, s, k, rd;
    int p;
    if (egru_kernels_avx2()) {
        sets[nsets++] = egru_kernels_avx2();
    }
    if (egru_kernels_avx512()) {
        sets[nsets++] = egru_kernels_avx512();
    }
    if (egru_kernels_neon()) {
        sets[nsets++] = egru_kernels_neon();
    }
    if (nsets == 0 || rounds == 0) {
        fprintf(stderr, "no SIMD kernel set on this CPU\n");
        return 1;
    }
    printf("%-18s%-10s%-8s%10s%12s%18s\n", "shape", "part", "set", "ns", "/ first", "[quartiles]");
    for (s = 0; s < sizeof shapes / sizeof *shapes; ++s) {
        data_t d;
        const uint32_t H = shapes[s].units, I = shapes[s].inputs;
        const uint32_t reps = 1 + 400000u / (3 * H * (H + I) + 200);
        double *ns = (double *)malloc(sizeof(double) * rounds * MAX_SETS);
        double *ratio = (double *)malloc(sizeof(double) * rounds * MAX_SETS);
        d.H = H;
        d.I = I;
        d.wt = alloc_rand((size_t)3 * H * H, 0.1f);
        d.kt = alloc_rand((size_t)3 * H * (I ? I : 1), 0.1f);
        d.bias = alloc_rand(3 * H, 0.3f);
        d.rbias = alloc_rand(3 * H, 0.3f);
        d.x = alloc_rand(I ? I : 1, 1.0f);
        d.xp = alloc_rand(3 * H, 1.0f);
        d.xp0 = alloc_rand(3 * H, 1.0f);
        d.hp = alloc_rand(3 * H, 1.0f);
        d.h = alloc_rand(H, 0.5f);
        d.scale = alloc_rand(3 * H, 0.01f);
        d.w8 = (int8_t *)(void *)alloc_rand((size_t)3 * H * H / 4 + 1, 0.0f);
        d.q = (int8_t *)(void *)alloc_rand(H / 4 + 1, 0.0f);
        {
            size_t i;
            for (i = 0; i < (size_t)3 * H * H; ++i) {
                d.w8[i] = (int8_t)(rand_f(127.0f));
            }
        }
        if (!ns || !ratio) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (p = 0; p < PARTS; ++p) {
            for (rd = 0; rd < rounds; ++rd) {
                for (k = 0; k < nsets; ++k) { /* rotate who goes first */
                    const uint32_t j = (k + rd) % nsets;
                    ns[j * rounds + rd] = 1e9 * time_part(sets[j], &d, p, reps);
                }
                for (k = 0; k < nsets; ++k) {
                    ratio[k * rounds + rd] = ns[k * rounds + rd] / ns[rd];
                }
            }
            for (k = 0; k < nsets; ++k) {
                double *t = ns + k * rounds, *r = ratio + k * rounds;
                qsort(t, rounds, sizeof *t, cmp_double);
                qsort(r, rounds, sizeof *r, cmp_double);
                printf("%-18s%-10s%-8s%10.1f%12.3f%9s%.3f, %.3f]\n",
                       (p == 0 && k == 0) ? shapes[s].name : "", k == 0 ? part_names[p] : "",
                       sets[k]->name, t[rounds / 2], r[rounds / 2], "[", r[rounds / 4],
                       r[(3 * rounds) / 4]);
            }
        }
        /* (the buffers are left to the process's exit: they do not start where malloc's do) */
        free(ns);
        free(ratio);
    }
    return 0;
}
