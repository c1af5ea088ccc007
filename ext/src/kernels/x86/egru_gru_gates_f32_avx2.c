/* egru_gru_gates_f32_avx2.c - the element-wise part of one GRU step in one pass, AVX2+FMA (same
 * contract as egru_gru_gates_f32). Each lane does the reference's single operations in its order
 * (products and sums unfused) with this set's sigmoid and tanh (egru_sigmoid256, egru_tanh256),
 * so the result equals the unfused path with egru_sigmoid_f32_avx2 / egru_tanh_f32_avx2 bit for
 * bit; what it saves is four passes over the gates and three calls per row and step. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_gru_gates_f32_avx2(float *x, const float *hp, float *h, uint32_t n, int update);

/* hh = tanh(xh + r * hph); h = z * h + (1 - z) * hh, for lanes [j, j + 8) (those of m when
 * masked; a masked load does not take its value from a pending store, so only the tail is). */
EGRU_AVX2 static inline __attribute__((always_inline)) void
candidate_update(const float *x, const float *hp, float *h, uint32_t n, uint32_t j,
                 const int masked, __m256i m)
{
#define EGRU_LOAD(p) (masked ? _mm256_maskload_ps((p), m) : _mm256_loadu_ps(p))
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 z = EGRU_LOAD(x + j), r = EGRU_LOAD(x + n + j);
    const __m256 hh = egru_tanh256(
        _mm256_add_ps(EGRU_LOAD(x + 2 * n + j), _mm256_mul_ps(r, EGRU_LOAD(hp + 2 * n + j))));
    const __m256 hn =
        _mm256_add_ps(_mm256_mul_ps(z, EGRU_LOAD(h + j)), _mm256_mul_ps(_mm256_sub_ps(one, z), hh));
#undef EGRU_LOAD
    if (masked) {
        _mm256_maskstore_ps(h + j, m, hn);
    } else {
        _mm256_storeu_ps(h + j, hn);
    }
}

/* Two passes, each over independent vectors: z and r first (2n lanes), then the candidate and
 * the update. One pass doing a vector's sigmoid -> tanh -> update chain (about 150 cycles of
 * latency, 100 instructions) keeps only two or three vectors in flight in the out-of-order window;
 * measured on Zen 3 with n = 64, the two passes take half the time. */
EGRU_AVX2 void egru_gru_gates_f32_avx2(float *x, const float *hp, float *h, uint32_t n, int update)
{
    uint32_t j = 0;
    for (; j + 8 <= 2 * n; j += 8) { /* z, r = sigmoid(x + hp), into x */
        const __m256 a = _mm256_add_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(hp + j));
        _mm256_storeu_ps(x + j, egru_sigmoid256(a));
    }
    if (j < 2 * n) {
        const __m256i m = egru_tail_mask(2 * n - j);
        const __m256 a = _mm256_add_ps(_mm256_maskload_ps(x + j, m), _mm256_maskload_ps(hp + j, m));
        _mm256_maskstore_ps(x + j, m, egru_sigmoid256(a));
    }
    if (!update) {
        return; /* only h is an output */
    }
    for (j = 0; j + 8 <= n; j += 8) { /* unmasked: loads of z, r forward from the stores above */
        candidate_update(x, hp, h, n, j, 0, _mm256_set1_epi32(-1));
    }
    if (j < n) {
        candidate_update(x, hp, h, n, j, 1, egru_tail_mask(n - j));
    }
}
#else
typedef int egru_gru_gates_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
