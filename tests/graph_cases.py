"""Graph models (ir.Graph) shared by tests/test_graph_format.py and ext/tests/gen_graph_models.py
(the C graph runtime's test data), a float64 numpy evaluation of a graph written from the
equations of docs/format.md ("Graphs") on top of edgegru.reference's layer functions, and hostile
variants of graph files (each breaking one reader rule, the checksums made valid again).

The numpy evaluation stands in until edgegru.reference.forward_graph lands (branch h-kgraph);
it uses reference.recurrent / conv1d / ACTIVATIONS for the layers and implements the graph
parts (initial and final states, merges, concatenations, RepeatVector, the mask rules) here.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from edgegru import format as fmt
from edgegru import ir
from edgegru import reference as ref


def _w(rng, fan_in, shape):
    return rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)


def gru(rng, i, h, name, **kw):
    return ir.GRU(
        _w(rng, i, (i, 3 * h)),
        _w(rng, h, (h, 3 * h)),
        rng.normal(0.0, 0.3, 3 * h),
        rng.normal(0.0, 0.3, 3 * h),
        name=name,
        **kw,
    )


def lstm(rng, i, h, name, **kw):
    return ir.LSTM(
        _w(rng, i, (i, 4 * h)), _w(rng, h, (h, 4 * h)), rng.normal(0, 0.3, 4 * h), name=name, **kw
    )


def simple_rnn(rng, i, h, name, **kw):
    return ir.SimpleRNN(
        _w(rng, i, (i, h)), _w(rng, h, (h, h)), rng.normal(0, 0.3, h), name=name, **kw
    )


def dense(rng, i, o, name, act="tanh"):
    return ir.Dense(_w(rng, i, (i, o)), rng.normal(0, 0.3, o), act, name)


def graph_states(seed=1):
    """Features with an initial state, return_state, a residual Add, Concatenate along features,
    an LSTM's final h and c, a Dense shared by a sequence and a vector node."""
    rng = np.random.default_rng(seed)
    a = gru(rng, 3, 5, "gru_a", return_sequences=True)
    d = dense(rng, 5, 5, "shared_dense")
    b = lstm(rng, 8, 4, "lstm_b")
    return ir.Graph(
        [ir.GraphInput("x", "features", 3), ir.GraphInput("h0", "vector", 5)],
        [
            ir.Node(a, ["x", "h0"], ["a_seq", "a_h"]),
            ir.Node(d, ["a_seq"], ["d_seq"]),
            ir.Node(ir.Merge("add", 5, "add"), ["a_seq", "d_seq"], ["res"]),
            ir.Node(ir.Concatenate("features", "cat"), ["res", "x"], ["cat"]),
            ir.Node(b, ["cat"], ["b_out", "b_h", "b_c"]),
            ir.Node(d, ["a_h"], ["d_vec"]),
        ],
        ["cat", "b_out", "d_vec", "b_c"],
        name="states",
    )


def graph_masks(seed=2):
    """Token ids with mask_zero and a features input: the mask rules of every merge mode and of
    both concatenations, masked GlobalPool, RepeatVector, a bidirectional GRU with initial and
    final states, Subtract / Average / Minimum on vectors."""
    rng = np.random.default_rng(seed)
    emb = ir.Embedding(rng.normal(0, 1, (7, 4)), name="emb", mask_zero=True)
    g = gru(rng, 4, 4, "gru_g", return_sequences=True)
    r = simple_rnn(rng, 4, 4, "rnn_r", return_sequences=True)
    dy = dense(rng, 4, 4, "dense_y", act="linear")
    bf = gru(rng, 4, 3, "bi/forward")
    bb = gru(rng, 4, 3, "bi/backward", go_backwards=True)
    bi = ir.Bidirectional(bf, bb, "concat", name="bi")
    nodes = [
        ir.Node(emb, ["ids"], ["e"]),
        ir.Node(g, ["e"], ["g"]),
        ir.Node(r, ["e"], ["r"]),
        ir.Node(dy, ["y"], ["y2"]),
        ir.Node(ir.Merge("maximum", 4, "max"), ["g", "y2", "r"], ["mx"]),
        ir.Node(ir.Merge("minimum", 4, "min"), ["y2", "g", "r"], ["mn"]),
        ir.Node(ir.Merge("multiply", 4, "mul"), ["g", "r"], ["mul"]),
        ir.Node(ir.Merge("multiply", 4, "mul2"), ["g", "y2"], ["mul2"]),
        ir.Node(ir.Merge("average", 4, "avg"), ["g", "r", "e"], ["avg"]),
        ir.Node(ir.Concatenate("time", "cat_t"), ["mul", "y2", "g"], ["cat_t"]),
        ir.Node(ir.Concatenate("features", "cat_f"), ["y2", "avg"], ["cat_f"]),
        ir.Node(ir.GlobalPool(4, "average", "pool"), ["cat_t"], ["pool"]),
        ir.Node(ir.RepeatVector(3, 4, "rep"), ["pool"], ["rep"]),
        ir.Node(bi, ["rep", "s0", "s0b"], ["bi", "bh_f", "bh_b"]),
        ir.Node(ir.Merge("subtract", 3, "sub"), ["bh_f", "bh_b"], ["sub"]),
    ]
    return ir.Graph(
        [
            ir.GraphInput("ids", "tokens", 7),
            ir.GraphInput("y", "features", 4),
            ir.GraphInput("s0", "vector", 3),
            ir.GraphInput("s0b", "vector", 3),
        ],
        nodes,
        ["mx", "mn", "mul", "mul2", "cat_t", "cat_f", "bi", "sub", "rep"],
        name="masks",
    )


