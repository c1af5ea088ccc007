"""int16x8 (integer-only) models on the cores they are for: the Cortex-M example built with the
configuration header tools/egru2c.py writes for the model (EGRU_CFG_FLOAT 0: no float code), on
QEMU's Cortex-M0 (micro:bit), M3 (mps2-an385) and M4F (mps2-an386) boards. Its int16 outputs
must EQUAL the host's (which equal the numpy emulation, tests/test_int16x8_runtime.py), and the
linked images of the cores without an FPU must hold no floating-point helper (docs/embedded.md,
issue #12)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgegru
from edgegru import format as fmt
from edgegru import int16x8 as q16

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cortex_m"
EGRU2C = ROOT / "tools" / "egru2c.py"
sys.path.insert(0, str(EXAMPLE))
sys.path.insert(0, str(ROOT / "tests"))
import firmware_symbols  # noqa: E402
import make_model  # noqa: E402
from int16x8_layers import sequence_models  # noqa: E402

MACHINES = {"m4f": "mps2-an386", "m3": "mps2-an385", "m0": "microbit"}
QEMU = ["-nographic", "-icount", "shift=0,align=off,sleep=off"]
QEMU += ["-semihosting-config", "enable=on,target=native"]


def float_symbols(elf: Path) -> list[str]:
    """The floating-point helpers and libm functions a linked image holds (firmware_symbols)."""
    return sorted(firmware_symbols.float_symbols(elf))


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))}:\n{p.stdout}\n{p.stderr}"
    return p


def _firmware(tmp_path: Path, board: str, blob: bytes, x: np.ndarray) -> tuple[Path, np.ndarray]:
    """Build the example for `board` with the model's configuration, run it on QEMU; returns the
    ELF and the int16 outputs (main.c prints each as 8 hex digits of its 16 bits)."""
    (tmp_path / "model.egru").write_bytes(blob)
    np.save(tmp_path / "x.npy", x)
    py = sys.executable
    _run([py, EGRU2C, tmp_path / "model.egru", tmp_path / "model.h", "--name", "model",
          "--config", tmp_path / "egru_config.h"])  # fmt: skip
    _run([py, EGRU2C, tmp_path / "x.npy", tmp_path / "input.h", "--name", "input"])
    arena = edgegru.load(blob).arena_size(x.shape[0], x.shape[1], minimal=True)
    build = tmp_path / f"build-{board}"
    _run(["make", "-s", "-j2", f"BOARD={board}", f"BUILD={build}", "OUTPUT=hex",
          f"MODEL_H={tmp_path / 'model.h'}", f"INPUT_H={tmp_path / 'input.h'}",
          f"CONFIG_H={tmp_path / 'egru_config.h'}", f"ARENA_BYTES={arena}", "MAX_OUTPUTS=64"],
         cwd=EXAMPLE)  # fmt: skip
    elf = build / "edgegru.elf"
    p = subprocess.run(
        ["qemu-system-arm", "-M", MACHINES[board], *QEMU, "-kernel", str(elf)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    words = [int(s, 16) for s in re.findall(r"^([0-9a-f]{8})$", out, re.M)]
    assert words and all(w < 1 << 16 for w in words), out
    return elf, np.array(words, dtype=np.uint16).view(np.int16)


def _sensor(batch=1, steps=20):
    """The sensor model (6 -> GRU(64) -> Dense(4, softmax)) as int16x8, calibrated on inputs of
    the training distribution, and an int16 input at its scale."""
    model = make_model.build("sensor")
    cal = make_model.make_input("sensor", 64, 50, seed=1)
    blob = fmt.write(model, quantize="int16x8", calibration=cal)
    x = make_model.make_input("sensor", batch, steps, seed=2)
    xi = q16.quantize_input(q16.from_blob(blob), x).astype(np.int16)
    return blob, xi


@pytest.mark.parametrize("board", ["m0", "m3", "m4f"])
def test_sensor_model_equals_the_host_on_every_core(tmp_path, board):
    blob, xi = _sensor()
    elf, got = _firmware(tmp_path, board, blob, xi)
    want = edgegru.load(blob, kernels="ref").predict_int(xi)
    assert np.array_equal(got, want.ravel()), (got, want)
    assert np.array_equal(want, q16.forward_int(q16.from_blob(blob), xi))
    if board in ("m0", "m3"):  # no FPU: not one floating-point helper may be linked
        assert float_symbols(elf) == []


def test_token_model_with_a_sequence_output_on_the_m3(tmp_path):
    """Embedding(mask_zero) -> GRU(return_sequences) -> Dense per step: int32 ids in, one int16
    vector per step out."""
    from edgegru import ir

    rng = np.random.default_rng(3)
    model = ir.Model(
        ir.InputSpec("tokens", 30),
        [
            ir.Embedding(rng.normal(0, 1, (30, 5)), mask_zero=True),
            ir.GRU(
                rng.normal(0, 0.4, (5, 18)),
                rng.normal(0, 0.3, (6, 18)),
                rng.normal(0, 0.1, 18),
                rng.normal(0, 0.1, 18),
                return_sequences=True,
            ),
            ir.Dense(rng.normal(0, 0.5, (6, 2)), rng.normal(0, 0.1, 2), "sigmoid"),
        ],
    )
    ids = rng.integers(0, 30, (2, 7)).astype(np.int32)
    ids[1, 4:] = 0
    blob = fmt.write(model, quantize="int16x8", calibration=rng.integers(0, 30, (32, 7)))
    elf, got = _firmware(tmp_path, "m3", blob, ids)
    assert np.array_equal(got, edgegru.load(blob).predict_int(ids).ravel())
    assert float_symbols(elf) == []


def test_the_symbol_check_sees_soft_float(tmp_path):
    """The check above can fail: the fp32 sensor model's M0 image is full of soft-float."""
    model = make_model.build("sensor")
    blob = fmt.write(model)
    x = make_model.make_input("sensor", 1, 3, seed=2)
    (tmp_path / "model.egru").write_bytes(blob)
    np.save(tmp_path / "x.npy", x)
    py = sys.executable
    _run([py, EGRU2C, tmp_path / "model.egru", tmp_path / "model.h", "--name", "model",
          "--config", tmp_path / "egru_config.h"])  # fmt: skip
    _run([py, EGRU2C, tmp_path / "x.npy", tmp_path / "input.h", "--name", "input"])
    build = tmp_path / "b"
    _run(["make", "-s", "-j2", "BOARD=m0", f"BUILD={build}", "OUTPUT=hex", "ARENA_BYTES=4096",
          f"MODEL_H={tmp_path / 'model.h'}", f"INPUT_H={tmp_path / 'input.h'}",
          f"CONFIG_H={tmp_path / 'egru_config.h'}", "MAX_OUTPUTS=64"], cwd=EXAMPLE)  # fmt: skip
    found = float_symbols(build / "edgegru.elf")
    assert "__aeabi_fmul" in found and "__aeabi_fadd" in found, found


