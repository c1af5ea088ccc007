/*
 * egru_kernels.h - the compute kernels the layers are built from.
 *
 * The plain scalar versions in kernels/ref/ are the specification: any optimised kernel keeps
 * exactly these signatures and is tested against them. One op per file, named after the function.
 * All pointers are non-NULL and arrays do not overlap unless a comment says so.
 */
#ifndef EGRU_KERNELS_H
#define EGRU_KERNELS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../egru_features.h"

/* A kernel set: the ops the layers call through, one implementation per instruction set. The
 * reference set (egru_kernels_ref) is the specification; others keep its results within the
 * bounds stated in docs/kernels.md and are tested against it. Chosen per model at init
 * (egru_model_use_kernels), so one binary runs everywhere. */
typedef struct egru_kernel_set {
    const char *name;
    /* See egru_matvec_f32. */
    void (*matvec_f32)(const float *w, const float *x, const float *bias, float *y, uint32_t rows,
                       uint32_t cols);
    /* See egru_matmul_f32. */
    void (*matmul_f32)(const float *w, const float *x, const float *bias, float *y, uint32_t n,
                       uint32_t rows, uint32_t cols);
    void (*sigmoid_f32)(float *v, uint32_t n);
    void (*tanh_f32)(float *v, uint32_t n);
    /* See egru_matvec_t_f32 (weights packed by egru_model_pack). */
    void (*matvec_t_f32)(const float *wt, uint32_t ld, const float *x, const float *bias, float *y,
                         uint32_t rows, uint32_t cols);
    /* See egru_matmul_t_f32. */
    void (*matmul_t_f32)(const float *wt, uint32_t ld, const float *x, const float *bias, float *y,
                         uint32_t n, uint32_t rows, uint32_t cols);
    /* See egru_quantize_s8 and egru_matvec_s8 (int8 models; bit-exact in every set). */
    float (*quantize_s8)(const float *x, int8_t *q, uint32_t n);
    void (*matvec_s8)(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                      const float *bias, float *y, uint32_t rows, uint32_t cols);
    /* See egru_gru_gates_f32. NULL in a set that has no fused version: the GRU cell then runs the
     * same steps as separate passes with this set's sigmoid_f32 and tanh_f32, which a fused
     * version must equal bit for bit. */
    void (*gru_gates_f32)(float *x, const float *hp, float *h, uint32_t n, int update);
    /* See egru_matvec_s8_s16 (int16x8 models; bit-exact in every set). NULL when the build
     * leaves int16x8 out (EGRU_CFG_INT16X8 0). */
    void (*matvec_s8_s16)(const int8_t *w, const int16_t *x, const int32_t *m, const int32_t *n,
                          const int32_t *bias, int32_t *g, uint32_t rows, uint32_t cols);
    /* See egru_matvec_s8_sums (int8 models whose row sums egru_model_pack keeps). NULL in a set
     * that gains nothing from the sums: callers then use matvec_s8, which gives the same bits. */
    void (*matvec_s8_sums)(const int8_t *w, const int32_t *sums, const float *scale,
                           const int8_t *xq, float sx, const float *bias, float *y, uint32_t rows,
                           uint32_t cols);
} egru_kernel_set_t;

/* The scalar reference kernels (every target), or NULL when the build leaves them out
 * (EGRU_CFG_KERNELS_REF 0). */
const egru_kernel_set_t *egru_kernels_ref(void);
/* The Cortex-M kernels (kernels/cortex_m/, portable C99 with the int8 product on the DSP
 * extension where the target has it): available on every target, picked by EGRU_KERNELS_AUTO at
 * compile time on M-profile targets; NULL when the build leaves them out
 * (EGRU_CFG_KERNELS_CORTEX_M 0). */
const egru_kernel_set_t *egru_kernels_cortex_m(void);
/* The AVX2+FMA kernels, or NULL when this build or this CPU lacks them. */
const egru_kernel_set_t *egru_kernels_avx2(void);
/* The AVX-512 kernels (F, BW, VL and FMA; the int8 product with VNNI when the CPU has it), or
 * NULL when this build or this CPU lacks them. */
const egru_kernel_set_t *egru_kernels_avx512(void);
/* The NEON kernels (aarch64), or NULL when this build lacks them. */
const egru_kernel_set_t *egru_kernels_neon(void);

/* The set for an egru_kernels_t value (an int here, so this header needs no edgegru.h): NULL when
 * this build or this CPU lacks it or the value is unknown. EGRU_KERNELS_AUTO: on M-profile Arm
 * targets the cortex_m set (chosen at compile time), elsewhere the fastest set this CPU has
 * (avx512, avx2, neon, then ref); either way the other built-in set when the preferred one is left
 * out. egru_model_use_kernels and egru_kernels_available map through it. */
