"""The in-tree fuzzer (ext/fuzz/, docs/security.md): the libFuzzer harness over the public C API
runs briefly under ASan + UBSan and under MSan, and any crash, sanitizer report, broken API
contract, timeout or leak fails the test with the report and the saved input. The seed corpus
must be what tools/gen_fuzz_corpus.py writes today.

clang (with libFuzzer and the sanitizer runtimes) missing is a failure, not a skip: run
tools/install-system-deps.sh.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "ext"

#: Seconds of fuzzing per mode and per pytest pass (`make test` runs pytest twice, so about a
#: minute per mode in all). EDGEGRU_FUZZ_SECONDS overrides it for a longer local run.
FUZZ_SECONDS = int(os.environ.get("EDGEGRU_FUZZ_SECONDS", "30"))
#: Fewer executions than this in FUZZ_SECONDS means the harness did not really run (the seed
#: corpus alone is ~120 inputs; the harness does thousands per second under ASan).
MIN_EXECUTIONS = 20 * FUZZ_SECONDS
#: Building a sanitized runtime plus the harness takes about a minute on two cores.
BUILD_TIMEOUT = 900


def _need_clang() -> None:
    clang = shutil.which("clang")
    assert clang, "clang is not installed: run tools/install-system-deps.sh (make test does)"
    rt = subprocess.run([clang, "--print-runtime-dir"], capture_output=True, text=True).stdout
    fuzzer = list(Path(rt.strip()).glob("libclang_rt.fuzzer-*.a")) if rt.strip() else []
    assert fuzzer, (
        "clang's libFuzzer runtime (libclang-rt-dev) is missing: run tools/install-system-deps.sh"
    )


def _report(out: str) -> str:
    """The sanitizer / contract report of a failed run, and where libFuzzer saved the input."""
    lines = out.splitlines()
    start = next(
        (
            i
            for i, line in enumerate(lines)
            if re.search(r"ERROR: |runtime error:|WARNING: MemorySanitizer|contract broken", line)
        ),
        max(0, len(lines) - 60),
    )
    saved = re.findall(r"Test unit written to (\S+)", out)
    return "\n".join(lines[start : start + 80]) + "\nsaved input: " + (", ".join(saved) or "none")


@pytest.mark.parametrize("mode", ["asan", "msan"])
def test_fuzzer_finds_nothing(mode):
    """`make -C ext fuzz` (ASan + UBSan, every kernel set of this CPU) and `make -C ext
    fuzz-msan` (MSan, reference kernels), FUZZ_SECONDS each, over the seed corpus and the
    corpus earlier runs grew in ext/build/fuzz/."""
    _need_clang()
    target = "fuzz" if mode == "asan" else "fuzz-msan"
    proc = subprocess.run(
        ["make", "-s", "-C", str(EXT), target, f"FUZZ_SECONDS={FUZZ_SECONDS}"],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT + 3 * FUZZ_SECONDS,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the {mode} fuzzer failed:\n" + _report(out)
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    assert runs, out[-3000:]
    assert int(runs.group(1)) >= MIN_EXECUTIONS, out[-3000:]


def test_seed_corpus_is_current(tmp_path):
    """ext/fuzz/corpus is exactly what tools/gen_fuzz_corpus.py writes (regenerate it with
    `make -C ext fuzz-corpus` after changing the writer or the test models)."""
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_fuzz_corpus.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    committed = {p.name: p.read_bytes() for p in (EXT / "fuzz" / "corpus").glob("seed-*")}
    fresh = {p.name: p.read_bytes() for p in tmp_path.glob("seed-*")}
    assert sorted(committed) == sorted(fresh), "run make -C ext fuzz-corpus"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale seeds {stale}: run make -C ext fuzz-corpus"
    assert len(fresh) > 100
