/* egru_kernel_set_avx512.c - the AVX-512 kernel set and its run-time CPU check (see
 * egru_kernels.h). The set needs AVX-512 F, BW and VL and FMA (every AVX-512 CPU since Skylake-SP;
 * __builtin_cpu_supports also checks that the OS saves the 512-bit state); its int8 product uses
 * vpdpbusd when the CPU also has AVX-512 VNNI, with identical results.
 *
 * With EGRU_AVX512_EMULATED (the SIMDe test build, egru_avx512.h) the set is returned without a
 * CPU check, with the VNNI product (SIMDe emulates vpdpbusd too); the test builds the other
 * variant from egru_matvec_s8_avx512. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <stddef.h>

#include "../egru_kernels.h"

void egru_matvec_f32_avx512(const float *w, const float *x, const float *bias, float *y,
                            uint32_t rows, uint32_t cols);
void egru_matmul_f32_avx512(const float *w, const float *x, const float *bias, float *y, uint32_t n,
                            uint32_t rows, uint32_t cols);
void egru_sigmoid_f32_avx512(float *v, uint32_t n);
void egru_tanh_f32_avx512(float *v, uint32_t n);
void egru_matvec_t_f32_avx512(const float *wt, uint32_t ld, const float *x, const float *bias,
                              float *y, uint32_t rows, uint32_t cols);
void egru_matmul_t_f32_avx512(const float *wt, uint32_t ld, const float *x, const float *bias,
                              float *y, uint32_t n, uint32_t rows, uint32_t cols);
float egru_quantize_s8_avx512(const float *x, int8_t *q, uint32_t n);
void egru_matvec_s8_avx512(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                           const float *bias, float *y, uint32_t rows, uint32_t cols);
void egru_matvec_s8_avx512_vnni(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                                const float *bias, float *y, uint32_t rows, uint32_t cols);
void egru_matvec_s8_sums_avx512_vnni(const int8_t *w, const int32_t *sums, const float *scale,
                                     const int8_t *xq, float sx, const float *bias, float *y,
                                     uint32_t rows, uint32_t cols);
void egru_gru_gates_f32_avx512(float *x, const float *hp, float *h, uint32_t n, int update);
/* The int16x8 product (EGRU_MATVEC_S8_S16's pattern: NULL when the build leaves int16x8 out). */
#if EGRU_CFG_INT16X8
void egru_matvec_s8_s16_avx512(const int8_t *w, const int16_t *x, const int32_t *m,
                               const int32_t *n, const int32_t *bias, int32_t *g, uint32_t rows,
                               uint32_t cols);
#define EGRU_MATVEC_S8_S16_AVX512 egru_matvec_s8_s16_avx512
#else
#define EGRU_MATVEC_S8_S16_AVX512 NULL
#endif
int egru_avx512_has_vnni(void);

static const egru_kernel_set_t avx512_set = {"avx512",
                                             egru_matvec_f32_avx512,
                                             egru_matmul_f32_avx512,
                                             egru_sigmoid_f32_avx512,
                                             egru_tanh_f32_avx512,
                                             egru_matvec_t_f32_avx512,
                                             egru_matmul_t_f32_avx512,
                                             egru_quantize_s8_avx512,
                                             egru_matvec_s8_avx512,
                                             egru_gru_gates_f32_avx512,
                                             EGRU_MATVEC_S8_S16_AVX512,
                                             NULL};

static const egru_kernel_set_t avx512_vnni_set = {"avx512",
                                                  egru_matvec_f32_avx512,
                                                  egru_matmul_f32_avx512,
                                                  egru_sigmoid_f32_avx512,
                                                  egru_tanh_f32_avx512,
                                                  egru_matvec_t_f32_avx512,
                                                  egru_matmul_t_f32_avx512,
                                                  egru_quantize_s8_avx512,
                                                  egru_matvec_s8_avx512_vnni,
                                                  egru_gru_gates_f32_avx512,
                                                  EGRU_MATVEC_S8_S16_AVX512,
                                                  egru_matvec_s8_sums_avx512_vnni};

/* 1 when the CPU has AVX-512 VNNI (vpdpbusd), else 0 (1 in the emulated build). */
int egru_avx512_has_vnni(void)
{
#ifdef EGRU_AVX512_EMULATED
    return 1;
#else
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") != 0;
#endif
}

const egru_kernel_set_t *egru_kernels_avx512(void)
{
#ifndef EGRU_AVX512_EMULATED
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))) {
        return NULL;
    }
#endif
    return egru_avx512_has_vnni() ? &avx512_vnni_set : &avx512_set;
}
#else
typedef int egru_kernel_set_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
