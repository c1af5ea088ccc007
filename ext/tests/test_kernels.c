/*
 * test_kernels.c - every kernel set this build and CPU have (the reference always), against
 * double-precision results computed here, with the bounds stated in docs/kernels.md:
 *
 *   matvec / matmul: |y - exact| <= n * FLT_EPSILON / 2 * (sum_c |w_c x_c| + |bias|), the classic
 *       worst-case bound of float summation of n terms in any order, on random shapes including
 *       sizes that are not multiples of the vector width (so any two sets differ by at most
 *       twice that);
 *   sigmoid / tanh: |y - exact| <= ACT_TOL absolute, on a dense sweep of [-100, 100] and special
 *       values; and |y - exact| <= ACT_REL_TOL * |exact| wherever exact is a normal float (else
 *       <= FLT_MIN absolute), on a log sweep of |x| from 1e-30 to 20, both signs, and sigmoid on
 *       [-104, -20] (results down to 0);
 *   non-finite values (docs/kernels.md): NaN propagates through every activation and the fused
 *       GRU gates, +-inf give Keras' limits; int8 quantization of NaN, inf, tiny, denormal and
 *       zero inputs follows its rule, bit for bit in every set.
 *
 * Prints "N passed, N failed" and exits non-zero on any failure; the run names the sets tested.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/kernels/egru_kernels.h"

/* The other variant of the cortex_m int8 kernels (EGRU_CFG_CM_S8_FAST, egru_features.h) than the
 * library was built with, compiled into this test under other names (before this file's globals,
 * so that its parameters shadow nothing), so that both are tested: the fast one's DSP assembly on
 * the Cortex-M4F and M7, its portable C on the host (M-profile cores without DSP build the compact
 * one either way). */
#if EGRU_CFG_KERNELS_CORTEX_M && EGRU_CFG_INT8
#define EGRU_TEST_S8_ALT 1
float egru_quantize_s8_cortex_m_alt(const float *x, int8_t *q, uint32_t n);
void egru_matvec_s8_cortex_m_alt(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                                 const float *bias, float *y, uint32_t rows, uint32_t cols);
#define egru_quantize_s8_cortex_m egru_quantize_s8_cortex_m_alt
#define egru_matvec_s8_cortex_m   egru_matvec_s8_cortex_m_alt
#if EGRU_CFG_CM_S8_FAST
#define EGRU_TEST_S8_ALT_NAME "cortex_m (int8 compact variant)"
#undef EGRU_CFG_CM_S8_FAST
#define EGRU_CFG_CM_S8_FAST 0
#include "../src/kernels/cortex_m/egru_matvec_s8_cortex_m.c"
#include "../src/kernels/cortex_m/egru_quantize_s8_cortex_m.c"
#undef EGRU_CFG_CM_S8_FAST
#define EGRU_CFG_CM_S8_FAST 1
#else
#define EGRU_TEST_S8_ALT_NAME "cortex_m (int8 fast variant)"
#undef EGRU_CFG_CM_S8_FAST
#define EGRU_CFG_CM_S8_FAST 1
#include "../src/kernels/cortex_m/egru_matvec_s8_cortex_m.c"
#include "../src/kernels/cortex_m/egru_quantize_s8_cortex_m.c"
#undef EGRU_CFG_CM_S8_FAST
#define EGRU_CFG_CM_S8_FAST 0
#endif
#undef egru_quantize_s8_cortex_m
#undef egru_matvec_s8_cortex_m
#else
#define EGRU_TEST_S8_ALT 0
#endif

#define ACT_TOL 3e-7
/* Relative bound of sigmoid and tanh where the exact result is a normal float: about two float
 * ulps (2.1 * FLT_EPSILON): the reference's libm calls are within one, the SIMD versions add the
 * exp polynomial's 2.5e-7 / e-weighted error and one division (measured 1.6e-7). */
#define ACT_REL_TOL 2.5e-7

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

static uint64_t rng_state = 7; /* 64 bits on every target (32-bit long on Cortex-M) */

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

/* Relative accuracy: a log sweep of |x| from 1e-30 to 20, both signs (sigmoid and tanh), and
 * sigmoid on [-104, -20], whose results fall to 0 through the denormals: relative error <=
 * ACT_REL_TOL where the exact result is at least FLT_MIN, absolute <= FLT_MIN below. */
static void test_activations_relative(const egru_kernel_set_t *k)
{
    enum { N = 8000 };
    static float v[N], in[N];
    uint32_t i, f, part;
    for (f = 0; f < 2; ++f) {
        double worst = 0.0, at = 0.0;
        uint32_t bad = 0;
        for (part = 0; part < (f ? 2u : 3u); ++part) {
            for (i = 0; i < N; ++i) {
                if (part < 2) { /* 1e-30 .. 20, log-spaced, sign by part */
                    const double l = -30.0 + (log10(20.0) + 30.0) * i / (N - 1);
                    v[i] = (float)((part ? -1.0 : 1.0) * pow(10.0, l));
                } else {
                    v[i] = -104.0f + 84.0f * (float)i / (float)(N - 1);
                }
            }
            memcpy(in, v, sizeof v);
            (f ? k->tanh_f32 : k->sigmoid_f32)(v, N);
            for (i = 0; i < N; ++i) {
                const double xi = in[i];
                const double exact = f ? tanh(xi) : 1.0 / (1.0 + exp(-xi));
                const double d = fabs((double)v[i] - exact);
                if (fabs(exact) >= FLT_MIN) {
                    const double r = d / fabs(exact);
                    bad += !(r <= ACT_REL_TOL);
                    if (r > worst || r != r) {
                        worst = r;
                        at = xi;
                    }
                } else {
                    bad += !(d <= FLT_MIN);
                }
            }
        }
        CHECK(bad == 0, "%s %s: %u values outside the relative bound (worst %.3g at %.3g)", k->name,
              f ? "tanh" : "sigmoid", bad, worst, at);
        printf("%s: %s max relative error %.3g (at %.3g)\n", k->name, f ? "tanh" : "sigmoid", worst,
               at);
    }
}

static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Non-finite inputs to this set's sigmoid and tanh, at every position of runs of 1 to 40 (every
 * tail of 4-, 8- and 16-lane vectors): NaN gives NaN, +-inf give Keras' limits (sigmoid 1 / 0, tanh
 * +-1), -0 keeps its sign in tanh; and the same inputs' neighbours keep their values. */
