"""ATTENTION graph nodes (docs/format.md "ATTENTION"), without Keras: IR-built graphs of every
score mode (dot, concat, additive with and without its SCALE tensor), causal or not, with a key,
with query and value masks, written, read back and run by the C runtime against the float64
reference (`reference.forward_graph`) within 1e-5, both plans bit-equal; the IR's mask rules
(the output carries the query's mask; query and value masks are read); hostile records refused
by the Python reader and by the C reader. Keras' own behaviour is checked on the Keras models
of tests/graph_models.py (test_graph_keras.py, test_graph_runtime.py, test_graph_onnx_keras.py).
"""

from __future__ import annotations

import struct

import graph_cases as gc
import numpy as np
import pytest

import edgegru
from edgegru import format as fmt
from edgegru import ir, reference
from edgegru.errors import FormatError

TOL = 1e-5
B, TQ, TV, D, W = 3, 4, 5, 3, 2


def _graph(score="dot", causal=False, key=False, masked=True, scale=None, use_masks=True):
    """Inputs q (TQ, D), v (TV, W or D), [k (TV, D)]; Masking(0) on q and v when masked;
    use_masks=False: the Keras Dot pattern's node, which ignores both masks."""
    rng = np.random.default_rng(3)
    width_v = W if key else D
    inputs = [ir.GraphInput("q", ir.FEATURES, D), ir.GraphInput("v", ir.FEATURES, width_v)]
    nodes, q, v = [], "q", "v"
    if masked:
        nodes += [
            ir.Node(ir.Masking(D, 0.0, name="mq"), ["q"], ["q_m"]),
            ir.Node(ir.Masking(width_v, 0.0, name="mv"), ["v"], ["v_m"]),
        ]
        q, v = "q_m", "v_m"
    ins = [q, v]
    if key:
        inputs.append(ir.GraphInput("k", ir.FEATURES, D))
        ins.append("k")
    if scale is None:
        scale = rng.normal(1.0, 0.3, D) if score == "additive" else 0.7
    att = ir.Attention(
        score, D, width_v, scale, 1.3, causal=causal, name="att", use_masks=use_masks
    )
    nodes.append(ir.Node(att, ins, ["y"]))
    nodes.append(ir.Node(gc.gru(rng, width_v, 3, "g", return_sequences=True), ["y"], ["h"]))
    return ir.Graph(inputs, nodes, ["h", "y"])


def _inputs(graph, seed=0):
    rng = np.random.default_rng(seed)
    steps = {"q": TQ, "v": TV, "k": TV}
    xs = [
        rng.standard_normal((B, steps[gi.name], gi.dim)).astype(np.float32) for gi in graph.inputs
    ]
    xs[0][0, -1:] = 0  # a masked query step
    xs[1][1, :2] = 0  # masked value steps
    xs[1][2, :] = 0  # a row without a valid value step
    return xs


