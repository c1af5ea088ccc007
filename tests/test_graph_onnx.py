"""ONNX export of graph models (ir.Graph) against Keras: onnxruntime within 1e-5 of Keras'
predict on the issue's models (residual stack, two branches, token + feature inputs, merges with
masks, a shared layer, a RepeatVector autoencoder, encoder-decoders with initial_state and
return_state, an RNNoise-style net with two outputs), on inputs padded at the end, the front, in
the middle, not at all and entirely where the model has masks.

The IR graphs are built here from the Keras layers' weights (`_ir`), node for node as the Keras
model is wired, so these tests pin the exporter against Keras itself.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from ir_models import bidir, conv1d, dense, gru, lstm, simple_rnn

from edgegru import format as fmt
from edgegru import ir, reference
from edgegru.errors import FormatError, InputError, UnsupportedError
from edgegru.onnx_export import save_onnx, to_onnx
from edgegru.validate import (
    DEFAULT_SEQ_LEN,
    FP32_TOLERANCE,
    INT8_TOLERANCE,
    PAIRS,
    GraphValidationReport,
    check_graph_inputs,
    generate_graph_inputs,
    read_inputs_npz,
    validate,
)

keras = pytest.importorskip("keras")
L = keras.layers

BATCH = 5  # one row per padding pattern
STEPS = 7
VOCAB = 11


# --- Keras layer -> IR layer (weights copied) ---------------------------------------------------


def _cell(layer):
    cfg = layer.get_config()
    w = layer.get_weights()
    common = {
        "return_sequences": cfg["return_sequences"],
        "go_backwards": cfg["go_backwards"],
        "activation": cfg["activation"],
        "name": layer.name,
    }
    if isinstance(layer, L.GRU):
        kernel, rec, bias = w
        ib, rb = (bias[0], bias[1]) if cfg["reset_after"] else (bias, np.zeros_like(bias))
        return ir.GRU(
            kernel,
            rec,
            ib,
            rb,
            reset_after=cfg["reset_after"],
            recurrent_activation=cfg["recurrent_activation"],
            **common,
        )
    if isinstance(layer, L.LSTM):
        return ir.LSTM(*w, recurrent_activation=cfg["recurrent_activation"], **common)
    return ir.SimpleRNN(*w, **common)


def _ir(layer):
    if isinstance(layer, L.Bidirectional):
        merge = layer.get_config()["merge_mode"]
        return ir.Bidirectional(_cell(layer.forward_layer), _cell(layer.backward_layer), merge)
    if isinstance(layer, (L.GRU, L.LSTM, L.SimpleRNN)):
        return _cell(layer)
    if isinstance(layer, L.TimeDistributed):
        layer = layer.layer
    if isinstance(layer, L.Dense):
        k, b = layer.get_weights()
        return ir.Dense(k, b, layer.get_config()["activation"], name=layer.name)
    if isinstance(layer, L.Embedding):
        (table,) = layer.get_weights()
        return ir.Embedding(table, name=layer.name, mask_zero=layer.mask_zero)
    if isinstance(layer, L.Masking):
        return ir.Masking(int(layer.input.shape[-1]), layer.mask_value, name=layer.name)
    raise TypeError(type(layer).__name__)


def _randomize_biases(layer):
    """Keras initializes biases to zero; random ones (seeded by the layer's name) pin the bias
    layouts. Kernels (2-D, but a GRU's (2, 3H) bias) keep Keras' initialization."""
    rng = np.random.default_rng(sum(map(ord, layer.name)))
    ws = layer.get_weights()
    if ws:
        layer.set_weights(
            [w if w.ndim == 2 and w.shape[0] != 2 else rng.normal(0, 0.3, w.shape) for w in ws]
        )


def _node(layer, inputs, outputs, cache):
    """A Node of the Keras layer (one IR layer per Keras layer object: shared layers share it)."""
    if id(layer) not in cache:
        if not isinstance(layer, L.Embedding):
            _randomize_biases(layer)
        cache[id(layer)] = _ir(layer)
    return ir.Node(cache[id(layer)], inputs, outputs)


# --- inputs -------------------------------------------------------------------------------------


def _pad(x, pad_value):
    """Rows padded at the end, at the front, in the middle, not at all, entirely."""
    x = x.copy()
    t = x.shape[1]
    pads = [slice(t // 2, None), slice(0, t // 3), slice(t // 3, t // 2 + 1), slice(0, 0)]
    pads.append(slice(0, None))
    for row in range(x.shape[0]):
        x[row, pads[row % len(pads)]] = pad_value
    return x


def _tokens(seed, steps=STEPS, masked=True):
    x = np.random.default_rng(seed).integers(1, VOCAB, (BATCH, steps)).astype(np.int64)
    return _pad(x, 0) if masked else x


def _features(seed, dim, steps=STEPS, masked=True):
    x = np.random.default_rng(seed).normal(0, 1, (BATCH, steps, dim)).astype(np.float32)
    return _pad(x, 0.0) if masked else x


def _vector(seed, dim):
    return np.random.default_rng(seed).normal(0, 0.5, (BATCH, dim)).astype(np.float32)


def _run(proto, feeds: dict) -> list:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    if any(n.op_type == "DequantizeLinear" for n in proto.graph.node):
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


# --- the models -----------------------------------------------------------------------------------


def _residual():
    inp = keras.Input((STEPS, 4), name="frames")
    m = L.Masking(0.0, name="masking")
    g1 = L.GRU(4, return_sequences=True, name="gru_1")
    g2 = L.LSTM(4, return_sequences=True, name="lstm_2")
    last = L.GRU(3, name="gru_last")
    x = m(inp)
    a1 = L.Add(name="add_1")([x, g1(x)])
    a2 = L.Add(name="add_2")([a1, g2(a1)])
    out = last(a2)
    model = keras.Model(inp, out)
    c = {}
    graph = ir.Graph(
        [ir.GraphInput("frames", ir.FEATURES, 4, STEPS)],
        [
            _node(m, ["frames"], ["x"], c),
            _node(g1, ["x"], ["g1"], c),
            ir.Node(ir.Merge("add", 4, "add_1"), ["x", "g1"], ["a1"]),
            _node(g2, ["a1"], ["g2"], c),
            ir.Node(ir.Merge("add", 4, "add_2"), ["a1", "g2"], ["a2"]),
            _node(last, ["a2"], ["out"], c),
        ],
        ["out"],
    )
    return model, graph, lambda s: {"frames": _features(s, 4)}


def _two_branch():
    inp = keras.Input((STEPS,), name="tokens", dtype="int32")
    emb = L.Embedding(VOCAB, 5, mask_zero=True, name="emb")
    a = L.GRU(5, return_sequences=True, name="branch_gru")
    b = L.LSTM(3, return_sequences=True, go_backwards=True, name="branch_lstm")
    bi = L.Bidirectional(L.SimpleRNN(2, return_sequences=True), merge_mode="sum", name="bi")
    d = L.Dense(2, activation="softmax", name="head")
    x = emb(inp)
    cat = L.Concatenate(name="cat")([a(x), b(x), bi(x)])
    out = L.GRU(3, name="top")(cat)
    model = keras.Model(inp, [d(cat), out])
    c = {}
    top = model.get_layer("top")
    graph = ir.Graph(
        [ir.GraphInput("tokens", ir.TOKENS, VOCAB, STEPS)],
        [
            _node(emb, ["tokens"], ["x"], c),
            _node(a, ["x"], ["a"], c),
            _node(b, ["x"], ["b"], c),
            _node(bi, ["x"], ["bi"], c),
            ir.Node(ir.Concatenate("features", "cat"), ["a", "b", "bi"], ["cat"]),
            _node(d, ["cat"], ["probs"], c),
            _node(top, ["cat"], ["top"], c),
        ],
        ["probs", "top"],
    )
    return model, graph, lambda s: {"tokens": _tokens(s)}


def _tokens_and_features():
    tok = keras.Input((STEPS,), name="tokens", dtype="int32")
    feat = keras.Input((STEPS, 3), name="features")
    emb = L.Embedding(VOCAB, 4, mask_zero=True, name="emb")
    g = L.GRU(4, name="tok_gru")
    lstm = L.LSTM(5, name="feat_lstm")
    d = L.Dense(2, name="head")
    cat = L.Concatenate(name="cat")([g(emb(tok)), lstm(feat)])
    model = keras.Model([tok, feat], d(cat))
    c = {}
    graph = ir.Graph(
        [ir.GraphInput("tokens", ir.TOKENS, VOCAB), ir.GraphInput("features", ir.FEATURES, 3)],
        [
            _node(emb, ["tokens"], ["e"], c),
            _node(g, ["e"], ["g"], c),
            _node(lstm, ["features"], ["l"], c),
            ir.Node(ir.Concatenate("features", "cat"), ["g", "l"], ["cat"]),
            _node(d, ["cat"], ["out"], c),
        ],
        ["out"],
    )
    return (
        model,
        graph,
        lambda s: {
            "tokens": _tokens(s),
            "features": _features(s + 1, 3, masked=False),
        },
    )


#: Merges of masked (a: the token mask, b: the feature mask) and unmasked (c) sequences, each read
#: by a GRU that uses the merge's mask: docs/format.md "Mask rules".
MERGES = {
    "add": (L.Add, ["a", "b", "c"]),
    "add_masked": (L.Add, ["a", "b"]),
    "subtract": (L.Subtract, ["b", "a"]),
    "multiply": (L.Multiply, ["a", "b"]),
    "multiply_mixed": (L.Multiply, ["c", "a"]),
    "average": (L.Average, ["a", "b", "a"]),
    "maximum": (L.Maximum, ["a", "b"]),
    "maximum_mixed": (L.Maximum, ["a", "c", "b"]),
    "minimum": (L.Minimum, ["b", "a"]),
    "minimum_mixed": (L.Minimum, ["c", "a"]),
    "concat_time": (lambda name: L.Concatenate(axis=1, name=name), ["a", "c", "b"]),
    "concat_features": (L.Concatenate, ["a", "b"]),
    "concat_features_mixed": (L.Concatenate, ["c", "a"]),
}


def _merges():
    tok = keras.Input((STEPS,), name="tokens", dtype="int32")
    feat = keras.Input((STEPS, 3), name="features")
    other = keras.Input((STEPS, 3), name="unmasked")
    emb = L.Embedding(VOCAB, 3, mask_zero=True, name="emb")
    mask = L.Masking(0.0, name="masking")
    ga = L.GRU(4, return_sequences=True, name="ga")
    gb = L.GRU(4, return_sequences=True, name="gb")
    dc = L.Dense(4, name="dc")
    t = {"a": ga(emb(tok)), "b": gb(mask(feat)), "c": dc(other)}
    c = {}
    nodes = [
        _node(emb, ["tokens"], ["e"], c),
        _node(ga, ["e"], ["a"], c),
        _node(mask, ["features"], ["m"], c),
        _node(gb, ["m"], ["b"], c),
        _node(dc, ["unmasked"], ["c"], c),
    ]
    outs, names = [], []
    for name, (make, ins) in MERGES.items():
        merged = make(name=name)([t[v] for v in ins])
        reader = L.GRU(2, return_sequences=True, name=f"{name}_gru")
        outs.append(reader(merged))
        if name.startswith("concat"):
            layer = ir.Concatenate("time" if name == "concat_time" else "features", name)
        else:
            layer = ir.Merge(name.split("_")[0], 4, name)
        nodes.append(ir.Node(layer, ins, [name]))
        nodes.append(_node(reader, [name], [f"{name}_out"], c))
        names.append(f"{name}_out")
    model = keras.Model([tok, feat, other], outs)
    graph = ir.Graph(
        [
            ir.GraphInput("tokens", ir.TOKENS, VOCAB),
            ir.GraphInput("features", ir.FEATURES, 3),
            ir.GraphInput("unmasked", ir.FEATURES, 3),
        ],
        nodes,
        names,
    )
    return (
        model,
        graph,
        lambda s: {
            "tokens": _tokens(s),
            "features": _pad(_features(s + 1, 3, masked=False)[::-1].copy(), 0.0),
            "unmasked": _features(s + 2, 3, masked=False),
        },
    )


def _shared():
    left = keras.Input((STEPS, 3), name="left")
    right = keras.Input((STEPS, 3), name="right")
    shared = L.GRU(4, name="shared_gru")
    d = L.Dense(1, activation="sigmoid", name="head")
    diff = L.Subtract(name="diff")([shared(left), shared(right)])
    model = keras.Model([left, right], d(diff))
    c = {}
    graph = ir.Graph(
        [ir.GraphInput("left", ir.FEATURES, 3), ir.GraphInput("right", ir.FEATURES, 3)],
        [
            _node(shared, ["left"], ["hl"], c),
            _node(shared, ["right"], ["hr"], c),
            ir.Node(ir.Merge("subtract", 4, "diff"), ["hl", "hr"], ["diff"]),
            _node(d, ["diff"], ["out"], c),
        ],
        ["out"],
    )
    return (
        model,
        graph,
        lambda s: {
            "left": _features(s, 3, masked=False),
            "right": _features(s + 1, 3, masked=False),
        },
    )


def _autoencoder():
    inp = keras.Input((STEPS, 3), name="series")
    enc = L.GRU(5, name="encoder")
    dec = L.GRU(5, return_sequences=True, name="decoder")
    td = L.TimeDistributed(L.Dense(3), name="reconstruct")
    out = td(dec(L.RepeatVector(STEPS, name="repeat")(enc(inp))))
    model = keras.Model(inp, out)
    c = {}
    graph = ir.Graph(
        [ir.GraphInput("series", ir.FEATURES, 3, STEPS)],
        [
            _node(enc, ["series"], ["code"], c),
            ir.Node(ir.RepeatVector(STEPS, 5, "repeat"), ["code"], ["rep"]),
            _node(dec, ["rep"], ["dec"], c),
            _node(td, ["dec"], ["out"], c),
        ],
        ["out"],
    )
    return model, graph, lambda s: {"series": _features(s, 3, masked=False)}


def _encoder_decoder_gru():
    """Training model: an encoder GRU's state is the decoder GRU's initial_state; outputs the
    decoder's probabilities and its final state (return_state)."""
    enc_in = keras.Input((STEPS, 3), name="source")
    dec_in = keras.Input((STEPS - 2,), name="target", dtype="int32")
    mask = L.Masking(0.0, name="masking")
    enc = L.GRU(6, return_state=True, name="encoder")
    emb = L.Embedding(VOCAB, 4, mask_zero=True, name="emb")
    dec = L.GRU(6, return_sequences=True, return_state=True, name="decoder")
    d = L.Dense(VOCAB, activation="softmax", name="probs")
    _, h = enc(mask(enc_in))
    seq, dec_h = dec(emb(dec_in), initial_state=h)
    model = keras.Model([enc_in, dec_in], [d(seq), dec_h])
    c = {}
    graph = ir.Graph(
        [
            ir.GraphInput("source", ir.FEATURES, 3, STEPS),
            ir.GraphInput("target", ir.TOKENS, VOCAB, STEPS - 2),
        ],
        [
            _node(mask, ["source"], ["m"], c),
            _node(enc, ["m"], ["enc_out", "enc_h"], c),
            _node(emb, ["target"], ["e"], c),
            _node(dec, ["e", "enc_h"], ["seq", "dec_h"], c),
            _node(d, ["seq"], ["probs"], c),
        ],
        ["probs", "dec_h"],
    )
    return (
        model,
        graph,
        lambda s: {
            "source": _features(s, 3),
            "target": _tokens(s + 1, STEPS - 2),
        },
    )


def _decoder_step():
    """Inference decoder step: a token and a state in, probabilities and the new state out."""
    tok = keras.Input((1,), name="token", dtype="int32")
    state = keras.Input((6,), name="state")
    emb = L.Embedding(VOCAB, 4, name="emb")
    dec = L.GRU(6, return_state=True, name="decoder")
    d = L.Dense(VOCAB, activation="softmax", name="probs")
    out, h = dec(emb(tok), initial_state=state)
    model = keras.Model([tok, state], [d(out), h])
    c = {}
    graph = ir.Graph(
        [ir.GraphInput("token", ir.TOKENS, VOCAB, 1), ir.GraphInput("state", ir.VECTOR, 6)],
        [
            _node(emb, ["token"], ["e"], c),
            _node(dec, ["e", "state"], ["out", "h"], c),
            _node(d, ["out"], ["probs"], c),
        ],
        ["probs", "h"],
    )
    return (
        model,
        graph,
        lambda s: {
            "token": _tokens(s, 1, masked=False),
            "state": _vector(s + 1, 6),
        },
    )


def _encoder_decoder_bilstm():
    """A masked Bidirectional LSTM encoder returning its four states, concatenated into the
    initial (h, c) of a masked decoder LSTM; outputs the decoder's sequence and every state."""
    enc_in = keras.Input((STEPS,), name="source", dtype="int32")
    dec_in = keras.Input((STEPS, 2), name="target")
    emb = L.Embedding(VOCAB, 4, mask_zero=True, name="emb")
    enc = L.Bidirectional(L.LSTM(3, return_state=True), name="encoder")
    mask = L.Masking(0.0, name="masking")
    dec = L.LSTM(6, return_sequences=True, return_state=True, name="decoder")
    _, fh, fc, bh, bc = enc(emb(enc_in))
    h = L.Concatenate(name="h")([fh, bh])
    c_ = L.Concatenate(name="c")([fc, bc])
    seq, dh, dc = dec(mask(dec_in), initial_state=[h, c_])
    model = keras.Model([enc_in, dec_in], [seq, dh, dc, bh])
    c = {}
    graph = ir.Graph(
        [ir.GraphInput("source", ir.TOKENS, VOCAB), ir.GraphInput("target", ir.FEATURES, 2)],
        [
            _node(emb, ["source"], ["e"], c),
            _node(enc, ["e"], ["enc", "fh", "fc", "bh", "bc"], c),
            ir.Node(ir.Concatenate("features", "h"), ["fh", "bh"], ["h"]),
            ir.Node(ir.Concatenate("features", "c"), ["fc", "bc"], ["c"]),
            _node(mask, ["target"], ["m"], c),
            _node(dec, ["m", "h", "c"], ["seq", "dh", "dc"], c),
        ],
        ["seq", "dh", "dc", "bh"],
    )
    return (
        model,
        graph,
        lambda s: {
            "source": _tokens(s),
            "target": _pad(_features(s + 1, 2, masked=False)[:, ::-1].copy(), 0.0)[::-1].copy(),
        },
    )


def _rnnoise():
    """RNNoise-style: three GRUs whose outputs are concatenated with the input features and each
    other; two outputs (gains per band and a voice-activity probability)."""
    inp = keras.Input((STEPS, 6), name="features")
    dense_in = L.Dense(8, activation="tanh", name="input_dense")
    vad_gru = L.GRU(6, return_sequences=True, name="vad_gru")
    vad_out = L.Dense(1, activation="sigmoid", name="vad")
    noise_gru = L.GRU(8, return_sequences=True, name="noise_gru")
    denoise_gru = L.GRU(10, return_sequences=True, name="denoise_gru")
    gains = L.Dense(6, activation="sigmoid", name="gains")
    x = dense_in(inp)
    v = vad_gru(x)
    n = noise_gru(L.Concatenate(name="noise_input")([x, v, inp]))
    dn = denoise_gru(L.Concatenate(name="denoise_input")([v, n, inp]))
    model = keras.Model(inp, [gains(dn), vad_out(v)])
    c = {}
    graph = ir.Graph(
        [ir.GraphInput("features", ir.FEATURES, 6)],
        [
            _node(dense_in, ["features"], ["x"], c),
            _node(vad_gru, ["x"], ["v"], c),
            _node(vad_out, ["v"], ["vad"], c),
            ir.Node(ir.Concatenate("features", "noise_input"), ["x", "v", "features"], ["ni"]),
            _node(noise_gru, ["ni"], ["n"], c),
            ir.Node(ir.Concatenate("features", "denoise_input"), ["v", "n", "features"], ["di"]),
            _node(denoise_gru, ["di"], ["dn"], c),
            _node(gains, ["dn"], ["gains"], c),
        ],
        ["gains", "vad"],
    )
    return model, graph, lambda s: {"features": _features(s, 6, masked=False)}


BUILDERS = {
    "residual": _residual,
    "two_branch": _two_branch,
    "tokens_and_features": _tokens_and_features,
    "merges": _merges,
    "shared": _shared,
    "autoencoder": _autoencoder,
    "encoder_decoder_gru": _encoder_decoder_gru,
    "decoder_step": _decoder_step,
    "encoder_decoder_bilstm": _encoder_decoder_bilstm,
    "rnnoise": _rnnoise,
}


@pytest.fixture(scope="module")
def models():
    built = {}
    for k, (name, make) in enumerate(BUILDERS.items()):
        keras.utils.set_random_seed(k)
        built[name] = make()
    return built


def _keras_outputs(model, feeds: dict) -> list:
    xs = [feeds[i.name] for i in model.inputs]
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_graph_export_matches_keras(models, name):
    model, graph, make_inputs = models[name]
    proto = to_onnx(graph)
    assert [i.name for i in proto.graph.input] == [gi.name for gi in graph.inputs]
    assert [o.name for o in proto.graph.output] == list(graph.outputs)
    assert not any(n.op_type in ("Loop", "Scan") for n in proto.graph.node)
    for seed in (0, 1):
        feeds = make_inputs(seed)
        want = _keras_outputs(model, feeds)
        got = _run(proto, feeds)
        assert len(got) == len(want) == len(graph.outputs)
        for out_name, a, b in zip(graph.outputs, got, want, strict=True):
            assert a.shape == b.shape, (out_name, a.shape, b.shape)
            err = float(np.max(np.abs(a - b)))
            assert err <= FP32_TOLERANCE, (name, out_name, seed, err)


# --- int8, shared weights, refusals ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["rnnoise", "encoder_decoder_bilstm", "shared"])
def test_graph_export_int8(models, name):
    """quantize="int8": the weights behind DequantizeLinear, within the int8 bound of Keras."""
    model, graph, make_inputs = models[name]
    proto = to_onnx(graph, quantize="int8")
    assert any(n.op_type == "DequantizeLinear" for n in proto.graph.node)
    feeds = make_inputs(0)
    for a, b in zip(_run(proto, feeds), _keras_outputs(model, feeds), strict=True):
        err = float(np.max(np.abs(a - b)))
        assert 0 < err <= INT8_TOLERANCE, (name, err)


def test_shared_layer_stores_its_weights_once(models):
    _, graph, _ = models["shared"]
    proto = to_onnx(graph)
    grus = [n for n in proto.graph.node if n.op_type == "GRU"]
    assert len(grus) == 2
    assert grus[0].input[1:4] == grus[1].input[1:4]  # the same W, R, B initializers
    names = [t.name for t in proto.graph.initializer]
    assert sorted(n for n in names if n.startswith("shared_gru")) == [
        "shared_gru/B",
        "shared_gru/R",
        "shared_gru/W",
    ]  # once, under the first application's name
    q = to_onnx(graph, quantize="int8")
    deq = [n for n in q.graph.node if n.op_type == "DequantizeLinear"]
    assert len(deq) == len({n.output[0] for n in deq}) == 3  # W, R and the Dense kernel


def test_int16x8_graph_refused(models):
    _, graph, _ = models["residual"]
    with pytest.raises(UnsupportedError, match="graph"):
        to_onnx(graph, quantize="int16x8")


def test_graph_chain_export_unchanged():
    """An ir.Model still exports as a chain (input `features`, output `output`)."""
    r = np.random.default_rng(0)
    m = ir.Model(ir.InputSpec(ir.FEATURES, 3), [gru(r, 3, 4)])
    proto = to_onnx(m)
    assert [i.name for i in proto.graph.input] == ["features"]
    assert [o.name for o in proto.graph.output] == ["output"]


# --- hand-built graphs vs the float64 reference -------------------------------------------------


def _reference_cases():
    r = np.random.default_rng(3)
    bi = bidir(r, gru, 3, 4, "concat", return_sequences=True)
    back = gru(r, 4, 4, return_sequences=True, go_backwards=True, name="back")
    rnn = simple_rnn(r, 3, 5, name="rnn")
    lstm_b = bidir(r, lstm, 3, 2, "ave")
    pool = ir.GlobalPool(8, "average", name="pool")
    cases = {
        # a bidirectional GRU with initial states (forward, backward) and both final states out
        "bidir_states": ir.Graph(
            [
                ir.GraphInput("x", ir.FEATURES, 3),
                ir.GraphInput("hf", ir.VECTOR, 4),
                ir.GraphInput("hb", ir.VECTOR, 4),
            ],
            [
                ir.Node(ir.Masking(3, name="masking"), ["x"], ["m"]),
                ir.Node(bi, ["m", "hf", "hb"], ["y", "sf", "sb"]),
                ir.Node(pool, ["y"], ["p"]),
            ],
            ["y", "sb", "sf", "p"],
        ),
        # go_backwards with an initial state and return_state; a SimpleRNN's state as it
        "backwards_states": ir.Graph(
            [ir.GraphInput("x", ir.FEATURES, 3)],
            [
                ir.Node(rnn, ["x"], ["v"]),
                ir.Node(ir.RepeatVector(4, 5, name="rep"), ["v"], ["rv"]),
                ir.Node(dense(r, 5, 4, "tanh"), ["rv"], ["d"]),
                ir.Node(ir.Masking(4, name="masking"), ["d"], ["dm"]),
                ir.Node(back, ["dm"], ["yb", "hb"]),
                ir.Node(ir.Merge("multiply", 4, name="mul"), ["yb", "dm"], ["prod"]),
            ],
            ["prod", "hb"],
        ),
        # a masked bidirectional LSTM returning its 4 states, averaged output
        "bidir_lstm_states": ir.Graph(
            [ir.GraphInput("ids", ir.TOKENS, 9)],
            [
                ir.Node(ir.Embedding(r.normal(0, 1, (9, 3)), mask_zero=True), ["ids"], ["e"]),
                ir.Node(lstm_b, ["e"], ["o", "fh", "fc", "bh", "bc"]),
                ir.Node(ir.Merge("maximum", 2, name="max"), ["fh", "bh", "o"], ["mx"]),
            ],
            ["mx", "bc", "fc"],
        ),
        # a Conv1D read by a recurrent node (time-major) and a Flatten (batch-major)
        "conv_two_layouts": ir.Graph(
            [ir.GraphInput("x", ir.FEATURES, 3, STEPS)],
            [
                ir.Node(conv1d(r, 3, 4, 3), ["x"], ["c"]),
                ir.Node(gru(r, 4, 3, return_sequences=True, name="cg"), ["c"], ["cg"]),
                ir.Node(ir.Concatenate("features", name="cat"), ["c", "cg"], ["cat"]),
                ir.Node(ir.Flatten(STEPS - 2, 4, name="flat"), ["c"], ["flat"]),
                ir.Node(ir.GlobalPool(7, "max", name="gmax"), ["cat"], ["gmax"]),
            ],
            ["cat", "flat", "gmax"],
        ),
    }
    return cases


@pytest.mark.parametrize(
    "name", ["bidir_states", "backwards_states", "bidir_lstm_states", "conv_two_layouts"]
)
def test_graph_export_matches_reference(name):
    graph = _reference_cases()[name]
    rng = np.random.default_rng(1)
    feeds = {}
    for gi in graph.inputs:
        if gi.kind == ir.TOKENS:
            feeds[gi.name] = _pad(rng.integers(1, gi.dim, (BATCH, STEPS)).astype(np.int64), 0)
        elif gi.kind == ir.FEATURES:
            feeds[gi.name] = _features(2, gi.dim)
        else:
            feeds[gi.name] = _vector(3, gi.dim)
    want = reference.forward_graph(graph, feeds)
    got = _run(to_onnx(graph), feeds)
    for out_name, a, b in zip(graph.outputs, got, want, strict=True):
        assert a.shape == b.shape, out_name
        np.testing.assert_allclose(a, b, atol=FP32_TOLERANCE, rtol=0, err_msg=out_name)


# --- validate -----------------------------------------------------------------------------------


def test_validate_graph_generated_inputs(models):
    model, graph, _ = models["encoder_decoder_gru"]
    report = validate(model, None, ir_model=graph, batch=6, seq_len=9)
    assert isinstance(report, GraphValidationReport)
    assert report.ok, str(report)
    assert list(report.reports) == ["probs", "dec_h"]
    assert set(report.max_abs_error) == {"keras~onnxruntime"}
    assert "edgegru" in report.skipped
    # the T Keras declares wins over seq_len (Keras refuses another T for a graph input)
    assert report.input_shape == {"source": (6, STEPS, 3), "target": (6, STEPS - 2)}
    assert report.output_shape == {"probs": (6, STEPS - 2, VOCAB), "dec_h": (6, 6)}
    text = str(report)
    assert "probs" in text and "dec_h" in text and text.endswith("PASSED")


def test_generated_inputs_are_padded_where_the_model_masks():
    graph = _reference_cases()["bidir_lstm_states"]
    x = generate_graph_inputs(graph, batch=8, seq_len=12, seed=0)
    ids = x["ids"]
    assert ids.shape == (8, 12) and ids.dtype == np.int64
    assert (ids[0] != 0).all() and (ids[1, -4:] == 0).all() and (ids[2, :3] == 0).all()
    assert ((ids != 0).sum(axis=1) >= 1).all()
    masked = _reference_cases()["bidir_states"]
    x = generate_graph_inputs(masked, batch=4, seed=1)
    assert x["x"].shape == (4, DEFAULT_SEQ_LEN, 3) and x["hf"].shape == (4, 4)
    assert (x["x"][1, -(DEFAULT_SEQ_LEN // 3) :] == 0).all()
    assert generate_graph_inputs(masked, batch=2, seq_len=9)["x"].shape == (2, 9, 3)
    with pytest.raises(InputError, match="seq_len must be >= 1"):
        generate_graph_inputs(masked, seq_len=0)


@pytest.mark.parametrize("form", ["list", "dict", "npz"])
def test_validate_graph_given_inputs(models, tmp_path, form):
    model, graph, make_inputs = models["merges"]
    feeds = make_inputs(4)
    if form == "list":
        x = [feeds[gi.name] for gi in graph.inputs]
    elif form == "dict":
        x = dict(reversed(list(feeds.items())))
    else:
        np.savez(tmp_path / "x.npz", **feeds)
        x = read_inputs_npz(tmp_path / "x.npz")
    report = validate(model, None, ir_model=graph, x=x)
    assert report.ok, str(report)
    assert list(report.reports) == list(graph.outputs)
    assert report.input_shape["tokens"] == (BATCH, STEPS)


def test_validate_graph_finds_a_wrong_model(models):
    """The same wiring with other weights: every output is reported, and the report fails."""
    model, graph, make_inputs = models["rnnoise"]
    other = keras.models.clone_model(model)  # fresh weights
    report = validate(other, None, ir_model=graph, x=make_inputs(0))
    assert not report.ok
    assert all(not r.ok for r in report.reports.values())
    assert str(report).endswith("FAILED")


def test_validate_graph_with_the_runtime():
    """A graph that is a chain: its .egru file (written from as_chain) runs in today's runtime,
    so all three pairs are compared."""
    inp = keras.Input((None, 3), name="frames")
    g = L.GRU(4, return_sequences=True, name="g")
    d = L.Dense(2, name="d")
    model = keras.Model(inp, d(g(inp)))
    c = {}
    graph = ir.Graph(
        [ir.GraphInput("frames", ir.FEATURES, 3)],
        [_node(g, ["frames"], ["h"], c), _node(d, ["h"], ["out"], c)],
        ["out"],
    )
    blob = fmt.write(graph.as_chain())
    report = validate(model, blob, ir_model=graph, batch=3, seq_len=5)
    assert report.ok, str(report)
    assert set(report.max_abs_error) == set(PAIRS)
    # the chain itself takes a one-array dict (an .npz) too
    x = _features(0, 3)
    chain = validate(model, blob, ir_model=graph.as_chain(), x={"anything": x})
    assert chain.ok and chain.input_shape == x.shape
    with pytest.raises(InputError, match="one input; got 2 arrays"):
        validate(model, blob, ir_model=graph.as_chain(), x={"a": x, "b": x})


def _bad(graph, x, match):
    with pytest.raises(InputError, match=match):
        check_graph_inputs(graph, x)


def test_check_graph_inputs_names_the_problem(models):
    _, graph, make_inputs = models["merges"]
    feeds = make_inputs(0)
    _bad(graph, {k: v for k, v in feeds.items() if k != "unmasked"}, "missing \\['unmasked'\\]")
    _bad(graph, {**feeds, "extra": feeds["tokens"]}, "unknown \\['extra'\\]")
    _bad(graph, [feeds["tokens"]], "3 inputs")
    _bad(graph, feeds["tokens"], "a list in that order or a dict")
    _bad(graph, {**feeds, "features": feeds["features"][..., :2]}, "'features'.*\\(batch, T, 3\\)")
    _bad(graph, {**feeds, "tokens": feeds["tokens"][:3]}, "batch sizes differ")
    _bad(graph, {**feeds, "tokens": feeds["tokens"][:, :4]}, "different lengths")
    bad_ids = feeds["tokens"].copy()
    bad_ids[1, 2] = VOCAB
    _bad(graph, {**feeds, "tokens": bad_ids}, "token id 11 at position \\(1, 2\\)")
    nan = feeds["unmasked"].copy()
    nan[0, 0, 0] = np.nan
    _bad(graph, {**feeds, "unmasked": nan}, "'unmasked'.*not a finite")
    _, step, _ = models["decoder_step"]
    _bad(step, {"token": np.zeros((2, 1), np.int64), "state": np.zeros((2, 5))}, "\\(batch, 6\\)")


def test_read_inputs_npz_errors(tmp_path):
    with pytest.raises(InputError, match="no input file"):
        read_inputs_npz(tmp_path / "missing.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(InputError, match=r"one \.npy array"):
        read_inputs_npz(tmp_path / "one.npy")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable"):
        read_inputs_npz(tmp_path / "junk.npz")


@pytest.mark.parametrize("opset", [13, 18, 21])
@pytest.mark.parametrize("name", ["merges", "encoder_decoder_bilstm"])
def test_graph_export_opsets(models, name, opset):
    """Other opsets (Reduce* axes as inputs from 18 on) give the default opset's outputs, which
    test_graph_export_matches_keras holds against Keras."""
    _, graph, make_inputs = models[name]
    feeds = make_inputs(2)
    got = _run(to_onnx(graph, opset=opset), feeds)
    for a, b in zip(got, _run(to_onnx(graph), feeds), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_graph_output_name_collision_is_refused():
    r = np.random.default_rng(0)
    graph = ir.Graph(
        [ir.GraphInput("x", ir.FEATURES, 3)],
        [
            ir.Node(gru(r, 3, 4, return_sequences=True, name="g"), ["x"], ["g/output"]),
            ir.Node(dense(r, 4, 2, "linear", name="d"), ["g/output"], ["d/matmul"]),
        ],
        ["d/matmul", "g/output"],
    )
    with pytest.raises(UnsupportedError, match="'d/matmul' is also the name of a tensor"):
        to_onnx(graph)


def test_validate_graph_with_an_onnx_file(models, tmp_path):
    """A saved graph export is fed by input name; a chain's ONNX file for a graph is refused."""
    model, graph, make_inputs = models["tokens_and_features"]
    path = tmp_path / "m.onnx"
    save_onnx(graph, path)
    report = validate(model, None, onnx_path=path, ir_model=graph, x=make_inputs(1))
    assert report.ok, str(report)
    r = np.random.default_rng(0)
    wrong = tmp_path / "chain.onnx"
    save_onnx(ir.Model(ir.InputSpec(ir.FEATURES, 3), [gru(r, 3, 4)]), wrong)
    with pytest.raises(FormatError, match="the ONNX model has 1 inputs"):
        validate(model, None, onnx_path=wrong, ir_model=graph, x=make_inputs(1))
