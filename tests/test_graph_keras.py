"""Keras Functional graphs -> ir.Graph (issue #13): the importer (live models and .keras files)
and the float64 reference (`reference.forward_graph`) against Keras itself.

Every model of tests/graph_models.py converts from the live model and from its .keras file to
the same IR (and the same .egru bytes), and the reference matches Keras' predict within 1e-5 on
inputs with padded rows where the model masks. The mask rules of docs/format.md "Graphs" are
measured here directly in Keras (eager calls on masked tensors) too.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import graph_models as gm
import keras
import numpy as np
import pytest

import edgegru
from edgegru import format as fmt
from edgegru import ir, reference
from edgegru.convert import to_ir
from edgegru.errors import UnsupportedError
from edgegru.keras_file import from_keras_file
from edgegru.keras_import import UnsupportedLayerError, from_keras

TOL = 1e-5
L = keras.layers
# Keras warns at build time that a nested model "destroys" a mask; at run time it flows (measured
# by the masked nested model below, docs/keras-semantics.md section 12).
pytestmark = pytest.mark.filterwarnings("ignore:Layer .* was passed an input with a mask")


def _predict(model, xs) -> list:
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _forward(m, xs) -> list:
    if isinstance(m, ir.Graph):
        return reference.forward_graph(m, xs)
    return [reference.forward(m, xs[0])]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """name -> (model, inputs, IR from the live model, IR from its .keras file); built once."""
    cache = {}
    root = tmp_path_factory.mktemp("graphs")

    def get(name):
        if name not in cache:
            model, xs = gm.build(name)
            path = root / f"{name}.keras"
            model.save(path)
            cache[name] = (model, xs, to_ir(model), to_ir(path))
        return cache[name]

    return get


def _layer_fields(layer) -> dict:
    out = {"type": type(layer).__name__}
    for f in dataclasses.fields(layer):
        v = getattr(layer, f.name)
        if isinstance(v, np.ndarray):
            out[f.name] = (v.dtype.str, v.shape, v.tobytes())
        elif dataclasses.is_dataclass(v):
            out[f.name] = _layer_fields(v)
        else:
            out[f.name] = v
    return out


def _signature(m) -> dict:
    """Everything an IR holds, as comparable plain data (layer identity as first-use index)."""
    if isinstance(m, ir.Model):
        return {"model": m.input, "layers": [_layer_fields(x) for x in m.layers], "name": m.name}
    ids = []
    for node in m.nodes:
        if all(node.layer is not x for x in ids):
            ids.append(node.layer)
    return {
        "inputs": m.inputs,
        "outputs": m.outputs,
        "name": m.name,
        "values": {k: dataclasses.astuple(v) for k, v in m.values.items()},
        "nodes": [
            (
                next(i for i, x in enumerate(ids) if x is n.layer),
                n.inputs,
                n.outputs,
                n.masked,
            )
            for n in m.nodes
        ],
        "layers": [_layer_fields(x) for x in ids],
    }


@pytest.mark.parametrize("name", list(gm.MODELS))
def test_reference_matches_keras(built, name):
    model, xs, live, _ = built(name)
    assert isinstance(live, ir.Graph)
    want = _predict(model, xs)
    got = _forward(live, xs)
    assert len(got) == len(want) == len(model.outputs)
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a.shape == b.shape, (k, a.shape, b.shape)
        err = float(np.max(np.abs(a - b)))
        assert err <= TOL, f"output {k} ({live.outputs[k]}): {err}"


@pytest.mark.parametrize("name", list(gm.MODELS))
def test_file_route_gives_the_same_ir_and_bytes(built, name):
    _, _, live, from_file = built(name)
    assert _signature(live) == _signature(from_file)
    assert live.source == from_file.source
    assert fmt.write(live) == fmt.write(from_file)


def test_value_names_follow_keras(built):
    model, _, g, _ = built("seq2seq")
    assert [gi.name for gi in g.inputs] == ["source", "target"]
    assert [gi.kind for gi in g.inputs] == [ir.TOKENS, ir.TOKENS]
    assert [gi.dim for gi in g.inputs] == [gm.ENC_VOCAB, gm.DEC_VOCAB]
    by_layer = {n.layer.name: n for n in g.nodes}
    assert by_layer["encoder"].outputs == ["encoder", "encoder:1"]
    assert by_layer["decoder"].inputs == ["dec_emb", "encoder:1"]
    assert by_layer["decoder"].outputs == ["decoder", "decoder:1"]
    assert g.outputs == ["probs"]
    assert len(model.outputs) == 1


def test_shared_layer_is_one_ir_object(built):
    _, _, g, _ = built("shared_layers")
    twice = [n for n in g.nodes if n.layer.name == "twice"]
    gru = [n for n in g.nodes if n.layer.name == "shared_gru"]
    assert len(twice) == 2 and twice[0].layer is twice[1].layer
    assert len(gru) == 2 and gru[0].layer is gru[1].layer
    assert twice[0].outputs == ["twice@0"] and twice[1].inputs == ["twice@0"]
    assert [n.inputs for n in gru] == [["twice@1"], ["b"]]
    assert g.source["layers"].count("twice") == 1


def test_nested_model_is_inlined(built):
    _, _, g, _ = built("nested")
    inner = [n for n in g.nodes if n.layer.name == "inner_gru"]
    assert [n.outputs for n in inner] == [["block@0/inner_gru"], ["block@1/inner_gru"]]
    assert inner[0].layer is inner[1].layer
    assert inner[1].inputs == ["block@0/inner_gru"]
    seq = [n for n in g.nodes if n.outputs[0].startswith("seq_block/")]
    assert [n.outputs for n in seq] == [["seq_block/seq_gru"], ["seq_block/seq_dense"]]
    assert seq[0].inputs == ["block@0/inner_gru"]


def test_outputs_in_model_outputs_order(built):
    _, _, g, _ = built("rnnoise")
    assert g.outputs == ["gains", "vad"]
    _, _, g, _ = built("bidirectional_lstm_states_masked")
    assert g.outputs == ["bi", "bi:1", "bi:2", "bi:3", "bi:4"]
    assert all(g.values[v].kind == ir.VECTOR for v in g.outputs[1:])
    assert g.values["bi"].masked


def test_decoder_step_models(built):
    """The translation inference pair: the encoder is a chain (ir.Model, as before graphs);
    the decoder step (one id + a state input -> probabilities + the new state) is a graph; a
    greedy loop over the step model's IR equals Keras' loop over the step model."""
    (encoder, enc_in), (step, step_in) = gm.seq2seq_inference(0)
    enc_ir, step_ir = to_ir(encoder), to_ir(step)
    assert isinstance(enc_ir, ir.Model) and isinstance(step_ir, ir.Graph)
    assert [gi.kind for gi in step_ir.inputs] == [ir.TOKENS, ir.VECTOR]
    state = _predict(encoder, enc_in)[0]
    np.testing.assert_allclose(reference.forward(enc_ir, enc_in[0]), state, rtol=0, atol=TOL)
    ids = step_in[0]
    ref_state = state.astype(np.float64)
    for _ in range(4):
        probs, state = _predict(step, [ids, state])
        ref_probs, ref_state = reference.forward_graph(step_ir, [ids, ref_state])
        np.testing.assert_allclose(ref_probs, probs, rtol=0, atol=TOL)
        np.testing.assert_allclose(ref_state, state, rtol=0, atol=TOL)
        ids = probs.argmax(axis=-1).astype(np.int32).reshape(-1, 1)


def test_chains_keep_converting_to_models():
    """A chain gives the ir.Model the chain importer gives, whichever entry point is used."""
    x = keras.Input((None, 3), name="x")
    y = L.Dense(2)(L.GRU(4, return_sequences=True)(L.Masking()(x)))
    model = keras.Model(x, y)
    chain = from_keras(model)
    assert isinstance(chain, ir.Model)
    assert _signature(from_keras(model, graphs=True)) == _signature(chain)
    assert _signature(to_ir(model)) == _signature(chain)
    assert fmt.write(to_ir(model)) == fmt.write(chain)


def test_graph_models_need_graphs_true():
    a, b = keras.Input((None, 3), name="a"), keras.Input((None, 3), name="b")
    model = keras.Model([a, b], L.GRU(4)(L.Concatenate()([a, b])))
    with pytest.raises(UnsupportedError, match="not a single chain"):
        from_keras(model)
    assert isinstance(from_keras(model, graphs=True), ir.Graph)


def test_lstm_cell_state_output_is_a_graph():
    """Model(x, LSTM(return_state)[2]): the chain route refuses the state c, a graph has it."""
    x = keras.Input((gm.T, 3), name="x")
    _, _, c = L.LSTM(4, return_state=True, name="l")(x)
    model = gm.randomize(keras.Model(x, c), 3)
    g = to_ir(model)
    assert isinstance(g, ir.Graph) and g.outputs == ["l:2"]
    xs = np.random.default_rng(1).standard_normal((2, gm.T, 3)).astype(np.float32)
    got = reference.forward_graph(g, [xs])[0]
    np.testing.assert_allclose(got, model.predict(xs, verbose=0), rtol=0, atol=TOL)


def _refusal(build, *words, error=UnsupportedLayerError, tmp_path=None):
    model = build()
    with pytest.raises(error) as live:
        to_ir(model)
    for word in words:
        assert word in str(live.value), f"{word!r} missing from {live.value}"
    if tmp_path is not None:
        path = tmp_path / "m.keras"
        model.save(path)
        with pytest.raises(error) as from_file:
            from_keras_file(path, graphs=True)
        assert str(from_file.value) == str(live.value)


def _two_inputs(make):
    def build():
        a, b = keras.Input((gm.T, 3), name="a"), keras.Input((gm.T, 3), name="b")
        return keras.Model([a, b], make(a, b))

    return build


def _bidirectional_pair(x):
    """Bidirectional(merge_mode=None): a [forward, backward] pair of outputs, added."""
    pair = L.Bidirectional(L.GRU(2, return_sequences=True), merge_mode=None, name="bi")(x)
    return keras.Model(x, L.Add()(pair))


REFUSED = {
    "attention_scores": (
        _two_inputs(lambda a, b: L.Attention(name="att")([a, b], return_attention_scores=True)[0]),
        ["'att'", "Attention", "return_attention_scores=True", "not supported"],
    ),
    "dot": (
        _two_inputs(lambda a, b: L.Dot(axes=2, name="dot")([a, b])),
        ["'dot'", "Dot", "not supported"],
    ),
    "dot_attention_scores_used_twice": (
        _two_inputs(
            lambda a, b: (lambda s: [L.Dot(axes=[2, 1])([L.Activation("softmax")(s), b]), s])(
                L.Dot(axes=[2, 2], name="scores")([a, b])
            )
        ),
        ["'scores'", "Dot", "not supported", "scores and weights feeding nothing else"],
    ),
    "dot_attention_normalized": (
        _two_inputs(
            lambda a, b: L.Dot(axes=[2, 1])(
                [L.Softmax()(L.Dot(axes=[2, 2], normalize=True, name="cos")([a, b])), b]
            )
        ),
        ["'cos'", "Dot", "not supported"],
    ),
    "bidirectional_merge_mode_none": (
        lambda: _bidirectional_pair(keras.Input((None, 3))),
        ["'bi'", "Bidirectional", "merge_mode=None", "not supported", "'concat'"],
    ),
    "reshape_dynamic_steps": (
        lambda: (lambda x: keras.Model(x, L.Reshape((-1,), name="rs")(x)))(keras.Input((None, 3))),
        ["'rs'", "Reshape", "fixed number of steps", "dynamic"],
    ),
    "permute_dynamic_steps": (
        lambda: (lambda x: keras.Model(x, L.Permute((2, 1), name="pm")(x)))(keras.Input((None, 3))),
        ["'pm'", "Permute", "dynamic"],
    ),
    "keras_ops": (
        _two_inputs(lambda a, b: L.GRU(2)(keras.ops.add(a, b))),
        ["Add", "keras.ops", "not supported"],
    ),
    "concat_batch_axis": (
        _two_inputs(lambda a, b: L.Concatenate(axis=0, name="cat0")([a, b])),
        ["'cat0'", "Concatenate", "axis=0", "supported"],
    ),
    "merge_sequence_and_vector": (
        _two_inputs(lambda a, b: L.Add(name="mix")([a, L.GRU(3)(b)])),
        ["'mix'", "mix sequences and vectors"],
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refusals_name_the_layer(case, tmp_path):
    build, words = REFUSED[case]
    _refusal(build, *words, error=UnsupportedError, tmp_path=tmp_path)


def test_refuses_an_input_that_is_an_output():
    a, b = keras.Input((gm.T, 3), name="a"), keras.Input((gm.T, 3), name="b")
    model = keras.Model([a, b], [L.GRU(2)(L.Add()([a, b])), a])
    with pytest.raises(UnsupportedError, match="'a' is also an output"):
        to_ir(model)


# ---------------------------------------------------------------------------------------------
# Mask rules, measured in Keras: eager calls on tensors that carry a mask


def _masked(x: np.ndarray):
    """x as a tensor with Keras' mask of Masking(0.0) attached (zero frames masked)."""
    return L.Masking()(keras.ops.convert_to_tensor(x))


