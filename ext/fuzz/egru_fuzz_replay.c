/*
 * egru_fuzz_replay.c - runs fuzz inputs through the harness once each, without libFuzzer: the
 * driver of make fuzz-coverage.
 *
 *     egru_fuzz_replay FILE_OR_DIR...
 *
 * Each input runs in a child process of its own, so an input that corrupts memory (the coverage
 * build has no sanitizer to stop it) cannot disturb the others or this driver. With
 * LLVM_PROFILE_FILE=...%Nm every child merges its counters into a pool of N profile files.
 * Prints how many inputs ran and how many did not exit normally (those are findings: replay them
 * under make fuzz to see the report); the exit status is 0 either way, coverage is the product.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long ran, failed;

static void run_file(const char *path)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        FILE *f = fopen(path, "rb");
        if (!f) {
            perror(path);
            exit(3);
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *data = malloc(n > 0 ? (size_t)n : 1u);
        if (!data || (n > 0 && fread(data, 1, (size_t)n, f) != (size_t)n)) {
            perror(path);
            exit(3);
        }
        fclose(f);
        LLVMFuzzerTestOneInput(data, (size_t)n);
        free(data);
        exit(0); /* exit, not _exit: the profile is written at exit */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ran++;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        failed++;
    }
}

static void run_path(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        perror(path);
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        run_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2u;
        char *p = malloc(len);
        if (!p) {
            exit(2);
        }
        snprintf(p, len, "%s/%s", path, e->d_name);
        run_file(p);
        free(p);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        run_path(argv[i]);
    }
    printf("replayed %lu inputs, %lu did not exit normally\n", ran, failed);
    return 0;
}
