"""Export an IR model (`edgegru.ir`) to a standard ONNX graph.

Graph contract (docs/onnx.md has the long form):

* Input ``tokens``: int64 ``[batch, time]`` (token models; ids must be ``0 <= id < vocab``), or
  ``features``: float32 ``[batch, time, F]`` (feature models). ``batch`` and ``time`` are symbolic.
* Output ``output``: float32, ``[batch, out]`` or ``[batch, steps, out]``, exactly
  ``Model.output_shape(batch, time)`` (what Keras' ``predict`` returns); ``steps`` is ``time``
  unless a Conv1D changes the step count (then the symbol ``time_out``).
* Every recurrent layer becomes one fused ONNX ``GRU``, ``LSTM`` or ``RNN`` node (layout 0,
  time-major; a Bidirectional layer is one node with ``direction="bidirectional"``). The graph never
  uses ``Loop`` or ``Scan``. Only default-domain operators are used, opset ``MIN_OPSET`` or newer.
* Masks (Embedding(mask_zero), Masking) are computed from the data inside the graph. A recurrent
  layer that receives one runs on its input "compacted" (valid steps moved to the front, stably)
  with ``sequence_lens`` = the valid count, and its sequence output is scattered back to input
  time with Keras' masked-step values (see `_Compaction`). This is exact for padding anywhere.
* ``quantize="int8"``: the weights are int8 with per-row scales behind ``DequantizeLinear``.
  An int16x8 model (`to_onnx_int16x8`) adds int16 ``QuantizeLinear`` / ``DequantizeLinear``
  pairs (opset 21) at the input and after every layer, at the scales the integer model fixes
  (docs/onnx.md, "int16x8").

* An `ir.Graph` (several inputs / outputs, merges, shared layers, initial and final states) has
  one input per model input, named as it (token ids int64 ``[batch, T]``, features float32
  ``[batch, T, dim]``, vectors float32 ``[batch, dim]``) and one output per model output, named
  as the output value, in order (`_build_graph`, the "graphs" section below; docs/onnx.md).

Internally each layer is emitted by one small function found through ``_HANDLERS`` (IR layer type
-> handler). A handler receives its input as a `_Value` that carries the tensor name, its rank and
its layout (batch-major ``[B, T, ...]``, time-major ``[T, B, ...]`` or a per-sequence vector
``[B, F]``). Per-step layers (Embedding, Masking, Dense, Activation, Affine, LayerNorm) work in
either layout and keep it, so the batch/time transpose is done once, as early as possible (on the
int64 token ids when an Embedding feeds a recurrent layer), stacked recurrent layers stay
time-major between them, and the transpose back to batch-major happens once at the output. The
current mask travels beside the values in ``_GraphBuilder.mask``.

This module needs the optional ``onnx`` package; the rest of edgegru needs numpy only.
"""

from __future__ import annotations

import hashlib
import json
import types
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from . import ir
from .errors import UnsupportedError
from .quantize import int8_product_fits, quantize_rows

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("ONNX export needs the 'onnx' extra: pip install 'edgegru[onnx]'") from exc

__all__ = [
    "DEFAULT_OPSET",
    "INT16X8_ONNX_UNITS",
    "INT16X8_OPSET",
    "MIN_OPSET",
    "int16x8_onnx_tolerance",
    "int16x8_scales",
    "save_onnx",
    "save_onnx_int16x8",
    "to_onnx",
    "to_onnx_int16x8",
]

#: Default ONNX opset of exported models.
DEFAULT_OPSET = 17
#: Oldest opset the graph is valid for: Squeeze/Unsqueeze take `axes` as an input and Softmax
#: normalizes over one axis (not a flattened 2-D view) from opset 13 on. Below opset 17 a
#: LayerNorm is decomposed (LayerNormalization is opset 17); from opset 18 on the Reduce* ops take
#: `axes` as an input (the builder emits whichever form the opset wants).
MIN_OPSET = 13

INPUT_NAME = {ir.TOKENS: "tokens", ir.FEATURES: "features"}
OUTPUT_NAME = "output"
BATCH_DIM = "batch"
TIME_DIM = "time"
OUT_TIME_DIM = "time_out"  # output steps when a Conv1D changes the step count

# Layouts of an intermediate tensor.
BATCH_MAJOR = "batch_major"  # [B, T] token ids / masks or [B, T, C]
TIME_MAJOR = "time_major"  # [T, B] ids / masks or [T, B, C]; what the fused ops (layout=0) consume
VECTOR = "vector"  # [B, C]: one vector per sequence, no time axis

_INT64_MIN = int(np.iinfo(np.int64).min)

# Keras activation name -> (ONNX recurrent-op activation, alpha, beta); None = the function takes
# no such parameter. The activation_alpha / activation_beta attributes are separate lists,
# consumed in activation order by only the functions that take the parameter. hard_sigmoid is
# Keras 3's relu6(x + 3) / 6 = HardSigmoid(alpha=1/6, beta=0.5), not ONNX's default alpha 0.2
# (the Keras 2 definition); leaky_relu's Keras slope is 0.2; linear is Affine(1, 0).
_RNN_ACTIVATIONS: dict[str, tuple[str, float | None, float | None]] = {
    "linear": ("Affine", 1.0, 0.0),
    "relu": ("Relu", None, None),
    "sigmoid": ("Sigmoid", None, None),
    "tanh": ("Tanh", None, None),
    "hard_sigmoid": ("HardSigmoid", 1 / 6, 0.5),
    "elu": ("Elu", 1.0, None),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
    "leaky_relu": ("LeakyRelu", 0.2, None),
}

#: Keras activations whose ONNX recurrent-op function, as onnxruntime's fused GRU / LSTM / RNN
#: kernels compute it, overflows where Keras' does not -> why. Measured for every activation of
#: `_RNN_ACTIVATIONS` in every slot of GRU, LSTM and SimpleRNN at |x| = 30, 88, 89, 100, 1e3, 1e4
#: (tests/test_onnx_export.py, test_fused_activations_at_large_inputs): only softplus breaks.
#: onnxruntime computes it as log(1 + exp(x)), which is inf from x = 88.8 on (float32 exp
#: overflows); Keras computes softplus(100) = 100. The LSTM output is then inf and the GRU output
#: NaN (inf * 0). The ONNX RNN operators offer no stable form, and the exporter never emits Loop
#: or Scan, so such a layer is refused (`_check_fused_activations`) rather than exported with
#: numbers that are wrong for large pre-activations. A standalone Softplus node (Dense,
#: Activation, Conv1D) is computed stably by onnxruntime and stays exported.
_FUSED_OVERFLOW: dict[str, str] = {
    "softplus": (
        "onnxruntime's fused recurrent operators compute softplus as log(1 + exp(x)), which is "
        "inf for x > 88.7 (Keras: softplus(100) = 100), so the exported graph would give "
        "inf or NaN where Keras gives a number"
    ),
}

# Keras activation name -> (ONNX op, attributes) for Dense, Conv1D and Activation layers; None for
# no op. All are elementwise except softmax, which normalizes over the last (feature) axis as Keras
# does, for 2-D and 3-D input.
_ACTIVATIONS: dict[str, tuple[str, dict] | None] = {
    "linear": None,
    "relu": ("Relu", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "hard_sigmoid": ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}),
    "elu": ("Elu", {"alpha": 1.0}),
    "softsign": ("Softsign", {}),
    "softplus": ("Softplus", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.2}),
    "softmax": ("Softmax", {"axis": -1}),
}


@dataclass(frozen=True)
class _Value:
    """A tensor flowing between layers: its name, rank and layout (one of the constants above)."""

    name: str
    layout: str
    rank: int


class _GraphBuilder:
    """Accumulates nodes and initializers; hands out unique, readable names.

    Besides the graph it carries two pieces of state the main loop maintains:
    mask: the mask reaching the current layer (bool [B, T] or [T, B], a `_Value`), set by the layers
        that create one (Embedding, Masking); read only by layers whose `masked` flag is set.
    next_layout: the sequence layout the rest of the model wants (the next layout-sensitive layer's,
        else batch-major for the output). A layer that must transpose anyway (Conv1D) emits it.
    """

    def __init__(
        self, layer_names: list[str], opset: int = DEFAULT_OPSET, quantize: str | None = None
    ) -> None:
        self.opset = opset
        self.quantize = quantize
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        # Scopes the exporter itself uses; a layer with one of these names gets a suffix.
        self._scopes: set[str] = {"input", "output", "const"}
        self._layer_names = set(layer_names)
        self._consts: dict[tuple, str] = {}
        self.cache: dict[tuple, object] = {}  # per-mask tensors shared by several layers
        self.mask: _Value | None = None
        self.next_layout: str = BATCH_MAJOR
        # int16x8 only (set by _build per layer): the int16 scale of a Bidirectional layer's two
        # directions, quantized before a sum / ave / mul merge (None: no such pair).
        self.merge_input_scale: float | None = None

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

    def weight(self, name: str, array: np.ndarray, axis: int = 0, product: bool = True) -> str:
        """A weight matrix: an initializer, or with quantize="int8" the int8 values and the
        per-row scales of docs/quantization.md (rows along `axis`) behind a DequantizeLinear, so
        onnxruntime runs exactly the weights the .egru file holds. A product matrix (`product`)
        wider than the int8 bound stays float32, as the .egru writer keeps it
        (quantize.int8_product_fits). With quantize="int16x8" every weight is S8, as the int16x8
        emulation computes with it."""
        a = np.moveaxis(np.asarray(array, np.float32), axis, 0)
        rows = a.reshape(a.shape[0], -1)
        too_wide = self.quantize == "int8" and product and not int8_product_fits(rows.shape[1])
        if self.quantize is None or too_wide:
            return self.initializer(name, array)
        q, scale = quantize_rows(rows)
        q = np.moveaxis(q.reshape(a.shape), 0, axis)
        inputs = [self.initializer(f"{name}_int8", q), self.initializer(f"{name}_scale", scale)]
        return self.node("DequantizeLinear", inputs, [name], name=f"{name}_dequantize", axis=axis)

    def stacked_weight(self, name: str, arrays: list) -> str:
        """np.stack(arrays) ([D, rows, cols], an RNN op's W or R) with rows quantized per array
        and row: one DequantizeLinear over [D * rows, cols], reshaped to [D, rows, cols]."""
        w = np.stack(arrays)
        if self.quantize is None:
            return self.initializer(name, w)
        flat = self.weight(f"{name}_rows", w.reshape(-1, w.shape[-1]), axis=0)
        return self.add("Reshape", [flat, self.const_i64(w.shape)], name)

    def const_i64(self, values: tuple[int, ...]) -> str:
        """A shared int64 1-D constant (e.g. Squeeze axes)."""
        key = ("i64", *values)
        if key not in self._consts:
            name = "const/i64_" + "_".join(str(v) for v in values)
            self._consts[key] = self.initializer(name, np.asarray(values, dtype=np.int64))
        return self._consts[key]

    def scalar(self, value, dtype) -> str:
        """A shared 0-d constant of numpy `dtype` (int64 or float32)."""
        value = np.asarray(value, dtype=dtype)
        key = ("scalar", value.dtype.str, value.item())
        if key not in self._consts:
            name = f"const/{value.dtype.name}_{value.item()!r}"
            self._consts[key] = self.initializer(name, value)
        return self._consts[key]

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str, **attrs) -> str:
        """Append one node; returns its last output name."""
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))
        return outputs[-1]

    def add(self, op: str, inputs: list[str], out: str, **attrs) -> str:
        """Append a single-output node named like its output; returns the output name."""
        return self.node(op, inputs, [out], name=out, **attrs)

    def reduce(self, op: str, x: str, axes: tuple[int, ...], out: str, keepdims: int = 0) -> str:
        """Reduce{Sum,Mean,Max,Prod} over `axes`: an `axes` input from opset 18 on (ReduceSum: 13),
        an attribute before."""
        if op == "ReduceSum" or self.opset >= 18:
            return self.add(op, [x, self.const_i64(axes)], out, keepdims=keepdims)
        return self.add(op, [x], out, axes=list(axes), keepdims=keepdims)

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

    def mask_in(self, layout: str) -> str:
        """The current mask in `layout` (converted once, then kept in that layout)."""
        if self.mask is None:  # pragma: no cover - ir.Model.check sets `masked` consistently
            raise ValueError("a masked layer has no mask")
        self.mask = self.to_layout(self.mask, layout, self.mask.name)
        return self.mask.name

    def prune(self, outputs: list[str]) -> None:
        """Drop the nodes and initializers the `outputs` do not depend on (e.g. the mask of an
        Embedding(mask_zero) that no layer consumes, or forward-scatter tensors a last-state
        layer does not need). Node order stays topological."""
        needed = set(outputs)
        kept = []
        for node in reversed(self.nodes):
            if needed.intersection(node.output):
                kept.append(node)
                needed.update(node.input)
        self.nodes = kept[::-1]
        self.initializers = [t for t in self.initializers if t.name in needed]

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


