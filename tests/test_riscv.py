"""The C runtime alone on a RISC-V rv32imc core (no FPU), with no malloc: examples/riscv built with
riscv64-unknown-elf-gcc -march=rv32imc -mabi=ilp32 and picolibc, run in QEMU's `virt` machine
(semihosting), its outputs compared to the host runtime's.

Each case writes an .egru file and an input, turns both into C headers with tools/egru2c.py, builds
the example's ELF with a static arena of exactly the smallest size the host runtime computes (so
the firmware must agree on it), runs it and compares every output float with
edgegru.load(blob, kernels="ref").predict(x): fp32 within M4_TOLERANCE (1e-5), int8 equal. The
firmware runs the reference kernel set (the cortex_m set is for Arm cores and is left out of the
build); the float arithmetic is libgcc's soft float, correctly rounded like the host's SSE.
int16x8 models, built with the configuration header egru2c writes for them (EGRU_CFG_FLOAT 0),
must give the host's int16 outputs exactly (Model.predict_int, itself equal to the emulation) and
link no floating-point helper or libm symbol (tests/firmware_symbols.py; issue #12). The
README's commands are run exactly as written. Missing tools are a test failure, not a skip:
tools/install-system-deps.sh installs them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from firmware_symbols import describe, float_symbols
from ir_models import build, build_more, inputs
from test_cortex_m import (
    M4_TOLERANCE,
    _check,
    _compare,
    _heap_users,
    _min_arena,
    _outputs,
    _run,
    _tool,
    make_model,
)

import edgegru
from edgegru import format as fmt
from edgegru import int16x8 as q16
from edgegru import ir

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "riscv"
EGRU2C = ROOT / "tools" / "egru2c.py"
TOOLS = ("make", "riscv64-unknown-elf-gcc", "qemu-system-riscv32")
QEMU_OPTS = ["-M", "virt", "-bios", "none", "-nographic"]
QEMU_OPTS += ["-icount", "shift=0,align=off,sleep=off"]
QEMU_OPTS += ["-semihosting-config", "enable=on,target=native"]
QEMU_TIMEOUT = 120  # seconds; a run takes well under 10, a hang (e.g. a trap loop) fails here


def _sensor():
    return make_model.build("sensor")


def _elu_softsign():
    # GRU(5, elu / softsign) -> GRU(4, softplus / sigmoid): ELU and softplus call libm
    # (expm1f, expf, log1pf): picolibc's against glibc's.
    return build_more("gru_acts_elu_softsign")


CASES = [
    # (label, model factory, batch, T, quantize, OUTPUT)
    # features 6 -> GRU(64) -> Dense(4, softmax), the sensor model of docs/embedded.md
    ("sensor", _sensor, 1, 20, None, "printf"),
    ("sensor", _sensor, 1, 20, "int8", "hex"),
    # Embedding(40, 12) -> GRU(16) -> Dense(1, sigmoid)
    ("tokens_gru", lambda: build("tokens_gru_sigmoid_reset_after"), 3, 10, None, "hex"),
    # Features(6) -> GRU(12) -> GRU(8, reset_before) -> GRU(10) -> Dense(3)
    ("stacked_gru", lambda: build("stacked_gru_linear"), 2, 12, "int8", "printf"),
    ("elu_softsign", _elu_softsign, 2, 8, None, "hex"),
]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    """One build directory shared by the cases: the runtime objects depend only on the flags and
    are compiled once; main.o and model.o follow each case's headers."""
    for tool in TOOLS:
        _tool(tool)
    return tmp_path_factory.mktemp("riscv") / "rv32imc"


def _build_elf(tmp_path: Path, build_dir: Path, blob: bytes, x: np.ndarray, **make) -> Path:
    """Write blob and x as headers to tmp_path and build the ELF; returns its path."""
    (tmp_path / "model.egru").write_bytes(blob)
    np.save(tmp_path / "x.npy", x)
    for src, header, name in [("model.egru", "model.h", "model"), ("x.npy", "input.h", "input")]:
        _check(_run([sys.executable, EGRU2C, tmp_path / src, tmp_path / header, "--name", name]))
    args = [
        f"BUILD={build_dir}",
        f"MODEL_H={tmp_path / 'model.h'}",
        f"INPUT_H={tmp_path / 'input.h'}",
        *(f"{k}={v}" for k, v in make.items()),
    ]
    _check(_run(["make", "-s", "-j2", *args], cwd=EXAMPLE))
    return build_dir / "edgegru.elf"


