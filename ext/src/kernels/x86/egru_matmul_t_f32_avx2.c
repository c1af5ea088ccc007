/* egru_matmul_t_f32_avx2.c - Y = X . W^T + bias on transposed weights, AVX2+FMA (same contract as
 * egru_matmul_t_f32). Register blocks of 4 rows of X x 24 outputs (12 accumulators): each loaded
 * weight vector serves four rows of X, each broadcast x value three weight vectors. Rows of X
 * left over go through egru_matvec_t_f32_avx2. Each output is the same fused multiply-add chain
 * as egru_matvec_t_f32_avx2 computes for it (the columns in order from 0, then the bias), so
 * Y[i] equals egru_matvec_t_f32_avx2 on X[i] bit for bit, whatever n (egru_kernels.h, "Batch
 * invariance"); only the fused multiply-add rounding differs from the reference
 * (docs/kernels.md). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_matvec_t_f32_avx2(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t rows, uint32_t cols);
void egru_matmul_t_f32_avx2(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t n, uint32_t rows, uint32_t cols);

/* Four rows of X (stride cols) times outputs [0, 8 * nv) of the block at wt (stride ld) / bias /
 * y (stride rows); with `masked`, the last vector holds only the lanes of m. */
EGRU_AVX2 static inline __attribute__((always_inline)) void
block4(const float *wt, uint32_t ld, const float *x, const float *bias, float *y, uint32_t rows,
       uint32_t cols, const int nv, const int masked, __m256i m)
{
    __m256 a[4][3];
    uint32_t c;
    int i, k;
    for (i = 0; i < 4; ++i) {
        for (k = 0; k < nv; ++k) {
            a[i][k] = _mm256_setzero_ps();
        }
    }
    for (c = 0; c < cols; ++c) {
        const float *col = wt + (uint64_t)c * ld;
        __m256 wv[3];
        for (k = 0; k < nv; ++k) {
            wv[k] = (masked && k == nv - 1) ? _mm256_maskload_ps(col + 8 * k, m)
                                            : _mm256_loadu_ps(col + 8 * k);
        }
        for (i = 0; i < 4; ++i) {
            const __m256 xc = _mm256_broadcast_ss(x + (uint64_t)i * cols + c);
            for (k = 0; k < nv; ++k) {
                a[i][k] = _mm256_fmadd_ps(wv[k], xc, a[i][k]);
            }
        }
    }
    for (k = 0; k < nv; ++k) {
        const int part = masked && k == nv - 1;
        const __m256 b = !bias  ? _mm256_setzero_ps()
                         : part ? _mm256_maskload_ps(bias + 8 * k, m)
                                : _mm256_loadu_ps(bias + 8 * k);
        for (i = 0; i < 4; ++i) {
            float *yi = y + (uint64_t)i * rows + 8 * k;
            const __m256 v = bias ? _mm256_add_ps(a[i][k], b) : a[i][k];
            if (part) {
                _mm256_maskstore_ps(yi, m, v);
            } else {
                _mm256_storeu_ps(yi, v);
            }
        }
    }
}

EGRU_AVX2 void egru_matmul_t_f32_avx2(const float *wt, uint32_t ld, const float *x,
                                      const float *bias, float *y, uint32_t n, uint32_t rows,
                                      uint32_t cols)
{
    const __m256i all = _mm256_set1_epi32(-1);
    uint32_t i = 0, r;
    for (; i + 4 <= n; i += 4) {
        const float *xi = x + (uint64_t)i * cols;
        float *yi = y + (uint64_t)i * rows;
        for (r = 0; r + 24 <= rows; r += 24) {
            block4(wt + r, ld, xi, bias ? bias + r : bias, yi + r, rows, cols, 3, 0, all);
        }
        if (r < rows) {
            const uint32_t rem = rows - r;
            const __m256i m = (rem % 8) ? egru_tail_mask(rem % 8) : all;
            const float *b = bias ? bias + r : bias;
            if (rem > 16) {
                block4(wt + r, ld, xi, b, yi + r, rows, cols, 3, 1, m);
            } else if (rem > 8) {
                block4(wt + r, ld, xi, b, yi + r, rows, cols, 2, 1, m);
            } else {
                block4(wt + r, ld, xi, b, yi + r, rows, cols, 1, 1, m);
            }
        }
    }
    for (; i < n; ++i) {
        egru_matvec_t_f32_avx2(wt, ld, x + (uint64_t)i * cols, bias, y + (uint64_t)i * rows, rows,
                               cols);
    }
}
#else
typedef int egru_matmul_t_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
