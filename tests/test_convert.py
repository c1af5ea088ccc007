"""End to end: Keras model -> edgegru.convert -> (.egru in the C runtime, ONNX in onnxruntime),
all three compared on the same inputs; the CLI and tools/convert.py on the same path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from keras_models import feature_model, random_inputs, seed_model, token_model

import edgegru
from edgegru.cli import main as cli
from edgegru.validate import FP32_TOLERANCE

ROOT = Path(__file__).resolve().parents[1]

MODELS = {
    "tokens_reset_after": lambda: token_model(60, 12, (16,), True, 1, "sigmoid", seed=1),
    "tokens_reset_before": lambda: token_model(60, 12, (16,), False, 3, "softmax", seed=2),
    "tokens_stacked_functional": lambda: token_model(
        40, 8, (12, 10), True, 2, "tanh", seed=3, functional=True, dropout=True
    ),
    "tokens_stacked_mixed_sequences": lambda: token_model(
        40, 8, (12, 6), False, 4, "relu", seed=4, return_sequences=True
    ),
    "features_gru_linear": lambda: feature_model(6, (10,), True, (3, "linear"), seed=5),
    "features_stacked_no_bias": lambda: feature_model(
        4, (8, 8, 5), False, (2, "softmax"), seed=6, use_bias=False
    ),
    "features_sequence_output": lambda: feature_model(
        3, (7,), True, None, seed=7, return_sequences=True
    ),
}


def _graph_ops(path) -> list:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.mark.parametrize("steps", [1, 13, 60])
@pytest.mark.parametrize("name", list(MODELS))
def test_keras_onnx_and_c_runtime_agree(name, steps, tmp_path):
    km = MODELS[name]()
    egru_path, onnx_path = tmp_path / "m.egru", tmp_path / "m.onnx"
    edgegru.convert(km, egru_path, onnx_path=onnx_path)
    x = random_inputs(km, 3, steps, seed=steps)
    report = edgegru.validate(km, egru_path, onnx_path=onnx_path, x=x)
    assert report.ok, str(report)
    assert set(report.max_abs_error) == {
        "keras~onnxruntime",
        "keras~edgegru",
        "onnxruntime~edgegru",
    }
    assert max(report.max_abs_error.values()) <= FP32_TOLERANCE
    assert report.output_shape == km.predict(x, verbose=0).shape
    ops = _graph_ops(onnx_path)
    assert "GRU" in ops and "Loop" not in ops and "Scan" not in ops


def test_seed_model_T200(tmp_path):
    """The issue's seed model: Embedding(20000,128) -> GRU(128) -> Dense(1, sigmoid), T=200."""
    km = seed_model()
    egru_path, onnx_path = tmp_path / "seed.egru", tmp_path / "seed.onnx"
    edgegru.convert(km, egru_path, onnx_path=onnx_path)
    x = random_inputs(km, 4, 200, seed=9)
    report = edgegru.validate(km, egru_path, onnx_path=onnx_path, x=x)
    assert report.ok, str(report)
    model = onnx.load(str(onnx_path))
    assert [n.op_type for n in model.graph.node].count("GRU") == 1
    assert "Loop" not in [n.op_type for n in model.graph.node]
    assert model.opset_import[0].version >= 17
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param for d in dims)  # batch and T are dynamic
    onnx.checker.check_model(model, full_check=True)


def test_validate_generates_inputs_and_exports_onnx_itself(tmp_path):
    km = MODELS["features_gru_linear"]()
    edgegru.convert(km, tmp_path / "m.egru")
    report = edgegru.validate(km, tmp_path / "m.egru", batch=2, seq_len=9)
    assert report.ok and report.input_shape == (2, 9, 6)


def test_validate_fails_for_a_file_from_another_model(tmp_path):
    km = MODELS["tokens_reset_after"]()
    other = token_model(60, 12, (16,), True, 1, "sigmoid", seed=99)
    edgegru.convert(other, tmp_path / "other.egru")
    report = edgegru.validate(km, tmp_path / "other.egru")
    assert not report.ok
    assert report.max_abs_error["keras~edgegru"] > 1e-3
    assert report.max_abs_error["keras~onnxruntime"] <= FP32_TOLERANCE
    assert "FAIL" in str(report)


def test_keras_file_and_live_model_give_the_same_bytes(tmp_path):
    km = MODELS["tokens_stacked_functional"]()
    km.save(tmp_path / "m.keras")
    edgegru.convert(km, tmp_path / "live.egru")
    edgegru.convert(tmp_path / "m.keras", tmp_path / "file.egru")
    assert (tmp_path / "live.egru").read_bytes() == (tmp_path / "file.egru").read_bytes()


