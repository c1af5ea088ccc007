#!/usr/bin/env python3
"""edgegru against onnxruntime and Keras on the workloads of issue #4, in one process.

    python benchmarks/bench.py            # all workloads, prints a table (docs/benchmarks.md)
    python benchmarks/bench.py --quick    # fewer repetitions, for a smoke run

W1  T=200 tokens, Embedding(20000,128) -> GRU(128) -> Dense(1, sigmoid), batch 1
W2  T=100 x 6 features -> GRU(64) -> Dense(4, softmax), batch 1
W3  T=50 x 8 features -> GRU(16) -> Dense(1), batch 1
W4  one streaming step, 64 inputs -> GRU(128), state carried, batch 1
W5  W1 at batch 64 (throughput)
W1 int8, W4 int8: W1 and W4 with int8 weights (issue #5; --no-int8 skips them)
W1 2 threads, W5 2 threads: W1 and W5 with load(..., threads=2) against one thread and
    onnxruntime on 2 threads (issue #14; --threads N, 0 skips them; run unpinned), each
    comparison in rounds of its own (a pool's spinning threads slow what runs after them)

Every runtime gets the same inputs. Timings are interleaved: each round times a block of calls of
every runtime in turn, and the reported time per call is the median over rounds, so a noisy
neighbour on a shared machine hits all runtimes alike. onnxruntime runs the exported fused-GRU
graph with one thread; Keras runs `tf.function(model(x, training=False))`, limited to one thread
too. Ratios are edgegru / onnxruntime measured in the same run. The floor is the model's MACs
divided by the single-thread fp32 rate of a large numpy matrix product measured in the same run
(a practical stand-in for the core's FMA peak).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One thread means one thread for every library in the process: numpy's BLAS and OpenMP pools
# would otherwise keep worker threads spinning between calls on the other core (a hyperthread
# sibling on many machines), slowing whichever runtime is timed next. Set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402 (after the thread settings above)


def _keras_model(name: str, seed: int = 0):
    """The workload's Keras model, with fan-in-scaled random weights and random biases."""
    import keras

    layers = keras.layers
    if name in ("W1", "W5"):
        inp = keras.Input((200,), dtype="int32")
        body = [layers.Embedding(20000, 128), layers.GRU(128), layers.Dense(1, "sigmoid")]
    elif name == "W2":
        inp = keras.Input((100, 6))
        body = [layers.GRU(64), layers.Dense(4, "softmax")]
    elif name == "W3":
        inp = keras.Input((50, 8))
        body = [layers.GRU(16), layers.Dense(1)]
    else:  # W4: a streaming GRU, one step
        inp = keras.Input((1, 64))
        body = [layers.GRU(128, return_sequences=True)]
    model = keras.Sequential([inp, *body])
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.get_weights():
        fan_in = w.shape[0] if w.ndim == 2 else 1
        std = 1.0 / np.sqrt(fan_in) if w.ndim == 2 else 0.3
        weights.append(rng.normal(0, std, w.shape).astype(np.float32))
    model.set_weights(weights)
    return model


