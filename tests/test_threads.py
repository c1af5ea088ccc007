"""load(..., threads=N): batch-1 calls split over worker threads (docs/c_api.md "Threads") give
exactly the bits of threads=1, the reference being the same runtime on one thread. The models
are large enough for the split to happen (GRU(80): 3 * 80 * 80 multiply-adds a step is above
EGRU_SPLIT_MIN_MACS; LSTM(96), SimpleRNN(144)), plus cases that stay on one thread
(reset_before, int16x8)."""

from __future__ import annotations

import multiprocessing
import pickle
import threading

import numpy as np
import pytest
from ir_models import (
    bidir,
    dense,
    embedding,
    feat,
    gru,
    inputs,
    lstm,
    masked_inputs,
    simple_rnn,
    tok,
)

import edgegru
from edgegru import format as fmt
from edgegru import ir


def _models() -> dict:
    r = np.random.default_rng(14)
    return {
        # The W1, smaller vocabulary: Embedding -> GRU(128) -> Dense(1)
        "w1": tok(500, embedding(r, 500, 64), gru(r, 64, 128), dense(r, 128, 1, "sigmoid")),
        # 80 units: slices of 48 and 32 (multiples of 16, the last shorter)
        "stacked_sequences": feat(
            12,
            gru(r, 12, 80, return_sequences=True),
            gru(r, 80, 96, return_sequences=True),
            dense(r, 96, 3, "softmax"),
        ),
        "mask_zero": tok(
            60,
            ir.Embedding(r.normal(0, 1, (60, 16)), mask_zero=True),
            gru(r, 16, 112, return_sequences=True),
            dense(r, 112, 2, "linear"),
        ),
        "masking_features": feat(6, ir.Masking(6, 0.0), gru(r, 6, 96), dense(r, 96, 1, "linear")),
        "bidir_concat": tok(
            40,
            ir.Embedding(r.normal(0, 1, (40, 8)), mask_zero=True),
            bidir(r, gru, 8, 96, "concat", return_sequences=True),
        ),
        "bidir_sum": feat(5, bidir(r, gru, 5, 128, "sum")),
        "gru_hard_sigmoid": feat(
            7, gru(r, 7, 96, recurrent_activation="hard_sigmoid"), dense(r, 96, 2, "linear")
        ),
        "lstm": feat(7, lstm(r, 7, 96, return_sequences=True), gru(r, 96, 96)),
        "simple_rnn": tok(
            50, embedding(r, 50, 8), simple_rnn(r, 8, 144), dense(r, 144, 1, "linear")
        ),
        # one thread (documented): reset_before
        "reset_before": feat(7, gru(r, 7, 96, reset_after=False)),
    }


MODELS = _models()
BLOBS = {name: fmt.write(m) for name, m in MODELS.items()}


def _x(name: str, steps: int = 37) -> np.ndarray:
    model = MODELS[name]
    if name.startswith(("mask", "bidir_concat")):
        return masked_inputs(model, 5, steps, seed=3)
    return inputs(model, 5, steps, seed=3)


def _pair(blob: bytes, **kw):
    return edgegru.load(blob, **kw), edgegru.load(blob, threads=2, **kw)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("kernels", edgegru.available_kernels())
def test_two_threads_give_the_bits_of_one(name, kernels):
    one, two = _pair(BLOBS[name], kernels=kernels)
    assert two.threads == 2 and one.threads == 1
    x = _x(name)
    for row in range(x.shape[0]):  # batch 1: the split path (padded rows included)
        a, b = one.predict(x[row : row + 1]), two.predict(x[row : row + 1])
        assert np.array_equal(a, b), (name, kernels, row)
    assert np.array_equal(one.predict(x), two.predict(x))  # batch 5: split by rows


@pytest.mark.parametrize("kw", [dict(fold_embedding=True), dict(pack=False)])
def test_folded_and_unpacked_models(kw):
    one, two = _pair(BLOBS["w1"], **kw)
    x = _x("w1", steps=200)
    for row in range(2):
        assert np.array_equal(one.predict(x[row : row + 1]), two.predict(x[row : row + 1]))


@pytest.mark.parametrize("name", ["w1", "bidir_sum", "mask_zero"])
def test_int8(name):
    blob = fmt.write(MODELS[name], quantize="int8")
    one, two = _pair(blob)
    x = _x(name)
    for row in range(3):
        assert np.array_equal(one.predict(x[row : row + 1]), two.predict(x[row : row + 1]))


