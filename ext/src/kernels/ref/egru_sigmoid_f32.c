/* egru_sigmoid_f32.c - reference logistic sigmoid (see egru_kernels.h).
 * For x < -88, expf(-x) overflows to +inf and the result is exactly 0, which is the float limit. */
#include <math.h>

#include "../egru_kernels.h"

void egru_sigmoid_f32(float *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        v[i] = 1.0f / (1.0f + expf(-v[i]));
    }
}
