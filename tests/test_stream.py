"""Streaming (Model.stream): one step at a time with carried state equals predict on the whole
sequence, reset() is a fresh stream, the state layout matches the float64 reference, and models
or inputs that cannot stream fail with messages that name the problem."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from ir_models import (
    CASES,
    MORE_CASES,
    build,
    build_more,
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
from edgegru import ir, reference
from edgegru.errors import InputError, UnsupportedError
from edgegru.validate import FP32_TOLERANCE

#: Streaming runs the forward pass's float32 kernels one step at a time; the only difference is
#: how a kernel groups a sum (one step vs a block of steps), a few float32 ulps.
STEP_TOLERANCE = 1e-6

#: MORE_CASES that cannot stream, and the words their error must contain.
NOT_STREAMABLE = {
    "gru_go_backwards_sequences": "go_backwards",
    "gru_go_backwards_last": "go_backwards",
    "lstm_stacked_backwards": "go_backwards",
    "conv_valid_gru": "Conv1D",
    "conv_same_strided": "Conv1D",
    "conv_causal_dilated": "Conv1D",
    "pool_average": "pools over the whole sequence",
    "pool_max": "pools over the whole sequence",
    "activation_flatten": "flattens the whole sequence",
    "mask_zero_stacked_lstm_backwards": "go_backwards",
    "mask_zero_bidir_sequences": "Bidirectional",
    "mask_zero_bidir_last_sum": "Bidirectional",
    "mask_zero_pool_average": "pools over the whole sequence",
    **{name: "Bidirectional" for name in MORE_CASES if name.startswith("bidir_")},
}
STREAMABLE_MORE = [name for name in MORE_CASES if name not in NOT_STREAMABLE]


def _case(name: str):
    model = build(name) if name in CASES else build_more(name)
    return model, edgegru.load(fmt.write(model))


def _last(y: np.ndarray) -> np.ndarray:
    """predict's output at the last step (a sequence output) or the whole output."""
    return y[:, -1] if y.ndim == 3 else y


def _stream_diffs(em: edgegru.Model, x: np.ndarray) -> list[float]:
    """Max |step output - predict on the prefix| at every step."""
    s = em.stream(batch=x.shape[0])
    full = em.predict(x)
    diffs = []
    for t in range(x.shape[1]):
        y = s.step(x[:, t])
        assert y.dtype == np.float32 and y.shape == (x.shape[0], em.output_dim)
        want = _last(em.predict(x[:, : t + 1]))
        if em.output_is_sequence:  # causal: the prefix's last step is the full output's step t
            np.testing.assert_allclose(want, full[:, t], rtol=0, atol=STEP_TOLERANCE)
        diffs.append(float(np.max(np.abs(y - want))))
    assert s.steps == x.shape[1]
    np.testing.assert_allclose(y, _last(full), rtol=0, atol=STEP_TOLERANCE)
    return diffs


@pytest.mark.parametrize("case_name", list(CASES) + STREAMABLE_MORE)
def test_stream_equals_predict_on_every_prefix(case_name):
    """GRU (both reset flavours), LSTM, SimpleRNN, stacked, token and feature models, per-step
    heads and last-state heads, masked (post/pre/middle/no/all padding) and unmasked inputs."""
    model, em = _case(case_name)
    masked = case_name.startswith("mask")
    x = (masked_inputs if masked else inputs)(model, 5, 9, seed=11)
    diffs = _stream_diffs(em, x)
    assert max(diffs) <= STEP_TOLERANCE, f"{case_name}: max diff per step {diffs}"
    if not masked and model.input.kind == ir.TOKENS:  # padding ids also work unmasked
        assert max(_stream_diffs(em, masked_inputs(model, 5, 9, seed=12))) <= STEP_TOLERANCE


