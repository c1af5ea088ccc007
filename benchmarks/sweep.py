#!/usr/bin/env python3
"""A latency table across sizes: edgegru against onnxruntime (and Keras) on Input(T, I) -> GRU(H)
-> Dense(1), for hidden sizes H, input widths I, batch sizes, fp32 and int8 weights (issue #14).

    python benchmarks/sweep.py --out /tmp/sweep   # the full sweep (docs/benchmarks.md), 1-2 min
    python benchmarks/sweep.py --quick            # two sizes, few rounds: a smoke run
    python benchmarks/sweep.py --sizes 64,256 --inputs 32 --batches 1 --out /tmp/sweep

Every model is built in Keras with fan-in-scaled random weights (bench.py's style), converted
with `edgegru.convert` (fp32, and `quantize="int8"`) and exported to ONNX (fused GRU). Outputs are
checked before anything is timed: edgegru fp32 against onnxruntime within FP32_TOLERANCE, edgegru
int8 against onnxruntime's fp32 within INT8_TOLERANCE (the documented int8 bound).

onnxruntime runs the fp32 export for both dtypes: the int8 rows compare edgegru's int8 model with
onnxruntime's fp32 one, timed in the same rounds. edgegru fp32, edgegru int8 and onnxruntime are
interleaved round by round (bench.py's `_time`), and each ratio is the median over rounds of the
ratio within the round, with quartiles (bench.py's `_ratio`). Keras (`tf.function`, batch 1 by
default) is timed apart with few rounds, for reference only.

One thread everywhere: onnxruntime intra/inter-op 1, sequential; TensorFlow 1 thread; BLAS and
OpenMP pools 1. The process re-executes itself under `taskset -c CPU` (default CPU 1; --cpu,
--no-pin), or pins itself with sched_setaffinity when taskset is missing.

The input widths default to 8, 32 and 128: a sensor's few channels, the issue's sweep width, and
an embedding-sized (or spectrogram) feature vector. I only changes the input projection, which
both runtimes compute for all T steps as one matrix product before the recurrence; H changes the
recurrent product, sequential and memory-bound, which is where the runtimes differ most. T is
fixed (100): both costs grow linearly in T, so T mostly shifts the per-call fixed cost's weight.
"""

from __future__ import annotations

import os
import shutil
import sys

_PIN_ENV = "EDGEGRU_SWEEP_PINNED"


def _pin(argv: list[str]) -> str:
    """Pin the process to one CPU before any library starts a thread: re-exec under taskset if it
    is on PATH, else sched_setaffinity. Returns how it was pinned (for the machine description)."""
    cpu, pin = "1", True
    for i, a in enumerate(argv):
        if a == "--no-pin":
            pin = False
        elif a == "--cpu" and i + 1 < len(argv):
            cpu = argv[i + 1]
        elif a.startswith("--cpu="):
            cpu = a.split("=", 1)[1]
    if not pin:
        return "not pinned (--no-pin)"
    if not hasattr(os, "sched_getaffinity"):
        return "not pinned (no sched_getaffinity on this system)"
    if not cpu.isdigit() or int(cpu) not in os.sched_getaffinity(0):
        return f"not pinned (CPU {cpu} not available)"
    if os.environ.get(_PIN_ENV) == cpu:
        return f"taskset -c {cpu}"
    taskset = shutil.which("taskset")
    if taskset:
        os.environ[_PIN_ENV] = cpu
        os.execv(taskset, [taskset, "-c", cpu, sys.executable, os.path.abspath(__file__), *argv])
    os.sched_setaffinity(0, {int(cpu)})
    return f"sched_setaffinity({{{cpu}}}) (no taskset)"


if __name__ == "__main__":
    _PINNED = _pin(sys.argv[1:])

# bench.py sets the thread variables (BLAS, OpenMP: 1) and the Keras backend at import time.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from bench import _ratio, _time  # noqa: E402

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "amx")


def _keras_model(units: int, width: int, steps: int, seed: int = 0):
    """Input(steps, width) -> GRU(units) -> Dense(1), fan-in-scaled random weights and random
    biases (bench.py's `_keras_model` style)."""
    import keras

    model = keras.Sequential(
        [keras.Input((steps, width)), keras.layers.GRU(units), keras.layers.Dense(1)]
    )
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.get_weights():
        fan_in = w.shape[0] if w.ndim == 2 else 1
        std = 1.0 / np.sqrt(fan_in) if w.ndim == 2 else 0.3
        weights.append(rng.normal(0, std, w.shape).astype(np.float32))
    model.set_weights(weights)
    return model


