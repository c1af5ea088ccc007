"""The Cortex-M kernel set on Cortex-M cores: `make -C ext check-cortex-m` builds the C runtime
and ext/tests/cortex_m/test_kernels_cm.c (every check of ext/tests/test_kernels.c, on the ref and
cortex_m sets) bare metal with arm-none-eabi-gcc -Os for a Cortex-M4F (mps2-an386), a Cortex-M3
(mps2-an385, soft float, no DSP), a Cortex-M7 (mps2-an500, double-precision FPU) and a Cortex-M0
(ARMv6-M code, run on the M3 board), and runs each under qemu-system-arm with semihosting. The
int8 kernels must equal the reference bit for bit, the float ones stay within docs/kernels.md's
bounds (and equal the reference's products bit for bit), AUTO must be the cortex_m set, and the
assembly paths (VLDMIA/VMLA, SXTB16/SMLAD) must be the ones that ran on the M4F and M7. Tools
missing here is a test failure, not a skip: tools/install-system-deps.sh installs them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

EXT = Path(__file__).resolve().parents[1] / "ext"

# Checks test_kernels_cm.c makes: 18 per kernel set (ref, cortex_m), 7 int8 checks on the other
# variant of the cortex_m int8 kernels (EGRU_CFG_CM_S8_FAST: the library is built with the
# compact default, the test compiles the fast one in; on the M3 it is the compact one again),
# the int16x8 product (test_s16_cm), the AUTO check, the bit-equality of the float products and
# of the sigmoid, tanh and fused gates with the reference, 8 on the scalar activations; plus the
# whole product test of test_kernels.c on the cortex_m set on the cores with an FPU, and the
# int16x8 GRU tail against the specification on the Thumb-2 cores (QADD on the M4F and M7, its
# ADDS emulation on the M3); the int16x8 product test covers each core's own kernel (SMLAD on the
# M4F and M7, LDRSB / MLA on the M3, LDRSB / MULS on the M0).
CHECKS_PER_CORE = {"m4f": 57, "m3": 56, "m7": 57, "m0": 55}
# m0: the library and test built for the Cortex-M0 (ARMv6-M) run on the M3 board, whose
# instruction set contains ARMv6-M's with the same results (the micro:bit has 16 KB of RAM).
BOARDS = {"m4f": "mps2-an386", "m3": "mps2-an385", "m7": "mps2-an500", "m0": "mps2-an385"}
INT16X8_PATH = {
    "m4f": "DSP (SXTB16/SMLAD)",
    "m7": "DSP (SXTB16/SMLAD)",
    "m3": "Thumb-2 (LDRSB/MLA)",
    "m0": "ARMv6-M (LDRSB/MULS)",
}


def test_cortex_m_kernels_under_qemu(tmp_path):
    for tool in ("make", "arm-none-eabi-gcc", "arm-none-eabi-ar", "qemu-system-arm", "timeout"):
        assert shutil.which(tool), f"{tool} is not installed (tools/install-system-deps.sh)"
    proc = subprocess.run(
        ["make", "-s", "-j2", f"BUILD={tmp_path}", "check-cortex-m"],
        cwd=EXT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"make check-cortex-m failed:\n{out}"
    parts = re.split(r"^== (\w+) \(([\w-]+)\): (\w+)$", out, flags=re.MULTILINE)
    runs = {(parts[i], parts[i + 1], parts[i + 2]): parts[i + 3] for i in range(1, len(parts), 4)}
    for core, board in BOARDS.items():
        text = runs.get((core, board, "test_kernels_cm"))
        assert text is not None, f"no run of test_kernels_cm on {core} ({board}):\n{out}"
        counts = re.findall(r"^(\d+) passed, (\d+) failed$", text, re.MULTILINE)
        assert counts == [(str(CHECKS_PER_CORE[core]), "0")], f"{core}:\n{text}"
        sets = re.findall(r"^kernel set: (\w+)$", text, re.MULTILINE)
        assert sets == ["ref", "cortex_m"], f"{core}:\n{text}"
        assert "kernel set chosen by auto: cortex_m" in text, text
        assert "kernel set: cortex_m (int8 fast variant)" in text, text
        fpu = core in ("m4f", "m7")
        assert ("cortex_m int8: DSP (SMLAD/SXTB16)" in text) == fpu, text
        assert f"cortex_m int16x8: {INT16X8_PATH[core]}\n" in text, text
        assert ("cortex_m fp32: FPU (VLDMIA/VMLA)" in text) == fpu, text
        assert ("cortex_m: full product test run" in text) == fpu, text
        thumb2 = core != "m0"
        assert ("cortex_m: int16x8 GRU tail (Thumb-2) checked" in text) == thumb2, text
        print(core, board, *re.findall(r"^cortex_m: .*error.*$", text, re.MULTILINE), sep="\n  ")
