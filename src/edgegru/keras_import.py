"""Keras 3 front end: turn a Sequential or single-chain Functional model into an `ir.Model`.

Entry point: `from_keras(model_or_path)`. A live ``keras.Model`` goes through Keras; a path to a
``.keras`` file is read by `edgegru.keras_file` with zipfile + json + h5py + numpy only (neither
TensorFlow nor Keras is imported).

Design: every layer converter works on PLAIN DATA, never on live Keras objects:

    converter(class_name: str, config: dict, weights: list[np.ndarray], ctx) -> IR layer | None

* ``config`` is the layer's Keras config exactly as ``config.json`` of a ``.keras`` file holds it.
  The live route obtains it the way ``model.save`` does (``keras.saving.serialize_keras_object``
  of the model, round-tripped through JSON); the file route reads ``config.json``.
* ``weights`` are the layer's variables in the order ``model.weights.h5`` stores them: the
  layer's own variables by index (``vars/0``, ``vars/1``, ...), then those of its sub-objects in a
  fixed order (`_subobjects`): a recurrent layer's ``cell``; a Bidirectional's ``forward_layer``
  then ``backward_layer``; a TimeDistributed's ``layer``. The live route collects them with each
  object's own ``save_own_variables``, the file route reads the h5 groups.
* The model graph (which layers form the chain, which layer Keras hands a ``mask=``, which output
  of a layer the next one uses) is read from the same config by `_walk`, for both routes.

Same converters on the same data give the same IR, so both routes write byte-identical `.egru`
files. The IR's ``source`` holds only what both routes know: ``{"framework": "keras",
"keras_version", "layers": [IR layer names], "keras_layers": [Keras names of every layer on the
chain, input and skipped layers included]}`` (keras_version: ``keras.__version__`` live, the
archive's ``metadata.json`` for a file; equal when the same Keras saved it).

Contract:

* The model has exactly one input and one output, and every layer on the path from the input to
  the output is fed by the previous one only (a *single chain*); nested Sequential / Functional
  models on the chain are flattened into it. Anything else raises `UnsupportedError` saying the
  model is not a single chain.
* Each layer is converted by the entry for its class name in `_CONVERTERS`. A class without an
  entry, or an option value this importer cannot reproduce exactly, raises
  `UnsupportedLayerError`, whose message names the layer, the option, its value and the
  supported values (or the supported layers).
* Masks: Keras' mask plumbing (the weightless ``NotEqual`` / ``Any`` op nodes of a Functional
  config and the ``mask=`` arguments) is not converted; the IR recomputes where masks flow from
  its own rules (`ir.MASK_RULES`). Wherever the config records that Keras passes a layer a mask
  (or explicitly none), the importer checks that `ir.Model.check` agrees and raises otherwise.
* ``stateful=True`` recurrent layers convert like non-stateful ones (a fixed batch in
  ``batch_shape`` is fine): the IR describes one call from a zero state. Carrying the state from
  one call to the next is the runtime's job (edgegru's streaming API carries the state), not
  part of the converted model; Keras' ``rnn_state`` variables are not saved in ``.keras`` files.
* ``return_state=True`` works in a Functional model whose chain uses one output of the layer:
  the sequence / last output, or the state h (for GRU and SimpleRNN the state is the last
  output; for LSTM h is the last output, c is not supported).
* Keras is imported lazily, inside the functions, so ``edgegru`` itself never needs it.

Graphs (``from_keras(model, graphs=True)``, which `edgegru.convert` uses; docs/format.md
"Graphs"): a chain still gives exactly the `ir.Model` above (`convert_any` tries the chain route
first); any other Functional model gives an `ir.Graph` (`convert_graph`), read from the same
config by `_GraphWalk` for both routes:

* inputs in ``model.inputs`` order, named as the Keras Inputs: token ids (batch, T) when they
  feed Embedding layers only, float sequences (batch, T, F), float vectors (batch, F) (a
  decoder's state input); outputs in ``model.outputs`` order;
* every chain layer (the same converters, given the node's input as `_Context.flow`), plus Add,
  Subtract, Multiply, Average, Maximum, Minimum (`ir.Merge`), Concatenate (axis -1 or the last:
  features; 1 on sequences: time; anything else is refused), RepeatVector, Attention (score_mode
  "dot" / "concat", use_scale, the call's use_causal_mask) and AdditiveAttention (use_scale) on
  [query, value] or [query, value, key] (`ir.Attention`; return_attention_scores refused),
  Cropping1D, ZeroPadding1D (channels_last) and UpSampling1D (`ir.TimeSteps`; a chain holding
  one converts to a one-input graph);
* ``initial_state=`` from any tensors, ``return_state=True`` (every state its own value:
  ``[output, h]``, ``[output, h, c]``, a Bidirectional's forward states then backward ones);
* a layer applied more than once is one IR layer object in several nodes; a nested model is
  inlined (its layers shared between its calls);
* value names: "<layer>" for output 0, "<layer>:<k>" for output k, "<layer>@<n>" when the model
  calls the layer more than once (n = the call), "<nested model>[@<n>]/<layer>" inside a nested
  model; identity layers write no value;
* masks: the IR's rules (`ir.Graph.check`); wherever config.json records the ``mask=`` Keras
  passes a node (outside and upstream of nested models), the IR must agree or the model is
  refused; measured in docs/keras-semantics.md section 12 (a recurrent layer called with
  ``initial_state=`` runs unmasked in Keras 3);
* Dot of two vectors (`ir.Dot`), and attention written as layers: Dot(axes=[2, 2]) of query and
  key, softmax (Activation or Softmax), Dot(axes=[2, 1]) with the value, converted to one
  `ir.Attention(use_masks=False)` (Keras' Dot drops masks; docs/keras-semantics.md);
* anything else (another Dot of sequences, Lambda, keras.ops on tensors, dict inputs / outputs,
  ...) raises `UnsupportedLayerError` / `UnsupportedError` naming the layer and option.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import ir
from .errors import UnsupportedError

KERAS_MISSING = "converting a Keras model needs the 'keras' extra: pip install 'edgegru[keras]'"

#: Activations a recurrent layer accepts in either slot (Keras names).
GRU_ACTIVATIONS = ir.GRU_ACTIVATIONS
GRU_RECURRENT_ACTIVATIONS = ir.GRU_ACTIVATIONS
RNN_ACTIVATIONS = ir.RNN_ACTIVATIONS
#: Activations of Dense, Activation and Conv1D layers.
DENSE_ACTIVATIONS = ir.DENSE_ACTIVATIONS
CONV_ACTIVATIONS = tuple(a for a in ir.DENSE_ACTIVATIONS if a != "softmax")
MERGE_MODES = ir.MERGE_MODES
CONV_PADDINGS = ("valid", "same", "causal")

_RECURRENT_CLASSES = ("GRU", "LSTM", "SimpleRNN")
_MODEL_CLASSES = ("Sequential", "Functional", "Model")
_MASK_OPS = ("NotEqual", "Any")


class UnsupportedLayerError(UnsupportedError):
    """A layer class, or a layer option value, that the importer cannot convert exactly.

    The message names the layer (its Keras name and class) and either the supported layer
    classes or the offending option, its value and the supported values.
    """


class _NotChainError(UnsupportedError):
    """The model is not a single chain (the graph route converts it when graphs are asked for)."""


class _NeedsGraphError(UnsupportedLayerError):
    """A layer or an output only a graph can describe (RepeatVector, a merge layer, an LSTM's
    state c, a Bidirectional's states): refused by the chain route, converted by the graph
    route."""


def _import_keras():
    try:
        import keras
    except ImportError as exc:  # keras absent, or blocked via sys.modules["keras"] = None
        raise ImportError(KERAS_MISSING) from exc
    return keras


# --------------------------------------------------------------------------------------------
# Plain data
# --------------------------------------------------------------------------------------------


@dataclass
class LayerData:
    """One Keras layer as plain data: what a converter sees."""

    class_name: str
    config: dict
    weights: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.config.get("name", "?"))


@dataclass
class _Step:
    """One layer on the chain, as the model config describes it.

    path: [(container model dict, index into its config "layers")], outermost first; locates
        the layer's weights in a live model or an h5 file.
    mask: True / False when the config records that Keras passes the layer a mask / explicitly
        none (a Functional ``mask=`` argument); None when the config does not say (Sequential,
        or a layer whose ``call`` takes no mask).
    output_index: which output of the layer the next layer (or the model output) uses.
    """

    entry: dict
    path: list
    mask: bool | None = None
    output_index: int = 0
    in_sequential: bool = False

    @property
    def class_name(self) -> str:
        return str(self.entry.get("class_name"))

    @property
    def config(self) -> dict:
        return self.entry.get("config") or {}


@dataclass
class _Context:
    """State threaded through the converters while walking the chain.

    chain: every layer on the chain as LayerData, input layer first; steps: the matching _Steps.
    index: position in `chain` of the layer being converted.
    input_spec: set by the InputLayer converter. layers: the IR layers converted so far.
    post_checks: callables run once the IR model exists (and knows where masks flow).
    """

    chain: list
    steps: list
    index: int = 0
    input_spec: ir.InputSpec | None = None
    layers: list = field(default_factory=list)
    post_checks: list = field(default_factory=list)
    flow: tuple | None = None  # graph nodes: (is_sequence, width, steps) of the first input

    @property
    def step(self) -> _Step:
        return self.steps[self.index]


# --------------------------------------------------------------------------------------------
# Helpers shared by the converters
# --------------------------------------------------------------------------------------------


def _where(class_name: str, config: dict) -> str:
    return f"layer {config.get('name', '?')!r} ({class_name})"


def _option_error(class_name, config, option: str, value, supported) -> UnsupportedLayerError:
    supported_text = ", ".join(repr(s) for s in supported)
    return UnsupportedLayerError(
        f"{_where(class_name, config)}: {option}={value!r} is not supported; "
        f"supported: {supported_text}"
    )


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _activation_name(config: dict, slot: str) -> str:
    """The Keras name of the activation in config slot `slot` ('activation', ...).

    Built-in activations serialize to their name; custom callables serialize to a dict, which is
    reported by its registered name so the error message stays readable.
    """
    value = config.get(slot)
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("config")
        name = value.get("registered_name") or (inner if isinstance(inner, str) else None)
        return f"<custom {name or value.get('class_name', 'callable')}>"
    return "<custom callable>"


#: Keras names an activation by its function: `activation="swish"` is saved (and configured) as
#: "silu", "hard_swish" as "hard_silu". Refusals name both, so the user finds what they wrote.
_ACTIVATION_ALIASES = {"silu": "swish", "hard_silu": "hard_swish"}


def _check_activation(class_name, config, slot: str, supported) -> str:
    act = _activation_name(config, slot)
    if act not in supported:
        error = _option_error(class_name, config, slot, act, supported)
        alias = _ACTIVATION_ALIASES.get(act)
        if alias is not None:
            text = str(error).replace(
                f"{slot}={act!r} ", f"{slot}={act!r} (Keras' name for {alias!r}) ", 1
            )
            error = UnsupportedLayerError(text)
        raise error
    return act


def _check_dtype(class_name, config) -> None:
    """Float32 layers only: a quantized layer stores integers plus scales, and a mixed-precision
    layer computes in float16, so either would give different numbers."""
    policy = config.get("dtype")
    if policy is None:
        return
    if isinstance(policy, str):
        name = policy
    elif isinstance(policy, dict):
        inner = policy.get("config") or {}
        if policy.get("class_name") == "QuantizedDTypePolicy" or "mode" in inner:
            raise _option_error(class_name, config, "quantization_mode", inner.get("mode"), [None])
        name = inner.get("name", "float32")
    else:
        name = str(policy)
    if name != "float32":
        raise _option_error(class_name, config, "dtype", name, ["float32"])


def _require(class_name, config, option: str, supported, default=None) -> Any:
    value = config.get(option, default)
    if value not in supported:
        raise _option_error(class_name, config, option, value, supported)
    return value


def _int1(value) -> int:
    """A Keras int-or-1-tuple option (kernel_size [3]) as an int."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"expected one value, got {value!r}")
        value = value[0]
    return int(value)


def _weights(class_name, config, weights, count_options: dict) -> list:
    """Check the number of weights: count_options maps a description to the expected count."""
    want = sum(count_options.values())
    if len(weights) != want:
        parts = ", ".join(k for k, v in count_options.items() if v)
        raise UnsupportedError(
            f"{_where(class_name, config)}: found {len(weights)} weight arrays, expected {want} "
            f"({parts})"
        )
    return [_f32(w) for w in weights]


def _check_shape(class_name, config, what: str, array, want: tuple) -> None:
    if tuple(array.shape) != tuple(want):
        raise UnsupportedError(
            f"{_where(class_name, config)}: {what} has shape {tuple(array.shape)}, "
            f"expected {tuple(want)}"
        )


def _flow(ctx: _Context) -> tuple:
    """(is_sequence, width, steps) of the tensor entering the layer being converted; steps is the
    fixed number of time steps when the model input declares one (None otherwise)."""
    if ctx.flow is not None:  # a graph node: what its first input is
        return ctx.flow
    spec = ctx.input_spec
    seq, width, steps = True, spec.dim, spec.seq_len
    for layer in ctx.layers:
        if isinstance(layer, (*ir.RECURRENT, ir.Bidirectional)):
            seq = layer.return_sequences
        elif isinstance(layer, (ir.GlobalPool, ir.Flatten)):
            seq = False
        elif isinstance(layer, ir.Conv1D) and steps is not None:
            steps = layer.out_steps(steps)
        width = ir.output_width(layer)
    return seq, width, steps


def _check_last_axis(class_name, config, ctx, option: str = "axis") -> None:
    """Normalization layers: only the feature axis (-1, or its positive index) is supported."""
    seq, _, _ = _flow(ctx)
    rank = 3 if seq else 2
    value = config.get(option, -1)
    axes = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(axes) != 1 or axes[0] is None or int(axes[0]) not in (-1, rank - 1):
        raise _option_error(class_name, config, option, value, [-1, [-1]])


# --------------------------------------------------------------------------------------------
# Converters: (class_name, config, weights, context) -> IR layer, or None when the layer
# vanishes at inference
# --------------------------------------------------------------------------------------------


def _first_compute_layer(ctx: _Context) -> LayerData | None:
    """The first chain layer after the input that is not an inference-time identity."""
    for layer in ctx.chain[1:]:
        if _CONVERTERS.get(layer.class_name) is not _convert_identity:
            return layer
    return None


def _dtype_name(value) -> str:
    if isinstance(value, dict):
        return str((value.get("config") or {}).get("name", "float32"))
    return str(value or "float32")


def _convert_input(class_name, config, weights, ctx: _Context) -> None:
    """InputLayer -> ctx.input_spec.

    Token input: an integer dtype, or an Embedding as the first computing layer (Keras casts
    float ids); shape must be (batch, T) and dim is the Embedding's input_dim.
    Feature input: float dtype, shape (batch, T, F) with F fixed; dim = F.
    seq_len = T when the declared T is fixed, else None. A fixed batch size (stateful models) is
    fine: the IR takes any batch.
    """
    for option in ("sparse", "ragged"):
        if config.get(option):
            raise _option_error(class_name, config, option, True, [False])
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if shape is None:
        raise UnsupportedError(f"{_where(class_name, config)}: the input shape is unknown")
    shape = tuple(shape)
    dtype = _dtype_name(config.get("dtype"))
    first = _first_compute_layer(ctx)
    first_is_embedding = first is not None and first.class_name == "Embedding"
    if "int" in dtype or first_is_embedding:
        if not first_is_embedding:
            raise UnsupportedLayerError(
                f"{_where(class_name, config)}: integer input ({dtype}) must feed an Embedding "
                "layer first"
            )
        if len(shape) != 2:
            raise UnsupportedLayerError(
                f"{_where(class_name, config)}: token input must have shape (batch, T), got {shape}"
            )
        ctx.input_spec = ir.InputSpec(ir.TOKENS, int(first.config["input_dim"]), shape[1])
    else:
        if len(shape) != 3 or shape[2] is None:
            raise UnsupportedLayerError(
                f"{_where(class_name, config)}: feature input must have shape (batch, T, "
                f"features) with a fixed feature count, got {shape}"
            )
        ctx.input_spec = ir.InputSpec(ir.FEATURES, int(shape[2]), shape[1])


def _convert_embedding(class_name, config, weights, ctx: _Context) -> ir.Embedding:
    """Embedding -> ir.Embedding(table (input_dim, output_dim), mask_zero)."""
    _check_dtype(class_name, config)
    (table,) = _weights(class_name, config, weights, {"embeddings": 1})
    _check_shape(
        class_name,
        config,
        "embeddings",
        table,
        (int(config["input_dim"]), int(config["output_dim"])),
    )
    return ir.Embedding(
        table=table, name=config["name"], mask_zero=bool(config.get("mask_zero", False))
    )


def _recurrent(class_name, config, weights, *, return_sequences: bool, go_backwards: bool):
    """One direction of a GRU, LSTM or SimpleRNN from its config and its weights
    [kernel, recurrent_kernel, (bias)].

    GRU bias is (2, 3H) [input row; recurrent row] when reset_after=True, (3H,) input-only when
    False; absent biases become zeros in the IR. dropout / recurrent_dropout are the identity at
    inference; unit_forget_bias only initializes; implementation does not change the numbers.
    """
    _check_dtype(class_name, config)
    if config.get("time_major"):
        raise _option_error(class_name, config, "time_major", True, [False])
    activation = _check_activation(class_name, config, "activation", RNN_ACTIVATIONS)
    kwargs = {}
    if class_name != "SimpleRNN":
        kwargs["recurrent_activation"] = _check_activation(
            class_name, config, "recurrent_activation", RNN_ACTIVATIONS
        )
    units = int(config["units"])
    use_bias = bool(config.get("use_bias", True))
    gates = {"GRU": 3, "LSTM": 4, "SimpleRNN": 1}[class_name]
    w = _weights(
        class_name,
        config,
        weights,
        {"kernel": 1, "recurrent_kernel": 1, "bias": 1 if use_bias else 0},
    )
    kernel, recurrent_kernel = w[0], w[1]
    if kernel.ndim != 2:
        raise UnsupportedError(f"{_where(class_name, config)}: kernel must be 2-D")
    _check_shape(class_name, config, "kernel", kernel, (kernel.shape[0], gates * units))
    _check_shape(class_name, config, "recurrent_kernel", recurrent_kernel, (units, gates * units))
    common = dict(
        return_sequences=return_sequences,
        use_bias=use_bias,
        activation=activation,
        name=config["name"],
        go_backwards=go_backwards,
        **kwargs,
    )
    if class_name == "GRU":
        reset_after = bool(config.get("reset_after", True))
        input_bias = np.zeros(3 * units, np.float32)
        recurrent_bias = np.zeros(3 * units, np.float32)
        if use_bias:
            bias = w[2]
            expected = (2, 3 * units) if reset_after else (3 * units,)
            if bias.shape != expected:
                raise UnsupportedError(
                    f"{_where(class_name, config)}: bias has shape {bias.shape}, expected "
                    f"{expected} for reset_after={reset_after}"
                )
            if reset_after:
                input_bias, recurrent_bias = bias[0], bias[1]
            else:
                input_bias = bias
        return ir.GRU(
            kernel=kernel,
            recurrent_kernel=recurrent_kernel,
            input_bias=input_bias,
            recurrent_bias=recurrent_bias,
            reset_after=reset_after,
            **common,
        )
    bias = w[2] if use_bias else np.zeros(gates * units, np.float32)
    _check_shape(class_name, config, "bias", bias, (gates * units,))
    cls = ir.LSTM if class_name == "LSTM" else ir.SimpleRNN
    return cls(kernel, recurrent_kernel, bias, **common)


def _returned_sequences(class_name, config, ctx: _Context, *, bidirectional=False) -> bool:
    """return_sequences of the IR layer, given which output of the Keras layer the chain uses
    (return_state: output 0 is the sequence / last output, 1 the state h, 2 an LSTM's c)."""
    rnn_config = config["layer"]["config"] if bidirectional else config
    return_sequences = bool(rnn_config.get("return_sequences", False))
    index = ctx.step.output_index
    if not rnn_config.get("return_state", False):
        return return_sequences
    if ctx.step.in_sequential:  # the layer would hand the next one a list
        raise UnsupportedLayerError(
            f"{_where(class_name, config)}: return_state=True is supported only in a Functional "
            "model whose chain uses one of the outputs; supported in a Sequential model: False"
        )
    if index == 0:
        return return_sequences
    if bidirectional:
        raise _NeedsGraphError(
            f"{_where(class_name, config)}: return_state=True and the model uses state output "
            f"{index}; a Bidirectional layer is supported only through its merged output "
            "(output 0)"
        )
    if index == 1:
        return False  # the final state h equals the last (mask-carried) output
    raise _NeedsGraphError(
        f"{_where(class_name, config)}: return_state=True and the model uses output {index}, "
        "the LSTM cell state c, which is not supported; supported: output 0 (the sequence / "
        "last output) or output 1 (the state h, equal to the last output)"
    )


def _mask_checks(class_name, config, ctx: _Context, layer, *, backward: bool) -> None:
    """Checks that need the mask flow: registered for after the IR model is built."""

    def check():
        if not layer.masked:
            return
        if config.get("unroll") and backward:
            raise UnsupportedLayerError(
                f"{_where(class_name, config)}: unroll=True is not supported when a mask "
                "reaches a backward (go_backwards or Bidirectional) layer: Keras' unrolled loop "
                "then applies the mask in the wrong order (docs/keras-semantics.md section 3); "
                "supported: unroll=False (same numbers)"
            )
        if config.get("zero_output_for_mask") and not isinstance(layer, ir.Bidirectional):
            raise UnsupportedLayerError(
                f"{_where(class_name, config)}: zero_output_for_mask=True with a mask is not "
                "supported; supported: False (masked steps repeat the previous output)"
            )

    ctx.post_checks.append(check)


def _convert_rnn(class_name, config, weights, ctx: _Context):
    """GRU, LSTM, SimpleRNN -> ir.GRU / ir.LSTM / ir.SimpleRNN (see `_recurrent`)."""
    return_sequences = _returned_sequences(class_name, config, ctx)
    go_backwards = bool(config.get("go_backwards", False))
    layer = _recurrent(
        class_name, config, weights, return_sequences=return_sequences, go_backwards=go_backwards
    )
    _mask_checks(class_name, config, ctx, layer, backward=go_backwards)
    return layer


#: Options whose values must agree between a Bidirectional's two directions.
_SHARED_RNN_OPTIONS = (
    "units",
    "activation",
    "recurrent_activation",
    "use_bias",
    "reset_after",
    "return_sequences",
    "return_state",
    "time_major",
    "dtype",
)


def _convert_bidirectional(class_name, config, weights, ctx: _Context) -> ir.Bidirectional:
    """Bidirectional(GRU | LSTM | SimpleRNN) -> ir.Bidirectional(forward, backward, merge_mode).

    Weights: the forward layer's, then the backward layer's (the same count each).
    """
    _check_dtype(class_name, config)
    merge_mode = config.get("merge_mode", "concat")
    if merge_mode not in MERGE_MODES:
        raise _option_error(class_name, config, "merge_mode", merge_mode, MERGE_MODES)
    fwd = config["layer"]
    bwd = config.get("backward_layer")
    if bwd is None:  # older configs: the backward layer is the forward one, go_backwards flipped
        bwd = {
            **fwd,
            "config": {**fwd["config"], "go_backwards": not fwd["config"].get("go_backwards")},
        }
    for part, sub in (("layer", fwd), ("backward_layer", bwd)):
        if sub.get("class_name") not in _RECURRENT_CLASSES:
            raise UnsupportedLayerError(
                f"{_where(class_name, config)}: wraps {sub.get('class_name')} as its {part}; "
                f"supported: {', '.join(_RECURRENT_CLASSES)}"
            )
    if fwd["class_name"] != bwd["class_name"]:
        raise UnsupportedLayerError(
            f"{_where(class_name, config)}: the backward layer is a {bwd['class_name']}, the "
            f"forward layer a {fwd['class_name']}; both directions must share one config"
        )
    fc, bc = fwd["config"], bwd["config"]
    for option in _SHARED_RNN_OPTIONS:
        if fc.get(option) != bc.get(option):
            raise UnsupportedLayerError(
                f"{_where(class_name, config)}: the backward layer's {option} "
                f"({bc.get(option)!r}) differs from the forward layer's ({fc.get(option)!r}); "
                "both directions must share one config"
            )
    if fc.get("go_backwards") or not bc.get("go_backwards"):
        raise UnsupportedLayerError(
            f"{_where(class_name, config)}: go_backwards={fc.get('go_backwards')!r} on the "
            f"forward layer and {bc.get('go_backwards')!r} on the backward layer is not "
            "supported; supported: False (forward) and True (backward)"
        )
    if len(weights) % 2:
        raise UnsupportedError(
            f"{_where(class_name, config)}: {len(weights)} weight arrays cannot split into two "
            "directions"
        )
    half = len(weights) // 2
    return_sequences = _returned_sequences(class_name, config, ctx, bidirectional=True)
    cls = fwd["class_name"]
    forward = _recurrent(
        cls, fc, weights[:half], return_sequences=return_sequences, go_backwards=False
    )
    backward = _recurrent(
        cls, bc, weights[half:], return_sequences=return_sequences, go_backwards=True
    )
    layer = ir.Bidirectional(forward, backward, merge_mode, name=config["name"])
    # The unroll quirk concerns the backward direction; Keras forces zero_output_for_mask there.
    _mask_checks(class_name, {**config, "unroll": bc.get("unroll")}, ctx, layer, backward=True)
    return layer


def _convert_dense(class_name, config, weights, ctx: _Context) -> ir.Dense:
    """Dense -> ir.Dense(kernel (in, out), bias (out,); zeros when use_bias=False). On a sequence
    it applies to every step, as Keras' Dense on 3-D input does."""
    _check_dtype(class_name, config)
    if config.get("quantization_config"):
        raise _option_error(
            class_name, config, "quantization_config", config["quantization_config"], [None]
        )
    activation = _check_activation(class_name, config, "activation", DENSE_ACTIVATIONS)
    use_bias = bool(config.get("use_bias", True))
    w = _weights(class_name, config, weights, {"kernel": 1, "bias": 1 if use_bias else 0})
    kernel = w[0]
    if kernel.ndim != 2:
        raise UnsupportedError(f"{_where(class_name, config)}: kernel must be 2-D")
    bias = w[1] if use_bias else np.zeros(kernel.shape[1], np.float32)
    return ir.Dense(kernel=kernel, bias=bias, activation=activation, name=config["name"])


def _convert_time_distributed(class_name, config, weights, ctx: _Context) -> ir.Dense:
    """TimeDistributed(Dense) -> ir.Dense applied per step (named after the wrapper)."""
    _check_dtype(class_name, config)
    inner = config["layer"]
    if inner.get("class_name") != "Dense":
        raise UnsupportedLayerError(
            f"{_where(class_name, config)}: wraps {inner.get('class_name')}; supported: Dense"
        )
    if not _flow(ctx)[0]:
        raise UnsupportedLayerError(
            f"{_where(class_name, config)}: needs a sequence input, but the previous layer "
            "returns one vector"
        )
    dense = _convert_dense("Dense", inner["config"], weights, ctx)
    dense.name = config["name"]
    return dense


def _convert_masking(class_name, config, weights, ctx: _Context) -> ir.Masking:
    """Masking(mask_value) -> ir.Masking: steps whose features all equal mask_value are masked."""
    _check_dtype(class_name, config)
    _weights(class_name, config, weights, {})
    _, width, _ = _flow(ctx)
    return ir.Masking(width, float(config.get("mask_value", 0.0)), name=config["name"])


def _convert_conv1d(class_name, config, weights, ctx: _Context) -> ir.Conv1D:
    """Conv1D (channels_last, groups=1) -> ir.Conv1D(kernel (k, in, out), bias)."""
    _check_dtype(class_name, config)
    _require(class_name, config, "data_format", ["channels_last"], "channels_last")
    _require(class_name, config, "groups", [1], 1)
    padding = _require(class_name, config, "padding", CONV_PADDINGS, "valid")
    activation = _check_activation(class_name, config, "activation", CONV_ACTIVATIONS)
    use_bias = bool(config.get("use_bias", True))
    w = _weights(class_name, config, weights, {"kernel": 1, "bias": 1 if use_bias else 0})
    kernel = w[0]
    if kernel.ndim != 3:
        raise UnsupportedError(f"{_where(class_name, config)}: kernel must be 3-D (k, in, out)")
    bias = w[1] if use_bias else np.zeros(kernel.shape[2], np.float32)
    return ir.Conv1D(
        kernel=kernel,
        bias=bias,
        strides=_int1(config.get("strides", 1)),
        dilation_rate=_int1(config.get("dilation_rate", 1)),
        padding=padding,
        activation=activation,
        name=config["name"],
    )


def _convert_global_pool(class_name, config, weights, ctx: _Context) -> ir.GlobalPool:
    """GlobalAveragePooling1D / GlobalMaxPooling1D (channels_last, keepdims=False)."""
    _check_dtype(class_name, config)
    _require(class_name, config, "data_format", ["channels_last"], "channels_last")
    _require(class_name, config, "keepdims", [False], False)
    _weights(class_name, config, weights, {})
    _, width, _ = _flow(ctx)
    kind = "average" if class_name == "GlobalAveragePooling1D" else "max"
    return ir.GlobalPool(width, kind, name=config["name"])


def _convert_batch_norm(class_name, config, weights, ctx: _Context) -> ir.Affine:
    """BatchNormalization (inference, axis -1) folded to ir.Affine:
    scale = gamma / sqrt(moving_variance + epsilon), shift = beta - moving_mean * scale.
    Weights: [gamma if scale][beta if center] moving_mean moving_variance."""
    _check_dtype(class_name, config)
    _check_last_axis(class_name, config, ctx)
    _require(class_name, config, "renorm", [False], False)
    has_gamma, has_beta = bool(config.get("scale", True)), bool(config.get("center", True))
    w = _weights(
        class_name,
        config,
        weights,
        {
            "gamma": int(has_gamma),
            "beta": int(has_beta),
            "moving_mean": 1,
            "moving_variance": 1,
        },
    )
    mean, var = np.float64(w[-2]), np.float64(w[-1])
    gamma = np.float64(w[0]) if has_gamma else np.ones_like(mean)
    beta = np.float64(w[int(has_gamma)]) if has_beta else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + float(config.get("epsilon", 1e-3)))
    return ir.Affine(scale, beta - mean * scale, name=config["name"])


