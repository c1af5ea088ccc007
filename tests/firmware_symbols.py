"""Which floating-point helper and libm symbols a linked firmware image holds.

    from firmware_symbols import float_symbols
    found = float_symbols("build/m0/edgegru.elf")
    assert not found, f"the image uses floating point: {sorted(found)}"

An integer-only build (issue #12's int16x8 firmware) must reference no soft-float routine and no
libm function. This reads the ELF's symbol table itself (32- and 64-bit, little- and big-endian;
no binutils needed, whatever the architecture) and keeps every symbol, defined or undefined, whose
name is one of:

  soft-float  compiler-runtime floating-point helpers: Arm's run-time ABI (`__aeabi_fadd`,
              `__aeabi_dmul`, `__aeabi_cfcmple`, `__aeabi_i2f`, `__aeabi_l2d`, `__aeabi_f2h`, ...:
              every `__aeabi_f*`, `__aeabi_d*`, `__aeabi_c[fd]*` and `__aeabi_*2[fdh]`) and GCC's
              libgcc names, which RISC-V, the M0's libgcc internals and every other target use
              (`__addsf3`, `__subdf3`, `__mulsf3`, `__divsf3`, `__negsf2`, `__eqsf2`, `__ltdf2`,
              `__unordsf2`, `__cmpsf2`, `__fixsfsi`, `__fixunsdfdi`, `__floatsisf`,
              `__floatundidf`, `__extendsfdf2`, `__truncdfsf2`, `__powisf2`, `__mulsc3`, ... in
              the sf / df / tf / xf / hf widths), and Arm's `__gnu_f2h_ieee` / `__gnu_h2f_ieee`;
  libm        the functions of C99's <math.h> in their float, double and long double forms
              (`expf`, `tanhf`, `expm1f`, `log1pf`, `sqrtf`, `exp`, `floorf`, `fabsf`,
              `ldexpf`, ...), the classification helpers behind its macros (`__fpclassifyf`,
              `__isnanf`, `__isinff`, `__finitef`, `__signbitf`, ...) and the internals newlib and
              picolibc build them from (`__ieee754_expf`, `__kernel_tanf`, `__math_oflowf`,
              `__exp2f_data`, `__expo2f`, ...).

Integer helpers (`__aeabi_idiv`, `__aeabi_ldivmod`, `__udivdi3`, `__mulsi3`, `__clzsi2`, ...) and
libc's string functions are not floating point and are not reported.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

SOFT_FLOAT = "soft-float"
LIBM = "libm"

_W = "[sdtxh]f"  # libgcc's mode suffixes: single, double, tetra (quad), extended, half
_SOFT_FLOAT = re.compile(
    "|".join(
        [
            r"__aeabi_[fd]\w+",  # fadd, dmul, f2iz, d2f, fcmpeq, dneg, ...
            r"__aeabi_c[fd]\w+",  # cfcmpeq, cdrcmple, ...
            r"__aeabi_u?[il]2[fdh]",  # i2f, ui2d, l2f, ul2d
            r"__aeabi_[hf]2[hf]",  # f2h, h2f
            rf"__(add|sub|mul|div){_W}3",
            rf"__neg{_W}2",
            rf"__(eq|ne|lt|le|gt|ge|unord|cmp){_W}2",
            rf"__fix(uns)?{_W}(si|di|ti)",
            rf"__float(un)?(si|di|ti){_W}",
            rf"__(extend|trunc){_W}{_W}2",
            rf"__powi{_W}2",
            r"__(mul|div)[sdtxh]c3",
            r"__gnu_(f2h|h2f)_(ieee|alternative)",
            r"__gnu_d2h_(ieee|alternative)",
        ]
    )
)

_MATH = (
    "acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1 frexp ilogb "
    "ldexp log log10 log1p log2 logb modf scalbn scalbln cbrt fabs hypot pow sqrt erf erfc lgamma "
    "tgamma ceil floor nearbyint rint lrint llrint round lround llround trunc fmod remainder "
    "remquo copysign nan nextafter nexttoward fdim fmax fmin fma sincos exp10 pow10 finite"
).split()
#: the <math.h> functions themselves (a variable of that name, an STT_OBJECT, is not one)
_MATH_FUNCTION = re.compile(rf"({'|'.join(_MATH)})[fl]?")
_LIBM = re.compile(
    "|".join(
        [
            r"__(fpclassify|isnan|isinf|finite|signbit|issignaling)[fdl]?",
            r"(isnan|isinf)[fl]?",
            r"__ieee754_\w+",
            r"__kernel_\w+",
            r"__math_\w+",  # picolibc / Arm optimized-routines error paths: __math_oflowf, ...
            r"__(exp|exp2|log|log2|pow|sincos|inv_trig|erf)f?_data",
            r"__(expo2|ldexp_exp)f?",
            r"__(sin|cos)f_poly",
        ]
    )
)


def classify(name: str, is_object: bool = False) -> str | None:
    """SOFT_FLOAT, LIBM or None (anything else) for the symbol name `name`; `is_object`: the
    symbol is a variable (STT_OBJECT), which a <math.h> function name does not make libm."""
    if _SOFT_FLOAT.fullmatch(name):
        return SOFT_FLOAT
    if _LIBM.fullmatch(name) or (not is_object and _MATH_FUNCTION.fullmatch(name)):
        return LIBM
    return None


@dataclass(frozen=True)
class Symbol:
    """One floating-point symbol of an image: its kind (SOFT_FLOAT or LIBM), whether the image
    defines it (False: only referenced, an undefined symbol), its address and its st_size in
    bytes (0 for an undefined symbol, and for hand-written assembly that sets no size)."""

    name: str
    kind: str
    defined: bool
    address: int
    size: int


@dataclass(frozen=True)
class ElfSymbol:
    """A named symbol of an ELF symbol table."""

    name: str
    defined: bool  # st_shndx != SHN_UNDEF
    is_object: bool  # STT_OBJECT
    address: int  # st_value
    size: int  # st_size


def elf_symbols(path) -> list[ElfSymbol]:
    """Every named symbol of the ELF file `path` (its .symtab, else its .dynsym), files and
    sections excluded. Raises ValueError for a file that is not ELF or has no symbol table (a
    stripped image cannot be checked)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or len(data) < 52:
        raise ValueError(f"{path}: not an ELF file")
    wide = {1: False, 2: True}.get(data[4])
    order = {1: "<", 2: ">"}.get(data[5])
    if wide is None or order is None:
        raise ValueError(f"{path}: unknown ELF class {data[4]} or data encoding {data[5]}")
    if wide:
        shoff, shentsize, shnum = struct.unpack_from(order + "Q10xHH", data, 40)
        shdr, sym, symsize = order + "IIQQQQIIQQ", order + "IBBHQQ", 24
    else:
        shoff, shentsize, shnum = struct.unpack_from(order + "I10xHH", data, 32)
        shdr, sym, symsize = order + "IIIIIIIIII", order + "IIIBBH", 16
    sections = [struct.unpack_from(shdr, data, shoff + k * shentsize) for k in range(shnum)]
    by_type = {s[1]: s for s in reversed(sections)}  # the first of each type
    table = by_type.get(2) or by_type.get(11)  # SHT_SYMTAB, else SHT_DYNSYM
    if table is None:
        raise ValueError(f"{path}: no symbol table (stripped?)")
    offset, size, link = table[4], table[5], table[6]
    strtab_offset = sections[link][4]
    out = []
    for at in range(offset + symsize, offset + size, symsize):  # entry 0 is the null symbol
        if wide:
            name_off, info, _, shndx, value, st_size = struct.unpack_from(sym, data, at)
        else:
            name_off, value, st_size, info, _, shndx = struct.unpack_from(sym, data, at)
        if info & 0xF in (3, 4):  # STT_SECTION, STT_FILE
            continue
        end = data.index(b"\0", strtab_offset + name_off)
        name = data[strtab_offset + name_off : end].decode("utf-8", "replace")
        if name:
            out.append(ElfSymbol(name, shndx != 0, info & 0xF == 1, value, st_size))
    return out


