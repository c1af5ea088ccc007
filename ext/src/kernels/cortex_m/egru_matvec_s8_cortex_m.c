/* egru_matvec_s8_cortex_m.c - int8 matrix-vector product for Cortex-M (same contract as
 * egru_matvec_s8, bit for bit: the int32 sums are exact in any order, and the float steps are the
 * reference's, in its order, unfused). Two variants, chosen by EGRU_CFG_CM_S8_FAST
 * (egru_features.h): 1, the fast one described first (about 4.0 KB of code with the quantizer's;
 * the configuration headers egru2c writes set it), and 0, the compact one at the end of this
 * comment (about 0.7 KB: the full runtime's default, so that it is no larger than before).
 *
 * FAST (EGRU_CFG_CM_S8_FAST 1).
 * Plan (the same on every target, so host tests exercise it):
 *  1. x is widened once per call, XMAX_COLS columns at a time (a slice), into a stack buffer of
 *     16-bit values in the order SXTB16 gives them (per four columns c..c+3: c, c+2 | c+1, c+3),
 *     zero-padded to P = the slice rounded up to 8 columns.
 *  2. Rows go two at a time over P columns of the slice (four at a time when the whole row is at
 *     most 8 columns: x then stays in registers). A row's last chunk may read up to 7 bytes past
 *     the row's end: they are the next rows' weights, multiplied by the zero padding (exact). The
 *     rows whose padded read would pass the END OF THE MATRIX (at most the last ceil(7 / cols)),
 *     and the last row when the count is odd, are summed one by one over exactly their columns:
 *     no byte outside w is read.
 *  3. The sums are stored in y as int32 bit patterns (later slices add to them), and a last pass
 *     does the reference's float steps for every row: v = (float)acc * (scale[r] * sx), then
 *     v + bias[r].
 * Stack: the buffer is XMAX_COLS = 64 int16 (128 bytes); with GCC 12 -Os on the M4F this
 * function's frame is 264 bytes (buffer, job, saved registers) and the assembly pushes up to 40:
 * 304 bytes at the deepest (the reference's product uses a few dozen). cols > 64 run in slices
 * of 64.
 *
 * With the DSP extension (ARMv7E-M, ARMv8-M Mainline: __ARM_FEATURE_DSP; GCC or clang) step 2 is
 * assembly (egru_cm_s8_blocks, egru_cm_s8_quads below). Pairs of rows: per 8 columns one LDM of
 * four words of x, per row one LDRD of its 8 weights, four SXTB16 and four SMLAD (two 16 x 16
 * products each): 19 instructions per 16 MACs, the loop unrolled four times (entered at the chunk
 * that makes P / 8 come out) so 2 of loop control per 64 MACs, and 8 per pair (store the sums,
 * next rows, and one LDM that resets the sums, x and the count and jumps into the loop): 164
 * instructions for two rows of 64 columns, 1.28 per MAC (the SXTB16 + SMLAD floor is 1.19). Rows
 * that are not 4-byte aligned (w or cols not a multiple of 4; LDRD would fault there) load with
 * two LDR, 8 columns per iteration (21 + 2 per 16 MACs). Rows of at most 8 columns, four at a
 * time: 47 instructions per four rows. x and the accumulators never touch memory inside a row.
 * (CMSIS-NN's SXTB16 on both operands widens x again for every row; the ACLE intrinsics compile,
 * with GCC 12 -Os, to 37 instructions per 16 MACs with spills.) With a single-precision FPU, step
 * 3 is VLDM/VCVT/VMUL/VMLA/VSTM on 8 rows at a time (29 instructions per 8 rows, two groups per
 * loop iteration: VMLA.F32 is not fused, it rounds the product and then the sum, the reference's
 * two operations; it adds in the order bias + product, which gives other bits than product + bias
 * only when both are NaN, with different payloads; without a bias it adds -0.0f, an exact
 * identity). Without them (M0, M3, hosts) the same steps in portable C.
 *
 * Two row widths have their own assembly with the DSP extension (w 4-byte aligned; else the plan
 * above):
 *  - 64 and 16 columns (GRU(64), GRU(16) recurrent products: whole rows in one slice), four rows
 *    at a time from one pointer: LDRD at offsets fixed at assembly time (k * cols + 8 c; the
 *    quad's first LDRD post-increments the pointer to the next four rows, the others use
 *    negative offsets), the columns unrolled, the first chunk with SMUAD (no sums to clear): per
 *    8 columns one LDM of x and four times LDRD + 4 SXTB16 + 4 SMLAD, 37 instructions per 32
 *    MACs, and 5 per four rows: 1.18 per MAC on 64 columns (about 1.2 KB of code for 64, 0.4 KB
 *    for 16). The last rows % 4 rows go the plan's way.
 *  - 6 columns (a 6-axis IMU's input projection), pairs of rows as three words [a0..a3]
 *    [a4 a5 b0 b1] [b2..b5]: x as (x0, x2), (x1, x3), (x2, x4), (x3, x5) in registers, the
 *    middle word's halves to the two rows with SMLABT / SMULTB / SMLATB: 15 instructions per 12
 *    MACs plus the store, no padding, no byte read outside w. An odd last row is summed in C.
 *
 * COMPACT (EGRU_CFG_CM_S8_FAST 0). Four rows at a time share each chunk of four x values. With
 * the DSP extension the inner loop is inline assembly: per chunk one 32-bit load of x widened
 * into its even and odd bytes (SXTB16, SXTB16 with ROR #8), and per row one 32-bit load of four
 * weights, two SXTB16 and two SMLAD: 23 instructions + 2 of loop control for 16 MACs. Without it
 * the same blocking in portable C. The last cols % 4 columns and rows % 4 rows go one by one in
 * C. Loads of four int8 are unaligned 32-bit loads (ARMv7-M's LDR allows them). */
