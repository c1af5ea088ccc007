/* egru_kernel_sets.c - the reference kernel set, the mapping from egru_kernels_t to a set
 * (egru_kernels_get), and the fallbacks for instruction sets this build does not have (see
 * egru_kernels.h). A set the build leaves out (EGRU_CFG_KERNELS_REF / _CORTEX_M 0) is referenced
 * from nowhere, so --gc-sections drops its kernels; so are the int8 and transposed kernels when
 * EGRU_CFG_INT8 / EGRU_CFG_PACK are 0 (NULL entries). */
#include <stddef.h>

#include "edgegru.h"
#include "egru_kernels.h"

#if EGRU_CFG_KERNELS_REF
#if EGRU_CFG_PACK
#define REF_MATVEC_T egru_matvec_t_f32
#define REF_MATMUL_T egru_matmul_t_f32
#else
#define REF_MATVEC_T NULL
#define REF_MATMUL_T NULL
#endif
#if EGRU_CFG_INT8
#define REF_QUANTIZE  egru_quantize_s8
#define REF_MATVEC_S8 egru_matvec_s8
#else
#define REF_QUANTIZE  NULL
#define REF_MATVEC_S8 NULL
#endif

#if EGRU_CFG_FLOAT
static const egru_kernel_set_t ref_set = {
    "ref",         egru_matvec_f32,    egru_matmul_f32,    egru_sigmoid_f32,
    egru_tanh_f32, REF_MATVEC_T,       REF_MATMUL_T,       REF_QUANTIZE,
    REF_MATVEC_S8, egru_gru_gates_f32, EGRU_MATVEC_S8_S16, NULL};
#else /* an integer-only build: no float kernel is referenced (EGRU_CFG_FLOAT) */
static const egru_kernel_set_t ref_set = {
    "ref", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, EGRU_MATVEC_S8_S16, NULL};
#endif

const egru_kernel_set_t *egru_kernels_ref(void)
{
    return &ref_set;
}
#else
const egru_kernel_set_t *egru_kernels_ref(void)
{
    return NULL;
}
#endif

#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
/* A microcontroller: no run-time detection, the set is fixed at compile time. */
static const egru_kernel_set_t *auto_set(void)
{
    const egru_kernel_set_t *set = egru_kernels_cortex_m();
    return set ? set : egru_kernels_ref();
}
#else
static const egru_kernel_set_t *auto_set(void)
{
    const egru_kernel_set_t *set = egru_kernels_avx512();
    set = set ? set : egru_kernels_avx2();
    set = set ? set : egru_kernels_neon();
    set = set ? set : egru_kernels_ref();
    return set ? set : egru_kernels_cortex_m();
}
#endif

const egru_kernel_set_t *egru_kernels_get(int kernels)
{
    switch (kernels) {
    case EGRU_KERNELS_AUTO: return auto_set();
    case EGRU_KERNELS_REF: return egru_kernels_ref();
    case EGRU_KERNELS_AVX2: return egru_kernels_avx2();
    case EGRU_KERNELS_NEON: return egru_kernels_neon();
    case EGRU_KERNELS_AVX512: return egru_kernels_avx512();
    case EGRU_KERNELS_CORTEX_M: return egru_kernels_cortex_m();
    default: return NULL;
    }
}

#if !(defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)))
const egru_kernel_set_t *egru_kernels_avx2(void)
{
    return NULL;
}

const egru_kernel_set_t *egru_kernels_avx512(void)
{
    return NULL;
}
#endif

#if !(defined(__aarch64__) && defined(__ARM_NEON))
const egru_kernel_set_t *egru_kernels_neon(void)
{
    return NULL;
}
#endif
