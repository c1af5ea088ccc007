/*
 * egru_cm_qrow_asm.h - the assembler macros of the Cortex-M whole-row int8-weight products
 * (egru_matvec_s8_cortex_m.c, egru_matvec_s8_s16_cortex_m.c), one text for both: with x widened
 * to int16 pairs in r4-r7 (eight columns), both products multiply int8 weights the same way.
 *
 * EGRU_CM_QROW_ASM(P) is a string of two GNU assembler macros named P_qrow and P_qchunks (P a
 * string literal; each file names its own, since file-scope assembler macros may not be defined
 * twice in one assembly):
 *   P_qrow acc, off, first, post: one row's eight columns, int8 weights at [r11 + off] (LDRD;
 *     post: post-increment r11 by off instead), into acc (SMUAD when first, else SMLAD).
 *   P_qchunks s, c, n: for chunk c .. n - 1 of eight columns, LDM of x into r4-r7 and four rows
 *     r0-r3 of stride s bytes (the first chunk moves r11 to the next four rows).
 * Uses r0-r12 (the four sums in r0-r3); the including file's functions save what they must.
 */
#ifndef EGRU_CM_QROW_ASM_H
#define EGRU_CM_QROW_ASM_H

/* clang-format off */
#define EGRU_CM_QROW_ASM(P) \
    "    .macro " P "_qrow acc, off, first, post=0\n" \
    "    .if \\post\n" /* the quad's first load moves w to the next quad */ \
    "    ldrd r8, r9, [r11], #\\off\n" \
    "    .else\n" \
    "    ldrd r8, r9, [r11, #\\off]\n" \
    "    .endif\n" \
    "    sxtb16 r10, r8\n" \
    "    .if \\first\n" \
    "    smuad \\acc, r10, r4\n" \
    "    .else\n" \
    "    smlad \\acc, r10, r4, \\acc\n" \
    "    .endif\n" \
    "    sxtb16 r8, r8, ror #8\n" \
    "    smlad \\acc, r8, r5, \\acc\n" \
    "    sxtb16 r10, r9\n" \
    "    smlad \\acc, r10, r6, \\acc\n" \
    "    sxtb16 r9, r9, ror #8\n" \
    "    smlad \\acc, r9, r7, \\acc\n" \
    "    .endm\n" \
    "    .macro " P "_qchunks s, c, n\n" \
    "    ldmia r12!, {r4-r7}\n" \
    "    .if \\c == 0\n" \
    "    " P "_qrow r0, (4*\\s), 1, 1\n" \
    "    .else\n" \
    "    " P "_qrow r0, (8*\\c-4*\\s), 0\n" \
    "    .endif\n" \
    "    " P "_qrow r1, (8*\\c-3*\\s), (\\c==0)\n" \
    "    " P "_qrow r2, (8*\\c-2*\\s), (\\c==0)\n" \
    "    " P "_qrow r3, (8*\\c-\\s), (\\c==0)\n" \
    "    .if \\c + 1 < \\n\n" \
    "    " P "_qchunks \\s, (\\c+1), \\n\n" \
    "    .endif\n" \
    "    .endm\n"
/* clang-format on */

#endif /* EGRU_CM_QROW_ASM_H */
