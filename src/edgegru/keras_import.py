"""Keras 3 front end: turn a Sequential or single-chain Functional model into an `ir.Model`.

Entry point: `from_keras(model_or_path)`.

Contract:

* The model has exactly one input and one output, and every layer on the path from the input
  to the output is fed by the previous one only (a *single chain*). Anything else raises a plain
  `UnsupportedError` (a ValueError) that says the model is not a single chain.
* Each Keras layer on the chain is converted by the entry for its class name in `_CONVERTERS`.
  A class without an entry, or a supported class with an option value this importer cannot
  reproduce exactly, raises `UnsupportedLayerError`. Adding a layer type means adding one entry
  (plus the IR dataclass and back-end entries it needs).
* Weights are read from the layers' variables by role (``layer.cell.kernel``,
  ``layer.embeddings``, ...), never by variable-path strings, which differ between Keras
  versions. They keep Keras' layout (see `edgegru.ir`).
* Keras is imported lazily, inside the functions, so `edgegru` itself never needs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import ir
from .errors import UnsupportedError

KERAS_MISSING = "converting a Keras model needs the 'keras' extra: pip install edgegru[keras]"

#: GRU activations this importer accepts for now, per slot (Keras names).
GRU_ACTIVATIONS = ("tanh",)
GRU_RECURRENT_ACTIVATIONS = ("sigmoid",)


class UnsupportedLayerError(UnsupportedError):
    """A layer class, or a layer option value, that the importer cannot convert exactly.

    The message names the layer (its Keras name and class) and either the supported layer
    classes or the offending option, its value and the supported values.
    """


def _import_keras():
    try:
        import keras
    except ImportError as exc:  # keras absent, or blocked via sys.modules["keras"] = None
        raise ImportError(KERAS_MISSING) from exc
    return keras


# --------------------------------------------------------------------------------------------
# Helpers shared by the converters
# --------------------------------------------------------------------------------------------


@dataclass
class _Context:
    """State threaded through the converters while walking the chain.

    chain: every Keras operation on the chain, input layer first.
    index: position in `chain` of the layer being converted.
    input_spec: set by the InputLayer converter.
    """

    keras: Any
    chain: list
    index: int = 0
    input_spec: ir.InputSpec | None = None


def _where(layer) -> str:
    return f"layer {layer.name!r} ({type(layer).__name__})"


def _option_error(layer, option: str, value, supported) -> UnsupportedLayerError:
    supported_text = ", ".join(repr(s) for s in supported)
    return UnsupportedLayerError(
        f"{_where(layer)}: {option}={value!r} is not supported; supported: {supported_text}"
    )


def _numpy(keras, variable) -> np.ndarray:
    """A Keras variable or tensor (any backend) as a float32 numpy array.

    Keras variables have ``.numpy()`` on every backend; it avoids a numpy-2 DeprecationWarning
    that ``keras.ops.convert_to_numpy`` triggers on TensorFlow variables.
    """
    if hasattr(variable, "numpy"):
        return np.asarray(variable.numpy(), dtype=np.float32)
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def _activation_name(layer, slot: str) -> str:
    """The Keras name of `layer`'s activation in config slot `slot` ('activation', ...).

    Built-in activations serialize to their name; custom callables serialize to a dict, which
    is reported as ``<custom callable>`` so the error message stays readable.
    """
    value = layer.get_config().get(slot)
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    return "<custom callable>"


def _reject_quantized(layer) -> None:
    mode = getattr(layer, "quantization_mode", None)
    if mode is not None:
        # Quantized kernels are stored as integers plus scales; reading `kernel` would give the
        # raw integers, so refuse rather than export wrong numbers.
        raise _option_error(layer, "quantization_mode", mode, [None])


def _require_false(layer, *options: str) -> None:
    for option in options:
        value = getattr(layer, option, False)
        if value:
            raise _option_error(layer, option, value, [False])


# --------------------------------------------------------------------------------------------
# Converters: (keras layer, context) -> IR layer, or None for layers that vanish at inference
# --------------------------------------------------------------------------------------------


def _first_compute_layer(ctx: _Context):
    """The first chain layer after the input that is not an inference-time identity."""
    for layer in ctx.chain[1:]:
        if _CONVERTERS.get(type(layer).__name__) is not _convert_identity:
            return layer
    return None


def _convert_input(layer, ctx: _Context) -> None:
    """InputLayer -> ctx.input_spec.

    Token input: an integer dtype, or an Embedding as the first computing layer (Keras casts
    float ids); shape must be (batch, T) and dim is the Embedding's input_dim.
    Feature input: float dtype, shape (batch, T, F) with F fixed; dim = F.
    seq_len = T when the declared T is fixed, else None.
    """
    keras = ctx.keras
    _require_false(layer, "sparse", "ragged")
    shape = tuple(layer.batch_shape)
    dtype = keras.backend.standardize_dtype(layer.dtype)
    first = _first_compute_layer(ctx)
    is_tokens = "int" in dtype or (first is not None and type(first).__name__ == "Embedding")
    if is_tokens:
        if first is None or type(first).__name__ != "Embedding":
            raise UnsupportedLayerError(
                f"{_where(layer)}: integer input ({dtype}) must feed an Embedding layer first"
            )
        if len(shape) != 2:
            raise UnsupportedLayerError(
                f"{_where(layer)}: token input must have shape (batch, T), got {shape}"
            )
        ctx.input_spec = ir.InputSpec(ir.TOKENS, int(first.input_dim), shape[1])
    else:
        if len(shape) != 3 or shape[2] is None:
            raise UnsupportedLayerError(
                f"{_where(layer)}: feature input must have shape (batch, T, features) with a "
                f"fixed feature count, got {shape}"
            )
        ctx.input_spec = ir.InputSpec(ir.FEATURES, int(shape[2]), shape[1])


def _convert_embedding(layer, ctx: _Context) -> ir.Embedding:
    """Embedding -> ir.Embedding(table (input_dim, output_dim))."""
    _reject_quantized(layer)
    if layer.mask_zero:
        raise UnsupportedLayerError(
            f"{_where(layer)}: mask_zero=True is not supported yet (masking is a later "
            "feature); supported: False"
        )
    table = _numpy(ctx.keras, layer.embeddings)
    if table.shape != (layer.input_dim, layer.output_dim):
        raise UnsupportedError(
            f"{_where(layer)}: embeddings have shape {table.shape}, expected "
            f"({layer.input_dim}, {layer.output_dim})"
        )
    return ir.Embedding(table=table, name=layer.name)


def _convert_gru(layer, ctx: _Context) -> ir.GRU:
    """GRU -> ir.GRU.

    Keras cell variables: kernel (I, 3H), recurrent_kernel (H, 3H), gates z|r|h; bias is
    (2, 3H) [input row; recurrent row] when reset_after=True, (3H,) input-only when False, and
    absent when use_bias=False (zeros in the IR). dropout / recurrent_dropout are identity at
    inference and unroll does not change the numbers, so all three are ignored.
    """
    _reject_quantized(layer)
    _require_false(layer, "go_backwards", "return_state", "stateful")
    activation = _activation_name(layer, "activation")
    if activation not in GRU_ACTIVATIONS:
        raise _option_error(layer, "activation", activation, GRU_ACTIVATIONS)
    recurrent_activation = _activation_name(layer, "recurrent_activation")
    if recurrent_activation not in GRU_RECURRENT_ACTIVATIONS:
        raise _option_error(
            layer, "recurrent_activation", recurrent_activation, GRU_RECURRENT_ACTIVATIONS
        )
    keras = ctx.keras
    cell = layer.cell
    units = int(cell.units)
    kernel = _numpy(keras, cell.kernel)
    recurrent_kernel = _numpy(keras, cell.recurrent_kernel)
    reset_after = bool(cell.reset_after)
    use_bias = bool(cell.use_bias)
    input_bias = np.zeros(3 * units, np.float32)
    recurrent_bias = np.zeros(3 * units, np.float32)
    if use_bias:
        bias = _numpy(keras, cell.bias)
        expected = (2, 3 * units) if reset_after else (3 * units,)
        if bias.shape != expected:
            raise UnsupportedError(
                f"{_where(layer)}: bias has shape {bias.shape}, expected {expected} "
                f"for reset_after={reset_after}"
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
        return_sequences=bool(layer.return_sequences),
        use_bias=use_bias,
        activation=activation,
        recurrent_activation=recurrent_activation,
        name=layer.name,
    )


def _convert_dense(layer, ctx: _Context) -> ir.Dense:
    """Dense -> ir.Dense(kernel (in, out), bias (out,); zeros when use_bias=False)."""
    _reject_quantized(layer)
    activation = _activation_name(layer, "activation")
    if activation not in ir.DENSE_ACTIVATIONS:
        raise _option_error(layer, "activation", activation, ir.DENSE_ACTIVATIONS)
    kernel = _numpy(ctx.keras, layer.kernel)
    if layer.use_bias:
        bias = _numpy(ctx.keras, layer.bias)
    else:
        bias = np.zeros(kernel.shape[1], np.float32)
    return ir.Dense(kernel=kernel, bias=bias, activation=activation, name=layer.name)


def _convert_identity(layer, ctx: _Context) -> None:
    """Layers that are the identity at inference (Dropout): nothing in the IR."""


#: Keras class name -> converter. Converters return an IR layer, or None when the layer has no
#: IR counterpart (InputLayer fills ctx.input_spec; Dropout is the identity at inference).
_CONVERTERS: dict[str, Callable[[Any, _Context], Any]] = {
    "InputLayer": _convert_input,
    "Embedding": _convert_embedding,
    "GRU": _convert_gru,
    "Dense": _convert_dense,
    "Dropout": _convert_identity,
}

SUPPORTED_LAYERS = tuple(_CONVERTERS)


# --------------------------------------------------------------------------------------------
# Model walking
# --------------------------------------------------------------------------------------------


def _is_tensor(keras, value) -> bool:
    return isinstance(value, keras.KerasTensor)


def _model_io(keras, model) -> tuple:
    """(inputs, outputs) KerasTensor lists of a Sequential or Functional model."""
    if isinstance(model, keras.Sequential):
        try:
            return model.inputs, model.outputs
        except AttributeError as exc:
            raise UnsupportedError(
                f"Sequential model {model.name!r} is not built, so its input shape is unknown: "
                "start it with keras.Input(shape=...) or call model.build(input_shape)"
            ) from exc
    if hasattr(model, "_nodes_by_depth"):  # Functional (including subclasses of it)
        return model.inputs, model.outputs
    raise UnsupportedError(
        f"model {model.name!r} ({type(model).__name__}) is a subclassed model; only Sequential "
        "and Functional models can be converted"
    )


def _data_inputs(keras, model, operation, node_index: int) -> tuple:
    """(tensors, has_mask) for one call of `operation`: the KerasTensors among its positional
    arguments, and whether Keras passed it a ``mask=`` tensor. Any other tensor keyword argument
    (``initial_state=...``) means the model is not a single chain."""
    arguments = operation._inbound_nodes[node_index].arguments
    tensors = [t for t in keras.tree.flatten(arguments.args) if _is_tensor(keras, t)]
    has_mask = False
    for key, value in arguments.kwargs.items():
        if not any(_is_tensor(keras, t) for t in keras.tree.flatten(value)):
            continue
        if key != "mask":
            raise UnsupportedError(
                f"model {model.name!r} is not a single chain: {_where(operation)} takes a "
                f"tensor for its {key!r} argument (each layer must be fed by the previous "
                "one only)"
            )
        has_mask = True  # Keras' implicit mask plumbing, not a data input
    return tensors, has_mask


def _chain(keras, model) -> tuple:
    """(chain, masked): the operations from the model's input layer to its output, in order,
    and those of them that receive a Keras mask (as their ``mask=`` argument).

    Raises ValueError unless the model has one input, one output and each operation on the path
    takes exactly one data tensor (see `_data_inputs`), produced by the previous one, and
    appears only once.
    """
    inputs, outputs = _model_io(keras, model)
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedError(
            f"model {model.name!r} is not a single chain: it has {len(inputs)} inputs and "
            f"{len(outputs)} outputs (one of each is required)"
        )
    chain, masked = [], []
    tensor = outputs[0]
    while True:
        operation, node_index, _ = tensor._keras_history
        if any(operation is seen for seen in chain):
            raise UnsupportedError(
                f"model {model.name!r} is not a single chain: {_where(operation)} is applied "
                "more than once (shared layers are not supported)"
            )
        chain.append(operation)
        parents, has_mask = _data_inputs(keras, model, operation, node_index)
        if has_mask:
            masked.append(operation)
        if not parents:
            break
        if len(parents) != 1:
            raise UnsupportedError(
                f"model {model.name!r} is not a single chain: {_where(operation)} takes "
                f"{len(parents)} input tensors (each layer must be fed by the previous one only)"
            )
        tensor = parents[0]
    chain.reverse()
    if chain[0] is not inputs[0]._keras_history[0]:
        raise UnsupportedError(
            f"model {model.name!r} is not a single chain: the output does not lead back to "
            "the model input"
        )
    return chain, masked


def _load(keras, path) -> Any:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no Keras model file at {path!r}")
    return keras.saving.load_model(path, compile=False)


def from_keras(model) -> ir.Model:
    """Convert a Keras 3 model to the IR.

    model: a live ``keras.Model`` (Sequential or single-chain Functional), or a path
        (str / os.PathLike) to a ``.keras`` file, loaded with ``compile=False``.
    Returns an `ir.Model` whose layer names are the Keras layer names, whose name is the Keras
    model name, and whose ``source`` is ``{"framework": "keras", "keras_version", "backend",
    "layers": [Keras names of every layer on the chain, input layer and Dropout included]}``.

    Raises ImportError when keras is not installed, UnsupportedLayerError (a ValueError) for an
    unsupported layer class or option value, UnsupportedError (a ValueError) when the model is not
    a single chain.
    """
    keras = _import_keras()
    if isinstance(model, (str, os.PathLike)):
        model = _load(keras, model)
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"from_keras expects a keras.Model or a path to a .keras file, not {type(model)!r}"
        )
    chain, masked = _chain(keras, model)
    ctx = _Context(keras=keras, chain=chain)
    layers = []
    for index, layer in enumerate(chain):
        ctx.index = index
        converter = _CONVERTERS.get(type(layer).__name__)
        if converter is None:
            raise UnsupportedLayerError(
                f"{_where(layer)} is not supported; supported layers: {', '.join(SUPPORTED_LAYERS)}"
            )
        converted = converter(layer, ctx)
        if converted is not None:
            layers.append(converted)
    if masked:  # a mask producer slipped past its converter (e.g. a new layer type)
        raise UnsupportedLayerError(
            f"{_where(masked[0])} receives a Keras mask; masking is not supported yet"
        )
    if ctx.input_spec is None:  # pragma: no cover - _chain always starts at an InputLayer
        raise UnsupportedError(f"model {model.name!r}: no input layer found")
    source = {
        "framework": "keras",
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "layers": [layer.name for layer in chain],
    }
    return ir.Model(input=ctx.input_spec, layers=layers, name=model.name, source=source)
