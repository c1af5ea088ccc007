/* egru_softmax_f32.c - reference softmax over one vector (see egru_kernels.h).
 * Subtracting the maximum first keeps expf() in range; the largest term is exactly 1. */
#include <math.h>

#include "../egru_kernels.h"

void egru_softmax_f32(float *v, uint32_t n)
{
    uint32_t i;
    float max = v[0], sum = 0.0f;
    for (i = 1; i < n; ++i) {
        max = v[i] > max ? v[i] : max;
    }
    for (i = 0; i < n; ++i) {
        v[i] = expf(v[i] - max);
        sum += v[i];
    }
    for (i = 0; i < n; ++i) {
        v[i] /= sum;
    }
}