static void test_activations_nonfinite(const egru_kernel_set_t *k)
{
    const float in[] = {NAN, INFINITY, -INFINITY, -0.0f, 1e-40f, -1e-40f};
    const float want_sig[] = {NAN, 1.0f, 0.0f, 0.5f, 0.5f, 0.5f};
    const float want_tanh[] = {NAN, 1.0f, -1.0f, -0.0f, 1e-40f, -1e-40f};
    uint32_t len, pos, c, bad = 0;
    for (c = 0; c < sizeof in / sizeof *in; ++c) {
        for (len = 1; len <= 40; ++len) {
            for (pos = 0; pos < len; ++pos) {
                float s[40], t[40];
                uint32_t i;
                for (i = 0; i < len; ++i) {
                    s[i] = t[i] = i == pos ? in[c] : 0.25f;
                }
                k->sigmoid_f32(s, len);
                k->tanh_f32(t, len);
                for (i = 0; i < len; ++i) {
                    const float ws = i == pos ? want_sig[c] : s[(pos + 1) % len];
                    const float wth = i == pos ? want_tanh[c] : t[(pos + 1) % len];
                    if (i == pos && c == 0) {
                        bad += !(s[i] != s[i]) + !(t[i] != t[i]);
                    } else if (i == pos) {
                        /* tanh(+-1e-40): the denormal itself, or within FLT_MIN of it */
                        bad += !(fabsf(s[i] - ws) <= 0.0f);
                        bad += c >= 4 ? !(fabsf(t[i] - wth) <= FLT_MIN) : !same_bits(t[i], wth);
                    } else if (len > 1) {
                        bad += !same_bits(s[i], ws) + !same_bits(t[i], wth);
                        bad += !(fabs(s[i] - 1.0 / (1.0 + exp(-0.25))) <= ACT_TOL);
                    }
                }
            }
        }
    }
    CHECK(bad == 0, "%s: %u wrong sigmoid/tanh results on NaN, +-inf, -0 or denormals", k->name,
          bad);
}

/* How many of f(v[0..n)) and g(v[0..n)) differ in their bits (a, b: scratch of n floats). */
static uint32_t activation_bits_differ(void (*f)(float *, uint32_t), void (*g)(float *, uint32_t),
                                       const float *v, float *a, float *b, uint32_t n)
{
    uint32_t i, bad = 0;
    memcpy(a, v, n * sizeof *v);
    memcpy(b, v, n * sizeof *v);
    f(a, n);
    g(b, n);
    for (i = 0; i < n; ++i) {
        bad += !same_bits(a[i], b[i]);
    }
    return bad;
}

/* The cortex_m set's sigmoid, tanh and fused GRU gates skip the exp's clamps below |x| = 87
 * (sigmoid) and 20 (tanh) and keep its constants in registers: they must give the reference's
 * bits (the firmware's int8 outputs equal the host's ref outputs only so). Every float around
 * those thresholds and the clamp bounds (+-64 ulps; from 0 up: the denormals), a log sweep of |x|
 * from 1e-30 to 1e4 of both signs, and the non-finite values. */
static void test_cortex_m_activations_equal_ref(void)
{
    const egru_kernel_set_t *ref = egru_kernels_ref(), *cm = egru_kernels_cortex_m();
    const float centres[] = {87.0f, 20.0f, 87.3f, 89.0f, 40.0f, 88.38f, 9.01f, 0.0f};
    static float v[4096], a[4096], b[4096], hp[3 * 4096], hr[4096], hc[4096];
    static float xr[3 * 4096], xc[3 * 4096];
    uint32_t n = 0, i, c, bad = 0;
    for (c = 0; c < sizeof centres / sizeof *centres; ++c) {
        uint32_t bits;
        memcpy(&bits, &centres[c], sizeof bits);
        for (i = 0; i < 129; ++i) {
            const uint32_t u = bits + i - 64u;
            float f;
            if (centres[c] == 0.0f && i < 64) {
                continue;
            }
            memcpy(&f, &u, sizeof f);
            v[n++] = f;
            v[n++] = -f;
        }
    }
    for (i = 0; i < 600; ++i) {
        const float f = (float)pow(10.0, -30.0 + 34.0 * i / 599.0);
        v[n++] = f;
        v[n++] = -f;
    }
    v[n++] = NAN;
    v[n++] = INFINITY;
    v[n++] = -INFINITY;
    bad += activation_bits_differ(ref->sigmoid_f32, cm->sigmoid_f32, v, a, b, n);
    bad += activation_bits_differ(ref->tanh_f32, cm->tanh_f32, v, a, b, n);
    /* the gates on the same values as z, r and candidate pre-activations: n units, h = 0.5 */
    for (i = 0; i < n; ++i) {
        xr[i] = xc[i] = v[i];
        xr[n + i] = xc[n + i] = v[(i + 7) % n];
        xr[2 * n + i] = xc[2 * n + i] = v[(i + 13) % n];
        hp[i] = hp[n + i] = 0.0f;
        hp[2 * n + i] = 1.0f;
        hr[i] = hc[i] = 0.5f;
    }
    ref->gru_gates_f32(xr, hp, hr, n, 1);
    cm->gru_gates_f32(xc, hp, hc, n, 1);
    for (i = 0; i < n; ++i) {
        bad += !same_bits(xr[i], xc[i]) + !same_bits(xr[n + i], xc[n + i]);
        bad += !same_bits(hr[i], hc[i]);
    }
    CHECK(bad == 0,
          "cortex_m sigmoid/tanh/gates differ from the reference's bits in %u of %u values", bad,
          n);
}

/* The scalar activations (the same code in every set) and softmax on non-finite inputs, against
 * what Keras 3.15 (TensorFlow 2.21) gives for the same inputs (docs/kernels.md, "Non-finite
 * values"): NaN in gives NaN out everywhere; relu(-inf) = 0, elu(-inf) = -1, softplus(-inf) = 0,
 * leaky_relu(-inf) = -inf, hard_sigmoid(+-inf) = 1 / 0, softsign(+-inf) = NaN (inf / inf). */