const egru_kernel_set_t *egru_kernels_get(int kernels);

/* The Cortex-M set's kernels (same contracts as the reference kernels of the same op). */
void egru_matvec_f32_cortex_m(const float *w, const float *x, const float *bias, float *y,
                              uint32_t rows, uint32_t cols);
void egru_matmul_f32_cortex_m(const float *w, const float *x, const float *bias, float *y,
                              uint32_t n, uint32_t rows, uint32_t cols);
void egru_sigmoid_f32_cortex_m(float *v, uint32_t n);
void egru_tanh_f32_cortex_m(float *v, uint32_t n);
float egru_quantize_s8_cortex_m(const float *x, int8_t *q, uint32_t n);
void egru_matvec_s8_cortex_m(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                             const float *bias, float *y, uint32_t rows, uint32_t cols);
void egru_gru_gates_f32_cortex_m(float *x, const float *hp, float *h, uint32_t n, int update);

/* The four float products below (matmul, matvec, and their packed forms) are batch invariant in
 * every set, bit for bit: in a given set, each output y[r] of a product is one fixed sequence of
 * float operations on row r of the weights, the input vector and bias[r] that depends only on
 * cols and on whether bias is NULL - never on n, rows, ld, r0 or the output's position in y. So,
 * in the same set: row i of egru_matmul_f32 equals egru_matvec_f32 on X[i]; row i of
 * egru_matmul_t_f32 equals egru_matvec_t_f32 on X[i]; and the product of a block of rows (w +
 * r0 * cols, or wt + r0 with the same ld, with bias + r0) equals entries [r0, r0 + rows) of the
 * full product. A batch row's results therefore do not depend on the other rows of its batch nor
 * on the plan (one product for all steps and rows, or one step and row at a time, in blocks of
 * rows). The row-major and the packed pairs may differ from each other, and sets from one
 * another and from the reference, within the bounds of docs/kernels.md (their orders of addition
 * and fused roundings differ). Each set's sequence is in docs/kernels.md; a new set must keep this
 * too (ext/tests/test_kernels.c, test_batch_invariance, checks every set). */

/* Y[i] = W . X[i] + bias for i < n: X (n, cols), Y (n, rows), W (rows, cols), all row-major;
 * bias (rows) or NULL. The input projection of all time steps at once. Row i is exactly
 * egru_matvec_f32(w, X[i], bias, Y[i], rows, cols) of the same set (batch invariance, above). */
void egru_matmul_f32(const float *w, const float *x, const float *bias, float *y, uint32_t n,
                     uint32_t rows, uint32_t cols);

/* y[r] = bias[r] + sum_c w[r * cols + c] * x[c], for r < rows.
 * w: (rows, cols) row-major; x: (cols); bias: (rows) or NULL for none; y: (rows). y[r] does not
 * depend on rows or on where the block starts (w + r0 * cols, bias + r0: batch invariance). */
void egru_matvec_f32(const float *w, const float *x, const float *bias, float *y, uint32_t rows,
                     uint32_t cols);

/* The same product with the weights stored transposed (egru_model_pack), so that one input
 * column's weights are contiguous: y[r] = bias[r] + sum_c wt[c * ld + r] * x[c], for r < rows.
 * wt: (cols, ld) row-major with ld >= rows (a block of rows of a wider packed matrix is addressed
 * as wt + first_row with the wider matrix's ld); x: (cols); bias: (rows) or NULL; y: (rows).
 * Kernels read wt only at [c * ld + r] for r < rows. y[r] does not depend on rows, ld or where the
 * block starts (wt + r0, bias + r0: batch invariance). */
void egru_matvec_t_f32(const float *wt, uint32_t ld, const float *x, const float *bias, float *y,
                       uint32_t rows, uint32_t cols);

/* Y[i] = W . X[i] + bias for i < n with W given transposed as in egru_matvec_t_f32 (wt (cols, ld),
 * ld >= rows), X (n, cols), Y (n, rows). The input projection of all steps, and the recurrent
 * product of a block of rows. Row i is exactly egru_matvec_t_f32(wt, ld, X[i], bias, Y[i], rows,
 * cols) of the same set (batch invariance). */
void egru_matmul_t_f32(const float *wt, uint32_t ld, const float *x, const float *bias, float *y,
                       uint32_t n, uint32_t rows, uint32_t cols);

