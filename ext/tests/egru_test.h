/*
 * egru_test.h - the small harness the C test programs share: pass/fail counters, CHECK, and the
 * little-endian writers their hand-made .egru files use. Each program prints the counters as its
 * last line, "N passed, N failed" (tests/test_c_suite.py reads it).
 */
#ifndef EGRU_TEST_H
#define EGRU_TEST_H

#include <stdint.h>
#include <stdio.h>

static int passed, failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            ++passed;                                                                              \
        } else {                                                                                   \
            ++failed;                                                                              \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
        }                                                                                          \
    } while (0)

/* Little-endian stores, byte by byte (docs/format.md: every integer is little-endian). */
static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xFFFFu);
    put16(p + 2, v >> 16);
}

#endif /* EGRU_TEST_H */