# --- activations ---------------------------------------------------------------------------------


def _activate(g: _GraphBuilder, activation: str, x: str, out: str) -> str:
    """Apply a Keras activation (`_ACTIVATIONS`) to x; linear is an Identity into `out`."""
    act = _ACTIVATIONS[activation]
    if act is None:
        return g.add("Identity", [x], out)
    op, attrs = act
    return g.add(op, [x], out, **attrs)


def _check_fused_activations(model: ir.Model) -> None:
    """Raise UnsupportedError naming the layer, the slot, the activation and why for a recurrent
    layer (or Bidirectional) with an activation of `_FUSED_OVERFLOW`; called before anything is
    built (and by `convert` before any file is written)."""
    for layer in model.layers:
        cell = layer.forward if isinstance(layer, ir.Bidirectional) else layer
        if not isinstance(cell, ir.RECURRENT):
            continue
        kind = type(cell).__name__
        for slot in _RNN_OPS[type(cell)].slots:
            act = getattr(cell, slot)
            if act in _FUSED_OVERFLOW:
                raise UnsupportedError(
                    f"ONNX export: layer {layer.name!r} ({kind}) has {slot}={act!r}, which the "
                    f"export cannot reproduce: {_FUSED_OVERFLOW[act]}. Convert without "
                    f"--onnx / onnx_path (the .egru runtime computes {act} exactly), or use "
                    "another activation (docs/onnx.md)"
                )


def _rnn_activation_attrs(layer, num_directions: int = 1) -> dict:
    """activations / activation_alpha / activation_beta of a fused recurrent node for `layer`
    (GRU: [f, g] = [recurrent_activation, activation]; LSTM: [f, g, h] = [recurrent_activation,
    activation, activation]; RNN: [activation]), repeated per direction."""
    acts: list[str] = []
    alpha: list[float] = []
    beta: list[float] = []
    for slot in _RNN_OPS[type(layer)].slots * num_directions:
        keras_name = getattr(layer, slot)
        if keras_name not in _RNN_ACTIVATIONS:
            raise ValueError(
                f"{type(layer).__name__} {layer.name!r}: {slot}={keras_name!r} has no ONNX "
                f"{_RNN_OPS[type(layer)].op} mapping; supported: {', '.join(_RNN_ACTIVATIONS)}"
            )
        op, a, b = _RNN_ACTIVATIONS[keras_name]
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


# --- recurrent weights: IR (Keras layout) -> one direction of the fused op ----------------------


def _gru_weights(layer: ir.GRU) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gate blocks z|r|h in both frameworks (no reordering):
    W [3H, I] = kernel.T;  R [3H, H] = recurrent_kernel.T;  B [6H] = [input_bias | recurrent_bias].
    (With reset_after False the IR's recurrent bias is zeros and ONNX (linear_before_reset=0) adds
    Rb outside the reset product, which is what ir.GRU / reference define.)"""
    return (
        layer.kernel.T,
        layer.recurrent_kernel.T,
        np.concatenate([layer.input_bias, layer.recurrent_bias]),
    )


#: Keras LSTM gate blocks i, f, c, o -> ONNX order i, o, f, c.
_LSTM_GATE_ORDER = (0, 3, 1, 2)


def _lstm_iofc(a: np.ndarray) -> np.ndarray:
    """Reorder the 4H axis (last) of a Keras LSTM weight from blocks i|f|c|o to ONNX i|o|f|c."""
    blocks = np.split(a, 4, axis=-1)
    return np.concatenate([blocks[k] for k in _LSTM_GATE_ORDER], axis=-1)


def _lstm_weights(layer: ir.LSTM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W [4H, I], R [4H, H] in ONNX gate order i|o|f|c; B [8H] = [bias (iofc) | zeros (4H)]."""
    bias = _lstm_iofc(layer.bias)
    return (
        _lstm_iofc(layer.kernel).T,
        _lstm_iofc(layer.recurrent_kernel).T,
        np.concatenate([bias, np.zeros_like(bias)]),
    )


def _rnn_weights(layer: ir.SimpleRNN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W [H, I] = kernel.T;  R [H, H] = recurrent_kernel.T;  B [2H] = [bias | zeros]."""
    return layer.kernel.T, layer.recurrent_kernel.T, np.concatenate([layer.bias, 0 * layer.bias])


@dataclass(frozen=True)
class _RnnOp:
    """How an IR recurrent layer type maps onto its fused ONNX operator.

    slots: the IR activation attributes, in the order of the op's `activations` attribute.
    weights: layer -> (W, R, B) of one direction, in the op's gate order (see the functions above).
    attrs: extra node attributes.
    """

    op: str
    slots: tuple[str, ...]
    weights: Callable[[object], tuple[np.ndarray, np.ndarray, np.ndarray]]
    attrs: Callable[[object], dict]


_RNN_OPS: dict[type, _RnnOp] = {
    ir.GRU: _RnnOp(
        "GRU",
        ("recurrent_activation", "activation"),
        _gru_weights,
        lambda layer: {"linear_before_reset": int(layer.reset_after)},
    ),
    ir.LSTM: _RnnOp(
        "LSTM", ("recurrent_activation", "activation", "activation"), _lstm_weights, lambda _: {}
    ),
    ir.SimpleRNN: _RnnOp("RNN", ("activation",), _rnn_weights, lambda _: {}),
}


def _rnn_node(
    g: _GraphBuilder,
    cells: list,
    direction: str,
    x: str,
    seq_lens: str | None,
    scope: str,
    sequences: bool,
    initial: tuple[str | None, str | None] = (None, None),
    states: bool = False,
):
    """One fused GRU/LSTM/RNN node over x [T, B, I] (layout 0) for `cells` (one layer, or the
    forward and backward layers of a Bidirectional; W/R/B stacked in that order).

    Returns Y [T, D, B, H] when `sequences`, else Y_h [D, B, H] (D = len(cells)). With
    `seq_lens` (int32 [B]) the op reads only the first seq_lens[b] steps of row b: Y is zero after
    them, Y_h is the state after them (forward) or after step 0 (reverse), zero when the length
    is 0 (even with an initial state). A reverse direction's Y is aligned to input time.
    Graphs only: `initial` = (initial_h, initial_c) [D, B, H] (None: zero; initial_c: LSTM), and
    with `states` the result is (Y or None, Y_h, Y_c or None) (Y_c: LSTM).
    """
    spec = _RNN_OPS[type(cells[0])]
    ws, rs, bs = zip(*(spec.weights(c) for c in cells), strict=True)
    inputs = [
        x,
        g.stacked_weight(f"{scope}/W", list(ws)),
        g.stacked_weight(f"{scope}/R", list(rs)),
        g.initializer(f"{scope}/B", np.stack(bs)),
    ]
    if seq_lens is not None:
        inputs.append(seq_lens)
    if any(t is not None for t in initial):
        inputs += [""] * (5 - len(inputs))  # sequence_lens absent: an empty name
        inputs += [t or "" for t in initial[: 2 if spec.op == "LSTM" else 1]]
        while not inputs[-1]:
            inputs.pop()
    if states:
        outputs = [f"{scope}/Y" if sequences else "", f"{scope}/Y_h"]
        if spec.op == "LSTM":
            outputs.append(f"{scope}/Y_c")
    else:
        outputs = [f"{scope}/Y"] if sequences else ["", f"{scope}/Y_h"]
    last = g.node(
        spec.op,
        inputs,
        outputs,
        name=f"{scope}/{spec.op}",
        hidden_size=cells[0].units,
        direction=direction,
        **spec.attrs(cells[0]),
        **_rnn_activation_attrs(cells[0], len(cells)),
    )
    if not states:
        return last
    return (outputs[0] or None, outputs[1], outputs[2] if len(outputs) > 2 else None)


# --- masking: compaction of valid steps (time-major) ---------------------------------------------
#
# ONNX's sequence_lens says "row b's first L steps are valid". A Keras mask can mask any steps
# (pre-padding, holes), so the valid steps are first moved to the front ("compacted") with a stable
# permutation, the op runs with sequence_lens = the valid count, and its outputs are gathered back
# to input time:
#
#   forward:  the output at input step t is Y[c_t - 1], c = CumSum(mask) (inclusive): the state
#             after the last valid step at or before t; none yet (c_t = 0) -> Keras outputs zero.
#   reverse:  the op processes compacted steps L-1 .. 0, so after the valid steps at or after t
#             (rc_t = reverse CumSum(mask) of them) its output is Y[L - rc_t]; rc_t = 0 -> zero.
#
# A masked step therefore repeats the previous output (zero before the first valid step), which is
# Keras' unidirectional rule; a Bidirectional layer instead zeroes masked steps (Where(mask)).


@dataclass(frozen=True)
class _Compaction:
    """Tensors derived from one time-major mask m: bool [T, B], shared by every layer it reaches.

    perm: int64 [T, B]; perm[k, b] = input step of row b's k-th valid step (masked steps follow,
        in time order): TopK(key = (1 - m) * T + t, K=T, smallest first) on unique keys.
    lens: int32 [B], the valid count per row, for sequence_lens.
    valid: int64 [T, B], m as 0/1.
    pos: int64 [T, B], max(c - 1, 0) with c = CumSum(m): where step t's forward output lives.
    seen: bool [T, B], c > 0: some valid step at or before t.
    """

    mask: str
    perm: str
    lens: str
    valid: str
    pos: str
    seen: str


def _compaction(g: _GraphBuilder) -> _Compaction:
    """The `_Compaction` of the current mask, built once per mask (pos / seen are pruned again
    when only last-state layers consume the mask)."""
    m = g.mask_in(TIME_MAJOR)
    key = ("compaction", m)
    if key in g.cache:
        return g.cache[key]
    p = f"{m}/compact"
    valid = g.add("Cast", [m], f"{p}/valid", to=TensorProto.INT64)
    steps = g.add("Gather", [g.add("Shape", [m], f"{p}/shape"), g.const_i64((0,))], f"{p}/steps")
    steps_0d = g.add("Squeeze", [steps], f"{p}/steps_0d")
    t = g.add("Range", [g.scalar(0, np.int64), steps_0d, g.scalar(1, np.int64)], f"{p}/t")
    t = g.add("Unsqueeze", [t, g.const_i64((1,))], f"{p}/t_col")  # [T, 1]
    masked = g.add("Sub", [g.scalar(1, np.int64), valid], f"{p}/masked")
    sort_key = g.add("Add", [g.add("Mul", [masked, steps], f"{p}/masked_T"), t], f"{p}/key")
    perm = g.node(
        "TopK",
        [sort_key, steps],
        [f"{p}/key_sorted", f"{p}/perm"],
        name=f"{p}/TopK",
        axis=0,
        largest=0,
        sorted=1,
    )
    count = g.reduce("ReduceSum", valid, (0,), f"{p}/count")
    lens = g.add("Cast", [count], f"{p}/lens", to=TensorProto.INT32)
    c = g.add("CumSum", [valid, g.scalar(0, np.int64)], f"{p}/cumsum")
    c_1 = g.add("Sub", [c, g.scalar(1, np.int64)], f"{p}/cumsum_1")
    pos = g.add("Max", [c_1, g.scalar(0, np.int64)], f"{p}/pos")
    seen = g.add("Greater", [c, g.scalar(0, np.int64)], f"{p}/seen")
    g.cache[key] = _Compaction(m, perm, lens, valid, pos, seen)
    return g.cache[key]


def _reverse_carry(g: _GraphBuilder, comp: _Compaction) -> tuple[str, str]:
    """(pos, seen) for a reverse (go_backwards) op on compacted input: pos = L - rc, seen = rc > 0
    with rc = reverse CumSum(m) (valid steps at or after t). pos <= T - 1: rc = 0 needs L < T."""
    key = ("reverse_carry", comp.mask)
    if key not in g.cache:
        p = f"{comp.mask}/compact"
        rc = g.add("CumSum", [comp.valid, g.scalar(0, np.int64)], f"{p}/rcumsum", reverse=1)
        count = g.reduce("ReduceSum", comp.valid, (0,), f"{p}/count_1b", keepdims=1)  # [1, B]
        pos = g.add("Sub", [count, rc], f"{p}/rpos")
        seen = g.add("Greater", [rc, g.scalar(0, np.int64)], f"{p}/rseen")
        g.cache[key] = (pos, seen)
    return g.cache[key]


def _step_axes(rank: int) -> tuple[int, ...]:
    """Axes that lift a [T, B] tensor to broadcast against [T, B, C] (rank 3) or the fused ops'
    Y [T, D, B, H] (rank 4)."""
    return (2,) if rank == 3 else (1, 3)


def _gather_steps(g: _GraphBuilder, x: str, rank: int, index: str, out: str) -> str:
    """out[t, ..., b, ...] = x[index[t, b], ..., b, ...]: GatherElements along time (axis 0) of a
    time-major x ([T, B, C] or [T, D, B, H]) with a [T, B] int64 index."""
    idx = g.add("Unsqueeze", [index, g.const_i64(_step_axes(rank))], f"{out}/index")
    idx = g.add("Expand", [idx, g.add("Shape", [x], f"{out}/shape")], f"{out}/index_full")
    return g.add("GatherElements", [x, idx], out, axis=0)


def _where_steps(g: _GraphBuilder, cond: str, x: str, rank: int, out: str) -> str:
    """Where(cond [T, B], x, 0) for a time-major x of `rank` (cond broadcast over features)."""
    cond = g.add("Unsqueeze", [cond, g.const_i64(_step_axes(rank))], f"{out}/cond")
    return g.add("Where", [cond, x, g.scalar(0.0, np.float32)], out)


def _reverse_time(g: _GraphBuilder, x: str, out: str) -> str:
    """x[::-1] along axis 0 (dynamic length): Slice(start -1, end INT64_MIN, step -1)."""
    return g.add(
        "Slice",
        [x, g.const_i64((-1,)), g.const_i64((_INT64_MIN,)), g.const_i64((0,)), g.const_i64((-1,))],
        out,
    )


# --- one handler per IR layer type -------------------------------------------------------------


def _emit_embedding(g: _GraphBuilder, layer: ir.Embedding, x: _Value, scope: str) -> _Value:
    """ids [B, T] or [T, B] int64 -> Gather(table (vocab, E)) -> [B, T, E] or [T, B, E].
    mask_zero: mask = ids != 0, bool in the ids' layout."""
    table = g.weight(f"{scope}/table", layer.table, axis=0, product=False)
    g.mask = None
    if layer.mask_zero:
        eq = g.add("Equal", [x.name, g.scalar(0, np.int64)], f"{scope}/is_pad")
        g.mask = _Value(g.add("Not", [eq], f"{scope}/mask"), x.layout, 2)
    out = g.node("Gather", [table, x.name], [f"{scope}/output"], name=f"{scope}/Gather", axis=0)
    return _Value(out, x.layout, x.rank + 1)


