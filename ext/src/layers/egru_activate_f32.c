/* egru_activate_f32.c - activation dispatch and float parameters (see egru_layers.h). */
#include <string.h>

#include "../kernels/egru_kernels.h"
#include "egru_layers.h"

/* Keras' leaky_relu default negative slope (the string activation "leaky_relu"). */
#define EGRU_LEAKY_RELU_SLOPE 0.2f

void egru_activate_f32(const egru_layer_t *layer, egru_act_t act, float *v, uint32_t n)
{
    const egru_kernel_set_t *k = layer->kernels ? layer->kernels : egru_kernels_ref();
    /* An activation left out of the build (egru_features.h) is never called: egru_model_init
     * refused every model that names it. Its case is dead code, so the kernel and whatever libm
     * routine it needs (expm1f, log1pf, expf) are not referenced. */
    switch (act) {
    case EGRU_ACT_LINEAR: break;
    case EGRU_ACT_RELU:
        if (EGRU_CFG_ACT_RELU) {
            egru_relu_f32(v, n);
        }
        break;
    case EGRU_ACT_SIGMOID:
        if (EGRU_CFG_ACT_SIGMOID) {
            k->sigmoid_f32(v, n);
        }
        break;
    case EGRU_ACT_TANH:
        if (EGRU_CFG_ACT_TANH) {
            k->tanh_f32(v, n);
        }
        break;
    case EGRU_ACT_SOFTMAX:
        if (EGRU_CFG_ACT_SOFTMAX) {
            egru_softmax_f32(v, n);
        }
        break;
    case EGRU_ACT_HARD_SIGMOID:
        if (EGRU_CFG_ACT_HARD_SIGMOID) {
            egru_hard_sigmoid_f32(v, n);
        }
        break;
    case EGRU_ACT_ELU:
        if (EGRU_CFG_ACT_ELU) {
            egru_elu_f32(v, n);
        }
        break;
    case EGRU_ACT_SOFTSIGN:
        if (EGRU_CFG_ACT_SOFTSIGN) {
            egru_softsign_f32(v, n);
        }
        break;
    case EGRU_ACT_SOFTPLUS:
        if (EGRU_CFG_ACT_SOFTPLUS) {
            egru_softplus_f32(v, n);
        }
        break;
    case EGRU_ACT_LEAKY_RELU:
        if (EGRU_CFG_ACT_LEAKY_RELU) {
            egru_leaky_relu_f32(v, n, EGRU_LEAKY_RELU_SLOPE);
        }
        break;
    }
}

float egru_param_f32(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