def test_unsupported_layer_writes_nothing(tmp_path):
    import keras

    km = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.MaxPooling1D(2, name="my_pool"), keras.layers.GRU(2)]
    )  # (Cropping1D, used here before, converts since graphs have TIME_STEPS)
    with pytest.raises(edgegru.UnsupportedError, match="my_pool"):
        edgegru.convert(km, tmp_path / "m.egru", onnx_path=tmp_path / "m.onnx")
    assert not (tmp_path / "m.egru").exists() and not (tmp_path / "m.onnx").exists()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A .keras file of a small token model."""
    d = tmp_path_factory.mktemp("cli")
    km = MODELS["tokens_reset_before"]()
    km.save(d / "m.keras")
    return d


def test_cli_convert_validate_info(saved, capsys):
    d = saved
    assert (
        cli(["convert", str(d / "m.keras"), "-o", str(d / "m.egru"), "--onnx", str(d / "m.onnx")])
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    assert (
        cli(["validate", str(d / "m.keras"), str(d / "m.egru"), "--onnx", str(d / "m.onnx")]) == 0
    )
    out = capsys.readouterr().out
    assert "PASSED" in out and "keras~edgegru" in out
    x = np.random.default_rng(0).integers(0, edgegru.load(d / "m.egru").input_dim, (2, 11))
    np.save(d / "x.npy", x)
    assert cli(["validate", str(d / "m.keras"), str(d / "m.egru"), "--x", str(d / "x.npy")]) == 0
    assert "input (2, 11)" in capsys.readouterr().out
    assert cli(["info", str(d / "m.egru"), "--seq-len", "50"]) == 0
    out = capsys.readouterr().out
    m = edgegru.load(d / "m.egru", fold_embedding=False)  # info: the file as stored
    assert f"parameters: {m.param_count}" in out
    assert f"arena: {m.arena_size(1, 50)} bytes" in out
    assert f"low-memory plan: {m.arena_size(1, 50, minimal=True)} bytes" in out
    assert "GRU" in out and "Embedding" in out and "Dense" in out
    macs = sum(layer["macs_per_step"] for layer in m.layers())
    assert f"MACs per step: {macs}" in out


def test_cli_errors_are_messages_not_tracebacks(saved, tmp_path, capsys):
    bad = tmp_path / "bad.egru"
    bad.write_bytes(b"EGRU" + bytes(200))
    assert cli(["info", str(bad)]) == 2
    assert "invalid .egru model" in capsys.readouterr().err
    assert cli(["info", str(tmp_path / "missing.egru")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_tools_convert_script(saved, tmp_path):
    """tools/convert.py is the same converter as the CLI: same bytes."""
    d = saved
    out = tmp_path / "tool.egru"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "convert.py"), str(d / "m.keras"), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert cli(["convert", str(d / "m.keras"), "-o", str(tmp_path / "cli.egru")]) == 0
    assert out.read_bytes() == (tmp_path / "cli.egru").read_bytes()


# --- issue #10, item 8: softplus in a fused recurrent op ------------------------------------------


def _softplus_layer(kind: str):
    """A 1-unit layer whose every gate pre-activation is the input itself (input weights 1,
    recurrent weights and biases 0), softplus where issue #10 found onnxruntime overflowing."""
    import keras

    layer = {
        "SimpleRNN": lambda: keras.layers.SimpleRNN(1, activation="softplus", name="cell"),
        "GRU": lambda: keras.layers.GRU(1, activation="softplus", name="cell"),
        "LSTM": lambda: keras.layers.LSTM(1, activation="softplus", name="cell"),
    }[kind]()
    model = keras.Sequential([keras.Input((None, 1)), layer])
    weights = layer.get_weights()
    layer.set_weights([np.ones_like(weights[0])] + [np.zeros_like(w) for w in weights[1:]])
    return model


#: Keras' softplus is exact at 100 (log1p(exp(-100)) is below float32's resolution at 100): the
#: SimpleRNN gives softplus(100) = 100 (onnxruntime's fused RNN: inf). The GRU/LSTM outputs are
#: compared with Keras itself.
X100 = np.array([[[100.0]]], np.float32)


@pytest.mark.parametrize("kind", ["SimpleRNN", "GRU", "LSTM"])
def test_softplus_recurrent_onnx_export_is_refused_and_nothing_written(kind, tmp_path):
    km = _softplus_layer(kind)
    egru_path, onnx_path = tmp_path / "m.egru", tmp_path / "m.onnx"
    with pytest.raises(edgegru.UnsupportedError, match=r"'cell'.*softplus.*log\(1 \+ exp\(x\)\)"):
        edgegru.convert(km, egru_path, onnx_path=onnx_path)
    assert not egru_path.exists() and not onnx_path.exists()
    # Without ONNX the conversion works, and edgegru gives Keras' numbers at x = 100.
    edgegru.convert(km, egru_path)
    want = km.predict(X100, verbose=0)
    assert np.isfinite(want).all()
    got = edgegru.load(egru_path).predict(X100)
    np.testing.assert_allclose(got, want, rtol=FP32_TOLERANCE, atol=FP32_TOLERANCE)
    if kind == "SimpleRNN":
        assert got[0, 0] == pytest.approx(100.0, rel=1e-6)
    # validate leaves onnxruntime out, says why, and passes on Keras vs edgegru.
    report = edgegru.validate(km, egru_path, x=X100)
    assert report.ok, str(report)
    assert set(report.max_abs_error) == {"keras~edgegru"}
    assert "softplus" in report.skipped["onnxruntime"] and "skipped" in str(report)
