"""edgegru.validate (issue #10, items 9-12): NaN-aware comparison, the int8 bounds of an int8
file, and edgegru errors (never Keras' or TensorFlow's) for arguments that do not fit."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras_models import randomize

import edgegru
from edgegru.validate import (
    FP32_TOLERANCE,
    INT8_ONNX_TOLERANCE,
    INT8_TOLERANCE,
    AccuracyReport,
    ValidationReport,
    compare,
    generate_inputs,
)

NAN, INF = float("nan"), float("inf")


# --- compare: written out by hand --------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, err, mismatches",
    [
        ([1.0, NAN], [1.5, NAN], 0.5, 0),  # NaN == NaN
        ([INF, -INF, 2.0], [INF, -INF, 2.0], 0.0, 0),  # same-signed infinities agree
        ([INF, 0.0], [-INF, 0.0], 0.0, 1),  # inf vs -inf
        ([NAN, 1.0, 3.0], [0.0, 1.0, 1.0], 2.0, 1),  # NaN vs a number; error over finite only
        ([INF, NAN], [5.0, INF], 0.0, 2),
        ([NAN, NAN], [NAN, NAN], 0.0, 0),
        ([], [], 0.0, 0),
    ],
)
def test_compare_is_nan_aware(a, b, err, mismatches):
    got = compare(np.array(a, np.float32), np.array(b, np.float32))
    assert got == (err, mismatches)
    assert compare(np.array(b, np.float32), np.array(a, np.float32)) == (err, mismatches)


def test_compare_shape_mismatch_is_infinite():
    assert compare(np.zeros((2, 3)), np.zeros((3, 2))) == (INF, 0)


def test_report_fails_on_a_nonfinite_mismatch_whatever_the_tolerance():
    pairs = ("keras~onnxruntime", "keras~edgegru", "onnxruntime~edgegru")
    errors = dict.fromkeys(pairs, 0.0)
    ok = ValidationReport(errors, 1e9, (1, 1), (1, 1), nonfinite_mismatches=dict.fromkeys(pairs, 0))
    assert ok.ok and "PASSED" in str(ok)
    bad = ValidationReport(
        errors, 1e9, (1, 1), (1, 1), nonfinite_mismatches={**ok.nonfinite_mismatches, pairs[1]: 3}
    )
    assert not bad.ok and not bad.pair_ok(pairs[1]) and bad.pair_ok(pairs[0])
    assert "FAILED" in str(bad) and " 3 " in str(bad)


def test_accuracy_report_errors_are_nan_aware():
    ref = np.array([[0.2, NAN], [0.9, 0.1]], np.float32)
    same = ref.copy()
    other = np.array([[0.2, 0.5], [0.9, 0.1]], np.float32)
    report = AccuracyReport.from_outputs({"ref": ref, "same": same, "other": other}, [0, 0])
    assert report["same"].max_abs_error == 0.0
    assert report["other"].max_abs_error == INF  # a number where the reference has NaN


# --- Keras models (small) ----------------------------------------------------------------------


def _seedlike(seed: int = 0):
    """The seed model's shape, small: Embedding -> GRU -> Dense(1, sigmoid)."""
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(30, 6),
            keras.layers.GRU(8),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    return randomize(model, seed)


@pytest.fixture(scope="module")
def seedlike(tmp_path_factory):
    d = tmp_path_factory.mktemp("validate")
    model = _seedlike(3)
    model.save(d / "m.keras")
    edgegru.convert(model, d / "m.egru")
    edgegru.convert(model, d / "m8.egru", quantize="int8", onnx_path=d / "m8.onnx")
    return model, d


def test_item9_all_three_agree_on_nan(tmp_path):
    """Embedding(5, 3, mask_zero) -> GRU(4, return_sequences) -> GlobalAveragePooling1D on an
    all-padding row: Keras, onnxruntime and edgegru all give NaN there; that is a pass."""
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(5, 3, mask_zero=True),
            keras.layers.GRU(4, return_sequences=True),
            keras.layers.GlobalAveragePooling1D(),
        ]
    )
    randomize(model, 9)
    edgegru.convert(model, tmp_path / "m.egru")
    x = np.array([[1, 2, 3], [0, 0, 0]])
    report = edgegru.validate(model, tmp_path / "m.egru", x=x)
    keras_out = report.outputs["keras"]
    assert np.isnan(keras_out[1]).all() and np.isfinite(keras_out[0]).all()  # the case is real
    assert report.ok, str(report)
    assert all(n == 0 for n in report.nonfinite_mismatches.values())
    assert set(report.max_abs_error) == {
        "keras~onnxruntime",
        "keras~edgegru",
        "onnxruntime~edgegru",
    }


