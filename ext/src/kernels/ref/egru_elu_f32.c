/* egru_elu_f32.c - reference ELU, alpha 1 (see egru_kernels.h). */
#include <math.h>

#include "../egru_kernels.h"

void egru_elu_f32(float *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        v[i] = v[i] > 0.0f ? v[i] : expm1f(v[i]);
    }
}