def graph_deep(seed=4, depth=8):
    """A residual stack of `depth` Dense layers (x + f(x)): the planner must reuse the
    intermediate values' buffers (two live at a time besides the input)."""
    rng = np.random.default_rng(seed)
    nodes, cur = [], "x"
    for k in range(depth):
        nodes.append(ir.Node(dense(rng, 8, 8, f"d{k}"), [cur], [f"h{k}"]))
        cur = f"h{k}"
    nodes.append(ir.Node(ir.Merge("add", 8, "add"), [cur, "x"], ["y"]))
    return ir.Graph([ir.GraphInput("x", "features", 8)], nodes, ["y"], name="deep")


GRAPHS = {"states": graph_states, "masks": graph_masks, "deep": graph_deep}


def inputs_for(graph: ir.Graph, batch: int, steps: int, seed=3) -> list:
    """Inputs in graph.inputs order: ids with zeros (masked steps: leading, inner, a whole row
    masked), features, vectors."""
    rng = np.random.default_rng(seed)
    out = []
    for gi in graph.inputs:
        if gi.kind == ir.TOKENS:
            ids = rng.integers(1, gi.dim, (batch, steps))
            ids[rng.random((batch, steps)) < 0.3] = 0
            ids[0, :2] = 0
            ids[1, :] = 0
            out.append(ids.astype(np.int32))
        elif gi.kind == ir.FEATURES:
            out.append(rng.normal(0, 1, (batch, steps, gi.dim)).astype(np.float32))
        else:
            out.append(rng.normal(0, 0.5, (batch, gi.dim)).astype(np.float32))
    return out


# ---------------------------------------------------------------------------------------------
# float64 evaluation


def _rnn(layer, x, mask, init):
    """[output, *final states] of a recurrent node (docs/format.md "Recurrent nodes")."""
    lstm_ = isinstance(layer.forward if isinstance(layer, ir.Bidirectional) else layer, ir.LSTM)
    per = 2 if lstm_ else 1

    def st(vals):
        if not vals:
            return None
        return (vals[0], vals[1]) if lstm_ else vals[0]

    def flat(s):
        return list(s) if lstm_ else [s]

    if not isinstance(layer, ir.Bidirectional):
        outs, s = ref.recurrent(layer, x, mask, state=st(init))
        h = s[0] if lstm_ else s
        return [outs if layer.return_sequences else h, *flat(s)]
    fo, fs = ref.recurrent(
        layer.forward, x, mask, reverse=False, zero_masked=True, align=True, state=st(init[:per])
    )
    bo, bs = ref.recurrent(
        layer.backward, x, mask, reverse=True, zero_masked=True, align=True, state=st(init[per:])
    )
    if not layer.return_sequences:
        fo, bo = (fs[0], bs[0]) if lstm_ else (fs, bs)
    merge = {
        "concat": lambda a, b: np.concatenate([a, b], axis=-1),
        "sum": lambda a, b: a + b,
        "ave": lambda a, b: (a + b) / 2.0,
        "mul": lambda a, b: a * b,
    }[layer.merge_mode]
    return [merge(fo, bo), *flat(fs), *flat(bs)]


