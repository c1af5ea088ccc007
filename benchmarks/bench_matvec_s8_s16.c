/* bench_matvec_s8_s16.c - the int16x8 product (egru_matvec_s8_s16) of every kernel set this CPU
 * has, timed against the reference in the same run (docs/kernels.md; benchmarks/kernels_s16.py
 * builds and runs it). Per round, each set and the reference are timed back to back on the same
 * data (the best of a few batches of calls each); the figure printed is the median over the
 * rounds of the per-round ratio set / reference (below 1: faster), with its quartiles, and the
 * reference's median time per call. Every set's output is checked against the reference's first.
 *
 *     bench_matvec_s8_s16 [rounds]        (default 31)
 *
 * Not part of the runtime: uses clock_gettime and malloc. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/egru_kernels.h"

typedef void (*s16_fn)(const int8_t *, const int16_t *, const int32_t *, const int32_t *,
                       const int32_t *, int32_t *, uint32_t, uint32_t);

static uint64_t rng = 12345;
static int32_t rand_in(int32_t lo, int32_t hi)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (int32_t)((rng >> 33) % (uint64_t)(hi - lo + 1));
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

/* Seconds per call: the best of 3 batches of `reps` calls. */
static double time_fn(s16_fn f, const int8_t *w, const int16_t *x, const int32_t *m,
                      const int32_t *n, const int32_t *b, int32_t *g, uint32_t rows, uint32_t cols,
                      uint32_t reps)
{
    double best = 1e30;
    uint32_t t, i;
    for (t = 0; t < 3; ++t) {
        const double t0 = now();
        for (i = 0; i < reps; ++i) {
            f(w, x, m, n, b, g, rows, cols);
        }
        {
            const double dt = (now() - t0) / reps;
            best = dt < best ? dt : best;
        }
    }
    return best;
}

int main(int argc, char **argv)
{
    static const uint32_t shapes[][2] = {{192, 6},   {192, 64}, {48, 8},   {48, 16},
                                         {384, 128}, {96, 516}, {16, 1033}};
    const egru_kernel_set_t *sets[4];
    const uint32_t rounds = argc > 1 ? (uint32_t)atoi(argv[1]) : 31;
    uint32_t nsets = 0, s, i, k, rd;
    const egru_kernel_set_t *ref = egru_kernels_ref();
    if (!ref || !ref->matvec_s8_s16 || rounds == 0) {
        fprintf(stderr, "no reference int16x8 product in this build (EGRU_CFG_INT16X8)\n");
        return 1;
    }
    if (egru_kernels_cortex_m()) {
        sets[nsets++] = egru_kernels_cortex_m();
    }
    if (egru_kernels_avx2()) {
        sets[nsets++] = egru_kernels_avx2();
    }
    if (egru_kernels_avx512()) {
        sets[nsets++] = egru_kernels_avx512();
    }
    if (egru_kernels_neon()) {
        sets[nsets++] = egru_kernels_neon();
    }
    printf("%-12s%12s%10s  %-10s%10s%22s\n", "shape", "ref ns", "", "set", "set/ref",
           "[quartiles]");
    for (s = 0; s < sizeof shapes / sizeof *shapes; ++s) {
        const uint32_t rows = shapes[s][0], cols = shapes[s][1];
        const uint32_t reps = 1 + 2000000u / (rows * cols);
        int8_t *w = (int8_t *)malloc((size_t)rows * cols);
        int16_t *x = (int16_t *)malloc(cols * sizeof *x);
        int32_t *m = (int32_t *)malloc(rows * sizeof *m), *n = (int32_t *)malloc(rows * sizeof *n);
        int32_t *b = (int32_t *)malloc(rows * sizeof *b), *g0 = (int32_t *)malloc(rows * 4);
        int32_t *g1 = (int32_t *)malloc(rows * sizeof *g1);
        double *ratio = (double *)malloc(rounds * nsets * sizeof *ratio);
        double *tref = (double *)malloc(rounds * sizeof *tref);
        char name[32];
        if (!w || !x || !m || !n || !b || !g0 || !g1 || !ratio || !tref) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (i = 0; i < rows * cols; ++i) {
            w[i] = (int8_t)rand_in(-127, 127);
        }
        for (i = 0; i < cols; ++i) {
            x[i] = (int16_t)rand_in(-32767, 32767);
        }
        for (i = 0; i < rows; ++i) {
            m[i] = rand_in(1 << 30, 2147483647);
            n[i] = rand_in(30, 46);
            b[i] = rand_in(-(1 << 20), 1 << 20);
        }
        ref->matvec_s8_s16(w, x, m, n, b, g0, rows, cols);
        for (k = 0; k < nsets; ++k) {
            sets[k]->matvec_s8_s16(w, x, m, n, b, g1, rows, cols);
            if (memcmp(g0, g1, rows * sizeof *g1) != 0) {
                fprintf(stderr, "%s differs from the reference on %u x %u\n", sets[k]->name, rows,
                        cols);
                return 1;
            }
        }
        for (rd = 0; rd < rounds; ++rd) {
            for (k = 0; k < nsets; ++k) { /* the pair back to back, the order alternating */
                double tr, ts;
                if (rd % 2) {
                    ts = time_fn(sets[k]->matvec_s8_s16, w, x, m, n, b, g1, rows, cols, reps);
                    tr = time_fn(ref->matvec_s8_s16, w, x, m, n, b, g0, rows, cols, reps);
                } else {
                    tr = time_fn(ref->matvec_s8_s16, w, x, m, n, b, g0, rows, cols, reps);
                    ts = time_fn(sets[k]->matvec_s8_s16, w, x, m, n, b, g1, rows, cols, reps);
                }
                ratio[k * rounds + rd] = ts / tr;
                if (k == 0) {
                    tref[rd] = tr;
                }
            }
        }
        qsort(tref, rounds, sizeof *tref, cmp_double);
        snprintf(name, sizeof name, "%ux%u", rows, cols);
        for (k = 0; k < nsets; ++k) {
            double *r = ratio + k * rounds;
            qsort(r, rounds, sizeof *r, cmp_double);
            if (k == 0) {
                printf("%-12s%12.1f", name, 1e9 * tref[rounds / 2]);
            } else {
                printf("%-12s%12s", "", "");
            }
            printf("%10s  %-10s%10.3f%11s%.3f, %.3f]\n", "", sets[k]->name, r[rounds / 2], "[",
                   r[rounds / 4], r[(3 * rounds) / 4]);
        }
        free(w);
        free(x);
        free(m);
        free(n);
        free(b);
        free(g0);
        free(g1);
        free(ratio);
        free(tref);
    }
    return 0;
}
