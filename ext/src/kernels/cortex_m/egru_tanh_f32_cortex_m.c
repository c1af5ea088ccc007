/* egru_tanh_f32_cortex_m.c - hyperbolic tangent for Cortex-M (same contract as egru_tanh_f32):
 * sign(x) * m / (m + 2) with m = expm1(2|x|) (egru_cortex_m.h), relative accuracy near 0, no
 * libm; within the bounds of docs/kernels.md ("Cortex-M"); NaN kept, +-inf give +-1,
 * tanh(-0) = -0. Scalar, so an element's result does not depend on where it sits. */
#include "../egru_kernels.h"
#include "egru_cortex_m.h"

void egru_tanh_f32_cortex_m(float *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        v[i] = egru_cm_tanh(v[i]);
    }
}