def test_long_stream_stays_equal():
    """200 steps of the stacked GRU model: no drift between streaming and predict."""
    model, em = _case("stacked_gru_linear")
    x = inputs(model, 2, 200, seed=5)
    s = em.stream(batch=2)
    ys = np.stack([s.step(x[:, t]) for t in range(200)], axis=1)
    np.testing.assert_allclose(ys[:, -1], em.predict(x), rtol=0, atol=STEP_TOLERANCE)
    model, em = _case("tokens_sequence_softmax")
    x = inputs(model, 2, 200, seed=6)
    s = em.stream(batch=2)
    ys = np.stack([s.step(x[:, t]) for t in range(200)], axis=1)
    np.testing.assert_allclose(ys, em.predict(x), rtol=0, atol=STEP_TOLERANCE)


def test_step_input_forms_and_dtypes():
    model, em = _case("tokens_stacked_sequence_output")
    ids = inputs(model, 3, 4, seed=1)
    forms = [
        lambda t: ids[:, t],
        lambda t: ids[:, t : t + 1],
        lambda t: ids[:, t].astype(np.uint8),
        lambda t: list(ids[:, t]),
    ]
    outs = []
    for form in forms:
        s = em.stream(batch=3)
        outs.append(np.stack([s.step(form(t)) for t in range(4)], axis=1))
    for other in outs[1:]:
        np.testing.assert_array_equal(outs[0], other)
    model, em = _case("features_gru_softmax_reset_after")
    x = inputs(model, 2, 4, seed=2).astype(np.float64)
    forms = [lambda t: x[:, t], lambda t: x[:, t : t + 1], lambda t: x[:, t].astype(np.float32)]
    outs = []
    for form in forms:
        s = em.stream(batch=2)
        outs.append([s.step(form(t)) for t in range(4)])
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    np.testing.assert_allclose(outs[0][-1], em.predict(x), rtol=0, atol=STEP_TOLERANCE)


@pytest.mark.parametrize("case_name", ["mask_zero_gru_sequences", "masking_features", "lstm"])
def test_reset_is_a_fresh_stream(case_name):
    model, em = _case(case_name)
    x = masked_inputs(model, 5, 6, seed=3)
    fresh = em.stream(batch=5)
    want = [fresh.step(x[:, t]) for t in range(6)]
    s = em.stream(batch=5)
    for t in range(4):
        s.step(x[:, 5 - t])
    s.state = tuple(np.ones(shape) * 0.5 for shape in s.state_shapes)  # reset clears this too
    s.reset()
    assert s.steps == 0
    assert all(not a.any() for a in s.state)
    got = [s.step(x[:, t]) for t in range(6)]
    np.testing.assert_array_equal(np.array(got), np.array(want))


def test_state_layout_and_round_trip():
    model, em = _case("masking_features")  # Masking -> GRU(sequences) -> LSTM
    s = em.stream(batch=3)
    assert s.state_shapes == ((1, 3, 5), (2, 3, 4))
    state = s.state
    assert isinstance(state, tuple) and [a.shape for a in state] == [(1, 3, 5), (2, 3, 4)]
    assert all(a.dtype == np.float32 and not a.any() for a in state)
    x = inputs(model, 3, 8, seed=4)
    for t in range(4):
        s.step(x[:, t])
    saved = s.state
    saved[0][...] = 7.0  # a copy: changing it changes nothing
    saved = s.state
    assert not np.array_equal(saved[0], np.full((1, 3, 5), 7.0))
    other = em.stream(batch=3)
    other.state = saved
    for a, b in zip(other.state, saved, strict=True):
        np.testing.assert_array_equal(a, b)
    for t in range(4, 8):  # no masked step here: a restored stream continues exactly
        np.testing.assert_array_equal(s.step(x[:, t]), other.step(x[:, t]))
    other.state = [a.astype(np.float64) for a in saved]  # a list of float64 arrays is accepted
    np.testing.assert_array_equal(other.state[1], saved[1])


