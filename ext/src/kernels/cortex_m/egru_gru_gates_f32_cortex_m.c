/* egru_gru_gates_f32_cortex_m.c - the element-wise part of one GRU step in one pass, Cortex-M
 * (same contract as egru_gru_gates_f32): the reference's single operations in its order, with
 * this set's sigmoid and tanh (egru_cortex_m.h), so the result equals the separate passes with
 * egru_sigmoid_f32_cortex_m / egru_tanh_f32_cortex_m bit for bit; it saves their loads, stores
 * and loops. The common case is inlined with the exp's constants held in registers
 * (egru_cm_sigmoid_fast / egru_cm_tanh_fast: no clamp below |x| = 87 / 20, the same bits); the
 * rest calls the out-of-line clamped versions. With update == 0 only the gates are computed (h is
 * the only output). */
#include "../egru_kernels.h"
#include "egru_cortex_m.h"

void egru_gru_gates_f32_cortex_m(float *x, const float *hp, float *h, uint32_t n, int update)
{
    egru_cm_consts_t k = EGRU_CM_CONSTS;
    float *p = x, *const end = x + 2 * n;
    const float *r = x + n, *xh = x + 2 * n, *hh = hp + 2 * n;
    egru_cm_pin(&k);
    if (n == 0) {
        return;
    }
    /* do-while loops: GCC -Os then tests at the bottom (2 instructions per value, not 3) */
    do { /* z, r */
        *p = egru_cm_sigmoid_fast(*p + *hp, &k);
        ++hp;
    } while (++p != end);
    if (!update) {
        return;
    }
    p = x;
    do {
        const float z = *p;
        const float c = egru_cm_tanh_fast(*xh + *r * *hh, &k);
        *h = z * *h + (k.one - z) * c;
        ++r, ++xh, ++hh, ++h;
    } while (++p != x + n);
}