def _emit_masking(g: _GraphBuilder, layer: ir.Masking, x: _Value, scope: str) -> _Value:
    """x [B, T, C] or [T, B, C] -> mask = any(x != mask_value, -1) (bool, x's layout; replaces any
    incoming mask); output Where(mask, x, 0) (whole masked steps zeroed, as Keras)."""
    eq = g.add("Equal", [x.name, g.scalar(layer.mask_value, np.float32)], f"{scope}/equal")
    neq = g.add("Not", [eq], f"{scope}/not_equal")
    neq = g.add("Cast", [neq], f"{scope}/not_equal_f", to=TensorProto.FLOAT)
    anyf = g.reduce("ReduceMax", neq, (2,), f"{scope}/any")  # 1.0 if any channel differs
    mask = g.add("Cast", [anyf], f"{scope}/mask", to=TensorProto.BOOL)
    g.mask = _Value(mask, x.layout, 2)
    cond = g.add("Unsqueeze", [mask, g.const_i64((2,))], f"{scope}/mask_3d")
    out = g.add("Where", [cond, x.name, g.scalar(0.0, np.float32)], f"{scope}/output")
    return _Value(out, x.layout, x.rank)


def _recurrent_input(g: _GraphBuilder, layer, x: _Value, scope: str):
    """(input name, `_Compaction` or None) of a recurrent layer: x itself, or with a mask x with
    its valid steps gathered to the front (then sequence_lens = comp.lens)."""
    if not layer.masked:
        return x.name, None
    comp = _compaction(g)
    return _gather_steps(g, x.name, 3, comp.perm, f"{scope}/compacted"), comp


def _emit_recurrent(g: _GraphBuilder, layer, x: _Value, scope: str) -> _Value:
    """GRU / LSTM / SimpleRNN: x [T, B, I] time-major -> one fused node (see `_RNN_OPS`).

    direction = "reverse" for go_backwards. return_sequences: [T, B, H] time-major, in Keras'
    processing order (go_backwards: reversed time, never flipped back); else the final state
    Y_h[0] = [B, H]. With a mask: compacted input, sequence_lens, then the outputs gathered back
    with carry-forward (`_Compaction`).
    """
    xin, comp = _recurrent_input(g, layer, x, scope)
    direction = "reverse" if layer.go_backwards else "forward"
    seq_lens = comp.lens if comp is not None else None
    y = _rnn_node(g, [layer], direction, xin, seq_lens, scope, layer.return_sequences)
    if not layer.return_sequences:
        y = g.node("Squeeze", [y, g.const_i64((0,))], [f"{scope}/output"], name=f"{scope}/Squeeze")
        return _Value(y, VECTOR, 2)
    y = g.node("Squeeze", [y, g.const_i64((1,))], [f"{scope}/output"], name=f"{scope}/Squeeze")
    if comp is not None:
        pos, seen = _reverse_carry(g, comp) if layer.go_backwards else (comp.pos, comp.seen)
        y = _gather_steps(g, y, 3, pos, f"{scope}/scattered")
        y = _where_steps(g, seen, y, 3, f"{scope}/carried")
    if layer.go_backwards:
        y = _reverse_time(g, y, f"{scope}/processing_order")
    return _Value(y, TIME_MAJOR, 3)


def _emit_bidirectional(g: _GraphBuilder, layer: ir.Bidirectional, x: _Value, scope: str) -> _Value:
    """x [T, B, I] time-major -> one fused node, direction="bidirectional" (forward then backward
    weights; the backward half of Y is already aligned to input time, as Keras flips it).

    return_sequences: Y [T, 2, B, H]; with a mask gathered back and zeroed at masked steps (Keras
    sets zero_output_for_mask in a Bidirectional); merged to [T, B, 2H] (concat: forward first) or
    [T, B, H] (sum / ave / mul over the direction axis). Else Y_h [2, B, H] merged to [B, 2H] or
    [B, H]. int16x8 (`g.merge_input_scale`): an int16 QDQ pair on Y / Y_h before a sum / ave /
    mul merge (the scheme merges the two int16 states).
    """
    xin, comp = _recurrent_input(g, layer, x, scope)
    seq = layer.return_sequences
    seq_lens = comp.lens if comp is not None else None
    y = _rnn_node(g, [layer.forward, layer.backward], "bidirectional", xin, seq_lens, scope, seq)
    if seq and comp is not None:
        y = _gather_steps(g, y, 4, comp.pos, f"{scope}/scattered")
        y = _where_steps(g, comp.mask, y, 4, f"{scope}/zeroed")
    axis = 1 if seq else 0  # the direction axis of Y / Y_h
    out = f"{scope}/output"
    if g.merge_input_scale is not None and layer.merge_mode != "concat":
        # int16x8: the directions are int16 at their shared state scale before the merge
        y = _qdq16(g, _Value(y, TIME_MAJOR, 4), g.merge_input_scale, f"{scope}/directions").name
    if layer.merge_mode == "concat":
        perm = [0, 2, 1, 3] if seq else [1, 0, 2]  # direction next to the features
        y = g.add("Transpose", [y], f"{scope}/directions_last", perm=perm)
        y = g.add("Reshape", [y, g.const_i64((0, 0, -1) if seq else (0, -1))], out)
    else:
        op = {"sum": "ReduceSum", "ave": "ReduceMean", "mul": "ReduceProd"}[layer.merge_mode]
        y = g.reduce(op, y, (axis,), out)
    return _Value(y, TIME_MAJOR if seq else VECTOR, 3 if seq else 2)