def _single_layer_models():
    rng = np.random.default_rng(17)
    for seq in (True, False):
        yield f"gru_reset_after_seq{seq}", feat(4, gru(rng, 4, 6, return_sequences=seq))
        yield (
            f"gru_reset_before_seq{seq}",
            feat(4, gru(rng, 4, 6, reset_after=False, return_sequences=seq)),
        )
        yield f"lstm_seq{seq}", feat(4, lstm(rng, 4, 5, return_sequences=seq))
        yield f"simple_rnn_seq{seq}", feat(4, simple_rnn(rng, 4, 5, return_sequences=seq))
        yield (
            f"masked_lstm_seq{seq}",
            tok(
                10,
                ir.Embedding(rng.normal(0, 1, (10, 3)), mask_zero=True),
                lstm(rng, 3, 4, return_sequences=seq),
            ),
        )
        yield (
            f"masked_gru_seq{seq}",
            tok(10, embedding(rng, 10, 3), gru(rng, 3, 4, return_sequences=seq)),
        )


SINGLE = dict(_single_layer_models())


@pytest.mark.parametrize("name", list(SINGLE))
def test_set_state_matches_reference_initial_state(name):
    """Set a random state, step, compare every step and the final state with the float64
    reference.recurrent(..., state=...) (masked steps included for the token models)."""
    model = SINGLE[name]
    em = edgegru.load(fmt.write(model))
    layer = model.layers[-1]
    is_lstm = isinstance(layer, ir.LSTM)
    batch, steps = 5, 7
    rng = np.random.default_rng(3)
    state0 = rng.uniform(-0.9, 0.9, (2 if is_lstm else 1, batch, layer.units))
    if model.input.kind == ir.TOKENS:
        ids = masked_inputs(model, batch, steps, seed=8)
        x = np.asarray(model.layers[0].table, dtype=np.float64)[ids]
        mask = ids != 0 if model.layers[0].mask_zero else None
        feed = ids
    else:
        x = inputs(model, batch, steps, seed=8).astype(np.float64)
        mask, feed = None, x
    init = (state0[0], state0[1]) if is_lstm else state0[0]
    outs, final = reference.recurrent(layer, x, mask, state=init)
    s = em.stream(batch=batch)
    s.state = (state0,)
    np.testing.assert_array_equal(s.state[0], state0.astype(np.float32))
    got = np.stack([s.step(feed[:, t]) for t in range(steps)], axis=1)
    np.testing.assert_allclose(got, outs, rtol=0, atol=FP32_TOLERANCE)
    want_final = np.stack(final) if is_lstm else final[None]
    np.testing.assert_allclose(s.state[0], want_final, rtol=0, atol=FP32_TOLERANCE)


@pytest.mark.parametrize("case_name", sorted(NOT_STREAMABLE))
def test_unsupported_models_raise(case_name):
    _, em = _case(case_name)
    with pytest.raises(UnsupportedError, match=NOT_STREAMABLE[case_name]) as info:
        em.stream()
    assert "cannot stream" in str(info.value) and "layer " in str(info.value)
    em.predict(inputs(build_more(case_name), 1, 6))  # the model itself still predicts