def _inputs(name: str, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if name == "W1":
        return rng.integers(1, 20000, (1, 200)).astype(np.int64)
    if name == "W5":
        return rng.integers(1, 20000, (64, 200)).astype(np.int64)
    if name == "W2":
        return rng.standard_normal((1, 100, 6)).astype(np.float32)
    if name == "W3":
        return rng.standard_normal((1, 50, 8)).astype(np.float32)
    return rng.standard_normal((1, 1, 64)).astype(np.float32)


def _macs(ir_model, batch: int, steps: int) -> int:
    from edgegru import ir

    total = 0
    for layer in ir_model.layers:
        if isinstance(layer, ir.GRU):
            total += steps * 3 * layer.units * (layer.input_dim + layer.units)
        elif isinstance(layer, ir.Dense):
            total += layer.kernel.size
    return total * batch


def _peak_macs_per_second(seconds: float = 0.5) -> float:
    """Single-thread fp32 MAC rate of a 512x512 matrix product (numpy's BLAS)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        threadpool_limits = None
    a = np.ones((512, 512), np.float32)
    ctx = threadpool_limits(1) if threadpool_limits else _null()
    with ctx:
        a @ a
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ a
            n += 1
        dt = time.perf_counter() - t0
    return n * 512**3 / dt


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _time(calls: dict, rounds: int, block: int) -> dict:
    """Seconds per call of each named callable, one sample per round, interleaved round by round
    (each round times a block of calls of every callable in turn, rotating who goes first)."""
    for fn in calls.values():  # warm up
        for _ in range(3):
            fn()
    samples = {name: [] for name in calls}
    names = list(calls)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn = calls[name]
            t0 = time.perf_counter()
            for _ in range(block):
                fn()
            samples[name].append((time.perf_counter() - t0) / block)
    return samples


def _ratio(samples: dict, a: str, b: str) -> tuple[float, float, float]:
    """Median and quartiles over rounds of a's time / b's time in the same round. Pairing by
    round cancels what slows a whole round (a neighbour's burst, CPU time stolen by the
    hypervisor) that the ratio of two medians taken over different moments would keep."""
    r = sorted(x / y for x, y in zip(samples[a], samples[b], strict=True))
    q = statistics.quantiles(r, n=4)
    return statistics.median(r), q[0], q[2]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    p.add_argument("--workloads", default="W1,W2,W3,W4,W5")
    p.add_argument(
        "--no-fold",
        dest="fold",
        action="store_false",
        help="do not fold the Embedding into the GRU's input projection (W1, W5)",
    )
    p.add_argument(
        "--no-int8",
        dest="int8",
        action="store_false",
        help="skip the int8 rows (W1 and W4 with int8 weights, issue #5)",
    )
    p.add_argument(
        "--kernels",
        default="",
        help="comma-separated kernel sets to time beside the default one (e.g. avx2,avx512): "
        "each gets its own row, as a ratio to onnxruntime and to the default set in the same run",
    )
    p.add_argument("--no-keras", dest="keras", action="store_false", help="do not time Keras")
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="the 'W1 N threads' row: W1 at batch 1 with load(..., threads=N) against edgegru "
        "on one thread and onnxruntime with intra_op_num_threads=N, each in rounds of its own "
        "(0: skip). Run unpinned for it: worker threads inherit the process's CPU affinity",
    )
    args = p.parse_args(argv)
    extra_sets = [k for k in args.kernels.split(",") if k]

    import keras
    import onnxruntime as ort
    import tensorflow as tf

    import edgegru
    from edgegru.convert import to_ir

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL

    peak = _peak_macs_per_second()
    rounds, block = (5, 5) if args.quick else (31, 20)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="edgegru-bench-"))
    for name in args.workloads.split(","):
        km = _keras_model(name)
        x = _inputs(name)
        egru_path, onnx_path = tmp / f"{name}.egru", tmp / f"{name}.onnx"
        m_ir = to_ir(km)
        edgegru.convert(m_ir, egru_path, onnx_path=onnx_path)
        # Token models fold the Embedding into the GRU's input projection (a lookup table of
        # vocab x 3H floats: 30 MB for W1) when --fold is on (default).
        fold = args.fold and x.dtype.kind == "i"
        em = edgegru.load(egru_path, fold_embedding=fold)
        # The same file under other kernel sets (--kernels), and for token models the unfolded
        # load (fold_embedding=False). The default row is what `edgegru.load(path)` gives: it
        # folds these models (the table is within FOLD_AUTO_RATIO of the file).
        variants = {
            f"edgegru {k}": edgegru.load(egru_path, kernels=k, fold_embedding=fold)
            for k in extra_sets
        }
        if fold:
            variants["edgegru unfolded"] = edgegru.load(egru_path, fold_embedding=False)
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        spec = tf.TensorSpec(x.shape, tf.int32 if x.dtype.kind == "i" else tf.float32)
        kcall = tf.function(lambda t, km=km: km(t, training=False), input_signature=[spec])
        xt = tf.constant(x.astype(np.int32) if x.dtype.kind == "i" else x)
        # The same model with int8 weights (docs/quantization.md), for W1 and W4 (issue #5).
        em8 = None
        if args.int8 and name in ("W1", "W4"):
            int8_path = tmp / f"{name}-int8.egru"
            edgegru.convert(m_ir, int8_path, quantize="int8")
            em8 = edgegru.load(int8_path, fold_embedding=fold)

        def runner(model, name=name, x=x):
            if name == "W4":
                stream, step = model.stream(batch=1), x[:, 0, :]
                return lambda: stream.step(step)
            return lambda: model.predict(x)

        ecall = runner(em)
        ecall8 = None if em8 is None else runner(em8)
        # Same numbers first: a benchmark of a wrong answer is worthless.
        if name != "W4":
            err = float(np.max(np.abs(em.predict(x) - sess.run(None, feed)[0])))
            assert err <= edgegru.FP32_TOLERANCE, f"{name}: edgegru vs onnxruntime {err}"
        calls = {
            "edgegru": ecall,
            "onnxruntime": lambda s=sess, f=feed: s.run(None, f),
        }
        if args.keras:
            calls["keras"] = lambda c=kcall, v=xt: c(v)
        for label, model in variants.items():
            if name != "W4":
                err = float(np.max(np.abs(model.predict(x) - sess.run(None, feed)[0])))
                assert err <= edgegru.FP32_TOLERANCE, f"{name} {label}: vs onnxruntime {err}"
            calls[label] = runner(model)
        if args.threads > 1 and name in ("W1", "W5"):
            # issue #14 item 3: batch-1 latency (W1; W5: batch 64, steps split by rows) on
            # several cores, against onnxruntime with as many intra-op threads; the results
            # must be the one-thread bits.
            n = args.threads
            em_n = edgegru.load(egru_path, fold_embedding=fold, threads=n)
            assert np.array_equal(em_n.predict(x), em.predict(x)), "threads changed the result"
            opts_n = ort.SessionOptions()
            opts_n.intra_op_num_threads = n
            opts_n.inter_op_num_threads = 1
            opts_n.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            sess_n = ort.InferenceSession(
                str(onnx_path), opts_n, providers=["CPUExecutionProvider"]
            )
            # Timed apart from the main rows, in two groups of their own (t["threads"]): a
            # pool's threads keep spinning after a call (onnxruntime's by default, edgegru's for
            # SPIN_NS), so timed in the same rounds they take the other core from whatever runs
            # next: with onnxruntime's two-thread session in the rounds, W1 on two edgegru
            # threads measured 1.08x its one-thread time, without it 0.81x (same run, Zen 4).
            thread_calls = {
                "own": {"edgegru": ecall, f"edgegru {n} threads": runner(em_n)},
                "ort": {
                    f"edgegru {n} threads": runner(em_n),
                    "onnxruntime": lambda s=sess, f=feed: s.run(None, f),
                    f"onnxruntime {n} threads": lambda s=sess_n, f=feed: s.run(None, f),
                },
            }
        if ecall8 is not None:
            calls["edgegru int8"] = ecall8
            if name != "W4":  # int8 is judged by accuracy; here only a sanity bound
                err8 = float(np.max(np.abs(em8.predict(x) - em.predict(x))))
                assert err8 <= 0.05, f"{name}: edgegru int8 vs fp32 {err8}"
        blk = block if name != "W5" else max(2, block // 10)
        samples = _time(calls, rounds, blk)
        t = {n: statistics.median(v) for n, v in samples.items()}
        t["samples"] = samples
        if args.threads > 1 and name in ("W1", "W5"):
            t["threads"] = {g: _time(c, rounds, blk) for g, c in thread_calls.items()}
        steps = 1 if name == "W4" else x.shape[1]
        floor = _macs(m_ir, x.shape[0], steps) / peak
        rows.append((name, t, floor))
        if fold:
            print(f"{name}: folded embedding projections, {em.fold_bytes / 2**20:.1f} MiB")
        print(f"{name}: default kernel set {em.kernels}", flush=True)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}, numpy {np.__version__}, onnxruntime "
        f"{ort.__version__}, keras {keras.__version__} / tensorflow {tf.__version__}"
    )
    print(
        f"single-thread fp32 peak (numpy 512^3 matmul): {peak / 1e9:.1f} GMAC/s; "
        f"{rounds} rounds; times are medians over rounds, ratios medians over rounds of the "
        f"ratio within the round [quartiles]"
    )
    print()
    header = (
        f"{'':4}{'edgegru us':>12}{'onnxrt us':>12}{'keras us':>12}{'floor us':>10}"
        f"{'edgegru/ort':>13}{'[quartiles]':>16}{'keras/ort':>11}"
    )
    print(header)
    for name, t, floor in rows:
        e, o = (t[n] * 1e6 for n in ("edgegru", "onnxruntime"))
        k = t["keras"] * 1e6 if "keras" in t else float("nan")
        r, q1, q3 = _ratio(t["samples"], "edgegru", "onnxruntime")
        rk = _ratio(t["samples"], "keras", "onnxruntime")[0] if "keras" in t else float("nan")
        quart = f"[{q1:.3f}, {q3:.3f}]"
        print(
            f"{name:4}{e:12.1f}{o:12.1f}{k:12.1f}{floor * 1e6:10.1f}{r:13.3f}{quart:>16}{rk:11.3f}"
        )
    variant_rows = [
        (name, label, t)
        for name, t, _ in rows
        for label in t
        if label.startswith("edgegru ")
        and label != "edgegru int8"
        and label != "samples"
        and not label.endswith(" threads")
    ]
    if variant_rows:
        print(
            f"\n{'':22}{'us':>9}{'/ onnxruntime':>15}{'[quartiles]':>16}"
            f"{'/ default':>11}{'[quartiles]':>16}"
        )
    for name, label, t in variant_rows:
        ro, o1, o3 = _ratio(t["samples"], label, "onnxruntime")
        rd, d1, d3 = _ratio(t["samples"], label, "edgegru")
        print(
            f"{name + ' ' + label[8:]:22}{t[label] * 1e6:9.1f}{ro:15.3f}"
            f"{f'[{o1:.3f}, {o3:.3f}]':>16}{rd:11.3f}{f'[{d1:.3f}, {d3:.3f}]':>16}"
        )
    int8_rows = [(name, t) for name, t, _ in rows if "edgegru int8" in t]
    if int8_rows:
        print(
            f"\n{'':9}{'int8 us':>10}{'/ edgegru fp32':>16}{'[quartiles]':>16}"
            f"{'/ onnxruntime':>15}{'[quartiles]':>16}"
        )
    for name, t in int8_rows:
        i8 = t["edgegru int8"]
        rf, f1, f3 = _ratio(t["samples"], "edgegru int8", "edgegru")
        ro, o1, o3 = _ratio(t["samples"], "edgegru int8", "onnxruntime")
        print(
            f"{name + ' int8':9}{i8 * 1e6:10.1f}{rf:16.3f}{f'[{f1:.3f}, {f3:.3f}]':>16}"
            f"{ro:15.3f}{f'[{o1:.3f}, {o3:.3f}]':>16}"
        )
    thread_rows = [(name, t["threads"]) for name, t, _ in rows if "threads" in t]
    if thread_rows:
        n = args.threads
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        print(
            f"\n{'':14}{'edgegru us':>11}{'/ 1 thread':>11}{'[quartiles]':>16}{'onnxrt us':>11}"
            f"{'/ 1 thread':>11}{'edgegru/ort':>12}{'[quartiles]':>16}"
        )
        for name, g in thread_rows:
            e, o = f"edgegru {n} threads", f"onnxruntime {n} threads"
            r1, a1, b1 = _ratio(g["own"], e, "edgegru")  # edgegru's two groups: see main()
            ro1 = _ratio(g["ort"], o, "onnxruntime")[0]
            r, a, b = _ratio(g["ort"], e, o)
            te, to = (statistics.median(g[k][c]) for k, c in (("own", e), ("ort", o)))
            print(
                f"{name + f' {n} threads':14}{te * 1e6:11.1f}{r1:11.3f}"
                f"{f'[{a1:.3f}, {b1:.3f}]':>16}{to * 1e6:11.1f}{ro1:11.3f}{r:12.3f}"
                f"{f'[{a:.3f}, {b:.3f}]':>16}"
            )
        print(
            "(timed apart from the rows above: edgegru on 1 and N threads in rounds of their own, "
            "then edgegru on N threads with onnxruntime on 1 and N)"
        )
        if affinity is not None and affinity < n:
            print(f"(this process may run on {affinity} CPU(s) only: the row measures no gain)")
    for name, t, _ in rows:
        if name == "W5":
            r, q1, q3 = _ratio(t["samples"], "onnxruntime", "edgegru")
            print(
                f"\nW5 throughput: edgegru {64 / t['edgegru']:.0f} seq/s, onnxruntime "
                f"{64 / t['onnxruntime']:.0f} seq/s ({r:.2f}x [{q1:.2f}, {q3:.2f}])"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