def _convert_layer_norm(class_name, config, weights, ctx: _Context) -> ir.LayerNorm:
    """LayerNormalization (axis -1, rms_scaling False) -> ir.LayerNorm(gamma, beta, epsilon);
    gamma / beta are ones / zeros when scale / center is off."""
    _check_dtype(class_name, config)
    _check_last_axis(class_name, config, ctx)
    _require(class_name, config, "rms_scaling", [False], False)
    has_gamma, has_beta = bool(config.get("scale", True)), bool(config.get("center", True))
    w = _weights(class_name, config, weights, {"gamma": int(has_gamma), "beta": int(has_beta)})
    _, width, _ = _flow(ctx)
    gamma = w[0] if has_gamma else np.ones(width, np.float32)
    beta = w[int(has_gamma)] if has_beta else np.zeros(width, np.float32)
    return ir.LayerNorm(
        gamma, beta, epsilon=float(config.get("epsilon", 1e-3)), name=config["name"]
    )


def _convert_normalization(class_name, config, weights, ctx: _Context) -> ir.Affine:
    """Normalization (axis -1, invert False) folded to ir.Affine:
    y = (x - mean) / max(sqrt(variance), 1e-7). mean / variance come from the config when they
    were passed to the constructor (scalars broadcast), else from the weights
    [mean, variance, count] (count is unused)."""
    _check_dtype(class_name, config)
    _check_last_axis(class_name, config, ctx)
    _require(class_name, config, "invert", [False], False)
    _, width, _ = _flow(ctx)
    if config.get("mean") is not None:
        _weights(class_name, config, weights, {})
        mean, var = config["mean"], config["variance"]
    else:
        if len(weights) not in (2, 3):
            _weights(class_name, config, weights, {"mean": 1, "variance": 1, "count": 1})
        mean, var = weights[0], weights[1]
    stats = []
    for what, value in (("mean", mean), ("variance", var)):
        a = np.asarray(value, dtype=np.float32).astype(np.float64).reshape(-1)
        if a.size == 1:
            a = np.full(width, a[0])
        if a.shape != (width,):
            raise UnsupportedError(
                f"{_where(class_name, config)}: {what} has {a.size} values, expected 1 or {width}"
            )
        stats.append(a)
    mean, var = stats
    scale = 1.0 / np.maximum(np.sqrt(var), 1e-7)
    return ir.Affine(scale, -mean * scale, name=config["name"])


