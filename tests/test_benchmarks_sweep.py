"""benchmarks/sweep.py (the latency table across sizes, docs/benchmarks.md) runs end to end on a
tiny configuration: it prints the machine, the table and the verdicts, and writes the CSV, the
JSON and the PNG. No timing is asserted (speed belongs in the benchmark, not in a unit test);
the script itself refuses to time a model whose outputs disagree with onnxruntime's."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "benchmarks" / "sweep.py"


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SWEEP), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_sweep_quick_prints_table_and_writes_png(tmp_path):
    out_dir = tmp_path / "out"
    proc = _run(
        "--quick",
        "--sizes", "16",
        "--inputs", "4",
        "--batches", "1,2",
        "--steps", "10",
        "--rounds", "3",
        "--keras-rounds", "1",
        "--out", str(out_dir),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.startswith("machine: "), out
    assert "pinned: " in out and "SIMD: " in out and "kernel set " in out, out
    lines = out.splitlines()
    head = next(
        i for i, line in enumerate(lines) if line.split()[:4] == ["H", "I", "batch", "dtype"]
    )
    rows = [line.split() for line in lines[head + 1 : head + 5]]
    # H I batch dtype edgegru_us ort_us ratio [q1, q3] keras_us
    got = sorted((r[0], r[1], r[2], r[3]) for r in rows)
    want = sorted(
        (h, i, b, d) for h in ["16"] for i in ["4"] for b in "12" for d in ["fp32", "int8"]
    )
    assert got == want, out
    for r in rows:
        e_us, o_us, ratio = float(r[4]), float(r[5]), float(r[6])
        q1, q3 = float(r[7].strip("[,")), float(r[8].strip("]"))
        assert e_us > 0 and o_us > 0 and q1 <= ratio <= q3, r
        # Keras is timed at batch 1 only (--keras-batches' default).
        assert (r[9] != "-") == (r[2] == "1"), r
    for batch in (1, 2):
        for dtype in ("fp32", "int8"):
            assert any(line.startswith(f"batch {batch} {dtype}: ratio ") for line in lines), out

    png = out_dir / "sweep.png"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(data) < 500_000, len(data)
    with open(out_dir / "sweep.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4, table
    doc = json.loads((out_dir / "sweep.json").read_text())
    key = ("hidden", "input", "batch", "dtype")
    assert [tuple(str(r[k]) for k in key) for r in doc["rows"]] == [
        tuple(r[k] for k in key) for r in table
    ], (doc["rows"], table)
    assert doc["machine"]["steps"] == 10 and doc["machine"]["kernels_picked"], doc["machine"]


def test_sweep_bad_option_is_a_clear_error():
    proc = _run("--sizes", "0,16", timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "expected positive integers" in proc.stderr, proc.stderr
