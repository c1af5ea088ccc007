/*
 * egru_kernels.h - the compute kernels the layers are built from.
 *
 * The plain scalar versions in kernels/ref/ are the specification: any optimised kernel keeps
 * exactly these signatures and is tested against them. One op per file, named after the function.
 * All pointers are non-NULL and arrays do not overlap unless a comment says so.
 */
#ifndef EGRU_KERNELS_H
#define EGRU_KERNELS_H

#include <stdint.h>

/* y[r] = bias[r] + sum_c w[r * cols + c] * x[c], for r < rows.
 * w: (rows, cols) row-major; x: (cols); bias: (rows) or NULL for none; y: (rows). */
void egru_matvec_f32(const float *w, const float *x, const float *bias, float *y, uint32_t rows,
                     uint32_t cols);

/* In place, v[i] = 1 / (1 + exp(-v[i])), for i < n. */
void egru_sigmoid_f32(float *v, uint32_t n);

/* In place, v[i] = tanh(v[i]), for i < n. */
void egru_tanh_f32(float *v, uint32_t n);

/* In place, v[i] = max(v[i], 0), for i < n. */
void egru_relu_f32(float *v, uint32_t n);

/* In place, v[i] = min(max(v[i] + 3, 0), 6) / 6 (Keras 3 hard_sigmoid, relu6(x + 3) / 6). */
void egru_hard_sigmoid_f32(float *v, uint32_t n);

/* In place, v[i] = v[i] > 0 ? v[i] : exp(v[i]) - 1 (alpha 1, Keras' elu). */
void egru_elu_f32(float *v, uint32_t n);

/* In place, v[i] = v[i] / (1 + |v[i]|). */
void egru_softsign_f32(float *v, uint32_t n);

/* In place, v[i] = log(1 + exp(v[i])), computed without overflow. */
void egru_softplus_f32(float *v, uint32_t n);

/* In place, v[i] = v[i] > 0 ? v[i] : slope * v[i]. */
void egru_leaky_relu_f32(float *v, uint32_t n, float slope);

/* In place, v = exp(v - max(v)) / sum(exp(v - max(v))), over all n >= 1 elements. */
void egru_softmax_f32(float *v, uint32_t n);

#endif /* EGRU_KERNELS_H */