def _convert_activation(class_name, config, weights, ctx: _Context) -> ir.Activation:
    """Activation -> ir.Activation over the last axis."""
    _check_dtype(class_name, config)
    activation = _check_activation(class_name, config, "activation", DENSE_ACTIVATIONS)
    _, width, _ = _flow(ctx)
    return ir.Activation(width, activation, name=config["name"])


def _convert_flatten(class_name, config, weights, ctx: _Context) -> ir.Flatten | None:
    """Flatten: a sequence with a fixed T (from the model's input shape) -> ir.Flatten(T, C);
    a vector -> nothing (the identity)."""
    _require(class_name, config, "data_format", ["channels_last", None], "channels_last")
    seq, width, steps = _flow(ctx)
    if not seq:
        return None
    if steps is None:
        raise UnsupportedLayerError(
            f"{_where(class_name, config)}: flattening a sequence needs a fixed number of steps, "
            "but the model input declares T=None; declare it: keras.Input(shape=(T, ...))"
        )
    return ir.Flatten(steps, width, name=config["name"])


def _convert_identity(class_name, config, weights, ctx: _Context) -> None:
    """Layers that are the identity at inference (Dropout, SpatialDropout1D, GaussianNoise,
    GaussianDropout): nothing in the IR."""


#: Keras class name -> converter. Converters return an IR layer, or None when the layer has no
#: IR counterpart (InputLayer fills ctx.input_spec; dropout and noise layers are the identity at
#: inference; Flatten of a vector is the identity).
_CONVERTERS: dict[str, Callable[[str, dict, list, _Context], Any]] = {
    "InputLayer": _convert_input,
    "Embedding": _convert_embedding,
    "GRU": _convert_rnn,
    "LSTM": _convert_rnn,
    "SimpleRNN": _convert_rnn,
    "Bidirectional": _convert_bidirectional,
    "Dense": _convert_dense,
    "TimeDistributed": _convert_time_distributed,
    "Masking": _convert_masking,
    "Conv1D": _convert_conv1d,
    "GlobalAveragePooling1D": _convert_global_pool,
    "GlobalMaxPooling1D": _convert_global_pool,
    "BatchNormalization": _convert_batch_norm,
    "LayerNormalization": _convert_layer_norm,
    "Normalization": _convert_normalization,
    "Activation": _convert_activation,
    "Flatten": _convert_flatten,
    "Dropout": _convert_identity,
    "SpatialDropout1D": _convert_identity,
    "GaussianNoise": _convert_identity,
    "GaussianDropout": _convert_identity,
}