#include <stddef.h>
#include <string.h>

#include "../egru_kernels.h"
#include "egru_cm_qrow_asm.h"

/* The DSP extension's SXTB16/SMLAD through inline assembly (ARMv7E-M, ARMv8-M Mainline). */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__ARM_FEATURE_DSP) &&                     \
    __ARM_FEATURE_DSP && defined(__thumb2__)
#define EGRU_CM_DSP 1
#else
#define EGRU_CM_DSP 0
#endif

/* The fast variant where it is faster: not on M-profile cores without the DSP extension (M0, M3),
 * where its portable C is as slow as the compact one's and needs 130 more bytes of stack (hosts
 * build the configured variant: the tests run its portable C there). */
#if EGRU_CFG_CM_S8_FAST && !(defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M' &&           \
                             !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP))

#if EGRU_CM_DSP && defined(__ARM_FP) && (__ARM_FP & 4)
#define EGRU_CM_FPU 1
#else
#define EGRU_CM_FPU 0
#endif

enum { XMAX_COLS = 64 }; /* columns of x widened at once (a multiple of 8) */

#if EGRU_CM_DSP
/* What egru_cm_s8_blocks reads; it is given &job and works from base = &job.zero (LDMDB reads
 * y .. yend, LDM zero .. entry). Offsets from base are fixed by the assembly. */
typedef struct {
    int32_t *y;         /* -16: the sums of the next pair of rows go to y[0], y[1] */
    int32_t step;       /* -12: stride - P (from the second row's end to the next pair) */
    uint32_t stride;    /* -8: bytes from one row to the next */
    int32_t *yend;      /* -4: y after the last pair */
    int32_t zero[2];    /* 0: the accumulators' start */
    const uint32_t *xw; /* 8: the widened slice */
    uint32_t iters;     /* 12: loop iterations per pair (of 32 columns aligned, 8 not) */
    uintptr_t entry;    /* 16: where each pair starts (the loop, or egru_cm_s8_acc) */
    const int8_t *w;    /* 20: the first row of the first pair */
    uintptr_t loop;     /* 24: the loop entry (egru_cm_s8_ldrd_a .. _d, egru_cm_s8_ldr_a) */
} egru_cm_s8_job_t;

void egru_cm_s8_blocks(egru_cm_s8_job_t *job);

/* What egru_cm_s8_quads reads (LDM, in this order). */
typedef struct {
    const uint32_t *xw; /* the widened x, 8 columns (4 words) */
    const int8_t *w;    /* the first row */
    uint32_t stride;    /* bytes from one row to the next */
    int32_t *y;         /* the sums of the rows, as bits */
    int32_t *yend;      /* y + rows, rows a multiple of 4 */
} egru_cm_s8_quads_t;

void egru_cm_s8_quads(egru_cm_s8_quads_t *job);

typedef union { /* one of the two at a time: they share the stack */
    egru_cm_s8_job_t pairs;
    egru_cm_s8_quads_t quads;
} egru_cm_s8_jobs_t;
/* Entry points inside egru_cm_s8_blocks (Thumb addresses), not functions to call. */
void egru_cm_s8_acc(void);
void egru_cm_s8_ldrd_a(void);
void egru_cm_s8_ldrd_b(void); /* _c and _d follow at the same distance */
void egru_cm_s8_ldr_a(void);

/* Registers: r0 r1 the two sums, r2-r5 eight widened x (even | odd pairs of two groups of four),
 * r6 r7 eight weights, r8 scratch, r9 r10 the two rows, r11 x, r12 the iteration count, lr the
 * job base. Each pair: LDM base {r0, r1, r11, r12, pc} sets the sums to 0, x and the count, and
 * jumps to job.entry; at its end the pair's sums are stored and the next pair set up. With
 * job.entry = egru_cm_s8_acc (later slices) the sums start from y instead. */
