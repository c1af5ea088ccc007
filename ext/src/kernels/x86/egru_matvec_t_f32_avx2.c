/* egru_matvec_t_f32_avx2.c - matrix-vector product on transposed weights, AVX2+FMA (same contract
 * as egru_matvec_t_f32). Outputs are vectorised: for each input column, x[c] is broadcast and
 * multiplied into up to eight 8-lane accumulators (64 rows) at once, so no horizontal sums are
 * needed and small column counts cost nothing extra. Each y[r] is one fused multiply-add chain
 * over the columns in the reference's order, starting from 0, then the bias, in whichever block
 * and lane it falls, so a row's result does not depend on rows or on where its block starts
 * (egru_kernels.h, "Batch invariance"); only the fused multiply-add rounding differs from the
 * reference (docs/kernels.md). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_matvec_t_f32_avx2(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t rows, uint32_t cols);

/* Rows [0, 8 * nv) of the block starting at wt / bias / y; with `masked`, the last vector holds
 * only the lanes of m. nv and masked are constants at every call; the pragmas make GCC unroll the
 * loops over k so the accumulators stay in registers (without them GCC 12 kept the tail cases'
 * accumulators in memory: the 48 x 16 product of GRU(16) took 40 ns instead of 29). */
EGRU_AVX2 static inline __attribute__((always_inline)) void
block(const float *wt, uint32_t ld, const float *x, const float *bias, float *y, uint32_t cols,
      const int nv, const int masked, __m256i m)
{
    __m256 a[8];
    uint32_t c;
    int k;
#pragma GCC unroll 8
    for (k = 0; k < nv; ++k) {
        a[k] = _mm256_setzero_ps();
    }
    for (c = 0; c < cols; ++c) {
        const __m256 xc = _mm256_broadcast_ss(x + c);
        const float *col = wt + (uint64_t)c * ld;
#pragma GCC unroll 8
        for (k = 0; k < nv; ++k) {
            const __m256 wv = (masked && k == nv - 1) ? _mm256_maskload_ps(col + 8 * k, m)
                                                      : _mm256_loadu_ps(col + 8 * k);
            a[k] = _mm256_fmadd_ps(wv, xc, a[k]);
        }
    }
#pragma GCC unroll 8
    for (k = 0; k < nv; ++k) {
        if (masked && k == nv - 1) {
            if (bias) {
                a[k] = _mm256_add_ps(a[k], _mm256_maskload_ps(bias + 8 * k, m));
            }
            _mm256_maskstore_ps(y + 8 * k, m, a[k]);
        } else {
            if (bias) {
                a[k] = _mm256_add_ps(a[k], _mm256_loadu_ps(bias + 8 * k));
            }
            _mm256_storeu_ps(y + 8 * k, a[k]);
        }
    }
}

#define EGRU_TAIL_CASE(NV)                                                                         \
    case NV:                                                                                       \
        if (masked) {                                                                              \
            block(wt + r, ld, x, b, y + r, cols, NV, 1, m);                                        \
        } else {                                                                                   \
            block(wt + r, ld, x, b, y + r, cols, NV, 0, m);                                        \
        }                                                                                          \
        break;

EGRU_AVX2 void egru_matvec_t_f32_avx2(const float *wt, uint32_t ld, const float *x,
                                      const float *bias, float *y, uint32_t rows, uint32_t cols)
{
    const __m256i all = _mm256_set1_epi32(-1);
    uint32_t r = 0;
    /* Blocks of 64 rows; of 32 when a block's weights would exceed 16 KiB (cols > 64): measured on
     * Zen 3 with a 384 x 128 product, eight 1.5 KiB-strided streams per column ran at 74 B/ns from
     * L2, four at 92 B/ns (then the four accumulators' FMA latency is the limit). */
    if (cols > 64) {
        for (; r + 32 <= rows; r += 32) {
            block(wt + r, ld, x, bias ? bias + r : bias, y + r, cols, 4, 0, all);
        }
    }
    for (; r + 64 <= rows; r += 64) {
        block(wt + r, ld, x, bias ? bias + r : bias, y + r, cols, 8, 0, all);
    }
    if (r < rows) {
        const uint32_t rem = rows - r, nv = (rem + 7) / 8;
        const int masked = (rem % 8) != 0;
        const __m256i m = masked ? egru_tail_mask(rem % 8) : all;
        const float *b = bias ? bias + r : bias;
        switch (nv) {
            EGRU_TAIL_CASE(1)
            EGRU_TAIL_CASE(2)
            EGRU_TAIL_CASE(3)
            EGRU_TAIL_CASE(4)
            EGRU_TAIL_CASE(5)
            EGRU_TAIL_CASE(6)
            EGRU_TAIL_CASE(7)
        default: block(wt + r, ld, x, b, y + r, cols, 8, 1, m); break;
        }
    }
}
#else
typedef int egru_matvec_t_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
