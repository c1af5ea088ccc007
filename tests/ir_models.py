"""Random IR models shared by the tests: the ONNX exporter, the C runtime and the format tests
all run the same cases against the float64 reference.

Weights have std 1/sqrt(fan_in) and biases std 0.3: realistic, non-chaotic recurrences (with large
weights the recurrence is chaotic and even correct float32 runtimes differ by up to 0.18), and
non-zero biases so that a bias placed wrongly shows.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgegru import ir


def w(rng, fan_in, shape):
    return rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)


def embedding(rng, vocab, dim, name="embedding"):
    # Gathered rows feed a GRU kernel scaled by 1/sqrt(dim), so unit-variance rows are realistic.
    return ir.Embedding(rng.normal(0.0, 1.0, (vocab, dim)), name=name)


def gru(rng, i, h, *, reset_after=True, return_sequences=False, name="gru"):
    # Random recurrent bias even for reset_after=False: ONNX (linear_before_reset=0) and the
    # reference both add it outside the reset product, so this pins the B layout [Wb | Rb] harder.
    return ir.GRU(
        kernel=w(rng, i, (i, 3 * h)),
        recurrent_kernel=w(rng, h, (h, 3 * h)),
        input_bias=rng.normal(0.0, 0.3, 3 * h),
        recurrent_bias=rng.normal(0.0, 0.3, 3 * h),
        reset_after=reset_after,
        return_sequences=return_sequences,
        name=name,
    )


def dense(rng, i, o, activation, name="dense"):
    return ir.Dense(w(rng, i, (i, o)), rng.normal(0.0, 0.3, o), activation=activation, name=name)


@dataclass(frozen=True)
class Case:
    build: Callable[[np.random.Generator], ir.Model]
    transposes: int  # Transpose nodes the export should need, no more


def tok(vocab, *layers):
    return ir.Model(ir.InputSpec(ir.TOKENS, vocab), list(layers))


def feat(dim, *layers):
    return ir.Model(ir.InputSpec(ir.FEATURES, dim), list(layers))


CASES = {
    # Embedding -> GRU -> Dense(sigmoid), both GRU flavours.
    "tokens_gru_sigmoid_reset_after": Case(
        lambda r: tok(40, embedding(r, 40, 12), gru(r, 12, 16), dense(r, 16, 1, "sigmoid")), 1
    ),
    "tokens_gru_sigmoid_reset_before": Case(
        lambda r: tok(
            40,
            embedding(r, 40, 12),
            gru(r, 12, 16, reset_after=False),
            dense(r, 16, 1, "sigmoid"),
        ),
        1,
    ),
    # Features -> GRU -> Dense(softmax), both GRU flavours.
    "features_gru_softmax_reset_after": Case(
        lambda r: feat(5, gru(r, 5, 10), dense(r, 10, 4, "softmax")), 1
    ),
    "features_gru_softmax_reset_before": Case(
        lambda r: feat(5, gru(r, 5, 10, reset_after=False), dense(r, 10, 4, "softmax")), 1
    ),
    # Three stacked GRUs (mixed flavours) stay time-major: one Transpose, on the input.
    "stacked_gru_linear": Case(
        lambda r: feat(
            6,
            gru(r, 6, 12, return_sequences=True, name="gru"),
            gru(r, 12, 8, reset_after=False, return_sequences=True, name="gru_1"),
            gru(r, 8, 10, name="gru_2"),
            dense(r, 10, 3, "linear"),
        ),
        1,
    ),
    # Stacked, and the sequence is the model output: Transpose on the ids and at the output.
    "tokens_stacked_sequence_output": Case(
        lambda r: tok(
            30,
            embedding(r, 30, 8),
            gru(r, 8, 12, return_sequences=True, name="gru"),
            gru(r, 12, 6, reset_after=False, return_sequences=True, name="gru_1"),
        ),
        2,
    ),
    "return_sequences_final": Case(
        lambda r: feat(4, gru(r, 4, 9, reset_after=False, return_sequences=True)), 2
    ),
    # Dense on a sequence (applied per step, in time-major order, transposed back once).
    "dense_on_sequence": Case(
        lambda r: feat(
            6,
            gru(r, 6, 12, return_sequences=True),
            dense(r, 12, 7, "tanh", name="dense"),
            dense(r, 7, 3, "linear", name="dense_1"),
        ),
        2,
    ),
    "tokens_sequence_softmax": Case(
        lambda r: tok(
            25,
            embedding(r, 25, 10),
            gru(r, 10, 8, return_sequences=True),
            dense(r, 8, 5, "softmax"),
        ),
        2,
    ),
    # A per-step Dense before the GRU: the input is transposed first, the Dense runs time-major.
    "dense_before_gru": Case(
        lambda r: feat(
            7,
            dense(r, 7, 8, "relu", name="dense"),
            gru(r, 8, 6),
            dense(r, 6, 2, "linear", name="dense_1"),
        ),
        1,
    ),
    # No GRU at all: per-step layers only, nothing to transpose.
    "embedding_dense_no_gru": Case(
        lambda r: tok(20, embedding(r, 20, 6), dense(r, 6, 3, "sigmoid")), 0
    ),
}


def inputs(model: ir.Model, batch: int, steps: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if model.input.kind == ir.TOKENS:
        return rng.integers(0, model.input.dim, (batch, steps), dtype=np.int64)
    return rng.normal(0.0, 1.0, (batch, steps, model.input.dim)).astype(np.float32)


def build(case_name: str) -> ir.Model:
    """The IR model of CASES[case_name], with weights seeded by the case name."""
    return CASES[case_name].build(np.random.default_rng(zlib.crc32(case_name.encode())))
