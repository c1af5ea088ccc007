"""ONNX export (edgegru.onnx_export) vs the float64 numpy oracle (edgegru.reference).

Run from the repository root: PYTHONPATH=src python -m pytest tests/test_onnx_export.py
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from ir_models import (
    CASES,
    MORE_CASES,
    bidir,
    build,
    build_more,
    conv1d,
    dense,
    embedding,
    feat,
    gru,
    inputs,
    lstm,
    simple_rnn,
    tok,
)

import edgegru
from edgegru import ir, onnx_export, reference
from edgegru.onnx_export import save_onnx, to_onnx
from edgegru.validate import FP32_TOLERANCE

# Max |onnxruntime float32 - reference float64|. With fan-in-scaled weights (contracting,
# non-chaotic recurrence) the float32 rounding error stays ~1e-6 even over 200 steps (measured
# <= 1e-6 for Keras and ORT alike); 1e-5 leaves 10x headroom yet catches any mapping error (wrong
# gate order or linear_before_reset gives 0.1..1). Large weights make the recurrence chaotic.
FP32_TOL = FP32_TOLERANCE

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


def test_recurrent_activation_attributes():
    """alpha/beta lists are consumed in activation order by the functions that take them, per
    direction; hard_sigmoid is Keras 3's (1/6, 0.5), not ONNX's default 0.2."""
    layer = gru(np.random.default_rng(0), 3, 2)
    layer.recurrent_activation = "hard_sigmoid"
    assert onnx_export._rnn_activation_attrs(layer) == {
        "activations": ["HardSigmoid", "Tanh"],
        "activation_alpha": [1 / 6],
        "activation_beta": [0.5],
    }
    layer.activation = "elu"
    assert onnx_export._rnn_activation_attrs(layer, num_directions=2) == {
        "activations": ["HardSigmoid", "Elu"] * 2,
        "activation_alpha": [1 / 6, 1.0] * 2,
        "activation_beta": [0.5, 0.5],
    }
    cell = lstm(np.random.default_rng(0), 3, 2, activation="linear")
    assert onnx_export._rnn_activation_attrs(cell) == {
        "activations": ["Sigmoid", "Affine", "Affine"],  # [f, g, h]: g and h are `activation`
        "activation_alpha": [1.0, 1.0],
        "activation_beta": [0.0, 0.0],
    }
    layer.activation = "gelu"  # bypasses ir.GRU's own check on purpose
    with pytest.raises(ValueError, match="gelu"):
        onnx_export._rnn_activation_attrs(layer)


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


# --- issue #3 layers without masks: recurrent variants, Conv1D, pooling, normalization ----------
# (masked models: tests/test_onnx_masking.py)

#: IR recurrent type -> fused ONNX op and the IR activation slots in the op's `activations` order.
FUSED = {
    ir.GRU: ("GRU", ("recurrent_activation", "activation")),
    ir.LSTM: ("LSTM", ("recurrent_activation", "activation", "activation")),
    ir.SimpleRNN: ("RNN", ("activation",)),
}
#: Keras activation -> ONNX recurrent-op activation name (alpha/beta: test_recurrent_activation_*).
ONNX_RNN_ACT = {
    "linear": "Affine",
    "relu": "Relu",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "hard_sigmoid": "HardSigmoid",
    "elu": "Elu",
    "softsign": "Softsign",
    "softplus": "Softplus",
    "leaky_relu": "LeakyRelu",
}
MORE_STEPS = (1, 3, 6, 17)
MORE_BATCHES = (5, 1)


def _uses_mask(model: ir.Model) -> bool:
    return any(isinstance(la, ir.Masking) or getattr(la, "mask_zero", False) for la in model.layers)


_FUSED_SLOTS = ("activation", "recurrent_activation")


def _recurrent_softplus(model: ir.Model) -> bool:
    """A recurrent layer with softplus in a slot the fused op uses: the export refuses it."""
    for la in model.layers:
        cell = la.forward if isinstance(la, ir.Bidirectional) else la
        if isinstance(cell, ir.RECURRENT):
            slots = ("activation",) if isinstance(cell, ir.SimpleRNN) else _FUSED_SLOTS
            if any(getattr(cell, s) == "softplus" for s in slots):
                return True
    return False


REFUSED_MORE = [n for n in MORE_CASES if _recurrent_softplus(build_more(n))]
UNMASKED_MORE = [n for n in MORE_CASES if not _uses_mask(build_more(n)) and n not in REFUSED_MORE]


def _steps_for(model: ir.Model, steps=MORE_STEPS) -> tuple[int, ...]:
    """The T values a model accepts: a Flatten fixes T, a 'valid' Conv1D needs T >= its span."""
    flat = next((k for k, la in enumerate(model.layers) if isinstance(la, ir.Flatten)), None)
    if flat is not None:
        before = ir.Model(model.input, model.layers[:flat])
        return (
            next(t for t in range(1, 100) if before.output_steps(t) == model.layers[flat].steps),
        )
    return tuple(t for t in steps if model.output_steps(t) > 0)


@functools.cache
def _exported_more(case_name: str, opset: int = onnx_export.DEFAULT_OPSET):
    model = build_more(case_name)
    proto = to_onnx(model, opset=opset)
    return model, proto, _session(proto)


def _expected_output_dims(model: ir.Model) -> list:
    if not model.output_is_sequence:
        return ["batch", model.output_dim]
    same_steps = all(model.output_steps(t) == t for t in (1, 2, 3, 5, 8, 13))
    return ["batch", "time" if same_steps else "time_out", model.output_dim]


def _fused_nodes(proto: onnx.ModelProto) -> list:
    return [n for n in proto.graph.node if n.op_type in ("GRU", "LSTM", "RNN")]


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _expected_fused(model: ir.Model) -> list:
    """(op, direction, activations) of each recurrent layer, in model order."""
    out = []
    for la in model.layers:
        cell = la.forward if isinstance(la, ir.Bidirectional) else la
        if not isinstance(cell, ir.RECURRENT):
            continue
        op, slots = FUSED[type(cell)]
        if isinstance(la, ir.Bidirectional):
            direction, dirs = "bidirectional", 2
        else:
            direction, dirs = ("reverse" if la.go_backwards else "forward"), 1
        acts = [ONNX_RNN_ACT[getattr(cell, slot)].encode() for slot in slots] * dirs
        out.append((op, direction.encode(), acts))
    return out


@pytest.mark.parametrize("case_name", UNMASKED_MORE)
def test_more_cases_match_reference(case_name):
    model, _, sess = _exported_more(case_name)
    for steps in _steps_for(model):
        for batch in MORE_BATCHES:
            _assert_matches(model, sess, batch, steps, seed=steps)


@pytest.mark.parametrize("case_name", UNMASKED_MORE)
def test_more_cases_are_not_degenerate(case_name):
    """Every output channel varies over batch and time, so a match means something."""
    model, _, _ = _exported_more(case_name)
    want = reference.forward(model, inputs(model, 5, _steps_for(model, (6,))[0], seed=3))
    assert np.ptp(want.reshape(-1, want.shape[-1]), axis=0).min() > 1e-2


@pytest.mark.parametrize("case_name", UNMASKED_MORE)
def test_more_graph_is_standard_and_fused(case_name):
    model, proto, _ = _exported_more(case_name)
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node]
    assert "Loop" not in ops and "Scan" not in ops
    got = [
        (n.op_type, _attrs(n)["direction"], _attrs(n)["activations"]) for n in _fused_nodes(proto)
    ]
    assert got == _expected_fused(model)
    assert all(_attrs(n).get("layout", 0) == 0 for n in _fused_nodes(proto))
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    assert all(n.domain == "" for n in proto.graph.node)
    for layer in model.layers:  # every layer's IR name scopes its nodes
        assert any(n.name.startswith(layer.name + "/") for n in proto.graph.node)
    assert _dims(proto.graph.output[0]) == _expected_output_dims(model)
    assert _dims(proto.graph.input[0])[:2] == ["batch", "time"]
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    assert _dims(inferred.graph.output[0]) == _dims(proto.graph.output[0])


def test_lstm_weights_are_reordered_to_iofc():
    """Keras LSTM gate blocks i|f|c|o become ONNX i|o|f|c; the bias goes to Wb, Rb is zero."""
    for case_name in ("lstm", "bidir_lstm_concat_seq"):
        model, proto, _ = _exported_more(case_name)
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
        layer = model.layers[0]
        cells = [layer.forward, layer.backward] if isinstance(layer, ir.Bidirectional) else [layer]
        (node,) = [n for n in _fused_nodes(proto)]
        w, r, b = (inits[name] for name in node.input[1:4])
        assert w.shape == (len(cells), 4 * cells[0].units, cells[0].input_dim)
        for d, cell in enumerate(cells):
            ki, kf, kc, ko = np.split(cell.kernel, 4, axis=1)
            np.testing.assert_array_equal(w[d], np.concatenate([ki, ko, kf, kc], axis=1).T)
            ri, rf, rc, ro = np.split(cell.recurrent_kernel, 4, axis=1)
            np.testing.assert_array_equal(r[d], np.concatenate([ri, ro, rf, rc], axis=1).T)
            bi, bf, bc, bo = np.split(cell.bias, 4)
            np.testing.assert_array_equal(b[d], np.concatenate([bi, bo, bf, bc, 0 * cell.bias]))


def test_bidirectional_stacks_forward_then_backward_weights():
    model, proto, _ = _exported_more("bidir_gru_concat_seq")
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    (node,) = _fused_nodes(proto)
    fwd, bwd = model.layers[0].forward, model.layers[0].backward
    np.testing.assert_array_equal(inits[node.input[1]], np.stack([fwd.kernel.T, bwd.kernel.T]))
    assert _attrs(node)["linear_before_reset"] == 1


def test_go_backwards_sequence_stays_in_processing_order():
    """Keras does not flip a go_backwards sequence back; flipping it would be a large error."""
    model, _, sess = _exported_more("gru_go_backwards_sequences")
    x = inputs(model, 3, 9)
    got, want = _run(model, sess, x), reference.forward(model, x)
    assert np.max(np.abs(got - want)) <= FP32_TOL
    assert np.max(np.abs(got[:, ::-1] - want)) > 1e-2


# Models beyond MORE_CASES that exercise the layout choices (Conv1D feeding Conv1D, pooling in
# either layout, per-step layers on vectors) and every Dense activation.
LAYOUT_CASES = {
    "conv_conv_gru": lambda r: feat(
        3,
        conv1d(r, 3, 4, 3, padding="same"),
        conv1d(r, 4, 5, 2, padding="causal", activation="elu"),
        gru(r, 5, 4),
    ),
    "conv_pool_softmax": lambda r: feat(
        3, conv1d(r, 3, 4, 3), ir.GlobalPool(4, "average"), dense(r, 4, 2, "softmax")
    ),
    "conv_flatten": lambda r: feat(
        3, conv1d(r, 3, 4, 2, strides=2), ir.Flatten(3, 4), dense(r, 12, 2, "linear")
    ),
    "tokens_pool_max": lambda r: tok(10, embedding(r, 10, 4), ir.GlobalPool(4, "max")),
    "sequence_pool_average": lambda r: feat(
        3, gru(r, 3, 4, return_sequences=True), ir.GlobalPool(4, "average")
    ),
    "bidir_stacked": lambda r: feat(
        4,
        bidir(r, gru, 4, 3, "concat", return_sequences=True),
        bidir(r, lstm, 6, 3, "ave"),
    ),
    "rnn_into_lstm_go_backwards": lambda r: feat(
        3,
        simple_rnn(r, 3, 4, return_sequences=True, go_backwards=True, activation="softsign"),
        lstm(r, 4, 3, return_sequences=True, go_backwards=True, activation="softplus"),
    ),
    "vector_per_step_layers": lambda r: feat(
        3,
        gru(r, 3, 5),
        ir.LayerNorm(r.normal(1, 0.2, 5), r.normal(0, 0.3, 5), 1e-3),
        ir.Affine(r.normal(1, 0.2, 5), r.normal(0, 0.3, 5)),
        ir.Activation(5, "leaky_relu"),
        dense(r, 5, 3, "softmax"),
    ),
    "dense_activations": lambda r: feat(
        3,
        dense(r, 3, 4, "hard_sigmoid", name="d0"),
        dense(r, 4, 4, "elu", name="d1"),
        dense(r, 4, 4, "softsign", name="d2"),
        dense(r, 4, 4, "softplus", name="d3"),
        dense(r, 4, 4, "leaky_relu", name="d4"),
        ir.Activation(4, "linear"),
        ir.Activation(4, "relu", name="relu"),
        dense(r, 4, 3, "sigmoid", name="d5"),
    ),
}


REFUSED_LAYOUT = [
    n for n in LAYOUT_CASES if _recurrent_softplus(LAYOUT_CASES[n](np.random.default_rng(0)))
]


@pytest.mark.parametrize("opset", [onnx_export.MIN_OPSET, onnx_export.DEFAULT_OPSET, 21])
@pytest.mark.parametrize("case_name", [n for n in LAYOUT_CASES if n not in REFUSED_LAYOUT])
def test_layout_cases_match_reference(case_name, opset):
    model = LAYOUT_CASES[case_name](np.random.default_rng(len(case_name)))
    proto = to_onnx(model, opset=opset)
    assert _dims(proto.graph.output[0]) == _expected_output_dims(model)
    sess = _session(proto)
    for steps in _steps_for(model, (6, 11)):
        _assert_matches(model, sess, batch=3, steps=steps, seed=steps)


@pytest.mark.parametrize("opset", [onnx_export.MIN_OPSET, 21])
@pytest.mark.parametrize(
    "case_name",
    [
        "affine_layernorm",
        "bidir_lstm_ave_seq",
        "bidir_gru_mul_last",
        "pool_max",
        "conv_same_strided",
    ],
)
def test_more_cases_other_opsets(case_name, opset):
    """Reduce* axes are an attribute before opset 18 and an input from 18 on; below opset 17 a
    LayerNorm is decomposed."""
    model, _, _ = _exported_more(case_name)
    proto = to_onnx(model, opset=opset)
    assert proto.opset_import[0].version == opset
    _assert_matches(model, _session(proto), batch=5, steps=6)


def test_layer_norm_uses_layer_normalization_from_opset_17():
    model, proto, _ = _exported_more("affine_layernorm")
    (node,) = [n for n in proto.graph.node if n.op_type == "LayerNormalization"]
    layer = next(la for la in model.layers if isinstance(la, ir.LayerNorm))
    assert _attrs(node)["epsilon"] == pytest.approx(layer.epsilon)
    assert _attrs(node)["axis"] == -1
    old = to_onnx(model, opset=16)
    assert "LayerNormalization" not in [n.op_type for n in old.graph.node]


CONV_CONFIGS = [(1, 1, 1), (2, 1, 1), (4, 1, 1), (3, 1, 2), (4, 2, 1), (1, 3, 1), (2, 3, 1)]


@pytest.mark.parametrize("kernel_size,strides,dilation", CONV_CONFIGS)
@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_conv1d_padding_strides_dilation(padding, kernel_size, strides, dilation):
    rng = np.random.default_rng(kernel_size * 100 + strides * 10 + dilation)
    layer = conv1d(
        rng,
        3,
        4,
        kernel_size,
        padding=padding,
        strides=strides,
        dilation_rate=dilation,
        activation="tanh",
    )
    model = feat(3, layer)
    proto = to_onnx(model)
    (node,) = [n for n in proto.graph.node if n.op_type == "Conv"]
    attrs = _attrs(node)
    span = dilation * (kernel_size - 1)
    if padding == "same" and strides > 1:
        assert attrs["auto_pad"] == b"SAME_UPPER"  # TensorFlow's split; pads depend on T
    else:
        left = {"valid": 0, "causal": span, "same": span // 2}[padding]
        assert attrs["pads"] == [left, {"valid": 0, "causal": 0, "same": span - span // 2}[padding]]
    assert (attrs["strides"], attrs["dilations"]) == ([strides], [dilation])
    sess = _session(proto)
    for steps in _steps_for(model, (1, 2, 5, 8)):
        _assert_matches(model, sess, batch=2, steps=steps, seed=steps)


def test_conv1d_same_with_strides_and_dilation_is_rejected():
    rng = np.random.default_rng(0)
    model = feat(3, conv1d(rng, 3, 4, 3, padding="same", strides=2, dilation_rate=2))
    with pytest.raises(ValueError, match="dilation"):
        to_onnx(model)


# --- activations whose fused-op formula overflows (issue #10, item 8) ---------------------------


def test_recurrent_softplus_cases_exist():
    """The refusal below is exercised by real cases of the shared model table."""
    assert "gru_acts_elu_softsign" in REFUSED_MORE
    assert "rnn_into_lstm_go_backwards" in REFUSED_LAYOUT


@pytest.mark.parametrize("case_name", REFUSED_MORE + REFUSED_LAYOUT)
def test_recurrent_softplus_is_refused(case_name):
    """onnxruntime's fused GRU/LSTM/RNN compute softplus as log(1 + exp(x)) (inf from x = 88.8);
    the export refuses the model with an UnsupportedError naming layer, activation and why."""
    if case_name in LAYOUT_CASES:
        model = LAYOUT_CASES[case_name](np.random.default_rng(len(case_name)))
    else:
        model = build_more(case_name)
    with pytest.raises(edgegru.UnsupportedError, match=r"softplus.*log\(1 \+ exp\(x\)\)"):
        to_onnx(model)


def _one_unit(kind, activation: str = "tanh", recurrent_activation: str = "sigmoid"):
    """A 1-feature, 1-unit recurrent layer with every input weight 1, recurrent weights and
    biases 0: each gate's pre-activation is the input x itself."""
    g = {ir.GRU: 3, ir.LSTM: 4, ir.SimpleRNN: 1}[kind]
    common = dict(kernel=np.ones((1, g)), recurrent_kernel=np.zeros((1, g)), name="cell")
    if kind is ir.GRU:
        layer = ir.GRU(
            input_bias=np.zeros(g),
            recurrent_bias=np.zeros(g),
            activation=activation,
            recurrent_activation=recurrent_activation,
            **common,
        )
    else:
        layer = kind(
            bias=np.zeros(g),
            activation=activation,
            recurrent_activation=recurrent_activation,
            **common,
        )
    return ir.Model(ir.InputSpec(ir.FEATURES, 1), [layer])


