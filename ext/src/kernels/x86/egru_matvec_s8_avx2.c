/* egru_matvec_s8_avx2.c - int8 matrix-vector product, AVX2 (same contract as egru_matvec_s8, bit
 * for bit: the int32 sums are exact in any order, and the float scaling is the reference's
 * multiply, multiply, add, unfused).
 *
 * 32 columns at a time: vpsignb moves the sign of x onto w so that vpmaddubsw can multiply
 * |x| (unsigned, <= 127) by w * sign(x) (signed); each int16 pair sum is at most 2 * 127 * 127 =
 * 32258, so it never saturates; vpmaddwd by ones widens to int32. Eight rows at a time share
 * each 32-column chunk of x (eight accumulators in registers), their sums reduced together. A
 * row's last cols % 32 columns go through a zero-padded copy, so no load reads past the matrix. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <string.h>

#include "../egru_kernels.h"
#include "egru_avx2.h"

void egru_matvec_s8_avx2(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                         const float *bias, float *y, uint32_t rows, uint32_t cols);

/* sum over 32 products of w and x (int8), as 8 int32 partial sums, added to acc. */
EGRU_AVX2 static inline __m256i dot32(__m256i acc, __m256i wv, __m256i ax, __m256i xs)
{
    const __m256i prod = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv, xs));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(prod, _mm256_set1_epi16(1)));
}

/* The 8 int32 lanes of each of a0..a7 summed: lane k of the result = sum of a_k. */
EGRU_AVX2 static inline __m256i hsum8_epi32(__m256i a0, __m256i a1, __m256i a2, __m256i a3,
                                            __m256i a4, __m256i a5, __m256i a6, __m256i a7)
{
    const __m256i b0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    const __m256i b1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a4, a5), _mm256_hadd_epi32(a6, a7));
    return _mm256_add_epi32(_mm256_permute2x128_si256(b0, b1, 0x20),
                            _mm256_permute2x128_si256(b0, b1, 0x31));
}

/* One row's products over the columns, as 8 int32 partial sums (rows left over from the blocks
 * of eight). xst / axt: the zero-padded tail chunk of x and |x| when cols % 32. */
EGRU_AVX2 static __m256i row_sums(const int8_t *row, const int8_t *xq, uint32_t chunks,
                                  uint32_t tail, __m256i xst, __m256i axt)
{
    __m256i acc = _mm256_setzero_si256();
    uint32_t c;
    for (c = 0; c < chunks; ++c) {
        const __m256i xs = _mm256_loadu_si256((const __m256i *)(const void *)(xq + 32 * c));
        acc = dot32(acc, _mm256_loadu_si256((const __m256i *)(const void *)(row + 32 * c)),
                    _mm256_sign_epi8(xs, xs), xs);
    }
    if (tail) {
        int8_t wt[32] = {0};
        memcpy(wt, row + 32 * chunks, tail);
        acc = dot32(acc, _mm256_loadu_si256((const __m256i *)(const void *)wt), axt, xst);
    }
    return acc;
}

/* y[r] for the 8 lanes of the int32 sums s (rows r..r+7): the reference's unfused float steps. */
EGRU_AVX2 static inline void scale_store8(__m256i s, const float *scale, float sx,
                                          const float *bias, float *y)
{
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(s),
                             _mm256_mul_ps(_mm256_loadu_ps(scale), _mm256_set1_ps(sx)));
    if (bias) {
        v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
    }
    _mm256_storeu_ps(y, v);
}

EGRU_AVX2 void egru_matvec_s8_avx2(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                                   const float *bias, float *y, uint32_t rows, uint32_t cols)
{
    const uint32_t chunks = cols / 32, tail = cols % 32;
    __m256i xst = _mm256_setzero_si256(), axt = xst;
    uint32_t r = 0, c, k;
    if (tail) {
        int8_t xt[32] = {0};
        memcpy(xt, xq + 32 * chunks, tail);
        xst = _mm256_loadu_si256((const __m256i *)(const void *)xt);
        axt = _mm256_sign_epi8(xst, xst);
    }
    for (; r + 8 <= rows; r += 8) { /* eight rows share each chunk of x */
        const int8_t *w0 = w + (uint64_t)r * cols;
        __m256i a[8];
        for (k = 0; k < 8; ++k) {
            a[k] = _mm256_setzero_si256();
        }
        for (c = 0; c < chunks; ++c) {
            const __m256i xs = _mm256_loadu_si256((const __m256i *)(const void *)(xq + 32 * c));
            const __m256i ax = _mm256_sign_epi8(xs, xs);
            for (k = 0; k < 8; ++k) {
                const int8_t *p = w0 + (uint64_t)k * cols + 32 * c;
                a[k] = dot32(a[k], _mm256_loadu_si256((const __m256i *)(const void *)p), ax, xs);
            }
        }
        if (tail) {
            for (k = 0; k < 8; ++k) {
                int8_t wt[32] = {0};
                memcpy(wt, w0 + (uint64_t)k * cols + 32 * chunks, tail);
                a[k] = dot32(a[k], _mm256_loadu_si256((const __m256i *)(const void *)wt), axt, xst);
            }
        }
        scale_store8(hsum8_epi32(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]), scale + r, sx,
                     bias ? bias + r : bias, y + r);
    }
    for (; r < rows; ++r) {
        const __m256i s = row_sums(w + (uint64_t)r * cols, xq, chunks, tail, xst, axt);
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        float t;
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
        t = (float)_mm_cvtsi128_si32(h) * (scale[r] * sx);
        y[r] = bias ? t + bias[r] : t;
    }
}
#else
typedef int egru_matvec_s8_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
