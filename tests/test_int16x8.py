"""The int16x8 integer-only scheme's numpy emulation (edgegru.int16x8, the specification of
docs/quantization.md "int16x8"): its integer primitives against exact Python integer arithmetic,
its tables against the float64 functions with the errors the documentation states, and whole
models against the float64 reference model (edgegru.reference)."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from int16x8_layers import dense, gru, sequence_models

from edgegru import int16x8 as q16
from edgegru import ir, reference

#: docs/quantization.md's measured table errors in units of 2^-15 (every G value in range), plus
#: 0.01 for float64 rounding in the check itself.
SIGMOID_UNITS, TANH_UNITS = 1.27 + 0.01, 1.54 + 0.01
#: |int16x8 - float64 reference| on the random models below: the inputs' and the state's int16
#: rounding (s / 2 per value), the int8 weights (s_w / 2 per weight, as for int8, whose bound is
#: 0.1), the tables (~5e-5) and the multipliers, accumulated over 20 steps. Measured: 1.1e-2 for
#: the GRU with a relu candidate (its state has a calibrated, wider scale), 2e-3 to 6.4e-3 for the
#: others.
MODEL_TOLERANCE = 0.03


def test_rshift_rounds_half_up():
    v = np.array([3, -3, -1, 1, 5, -5, 4, -4, 0])
    np.testing.assert_array_equal(q16.rshift(v, 1), [2, -1, 0, 1, 3, -2, 2, -2, 0])
    np.testing.assert_array_equal(q16.rshift(v, 0), v)
    # per-element shifts, against floor((v + 2^(n-1)) / 2^n) in Python integers
    rng = np.random.default_rng(1)
    vals = rng.integers(-(2**40), 2**40, 1000)
    ns = rng.integers(0, 20, 1000)
    want = [
        (int(a) + ((1 << (int(n) - 1)) if n else 0)) >> int(n)
        for a, n in zip(vals, ns, strict=True)
    ]
    np.testing.assert_array_equal(q16.rshift(vals, ns), want)


def test_rshift_near_the_end_of_int64():
    """v + 2^(n-1) would overflow int64 here: rshift must not form it (the exact result is 2)."""
    v = 127 * 32767 * 1032 * (2**31 - 1)
    assert v < 2**63 and v + 2**61 >= 2**63
    assert int(q16.rshift(np.int64(v), 62)) == (v + 2**61) >> 62 == 2
    assert int(q16.rshift(np.int64(-v), 62)) == (-v + 2**61) >> 62


@pytest.mark.parametrize(
    "real, m, n",
    [
        (1.0, 1 << 30, 30),
        (0.75, 3 << 29, 31),
        (2.0**-16, 1 << 30, 46),
        ((2**31 - 0.4) / 2**31, 1 << 30, 30),  # f * 2^31 rounds to 2^31: the next power of two
        (2.0**-40, 0, 0),  # below 2^-31: the term is below one unit
        (0.0, 0, 0),
    ],
)
def test_multiplier_rule(real, m, n):
    got = q16.Multiplier.from_real(real)
    assert (got.m, got.n) == (m, n)
    if m:
        assert (1 << 30) <= got.m < (1 << 31) and 0 <= got.n <= 62
        assert abs(Fraction(got.m, 1 << got.n) - Fraction(real)) <= Fraction(real) * 2**-31


def test_multiplier_refuses_what_it_cannot_hold():
    for bad in (2.0**31, float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match="multiplier"):
            q16.Multiplier.from_real(bad, "multiplier")


def test_mul_is_the_exact_rounded_product():
    rng = np.random.default_rng(2)
    for real in (0.3, 1.7e-3, 123.456, 2.0**-20):
        mm = q16.Multiplier.from_real(real)
        for lo, hi in ((-(2**31), 2**31), (-(2**40), 2**40)):  # int64 path and Python-int path
            v = rng.integers(lo, hi, 300)
            want = [(int(a) * mm.m + (1 << (mm.n - 1))) >> mm.n for a in v]
            np.testing.assert_array_equal(q16.mul(v, mm.m, mm.n), want)


def test_tables_follow_their_formulas():
    k = np.arange(513)
    assert q16.SIG[0] == 16384 and q16.SIG[512] == 32768
    assert q16.TANH[0] == 0 and q16.TANH[512] == 32768
    assert q16.P2[0] == 32768 and q16.P2[256] == 16384
    # rint of the float64 functions, independently recomputed
    np.testing.assert_array_equal(q16.SIG, np.rint(32768 / (1 + np.exp(-k / 32))))
    np.testing.assert_array_equal(q16.TANH, np.rint(32768 * np.tanh(k / 64)))


def test_sigmoid_and_tanh_errors_as_documented():
    g = np.arange(-(1 << 21), 1 << 21, 7, dtype=np.int64)  # +-32 in G, every 7th value
    x = g / 65536.0
    s_err = np.abs(q16.sigmoid(g) - 32768 / (1 + np.exp(-x)))
    t_err = np.abs(q16.tanh(g) - 32768 * np.tanh(x))
    assert s_err.max() <= SIGMOID_UNITS, s_err.max()
    assert t_err.max() <= TANH_UNITS, t_err.max()
    # exact symmetries, saturation at the ends
    np.testing.assert_array_equal(q16.sigmoid(-g), 32768 - q16.sigmoid(g))
    np.testing.assert_array_equal(q16.tanh(-g), -q16.tanh(g))
    assert (
        q16.sigmoid(np.array([2**30]))[0] == 32768 and q16.tanh(np.array([-(2**30)]))[0] == -32768
    )


#: Activations in G against float64, on G values in [-12, 12]: absolute error bound (units of
#: the output) from the tables' steps and the rounding of one G / U unit.
ACT_TOL = {
    "linear": 2**-16,
    "relu": 2**-16,
    "leaky_relu": 2**-15,
    "sigmoid": 5e-5,
    "tanh": 5e-5,
    "hard_sigmoid": 2**-14,
    "softsign": 2**-15,
    "elu": 1e-4,
    "softplus": 2e-4,
}


@pytest.mark.parametrize("name", sorted(ACT_TOL))
def test_activations_against_float64(name):
    g = np.arange(-12 * 65536, 12 * 65536, 13, dtype=np.int64)
    y = q16.activate(name, g)
    scale = 2.0**-15 if name in q16.BOUNDED else 2.0**-16
    want = reference.ACTIVATIONS[name](g / 65536.0)
    assert np.max(np.abs(y * scale - want)) <= ACT_TOL[name]


def test_softmax_sums_to_one_and_matches_float64():
    rng = np.random.default_rng(3)
    g = rng.integers(-8 * 65536, 8 * 65536, (200, 7))
    y = q16.activate("softmax", g) / 32768.0
    want = reference.ACTIVATIONS["softmax"](g / 65536.0)
    assert np.max(np.abs(y - want)) <= 1e-4
    assert np.max(np.abs(y.sum(axis=-1) - 1.0)) <= 7 * 2**-15


def _models():
    rng = np.random.default_rng(4)
    feats = ir.InputSpec("features", 6)
    yield "gru-after", ir.Model(feats, [gru(rng, 6, 16, True), dense(rng, 16, 4, "softmax")])
    yield "gru-before", ir.Model(feats, [gru(rng, 6, 16, False), dense(rng, 16, 1, "sigmoid")])
    yield (
        "gru-relu",
        ir.Model(feats, [gru(rng, 6, 16, True, "relu"), dense(rng, 16, 2, "linear")]),
    )
    yield (
        "gru-seq-back",
        ir.Model(
            feats,
            [
                gru(rng, 6, 8, True, seq=True, back=True),
                gru(rng, 8, 8, False),
                dense(rng, 8, 3, "relu"),
            ],
        ),
    )
    yield (
        "lstm",
        ir.Model(
            feats,
            [
                ir.LSTM(
                    rng.normal(0, 0.4, (6, 64)),
                    rng.normal(0, 0.3, (16, 64)),
                    rng.normal(0, 0.1, 64),
                ),
                dense(rng, 16, 1, "linear"),
            ],
        ),
    )
    yield (
        "masked-gru",
        ir.Model(feats, [ir.Masking(6, 0.0), gru(rng, 6, 12, True), dense(rng, 12, 3, "softmax")]),
    )
    yield (
        "tokens-rnn",
        ir.Model(
            ir.InputSpec("tokens", 50),
            [
                ir.Embedding(rng.normal(0, 1, (50, 8)), mask_zero=True),
                ir.SimpleRNN(
                    rng.normal(0, 0.4, (8, 16)),
                    rng.normal(0, 0.3, (16, 16)),
                    rng.normal(0, 0.1, 16),
                ),
                dense(rng, 16, 1, "sigmoid"),
            ],
        ),
    )


SEQUENCE_MODELS = list(sequence_models())


@pytest.mark.parametrize("name, model", SEQUENCE_MODELS, ids=[n for n, _ in SEQUENCE_MODELS])
def test_sequence_layers_close_to_the_float64_reference(name, model):
    test_models_close_to_the_float64_reference(name, model)
    # and the file round trip keeps the integers: the QPARAMS words give back the same model
    rng = np.random.default_rng(15)
    x = _inputs(model, rng)
    qm = q16.quantize(model, calibration=x)
    again = q16.from_qparams(model, q16.layer_qparams(qm))
    assert np.array_equal(q16.forward_int(again, x), q16.forward_int(qm, x))


def _inputs(model, rng, batch=24, steps=20):
    if model.input.kind == ir.TOKENS:
        return rng.integers(0, model.input.dim, (batch, steps))
    x = rng.standard_normal((batch, steps, model.input.dim)).astype(np.float32)
    x[: batch // 3, steps // 2 :] = 0.0  # padding steps (masked where the model masks)
    return x


@pytest.mark.parametrize("name, model", list(_models()), ids=[n for n, _ in _models()])
def test_models_close_to_the_float64_reference(name, model):
    rng = np.random.default_rng(5)
    x = _inputs(model, rng)
    # calibrated on data that covers x (a representative set): beyond the calibrated ranges values
    # saturate, which test_saturation_beyond_the_calibrated_range covers
    qm = q16.quantize(model, calibration=np.concatenate([_inputs(model, rng, batch=64), x]))
    got, want = q16.forward(qm, x), reference.forward(model, x)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= MODEL_TOLERANCE, np.max(np.abs(got - want))
    ints = q16.forward_int(qm, x)
    assert ints.dtype == np.int64 and np.abs(ints).max() <= q16.QMAX


def test_default_calibration_and_unsupported_layers():
    rng = np.random.default_rng(6)
    model = ir.Model(
        ir.InputSpec("features", 3), [gru(rng, 3, 4, True), dense(rng, 4, 1, "sigmoid")]
    )
    qm = q16.quantize(model)  # the documented default calibration
    assert qm.ranges["input"] > 0
    x = rng.standard_normal((4, 9, 3)).astype(np.float32)
    assert np.max(np.abs(q16.forward(qm, x) - reference.forward(model, x))) <= MODEL_TOLERANCE
    relu_gates = ir.Model(
        ir.InputSpec("features", 3),
        [dataclasses.replace(gru(rng, 3, 4, True), recurrent_activation="relu", name="g")],
    )
    with pytest.raises(NotImplementedError, match="GRU 'g': recurrent_activation='relu'"):
        q16.quantize(relu_gates)


def test_saturation_beyond_the_calibrated_range():
    """Inputs 100 times larger than the calibration's saturate at +-32767 in every tensor: no
    wrap-around, outputs stay bounded and finite."""
    rng = np.random.default_rng(7)
    model = ir.Model(
        ir.InputSpec("features", 6), [gru(rng, 6, 16, True, "relu"), dense(rng, 16, 2, "linear")]
    )
    qm = q16.quantize(model, calibration=_inputs(model, rng))
    x = 100.0 * _inputs(model, rng)
    ints = q16.forward_int(qm, x)
    assert np.abs(ints).max() <= q16.QMAX
    assert np.isfinite(q16.forward(qm, x)).all()