def _merge(layer: ir.Merge, xs, masks):
    mode = layer.mode
    every = all(m is not None for m in masks)
    if mode in ("maximum", "minimum"):
        op = np.maximum if mode == "maximum" else np.minimum
        acc, am = xs[0].copy(), masks[0]
        for x, xm in zip(xs[1:], masks[1:], strict=True):
            x = x.copy()
            if xm is not None:
                x = np.where(xm[..., None], x, acc)
            if am is not None:
                acc = np.where(am[..., None], acc, x)
            acc = op(acc, x)
            am = (am | xm) if (am is not None and xm is not None) else None
        return acc, am
    if mode == "multiply":
        acc = None
        for x, xm in zip(xs, masks, strict=True):
            v = x if xm is None else np.where(xm[..., None], x, 1.0)
            acc = v if acc is None else acc * v
        if every:
            m = np.logical_or.reduce(masks)
            return np.where(m[..., None], acc, 0.0), m
        return acc, None
    acc = xs[0].copy()
    for x in xs[1:]:
        acc = acc - x if mode == "subtract" else acc + x
    if mode == "average":
        acc = acc / len(xs)
    return acc, (np.logical_or.reduce(masks) if every else None)


def forward_graph(graph: ir.Graph, inputs: list, int8: bool = False) -> list:
    """The graph in float64: outputs in graph.outputs order. int8: model the int8 runtime's
    input quantization (reference.forward(..., int8_inputs=True)); use the IR read back from the
    int8 file."""
    previous, ref._INT8_INPUTS = ref._INT8_INPUTS, int8
    try:
        return _forward_graph(graph, inputs)
    finally:
        ref._INT8_INPUTS = previous


def _forward_graph(graph: ir.Graph, inputs: list) -> list:
    vals, masks = {}, {}
    for gi, x in zip(graph.inputs, inputs, strict=True):
        vals[gi.name] = np.asarray(x) if gi.kind == ir.TOKENS else np.asarray(x, np.float64)
        masks[gi.name] = None
    for node in graph.nodes:
        layer = node.layer
        xs = [vals[v] for v in node.inputs]
        ms = [masks[v] for v in node.inputs]
        x, m = xs[0], ms[0]
        out_mask = None
        if isinstance(layer, ir.Embedding):
            outs = [ref._f64(layer.table)[x.astype(np.int64)]]
            out_mask = x != 0 if layer.mask_zero else None
        elif isinstance(layer, (*ir.RECURRENT, ir.Bidirectional)):
            outs = _rnn(layer, x, m, xs[1:])[: len(node.outputs)]
            out_mask = m if layer.return_sequences else None
        elif isinstance(layer, ir.Dense):
            outs = [
                ref.ACTIVATIONS[layer.activation](
                    ref._qin(x) @ ref._f64(layer.kernel) + ref._f64(layer.bias)
                )
            ]
            out_mask = m
        elif isinstance(layer, ir.Activation):
            outs, out_mask = [ref.ACTIVATIONS[layer.activation](x)], m
        elif isinstance(layer, ir.Affine):
            outs, out_mask = [x * ref._f64(layer.scale) + ref._f64(layer.shift)], m
        elif isinstance(layer, ir.Masking):
            out_mask = np.any(x != np.float32(layer.mask_value), axis=-1)
            outs = [np.where(out_mask[..., None], x, 0.0)]
        elif isinstance(layer, ir.Conv1D):
            outs = [ref.conv1d(layer, x)]
        elif isinstance(layer, ir.GlobalPool):
            if layer.kind == "average" and m is not None:
                w = m[..., None].astype(np.float64)
                with np.errstate(invalid="ignore", divide="ignore"):
                    outs = [(x * w).sum(axis=1) / w.sum(axis=1)]
            else:
                outs = [x.mean(axis=1) if layer.kind == "average" else x.max(axis=1)]
        elif isinstance(layer, ir.Merge):
            y, out_mask = _merge(layer, xs, ms)
            outs = [y]
        elif isinstance(layer, ir.Concatenate):
            axis = 1 if layer.axis == "time" else -1
            outs = [np.concatenate(xs, axis=axis)]
            if any(mm is not None for mm in ms):
                full = [
                    np.ones(v.shape[:2], bool) if mm is None else mm
                    for v, mm in zip(xs, ms, strict=True)
                ]
                out_mask = (
                    (
                        np.concatenate(full, axis=1)
                        if layer.axis == "time"
                        else np.logical_or.reduce(full)
                    )
                    if xs[0].ndim == 3
                    else None
                )
        elif isinstance(layer, ir.RepeatVector):
            outs = [np.repeat(x[:, None, :], layer.n, axis=1)]
        else:
            raise TypeError(type(layer).__name__)
        for i, (name, y) in enumerate(zip(node.outputs, outs, strict=True)):
            vals[name] = y
            masks[name] = out_mask if i == 0 else None
    return [vals[v] for v in graph.outputs]