SUPPORTED_LAYERS = tuple(_CONVERTERS)


# --------------------------------------------------------------------------------------------
# Model config walking (shared by the live and the file route)
# --------------------------------------------------------------------------------------------


def _entry_name(entry: dict) -> str:
    return str(entry.get("name") or (entry.get("config") or {}).get("name", "?"))


def _is_operation(entry: dict) -> bool:
    """A weightless op node of a Functional config (keras.ops: the mask's NotEqual / Any, ...),
    which is an Operation, not a Layer: it has no h5 group and is not in `model.layers`."""
    module = str(entry.get("module") or "")
    return module.startswith(("keras.src.ops", "keras.ops"))


def _is_model(entry: dict) -> bool:
    config = entry.get("config") or {}
    return entry.get("class_name") in _MODEL_CLASSES or (
        isinstance(config, dict) and "layers" in config and "input_layers" in config
    )


def saved_layer_indices(model: dict) -> list:
    """Indices into `model`'s config "layers" of the entries that are in its `model.layers` (the
    order Keras saves them in): op nodes are left out, and so is a Sequential's InputLayer."""
    entries = model["config"]["layers"]
    out = []
    for i, entry in enumerate(entries):
        if _is_operation(entry):
            continue
        if model.get("class_name") == "Sequential" and entry.get("class_name") == "InputLayer":
            continue
        out.append(i)
    return out


def _subobjects(class_name: str, config: dict) -> list:
    """[(attribute, class name, config)] of the saved sub-objects of a layer, in the order their
    weights follow the layer's own ones."""
    if class_name in _RECURRENT_CLASSES:
        return [("cell", f"{class_name}Cell", {})]
    if class_name == "Bidirectional":
        fwd = config.get("layer") or {}
        bwd = config.get("backward_layer") or fwd
        return [
            ("forward_layer", fwd.get("class_name"), fwd.get("config") or {}),
            ("backward_layer", bwd.get("class_name"), bwd.get("config") or {}),
        ]
    if class_name == "TimeDistributed":
        inner = config.get("layer") or {}
        return [("layer", inner.get("class_name"), inner.get("config") or {})]
    return []


def collect_weights(reader, obj, class_name: str, config: dict) -> list:
    """A layer's weights in h5 order: its own variables, then its sub-objects' (recursively).
    reader: .own(obj) -> list of arrays, .child(obj, attribute) -> obj."""
    out = list(reader.own(obj))
    for attribute, sub_class, sub_config in _subobjects(class_name, config):
        out += collect_weights(reader, reader.child(obj, attribute), sub_class, sub_config)
    return out


def _not_chain(model_name: str, why: str) -> UnsupportedError:
    return _NotChainError(f"model {model_name!r} is not a single chain: {why}")


