#!/usr/bin/env python3
"""Write a model and one input for the Cortex-M example: OUT/model.egru and OUT/x.npy.

    python examples/cortex_m/make_model.py [--model tiny|sensor|gru16|seed] [--int8]
        [--batch B] [--steps T] [--out examples/cortex_m/gen]

The models (random weights of realistic scale: std 1/sqrt(fan_in), biases std 0.3, seeded by the
model's name so every run writes the same file):
  tiny    Embedding(40, 12) -> GRU(16) -> Dense(1, sigmoid)        tokens, default batch 3, T 10
  sensor  features 6 -> GRU(64) -> Dense(4, softmax)               default batch 1, T 100
  gru16   features 8 -> GRU(16) -> Dense(1)                        default batch 1, T 50
  seed    Embedding(20000, 128) -> GRU(128) -> Dense(1, sigmoid)   default batch 1, T 200
          (10 MB in float32, 2.6 MB with --int8)
--int8 stores the weight matrices as int8 with one scale per row (docs/quantization.md).
Prints the two arena sizes of that input's shape (fast plan, and the low-memory plan's smallest
arena when the runtime has it): pass the one you want as ARENA_BYTES to make.
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import numpy as np

import edgegru
from edgegru import format as fmt
from edgegru import ir

HERE = Path(__file__).resolve().parent

#: name -> (input kind, input dim, layer widths, default batch, default T)
MODELS = {
    "tiny": ("tokens", 40, (12, 16, 1, "sigmoid"), 3, 10),
    "sensor": ("features", 6, (None, 64, 4, "softmax"), 1, 100),
    "gru16": ("features", 8, (None, 16, 1, "linear"), 1, 50),
    "seed": ("tokens", 20000, (128, 128, 1, "sigmoid"), 1, 200),
}


def _w(rng, fan_in, shape):
    return rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)


def build(name: str) -> ir.Model:
    """The IR model `name` of MODELS: [Embedding ->] GRU -> Dense."""
    kind, dim, (emb, hidden, out, act), _, _ = MODELS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    layers = []
    width = dim
    if kind == "tokens":
        layers.append(ir.Embedding(rng.normal(0.0, 1.0, (dim, emb)), name="embedding"))
        width = emb
    layers.append(
        ir.GRU(
            kernel=_w(rng, width, (width, 3 * hidden)),
            recurrent_kernel=_w(rng, hidden, (hidden, 3 * hidden)),
            input_bias=rng.normal(0.0, 0.3, 3 * hidden),
            recurrent_bias=rng.normal(0.0, 0.3, 3 * hidden),
            reset_after=True,
            name="gru",
        )
    )
    layers.append(
        ir.Dense(
            _w(rng, hidden, (hidden, out)), rng.normal(0.0, 0.3, out), activation=act, name="dense"
        )
    )
    spec = ir.InputSpec(ir.TOKENS if kind == "tokens" else ir.FEATURES, dim)
    return ir.Model(spec, layers)


def make_input(name: str, batch: int, steps: int, seed: int = 0) -> np.ndarray:
    """One batch for model `name`: int32 token ids (batch, T), float32 features (batch, T, dim)."""
    kind, dim = MODELS[name][:2]
    rng = np.random.default_rng(seed)
    if kind == "tokens":
        return rng.integers(0, dim, (batch, steps), dtype=np.int32)
    return rng.normal(0.0, 1.0, (batch, steps, dim)).astype(np.float32)


def arena_sizes(blob: bytes, batch: int, steps: int) -> tuple[int, int | None]:
    """(fast-plan arena, low-memory arena or None when the runtime has no low-memory plan), of
    the model as the firmware runs it (unfolded)."""
    em = edgegru.load(blob, fold_embedding=False)
    fast = em.arena_size(batch, steps)
    try:
        low = em.arena_size(batch, steps, minimal=True)
    except TypeError:  # a runtime without the low-memory plan
        low = None
    return fast, low


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="tiny")
    ap.add_argument("--int8", action="store_true", help="int8 weights (one scale per row)")
    ap.add_argument("--batch", type=int, help="rows of the input (default: the model's)")
    ap.add_argument("--steps", type=int, help="time steps T of the input (default: the model's)")
    ap.add_argument("--out", type=Path, default=HERE / "gen", help="output directory")
    args = ap.parse_args(argv)
    _, _, _, batch, steps = MODELS[args.model]
    batch = args.batch or batch
    steps = args.steps or steps
    blob = fmt.write(build(args.model), quantize="int8" if args.int8 else None)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model.egru").write_bytes(blob)
    np.save(args.out / "x.npy", make_input(args.model, batch, steps))
    fast, low = arena_sizes(blob, batch, steps)
    print(f"{args.out / 'model.egru'}: {len(blob)} bytes; {args.out / 'x.npy'}: ({batch}, {steps})")
    print(
        f"arena: {fast} bytes (fast plan)" + ("" if low is None else f", {low} bytes (low-memory)")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
