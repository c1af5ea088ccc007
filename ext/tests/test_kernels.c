/*
 * test_kernels.c - every kernel set this build and CPU have (the reference always), against
 * double-precision results computed here, with the bounds stated in docs/kernels.md:
 *
 *   matvec / matmul: |y - exact| <= n * FLT_EPSILON / 2 * (sum_c |w_c x_c| + |bias|), the classic
 *       worst-case bound of float summation of n terms in any order, on random shapes including
 *       sizes that are not multiples of the vector width (so any two sets differ by at most
 *       twice that);
 *   sigmoid / tanh: |y - exact| <= ACT_TOL absolute, on a dense sweep of [-100, 100] and special
 *       values.
 *
 * Prints "N passed, N failed" and exits non-zero on any failure; the run names the sets tested.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../src/kernels/egru_kernels.h"

#define ACT_TOL 3e-7

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            ++passed;                                                                              \
        } else {                                                                                   \
            ++failed;                                                                              \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static unsigned long rng_state = 7;

static float uniform(void) /* [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ul + 1442695040888963407ul;
    return (float)((rng_state >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

enum { MAX_ROWS = 200, MAX_COLS = 300, MAX_N = 9 };
static float w[MAX_ROWS * MAX_COLS], x[MAX_N * MAX_COLS], bias[MAX_ROWS];
enum { GUARD = 64 }; /* outputs past the end: a kernel must never write them */
static float y[MAX_N * MAX_ROWS + GUARD];
enum { PAD = 5 }; /* extra columns of a packed matrix, to test ld > rows */
static float wt[MAX_COLS * (MAX_ROWS + PAD)];

/* w (rows, cols) transposed into wt (cols, ld); the padding holds NaN, which must not leak. */
static void pack(uint32_t rows, uint32_t cols, uint32_t ld)
{
    uint32_t r, c;
    for (c = 0; c < cols; ++c) {
        for (r = 0; r < ld; ++r) {
            wt[c * ld + r] = r < rows ? w[r * cols + c] : NAN;
        }
    }
}

/* y[used, used + GUARD) set to a sentinel before a call, and after it the number of those changed
 * (a store past the end of the output). */
static void guard_set(float *out, uint32_t used)
{
    uint32_t i;
    for (i = used; i < used + GUARD; ++i) {
        out[i] = 1234.5f;
    }
}

static uint32_t guard_hit(const float *out, uint32_t used)
{
    uint32_t i, hit = 0;
    for (i = used; i < used + GUARD; ++i) {
        hit += out[i] != 1234.5f;
    }
    return hit;
}

/* |y - exact dot product| within the float summation bound. */
static int within_bound(float got, uint32_t row, const float *xi, uint32_t cols, const float *b)
{
    double exact = b ? b[row] : 0.0, mag = b ? fabs(b[row]) : 0.0;
    uint32_t c;
    for (c = 0; c < cols; ++c) {
        exact += (double)w[row * cols + c] * xi[c];
        mag += fabs((double)w[row * cols + c] * xi[c]);
    }
    return fabs(got - exact) <= (cols + 1) * (double)FLT_EPSILON / 2 * mag + 1e-30;
}

