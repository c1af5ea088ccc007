/* egru_matmul_t_f32_avx512.c - Y = X . W^T + bias on transposed weights, AVX-512 (same contract
 * as egru_matmul_t_f32). Register blocks of 4 rows of X x 64 outputs (16 accumulators): each
 * loaded weight vector serves four rows of X, each broadcast x value four weight vectors; the last
 * vector of a block is masked when rows is not a multiple of 16. Rows of X left over go through
 * egru_matvec_t_f32_avx512. Each output is the same fused multiply-add chain as
 * egru_matvec_t_f32_avx512 computes for it (the columns in order from 0, then the bias), so Y[i]
 * equals egru_matvec_t_f32_avx512 on X[i] bit for bit, whatever n (egru_kernels.h, "Batch
 * invariance"); only the fused multiply-add rounding differs from the reference
 * (docs/kernels.md). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx512.h"

void egru_matvec_t_f32_avx512(const float *wt, uint32_t ld, const float *x, const float *bias,
                              float *y, uint32_t rows, uint32_t cols);
void egru_matmul_t_f32_avx512(const float *wt, uint32_t ld, const float *x, const float *bias,
                              float *y, uint32_t n, uint32_t rows, uint32_t cols);

/* Four rows of X (stride cols) times outputs [0, 16 * nv) of the block at wt (stride ld) / bias /
 * y (stride rows); with `masked`, the last vector holds only the lanes of m. */
EGRU_AVX512 static inline __attribute__((always_inline)) void
block4(const float *wt, uint32_t ld, const float *x, const float *bias, float *y, uint32_t rows,
       uint32_t cols, const int nv, const int masked, __mmask16 m)
{
    __m512 a[4][4];
    uint32_t c;
    int i, k;
#pragma GCC unroll 16
    for (i = 0; i < 4; ++i) {
#pragma GCC unroll 16
        for (k = 0; k < nv; ++k) {
            a[i][k] = _mm512_setzero_ps();
        }
    }
    for (c = 0; c < cols; ++c) {
        const float *col = wt + (uint64_t)c * ld;
        __m512 wv[4];
#pragma GCC unroll 16
        for (k = 0; k < nv; ++k) {
            wv[k] = (masked && k == nv - 1) ? _mm512_maskz_loadu_ps(m, col + 16 * k)
                                            : _mm512_loadu_ps(col + 16 * k);
        }
#pragma GCC unroll 16
        for (i = 0; i < 4; ++i) {
            const __m512 xc = _mm512_set1_ps(x[(uint64_t)i * cols + c]);
#pragma GCC unroll 16
            for (k = 0; k < nv; ++k) {
                a[i][k] = _mm512_fmadd_ps(wv[k], xc, a[i][k]);
            }
        }
    }
#pragma GCC unroll 16
    for (k = 0; k < nv; ++k) {
        const int part = masked && k == nv - 1;
        const __m512 b = !bias  ? _mm512_setzero_ps()
                         : part ? _mm512_maskz_loadu_ps(m, bias + 16 * k)
                                : _mm512_loadu_ps(bias + 16 * k);
#pragma GCC unroll 16
        for (i = 0; i < 4; ++i) {
            float *yi = y + (uint64_t)i * rows + 16 * k;
            const __m512 v = bias ? _mm512_add_ps(a[i][k], b) : a[i][k];
            if (part) {
                _mm512_mask_storeu_ps(yi, m, v);
            } else {
                _mm512_storeu_ps(yi, v);
            }
        }
    }
}

EGRU_AVX512 void egru_matmul_t_f32_avx512(const float *wt, uint32_t ld, const float *x,
                                          const float *bias, float *y, uint32_t n, uint32_t rows,
                                          uint32_t cols)
{
    const __mmask16 all = egru_mask16(16);
    uint32_t i = 0, r;
    for (; i + 4 <= n; i += 4) {
        const float *xi = x + (uint64_t)i * cols;
        float *yi = y + (uint64_t)i * rows;
        for (r = 0; r + 64 <= rows; r += 64) {
            block4(wt + r, ld, xi, bias ? bias + r : bias, yi + r, rows, cols, 4, 0, all);
        }
        if (r < rows) {
            const uint32_t rem = rows - r;
            const __mmask16 m = (rem % 16) ? egru_mask16(rem % 16) : all;
            const float *b = bias ? bias + r : bias;
            if (rem > 48) {
                block4(wt + r, ld, xi, b, yi + r, rows, cols, 4, 1, m);
            } else if (rem > 32) {
                block4(wt + r, ld, xi, b, yi + r, rows, cols, 3, 1, m);
            } else if (rem > 16) {
                block4(wt + r, ld, xi, b, yi + r, rows, cols, 2, 1, m);
            } else {
                block4(wt + r, ld, xi, b, yi + r, rows, cols, 1, 1, m);
            }
        }
    }
    for (; i < n; ++i) {
        egru_matvec_t_f32_avx512(wt, ld, x + (uint64_t)i * cols, bias, y + (uint64_t)i * rows, rows,
                                 cols);
    }
}
#else
typedef int egru_matmul_t_f32_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
