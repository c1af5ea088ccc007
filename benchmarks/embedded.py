#!/usr/bin/env python3
"""Flash, RAM and instructions per step of edgegru on Cortex-M and RISC-V boards in QEMU
(docs/embedded.md).

    python benchmarks/embedded.py [--quick] [--boards m0plus,m3,m4f,m7,rv32imc]
                                  [--models seed,sensor,gru16] [--dtypes fp32,int8,int16x8]
                                  [--no-write]

For each model (examples/cortex_m/make_model.py: seed = Embedding(20000,128) -> GRU(128) ->
Dense(1), sensor = 6 -> GRU(64) -> Dense(4), gru16 = 8 -> GRU(16) -> Dense(1)), each dtype (fp32,
int8, int16x8: integer-only, calibrated on make_input data of its own seed) and each board,
builds the board's example (examples/cortex_m for the Arm boards, examples/riscv for rv32imc,
the same main.c) printf-free (OUTPUT=hex) at -Os with the configuration header tools/egru2c.py
writes for the model (when egru2c has --config; else the full runtime) and the smallest arena
the runtime accepts (egru_arena_size_min when it exists, else egru_arena_size), runs it in QEMU
with -icount shift=0 at two lengths T1 < T2 and reports:
  flash   runtime / libm+libgcc+libc / model bytes, from the link map (tools/mapsize.py)
  RAM     arena (fast plan), arena_min, session (egru_session_size(1) + the struct), stack
          high-water mark (main.c paints the stack)
  instr/step  (I(T2) - I(T1)) / (T2 - T1), instructions from SysTick (Arm) or minstret
              (RISC-V) calibrated on every run against a loop of known length (main.c)
  instr/MAC   instr/step / (GRU MACs per step 3H(I+H) + Dense MACs H*out)
  max |M - host|  the firmware's outputs against edgegru.load(blob).predict on this machine
                  (int16x8: its int16 outputs against predict_int, in int16 units)
A combination that does not fit the board's flash or RAM is reported as such, not run. The fp32
seed model (10 MB) fits no board here; its int8 file (2.6 MB) fits the 4 MB MPS2 boards and the
4 MB flash of the rv32imc map.
--quick: the gru16 model at short T, on m4f unless --boards is given, fp32 and int8 unless
--dtypes is (the test suite's smoke runs).
Prints a markdown table and writes it between the markers of docs/embedded.md's "## Measured"
section (not with --no-write or --quick).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cortex_m"
RISCV_EXAMPLE = ROOT / "examples" / "riscv"
sys.path.insert(0, str(EXAMPLE))
sys.path.insert(0, str(ROOT / "tools"))
import make_model  # noqa: E402
import mapsize  # noqa: E402

import edgegru  # noqa: E402
from edgegru import format as fmt  # noqa: E402

EGRU2C = ROOT / "tools" / "egru2c.py"
DOC = ROOT / "docs" / "embedded.md"
BEGIN, END = "<!-- measured:begin -->", "<!-- measured:end -->"

#: board -> (QEMU machine, flash bytes, RAM bytes, stack bytes of the linker script)
BOARDS = {
    "m0plus": ("microbit", 256 * 1024, 16 * 1024, 2048),
    "m0": ("microbit", 256 * 1024, 16 * 1024, 2048),
    "m3": ("mps2-an385", 4 << 20, 4 << 20, 64 * 1024),
    "m4f": ("mps2-an386", 4 << 20, 4 << 20, 64 * 1024),
    "m7": ("mps2-an500", 4 << 20, 4 << 20, 64 * 1024),
    # examples/riscv/virt.ld's default map on QEMU's virt machine (-bios none)
    "rv32imc": ("virt", 4 << 20, 4 << 20, 64 * 1024),
}
#: board -> (example directory whose Makefile builds it, QEMU binary, QEMU options before -M,
#: compiler)
TARGETS = {
    board: (EXAMPLE, "qemu-system-arm", [], "arm-none-eabi-gcc")
    for board in ("m0plus", "m0", "m3", "m4f", "m7")
}
TARGETS["rv32imc"] = (
    RISCV_EXAMPLE,
    "qemu-system-riscv32",
    ["-bios", "none"],
    "riscv64-unknown-elf-gcc",
)
CORE = {
    "m0plus": "Cortex-M0+",
    "m0": "Cortex-M0",
    "m3": "Cortex-M3",
    "m4f": "Cortex-M4F",
    "m7": "Cortex-M7",
    "rv32imc": "RV32IMC",
}
#: model -> (T1, T2): the per-step cost is the difference of the two runs
LENGTHS = {"seed": (100, 200), "sensor": (50, 100), "gru16": (25, 50)}
QUICK_LENGTHS = {"gru16": (5, 10)}
QEMU_TIMEOUT = 300  # seconds per run; the longest (seed int8, M3, T=200) takes well under that


def _run(cmd, cwd=ROOT, timeout=None, stderr=False) -> str:
    """stdout of `cmd` (plus stderr with stderr=True: QEMU writes SYS_WRITE0 text there)."""
    p = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if p.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} exited {p.returncode}:\n{p.stdout}{p.stderr}"
        )
    return p.stdout + (p.stderr if stderr else "")


def _has_config_option() -> bool:
    return "--config" in (ROOT / "tools" / "egru2c.py").read_text()


def macs_per_step(name: str) -> int:
    """GRU 3H(I+H) plus Dense H*out multiply-accumulates per time step (batch 1). The Dense runs
    once per sequence, not per step: it is not in the per-step difference, so not counted."""
    kind, dim, (emb, hidden, _out, _act), _, _ = make_model.MODELS[name]
    width = emb if kind == "tokens" else dim
    return 3 * hidden * (width + hidden)


#: int16x8: the calibration inputs (make_model.make_input of CALIBRATION_SHAPE, its own seed).
CALIBRATION_SHAPE, CALIBRATION_SEED = (64, 50), 12345


def _blob(name: str, dtype: str) -> bytes:
    model = make_model.build(name)
    if dtype == "int16x8":
        cal = make_model.make_input(name, *CALIBRATION_SHAPE, seed=CALIBRATION_SEED)
        return fmt.write(model, quantize="int16x8", calibration=cal)
    return fmt.write(model, quantize="int8" if dtype == "int8" else None)


def prepare(name: str, dtype: str, lengths, work: Path) -> dict:
    """The model's blob, its headers (model.h and, when egru2c has --config, egru_config.h) and
    its inputs at both lengths, written once for every board. int16x8: the inputs are int16 at
    the model's input scale (token ids stay ids) and the expected outputs int16."""
    blob = _blob(name, dtype)
    d = work / f"{name}-{dtype}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.egru").write_bytes(blob)
    prep = {"dir": d, "blob": len(blob), "config": None, "inputs": {}}
    fast, low = make_model.arena_sizes(blob, 1, lengths[1])
    prep["arena"], prep["arena_min"] = fast, low
    prep["want"] = {}
    em_ref = edgegru.load(blob, kernels="ref")
    for steps in lengths:
        x = make_model.make_input(name, 1, steps, seed=steps)
        if dtype == "int16x8" and x.dtype.kind == "f":
            s_in = np.float64(em_ref.scales[0])
            x = np.clip(np.rint(x.astype(np.float64) / s_in), -32767, 32767).astype(np.int16)
        np.save(d / f"x{steps}.npy", x)
        _run(
            [sys.executable, EGRU2C, d / f"x{steps}.npy", d / f"input{steps}.h", "--name", "input"]
        )
        predict = em_ref.predict_int if dtype == "int16x8" else em_ref.predict
        prep["want"][steps] = predict(x).ravel()
    return prep


