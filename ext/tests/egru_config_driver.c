/*
 * egru_config_driver.c - a small host program that loads an .egru file and runs it, for the
 * tests of configured builds (tests/test_firmware_config.py): the runtime is compiled once in
 * full and once with `-include egru_config.h`, each linked with this driver, and their outputs
 * are compared bit for bit. Not part of `make check` (it needs a model file); malloc is the
 * driver's, not the runtime's.
 *
 *   egru_config_driver run MODEL INPUT BATCH STEPS [FLAGS]
 *       egru_model_init_flags(FLAGS, default 0), then one forward pass over INPUT (raw int32
 *       token ids or float32 features, little-endian, batch * steps [* input_dim] values).
 *       Prints "init <status>", then "out <n>" and one line per output value as its float bits
 *       in hex (exact), or "forward <status>".
 *   egru_config_driver trusted-fuzz MODEL INPUT BATCH STEPS ROUNDS
 *       ROUNDS times: a copy of MODEL with 1-8 random bytes of its payload (after the 128-byte
 *       header, whose CRC stays valid) replaced, initialised with EGRU_INIT_TRUSTED_PAYLOAD and,
 *       when accepted, run. Under AddressSanitizer a read out of bounds aborts the program.
 *       Prints "accepted <n> rejected <n> ran <n>".
 *   egru_config_driver crc FILE
 *       Prints egru_crc32 of the whole file in hex.
 *   egru_config_driver init-loop MODEL FLAGS N
 *       N inits of MODEL (for instruction counts under callgrind).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgegru.h"

/* The whole file, in memory aligned to EGRU_BLOB_ALIGN (malloc gives at least 16 on the hosts
 * the tests run on; checked). */
static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    long n;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    data = (uint8_t *)malloc((size_t)n + 64);
    if (!data || (uintptr_t)data % EGRU_BLOB_ALIGN != 0 ||
        fread(data, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}

/* One forward pass; returns its status, fills *out (malloc'ed) and *count. */
static egru_status_t forward(const egru_model_t *m, const void *input, size_t input_bytes,
                             uint32_t batch, uint32_t steps, float **out, size_t *count)
{
    size_t need = 0, want;
    egru_status_t s;
    void *arena;
    *out = NULL;
    *count = 0;
    if ((s = egru_arena_size(m, batch, steps, &need)) != EGRU_OK ||
        (s = egru_output_count(m, batch, steps, count)) != EGRU_OK) {
        return s;
    }
    want = (size_t)batch * steps * (m->input_kind == EGRU_INPUT_TOKENS ? 1u : m->input_dim) * 4u;
    if (input_bytes < want) {
        fprintf(stderr, "input: %zu bytes, the shape needs %zu\n", input_bytes, want);
        exit(2);
    }
    arena = malloc(need ? need : 1);
    *out = (float *)malloc(*count * sizeof(float) + 1);
    if (!arena || !*out) {
        exit(2);
    }
    if (m->input_kind == EGRU_INPUT_TOKENS) {
        s = egru_forward_tokens(m, (const int32_t *)input, batch, steps, *out, *count, arena, need);
    } else {
        s = egru_forward_features(m, (const float *)input, batch, steps, *out, *count, arena, need);
    }
    free(arena);
    return s;
}

static uint32_t parse_u32(const char *text)
{
    return (uint32_t)strtoul(text, NULL, 0);
}

static int cmd_run(int argc, char **argv)
{
    size_t size, input_size, count, i;
    uint8_t *blob = read_file(argv[2], &size), *input = read_file(argv[3], &input_size);
    const uint32_t batch = parse_u32(argv[4]), steps = parse_u32(argv[5]);
    const uint32_t flags = argc > 6 ? parse_u32(argv[6]) : 0u;
    egru_model_t m;
    egru_status_t s = egru_model_init_flags(&m, blob, size, flags);
    float *out;
    printf("init %d\n", (int)s);
    if (s == EGRU_OK) {
        s = forward(&m, input, input_size, batch, steps, &out, &count);
        if (s != EGRU_OK) {
            printf("forward %d\n", (int)s);
        } else {
            printf("out %zu\n", count);
            for (i = 0; i < count; ++i) {
                uint32_t bits;
                memcpy(&bits, &out[i], sizeof bits);
                printf("%08x\n", (unsigned)bits);
            }
        }
        free(out);
    }
    free(blob);
    free(input);
    return 0;
}

static int cmd_trusted_fuzz(char **argv)
{
    size_t size, input_size, count;
    uint8_t *blob = read_file(argv[2], &size), *input = read_file(argv[3], &input_size);
    uint8_t *copy = (uint8_t *)malloc(size + 64);
    const uint32_t batch = parse_u32(argv[4]), steps = parse_u32(argv[5]);
    const uint32_t rounds = parse_u32(argv[6]);
    uint32_t round, accepted = 0, rejected = 0, ran = 0, rng = 12345u;
    if (!copy || (uintptr_t)copy % EGRU_BLOB_ALIGN != 0 || size <= 128) {
        return 2;
    }
    for (round = 0; round < rounds; ++round) {
        egru_model_t m;
        float *out = NULL;
        uint32_t k, n = 1 + round % 8;
        memcpy(copy, blob, size);
        for (k = 0; k < n; ++k) {
            size_t pos;
            rng = rng * 1103515245u + 12345u;
            pos = 128 + (rng >> 4) % (size - 128);
            rng = rng * 1103515245u + 12345u;
            copy[pos] = (uint8_t)(rng >> 16);
        }
        if (egru_model_init_flags(&m, copy, size, EGRU_INIT_TRUSTED_PAYLOAD) != EGRU_OK) {
            ++rejected;
            continue;
        }
        ++accepted;
        if (forward(&m, input, input_size, batch, steps, &out, &count) == EGRU_OK) {
            ++ran;
        }
        free(out);
    }
    printf("accepted %u rejected %u ran %u\n", accepted, rejected, ran);
    free(copy);
    free(blob);
    free(input);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "run") == 0) {
        return cmd_run(argc, argv);
    }
    if (argc == 7 && strcmp(argv[1], "trusted-fuzz") == 0) {
        return cmd_trusted_fuzz(argv);
    }
    if (argc == 3 && strcmp(argv[1], "crc") == 0) {
        size_t size;
        uint8_t *data = read_file(argv[2], &size);
        printf("%08x\n", (unsigned)egru_crc32(0, data, size));
        free(data);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "init-loop") == 0) {
        size_t size;
        uint8_t *blob = read_file(argv[2], &size);
        const uint32_t flags = parse_u32(argv[3]), n = parse_u32(argv[4]);
        uint32_t i, ok = 0;
        egru_model_t m;
        for (i = 0; i < n; ++i) {
            ok += egru_model_init_flags(&m, blob, size, flags) == EGRU_OK;
        }
        printf("ok %u of %u\n", ok, n);
        free(blob);
        return 0;
    }
    fprintf(stderr, "usage: see the comment at the top of egru_config_driver.c\n");
    return 2;
}