/* egru_cm_s8_qrow and egru_cm_s8_qchunks, for egru_cm_s8_whole_S below (egru_cm_qrow_asm.h). */
__asm__(EGRU_CM_QROW_ASM("egru_cm_s8"));
__asm__(".pushsection .text.egru_cm_s8_blocks,\"ax\",%progbits\n"
        "    .syntax unified\n"
        "    .thumb\n"
        "    .p2align 2\n"
        "    .global egru_cm_s8_blocks\n"
        "    .type egru_cm_s8_blocks, %function\n"
        "    .thumb_func\n"
        "egru_cm_s8_blocks:\n"
        "    push {r4-r11, lr}\n"
        "    add lr, r0, #16\n"
        "    ldmdb lr, {r2-r5}\n"
        "    ldr r9, [lr, #20]\n"
        "    add r10, r9, r4\n"
        "    ldmia lr, {r0, r1, r11, r12, pc}\n"
        /* one row, 8 columns: \w loads the weights (post-incrementing \p by 8) */
        "    .macro egru_cm_s8_row a, p, w\n"
        "    .ifc \\w, d\n"
        "    ldrd r6, r7, [\\p], #8\n"
        "    .else\n"
        "    ldr r6, [\\p], #4\n"
        "    ldr r7, [\\p], #4\n"
        "    .endif\n"
        "    sxtb16 r8, r6\n"
        "    smlad \\a, r8, r2, \\a\n"
        "    sxtb16 r6, r6, ror #8\n"
        "    smlad \\a, r6, r3, \\a\n"
        "    sxtb16 r8, r7\n"
        "    smlad \\a, r8, r4, \\a\n"
        "    sxtb16 r7, r7, ror #8\n"
        "    smlad \\a, r7, r5, \\a\n"
        "    .endm\n"
        /* 8 columns of the pair */
        "    .macro egru_cm_s8_chunk w\n"
        "    ldmia r11!, {r2-r5}\n"
        "    egru_cm_s8_row r0, r9, \\w\n"
        "    egru_cm_s8_row r1, r10, \\w\n"
        "    .endm\n"
        "    .macro egru_cm_s8_entry name\n"
        "    .global \\name\n"
        "    .type \\name, %function\n"
        "    .thumb_func\n"
        "\\name:\n"
        "    .endm\n"
        /* after the columns of a pair: store its sums, set up the next pair or return */
        "    .macro egru_cm_s8_pair_end\n"
        "    ldmdb lr, {r2-r5}\n"   /* y, step, stride, yend */
        "    stmia r2!, {r0, r1}\n" /* the pair's sums */
        "    add r9, r10, r3\n"     /* the next pair's rows */
        "    add r10, r9, r4\n"
        "    str r2, [lr, #-16]\n"
        "    cmp r2, r5\n"
        "    it ne\n"
        "    ldmne lr, {r0, r1, r11, r12, pc}\n"
        "    pop {r4-r11, pc}\n"
        "    .endm\n"
        "    egru_cm_s8_entry egru_cm_s8_acc\n"
        "    ldmia r2, {r0, r1}\n"
        "    ldr pc, [lr, #24]\n"
        /* aligned rows: 32 columns per iteration, entered at the chunk that makes P / 8 come out */
        "    egru_cm_s8_entry egru_cm_s8_ldrd_a\n"
        ".Legru_cm_s8_d:\n"
        "    egru_cm_s8_chunk d\n"
        "    egru_cm_s8_entry egru_cm_s8_ldrd_b\n"
        "    egru_cm_s8_chunk d\n"
        "    egru_cm_s8_entry egru_cm_s8_ldrd_c\n"
        "    egru_cm_s8_chunk d\n"
        "    egru_cm_s8_entry egru_cm_s8_ldrd_d\n"
        "    egru_cm_s8_chunk d\n"
        "    subs r12, r12, #1\n"
        "    bne .Legru_cm_s8_d\n"
        "    egru_cm_s8_pair_end\n"
        /* rows not 4-byte aligned: 8 columns per iteration */
        "    egru_cm_s8_entry egru_cm_s8_ldr_a\n"
        ".Legru_cm_s8_u:\n"
        "    egru_cm_s8_chunk u\n"
        "    subs r12, r12, #1\n"
        "    bne .Legru_cm_s8_u\n"
        "    egru_cm_s8_pair_end\n"
        "    .size egru_cm_s8_blocks, .-egru_cm_s8_blocks\n"
        /* egru_cm_s8_quads(job): four rows at a time of at most 8 columns, x kept in r2-r5 */
        "    .p2align 2\n"
        "    .global egru_cm_s8_quads\n"
        "    .type egru_cm_s8_quads, %function\n"
        "    .thumb_func\n"
        "egru_cm_s8_quads:\n"
        "    push {r4-r11, lr}\n"
        "    ldmia r0, {r1, r9, r10, r11, r12}\n" /* x, w, stride, y, yend */
        "    ldmia r1, {r2-r5}\n"
        "    .macro egru_cm_s8_row8 a\n"
        "    ldr r6, [r9]\n"
        "    sxtb16 r7, r6\n"
        "    smuad \\a, r7, r2\n"
        "    sxtb16 r6, r6, ror #8\n"
        "    smlad \\a, r6, r3, \\a\n"
        "    ldr r6, [r9, #4]\n"
        "    sxtb16 r7, r6\n"
        "    smlad \\a, r7, r4, \\a\n"
        "    sxtb16 r6, r6, ror #8\n"
        "    smlad \\a, r6, r5, \\a\n"
        "    add r9, r9, r10\n"
        "    .endm\n"
        ".Legru_cm_s8_q:\n"
        "    egru_cm_s8_row8 r0\n"
        "    egru_cm_s8_row8 r1\n"
        "    egru_cm_s8_row8 r8\n"
        "    egru_cm_s8_row8 lr\n"
        "    stmia r11!, {r0, r1, r8, lr}\n"
        "    cmp r11, r12\n"
        "    bne .Legru_cm_s8_q\n"
        "    pop {r4-r11, pc}\n"
        "    .size egru_cm_s8_quads, .-egru_cm_s8_quads\n"
        /* egru_cm_s8_rows6(w, xq, y, yend): pairs of 6-column rows, 12 bytes = three words
         * [a0..a3] [a4 a5 b0 b1] [b2..b5] per pair (w 4-byte aligned): x as (x0, x2) r8,
         * (x1, x3) r9, (x2, x4) r10, (x3, x5) r11; the middle word's halves go to the two rows
         * with SMLABT / SMULTB / SMLATB. 15 instructions per pair + its store, two pairs per
         * iteration (entered at the second for an odd count). */
        "    .p2align 2\n"
        "    .global egru_cm_s8_rows6\n"
        "    .type egru_cm_s8_rows6, %function\n"
        "    .thumb_func\n"
        "egru_cm_s8_rows6:\n"
        "    push {r4-r11, lr}\n"
        "    ldr r4, [r1]\n"
        "    ldr r5, [r1, #2]\n"
        "    sxtb16 r8, r4\n"
        "    sxtb16 r9, r4, ror #8\n"
        "    sxtb16 r10, r5\n"
        "    sxtb16 r11, r5, ror #8\n"
        "    mov r12, r0\n"
        "    mov lr, r2\n"
        "    .macro egru_cm_s8_pair6\n"
        "    ldmia r12!, {r4, r5, r6}\n"
        "    sxtb16 r7, r4\n"
        "    smuad r0, r7, r8\n"
        "    sxtb16 r4, r4, ror #8\n"
        "    smlad r0, r4, r9, r0\n"
        "    sxtb16 r7, r5\n"          /* (a4, b0) */
        "    smlabt r0, r7, r10, r0\n" /* a4 x4 */
        "    smultb r1, r7, r8\n"      /* b0 x0 */
        "    sxtb16 r5, r5, ror #8\n"  /* (a5, b1) */
        "    smlabt r0, r5, r11, r0\n" /* a5 x5 */
        "    smlatb r1, r5, r9, r1\n"  /* b1 x1 */
        "    sxtb16 r7, r6\n"
        "    smlad r1, r7, r10, r1\n"
        "    sxtb16 r6, r6, ror #8\n"
        "    smlad r1, r6, r11, r1\n"
        "    stmia lr!, {r0, r1}\n"
        "    .endm\n"
        "    subs r0, r3, r2\n"
        "    tst r0, #8\n" /* an odd number of pairs */
        "    bne 2f\n"
        "1:\n"
        "    egru_cm_s8_pair6\n"
        "2:\n"
        "    egru_cm_s8_pair6\n"
        "    cmp lr, r3\n"
        "    bne 1b\n"
        "    pop {r4-r11, pc}\n"
        "    .size egru_cm_s8_rows6, .-egru_cm_s8_rows6\n"
        /* egru_cm_s8_whole_S(w, xb, y, wend): four rows at a time of S = 8 * N columns, rows
         * contiguous (stride S, w 4-byte aligned), x widened in xb: one pointer for the four
         * rows (LDRD at fixed offsets k * S + 8 * c), the columns unrolled (the first chunk
         * with SMUAD, so no sums to clear; the first LDRD post-increments w to the next four rows,
         * the others use negative offsets from there): per 8 columns one LDM of x and 4 x (LDRD +
         * 4 SXTB16 + 4 SMLAD), 37 instructions per 32 MACs, and 5 per four rows. */
        "    .macro egru_cm_s8_whole s\n"
        "    .p2align 2\n"
        "    .global egru_cm_s8_whole_\\s\n"
        "    .type egru_cm_s8_whole_\\s, %function\n"
        "    .thumb_func\n"
        "egru_cm_s8_whole_\\s:\n"
        "    push {r3-r11, lr}\n"
        "    mov r11, r0\n"
        "    mov r12, r1\n"
        "    mov lr, r2\n"
        "1:\n"
        "    egru_cm_s8_qchunks \\s, 0, (\\s/8)\n"
        "    stmia lr!, {r0-r3}\n"
        "    sub r12, r12, #(2 * \\s)\n"
        "    ldr r4, [sp]\n"
        "    cmp r11, r4\n"
        "    bne 1b\n"
        "    pop {r3-r11, pc}\n"
        "    .size egru_cm_s8_whole_\\s, .-egru_cm_s8_whole_\\s\n"
        "    .endm\n"
        "    egru_cm_s8_whole 16\n"
        "    egru_cm_s8_whole 64\n"
        "    .popsection\n");

