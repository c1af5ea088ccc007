/* egru_kernel_set_avx2.c - the AVX2+FMA kernel set and its run-time CPU check (see
 * egru_kernels.h). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <stddef.h>

#include "../egru_kernels.h"

void egru_matvec_f32_avx2(const float *w, const float *x, const float *bias, float *y,
                          uint32_t rows, uint32_t cols);
void egru_matmul_f32_avx2(const float *w, const float *x, const float *bias, float *y, uint32_t n,
                          uint32_t rows, uint32_t cols);
void egru_sigmoid_f32_avx2(float *v, uint32_t n);
void egru_tanh_f32_avx2(float *v, uint32_t n);
void egru_matvec_t_f32_avx2(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t rows, uint32_t cols);
void egru_matmul_t_f32_avx2(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t n, uint32_t rows, uint32_t cols);
float egru_quantize_s8_avx2(const float *x, int8_t *q, uint32_t n);
void egru_matvec_s8_avx2(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                         const float *bias, float *y, uint32_t rows, uint32_t cols);
void egru_gru_gates_f32_avx2(float *x, const float *hp, float *h, uint32_t n, int update);
/* The int16x8 product (EGRU_MATVEC_S8_S16's pattern: NULL when the build leaves int16x8 out). */
#if EGRU_CFG_INT16X8
void egru_matvec_s8_s16_avx2(const int8_t *w, const int16_t *x, const int32_t *m, const int32_t *n,
                             const int32_t *bias, int32_t *g, uint32_t rows, uint32_t cols);
#define EGRU_MATVEC_S8_S16_AVX2 egru_matvec_s8_s16_avx2
#else
#define EGRU_MATVEC_S8_S16_AVX2 NULL
#endif

static const egru_kernel_set_t avx2_set = {"avx2",
                                           egru_matvec_f32_avx2,
                                           egru_matmul_f32_avx2,
                                           egru_sigmoid_f32_avx2,
                                           egru_tanh_f32_avx2,
                                           egru_matvec_t_f32_avx2,
                                           egru_matmul_t_f32_avx2,
                                           egru_quantize_s8_avx2,
                                           egru_matvec_s8_avx2,
                                           egru_gru_gates_f32_avx2,
                                           EGRU_MATVEC_S8_S16_AVX2,
                                           NULL};

const egru_kernel_set_t *egru_kernels_avx2(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return &avx2_set;
    }
    return NULL;
}
#else
typedef int egru_kernel_set_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