def float_symbols(path) -> dict[str, Symbol]:
    """{name: Symbol} of every soft-float helper and libm symbol the linked image `path` defines
    or references (see the module doc); empty for an integer-only image."""
    found: dict[str, Symbol] = {}
    for s in elf_symbols(path):
        kind = classify(s.name, s.is_object)
        if kind is not None:
            old = found.get(s.name)
            if old is None or (s.defined and not old.defined):
                found[s.name] = Symbol(s.name, kind, s.defined, s.address, s.size)
    return found


def total_size(found: dict[str, Symbol], kind: str | None = None) -> int:
    """Bytes of the defined symbols of `found` (of one kind, or all), each address counted once
    (libgcc defines aliases: __eqsf2 and __nesf2 are one routine)."""
    sizes: dict[int, int] = {}
    for s in found.values():
        if s.defined and (kind is None or s.kind == kind):
            sizes[s.address] = max(sizes.get(s.address, 0), s.size)
    return sum(sizes.values())


def describe(found: dict[str, Symbol]) -> str:
    """One line per kind: 'soft-float (10 symbols, 4,622 bytes): __addsf3, __divsf3, ...'."""
    lines = []
    for kind in (SOFT_FLOAT, LIBM):
        names = sorted(n for n, s in found.items() if s.kind == kind)
        if names:
            size = total_size(found, kind)
            lines.append(f"{kind} ({len(names)} symbols, {size:,} bytes): {', '.join(names)}")
    return "\n".join(lines)