static void test_products(const egru_kernel_set_t *k)
{
    const uint32_t sizes[] = {1,  2,  3,  7,  8,  9,  15,  16,  17,  23, 24,
                              25, 31, 33, 64, 65, 70, 128, 131, 200, 300};
    uint32_t a, b, n, i, r, bad = 0, cases = 0;
    for (a = 0; a < sizeof sizes / sizeof *sizes; ++a) {
        for (b = 0; b < sizeof sizes / sizeof *sizes; ++b) {
            const uint32_t rows = sizes[a] > MAX_ROWS ? MAX_ROWS : sizes[a], cols = sizes[b];
            for (i = 0; i < rows * cols; ++i) {
                w[i] = uniform();
            }
            for (i = 0; i < MAX_N * cols; ++i) {
                x[i] = uniform() * 3.0f;
            }
            for (i = 0; i < rows; ++i) {
                bias[i] = uniform();
            }
            for (n = 1; n <= MAX_N; ++n) {
                const float *bb = (n % 2) ? bias : NULL;
                guard_set(y, n * rows);
                k->matmul_f32(w, x, bb, y, n, rows, cols);
                bad += guard_hit(y, n * rows);
                for (i = 0; i < n; ++i) {
                    for (r = 0; r < rows; ++r) {
                        bad += !within_bound(y[i * rows + r], r, x + i * cols, cols, bb);
                    }
                }
                ++cases;
            }
            guard_set(y, rows);
            k->matvec_f32(w, x, bias, y, rows, cols);
            bad += guard_hit(y, rows);
            for (r = 0; r < rows; ++r) {
                bad += !within_bound(y[r], r, x, cols, bias);
            }
            ++cases;
            /* The packed (transposed) kernels: matvec_t with ld == rows and ld > rows, matmul_t
             * for every n. */
            pack(rows, cols, rows + PAD);
            guard_set(y, rows);
            k->matvec_t_f32(wt, rows + PAD, x, bias, y, rows, cols);
            bad += guard_hit(y, rows);
            for (r = 0; r < rows; ++r) {
                bad += !within_bound(y[r], r, x, cols, bias);
            }
            for (n = 1; n <= MAX_N; ++n) { /* ld > rows: a block of a wider packed matrix */
                const float *bb = (n % 2) ? NULL : bias;
                guard_set(y, n * rows);
                k->matmul_t_f32(wt, rows + PAD, x, bb, y, n, rows, cols);
                bad += guard_hit(y, n * rows);
                for (i = 0; i < n; ++i) {
                    for (r = 0; r < rows; ++r) {
                        bad += !within_bound(y[i * rows + r], r, x + i * cols, cols, bb);
                    }
                }
                ++cases;
            }
            pack(rows, cols, rows);
            for (n = 1; n <= MAX_N; ++n) {
                const float *bb = (n % 2) ? NULL : bias;
                guard_set(y, n * rows);
                k->matmul_t_f32(wt, rows, x, bb, y, n, rows, cols);
                bad += guard_hit(y, n * rows);
                for (i = 0; i < n; ++i) {
                    for (r = 0; r < rows; ++r) {
                        bad += !within_bound(y[i * rows + r], r, x + i * cols, cols, bb);
                    }
                }
                ++cases;
            }
            guard_set(y, rows);
            k->matvec_t_f32(wt, rows, x, NULL, y, rows, cols);
            bad += guard_hit(y, rows);
            for (r = 0; r < rows; ++r) {
                bad += !within_bound(y[r], r, x, cols, NULL);
            }
            cases += 2;
        }
    }
    CHECK(bad == 0, "%s: %u products outside the bound in %u cases", k->name, bad, cases);
}

