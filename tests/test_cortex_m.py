"""The C runtime alone on a Cortex-M4F, with no malloc: examples/cortex_m built with
arm-none-eabi-gcc, run in QEMU (mps2-an386, semihosting), its printed outputs compared to the host.

Each case writes an .egru file and an input, turns both into C headers with tools/egru2c.py, builds
the example's ELF with a static arena of exactly the size the host runtime computes (so the M4 must
agree on it), runs it and compares every printed float with edgegru.load(blob).predict(x).
Missing tools are a test failure, not a skip: .ci/run installs them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ir_models import build, inputs

import edgegru
from edgegru import format as fmt

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cortex_m"
EGRU2C = ROOT / "tools" / "egru2c.py"
QEMU = ["-M", "mps2-an386", "-nographic", "-semihosting-config", "enable=on,target=native"]
QEMU_TIMEOUT = 60  # seconds; a run takes well under one, a hang (e.g. a fault loop) fails here

# Both sides run the same C code in float32; only libm differs: newlib's expf/tanhf on the M4
# against glibc's on the host, a few ulp apart, and the GCC versions may contract a*b+c into
# fused multiply-adds differently. Measured: max abs difference 6e-8 over these cases; 1e-5 is
# the project's float32 tolerance (FP32_TOL in the other tests) and leaves ample margin.
M4_TOLERANCE = 1e-5

CASES = [
    # Embedding(40, 12) -> GRU(16) -> Dense(1, sigmoid)
    ("tokens_gru_sigmoid_reset_after", 3, 10),
    # Features(6) -> GRU(12, sequences) -> GRU(8, reset_before, sequences) -> GRU(10) -> Dense(3)
    ("stacked_gru_linear", 2, 12),
    # Output is a sequence: (batch, T, 6) floats
    ("tokens_stacked_sequence_output", 2, 5),
]


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (.ci/run installs it: tools/install-system-deps.sh)"
    return path


def _run(cmd, cwd=ROOT, timeout=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _check(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"{' '.join(proc.args)} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _build_elf(tmp_path: Path, case_name: str, batch: int, steps: int, arena: int | None = None):
    """Write the case's .egru, input and headers to tmp_path and build the ELF.
    Returns (host prediction, ELF path, arena bytes the host runtime computes)."""
    for tool in ("make", "arm-none-eabi-gcc", "qemu-system-arm"):
        _tool(tool)
    model = build(case_name)
    blob = fmt.write(model)
    x = inputs(model, batch, steps, seed=batch * 100 + steps)
    em = edgegru.load(blob)
    (tmp_path / "model.egru").write_bytes(blob)
    np.save(tmp_path / "x.npy", x)
    for src, header, name in [("model.egru", "model.h", "model"), ("x.npy", "input.h", "input")]:
        _check(_run([sys.executable, EGRU2C, tmp_path / src, tmp_path / header, "--name", name]))
    need = em.arena_size(batch, steps)
    build_dir = tmp_path / "build"
    _check(
        _run(
            [
                "make",
                "-s",
                "-j4",
                f"BUILD={build_dir}",
                f"MODEL_H={tmp_path / 'model.h'}",
                f"INPUT_H={tmp_path / 'input.h'}",
                f"ARENA_BYTES={need if arena is None else arena}",
            ],
            cwd=EXAMPLE,
        )
    )
    return em.predict(x), build_dir / "edgegru_m4.elf", need


def _qemu(elf: Path) -> subprocess.CompletedProcess:
    cmd = [_tool("qemu-system-arm"), *QEMU, "-kernel", elf]
    try:
        return _run(cmd, timeout=QEMU_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"QEMU did not exit within {QEMU_TIMEOUT} s: {' '.join(map(str, cmd))}")


def _heap_users(map_file: Path) -> dict[str, list[str]]:
    """Allocator symbol -> the files that define or reference it, from the map's --cref table."""
    table = map_file.read_text().split("Cross Reference Table", 1)[1]
    users, symbol = {}, None
    for line in table.splitlines()[3:]:
        if line and not line[0].isspace():
            symbol, _, line = line.partition(" ")
        if symbol in ("malloc", "_malloc_r", "calloc", "_calloc_r", "realloc", "_realloc_r"):
            users.setdefault(symbol, []).append(line.strip())
    return users


@pytest.mark.parametrize(("case_name", "batch", "steps"), CASES)
def test_qemu_output_matches_host(tmp_path, case_name, batch, steps):
    want, elf, _ = _build_elf(tmp_path, case_name, batch, steps)
    proc = _qemu(elf)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the firmware exited with {proc.returncode}:\n{out}"
    try:
        got = np.array([float(s) for s in proc.stdout.split()], dtype=np.float32)
    except ValueError:
        pytest.fail(f"unexpected firmware output:\n{out}")
    assert got.size == want.size, f"expected {want.size} outputs, got:\n{out}"
    err = float(np.max(np.abs(got - want.ravel())))
    assert err <= M4_TOLERANCE, f"{case_name}: max abs difference M4 vs host {err:.3g}"

    # Neither the runtime nor main.c/startup.c allocates: only newlib's own stdio/dtoa objects
    # (behind printf) reference the allocator.
    for symbol, files in _heap_users(elf.with_suffix(".map")).items():
        ours = [f for f in files if f and "(" not in f]  # archive members are lib.a(member.o)
        assert not ours, f"{symbol} is referenced by {ours}"


def test_arena_too_small_is_reported(tmp_path):
    _, elf, need = _build_elf(tmp_path, "tokens_gru_sigmoid_reset_after", 3, 10, arena=64)
    proc = _qemu(elf)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(rf"needs {need} bytes of arena, ARENA_BYTES is 64", proc.stdout), proc.stdout