def _emit_dense(g: _GraphBuilder, layer: ir.Dense, x: _Value, scope: str) -> _Value:
    """x [..., in] (any layout) -> act(MatMul(x, kernel (in, out)) + bias (out,)) -> [..., out]."""
    kernel = g.weight(f"{scope}/kernel", layer.kernel, axis=1)  # one scale per output
    bias = g.initializer(f"{scope}/bias", layer.bias)
    act = _ACTIVATIONS[layer.activation]
    y = g.node("MatMul", [x.name, kernel], [f"{scope}/matmul"], name=f"{scope}/MatMul")
    pre = f"{scope}/output" if act is None else f"{scope}/preact"
    y = g.node("Add", [y, bias], [pre], name=f"{scope}/Add")
    if act is not None:
        op, attrs = act
        y = g.node(op, [y], [f"{scope}/output"], name=f"{scope}/{op}", **attrs)
    return _Value(y, x.layout, x.rank)


def _emit_activation(g: _GraphBuilder, layer: ir.Activation, x: _Value, scope: str) -> _Value:
    """x (any layout) -> the activation op (softmax over the last axis; linear: Identity)."""
    return _Value(_activate(g, layer.activation, x.name, f"{scope}/output"), x.layout, x.rank)


def _emit_affine(g: _GraphBuilder, layer: ir.Affine, x: _Value, scope: str) -> _Value:
    """x [..., C] (any layout) -> x * scale (C,) + shift (C,) (folded BatchNorm / Normalization)."""
    scale = g.initializer(f"{scope}/scale", layer.scale)
    shift = g.initializer(f"{scope}/shift", layer.shift)
    y = g.add("Mul", [x.name, scale], f"{scope}/scaled")
    return _Value(g.add("Add", [y, shift], f"{scope}/output"), x.layout, x.rank)


def _emit_layer_norm(g: _GraphBuilder, layer: ir.LayerNorm, x: _Value, scope: str) -> _Value:
    """x [..., C] (any layout) -> LayerNormalization over the last axis (biased variance,
    epsilon inside the sqrt). Opset < 17 has no LayerNormalization: the same formula in
    primitive ops."""
    gamma = g.initializer(f"{scope}/gamma", layer.gamma)
    beta = g.initializer(f"{scope}/beta", layer.beta)
    out = f"{scope}/output"
    if g.opset >= 17:
        y = g.node(
            "LayerNormalization",
            [x.name, gamma, beta],
            [out],
            name=f"{scope}/LayerNormalization",
            axis=-1,
            epsilon=layer.epsilon,
        )
        return _Value(y, x.layout, x.rank)
    last = (x.rank - 1,)
    mean = g.reduce("ReduceMean", x.name, last, f"{scope}/mean", keepdims=1)
    d = g.add("Sub", [x.name, mean], f"{scope}/centered")
    var = g.reduce("ReduceMean", g.add("Mul", [d, d], f"{scope}/sq"), last, f"{scope}/var", 1)
    eps = g.scalar(layer.epsilon, np.float32)
    std = g.add("Sqrt", [g.add("Add", [var, eps], f"{scope}/var_eps")], f"{scope}/std")
    y = g.add("Mul", [g.add("Div", [d, std], f"{scope}/normed"), gamma], f"{scope}/scaled")
    return _Value(g.add("Add", [y, beta], out), x.layout, x.rank)


