"""ONNX export (edgegru.onnx_export) vs the float64 numpy oracle (edgegru.reference).

Run from the repository root: PYTHONPATH=src python -m pytest tests/test_onnx_export.py
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from ir_models import CASES, build, dense, embedding, feat, gru, inputs, tok

from edgegru import ir, onnx_export, reference
from edgegru.onnx_export import save_onnx, to_onnx

# Max |onnxruntime float32 - reference float64|. With fan-in-scaled weights (contracting,
# non-chaotic recurrence) the float32 rounding error stays ~1e-6 even over 200 steps (measured
# <= 1e-6 for Keras and ORT alike); 1e-5 leaves 10x headroom yet catches any mapping error (wrong
# gate order or linear_before_reset gives 0.1..1). Large weights make the recurrence chaotic.
FP32_TOL = 1e-5

BATCHES = (1, 3)
STEPS = (1, 7, 50)


@functools.cache
def _exported(case_name: str, opset: int = onnx_export.DEFAULT_OPSET):
    """(ir model, ONNX model, ORT session), built once per case."""
    model = build(case_name)
    proto = to_onnx(model, opset=opset)
    return model, proto, _session(proto)


def _session(proto: onnx.ModelProto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _run(model: ir.Model, sess: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    (y,) = sess.run(None, {onnx_export.INPUT_NAME[model.input.kind]: x})
    return y


def _assert_matches(model, sess, batch, steps, seed=0):
    x = inputs(model, batch, steps, seed)
    got = _run(model, sess, x)
    want = reference.forward(model, x)
    assert got.dtype == np.float32
    assert got.shape == model.output_shape(batch, steps) == want.shape
    err = float(np.max(np.abs(got.astype(np.float64) - want)))
    assert err <= FP32_TOL, f"max abs error {err:.3g} > FP32_TOL {FP32_TOL}"
    return err


def _dims(value_info: onnx.ValueInfoProto) -> list:
    return [
        d.dim_param if d.HasField("dim_param") else d.dim_value
        for d in value_info.type.tensor_type.shape.dim
    ]


# --- numerics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("case_name", list(CASES))
def test_matches_reference(case_name, batch, steps):
    model, _, sess = _exported(case_name)
    _assert_matches(model, sess, batch, steps)


@pytest.mark.parametrize("case_name", list(CASES))
def test_cases_are_not_degenerate(case_name):
    """Outputs vary across inputs (no dead ReLU, no saturated sigmoid): a match means something."""
    model, _, _ = _exported(case_name)
    want = reference.forward(model, inputs(model, 3, 7))
    assert np.ptp(want, axis=0).min() > 1e-2


def test_one_model_runs_at_several_batch_and_time_sizes():
    model, proto, sess = _exported("tokens_stacked_sequence_output")
    assert _dims(proto.graph.input[0]) == ["batch", "time"]
    assert _dims(proto.graph.output[0]) == ["batch", "time", model.output_dim]
    for batch, steps in ((1, 1), (3, 50), (2, 7)):
        _assert_matches(model, sess, batch, steps, seed=batch * 100 + steps)


def test_seed_model_size():
    """Embedding(20000, 128) -> GRU(128) -> Dense(1, sigmoid), T=200, batch 2."""
    rng = np.random.default_rng(2024)
    model = tok(
        20000, embedding(rng, 20000, 128), gru(rng, 128, 128), dense(rng, 128, 1, "sigmoid")
    )
    _assert_matches(model, _session(to_onnx(model)), batch=2, steps=200)


@pytest.mark.parametrize("opset", [onnx_export.MIN_OPSET, 21])
def test_other_opsets(opset):
    model, _, _ = _exported("stacked_gru_linear")
    proto = to_onnx(model, opset=opset)
    assert proto.opset_import[0].version == opset
    _assert_matches(model, _session(proto), batch=3, steps=7)


def test_save_onnx_round_trip(tmp_path):
    model, proto, _ = _exported("features_gru_softmax_reset_after")
    path = tmp_path / "model.onnx"
    returned = save_onnx(model, path)
    loaded = onnx.load(str(path))
    assert loaded.SerializeToString() == returned.SerializeToString() == proto.SerializeToString()
    _assert_matches(model, _session(loaded), batch=2, steps=5)


# --- graph structure -----------------------------------------------------------------------------


@pytest.mark.parametrize("case_name", list(CASES))
def test_graph_is_standard_and_fused(case_name):
    model, proto, _ = _exported(case_name)
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node]
    n_gru = sum(isinstance(la, ir.GRU) for la in model.layers)
    assert ops.count("GRU") == n_gru
    assert "Loop" not in ops and "Scan" not in ops
    assert ops.count("Transpose") == CASES[case_name].transposes
    if model.input.kind == ir.TOKENS and n_gru:
        # The cheap transpose: int64 ids [B, T] -> [T, B] before the Gather, not [B, T, E] floats.
        first = next(n for n in proto.graph.node if n.op_type == "Transpose")
        assert list(first.input) == ["tokens"]
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    assert all(n.domain == "" for n in proto.graph.node)
    assert proto.producer_name == "edgegru" and proto.doc_string
    # Every layer's IR name scopes its nodes and initializers.
    for layer in model.layers:
        assert any(n.name.startswith(layer.name + "/") for n in proto.graph.node)
        assert any(t.name.startswith(layer.name + "/") for t in proto.graph.initializer)
    # Strict shape inference agrees with the declared output shape.
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    assert _dims(inferred.graph.output[0]) == _dims(proto.graph.output[0])


@pytest.mark.parametrize("case_name", list(CASES))
def test_input_output_signature(case_name):
    model, proto, _ = _exported(case_name)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    if model.input.kind == ir.TOKENS:
        assert (inp.name, inp.type.tensor_type.elem_type) == ("tokens", onnx.TensorProto.INT64)
        assert _dims(inp) == ["batch", "time"]
    else:
        assert (inp.name, inp.type.tensor_type.elem_type) == ("features", onnx.TensorProto.FLOAT)
        assert _dims(inp) == ["batch", "time", model.input.dim]
    assert (out.name, out.type.tensor_type.elem_type) == ("output", onnx.TensorProto.FLOAT)
    want = model.output_shape("batch", "time")
    assert tuple(_dims(out)) == want


def test_gru_node_weights_and_attributes():
    model, proto, _ = _exported("stacked_gru_linear")
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    nodes = {n.name: n for n in proto.graph.node if n.op_type == "GRU"}
    for layer in (la for la in model.layers if isinstance(la, ir.GRU)):
        node = nodes[f"{layer.name}/GRU"]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["hidden_size"] == layer.units
        assert attrs["linear_before_reset"] == int(layer.reset_after)
        assert attrs["activations"] == [b"Sigmoid", b"Tanh"]
        assert attrs.get("layout", 0) == 0
        assert list(node.input) == [node.input[0], *(f"{layer.name}/{k}" for k in "WRB")]
        np.testing.assert_array_equal(inits[f"{layer.name}/W"], layer.kernel.T[None])
        np.testing.assert_array_equal(inits[f"{layer.name}/R"], layer.recurrent_kernel.T[None])
        np.testing.assert_array_equal(
            inits[f"{layer.name}/B"],
            np.concatenate([layer.input_bias, layer.recurrent_bias])[None],
        )
    # The GRUs feed each other time-major: the second and third GRU read the previous Squeeze.
    producers = {o: n for n in proto.graph.node for o in n.output}
    assert producers[nodes["gru_1/GRU"].input[0]].op_type == "Squeeze"
    assert producers[nodes["gru_2/GRU"].input[0]].op_type == "Squeeze"


def test_gru_activation_table_builds_alpha_beta(monkeypatch):
    """Entries with parameters (e.g. a future hard_sigmoid) yield activation_alpha/_beta lists."""
    monkeypatch.setitem(onnx_export._GRU_ACTIVATIONS, "hard_sigmoid", ("HardSigmoid", 1 / 6, 0.5))
    layer = gru(np.random.default_rng(0), 3, 2)
    layer.recurrent_activation = "hard_sigmoid"  # bypasses ir.GRU's own check on purpose
    attrs = onnx_export._gru_activation_attrs(layer)
    assert attrs == {
        "activations": ["HardSigmoid", "Tanh"],
        "activation_alpha": [1 / 6],
        "activation_beta": [0.5],
    }
    layer.activation = "gelu"
    with pytest.raises(ValueError, match="gelu"):
        onnx_export._gru_activation_attrs(layer)


def test_repeated_and_reserved_layer_names_stay_unique():
    rng = np.random.default_rng(1)
    model = feat(
        3,
        gru(rng, 3, 4, return_sequences=True, name="gru"),
        gru(rng, 4, 4, return_sequences=True, name="gru"),  # repeated name
        gru(rng, 4, 5, name="gru_1"),  # the suffix a naive dedup would give the repeat
        dense(rng, 5, 2, "linear", name="output"),  # the graph output's own name
    )
    proto = to_onnx(model)
    names = [t.name for t in proto.graph.initializer]
    assert len(names) == len(set(names))
    assert {"gru/W", "gru_1/W", "gru_2/W", "output_1/kernel"} <= set(names)
    node_names = [n.name for n in proto.graph.node]
    assert len(node_names) == len(set(node_names))
    _assert_matches(model, _session(proto), batch=2, steps=6)


@pytest.mark.parametrize("opset", [onnx_export.MIN_OPSET - 1, onnx.defs.onnx_opset_version() + 1])
def test_rejects_unsupported_opset(opset):
    model, _, _ = _exported("features_gru_softmax_reset_after")
    with pytest.raises(ValueError, match="opset"):
        to_onnx(model, opset=opset)