#: Pre-activations where a float32 exp overflows (88.8) and beyond, both signs.
LARGE_X = np.array([-1e4, -1e3, -100, -89, -30, 0, 30, 89, 100, 1e3, 1e4], np.float32)
#: onnxruntime vs the float64 reference at those inputs, relative to max(1, |reference|): the
#: float32 formulas agree to a few ulps where they do not overflow.
LARGE_X_RTOL = 1e-6


def _agree(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    """Elementwise: both NaN, equal (same-signed infinities included), or within rtol."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= rtol * np.maximum(1.0, np.abs(a))
    return (np.isnan(a) & np.isnan(b)) | (a == b) | close


@pytest.mark.parametrize("kind", [ir.GRU, ir.LSTM, ir.SimpleRNN])
@pytest.mark.parametrize("slot", ["activation", "recurrent_activation"])
@pytest.mark.parametrize("act", ir.RNN_ACTIVATIONS)
def test_fused_activations_at_large_inputs(kind, slot, act):
    """Every exported activation in every slot, at |x| up to 1e4: onnxruntime gives the
    reference's numbers (Keras' formulas in float64, edgegru.reference), or the export refuses."""
    if kind is ir.SimpleRNN and slot == "recurrent_activation":
        act_kw = {"recurrent_activation": act}  # unused by SimpleRNN: always exported
    else:
        act_kw = {slot: act}
    model = _one_unit(kind, **act_kw)
    x = LARGE_X.reshape(-1, 1, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        want = reference.forward(model, x)
    if _recurrent_softplus(model):
        with pytest.raises(edgegru.UnsupportedError, match="softplus"):
            to_onnx(model)
        return
    got = _session(to_onnx(model)).run(None, {"features": x})[0]
    bad = ~_agree(want, got, LARGE_X_RTOL)
    assert not bad.any(), (LARGE_X[bad.reshape(len(LARGE_X), -1).any(1)], want, got)


@pytest.mark.parametrize("act", ir.DENSE_ACTIVATIONS)
def test_standalone_activations_at_large_inputs(act):
    """Dense and Activation use standalone ONNX operators (Softplus included), which onnxruntime
    computes without overflow: the same large inputs as above, against the reference."""
    units = 2 if act == "softmax" else 1
    dense = ir.Dense(np.ones((1, units)), np.zeros(units), act, name="d")
    model = ir.Model(ir.InputSpec(ir.FEATURES, 1), [dense, ir.Activation(units, act)])
    x = LARGE_X.reshape(-1, 1, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        want = reference.forward(model, x)
    got = _session(to_onnx(model)).run(None, {"features": x})[0]
    assert not (~_agree(want, got, LARGE_X_RTOL)).any(), (want, got)