/* Rows 0 .. 2 * pairs of 6 columns (w 4-byte aligned, rows contiguous), into y (as bits);
 * xq[0 .. 6) read as two unaligned words. */
void egru_cm_s8_rows6(const int8_t *w, const int8_t *xq, int32_t *y, int32_t *yend);
/* Rows of S columns, four at a time from w to wend (rows contiguous, w 4-byte aligned), x
 * widened in xb (S / 2 words), into y (as bits). */
void egru_cm_s8_whole_16(const int8_t *w, const uint32_t *xb, int32_t *y, const int8_t *wend);
void egru_cm_s8_whole_64(const int8_t *w, const uint32_t *xb, int32_t *y, const int8_t *wend);

typedef uint32_t egru_cm_xbuf_t; /* XMAX_COLS / 2 words: pairs of int16 */
enum { XBUF_LEN = XMAX_COLS / 2 };

static uint32_t sxtb16(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(v));
    return r;
}

static uint32_t sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* xb[0 .. P / 2) from xq[0 .. n): per four columns the word of columns c, c + 2 (low, high
 * halves) and the word of c + 1, c + 3, as SXTB16 of the four bytes gives them; zero from n on. */
static void widen(const int8_t *xq, uint32_t n, uint32_t P, egru_cm_xbuf_t *xb)
{
    uint32_t c = n & ~7u, v, k = n / 8;
    if (k) { /* 8 columns per iteration: two unaligned LDR, four SXTB16, one STM */
        const int8_t *xp = xq;
        egru_cm_xbuf_t *o = xb;
        __asm__ __volatile__("1:\n\t"
                             "ldr r5, [%[xp]], #4\n\t"
                             "ldr r12, [%[xp]], #4\n\t"
                             "sxtb16 r4, r5\n\t"
                             "sxtb16 r5, r5, ror #8\n\t"
                             "sxtb16 r6, r12\n\t"
                             "sxtb16 r12, r12, ror #8\n\t"
                             "stmia %[o]!, {r4, r5, r6, r12}\n\t"
                             "subs %[k], %[k], #1\n\t"
                             "bne 1b\n\t"
                             : [xp] "+r"(xp), [o] "+r"(o), [k] "+r"(k)
                             :
                             : "cc", "memory", "r4", "r5", "r6", "r12");
    }
    for (; c + 4 <= n; c += 4) {
        memcpy(&v, xq + c, sizeof v); /* an unaligned LDR */
        xb[c / 2] = sxtb16(v);
        xb[c / 2 + 1] = sxtb16_ror8(v);
    }
    if (c < n) { /* 1 to 3 columns: read exactly them */
        v = (uint8_t)xq[c];
        if (c + 1 < n) {
            v |= (uint32_t)(uint8_t)xq[c + 1] << 8;
        }
        if (c + 2 < n) {
            v |= (uint32_t)(uint8_t)xq[c + 2] << 16;
        }
        xb[c / 2] = sxtb16(v);
        xb[c / 2 + 1] = sxtb16_ror8(v);
        c += 4;
    }
    for (; c < P; c += 4) {
        xb[c / 2] = 0;
        xb[c / 2 + 1] = 0;
    }
}

