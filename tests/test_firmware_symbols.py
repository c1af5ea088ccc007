"""tests/firmware_symbols.py, the check that a linked firmware image uses no floating point: it
must find the soft-float helpers today's fp32 images carry on the Cortex-M0 (examples/cortex_m,
BOARD=m0) and on rv32imc (examples/riscv), agree with binutils' nm on them, report a libm call,
and find nothing in an integer-only image (whose integer helpers are not floating point)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from firmware_symbols import LIBM, SOFT_FLOAT, classify, describe, float_symbols, total_size

ROOT = Path(__file__).resolve().parents[1]
EGRU2C = ROOT / "tools" / "egru2c.py"
sys.path.insert(0, str(ROOT / "examples" / "cortex_m"))
import make_model  # noqa: E402

#: target -> (example directory, make variables, compiler, its flags, nm)
TARGETS = {
    "m0": (
        ROOT / "examples" / "cortex_m",
        ["BOARD=m0"],
        "arm-none-eabi-gcc",
        ["-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft"],
        "arm-none-eabi-nm",
    ),
    "rv32imc": (
        ROOT / "examples" / "riscv",
        [],
        "riscv64-unknown-elf-gcc",
        ["-march=rv32imc", "-mabi=ilp32"],
        "riscv64-unknown-elf-nm",
    ),
}
#: helpers the fp32 GRU step needs on each core (float add, multiply, divide, compare)
EXPECTED = {
    "m0": {"__aeabi_fadd", "__aeabi_fmul", "__aeabi_fdiv", "__aeabi_fcmplt"},
    "rv32imc": {"__addsf3", "__mulsf3", "__divsf3", "__ltsf2"},
}


def _run(cmd, cwd=ROOT) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _nm_float_symbols(nm: str, elf: Path) -> dict[str, int]:
    """{name: size} of the floating-point symbols by binutils' nm (the independent reading of the
    symbol table), classified with the same names."""
    out = {}
    for line in _run([nm, "-S", elf]).splitlines():
        fields = line.split()  # [address [size]] type name
        name, kind = fields[-1], fields[-2]
        if classify(name, is_object=kind in "bBdDgGrRsSvV"):
            size = int(fields[1], 16) if len(fields) == 4 else 0
            out[name] = max(out.get(name, 0), size)
    return out


def test_classify_names():
    soft = [
        "__aeabi_fadd",
        "__aeabi_dmul",
        "__aeabi_f2iz",
        "__aeabi_d2f",
        "__aeabi_cfcmple",
        "__aeabi_cdrcmple",
        "__aeabi_i2f",
        "__aeabi_ul2d",
        "__aeabi_f2h",
        "__addsf3",
        "__subdf3",
        "__mulsf3",
        "__divtf3",
        "__negsf2",
        "__eqsf2",
        "__ltdf2",
        "__unordsf2",
        "__fixsfsi",
        "__fixunsdfdi",
        "__floatsisf",
        "__floatundidf",
        "__extendsfdf2",
        "__truncdfsf2",
        "__powisf2",
        "__mulsc3",
        "__gnu_h2f_ieee",
    ]
    libm = [
        "expf",
        "tanhf",
        "expm1f",
        "log1pf",
        "sqrtf",
        "exp",
        "tanh",
        "floorf",
        "fabsf",
        "ldexpf",
        "powl",
        "__fpclassifyf",
        "__isnanf",
        "__ieee754_expf",
        "__kernel_tanf",
        "__math_oflowf",
        "__exp2f_data",
        "__expo2f",
    ]
    integer = [
        "__aeabi_idiv",
        "__aeabi_uidivmod",
        "__aeabi_ldivmod",
        "__aeabi_lmul",
        "__aeabi_llsl",
        "__aeabi_memcpy",
        "__udivdi3",
        "__divdi3",
        "__mulsi3",
        "__muldi3",
        "__clzsi2",
        "__ashldi3",
        "memcpy",
        "memset",
        "strlen",
        "egru_tanh_f32",
        "egru_sigmoid_f32",
        "egru_cm_exp",
        "expand",
        "floatbuf",
        "exponent",
    ]
    assert [n for n in soft if classify(n) != SOFT_FLOAT] == []
    assert [n for n in libm if classify(n) != LIBM] == []
    assert [n for n in integer if classify(n) is not None] == []
    assert classify("exp", is_object=True) is None  # a variable named exp
    assert classify("__exp2f_data", is_object=True) == LIBM  # libm's own table


@pytest.fixture(scope="module")
def fp32_images(tmp_path_factory):
    """The sensor model (6 -> GRU(64) -> Dense(4, softmax)), fp32, with its configuration header,
    printf-free, linked for the Cortex-M0 and for rv32imc."""
    d = tmp_path_factory.mktemp("fp32")
    py = sys.executable
    _run(
        [
            py,
            ROOT / "examples/cortex_m/make_model.py",
            "--model",
            "sensor",
            "--steps",
            4,
            "--out",
            d,
        ]
    )
    config = ["--config", d / "egru_config.h"]
    _run([py, EGRU2C, d / "model.egru", d / "model.h", "--name", "model", *config])
    _run([py, EGRU2C, d / "x.npy", d / "input.h", "--name", "input"])
    _, low = make_model.arena_sizes((d / "model.egru").read_bytes(), 1, 4)
    images = {}
    for target, (example, variables, *_rest) in TARGETS.items():
        build = d / target
        make = ["make", "-s", "-j2", *variables, "OUTPUT=hex", f"BUILD={build}"]
        make += [f"MODEL_H={d / 'model.h'}", f"INPUT_H={d / 'input.h'}", f"ARENA_BYTES={low}"]
        _run([*make, f"CONFIG_H={d / 'egru_config.h'}", "MAX_OUTPUTS=64"], cwd=example)
        images[target] = build / "edgegru.elf"
    return images


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_finds_soft_float_in_fp32_images(fp32_images, target):
    elf = fp32_images[target]
    found = float_symbols(elf)
    assert EXPECTED[target] <= set(found), describe(found)
    assert all(found[n].kind == SOFT_FLOAT and found[n].defined for n in EXPECTED[target])
    # The same names and sizes as binutils' nm reads from the image.
    nm = _nm_float_symbols(TARGETS[target][4], elf)
    assert set(found) == set(nm), (sorted(found), sorted(nm))
    assert {n: s.size for n, s in found.items()} == nm
    assert total_size(found, SOFT_FLOAT) > 1000, describe(found)


def _compile(tmp_path: Path, target: str, source: str, link: bool) -> Path:
    _, _, cc, flags, _ = TARGETS[target]
    src = tmp_path / f"{target}.c"
    src.write_text(source)
    out = tmp_path / (f"{target}.elf" if link else f"{target}.o")
    cmd = [cc, *flags, "-Os", "-std=c99", "-Wall", "-Werror", src, "-o", out]
    if link:  # no libc: what the code needs from libgcc only, entry point `entry`
        cmd += ["-nostdlib", "-nostartfiles", "-Wl,-e,entry", "-lgcc"]
    else:
        cmd += ["-c"]
    _run(cmd)
    return out


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_integer_image_has_none_and_a_libm_call_is_found(tmp_path, target):
    # 64-bit division (and on the M0 32-bit division) come from libgcc's integer helpers.
    integer = """
        volatile long long a = 1000000007, b = 12345;
        volatile int c = 77, d = 5;
        int entry(void);
        int entry(void) { return (int)(a / b) + c / d + (int)(a % b); }
    """
    elf = _compile(tmp_path, target, integer, link=True)
    helpers = _run([TARGETS[target][4], elf])
    assert re.search(r"__(aeabi_ldivmod|divdi3|moddi3)", helpers), helpers  # linked, not flagged
    assert float_symbols(elf) == {}, describe(float_symbols(elf))

    # An object that calls tanhf and converts an int to float: the references are reported, as
    # undefined symbols.
    uses_float = """
        #include <math.h>
        float f(int x);
        float f(int x) { return tanhf((float)x); }
    """
    if target == "rv32imc":  # no libc headers without picolibc's specs
        uses_float = uses_float.replace("#include <math.h>", "float tanhf(float);")
    obj = _compile(tmp_path, target, uses_float, link=False)
    found = float_symbols(obj)
    assert found["tanhf"].kind == LIBM and not found["tanhf"].defined, describe(found)
    conversion = "__aeabi_i2f" if target == "m0" else "__floatsisf"
    assert found[conversion].kind == SOFT_FLOAT, describe(found)


def test_not_an_elf_file_is_refused(tmp_path):
    bad = tmp_path / "image.bin"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not an ELF file"):
        float_symbols(bad)