def headers(prep: dict) -> None:
    """model.h (and egru_config.h) for a prepared model, on first use (the seed model's header is
    16 MB of C: only written for a board whose flash holds it)."""
    d = prep["dir"]
    if (d / "model.h").exists():
        return
    cmd = [sys.executable, EGRU2C, d / "model.egru", d / "model.h", "--name", "model"]
    if _has_config_option():
        cmd += ["--config", d / "egru_config.h"]
        prep["config"] = d / "egru_config.h"
    _run(cmd)


def measure(board: str, name: str, dtype: str, lengths, prep: dict) -> dict:
    _, flash, ram, stack = BOARDS[board]
    example = TARGETS[board][0]
    res = {"board": board, "model": name, "dtype": dtype, "blob": prep["blob"]}
    t1, t2 = lengths
    res["arena"], res["arena_min"] = prep["arena"], prep["arena_min"]
    use = res["arena_min"] if res["arena_min"] is not None else res["arena"]
    if prep["blob"] > flash:
        res["skip"] = f"model {prep['blob'] / 1e6:.1f} MB > {flash // 1024} KB flash"
        return res
    headers(prep)
    d = prep["dir"]
    config = [f"CONFIG_H={prep['config']}"] if prep["config"] else []
    res["config"] = bool(config)
    runs = {}
    for steps in (t1, t2):
        # The session size comes from the T2 build (REPORT_SESSION links the session code, which
        # must not count in the T1 build's flash figures).
        vars_ = [
            f"BOARD={board}",
            f"BUILD={d / ('build-' + board)}",
            f"MODEL_H={d / 'model.h'}",
            f"INPUT_H={d / f'input{steps}.h'}",
            f"ARENA_BYTES={use}",
            "MAX_OUTPUTS=64",
            "OUTPUT=hex",
            f"REPORT_SESSION={int(steps == t2)}",
            *config,
        ]
        try:
            _run(["make", "-s", f"-j{os.cpu_count() or 1}", *vars_], cwd=example)
        except RuntimeError as e:  # the linker script's checks: the image does not fit the board
            if "do not fit the RAM" in str(e):
                res["skip"] = f"arena {use:,} B + data + {stack} B stack > {ram // 1024} KB RAM"
                return res
            if "will not fit in region" in str(e) or "overflowed by" in str(e):
                res["skip"] = f"image > {flash // 1024} KB flash"
                return res
            raise
        elf = d / f"build-{board}" / "edgegru.elf"
        if steps == t1:
            attr = mapsize.attribute(elf.with_suffix(".map").read_text())
            s = mapsize.summary(attr)
            res["runtime"] = s["runtime_flash"]
            res["libs"] = s["libm_flash"] + s["libgcc_flash"] + s["libc_flash"]
            res["model_flash"] = s["model_flash"]
            res["code"] = s["code"]
        out = run_qemu(board, elf)
        stats, floats = parse_output(out)
        if dtype == "int16x8":  # main.c prints each int16 output as the low 16 bits of a word
            floats = floats.view(np.uint32).astype(np.uint16).view(np.int16).astype(np.int64)
        per_tick = instructions_per_tick(stats)
        runs[steps] = stats["forward_ticks"] * per_tick
        if steps == t2:
            # The firmware's own arena figures (32-bit target); the host's are the same.
            res["arena"], res["arena_min"] = stats["arena"], stats.get("arena_min")
            res["stack"] = stats["stack"]
            res["session"] = stats.get("session")
            res["init_instr"] = stats["init_ticks"] * per_tick
            res["forward_instr"] = runs[steps]
            res["max_diff"] = float(np.max(np.abs(floats - prep["want"][steps])))
    res["instr_step"] = (runs[t2] - runs[t1]) / (t2 - t1)
    res["instr_mac"] = res["instr_step"] / macs_per_step(name)
    return res