def _mask_of(tensor):
    mask = getattr(tensor, "_keras_mask", None)
    return None if mask is None else np.asarray(keras.ops.convert_to_numpy(mask))


def _frames(seed, steps=5, pad=()):
    x = np.random.default_rng(seed).standard_normal((3, steps, 2)).astype(np.float32)
    for row, sl in pad:
        x[row, sl] = 0
    return x


PADS = [((0, slice(3, None)), (2, slice(None))), ((0, slice(0, 1)), (1, slice(2, 4)))]


@pytest.mark.parametrize("kind", gm.MERGES)
@pytest.mark.parametrize("masking", gm.MASKINGS)
def test_merge_mask_rule_measured(kind, masking):
    """Keras' merge layer on (un)masked tensors: its output and its mask equal the reference's
    _masked_merge (docs/format.md "Mask rules": add / subtract / average combine as they are;
    multiply counts masked steps as 1 and zeroes steps no input is valid at; maximum / minimum
    fold with masked values replaced; a mask only when every input carries one, their OR)."""
    xs = [_frames(k, pad=PADS[k]) for k in range(2)]
    masked = [masking == "all" or (masking == "first" and k == 0) for k in range(2)]
    tensors = [
        _masked(x) if m else keras.ops.convert_to_tensor(x) for x, m in zip(xs, masked, strict=True)
    ]
    out = getattr(L, kind)()(tensors)
    items = [
        (x.astype(np.float64), (x != 0).any(-1) if m else None)
        for x, m in zip(xs, masked, strict=True)
    ]
    want, want_mask = reference._masked_merge(gm.MERGES_IR[kind], items)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), want, rtol=0, atol=1e-6)
    got_mask = _mask_of(out)
    assert (got_mask is None) == (want_mask is None) == (masking != "all")
    if want_mask is not None:
        np.testing.assert_array_equal(got_mask, want_mask)
    g = ir.Graph(
        [ir.GraphInput(f"in{k}", ir.FEATURES, 2) for k in range(2)],
        [
            ir.Node(ir.Masking(2), ["in0"], ["m0"]),
            ir.Node(ir.Masking(2), ["in1"], ["m1"]),
            ir.Node(
                ir.Merge(gm.MERGES_IR[kind], 2),
                ["m0" if masked[0] else "in0", "m1" if masked[1] else "in1"],
                ["y"],
            ),
        ],
        ["y"],
    )
    assert g.values["y"].masked == (want_mask is not None)


