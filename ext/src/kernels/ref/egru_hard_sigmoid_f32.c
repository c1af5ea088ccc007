/* egru_hard_sigmoid_f32.c - reference hard sigmoid (see egru_kernels.h). */
#include "../egru_kernels.h"

void egru_hard_sigmoid_f32(float *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        const float y = v[i] + 3.0f;
        v[i] = (y < 0.0f ? 0.0f : y > 6.0f ? 6.0f : y) / 6.0f;
    }
}