static void test_scalar_activations_nonfinite(void)
{
    enum { RELU, HARD, ELU, SOFTSIGN, SOFTPLUS, LEAKY, KINDS };
    const char *names[KINDS] = {"relu",     "hard_sigmoid", "elu",
                                "softsign", "softplus",     "leaky_relu"};
    /* inputs NaN, +inf, -inf, 0, -0 */
    const float want[KINDS][5] = {{NAN, INFINITY, 0.0f, 0.0f, 0.0f},
                                  {NAN, 1.0f, 0.0f, 0.5f, 0.5f},
                                  {NAN, INFINITY, -1.0f, 0.0f, -0.0f},
                                  {NAN, NAN, NAN, 0.0f, -0.0f},
                                  {NAN, INFINITY, 0.0f, 0.6931472f, 0.6931472f},
                                  {NAN, INFINITY, -INFINITY, 0.0f, -0.0f}};
    uint32_t kind, i;
    for (kind = 0; kind < KINDS; ++kind) {
        float v[5] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f};
        uint32_t bad = 0;
        switch (kind) {
        case RELU: egru_relu_f32(v, 5); break;
        case HARD: egru_hard_sigmoid_f32(v, 5); break;
        case ELU: egru_elu_f32(v, 5); break;
        case SOFTSIGN: egru_softsign_f32(v, 5); break;
        case SOFTPLUS: egru_softplus_f32(v, 5); break;
        default: egru_leaky_relu_f32(v, 5, 0.2f); break;
        }
        for (i = 0; i < 5; ++i) {
            if (want[kind][i] != want[kind][i]) {
                bad += !(v[i] != v[i]);
            } else {
                bad += !(v[i] == want[kind][i] || fabsf(v[i] - want[kind][i]) <= 1e-7f) ||
                       (want[kind][i] == 0.0f &&
                        (signbit(v[i]) != 0) != (signbit(want[kind][i]) != 0));
            }
        }
        CHECK(bad == 0, "%s: %u wrong results on NaN, +-inf, +-0", names[kind], bad);
    }
    { /* relu keeps a NaN at every position and zeroes negatives around it */
        float v[9] = {-1.0f, NAN, 2.0f, -3.0f, NAN, NAN, 0.5f, -INFINITY, NAN};
        egru_relu_f32(v, 9);
        CHECK(v[0] == 0.0f && v[1] != v[1] && v[2] == 2.0f && v[3] == 0.0f && v[4] != v[4] &&
                  v[5] != v[5] && v[6] == 0.5f && v[7] == 0.0f && v[8] != v[8],
              "relu: a NaN was dropped");
    }
    { /* softmax: a NaN or +inf anywhere makes every output NaN (Keras); -inf gives 0 */
        float a[3] = {1.0f, NAN, 2.0f}, b[3] = {1.0f, 2.0f, INFINITY},
              c[3] = {-INFINITY, 1.0f, 2.0f};
        egru_softmax_f32(a, 3);
        egru_softmax_f32(b, 3);
        egru_softmax_f32(c, 3);
        CHECK(a[0] != a[0] && a[1] != a[1] && a[2] != a[2] && b[0] != b[0] && b[1] != b[1] &&
                  b[2] != b[2] && c[0] == 0.0f && fabs(c[1] - 0.2689414) < 1e-7 &&
                  fabs(c[2] - 0.7310586) < 1e-7,
              "softmax: wrong results on NaN / +-inf");
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
    /* A NaN in any one input (x of z, r or h, hp, or h) reaches h: equal to the unfused steps
     * (bit for bit where not NaN), and NaN exactly where IEEE arithmetic puts it (every h[j] the
     * NaN feeds). */
    bad = 0;
    for (a = 0; a < 5; ++a) {
        const uint32_t n = 13, at = 5;
        for (j = 0; j < 3 * n; ++j) {
            xa[j] = xb[j] = 4.0f * uniform();
            hp[j] = 2.0f * uniform();
        }
        for (j = 0; j < n; ++j) {
            ha[j] = hb[j] = uniform();
        }
        switch (a) {
        case 0: xa[at] = xb[at] = NAN; break;                 /* z pre-activation */
        case 1: xa[n + at] = xb[n + at] = NAN; break;         /* r */
        case 2: xa[2 * n + at] = xb[2 * n + at] = NAN; break; /* candidate */
        case 3: hp[2 * n + at] = NAN; break;                  /* recurrent product */
        default: ha[at] = hb[at] = NAN; break;                /* state */
        }
        k->gru_gates_f32(xa, hp, ha, n, 1);
        unfused_gates(k, xb, hp, hb, n, 1);
        for (j = 0; j < n; ++j) { /* a NaN's sign is not specified by IEEE 754 (soft float's
                                   * subtraction flips it): NaN-ness, not the NaN's bits */
            bad += ha[j] == ha[j] ? !same_bits(ha[j], hb[j]) : !(hb[j] != hb[j]);
        }
        for (j = 0; j < n; ++j) {
            bad += (j == at) != (ha[j] != ha[j]);
        }
    }
    CHECK(bad == 0, "%s: fused GRU gates lose or misplace a NaN (%u)", k->name, bad);
}

/* When k has matvec_s8_sums: 1 if it differs from y_ref (the reference's matvec_s8 on the same
 * operands) or writes past y[rows), the row sums computed here from w; else 0. */
