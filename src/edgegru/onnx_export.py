"""Export an IR model (`edgegru.ir`) to a standard ONNX graph.

Graph contract:

* Input ``tokens``: int64 ``[batch, time]`` (token models; ids must be ``0 <= id < vocab``), or
  ``features``: float32 ``[batch, time, F]`` (feature models). ``batch`` and ``time`` are symbolic.
* Output ``output``: float32, ``[batch, out]`` or ``[batch, time, out]``, exactly
  ``Model.output_shape(batch, time)`` (what Keras' ``predict`` returns).
* Every IR GRU becomes one fused ONNX ``GRU`` node (layout 0, time-major); the graph never uses
  ``Loop`` or ``Scan``. Only default-domain operators are used, opset ``MIN_OPSET`` or newer.

Internally each layer is emitted by one small function found through ``_HANDLERS`` (IR layer type
-> handler). A handler receives its input as a `_Value` that carries the tensor name, its rank and
its layout (batch-major ``[B, T, ...]``, time-major ``[T, B, ...]`` or a per-sequence vector
``[B, F]``). Per-step layers (Embedding, Dense) work in either layout and keep it, so the
batch/time transpose is done once, as early as possible (on the int64 token ids when an Embedding
feeds a GRU), stacked GRUs stay time-major between them, and the transpose back to batch-major
happens once at the output. Adding a layer type (LSTM, Bidirectional, masking) means adding one
handler and one ``_HANDLERS`` entry.

This module needs the optional ``onnx`` package; the rest of edgegru needs numpy only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import ir

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("ONNX export needs the 'onnx' extra: pip install edgegru[onnx]") from exc

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "save_onnx", "to_onnx"]

#: Default ONNX opset of exported models.
DEFAULT_OPSET = 17
#: Oldest opset the graph is valid for: Squeeze takes `axes` as an input and Softmax normalizes
#: over one axis (not a flattened 2-D view) from opset 13 on.
MIN_OPSET = 13

INPUT_NAME = {ir.TOKENS: "tokens", ir.FEATURES: "features"}
OUTPUT_NAME = "output"
BATCH_DIM = "batch"
TIME_DIM = "time"

# Layouts of an intermediate tensor.
BATCH_MAJOR = "batch_major"  # [B, T] token ids or [B, T, C]
TIME_MAJOR = "time_major"  # [T, B] token ids or [T, B, C]; what ONNX GRU (layout=0) consumes
VECTOR = "vector"  # [B, C]: one vector per sequence, no time axis

# Keras activation name -> (ONNX GRU activation, alpha, beta); None = the function takes no such
# parameter. ONNX GRU's activation_alpha / activation_beta are separate lists, consumed in
# activation order by only the functions that take the parameter. To add Keras 3 hard_sigmoid:
# "hard_sigmoid": ("HardSigmoid", 1 / 6, 0.5), i.e. relu6(x + 3) / 6 -- not ONNX's default
# alpha 0.2, which is the Keras 2 definition; the name must also be listed in ir.GRU_ACTIVATIONS.
_GRU_ACTIVATIONS: dict[str, tuple[str, float | None, float | None]] = {
    "sigmoid": ("Sigmoid", None, None),
    "tanh": ("Tanh", None, None),
}

# Keras Dense activation name -> (ONNX op, attributes), None for no op. All are elementwise except
# softmax, which normalizes over the last (feature) axis as Keras does, for 2-D and 3-D input.
_DENSE_ACTIVATIONS: dict[str, tuple[str, dict] | None] = {
    "linear": None,
    "relu": ("Relu", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "softmax": ("Softmax", {"axis": -1}),
}


@dataclass(frozen=True)
class _Value:
    """A tensor flowing between layers: its name, rank and layout (one of the constants above)."""

    name: str
    layout: str
    rank: int


class _GraphBuilder:
    """Accumulates nodes and initializers; hands out unique, readable names."""

    def __init__(self, layer_names: list[str]) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        # Scopes the exporter itself uses; a layer with one of these names gets a suffix.
        self._scopes: set[str] = {"input", "output", "const"}
        self._layer_names = set(layer_names)
        self._consts: dict[tuple, str] = {}

    def scope(self, name: str) -> str:
        """A unique name prefix for one layer: its IR name; a repeated name gets the first free
        Keras-style suffix (_1, _2, ...) that no other layer of the model is named."""
        base = name or "layer"
        scope, k = base, 0
        while scope in self._scopes or (k and scope in self._layer_names):
            k += 1
            scope = f"{base}_{k}"
        self._scopes.add(scope)
        return scope

    def initializer(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const_i64(self, values: tuple[int, ...]) -> str:
        """A shared int64 1-D constant (e.g. Squeeze axes)."""
        key = ("i64", *values)
        if key not in self._consts:
            name = "const/i64_" + "_".join(str(v) for v in values)
            self._consts[key] = self.initializer(name, np.asarray(values, dtype=np.int64))
        return self._consts[key]

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str, **attrs) -> str:
        """Append one node; returns its last output name."""
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))
        return outputs[-1]

    def to_layout(self, x: _Value, layout: str, scope: str) -> _Value:
        """Return x in `layout` (batch-major <-> time-major), inserting a Transpose if needed."""
        if x.layout == layout:
            return x
        if VECTOR in (x.layout, layout):
            raise ValueError(f"{scope}: cannot convert a {x.layout} tensor to {layout}")
        perm = [1, 0, *range(2, x.rank)]  # swap the batch and time axes
        out = f"{scope}/to_{layout}"
        self.node("Transpose", [x.name], [out], name=out, perm=perm)
        return _Value(out, layout, x.rank)

    def rename_output(self, old: str, new: str) -> None:
        """Rename the tensor `old`, produced by an already emitted node, to `new`."""
        for node in reversed(self.nodes):
            for k, name in enumerate(node.output):
                if name == old:
                    node.output[k] = new
                    for later in self.nodes:
                        for j, inp in enumerate(later.input):
                            if inp == old:
                                later.input[j] = new
                    return
        raise ValueError(f"no node produces {old!r}")


# --- one handler per IR layer type -------------------------------------------------------------


def _emit_embedding(g: _GraphBuilder, layer: ir.Embedding, x: _Value, scope: str) -> _Value:
    """ids [B, T] or [T, B] int64 -> Gather(table (vocab, E)) -> [B, T, E] or [T, B, E]."""
    table = g.initializer(f"{scope}/table", layer.table)
    out = g.node("Gather", [table, x.name], [f"{scope}/output"], name=f"{scope}/Gather", axis=0)
    return _Value(out, x.layout, x.rank + 1)


def _gru_activation_attrs(layer: ir.GRU) -> dict:
    """ONNX GRU attributes for activations [f, g] = [recurrent_activation, activation]."""
    acts: list[str] = []
    alpha: list[float] = []
    beta: list[float] = []
    for slot in ("recurrent_activation", "activation"):
        keras_name = getattr(layer, slot)
        if keras_name not in _GRU_ACTIVATIONS:
            raise ValueError(
                f"GRU {layer.name!r}: {slot}={keras_name!r} has no ONNX GRU mapping; "
                f"supported: {', '.join(_GRU_ACTIVATIONS)}"
            )
        op, a, b = _GRU_ACTIVATIONS[keras_name]
        acts.append(op)
        if a is not None:
            alpha.append(float(a))
        if b is not None:
            beta.append(float(b))
    attrs: dict = {"activations": acts}
    if alpha:
        attrs["activation_alpha"] = alpha
    if beta:
        attrs["activation_beta"] = beta
    return attrs


def _emit_gru(g: _GraphBuilder, layer: ir.GRU, x: _Value, scope: str) -> _Value:
    """x [T, B, I] time-major -> fused ONNX GRU (one forward direction, layout 0).

    Returns Y squeezed to [T, B, H] (time-major) when return_sequences, else Y_h[0] = [B, H].
    Weights, gate blocks z|r|h in both frameworks (no reordering):
      W [1, 3H, I] = kernel.T;  R [1, 3H, H] = recurrent_kernel.T;
      B [1, 6H] = [Wb | Rb] = [input_bias | recurrent_bias];  linear_before_reset = reset_after.
    (With reset_after False, Keras has no recurrent bias, the IR holds zeros there, and ONNX adds
    Rb outside the reset product, which is what ir.GRU / reference.gru define.)
    """
    w = g.initializer(f"{scope}/W", layer.kernel.T[None])
    r = g.initializer(f"{scope}/R", layer.recurrent_kernel.T[None])
    b = g.initializer(f"{scope}/B", np.concatenate([layer.input_bias, layer.recurrent_bias])[None])
    if layer.return_sequences:
        outputs = [f"{scope}/Y"]  # Y: [T, num_directions=1, B, H]; Y_h not requested
    else:
        outputs = ["", f"{scope}/Y_h"]  # Y omitted; Y_h: [num_directions=1, B, H]
    g.node(
        "GRU",
        [x.name, w, r, b],
        outputs,
        name=f"{scope}/GRU",
        hidden_size=layer.units,
        direction="forward",
        linear_before_reset=int(layer.reset_after),
        **_gru_activation_attrs(layer),
    )
    if layer.return_sequences:
        y = g.node(
            "Squeeze",
            [outputs[0], g.const_i64((1,))],
            [f"{scope}/output"],
            name=f"{scope}/Squeeze",
        )
        return _Value(y, TIME_MAJOR, 3)
    y = g.node(
        "Squeeze", [outputs[1], g.const_i64((0,))], [f"{scope}/output"], name=f"{scope}/Squeeze"
    )
    return _Value(y, VECTOR, 2)


def _emit_dense(g: _GraphBuilder, layer: ir.Dense, x: _Value, scope: str) -> _Value:
    """x [..., in] (any layout) -> act(MatMul(x, kernel (in, out)) + bias (out,)) -> [..., out]."""
    kernel = g.initializer(f"{scope}/kernel", layer.kernel)
    bias = g.initializer(f"{scope}/bias", layer.bias)
    act = _DENSE_ACTIVATIONS[layer.activation]
    y = g.node("MatMul", [x.name, kernel], [f"{scope}/matmul"], name=f"{scope}/MatMul")
    pre = f"{scope}/output" if act is None else f"{scope}/preact"
    y = g.node("Add", [y, bias], [pre], name=f"{scope}/Add")
    if act is not None:
        op, attrs = act
        y = g.node(op, [y], [f"{scope}/output"], name=f"{scope}/{op}", **attrs)
    return _Value(y, x.layout, x.rank)


@dataclass(frozen=True)
class _Handler:
    """emit(builder, layer, x, scope) -> output value.

    wants: the layout the layer needs its input in (the caller converts before emit), or None for
    per-step layers that accept either sequence layout (or a vector) and keep it.
    """

    emit: Callable[[_GraphBuilder, object, _Value, str], _Value]
    wants: str | None


_HANDLERS: dict[type, _Handler] = {
    ir.Embedding: _Handler(_emit_embedding, None),
    ir.GRU: _Handler(_emit_gru, TIME_MAJOR),
    ir.Dense: _Handler(_emit_dense, None),
}


def _handler(layer) -> _Handler:
    try:
        return _HANDLERS[type(layer)]
    except KeyError:
        raise TypeError(
            f"ONNX export has no handler for layer type {type(layer).__name__}"
        ) from None


def _describe(layer) -> str:
    if isinstance(layer, ir.Embedding):
        return f"Embedding({layer.table.shape[0]}, {layer.output_dim})"
    if isinstance(layer, ir.GRU):
        seq = ", return_sequences" if layer.return_sequences else ""
        return f"GRU({layer.units}, reset_after={layer.reset_after}{seq})"
    if isinstance(layer, ir.Dense):
        return f"Dense({layer.units}, {layer.activation})"
    return type(layer).__name__


def to_onnx(model: ir.Model, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Build the ONNX model for `model` (see the module docstring for the graph contract).

    opset: default-domain opset, MIN_OPSET..onnx.defs.onnx_opset_version(). The IR version is the
    oldest one that supports that opset, so older runtimes can load the file.
    The result passes onnx.checker.check_model(full_check=True).
    """
    latest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= latest:
        raise ValueError(f"opset must be in {MIN_OPSET}..{latest} (installed onnx), got {opset}")
    model.check()
    for layer in model.layers:
        _handler(layer)  # fail before building anything

    g = _GraphBuilder([layer.name for layer in model.layers])
    spec = model.input
    if spec.kind == ir.TOKENS:
        inp = helper.make_tensor_value_info(
            INPUT_NAME[spec.kind], TensorProto.INT64, [BATCH_DIM, TIME_DIM]
        )
        x = _Value(inp.name, BATCH_MAJOR, 2)
    else:
        inp = helper.make_tensor_value_info(
            INPUT_NAME[spec.kind], TensorProto.FLOAT, [BATCH_DIM, TIME_DIM, spec.dim]
        )
        x = _Value(inp.name, BATCH_MAJOR, 3)

    # Per-step layers commute with the batch/time transpose, so move the input straight into the
    # layout the first layout-sensitive layer wants (transposing [B, T] ids beats [B, T, E]).
    first_want = next((_handler(la).wants for la in model.layers if _handler(la).wants), None)
    if first_want is not None:
        x = g.to_layout(x, first_want, "input")

    for layer in model.layers:
        h = _handler(layer)
        scope = g.scope(layer.name)
        if h.wants is not None:
            x = g.to_layout(x, h.wants, scope)
        x = h.emit(g, layer, x, scope)

    if x.layout == TIME_MAJOR:
        x = g.to_layout(x, BATCH_MAJOR, "output")
    g.rename_output(x.name, OUTPUT_NAME)

    out_shape = [BATCH_DIM, TIME_DIM] if model.output_is_sequence else [BATCH_DIM]
    out = helper.make_tensor_value_info(
        OUTPUT_NAME, TensorProto.FLOAT, [*out_shape, model.output_dim]
    )
    chain = " -> ".join(_describe(la) for la in model.layers)
    graph = helper.make_graph(
        g.nodes,
        model.name or "model",
        [inp],
        [out],
        initializer=g.initializers,
        doc_string=f"{chain}. Output: float32 {[*out_shape, model.output_dim]}.",
    )
    m = helper.make_model_gen_version(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="edgegru",
        doc_string=f"edgegru export of {model.name!r}: {chain}",
    )
    try:
        from importlib.metadata import PackageNotFoundError, version

        m.producer_version = version("edgegru")
    except PackageNotFoundError:
        pass
    if model.source:
        helper.set_model_props(
            m, {"edgegru.source": json.dumps(model.source, sort_keys=True, default=str)}
        )
    onnx.checker.check_model(m, full_check=True)
    return m


def save_onnx(model: ir.Model, path, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Export `model` with `to_onnx` and write it to `path` (one self-contained .onnx file;
    protobuf limits that to 2 GB of weights). Returns the ModelProto."""
    m = to_onnx(model, opset=opset)
    onnx.save_model(m, str(path))
    return m
