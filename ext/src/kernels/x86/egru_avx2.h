/*
 * egru_avx2.h - helpers shared by the AVX2+FMA kernels (x86-64, GCC or Clang). Every function
 * carries the avx2,fma target attribute, so this code builds into any x86-64 binary and runs only
 * after egru_kernels_avx2() has checked the CPU.
 */
#ifndef EGRU_AVX2_H
#define EGRU_AVX2_H

#include <immintrin.h>
#include <stdint.h>

#define EGRU_AVX2 __attribute__((target("avx2,fma")))

/* The horizontal sum of every float product of this set (egru_kernels.h, "Batch invariance"):
 * the 8 lanes v0..v7 of a row's accumulator added as ((v0 + v1) + (v2 + v3)) + ((v4 + v5) +
 * (v6 + v7)). egru_hsum8x8 does eight of these sums at once, egru_hsum256 one, with the same
 * additions in the same order, so a row's result does not depend on which of them reduced it. */

/* Eight horizontal sums at once: lane k of the result = the sum of the lanes of a[k]. */
EGRU_AVX2 static inline __attribute__((always_inline)) __m256 egru_hsum8x8(const __m256 *a)
{
    const __m256 b0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 b1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    /* b0: lane k < 4 holds (v0 + v1) + (v2 + v3) of a[k], lane 4 + k (v4 + v5) + (v6 + v7);
     * b1 likewise for a[4..7]. */
    return _mm256_add_ps(_mm256_permute2f128_ps(b0, b1, 0x20),
                         _mm256_permute2f128_ps(b0, b1, 0x31));
}

/* Sum of the 8 lanes, in egru_hsum8x8's order. */
EGRU_AVX2 static inline float egru_hsum256(__m256 v)
{
    /* [v0 + v1, v2 + v3, v4 + v5, v6 + v7], then [(v0 + v1) + (v2 + v3), (v4 + v5) + (v6 + v7)] */
    const __m128 p = _mm_hadd_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 q = _mm_hadd_ps(p, p);
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

/* Lane mask for the last, partial chunk of `rem` (0 < rem < 8) floats: lanes < rem set. Masked
 * loads (_mm256_maskload_ps) never touch the lanes that are off, so a row can end anywhere. */
EGRU_AVX2 static inline __m256i egru_tail_mask(uint32_t rem)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The core of egru_exp256 and egru_expm1_256 (Cephes' expf): for x in [-87.3, 89] (clamped, a NaN
 * lane stays NaN: max_ps / min_ps return their second operand when either is NaN, so x goes
 * second), x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts, fused), and
 * exp(r) - 1 = r + r^2 P(r), P of degree 5. Returns exp(r) = (1 + r) + r^2 P(r) (one fused step),
 * or with minus1 (a constant after inlining) exp(r) - 1 = r + r^2 P(r), and sets *p2n = 2^n,
 * built by an integer add into the exponent field: +inf for n = 128 (x above about 88.38). */
EGRU_AVX2 static inline __m256 egru_exp_core256(__m256 x, float lo, float hi, int minus1,
                                                __m256 *p2n)
{
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 c1 = _mm256_set1_ps(0.693359375f), c2 = _mm256_set1_ps(-2.12194440e-4f);
    __m256 fx, y, z;
    __m256i e;
    x = _mm256_min_ps(_mm256_set1_ps(hi), _mm256_max_ps(_mm256_set1_ps(lo), x));
    fx = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, c1, x);
    x = _mm256_fnmadd_ps(fx, c2, x);
    z = _mm256_mul_ps(x, x);
    y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    *p2n = _mm256_castsi256_ps(e);
    return _mm256_fmadd_ps(y, z, minus1 ? x : _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
}

/* exp(x) for 8 lanes, |relative error| < 2.5e-7 over [-87.3, 88.3]: 2^n ((1 + r) + r^2 P(r)).
 * Inputs are clamped to [-87.3, 89]: below, the result is exp(-87.3) (normal, about 1.2e-38);
 * above about 88.38 it is +inf, as expf overflows (at 88.72). NaN gives NaN. */
EGRU_AVX2 static inline __m256 egru_exp256(__m256 x)
{
    __m256 p2n;
    const __m256 y = egru_exp_core256(x, -87.3f, 89.0f, 0, &p2n);
    return _mm256_mul_ps(y, p2n);
}

/* exp(x) - 1 for 8 lanes with RELATIVE accuracy near 0, for x clamped to [-87.3, 40] (NaN gives
 * NaN): 2^n (r + r^2 P(r)) + (2^n - 1), one fused step; for |x| < ln 2 / 2, n = 0 and this is
 * r + r^2 P(r) itself, r = x exactly, so tiny x give x. Finite (at most about 2.4e17). */
EGRU_AVX2 static inline __m256 egru_expm1_256(__m256 x)
{
    __m256 p2n;
    const __m256 y = egru_exp_core256(x, -87.3f, 40.0f, 1, &p2n);
    return _mm256_fmadd_ps(y, p2n, _mm256_sub_ps(p2n, _mm256_set1_ps(1.0f)));
}

/* 1 / (1 + exp(-x)), 8 lanes: egru_exp256 and an exact division. Errors against exact: see
 * docs/kernels.md (relative where the result is a normal float, so also for the small results of
 * very negative x; exactly 0 below about -88.4, as the reference). NaN gives NaN. */
EGRU_AVX2 static inline __m256 egru_sigmoid256(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = egru_exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

/* tanh(x), 8 lanes: sign(x) * m / (m + 2) with m = expm1(2|x|) (egru_expm1_256), which keeps
 * relative accuracy near 0 (tiny x give x) where 1 - 2 / (exp(2|x|) + 1) cancels; the sign bit
 * of x goes on last, so tanh(-0) = -0. 2|x| is clamped at 40 (tanh is 1 in float from 9.01 on),
 * so m stays finite and +-inf give +-1. NaN gives NaN. Errors: docs/kernels.md. */
EGRU_AVX2 static inline __m256 egru_tanh256(__m256 x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 ax = _mm256_andnot_ps(sign, x);
    const __m256 m = egru_expm1_256(_mm256_add_ps(ax, ax));
    const __m256 t = _mm256_div_ps(m, _mm256_add_ps(m, _mm256_set1_ps(2.0f)));
    return _mm256_or_ps(t, _mm256_and_ps(sign, x));
}

#endif /* EGRU_AVX2_H */