#: main.c's calibration loop: CALIB_INSTRUCTIONS instructions
CALIB_INSTRUCTIONS = 2_000_000


def instructions_per_tick(stats: dict) -> float:
    """Instructions per SysTick tick on this run (main.c's calibration loop)."""
    return CALIB_INSTRUCTIONS / stats["calib_ticks"]


def run_qemu(board: str, elf: Path) -> str:
    _, qemu, options, _ = TARGETS[board]
    cmd = [
        shutil.which(qemu) or qemu,
        *options,
        "-M",
        BOARDS[board][0],
        "-nographic",
        "-icount",
        "shift=0,align=off,sleep=off",
        "-semihosting-config",
        "enable=on,target=native",
        "-kernel",
        elf,
    ]
    return _run(cmd, timeout=QEMU_TIMEOUT, stderr=True)


def parse_output(text: str) -> tuple[dict, np.ndarray]:
    """main.c's OUTPUT=hex lines: '@name value' measurements and 8-hex-digit float bits."""
    stats, bits = {}, []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("@"):
            key, value = line[1:].split()
            stats[key] = int(value)
        elif re.fullmatch(r"[0-9a-f]{8}", line):
            bits.append(int(line, 16))
        elif line:
            raise ValueError(f"unexpected firmware output line {line!r}")
    return stats, np.array(bits, dtype=np.uint32).view(np.float32)