def _qemu(elf: Path):
    cmd = [_tool("qemu-system-riscv32"), *QEMU_OPTS, "-kernel", elf]
    try:
        return _run(cmd, timeout=QEMU_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"QEMU did not exit within {QEMU_TIMEOUT} s: {' '.join(map(str, cmd))}")


@pytest.mark.parametrize(
    ("label", "make", "batch", "steps", "quantize", "output"),
    CASES,
    ids=[f"{c[0]}-{c[4] or 'fp32'}-{c[5]}" for c in CASES],
)
def test_qemu_output_matches_host(tmp_path, build_dir, label, make, batch, steps, quantize, output):
    model = make()
    blob = fmt.write(model, quantize=quantize)
    x = inputs(model, batch, steps, seed=batch * 100 + steps)
    em = edgegru.load(blob, kernels="ref")
    arena = _min_arena(em, batch, steps)
    elf = _build_elf(tmp_path, build_dir, blob, x, ARENA_BYTES=arena, OUTPUT=output)
    stats, got = _outputs(_qemu(elf))
    _compare(got, em.predict(x), quantize, f"rv32imc {label} {quantize or 'fp32'}")
    assert stats["arena_used"] == arena, stats
    # Measured and below the 64 KB stack region (STACK_BYTES): the calls never ran past its bottom.
    assert 0 < stats["stack"] < 65536, stats
    # minstret counts the calibration loop's 2,000,000 instructions plus the counter reads.
    assert 2_000_000 <= stats["calib_ticks"] <= 2_000_100, stats

    # Neither the runtime nor main.c/startup.c allocates; the printf-free build has no allocator
    # at all (picolibc's printf needs none either).
    users = _heap_users(elf.with_suffix(".map"))
    for symbol, files in users.items():
        ours = [f for f in files if f and "(" not in f]  # archive members are lib.a(member.o)
        assert not ours, f"{symbol} is referenced by {ours}"
    if output == "hex":
        assert not users, users
    # The reference kernels run, and the cortex_m set is not in the image (only the stub that
    # returns NULL for it).
    symbols = _run(["riscv64-unknown-elf-nm", elf]).stdout
    assert re.search(r" egru_matvec_f32$", symbols, re.M), "the ref kernels are not linked"
    assert not re.search(r" egru_matvec_f32_cortex_m$", symbols, re.M), symbols