def _tensor_refs(value) -> list:
    """(layer name, node index, tensor index) of every KerasTensor reference in a config value."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            history = (value.get("config") or {}).get("keras_history")
            return [(str(history[0]), int(history[1]), int(history[2]))]
        return [r for v in value.values() for r in _tensor_refs(v)]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _tensor_refs(v)]
    return []


def _io_refs(value) -> list:
    """Functional input_layers / output_layers: one [name, node, tensor] or a list of them."""
    if not value:
        return []
    if isinstance(value, dict):
        return [(_tensor_refs(value) or [("?", 0, 0)])[0]]
    if isinstance(value[0], str):
        return [(value[0], int(value[1]), int(value[2]))]
    return [r for v in value for r in _io_refs(v)]


def _walk(model: dict, path: tuple = ()) -> list:
    """The chain of `model` (a serialized Sequential or Functional: {"class_name", "config"}) as
    _Steps, input layer first. Nested models on the chain are flattened into it."""
    class_name = model.get("class_name")
    config = model.get("config") or {}
    name = config.get("name", "?")
    if class_name == "Sequential":
        return _walk_sequential(model, path)
    if not _is_model(model):
        raise UnsupportedError(
            f"model {name!r} ({class_name}) is not a Sequential or Functional model; only "
            "Sequential and Functional models can be converted"
        )
    entries = config["layers"]
    by_name = {_entry_name(e): (i, e) for i, e in enumerate(entries)}
    inputs, outputs = _io_refs(config.get("input_layers")), _io_refs(config.get("output_layers"))
    if len(inputs) != 1 or len(outputs) != 1:
        raise _not_chain(
            name,
            f"it has {len(inputs)} inputs and {len(outputs)} outputs (one of each is required)",
        )
    steps, seen = [], set()
    layer_name, node_index, tensor_index = outputs[0]
    while True:
        if layer_name not in by_name:
            raise _not_chain(name, f"no layer {layer_name!r} in the config")
        index, entry = by_name[layer_name]
        where = f"layer {layer_name!r} ({entry.get('class_name')})"
        if layer_name in seen:
            raise _not_chain(
                name, f"{where} is applied more than once (shared layers are not supported)"
            )
        seen.add(layer_name)
        nodes = entry.get("inbound_nodes") or []
        if entry.get("class_name") == "InputLayer" or not nodes:
            steps.append(_Step(entry, [*path, (model, index)], None, tensor_index))
            break
        if node_index >= len(nodes):
            raise _not_chain(name, f"{where} has no call {node_index}")
        node = nodes[node_index]
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            parents, kwargs, legacy = _tensor_refs(node.get("args", [])), node.get("kwargs"), False
        else:  # tf.keras 2: [[layer name, node index, tensor index, kwargs], ...]
            parents = [(str(r[0]), int(r[1]), int(r[2])) for r in node]
            kwargs = {k: v for r in node if len(r) > 3 and r[3] for k, v in r[3].items()}
            legacy = True
        mask = None
        for key, value in (kwargs or {}).items():
            if key == "mask" and not legacy:
                mask = bool(_tensor_refs(value))  # Keras' implicit mask plumbing, not data
            elif _tensor_refs(value) or (legacy and key != "training" and value is not None):
                raise _not_chain(
                    name,
                    f"{where} takes a tensor for its {key!r} argument (each layer must be fed "
                    "by the previous one only)",
                )
        steps.append(_Step(entry, [*path, (model, index)], mask, tensor_index))
        if len(parents) != 1:
            raise _not_chain(
                name,
                f"{where} takes {len(parents)} input tensors (each layer must be fed by the "
                "previous one only)",
            )
        layer_name, node_index, tensor_index = parents[0]
    steps.reverse()
    if _entry_name(steps[0].entry) != inputs[0][0]:
        raise _not_chain(name, "the output does not lead back to the model input")
    return _flatten_nested(steps, name)


def _walk_sequential(model: dict, path: tuple) -> list:
    config = model["config"]
    entries = config.get("layers") or []
    name = config.get("name", "?")
    if not entries or entries[0].get("class_name") != "InputLayer":
        raise UnsupportedError(
            f"Sequential model {name!r} is not built, so its input shape is unknown: start it "
            "with keras.Input(shape=...) or call model.build(input_shape)"
        )
    steps = [_Step(e, [*path, (model, i)], in_sequential=True) for i, e in enumerate(entries)]
    return _flatten_nested(steps, name)


def _flatten_nested(steps: list, name: str) -> list:
    """Replace each nested model on the chain by its own chain (its input layer dropped).

    From the first nested model on, the recorded ``mask=`` arguments are not what happens at run
    time: a nested model's symbolic output carries no mask and its inner graph was built from a
    mask-less Input, so Keras records ``mask: null`` there, yet at run time each layer falls back
    to the mask its input carries, and masks do flow into, through and out of nested models
    (checked with Keras 3.15, as the flattened chain's rules say). Those records are dropped.
    """
    out = [steps[0]]
    nested = False
    for step in steps[1:]:
        if _is_model(step.entry) or step.class_name == "Sequential":
            if step.output_index:
                raise _not_chain(name, f"nested model {_entry_name(step.entry)!r} output")
            added = _walk(step.entry, tuple(step.path))[1:]
            nested = True
        else:
            added = [step]
        if nested:
            for later in added:
                later.mask = None
        out += added
    return out


# --------------------------------------------------------------------------------------------
# Conversion of a walked chain
# --------------------------------------------------------------------------------------------


def convert_chain(model: dict, weight_reader, keras_version: str) -> ir.Model:
    """Convert a serialized model ({"class_name", "config", ...} as in config.json) whose weights
    `weight_reader` provides: .layer(path) -> obj for a _Step.path, plus .own / .child (see
    `collect_weights`). The live and the file route both end here."""
    steps = _walk(model)
    chain = []
    for step in steps:
        if step.class_name not in _CONVERTERS:
            if step.class_name in _MASK_OPS:
                raise UnsupportedLayerError(
                    f"layer {_entry_name(step.entry)!r} ({step.class_name}) computes on the data "
                    "path; as a mask op it is supported only on the mask path"
                )
            error = _NeedsGraphError if step.class_name in _GRAPH_LAYERS else UnsupportedLayerError
            raise error(
                f"layer {_entry_name(step.entry)!r} ({step.class_name}) is not supported; "
                f"supported layers: {', '.join(SUPPORTED_LAYERS)}"
            )
        if step.output_index and step.class_name not in (*_RECURRENT_CLASSES, "Bidirectional"):
            raise UnsupportedError(
                f"layer {_entry_name(step.entry)!r} ({step.class_name}): output "
                f"{step.output_index} is used; only output 0 is supported"
            )
        obj = weight_reader.layer(step.path)
        weights = collect_weights(weight_reader, obj, step.class_name, step.config)
        chain.append(LayerData(step.class_name, step.config, weights))
    ctx = _Context(chain=chain, steps=steps)
    produced = []
    for index, data in enumerate(chain):
        ctx.index = index
        converted = _CONVERTERS[data.class_name](data.class_name, data.config, data.weights, ctx)
        produced.append(converted)
        if converted is not None:
            ctx.layers.append(converted)
    if ctx.input_spec is None:  # pragma: no cover - _walk always starts at an InputLayer
        raise UnsupportedError("no input layer found")
    config = model.get("config") or {}
    source = {
        "framework": "keras",
        "keras_version": str(keras_version),
        "layers": [layer.name for layer in ctx.layers],
        "keras_layers": [data.name for data in chain],
    }
    try:
        result = ir.Model(
            input=ctx.input_spec,
            layers=ctx.layers,
            name=str(config.get("name", "model")),
            source=source,
        )
    except (ValueError, TypeError) as exc:
        raise UnsupportedError(f"model {config.get('name', '?')!r}: {exc}") from None
    for step, data, converted in zip(steps, chain, produced, strict=True):
        if step.mask is None or converted is None:
            continue
        if step.mask != converted.masked:
            keras_says = "passes it a mask" if step.mask else "passes it no mask"
            ir_says = "one arrives" if converted.masked else "none arrives"
            raise UnsupportedLayerError(
                f"{_where(data.class_name, data.config)}: Keras {keras_says}, but edgegru's mask "
                f"rules (ir.MASK_RULES) say {ir_says}; this mask flow is not supported"
            )
    for check in ctx.post_checks:
        check()
    return result


# --------------------------------------------------------------------------------------------
# The live route
# --------------------------------------------------------------------------------------------


class _LiveReader:
    """Weights of a live Keras model, addressed like the h5 file addresses them."""

    def __init__(self, keras, model):
        self.keras = keras
        self.model = model

    def layer(self, path):
        obj = self.model
        for container, index in path:
            saved = saved_layer_indices(container)
            entry = container["config"]["layers"][index]
            if index not in saved:  # a Sequential's InputLayer: no variables
                return None
            live = obj.layers[saved.index(index)]
            if live.name != _entry_name(entry):
                raise UnsupportedError(
                    f"layer {_entry_name(entry)!r}: the live model's layer order does not "
                    f"match its config (found {live.name!r})"
                )
            obj = live
        return obj

    def own(self, obj) -> list:
        if obj is None or not hasattr(obj, "save_own_variables"):
            return []
        store = {}
        obj.save_own_variables(store)
        return [self._numpy(store[str(i)]) for i in range(len(store))]

    def child(self, obj, attribute):
        return getattr(obj, attribute, None)

    def _numpy(self, value) -> np.ndarray:
        # Variables have .numpy() on every backend; it avoids a numpy-2 DeprecationWarning that
        # keras.ops.convert_to_numpy triggers on TensorFlow variables.
        if hasattr(value, "numpy"):
            return np.asarray(value.numpy())
        return np.asarray(self.keras.ops.convert_to_numpy(value))


def _check_live_model(keras, model) -> None:
    if isinstance(model, keras.Sequential):
        try:
            model.inputs  # noqa: B018 - raises AttributeError when the model is not built
        except AttributeError as exc:
            raise UnsupportedError(
                f"Sequential model {model.name!r} is not built, so its input shape is unknown: "
                "start it with keras.Input(shape=...) or call model.build(input_shape)"
            ) from exc
        return
    if not hasattr(model, "_nodes_by_depth"):  # Functional (including subclasses of it)
        raise UnsupportedError(
            f"model {model.name!r} ({type(model).__name__}) is a subclassed model; only "
            "Sequential and Functional models can be converted"
        )


def serialized_config(keras, model) -> dict:
    """The model's config as ``model.save`` writes it to config.json (JSON round-tripped)."""
    return json.loads(json.dumps(keras.saving.serialize_keras_object(model)))


def from_keras(model, *, graphs: bool = False):
    """Convert a Keras 3 model to the IR.

    model: a live ``keras.Model`` (Sequential or Functional), or a path (str / os.PathLike) to
        a ``.keras`` file, read by `edgegru.keras_file` without Keras.
    graphs: False (the default, as before graphs existed): a single chain only, anything else
        raises UnsupportedError saying the model is not a single chain. True: a single chain
        gives the same `ir.Model`, any other Functional model an `ir.Graph` (`convert_graph`;
        `edgegru.convert` asks for this).
    Returns an `ir.Model` (or `ir.Graph`) whose layer names are the Keras layer names, whose
    name is the Keras model name, and whose ``source`` is described in the module docstring.

    Raises ImportError when keras is not installed (live models only), UnsupportedLayerError (a
    ValueError) for an unsupported layer class or option value, UnsupportedError (a ValueError)
    when the model is not a single chain (graphs=False) or not a graph edgegru converts.
    """
    if isinstance(model, (str, os.PathLike)):
        from .keras_file import from_keras_file

        return from_keras_file(model, graphs=graphs)
    keras = _import_keras()
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"from_keras expects a keras.Model or a path to a .keras file, not {type(model)!r}"
        )
    _check_live_model(keras, model)
    config = serialized_config(keras, model)
    convert = convert_any if graphs else convert_chain
    return convert(config, _LiveReader(keras, model), keras.__version__)


# --------------------------------------------------------------------------------------------
# Graphs: Functional models that are not a single chain -> ir.Graph (docs/format.md "Graphs")
# --------------------------------------------------------------------------------------------

#: Keras merge layers -> ir.Merge mode.
_MERGE_CLASSES = {
    "Add": "add",
    "Subtract": "subtract",
    "Multiply": "multiply",
    "Average": "average",
    "Maximum": "maximum",
    "Minimum": "minimum",
}
#: Layers only a graph describes (the chain route refuses them with _NeedsGraphError).
_TIME_STEP_CLASSES = ("Cropping1D", "ZeroPadding1D", "UpSampling1D")
_GRAPH_LAYERS = (
    *_MERGE_CLASSES,
    "Concatenate",
    "RepeatVector",
    "Attention",
    "AdditiveAttention",
    *_TIME_STEP_CLASSES,
    "Dot",
    "Reshape",
    "Permute",
)
#: Every layer class the graph route converts.
GRAPH_SUPPORTED_LAYERS = (*(c for c in _CONVERTERS if c != "InputLayer"), *_GRAPH_LAYERS)
#: Call arguments of a layer node the graph route understands (the rest must not be tensors).
_GRAPH_KWARGS = ("mask", "training", "initial_state")
#: Call arguments that are options, not tensors: Attention's (anything else is refused).
_ATTENTION_CALL = {"use_causal_mask": (False, True), "return_attention_scores": (False,)}


