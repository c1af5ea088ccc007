"""The C runtime alone on Cortex-M cores, with no malloc: examples/cortex_m built with
arm-none-eabi-gcc for the M4F (mps2-an386), M3 (mps2-an385) and M0 (microbit) boards, run in
QEMU (semihosting), its outputs compared to the host runtime's.

Each case writes an .egru file and an input, turns both into C headers with tools/egru2c.py, builds
the example's ELF with a static arena of exactly the size the host runtime computes (the smallest
one, egru_arena_size_min, when the runtime has the low-memory plan; so the firmware must agree on
it), runs it and compares every output float with edgegru.load(blob, kernels="ref").predict(x).
The README's commands are run exactly as written. Missing tools are a test failure, not a skip:
tools/install-system-deps.sh installs them.
"""

from __future__ import annotations

import os
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
sys.path.insert(0, str(EXAMPLE))
import make_model  # noqa: E402

#: board -> QEMU machine (examples/cortex_m/Makefile)
MACHINES = {"m4f": "mps2-an386", "m3": "mps2-an385", "m0": "microbit"}
QEMU_OPTS = ["-nographic", "-icount", "shift=0,align=off,sleep=off"]
QEMU_OPTS += ["-semihosting-config", "enable=on,target=native"]
QEMU_TIMEOUT = 120  # seconds; a run takes well under 10, a hang (e.g. a fault loop) fails here

# Both sides run the same C code in float32; only libm differs: newlib's expf/tanhf on the M4
# against glibc's on the host, a few ulp apart, and the GCC versions may contract a*b+c into
# fused multiply-adds differently (the M3 and M0 use libgcc's soft float, correctly rounded like
# the FPU). Measured: max abs difference 6e-8 over these cases; 1e-5 is the project's float32
# tolerance (FP32_TOL in the other tests) and leaves ample margin. int8 models must be EQUAL to
# the host's reference kernels: their integer products are bit-exact on every kernel set and the
# float steps around them are the same code.
M4_TOLERANCE = 1e-5

CASES = [
    # (board, case, batch, T, quantize)
    # Embedding(40, 12) -> GRU(16) -> Dense(1, sigmoid)
    ("m4f", "tokens_gru_sigmoid_reset_after", 3, 10, None),
    # Features(6) -> GRU(12, sequences) -> GRU(8, reset_before, sequences) -> GRU(10) -> Dense(3)
    ("m4f", "stacked_gru_linear", 2, 12, None),
    # Output is a sequence: (batch, T, 6) floats
    ("m4f", "tokens_stacked_sequence_output", 2, 5, None),
    ("m4f", "stacked_gru_linear", 2, 12, "int8"),
    ("m3", "tokens_gru_sigmoid_reset_after", 3, 10, None),
    ("m3", "stacked_gru_linear", 2, 12, "int8"),
    ("m0", "stacked_gru_linear", 2, 12, None),
    ("m0", "tokens_gru_sigmoid_reset_after", 3, 10, "int8"),
]


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (tools/install-system-deps.sh installs it)"
    return path