def _emit_conv1d(g: _GraphBuilder, layer: ir.Conv1D, x: _Value, scope: str) -> _Value:
    """x [B, T, C] or [T, B, C] -> Transpose to NCW [B, C, T] -> Conv(W [F, C, k] =
    kernel.transpose(2, 1, 0), B [F]) -> activation -> Transpose to `g.next_layout`.

    Pads (Keras/TensorFlow): valid [0, 0]; causal [d(k-1), 0]; same with stride 1:
    [d(k-1)//2, rest] (extra step at the end); same with stride > 1 depends on T, so
    auto_pad=SAME_UPPER (TensorFlow's split; onnxruntime supports it only with dilation 1 -- Keras
    rejects strides > 1 with dilation > 1 too).
    """
    k, s, d = layer.kernel_size, layer.strides, layer.dilation_rate
    attrs: dict = {"kernel_shape": [k], "strides": [s], "dilations": [d]}
    total = d * (k - 1)
    if layer.padding == "valid":
        attrs["pads"] = [0, 0]
    elif layer.padding == "causal":
        attrs["pads"] = [total, 0]
    elif s == 1:
        attrs["pads"] = [total // 2, total - total // 2]
    elif d == 1:
        attrs["auto_pad"] = "SAME_UPPER"
    else:
        raise ValueError(
            f"Conv1D {layer.name!r}: padding='same' with strides > 1 and dilation_rate > 1 has no "
            "ONNX export (Keras rejects this combination)"
        )
    perm_in = [0, 2, 1] if x.layout == BATCH_MAJOR else [1, 2, 0]
    xc = g.add("Transpose", [x.name], f"{scope}/to_ncw", perm=perm_in)
    w = layer.kernel.transpose(2, 1, 0)  # [F, C, k]
    if g.quantize == "int16x8":  # S8 with one scale per output channel (QUANTIZABLE_INT16X8)
        w = g.weight(f"{scope}/W", w, axis=0)
    else:  # float32, as the .egru writer keeps it for int8 (format.QUANTIZABLE)
        w = g.initializer(f"{scope}/W", w)
    b = g.initializer(f"{scope}/B", layer.bias)
    y = g.node("Conv", [xc, w, b], [f"{scope}/conv"], name=f"{scope}/Conv", **attrs)
    y = _activate(g, layer.activation, y, f"{scope}/activated")
    layout = g.next_layout
    perm_out = [2, 0, 1] if layout == TIME_MAJOR else [0, 2, 1]
    return _Value(g.add("Transpose", [y], f"{scope}/output", perm=perm_out), layout, 3)


def _emit_global_pool(g: _GraphBuilder, layer: ir.GlobalPool, x: _Value, scope: str) -> _Value:
    """x [B, T, C] or [T, B, C] -> [B, C]. max: ReduceMax over time (Keras ignores a mask here);
    average: ReduceMean, or with a mask the masked mean ReduceSum(Where(m, x, 0)) / ReduceSum(m)
    (an all-masked row is 0/0 = NaN, as in Keras; int16x8: 0, the scheme's value, by dividing by
    max(ReduceSum(m), 1))."""
    axis = (0,) if x.layout == TIME_MAJOR else (1,)
    out = f"{scope}/output"
    if layer.kind == "max":
        return _Value(g.reduce("ReduceMax", x.name, axis, out), VECTOR, 2)
    if not layer.masked:
        return _Value(g.reduce("ReduceMean", x.name, axis, out), VECTOR, 2)
    m = g.add("Unsqueeze", [g.mask_in(x.layout), g.const_i64((2,))], f"{scope}/mask_3d")
    kept = g.add("Where", [m, x.name, g.scalar(0.0, np.float32)], f"{scope}/masked")
    total = g.reduce("ReduceSum", kept, axis, f"{scope}/sum")
    count = g.reduce(
        "ReduceSum", g.add("Cast", [m], f"{scope}/mask_f", to=TensorProto.FLOAT), axis, f"{scope}/n"
    )
    if g.quantize == "int16x8":  # the scheme's all-masked row is 0 (0 / 1), not NaN
        count = g.add("Max", [count, g.scalar(1.0, np.float32)], f"{scope}/n_at_least_1")
    return _Value(g.add("Div", [total, count], out), VECTOR, 2)


def _emit_flatten(g: _GraphBuilder, layer: ir.Flatten, x: _Value, scope: str) -> _Value:
    """x [B, T, C] batch-major -> Reshape to [B, T * C] (row-major). The fixed T * C target makes
    a wrong T a runtime error rather than a silently different width."""
    shape = g.const_i64((0, layer.steps * layer.dim))
    return _Value(g.add("Reshape", [x.name, shape], f"{scope}/output"), VECTOR, 2)


@dataclass(frozen=True)
class _Handler:
    """emit(builder, layer, x, scope) -> output value.

    wants: the layout the layer needs its input in (the caller converts before emit), or None for
    layers that accept either sequence layout.
    per_step: the layer acts on each step alone (it commutes with the batch/time transpose), so
    the transpose the next layout-sensitive layer needs can happen before it.
    """

    emit: Callable[[_GraphBuilder, object, _Value, str], _Value]
    wants: str | None = None
    per_step: bool = False


_HANDLERS: dict[type, _Handler] = {
    ir.Embedding: _Handler(_emit_embedding, per_step=True),
    ir.Masking: _Handler(_emit_masking, per_step=True),
    ir.GRU: _Handler(_emit_recurrent, TIME_MAJOR),
    ir.LSTM: _Handler(_emit_recurrent, TIME_MAJOR),
    ir.SimpleRNN: _Handler(_emit_recurrent, TIME_MAJOR),
    ir.Bidirectional: _Handler(_emit_bidirectional, TIME_MAJOR),
    ir.Dense: _Handler(_emit_dense, per_step=True),
    ir.Activation: _Handler(_emit_activation, per_step=True),
    ir.Affine: _Handler(_emit_affine, per_step=True),
    ir.LayerNorm: _Handler(_emit_layer_norm, per_step=True),
    ir.Conv1D: _Handler(_emit_conv1d),
    ir.GlobalPool: _Handler(_emit_global_pool),
    ir.Flatten: _Handler(_emit_flatten, BATCH_MAJOR),
}


def _handler(layer) -> _Handler:
    try:
        return _HANDLERS[type(layer)]
    except KeyError:
        raise TypeError(
            f"ONNX export has no handler for layer type {type(layer).__name__}"
        ) from None


def _preferred_layout(layers) -> str | None:
    """The layout the first non-per-step layer of `layers` wants (None: it takes either, or there
    is none)."""
    for layer in layers:
        h = _handler(layer)
        if not h.per_step:
            return h.wants
    return None


def _keeps_steps(layer) -> bool:
    """Whether the layer's output sequence has its input's step count."""
    if not isinstance(layer, ir.Conv1D):
        return True
    unpadded = layer.padding == "valid" and layer.dilation_rate * (layer.kernel_size - 1) > 0
    return layer.strides == 1 and not unpadded


def _describe(layer) -> str:
    name = type(layer).__name__
    if isinstance(layer, ir.Embedding):
        mask = ", mask_zero" if layer.mask_zero else ""
        return f"Embedding({layer.table.shape[0]}, {layer.output_dim}{mask})"
    if isinstance(layer, ir.Bidirectional):
        return f"Bidirectional({_describe(layer.forward)}, {layer.merge_mode})"
    if isinstance(layer, ir.RECURRENT):
        opts = [f"{layer.activation}/{layer.recurrent_activation}"]
        if isinstance(layer, ir.GRU):
            opts.append(f"reset_after={layer.reset_after}")
        opts += [o for o in ("return_sequences", "go_backwards") if getattr(layer, o)]
        return f"{name}({layer.units}, {', '.join(opts)})"
    if isinstance(layer, (ir.Dense, ir.Activation)):
        return f"{name}({layer.units}, {layer.activation})"
    if isinstance(layer, ir.Conv1D):
        return f"Conv1D({layer.units}, {layer.kernel_size}, {layer.padding}, {layer.activation})"
    if isinstance(layer, ir.GlobalPool):
        return f"GlobalPool({layer.kind})"
    return f"{name}({layer.units})"


def _check_opset(opset: int, minimum: int = MIN_OPSET, what: str = "") -> None:
    latest = onnx.defs.onnx_opset_version()
    if not minimum <= opset <= latest:
        raise ValueError(
            f"opset{what} must be in {minimum}..{latest} (installed onnx), got {opset}"
        )


def to_onnx(
    model: ir.Model | ir.Graph,
    opset: int | None = None,
    quantize: str | None = None,
    calibration=None,
) -> onnx.ModelProto:
    """Build the ONNX model for `model` (see the module docstring for the graph contract; an
    `ir.Graph` has one ONNX input and output per model input and output, `_build_graph`).

    opset: default-domain opset, MIN_OPSET..onnx.defs.onnx_opset_version(); None: DEFAULT_OPSET
    (INT16X8_OPSET for quantize="int16x8"). The IR version is the oldest one that supports that
    opset, so older runtimes can load the file.
    quantize: None, "int8" or "int16x8". "int8": the weight matrices the .egru writer quantizes
    (format.QUANTIZABLE) are int8 initializers with per-row float scales feeding DequantizeLinear
    (per-axis, opset 13), so the graph computes with exactly the dequantized int8 weights, in
    float. "int16x8": `to_onnx_int16x8(int16x8.quantize(model, calibration))`, the QDQ graph of
    the integer-only scheme (calibration: inputs as `predict` takes them; None: the documented
    default calibration).
    The result passes onnx.checker.check_model(full_check=True).
    Raises UnsupportedError for a recurrent layer whose activation onnxruntime's fused operator
    would compute wrongly (softplus: `_FUSED_OVERFLOW`).
    """
    if quantize not in (None, "int8", "int16x8"):
        raise ValueError(f"quantize must be None, 'int8' or 'int16x8', got {quantize!r}")
    if isinstance(model, ir.Graph):
        if quantize == "int16x8":
            raise UnsupportedError(
                f"ONNX export: model {model.name!r} is a graph; int16x8 graphs are not supported "
                "(export it in float32 or with quantize='int8')"
            )
        if calibration is not None:
            raise ValueError("calibration is only used with quantize='int16x8'")
        return _build_graph(model, DEFAULT_OPSET if opset is None else opset, quantize)
    if quantize == "int16x8":
        from . import int16x8

        opset = INT16X8_OPSET if opset is None else opset
        _check_opset(opset, INT16X8_OPSET, " of an int16x8 export (int16 QuantizeLinear)")
        return to_onnx_int16x8(int16x8.quantize(model, calibration), opset=opset)
    if calibration is not None:
        raise ValueError("calibration is only used with quantize='int16x8'")
    return _build(model, DEFAULT_OPSET if opset is None else opset, quantize)


def _build(model: ir.Model, opset: int, quantize: str | None, qdq=None) -> onnx.ModelProto:
    """The graph of `to_onnx`; with `qdq` (`_Int16Scales`) an int16 QuantizeLinear /
    DequantizeLinear pair follows the model input and every layer output."""
    _check_opset(opset)
    model.check()
    for layer in model.layers:
        _handler(layer)  # fail before building anything
    _check_fused_activations(model)

    g = _GraphBuilder([layer.name for layer in model.layers], opset, quantize)
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
    if qdq is not None and qdq.input is not None:
        x = _qdq16(g, x, qdq.input, "input")

    # Per-step layers commute with the batch/time transpose, so move the input straight into the
    # layout the first layout-sensitive layer wants (transposing [B, T] ids beats [B, T, E]).
    first_want = _preferred_layout(model.layers)
    if first_want is not None:
        x = g.to_layout(x, first_want, "input")

    for k, layer in enumerate(model.layers):
        h = _handler(layer)
        scope = g.scope(layer.name)
        if h.wants is not None:
            x = g.to_layout(x, h.wants, scope)
        g.next_layout = _preferred_layout(model.layers[k + 1 :]) or BATCH_MAJOR
        g.merge_input_scale = None if qdq is None else qdq.merges[k]
        x = h.emit(g, layer, x, scope)
        if qdq is not None and qdq.layers[k] is not None:
            x = _qdq16(g, x, qdq.layers[k], f"{scope}/output")

    if x.layout == TIME_MAJOR:
        x = g.to_layout(x, BATCH_MAJOR, "output")
    g.rename_output(x.name, OUTPUT_NAME)
    g.prune([OUTPUT_NAME])

    if model.output_is_sequence:
        steps = TIME_DIM if all(_keeps_steps(la) for la in model.layers) else OUT_TIME_DIM
        out_shape = [BATCH_DIM, steps]
    else:
        out_shape = [BATCH_DIM]
    out = helper.make_tensor_value_info(
        OUTPUT_NAME, TensorProto.FLOAT, [*out_shape, model.output_dim]
    )
    chain = " -> ".join(_describe(la) for la in model.layers)
    if qdq is not None:
        chain += " (int16x8: int16 QuantizeLinear/DequantizeLinear at every layer boundary)"
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
    props = {}
    if model.source:
        props["edgegru.source"] = json.dumps(model.source, sort_keys=True, default=str)
    if qdq is not None:
        props["edgegru.quantize"] = "int16x8"
    if props:
        helper.set_model_props(m, props)
    onnx.checker.check_model(m, full_check=True)
    return m


def save_onnx(
    model: ir.Model | ir.Graph,
    path,
    opset: int | None = None,
    quantize: str | None = None,
    calibration=None,
) -> onnx.ModelProto:
    """Export `model` with `to_onnx` and write it to `path` (one self-contained .onnx file;
    protobuf limits that to 2 GB of weights). Returns the ModelProto."""
    m = to_onnx(model, opset=opset, quantize=quantize, calibration=calibration)
    onnx.save_model(m, str(path))
    return m


# --- graphs: ir.Graph (several inputs and outputs, merges, shared layers, states) ---------------
#
# A graph export has one ONNX input per model input, named as the GraphInput (token ids int64
# [batch, T], features float32 [batch, T, dim], vectors float32 [batch, dim]), and one output per
# model output, named as the output value, in model order. Every value keeps the layout it was
# computed in; a reader that needs another layout gets one Transpose per (tensor, layout), made
# once. The layout a sequence value is computed in is the one its readers want (`_want`): time-major
# when a recurrent node reads it (directly or through per-step layers and merges), else
# batch-major. Each value's mask travels beside it (`_GraphExport.masks`), combined by merges and
# concatenations with the rules of docs/format.md "Mask rules".


class _GraphModelBuilder(_GraphBuilder):
    """The builder of a graph export. Every initializer is stored once per content (dtype, shape,
    bytes), and so is every int8 weight's DequantizeLinear: a layer applied in several nodes
    stores its weights once. Every layout conversion of a tensor is emitted once and reused."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._stored: dict = {}
        self._converted: dict = {}

    @staticmethod
    def _key(kind: str, array, *extra) -> tuple:
        a = np.asarray(array)  # not ascontiguousarray: it makes a 0-d array 1-d
        return (kind, a.dtype.str, a.shape, hashlib.sha256(a.tobytes()).hexdigest(), *extra)

    def initializer(self, name: str, array: np.ndarray) -> str:
        key = self._key("initializer", array)
        if key not in self._stored:
            self._stored[key] = super().initializer(name, array)
        return self._stored[key]

    def weight(self, name: str, array: np.ndarray, axis: int = 0, product: bool = True) -> str:
        key = self._key("weight", np.asarray(array, np.float32), axis, product)
        if key not in self._stored:
            self._stored[key] = super().weight(name, array, axis, product)
        return self._stored[key]

    def stacked_weight(self, name: str, arrays: list) -> str:
        key = self._key("stacked", np.stack(arrays))
        if key not in self._stored:
            self._stored[key] = super().stacked_weight(name, arrays)
        return self._stored[key]

    def to_layout(self, x: _Value, layout: str, scope: str) -> _Value:
        if x.layout == layout:
            return x
        key = (x.name, layout)
        if key not in self._converted:
            self._converted[key] = super().to_layout(x, layout, x.name)
        return self._converted[key]


_NO_ATTRIBUTE = object()


@contextmanager
def _node_masked(layer, masked: bool):
    """The chain handlers read `layer.masked` (ir.Model.check sets it); in a graph it is the
    node's (a shared layer may read a mask in one node and not in another)."""
    old = layer.__dict__.get("masked", _NO_ATTRIBUTE)
    layer.masked = masked
    try:
        yield
    finally:
        if old is _NO_ATTRIBUTE:
            del layer.__dict__["masked"]
        else:
            layer.masked = old


_GRAPH_OPS = (
    ir.Merge,
    ir.Concatenate,
    ir.RepeatVector,
    ir.Attention,
    ir.TimeSteps,
    ir.Dot,
    ir.Reshape,
    ir.Permute,
)
_RECURRENT_NODES = (*ir.RECURRENT, ir.Bidirectional)
_MERGE_OPS = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "average": "Add"}


def _describe_node(node) -> str:
    layer = node.layer
    if isinstance(layer, ir.Merge):
        what = f"Merge({layer.mode})"
    elif isinstance(layer, ir.Concatenate):
        what = f"Concatenate({layer.axis})"
    elif isinstance(layer, ir.RepeatVector):
        what = f"RepeatVector({layer.n})"
    elif isinstance(layer, ir.Attention):
        what = f"Attention({layer.score}{', causal' if layer.causal else ''})"
    elif isinstance(layer, ir.Dot):
        what = f"Dot(normalize={layer.normalize})"
    elif isinstance(layer, (ir.Reshape, ir.Permute)):
        what = type(layer).__name__
    elif isinstance(layer, ir.TimeSteps):
        what = f"TimeSteps({layer.mode}, {layer.start}, {layer.end}, {layer.size})"
    else:
        what = _describe(layer)
    return f"{', '.join(node.outputs)} = {what}({', '.join(node.inputs)})"


