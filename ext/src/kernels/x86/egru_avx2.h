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

/* Sum of the 8 lanes. */
EGRU_AVX2 static inline float egru_hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Lane mask for the last, partial chunk of `rem` (0 < rem < 8) floats: lanes < rem set. Masked
 * loads (_mm256_maskload_ps) never touch the lanes that are off, so a row can end anywhere. */
EGRU_AVX2 static inline __m256i egru_tail_mask(uint32_t rem)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* exp(x) for 8 lanes, |relative error| < 2.5e-7 over [-87, 88] (Cephes' expf: range reduction by
 * ln 2 in two parts, degree-5 polynomial, exponent built by integer add). Inputs are clamped to
 * [-87.3, 88.3], so the result is finite and never denormal. */
EGRU_AVX2 static inline __m256 egru_exp256(__m256 x)
{
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 c1 = _mm256_set1_ps(0.693359375f), c2 = _mm256_set1_ps(-2.12194440e-4f);
    __m256 fx, y, z;
    __m256i e;
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
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
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* 1 / (1 + exp(-x)), 8 lanes: egru_exp256 and an exact division; |error| < 3e-7 absolute. */
EGRU_AVX2 static inline __m256 egru_sigmoid256(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = egru_exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

/* tanh(x), 8 lanes: sign(x) * (1 - 2 / (exp(2|x|) + 1)); |error| < 3e-7 absolute. */
EGRU_AVX2 static inline __m256 egru_tanh256(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 e = egru_exp256(_mm256_mul_ps(two, _mm256_andnot_ps(sign, x)));
    const __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
    return _mm256_or_ps(t, _mm256_and_ps(sign, x));
}

#endif /* EGRU_AVX2_H */
