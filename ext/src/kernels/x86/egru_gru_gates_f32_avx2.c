/* egru_gru_gates_f32_avx2.c - the element-wise part of one GRU step in one pass, AVX2+FMA (same
 * contract as egru_gru_gates_f32). Each lane does the reference's single operations in its order
 * (products and sums unfused) with this set's sigmoid and tanh (egru_sigmoid256, egru_tanh256),
 * so the result equals the unfused path with egru_sigmoid_f32_avx2 / egru_tanh_f32_avx2 bit for
 * bit; what it saves is four passes over the gates and three calls per row and step. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_gru_gates_f32_avx2(float *x, const float *hp, float *h, uint32_t n, int update);

/* Lanes [j, j + 8) (those of m when masked). x is scratch: only h is written. */
EGRU_AVX2 static inline __attribute__((always_inline)) void gates8(const float *x, const float *hp,
                                                                   float *h, uint32_t n, uint32_t j,
                                                                   int update, const int masked,
                                                                   __m256i m)
{
#define EGRU_LOAD(p) (masked ? _mm256_maskload_ps((p), m) : _mm256_loadu_ps(p))
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 z = egru_sigmoid256(_mm256_add_ps(EGRU_LOAD(x + j), EGRU_LOAD(hp + j)));
    const __m256 r = egru_sigmoid256(_mm256_add_ps(EGRU_LOAD(x + n + j), EGRU_LOAD(hp + n + j)));
    const __m256 hh = egru_tanh256(
        _mm256_add_ps(EGRU_LOAD(x + 2 * n + j), _mm256_mul_ps(r, EGRU_LOAD(hp + 2 * n + j))));
    if (update) {
        const __m256 hn = _mm256_add_ps(_mm256_mul_ps(z, EGRU_LOAD(h + j)),
                                        _mm256_mul_ps(_mm256_sub_ps(one, z), hh));
        if (masked) {
            _mm256_maskstore_ps(h + j, m, hn);
        } else {
            _mm256_storeu_ps(h + j, hn);
        }
    }
#undef EGRU_LOAD
}

EGRU_AVX2 void egru_gru_gates_f32_avx2(float *x, const float *hp, float *h, uint32_t n, int update)
{
    const __m256i all = _mm256_set1_epi32(-1);
    uint32_t j = 0;
    for (; j + 8 <= n; j += 8) {
        gates8(x, hp, h, n, j, update, 0, all);
    }
    if (j < n) {
        gates8(x, hp, h, n, j, update, 1, egru_tail_mask(n - j));
    }
}
#else
typedef int egru_gru_gates_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