/* int8 (docs/quantization.md, quant_version 1). Every set gives the reference's results bit for
 * bit on every input, NaN, infinities, denormals and zeros included: integer sums and maxima are
 * exact, and the float steps are the same single IEEE operations.
 *
 * Quantizes x (n) into q (n) and returns the scale sx, with m = max |x[j]|:
 *   - m not finite (some x[j] is NaN or +-inf): q all 0 and sx = NaN, so that every output of the
 *     product is NaN (int8 cannot carry an infinity; the float path would give +-inf or NaN);
 *   - m < EGRU_QUANT_S8_MIN (2^-119, about 1.5e-36; exact zeros, denormals, tiny values): q all 0
 *     and sx = 0, so the product gives its bias exactly (127 / m would overflow below 3.7e-37,
 *     and m / 127 would be denormal; the vector's contribution is below float resolution);
 *   - otherwise q[j] = clamp(rint(x[j] * (127 / m)), -127, 127), rounding half to even, and
 *     sx = m / 127.
 * n >= 0 (n = 0: sx = 0). */
float egru_quantize_s8(const float *x, int8_t *q, uint32_t n);

/* Bit pattern of EGRU_QUANT_S8_MIN = 2^-119, the smallest max |x| egru_quantize_s8 inverts: 127 /
 * 2^-119 < FLT_MAX, and 2^-119 / 127 > FLT_MIN (a normal scale). */
#define EGRU_QUANT_S8_MIN_BITS 0x04000000u
/* Bit pattern of +inf; |x| bit patterns at or above it are +inf or NaN. */
#define EGRU_F32_INF_BITS 0x7F800000u

/* The largest of m and the bit patterns of |x[j]| (sign bit cleared) for from <= j < n. As
 * unsigned integers these order like the magnitudes they encode, with +inf above every finite
 * value and NaN above +inf, so the maximum is exact, independent of order, and sees a NaN
 * anywhere: the reference's loop, and every SIMD version's tail. */
static inline uint32_t egru_abs_bits_max(const float *x, uint32_t from, uint32_t n, uint32_t m)
{
    for (; from < n; ++from) {
        uint32_t b;
        memcpy(&b, &x[from], sizeof b);
        b &= 0x7FFFFFFFu;
        m = b > m ? b : m;
    }
    return m;
}

/* The scale egru_quantize_s8 returns for amax, the largest |x| bit pattern; *inv = 127 / m when
 * the vector is quantized, 0 when q is all zero (m not finite, or below EGRU_QUANT_S8_MIN). */
static inline float egru_quantize_s8_scale(uint32_t amax, float *inv)
{
    float m;
    *inv = 0.0f;
    if (amax >= EGRU_F32_INF_BITS) {
        return NAN;
    }
    if (amax < EGRU_QUANT_S8_MIN_BITS) {
        return 0.0f;
    }
    memcpy(&m, &amax, sizeof m);
    *inv = 127.0f / m;
    return m / 127.0f;
}

/* q[j] for from <= j < n with inv = 127 / max |x| (finite, as egru_quantize_s8_scale gives it;
 * every x[j] finite), exactly as egru_quantize_s8 rounds: the reference's loop, and every SIMD
 * version's tail. |x[j] * inv| <= 127 * (1 + 2^-23) before the clamp, so the conversion is
 * defined. */
static inline void egru_quantize_s8_range(const float *x, int8_t *q, uint32_t from, uint32_t n,
                                          float inv)
{
    for (; from < n; ++from) {
        float v = rintf(x[from] * inv); /* round half to even (the default rounding mode) */
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        q[from] = (int8_t)v;
    }
}

/* y[r] = (float)(sum_c w[r * cols + c] * xq[c]) * (scale[r] * sx) + bias[r], for r < rows, the
 * sum in int32 (exact for cols < 2^17), the float steps unfused and in this order.
 * w: (rows, cols) row-major int8 in [-127, 127]; scale: (rows); xq: (cols) from
 * egru_quantize_s8, sx its scale; bias: (rows) or NULL; y: (rows). */
void egru_matvec_s8(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                    const float *bias, float *y, uint32_t rows, uint32_t cols);
/* egru_matvec_s8_sums: egru_matvec_s8's y, bit for bit, given also sums: (rows) int32, sums[r] =
 * sum_c w[r * cols + c] (egru_model_pack's recurrent_sums), which lets a kernel multiply biased
 * unsigned x (x + 128) by w and correct each row by 128 * sums[r]. No reference function: the
 * reference is egru_matvec_s8 (the sums change no result). */

/* int16x8 (integer-only): g[r] = satG(mul(sum_c w[r * cols + c] * x[c], (m[r], n[r])) + bias[r])
 * for r < rows, the sum exact (kernels/ref/egru_matvec_s8_s16.c states the contract). */
