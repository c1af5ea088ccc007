/* egru_kernel_set_cortex_m.c - the Cortex-M kernel set (see egru_kernels.h and docs/kernels.md,
 * "Cortex-M"): portable C99 that compiles on every target (so the host tests run it), with the
 * int8 product on the DSP extension where the target has it. EGRU_KERNELS_AUTO picks it at
 * compile time on M-profile targets (__ARM_ARCH_PROFILE == 'M'); elsewhere it is available by
 * name. Packing is for hosts: the transposed products are the reference's. Left out with
 * EGRU_CFG_KERNELS_CORTEX_M 0 (egru_kernels_cortex_m() is then NULL); with EGRU_CFG_INT8 0 or
 * EGRU_CFG_PACK 0 the set points at no int8 or no transposed kernel (NULL entries). */
#include <stddef.h>

#include "../egru_kernels.h"

#if EGRU_CFG_KERNELS_CORTEX_M
/* Left-out features point at nothing, so --gc-sections drops their kernels. */
#if EGRU_CFG_PACK
#define CM_MATVEC_T egru_matvec_t_f32
#define CM_MATMUL_T egru_matmul_t_f32
#else
#define CM_MATVEC_T NULL
#define CM_MATMUL_T NULL
#endif
#if EGRU_CFG_INT8
#define CM_QUANTIZE  egru_quantize_s8_cortex_m
#define CM_MATVEC_S8 egru_matvec_s8_cortex_m
#else
#define CM_QUANTIZE  NULL
#define CM_MATVEC_S8 NULL
#endif

#if EGRU_CFG_FLOAT
static const egru_kernel_set_t cortex_m_set = {"cortex_m",
                                               egru_matvec_f32_cortex_m,
                                               egru_matmul_f32_cortex_m,
                                               egru_sigmoid_f32_cortex_m,
                                               egru_tanh_f32_cortex_m,
                                               CM_MATVEC_T,
                                               CM_MATMUL_T,
                                               CM_QUANTIZE,
                                               CM_MATVEC_S8,
                                               egru_gru_gates_f32_cortex_m,
                                               EGRU_CM_MATVEC_S8_S16,
                                               NULL};
#else /* an integer-only build (EGRU_CFG_FLOAT 0) */
static const egru_kernel_set_t cortex_m_set = {
    "cortex_m", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, EGRU_CM_MATVEC_S8_S16, NULL};
#endif

const egru_kernel_set_t *egru_kernels_cortex_m(void)
{
    return &cortex_m_set;
}
#else
const egru_kernel_set_t *egru_kernels_cortex_m(void)
{
    return NULL;
}
#endif