@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("masking", gm.MASKINGS)
def test_concatenate_mask_rule_measured(axis, masking):
    """Keras' Concatenate: no mask when no input has one; along features the OR of the masks
    (an unmasked input counts as valid everywhere); along time the masks concatenated."""
    xs = [_frames(k, steps=5 if axis == -1 else 4 + k, pad=PADS[k]) for k in range(2)]
    masked = [masking == "all" or (masking == "first" and k == 0) for k in range(2)]
    tensors = [
        _masked(x) if m else keras.ops.convert_to_tensor(x) for x, m in zip(xs, masked, strict=True)
    ]
    out = L.Concatenate(axis=axis)(tensors)
    items = [
        (x.astype(np.float64), (x != 0).any(-1) if m else None)
        for x, m in zip(xs, masked, strict=True)
    ]
    want, want_mask = reference._concatenate("features" if axis == -1 else "time", items)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), want.astype(np.float32))
    got_mask = _mask_of(out)
    assert (got_mask is None) == (want_mask is None) == (masking == "none")
    if want_mask is not None:
        np.testing.assert_array_equal(got_mask, want_mask)


def test_recurrent_with_initial_state_ignores_the_mask_but_passes_it_on():
    """Keras 3 hands a layer `mask=` only when its call has one tensor argument: a GRU called
    with initial_state= runs over every step (masked ones too), yet its sequence output carries
    the input's mask, which the next GRU uses (so ir.Graph: that node's masked is False)."""
    x = _frames(4, steps=5, pad=PADS[0])
    h0 = np.random.default_rng(5).standard_normal((3, 3)).astype(np.float32)
    gru = L.GRU(3, return_sequences=True)
    seq = _masked(x)
    with_state = gru(seq, initial_state=keras.ops.convert_to_tensor(h0))
    unmasked = gru(keras.ops.convert_to_tensor(x), initial_state=keras.ops.convert_to_tensor(h0))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(with_state), keras.ops.convert_to_numpy(unmasked), atol=1e-6
    )
    np.testing.assert_array_equal(_mask_of(with_state), (x != 0).any(-1))
    g = ir.Graph(
        [ir.GraphInput("x", ir.FEATURES, 2), ir.GraphInput("h0", ir.VECTOR, 3)],
        [
            ir.Node(ir.Masking(2), ["x"], ["m"]),
            ir.Node(_ir_gru(gru), ["m", "h0"], ["g"]),
        ],
        ["g"],
    )
    assert not g.nodes[1].masked and g.values["g"].masked


