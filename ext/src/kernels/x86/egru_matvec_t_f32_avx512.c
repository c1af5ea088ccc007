/* egru_matvec_t_f32_avx512.c - matrix-vector product on transposed weights, AVX-512 (same contract
 * as egru_matvec_t_f32). Outputs are vectorised: for each input column, x[c] is broadcast and
 * multiplied into up to eight 16-lane accumulators (128 rows) at once, the last vector of a block
 * masked when rows is not a multiple of 16. Each y[r] is one fused multiply-add chain over the
 * columns in the reference's order, starting from 0, then the bias, in whichever block and lane
 * it falls, so a row's result does not depend on rows or on where its block starts
 * (egru_kernels.h, "Batch invariance"); only the fused multiply-add rounding differs from the
 * reference (docs/kernels.md). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx512.h"

void egru_matvec_t_f32_avx512(const float *wt, uint32_t ld, const float *x, const float *bias,
                              float *y, uint32_t rows, uint32_t cols);

/* Rows [0, 16 * nv) of the block starting at wt / bias / y; with `masked`, the last vector holds
 * only the lanes of m. nv and masked are constants at every call, so the loops unroll. */
EGRU_AVX512 static inline __attribute__((always_inline)) void
block(const float *wt, uint32_t ld, const float *x, const float *bias, float *y, uint32_t cols,
      const int nv, const int masked, __mmask16 m)
{
    __m512 a[8];
    uint32_t c;
    int k;
#pragma GCC unroll 16
    for (k = 0; k < nv; ++k) {
        a[k] = _mm512_setzero_ps();
    }
    for (c = 0; c < cols; ++c) {
        const __m512 xc = _mm512_set1_ps(x[c]);
        const float *col = wt + (uint64_t)c * ld;
#pragma GCC unroll 16
        for (k = 0; k < nv; ++k) {
            const __m512 wv = (masked && k == nv - 1) ? _mm512_maskz_loadu_ps(m, col + 16 * k)
                                                      : _mm512_loadu_ps(col + 16 * k);
            a[k] = _mm512_fmadd_ps(wv, xc, a[k]);
        }
    }
#pragma GCC unroll 16
    for (k = 0; k < nv; ++k) {
        if (masked && k == nv - 1) {
            if (bias) {
                a[k] = _mm512_add_ps(a[k], _mm512_maskz_loadu_ps(m, bias + 16 * k));
            }
            _mm512_mask_storeu_ps(y + 16 * k, m, a[k]);
        } else {
            if (bias) {
                a[k] = _mm512_add_ps(a[k], _mm512_loadu_ps(bias + 16 * k));
            }
            _mm512_storeu_ps(y + 16 * k, a[k]);
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

EGRU_AVX512 void egru_matvec_t_f32_avx512(const float *wt, uint32_t ld, const float *x,
                                          const float *bias, float *y, uint32_t rows, uint32_t cols)
{
    uint32_t r = 0;
    for (; r + 128 <= rows; r += 128) {
        block(wt + r, ld, x, bias ? bias + r : bias, y + r, cols, 8, 0, egru_mask16(16));
    }
    if (r < rows) {
        const uint32_t rem = rows - r, nv = (rem + 15) / 16;
        const int masked = (rem % 16) != 0;
        const __mmask16 m = egru_mask16(masked ? rem % 16 : 16);
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
typedef int egru_matvec_t_f32_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
