/* egru_relu_f32.c - reference rectifier (see egru_kernels.h): max(x, 0) with NaN kept, as Keras
 * (TensorFlow's Relu) gives it; -0 becomes +0. */
#include "../egru_kernels.h"

void egru_relu_f32(float *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        v[i] = (v[i] > 0.0f || v[i] != v[i]) ? v[i] : 0.0f;
    }
}
