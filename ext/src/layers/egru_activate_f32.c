/* egru_activate_f32.c - elementwise activation dispatch (see egru_layers.h). */
#include "../kernels/egru_kernels.h"
#include "egru_layers.h"

void egru_activate_f32(egru_act_t act, float *v, uint32_t n)
{
    switch (act) {
    case EGRU_ACT_RELU: egru_relu_f32(v, n); break;
    case EGRU_ACT_SIGMOID: egru_sigmoid_f32(v, n); break;
    case EGRU_ACT_TANH: egru_tanh_f32(v, n); break;
    case EGRU_ACT_SOFTMAX: egru_softmax_f32(v, n); break;
    case EGRU_ACT_LINEAR: break;
    }
}