/* The int32 sums of rows 0 .. 2 * pairs (each P columns from w + r * stride) with the slice xb,
 * into y (as bits; added to y's when add). */
static void pairs(egru_cm_s8_jobs_t *jobs, const int8_t *w, uint32_t stride,
                  const egru_cm_xbuf_t *xb, uint32_t P, float *y, uint32_t npairs, int add)
{
    egru_cm_s8_job_t *job = &jobs->pairs;
    const uint32_t chunks = P / 8;
    const int aligned = (((uintptr_t)w | stride) & 3u) == 0;
    uintptr_t loop;
    uint32_t iters = chunks;
    if (aligned) { /* enter the 4-chunk loop where the remaining chunks come out even: the four
                    * chunks are the same instructions, so the entries are evenly spaced */
        const uintptr_t a = (uintptr_t)egru_cm_s8_ldrd_a, b = (uintptr_t)egru_cm_s8_ldrd_b;
        loop = a + ((0u - chunks) & 3u) * (b - a);
        iters = (chunks + 3) / 4;
    } else {
        loop = (uintptr_t)egru_cm_s8_ldr_a;
    }
    job->y = (int32_t *)(void *)y;
    job->step = (int32_t)stride - (int32_t)P;
    job->stride = stride;
    job->yend = job->y + 2 * (size_t)npairs;
    job->zero[0] = 0;
    job->zero[1] = 0;
    job->xw = xb;
    job->iters = iters;
    job->entry = add ? (uintptr_t)egru_cm_s8_acc : loop;
    job->w = w;
    job->loop = loop;
    egru_cm_s8_blocks(job);
}

/* The int32 sums of rows 0 .. 4 * nquads (each 8 columns from w + r * stride) with xb[0 .. 4),
 * into y (as bits). */
