"""One GRU step at batch 1, per part (recurrent product, fused gates) and as a chain of dependent
steps, for every SIMD kernel set this CPU has, on the shapes of the benchmark workloads: builds
ext/ (make, host compiler) and benchmarks/bench_gru_step.c against it, then runs that on one core
(`taskset -c 1` where it exists) and prints the CPU and, per shape, part and set, the median over
rounds of ns per call and of the per-round ratio to the first set (below 1 is faster).

    .venv/bin/python benchmarks/gru_step.py [--rounds 31] [--misalign 16]

--misalign puts every buffer that many bytes past a 64-byte boundary (what a 16-byte aligned
allocation may give): the cost of streaming weights that do not start a cache line.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from kernels_s16 import _cpu  # noqa: E402 (the same CPU description)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=31, help="timing rounds (default 31)")
    ap.add_argument("--misalign", type=int, default=0, help="bytes past a 64-byte boundary")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if args.misalign < 0 or args.misalign % 4 or args.misalign >= 64:
        ap.error("--misalign must be a multiple of 4 below 64")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("no C compiler (cc) found", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp) / "build"
        subprocess.run(["make", "-s", "-C", str(ROOT / "ext"), f"BUILD={build}", "all"], check=True)
        exe = Path(tmp) / "bench_gru_step"
        inc = ["-I", str(ROOT / "ext/include"), "-I", str(ROOT / "ext/src")]
        src, lib = ROOT / "benchmarks/bench_gru_step.c", build / "host/libedgegru.a"
        flags = ["-std=c99", "-O2", "-D_POSIX_C_SOURCE=200809L", "-D_ISOC11_SOURCE", *inc]
        subprocess.run([cc, *flags, str(src), str(lib), "-lm", "-o", str(exe)], check=True)
        cmd = [str(exe), str(args.rounds), str(args.misalign)]
        if shutil.which("taskset"):
            cmd = ["taskset", "-c", "1", *cmd]
        print(f"CPU: {_cpu()}; one core; buffers {args.misalign} bytes past 64-byte boundaries")
        return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
