/* egru_sigmoid_f32.c - reference logistic sigmoid (see egru_kernels.h): 1 / (1 + exp(-x)) with
 * the portable exp of cortex_m/egru_cortex_m.h (a Cephes-style polynomial, single IEEE
 * operations in a fixed order, no libm), so that the reference gives the same bits on every
 * target (glibc's and newlib's expf differ by an ulp here and there); exactly 0 below about
 * -88.4, 1 from about 17, NaN kept. Error bounds: docs/kernels.md. */
#include "../egru_kernels.h"
#include "../cortex_m/egru_cortex_m.h"

void egru_sigmoid_f32(float *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        v[i] = egru_cm_sigmoid(v[i]);
    }
}