static uint32_t sums_differ(const egru_kernel_set_t *k, const int8_t *wq, const float *scale,
                            const int8_t *xq, float sx, const float *b, const float *y_ref,
                            uint32_t rows, uint32_t cols)
{
    static int32_t sums[MAX_ROWS];
    static float ys[MAX_ROWS + GUARD];
    uint32_t r, c;
    if (!k->matvec_s8_sums || rows > MAX_ROWS) {
        return 0;
    }
    for (r = 0; r < rows; ++r) {
        int32_t acc = 0;
        for (c = 0; c < cols; ++c) {
            acc += wq[(size_t)r * cols + c];
        }
        sums[r] = acc;
    }
    guard_set(ys, rows);
    k->matvec_s8_sums(wq, sums, scale, xq, sx, b, ys, rows, cols);
    return memcmp(y_ref, ys, rows * sizeof *ys) != 0 || guard_hit(ys, rows) != 0;
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
            bad_y += sums_differ(k, wq, scale, q_ref, sx_ref, (cols % 2) ? bias : NULL, y_ref, rows,
                                 cols);
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

/* int8 input quantization on the inputs its rule singles out (docs/quantization.md): a NaN or
 * +-inf anywhere (q 0, scale NaN, every output NaN), a maximum below 2^-119 (denormals, exact
 * zeros, tiny values: q 0, scale 0, outputs = bias exactly), the threshold itself (quantized) and
 * large finite values; q, scale and the product outputs bit for bit equal to the reference's, the
 * reference checked against the rule, at every position in vectors of 1 to 40 values. */
static void test_int8_nonfinite(const egru_kernel_set_t *k)
{
    enum { NSPEC = 10 };
    const float spec[NSPEC] = {NAN,    INFINITY,  -INFINITY,        1e-40f, -1e-45f,
                               1e-37f, 0x1p-119f, 0x1.fffffep-120f, 3e38f,  -0.0f};
    /* scale class the rule gives with spec[c] as the largest |x| (the others 0 or smaller):
     * 0 NaN, 1 zero, 2 quantized */
    const int cls[NSPEC] = {0, 0, 0, 1, 1, 1, 2, 1, 2, 1};
    const egru_kernel_set_t *ref = egru_kernels_ref();
    static int8_t wq[7 * 40], q_ref[40 + GUARD], q_k[40 + GUARD];
    static float xs[40], sc[7], y_ref[7], y_k[7];
    uint32_t c, len, pos, i, fill, bad_rule = 0, bad_set = 0;
    for (i = 0; i < 7 * 40; ++i) {
        wq[i] = (int8_t)(uniform() * 127.9f);
    }
    for (i = 0; i < 7; ++i) {
        sc[i] = (uniform() + 1.0f) * 0.01f;
        bias[i] = uniform();
    }
    for (c = 0; c < NSPEC; ++c) {
        for (fill = 0; fill < 2; ++fill) { /* the others: all 0, or small values below spec[c] */
            for (len = 1; len <= 40; ++len) {
                for (pos = 0; pos < len; ++pos) {
                    float sx_ref, sx_k;
                    for (i = 0; i < len; ++i) {
                        xs[i] = fill ? (cls[c] == 2 ? spec[c] : 1e-39f) * 0.25f * uniform() : 0.0f;
                    }
                    if (cls[c] == 0 && fill) {
                        xs[(pos + 1) % len] = 2.0f; /* a finite maximum elsewhere */
                    }
                    xs[pos] = spec[c];
                    memset(q_k, 0x5A, sizeof q_k);
                    sx_ref = ref->quantize_s8(xs, q_ref, len);
                    sx_k = k->quantize_s8(xs, q_k, len);
                    bad_set += !same_bits(sx_ref, sx_k) || memcmp(q_ref, q_k, len) != 0;
                    for (i = len; i < 40 + GUARD; ++i) {
                        bad_set += q_k[i] != 0x5A;
                    }
                    if (cls[c] == 2) { /* the plain rule: q = rint(x * (127 / m)), sx = m / 127 */
                        const float m = fabsf(spec[c]);
                        bad_rule += !same_bits(sx_ref, m / 127.0f);
                        for (i = 0; i < len; ++i) {
                            const float v = rintf(xs[i] * (127.0f / m));
                            bad_rule += q_ref[i] != (int8_t)(v > 127.0f ? 127.0f : v);
                        }
                    } else {
                        bad_rule += cls[c] == 0 ? !(sx_ref != sx_ref) : !same_bits(sx_ref, 0.0f);
                        for (i = 0; i < len; ++i) {
                            bad_rule += q_ref[i] != 0;
                        }
                    }
                    ref->matvec_s8(wq, sc, q_ref, sx_ref, bias, y_ref, 7, len);
                    k->matvec_s8(wq, sc, q_k, sx_k, bias, y_k, 7, len);
                    bad_set += memcmp(y_ref, y_k, sizeof y_ref) != 0;
                    for (i = 0; i < 7; ++i) {
                        bad_rule += cls[c] == 0   ? !(y_ref[i] != y_ref[i])
                                    : cls[c] == 1 ? !same_bits(y_ref[i], bias[i] + 0.0f)
                                                  : !(y_ref[i] == y_ref[i]);
                    }
                }
            }
        }
    }
    { /* an all-NaN row and an empty one */
        float nan4[4] = {NAN, NAN, NAN, NAN};
        bad_rule += !(ref->quantize_s8(nan4, q_ref, 4) != ref->quantize_s8(nan4, q_ref, 4));
        bad_set += !same_bits(ref->quantize_s8(nan4, q_ref, 4), k->quantize_s8(nan4, q_k, 4));
        bad_set += memcmp(q_ref, q_k, 4) != 0;
        bad_rule += !same_bits(ref->quantize_s8(nan4, q_ref, 0), 0.0f);
        bad_set += !same_bits(k->quantize_s8(nan4, q_k, 0), 0.0f);
    }
    CHECK(bad_rule == 0, "%s: the reference breaks the int8 rule for non-finite/tiny inputs (%u)",
          k->name, bad_rule);
    CHECK(bad_set == 0, "%s: int8 on non-finite/tiny inputs differs from the reference (%u)",
          k->name, bad_set);
}

/* The int8 kernels on the shapes where blocked and SIMD versions have their edges (docs/kernels.md,
 * "Cortex-M"): rows 1 to 13 (every remainder of blocks of 2, 4 and 8 rows), columns 1 to 19 and
 * around the multiples of 64 and 128 up to 389 (every remainder of 4, 8 and 16 columns, x wider
 * than the 64 columns the cortex_m set widens at once: up to seven slices), the matrix at the END
 * of its own allocation (an exact malloc: under ASan any read past the matrix faults) and at byte
 * offsets 0 to 3 (rows not 4-byte aligned), bias or none, extreme weights and inputs (+-127) and
 * random ones; y equal to the reference's bit for bit, nothing written past y[rows). Quantization:
 * lengths 0 to 70 and 127 to 129 with ties (x = m (j + 1/2) / 127) and +-m, equal to the
 * reference's. */
static void test_int8_edges(const egru_kernel_set_t *k)
{
    static const uint32_t cs[] = {1,  2,   3,   4,   5,   6,   7,   8,   9,   10,  11,  12,  13, 14,
                                  15, 16,  17,  18,  19,  23,  24,  25,  31,  33,  63,  64,  65, 70,
                                  96, 127, 128, 129, 131, 135, 136, 255, 256, 257, 263, 384, 389};
    const egru_kernel_set_t *ref = egru_kernels_ref();
    static int8_t xq[400], q_ref[200 + GUARD], q_k[200 + GUARD];
    static float sc[16], y_ref[16], y_k[16 + GUARD], xs[200];
    uint32_t a, rows, off, i, n, bad_y = 0, bad_q = 0, cases = 0, qcases = 0;
    for (a = 0; a < sizeof cs / sizeof *cs; ++a) {
        const uint32_t cols = cs[a];
        for (rows = 1; rows <= 13; ++rows) {
            for (off = 0; off < 4; ++off) {
                const size_t bytes = (size_t)rows * cols;
                int8_t *buf = (int8_t *)malloc(bytes + off), *wm = buf + off;
                const float *bb = ((rows + off + a) % 2) ? bias : NULL;
                if (!buf) {
                    CHECK(0, "%s: malloc failed", k->name);
                    return;
                }
                for (i = 0; i < bytes; ++i) { /* extreme in one case of four, else random */
                    wm[i] = (int8_t)(((a + off) % 4 == 0) ? ((i % 3) ? 127 : -127)
                                                          : (int)(uniform() * 127.9f));
                }
                for (i = 0; i < cols; ++i) {
                    xq[i] = (int8_t)(((a + off) % 4 == 0) ? 127 : (int)(uniform() * 127.9f));
                }
                for (i = 0; i < rows; ++i) {
                    sc[i] = (uniform() + 1.5f) * 0.01f;
                    bias[i] = uniform();
                }
                ref->matvec_s8(wm, sc, xq, 0.0125f, bb, y_ref, rows, cols);
                guard_set(y_k, rows);
                k->matvec_s8(wm, sc, xq, 0.0125f, bb, y_k, rows, cols);
                bad_y += memcmp(y_ref, y_k, rows * sizeof *y_k) != 0 || guard_hit(y_k, rows) != 0;
                bad_y += sums_differ(k, wm, sc, xq, 0.0125f, bb, y_ref, rows, cols);
                ++cases;
                free(buf);
            }
        }
    }
    { /* zero sums (+0 and, with negative scales, -0 products), a NaN scale, no bias */
        static const int8_t w0[13 * 5] = {0};
        const float sxs[3] = {0.0125f, 0.0f, NAN};
        for (i = 0; i < 13; ++i) {
            sc[i] = (i % 2) ? -0.01f : 0.02f;
            xq[i] = (int8_t)(i * 9);
        }
        for (n = 0; n < 3; ++n) {
            ref->matvec_s8(w0, sc, xq, sxs[n], NULL, y_ref, 13, 5);
            guard_set(y_k, 13);
            k->matvec_s8(w0, sc, xq, sxs[n], NULL, y_k, 13, 5);
            bad_y += memcmp(y_ref, y_k, 13 * sizeof *y_k) != 0 || guard_hit(y_k, 13) != 0;
            bad_y += sums_differ(k, w0, sc, xq, sxs[n], NULL, y_ref, 13, 5);
            ++cases;
        }
    }
    for (n = 0; n <= 129; n = (n == 70) ? 127 : n + 1) {
        const float m = 0.75f + uniform() * 0.25f;
        float sx_ref, sx_k;
        for (i = 0; i < n; ++i) {
            const uint32_t j = i % 128;
            xs[i] = (i % 5 == 4)   ? ((i % 2) ? m : -m)
                    : (i % 5 == 3) ? m * (uniform() * 2.0f - 1.0f) * 0.999f
                                   : ((i % 2) ? -1.0f : 1.0f) * m * ((float)j + 0.5f) / 127.0f;
        }
        if (n) {
            xs[n / 2] = m;
        }
        memset(q_k, 0x5A, sizeof q_k);
        sx_ref = ref->quantize_s8(xs, q_ref, n);
        sx_k = k->quantize_s8(xs, q_k, n);
        bad_q += !same_bits(sx_ref, sx_k) || memcmp(q_ref, q_k, n) != 0;
        for (i = n; i < 200 + GUARD; ++i) {
            bad_q += q_k[i] != 0x5A;
        }
        ++qcases;
    }
    if (k->matvec_s8_sums) { /* 70,000 columns of +-127: sum (x + 128) w wraps int32, sum w x
                              * (1.1e9) does not */
        enum { WIDE = 70000 };
        int8_t *ww = (int8_t *)malloc(2u * WIDE), *wx = (int8_t *)malloc(WIDE);
        if (!ww || !wx) {
            CHECK(0, "%s: malloc failed", k->name);
        } else {
            for (i = 0; i < 2u * WIDE; ++i) {
                ww[i] = (int8_t)(i < WIDE ? 127 : ((i % 2) ? 127 : -127));
            }
            for (i = 0; i < WIDE; ++i) {
                wx[i] = (int8_t)127;
            }
            sc[0] = sc[1] = 1e-9f;
            ref->matvec_s8(ww, sc, wx, 1.0f, NULL, y_ref, 2, WIDE);
            bad_y += sums_differ(k, ww, sc, wx, 1.0f, NULL, y_ref, 2, WIDE);
            ++cases;
        }
        free(ww);
        free(wx);
    }
    CHECK(bad_y == 0, "%s: matvec_s8 differs from the reference in %u of %u edge shapes", k->name,
          bad_y, cases);
    CHECK(bad_q == 0, "%s: quantize_s8 differs from the reference in %u of %u edge lengths",
          k->name, bad_q, qcases);
}

#if EGRU_CFG_INT16X8
/* int16x8 (docs/quantization.md, "Products"): matvec_s8_s16 of every set equal to the reference's
 * bit for bit, and the reference equal to the definition computed here where it is independent of
 * egru_q16.h: the exact int64 sum (checked through the identity multiplier (2^30, 30), whose g is
 * satG(sum + bias)), and for |sum| < 2^32 mul written another way, floor(p / 2^n) plus the bit
 * below (p = sum * m), which is floor((p + 2^(n-1)) / 2^n) without the addition.
 *
 * Shapes: rows 1 to 17 and around 32, 48, 64 and 70 (each tail of blocks of 4, 8 and 16 rows),
 * columns 1 to 33 and around 64, 128, 256, 512, 516 (the reference's int32 blocks), 1024 and
 * 1032 (where |sum| can pass 2^32: egru_q16_mul_wide), up to 1100 (every remainder of 8, 16 and
 * 32 columns). Values random, or hostile: weights +-127 against x +-32767 with matching signs,
 * |sum| = 127 * 32767 * cols on those rows; multipliers (0, 0), (2^30, 0), (2^31 - 1, 0),
 * (2^30, 62), (2^31 - 1, 62), the identity and random ones; biases 0, +-2^30 and random. w and x
 * each at the END of an exact allocation (under ASan a read past either faults) and at offsets
 * that leave them unaligned (w by 0 to 3 bytes, x by 0 to 3 elements); nothing written past
 * g[rows). */
enum { S16_ROWS = 70, S16_COLS = 1100 };
static int32_t s16_m[S16_ROWS], s16_n[S16_ROWS], s16_b[S16_ROWS], s16_ref[S16_ROWS];
static int32_t s16_got[S16_ROWS + GUARD];
static int64_t s16_sum[S16_ROWS];

/* floor(v / 2^n), 0 <= n <= 63, for any int64 v (no shift of a negative value). */
static int64_t s16_floor_shift(int64_t v, uint32_t n)
{
    return v >= 0 ? (int64_t)((uint64_t)v >> n) : -(int64_t)(((uint64_t)(-(v + 1))) >> n) - 1;
}

/* The definition: satG(rshift(sum * m, n) + bias) for |sum| < 2^32, rshift(p, n) = floor(p / 2^n)
 * + (bit n - 1 of p) for n > 0. */
static int32_t s16_def(int64_t sum, int32_t m, int32_t n, int32_t b)
{
    const int64_t p = sum * m;
    int64_t v =
        n == 0 ? p : s16_floor_shift(p, (uint32_t)n) + (s16_floor_shift(p, (uint32_t)n - 1) & 1);
    v += b;
    return (int32_t)(v > 1073741824 ? 1073741824 : v < -1073741824 ? -1073741824 : v);
}

/* A random int32 in [lo, hi]. */
static int32_t s16_rand(int32_t lo, int32_t hi)
{
    rng_state = rng_state * 6364136223846793005ul + 1442695040888963407ul;
    return lo + (int32_t)((rng_state >> 33) % ((uint64_t)((int64_t)hi - lo) + 1));
}

/* One case; adds to bad[0] the set's mismatches with the reference (and stores past g[rows]),
 * to bad[1] the reference's with the definition; *avoided counts rows where a rounding
 * addition to sum * m would overflow int64 (egru_q16_rshift must not form it). */
static void s16_case(const egru_kernel_set_t *k, uint32_t rows, uint32_t cols, uint32_t woff,
                     uint32_t xoff, int hostile, uint32_t *bad, uint32_t *avoided)
{
    const size_t wbytes = (size_t)rows * cols;
    int8_t *wbuf = (int8_t *)malloc(wbytes + woff), *wm = wbuf + woff;
    int16_t *xbuf = (int16_t *)malloc((cols + xoff) * sizeof(int16_t)), *xm = xbuf + xoff;
    uint32_t r, c;
    if (!wbuf || !xbuf) {
        CHECK(0, "%s: malloc failed", k->name);
        free(wbuf);
        free(xbuf);
        return;
    }
    for (c = 0; c < cols; ++c) { /* hostile: t_c * 32767 */
        xm[c] = (int16_t)(hostile ? (s16_rand(0, 1) ? 32767 : -32767) : s16_rand(-32767, 32767));
    }
    for (r = 0; r < rows; ++r) {
        const int32_t sign = (r % 2) ? -1 : 1;
        int64_t sum = 0;
        for (c = 0; c < cols; ++c) { /* hostile: +-127 with x's sign (a random sign every 4th) */
            int32_t v = s16_rand(-127, 127);
            if (hostile) {
                v = r % 4 == 3 ? (s16_rand(0, 1) ? 127 : -127) : (xm[c] > 0 ? 127 : -127) * sign;
            }
            wm[(size_t)r * cols + c] = (int8_t)v;
            sum += (int64_t)v * xm[c];
        }
        s16_sum[r] = sum;
        switch ((r + cols) % 8) {
        case 0:
            s16_m[r] = 0;
            s16_n[r] = 0;
            break;
        case 1:
            s16_m[r] = 1073741824;
            s16_n[r] = 0;
            break;
        case 2:
            s16_m[r] = 2147483647;
            s16_n[r] = 0;
            break;
        case 3:
            s16_m[r] = 1073741824;
            s16_n[r] = 62;
            break;
        case 4:
            s16_m[r] = 2147483647;
            s16_n[r] = 62;
            break;
        case 5:
            s16_m[r] = 1073741824;
            s16_n[r] = 30;
            break; /* the identity */
        default:
            s16_m[r] = s16_rand(1073741824, 2147483647);
            s16_n[r] = s16_rand(16, 50);
            break;
        }
        switch ((r + 3 * cols) % 5) {
        case 0: s16_b[r] = 0; break;
        case 1: s16_b[r] = 1073741824; break;
        case 2: s16_b[r] = -1073741824; break;
        default: s16_b[r] = s16_rand(-1073741824, 1073741824); break;
        }
        /* rows whose sum * m lies within 2^(n - 1) of 2^63 (hostile rows, m near 2^31, n >= 55,
         * 775 to 1032 columns): where a rounding addition would overflow int64 (counted) */
        if (sum > 0 && sum < ((int64_t)1 << 32) && s16_n[r] > 0 &&
            sum * s16_m[r] > INT64_MAX - ((int64_t)1 << (s16_n[r] - 1))) {
            ++*avoided;
        }
    }
    egru_kernels_ref()->matvec_s8_s16(wm, xm, s16_m, s16_n, s16_b, s16_ref, rows, cols);
    for (r = 0; r < GUARD; ++r) {
        s16_got[rows + r] = 0x5A5A5A5A;
    }
    k->matvec_s8_s16(wm, xm, s16_m, s16_n, s16_b, s16_got, rows, cols);
    bad[0] += memcmp(s16_ref, s16_got, rows * sizeof *s16_got) != 0;
    for (r = 0; r < GUARD; ++r) {
        bad[0] += s16_got[rows + r] != 0x5A5A5A5A;
    }
    for (r = 0; r < rows; ++r) {
        const int64_t sum = s16_sum[r];
        if (s16_m[r] == 1073741824 && s16_n[r] == 30) { /* g = satG(sum + bias), any sum */
            const int64_t v = sum + s16_b[r];
            bad[1] += s16_ref[r] != (v > 1073741824    ? 1073741824
                                     : v < -1073741824 ? -1073741824
                                                       : v);
        }
        if (sum > -((int64_t)1 << 32) && sum < ((int64_t)1 << 32)) {
            bad[1] += s16_ref[r] != s16_def(sum, s16_m[r], s16_n[r], s16_b[r]);
        }
    }
    free(wbuf);
    free(xbuf);
}

static void test_int16x8(const egru_kernel_set_t *k)
{
    static const uint32_t rs[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
                                  15, 16, 17, 23, 31, 32, 33, 47, 48, 49, 63, 64, 65, 70};
    static const uint32_t cs[] = {
        1,   2,   3,   4,   5,   6,   7,   8,   9,    10,   11,   12,   13,   14,   15,   16,
        17,  23,  24,  25,  31,  32,  33,  63,  64,   65,   100,  127,  128,  129,  255,  257,
        511, 512, 513, 515, 516, 517, 527, 775, 1023, 1024, 1025, 1031, 1032, 1033, 1057, 1100};
    uint32_t a, b, hostile, bad[2] = {0, 0}, cases = 0, avoided = 0, wide = 0;
    if (!k->matvec_s8_s16) {
        CHECK(0, "%s: no matvec_s8_s16 in a build with EGRU_CFG_INT16X8", k->name);
        return;
    }
    for (hostile = 0; hostile < 2; ++hostile) {
        for (a = 0; a < sizeof rs / sizeof *rs; ++a) {
            for (b = 0; b < sizeof cs / sizeof *cs; ++b) {
                s16_case(k, rs[a], cs[b], (a + b) % 4, (a + 2 * b + hostile) % 4, (int)hostile, bad,
                         &avoided);
                wide += hostile && cs[b] > 1032;
                ++cases;
            }
        }
    }
    printf("%s: int16x8 product: %u cases (%u hostile wider than 1032 columns), %u rows near "
           "int64's end\n",
           k->name, cases, wide, avoided);
    CHECK(bad[0] == 0, "%s: matvec_s8_s16 differs from the reference in %u of %u cases", k->name,
          bad[0], cases);
    CHECK(bad[1] == 0, "%s: the reference matvec_s8_s16 differs from its definition (%u rows)",
          k->name, bad[1]);
    CHECK(wide > 0 && avoided > 0 && avoided < 2 * cases,
          "%s: int16x8 case mix (%u wide, %u avoided)", k->name, wide, avoided);
}
#else
static void test_int16x8(const egru_kernel_set_t *k)
{
    CHECK(k->matvec_s8_s16 == NULL, "%s: matvec_s8_s16 set in a build without int16x8", k->name);
}
#endif

/* The int8 tests on the cortex_m set with the other variant's int8 kernels (EGRU_TEST_S8_ALT). */
static void test_int8_alt(void)
{
#if EGRU_TEST_S8_ALT
    egru_kernel_set_t v = *egru_kernels_cortex_m();
    v.quantize_s8 = egru_quantize_s8_cortex_m_alt;
    v.matvec_s8 = egru_matvec_s8_cortex_m_alt;
    v.name = EGRU_TEST_S8_ALT_NAME;
    printf("kernel set: %s\n", v.name);
    test_int8(&v);
    test_int8_nonfinite(&v);
    test_int8_edges(&v);
#endif
}

/* Batch invariance (egru_kernels.h, "Batch invariance"): within one set, every output of a
 * product is the same float whichever kernel computes it and wherever it falls in the call, so a
 * batch row's results do not depend on the batch or on how the rows of a matrix are split into
 * blocks. Checked bit for bit (memcmp) on every shape of a grid covering each blocking edge of
 * every set (rows 1..70; column counts around 4, 8 and 16 lanes and their multiples), ld > rows
 * with NaN in the padding, inputs with zeros and negative zeros, and a few large shapes:
 *   1. matmul_f32 row i == matvec_f32 on input i, for n = 1..9, 16, 17 (and 200);
 *   2. matmul_t_f32 row i == matvec_t_f32 on input i, likewise;
 *   3. matvec_t_f32 on the block (wt + r0, same ld, count rows, bias + r0) == entries
 *      [r0, r0 + count) of the full product, and matvec_f32 on (w + r0 * cols) likewise. */
enum { INV_ROWS = 384, INV_COLS = 130, INV_N = 200, INV_PAD = 3 };
static float inv_w[INV_ROWS * INV_COLS], inv_wt[INV_COLS * (INV_ROWS + INV_PAD)];
static float inv_x[INV_N * INV_COLS], inv_b[INV_ROWS];
/* Per-input matrix-vector results: [with bias | without][row-major | packed], (n, rows) each. */
static float inv_one[2][2][INV_N * INV_ROWS];
static float inv_y[INV_N * INV_ROWS + GUARD];

/* Random w, bias, and nx inputs in which about one value in eight is 0 and one in sixteen -0. */
static void inv_fill(uint32_t rows, uint32_t cols, uint32_t nx)
{
    uint32_t i;
    for (i = 0; i < rows * cols; ++i) {
        inv_w[i] = uniform();
    }
    for (i = 0; i < nx * cols; ++i) {
        const float u = uniform(), v = 2.0f * uniform();
        inv_x[i] = u < -0.875f ? -0.0f : u < -0.75f ? 0.0f : v;
    }
    for (i = 0; i < rows; ++i) {
        inv_b[i] = uniform();
    }
}

/* The counts of a sub-block: every blocking edge of the sets' row blocks. */
static const uint32_t inv_counts[] = {1, 2, 3, 5, 8, 9, 16, 17, 24, 25, 33, 64, 65, 129};

/* Properties 1-3 on one shape for the n in ns; adds the mismatching calls and the stores past
 * an output's end to bad[0] (matmul), bad[1] (matmul_t), bad[2] (sub-blocks). */
static void inv_shape(const egru_kernel_set_t *k, uint32_t rows, uint32_t cols, const uint32_t *ns,
                      uint32_t nns, uint32_t *bad)
{
    const uint32_t ld = rows + rows % INV_PAD, nx = ns[nns - 1];
    uint32_t i, r, c, j, r0;
    inv_fill(rows, cols, nx);
    for (c = 0; c < cols; ++c) {
        for (r = 0; r < ld; ++r) {
            inv_wt[c * ld + r] = r < rows ? inv_w[r * cols + c] : NAN;
        }
    }
    for (i = 0; i < nx; ++i) {
        const float *xi = inv_x + i * cols;
        k->matvec_f32(inv_w, xi, inv_b, inv_one[0][0] + i * rows, rows, cols);
        k->matvec_f32(inv_w, xi, NULL, inv_one[1][0] + i * rows, rows, cols);
        k->matvec_t_f32(inv_wt, ld, xi, inv_b, inv_one[0][1] + i * rows, rows, cols);
        k->matvec_t_f32(inv_wt, ld, xi, NULL, inv_one[1][1] + i * rows, rows, cols);
    }
    for (j = 0; j < nns; ++j) {
        const uint32_t n = ns[j], nb = n % 2; /* odd n without bias */
        const size_t bytes = (size_t)n * rows * sizeof(float);
        guard_set(inv_y, n * rows);
        k->matmul_f32(inv_w, inv_x, nb ? NULL : inv_b, inv_y, n, rows, cols);
        bad[0] += (memcmp(inv_y, inv_one[nb][0], bytes) != 0) + guard_hit(inv_y, n * rows);
        guard_set(inv_y, n * rows);
        k->matmul_t_f32(inv_wt, ld, inv_x, nb ? NULL : inv_b, inv_y, n, rows, cols);
        bad[1] += (memcmp(inv_y, inv_one[nb][1], bytes) != 0) + guard_hit(inv_y, n * rows);
    }
    /* Sub-blocks of the product for input 0: every start up to 40 rows, past that the starts
     * that are multiples of 8 (so of 64, the recurrent blocks) or of 7. */
    for (r0 = 0; r0 < rows; ++r0) {
        if (rows > 40 && r0 % 8 != 0 && r0 % 7 != 0) {
            continue;
        }
        for (j = 0; j <= sizeof inv_counts / sizeof *inv_counts; ++j) {
            const uint32_t count =
                j < sizeof inv_counts / sizeof *inv_counts ? inv_counts[j] : rows - r0;
            const uint32_t nb = (r0 + j) % 2;
            const float *bb = nb ? NULL : inv_b + r0;
            if (count > rows - r0) {
                continue;
            }
            guard_set(inv_y, count);
            k->matvec_t_f32(inv_wt + r0, ld, inv_x, bb, inv_y, count, cols);
            bad[2] += (memcmp(inv_y, inv_one[nb][1] + r0, count * sizeof(float)) != 0) +
                      guard_hit(inv_y, count);
            guard_set(inv_y, count);
            k->matvec_f32(inv_w + (size_t)r0 * cols, inv_x, bb, inv_y, count, cols);
            bad[2] += (memcmp(inv_y, inv_one[nb][0] + r0, count * sizeof(float)) != 0) +
                      guard_hit(inv_y, count);
        }
    }
}

static void test_batch_invariance(const egru_kernel_set_t *k)
{
    /* Rows: every count up to 40 (each tail of 4-, 8- and 16-row blocks, the 24-output blocks),
     * then around 48, 56 and 64 (the 32- and 64-row blocks); columns: around every multiple of 4,
     * 8 and 16 that a chunk loop or a masked tail can stop at. */
    static const uint32_t rows_grid[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13,
                                         14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
                                         27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39,
                                         40, 47, 48, 49, 55, 56, 57, 63, 64, 65, 70};
    static const uint32_t cols_grid[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  11, 12, 15, 16, 17,
                                         20, 23, 24, 25, 31, 32, 33, 47, 48, 49, 64, 65, 70};
    /* The products of the benchmark models (GRU(128) on 128 inputs, GRU(64), GRU(16) on 16),
     * shapes past the 128-row blocks, and a single column. */
    static const uint32_t large[][2] = {{384, 128}, {192, 64}, {48, 16}, {131, 130},
                                        {200, 33},  {259, 17}, {129, 1}, {96, 71}};
    static const uint32_t ns_small[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17};
    static const uint32_t ns_large[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 200};
    const uint32_t n_small = sizeof ns_small / sizeof *ns_small;
    const uint32_t n_large = sizeof ns_large / sizeof *ns_large;
    uint32_t bad[3] = {0, 0, 0}, a, b, shapes = 0;
    for (a = 0; a < sizeof rows_grid / sizeof *rows_grid; ++a) {
        for (b = 0; b < sizeof cols_grid / sizeof *cols_grid; ++b) {
            inv_shape(k, rows_grid[a], cols_grid[b], ns_small, n_small, bad);
            ++shapes;
        }
    }
    for (a = 0; a < sizeof large / sizeof *large; ++a) { /* n = 200 where it stays cheap */
        const uint32_t big = large[a][0] * large[a][1] > 20000;
        inv_shape(k, large[a][0], large[a][1], ns_large, n_large - big, bad);
        ++shapes;
    }
    CHECK(bad[0] == 0, "%s: matmul_f32 rows differ from matvec_f32 (%u calls, %u shapes)", k->name,
          bad[0], shapes);
    CHECK(bad[1] == 0, "%s: matmul_t_f32 rows differ from matvec_t_f32 (%u calls, %u shapes)",
          k->name, bad[1], shapes);
    CHECK(bad[2] == 0, "%s: a block of rows differs from the full product (%u calls, %u shapes)",
          k->name, bad[2], shapes);
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
    test_int8_nonfinite(&plain);
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
    test_int8_nonfinite(&v);
    printf("avx512 int8 variant tested: avx512bw\n");
    if (egru_avx512_has_vnni()) {
        v.matvec_s8 = egru_matvec_s8_avx512_vnni;
        v.name = "avx512 (avx512vnni int8)";
        test_int8(&v);
        test_int8_nonfinite(&v);
        printf("avx512 int8 variant tested: avx512vnni\n");
    }
}
#endif

int main(void)
{
    const egru_kernel_set_t *sets[5];
    uint32_t i, count = 0;
    sets[count++] = egru_kernels_ref();
    sets[count++] = egru_kernels_cortex_m(); /* portable C: every target */
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
        test_batch_invariance(sets[i]);
        test_activations(sets[i]);
        test_activations_relative(sets[i]);
        test_activations_nonfinite(sets[i]);
        test_gru_gates(sets[i]);
        test_int8(sets[i]);
        test_int8_nonfinite(sets[i]);
        test_int8_edges(sets[i]);
        test_int16x8(sets[i]);
    }
    test_int8_alt();
    test_scalar_activations_nonfinite();
    test_cortex_m_activations_equal_ref();
#if defined(__aarch64__) && defined(__ARM_NEON)
    test_neon_variants();
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    test_avx512_variants();
#endif
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
