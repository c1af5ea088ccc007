"""The low-memory plan (issue #11): the forward functions run in any arena from
egru_arena_size_min up, choosing the fast plan when it fits and chunks of steps one row at a
time when it does not, with the same outputs bit for bit; the low-memory arena does not grow
with T for models whose layers run step by step, and meets the microcontroller budgets.

The expected outputs are the fast plan's (whose agreement with Keras and the float64 reference
the other tests establish); here only the plan changes, so the comparison is exact
(np.array_equal; NaN equals NaN: a fully masked row's average pool is 0 / 0, as in Keras)."""

from __future__ import annotations

import numpy as np
import pytest
from ir_models import (
    CASES,
    MORE_CASES,
    build,
    build_more,
    dense,
    embedding,
    feat,
    gru,
    masked_inputs,
    tok,
)

import edgegru
from edgegru import format as fmt
from edgegru.errors import InputError

ALL_CASES = [("case", name) for name in CASES] + [("more", name) for name in MORE_CASES]

#: Arena budgets of issue #11 at batch 1 (bytes), for its three reference models.
SEED_BUDGET = 6 * 1024  # Embedding(20000, 128) -> GRU(128) -> Dense(1), T = 200
SENSOR_BUDGET = 3 * 1024  # T = 100 x 6 -> GRU(64) -> Dense(4)
SMALL_BUDGET = 1 * 1024  # T = 50 x 8 -> GRU(16) -> Dense(1)


def _model(kind: str, name: str):
    return build(name) if kind == "case" else build_more(name)


def _steps(m: edgegru.Model, want: int) -> int:
    lo, hi = m.seq_len_range
    return m.fixed_seq_len if hi is not None else max(lo, want)


def _predict_with_limit(m: edgegru.Model, x: np.ndarray, limit: int) -> np.ndarray:
    old = m.arena_limit
    m.arena_limit = limit
    try:
        return m.predict(x)
    finally:
        m.arena_limit = old


@pytest.mark.parametrize("kernels", ["ref", None])
@pytest.mark.parametrize(("kind", "name"), ALL_CASES)
def test_every_plan_gives_the_fast_plans_output_bit_for_bit(kind, name, kernels):
    model = _model(kind, name)
    m = edgegru.load(fmt.write(model), kernels=kernels)
    steps = _steps(m, 23)
    for batch in (1, 3, 19):
        x = masked_inputs(model, batch, steps, seed=batch)
        fast = m.predict(x)
        low = m.arena_size(batch, steps, minimal=True)
        full = m.arena_size(batch, steps)
        assert low <= full
        # 0: the low-memory plan (one step at a time); in between: the longest chunks that fit.
        for limit in (0, low + 1, (low + full) // 2, full - 1):
            got = _predict_with_limit(m, x, limit)
            assert got.shape == fast.shape
            assert np.array_equal(got, fast, equal_nan=True), (
                f"{name}, batch {batch}, arena limit {limit}"
            )


def test_folded_and_packed_models_keep_their_output_in_every_plan():
    model = build("tokens_gru_sigmoid_reset_after")
    x = masked_inputs(model, 5, 31, seed=2)
    for options in ({"fold_embedding": True}, {"pack": True}, {"pack": False}):
        m = edgegru.load(fmt.write(model), **options)
        assert np.array_equal(_predict_with_limit(m, x, 0), m.predict(x)), options


@pytest.mark.parametrize(("kind", "name"), ALL_CASES)
def test_the_low_memory_arena_does_not_grow_with_t_when_every_layer_streams(kind, name):
    m = edgegru.load(fmt.write(_model(kind, name)))
    if m.fixed_seq_len is not None:
        return  # a Flatten fixes T: there is no T to grow
    lo, _ = m.seq_len_range
    sizes = [m.arena_size(1, max(lo, t), minimal=True) for t in (10, 200, 5000)]
    try:
        m.stream()
        streams = True
    except edgegru.UnsupportedError:
        streams = False
    if streams:
        assert sizes[0] == sizes[1] == sizes[2], sizes
        assert m.arena_size(7, 200, minimal=True) == sizes[0]  # nor with the batch
    else:
        # A whole-sequence layer keeps its input (and output) for one row: linear in T, and far
        # below the fast plan, which keeps every layer's sequence and the projections.
        assert sizes[0] <= sizes[1] <= sizes[2]
        assert sizes[2] < m.arena_size(1, 5000)


def _issue_models():
    rng = np.random.default_rng(11)
    return {
        "seed": (
            tok(
                20000, embedding(rng, 20000, 128), gru(rng, 128, 128), dense(rng, 128, 1, "sigmoid")
            ),
            200,
            SEED_BUDGET,
        ),
        "sensor": (feat(6, gru(rng, 6, 64), dense(rng, 64, 4, "linear")), 100, SENSOR_BUDGET),
        "small": (feat(8, gru(rng, 8, 16), dense(rng, 16, 1, "sigmoid")), 50, SMALL_BUDGET),
    }


@pytest.mark.parametrize("which", ["seed", "sensor", "small"])
def test_the_issue_models_fit_their_microcontroller_budgets(which):
    model, steps, budget = _issue_models()[which]
    for quantize in (None, "int8"):
        blob = fmt.write(model, quantize=quantize)
        m = edgegru.load(blob)
        sizes = {t: m.arena_size(1, t, minimal=True) for t in (10, steps, 5000)}
        assert len(set(sizes.values())) == 1, sizes
        assert sizes[steps] <= budget, (which, quantize, sizes[steps])
        # and it runs in exactly that much
        x = masked_inputs(model, 2, steps, seed=3)
        assert np.array_equal(_predict_with_limit(m, x, 0), m.predict(x))


def test_a_long_sequence_runs_in_the_limit_not_in_the_fast_plans_arena():
    """T = 200000 for GRU(16): the fast plan wants ~39 MB; with the limit at 1 MiB predict runs
    chunks of steps in 1 MiB and gives the same output."""
    model = _issue_models()["small"][0]
    m = edgegru.load(fmt.write(model))
    x = np.random.default_rng(0).normal(size=(1, 200_000, 8)).astype(np.float32)
    assert m.arena_size(1, 200_000) > 30 * 2**20
    m2 = edgegru.load(fmt.write(model))
    m2.arena_limit = 2**20
    assert np.array_equal(m2.predict(x), m.predict(x))


def test_arena_limit_and_minimal_are_checked():
    m = edgegru.load(fmt.write(build("tokens_gru_sigmoid_reset_after")))
    assert m.arena_limit == edgegru.runtime.DEFAULT_ARENA_LIMIT == 256 * 2**20
    for bad in (-1, 1.5, "1", True, 2**64):
        with pytest.raises(InputError, match="arena_limit"):
            m.arena_limit = bad
    with pytest.raises(InputError, match="minimal"):
        m.arena_size(1, 10, minimal="yes")