@dataclass
class _GraphNode:
    """One application of a Keras layer, found by `_GraphWalk`.

    key: identifies the layer object (its weight path), so that a layer applied twice, or a
        nested model applied twice, converts to one IR layer. inputs: value names of the data
        arguments then of the initial states (`state_count` says how many are states).
    mask: the recorded ``mask=`` argument (True / False), None when the config does not record
        one or the node is inside a nested model (see `_flatten_nested`: those records do not
        describe what happens at run time).
    """

    entry: dict
    path: list
    key: tuple
    inputs: list
    state_count: int
    outputs: list
    mask: bool | None
    call: dict = field(default_factory=dict)  # the call's keyword arguments (config.json)

    @property
    def class_name(self) -> str:
        return str(self.entry.get("class_name"))

    @property
    def config(self) -> dict:
        return self.entry.get("config") or {}

    @property
    def name(self) -> str:
        return _entry_name(self.entry)


class _GraphWalk:
    """Walks a serialized Functional (or Sequential) model from its outputs back to its inputs,
    inlining nested models, and lists the layer nodes in a topological order (depth first, the
    model outputs in order, each node's arguments in order). Value names: a graph input is its
    Keras Input's name; output k of a layer is "<layer>" (k = 0) or "<layer>:<k>", with
    "@<node index>" after the layer name when the model applies the layer more than once, and
    "<nested model>[@<node>]/" before it inside a nested model. Identity layers (Dropout, ...)
    get a node here; `convert_graph` drops it and reads its input's value instead."""

    def __init__(self, model: dict):
        self.model = model
        self.nodes: list = []
        self.inputs: list = []  # (value name, InputLayer entry)
        self._memo: dict = {}
        self._names: set = set()
        self._tainted: set = set()  # values computed inside or after a nested model

    # -- scopes: (model dict, weight path prefix, name prefix, {input layer name: value}) --

    def run(self) -> list:
        config = self.model.get("config") or {}
        name = config.get("name", "?")
        if self.model.get("class_name") == "Sequential":
            entries = config.get("layers") or []
            if not entries or entries[0].get("class_name") != "InputLayer":
                raise UnsupportedError(f"Sequential model {name!r} is not built")
            value = self._add_input(entries[0])
            return [self._sequential(self.model, (), "", value)]
        for what in ("input_layers", "output_layers"):
            if isinstance(config.get(what), dict):
                raise UnsupportedError(
                    f"model {name!r}: its {what[:-7]}s are a dict; supported: a list (or one "
                    "tensor), as in keras.Model(inputs=[...], outputs=[...])"
                )
        inputs = _io_refs(config.get("input_layers"))
        by_name = {_entry_name(e): e for e in config.get("layers") or []}
        for layer_name, _, _ in inputs:
            entry = by_name.get(layer_name)
            if entry is None or entry.get("class_name") != "InputLayer":
                raise UnsupportedError(f"model {name!r}: input {layer_name!r} is not an Input")
            self._add_input(entry)
        scope = (self.model, (), "", None)
        return [self._tensor(scope, ref) for ref in _io_refs(config.get("output_layers"))]

    def _add_input(self, entry) -> str:
        value = _entry_name(entry)
        self._claim(value)
        self.inputs.append((value, entry))
        return value

    def _claim(self, value: str) -> None:
        if value in self._names:
            raise UnsupportedError(f"two values of the graph are named {value!r}")
        self._names.add(value)

    def _tensor(self, scope, ref) -> str:
        """The value name of tensor `ref` = (layer name, node index, tensor index) in `scope`."""
        model, _, prefix, input_map = scope
        layer_name, node_index, tensor_index = ref
        config = model.get("config") or {}
        entries = config.get("layers") or []
        found = [(i, e) for i, e in enumerate(entries) if _entry_name(e) == layer_name]
        if not found:
            raise UnsupportedError(f"model {config.get('name', '?')!r}: no layer {layer_name!r}")
        index, entry = found[0]
        if entry.get("class_name") == "InputLayer":
            if input_map is None:
                return layer_name
            if layer_name not in input_map:
                raise UnsupportedError(f"nested input {layer_name!r} is not fed")
            return input_map[layer_name]
        memo_key = (id(model), prefix, index, node_index)
        if memo_key not in self._memo:
            self._memo[memo_key] = self._node(scope, index, entry, node_index)
        outputs = self._memo[memo_key]
        if tensor_index >= len(outputs):
            raise UnsupportedError(
                f"layer {layer_name!r} ({entry.get('class_name')}): output {tensor_index} is used, "
                f"the layer has {len(outputs)}"
            )
        return outputs[tensor_index]

    def _node(self, scope, index: int, entry: dict, node_index: int) -> list:
        model, path, prefix, input_map = scope
        class_name = str(entry.get("class_name"))
        name = _entry_name(entry)
        where = f"layer {name!r} ({class_name})"
        if _is_operation(entry):
            raise UnsupportedLayerError(
                f"{where} is a keras.ops operation on the data path, which is not supported; "
                f"supported layers: {', '.join(GRAPH_SUPPORTED_LAYERS)}"
            )
        nodes = entry.get("inbound_nodes") or []
        if node_index >= len(nodes):
            raise UnsupportedError(f"{where} has no call {node_index}")
        node = nodes[node_index]
        if not isinstance(node, dict):
            raise UnsupportedError(
                f"{where}: graphs are read from Keras 3 configs only; save the model as .keras"
            )
        kwargs = node.get("kwargs") or {}
        for key, value in kwargs.items():
            if key not in _GRAPH_KWARGS and _tensor_refs(value):
                raise UnsupportedLayerError(
                    f"{where} takes a tensor for its {key!r} argument; supported tensor "
                    "arguments: the layer's inputs, initial_state"
                )
        base = prefix + name + (f"@{node_index}" if len(nodes) > 1 else "")
        weight_path = [*path, (model, index)]
        args = [self._tensor(scope, r) for r in _tensor_refs(node.get("args", []))]
        states = [self._tensor(scope, r) for r in _tensor_refs(kwargs.get("initial_state"))]
        if states and class_name not in (*_RECURRENT_CLASSES, "Bidirectional"):
            raise UnsupportedLayerError(f"{where}: initial_state is supported on recurrent layers")
        if _is_model(entry) or class_name == "Sequential":
            return self._nested(entry, weight_path, base, args)
        # A nested model's symbolic output carries no mask, so Keras records `mask: null` on
        # the layers after it, yet at run time an explicit None falls back to the mask the input
        # carries (`_flatten_nested`): records inside or downstream of a nested model are moot.
        tainted = input_map is not None or any(v in self._tainted for v in args + states)
        recorded = None
        if "mask" in kwargs and not tainted:
            recorded = bool(_tensor_refs(kwargs["mask"]))
        config = entry.get("config") or {}
        if class_name == "Bidirectional" and config.get("merge_mode", "concat") is None:
            # two sequence outputs (forward, backward): refused before the walk counts outputs
            raise _option_error(class_name, config, "merge_mode", None, MERGE_MODES)
        count = 1
        if class_name in _RECURRENT_CLASSES and config.get("return_state"):
            count = 1 + (2 if class_name == "LSTM" else 1)
        elif class_name == "Bidirectional" and (config.get("layer") or {}).get("config", {}).get(
            "return_state"
        ):
            inner = (config.get("layer") or {}).get("class_name")
            count = 1 + 2 * (2 if inner == "LSTM" else 1)
        outputs = [base if k == 0 else f"{base}:{k}" for k in range(count)]
        for value in outputs:
            self._claim(value)
            if tainted:
                self._tainted.add(value)
        key = tuple((id(m), i) for m, i in weight_path)
        self.nodes.append(
            _GraphNode(
                entry, weight_path, key, args + states, len(states), outputs, recorded, kwargs
            )
        )
        return outputs

    def _nested(self, entry: dict, weight_path: list, base: str, args: list) -> list:
        """Inline a nested model called on `args`: its outputs' value names."""
        if entry.get("class_name") == "Sequential":
            if len(args) != 1:
                raise UnsupportedError(f"nested Sequential {_entry_name(entry)!r}: one input")
            return [self._sequential(entry, tuple(weight_path), base + "/", args[0])]
        config = entry.get("config") or {}
        inputs = _io_refs(config.get("input_layers"))
        if len(inputs) != len(args):
            raise UnsupportedError(
                f"nested model {_entry_name(entry)!r}: called on {len(args)} tensors, it has "
                f"{len(inputs)} inputs"
            )
        input_map = {r[0]: v for r, v in zip(inputs, args, strict=True)}
        scope = (entry, tuple(weight_path), base + "/", input_map)
        return [self._tensor(scope, r) for r in _io_refs(config.get("output_layers"))]

    def _sequential(self, model: dict, path: tuple, prefix: str, value: str) -> str:
        """The value a (nested or top-level) Sequential model computes from `value`."""
        entries = (model.get("config") or {}).get("layers") or []
        for index, entry in enumerate(entries):
            if entry.get("class_name") == "InputLayer":
                continue
            weight_path = [*path, (model, index)]
            name = prefix + _entry_name(entry)
            if _is_model(entry) or entry.get("class_name") == "Sequential":
                outs = self._nested(entry, weight_path, name, [value])
                if len(outs) != 1:
                    raise UnsupportedError(f"nested model {name!r}: one output expected")
                value = outs[0]
                continue
            config = entry.get("config") or {}
            if config.get("return_state") or (config.get("layer") or {}).get("config", {}).get(
                "return_state"
            ):
                raise UnsupportedLayerError(
                    f"layer {_entry_name(entry)!r} ({entry.get('class_name')}): return_state=True "
                    "is not supported in a Sequential model; supported: False"
                )
            self._claim(name)
            if path:  # a nested Sequential
                self._tainted.add(name)
            key = tuple((id(m), i) for m, i in weight_path)
            self.nodes.append(_GraphNode(entry, weight_path, key, [value], 0, [name], None))
            value = name
        return value


def _value_steps(layer, ins: list):
    """The fixed steps of a node's first output from its inputs' (None: dynamic or a vector)."""
    if isinstance(layer, ir.RepeatVector):
        return int(layer.n)
    if isinstance(layer, ir.TimeSteps):
        return None if ins[0] is None else layer.out_steps(ins[0])
    if isinstance(layer, ir.Reshape):
        return layer.out_steps or None
    if isinstance(layer, ir.Permute):
        return int(layer.dim)
    if isinstance(layer, ir.Concatenate) and layer.axis == "time":
        return None if any(s is None for s in ins) else sum(ins)
    if isinstance(layer, ir.Conv1D):
        return None if ins[0] is None else layer.out_steps(ins[0])
    if isinstance(layer, ir.Attention):
        return ins[0]  # the query's
    known = [s for s in ins if s is not None]
    return known[0] if known else None


