"""examples/translate.py --attention (issue #13, 6(a) "with and without attention"): the
decoder step attends over the encoder's output sequence (a third model input); Keras' greedy
loop and edgegru's give the same string for every test input (the example's own check, exit
0), the converted models are the graphs the example describes, and examples/translate_c (which
tells the models' inputs and outputs apart by kind) prints Keras' strings on the host and on a
Cortex-M4F in QEMU. Keras' own step models compute what its training model does (the example
checks it: the source mask reaches the step model's attention through Masking(0.0) on
left-padded sources). The C decoder step's low-memory arena is the same for 40 and 80 source
steps (issue #13: it does not depend on the sentence length), and the longer padding decodes to
the same strings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from test_translate import _padded

import edgegru

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "translate.py"
C_DIR = EXAMPLE.parent / "translate_c"


def test_attention_decoding_equals_keras(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, EXAMPLE, "--attention", "--epochs", "2", "--train", "2000",
           "--test", "60", "--units", "16", "--out-dir", tmp_path,
           "--c-dir", tmp_path / "gen", "--c-rows", "12"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    m = re.search(r"decoded strings equal to Keras': (\d+)/(\d+)", proc.stdout)
    assert m and m.group(1) == m.group(2) == "60", proc.stdout
    gap = re.search(r"against its training model \(teacher forcing\): (\S+)", proc.stdout)
    assert gap and float(gap.group(1)) <= 1e-5, proc.stdout
    enc = edgegru.load(tmp_path / "encoder.egru")
    step = edgegru.load(tmp_path / "decoder_step.egru")
    assert [o.kind for o in enc.outputs] == ["sequence", "vector"]
    assert [i.kind for i in step.inputs] == ["tokens", "vector", "features"]
    assert [o.kind for o in step.outputs] == ["sequence", "vector"]
    want = (tmp_path / "gen" / "keras.txt").read_text().split()
    arenas = {}
    for target in ("host", "firmware"):
        arenas[target] = _c_run(target, tmp_path / "gen", tmp_path / "build", want)
    longer = _padded(tmp_path / "gen", tmp_path / "gen80", 40)
    arenas["host80"] = _c_run("host", longer, tmp_path / "build80", want)
    step = {k: int(a["arena_decoder_step"]) for k, a in arenas.items()}
    assert step["host"] == step["host80"] == step["firmware"] > 0, arenas


def _c_run(target: str, gen: Path, build: Path, want: list) -> dict:
    """examples/translate_c built for target and run: its @arena lines; its strings == want."""
    make = ["make", "-s", "-C", C_DIR, target, f"GEN={gen}", f"BUILD={build}"]
    proc = subprocess.run(make, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line and line[0] != "@"]
    assert lines[-len(want) :] == want, target
    return dict(re.findall(r"@(\w+) (\d+)", proc.stdout))
