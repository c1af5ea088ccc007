"""int16x8 conversions of Keras models with the layers of the sequence plan (Conv1D,
BatchNormalization, LayerNormalization, pooling, Bidirectional in every merge mode, masks,
Flatten): the runtime
against Keras' own predictions, within validate.INT16X8_TOLERANCE, and the `.keras` file converting
to the same bytes as the live model."""

from __future__ import annotations

import numpy as np
import pytest
from keras_models import (
    conv_bn_gru_model,
    layers_model,
    masked_bilstm_model,
    padded_inputs,
    random_inputs,
    stacked_mixed_model,
)

import edgegru
from edgegru.validate import INT16X8_TOLERANCE


def _conv_pool_model():
    import keras

    L = keras.layers
    return layers_model(
        [
            L.Conv1D(8, 5, strides=2, padding="same", activation="relu"),
            L.Conv1D(6, 3, dilation_rate=2, padding="valid", activation="tanh"),
            L.GlobalMaxPooling1D(),
            L.Dense(3, activation="softmax"),
        ],
        features=4,
        seed=3,
        name="conv_pool",
    )


def _masked_bigru_model():
    import keras

    L = keras.layers
    return layers_model(
        [
            L.Masking(0.0),
            L.Bidirectional(L.GRU(6, reset_after=False)),
            L.Dense(2, activation="sigmoid"),
        ],
        features=5,
        seed=4,
        name="masked_bigru",
    )


def _stacked_no_layernorm():
    """stacked_mixed_model without its LayerNormalization and Dropout."""
    import keras

    L = keras.layers
    return layers_model(
        [
            L.Masking(0.0),
            L.SimpleRNN(4, return_sequences=True),
            L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"),
            L.LSTM(4, return_sequences=True, go_backwards=True),
            L.Flatten(),
            L.Dense(2),
        ],
        features=3,
        seq_len=8,
        seed=5,
        name="stacked",
    )


MODELS = {
    "masked-bilstm-concat": lambda: masked_bilstm_model(seed=1),
    "masked-bilstm-ave": lambda: masked_bilstm_model(seed=2, merge_mode="ave"),
    "masked-bilstm-mul": lambda: masked_bilstm_model(seed=3, merge_mode="mul"),
    "conv-bn-gru": lambda: conv_bn_gru_model(seed=4),
    "conv-pool": _conv_pool_model,
    "masked-bigru-reset-before": _masked_bigru_model,
    "stacked-bidi-sum-back-flatten": _stacked_no_layernorm,
    "stacked-layernorm-bidi-sum-back-flatten": lambda: stacked_mixed_model(seed=1),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_int16x8_keras_models_match_keras(name, tmp_path):
    model = MODELS[name]()
    steps = model.inputs[0].shape[1] or 24
    masked = name.startswith("masked") or name.startswith("stacked")
    x = padded_inputs(model, 16, steps, seed=6) if masked else random_inputs(model, 16, steps, 6)
    cal = np.concatenate([x, random_inputs(model, 64, steps, seed=7)])
    live = tmp_path / "live.egru"
    edgegru.convert(model, live, quantize="int16x8", calibration=cal)
    path = tmp_path / "m.keras"
    model.save(path)
    edgegru.convert(path, tmp_path / "file.egru", quantize="int16x8", calibration=cal)
    assert live.read_bytes() == (tmp_path / "file.egru").read_bytes()
    m = edgegru.load(live)
    assert m.int16x8
    got, want = m.predict(x), np.asarray(model.predict(x, verbose=0))
    assert got.shape == want.shape
    err = float(np.max(np.abs(got - want)))
    assert err <= INT16X8_TOLERANCE, err


def test_unbounded_gates_are_refused_by_name(tmp_path):
    import keras

    model = layers_model([keras.layers.GRU(4, recurrent_activation="relu", name="g")], seed=2)
    x = random_inputs(model, 4, 8)
    with pytest.raises(edgegru.UnsupportedError, match="GRU 'g': recurrent_activation='relu'"):
        edgegru.convert(model, tmp_path / "m.egru", quantize="int16x8", calibration=x)


def test_cli_convert_and_info_of_a_bidirectional_sum_model(tmp_path, capsys):
    from edgegru import cli

    model = masked_bilstm_model(seed=2, merge_mode="sum")
    model.save(tmp_path / "bi.keras")
    np.save(tmp_path / "x.npy", random_inputs(model, 64, 20, seed=1))
    out = tmp_path / "bi.egru"
    assert cli.main(["convert", str(tmp_path / "bi.keras"), "-o", str(out), "--quantize",
                     "int16x8", "--calibration", str(tmp_path / "x.npy")]) == 0  # fmt: skip
    capsys.readouterr()
    assert cli.main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    line = next(s for s in text.splitlines() if "bidirectional" in s and "scale" in s)
    # the states are Q15 (tanh); the sum of two of them has its own calibrated scale
    from edgegru import int16x8

    merged = int16x8.from_blob(out.read_bytes()).layers[1][2].out_scale
    assert line.endswith(f"state scale Q15 (2^-15, bounded), sum output scale {merged:.6g}"), line