static void quads(egru_cm_s8_jobs_t *jobs, const int8_t *w, uint32_t stride,
                  const egru_cm_xbuf_t *xb, float *y, uint32_t nquads)
{
    egru_cm_s8_quads_t *job = &jobs->quads;
    job->xw = xb;
    job->w = w;
    job->stride = stride;
    job->y = (int32_t *)(void *)y;
    job->yend = job->y + 4 * (size_t)nquads;
    egru_cm_s8_quads(job);
}
#else
typedef int16_t egru_cm_xbuf_t; /* XMAX_COLS values */
typedef int egru_cm_s8_jobs_t;  /* no job structure in C */
enum { XBUF_LEN = XMAX_COLS };

/* The same layout as the DSP path's words, as int16 in memory order: c, c + 2, c + 1, c + 3. */
static void widen(const int8_t *xq, uint32_t n, uint32_t P, egru_cm_xbuf_t *xb)
{
    uint32_t c;
    for (c = 0; c < P; ++c) {
        xb[(c & ~3u) + ((c & 1u) << 1) + ((c >> 1) & 1u)] = (int16_t)(c < n ? xq[c] : 0);
    }
}

static void pairs(egru_cm_s8_jobs_t *jobs, const int8_t *w, uint32_t stride,
                  const egru_cm_xbuf_t *xb, uint32_t P, float *y, uint32_t npairs, int add)
{
    uint32_t b, c;
    (void)jobs;
    for (b = 0; b < npairs; ++b) {
        const int8_t *p0 = w + (size_t)2 * b * stride, *p1 = p0 + stride;
        int32_t a0 = 0, a1 = 0;
        if (add) {
            memcpy(&a0, &y[2 * b], sizeof a0);
            memcpy(&a1, &y[2 * b + 1], sizeof a1);
        }
        for (c = 0; c < P; c += 4) {
            const int32_t x0 = xb[c], x2 = xb[c + 1], x1 = xb[c + 2], x3 = xb[c + 3];
            a0 += p0[c] * x0 + p0[c + 2] * x2 + p0[c + 1] * x1 + p0[c + 3] * x3;
            a1 += p1[c] * x0 + p1[c + 2] * x2 + p1[c + 1] * x1 + p1[c + 3] * x3;
        }
        memcpy(&y[2 * b], &a0, sizeof a0);
        memcpy(&y[2 * b + 1], &a1, sizeof a1);
    }
}

static void quads(egru_cm_s8_jobs_t *jobs, const int8_t *w, uint32_t stride,
                  const egru_cm_xbuf_t *xb, float *y, uint32_t nquads)
{
    pairs(jobs, w, stride, xb, 8, y, 2 * nquads, 0);
}
#endif

/* Step 3 for rows from .. rows - 1, in C. */
static void finish_c(float *y, const float *scale, const float *bias, float sx, uint32_t from,
                     uint32_t rows)
{
    uint32_t r;
    for (r = from; r < rows; ++r) {
        int32_t acc;
        float v;
        memcpy(&acc, &y[r], sizeof acc);
        v = (float)acc * (scale[r] * sx);
        y[r] = bias ? v + bias[r] : v;
    }
}

#if EGRU_CM_FPU
/* Added for bias == NULL: v + -0.0f is v, bit for bit, for every v (+0 + -0 = +0 when rounding
 * to nearest, -0 + -0 = -0, a NaN stays that NaN), so one loop serves both. */
static const float minus_zero[8] = {-0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f};
#endif

static void finish(float *y, const float *scale, const float *bias, float sx, uint32_t rows)
{
#if EGRU_CM_FPU
    uint32_t k = rows / 8;
    float *yp = y;
    const float *sp = scale, *bp = bias ? bias : minus_zero;
    const uint32_t bstep = bias ? 32 : 0; /* bytes */
    if (k) {
        __asm__ __volatile__(".macro egru_cm_s8_fin8\n\t"
                             "vldmia %[y], {s0-s7}\n\t"
                             "vldmia %[s]!, {s8-s15}\n\t"
                             "vcvt.f32.s32 s0, s0\n\t"
                             "vcvt.f32.s32 s1, s1\n\t"
                             "vcvt.f32.s32 s2, s2\n\t"
                             "vcvt.f32.s32 s3, s3\n\t"
                             "vcvt.f32.s32 s4, s4\n\t"
                             "vcvt.f32.s32 s5, s5\n\t"
                             "vcvt.f32.s32 s6, s6\n\t"
                             "vcvt.f32.s32 s7, s7\n\t"
                             "vmul.f32 s8, s8, %[sx]\n\t"
                             "vmul.f32 s9, s9, %[sx]\n\t"
                             "vmul.f32 s10, s10, %[sx]\n\t"
                             "vmul.f32 s11, s11, %[sx]\n\t"
                             "vmul.f32 s12, s12, %[sx]\n\t"
                             "vmul.f32 s13, s13, %[sx]\n\t"
                             "vmul.f32 s14, s14, %[sx]\n\t"
                             "vmul.f32 s15, s15, %[sx]\n\t"
                             "vldmia %[b], {s16-s23}\n\t"
                             "add %[b], %[b], %[bstep]\n\t"
                             "vmla.f32 s16, s0, s8\n\t"
                             "vmla.f32 s17, s1, s9\n\t"
                             "vmla.f32 s18, s2, s10\n\t"
                             "vmla.f32 s19, s3, s11\n\t"
                             "vmla.f32 s20, s4, s12\n\t"
                             "vmla.f32 s21, s5, s13\n\t"
                             "vmla.f32 s22, s6, s14\n\t"
                             "vmla.f32 s23, s7, s15\n\t"
                             "vstmia %[y]!, {s16-s23}\n\t"
                             ".endm\n\t"
                             "tst %[k], #1\n\t" /* an odd number of 8-row groups */
                             "bne 2f\n\t"
                             "1:\n\t"
                             "egru_cm_s8_fin8\n\t"
                             "2:\n\t"
                             "egru_cm_s8_fin8\n\t"
                             "cmp %[y], %[e]\n\t"
                             "bne 1b\n\t"
                             ".purgem egru_cm_s8_fin8\n\t"
                             : [y] "+r"(yp), [s] "+r"(sp), [b] "+r"(bp)
                             : [sx] "t"(sx), [bstep] "r"(bstep), [k] "r"(k), [e] "r"(y + 8 * k)
                             : "cc", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8",
                               "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18",
                               "s19", "s20", "s21", "s22", "s23");
    }
    finish_c(y, scale, bias, sx, rows & ~7u, rows);
#else
    finish_c(y, scale, bias, sx, 0, rows);
#endif
}