class _GraphExport:
    """The state of one graph export: `vals` (value name -> `_Value` as computed), `masks` (value
    name -> its bool mask [B, T] / [T, B] `_Value`, or None), `steps` (value name -> its time
    dimension: a symbol, a fixed count, or None when unknown)."""

    def __init__(self, graph: ir.Graph, opset: int, quantize: str | None) -> None:
        self.graph = graph
        layers = list({id(n.layer): n.layer for n in graph.nodes}.values())
        self.g = _GraphModelBuilder([la.name for la in layers], opset, quantize)
        self.vals: dict = {}
        self.masks: dict = {}
        self.steps: dict = {}
        self.readers: dict = {name: [] for name in graph.values}
        for node in graph.nodes:
            for v in node.inputs:
                self.readers[v].append(node)
        self._wanted: dict = {}

    # -- layouts ---------------------------------------------------------------------------------

    def want(self, name: str) -> str:
        """The layout sequence value `name` should be computed in: TIME_MAJOR when a recurrent
        node reads it as its sequence, directly or through per-step layers, merges and
        concatenations; else BATCH_MAJOR (what the model outputs are in)."""
        if name not in self._wanted:
            self._wanted[name] = BATCH_MAJOR
            for node in self.readers[name]:
                layer = node.layer
                if isinstance(layer, _RECURRENT_NODES) and node.inputs[0] == name:
                    self._wanted[name] = TIME_MAJOR
                    break
                through = isinstance(layer, (ir.Merge, ir.Concatenate)) or (
                    not isinstance(layer, _GRAPH_OPS) and _handler(layer).per_step
                )
                if through and self.want(node.outputs[0]) == TIME_MAJOR:
                    self._wanted[name] = TIME_MAJOR
                    break
        return self._wanted[name]

    def get(self, name: str, layout: str | None = None) -> _Value:
        """Value `name` in `layout` (a vector, or layout None: as computed)."""
        v = self.vals[name]
        if layout is None or v.layout == VECTOR:
            return v
        return self.g.to_layout(v, layout, v.name)

    def mask(self, name: str, layout: str) -> str | None:
        """The mask of value `name` (bool, 2-D) in `layout`, or None."""
        m = self.masks[name]
        return None if m is None else self.g.to_layout(m, layout, m.name).name

    def mask_3d(self, mask: str) -> str:
        """A 2-D mask lifted to broadcast against its [., ., C] values (made once)."""
        key = ("mask_3d", mask)
        if key not in self.g.cache:
            self.g.cache[key] = self.g.add(
                "Unsqueeze", [mask, self.g.const_i64((2,))], f"{mask}/steps_3d"
            )
        return self.g.cache[key]

    def all_valid(self, x: _Value) -> str:
        """An all-true mask shaped like the first two axes of sequence x (made once)."""
        key = ("all_valid", x.name)
        if key not in self.g.cache:
            g = self.g
            shape = g.add("Shape", [x.name], f"{x.name}/shape")
            steps = g.add(
                "Slice", [shape, g.const_i64((0,)), g.const_i64((2,))], f"{x.name}/shape_2d"
            )
            value = helper.make_tensor("value", TensorProto.BOOL, [1], [True])
            g.cache[key] = g.add("ConstantOfShape", [steps], f"{x.name}/all_valid", value=value)
        return self.g.cache[key]

    # -- nodes -----------------------------------------------------------------------------------

    def emit(self, node) -> None:
        layer = node.layer
        scope = self.g.scope(layer.name)
        if isinstance(layer, ir.Merge):
            outs, mask = self._merge(node, layer, scope)
        elif isinstance(layer, ir.Concatenate):
            outs, mask = self._concatenate(node, layer, scope)
        elif isinstance(layer, ir.RepeatVector):
            outs, mask = self._repeat(node, layer, scope), None
        elif isinstance(layer, ir.Attention):
            outs, mask = self._attention(node, layer, scope)
        elif isinstance(layer, ir.TimeSteps):
            outs, mask = self._time_steps(node, layer, scope), None
        elif isinstance(layer, ir.Dot):
            outs, mask = self._dot(node, layer, scope), None
        elif isinstance(layer, (ir.Reshape, ir.Permute)):
            outs, mask = self._reshape(node, layer, scope), None
        elif isinstance(layer, _RECURRENT_NODES):
            outs, mask = self._recurrent(node, layer, scope)
        else:
            outs, mask = self._layer(node, layer, scope)
        for k, (name, value) in enumerate(zip(node.outputs, outs, strict=True)):
            self.vals[name] = value
            self.masks[name] = mask if k == 0 else None
            if (self.masks[name] is not None) != self.graph.values[name].masked:
                raise AssertionError(f"ONNX export: the mask of {name!r} does not follow ir.Graph")
        self.steps[node.outputs[0]] = self._steps_of(node, layer)

    def _steps_of(self, node, layer):
        ins = [self.steps.get(v) for v in node.inputs]
        if isinstance(layer, ir.RepeatVector):
            return int(layer.n)
        if isinstance(layer, ir.TimeSteps):
            return layer.out_steps(ins[0]) if isinstance(ins[0], int) else None
        if isinstance(layer, ir.Reshape):
            return layer.out_steps or None
        if isinstance(layer, ir.Permute):
            return int(layer.dim)
        if isinstance(layer, ir.Concatenate) and layer.axis == "time":
            return sum(ins) if all(isinstance(s, int) for s in ins) else None
        if isinstance(layer, ir.Conv1D) and not _keeps_steps(layer):
            return None
        return ins[0]

    def _layer(self, node, layer, scope):
        """A node of a chain layer type, through its chain handler (`_HANDLERS`)."""
        g, h = self.g, _handler(layer)
        name, out = node.inputs[0], node.outputs[0]
        x = self.vals[name]
        if x.layout != VECTOR:
            layout = h.wants or (self.want(out) if h.per_step else x.layout)
            x = self.get(name, layout)
        g.mask = self.masks[name]
        g.next_layout = self.want(out)
        with _node_masked(layer, node.masked):
            y = h.emit(g, layer, x, scope)
        if isinstance(layer, (ir.Embedding, ir.Masking)):
            mask = g.mask  # created (None for an Embedding without mask_zero)
        elif self.graph.values[out].masked:
            mask = self.masks[name]  # passed on
        else:
            mask = None
        return [y], mask

    def _recurrent(self, node, layer, scope):
        """A recurrent node: one fused op with initial_h / initial_c from the node's state inputs
        (stacked forward, backward) and its final states from Y_h / Y_c. A mask compacts the
        input (`_Compaction`); a row without a valid step then gets Y_h = 0 from the op, and its
        final states are its initial states (docs/format.md "Recurrent nodes"), its last output
        0 and its sequence output 0 before the first valid step (Keras)."""
        g = self.g
        bidir = isinstance(layer, ir.Bidirectional)
        cells = [layer.forward, layer.backward] if bidir else [layer]
        lstm = isinstance(cells[0], ir.LSTM)
        per_dir = 2 if lstm else 1
        x = self.get(node.inputs[0], TIME_MAJOR)
        g.mask = self.masks[node.inputs[0]]
        with _node_masked(layer, node.masked):
            xin, comp = _recurrent_input(g, layer, x, scope)
        init = [self.vals[v].name for v in node.inputs[1:]]

        def stack(names: list, what: str) -> str:
            parts = [
                g.add("Unsqueeze", [n, g.const_i64((0,))], f"{scope}/{what}_{d}")
                for d, n in enumerate(names)
            ]
            return (
                parts[0] if len(parts) == 1 else g.add("Concat", parts, f"{scope}/{what}", axis=0)
            )

        initial_h = initial_c = None
        if init:
            initial_h = stack(init[::per_dir], "initial_h")
            if lstm:
                initial_c = stack(init[1::per_dir], "initial_c")
        if bidir:
            direction = "bidirectional"
        else:
            direction = "reverse" if layer.go_backwards else "forward"
        seq = layer.return_sequences
        seq_lens = comp.lens if comp is not None else None
        y, y_h, y_c = _rnn_node(
            g, cells, direction, xin, seq_lens, scope, seq, (initial_h, initial_c), states=True
        )
        out = f"{scope}/output"
        if not bidir:
            if not seq:
                value = _Value(g.add("Squeeze", [y_h, g.const_i64((0,))], out), VECTOR, 2)
            else:
                y = g.add("Squeeze", [y, g.const_i64((1,))], f"{scope}/Y_3d")
                if comp is not None:
                    pos, seen = (
                        _reverse_carry(g, comp) if layer.go_backwards else (comp.pos, comp.seen)
                    )
                    y = _gather_steps(g, y, 3, pos, f"{scope}/scattered")
                    y = _where_steps(g, seen, y, 3, f"{scope}/carried")
                if layer.go_backwards:
                    y = _reverse_time(g, y, f"{scope}/processing_order")
                value = _Value(g.add("Identity", [y], out), TIME_MAJOR, 3)
        else:
            if seq and comp is not None:
                y = _gather_steps(g, y, 4, comp.pos, f"{scope}/scattered")
                y = _where_steps(g, comp.mask, y, 4, f"{scope}/zeroed")
            y = y if seq else y_h
            if layer.merge_mode == "concat":
                perm = [0, 2, 1, 3] if seq else [1, 0, 2]  # direction next to the features
                y = g.add("Transpose", [y], f"{scope}/directions_last", perm=perm)
                y = g.add("Reshape", [y, g.const_i64((0, 0, -1) if seq else (0, -1))], out)
            else:
                op = {"sum": "ReduceSum", "ave": "ReduceMean", "mul": "ReduceProd"}
                y = g.reduce(op[layer.merge_mode], y, (1 if seq else 0,), out)
            value = _Value(y, TIME_MAJOR if seq else VECTOR, 3 if seq else 2)
        states = []
        if len(node.outputs) > 1:
            has_step = None
            if comp is not None and init:
                valid = g.add("Greater", [comp.lens, g.scalar(0, np.int32)], f"{scope}/any_valid")
                has_step = g.add("Unsqueeze", [valid, g.const_i64((1,))], f"{scope}/any_valid_2d")
            for k in range(len(node.outputs) - 1):
                d, which = divmod(k, per_dir)
                src, what = (y_c, "c") if which else (y_h, "h")
                direction_name = ("forward", "backward")[d]
                s = f"{scope}/state_{what}_{direction_name}"
                s = g.add("Gather", [src, g.const_i64((d,))], f"{s}_1bh", axis=0)
                s = g.add("Squeeze", [s, g.const_i64((0,))], s[: -len("_1bh")])
                if has_step is not None:  # no valid step: the initial state
                    s = g.add("Where", [has_step, s, init[k]], f"{s}/or_initial")
                states.append(_Value(s, VECTOR, 2))
        mask = self.masks[node.inputs[0]] if self.graph.values[node.outputs[0]].masked else None
        return [value, *states], mask

    def _inputs_in(self, node, scope):
        """The node's inputs in one layout (the output's wanted one; vectors as they are) and
        their 2-D masks in that layout (None where an input has none)."""
        first = self.vals[node.inputs[0]]
        layout = VECTOR if first.layout == VECTOR else self.want(node.outputs[0])
        xs = [self.get(v, layout) for v in node.inputs]
        ms = [None if layout == VECTOR else self.mask(v, layout) for v in node.inputs]
        return layout, xs, ms

    def _or(self, masks: list, scope: str) -> str:
        acc = masks[0]
        for k, m in enumerate(masks[1:], 1):
            acc = self.g.add("Or", [acc, m], f"{scope}/mask_or_{k}")
        return acc

    def _merge(self, node, layer, scope):
        """Merge: Add / Sub / Mul chains in input order ((a + b) + c, as Keras), average = the
        sum Div the count, maximum / minimum a Max / Min fold; masks as docs/format.md's rules
        (multiply: masked steps count as 1, and with every input masked the output is 0 where no
        input is valid; maximum / minimum: Keras' fold with Where)."""
        g = self.g
        layout, xs, ms = self._inputs_in(node, scope)
        rank = xs[0].rank
        names = [x.name for x in xs]
        all_masked = all(m is not None for m in ms)
        out_mask = None
        mode = layer.mode
        one = g.scalar(1.0, np.float32)
        zero = g.scalar(0.0, np.float32)
        if mode in ("maximum", "minimum"):
            op = "Max" if mode == "maximum" else "Min"
            acc, acc_mask = names[0], ms[0]
            for k, (x, m) in enumerate(zip(names[1:], ms[1:], strict=True), 1):
                if m is not None:
                    x = g.add("Where", [self.mask_3d(m), x, acc], f"{scope}/input_{k}_or_acc")
                if acc_mask is not None:
                    acc = g.add(
                        "Where", [self.mask_3d(acc_mask), acc, x], f"{scope}/acc_{k}_or_input"
                    )
                both = m is not None and acc_mask is not None
                acc_mask = g.add("Or", [acc_mask, m], f"{scope}/mask_{k}") if both else None
                acc = g.add(op, [acc, x], f"{scope}/{op.lower()}_{k}")
            out_mask = acc_mask
        else:
            if mode == "multiply":
                names = [
                    x
                    if m is None
                    else g.add("Where", [self.mask_3d(m), x, one], f"{scope}/input_{k}")
                    for k, (x, m) in enumerate(zip(names, ms, strict=True))
                ]
            op = _MERGE_OPS[mode]
            acc = names[0]
            for k, x in enumerate(names[1:], 1):
                acc = g.add(op, [acc, x], f"{scope}/{op.lower()}_{k}")
            if mode == "average":
                acc = g.add("Div", [acc, g.scalar(float(len(names)), np.float32)], f"{scope}/mean")
            if all_masked and layout != VECTOR:
                out_mask = self._or(ms, scope)
                if mode == "multiply":
                    acc = g.add("Where", [self.mask_3d(out_mask), acc, zero], f"{scope}/zeroed")
        y = g.add("Identity", [acc], f"{scope}/output")
        mask = None if out_mask is None else _Value(out_mask, layout, 2)
        return [_Value(y, layout, rank)], mask

    def _concatenate(self, node, layer, scope):
        """Concat along features (the last axis) or time (axis 0 time-major, 1 batch-major);
        masks: none when no input has one; along features a step is valid where any input is
        (an input without a mask counts as valid everywhere), along time the masks are
        concatenated (an input without one contributes valid steps)."""
        g = self.g
        layout, xs, ms = self._inputs_in(node, scope)
        rank = xs[0].rank
        if layer.axis == "features":
            axis = rank - 1
        else:
            axis = 0 if layout == TIME_MAJOR else 1
        y = g.add("Concat", [x.name for x in xs], f"{scope}/output", axis=axis)
        mask = None
        if any(m is not None for m in ms):
            if layer.axis == "features":
                if all(m is not None for m in ms):
                    m = self._or(ms, scope)
                else:
                    m = self.all_valid(xs[0])
            else:
                parts = [self.all_valid(x) if m is None else m for x, m in zip(xs, ms, strict=True)]
                m = g.add("Concat", parts, f"{scope}/mask", axis=axis)
            mask = _Value(m, layout, 2)
        return [_Value(y, layout, rank)], mask

    def _attention(self, node, layer, scope):
        """ATTENTION (docs/format.md), batch-major: scores (MatMul, or Tanh of broadcast sums
        reduced over the features), masked ones lowered by 1e9 (Where), Softmax over the value
        steps, MatMul with the value, zero at masked query steps; the output carries the query's
        mask (the Keras Dot pattern, use_masks False: no mask read or written)."""
        g = self.g
        q, v = (self.get(n, BATCH_MAJOR).name for n in node.inputs[:2])
        k = self.get(node.inputs[2], BATCH_MAJOR).name if len(node.inputs) == 3 else v
        q_mask = v_mask = None
        if layer.use_masks:
            q_mask = self.mask(node.inputs[0], BATCH_MAJOR)
            v_mask = self.mask(node.inputs[1], BATCH_MAJOR)
        s = _attention_scores(self, layer, q, k, scope)
        valid = _attention_valid(self, layer, q, v, v_mask, scope)
        if valid is not None:
            low = g.add("Sub", [s, g.scalar(1e9, np.float32)], f"{scope}/scores_low")
            s = g.add("Where", [valid, s, low], f"{scope}/scores_masked")
        w = g.add("Softmax", [s], f"{scope}/weights", axis=-1)
        y = g.add("MatMul", [w, v], f"{scope}/weighted")
        if q_mask is not None:
            zero = g.scalar(0.0, np.float32)
            y = g.add("Where", [self.mask_3d(q_mask), y, zero], f"{scope}/query_masked")
        y = g.add("Identity", [y], f"{scope}/output")
        mask = None if q_mask is None else _Value(q_mask, BATCH_MAJOR, 2)
        return [_Value(y, BATCH_MAJOR, 3)], mask

    def _reshape(self, node, layer, scope):
        """Reshape: a batch-major Reshape to [B, T', C'] or [B, n]; Permute: Transpose of the
        batch-major [B, T, C] to [B, C, T]."""
        g = self.g
        out = f"{scope}/output"
        if isinstance(layer, ir.Permute):
            x = self.get(node.inputs[0], BATCH_MAJOR).name
            return [_Value(g.add("Transpose", [x], out, perm=[0, 2, 1]), BATCH_MAJOR, 3)]
        x = self.get(node.inputs[0], BATCH_MAJOR if layer.in_steps else None).name
        if layer.out_steps:
            y = g.add("Reshape", [x, g.const_i64((0, layer.out_steps, layer.out_dim))], out)
            return [_Value(y, BATCH_MAJOR, 3)]
        y = g.add("Reshape", [x, g.const_i64((0, layer.out_dim))], out)
        return [_Value(y, VECTOR, 2)]

    def _dot(self, node, layer, scope):
        """Dot of two vectors [B, C] -> [B, 1]: ReduceSum of the product; normalize: each
        vector times Min(1 / Sqrt(ReduceSum(x * x)), 1e7) first (Keras' rsqrt, epsilon 1e-7)."""
        g = self.g
        xs = [self.vals[v].name for v in node.inputs]
        if layer.normalize:
            for k, x in enumerate(xs):
                sq = g.add("Mul", [x, x], f"{scope}/square_{k}")
                ss = g.reduce("ReduceSum", sq, (1,), f"{scope}/square_sum_{k}", keepdims=1)
                inv = g.add(
                    "Reciprocal", [g.add("Sqrt", [ss], f"{scope}/norm_{k}")], f"{scope}/inv_{k}"
                )
                inv = g.add("Min", [inv, g.scalar(1e7, np.float32)], f"{scope}/inv_capped_{k}")
                xs[k] = g.add("Mul", [x, inv], f"{scope}/normalized_{k}")
        p = g.add("Mul", xs, f"{scope}/product")
        y = g.reduce("ReduceSum", p, (1,), f"{scope}/output", keepdims=1)
        return [_Value(y, VECTOR, 2)]

    def _time_steps(self, node, layer, scope):
        """TIME_STEPS, batch-major: crop = Slice along time, pad = Pad with zeros, upsample =
        Unsqueeze + Expand + Reshape (each step `size` times in a row)."""
        g = self.g
        x = self.get(node.inputs[0], BATCH_MAJOR).name
        out = f"{scope}/output"
        if layer.mode == "crop":
            end = -layer.end if layer.end else np.iinfo(np.int64).max
            y = g.add(
                "Slice",
                [x, g.const_i64((layer.start,)), g.const_i64((end,)), g.const_i64((1,))],
                out,
            )
        elif layer.mode == "pad":
            pads = g.const_i64((0, layer.start, 0, 0, layer.end, 0))
            y = g.add("Pad", [x, pads], out)
        else:
            u = g.add("Unsqueeze", [x, g.const_i64((2,))], f"{scope}/one_copy")
            e = g.add("Expand", [u, g.const_i64((1, 1, layer.size, 1))], f"{scope}/copies")
            y = g.add("Reshape", [e, g.const_i64((0, -1, layer.dim))], out)
        return [_Value(y, BATCH_MAJOR, 3)]

    def _repeat(self, node, layer, scope):
        """RepeatVector(n): x [B, C] -> Unsqueeze + Expand to [n, B, C] or [B, n, C]."""
        g = self.g
        x = self.vals[node.inputs[0]]
        layout = self.want(node.outputs[0])
        axis, shape = (0, (layer.n, 1, 1)) if layout == TIME_MAJOR else (1, (1, layer.n, 1))
        u = g.add("Unsqueeze", [x.name, g.const_i64((axis,))], f"{scope}/one_step")
        y = g.add("Expand", [u, g.const_i64(shape)], f"{scope}/output")
        return [_Value(y, layout, 3)]


