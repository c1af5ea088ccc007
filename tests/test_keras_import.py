"""Keras 3 importer: `reference.forward(from_keras(m), x)` must reproduce `m.predict(x)`.

The reference is float64 and written from the equations, so agreement checks the weight
mapping (gate order, bias rows, transposes, activations, stacking) end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras_models import feature_model, random_inputs, seed_model, token_model

from edgegru import ir, keras_import, reference
from edgegru.keras_import import KERAS_MISSING, UnsupportedLayerError, from_keras

# Keras computes in float32, the reference in float64. With fan-in-scaled weights (see
# keras_models.py) float32 rounding stays ~1e-7 even over 200 steps (measured <= 1.3e-7 here),
# so 1e-5 leaves two orders of margin while any mapping bug (wrong gate order, bias row,
# reset_after variant, activation) shows up as an error of 1e-2 or more.
FP32_TOL = 1e-5

BATCH, T = 3, 9

# Keras' TF backend calls np.array(tf.Variable) when saving/quantizing; numpy 2 warns about it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

# name -> factory; every factory returns a freshly built, randomized Keras model.
CASES = {
    "tok_seq_reset_after": lambda: token_model(50, 8, (8,), True, 1, "sigmoid", seed=1),
    "tok_seq_reset_before": lambda: token_model(50, 8, (8,), False, 1, "sigmoid", seed=2),
    "tok_stacked_reset_after": lambda: token_model(50, 8, (8, 6), True, 4, "softmax", seed=3),
    "tok_stacked_reset_before_seq_out": lambda: token_model(
        40, 6, (7, 5), False, 3, "softmax", seed=4, return_sequences=True
    ),
    "tok_no_bias_reset_after": lambda: token_model(
        50, 8, (8,), True, 2, "tanh", seed=5, use_bias=False
    ),
    "tok_no_bias_reset_before": lambda: token_model(
        50, 8, (8, 5), False, 2, "linear", seed=6, use_bias=False
    ),
    "tok_functional_stacked": lambda: token_model(
        60, 5, (6, 4), False, 3, "relu", seed=7, functional=True
    ),
    "tok_dropout": lambda: token_model(50, 8, (8, 6), True, 1, "sigmoid", seed=8, dropout=True),
    "tok_fixed_seq_len": lambda: token_model(30, 4, (5,), True, 2, "softmax", seed=9, seq_len=T),
    "tok_no_head_seq_out": lambda: token_model(
        30, 4, (5,), True, None, seed=10, return_sequences=True, functional=True
    ),
    "feat_linear": lambda: feature_model(3, (8,), True, (2, "linear"), seed=11),
    "feat_relu_reset_before": lambda: feature_model(4, (6,), False, (5, "relu"), seed=12),
    "feat_tanh_functional": lambda: feature_model(
        3, (8, 4), True, (3, "tanh"), seed=13, functional=True
    ),
    "feat_sigmoid_seq_out": lambda: feature_model(
        2, (5,), False, (1, "sigmoid"), seed=14, return_sequences=True
    ),
    "feat_softmax_no_bias": lambda: feature_model(
        3, (6, 6), True, (4, "softmax"), seed=15, use_bias=False, functional=True
    ),
    "feat_no_head": lambda: feature_model(3, (7,), True, None, seed=16, seq_len=T),
    "feat_dropout_functional": lambda: feature_model(
        3, (6, 5), False, (2, "linear"), seed=17, dropout=True, functional=True
    ),
}

# Cases additionally round-tripped through a .keras file and converted from the path.
SAVED = {"tok_stacked_reset_after", "feat_dropout_functional", "tok_no_bias_reset_before"}


def _max_err(model, x, irm):
    want = model.predict(x, verbose=0)
    got = reference.forward(irm, x)
    assert got.shape == want.shape == irm.output_shape(x.shape[0], x.shape[1])
    return float(np.max(np.abs(got - want)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_keras(case):
    model = CASES[case]()
    x = random_inputs(model, BATCH, T, seed=100)
    err = _max_err(model, x, from_keras(model))
    print(f"max_abs_err={err:.3g}")
    assert err <= FP32_TOL


@pytest.mark.parametrize("case", sorted(SAVED))
def test_matches_keras_loaded_by_path(case, tmp_path):
    model = CASES[case]()
    path = tmp_path / f"{case}.keras"
    model.save(path)
    x = random_inputs(model, BATCH, T, seed=101)
    from_path = from_keras(path)  # pathlib.Path
    assert from_keras(str(path)).name == from_path.name  # str works too
    err = _max_err(model, x, from_path)
    print(f"max_abs_err={err:.3g}")
    assert err <= FP32_TOL
    direct = from_keras(model)
    assert [type(a) for a in from_path.layers] == [type(b) for b in direct.layers]
    for a, b in zip(from_path.layers, direct.layers, strict=True):
        assert a.name == b.name
        for attr in ("table", "kernel", "recurrent_kernel", "input_bias", "recurrent_bias", "bias"):
            if hasattr(a, attr):
                np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))


def test_seed_model():
    model = seed_model()
    irm = from_keras(model)
    assert irm.input == ir.InputSpec(ir.TOKENS, 20000, 200)
    assert [type(layer) for layer in irm.layers] == [ir.Embedding, ir.GRU, ir.Dense]
    x = random_inputs(irm, 2, 200, seed=7)
    err = _max_err(model, x, irm)
    print(f"max_abs_err={err:.3g}")
    assert err <= FP32_TOL


def test_ir_fields_follow_keras():
    model = token_model(50, 8, (8, 6), True, 3, "softmax", seed=20, dropout=True, name="clf")
    irm = from_keras(model)
    kl = {layer.name: layer for layer in model.layers}
    assert irm.name == "clf"
    assert irm.input == ir.InputSpec(ir.TOKENS, 50, None)
    # Dropout layers vanish; the others keep their Keras names and order.
    kept = [layer.name for layer in model.layers if type(layer).__name__ != "Dropout"]
    # Only what the live and the file route both know (no backend name): the IR layer names
    # (one per .egru record, as format.read maps them) and every Keras layer on the chain.
    assert irm.source == {
        "framework": "keras",
        "keras_version": keras.__version__,
        "layers": kept,
        "keras_layers": ["tokens"] + [layer.name for layer in model.layers],
    }
    assert [layer.name for layer in irm.layers] == kept
    emb, gru0, gru1, dense = irm.layers
    np.testing.assert_array_equal(emb.table, kl[emb.name].get_weights()[0])
    kernel, recurrent, bias = kl[gru0.name].get_weights()
    np.testing.assert_array_equal(gru0.kernel, kernel)
    np.testing.assert_array_equal(gru0.recurrent_kernel, recurrent)
    np.testing.assert_array_equal(gru0.input_bias, bias[0])  # row 0: input bias
    np.testing.assert_array_equal(gru0.recurrent_bias, bias[1])  # row 1: recurrent bias
    assert gru0.reset_after and gru0.return_sequences and not gru1.return_sequences
    assert (dense.activation, dense.units) == ("softmax", 3)


def test_ir_fields_reset_before_and_no_bias():
    model = feature_model(3, (5,), False, (2, "relu"), seed=21, seq_len=T)
    irm = from_keras(model)
    assert irm.input == ir.InputSpec(ir.FEATURES, 3, T)
    gru = irm.layers[0]
    bias = model.layers[0].get_weights()[2]
    assert bias.shape == (15,) and not gru.reset_after and gru.use_bias
    np.testing.assert_array_equal(gru.input_bias, bias)
    np.testing.assert_array_equal(gru.recurrent_bias, np.zeros(15, np.float32))

    model = feature_model(3, (5,), True, (2, "relu"), seed=22, use_bias=False)
    gru, dense = from_keras(model).layers
    assert not gru.use_bias
    assert not gru.input_bias.any() and not gru.recurrent_bias.any() and not dense.bias.any()


# ---------------------------------------------------------------------------------------------
# Rejections
# ---------------------------------------------------------------------------------------------


def _seq(*layers, shape=(None, 3), dtype="float32", **input_kwargs):
    return keras.Sequential([keras.Input(shape, dtype=dtype, **input_kwargs), *layers])


def _raises(model, error, *words):
    with pytest.raises(error) as info:
        from_keras(model)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"
    return message


@pytest.mark.parametrize(
    "make, name, cls",
    [
        (lambda: keras.layers.LeakyReLU(name="lrelu"), "lrelu", "LeakyReLU"),
        (lambda: keras.layers.MaxPooling1D(2, name="pool"), "pool", "MaxPooling1D"),
        (lambda: keras.layers.RNN(keras.layers.GRUCell(4), name="rnn"), "rnn", "RNN"),
        (lambda: keras.layers.UpSampling1D(2, name="up"), "up", "UpSampling1D"),
    ],
)
def test_rejects_unsupported_layer(make, name, cls):
    model = _seq(make(), keras.layers.Dense(1))
    message = _raises(model, UnsupportedLayerError, repr(name), cls, "supported layers")
    for supported in ("Embedding", "GRU", "LSTM", "Bidirectional", "Dense", "Dropout", "Conv1D"):
        assert supported in message


@pytest.mark.parametrize(
    "kwargs, option, value",
    [
        ({"activation": "gelu"}, "activation", "'gelu'"),
        ({"activation": "selu"}, "activation", "'selu'"),
        ({"recurrent_activation": "softmax"}, "recurrent_activation", "'softmax'"),
    ],
)
def test_rejects_gru_option(kwargs, option, value):
    model = _seq(keras.layers.GRU(4, name="g", **kwargs), keras.layers.Dense(1))
    message = _raises(model, UnsupportedLayerError, "'g'", "GRU", f"{option}={value}", "supported")
    for supported in ir.GRU_ACTIVATIONS:
        assert repr(supported) in message


def test_gru_return_state_output_converts():
    inp = keras.Input((None, 3))
    out, _state = keras.layers.GRU(4, return_state=True, name="g")(inp)
    model = keras.Model(inp, keras.layers.Dense(1)(out))
    irm = from_keras(model)
    assert [type(layer) for layer in irm.layers] == [ir.GRU, ir.Dense]
    x = random_inputs(model, BATCH, T, seed=3)
    assert _max_err(model, x, irm) <= FP32_TOL


def test_rejects_lstm_cell_state_output():
    inp = keras.Input((None, 3))
    _out, _h, c = keras.layers.LSTM(4, return_state=True, name="l")(inp)
    _raises(keras.Model(inp, c), UnsupportedLayerError, "'l'", "LSTM", "return_state", "state c")


def test_stateful_gru_converts_like_stateless():
    model = _seq(keras.layers.GRU(4, stateful=True, name="g"), batch_size=2)
    gru = from_keras(model).layers[0]
    assert isinstance(gru, ir.GRU) and gru.name == "g"
    np.testing.assert_array_equal(gru.kernel, model.layers[0].get_weights()[0])


def test_mask_zero_converts():
    model = _seq(
        keras.layers.Embedding(10, 4, mask_zero=True, name="emb"),
        keras.layers.GRU(3, name="g"),
        shape=(None,),
        dtype="int32",
    )
    emb, gru = from_keras(model).layers
    assert emb.mask_zero and gru.masked


def test_rejects_dense_activation():
    model = _seq(keras.layers.GRU(4), keras.layers.Dense(2, activation="gelu", name="head"))
    message = _raises(model, UnsupportedLayerError, "'head'", "Dense", "activation='gelu'")
    for supported in ir.DENSE_ACTIVATIONS:
        assert repr(supported) in message


@pytest.mark.filterwarnings("ignore:Layer .* does not have a `quantize` method")
def test_rejects_quantized_dense():
    model = feature_model(3, (4,), True, (2, "linear"), seed=0)
    model.quantize("int8")
    _raises(model, UnsupportedLayerError, "Dense", "quantization_mode='int8'")


def test_rejects_two_input_model():
    a, b = keras.Input((None, 3), name="a"), keras.Input((None, 3), name="b")
    merged = keras.layers.Concatenate(name="cat")([a, b])
    model = keras.Model([a, b], keras.layers.GRU(4)(merged))
    _raises(model, ValueError, "not a single chain", "2 inputs")


def test_rejects_branching_model():
    inp = keras.Input((None, 3))
    h = keras.layers.GRU(4, return_sequences=True)(inp)
    y = keras.layers.Add(name="join")([keras.layers.Dense(4)(h), h])
    model = keras.Model(inp, keras.layers.GRU(2)(y))
    _raises(model, ValueError, "not a single chain", "'join'", "2 input tensors")


def test_rejects_extra_tensor_argument():
    inp = keras.Input((None, 3))
    state = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling1D()(inp))
    out = keras.layers.GRU(4, name="g")(inp, initial_state=state)
    _raises(keras.Model(inp, out), ValueError, "not a single chain", "'g'", "'initial_state'")


def test_rejects_mask_even_if_a_converter_misses_it(monkeypatch):
    # Guard for future converters: where the Functional config records that Keras passes a mask,
    # the IR's own mask flow must agree, or the conversion is refused.
    def lax_embedding(class_name, config, weights, ctx):
        return ir.Embedding(table=weights[0], name=config["name"])

    monkeypatch.setitem(keras_import._CONVERTERS, "Embedding", lax_embedding)
    inp = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4, mask_zero=True)(inp)
    model = keras.Model(inp, keras.layers.GRU(3, name="g")(x))
    _raises(model, UnsupportedLayerError, "'g'", "mask")


def test_rejects_shared_layer():
    inp = keras.Input((None, 4))
    dense = keras.layers.Dense(4, name="twice")
    model = keras.Model(inp, keras.layers.GRU(2)(dense(dense(inp))))
    _raises(model, ValueError, "not a single chain", "'twice'", "more than once")


def test_rejects_unbuilt_and_subclassed_models():
    _raises(keras.Sequential([keras.layers.GRU(4)]), ValueError, "not built")

    class Sub(keras.Model):
        def __init__(self):
            super().__init__(name="sub")
            self.gru = keras.layers.GRU(3)

        def call(self, x):
            return self.gru(x)

    sub = Sub()
    sub(np.zeros((1, 4, 2), np.float32))
    _raises(sub, ValueError, "subclassed", "Sequential and Functional")


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Keras model file"):
        from_keras(tmp_path / "missing.keras")
    with pytest.raises(TypeError, match=r"keras\.Model"):
        from_keras(keras.layers.GRU(3))


def test_error_class_is_a_value_error():
    assert issubclass(UnsupportedLayerError, ValueError)


# ---------------------------------------------------------------------------------------------
# Keras is optional
# ---------------------------------------------------------------------------------------------


def test_import_does_not_need_keras():
    # A fresh interpreter where `import keras` fails: importing the module works, converting a
    # live object raises ImportError naming the extra (paths go through edgegru.keras_file,
    # which never needs keras: tests/test_no_tensorflow.py).
    package_root = Path(ir.__file__).resolve().parents[1]
    code = (
        "import sys; sys.modules['keras'] = None\n"
        "import edgegru.keras_import as k\n"
        "try:\n"
        "    k.from_keras(object())\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(package_root)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == KERAS_MISSING


# ---------------------------------------------------------------------------------------------
# Issue #10, item 13: names the user wrote; broken files are FormatErrors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("written, saved", [("swish", "silu"), ("hard_swish", "hard_silu")])
def test_activation_alias_names_what_the_user_wrote(written, saved):
    """Keras configures activation="swish" as "silu"; the refusal names both."""
    model = _seq(keras.layers.GRU(2, name="g", recurrent_activation=written))
    _raises(
        model,
        UnsupportedLayerError,
        f"recurrent_activation='{saved}' (Keras' name for '{written}')",
        "'g'",
    )


@pytest.fixture(scope="module")
def saved_keras(tmp_path_factory):
    path = tmp_path_factory.mktemp("trunc") / "m.keras"
    token_model(20, 4, (3,), True, 1, "sigmoid", seed=21).save(path)
    return path


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_truncated_keras_file_is_a_format_error(saved_keras, tmp_path, keep):
    """A truncated .keras archive is corrupt, not an unsupported model: FormatError, and not
    an UnsupportedError (it was a KerasFileError, a subclass of UnsupportedError)."""
    from edgegru import FormatError, UnsupportedError

    data = saved_keras.read_bytes()
    bad = tmp_path / "cut.keras"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(FormatError, match=r"cut\.keras") as info:
        keras_import.from_keras(bad)
    assert not isinstance(info.value, UnsupportedError)


def test_corrupt_weights_in_a_keras_file_are_a_format_error(saved_keras, tmp_path):
    """A valid zip whose model.weights.h5 is garbage: FormatError naming the member."""
    import zipfile

    from edgegru import FormatError

    bad = tmp_path / "garbage.keras"
    with zipfile.ZipFile(saved_keras) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, b"not hdf5" * 10 if name == "model.weights.h5" else data)
    with pytest.raises(FormatError, match=r"model\.weights\.h5"):
        keras_import.from_keras(bad)