def _graph_input(value: str, entry: dict, consumers: list) -> ir.GraphInput:
    config = entry.get("config") or {}
    where = _where("InputLayer", config)
    for option in ("sparse", "ragged"):
        if config.get(option):
            raise _option_error("InputLayer", config, option, True, [False])
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if shape is None:
        raise UnsupportedError(f"{where}: the input shape is unknown")
    shape = tuple(shape)
    dtype = _dtype_name(config.get("dtype"))
    embeddings = [n for n in consumers if n.class_name == "Embedding"]
    if embeddings:
        if len(embeddings) != len(consumers):
            raise UnsupportedLayerError(
                f"{where}: token ids feed an Embedding and other layers; token ids may only "
                "feed Embedding layers"
            )
        vocab = {int(n.config["input_dim"]) for n in embeddings}
        if len(vocab) != 1:
            raise UnsupportedLayerError(f"{where}: feeds Embeddings of vocabularies {vocab}")
        if len(shape) != 2:
            raise UnsupportedLayerError(f"{where}: token input must be (batch, T), got {shape}")
        return ir.GraphInput(value, ir.TOKENS, vocab.pop(), shape[1])
    if "int" in dtype:
        raise UnsupportedLayerError(
            f"{where}: integer input ({dtype}) must feed Embedding layers only"
        )
    if len(shape) == 3 and shape[2] is not None:
        return ir.GraphInput(value, ir.FEATURES, int(shape[2]), shape[1])
    if len(shape) == 2 and shape[1] is not None:
        return ir.GraphInput(value, ir.VECTOR, int(shape[1]))
    raise UnsupportedLayerError(
        f"{where}: an input must be (batch, T, features), (batch, features) or token ids "
        f"(batch, T) feeding an Embedding, with a fixed feature count; got {shape}"
    )


def _convert_graph_layer(node: _GraphNode, weights: list, infos: list):
    """A graph node's IR layer (None: the identity). infos: (Value, steps) of its inputs."""
    class_name, config = node.class_name, node.config
    first, steps = infos[0]
    if class_name in _MERGE_CLASSES:
        _check_dtype(class_name, config)
        _weights(class_name, config, weights, {})
        known = {s for _, s in infos if s is not None}
        if len(known) > 1:
            raise UnsupportedError(
                f"{_where(class_name, config)}: merges sequences of {sorted(known)} steps"
            )
        return ir.Merge(_MERGE_CLASSES[class_name], first.width, name=config["name"])
    if class_name == "Concatenate":
        _check_dtype(class_name, config)
        _weights(class_name, config, weights, {})
        axis = config.get("axis", -1)
        rank = 3 if first.kind == ir.SEQUENCE else 2
        a = int(axis) + rank if isinstance(axis, int) and axis < 0 else axis
        if a == rank - 1:
            return ir.Concatenate("features", name=config["name"])
        if a == 1 and rank == 3:
            return ir.Concatenate("time", name=config["name"])
        raise _option_error(class_name, config, "axis", axis, [-1, 2, 1] if rank == 3 else [-1, 1])
    if class_name == "RepeatVector":
        _check_dtype(class_name, config)
        _weights(class_name, config, weights, {})
        return ir.RepeatVector(int(config["n"]), first.width, name=config["name"])
    if class_name in ("Attention", "AdditiveAttention"):
        return _convert_attention(node, weights, infos)
    if class_name in _TIME_STEP_CLASSES:
        return _convert_time_steps(class_name, config, weights, first)
    if class_name in ("Reshape", "Permute"):
        return _convert_reshape(class_name, config, weights, first, steps)
    if class_name == "Dot":
        _check_dtype(class_name, config)
        _weights(class_name, config, weights, {})
        axes = config.get("axes")
        if len(infos) != 2 or any(v.kind != ir.VECTOR for v, _ in infos):
            raise UnsupportedLayerError(
                f"{_where(class_name, config)}: this use is not supported; supported: two "
                "vectors (batch, features), and sequences only as attention: "
                "Dot(axes=[2, 2])([query, key]) -> "
                "softmax (Activation or Softmax) -> Dot(axes=[2, 1])([weights, value]), the "
                "scores and weights feeding nothing else"
            )
        if axes not in (1, -1, [1, 1], [-1, -1], [1, -1], [-1, 1]):
            raise _option_error(class_name, config, "axes", axes, [1, -1])
        return ir.Dot(first.width, bool(config.get("normalize", False)), name=config["name"])
    if class_name not in _CONVERTERS or class_name == "InputLayer":
        if class_name in _MASK_OPS:
            raise UnsupportedLayerError(
                f"layer {node.name!r} ({class_name}) computes on the data path; as a mask op it "
                "is supported only on the mask path"
            )
        raise UnsupportedLayerError(
            f"layer {node.name!r} ({class_name}) is not supported; supported layers: "
            f"{', '.join(GRAPH_SUPPORTED_LAYERS)}"
        )
    ctx = _Context(chain=[], steps=[_Step(node.entry, node.path)])
    ctx.flow = (first.kind == ir.SEQUENCE, first.width, steps)
    layer = _CONVERTERS[class_name](class_name, config, weights, ctx)
    return layer, ctx.post_checks


def _convert_time_steps(class_name: str, config: dict, weights: list, first) -> ir.TimeSteps:
    """Cropping1D / ZeroPadding1D / UpSampling1D -> ir.TimeSteps (a mask ends there, as in
    Keras: docs/keras-semantics.md)."""
    _check_dtype(class_name, config)
    _weights(class_name, config, weights, {})
    where = _where(class_name, config)
    if first.kind != ir.SEQUENCE:
        raise UnsupportedLayerError(f"{where}: supported on sequences (batch, T, features)")
    if class_name == "UpSampling1D":
        return ir.TimeSteps("upsample", first.width, size=int(config["size"]), name=config["name"])
    option = "cropping" if class_name == "Cropping1D" else "padding"
    if class_name == "ZeroPadding1D" and config.get("data_format", "channels_last") not in (
        None,
        "channels_last",
    ):
        raise _option_error(
            class_name, config, "data_format", config["data_format"], ["channels_last"]
        )
    value = config.get(option, 1)
    start, end = (value, value) if isinstance(value, int) else tuple(value)
    mode = "crop" if class_name == "Cropping1D" else "pad"
    return ir.TimeSteps(mode, first.width, int(start), int(end), name=config["name"])