def test_int16x8_runs_on_one_thread_with_the_same_bits():
    model = feat(
        6, gru(np.random.default_rng(2), 6, 96), dense(np.random.default_rng(3), 96, 1, "linear")
    )
    x = inputs(model, 1, 20, seed=1)
    with pytest.warns(UserWarning, match="calibration"):
        blob = fmt.write(model, quantize="int16x8")
    one, two = _pair(blob)
    assert np.array_equal(one.predict_int(x), two.predict_int(x))


@pytest.mark.parametrize("name", ["w1", "stacked_sequences", "mask_zero", "lstm"])
def test_streams_of_batch_one(name):
    one, two = _pair(BLOBS[name])
    x = _x(name, steps=25)[:1]
    s1, s2 = one.stream(), two.stream()
    for t in range(x.shape[1]):
        assert np.array_equal(s1.step(x[:, t]), s2.step(x[:, t])), (name, t)
    assert np.array_equal(s1.state[0], s2.state[0])


def test_graph_model():
    r = np.random.default_rng(5)
    g = ir.Graph(
        [ir.GraphInput("x", "features", 6)],
        [
            ir.Node(gru(r, 6, 96, return_sequences=True), ["x"], ["h"]),
            ir.Node(gru(r, 96, 80), ["h"], ["y"]),
        ],
        ["y", "h"],  # two outputs: a graph file, run by egru_run
    )
    one, two = _pair(fmt.write(g))
    assert two.is_graph
    x = np.random.default_rng(1).normal(size=(1, 30, 6)).astype(np.float32)
    for a, b in zip(one.predict(x), two.predict(x), strict=True):
        assert np.array_equal(a, b)
    s1, s2 = one.stream(), two.stream()  # graph streams of batch 1
    for t in range(x.shape[1]):
        for a, b in zip(s1.step(x[:, t]), s2.step(x[:, t]), strict=True):
            assert np.array_equal(a, b), t


def test_concurrent_calls_on_one_model():
    """predict from several Python threads at once on one threads=2 model: a call that finds
    the workers busy runs its steps on its own thread; every result is still the same."""
    one, two = _pair(BLOBS["w1"])
    x = _x("w1", steps=120)
    want = [one.predict(x[row : row + 1]) for row in range(x.shape[0])]
    errors = []

    def work(k):
        for _ in range(6):
            for row in range(x.shape[0]):
                if not np.array_equal(two.predict(x[row : row + 1]), want[row]):
                    errors.append((k, row))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_gil_released_during_a_threaded_call():
    """The C forward pass runs without the GIL: another Python thread advances meanwhile."""
    _, two = _pair(BLOBS["w1"])
    x = _x("w1", steps=20000)[:1]
    ticks = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        before = ticks[0]
        two.predict(x)  # tens of milliseconds
        during = ticks[0] - before
    finally:
        stop.set()
        t.join()
    assert during > 100


def test_pickle_keeps_threads():
    _, two = _pair(BLOBS["w1"])
    back = pickle.loads(pickle.dumps(two))
    assert back.threads == 2
    x = _x("w1")[:1]
    assert np.array_equal(back.predict(x), two.predict(x))


def _child_predict(blob, x, q):
    q.put(edgegru.load(blob, threads=2).predict(x))


def _child_inherited(model, x, q):
    q.put(model.predict(x))


def test_fork_inherits_a_model_with_threads():
    """A forked child has none of the parent's worker threads: the pool runs the tasks on the
    calling thread there (no hang), with the same bits."""
    one, two = _pair(BLOBS["w1"])
    x = _x("w1")[:1]
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_inherited, args=(two, x, q))
    p.start()
    got = q.get(timeout=60)
    p.join(timeout=60)
    assert p.exitcode == 0 and np.array_equal(got, one.predict(x))


@pytest.mark.parametrize("bad", [0, -1, 65, 1.5, True, "2", None])
def test_threads_argument_checked(bad):
    with pytest.raises(edgegru.InputError, match="threads"):
        edgegru.load(BLOBS["w1"], threads=bad)
    with pytest.raises(edgegru.InputError, match="threads"):
        edgegru.Model(BLOBS["w1"], threads=bad)


def test_threads_accepts_numpy_ints():
    assert edgegru.load(BLOBS["w1"], threads=np.int64(3)).threads == 3


@pytest.mark.parametrize("limit", [0, 60_000])
def test_chunked_plans(limit):
    """arena_limit below the fast plan's arena: the chunked plans (one row, chunks of steps, the
    projections one chunk at a time; 0: the low-memory plan, one step at a time)."""
    one, two = _pair(BLOBS["stacked_sequences"])
    one.arena_limit = two.arena_limit = limit
    x = _x("stacked_sequences", steps=120)
    assert two.arena_size(1, 120) > limit
    for row in range(2):
        assert np.array_equal(one.predict(x[row : row + 1]), two.predict(x[row : row + 1]))