def _attention_scores(ex: _GraphExport, layer: ir.Attention, q: str, k: str, scope: str) -> str:
    """Scores [B, Tq, Tv] of batch-major query q [B, Tq, D] and key k [B, Tv, D]."""
    g = ex.g
    if layer.score == "dot":
        kt = g.add("Transpose", [k], f"{scope}/key_t", perm=[0, 2, 1])
        s = g.add("MatMul", [q, kt], f"{scope}/dot")
        return g.add("Mul", [s, g.scalar(layer.scale, np.float32)], f"{scope}/scores")
    q4 = g.add("Unsqueeze", [q, g.const_i64((2,))], f"{scope}/query_4d")
    k4 = g.add("Unsqueeze", [k, g.const_i64((1,))], f"{scope}/key_4d")
    pre = g.add("Add", [q4, k4], f"{scope}/sum")
    if layer.score == "concat":
        pre = g.add("Mul", [pre, g.scalar(layer.scale, np.float32)], f"{scope}/scaled")
    t = g.add("Tanh", [pre], f"{scope}/tanh")
    if layer.score == "additive" and layer.scale is not None:
        scale = g.initializer(f"{scope}/scale", layer.scale.astype(np.float32))
        t = g.add("Mul", [t, scale], f"{scope}/tanh_scaled")
    s = g.reduce("ReduceSum", t, (3,), f"{scope}/sum_features")
    if layer.score == "concat":
        s = g.add("Mul", [s, g.scalar(layer.concat_weight, np.float32)], f"{scope}/scores")
    return s


def _attention_valid(ex: _GraphExport, layer, q: str, v: str, v_mask, scope: str):
    """The bool [B or 1, Tq or 1, Tv] of score positions that count (value mask, causal)."""
    g = ex.g
    valid = None
    if v_mask is not None:
        valid = g.add("Unsqueeze", [v_mask, g.const_i64((1,))], f"{scope}/value_mask_3d")
    if layer.causal:

        def steps(x: str, what: str) -> str:
            shape = g.add("Shape", [x], f"{scope}/{what}_shape")
            n = g.add("Gather", [shape, g.scalar(1, np.int64)], f"{scope}/{what}_steps")
            return g.add(
                "Range", [g.scalar(0, np.int64), n, g.scalar(1, np.int64)], f"{scope}/{what}_t"
            )

        rows = g.add("Unsqueeze", [steps(q, "query"), g.const_i64((1,))], f"{scope}/rows")
        cols = steps(v, "value")
        causal = g.add("GreaterOrEqual", [rows, cols], f"{scope}/causal")
        valid = causal if valid is None else g.add("And", [valid, causal], f"{scope}/valid")
    return valid


