/* egru_tanh_f32_cortex_m.c - hyperbolic tangent for Cortex-M (same contract as egru_tanh_f32):
 * sign(x) * m / (m + 2) with m = expm1(2|x|) (egru_cortex_m.h), relative accuracy near 0, no
 * libm; within the bounds of docs/kernels.md ("Cortex-M"); NaN kept, +-inf give +-1,
 * tanh(-0) = -0. Scalar, so an element's result does not depend on where it sits. */
#include "../egru_kernels.h"
#include "egru_cortex_m.h"

/* The out-of-line egru_cm_tanh (egru_cortex_m.h): this kernel's loop and the rare path of the
 * fused GRU gates (egru_gru_gates_f32_cortex_m, which inlines the common one). Kept out of line so
 * a firmware holds it once. */
float egru_cm_tanh_clamped(float x)
{
    return egru_cm_tanh(x);
}

void egru_tanh_f32_cortex_m(float *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        v[i] = egru_cm_tanh_clamped(v[i]);
    }
}
