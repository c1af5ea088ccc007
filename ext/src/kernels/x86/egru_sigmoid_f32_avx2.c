/* egru_sigmoid_f32_avx2.c - logistic sigmoid, AVX2+FMA: 1 / (1 + exp(-x)) with egru_exp256 and an
 * exact division; |error| <= 3e-7 absolute, <= 2.5e-7 relative where the result is a normal
 * float (docs/kernels.md); NaN kept. The last, partial vector is masked, so every element gets
 * the same formula wherever it sits (the fused GRU gates kernel relies on that). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_sigmoid_f32_avx2(float *v, uint32_t n);

EGRU_AVX2 void egru_sigmoid_f32_avx2(float *v, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(v + i, egru_sigmoid256(_mm256_loadu_ps(v + i)));
    }
    if (i < n) {
        const __m256i m = egru_tail_mask(n - i);
        _mm256_maskstore_ps(v + i, m, egru_sigmoid256(_mm256_maskload_ps(v + i, m)));
    }
}
#else
typedef int egru_sigmoid_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