def _build_graph(graph: ir.Graph, opset: int, quantize: str | None) -> onnx.ModelProto:
    """The ONNX graph of an `ir.Graph` (see the section comment above)."""
    _check_opset(opset)
    graph.check()
    for node in graph.nodes:
        if not isinstance(node.layer, _GRAPH_OPS):
            _handler(node.layer)  # fail before building anything
    layers = [n.layer for n in graph.nodes if not isinstance(n.layer, _GRAPH_OPS)]
    _check_fused_activations(types.SimpleNamespace(layers=layers))

    ex = _GraphExport(graph, opset, quantize)
    g = ex.g
    sequences = [gi for gi in graph.inputs if gi.kind != ir.VECTOR]
    inputs = []
    for gi in graph.inputs:
        time = TIME_DIM if len(sequences) == 1 else f"{gi.name}_{TIME_DIM}"
        if gi.kind == ir.TOKENS:
            info = helper.make_tensor_value_info(gi.name, TensorProto.INT64, [BATCH_DIM, time])
            ex.vals[gi.name] = _Value(gi.name, BATCH_MAJOR, 2)
        elif gi.kind == ir.FEATURES:
            shape = [BATCH_DIM, time, gi.dim]
            info = helper.make_tensor_value_info(gi.name, TensorProto.FLOAT, shape)
            ex.vals[gi.name] = _Value(gi.name, BATCH_MAJOR, 3)
        else:
            info = helper.make_tensor_value_info(gi.name, TensorProto.FLOAT, [BATCH_DIM, gi.dim])
            ex.vals[gi.name] = _Value(gi.name, VECTOR, 2)
        ex.masks[gi.name] = None
        ex.steps[gi.name] = None if gi.kind == ir.VECTOR else time
        inputs.append(info)
    for node in graph.nodes:
        ex.emit(node)

    tensors = {gi.name for gi in graph.inputs} | {t.name for t in g.initializers}
    tensors |= {name for n in g.nodes for name in n.output}
    outputs = []
    for name in graph.outputs:
        v = ex.get(name, BATCH_MAJOR)
        if v.name != name:
            if name in tensors:
                raise UnsupportedError(
                    f"ONNX export: graph output name {name!r} is also the name of a tensor the "
                    "export makes; rename the output"
                )
            g.rename_output(v.name, name)
        value = graph.values[name]
        shape = [BATCH_DIM, value.width]
        if value.kind == ir.SEQUENCE:
            shape.insert(1, ex.steps[name])
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    g.prune(list(graph.outputs))

    desc = "; ".join(_describe_node(n) for n in graph.nodes)
    onnx_graph = helper.make_graph(
        g.nodes,
        graph.name or "model",
        inputs,
        outputs,
        initializer=g.initializers,
        doc_string=f"graph: {desc}. Outputs: {', '.join(graph.outputs)}.",
    )
    m = helper.make_model_gen_version(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="edgegru",
        doc_string=f"edgegru export of graph {graph.name!r}: {desc}",
    )
    try:
        from importlib.metadata import PackageNotFoundError, version

        m.producer_version = version("edgegru")
    except PackageNotFoundError:
        pass
    props = {
        "edgegru.graph": json.dumps(
            {"inputs": [gi.name for gi in graph.inputs], "outputs": list(graph.outputs)}
        )
    }
    if graph.source:
        props["edgegru.source"] = json.dumps(graph.source, sort_keys=True, default=str)
    helper.set_model_props(m, props)
    onnx.checker.check_model(m, full_check=True)
    return m


# --- int16x8: the QDQ graph of the integer-only scheme (docs/quantization.md, docs/onnx.md) ------

#: Oldest opset with int16 QuantizeLinear / DequantizeLinear (opset 21); the default of the
#: int16x8 export.
INT16X8_OPSET = 21

#: The bound on |onnxruntime(QDQ graph) - int16x8.forward(qmodel, x)| (the emulation, which the
#: C runtime equals bit for bit), per output value, in units of the model's output scale
#: (`qmodel.output_scale`: 2^-15 for a bounded output, else R / 32767 of its calibrated range R):
#: `int16x8_onnx_tolerance(qmodel)`. It cannot be 0: between its QDQ pairs onnxruntime computes
#: in float, while the scheme also rounds inside every layer and step (the recurrent state to its
#: int16 grid at every step, gates to 2^-15, products and biases to 2^-16, the interpolated
#: sigmoid / tanh / exp / softplus tables); a value that lands on the other side of a rounding
#: boundary moves by one unit, and the next layer's weights and the recurrence amplify that.
#: Measured (`python tests/int16x8_models.py`, docs/onnx.md): at most 14 units over 2100 random
#: GRU (both reset modes), LSTM, SimpleRNN, Embedding, Masking and Dense models of 20 steps and
#: 16 over 420 of 100 steps, calibrated on data covering their inputs; 32 leaves twice that.
#: Models around Conv1D, GlobalPool, Flatten, Activation, Affine and Bidirectional (each merge
#: mode; `int16x8_models.SEQUENCE_KINDS`): at most 21 units over 2700 of 20 steps (Affine, and
#: Bidirectional mul), at most 10 over 540 of 100 steps but for two recurrences the bound does
#: not cover (a relu LSTM whose state range grew to 2764: 1101 units; a tanh SimpleRNN that
#: amplifies its Bidirectional input's differences over 100 steps: 33; docs/onnx.md).
#: LayerNorm models are not covered: up to 79 units (T = 20) and 554 (T = 100), from the
#: scheme's integer mean of a step (rounded to the input's unit), which the float
#: LayerNormalization does not round (17 units with an exact mean; docs/onnx.md).
#: Not covered: a GRU with an unbounded candidate activation (the scheme saturates the candidate
#: at the state's scale, the float GRU does not) and chaotic recurrences (docs/onnx.md).
INT16X8_ONNX_UNITS = 32


def int16x8_onnx_tolerance(qmodel) -> float:
    """INT16X8_ONNX_UNITS output units of `qmodel` (an `edgegru.int16x8.QModel`): the largest
    |onnxruntime - runtime| the int16x8 export is validated to (float, absolute)."""
    return float(INT16X8_ONNX_UNITS) * float(qmodel.output_scale)


@dataclass(frozen=True)
class _Int16Scales:
    """The int16 scales of an int16x8 model's boundaries: `input` for the model input (None:
    token ids, or a Masking first layer, whose output carries the input scale instead),
    `layers[k]` for layer k's output, and `merges[k]` for the two directions of a Bidirectional
    layer k with a sum / ave / mul merge before it (their shared state scale; None for every
    other layer, and for concat, whose output is at that scale already)."""

    input: float | None
    layers: list
    merges: list


def int16x8_scales(qmodel) -> _Int16Scales:
    """The per-tensor scales of an `edgegru.int16x8.QModel` at its layer boundaries, as the
    emulation quantizes them: the model input at `input_scale`; an Embedding's output at the scale
    of its calibrated range; Masking (first layer only) at the input scale (the mask is computed
    from the caller's float features, then the quantized values are zeroed); a recurrent layer's
    output (state sequence or last state) at its `state_scale` (2^-15 for a bounded activation);
    a Bidirectional's merged output at its `out_scale` (concat: the state scale both directions
    share; sum / ave / mul: the merge's calibrated scale, with the directions at the state scale
    before the merge, `merges`); a Dense, Conv1D or Activation output at its output scale (2^-15
    for a bounded activation), an Affine or LayerNorm output at its calibrated scale; GlobalPool
    and Flatten
    at their input's scale (the scheme pools and flattens without rescaling)."""
    scales, merges = [], []
    current = qmodel.input_scale
    for kind, layer, p in qmodel.layers:
        merge = None
        if kind == "embedding":
            s = p[3]  # (q, m, n, output scale)
        elif kind == "masking":
            s = qmodel.input_scale
        elif kind == "recurrent":
            s = p.state_scale
        elif kind == "bidirectional":
            s = p.out_scale
            if layer.merge_mode != "concat":
                merge = np.float32(p.state_scale)
        elif kind in ("dense", "conv1d", "activation"):
            s = p[1]  # (product or input multiplier, output scale, output multiplier)
        elif kind == "affine":
            s = p[3]  # (m, n, bias, output scale, output multiplier)
        elif kind == "layer_norm":
            s = p[4]  # (epsilon, m, n, bias, output scale, output multiplier)
        elif kind in ("pool", "flatten"):
            s = current
        else:  # pragma: no cover - int16x8.quantize builds only these kinds
            raise UnsupportedError(f"int16x8 ONNX export: no QDQ rule for a {kind!r} layer")
        if s is None:  # pragma: no cover - every layer of a token model follows its Embedding
            raise ValueError(f"int16x8 model: layer {layer.name!r} has no input scale")
        scales.append(np.float32(s))
        merges.append(merge)
        current = s
    if scales and np.float32(scales[-1]) != np.float32(qmodel.output_scale):
        raise ValueError("int16x8 model: the last layer's scale is not the output scale")
    first_masking = bool(qmodel.layers) and qmodel.layers[0][0] == "masking"
    inp = None if qmodel.input_scale is None or first_masking else np.float32(qmodel.input_scale)
    return _Int16Scales(inp, scales, merges)


def _qdq16(g: _GraphBuilder, x: _Value, scale, name: str) -> _Value:
    """x -> QuantizeLinear(scale, int16 zero point 0) -> DequantizeLinear: x rounded (half to
    even) to the int16 grid of `scale` and saturated to [-32768, 32767] * scale, as float. The
    scale and zero point are 0-d initializers (per-tensor quantization)."""
    s = f"{name}_scale16"
    g.initializers.append(numpy_helper.from_array(np.asarray(scale, dtype=np.float32), s))
    zp = "const/int16_zero_point"
    if zp not in g.cache:  # one 0-d int16 zero point (per-tensor), shared by every pair
        g.initializers.append(numpy_helper.from_array(np.zeros((), np.int16), zp))
        g.cache[zp] = zp
    q = g.add("QuantizeLinear", [x.name, s, zp], f"{name}_int16")
    return _Value(g.add("DequantizeLinear", [q, s, zp], f"{name}_dequantized"), x.layout, x.rank)


def to_onnx_int16x8(qmodel, opset: int | None = None) -> onnx.ModelProto:
    """The ONNX export of an int16x8 model (`edgegru.int16x8.QModel`, from
    `int16x8.quantize(ir_model, calibration)`) as a QDQ graph: the float graph of `to_onnx`
    (same input and output names, dtypes and shapes) with the weights as the int8 values and
    per-row scales behind DequantizeLinear exactly as quantize="int8" writes them, and a Conv1D
    kernel likewise with one scale per output channel (the S8 values int16x8 computes with,
    format.QUANTIZABLE_INT16X8), and an int16 QuantizeLinear / DequantizeLinear pair (zero point
    0, per-tensor scale) after the model input and after every layer, at the scales of
    `int16x8_scales` (a Bidirectional's after its merge, plus one on both directions at their
    state scale before a sum / ave / mul merge). Between the pairs onnxruntime computes in
    float, so the output is within `int16x8_onnx_tolerance(qmodel)` of
    `int16x8.forward(qmodel, x)`, not bit-exact (docs/onnx.md).

    qmodel: from `int16x8.quantize` or read from an int16x8 file (`int16x8.from_blob`, whose IR
    holds the dequantized weights: quantized again per row they give back the same S8 values and
    scales). opset: None (INT16X8_OPSET, 21, the first with int16 QuantizeLinear) or newer.
    """
    opset = INT16X8_OPSET if opset is None else opset
    _check_opset(opset, INT16X8_OPSET, " of an int16x8 export (int16 QuantizeLinear)")
    return _build(qmodel.model, opset, "int16x8", qdq=int16x8_scales(qmodel))


def save_onnx_int16x8(qmodel, path, opset: int | None = None) -> onnx.ModelProto:
    """`to_onnx_int16x8`, written to `path`. Returns the ModelProto."""
    m = to_onnx_int16x8(qmodel, opset=opset)
    onnx.save_model(m, str(path))
    return m
