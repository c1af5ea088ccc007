"""Framework-neutral intermediate representation (IR) of a model.

The IR is what every front end produces (today: the Keras importer) and what every back end
consumes (the `.egru` writer, the ONNX exporter, the float64 numpy reference). It imports
neither Keras nor ONNX, only numpy.

Conventions, shared by every layer:

* Weights keep **Keras' layout** (a Dense kernel is ``(in, out)``; a GRU kernel is ``(I, 3H)``).
  Back ends transpose as their own format requires.
* GRU gate blocks are ordered **z, r, h** (update, reset, candidate) along the ``3H`` axis,
  the order Keras and ONNX share.
* All float arrays are C-contiguous ``float32``.
* A model consumes either integer token ids ``(batch, T)`` (``InputSpec.kind == "tokens"``)
  or float frames ``(batch, T, features)`` (``kind == "features"``).

Adding a layer type means adding one dataclass here and one entry in each back end's dispatch
table; nothing else changes shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Activations a Dense layer may use (Keras names).
DENSE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
#: Activations a GRU may use in either slot (Keras names). Issue #3 extends this list.
GRU_ACTIVATIONS = ("tanh", "sigmoid")

TOKENS = "tokens"
FEATURES = "features"


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


@dataclass(frozen=True)
class InputSpec:
    """What the model consumes.

    kind: ``"tokens"`` (integer ids, shape ``(batch, T)``) or ``"features"`` (float32,
        shape ``(batch, T, dim)``).
    dim: vocabulary size for tokens (valid ids are ``0 <= id < dim``), feature count for features.
    seq_len: the fixed T the Keras model declares, or None when T is dynamic. The runtime accepts
        any T either way; the value is kept for generating validation inputs and for `info`.
    """

    kind: str
    dim: int
    seq_len: int | None = None

    def __post_init__(self):
        if self.kind not in (TOKENS, FEATURES):
            raise ValueError(f"InputSpec.kind must be 'tokens' or 'features', not {self.kind!r}")
        if int(self.dim) <= 0:
            raise ValueError(f"InputSpec.dim must be positive, got {self.dim}")


@dataclass
class Embedding:
    """Token id -> vector lookup. table: (vocab, dim) float32."""

    table: np.ndarray
    name: str = "embedding"

    def __post_init__(self):
        self.table = _f32(self.table)
        if self.table.ndim != 2:
            raise ValueError(f"Embedding table must be 2-D (vocab, dim), got {self.table.shape}")

    @property
    def output_dim(self) -> int:
        return int(self.table.shape[1])


@dataclass
class GRU:
    """A Keras GRU layer (one direction).

    kernel: (I, 3H), columns [z | r | h].
    recurrent_kernel: (H, 3H), columns [z | r | h].
    input_bias: (3H,) added to x @ kernel (zeros when use_bias is False).
    recurrent_bias: (3H,) added to h @ recurrent_kernel; Keras has it only when reset_after is
        True (zeros otherwise, and when use_bias is False).
    reset_after: True  -> hh = act(x W_h + b_h + r * (h U_h + rb_h))  (Keras 3 default, cuDNN style)
                 False -> hh = act(x W_h + b_h + (r * h) U_h)
    return_sequences: output every step (batch, T, H) instead of the last state (batch, H).
    Update rule (Keras and ONNX): h_t = z * h_{t-1} + (1 - z) * hh. Initial state is zero.
    """

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    input_bias: np.ndarray
    recurrent_bias: np.ndarray
    reset_after: bool = True
    return_sequences: bool = False
    use_bias: bool = True
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    name: str = "gru"

    def __post_init__(self):
        self.kernel = _f32(self.kernel)
        self.recurrent_kernel = _f32(self.recurrent_kernel)
        self.input_bias = _f32(self.input_bias)
        self.recurrent_bias = _f32(self.recurrent_bias)
        h = self.units
        i = self.kernel.shape[0]
        shapes = {
            "kernel": (self.kernel.shape, (i, 3 * h)),
            "recurrent_kernel": (self.recurrent_kernel.shape, (h, 3 * h)),
            "input_bias": (self.input_bias.shape, (3 * h,)),
            "recurrent_bias": (self.recurrent_bias.shape, (3 * h,)),
        }
        for what, (got, want) in shapes.items():
            if tuple(got) != want:
                raise ValueError(f"GRU {self.name!r}: {what} has shape {got}, expected {want}")
        for slot in ("activation", "recurrent_activation"):
            act = getattr(self, slot)
            if act not in GRU_ACTIVATIONS:
                raise ValueError(
                    f"GRU {self.name!r}: {slot}={act!r} is not supported; "
                    f"supported: {', '.join(GRU_ACTIVATIONS)}"
                )

    @property
    def units(self) -> int:
        return int(self.recurrent_kernel.shape[0])

    @property
    def input_dim(self) -> int:
        return int(self.kernel.shape[0])


@dataclass
class Dense:
    """y = act(x @ kernel + bias). kernel: (in, out); bias: (out,).

    On a sequence (batch, T, in) it applies to every step, like Keras' Dense on 3-D input.
    """

    kernel: np.ndarray
    bias: np.ndarray
    activation: str = "linear"
    name: str = "dense"

    def __post_init__(self):
        self.kernel = _f32(self.kernel)
        self.bias = _f32(self.bias)
        if self.kernel.ndim != 2 or self.bias.shape != (self.kernel.shape[1],):
            raise ValueError(
                f"Dense {self.name!r}: kernel {self.kernel.shape} and bias {self.bias.shape} "
                "do not match (expected (in, out) and (out,))"
            )
        if self.activation not in DENSE_ACTIVATIONS:
            raise ValueError(
                f"Dense {self.name!r}: activation {self.activation!r} is not supported; "
                f"supported: {', '.join(DENSE_ACTIVATIONS)}"
            )

    @property
    def units(self) -> int:
        return int(self.kernel.shape[1])


Layer = Embedding | GRU | Dense


@dataclass
class Model:
    """A single chain of layers applied to one input.

    source: free-form provenance (framework and version, original layer names); written to the
    `.egru` metadata block, never read by the C runtime.
    """

    input: InputSpec
    layers: list = field(default_factory=list)
    name: str = "model"
    source: dict = field(default_factory=dict)

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """Check that the chain is well formed: each layer's input width matches the previous
        output, an Embedding comes first and only for token input, a GRU sees a sequence."""
        if not self.layers:
            raise ValueError("model has no layers")
        width = self.input.dim
        is_sequence = True
        for k, layer in enumerate(self.layers):
            where = f"layer {k} ({type(layer).__name__} {layer.name!r})"
            if isinstance(layer, Embedding):
                if k != 0 or self.input.kind != TOKENS:
                    raise ValueError(
                        f"{where}: an Embedding must be the first layer of a token model"
                    )
                if layer.table.shape[0] != self.input.dim:
                    raise ValueError(
                        f"{where}: vocabulary {layer.table.shape[0]} != input dim {self.input.dim}"
                    )
                width = layer.output_dim
                continue
            if k == 0 and self.input.kind == TOKENS:
                raise ValueError(f"{where}: a token model must start with an Embedding")
            if isinstance(layer, GRU):
                if not is_sequence:
                    raise ValueError(
                        f"{where}: a GRU needs a sequence input, but the previous "
                        "layer returns one vector (set return_sequences=True on it)"
                    )
                if layer.input_dim != width:
                    raise ValueError(f"{where}: input width {layer.input_dim} != previous {width}")
                width = layer.units
                is_sequence = layer.return_sequences
            elif isinstance(layer, Dense):
                if layer.kernel.shape[0] != width:
                    raise ValueError(
                        f"{where}: input width {layer.kernel.shape[0]} != previous {width}"
                    )
                width = layer.units
            else:
                raise TypeError(f"{where}: not an IR layer")

    @property
    def output_dim(self) -> int:
        last = self.layers[-1]
        return last.output_dim if isinstance(last, Embedding) else last.units

    @property
    def output_is_sequence(self) -> bool:
        seq = True
        for layer in self.layers:
            if isinstance(layer, GRU):
                seq = layer.return_sequences
        return seq

    def output_shape(self, batch: int, seq_len: int) -> tuple:
        """Shape of `predict`'s result for a (batch, seq_len[, dim]) input (as Keras returns)."""
        if self.output_is_sequence:
            return (batch, seq_len, self.output_dim)
        return (batch, self.output_dim)
