"""Task accuracy on real data: Japanese Vowels (speaker identification, 9 classes) from the files
that the aeon wheel ships; a small Keras GRU trained on it, converted, and scored in Keras and in
the C runtime with edgegru.validate.accuracy_report and `edgegru validate --x --y`."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import edgegru
from edgegru import datasets
from edgegru.cli import main as cli
from edgegru.validate import (
    FP32_TOLERANCE,
    KERAS_FP32,
    AccuracyReport,
    accuracy_report,
    class_predictions,
)

#: The test model: Masking -> GRU(UNITS) -> Dense(9, softmax), EPOCHS epochs of Adam(3e-3),
#: batch 32, keras.utils.set_random_seed(SEED). About 7 s of training on 2 cores.
UNITS, EPOCHS, SEED = 32, 15, 0
#: Measured test accuracy of that model: 0.9459 (Keras 3.15, TensorFlow 2.21, x86-64; seeds 1
#: and 2 gave 0.9000 and 0.9568). Chance is 1/9 = 0.11; always answering the largest test class
#: (speaker 3, 88 of 370) scores 0.24. The floor leaves room for other CPUs and versions.
ACCURACY_FLOOR = 0.85
#: Issue #5's bound on the accuracy lost by int8 weights (docs/quantization.md), in points.
INT8_MAX_DROP_POINTS = 0.5
#: Utterances per speaker in the test split, as the UCI description of the data lists them
#: (training: 30 per speaker).
UCI_TEST_COUNTS = [31, 35, 88, 44, 29, 24, 40, 50, 29]


@pytest.fixture(scope="module")
def data():
    return datasets.japanese_vowels()


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """(keras model, directory with vowels.keras, vowels.egru, vowels.onnx)."""
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input((data.max_len, data.n_features)),
            keras.layers.Masking(),
            keras.layers.GRU(UNITS),
            keras.layers.Dense(data.n_classes, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=EPOCHS, batch_size=32, verbose=0)
    d = tmp_path_factory.mktemp("vowels")
    model.save(d / "vowels.keras")
    edgegru.convert(model, d / "vowels.egru", onnx_path=d / "vowels.onnx")
    return model, d


def test_loader_shapes_labels_and_padding(data):
    assert data.x_train.shape == (270, 29, 12) and data.x_test.shape == (370, 29, 12)
    assert data.x_train.dtype == data.x_test.dtype == np.float32
    assert data.n_classes == 9 and data.labels == tuple(str(k) for k in range(1, 10))
    assert data.y_train.dtype == np.int32
    assert np.bincount(data.y_train).tolist() == [30] * 9
    assert np.bincount(data.y_test).tolist() == UCI_TEST_COUNTS
    for x, lengths in ((data.x_train, data.lengths_train), (data.x_test, data.lengths_test)):
        assert lengths.min() == 7 and lengths.max() <= 29
        real = np.arange(data.max_len)[None, :] < lengths[:, None]
        # real frames are never all zeros (Masking keeps them), padding frames are exactly zero
        np.testing.assert_array_equal(np.any(x != 0, axis=-1), real)
        assert np.isfinite(x).all()
    assert max(data.lengths_train.max(), data.lengths_test.max()) == 29
    assert data.source["package"] == "aeon" and data.source["version"] == datasets.AEON_VERSION


def test_longer_padding_and_too_short_max_len(data):
    longer = datasets.japanese_vowels(max_len=40)
    np.testing.assert_array_equal(longer.x_test[:, :29], data.x_test)
    assert not longer.x_test[:, 29:].any()
    with pytest.raises(ValueError, match="shorter than the longest utterance"):
        datasets.japanese_vowels(max_len=20)


def test_loader_does_not_import_aeon():
    code = (
        "import sys; from edgegru import datasets; datasets.japanese_vowels(); "
        "print(sorted(m for m in sys.modules if m == 'aeon' or m.startswith('aeon.')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_missing_data_names_the_fix(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec

    def no_aeon(name, *args, **kwargs):
        return None if name == "aeon" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", no_aeon)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps aeon==1\.6\.0"):
        datasets.japanese_vowels()

    # an aeon without the files (another version, a stripped install)
    empty = importlib.machinery.ModuleSpec("aeon", None, is_package=True)
    empty.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a, **k: empty if name == "aeon" else None
    )
    with pytest.raises(FileNotFoundError, match=r"JapaneseVowels_TRAIN\.ts.*pip install --no-deps"):
        datasets.japanese_vowels()
    monkeypatch.undo()

    with pytest.raises(FileNotFoundError, match=r"JapaneseVowels_TEST\.ts"):
        datasets.japanese_vowels(data_dir=tmp_path)


def test_keras_and_edgegru_agree_on_the_test_split(trained, data):
    model, d = trained
    report = edgegru.validate(model, d / "vowels.egru", onnx_path=d / "vowels.onnx", x=data.x_test)
    assert report.ok, str(report)
    assert report.output_shape == (370, 9)
    assert max(report.max_abs_error.values()) <= FP32_TOLERANCE


def test_accuracies_are_equal_and_above_the_floor(trained, data):
    model, d = trained
    runtime = edgegru.load(d / "vowels.egru")
    report = accuracy_report(model, data.x_test, data.y_test, {"edgegru fp32": runtime.predict})
    assert [row.name for row in report.rows] == [KERAS_FP32, "edgegru fp32"]
    keras_row, egru_row = report.rows
    probs = model.predict(data.x_test, verbose=0)
    assert keras_row.accuracy == np.mean(np.argmax(probs, axis=-1) == data.y_test)
    assert egru_row.accuracy == keras_row.accuracy >= ACCURACY_FLOOR, str(report)
    assert egru_row.drop_points == 0.0 and egru_row.agreement == 1.0
    assert egru_row.max_abs_error <= FP32_TOLERANCE
    assert report.n_labels == 370 and "argmax of 9 outputs" in str(report)


def test_cli_validate_with_labels(trained, data, tmp_path, capsys):
    model, d = trained
    np.save(tmp_path / "x.npy", data.x_test)
    np.save(tmp_path / "y.npy", data.y_test)
    xy = ["--x", str(tmp_path / "x.npy"), "--y", str(tmp_path / "y.npy")]
    accuracy = np.mean(np.argmax(model.predict(data.x_test, verbose=0), -1) == data.y_test)

    # without an .egru file the CLI converts the model itself; with one, it uses that file
    for egru in ([], [str(d / "vowels.egru")]):
        assert cli(["validate", str(d / "vowels.keras"), *egru, *xy]) == 0
        out = capsys.readouterr().out
        assert "PASSED" in out and "input (370, 29, 12)" in out
        rows = [
            line.split() for line in out.splitlines() if line.startswith(("keras ", "edgegru "))
        ]
        names = [row[:2] for row in rows]
        want = [["keras", "fp32"], ["edgegru", "fp32"], ["edgegru", "int8"], ["edgegru", "int16x8"]]
        assert names == want
        assert "int16x8 (default calibration)" in out  # no --calibration given
        assert [row[2] for row in rows[:2]] == [f"{100 * accuracy:.2f}"] * 2
        assert abs(float(rows[2][2]) - 100 * accuracy) <= INT8_MAX_DROP_POINTS
        assert "0.00 points" in out

    np.save(tmp_path / "short.npy", data.y_test[:10])
    assert cli(["validate", str(d / "vowels.keras"), *xy[:3], str(tmp_path / "short.npy")]) == 2
    assert "one label per row" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", data.y_test + 9)
    assert cli(["validate", str(d / "vowels.keras"), *xy[:3], str(tmp_path / "bad.npy")]) == 2
    assert "class ids in 0..8" in capsys.readouterr().err


def test_binary_and_one_hot_labels():
    """One output is a sigmoid probability (> 0.5); one-hot labels equal their class ids."""
    rng = np.random.default_rng(0)
    ref = rng.random((64, 1), dtype=np.float32)
    other = ref + rng.normal(0, 0.1, ref.shape).astype(np.float32)
    y = rng.integers(0, 2, 64)
    report = AccuracyReport.from_outputs({KERAS_FP32: ref, "other": other}, y)
    assert report.rule == "output > 0.5"
    assert report[KERAS_FP32].accuracy == np.mean((ref[:, 0] > 0.5) == y)
    assert report["other"].accuracy == np.mean((other[:, 0] > 0.5) == y)
    assert report["other"].max_abs_error == np.max(np.abs(other - ref).astype(np.float64))
    np.testing.assert_array_equal(class_predictions(ref[:, 0]), ref[:, 0] > 0.5)

    probs = rng.random((64, 5))
    labels = rng.integers(0, 5, 64)
    by_id = AccuracyReport.from_outputs({"a": probs}, labels)
    by_one_hot = AccuracyReport.from_outputs({"a": probs}, np.eye(5)[labels])
    assert by_id.rows == by_one_hot.rows
    assert report["other"].drop_points == 100 * (
        report[KERAS_FP32].accuracy - report["other"].accuracy
    )
    with pytest.raises(ValueError, match="integer class ids"):
        AccuracyReport.from_outputs({"a": probs}, labels + 0.5)
    with pytest.raises(ValueError, match="do not fit"):
        AccuracyReport.from_outputs({"a": probs}, labels[:10])


def test_int8_keeps_the_accuracy(trained, data, tmp_path):
    """The same model converted with int8 weights loses at most INT8_MAX_DROP_POINTS of accuracy
    (measured: 94.86 % against Keras' 94.59 %, 99.73 % of the rows the same class)."""
    model, d = trained
    edgegru.convert(model, tmp_path / "int8.egru", quantize="int8")
    int8 = edgegru.load(tmp_path / "int8.egru")
    report = accuracy_report(
        model,
        data.x_test,
        data.y_test,
        {"edgegru fp32": edgegru.load(d / "vowels.egru").predict, "edgegru int8": int8.predict},
    )
    print(report)
    assert report["edgegru int8"].drop_points <= INT8_MAX_DROP_POINTS, str(report)
    assert report["edgegru int8"].agreement >= 0.98, str(report)


#: Issue #12's bound on the accuracy int16x8 may lose against Keras fp32, in points.
INT16X8_MAX_DROP_POINTS = 1.0


def test_int16x8_keeps_the_accuracy(trained, data, tmp_path):
    """The model converted to int16x8 (integer-only, docs/quantization.md), calibrated on the
    training split only, against Keras fp32 on the test split; the C runtime's integers equal the
    numpy emulation's (the specification) on every test utterance."""
    from edgegru import int16x8

    model, _d = trained
    path = tmp_path / "vowels-int16x8.egru"
    edgegru.convert(model, path, quantize="int16x8", calibration=data.x_train)
    q = edgegru.load(path)
    report = accuracy_report(model, data.x_test, data.y_test, {"edgegru int16x8": q.predict})
    print(report)
    assert report["edgegru int16x8"].drop_points <= INT16X8_MAX_DROP_POINTS, str(report)
    emulated = int16x8.forward_int(int16x8.from_blob(path.read_bytes()), data.x_test)
    assert np.array_equal(q.predict_int(data.x_test), emulated)


def _sequence_plan_model(kind: str, data):
    """The int16x8 sequence plan on the task: a masked Bidirectional GRU pooled over the valid
    frames, or a causal Conv1D with BatchNormalization before a go_backwards GRU (no mask: Conv1D
    drops it, so the padding frames are part of the input)."""
    import keras

    L = keras.layers
    head = [L.Dense(data.n_classes, activation="softmax")]
    if kind == "masked-bigru-pool":
        body = [
            L.Masking(),
            L.Bidirectional(L.GRU(UNITS // 2, return_sequences=True)),
            L.GlobalAveragePooling1D(),
        ]
    else:
        body = [
            L.Conv1D(UNITS, 3, padding="causal", activation="relu"),
            L.BatchNormalization(momentum=0.9),  # moving statistics settle in 135 steps
            L.GRU(UNITS, go_backwards=True),  # the padding frames first, the utterance last
        ]
    return keras.Sequential([keras.Input((data.max_len, data.n_features)), *body, *head])


@pytest.mark.parametrize("kind", ["masked-bigru-pool", "conv-bn-gru"])
def test_int16x8_keeps_the_accuracy_of_sequence_plan_models(kind, data, tmp_path):
    """Bidirectional, pooling, Conv1D and BatchNormalization (the int16x8 sequence plan and
    Affine) trained on the task, calibrated on the training split only: the drop from Keras fp32
    on the test split within INT16X8_MAX_DROP_POINTS, the C runtime equal to the emulation."""
    import keras

    from edgegru import int16x8

    keras.utils.set_random_seed(SEED)
    model = _sequence_plan_model(kind, data)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=EPOCHS, batch_size=32, verbose=0)
    path = tmp_path / f"{kind}.egru"
    edgegru.convert(model, path, quantize="int16x8", calibration=data.x_train)
    q = edgegru.load(path)
    report = accuracy_report(model, data.x_test, data.y_test, {"edgegru int16x8": q.predict})
    print(report)
    assert report["keras fp32"].accuracy >= 0.8, str(report)  # the model learned the task
    assert report["edgegru int16x8"].drop_points <= INT16X8_MAX_DROP_POINTS, str(report)
    emulated = int16x8.forward_int(int16x8.from_blob(path.read_bytes()), data.x_test)
    assert np.array_equal(q.predict_int(data.x_test), emulated)
