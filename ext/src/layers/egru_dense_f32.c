/* egru_dense_f32.c - fully connected layer, per step (see egru_layers.h).
 * kernel: (out, in) row-major (output-major, the transpose of Keras' (in, out)). */
#include "../kernels/egru_kernels.h"
#include "egru_layers.h"

void egru_dense_f32(const egru_layer_t *layer, const float *in, uint32_t steps, float *out,
                    int8_t *q)
{
    uint32_t t, n_in = layer->input_dim, n_out = layer->output_dim;
    if (!EGRU_CFG_OP_DENSE) {
        return; /* left out of this build: egru_model_init refused the model */
    }
    if (EGRU_CFG_INT8 && layer->kernel_s8) { /* int8: each step's input quantized on its own */
        for (t = 0; t < steps; ++t) {
            egru_linear_s8(layer->kernels, layer->kernel_s8, layer->kernel_scale,
                           in + (size_t)t * n_in, q, layer->bias, out + (size_t)t * n_out, n_out,
                           n_in);
        }
    } else {
        layer->kernels->matmul_f32(layer->kernel, in, layer->bias, out, steps, n_out, n_in);
    }
    for (t = 0; t < steps; ++t) {
        egru_activate_f32(layer, layer->activation, out + (size_t)t * n_out, n_out);
    }
}
