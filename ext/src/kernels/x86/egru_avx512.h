/*
 * egru_avx512.h - helpers shared by the AVX-512 kernels (x86-64, GCC or Clang). Every function
 * carries the EGRU_AVX512 target attribute (AVX-512 F, BW and VL, and FMA), so this code builds
 * into any x86-64 binary and runs only after egru_kernels_avx512() has checked the CPU. The int8
 * product with vpdpbusd carries EGRU_AVX512_VNNI (the same plus AVX-512 VNNI).
 *
 * EGRU_AVX512_EMULATED (the test build `make check-avx512-emulated` only, never a real build):
 * the same sources compile against SIMDe (libsimde-dev), whose portable _mm512_* intrinsics run
 * on a CPU without AVX-512 (on AVX2 when built with -mavx2), and the target attributes are empty.
 * Include only under defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)).
 *
 * The kernels' loops over the accumulators of a register block carry `#pragma GCC unroll 16`
 * (GCC and Clang): without it GCC 12 unrolls some of them too late and keeps those accumulator
 * arrays in memory, one store per accumulator per column.
 */
#ifndef EGRU_AVX512_H
#define EGRU_AVX512_H

#include <stdint.h>

#ifdef EGRU_AVX512_EMULATED
#include <math.h>
#include <string.h>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#define EGRU_AVX512
#define EGRU_AVX512_VNNI

/* Only for the emulated test build: the intrinsics the kernels use that SIMDe 0.7.4 lacks, each
 * written from Intel's documented semantics, lane by lane (a masked load reads only the lanes
 * that are on, a masked store writes only those). The macros also hide the compiler's own
 * AVX-512 intrinsics of the same names, which this build must not call. */
static inline __m512 egru_emu_maskz_loadu_ps(__mmask16 k, const void *p)
{
    float v[16] = {0.0f};
    int i;
    for (i = 0; i < 16; ++i) {
        if ((k >> i) & 1) {
            memcpy(&v[i], (const char *)p + 4 * i, 4);
        }
    }
    return _mm512_loadu_ps(v);
}

static inline void egru_emu_mask_storeu_ps(void *p, __mmask16 k, __m512 a)
{
    float v[16];
    int i;
    _mm512_storeu_ps(v, a);
    for (i = 0; i < 16; ++i) {
        if ((k >> i) & 1) {
            memcpy((char *)p + 4 * i, &v[i], 4);
        }
    }
}

static inline __m512i egru_emu_maskz_loadu_epi8(__mmask64 k, const void *p)
{
    int8_t v[64] = {0};
    int i;
    for (i = 0; i < 64; ++i) {
        if ((k >> i) & 1) {
            v[i] = ((const int8_t *)p)[i];
        }
    }
    return _mm512_loadu_si512(v);
}

static inline void egru_emu_mask_storeu_epi8_128(void *p, __mmask16 k, __m128i a)
{
    int8_t v[16];
    int i;
    _mm_storeu_si128((__m128i *)(void *)v, a);
    for (i = 0; i < 16; ++i) {
        if ((k >> i) & 1) {
            ((int8_t *)p)[i] = v[i];
        }
    }
}

/* vcvtps2dq: round with the current rounding mode (MXCSR); NaN or out of range gives INT32_MIN. */
static inline __m512i egru_emu_cvtps_epi32(__m512 a)
{
    float v[16];
    int32_t r[16];
    int i;
    _mm512_storeu_ps(v, a);
    for (i = 0; i < 16; ++i) {
        const float t = nearbyintf(v[i]);
        r[i] = (t >= -2147483648.0f && t < 2147483648.0f) ? (int32_t)t : INT32_MIN;
    }
    return _mm512_loadu_si512(r);
}

/* vcvtdq2ps: each int32 to the nearest float (current rounding mode). */
static inline __m512 egru_emu_cvtepi32_ps(__m512i a)
{
    int32_t v[16];
    float r[16];
    int i;
    _mm512_storeu_si512(v, a);
    for (i = 0; i < 16; ++i) {
        r[i] = (float)v[i];
    }
    return _mm512_loadu_ps(r);
}

#define _mm512_maskz_loadu_ps   egru_emu_maskz_loadu_ps
#define _mm512_mask_storeu_ps   egru_emu_mask_storeu_ps
#define _mm512_maskz_loadu_epi8 egru_emu_maskz_loadu_epi8
#define _mm_mask_storeu_epi8    egru_emu_mask_storeu_epi8_128
#define _mm512_cvtps_epi32      egru_emu_cvtps_epi32
#define _mm512_cvtepi32_ps      egru_emu_cvtepi32_ps
#define _mm512_shuffle_f32x4    simde_mm512_shuffle_f32x4 /* SIMDe has it, without the alias */
#undef _mm512_madd_epi16 /* SIMDe 0.7.4's alias takes the 4 arguments of the masked form */
#define _mm512_madd_epi16 simde_mm512_madd_epi16
#else
#include <immintrin.h>