def _ir_gru(layer):
    k, r, b = (np.asarray(w.numpy()) for w in layer.weights)
    return ir.GRU(k, r, b[0], b[1], return_sequences=layer.return_sequences)


def test_repeat_vector_and_state_outputs_carry_no_mask(built):
    _, _, g, _ = built("gru_states_masked")
    assert g.values["gru:1"].masked is False and g.values["gru"].masked is False
    _, _, g, _ = built("lstm_states_masked")
    assert g.values["lstm"].masked and not g.values["lstm:1"].masked
    assert not next(n for n in g.nodes if n.layer.name == "lstm").masked  # initial states


def test_lambda_is_refused():
    a, b = keras.Input((gm.T, 3), name="a"), keras.Input((gm.T, 3), name="b")
    y = L.Lambda(lambda t: t * 2.0, name="double")(L.Add()([a, b]))
    with pytest.raises(UnsupportedLayerError, match="'double' \\(Lambda\\) is not supported"):
        to_ir(keras.Model([a, b], y))


def test_explicit_mask_with_initial_state_is_refused():
    """gru(x, initial_state=h, mask=m) makes Keras use the mask; the graph rules say a
    recurrent node with initial states reads none, so the importer refuses it."""
    x, h = keras.Input((gm.T, 3), name="x"), keras.Input((3,), name="h")
    m = L.Masking()(x)
    y = L.GRU(3, name="g")(m, initial_state=h, mask=m._keras_mask)
    with pytest.raises(UnsupportedLayerError, match="'g' \\(GRU\\): Keras passes it a mask"):
        to_ir(keras.Model([x, h], y))