void egru_matvec_s8_s16(const int8_t *w, const int16_t *x, const int32_t *m, const int32_t *n,
                        const int32_t *bias, int32_t *g, uint32_t rows, uint32_t cols);
/* What a kernel set holds for it where it has no version of its own: the reference. */
#if EGRU_CFG_INT16X8
#define EGRU_MATVEC_S8_S16 egru_matvec_s8_s16
#else
#define EGRU_MATVEC_S8_S16 NULL
#endif
/* The cortex_m set's own version exists on Thumb-2 cores (ARMv7-M and up: SMLAD with the DSP
 * extension, LDRSB + MLA without it) and on ARMv6-M (M0, M0+: LDRSB + MULS), GCC or clang. */
#if EGRU_CFG_INT16X8 && (defined(__GNUC__) || defined(__clang__)) &&                               \
    (defined(__thumb2__) || defined(__ARM_ARCH_6M__))
#define EGRU_CM_MATVEC_S8_S16 egru_matvec_s8_s16_cortex_m
void egru_matvec_s8_s16_cortex_m(const int8_t *w, const int16_t *x, const int32_t *m,
                                 const int32_t *n, const int32_t *bias, int32_t *g, uint32_t rows,
                                 uint32_t cols);
#else
#define EGRU_CM_MATVEC_S8_S16 EGRU_MATVEC_S8_S16
#endif
/* On the same cores (QADD with the DSP extension, ADDS and a fix on overflow without it), the
 * element-wise part of an int16x8 GRU step with sigmoid gates, a tanh candidate and a Q15 state
 * (kernels/cortex_m/egru_gru_tail_s16_cortex_m.c states the contract; the same integers as the
 * portable tail in int16x8/egru_rnn_step_s16.c, which stays elsewhere). */
#if EGRU_CFG_INT16X8 && (defined(__GNUC__) || defined(__clang__)) && defined(__thumb2__)
#define EGRU_CM_GRU_TAIL_S16 egru_gru_tail_s16_cortex_m
void egru_gru_tail_s16_cortex_m(const int32_t *gx, const int32_t *gh, int16_t *h, uint32_t units,
                                int reset_after);
#endif

/* The element-wise part of one GRU step for one row, reset_after (Keras' default) with the
 * default activations (sigmoid for the gates, tanh for the candidate), n = units:
 *   z = sigmoid(x[j] + hp[j]),  r = sigmoid(x[n + j] + hp[n + j]),
 *   hh = tanh(x[2n + j] + r * hp[2n + j]),  and when update != 0:  h[j] = z * h[j] + (1 - z) * hh
 * for j < n, each step a single float operation in this order. x (3n): the step's input
 * projection (kernel . x + bias), z | r | h thirds; overwritten, as scratch. hp (3n): the
 * recurrent product R . h + recurrent bias. h (n): the state, in place. */
void egru_gru_gates_f32(float *x, const float *hp, float *h, uint32_t n, int update);

/* The activations below, in every set: a NaN input gives NaN, and +-inf give Keras' limits
 * (docs/kernels.md, "Non-finite values"). The SIMD sigmoid and tanh keep the relative and
 * absolute error bounds stated there (tested by ext/tests/test_kernels.c), and an element's
 * result does not depend on its position in v. */

/* In place, v[i] = 1 / (1 + exp(-v[i])), for i < n. */
void egru_sigmoid_f32(float *v, uint32_t n);

/* In place, v[i] = tanh(v[i]), for i < n. */
void egru_tanh_f32(float *v, uint32_t n);

/* In place, v[i] = max(v[i], 0), for i < n; NaN stays NaN (as in Keras). */
void egru_relu_f32(float *v, uint32_t n);

/* In place, v[i] = min(max(v[i] + 3, 0), 6) / 6 (Keras 3 hard_sigmoid, relu6(x + 3) / 6). */
void egru_hard_sigmoid_f32(float *v, uint32_t n);

/* In place, v[i] = v[i] > 0 ? v[i] : exp(v[i]) - 1 (alpha 1, Keras' elu). */
void egru_elu_f32(float *v, uint32_t n);

/* In place, v[i] = v[i] / (1 + |v[i]|). */
void egru_softsign_f32(float *v, uint32_t n);

/* In place, v[i] = log(1 + exp(v[i])), computed without overflow. */
void egru_softplus_f32(float *v, uint32_t n);

/* In place, v[i] = v[i] > 0 ? v[i] : slope * v[i]. */
void egru_leaky_relu_f32(float *v, uint32_t n, float slope);

/* In place, v = exp(v - max(v)) / sum(exp(v - max(v))), over all n >= 1 elements. */
void egru_softmax_f32(float *v, uint32_t n);

#endif /* EGRU_KERNELS_H */
