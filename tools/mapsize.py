#!/usr/bin/env python3
"""Attribute every input section of a GNU ld map file (-Wl,-Map) of the firmware examples.

    python tools/mapsize.py examples/cortex_m/build/m4f/edgegru.map [--json]
    python tools/mapsize.py examples/riscv/build/rv32imc/edgegru.map

Each input section the link kept goes to one owner:
  runtime   objects compiled from ext/src (a path containing /ext/src/)
  libm      newlib's libm.a members; picolibc's libm_* members of its libc.a (picolibc has its
            libm inside libc.a)
  libgcc    libgcc.a members (soft float, 64-bit division, ...)
  libc      newlib's libc / libc_nano / libg_nano / librdimon / libnosys members, picolibc's
            libc / libsemihost / libdummyhost members
  model     model.o's .rodata.model: the model blob (the array egru2c writes)
  input     main.o's .rodata.input: the input array
  harness   the rest of main.o, model.o and startup.o (examples/cortex_m)
  other     anything else (linker stubs)
and to one kind by its section name: text (.text*, .ARM.ex*), rodata (.rodata*), data (.data*:
flash for its initial values and RAM), bss (.bss*, COMMON: RAM only); RISC-V's small-data
sections count as their kind (.srodata*: rodata, .sdata*: data, .sbss*: bss) and so do the
thread-local ones (.tdata*: data, .tbss*: bss). Alignment padding (*fill*)
is charged to the section it aligns (the next one). Sections discarded by --gc-sections are not
in the result. flash = text + rodata + data; ram = data + bss (the stack is not a section).
Needs only the standard library.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

OWNERS = ("runtime", "libm", "libgcc", "libc", "model", "input", "harness", "other")
KINDS = ("text", "rodata", "data", "bss")

_SECTION = re.compile(r"^ (\S+)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(.+))?$")
_CONT = re.compile(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(.+)$")
_FILL = re.compile(r"^ \*fill\*\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)")


def owner_of(section: str, path: str) -> str:
    """The owner (OWNERS) of input section `section` of object `path` (as the map names it)."""
    p = path.replace("\\", "/")
    if "/ext/src/" in p or p.startswith("ext/src/"):
        return "runtime"
    member = re.search(r"([^/]+)\.a\(([^)]*)", p)
    if member:
        lib = member.group(1)
        if lib == "libm" or (lib == "libc" and member.group(2).startswith("libm_")):
            return "libm"
        if lib == "libgcc":
            return "libgcc"
        if lib in (
            "libc",
            "libc_nano",
            "libg",
            "libg_nano",
            "librdimon",
            "librdimon_nano",
            "libnosys",
            "libsemihost",
            "libdummyhost",
        ):
            return "libc"
        return "other"
    name = p.rsplit("/", 1)[-1]
    if name == "model.o":
        return "model" if section.startswith(".rodata.model") else "harness"
    if name == "main.o":
        if section.startswith(".rodata.input"):
            return "input"
        return "harness"
    if name == "startup.o":
        return "harness"
    return "other"


def kind_of(section: str) -> str | None:
    """The kind (KINDS) of an input section, None for sections that take no memory (debug...)."""
    if section.startswith((".text", ".ARM.ex", ".glue_7", ".vfp11_veneer", ".v4_bx", ".iplt")):
        return "text"
    if section.startswith((".rodata", ".srodata")):
        return "rodata"
    if section.startswith((".data", ".sdata", ".tdata", ".igot", ".init_array", ".fini_array")):
        return "data"
    if section.startswith((".bss", ".sbss", ".tbss", "COMMON")):
        return "bss"
    if section in (".vectors", ".init", ".fini"):
        return "text"
    return None


def attribute(map_text: str) -> dict[str, dict[str, int]]:
    """{owner: {kind: bytes}} over every input section the link kept (see the module doc)."""
    body = map_text.split("Linker script and memory map", 1)
    if len(body) != 2:
        raise ValueError("not a GNU ld map file (no 'Linker script and memory map')")
    out: dict[str, dict[str, int]] = {o: dict.fromkeys(KINDS, 0) for o in OWNERS}
    lines = body[1].splitlines()
    fill = 0
    pending = None  # a section name whose address and size are on the next line
    for line in lines:
        if pending is not None:
            m = _CONT.match(line)
            section, pending = pending, None
            if m:
                fill = _add(out, section, int(m.group(2), 16), m.group(3), fill)
                continue
        m = _FILL.match(line)
        if m:
            fill += int(m.group(2), 16)
            continue
        if line.startswith(" *") or not line.startswith(" ") or line.startswith("  "):
            if line and not line.startswith(" "):
                fill = 0  # a new output section: padding at the end of the last one is dropped
            continue
        m = _SECTION.match(line)
        if not m:
            continue
        if m.group(2) is None:
            pending = m.group(1)
        else:
            fill = _add(out, m.group(1), int(m.group(3), 16), m.group(4), fill)
    return out


def _add(out, section: str, size: int, path: str, fill: int) -> int:
    kind = kind_of(section)
    path = path.strip()
    if kind is None or path.startswith("load address"):
        return 0
    if size == 0:
        return fill  # keep the padding for the next section with content
    out[owner_of(section, path)][kind] += size + fill
    return 0


def summary(attr: dict[str, dict[str, int]]) -> dict[str, int]:
    """Totals: flash and ram per owner, and `code`: the flash of runtime + libm + libgcc + libc
    (what the size budget counts: no model, no input, no harness)."""
    res = {}
    for owner, kinds in attr.items():
        res[f"{owner}_flash"] = kinds["text"] + kinds["rodata"] + kinds["data"]
        res[f"{owner}_ram"] = kinds["data"] + kinds["bss"]
    res["code"] = sum(res[f"{o}_flash"] for o in ("runtime", "libm", "libgcc", "libc"))
    res["flash"] = sum(res[f"{o}_flash"] for o in OWNERS)
    res["ram"] = sum(res[f"{o}_ram"] for o in OWNERS)
    return res


def table(attr: dict[str, dict[str, int]]) -> str:
    """A markdown table: one row per owner, bytes per kind, flash and RAM."""
    rows = [
        "| owner | text | rodata | data | bss | flash | RAM |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    tot = defaultdict(int)
    for owner in OWNERS:
        k = attr[owner]
        flash, ram = k["text"] + k["rodata"] + k["data"], k["data"] + k["bss"]
        for key, v in (*k.items(), ("flash", flash), ("ram", ram)):
            tot[key] += v
        if flash or ram:
            cells = [owner, *(str(k[kind]) for kind in KINDS), str(flash), str(ram)]
            rows.append("| " + " | ".join(cells) + " |")
    cells = ["total", *(str(tot[key]) for key in (*KINDS, "flash", "ram"))]
    rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("map", type=Path)
    ap.add_argument("--json", action="store_true", help="print {owner: {kind: bytes}} as JSON")
    args = ap.parse_args(argv)
    try:
        attr = attribute(args.map.read_text())
    except (OSError, ValueError) as e:
        print(f"mapsize: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"sections": attr, "summary": summary(attr)}, indent=1))
    else:
        print(table(attr))
        s = summary(attr)
        print(f"\nruntime + libm + libgcc + libc flash: {s['code']} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