def test_int8_file_is_validated_against_the_int8_bounds(seedlike):
    model, d = seedlike
    report = edgegru.validate(model, d / "m8.egru")
    assert report.quantized and report.ok, str(report)
    assert report.tolerances == {
        "keras~onnxruntime": FP32_TOLERANCE,  # the in-memory export is float32
        "keras~edgegru": INT8_TOLERANCE,
        "onnxruntime~edgegru": INT8_TOLERANCE,
    }
    # The int8 model really differs from the float32 one (else the bounds would not matter).
    assert report.max_abs_error["keras~edgegru"] > FP32_TOLERANCE / 100
    given = edgegru.validate(model, d / "m8.egru", onnx_path=d / "m8.onnx")
    assert given.ok, str(given)
    assert given.tolerances == {
        "keras~onnxruntime": INT8_TOLERANCE,
        "keras~edgegru": INT8_TOLERANCE,
        "onnxruntime~edgegru": INT8_ONNX_TOLERANCE,
    }
    strict = edgegru.validate(model, d / "m8.egru", tolerance=0.0)
    assert not strict.ok and set(strict.tolerances.values()) == {0.0}


def test_float_file_keeps_the_fp32_bound(seedlike):
    model, d = seedlike
    report = edgegru.validate(model, d / "m.egru", batch=2, seq_len=5)
    assert not report.quantized and report.ok and report.input_shape == (2, 5)
    assert set(report.tolerances.values()) == {FP32_TOLERANCE}


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"x": np.array([[1, 2, 30]])}, ["token id 30", "(0, 2)", "30 ids"]),
        ({"x": np.array([[1, -1]])}, ["token id -1"]),
        ({"x": np.zeros((2, 3), np.float32)}, ["integer", "float32"]),
        ({"x": np.zeros((2, 3, 1), np.int64)}, ["(batch, T)", "(2, 3, 1)"]),
        ({"x": np.zeros((0, 3), np.int64)}, [">= 1", "(0, 3)"]),
        ({"batch": 0}, ["batch", ">= 1", "0"]),
        ({"batch": -1}, ["batch", "-1"]),
        ({"seq_len": 0}, ["seq_len", ">= 1"]),
        ({"seq_len": -3}, ["seq_len", "-3"]),
        ({"batch": 2.5}, ["batch", "integer"]),
        ({"tolerance": -1.0}, ["tolerance"]),
        ({"seed": -1}, ["seed", ">= 0"]),
        ({"batch": 10**9, "seq_len": 10**3}, ["10000000000", "values"]),
    ],
)
def test_bad_arguments_are_input_errors(seedlike, kwargs, words):
    model, d = seedlike
    with pytest.raises(edgegru.InputError) as info:
        edgegru.validate(model, d / "m.egru", **kwargs)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_missing_files_are_input_errors(seedlike, tmp_path):
    _, d = seedlike
    with pytest.raises(edgegru.InputError, match="no Keras model file"):
        edgegru.validate(tmp_path / "missing.keras", d / "m.egru")
    with pytest.raises(edgegru.InputError, match=r"no \.egru file"):
        edgegru.validate(d / "m.keras", tmp_path / "missing.egru")
    with pytest.raises(edgegru.InputError, match="no ONNX file"):
        edgegru.validate(d / "m.keras", d / "m.egru", onnx_path=tmp_path / "missing.onnx")


def test_a_file_of_another_input_kind_is_an_input_error(seedlike, tmp_path):
    model, _ = seedlike
    other = keras.Sequential([keras.Input((None, 2)), keras.layers.SimpleRNN(2)])
    edgegru.convert(other, tmp_path / "other.egru")
    with pytest.raises(edgegru.InputError, match="not the same model"):
        edgegru.validate(model, tmp_path / "other.egru")


def test_flatten_model_uses_and_requires_its_fixed_t(tmp_path):
    """Conv1D(k=3, strides=2) -> Flatten: T = 9 and T = 10 both give the 4 steps the Flatten
    was built for; inputs are generated with the shortest, other T are InputErrors naming it."""
    model = keras.Sequential(
        [keras.Input((9, 2)), keras.layers.Conv1D(3, 3, strides=2), keras.layers.Flatten()]
    )
    randomize(model, 4)
    irm = edgegru.convert(model, tmp_path / "f.egru")
    assert generate_inputs(irm, batch=2).shape == (2, 9, 2)
    report = edgegru.validate(model, tmp_path / "f.egru", batch=2)
    assert report.ok and report.input_shape == (2, 9, 2), str(report)
    with pytest.raises(edgegru.InputError, match="exactly 9 steps"):
        edgegru.validate(model, tmp_path / "f.egru", seq_len=5)
    with pytest.raises(edgegru.InputError, match="exactly 9 steps"):
        edgegru.validate(model, tmp_path / "f.egru", x=np.zeros((1, 12, 2), np.float32))
