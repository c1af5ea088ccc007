"""The RNNoise-style example of issue #13 (examples/rnnoise.py, examples/rnnoise_c): a Keras graph
of three GRUs, concatenations and two outputs (gains, VAD), converted to a graph .egru file and
streamed frame by frame, in Python (the example's own check) and by the C program on the host
and on a Cortex-M4F in QEMU; every frame's outputs within 1e-5 of Keras' predict on the whole
recording. A short training run: the comparison holds whatever the model's accuracy."""

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
EXAMPLE = ROOT / "examples" / "rnnoise.py"
C_DIR = ROOT / "examples" / "rnnoise_c"
TOL = 1e-5


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """rnnoise.py on a small data set: its own check (exit 0: every streamed frame within 1e-5
    of Keras and equal to predict), the model, and the C headers of an 80-frame recording."""
    d = tmp_path_factory.mktemp("rnnoise")
    proc = _run(
        [sys.executable, EXAMPLE, "--epochs", "1", "--train", "32", "--frames", "40",
         "--test-frames", "80", "--out-dir", d / "model", "--c-dir", d / "gen"]
    )  # fmt: skip
    return d, proc.stdout


def test_python_stream_within_tolerance_of_keras(trained):
    _, out = trained
    m = re.search(r"streamed (\d+) frames one at a time: max \|edgegru - Keras\| = (\S+)", out)
    assert m and m.group(1) == "80" and float(m.group(2)) <= TOL, out
    assert "bit for bit: True" in out


def test_the_model_is_a_streamable_graph(trained):
    d, _ = trained
    m = edgegru.load(d / "model" / "rnnoise.egru")
    assert m.is_graph and [o.name for o in m.outputs] == ["gains", "vad"]
    assert [(o.kind, o.width) for o in m.outputs] == [("sequence", 12), ("sequence", 1)]
    s = m.stream()
    assert s.state_names == ["vad_gru", "noise_gru", "denoise_gru"]


def _c_frames(proc: subprocess.CompletedProcess) -> np.ndarray:
    rows = [line.split() for line in proc.stdout.splitlines() if re.match(r"^[-0-9.]", line)]
    return np.array(rows, dtype=np.float64)


def test_c_host_stream_within_tolerance_of_keras(trained, tmp_path):
    d, _ = trained
    want = np.load(d / "gen" / "keras.npy")
    proc = _run(["make", "-s", "-C", C_DIR, "host", f"GEN={d / 'gen'}", f"BUILD={tmp_path}"])
    got = _c_frames(proc)
    assert got.shape == want.shape == (80, 13)
    assert np.abs(got - want).max() <= TOL


def test_c_cortex_m4_stream_within_tolerance_of_keras(trained, tmp_path):
    d, _ = trained
    want = np.load(d / "gen" / "keras.npy")
    proc = _run(["make", "-s", "-C", C_DIR, "firmware", f"GEN={d / 'gen'}", f"BUILD={tmp_path}"])
    got = _c_frames(proc)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= TOL
    session = dict(re.findall(r"@(\w+) (\d+)", proc.stdout))
    assert 0 < int(session["session_bytes"]) <= 65536