/* The int32 sums (as bits in y; added to y's when add) of rows from .. rows - 1, each n
 * columns from w + r * stride, with xq: exactly their bytes. */
#if defined(__GNUC__)
__attribute__((noinline)) /* inlined, GCC -Os spills its loop's registers */
#endif
static void
rows_exact(const int8_t *w, uint32_t stride, const int8_t *xq, uint32_t n, float *y, uint32_t from,
           uint32_t rows, int add)
{
    uint32_t r;
    for (r = from; r < rows; ++r) {
        const int8_t *p = w + (size_t)r * stride, *end = p + n, *xp = xq;
        int32_t acc = 0;
        if (add) {
            memcpy(&acc, &y[r], sizeof acc);
        }
        while (p != end) {
            acc += *p++ * *xp++;
        }
        memcpy(&y[r], &acc, sizeof acc);
    }
}

void egru_matvec_s8_cortex_m(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                             const float *bias, float *y, uint32_t rows, uint32_t cols)
{
    egru_cm_xbuf_t xb[XBUF_LEN];
    egru_cm_s8_jobs_t jobs;
    uint32_t c0;
    if (rows == 0) {
        return;
    }
    if (cols == 0) {
        memset(y, 0, rows * sizeof *y); /* int32 sums of 0 */
    }
#if EGRU_CM_DSP
    if (cols == 6 && rows >= 2 && ((uintptr_t)w & 3u) == 0) { /* exactly the matrix's bytes */
        const uint32_t even = rows & ~1u;
        egru_cm_s8_rows6(w, xq, (int32_t *)(void *)y, (int32_t *)(void *)y + even);
        if (even < rows) {
            rows_exact(w, 6, xq, 6, y, even, rows, 0);
        }
        finish(y, scale, bias, sx, rows);
        return;
    }
#endif
    for (c0 = 0; c0 < cols; c0 += XMAX_COLS) {
        const uint32_t n = cols - c0 < XMAX_COLS ? cols - c0 : XMAX_COLS;
        const uint32_t P = (n + 7) & ~7u;
        const uint32_t over = c0 + P > cols ? c0 + P - cols : 0; /* read past a row's end */
        uint32_t safe = rows, npairs, done;
        if (over) { /* row r is safe when the rows after it hold over bytes */
            uint32_t u = 1;
            while (u < rows && u * cols < over) {
                ++u;
            }
            safe = rows > u ? rows - u : 0;
        }
        done = 0;
        if (safe >= 2) {
            widen(xq + c0, n, P, xb);
#if EGRU_CM_DSP
            if ((cols == 64 || cols == 16) && safe >= 4 && ((uintptr_t)w & 3u) == 0) {
                done = safe & ~3u; /* whole rows, four at a time */
                (cols == 64 ? egru_cm_s8_whole_64 : egru_cm_s8_whole_16)(
                    w, xb, (int32_t *)(void *)y, w + (size_t)done * cols);
            } else
#endif
                if (P == 8 && c0 == 0 && safe >= 4) { /* at most 8 columns: x in registers */
                done = safe & ~3u;
                quads(&jobs, w, cols, xb, y, done / 4);
            }
            npairs = (safe - done) / 2;
            if (npairs) {
                pairs(&jobs, w + (size_t)done * cols + c0, cols, xb, P, y + done, npairs, c0 > 0);
                done += 2 * npairs;
            }
        }
        if (done < rows) {
            rows_exact(w + c0, cols, xq + c0, n, y, done, rows, c0 > 0);
        }
    }
    finish(y, scale, bias, sx, rows);
}

#else /* EGRU_CFG_CM_S8_FAST */

/* The reference's float steps for one row whose exact int32 sum is acc. */
static float finish(int32_t acc, float scale, float sx, const float *bias)
{
    const float v = (float)acc * (scale * sx);
    return bias ? v + *bias : v;
}

