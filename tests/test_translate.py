"""The translation example of issue #13 (examples/translate.py, examples/translate_c): a Keras
encoder-decoder GRU, converted into an encoder and a decoder-step graph model, greedy-decoded by
edgegru in Python, by the C program on the host and by the same C program on a Cortex-M4F in
QEMU; every decoded string must equal Keras' own decoding loop's. A short training run: the
strings must be equal whatever the model's accuracy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgegru

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "translate.py"
C_DIR = ROOT / "examples" / "translate_c"


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """translate.py on a small data set: its own check (exit 0: every string equal to Keras'),
    the models, and the C headers for 24 test rows."""
    d = tmp_path_factory.mktemp("translate")
    proc = _run(
        [sys.executable, EXAMPLE, "--epochs", "3", "--train", "3000", "--test", "120",
         "--units", "32", "--out-dir", d / "models", "--c-dir", d / "gen", "--c-rows", "24"]
    )  # fmt: skip
    return d, proc.stdout


def test_python_decoding_equals_keras(trained):
    _, out = trained
    m = re.search(r"decoded strings equal to Keras': (\d+)/(\d+)", out)
    assert m and m.group(1) == m.group(2) == "120", out


def test_the_models_are_graphs(trained):
    d, _ = trained
    enc = edgegru.load(d / "models" / "encoder.egru")
    step = edgegru.load(d / "models" / "decoder_step.egru")
    assert [i.kind for i in step.inputs] == ["tokens", "vector"]
    assert [o.kind for o in step.outputs] == ["sequence", "vector"]
    assert step.is_graph and [o.width for o in step.outputs] == [13, 32]
    assert enc.outputs[0].kind == "vector" and enc.outputs[0].width == 32


def _c_strings(proc: subprocess.CompletedProcess) -> list:
    return [line for line in proc.stdout.splitlines() if line and not line.startswith("@")]


def _padded(gen: Path, out: Path, more: int) -> Path:
    """A copy of the C headers whose inputs carry `more` extra padding steps in front (the
    example left-pads; the encoder's masked steps change nothing, so Keras' strings stay)."""
    out.mkdir()
    for f in gen.glob("*.h"):
        (out / f.name).write_bytes(f.read_bytes())
    x = np.load(gen / "x.npy")
    np.save(out / "x.npy", np.concatenate([np.zeros((len(x), more), np.int32), x], axis=1))
    cmd = [sys.executable, ROOT / "tools" / "egru2c.py", out / "x.npy", out / "input.h"]
    subprocess.run([*cmd, "--name", "input"], check=True, capture_output=True, timeout=300)
    return out


def test_c_host_decoding_equals_keras(trained, tmp_path):
    """Also with 40 more padding steps: the same strings, the same decoder-step arena."""
    d, _ = trained
    want = (d / "gen" / "keras.txt").read_text().split()
    proc = _run(["make", "-s", "-C", C_DIR, "host", f"GEN={d / 'gen'}", f"BUILD={tmp_path}"])
    assert _c_strings(proc) == want
    gen80 = _padded(d / "gen", tmp_path / "gen80", 40)
    proc80 = _run(["make", "-s", "-C", C_DIR, "host", f"GEN={gen80}", f"BUILD={tmp_path / 'b'}"])
    assert _c_strings(proc80) == want
    arenas = [dict(re.findall(r"@(\w+) (\d+)", p.stdout)) for p in (proc, proc80)]
    assert arenas[0]["arena_decoder_step"] == arenas[1]["arena_decoder_step"], arenas


def test_c_cortex_m4_decoding_equals_keras(trained, tmp_path):
    d, _ = trained
    want = (d / "gen" / "keras.txt").read_text().split()
    proc = _run(["make", "-s", "-C", C_DIR, "firmware", f"GEN={d / 'gen'}", f"BUILD={tmp_path}"])
    assert _c_strings(proc)[-len(want) :] == want
    arenas = dict(re.findall(r"@(\w+) (\d+)", proc.stdout))
    assert int(arenas["arena_decoder_step"]) > 0
