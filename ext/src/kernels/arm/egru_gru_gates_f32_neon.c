/* egru_gru_gates_f32_neon.c - the element-wise part of one GRU step in one kernel, NEON (same
 * contract as egru_gru_gates_f32; the structure of egru_gru_gates_f32_avx2.c on 4 lanes). Each
 * lane does the reference's single operations in its order, unfused (vmulq/vaddq, never vfmaq),
 * with this set's sigmoid and tanh (egru_sigmoid_neon, egru_tanh_neon), so the result equals the
 * separate passes with egru_sigmoid_f32_neon / egru_tanh_f32_neon bit for bit. The last n % 4
 * lanes go through a zero-padded copy (NEON has no masked loads). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <string.h>

#include "../egru_kernels.h"
#include "egru_neon.h"

void egru_gru_gates_f32_neon(float *x, const float *hp, float *h, uint32_t n, int update);

/* h[0..4) = z * h + (1 - z) * tanh(xh + r * hph) for 4 lanes given as pointers. */
static inline float32x4_t candidate_update(const float *z, const float *r, const float *xh,
                                           const float *hph, const float *h)
{
    const float32x4_t zv = vld1q_f32(z);
    const float32x4_t hh =
        egru_tanh_neon(vaddq_f32(vld1q_f32(xh), vmulq_f32(vld1q_f32(r), vld1q_f32(hph))));
    return vaddq_f32(vmulq_f32(zv, vld1q_f32(h)), vmulq_f32(vsubq_f32(vdupq_n_f32(1.0f), zv), hh));
}

void egru_gru_gates_f32_neon(float *x, const float *hp, float *h, uint32_t n, int update)
{
    uint32_t j = 0;
    for (; j + 4 <= 2 * n; j += 4) { /* z, r = sigmoid(x + hp), into x */
        vst1q_f32(x + j, egru_sigmoid_neon(vaddq_f32(vld1q_f32(x + j), vld1q_f32(hp + j))));
    }
    if (j < 2 * n) {
        float a[4] = {0.0f, 0.0f, 0.0f, 0.0f}, b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        memcpy(a, x + j, (2 * n - j) * sizeof *a);
        memcpy(b, hp + j, (2 * n - j) * sizeof *b);
        vst1q_f32(a, egru_sigmoid_neon(vaddq_f32(vld1q_f32(a), vld1q_f32(b))));
        memcpy(x + j, a, (2 * n - j) * sizeof *a);
    }
    if (!update) {
        return; /* only h is an output */
    }
    for (j = 0; j + 4 <= n; j += 4) {
        vst1q_f32(h + j, candidate_update(x + j, x + n + j, x + 2 * n + j, hp + 2 * n + j, h + j));
    }
    if (j < n) {
        const size_t k = (n - j) * sizeof(float);
        float t[5][4] = {{0.0f}};
        memcpy(t[0], x + j, k);
        memcpy(t[1], x + n + j, k);
        memcpy(t[2], x + 2 * n + j, k);
        memcpy(t[3], hp + 2 * n + j, k);
        memcpy(t[4], h + j, k);
        vst1q_f32(t[4], candidate_update(t[0], t[1], t[2], t[3], t[4]));
        memcpy(h + j, t[4], k);
    }
}
#else
typedef int egru_gru_gates_f32_neon_unused; /* ISO C forbids an empty translation unit */
#endif
