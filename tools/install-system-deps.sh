#!/bin/sh
# Installs the system tools the test suite uses, if they are missing:
#   gcc-arm-none-eabi + libnewlib-arm-none-eabi  Cortex-M4 cross-compile of the C runtime
#   make, a C compiler with AddressSanitizer     the C unit tests
#   clang-format                                 the C style check
#   qemu-system-arm                              runs the Cortex-M4 example (tests/test_cortex_m.py)
#   gcc-riscv64-unknown-elf + picolibc-riscv64-unknown-elf
#                                                RISC-V rv32imc cross-compile of the C runtime
#   qemu-system-misc                             qemu-system-riscv32: runs the RISC-V example
#                                                (tests/test_riscv.py)
#   gcc-aarch64-linux-gnu + qemu-user            NEON kernels built and tested (tests/test_aarch64.py)
#   clang + libclang-rt-dev                      libFuzzer + ASan/UBSan/MSan for the fuzz harness
#                                                (make -C ext fuzz)
#   libsimde-dev                                 AVX-512 kernels tested under SIMDe emulation
#                                                (make -C ext check-avx512-emulated)
# Debian/Ubuntu only (apt-get); needs root or sudo. Does nothing when everything is there.
set -eu
missing=""
command -v arm-none-eabi-gcc >/dev/null 2>&1 || missing="$missing gcc-arm-none-eabi libnewlib-arm-none-eabi"
command -v make >/dev/null 2>&1 || missing="$missing make"
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
command -v clang-format >/dev/null 2>&1 || missing="$missing clang-format"
command -v qemu-system-arm >/dev/null 2>&1 || missing="$missing qemu-system-arm"
command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 || missing="$missing gcc-riscv64-unknown-elf"
[ -f /usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs ] || missing="$missing picolibc-riscv64-unknown-elf"
command -v qemu-system-riscv32 >/dev/null 2>&1 || missing="$missing qemu-system-misc"
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing="$missing gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
command -v qemu-aarch64 >/dev/null 2>&1 || missing="$missing qemu-user"
[ -f /usr/include/simde/x86/avx512.h ] || missing="$missing libsimde-dev"
command -v clang >/dev/null 2>&1 || missing="$missing clang"
[ -f "$(clang --print-runtime-dir 2>/dev/null)/libclang_rt.fuzzer-x86_64.a" ] || missing="$missing libclang-rt-dev"
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing system packages:$missing (install them with your package manager)" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "installing system packages:$missing"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