static void test_activations(const egru_kernel_set_t *k)
{
    static float v[40001], in[40001];
    const float specials[] = {0.0f,  -0.0f,  1e-30f, -1e-30f, 1e-8f,    88.0f,    -88.0f,
                              89.0f, -89.0f, 1e10f,  -1e10f,  INFINITY, -INFINITY};
    uint32_t i, n = 40001, f;
    double worst[2] = {0.0, 0.0};
    for (f = 0; f < 2; ++f) {
        for (i = 0; i < n; ++i) {
            v[i] = -100.0f + 200.0f * (float)i / (float)(n - 1);
        }
        memcpy(v + n - 13, specials, sizeof specials);
        memcpy(in, v, sizeof v);
        (f ? k->tanh_f32 : k->sigmoid_f32)(v, n);
        for (i = 0; i < n; ++i) {
            const double exact = f ? tanh((double)in[i]) : 1.0 / (1.0 + exp(-(double)in[i]));
            const double d = fabs((double)v[i] - exact);
            worst[f] = d > worst[f] || d != d ? d : worst[f];
        }
        CHECK(worst[f] <= ACT_TOL, "%s %s: max abs error %.3g", k->name, f ? "tanh" : "sigmoid",
              worst[f]);
    }
    printf("%s: sigmoid max abs error %.3g, tanh %.3g\n", k->name, worst[0], worst[1]);
    /* Short runs, every length from 1 to 40 (each tail length of 4-, 8- and 16-lane vectors), on
     * values picked from the sweep, with nothing written past the end. */
    for (f = 0; f < 2; ++f) {
        uint32_t len, bad = 0;
        for (len = 1; len <= 40; ++len) {
            float s[40 + GUARD], s_in[40];
            for (i = 0; i < len; ++i) {
                s[i] = s_in[i] = in[(i * 1009u + len * 7919u) % n];
            }
            guard_set(s, len);
            (f ? k->tanh_f32 : k->sigmoid_f32)(s, len);
            bad += guard_hit(s, len);
            for (i = 0; i < len; ++i) {
                const double exact =
                    f ? tanh((double)s_in[i]) : 1.0 / (1.0 + exp(-(double)s_in[i]));
                bad += !(fabs((double)s[i] - exact) <= ACT_TOL);
            }
        }
        CHECK(bad == 0, "%s %s: %u errors on short runs", k->name, f ? "tanh" : "sigmoid", bad);
    }
}

/* The fused GRU gates (when the set has them) against the same steps as separate passes with the
 * set's own sigmoid and tanh, bit for bit; and the activations give each element the same result
 * wherever it sits in the array (the fusion relies on that). */
static void unfused_gates(const egru_kernel_set_t *k, float *xs, const float *hp, float *h,
                          uint32_t n, int update)
{
    uint32_t j;
    for (j = 0; j < 2 * n; ++j) {
        xs[j] += hp[j];
    }
    k->sigmoid_f32(xs, 2 * n);
    for (j = 0; j < n; ++j) {
        xs[2 * n + j] += xs[n + j] * hp[2 * n + j];
    }
    k->tanh_f32(xs + 2 * n, n);
    for (j = 0; update && j < n; ++j) {
        h[j] = xs[j] * h[j] + (1.0f - xs[j]) * xs[2 * n + j];
    }
}

static void test_gru_gates(const egru_kernel_set_t *k)
{
    const uint32_t sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 33, 64, 65, 128, 131, 200};
    static float xa[3 * MAX_ROWS], xb[3 * MAX_ROWS], hp[3 * MAX_ROWS], ha[MAX_ROWS], hb[MAX_ROWS],
        one[1];
    uint32_t a, j, bad = 0, moved = 0, update;
    for (j = 0; j < 3 * MAX_ROWS; ++j) { /* position independence of the activations */
        xa[j] = xb[j] = 6.0f * uniform();
        hp[j] = xa[j];
    }
    k->sigmoid_f32(xa, 3 * MAX_ROWS - 1); /* an odd length: a partial last vector */
    k->tanh_f32(xb, 3 * MAX_ROWS - 1);
    for (j = 0; j < 3 * MAX_ROWS - 1; ++j) {
        one[0] = hp[j];
        k->sigmoid_f32(one, 1);
        moved += memcmp(one, xa + j, sizeof one) != 0;
        one[0] = hp[j];
        k->tanh_f32(one, 1);
        moved += memcmp(one, xb + j, sizeof one) != 0;
    }
    CHECK(moved == 0, "%s: %u activations depend on the element's position", k->name, moved);
    moved = 0;
    if (!k->gru_gates_f32) {
        printf("%s: no fused GRU gates (the unfused path)\n", k->name);
        return;
    }
    for (update = 0; update < 2; ++update) {
        for (a = 0; a < sizeof sizes / sizeof *sizes; ++a) {
            const uint32_t n = sizes[a];
            for (j = 0; j < 3 * n; ++j) {
                xa[j] = xb[j] = 4.0f * uniform();
                hp[j] = 2.0f * uniform();
            }
            for (j = 0; j < n; ++j) {
                ha[j] = hb[j] = uniform();
            }
            k->gru_gates_f32(xa, hp, ha, n, (int)update);
            unfused_gates(k, xb, hp, hb, n, (int)update);
            bad += memcmp(ha, hb, n * sizeof *ha) != 0;
            for (j = 0; !update && j < n; ++j) {
                moved += ha[j] != hb[j];
            }
        }
    }
    CHECK(bad == 0 && moved == 0, "%s: fused GRU gates differ from the unfused steps in %u cases",
          k->name, bad);
}

