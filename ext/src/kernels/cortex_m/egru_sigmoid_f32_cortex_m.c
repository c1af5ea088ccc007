/* egru_sigmoid_f32_cortex_m.c - logistic sigmoid for Cortex-M (same contract as egru_sigmoid_f32):
 * 1 / (1 + exp(-x)) with the Cephes-style exp of egru_cortex_m.h and an exact division, no libm;
 * within the bounds of docs/kernels.md ("Cortex-M"); NaN kept, sigmoid(+inf) = 1,
 * sigmoid(-inf) = 0. Scalar, so an element's result does not depend on where it sits. */
#include "../egru_kernels.h"
#include "egru_cortex_m.h"

/* The out-of-line egru_cm_sigmoid (egru_cortex_m.h): this kernel's loop and the rare path of the
 * fused GRU gates (egru_gru_gates_f32_cortex_m, which inlines the common one). Kept out of line so
 * a firmware holds it once. */
float egru_cm_sigmoid_clamped(float x)
{
    return egru_cm_sigmoid(x);
}

void egru_sigmoid_f32_cortex_m(float *v, uint32_t n)
{
    egru_cm_consts_t k = EGRU_CM_CONSTS;
    uint32_t i;
    egru_cm_pin(&k);
    for (i = 0; i < n; ++i) {
        v[i] = egru_cm_sigmoid_fast(v[i], &k);
    }
}
