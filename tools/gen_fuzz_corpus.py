"""Writes the seed corpus of the C fuzz harness (ext/fuzz/egru_fuzz.c) into a directory.

    .venv/bin/python tools/gen_fuzz_corpus.py ext/fuzz/corpus     (or: make -C ext fuzz-corpus)

One seed per model: the golden files tests/data/*.egru, and every IR test model of
tests/ir_models.py (CASES and MORE_CASES: GRU, LSTM, SimpleRNN, bidirectional, go_backwards,
masks, Conv1D, pooling, Affine, LayerNorm, Activation, Flatten, token and feature models) written
by edgegru's own writer as float32 and as int8, and the token and bidirectional ones also with
only the first or the second half of their int8-capable tensors quantized (dtype mixes the writer
never makes); every graph model (issue #13) as float32 and int8: the Keras Functional models of
tests/graph_models.py (MODELS, and the encoder and decoder-step halves of seq2seq_inference)
converted by edgegru's importer, and the IR graphs of tests/graph_cases.py (GRAPHS), as
`seed-graph-<name>`, plus two IR graphs of the per-step and whole-sequence ops those lack
(`graph_ops`); and one seed that makes the harness write a wide int8 Dense. Each seed is a
control block and a pool of input bytes (layout: ext/fuzz/egru_fuzz_input.h) followed by the
.egru bytes, so the fuzzer starts from valid files with the optional paths (fold, pack, session,
graph runs in both plans, graph sessions with state get / set and snapshots, every kernel set)
switched on.

Deterministic: the same edgegru version gives byte-identical seeds, so the committed corpus can be
regenerated and diffed. Stale seeds in the directory are removed first.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# tests/graph_models.py builds Keras models: the backend is chosen before keras is imported.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import graph_cases  # noqa: E402  (tests/graph_cases.py)
import ir_models  # noqa: E402  (tests/ir_models.py)

from edgegru import format as fmt  # noqa: E402

# Mirrors ext/fuzz/egru_fuzz_input.h.
CTRL_SIZE = 16
FOLD, PACK, SESSION, SPECIAL_IDS = 0x01, 0x02, 0x04, 0x08
STATE, RESET, WIDE, MISUSE, STEPS, WORKERS = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
WRONG_SIZES = 0x40
ALL_SETS = 0x80  # FUZZ_C_KERNELS bit 7: run every kernel set
FLATTEN_T = 0x80  # FUZZ_C_SEQ_LEN bit 7: seq_len = the Flatten layer's T
POOL_SIZE = 96

#: Seeds whose .egru is larger than this are left out (the harness caps execution cost anyway;
#: small seeds keep the corpus small and the fuzzer fast).
MAX_SEED_BYTES = 16384


def control(index: int, *, flatten: bool) -> bytes:
    """A control block: every kernel set, batch 2, 5 steps (or Flatten's T), fold, pack and a
    session with state get/set and reset; special ids and API misuse (NULL arguments, a zeroed
    model) on every other seed; the value mode cycles through raw bits, specials, small and
    mixed."""
    flags = FOLD | PACK | SESSION | (SPECIAL_IDS if index % 2 else 0)
    return struct.pack(
        "<8BiH2x",
        ALL_SETS,
        1,  # batch 2
        (FLATTEN_T if flatten else 0) | 4,  # 5 steps
        flags,
        2 if index % 4 == 0 else 3 if index % 4 == 1 else index % 4 - 2,  # value mode
        2,  # 3 session steps
        STATE | RESET | (MISUSE if index % 2 else 0),
        0,
        -(index % 20),  # a status code for egru_status_str
        POOL_SIZE,
    )


def control_graph(index: int) -> bytes:
    """A graph seed's control block: every kernel set, batch 2, 6 steps (graph_models.T, the
    fixed T of its Reshape / Permute models), pack, egru_run in both plans and a graph session
    (snapshot, reset, state get / set of every node); wrong sizes, special ids and API misuse on
    every other seed, each input its own steps on every fourth, workers on every third; small
    input values (mostly finite: a NaN input only gets refused)."""
    odd = index % 2
    flags = PACK | SESSION | (SPECIAL_IDS | WRONG_SIZES if odd else 0)
    flags2 = STATE | RESET | (MISUSE if odd else 0)
    flags2 |= (STEPS if index % 4 == 3 else 0) | (WORKERS if index % 3 == 0 else 0)
    return struct.pack(
        "<8BiH2x",
        ALL_SETS,
        1,  # batch 2
        5,  # 6 steps
        flags,
        3 if index % 4 == 1 else 2,  # value mode: small, or mixed
        2,  # 3 chain session steps (unused by graphs)
        flags2,
        0,
        -(index % 20),
        POOL_SIZE,
    )


def pool(name: str) -> bytes:
    """POOL_SIZE deterministic bytes, different per seed."""
    out = b""
    seed = zlib.crc32(name.encode())
    while len(out) < POOL_SIZE:
        seed = zlib.crc32(seed.to_bytes(4, "little"))
        out += seed.to_bytes(4, "little")
    return out[:POOL_SIZE]


class _Half:
    """Stands in for format.QUANTIZABLE so that the writer quantizes only the first or the
    second half of a model's quantizable tensors: files with per-direction and per-layer dtype
    mixes (forward F32 and backward S8, ...) that the writer never makes but a hostile file
    can, to reach the parser's dtype-combination checks."""

    def __init__(self, quantizable, total: int, back: bool):
        self.quantizable, self.total, self.back, self.seen = quantizable, total, back, 0

    def __contains__(self, key) -> bool:
        if key not in self.quantizable:
            return False
        index, self.seen = self.seen, self.seen + 1
        return (index >= self.total // 2) == self.back


def mixed(model, back: bool) -> bytes:
    """The model written with only half of its quantizable tensors as int8 (see _Half)."""
    quantizable = fmt.QUANTIZABLE
    counter = _Half(quantizable, 0, back)
    try:
        fmt.QUANTIZABLE = counter
        fmt.write(model, quantize="int8")  # counts the quantizable tensors
        fmt.QUANTIZABLE = _Half(quantizable, counter.seen, back)
        return fmt.write(model, quantize="int8")
    finally:
        fmt.QUANTIZABLE = quantizable


def models():
    """(name, .egru bytes) of every seed model."""
    for path in sorted((ROOT / "tests" / "data").glob("*.egru")):
        yield path.stem, path.read_bytes()
    cases = [(n, ir_models.build) for n in ir_models.CASES]
    cases += [(n, ir_models.build_more) for n in ir_models.MORE_CASES]
    for name, build in cases:
        model = build(name)
        yield name, fmt.write(model)
        yield name + "-int8", fmt.write(model, quantize="int8")
        if "bidir" in name or "mask_zero" in name or name.startswith("tokens_gru"):
            yield name + "-int8-front", mixed(model, back=False)
            yield name + "-int8-back", mixed(model, back=True)


def graph_ops(seed=5, stream=False):
    """An IR graph of the per-step ops the graph models above lack (Masking, Affine, LayerNorm,
    Activation, SimpleRNN, an LSTM started from two vector inputs, a Dense and a Maximum on
    vectors, one vector input read at every step) and, unless `stream`, Conv1D, max pooling and
    Flatten (which need whole sequences; Flatten's T is the seeds' 6 steps less the kernel's 1)."""
    from edgegru import ir

    rng = np.random.default_rng(seed)
    nodes = [
        ir.Node(ir.Masking(4, name="mask"), ["x"], ["xm"]),
        ir.Node(ir.Affine(rng.normal(1, 0.3, 4), rng.normal(0, 0.3, 4), name="aff"), ["xm"], ["a"]),
        ir.Node(
            ir.LayerNorm(rng.normal(1, 0.3, 4), rng.normal(0, 0.3, 4), name="ln"), ["a"], ["n"]
        ),
        ir.Node(ir.Activation(4, "relu", name="act"), ["n"], ["act"]),
        ir.Node(
            graph_cases.lstm(rng, 4, 3, "lstm", return_sequences=True),
            ["act", "h0", "c0"],
            ["l_seq", "l_h", "l_c"],
        ),
        ir.Node(graph_cases.simple_rnn(rng, 4, 3, "srnn"), ["act"], ["srn"]),
        ir.Node(graph_cases.dense(rng, 3, 3, "dv"), ["h0"], ["dv"]),
        ir.Node(ir.Merge("maximum", 3, "mx"), ["dv", "srn"], ["mx"]),
    ]
    outputs = ["l_seq", "l_h", "l_c", "mx"]
    if not stream:
        kernel, bias = rng.normal(0, 0.5, (2, 4, 5)), rng.normal(0, 0.3, 5)
        nodes += [
            ir.Node(ir.Conv1D(kernel, bias, name="conv"), ["act"], ["conv"]),
            ir.Node(ir.GlobalPool(5, "max", "gp"), ["conv"], ["gp"]),
            ir.Node(ir.Flatten(5, 5, "flat"), ["conv"], ["flat"]),
        ]
        outputs += ["gp", "flat"]
    inputs = [
        ir.GraphInput("x", "features", 4),
        ir.GraphInput("h0", "vector", 3),
        ir.GraphInput("c0", "vector", 3),
    ]
    return ir.Graph(inputs, nodes, outputs, name="ops_stream" if stream else "ops")


def graphs():
    """(name, .egru bytes) of every graph seed: float32 and int8 (an int8 file with no int8
    tensor, identical to the float32 one but for its quant_version, is kept too)."""
    import graph_models  # tests/graph_models.py (imports keras)

    from edgegru.convert import to_ir

    irs = [(name, to_ir(graph_models.build(name)[0])) for name in graph_models.MODELS]
    (encoder, _), (step, _) = graph_models.seq2seq_inference()
    irs += [("seq2seq_encoder", to_ir(encoder)), ("seq2seq_step", to_ir(step))]
    irs += [(f"ir_{name}", build()) for name, build in graph_cases.GRAPHS.items()]
    irs += [("ir_ops", graph_ops()), ("ir_ops_stream", graph_ops(stream=True))]
    for name, graph in irs:
        yield name, fmt.write(graph)
        yield name + "-int8", fmt.write(graph, quantize="int8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="corpus directory (created; old seeds removed)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("seed-*"):
        old.unlink()
    count = total = 0
    for index, (name, blob) in enumerate(models()):
        if len(blob) > MAX_SEED_BYTES:
            continue
        flatten = b'"Flatten"' in blob or "flatten" in name
        seed = control(index, flatten=flatten) + pool(name) + blob
        (args.out / f"seed-{name}").write_bytes(seed)
        count += 1
        total += len(seed)
    for index, (name, blob) in enumerate(graphs()):
        if len(blob) > MAX_SEED_BYTES:
            continue
        seed = control_graph(index) + pool(name) + blob
        (args.out / f"seed-graph-{name}").write_bytes(seed)
        count += 1
        total += len(seed)
    # FUZZ_WIDE: the harness writes an int8 Dense of 133,145 inputs with every weight and input
    # at the int8 maximum (pool bytes 0x7f): the widest product whose int32 sum overflows.
    wide = struct.pack("<8BiH2x", 0, 0, 0, 0, 2, 0, WIDE, 0, 0, 16) + b"\x7f" * 16
    (args.out / "seed-wide-int8-dense").write_bytes(wide)
    count, total = count + 1, total + len(wide)
    print(f"{count} seeds, {total} bytes, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
