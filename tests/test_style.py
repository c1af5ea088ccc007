"""Machines keep the style: ruff for Python, clang-format for C (config in .clang-format)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY_DIRS = ["src", "tests", "tools", "benchmarks", "examples"]


def _run(cmd) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint():
    proc = _run([sys.executable, "-m", "ruff", "check", *PY_DIRS])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format():
    proc = _run([sys.executable, "-m", "ruff", "format", "--check", *PY_DIRS])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_clang_format():
    tool = shutil.which("clang-format")
    assert tool, "clang-format is not installed (.ci/run installs it with apt-get)"
    files = sorted(str(p) for p in (ROOT / "ext").rglob("*.[ch]") if "build" not in p.parts)
    proc = _run([tool, "--dry-run", "--Werror", *files])
    assert proc.returncode == 0, proc.stdout + proc.stderr