def _run(cmd, cwd=ROOT, timeout=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd if isinstance(cmd, str) else [str(c) for c in cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kw,
    )


def _check(proc: subprocess.CompletedProcess) -> str:
    args = proc.args if isinstance(proc.args, str) else " ".join(map(str, proc.args))
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _min_arena(em, batch: int, steps: int) -> int:
    """The smallest arena the forward pass accepts: the low-memory plan's when the runtime has
    it (Model.arena_size(..., minimal=True)), else the one plan's."""
    try:
        return em.arena_size(batch, steps, minimal=True)
    except TypeError:
        return em.arena_size(batch, steps)


@pytest.fixture(scope="module")
def board_builds(tmp_path_factory):
    """One build directory per board, shared by its cases: the runtime objects depend only on the
    board's flags and are compiled once; main.o and model.o follow each case's headers."""
    for tool in ("make", "arm-none-eabi-gcc", "qemu-system-arm"):
        _tool(tool)
    root = tmp_path_factory.mktemp("cortex_m")
    return {board: root / board for board in MACHINES}


def _build_elf(
    tmp_path: Path, build_dir: Path, board: str, blob: bytes, x: np.ndarray, arena: int, **make
) -> Path:
    """Write blob and x as headers to tmp_path and build the board's ELF; returns its path."""
    (tmp_path / "model.egru").write_bytes(blob)
    np.save(tmp_path / "x.npy", x)
    for src, header, name in [("model.egru", "model.h", "model"), ("x.npy", "input.h", "input")]:
        _check(_run([sys.executable, EGRU2C, tmp_path / src, tmp_path / header, "--name", name]))
    args = [
        f"BOARD={board}",
        f"BUILD={build_dir}",
        f"MODEL_H={tmp_path / 'model.h'}",
        f"INPUT_H={tmp_path / 'input.h'}",
        f"ARENA_BYTES={arena}",
        *(f"{k}={v}" for k, v in make.items()),
    ]
    _check(_run(["make", "-s", "-j2", *args], cwd=EXAMPLE))
    return build_dir / "edgegru.elf"


def _qemu(board: str, elf: Path) -> subprocess.CompletedProcess:
    cmd = [_tool("qemu-system-arm"), "-M", MACHINES[board], *QEMU_OPTS, "-kernel", elf]
    try:
        return _run(cmd, timeout=QEMU_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"QEMU did not exit within {QEMU_TIMEOUT} s: {' '.join(map(str, cmd))}")


def _outputs(proc: subprocess.CompletedProcess) -> tuple[dict, np.ndarray]:
    """The firmware's '@name value' measurements and its output floats: printf's "%.9g" lines
    (stdout) or OUTPUT=hex's 8 hex digits of each float's bits (QEMU writes SYS_WRITE0 text to
    stderr)."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the firmware exited with {proc.returncode}:\n{out}"
    stats, values, hexbits = {}, [], []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("@"):
            key, value = line[1:].split()
            stats[key] = int(value)
        elif re.fullmatch(r"[0-9a-f]{8}", line):
            hexbits.append(int(line, 16))
        elif line:
            try:
                values.append(float(line))
            except ValueError:
                pytest.fail(f"unexpected firmware output line {line!r}:\n{out}")
    assert not (values and hexbits), out
    if hexbits:
        return stats, np.array(hexbits, dtype=np.uint32).view(np.float32)
    return stats, np.array(values, dtype=np.float32)


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


def _compare(got: np.ndarray, want: np.ndarray, quantize, label: str) -> None:
    want = want.ravel()
    assert got.size == want.size, f"{label}: expected {want.size} outputs, got {got.size}"
    if quantize == "int8":
        assert np.array_equal(got, want), f"{label}: int8 outputs differ from the host's ref"
    else:
        err = float(np.max(np.abs(got - want)))
        assert err <= M4_TOLERANCE, f"{label}: max abs difference firmware vs host {err:.3g}"


@pytest.mark.parametrize(("board", "case_name", "batch", "steps", "quantize"), CASES)
def test_qemu_output_matches_host(tmp_path, board_builds, board, case_name, batch, steps, quantize):
    model = build(case_name)
    blob = fmt.write(model, quantize=quantize)
    x = inputs(model, batch, steps, seed=batch * 100 + steps)
    em = edgegru.load(blob, kernels="ref")
    arena = _min_arena(em, batch, steps)
    elf = _build_elf(tmp_path, board_builds[board], board, blob, x, arena)
    stats, got = _outputs(_qemu(board, elf))
    _compare(got, em.predict(x), quantize, f"{board} {case_name} {quantize or 'fp32'}")
    assert stats["arena_used"] == arena, stats
    assert 0 < stats["stack"] <= 2048, stats  # the micro:bit's whole stack region is 2 KB

    # Neither the runtime nor main.c/startup.c allocates: only newlib's own stdio/dtoa objects
    # (behind printf) reference the allocator; the printf-free build references none at all.
    users = _heap_users(elf.with_suffix(".map"))
    for symbol, files in users.items():
        ours = [f for f in files if f and "(" not in f]  # archive members are lib.a(member.o)
        assert not ours, f"{symbol} is referenced by {ours}"
    if board == "m0":  # OUTPUT=hex is the micro:bit's default
        assert not users, users


def test_sensor_model_runs_forward_on_the_16k_m0(tmp_path, board_builds):
    """Issue #11: T=100 x 6 -> GRU(64) -> Dense(4) runs egru_forward_features (not a session) on
    the micro:bit's 16 KB of RAM: its low-memory arena, the stack and the harness must fit (the
    linker script refuses an image whose data + bss reach into the 2 KB stack region)."""
    blob = fmt.write(make_model.build("sensor"))
    x = make_model.make_input("sensor", 1, 100, seed=7)
    em = edgegru.load(blob, kernels="ref")
    arena = _min_arena(em, 1, 100)
    elf = _build_elf(tmp_path, board_builds["m0"], "m0", blob, x, arena, MAX_OUTPUTS=4)
    stats, got = _outputs(_qemu("m0", elf))
    _compare(got, em.predict(x), None, "m0 sensor")
    assert stats["arena_used"] == arena <= 3 * 1024, stats


def test_arena_too_small_is_reported(tmp_path, board_builds):
    model = build("tokens_gru_sigmoid_reset_after")
    blob = fmt.write(model)
    x = inputs(model, 3, 10, seed=310)
    need = _min_arena(edgegru.load(blob, kernels="ref"), 3, 10)  # unfolded, as the firmware
    elf = _build_elf(tmp_path, board_builds["m4f"], "m4f", blob, x, 64)
    proc = _qemu("m4f", elf)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(rf"needs {need} bytes of arena, ARENA_BYTES is 64", proc.stdout), proc.stdout


def _readme_commands() -> list[str]:
    text = (EXAMPLE / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, "examples/cortex_m/README.md must have exactly one ```sh block"
    return [line for line in blocks[0].splitlines() if line.strip()]


def test_readme_commands_work_as_written():
    """Every line of the README's ```sh block, verbatim, from the repository root (with this
    interpreter as `python`); the firmware's outputs must then match the host's, and the README's
    ARENA_BYTES must be the smallest arena the runtime accepts for its model."""
    for tool in ("make", "arm-none-eabi-gcc", "qemu-system-arm"):
        _tool(tool)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    commands = _readme_commands()
    last = None
    for cmd in commands:
        last = _run(cmd, shell=True, env=env, timeout=QEMU_TIMEOUT * 2)
        assert last.returncode == 0, f"README command {cmd!r} failed:\n{last.stdout}{last.stderr}"
    assert "make -C examples/cortex_m run" in commands[-1], commands
    gen = EXAMPLE / "gen"
    blob = (gen / "model.egru").read_bytes()
    x = np.load(gen / "x.npy")
    em = edgegru.load(blob, kernels="ref")
    # What make itself prints (its directory changes, the QEMU command line) is not the firmware's.
    firmware = "\n".join(
        line
        for line in last.stdout.splitlines()
        if not line.startswith(("make:", "make[")) and "qemu-system-arm" not in line
    )
    _, got = _outputs(subprocess.CompletedProcess(last.args, 0, firmware, last.stderr))
    _compare(got, em.predict(x), None, "README")
    arenas = {int(a) for c in commands for a in re.findall(r"ARENA_BYTES=(\d+)", c)}
    assert arenas == {_min_arena(em, *x.shape[:2])}, (arenas, "update the README's ARENA_BYTES")


def test_measurement_command_quick_run():
    """benchmarks/embedded.py --quick (gru16 on the M4F at T = 5 and 10, fp32 and int8) runs end
    to end and prints its table, so the measurement command of docs/embedded.md cannot rot. The
    figures are a benchmark's, not asserted here beyond being present and sane."""
    proc = _run([sys.executable, ROOT / "benchmarks" / "embedded.py", "--quick"], timeout=300)
    out = _check(proc)
    rows = [line for line in out.splitlines() if line.startswith("| gru16 |")]
    assert len(rows) == 2, out
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        instr_mac, diff = float(cells[8]), float(cells[10])
        assert instr_mac > 0 and diff <= M4_TOLERANCE, row
