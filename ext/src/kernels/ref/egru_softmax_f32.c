/* egru_softmax_f32.c - reference softmax over one vector (see egru_kernels.h).
 * Subtracting the maximum first keeps every exponent <= 0; the largest term is exactly 1. exp is
 * the portable one of cortex_m/egru_cortex_m.h (no libm, the same bits on every target; relative
 * error below 2.5e-7); a term below e^-87.3 of the largest (and -inf) is 0, below float resolution
 * of the sum. A NaN or +inf anywhere gives NaN. */
#include "../egru_kernels.h"
#include "../cortex_m/egru_cortex_m.h"

void egru_softmax_f32(float *v, uint32_t n)
{
    uint32_t i;
    float max = v[0], sum = 0.0f;
    for (i = 1; i < n; ++i) {
        max = v[i] > max ? v[i] : max;
    }
    for (i = 0; i < n; ++i) {
        float p2n;
        const float d = v[i] - max;
        const float m = egru_cm_expm1_core(d, -87.3f, 0.0f, &p2n);
        v[i] = d < -87.3f ? 0.0f : (m + 1.0f) * p2n; /* (a NaN d stays NaN) */
        sum += v[i];
    }
    for (i = 0; i < n; ++i) {
        v[i] /= sum;
    }
}
