/* egru_tanh_f32.c - reference hyperbolic tangent (see egru_kernels.h). */
#include <math.h>

#include "../egru_kernels.h"

void egru_tanh_f32(float *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        v[i] = tanhf(v[i]);
    }
}