#define EGRU_AVX512      __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define EGRU_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))
#endif

/* Lane mask of the first n (0 <= n <= 16) of 16 lanes. Masked loads (_mm512_maskz_loadu_*) never
 * touch the lanes that are off, and masked stores never write them, so a row can end anywhere. */
static inline __mmask16 egru_mask16(uint32_t n)
{
    return (__mmask16)(0xFFFFu >> (16 - n));
}

/* Lane mask of the first n (0 < n <= 64) of 64 byte lanes. */
static inline __mmask64 egru_mask64(uint32_t n)
{
    return (__mmask64)(~0ull >> (64 - n));
}

/* The horizontal sum of every float product of this set (egru_kernels.h, "Batch invariance"):
 * the 16 lanes v0..v15 of a row's accumulator added as (T0 + T2) + (T1 + T3) with
 * Tj = (vj + vj+8) + (vj+4 + vj+12). egru_hsum16_ps does sixteen of these sums at once,
 * egru_hsum512 one, with the same additions in the same order, so a row's result does not depend
 * on which of them reduced it. */

/* Sum of the 16 lanes: s8 = lanes j + (j + 8), then Tj = s8[j] + s8[j + 4], then
 * (T0 + T2) + (T1 + T3). */
EGRU_AVX512 static inline float egru_hsum512(__m512 v)
{
    const __m256 h = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), h);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Sum of the 16 int32 lanes (exact, wrapping as int32 addition does). */
EGRU_AVX512 static inline int32_t egru_hsum512_epi32(__m512i v)
{
    const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* Sixteen horizontal sums at once: lane k of the result = the sum of the 16 lanes of a[k], in
 * egru_hsum512's order. Four levels of halving: 128-bit blocks (256-bit halves of a[p] added,
 * then its 128-bit quarters: the Tj), then elements within each 128-bit block (T0 + T2 with
 * T1 + T3), so lane 4j + m ends up holding a[4j + m]. */
EGRU_AVX512 static inline __attribute__((always_inline)) __m512 egru_hsum16_ps(const __m512 *a)
{
    __m512 c[8], d[4], e0, e1;
    int i;
#pragma GCC unroll 16
    for (i = 0; i < 8; ++i) { /* c[i]: a[p] in the low 256 bits, a[p + 4] in the high */
        const int p = i < 4 ? i : i + 4;
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[p], a[p + 4], 0x44),
                             _mm512_shuffle_f32x4(a[p], a[p + 4], 0xEE));
    }
#pragma GCC unroll 16
    for (i = 0; i < 4; ++i) { /* d[m]: 128-bit block j holds a[4j + m] */
        d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[i], c[i + 4], 0x88),
                             _mm512_shuffle_f32x4(c[i], c[i + 4], 0xDD));
    }
    e0 = _mm512_add_ps(_mm512_unpacklo_ps(d[0], d[1]), _mm512_unpackhi_ps(d[0], d[1]));
    e1 = _mm512_add_ps(_mm512_unpacklo_ps(d[2], d[3]), _mm512_unpackhi_ps(d[2], d[3]));
    return _mm512_add_ps(
        _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(e0), _mm512_castps_pd(e1))),
        _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(e0), _mm512_castps_pd(e1))));
}

/* The same for int32 lanes (exact): lane k of the result = the sum of the lanes of a[k]. */
EGRU_AVX512 static inline __attribute__((always_inline)) __m512i egru_hsum16_epi32(const __m512i *a)
{
    __m512i c[8], d[4], e0, e1;
    int i;
#pragma GCC unroll 16
    for (i = 0; i < 8; ++i) {
        const int p = i < 4 ? i : i + 4;
        c[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(a[p], a[p + 4], 0x44),
                                _mm512_shuffle_i32x4(a[p], a[p + 4], 0xEE));
    }
#pragma GCC unroll 16
    for (i = 0; i < 4; ++i) {
        d[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(c[i], c[i + 4], 0x88),
                                _mm512_shuffle_i32x4(c[i], c[i + 4], 0xDD));
    }
    e0 = _mm512_add_epi32(_mm512_unpacklo_epi32(d[0], d[1]), _mm512_unpackhi_epi32(d[0], d[1]));
    e1 = _mm512_add_epi32(_mm512_unpacklo_epi32(d[2], d[3]), _mm512_unpackhi_epi32(d[2], d[3]));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(e0, e1), _mm512_unpackhi_epi64(e0, e1));
}