def _fmt_int(v) -> str:
    return "-" if v is None else f"{v:,}"


def markdown(results: list[dict], header: str) -> str:
    rows = [
        header,
        "",
        "| model | dtype | core | flash: runtime / libs / model | arena (fast / min) | session"
        " | stack | instr/step | instr/MAC | init instr | max \\|M - host\\| |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        arena = f"{_fmt_int(r['arena'])} / {_fmt_int(r['arena_min'])}"
        label = f"{r['model']} | {r['dtype']} | {CORE[r['board']]}"
        if "skip" in r:
            rows.append(f"| {label} | not run: {r['skip']} | {arena} | | | | | | |")
            continue
        rows.append(
            f"| {label} | {_fmt_int(r['runtime'])} / {_fmt_int(r['libs'])}"
            f" / {_fmt_int(r['model_flash'])} | {arena} | {_fmt_int(r['session'])}"
            f" | {_fmt_int(r['stack'])} | {r['instr_step']:,.0f}"
            f" | {r['instr_mac']:.2f} | {r['init_instr']:,.0f} | {r['max_diff']:.2g} |"
        )
    return "\n".join(rows)


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{DOC}: the markers {BEGIN} / {END} are missing")
    pre, rest = doc.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    DOC.write_text(f"{pre}{BEGIN}\n{text}\n{END}{post}")


def _gcc_versions(boards) -> str:
    """'arm-none-eabi-gcc 12.2.1, riscv64-unknown-elf-gcc 12.2.0': the compilers of `boards`."""
    compilers = dict.fromkeys(TARGETS[b][3] for b in boards)
    return ", ".join(f"{cc} {_run([cc, '-dumpfullversion']).strip()}" for cc in compilers)


def _qemu_version(boards) -> str:
    qemu = TARGETS[boards[0]][1]
    return _run([qemu, "--version"]).splitlines()[0].split("version")[1].split()[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="gru16 on m4f at short T (smoke run)")
    ap.add_argument("--boards", help="default: m0plus,m3,m4f,m7,rv32imc (--quick: m4f)")
    ap.add_argument("--models", default="seed,sensor,gru16")
    ap.add_argument("--dtypes", help="default: fp32,int8,int16x8 (--quick: fp32,int8)")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/embedded.md")
    args = ap.parse_args(argv)
    if args.quick:
        boards, models, lengths = (args.boards or "m4f").split(","), ["gru16"], QUICK_LENGTHS
        dtypes = (args.dtypes or "fp32,int8").split(",")
    else:
        boards = (args.boards or "m0plus,m3,m4f,m7,rv32imc").split(",")
        models, lengths = args.models.split(","), LENGTHS
        dtypes = (args.dtypes or "fp32,int8,int16x8").split(",")
    for b in boards:
        if b not in BOARDS:
            raise SystemExit(f"unknown board {b!r} (one of {', '.join(BOARDS)})")
    results = []
    with tempfile.TemporaryDirectory(prefix="egru-embedded-") as tmp:
        for name in models:
            for dtype in dtypes:
                prep = prepare(name, dtype, lengths[name], Path(tmp))
                for board in boards:
                    r = measure(board, name, dtype, lengths[name], prep)
                    results.append(r)
                    print(f"# {board} {name} {dtype}: {r}", file=sys.stderr, flush=True)
    commit = _run(["git", "rev-parse", "--short", "HEAD"]).strip()
    ts = ", ".join(f"{m} {lengths[m][0]}/{lengths[m][1]}" for m in models)
    configured = any(r.get("config") for r in results)
    header = (
        f"Measured {datetime.date.today()} at commit {commit} by `python benchmarks/embedded.py`: "
        f"{_gcc_versions(boards)} `-Os`, QEMU {_qemu_version(boards)} `-icount shift=0`, "
        f"batch 1; T = {ts} (arena at the longer T). Configuration header from egru2c: "
        f"{'yes' if configured else 'no (full runtime)'}."
    )
    text = markdown(results, header)
    print(text)
    if not (args.quick or args.no_write):
        write_doc(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