# ---------------------------------------------------------------------------------------------
# Hostile graph files


def refresh_crcs(blob: bytearray) -> bytes:
    """Recompute both checksums after an edit (so that the structural checks run)."""
    size = struct.unpack_from("<I", blob, 20)[0]
    struct.pack_into("<I", blob, 120, zlib.crc32(bytes(blob[fmt.HEADER_SIZE : size])))
    struct.pack_into("<I", blob, 124, zlib.crc32(bytes(blob[:124])))
    return bytes(blob)


def _layout(blob: bytes) -> dict:
    h = fmt.read_header(blob)
    return h


def hostile(blob: bytes) -> list:
    """(name, bytes, C status name) for edits of a valid graph file, each breaking one rule of
    docs/format.md ("Graphs"), checksums valid."""
    h = _layout(blob)
    out = []

    def edit(name, status, fn):
        b = bytearray(blob)
        fn(b, h)
        out.append((name, refresh_crcs(b), status))

    def u32(off, v):
        return lambda b, _h: struct.pack_into("<I", b, off, v)

    def u16(off, v):
        return lambda b, _h: struct.pack_into("<H", b, off, v)

    def u8(off, v):
        return lambda b, _h: struct.pack_into("<B", b, off, v)

    node = lambda k: h["layer_table_offset"] + k * h["layer_record_size"]  # noqa: E731
    value = lambda v: h["value_table_offset"] + v * h["value_record_size"]  # noqa: E731
    io = lambda i: h["io_table_offset"] + 4 * i  # noqa: E731
    n_in, n_out = h["graph_input_count"], h["graph_output_count"]
    io_entry = lambda i: struct.unpack_from("<I", blob, io(i))[0]  # noqa: E731

    edit("header_size 128", "EGRU_ERR_BAD_HEADER", u32(8, 128))
    edit("node record 64", "EGRU_ERR_BAD_HEADER", u32(28, 64))
    edit("input_dim set", "EGRU_ERR_BAD_HEADER", u32(68, 3))
    edit("output_dim set", "EGRU_ERR_BAD_HEADER", u32(72, 3))
    edit("input_kind 4", "EGRU_ERR_BAD_HEADER", u32(64, 4))
    edit("value_count 1", "EGRU_ERR_BAD_HEADER", u32(128, 1))
    edit("value record 15", "EGRU_ERR_BAD_HEADER", u32(132, 15))
    edit("io offset odd", "EGRU_ERR_BAD_HEADER", u32(144, h["io_table_offset"] + 2))
    edit("no inputs", "EGRU_ERR_BAD_HEADER", u16(148, 0))
    edit("no outputs", "EGRU_ERR_BAD_HEADER", u16(150, 0))
    edit("value table past the end", "EGRU_ERR_OUT_OF_BOUNDS", u32(136, h["file_size"] - 8))
    edit("value table wraps", "EGRU_ERR_OUT_OF_BOUNDS", u32(128, 0x40000000))
    edit("io table past the end", "EGRU_ERR_OUT_OF_BOUNDS", u32(140, 0x40000000))
    edit("io table on the header", "EGRU_ERR_OUT_OF_BOUNDS", u32(144, 128))
    edit("io table on the layers", "EGRU_ERR_OUT_OF_BOUNDS", u32(144, h["layer_table_offset"]))
    edit("io table on the values", "EGRU_ERR_OUT_OF_BOUNDS", u32(144, h["value_table_offset"]))
    edit("value table on the tensors", "EGRU_ERR_OUT_OF_BOUNDS", u32(136, h["tensor_table_offset"]))
    edit("value table on the data", "EGRU_ERR_OUT_OF_BOUNDS", u32(136, h["data_offset"]))
    edit("int16x8 graph", "EGRU_ERR_UNSUPPORTED", u32(76, 2))
    edit("value kind 0", "EGRU_ERR_BAD_LAYER", u8(value(0), 0))
    edit("value kind 4", "EGRU_ERR_BAD_LAYER", u8(value(0), 4))
    edit("value width 0", "EGRU_ERR_BAD_LAYER", u32(value(0) + 4, 0))
    edit("value flag 2", "EGRU_ERR_BAD_LAYER", u8(value(0) + 1, 2))
    edit("masked input", "EGRU_ERR_BAD_LAYER", u8(value(io_entry(0)) + 1, 1))
    edit("io entry out of range", "EGRU_ERR_BAD_LAYER", u32(io(0), h["value_count"]))
    edit(
        "inputs twice",
        "EGRU_ERR_BAD_LAYER",
        u32(io(1), io_entry(0)) if n_in > 1 else u32(io(0), io_entry(n_in)),
    )
    edit("output is an input", "EGRU_ERR_BAD_LAYER", u32(io(n_in), io_entry(0)))
    if n_out > 1:
        edit("output twice", "EGRU_ERR_BAD_LAYER", u32(io(n_in + 1), io_entry(n_in)))
    edit("io_first wrong", "EGRU_ERR_BAD_LAYER", u32(node(0) + 64, 0))
    edit("node without inputs", "EGRU_ERR_BAD_LAYER", u16(node(0) + 68, 0))
    edit("node without outputs", "EGRU_ERR_BAD_LAYER", u16(node(0) + 70, 0))
    edit("node io past the table", "EGRU_ERR_BAD_LAYER", u16(node(h["layer_count"] - 1) + 70, 9))
    last = h["layer_count"] - 1
    first_io = struct.unpack_from("<I", blob, node(last) + 64)[0]
    edit(
        "reads a later value",
        "EGRU_ERR_BAD_LAYER",
        u32(
            io(n_in + n_out + 0),
            io_entry(first_io + 0 + struct.unpack_from("<H", blob, node(last) + 68)[0]),
        ),
    )
    # node 0 writes what it reads: written twice / read before written
    n0_first = struct.unpack_from("<I", blob, node(0) + 64)[0]
    n0_in = struct.unpack_from("<H", blob, node(0) + 68)[0]
    edit("writes a model input", "EGRU_ERR_BAD_LAYER", u32(io(n0_first + n0_in), io_entry(0)))
    edit(
        "value width mismatch", "EGRU_ERR_BAD_LAYER", u32(value(io_entry(n0_first + n0_in)) + 4, 99)
    )
    edit("value kind mismatch", "EGRU_ERR_BAD_LAYER", u8(value(io_entry(n0_first + n0_in)), 3))
    edit(
        "node MASKED flipped",
        "EGRU_ERR_BAD_LAYER",
        lambda b, _h: struct.pack_into(
            "<H", b, node(1) + 2, struct.unpack_from("<H", b, node(1) + 2)[0] ^ fmt.FLAG_MASKED
        ),
    )
    edit(
        "value MASKED flipped",
        "EGRU_ERR_BAD_LAYER",
        lambda b, _h: struct.pack_into(
            "<B",
            b,
            value(io_entry(n0_first + n0_in)) + 1,
            1 - b[value(io_entry(n0_first + n0_in)) + 1],
        ),
    )
    edit("unknown op 99", "EGRU_ERR_BAD_LAYER", u16(node(last), 99))
    edit("last node a RepeatVector", "EGRU_ERR_BAD_LAYER", u16(node(last), fmt.OP_REPEAT_VECTOR))
    ranges = {}
    for k in range(h["layer_count"]):
        first, count = struct.unpack_from("<II", blob, node(k) + 12)
        if count and (first, count) in ranges:
            edit("shared node, other activation", "EGRU_ERR_BAD_LAYER", u8(node(k) + 20, 1))
            edit("shared node, other params", "EGRU_ERR_BAD_LAYER", u32(node(k) + 24 + 36, 1))
            edit("shared node, shifted range", "EGRU_ERR_BAD_LAYER", u32(node(k) + 12, first + 1))
        ranges[(first, count)] = k
    return out