def test_wrong_inputs_give_clear_errors():
    _, em = _case("tokens_gru_sigmoid_reset_after")  # vocabulary 40
    s = em.stream(batch=2)
    s.step(np.array([3, 4]))
    before = s.state
    bad = [
        (np.array([[1, 2], [3, 4]]), r"shape \(batch,\) or \(batch, 1\)"),
        (np.array(5), r"shape \(batch,\) or \(batch, 1\)"),
        (np.array([1, 2, 3]), "this stream has batch 2, got 3 rows"),
        (np.array([1.0, 2.0]), "token ids must be an integer array"),
        (np.array([1, 40]), "token id 40 .* out of range"),
        (np.array([-1, 0]), "token id -1 .* out of range"),
    ]
    for x, message in bad:
        with pytest.raises(InputError, match=message):
            s.step(x)
    assert s.steps == 1
    for a, b in zip(s.state, before, strict=True):
        np.testing.assert_array_equal(a, b)  # failed steps change nothing

    _, em = _case("features_gru_softmax_reset_after")  # 5 features
    s = em.stream(batch=2)
    bad = [
        (np.zeros(5), r"shape \(batch, 5\) or \(batch, 1, 5\)"),
        (np.zeros((2, 2, 5)), r"shape \(batch, 5\) or \(batch, 1, 5\)"),
        (np.zeros((2, 4)), "expected 5 features per step, got 4"),
        (np.zeros((3, 5)), "this stream has batch 2, got 3 rows"),
        (np.zeros((2, 5), dtype=np.int32), "features must be a float array"),
        (np.array([[0, 0, np.nan, 0, 0], [0] * 5]), "NaN and infinity are not valid"),
        (np.full((2, 5), 1e300), "does not fit in float32"),
    ]
    for x, message in bad:
        with pytest.raises(InputError, match=message):
            s.step(x)
    assert s.steps == 0

    s = em.stream(batch=2)  # GRU(10): state shapes ((1, 2, 10),)
    for value, message in [
        (np.zeros((1, 2, 10)), "tuple of 1 arrays"),
        ((), "must have 1 entries"),
        ((np.zeros((2, 10)),), r"must have shape \(1, 2, 10\)"),
        ((np.full((1, 2, 10), np.inf),), "NaN, infinity"),
        ((np.full((1, 2, 10), "a"),), "must be numeric"),
    ]:
        with pytest.raises(InputError, match=message):
            s.state = value
    for batch in (0, -1, 2.0, True, 2**32):
        with pytest.raises(InputError, match="batch must be"):
            em.stream(batch=batch)


def test_streams_in_threads():
    """One model, one stream per thread, the C step without the GIL: same as sequential."""
    model, em = _case("tokens_stacked_sequence_output")
    xs = [inputs(model, 2, 30, seed=k) for k in range(4)]

    def run(x):
        s = em.stream(batch=2)
        return np.stack([s.step(x[:, t]) for t in range(x.shape[1])], axis=1)

    want = [run(x) for x in xs]
    got = [None] * len(xs)

    def worker(k):
        got[k] = run(xs[k])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_recurrent_layer_is_a_stateless_stream():
    model, em = _case("embedding_dense_no_gru")
    s = em.stream(batch=3)
    assert s.state == () and s.state_shapes == ()
    s.state = ()
    x = inputs(model, 3, 4, seed=9)
    np.testing.assert_allclose(
        np.stack([s.step(x[:, t]) for t in range(4)], axis=1), em.predict(x), atol=STEP_TOLERANCE
    )
    assert "Stream batch=3" in repr(s)


def test_odd_step_inputs_are_input_errors():
    """Item 13: ragged lists, 0-d and bool arrays, wrong dtypes: InputError, state unchanged."""
    _, em = _case("tokens_gru_sigmoid_reset_after")
    s = em.stream(batch=2)
    for x, message in [
        ([[1], [2, 3]], "not a rectangular numeric array"),
        (np.array(1), r"shape \(batch,\) or \(batch, 1\)"),
        (np.ones(2, bool), "token ids must be an integer array, got dtype bool"),
        (np.array([1, None], object), "got dtype object"),
        (np.array([2**63, 1], np.uint64), "out of range"),
    ]:
        with pytest.raises(InputError, match=message):
            s.step(x)
    assert s.steps == 0
    ids = np.array([[3, 5], [7, 9]], np.int32)
    np.testing.assert_array_equal(s.step(ids[:, 0]), em.stream(batch=2).step(ids[:, 0].copy()))
    _, em = _case("features_gru_softmax_reset_after")
    s = em.stream(batch=2)
    with pytest.raises(InputError, match="not a rectangular numeric array"):
        s.step([[0.0] * 5, [0.0] * 4])
    with pytest.raises(InputError, match="not a rectangular numeric array"):
        s.state = ([[[0.0] * 10, [0.0] * 9]],)
    with pytest.raises(InputError, match="must be numeric"):
        s.state = (np.ones((1, 2, 10), bool),)
