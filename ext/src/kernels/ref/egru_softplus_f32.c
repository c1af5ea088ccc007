/* egru_softplus_f32.c - reference softplus; for x > 0, x + log1p(exp(-x)) keeps exp() in range (see
 * egru_kernels.h). */
#include <math.h>

#include "../egru_kernels.h"

void egru_softplus_f32(float *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        const float x = v[i];
        v[i] = x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
    }
}
