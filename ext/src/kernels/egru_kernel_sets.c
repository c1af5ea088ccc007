/* egru_kernel_sets.c - the reference kernel set, and the fallbacks for instruction sets this
 * build does not have (see egru_kernels.h). */
#include <stddef.h>

#include "egru_kernels.h"

static const egru_kernel_set_t ref_set = {
    "ref",          egru_matvec_f32,   egru_matmul_f32,   egru_sigmoid_f32,
    egru_tanh_f32,  egru_matvec_t_f32, egru_matmul_t_f32, egru_quantize_s8,
    egru_matvec_s8, egru_gru_gates_f32};

const egru_kernel_set_t *egru_kernels_ref(void)
{
    return &ref_set;
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
