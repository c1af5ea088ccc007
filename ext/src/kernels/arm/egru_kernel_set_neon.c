/* egru_kernel_set_neon.c - the NEON kernel set (see egru_kernels.h). Advanced SIMD is part of
 * the AArch64 base architecture, so an aarch64 build always returns the set; other builds get
 * the NULL fallback in egru_kernel_sets.c. The int8 product uses the Armv8.2 dot-product
 * instruction when the CPU has it (checked at run time on Linux), with identical results. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#if defined(__linux__)
#include <stddef.h>
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1ul << 20) /* the Linux arm64 hwcap bit, for older headers */
#endif
#endif

#include "../egru_kernels.h"

void egru_matvec_f32_neon(const float *w, const float *x, const float *bias, float *y,
                          uint32_t rows, uint32_t cols);
void egru_matmul_f32_neon(const float *w, const float *x, const float *bias, float *y, uint32_t n,
                          uint32_t rows, uint32_t cols);
void egru_sigmoid_f32_neon(float *v, uint32_t n);
void egru_tanh_f32_neon(float *v, uint32_t n);
void egru_matvec_t_f32_neon(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t rows, uint32_t cols);
void egru_matmul_t_f32_neon(const float *wt, uint32_t ld, const float *x, const float *bias,
                            float *y, uint32_t n, uint32_t rows, uint32_t cols);
float egru_quantize_s8_neon(const float *x, int8_t *q, uint32_t n);
void egru_matvec_s8_neon(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                         const float *bias, float *y, uint32_t rows, uint32_t cols);
void egru_matvec_s8_neon_dotprod(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                                 const float *bias, float *y, uint32_t rows, uint32_t cols);
void egru_gru_gates_f32_neon(float *x, const float *hp, float *h, uint32_t n, int update);
/* The int16x8 product (EGRU_MATVEC_S8_S16's pattern: NULL when the build leaves int16x8 out). */
#if EGRU_CFG_INT16X8
void egru_matvec_s8_s16_neon(const int8_t *w, const int16_t *x, const int32_t *m, const int32_t *n,
                             const int32_t *bias, int32_t *g, uint32_t rows, uint32_t cols);
#define EGRU_MATVEC_S8_S16_NEON egru_matvec_s8_s16_neon
#else
#define EGRU_MATVEC_S8_S16_NEON NULL
#endif
int egru_neon_has_dotprod(void);

static const egru_kernel_set_t neon_set = {"neon",
                                           egru_matvec_f32_neon,
                                           egru_matmul_f32_neon,
                                           egru_sigmoid_f32_neon,
                                           egru_tanh_f32_neon,
                                           egru_matvec_t_f32_neon,
                                           egru_matmul_t_f32_neon,
                                           egru_quantize_s8_neon,
                                           egru_matvec_s8_neon,
                                           egru_gru_gates_f32_neon,
                                           EGRU_MATVEC_S8_S16_NEON,
                                           NULL};

static const egru_kernel_set_t neon_dotprod_set = {"neon",
                                                   egru_matvec_f32_neon,
                                                   egru_matmul_f32_neon,
                                                   egru_sigmoid_f32_neon,
                                                   egru_tanh_f32_neon,
                                                   egru_matvec_t_f32_neon,
                                                   egru_matmul_t_f32_neon,
                                                   egru_quantize_s8_neon,
                                                   egru_matvec_s8_neon_dotprod,
                                                   egru_gru_gates_f32_neon,
                                                   EGRU_MATVEC_S8_S16_NEON,
                                                   NULL};

/* 1 when the CPU has the Armv8.2 dot-product instructions (SDOT), else 0. */
int egru_neon_has_dotprod(void)
{
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
    return 0; /* no portable check: the plain NEON product */
#endif
}

const egru_kernel_set_t *egru_kernels_neon(void)
{
    return egru_neon_has_dotprod() ? &neon_dotprod_set : &neon_set;
}
#else
typedef int egru_kernel_set_neon_unused; /* ISO C forbids an empty translation unit */
#endif