/* The core of egru_exp512 and egru_expm1_512: egru_exp_core256 (egru_avx2.h) on 16 lanes, the
 * same algorithm, constants and fused operations (Cephes' expf), so the same errors: x clamped to
 * [lo, hi] (NaN stays NaN: max_ps / min_ps return their second operand when either is NaN, so x
 * goes second), x = n ln 2 + r, returns exp(r) (or with minus1 exp(r) - 1) and sets *p2n = 2^n
 * (+inf for n = 128). */
EGRU_AVX512 static inline __m512 egru_exp_core512(__m512 x, float lo, float hi, int minus1,
                                                  __m512 *p2n)
{
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 c1 = _mm512_set1_ps(0.693359375f), c2 = _mm512_set1_ps(-2.12194440e-4f);
    __m512 fx, y, z;
    __m512i e;
    x = _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), x));
    fx = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, c1, x);
    x = _mm512_fnmadd_ps(fx, c2, x);
    z = _mm512_mul_ps(x, x);
    y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    *p2n = _mm512_castsi512_ps(e);
    return _mm512_fmadd_ps(y, z, minus1 ? x : _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
}

/* exp(x) for 16 lanes: egru_exp256 on 16 lanes (same clamp to [-87.3, 89], +inf above about
 * 88.38, NaN kept, |relative error| < 2.5e-7 over [-87.3, 88.3]). */
EGRU_AVX512 static inline __m512 egru_exp512(__m512 x)
{
    __m512 p2n;
    const __m512 y = egru_exp_core512(x, -87.3f, 89.0f, 0, &p2n);
    return _mm512_mul_ps(y, p2n);
}

/* exp(x) - 1 for 16 lanes, relative accuracy near 0: egru_expm1_256 on 16 lanes (x clamped to
 * [-87.3, 40], NaN kept). */
EGRU_AVX512 static inline __m512 egru_expm1_512(__m512 x)
{
    __m512 p2n;
    const __m512 y = egru_exp_core512(x, -87.3f, 40.0f, 1, &p2n);
    return _mm512_fmadd_ps(y, p2n, _mm512_sub_ps(p2n, _mm512_set1_ps(1.0f)));
}

/* 1 / (1 + exp(-x)), 16 lanes: egru_sigmoid256 on 16 lanes (errors: docs/kernels.md; NaN gives
 * NaN, exactly 0 below about -88.4). */
EGRU_AVX512 static inline __m512 egru_sigmoid512(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 e = egru_exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

/* tanh(x), 16 lanes: egru_tanh256 on 16 lanes, sign(x) * m / (m + 2) with m = expm1(2|x|)
 * (relative accuracy near 0, tanh(-0) = -0, +-inf give +-1, NaN gives NaN; errors:
 * docs/kernels.md). The sign bit moves with integer logic (AVX-512 F; the float and/or forms need
 * AVX-512 DQ). */
EGRU_AVX512 static inline __m512 egru_tanh512(__m512 x)
{
    const __m512i sign = _mm512_set1_epi32(INT32_MIN);
    const __m512i xi = _mm512_castps_si512(x);
    const __m512 ax = _mm512_castsi512_ps(_mm512_andnot_si512(sign, xi));
    const __m512 m = egru_expm1_512(_mm512_add_ps(ax, ax));
    const __m512 t = _mm512_div_ps(m, _mm512_add_ps(m, _mm512_set1_ps(2.0f)));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), _mm512_and_si512(sign, xi)));
}

/* y[0..16) of an int8 product (egru_matvec_s8) from the 16 rows' exact int32 sums s: the
 * reference's float steps, unfused and in its order, (float)s * (scale * sx) + bias. */
EGRU_AVX512 static inline void egru_s8_scale_store16(__m512i s, const float *scale, float sx,
                                                     const float *bias, float *y)
{
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(s),
                             _mm512_mul_ps(_mm512_loadu_ps(scale), _mm512_set1_ps(sx)));
    if (bias) {
        v = _mm512_add_ps(v, _mm512_loadu_ps(bias));
    }
    _mm512_storeu_ps(y, v);
}

/* One row's y of an int8 product from its exact int32 sum: the reference's float steps. */
static inline void egru_s8_finish1(int32_t acc, float scale, float sx, const float *bias, float *y)
{
    const float t = (float)acc * (scale * sx);
    *y = bias ? t + *bias : t;
}

#endif /* EGRU_AVX512_H */