CASES = {
    "dot": dict(),
    "dot_causal_key": dict(causal=True, key=True),
    "concat": dict(score="concat"),
    "concat_causal_unmasked": dict(score="concat", causal=True, masked=False),
    "additive_scale": dict(score="additive", key=True),
    "additive_no_scale": dict(score="additive", scale=None, masked=False),
    "dot_masks_ignored": dict(scale=1.0, use_masks=False),
    "dot_masks_ignored_key": dict(key=True, use_masks=False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_runtime_matches_reference(name):
    kw = dict(CASES[name])
    graph = _graph(**kw)
    if name == "additive_no_scale":
        graph.nodes[0].layer.scale = None
    blob = fmt.write(graph)
    back = fmt.read(blob)[0]
    assert fmt.write(back) == blob
    xs = _inputs(graph)
    want = reference.forward_graph(graph, xs)
    m = edgegru.load(blob)
    got = m.predict(xs)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        assert float(np.max(np.abs(a - b))) <= TOL, name
    m.arena_limit = 0  # the low-memory plan
    for a, b in zip(got, m.predict(xs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_mask_rules():
    g = _graph()
    att = next(n for n in g.nodes if isinstance(n.layer, ir.Attention))
    assert att.masked and g.values["y"].masked  # reads masks, passes the query's
    q_only = ir.Graph(
        g.inputs,
        [g.nodes[0], ir.Node(g.nodes[2].layer, ["q_m", "v"], ["y"])],
        ["y"],
    )
    assert q_only.nodes[1].masked and q_only.values["y"].masked
    v_only = ir.Graph(g.inputs, [g.nodes[1], ir.Node(g.nodes[2].layer, ["q", "v_m"], ["y"])], ["y"])
    assert v_only.nodes[1].masked and not v_only.values["y"].masked


def test_query_mask_zeroes_and_value_mask_excludes():
    g = _graph(masked=True)
    xs = _inputs(g)
    m = edgegru.load(fmt.write(g))
    got = m.predict(xs)[1]
    assert np.all(got[0, -1] == 0) and np.any(got[0, 0] != 0)  # the masked query step is 0
    # row 1's masked value steps do not contribute: the same row without them gives the same
    alone = m.predict([xs[0][1:2], xs[1][1:2, 2:]])[1]
    np.testing.assert_allclose(alone[0], got[1], atol=1e-6, rtol=0)


def test_masks_ignored_read_and_write_no_mask():
    """The Keras Dot pattern (use_masks=False): masked query steps are computed and masked
    value steps get weight, as Keras' Dot, softmax, Dot do; the output carries no mask."""
    g = _graph(use_masks=False)
    att = next(n for n in g.nodes if isinstance(n.layer, ir.Attention))
    assert not att.masked and not g.values["y"].masked
    with pytest.raises(ValueError, match="use_masks=False"):
        ir.Attention("concat", D, D, use_masks=False)
    xs = _inputs(g)
    got = edgegru.load(fmt.write(g)).predict(xs)[1]
    # numpy from the equations: softmax(q k^T * scale) v over every step
    q, v = xs[0].astype(np.float64), xs[1].astype(np.float64)
    s = np.einsum("btd,bsd->bts", q, v) * np.float32(0.7)
    w = np.exp(s - s.max(-1, keepdims=True))
    want = (w / w.sum(-1, keepdims=True)) @ v
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    assert np.any(got[0, -1] != 0)  # the query step Masking marks is not zeroed
    masked = edgegru.load(fmt.write(_graph())).predict(xs)[1]
    assert float(np.max(np.abs(masked[1] - got[1]))) > 1e-3  # row 1's padded steps count here


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="key width"):
        ir.Graph(
            [ir.GraphInput("q", ir.FEATURES, D), ir.GraphInput("v", ir.FEATURES, W)],
            [ir.Node(ir.Attention("dot", D, W), ["q", "v"], ["y"])],
            ["y"],
        )
    g = _graph(key=True, masked=False)
    xs = _inputs(g)
    xs[2] = xs[2][:, :-1]  # key steps != value steps
    with pytest.raises(edgegru.InputError):
        edgegru.load(fmt.write(g)).predict(xs)


def _att_record(blob: bytes) -> int:
    h = fmt.read_header(blob)
    for k in range(h["layer_count"]):
        off = h["layer_table_offset"] + k * h["layer_record_size"]
        if struct.unpack_from("<H", blob, off)[0] == fmt.OP_ATTENTION:
            return off
    raise AssertionError("no attention node")


@pytest.mark.parametrize(
    "param, value, base",
    [
        (0, 0, "dot"),  # score 0
        (0, 4, "dot"),  # unknown score
        (1, 2, "dot"),  # causal not 0 / 1
        (2, 0x7FC00000, "dot"),  # NaN scale
        (3, 0x3F800000, "dot"),  # a concat weight on dot
        (2, 0x3F800000, "additive_scale"),  # a scale param on additive
        (4, 1, "concat"),  # masks ignored on concat
        (4, 2, "dot_masks_ignored"),  # masks-ignored flag not 0 / 1
        (4, 1, "dot"),  # masks ignored, but the node and its output say masked
        (5, 1, "dot_masks_ignored"),  # an unused param
    ],
)
def test_hostile_records_are_refused(param, value, base):
    graph = _graph(**CASES[base])
    blob = bytearray(fmt.write(graph))
    struct.pack_into("<I", blob, _att_record(blob) + 24 + 4 * param, value)
    bad = gc.refresh_crcs(blob)
    with pytest.raises(FormatError):
        fmt.read(bad)
    with pytest.raises(FormatError):
        edgegru.load(bad)


def test_hostile_key_width_is_refused():
    graph = _graph(score="additive", key=True)
    blob = bytearray(fmt.write(graph))
    off = _att_record(blob)
    struct.pack_into("<I", blob, off + 4, D + 1)  # input_dim != the query's width
    bad = gc.refresh_crcs(blob)
    with pytest.raises(FormatError):
        fmt.read(bad)
    with pytest.raises(FormatError):
        edgegru.load(bad)


def _decoder_step(masked: bool, via_dense: bool = False):
    """A decoder step as examples/translate.py --attention builds it: a token and a state in, a
    GRU started from the state, Attention([its output, the encoder's sequence]) (under
    Masking(0.0) when masked; via_dense: the sequence goes through a Dense first, so the
    MASKING reads a value of the graph, not a model input), Concatenate, Dense; the next
    token's probabilities and the new state out."""
    rng = np.random.default_rng(5)
    V, E, H = 13, 6, 8
    enc, nodes = "enc", []
    if via_dense:
        nodes.append(ir.Node(gc.dense(rng, H, H, "enc_dense", act="linear"), ["enc"], ["enc_d"]))
        enc = "enc_d"
    nodes += [
        ir.Node(ir.Embedding(rng.normal(0, 1, (V, E)), name="emb"), ["token"], ["e"]),
        ir.Node(gc.gru(rng, E, H, "dec", return_sequences=True), ["e", "state"], ["s1", "h1"]),
    ]
    if masked:
        nodes.append(ir.Node(ir.Masking(H, 0.0, name="enc_mask"), [enc], ["enc_m"]))
        enc = "enc_m"
    nodes += [
        ir.Node(ir.Attention("dot", H, H, 1.0, 0.0, name="att"), ["s1", enc], ["ctx"]),
        ir.Node(ir.Concatenate("features", "both"), ["s1", "ctx"], ["cat"]),
        ir.Node(gc.dense(rng, 2 * H, V, "next", act="softmax"), ["cat"], ["probs"]),
    ]
    inputs = [
        ir.GraphInput("token", "tokens", V),
        ir.GraphInput("state", "vector", H),
        ir.GraphInput("enc", "features", H),
    ]
    return ir.Graph(inputs, nodes, ["probs", "h1"], name="decoder_step")


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masking"])
def test_decoder_step_arena_does_not_grow_with_the_value_steps(masked):
    """Issue #13: the low-memory plan of an attention decoder step does not depend on the
    sentence length (the encoder sequence is the caller's input; the softmax is one pass, and a
    Masking(0.0) on that input is a view, not a copy of Tv steps). The fast plan's values are
    one step each here (docs/c_api.md: regions of rows * steps * width), so it does not grow
    either, at any batch."""
    m = edgegru.load(fmt.write(_decoder_step(masked)))
    for minimal in (True, False):
        for batch in (1, 16):
            sizes = {tv: m.arena_size(batch, [1, 1, tv], minimal=minimal) for tv in (5, 500)}
            assert sizes[5] == sizes[500] > 0, (minimal, batch, sizes)
    # one step of the GRU's scratch and the values of one step, nothing of Tv: 500 value steps
    # (the old scores: 2,000 bytes; a Masking copy: 16,500) would not fit the difference
    assert m.arena_size(1, [1, 1, 500], minimal=True) < 2000


@pytest.mark.parametrize("via_dense", [False, True], ids=["input", "inner_value"])
def test_decoder_step_with_masking_matches_reference(via_dense):
    """The MASKING view gives the reference's numbers (Masking's zeros at masked steps, its mask
    from the zero test), rows with padding at the end, at the start and everywhere; both plans
    bit-equal; with via_dense the Dense output the view reads stays live until the attention."""
    graph = _decoder_step(True, via_dense)
    rng = np.random.default_rng(8)
    n, tv = 4, 7
    xs = [
        rng.integers(0, 13, (n, 1)).astype(np.int32),
        rng.standard_normal((n, 8)).astype(np.float32),
        rng.standard_normal((n, tv, 8)).astype(np.float32),
    ]
    xs[2][0, 5:] = 0  # padded at the end
    xs[2][1, :3] = 0  # padded at the start
    xs[2][2] = 0  # no valid step
    if via_dense:  # without a bias the Dense keeps zero steps zero
        graph.nodes[0].layer.bias[:] = 0
    want = reference.forward_graph(graph, xs)
    m = edgegru.load(fmt.write(graph))
    got = m.predict(xs)
    for a, b in zip(got, want, strict=True):
        assert float(np.max(np.abs(a - b))) <= TOL
    m.arena_limit = 0
    for a, b in zip(got, m.predict(xs), strict=True):
        np.testing.assert_array_equal(a, b)
