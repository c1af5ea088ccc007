"""The C runtime on aarch64: `make aarch64` cross-builds the library and the three C test programs
statically with aarch64-linux-gnu-gcc (strict warnings, -O2) and runs them under qemu-aarch64, so
the NEON kernel set is tested against exact results and whole models run with it; the kernel
test runs twice, with and without the Armv8.2 dot product (the int8 product via SDOT or not).
Tools missing here is a test failure, not a skip: .ci/run installs them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

EXT = Path(__file__).resolve().parents[1] / "ext"


def test_c_unit_tests_under_qemu_aarch64(tmp_path):
    for tool in ("make", "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ar", "qemu-aarch64"):
        assert shutil.which(tool), f"{tool} is not installed (.ci/run installs it with apt-get)"
    proc = subprocess.run(
        ["make", "-s", f"BUILD={tmp_path}", "aarch64"],
        cwd=EXT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"make aarch64 failed:\n{out}"
    lines = re.findall(r"^(\d+) passed, (\d+) failed$", out, re.MULTILINE)
    # test_runtime, test_session, test_kernels, and test_kernels again on a CPU without the
    # dot-product instructions (-cpu cortex-a53), so both NEON int8 products run
    assert len(lines) == 4, out
    assert all(int(failed) == 0 for _, failed in lines), out
    assert sum(int(passed) for passed, _ in lines) > 200, out
    sets = re.findall(r"^kernel set: (\w+)$", out, re.MULTILINE)
    print("kernel sets tested under qemu-aarch64:", ", ".join(sets))
    print("\n".join(re.findall(r"^\w+: sigmoid max abs error .*$", out, re.MULTILINE)))
    assert "neon" in sets, f"test_kernels did not test the neon set:\n{out}"
    assert "neon: dot product present" in out and "neon: dot product absent" in out, out
