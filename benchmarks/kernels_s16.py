"""The int16x8 product (egru_matvec_s8_s16) of every kernel set this CPU has, against the
reference in the same run: builds ext/ (make, host compiler) and benchmarks/bench_matvec_s8_s16.c
against it, then runs that on one core (`taskset -c 1` where it exists) and prints the CPU and, per
shape and set, the median over rounds of the per-round time ratio set / reference (below 1 is
faster) with its quartiles.

    .venv/bin/python benchmarks/kernels_s16.py [--rounds 31]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    name = fields.get("Model name", "").strip()
    flags = fields.get("Flags", "").split()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni") if f in flags]
    return f"{name} ({', '.join(simd) or platform.machine()})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=31, help="timing rounds (default 31)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("no C compiler (cc) found", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp) / "build"
        subprocess.run(["make", "-s", "-C", str(ROOT / "ext"), f"BUILD={build}", "all"], check=True)
        exe = Path(tmp) / "bench_matvec_s8_s16"
        inc = ["-I", str(ROOT / "ext/include"), "-I", str(ROOT / "ext/src")]
        src, lib = ROOT / "benchmarks/bench_matvec_s8_s16.c", build / "host/libedgegru.a"
        flags = ["-std=c99", "-O3", "-D_POSIX_C_SOURCE=200809L", *inc]
        subprocess.run([cc, *flags, str(src), str(lib), "-lm", "-o", str(exe)], check=True)
        cmd = [str(exe), str(args.rounds)]
        if shutil.which("taskset"):
            cmd = ["taskset", "-c", "1", *cmd]
        print(f"CPU: {_cpu()}; one core ({' '.join(cmd[:3]) if cmd[0] == 'taskset' else 'any'})")
        return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
