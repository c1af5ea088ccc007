/* egru_gru_gates_f32.c - reference element-wise part of one GRU step, reset_after with the
 * default activations (see egru_kernels.h): the specification of every set's fused version. */
#include "../egru_kernels.h"

void egru_gru_gates_f32(float *x, const float *hp, float *h, uint32_t n, int update)
{
    uint32_t j;
    for (j = 0; j < 2 * n; ++j) {
        x[j] += hp[j]; /* z and r pre-activations */
    }
    egru_sigmoid_f32(x, 2 * n);
    for (j = 0; j < n; ++j) {
        x[2 * n + j] += x[n + j] * hp[2 * n + j]; /* xh + r * (R_h . h + c_h) */
    }
    egru_tanh_f32(x + 2 * n, n);
    if (update) {
        for (j = 0; j < n; ++j) {
            h[j] = x[j] * h[j] + (1.0f - x[j]) * x[2 * n + j];
        }
    }
}
