"""Streaming int16x8 models (egru_session_*_s16, Model.stream()): fed one step at a time, a
stream gives at every step exactly (bit for bit) what the int16x8 forward pass gives for the
steps fed so far, with every kernel set. Expected values come from the numpy emulation
edgegru.int16x8 (the specification), run on each prefix; the runtime's own predict_int is
compared too. Also: reset, pickling, state get/set (integer and float), hostile inputs and
states, and the models that cannot stream."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import warnings

import int16x8_models
import numpy as np
import pytest
from int16x8_layers import dense as _dense
from int16x8_layers import gru as _gru
from int16x8_layers import lstm as _lstm
from int16x8_layers import rnn as _rnn

import edgegru
from edgegru import format as fmt
from edgegru import int16x8 as q16
from edgegru import ir

KERNEL_SETS = edgegru.available_kernels()
F5 = ir.InputSpec("features", 5)
T30 = ir.InputSpec("tokens", 30)


def _named(*layers):
    """Layers with unique names (the stream's messages and the file's metadata name them)."""
    return [dataclasses.replace(layer, name=f"{layer.name}_{k}") for k, layer in enumerate(layers)]


def _cases():
    """(name, IR model): every layer kind an int16x8 stream runs, as a sequence model (every
    recurrent layer returns sequences) and as a last-state model with a head."""
    rng = np.random.default_rng(21)
    M = ir.Model
    yield (
        "gru-after-seq-dense",
        M(F5, _named(_gru(rng, 5, 7, seq=True), _dense(rng, 7, 3, "softmax"))),
    )
    yield "gru-before-last", M(F5, _named(_gru(rng, 5, 6, False), _dense(rng, 6, 2, "sigmoid")))
    yield (
        "gru-before-seq-hard",
        M(F5, _named(_gru(rng, 5, 6, False, ract="hard_sigmoid", seq=True))),
    )
    yield "gru-relu-state", M(F5, _named(_gru(rng, 5, 6, act="relu"), _dense(rng, 6, 2, "linear")))
    yield "gru-alone", M(F5, _named(_gru(rng, 5, 8)))
    yield "lstm-last", M(F5, _named(_lstm(rng, 5, 6), _dense(rng, 6, 3, "softmax")))
    yield "lstm-seq-relu", M(F5, _named(_lstm(rng, 5, 5, act="relu", seq=True)))
    yield "rnn-seq", M(F5, _named(_rnn(rng, 5, 9, seq=True), _dense(rng, 9, 2, "tanh")))
    yield "rnn-softsign-last", M(F5, _named(_rnn(rng, 5, 4, act="softsign")))
    yield (
        "stacked",
        M(
            F5,
            _named(
                _dense(rng, 5, 6, "relu"),
                _lstm(rng, 6, 5, seq=True),
                _gru(rng, 5, 4, False, seq=True),
                _rnn(rng, 4, 3, "relu"),
                _dense(rng, 3, 4, "softmax"),
            ),
        ),
    )
    yield (
        "masking-gru-seq",
        M(F5, _named(ir.Masking(5, 0.0), _gru(rng, 5, 6, seq=True), _dense(rng, 6, 2, "sigmoid"))),
    )
    yield (
        "masking-lstm-last",
        M(F5, _named(ir.Masking(5, 1.5), _lstm(rng, 5, 6), _dense(rng, 6, 2, "tanh"))),
    )
    yield (
        "masking-stacked",
        M(
            F5,
            _named(
                ir.Masking(5, 0.0),
                _gru(rng, 5, 4, seq=True),
                _lstm(rng, 4, 5),
                _dense(rng, 5, 2, "linear"),
            ),
        ),
    )
    yield (
        "tokens-mask-zero",
        M(
            T30,
            _named(
                ir.Embedding(rng.normal(0, 1, (30, 6)), mask_zero=True),
                _gru(rng, 6, 8, seq=True),
                _lstm(rng, 8, 4),
                _dense(rng, 4, 1, "sigmoid"),
            ),
        ),
    )
    yield (
        "tokens-rnn-seq",
        M(T30, _named(ir.Embedding(rng.normal(0, 1, (30, 4))), _rnn(rng, 4, 5, seq=True))),
    )
    yield (
        "tokens-dense",
        M(T30, _named(ir.Embedding(rng.normal(0, 2, (30, 3))), _dense(rng, 3, 4, "softmax"))),
    )
    yield (
        "affine-activation",
        M(
            F5,
            _named(
                ir.Affine(rng.uniform(0.5, 2.0, 5), rng.normal(0, 0.3, 5)),
                _gru(rng, 5, 6, seq=True),
                ir.Activation(6, "softsign"),
                _dense(rng, 6, 2, "linear"),
            ),
        ),
    )
    yield (
        "layernorm",
        M(
            F5,
            _named(
                _lstm(rng, 5, 6, seq=True),
                ir.LayerNorm(rng.uniform(0.5, 1.5, 6), rng.normal(0, 0.2, 6)),
                _dense(rng, 6, 2, "tanh"),
            ),
        ),
    )
    # random models of every kind of tests/int16x8_models.py, all recurrent layers forwards
    for kind in int16x8_models.KINDS:
        for seed in range(3):
            model = int16x8_models.random_model(kind, 500 + seed)
            layers = [
                dataclasses.replace(layer, go_backwards=False)
                if isinstance(layer, ir.RECURRENT)
                else layer
                for layer in model.layers
            ]
            yield f"random-{kind}-{seed}", ir.Model(model.input, _named(*layers))


CASES = list(_cases())


def _inputs(model, rng, batch=6, steps=10):
    """Ids or N(0, 1) features; rows padded (ids 0, frames 0.0) at the end, at the front and in
    the middle, so that masks have effect; one frame equal to Masking(1.5)'s mask_value."""
    if model.input.kind == ir.TOKENS:
        x = rng.integers(0, model.input.dim, (batch, steps))
    else:
        x = rng.standard_normal((batch, steps, model.input.dim)).astype(np.float32)
    x[0, steps // 2 :] = 0
    x[1, : steps // 3] = 0
    x[2, steps // 3 : steps // 2] = 0
    if model.input.kind == ir.FEATURES:
        x[3, 1] = 1.5
    return x


def _blob(model, calibration):
    meta = {"source": {"layers": [layer.name for layer in model.layers]}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # calibration given: no warning
        return fmt.write(model, metadata=meta, quantize="int16x8", calibration=calibration)


def _setup(name, model, steps=10):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    x = _inputs(model, rng, steps=steps)
    cal = np.concatenate([_inputs(model, rng, batch=24, steps=steps), x])
    # the emulation's model from the IR model and the calibration, as the writer makes it
    return _blob(model, cal), q16.quantize(model, cal), x


def _last(y):
    """The output at the last step of a prefix's forward pass (the whole output otherwise)."""
    return y[:, -1] if y.ndim == 3 else y


def _emulated_steps(qm, x):
    """The emulation on every prefix: (T, batch, output_dim) int64."""
    return np.stack([_last(q16.forward_int(qm, x[:, : t + 1])) for t in range(x.shape[1])])


@pytest.mark.parametrize("name, model", CASES, ids=[n for n, _ in CASES])
def test_every_step_equals_the_forward_pass_of_its_prefix(name, model):
    blob, qm, x = _setup(name, model)
    inputs = [x] if model.input.kind == ir.TOKENS else [x, 3 * x]  # and beyond the calibration
    for xs in inputs:
        want = _emulated_steps(qm, xs)
        m = edgegru.load(blob)
        runtime = np.stack([_last(m.predict_int(xs[:, : t + 1])) for t in range(xs.shape[1])])
        assert np.array_equal(runtime, want)  # the forward pass agrees with the emulation
        for kernels in KERNEL_SETS:
            s = edgegru.load(blob, kernels=kernels).stream(batch=xs.shape[0])
            for t in range(xs.shape[1]):
                got = s.step_int(xs[:, t])
                assert got.dtype == np.int16 and got.shape == want[t].shape
                assert np.array_equal(got, want[t]), (name, kernels, t, np.abs(got - want[t]).max())
            assert s.steps == xs.shape[1]
    # the float step: the integer step dequantized, as predict dequantizes predict_int
    s = edgegru.load(blob).stream(batch=x.shape[0])
    want = _emulated_steps(qm, x).astype(np.float64) * np.float64(qm.output_scale)
    for t in range(x.shape[1]):
        y = s.step(x[:, t])
        assert y.dtype == np.float32 and np.array_equal(y, want[t].astype(np.float32))


def test_steps_of_a_single_row_and_of_many_rows_agree():
    """Row b of a batch-6 stream is the batch-1 stream of row b (rows are independent)."""
    name, model = next(c for c in CASES if c[0] == "tokens-mask-zero")
    blob, _, x = _setup(name, model)
    m = edgegru.load(blob)
    many = m.stream(batch=6)
    ones = [m.stream() for _ in range(6)]
    for t in range(x.shape[1]):
        y = many.step_int(x[:, t])
        for b in range(6):
            assert np.array_equal(ones[b].step_int(x[b : b + 1, t]), y[b : b + 1])


def test_input_shapes_and_dtypes_accepted():
    """Ids as (batch,) or (batch, 1) of any integer dtype; features as (batch, dim) or
    (batch, 1, dim), float16/32/64 or int16 (at the input scale)."""
    name, model = next(c for c in CASES if c[0] == "tokens-mask-zero")
    blob, qm, x = _setup(name, model)
    m = edgegru.load(blob)
    forms = [
        lambda v: v,
        lambda v: v[:, None],
        lambda v: v.astype(np.uint8),
        lambda v: v.astype(np.int64),
    ]
    streams = [m.stream(batch=6) for _ in forms]
    want = _emulated_steps(qm, x)
    for t in range(x.shape[1]):
        for s, form in zip(streams, forms, strict=True):
            assert np.array_equal(s.step_int(form(x[:, t])), want[t])
    name, model = next(c for c in CASES if c[0] == "masking-stacked")
    blob, qm, x = _setup(name, model)
    m = edgegru.load(blob)
    want = _emulated_steps(qm, x)
    forms = [lambda v: v, lambda v: v[:, None], lambda v: v.astype(np.float64)]
    streams = [m.stream(batch=6) for _ in forms]
    for t in range(x.shape[1]):
        for s, form in zip(streams, forms, strict=True):
            assert np.array_equal(s.step_int(form(x[:, t])), want[t])


def test_int16_features_pass_through_and_masking_compares_integers():
    """int16 features are at the input scale (-32768 reads as -32767); a first Masking layer then
    compares them with the quantized mask value, float ones with mask_value itself (Keras)."""
    name, model = next(c for c in CASES if c[0] == "masking-lstm-last")
    blob, qm, _ = _setup(name, model)
    rng = np.random.default_rng(5)
    xi = rng.integers(-32768, 32768, (4, 8, 5)).astype(np.int16)
    xi[0, 2:5] = q16.mask_value_q(qm)  # masked steps
    xi[1, :, 0] = -32768
    want = _emulated_steps(qm, xi)
    for kernels in KERNEL_SETS:
        s = edgegru.load(blob, kernels=kernels).stream(batch=4)
        for t in range(xi.shape[1]):
            assert np.array_equal(s.step_int(xi[:, t]), want[t]), (kernels, t)
    # a float frame that quantizes to the mask value without equalling mask_value is valid
    m = edgegru.load(blob)
    xf = np.full((1, 3, 5), 1.5, dtype=np.float32)
    xf[0, 1] = np.nextafter(np.float32(1.5), np.float32(2))
    assert np.array_equal(q16.quantize_input(qm, xf)[0, 1], q16.quantize_input(qm, xf)[0, 0])
    s = m.stream()
    got = [s.step_int(xf[:, t]) for t in range(3)]
    assert np.array_equal(np.stack(got), _emulated_steps(qm, xf))
    assert not np.array_equal(got[1], _emulated_steps(qm, q16.quantize_input(qm, xf))[1])


def test_reset_is_a_fresh_stream():
    name, model = next(c for c in CASES if c[0] == "masking-stacked")
    blob, qm, x = _setup(name, model)
    s = edgegru.load(blob).stream(batch=6)
    for t in range(4):
        s.step_int(x[:, t])
    assert any(np.any(a != 0) for a in s.state_int)
    s.reset()
    assert s.steps == 0 and all(not np.any(a) for a in s.state_int)
    want = _emulated_steps(qm, x)
    for t in range(x.shape[1]):
        assert np.array_equal(s.step_int(x[:, t]), want[t])


@pytest.mark.parametrize("name", ["tokens-mask-zero", "masking-stacked", "stacked"])
def test_pickled_and_copied_streams_continue_exactly(name):
    """Mid-sequence, masked steps included: the seen flags and the integer state travel."""
    model = dict(CASES)[name]
    blob, qm, x = _setup(name, model)
    s = edgegru.load(blob).stream(batch=6)
    for t in range(5):
        s.step_int(x[:, t])
    blob_s = pickle.dumps(s)
    saved = s.__reduce__()[1][2]
    assert saved["dtype"] == "int16x8" and all(a.dtype == np.int32 for a in saved["state"])
    others = [pickle.loads(blob_s), copy.copy(s), copy.deepcopy(s)]
    want = _emulated_steps(qm, x)
    for other in others:
        assert other.steps == 5
        assert all(np.array_equal(a, b) for a, b in zip(other.state_int, s.state_int, strict=True))
    for t in range(5, x.shape[1]):
        y = s.step_int(x[:, t])
        assert np.array_equal(y, want[t])
        for other in others:
            assert np.array_equal(other.step_int(x[:, t]), y)


def _initial_state_emulation(qm, init):
    """q16._run_recurrent with each recurrent layer starting from init[k] (int arrays (parts,
    batch, units), in recurrent-layer order) instead of zeros: the emulation's step functions and
    masking, with Keras' initial_state semantics (outputs zero until the row's first valid step;
    a last-state layer's output is its last output)."""
    order = [p for kind, _layer, p in qm.layers if kind == "recurrent"]
    start = {id(p): s for p, s in zip(order, init, strict=True)}
    step_of = {"gru": q16._gru_step, "lstm": q16._lstm_step, "rnn": q16._rnn_step}

    def run(q, x, mask, **kw):
        assert not kw and not q.layer.go_backwards
        s0 = start[id(q)].astype(np.int64)
        state = (s0[0], s0[1]) if q.kind == "lstm" else s0[0]
        batch, steps, _ = x.shape
        seen = np.zeros((batch, 1), dtype=bool)
        outs = np.zeros((batch, steps, q.layer.units), dtype=np.int64)
        for t in range(steps):
            new = step_of[q.kind](q, x[:, t], state)
            valid = np.ones((batch, 1), dtype=bool) if mask is None else mask[:, t : t + 1]
            if q.kind == "lstm":
                state = (np.where(valid, new[0], state[0]), np.where(valid, new[1], state[1]))
            else:
                state = np.where(valid, new, state)
            seen |= valid
            outs[:, t] = np.where(seen, state[0] if q.kind == "lstm" else state, 0)
        return outs, outs[:, -1]

    return run


@pytest.mark.parametrize(
    "name", ["masking-stacked", "tokens-mask-zero", "gru-relu-state", "stacked"]
)
def test_a_set_state_acts_as_keras_initial_state(name, monkeypatch):
    model = dict(CASES)[name]
    blob, qm, x = _setup(name, model)
    m = edgegru.load(blob)
    s = m.stream(batch=6)
    for t in range(4):
        s.step_int(x[:, t])
    init = s.state_int
    for kernels in KERNEL_SETS:
        other = edgegru.load(blob, kernels=kernels).stream(batch=6)
        other.state_int = init
        assert other.steps == 0
        assert all(np.array_equal(a, b) for a, b in zip(other.state_int, init, strict=True))
        rest = x[:, 4:]
        with monkeypatch.context() as mp:
            mp.setattr(q16, "_run_recurrent", _initial_state_emulation(qm, init))
            want = _emulated_steps(qm, rest)
        for t in range(rest.shape[1]):
            assert np.array_equal(other.step_int(rest[:, t]), want[t]), (kernels, t)
    # the helper itself: from the zero state it is the emulation
    plain = _emulated_steps(qm, x)
    zero = tuple(np.zeros_like(a) for a in init)
    with monkeypatch.context() as mp:
        mp.setattr(q16, "_run_recurrent", _initial_state_emulation(qm, zero))
        assert np.array_equal(_emulated_steps(qm, x), plain)


def test_without_masks_a_copied_state_continues_as_the_original():
    name, model = next(c for c in CASES if c[0] == "stacked")  # no mask
    blob, qm, x = _setup(name, model)
    m = edgegru.load(blob)
    s, other = m.stream(batch=6), m.stream(batch=6)
    for t in range(3):
        s.step_int(x[:, t])
    other.state = s.state  # through the float state, exactly
    want = _emulated_steps(qm, x)
    for t in range(3, x.shape[1]):
        y = s.step_int(x[:, t])
        assert np.array_equal(y, want[t]) and np.array_equal(other.step_int(x[:, t]), y)
    assert all(np.array_equal(a, b) for a, b in zip(s.state_int, other.state_int, strict=True))


def test_float_state_is_the_integer_state_dequantized():
    """h times the layer's state scale (edgegru.int16x8's QRecurrent.state_scale), an LSTM's c
    times 2**-16, in float64; setting quantizes back (rint, saturating)."""
    name, model = next(c for c in CASES if c[0] == "stacked")  # LSTM (Q15), GRU (Q15), relu RNN
    blob, qm, x = _setup(name, model)
    s = edgegru.load(blob).stream(batch=6)
    for t in range(5):
        s.step_int(x[:, t])
    scales = [p.state_scale for kind, _l, p in qm.layers if kind == "recurrent"]
    ints, floats = s.state_int, s.state
    assert [a.shape for a in ints] == [(2, 6, 5), (1, 6, 4), (1, 6, 3)] == list(s.state_shapes)
    for a, f, scale in zip(ints, floats, scales, strict=True):
        assert a.dtype == np.int32 and f.dtype == np.float64
        assert np.array_equal(f[0], a[0] * np.float64(scale))
        assert np.array_equal(f[1:], a[1:] * 2.0**-16)
    assert scales[0] == scales[1] == np.float32(2.0**-15) and scales[2] != scales[0]
    other = edgegru.load(blob).stream(batch=6)
    other.state = floats
    assert all(np.array_equal(a, b) for a, b in zip(other.state_int, ints, strict=True))
    # quantized with rint, saturated to the ranges
    new = [np.zeros(shape) for shape in s.state_shapes]
    new[0][0, 0, :3] = [0.5, -2.0, 0.3 / 32768]  # h at 2**-15: 16384, -32767 (saturated), 0
    new[0][1, 1, :2] = [1e6, -1.5]  # c at 2**-16: 2**30 (saturated), -98304
    new[2][0, 2, 0] = 7.25 * float(scales[2])
    other.state = new
    st = other.state_int
    assert list(st[0][0, 0, :3]) == [16384, -32767, 0]
    assert list(st[0][1, 1, :2]) == [2**30, -98304]
    assert st[2][0, 2, 0] == 7 and np.count_nonzero(st[1]) == 0


def test_hostile_steps_get_clear_errors_and_change_nothing():
    name, model = next(c for c in CASES if c[0] == "tokens-mask-zero")
    blob, qm, x = _setup(name, model)
    s = edgegru.load(blob).stream(batch=6)
    s.step_int(x[:, 0])
    before = s.state_int
    cases = [
        (x[:, 0].astype(np.float32), "integer"),
        (x[:, :2], r"shape \(batch,\) or \(batch, 1\)"),
        (x[:3, 0], "batch 6"),
        (
            np.where(np.arange(6) == 4, 30, x[:, 0]),
            r"token id 30 at position \(4, 0\) is out of range",
        ),
        (np.where(np.arange(6) == 1, -1, x[:, 0]).astype(np.int32), "token id -1"),
        (np.full(6, 2**40), "out of range"),
        ("abc", r"got an array of shape \(\)"),
        ([[1, 2], [3]], "rectangular"),
    ]
    for bad, match in cases:
        for call in (s.step_int, s.step):
            with pytest.raises(edgegru.InputError, match=match):
                call(bad)
    assert s.steps == 1
    assert all(np.array_equal(a, b) for a, b in zip(s.state_int, before, strict=True))
    assert np.array_equal(s.step_int(x[:, 1]), _emulated_steps(qm, x[:, :2])[1])

    name, model = next(c for c in CASES if c[0] == "masking-lstm-last")
    blob, qm, x = _setup(name, model)
    s = edgegru.load(blob).stream(batch=6)
    nan = x[:, 0].copy()
    nan[2, 3] = np.nan
    cases = [
        (x[:, 0].astype(np.int32), "float array"),
        (x[:, 0, :4], "expected 5 features"),
        (x[:, 0, :4].astype(np.int16), "expected 5 features"),
        (x[:, :2], r"shape \(batch, 5\) or \(batch, 1, 5\)"),
        (x[:4, 0], "batch 6"),
        (nan, r"nan at position \(2, 0, 3\)"),
        (np.where(np.arange(6)[:, None] == 0, np.inf, x[:, 0]), "inf"),
        (x[:, 0].astype(np.float64) * 1e300, "does not fit in float32"),
        (x[:, 0].astype(np.complex64), "float array"),
    ]
    for bad, match in cases:
        for call in (s.step_int, s.step):
            with pytest.raises(edgegru.InputError, match=match):
                call(bad)
    assert s.steps == 0 and all(not np.any(a) for a in s.state_int)


def test_hostile_states_are_refused_naming_the_layer():
    name, model = next(c for c in CASES if c[0] == "stacked")
    blob, _, x = _setup(name, model)
    s = edgegru.load(blob).stream(batch=6)
    s.step_int(x[:, 0])
    good = s.state_int
    lstm, gru = model.layers[1].name, model.layers[2].name

    def with_value(k, pos, v, dtype=np.int64):
        st = [a.astype(dtype) for a in good]
        st[k][pos] = v
        return tuple(st)

    cases = [
        (np.concatenate([a.reshape(-1) for a in good]), "tuple of 3 arrays"),
        (good[:2], "3 entries"),
        ((good[0][:1], *good[1:]), rf"state_int\[0\] \(layer {lstm}\) must have shape \(2, 6, 5\)"),
        (tuple(a.astype(np.float64) for a in good), "integer array"),
        (
            with_value(1, (0, 3, 2), 32768),
            rf"state_int\[1\] \(layer {gru}\) holds 32768 at \(0, 3, 2\)",
        ),
        (with_value(1, (0, 0, 0), -32768), r"h must be in \[-32767, 32767\]"),
        (with_value(0, (1, 5, 4), 2**30 + 1), r"c must be in \[-1073741824, 1073741824\]"),
        ((good[0], good[1].astype(object), good[2]), "numeric"),
    ]
    for bad, match in cases:
        with pytest.raises(edgegru.InputError, match=match):
            s.state_int = bad
    for bad, match in (
        (with_value(1, (0, 1, 1), np.nan, np.float64), rf"state\[1\] \(layer {gru}\) contains NaN"),
        (with_value(0, (1, 0, 0), np.inf, np.float64), "infinity"),
        (good[1:], "3 entries"),
    ):
        with pytest.raises(edgegru.InputError, match=match):
            s.state = bad
    assert all(np.array_equal(a, b) for a, b in zip(s.state_int, good, strict=True))
    # the C runtime checks again, whatever Python lets through
    flat = np.concatenate([a.reshape(-1) for a in good]).astype(np.int32)
    for bad in (np.where(np.arange(flat.size) == 3, -32768, flat), flat[:-1]):
        with pytest.raises(edgegru.EdgeGRUError, match="batch and sequence length"):
            s._session.set_state_s16(np.ascontiguousarray(bad, dtype=np.int32))
    raw = s._session.raw_state_s16()
    assert raw.size == flat.size + 3 * 6
    for bad in (np.where(np.arange(raw.size) == raw.size - 1, 2, raw), raw[1:]):
        with pytest.raises(edgegru.EdgeGRUError):
            s._session.set_raw_state_s16(np.ascontiguousarray(bad, dtype=np.int32), 3)
    lstm_c = 6 * 5  # the first layer's c follows its h rows
    with pytest.raises(edgegru.EdgeGRUError):
        s._session.set_raw_state_s16(
            np.where(np.arange(raw.size) == lstm_c, 2**30 + 1, raw).astype(np.int32), 3
        )
    assert s.steps == 1
    assert all(np.array_equal(a, b) for a, b in zip(s.state_int, good, strict=True))
    # a pickle that does not fit is refused
    saved = s.__reduce__()[1][2]
    fn = s.__reduce__()[0]
    for change in ({"seen": saved["seen"][:1]}, {"steps": -1}, {"dtype": None}):
        with pytest.raises(edgegru.InputError):
            fn(s._model, 6, {**saved, **change})


def test_float_and_integer_apis_refuse_the_other_dtype():
    name, model = next(c for c in CASES if c[0] == "gru-after-seq-dense")
    blob, _, x = _setup(name, model)
    q = edgegru.load(blob).stream(batch=2)
    for call in (
        lambda: q._session.step_features(np.zeros((2, 5), np.float32)),
        lambda: q._session.get_state(),
        lambda: q._session.set_state(np.zeros(14, np.float32)),
        lambda: q._session.raw_state(),
        lambda: q._session.set_raw_state(np.zeros(16, np.float32), 0),
    ):
        with pytest.raises(edgegru.EdgeGRUError, match="wrong data type"):
            call()
    f = edgegru.load(fmt.write(model)).stream(batch=2)
    for call in (
        lambda: f._session.step_features_s16(np.zeros((2, 5), np.int16)),
        lambda: f._session.get_state_s16(),
        lambda: f._session.set_state_s16(np.zeros(14, np.int32)),
        lambda: f._session.raw_state_s16(),
        lambda: f._session.set_raw_state_s16(np.zeros(16, np.int32), 0),
    ):
        with pytest.raises(edgegru.EdgeGRUError, match="wrong data type"):
            call()
    with pytest.raises(edgegru.UnsupportedError, match="int16x8"):
        f.step_int(x[:2, 0])
    with pytest.raises(edgegru.UnsupportedError, match="int16x8"):
        f.state_int  # noqa: B018
    with pytest.raises(edgegru.UnsupportedError, match="int16x8"):
        f.state_int = ()
    # a float stream's pickle does not restore into an int16x8 model's stream
    fn, (_, batch, saved) = f.__reduce__()[0], f.__reduce__()[1]
    with pytest.raises(edgegru.InputError, match="int16x8"):
        fn(edgegru.load(blob), batch, saved)


def _refused_cases():
    rng = np.random.default_rng(4)
    F4 = ir.InputSpec("features", 4)
    M = ir.Model
    bi = ir.Bidirectional(
        _gru(rng, 4, 3, seq=True), _gru(rng, 4, 3, seq=True, back=True), "concat", name="bi"
    )
    yield (
        "go_backwards",
        M(F4, [_gru(rng, 4, 3, back=True, name="back_gru")]),
        0,
        "back_gru",
        "go_backwards",
    )
    yield (
        "go_backwards-later",
        M(F4, [_gru(rng, 4, 3, seq=True, name="g0"), _gru(rng, 3, 2, back=True, name="g1")]),
        1,
        "g1",
        "go_backwards",
    )
    conv = ir.Conv1D(
        rng.normal(0, 0.3, (3, 4, 5)), rng.normal(0, 0.1, 5), padding="causal", name="conv"
    )
    yield "conv1d", M(F4, [conv, _gru(rng, 5, 3, name="g")]), 0, "conv", "Conv1D"
    yield (
        "bidirectional",
        M(F4, [bi, _dense(rng, 6, 2, "linear", name="d")]),
        0,
        "bi",
        "Bidirectional",
    )
    yield (
        "global-pool",
        M(F4, [_gru(rng, 4, 3, seq=True, name="g"), ir.GlobalPool(3, "average", name="pool")]),
        1,
        "pool",
        "pools over the whole sequence",
    )
    yield (
        "flatten",
        M(
            F4,
            [
                _gru(rng, 4, 3, seq=True, name="g"),
                ir.Flatten(6, 3, name="flat"),
                _dense(rng, 18, 2, "linear"),
            ],
        ),
        1,
        "flat",
        "flattens",
    )


REFUSED = list(_refused_cases())


@pytest.mark.parametrize("what, model, index, layer, why", REFUSED, ids=[c[0] for c in REFUSED])
def test_models_that_cannot_stream_are_refused_naming_the_layer(what, model, index, layer, why):
    rng = np.random.default_rng(3)
    steps = 6 if what == "flatten" else 5
    cal = rng.standard_normal((8, steps, 4)).astype(np.float32)
    blob = _blob(model, cal)
    m = edgegru.load(blob)
    assert m.predict_int(cal[:2]).shape[0] == 2  # the forward pass runs it
    assert m._rt.stream_blocker() == index
    with pytest.raises(edgegru.UnsupportedError, match=rf"layer {index} \({layer}, .*{why}"):
        m.stream()


def test_session_memory_grows_with_the_batch_only():
    """egru_session_size: the same for any number of steps (nothing is kept per step); each row
    adds its states, its seen flags and one id, rounded to 16 bytes per region."""
    name, model = next(c for c in CASES if c[0] == "tokens-mask-zero")
    blob, _, x = _setup(name, model)
    m = edgegru.load(blob)
    s = m.stream(batch=6)
    size = s._session.memory_bytes
    for t in range(x.shape[1]):
        s.step_int(x[:, t])
    assert s._session.memory_bytes == size
    sizes = [m.stream(batch=b)._session.memory_bytes for b in (16, 32, 64)]
    # GRU(8): 4 words, LSTM(4): 2 + 4 words; + 2 flags + one id per row
    per_row = 4 * (4 + 6) + 2 + 4
    assert [sizes[1] - sizes[0], sizes[2] - sizes[1]] == [16 * per_row, 32 * per_row]
    assert m.stream(batch=1)._session.memory_bytes < 2048


_M0_MAIN = r"""
#include "edgegru.h"
static unsigned char mem[4096];
static unsigned char blob[4096] __attribute__((aligned(16)));
int main(void)
{
    egru_model_t m;
    egru_session_t s;
    size_t n = 0;
    int16_t x[4] = {0}, y[4];
    int32_t st[64], ids[1] = {1};
    if (egru_model_init(&m, blob, sizeof blob) != EGRU_OK) return 1;
    egru_session_check(&m, 0);
    egru_session_size(&m, 1, &n);
    egru_session_init(&s, &m, 1, mem, sizeof mem);
    egru_session_step_features_s16(&s, x, 0, y, 2);
    egru_session_step_tokens_s16(&s, ids, y, 2);
    egru_session_get_state_s16(&s, st, s.state_count);
    egru_session_set_state_s16(&s, st, s.state_count);
    egru_session_save_s16(&s, st, 8);
    egru_session_restore_s16(&s, st, 8, 0);
    egru_session_reset(&s);
#if FLOAT_STEP
    { float f[4] = {0}, g[4]; egru_session_step_features(&s, f, g, 2); return (int)g[0]; }
#endif
    return y[0];
}
"""


def test_an_integer_only_cortex_m0_image_streaming_int16x8_has_no_float_helper(tmp_path):
    """Every session function an int16x8 firmware calls, linked for a Cortex-M0 with the
    integer-only configuration (EGRU_CFG_FLOAT 0): no soft-float helper, no libm symbol. The same
    program calling the float step in the float build does link them (the check can fail)."""
    import subprocess
    from pathlib import Path

    from firmware_symbols import float_symbols

    ext = Path(__file__).resolve().parents[1] / "ext"
    srcs = [
        str(p)
        for d in ("", "layers/", "kernels/", "kernels/ref/", "kernels/cortex_m/", "int16x8/")
        for p in sorted((ext / "src" / d).glob("*.c"))
    ]
    (tmp_path / "main.c").write_text(_M0_MAIN)
    found = {}
    for float_build in (0, 1):
        elf = tmp_path / f"m0_{float_build}.elf"
        cmd = [
            "arm-none-eabi-gcc", "-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft", "-Os",
            "-std=c99", "-ffunction-sections", "-fdata-sections",
            f"-DEGRU_CFG_FLOAT={float_build}", "-DEGRU_CFG_INT16X8=1",
            f"-DFLOAT_STEP={float_build}",
            f"-I{ext / 'include'}", f"-I{ext / 'src'}", *srcs, str(tmp_path / "main.c"),
            "--specs=nosys.specs", "-Wl,--gc-sections", "-o", str(elf), "-lm",
        ]  # fmt: skip
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        found[float_build] = float_symbols(elf)
    assert not found[0], f"the integer-only image uses floating point: {sorted(found[0])}"
    assert found[1]


def test_the_c_tests_models_are_what_the_writer_writes():
    """ext/tests/egru_session_s16_models.h (the C session tests' .egru files) is current: after a
    change of the file format, regenerate it with ext/tests/gen_session_s16_models.py."""
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parents[1] / "ext" / "tests" / "gen_session_s16_models.py"
    r = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, f"stale: run {tool.name}\n{r.stderr}"
