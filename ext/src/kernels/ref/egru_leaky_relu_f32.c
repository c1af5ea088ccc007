/* egru_leaky_relu_f32.c - reference leaky rectifier (see egru_kernels.h). */
#include "../egru_kernels.h"

void egru_leaky_relu_f32(float *v, uint32_t n, float slope)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        v[i] = v[i] > 0.0f ? v[i] : slope * v[i];
    }
}
