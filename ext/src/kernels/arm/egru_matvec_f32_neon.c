/* egru_matvec_f32_neon.c - matrix-vector product, NEON (same contract as egru_matvec_f32).
 * Four rows at a time, two 4-lane accumulators per row over 8 columns (eight independent FMA
 * chains), then one more 4-column step, the four horizontal sums done together with pairwise
 * adds; the sums are reordered relative to the reference, so results agree within float
 * rounding (docs/kernels.md). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include "../egru_kernels.h"
#include "egru_neon.h"

void egru_matvec_f32_neon(const float *w, const float *x, const float *bias, float *y,
                          uint32_t rows, uint32_t cols);

static float dot_tail(const float *w, const float *x, uint32_t c, uint32_t cols)
{
    float s = 0.0f;
    for (; c < cols; ++c) {
        s += w[c] * x[c];
    }
    return s;
}

void egru_matvec_f32_neon(const float *w, const float *x, const float *bias, float *y,
                          uint32_t rows, uint32_t cols)
{
    const uint32_t c8 = cols & ~7u, c4 = cols & ~3u;
    uint32_t r = 0, c;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + (uint64_t)r * cols, *w1 = w0 + cols, *w2 = w1 + cols;
        const float *w3 = w2 + cols;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        float32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        float32x4_t s;
        for (c = 0; c < c8; c += 8) {
            const float32x4_t xa = vld1q_f32(x + c), xb = vld1q_f32(x + c + 4);
            a0 = vfmaq_f32(a0, vld1q_f32(w0 + c), xa);
            a1 = vfmaq_f32(a1, vld1q_f32(w1 + c), xa);
            a2 = vfmaq_f32(a2, vld1q_f32(w2 + c), xa);
            a3 = vfmaq_f32(a3, vld1q_f32(w3 + c), xa);
            b0 = vfmaq_f32(b0, vld1q_f32(w0 + c + 4), xb);
            b1 = vfmaq_f32(b1, vld1q_f32(w1 + c + 4), xb);
            b2 = vfmaq_f32(b2, vld1q_f32(w2 + c + 4), xb);
            b3 = vfmaq_f32(b3, vld1q_f32(w3 + c + 4), xb);
        }
        if (c8 < c4) {
            const float32x4_t xa = vld1q_f32(x + c8);
            a0 = vfmaq_f32(a0, vld1q_f32(w0 + c8), xa);
            a1 = vfmaq_f32(a1, vld1q_f32(w1 + c8), xa);
            a2 = vfmaq_f32(a2, vld1q_f32(w2 + c8), xa);
            a3 = vfmaq_f32(a3, vld1q_f32(w3 + c8), xa);
        }
        /* Four horizontal sums at once: pairwise adds leave lanes = rows r, r+1, r+2, r+3. */
        a0 = vaddq_f32(a0, b0);
        a1 = vaddq_f32(a1, b1);
        a2 = vaddq_f32(a2, b2);
        a3 = vaddq_f32(a3, b3);
        s = vpaddq_f32(vpaddq_f32(a0, a1), vpaddq_f32(a2, a3));
        if (c4 < cols) {
            const float t[4] = {dot_tail(w0, x, c4, cols), dot_tail(w1, x, c4, cols),
                                dot_tail(w2, x, c4, cols), dot_tail(w3, x, c4, cols)};
            s = vaddq_f32(s, vld1q_f32(t));
        }
        if (bias) {
            s = vaddq_f32(s, vld1q_f32(bias + r));
        }
        vst1q_f32(y + r, s);
    }
    for (; r < rows; ++r) {
        const float *row = w + (uint64_t)r * cols;
        float32x4_t a = vdupq_n_f32(0.0f);
        for (c = 0; c < c4; c += 4) {
            a = vfmaq_f32(a, vld1q_f32(row + c), vld1q_f32(x + c));
        }
        {
            const float s = vaddvq_f32(a) + dot_tail(row, x, c4, cols);
            y[r] = bias ? s + bias[r] : s;
        }
    }
}
#else
typedef int egru_matvec_f32_neon_unused; /* ISO C forbids an empty translation unit */
#endif