@pytest.mark.parametrize(
    "name, board",
    [
        ("conv-causal-gru", "m0"),
        ("masked-bidi-lstm-sum-seq-avgpool", "m0"),
        ("bidi-gru-relu-mul-seq-maxpool", "m3"),
        ("tokens-bidi-gru-seq-conv", "m3"),
        ("masked-layernorm-gru-layernorm", "m0"),
        ("affine-activation-gru-flatten", "m3"),
    ],
)
def test_sequence_plan_models_equal_the_host(tmp_path, name, board):
    """Conv1D, GlobalPool, Bidirectional and Flatten models (the sequence plan), LayerNorm, Affine
    and Activation, on the cores without an FPU: the host's integers, and no floating-point helper
    linked."""
    from edgegru import ir

    model = dict(sequence_models())[name]
    rng = np.random.default_rng(17)
    steps = model.input.seq_len or 9
    if model.input.kind == ir.TOKENS:
        x = rng.integers(0, model.input.dim, (2, steps)).astype(np.int32)
        x[1, 5:] = 0  # padding, masked by mask_zero
        cal = rng.integers(0, model.input.dim, (32, steps))
    else:
        cal = rng.standard_normal((32, steps, model.input.dim)).astype(np.float32)
        xf = rng.standard_normal((2, steps, model.input.dim)).astype(np.float32)
        xf[1, 5:] = 0.0  # padding steps (masked where the model masks)
        blob = fmt.write(model, quantize="int16x8", calibration=cal)
        x = q16.quantize_input(q16.from_blob(blob), xf).astype(np.int16)
    blob = fmt.write(model, quantize="int16x8", calibration=cal)
    elf, got = _firmware(tmp_path, board, blob, x)
    want = edgegru.load(blob, kernels="ref").predict_int(x)
    assert np.array_equal(got, want.ravel()), (got, want)
    assert np.array_equal(want, q16.forward_int(q16.from_blob(blob), x))
    assert float_symbols(elf) == []