/* The exact sums of rows w0 .. w0 + 3 * cols (each cols long) with xq, into acc[0..4). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void
sums4(const int8_t *w0, uint32_t cols, const int8_t *xq, int32_t *acc)
{
    const int8_t *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t c = 0;
#if EGRU_CM_DSP
    uint32_t n = cols / 4;
    if (n) {
        const int8_t *xp = xq, *p0 = w0, *p2 = w2;
        uint32_t v, xe, xo, t;
        __asm__ __volatile__("1:\n\t"
                             "ldr %[v], [%[xp]], #4\n\t"
                             "sxtb16 %[xe], %[v]\n\t"
                             "sxtb16 %[xo], %[v], ror #8\n\t"
                             "ldr %[v], [%[p0], %[s]]\n\t" /* row 1 */
                             "sxtb16 %[t], %[v]\n\t"
                             "smlad %[a1], %[t], %[xe], %[a1]\n\t"
                             "sxtb16 %[t], %[v], ror #8\n\t"
                             "smlad %[a1], %[t], %[xo], %[a1]\n\t"
                             "ldr %[v], [%[p0]], #4\n\t" /* row 0 */
                             "sxtb16 %[t], %[v]\n\t"
                             "smlad %[a0], %[t], %[xe], %[a0]\n\t"
                             "sxtb16 %[t], %[v], ror #8\n\t"
                             "smlad %[a0], %[t], %[xo], %[a0]\n\t"
                             "ldr %[v], [%[p2], %[s]]\n\t" /* row 3 */
                             "sxtb16 %[t], %[v]\n\t"
                             "smlad %[a3], %[t], %[xe], %[a3]\n\t"
                             "sxtb16 %[t], %[v], ror #8\n\t"
                             "smlad %[a3], %[t], %[xo], %[a3]\n\t"
                             "ldr %[v], [%[p2]], #4\n\t" /* row 2 */
                             "sxtb16 %[t], %[v]\n\t"
                             "smlad %[a2], %[t], %[xe], %[a2]\n\t"
                             "sxtb16 %[t], %[v], ror #8\n\t"
                             "smlad %[a2], %[t], %[xo], %[a2]\n\t"
                             "subs %[n], %[n], #1\n\t"
                             "bne 1b\n\t"
                             : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                               [xp] "+r"(xp), [p0] "+r"(p0), [p2] "+r"(p2), [n] "+r"(n),
                               [v] "=&r"(v), [xe] "=&r"(xe), [xo] "=&r"(xo), [t] "=&r"(t)
                             : [s] "r"(cols)
                             : "cc", "memory");
        c = cols & ~3u;
    }
#else
    for (; c + 4 <= cols; c += 4) {
        const int32_t x0 = xq[c], x1 = xq[c + 1], x2 = xq[c + 2], x3 = xq[c + 3];
        a0 += w0[c] * x0 + w0[c + 1] * x1 + w0[c + 2] * x2 + w0[c + 3] * x3;
        a1 += w1[c] * x0 + w1[c + 1] * x1 + w1[c + 2] * x2 + w1[c + 3] * x3;
        a2 += w2[c] * x0 + w2[c + 1] * x1 + w2[c + 2] * x2 + w2[c + 3] * x3;
        a3 += w3[c] * x0 + w3[c + 1] * x1 + w3[c + 2] * x2 + w3[c + 3] * x3;
    }
#endif
    for (; c < cols; ++c) {
        const int32_t xc = xq[c];
        a0 += w0[c] * xc;
        a1 += w1[c] * xc;
        a2 += w2[c] * xc;
        a3 += w3[c] * xc;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

void egru_matvec_s8_cortex_m(const int8_t *w, const float *scale, const int8_t *xq, float sx,
                             const float *bias, float *y, uint32_t rows, uint32_t cols)
{
    uint32_t r = 0, c;
    for (; r + 4 <= rows; r += 4) {
        int32_t acc[4];
        float v0, v1, v2, v3;
        sums4(w + (size_t)r * cols, cols, xq, acc);
        v0 = (float)acc[0] * (scale[r] * sx);
        v1 = (float)acc[1] * (scale[r + 1] * sx);
        v2 = (float)acc[2] * (scale[r + 2] * sx);
        v3 = (float)acc[3] * (scale[r + 3] * sx);
        if (bias) {
            v0 = v0 + bias[r];
            v1 = v1 + bias[r + 1];
            v2 = v2 + bias[r + 2];
            v3 = v3 + bias[r + 3];
        }
        y[r] = v0;
        y[r + 1] = v1;
        y[r + 2] = v2;
        y[r + 3] = v3;
    }
    for (; r < rows; ++r) {
        const int8_t *row = w + (size_t)r * cols;
        int32_t acc = 0;
        for (c = 0; c < cols; ++c) {
            acc += row[c] * xq[c];
        }
        y[r] = finish(acc, scale[r], sx, bias ? bias + r : NULL);
    }
}
#endif /* EGRU_CFG_CM_S8_FAST */