def test_integer_input_must_feed_embeddings():
    ids = keras.Input((gm.T,), dtype="int32", name="ids")
    v = keras.Input((3,), name="v")
    e = L.GRU(3)(L.Embedding(5, 3, name="emb")(ids))
    model = keras.Model([ids, v], L.Concatenate()([e, L.Dense(3)(ids)]))
    with pytest.raises(UnsupportedLayerError, match=r"'ids'.*Embedding"):
        to_ir(model)


def test_identity_layers_vanish_from_the_graph():
    x = keras.Input((gm.T, 3), name="x")
    g = L.GRU(3, return_sequences=True, name="g")(x)
    y = L.Add(name="add")([L.Dropout(0.5, name="drop")(g), x])
    model = gm.randomize(keras.Model(x, [L.GRU(2, name="head")(y), y]), 4)
    graph = to_ir(model)
    assert [n.layer.name for n in graph.nodes] == ["g", "add", "head"]
    assert graph.nodes[1].inputs == ["g", "x"] and graph.outputs == ["head", "add"]
    xs = np.random.default_rng(2).standard_normal((3, gm.T, 3)).astype(np.float32)
    for got, want in zip(reference.forward_graph(graph, [xs]), _predict(model, [xs]), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_graph_files_convert_without_keras(built, tmp_path):
    """The .keras route of a graph imports neither TensorFlow nor Keras, and edgegru.convert
    writes the bytes it writes from the live model."""
    names = ["seq2seq", "rnnoise", "nested_masked"]
    paths, want = {}, {}
    for name in names:
        model = built(name)[0]
        paths[name] = str(tmp_path / f"{name}.keras")
        model.save(paths[name])
        edgegru.convert(model, tmp_path / f"{name}.live.egru")
        want[name] = (tmp_path / f"{name}.live.egru").read_bytes()
    code = (
        "import sys\nsys.modules['tensorflow'] = None\nsys.modules['keras'] = None\n"
        "import edgegru\n"
        f"for path in {list(paths.values())!r}:\n"
        "    edgegru.convert(path, path + '.egru')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in names:
        got = Path(paths[name] + ".egru").read_bytes()
        assert got == want[name], name
        assert isinstance(fmt.read(got)[0], ir.Graph)
