/* egru_matvec_s8_s16.c - the int16x8 product into G, reference kernel (docs/quantization.md,
 * "Products"; edgegru.int16x8.Product):
 *
 *     g[i] = satG(mul(sum_j w[i][j] * x[j], (m[i], n[i])) + bias[i]),   i < rows
 *
 * w: (rows, cols) int8 row-major, values in [-127, 127]; x: cols int16 in [-32767, 32767];
 * m, n, bias: rows int32 each (a valid multiplier per row, |bias| <= 2^30); g: rows int32.
 * The sum is exact: int32 over blocks of at most EGRU_Q16_INT32_COLS columns (127 * 32767 * 516
 * < 2^31), added in int64 (|sum| < 2^39 for cols <= EGRU_S8_MAX_COLS). Any order gives the same
 * sum, so every kernel set is bit-exact with this one. Integer operations only. */
#include "../egru_kernels.h"

#if EGRU_CFG_INT16X8
#include "../../int16x8/egru_q16.h"

void egru_matvec_s8_s16(const int8_t *w, const int16_t *x, const int32_t *m, const int32_t *n,
                        const int32_t *bias, int32_t *g, uint32_t rows, uint32_t cols)
{
    uint32_t i, j, j0;
    for (i = 0; i < rows; ++i) {
        const int8_t *row = w + (size_t)i * cols;
        int64_t acc = 0;
        for (j0 = 0; j0 < cols; j0 += EGRU_Q16_INT32_COLS) {
            const uint32_t end = cols - j0 < EGRU_Q16_INT32_COLS ? cols : j0 + EGRU_Q16_INT32_COLS;
            int32_t part = 0;
            for (j = j0; j < end; ++j) {
                part += (int32_t)row[j] * x[j];
            }
            acc += part;
        }
        g[i] = egru_q16_sat_g(egru_q16_mul(acc, m[i], (uint32_t)n[i]) + bias[i]);
    }
}
#endif
