/* egru_gru_gates_f32_avx512.c - the element-wise part of one GRU step in one kernel, AVX-512 (same
 * contract as egru_gru_gates_f32; the structure of egru_gru_gates_f32_avx2.c on 16 lanes). Each
 * lane does the reference's single operations in its order, unfused, with this set's sigmoid and
 * tanh (egru_sigmoid512, egru_tanh512), so the result equals the separate passes with
 * egru_sigmoid_f32_avx512 / egru_tanh_f32_avx512 bit for bit. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx512.h"

void egru_gru_gates_f32_avx512(float *x, const float *hp, float *h, uint32_t n, int update);

/* hh = tanh(xh + r * hph); h = z * h + (1 - z) * hh for the lanes of m from j. */
EGRU_AVX512 static inline __attribute__((always_inline)) void
candidate_update(const float *x, const float *hp, float *h, uint32_t n, uint32_t j, __mmask16 m)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 z = _mm512_maskz_loadu_ps(m, x + j), r = _mm512_maskz_loadu_ps(m, x + n + j);
    const __m512 hh =
        egru_tanh512(_mm512_add_ps(_mm512_maskz_loadu_ps(m, x + 2 * n + j),
                                   _mm512_mul_ps(r, _mm512_maskz_loadu_ps(m, hp + 2 * n + j))));
    const __m512 hn = _mm512_add_ps(_mm512_mul_ps(z, _mm512_maskz_loadu_ps(m, h + j)),
                                    _mm512_mul_ps(_mm512_sub_ps(one, z), hh));
    _mm512_mask_storeu_ps(h + j, m, hn);
}

/* Two passes over independent vectors (z and r, then candidate and update), as in the AVX2
 * version: a per-vector sigmoid -> tanh -> update chain keeps too few vectors in flight. */
EGRU_AVX512 void egru_gru_gates_f32_avx512(float *x, const float *hp, float *h, uint32_t n,
                                           int update)
{
    uint32_t j = 0;
    for (; j + 16 <= 2 * n; j += 16) { /* z, r = sigmoid(x + hp), into x */
        const __m512 a = _mm512_add_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(hp + j));
        _mm512_storeu_ps(x + j, egru_sigmoid512(a));
    }
    if (j < 2 * n) {
        const __mmask16 m = egru_mask16(2 * n - j);
        const __m512 a =
            _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + j), _mm512_maskz_loadu_ps(m, hp + j));
        _mm512_mask_storeu_ps(x + j, m, egru_sigmoid512(a));
    }
    if (!update) {
        return; /* only h is an output */
    }
    for (j = 0; j < n; j += 16) {
        candidate_update(x, hp, h, n, j, egru_mask16(n - j < 16 ? n - j : 16));
    }
}
#else
typedef int egru_gru_gates_f32_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
