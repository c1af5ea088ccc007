/* egru_softsign_f32.c - reference softsign (see egru_kernels.h). */
#include <math.h>

#include "../egru_kernels.h"

void egru_softsign_f32(float *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        v[i] = v[i] / (1.0f + fabsf(v[i]));
    }
}