/* int8 (docs/quantization.md): the reference against its definition computed here (integer sums
 * in int64, the float steps written out), and every other set against the reference bit for bit,
 * on random shapes including sizes that are not multiples of any vector width. */
static void test_int8(const egru_kernel_set_t *k)
{
    static int8_t wq[MAX_ROWS * MAX_COLS], q_ref[MAX_COLS], q_k[MAX_COLS + GUARD];
    static float scale[MAX_ROWS], y_ref[MAX_ROWS], y_k[MAX_ROWS + GUARD];
    const uint32_t sizes[] = {1,  2,  3,  7,  8,  9,   15,  16,  17, 31,
                              32, 33, 63, 64, 65, 128, 131, 200, 300};
    const egru_kernel_set_t *ref = egru_kernels_ref();
    uint32_t a, b, i, r, c, bad_q = 0, bad_y = 0, bad_def = 0, cases = 0;
    for (a = 0; a < sizeof sizes / sizeof *sizes; ++a) {
        for (b = 0; b < sizeof sizes / sizeof *sizes; ++b) {
            const uint32_t rows = sizes[a] > MAX_ROWS ? MAX_ROWS : sizes[a], cols = sizes[b];
            float sx_ref, sx_k;
            for (i = 0; i < rows * cols; ++i) {
                wq[i] = (int8_t)(uniform() * 127.9f); /* [-127, 127] */
            }
            for (i = 0; i < rows; ++i) {
                scale[i] = (uniform() + 1.0f) * 0.01f;
                bias[i] = uniform();
            }
            for (i = 0; i < cols; ++i) {
                x[i] = uniform() * (i % 3 ? 2.0f : 0.01f);
            }
            x[cols / 2] = cols % 2 ? -2.5f : 2.5f; /* a maximum of either sign */
            sx_ref = ref->quantize_s8(x, q_ref, cols);
            memset(q_k + cols, 0x5A, GUARD); /* must stay: nothing written past the end */
            sx_k = k->quantize_s8(x, q_k, cols);
            bad_q += sx_ref != sx_k || memcmp(q_ref, q_k, cols) != 0;
            for (i = cols; i < cols + GUARD; ++i) {
                bad_q += q_k[i] != 0x5A;
            }
            for (i = 0; i < cols; ++i) { /* the definition: q = rint(x * (127 / m)) */
                const float v = rintf(x[i] * (127.0f / 2.5f));
                bad_def += q_ref[i] != (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
            }
            bad_def += sx_ref != 2.5f / 127.0f;
            ref->matvec_s8(wq, scale, q_ref, sx_ref, (cols % 2) ? bias : NULL, y_ref, rows, cols);
            guard_set(y_k, rows);
            k->matvec_s8(wq, scale, q_ref, sx_ref, (cols % 2) ? bias : NULL, y_k, rows, cols);
            bad_y += memcmp(y_ref, y_k, rows * sizeof(float)) != 0 || guard_hit(y_k, rows) != 0;
            for (r = 0; r < rows; ++r) {
                int64_t acc = 0;
                float v;
                for (c = 0; c < cols; ++c) {
                    acc += (int64_t)wq[r * cols + c] * q_ref[c];
                }
                v = (float)acc * (scale[r] * sx_ref);
                v = (cols % 2) ? v + bias[r] : v;
                bad_def += memcmp(&v, &y_ref[r], sizeof v) != 0;
            }
            ++cases;
        }
    }
    /* All-zero input: scale 0, q 0, y = bias exactly. */
    memset(x, 0, 40 * sizeof(float));
    bad_q += k->quantize_s8(x, q_k, 40) != 0.0f;
    for (i = 0; i < 40; ++i) {
        bad_q += q_k[i] != 0;
    }
    CHECK(bad_q == 0, "%s: quantize_s8 differs from the reference in %u of %u cases", k->name,
          bad_q, cases);
    CHECK(bad_y == 0, "%s: matvec_s8 differs from the reference in %u of %u cases", k->name, bad_y,
          cases);
    CHECK(bad_def == 0, "%s: the reference int8 kernels differ from their definition (%u)", k->name,
          bad_def);
}

#if defined(__aarch64__) && defined(__ARM_NEON)
void egru_matvec_s8_neon(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                         const float *bias, float *y, uint32_t rows, uint32_t cols);
int egru_neon_has_dotprod(void);

/* The NEON set carries the dot-product int8 kernel when this CPU has it; test the plain NEON one
 * too, as a set of its own (`make aarch64` also runs this under a CPU without dot product). */
static void test_neon_variants(void)
{
    egru_kernel_set_t plain = *egru_kernels_neon();
    plain.matvec_s8 = egru_matvec_s8_neon;
    plain.name = "neon (plain int8)";
    printf("neon: dot product %s\n", egru_neon_has_dotprod() ? "present" : "absent");
    test_int8(&plain);
}
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
void egru_matvec_s8_avx512(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                           const float *bias, float *y, uint32_t rows, uint32_t cols);
void egru_matvec_s8_avx512_vnni(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                                const float *bias, float *y, uint32_t rows, uint32_t cols);
int egru_avx512_has_vnni(void);

/* The AVX-512 set carries the VNNI int8 product when this CPU has it (always in the SIMDe build,
 * EGRU_AVX512_EMULATED); test both int8 products this CPU can run as sets of their own, and name
 * each one tested ("avx512 int8 variant tested: ..."). */
static void test_avx512_variants(void)
{
    egru_kernel_set_t v;
    if (!egru_kernels_avx512()) {
        return;
    }
    v = *egru_kernels_avx512();
#ifdef EGRU_AVX512_EMULATED
    printf("avx512: emulated (SIMDe), vnni %s\n", egru_avx512_has_vnni() ? "present" : "absent");
#else
    printf("avx512: vnni %s\n", egru_avx512_has_vnni() ? "present" : "absent");
#endif
    v.matvec_s8 = egru_matvec_s8_avx512;
    v.name = "avx512 (avx512bw int8)";
    test_int8(&v);
    printf("avx512 int8 variant tested: avx512bw\n");
    if (egru_avx512_has_vnni()) {
        v.matvec_s8 = egru_matvec_s8_avx512_vnni;
        v.name = "avx512 (avx512vnni int8)";
        test_int8(&v);
        printf("avx512 int8 variant tested: avx512vnni\n");
    }
}
#endif

int main(void)
{
    const egru_kernel_set_t *sets[4];
    uint32_t i, count = 0;
    sets[count++] = egru_kernels_ref();
    if (egru_kernels_avx2()) {
        sets[count++] = egru_kernels_avx2();
    }
    if (egru_kernels_avx512()) {
        sets[count++] = egru_kernels_avx512();
    }
    if (egru_kernels_neon()) {
        sets[count++] = egru_kernels_neon();
    }
    for (i = 0; i < count; ++i) {
        printf("kernel set: %s\n", sets[i]->name);
        test_products(sets[i]);
        test_activations(sets[i]);
        test_gru_gates(sets[i]);
        test_int8(sets[i]);
    }
#if defined(__aarch64__) && defined(__ARM_NEON)
    test_neon_variants();
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    test_avx512_variants();
#endif
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