def _lscpu() -> dict:
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    info = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def _git_commit() -> str:
    """The source tree's commit (the runtime changes from commit to commit), if it is a checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe", "--always",
             "--dirty"], capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.strip() or "?"


def machine(pinned: str) -> dict:
    """lscpu's model name, family/model, caches and SIMD flags, the versions, the pinning."""
    import keras
    import onnxruntime as ort
    import tensorflow as tf

    import edgegru

    cpu = _lscpu()
    flags = cpu.get("Flags", "").split()
    simd = [f for f in flags if f in SIMD_FLAGS or f.startswith("avx512")]
    return {
        "cpu": cpu.get("Model name", platform.processor() or platform.machine()),
        "family": cpu.get("CPU family", "?"),
        "model": cpu.get("Model", "?"),
        "l1d": cpu.get("L1d cache", "?"),
        "l2": cpu.get("L2 cache", "?"),
        "cpus": os.cpu_count(),
        "simd": simd,
        "vnni": "avx512_vnni" in flags or "avx_vnni" in flags,
        "pinned": pinned,
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "kernel_sets": list(edgegru.available_kernels()),
        "commit": _git_commit(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "edgegru": edgegru.__version__,
        "onnxruntime": ort.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
    }


def _block(calls: dict, target: float) -> int:
    """Calls per timed block so that the slowest callable's block takes about `target` s."""
    slowest = 0.0
    for fn in calls.values():
        fn()
        t0 = time.perf_counter()
        fn()
        slowest = max(slowest, time.perf_counter() - t0)
    return max(1, round(target / max(slowest, 1e-7)))


def _where(r: dict) -> str:
    return f"H={r['hidden']} I={r['input']} ({r['ratio']:.2f} [{r['q1']:.2f}, {r['q3']:.2f}])"


def _ints(s: str) -> list[int]:
    try:
        values = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {s!r}")
    return values


def plot(rows: list[dict], path: Path, title: str) -> None:
    """edgegru/onnxruntime ratio vs hidden size, one line per (batch, dtype, input width), one
    panel per batch size, the 1.0 line marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({r["batch"] for r in rows})
    widths = sorted({r["input"] for r in rows})
    sizes = sorted({r["hidden"] for r in rows})
    colors = dict(zip(widths, plt.get_cmap("tab10").colors, strict=False))
    fig, axes = plt.subplots(
        1, len(batches), figsize=(4.6 * len(batches), 3.8), sharey=True, squeeze=False
    )
    for ax, batch in zip(axes[0], batches, strict=True):
        for dtype, style, marker in (("fp32", "-", "o"), ("int8", "--", "s")):
            for width in widths:
                pts = sorted(
                    (r["hidden"], r["ratio"])
                    for r in rows
                    if r["batch"] == batch and r["dtype"] == dtype and r["input"] == width
                )
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(
                        xs,
                        ys,
                        style,
                        marker=marker,
                        ms=4,
                        color=colors[width],
                        label=f"{dtype}, I={width}",
                    )
        ax.axhline(1.0, color="k", lw=1.2, ls=":", label="onnxruntime (1.0)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_yscale("log")
        ax.set_xlabel("GRU hidden size H")
        ax.set_title(f"batch {batch}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("edgegru time / onnxruntime time")
    ticks = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0]
    lo = min(r["ratio"] for r in rows)
    hi = max(r["ratio"] for r in rows)
    shown = [t for t in ticks if lo / 1.3 <= t <= hi * 1.3] or [1.0]
    axes[0][0].set_yticks(shown, [f"{t:g}" for t in shown])
    axes[0][0].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    try:  # a 256-colour palette: a third of the size, the same picture (Pillow comes with it)
        from PIL import Image

        with Image.open(path) as im:
            small = im.convert("RGB").quantize(256)
        small.save(path, optimize=True)
    except ImportError:  # pragma: no cover - matplotlib depends on Pillow
        pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="H 16,64, I 8, 5 rounds: a smoke run")
    p.add_argument("--sizes", type=_ints, help="GRU hidden sizes (default 16,32,64,128,256,512)")
    p.add_argument("--inputs", type=_ints, help="input widths (default 8,32,128)")
    p.add_argument("--batches", type=_ints, help="batch sizes (default 1,16)")
    p.add_argument("--steps", type=int, default=100, help="sequence length T (default 100)")
    p.add_argument("--rounds", type=int, help="timing rounds (default 61; --quick 5)")
    p.add_argument(
        "--target-ms",
        type=float,
        default=10.0,
        help="each round times a block of calls lasting about this long for the slowest runtime",
    )
    p.add_argument("--no-int8", dest="int8", action="store_false", help="fp32 rows only")
    p.add_argument("--no-keras", dest="keras", action="store_false", help="do not time Keras")
    p.add_argument(
        "--keras-batches", type=_ints, default=[1], help="batches Keras is timed at (default 1)"
    )
    p.add_argument("--keras-rounds", type=int, default=7, help="Keras timing rounds (default 7)")
    p.add_argument("--out", type=Path, help="directory for sweep.csv, sweep.json and sweep.png")
    p.add_argument("--cpu", default="1", help="CPU to pin to with taskset (default 1)")
    p.add_argument("--no-pin", action="store_true", help="do not pin")
    args = p.parse_args(argv)
    if args.steps < 1 or (args.rounds is not None and args.rounds < 2) or args.keras_rounds < 1:
        p.error("--steps must be >= 1, --rounds >= 2, --keras-rounds >= 1")
    sizes = args.sizes or ([16, 64] if args.quick else [16, 32, 64, 128, 256, 512])
    widths = args.inputs or ([8] if args.quick else [8, 32, 128])
    batches = args.batches or [1, 16]
    rounds = args.rounds or (5 if args.quick else 61)
    keras_rounds = min(args.keras_rounds, 3) if args.quick else args.keras_rounds
    target = args.target_ms / 1e3 / (4 if args.quick else 1)

    import onnxruntime as ort
    import tensorflow as tf

    import edgegru
    from edgegru.convert import to_ir
    from edgegru.validate import INT8_TOLERANCE

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL

    pinned = globals().get("_PINNED", "not pinned (imported)")
    info = machine(pinned)
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="edgegru-sweep-"))
    rows: list[dict] = []
    kernel_sets = set()
    for units in sizes:
        for width in widths:
            km = _keras_model(units, width, args.steps)
            m_ir = to_ir(km)
            egru, egru8, onnx = (
                tmp / f"h{units}i{width}{s}" for s in (".egru", "-8.egru", ".onnx")
            )
            edgegru.convert(m_ir, egru, onnx_path=onnx)
            em = edgegru.load(egru)
            em8 = None
            if args.int8:
                edgegru.convert(m_ir, egru8, quantize="int8")
                em8 = edgegru.load(egru8)
            kernel_sets.add(em.kernels)
            sess = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
            in_name = sess.get_inputs()[0].name
            for batch in batches:
                x = np.random.default_rng(units * 1000 + width * 10 + batch).standard_normal(
                    (batch, args.steps, width), dtype=np.float32
                )
                feed = {in_name: x}
                # Same numbers first: a benchmark of a wrong answer is worthless.
                y_ort = sess.run(None, feed)[0]
                err = float(np.max(np.abs(em.predict(x) - y_ort)))
                if err > edgegru.FP32_TOLERANCE:
                    raise SystemExit(
                        f"H={units} I={width} batch {batch}: edgegru fp32 vs "
                        f"onnxruntime {err:.3g} > {edgegru.FP32_TOLERANCE}"
                    )
                calls = {
                    "edgegru": lambda m=em, v=x: m.predict(v),
                    "onnxruntime": lambda s=sess, f=feed: s.run(None, f),
                }
                err8 = float("nan")
                if em8 is not None:
                    err8 = float(np.max(np.abs(em8.predict(x) - y_ort)))
                    if err8 > INT8_TOLERANCE:
                        raise SystemExit(
                            f"H={units} I={width} batch {batch}: edgegru int8 vs "
                            f"onnxruntime fp32 {err8:.3g} > {INT8_TOLERANCE}"
                        )
                    calls["edgegru int8"] = lambda m=em8, v=x: m.predict(v)
                samples = _time(calls, rounds, _block(calls, target))
                keras_us = float("nan")
                if args.keras and batch in args.keras_batches:
                    spec = tf.TensorSpec(x.shape, tf.float32)
                    kcall = tf.function(
                        lambda t, km=km: km(t, training=False), input_signature=[spec]
                    )
                    xt = tf.constant(x)
                    kerr = float(np.max(np.abs(kcall(xt).numpy() - y_ort)))
                    if kerr > edgegru.FP32_TOLERANCE:
                        raise SystemExit(
                            f"H={units} I={width} batch {batch}: Keras vs onnxruntime {kerr:.3g}"
                        )
                    kc = {"keras": lambda c=kcall, v=xt: c(v)}
                    ks = _time(kc, keras_rounds, _block(kc, target))
                    keras_us = statistics.median(ks["keras"]) * 1e6
                ort_us = statistics.median(samples["onnxruntime"]) * 1e6
                for dtype, label, e in (("fp32", "edgegru", err), ("int8", "edgegru int8", err8)):
                    if label not in samples:
                        continue
                    r, q1, q3 = _ratio(samples, label, "onnxruntime")
                    rows.append(
                        {
                            "hidden": units,
                            "input": width,
                            "batch": batch,
                            "dtype": dtype,
                            "edgegru_us": statistics.median(samples[label]) * 1e6,
                            "onnxruntime_us": ort_us,
                            "ratio": r,
                            "q1": q1,
                            "q3": q3,
                            "keras_us": keras_us,
                            "max_abs_err_vs_onnxruntime": e,
                        }
                    )
                row = rows[-1]
                print(
                    f"  H={units} I={width} batch {batch}: {row['ratio']:.3f} ({row['dtype']}); "
                    f"{time.time() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    info["kernels_picked"] = sorted(kernel_sets)
    info["steps"] = args.steps
    info["rounds"] = rounds
    info["keras_rounds"] = keras_rounds if args.keras else 0
    info["seconds"] = round(time.time() - started, 1)
    info["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    info["command"] = " ".join(["python", "benchmarks/sweep.py", *(argv or sys.argv[1:])])

    print(
        f"machine: {info['cpu']} (family {info['family']} model {info['model']}; L1d "
        f"{info['l1d']}, L2 {info['l2']}), {info['cpus']} CPUs, {info['system']}; "
        f"pinned: {info['pinned']}, affinity {info['affinity']}"
    )
    print(f"SIMD: {' '.join(info['simd'])}; VNNI: {'yes' if info['vnni'] else 'no'}")
    print(
        f"edgegru {info['edgegru']} ({info['commit']}), kernel set "
        f"{', '.join(info['kernels_picked'])} (available: "
        f"{', '.join(info['kernel_sets'])}); python {info['python']}, numpy {info['numpy']}, "
        f"onnxruntime {info['onnxruntime']}, keras {info['keras']} / tensorflow "
        f"{info['tensorflow']}"
    )
    print(
        f"T={args.steps}, one thread, {rounds} rounds (Keras {info['keras_rounds']}); times are "
        f"medians over rounds; ratio = edgegru/onnxruntime, median over rounds of the ratio within "
        f"the round [quartiles]. onnxruntime runs the fp32 export for both dtypes; Keras is fp32."
    )
    print()
    header = (
        f"{'H':>4}{'I':>5}{'batch':>6}{'dtype':>6}{'edgegru us':>12}{'ort us':>11}"
        f"{'ratio':>8}{'[quartiles]':>16}{'keras us':>11}"
    )
    print(header)
    for r in rows:
        k = "-" if r["keras_us"] != r["keras_us"] else f"{r['keras_us']:.1f}"
        quart = f"[{r['q1']:.3f}, {r['q3']:.3f}]"
        print(
            f"{r['hidden']:4}{r['input']:5}{r['batch']:6}{r['dtype']:>6}{r['edgegru_us']:12.1f}"
            f"{r['onnxruntime_us']:11.1f}{r['ratio']:8.3f}{quart:>16}{k:>11}"
        )
    print()
    for batch in batches:
        for dtype in ("fp32", "int8"):
            sel = [r for r in rows if r["batch"] == batch and r["dtype"] == dtype]
            if not sel:
                continue
            # Ahead: the upper quartile of the per-round ratio is below 1; behind: the lower
            # quartile is above 1; level: the quartiles straddle 1.
            level = [_where(r) for r in sel if r["q1"] <= 1.0 <= r["q3"]]
            behind = [_where(r) for r in sel if r["q1"] > 1.0]
            lo, hi = min(r["ratio"] for r in sel), max(r["ratio"] for r in sel)
            verdict = "ahead of onnxruntime at every size (upper quartile < 1)"
            if level or behind:
                verdict = "; ".join(
                    f"{what} at {', '.join(where)}"
                    for what, where in (("level (quartiles straddle 1)", level),
                                        ("behind (lower quartile > 1)", behind))
                    if where
                )  # fmt: skip
            print(f"batch {batch} {dtype}: ratio {lo:.2f}-{hi:.2f}; {verdict}")
    print(f"\n{info['seconds']:.0f} s")

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "sweep.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        (args.out / "sweep.json").write_text(
            json.dumps({"machine": info, "rows": rows}, indent=1) + "\n"
        )
        title = (
            f"edgegru / onnxruntime, GRU(H) -> Dense(1), T={args.steps}, one thread; "
            f"{info['cpu']} fam {info['family']} model {info['model']}, edgegru "
            f"{'/'.join(info['kernels_picked'])} kernels, onnxruntime {info['onnxruntime']}"
        )
        plot(rows, args.out / "sweep.png", title)
        print(
            f"wrote {args.out / 'sweep.csv'}, {args.out / 'sweep.json'}, {args.out / 'sweep.png'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