def _convert_reshape(class_name: str, config: dict, weights: list, first, steps):
    """Reshape / Permute where the model fixes the shapes (a vector <-> a sequence of a fixed T,
    Permute((2, 1)) of a fixed-T sequence) -> ir.Reshape / ir.Permute; None: the identity."""
    _check_dtype(class_name, config)
    _weights(class_name, config, weights, {})
    where = _where(class_name, config)
    seq = first.kind == ir.SEQUENCE
    if seq and steps is None:
        raise UnsupportedLayerError(
            f"{where}: supported on a sequence of a fixed number of steps only (the model's "
            "input declares T); this one's steps are dynamic"
        )
    if class_name == "Permute":
        dims = tuple(config.get("dims") or ())
        if dims == (1, 2) and seq:
            return None
        if dims != (2, 1) or not seq:
            raise _option_error(class_name, config, "dims", list(dims), [[2, 1]])
        return ir.Permute(int(steps), first.width, name=config["name"])
    target = [int(d) if d is not None else -1 for d in (config.get("target_shape") or ())]
    size = (int(steps) if seq else 1) * first.width
    if len(target) not in (1, 2) or target.count(-1) > 1:
        raise _option_error(class_name, config, "target_shape", config.get("target_shape"),
                            ["(n,)", "(steps, features)"])  # fmt: skip
    known = int(np.prod([d for d in target if d != -1]))
    target = [size // known if d == -1 else d for d in target]
    if int(np.prod(target)) != size or min(target) < 1:
        raise UnsupportedLayerError(f"{where}: target_shape {target} does not hold {size} values")
    out_steps, out_dim = (0, target[0]) if len(target) == 1 else (target[0], target[1])
    in_steps = int(steps) if seq else 0
    if (in_steps, first.width) == (out_steps, out_dim):
        return None
    return ir.Reshape(in_steps, first.width, out_steps, out_dim, name=config["name"])


def _attention_causal(node: _GraphNode) -> bool:
    """The call's use_causal_mask (refusing return_attention_scores and unknown options)."""
    for key, value in node.call.items():
        if key in _GRAPH_KWARGS:
            continue
        allowed = _ATTENTION_CALL.get(key)
        if allowed is None or value not in allowed:
            raise UnsupportedLayerError(
                f"{_where(node.class_name, node.config)}: the call argument {key}={value!r} is "
                f"not supported; supported: use_causal_mask=True/False"
            )
    return bool(node.call.get("use_causal_mask", False))


def _convert_attention(node: _GraphNode, weights: list, infos: list) -> ir.Attention:
    """Keras Attention / AdditiveAttention -> ir.Attention (docs/format.md "ATTENTION")."""
    class_name, config = node.class_name, node.config
    _check_dtype(class_name, config)
    where = _where(class_name, config)
    if len(infos) not in (2, 3) or any(v.kind != ir.SEQUENCE for v, _ in infos):
        raise UnsupportedLayerError(
            f"{where}: supported on [query, value] or [query, value, key] sequences "
            "(batch, T, features)"
        )
    dim, value_dim = infos[0][0].width, infos[1][0].width
    use_scale = bool(config.get("use_scale", False))
    causal = _attention_causal(node)
    if class_name == "AdditiveAttention":
        (scale,) = _weights(class_name, config, weights, {"scale": 1}) if use_scale else (None,)
        if scale is not None:
            _check_shape(class_name, config, "scale", scale, (dim,))
        return ir.Attention("additive", dim, value_dim, scale, causal=causal, name=config["name"])
    score = config.get("score_mode", "dot")
    if score not in ("dot", "concat"):
        raise _option_error(class_name, config, "score_mode", score, ["dot", "concat"])
    ws = _weights(
        class_name,
        config,
        weights,
        {"scale": int(use_scale), "concat_score_weight": int(score == "concat")},
    )
    scale = float(ws.pop(0).reshape(-1)[0]) if use_scale else 1.0
    weight = float(ws.pop(0).reshape(-1)[0]) if score == "concat" else 1.0
    return ir.Attention(score, dim, value_dim, scale, weight, causal=causal, name=config["name"])


def _dot_axes(config: dict) -> tuple | None:
    """A Dot's axes as a pair on rank-3 inputs (-1 read as 2), None when not a pair of ints."""
    axes = config.get("axes")
    axes = [axes, axes] if isinstance(axes, int) else axes
    if not isinstance(axes, (list, tuple)) or len(axes) != 2:
        return None
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        return None
    return tuple(2 if a == -1 else a for a in axes)


def _is_softmax(gn: _GraphNode) -> bool:
    """Activation("softmax") or Softmax over the last axis, called without a mask."""
    config = gn.config
    if gn.class_name == "Activation":
        return config.get("activation") == "softmax"
    return gn.class_name == "Softmax" and config.get("axis", -1) in (-1, 2, [-1], [2])


def _sole_consumer(value: str, consumers: dict, out_set: set) -> tuple:
    """(the one node reading `value` past identity layers such as Dropout, the value it reads,
    the identity nodes passed), or (None, value, []) when the value (or one passed) has another
    reader or is a model output."""
    passed = []
    while True:
        after = consumers.get(value, [])
        if len(after) != 1 or value in out_set:
            return None, value, passed
        gn = after[0]
        if _CONVERTERS.get(gn.class_name) is not _convert_identity or len(gn.outputs) != 1:
            return gn, value, passed
        passed.append(gn)
        value = gn.outputs[0]


def _dot_attention_patterns(nodes: list, consumers: dict, outputs: list) -> dict:
    """Keras attention written as layers: scores = Dot(axes=[2, 2])([query, key]), weights =
    softmax(scores) (Activation or Softmax), context = Dot(axes=[2, 1])([weights, value]), where
    the scores and the weights feed nothing else and are not model outputs (identity layers such
    as Dropout may sit between). Returns {id(node): (role, (scores, softmax, context))}: role 0
    the scores, 1 the softmax and identity layers, 2 the context. The pattern becomes one
    ir.Attention("dot", use_masks=False) at the context node: Keras' Dot drops every mask
    (Dot.compute_mask returns None), so no mask is read or written."""
    found: dict = {}
    out_set = set(outputs)
    for a in nodes:
        if a.class_name != "Dot" or len(a.inputs) != 2 or len(a.outputs) != 1:
            continue
        if a.config.get("normalize") or _dot_axes(a.config) != (2, 2):
            continue
        sm, _, passed = _sole_consumer(a.outputs[0], consumers, out_set)
        if sm is None or not _is_softmax(sm) or len(sm.outputs) != 1:
            continue
        b, weights, more = _sole_consumer(sm.outputs[0], consumers, out_set)
        if b is None or b.class_name != "Dot" or len(b.inputs) != 2 or b.inputs[0] != weights:
            continue
        if b.config.get("normalize") or _dot_axes(b.config) != (2, 1) or len(b.outputs) != 1:
            continue
        found[id(a)] = (0, (a, sm, b))
        for gn in (*passed, sm, *more):
            found[id(gn)] = (1, (a, sm, b))
        found[id(b)] = (2, (a, sm, b))
    return found


def _dot_attention_inputs(parts: tuple, aliases: dict) -> list:
    """[query, value] or [query, value, key] of a Dot attention (_dot_attention_patterns)."""
    a, _, b = parts
    q, k = (aliases.get(v, v) for v in a.inputs)
    v = aliases.get(b.inputs[1], b.inputs[1])
    return [q, v] if k == v else [q, v, k]


def _fused_dot_attention(parts: tuple, node_infos: list, layers: dict) -> ir.Attention:
    """The ir.Attention of one Dot-softmax-Dot pattern, given its inputs' infos."""
    a, sm, b = parts
    if any(v.kind != ir.SEQUENCE for v, _ in node_infos):
        raise UnsupportedLayerError(
            f"{_where(a.class_name, a.config)}: Dot(axes=[2, 2]) -> softmax -> Dot(axes=[2, 1]) "
            "is supported on sequences (batch, T, features) only"
        )
    key = ("dot-attention", a.key, sm.key, b.key)
    if key not in layers:
        for gn in parts:
            _check_dtype(gn.class_name, gn.config)
        dim, value_dim = node_infos[0][0].width, node_infos[1][0].width
        layers[key] = ir.Attention("dot", dim, value_dim, 1.0, name=b.name, use_masks=False)
    return layers[key]


def _graph_layer(gn: _GraphNode, node_infos: list, layers: dict, weight_reader, checks: list):
    """The IR layer of node `gn`, converted at the layer's first node (a layer applied again
    reuses it); the converters' post-conversion checks are appended to `checks`."""
    if gn.key not in layers:
        obj = weight_reader.layer(gn.path)
        weights = collect_weights(weight_reader, obj, gn.class_name, gn.config)
        converted = _convert_graph_layer(gn, weights, node_infos)
        if isinstance(converted, tuple):
            converted, more = converted
            checks += more
        layers[gn.key] = converted
    layer = layers[gn.key]
    if isinstance(layer, ir.Attention) and _attention_causal(gn) != layer.causal:
        raise UnsupportedLayerError(
            f"{_where(gn.class_name, gn.config)}: applied with and without "
            "use_causal_mask; supported: the same use_causal_mask in every call"
        )
    return layer


def convert_graph(model: dict, weight_reader, keras_version: str) -> ir.Graph:
    """Convert a serialized Functional model that is not a single chain to an ir.Graph (the
    live and the file route both end here, as for `convert_chain`)."""
    config = model.get("config") or {}
    model_name = str(config.get("name", "model"))
    walk = _GraphWalk(model)
    outputs = walk.run()
    consumers: dict = {}
    for gn in walk.nodes:
        for v in gn.inputs:
            consumers.setdefault(v, []).append(gn)
    inputs = [_graph_input(v, e, consumers.get(v, [])) for v, e in walk.inputs]
    infos = {gi.name: (ir.Value(gi.value_kind, int(gi.dim)), gi.seq_len) for gi in inputs}
    layers: dict = {}  # key -> IR layer (None: identity)
    post_checks, nodes, pairs = [], [], []
    aliases: dict = {}
    dot_attention = _dot_attention_patterns(walk.nodes, consumers, outputs)
    for gn in walk.nodes:
        ins = [aliases.get(v, v) for v in gn.inputs]
        role, parts = dot_attention.get(id(gn), (None, None))
        if role in (0, 1):
            continue  # the scores and softmax of a Dot attention: one node at its context
        if role == 2:
            ins = _dot_attention_inputs(parts, aliases)
        missing = [v for v in ins if v not in infos]
        if missing:  # pragma: no cover - the walk lists producers first
            raise UnsupportedError(f"layer {gn.name!r}: reads {missing} before they exist")
        node_infos = [infos[v] for v in ins]
        if role == 2:
            layer = _fused_dot_attention(parts, node_infos, layers)
        else:
            layer = _graph_layer(gn, node_infos, layers, weight_reader, post_checks)
        if layer is None:
            if len(ins) != 1 or len(gn.outputs) != 1:
                raise UnsupportedError(f"layer {gn.name!r}: an identity layer with one input")
            aliases[gn.outputs[0]] = ins[0]
            continue
        where = _where(gn.class_name, gn.config)
        try:
            values = ir._infer_node(layer, [v for v, _ in node_infos], where)
        except (ValueError, TypeError) as exc:
            raise UnsupportedError(f"model {model_name!r}: {exc}") from None
        steps = _value_steps(layer, [s for _, s in node_infos])
        for k, name in enumerate(gn.outputs):
            is_seq = k == 0 and values[0].kind == ir.SEQUENCE
            infos[name] = (values[min(k, len(values) - 1)], steps if is_seq else None)
        node = ir.Node(layer, ins, list(gn.outputs))
        nodes.append(node)
        if role is None:  # a Dot attention's recorded masks are Keras' Dot's, which drops them
            pairs.append((gn, node))
    outputs = [aliases.get(v, v) for v in outputs]
    input_names = {gi.name for gi in inputs}
    for v in outputs:
        if v in input_names:
            raise UnsupportedError(
                f"model {model_name!r}: the input {v!r} is also an output; not supported"
            )
    if len(set(outputs)) != len(outputs):
        raise UnsupportedError(f"model {model_name!r}: one tensor is listed twice as an output")
    unique = []
    for layer in layers.values():
        if layer is not None and all(layer is not u for u in unique):
            unique.append(layer)
    source = {
        "framework": "keras",
        "keras_version": str(keras_version),
        "layers": [layer.name for layer in unique],
        "keras_layers": [v for v, _ in walk.inputs]
        + list(dict.fromkeys(n.name for n in walk.nodes)),
    }
    try:
        graph = ir.Graph(
            inputs=inputs, nodes=nodes, outputs=outputs, name=model_name, source=source
        )
    except (ValueError, TypeError) as exc:
        raise UnsupportedError(f"model {model_name!r}: {exc}") from None
    for gn, node in pairs:
        if gn.mask is not None and gn.mask != node.masked:
            keras_says = "passes it a mask" if gn.mask else "passes it no mask"
            ir_says = "one arrives" if node.masked else "none arrives"
            raise UnsupportedLayerError(
                f"{_where(gn.class_name, gn.config)}: Keras {keras_says}, but edgegru's mask "
                f"rules (ir.Graph) say {ir_says}; this mask flow is not supported"
            )
    _run_post_checks(nodes, post_checks)
    return graph


def _run_post_checks(nodes: list, checks: list) -> None:
    """The converters' mask checks read `layer.masked`: set it for them (a layer applied more
    than once counts as masked when any of its nodes is), then remove it again (in a graph the
    nodes, not the layers, carry it)."""
    layers = []
    for node in nodes:
        if all(node.layer is not u for u in layers):
            layers.append(node.layer)
    for layer in layers:
        layer.masked = any(n.masked for n in nodes if n.layer is layer)
    try:
        for check in checks:
            check()
    finally:
        for layer in layers:
            del layer.masked


def convert_any(model: dict, weight_reader, keras_version: str):
    """A chain -> the ir.Model `convert_chain` gives (unchanged); anything else -> ir.Graph."""
    try:
        return convert_chain(model, weight_reader, keras_version)
    except (_NotChainError, _NeedsGraphError):
        return convert_graph(model, weight_reader, keras_version)
