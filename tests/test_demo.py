"""The demo's dataset (wordfreq language identification) and a small end-to-end run of the demo."""

from __future__ import annotations

import numpy as np
import pytest

from edgegru import datasets
from edgegru.cli import main as cli


@pytest.fixture(scope="module")
def data():
    return datasets.language_id(words_per_language=400, seed=3)


def test_dataset_is_deterministic_balanced_and_disjoint(data):
    again = datasets.language_id(words_per_language=400, seed=3)
    np.testing.assert_array_equal(data.x_train, again.x_train)
    np.testing.assert_array_equal(data.y_test, again.y_test)
    n = len(data.labels)
    assert data.n_classes == n == len(datasets.DEFAULT_LANGUAGES)
    assert np.bincount(data.y_train, minlength=n).min() == np.bincount(data.y_train).max()
    assert data.x_train.dtype == np.int32 and data.x_train.shape[1] == data.max_len
    assert data.x_train.max() < data.vocab_size and data.x_train.min() >= 0
    train = {row.tobytes() for row in data.x_train}
    assert not any(row.tobytes() in train for row in data.x_test)  # no word in both splits
    assert data.source["package"] == "wordfreq" and data.source["version"]


def test_encode_pads_at_the_end_and_maps_unknown_characters(data):
    x = data.encode(["über", "a" * 40, "☃☃☃"])
    assert x.shape == (3, data.max_len)
    assert (x[0, 4:] == datasets.PAD_ID).all() and (x[0, :4] != datasets.PAD_ID).all()
    assert (x[1] != datasets.PAD_ID).all()  # cut to max_len
    assert (x[2, :3] == datasets.UNK_ID).all()


def test_demo_runs_end_to_end(tmp_path, capsys):
    """A small configuration of `edgegru demo`: trains, converts, validates, prints the table."""
    argv = ["demo", "--epochs", "1", "--words-per-language", "200", "--units", "16"]
    assert cli([*argv, "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for row in (
        "Keras",
        "onnxruntime",
        "edgegru int8",
        "edgegru int16x8",
        "test accuracy",
        "latency",
    ):
        assert row in out
    assert "OK" in out and "tolerance" in out
    for name in (
        "langid.keras",
        "langid.egru",
        "langid.onnx",
        "langid-int8.egru",
        "langid-int16x8.egru",
    ):
        assert (tmp_path / name).stat().st_size > 0
