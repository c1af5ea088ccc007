"""The C runtime on its own: it compiles with the strict flags, runs its C unit tests (plain and
under AddressSanitizer/UBSan), and cross-compiles for a Cortex-M4F. Tools missing here is a test
failure, not a skip: .ci/run installs them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

EXT = Path(__file__).resolve().parents[1] / "ext"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
CORTEX_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os"]
SOURCES = sorted(str(p.relative_to(EXT)) for p in EXT.glob("src/**/*.c"))


def _run(cmd, **kw) -> str:
    proc = subprocess.run(cmd, cwd=EXT, capture_output=True, text=True, **kw)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out}"
    return out


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (.ci/run installs it with apt-get)"
    return path


@pytest.mark.parametrize("compiler", ["cc", "arm-none-eabi-gcc"])
def test_every_source_compiles_alone_with_strict_flags(compiler, tmp_path):
    cc = _tool(compiler)
    flags = STRICT + (CORTEX_M4 if compiler.startswith("arm") else [])
    for src in SOURCES:
        _run([cc, *flags, "-Iinclude", "-Isrc", "-c", src, "-o", str(tmp_path / "x.o")])


def _summary(out: str) -> tuple[int, int]:
    """Totals over the C test programs' "N passed, N failed" lines (one per program)."""
    lines = re.findall(r"^(\d+) passed, (\d+) failed$", out, re.MULTILINE)
    assert len(lines) == 3, out  # test_runtime, test_session, test_kernels
    return sum(int(p) for p, _ in lines), sum(int(f) for _, f in lines)


@pytest.mark.parametrize("target", ["check", "check-sanitize"])
def test_c_unit_tests(target, tmp_path):
    _tool("make")
    out = _run(["make", "-s", f"BUILD={tmp_path}", target])
    passed, failed = _summary(out)
    assert failed == 0 and passed > 200, out


def test_avx512_kernels_under_simde_emulation(tmp_path):
    """`make check-avx512-emulated`: the whole library and the three C test programs built with
    the AVX-512 kernels compiled against SIMDe (no AVX-512 CPU needed; AVX2 underneath), so the
    avx512 set is tested against exact results, both of its int8 products (vpmaddubsw and VNNI
    vpdpbusd) bit for bit against the reference, and whole models run on it (AUTO picks it)."""
    _tool("make")
    simde = Path("/usr/include/simde/x86/avx512.h")
    assert simde.is_file(), (
        f"SIMDe is not installed ({simde} missing): install libsimde-dev "
        "(tools/install-system-deps.sh does)"
    )
    out = _run(["make", "-s", f"BUILD={tmp_path}", "check-avx512-emulated"], timeout=900)
    passed, failed = _summary(out)
    assert failed == 0 and passed > 200, out
    sets = re.findall(r"^kernel set: (\w+)$", out, re.MULTILINE)
    assert "avx512" in sets, f"test_kernels did not test the avx512 set:\n{out}"
    assert "avx512: emulated (SIMDe), vnni present" in out, out
    variants = re.findall(r"^avx512 int8 variant tested: (\w+)$", out, re.MULTILINE)
    assert sorted(variants) == ["avx512bw", "avx512vnni"], out
    assert "kernel set chosen by auto: avx512" in out, out  # whole models ran on it


def test_cortex_m4_library_builds(tmp_path):
    _tool("arm-none-eabi-gcc")
    out = _run(["make", "-s", f"BUILD={tmp_path}", "cortex-m4"])
    total = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+\w+\s+\(TOTALS\)", out, re.MULTILINE)
    assert total, out
    text = int(total.group(1))
    # Flash budget of the WHOLE library (every op and kernel; a firmware links only what its model
    # uses). 16 KiB until 0.2.0's full validation of hostile files (finite weights, dtype rules,
    # the int8 width bound), the NaN rules and the session snapshot took it to ~16.6 KiB.
    assert 0 < text < 17 * 1024, f"runtime code size {text} bytes"
    # No dynamic allocation anywhere in the runtime.
    nm = _run(["arm-none-eabi-nm", "-u", str(tmp_path / "cortex-m4" / "libedgegru.a")])
    for symbol in ("malloc", "calloc", "realloc", "free"):
        assert not re.search(rf"\b{symbol}\b", nm), f"the runtime references {symbol}"
