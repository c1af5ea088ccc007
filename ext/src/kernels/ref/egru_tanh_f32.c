/* egru_tanh_f32.c - reference hyperbolic tangent (see egru_kernels.h): sign(x) * m / (m + 2)
 * with m = expm1(2|x|) from the portable exp of cortex_m/egru_cortex_m.h (no libm: the same bits
 * on every target), relative accuracy near 0, tanh(-0) = -0, NaN kept, +-inf give +-1. Error
 * bounds: docs/kernels.md. */
#include "../egru_kernels.h"
#include "../cortex_m/egru_cortex_m.h"

void egru_tanh_f32(float *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        v[i] = egru_cm_tanh(v[i]);
    }
}