def _int16_outputs(proc: subprocess.CompletedProcess) -> tuple[dict, np.ndarray]:
    """An int16x8 firmware's measurements and int16 outputs (OUTPUT=hex: each output's 16 bits
    as 8 hex digits)."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the firmware exited with {proc.returncode}:\n{out}"
    stats = {k: int(v) for k, v in re.findall(r"^@(\w+) (\d+)$", out, re.M)}
    words = [int(w, 16) for w in re.findall(r"^([0-9a-f]{8})$", out, re.M)]
    assert words and all(w < 1 << 16 for w in words), out
    return stats, np.array(words, dtype=np.uint16).view(np.int16)


def _int16x8_sensor():
    """The sensor model as int16x8, calibrated on inputs of its training distribution, and an
    int16 input at its input scale."""
    model = make_model.build("sensor")
    blob = fmt.write(model, quantize="int16x8", calibration=make_model.make_input("sensor", 64, 50))
    x = make_model.make_input("sensor", 1, 20, seed=2)
    return blob, q16.quantize_input(q16.from_blob(blob), x).astype(np.int16)


def _int16x8_tokens():
    """Embedding(mask_zero) -> GRU(6, return_sequences) -> GRU(5, reset_before) -> Dense(3,
    softmax): int32 ids in (one row padded), int16 out."""
    rng = np.random.default_rng(12)
    layers = [
        ir.Embedding(rng.normal(0, 1, (30, 5)), mask_zero=True),
        ir.GRU(
            rng.normal(0, 0.45, (5, 18)),
            rng.normal(0, 0.4, (6, 18)),
            rng.normal(0, 0.3, 18),
            rng.normal(0, 0.3, 18),
            return_sequences=True,
        ),
        ir.GRU(
            rng.normal(0, 0.4, (6, 15)),
            rng.normal(0, 0.45, (5, 15)),
            rng.normal(0, 0.3, 15),
            rng.normal(0, 0.3, 15),
            reset_after=False,
        ),
        ir.Dense(rng.normal(0, 0.45, (5, 3)), rng.normal(0, 0.3, 3), "softmax"),
    ]
    model = ir.Model(ir.InputSpec(ir.TOKENS, 30), layers)
    blob = fmt.write(model, quantize="int16x8", calibration=rng.integers(1, 30, (32, 9)))
    ids = rng.integers(1, 30, (3, 9)).astype(np.int32)
    ids[1, 5:] = 0
    return blob, ids


def _int16x8_sequence_plan():
    """Masking -> Bidirectional(LSTM, sum, return_sequences) -> GlobalAveragePooling1D -> Dense
    (tests/int16x8_layers.py): the sequence plan, masks included."""
    from int16x8_layers import sequence_models

    model = dict(sequence_models())["masked-bidi-lstm-sum-seq-avgpool"]
    rng = np.random.default_rng(13)
    cal = rng.standard_normal((32, 9, 6)).astype(np.float32)
    blob = fmt.write(model, quantize="int16x8", calibration=cal)
    x = rng.standard_normal((2, 9, 6)).astype(np.float32)
    x[1, 6:] = 0.0  # padding steps, masked
    return blob, q16.quantize_input(q16.from_blob(blob), x).astype(np.int16)


@pytest.mark.parametrize(
    "make",
    [_int16x8_sensor, _int16x8_tokens, _int16x8_sequence_plan],
    ids=["sensor", "tokens", "sequence-plan"],
)
def test_int16x8_equals_the_host_with_no_floating_point_linked(tmp_path, build_dir, make):
    blob, x = make()
    (tmp_path / "model.egru").write_bytes(blob)
    config = tmp_path / "egru_config.h"
    cmd = [sys.executable, EGRU2C, tmp_path / "model.egru", tmp_path / "m.h", "--name", "model"]
    _check(_run([*cmd, "--config", config]))
    assert "#define EGRU_CFG_FLOAT 0" in config.read_text()
    em = edgegru.load(blob, kernels="ref")
    arena = _min_arena(em, *x.shape[:2])
    elf = _build_elf(
        tmp_path,
        build_dir.parent / "int16x8",
        blob,
        x,
        ARENA_BYTES=arena,
        OUTPUT="hex",
        MAX_OUTPUTS=64,
        CONFIG_H=config,
    )
    stats, got = _int16_outputs(_qemu(elf))
    want = em.predict_int(x)
    assert np.array_equal(got, want.ravel()), (got, want)
    assert np.array_equal(want, q16.forward_int(q16.from_blob(blob), x))
    assert stats["arena_used"] == arena, stats
    found = float_symbols(elf)
    assert found == {}, describe(found)


def test_runtime_library_builds_for_rv32imc_with_the_project_warnings(tmp_path):
    """ext/'s own build (its WARN flags: -std=c99 -Wall -Wextra -Werror -pedantic -Wconversion
    ...) with the RISC-V compiler: every source of the runtime compiles warning-free for rv32imc,
    and the library references no allocator."""
    _tool("riscv64-unknown-elf-gcc")
    cflags = "CFLAGS=-march=rv32imc -mabi=ilp32 -Os --specs=picolibc.specs"
    tools = ["CC=riscv64-unknown-elf-gcc", "AR=riscv64-unknown-elf-ar"]
    _check(_run(["make", "-s", "-j2", "-C", ROOT / "ext", f"BUILD={tmp_path}", *tools, cflags]))
    lib = tmp_path / "host" / "libedgegru.a"
    header = _check(_run(["riscv64-unknown-elf-readelf", "-h", tmp_path / "host/src/egru_model.o"]))
    assert re.search(r"Machine:\s+RISC-V", header) and "ELF32" in header, header
    undefined = _check(_run(["riscv64-unknown-elf-nm", "-u", lib]))
    for symbol in ("malloc", "calloc", "realloc", "free"):
        assert not re.search(rf"\b{symbol}\b", undefined), f"the runtime references {symbol}"


def test_sensor_model_runs_forward_in_16k_of_ram(tmp_path, build_dir):
    """T=100 x 6 -> GRU(64) -> Dense(4) runs egru_forward_features in a 16 KB RAM with a 2 KB
    stack (RAM_BYTES, STACK_BYTES: the linker script refuses an image whose data + bss reach into
    the stack), as on the Cortex-M0 of examples/cortex_m, built as the README says (the model's
    configuration header, OUTPUT=hex)."""
    blob = fmt.write(make_model.build("sensor"))
    x = make_model.make_input("sensor", 1, 100, seed=7)
    (tmp_path / "model.egru").write_bytes(blob)
    config = tmp_path / "egru_config.h"
    cmd = [sys.executable, EGRU2C, tmp_path / "model.egru", tmp_path / "m.h", "--name", "model"]
    _check(_run([*cmd, "--config", config]))
    em = edgegru.load(blob, kernels="ref")
    arena = _min_arena(em, 1, 100)
    elf = _build_elf(
        tmp_path,
        build_dir.parent / "ram16k",
        blob,
        x,
        ARENA_BYTES=arena,
        MAX_OUTPUTS=4,
        OUTPUT="hex",
        RAM_BYTES=16384,
        STACK_BYTES=2048,
        CONFIG_H=config,
    )
    stats, got = _outputs(_qemu(elf))
    _compare(got, em.predict(x), None, "rv32imc sensor, 16 KB RAM")
    assert stats["arena_used"] == arena <= 3 * 1024, stats
    # Below the stack region's size: the deepest call did not run past its bottom (a stack that
    # overflowed would have overwritten every painted word and read 2048).
    assert 0 < stats["stack"] < 2048, stats


def test_ram_overflow_is_refused_at_link_time(tmp_path, build_dir):
    blob = fmt.write(make_model.build("sensor"))
    x = make_model.make_input("sensor", 1, 10)
    with pytest.raises(AssertionError, match="do not fit the RAM below the stack"):
        _build_elf(tmp_path, build_dir, blob, x, ARENA_BYTES=16384, RAM_BYTES=16384, OUTPUT="hex")


def test_arena_too_small_is_reported(tmp_path, build_dir):
    model = build("tokens_gru_sigmoid_reset_after")
    blob = fmt.write(model)
    x = inputs(model, 3, 10, seed=310)
    need = _min_arena(edgegru.load(blob, kernels="ref"), 3, 10)  # unfolded, as the firmware
    elf = _build_elf(tmp_path, build_dir, blob, x, ARENA_BYTES=64)
    proc = _qemu(elf)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # picolibc's semihosting stdout writes character by character (SYS_WRITEC): QEMU prints that
    # on its stderr.
    out = proc.stdout + proc.stderr
    assert re.search(rf"needs {need} bytes of arena, ARENA_BYTES is 64", out), out


def _readme_commands() -> list[str]:
    text = (EXAMPLE / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, "examples/riscv/README.md must have exactly one ```sh block"
    return [line for line in blocks[0].splitlines() if line.strip()]


def test_readme_commands_work_as_written():
    """Every line of the README's ```sh block, verbatim, from the repository root (with this
    interpreter as `python`); the firmware's outputs must then match the host's, and the README's
    ARENA_BYTES must be the smallest arena the runtime accepts for its model."""
    for tool in TOOLS:
        _tool(tool)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    commands = _readme_commands()
    last = None
    for cmd in commands:
        last = _run(cmd, shell=True, env=env, timeout=QEMU_TIMEOUT * 2)
        assert last.returncode == 0, f"README command {cmd!r} failed:\n{last.stdout}{last.stderr}"
    assert "make -C examples/riscv run" in commands[-1], commands
    gen = EXAMPLE / "gen"
    blob = (gen / "model.egru").read_bytes()
    x = np.load(gen / "x.npy")
    em = edgegru.load(blob, kernels="ref")
    # What make itself prints (its directory changes) is not the firmware's.
    firmware = "\n".join(
        line for line in last.stdout.splitlines() if not line.startswith(("make:", "make["))
    )
    stats, got = _outputs(subprocess.CompletedProcess(last.args, 0, firmware, last.stderr))
    _compare(got, em.predict(x), None, "README")
    arenas = {int(a) for c in commands for a in re.findall(r"ARENA_BYTES=(\d+)", c)}
    assert arenas == {_min_arena(em, *x.shape[:2])} == {stats["arena_used"]}, (
        arenas,
        "update the README's ARENA_BYTES",
    )


def test_measurement_command_quick_run():
    """benchmarks/embedded.py --quick --boards rv32imc (gru16 at T = 5 and 10, fp32 and int8)
    runs end to end and prints its rows, so the rv32imc measurement cannot rot. The figures are
    a benchmark's, not asserted here beyond being present and the outputs matching the host's."""
    cmd = [sys.executable, ROOT / "benchmarks" / "embedded.py", "--quick", "--boards", "rv32imc"]
    out = _check(_run(cmd, timeout=300))
    rows = [line for line in out.splitlines() if line.startswith("| gru16 |")]
    assert len(rows) == 2, out
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == "RV32IMC", row
        instr_step, diff = float(cells[7].replace(",", "")), float(cells[10])
        assert instr_step > 0 and diff <= M4_TOLERANCE, row
