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

#: Elementwise activations (Keras names) every layer with an activation may use, in either slot of
#: a recurrent layer. hard_sigmoid is Keras 3's relu6(x + 3) / 6; leaky_relu has slope 0.2.
ELEMENTWISE_ACTIVATIONS = (
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "hard_sigmoid",
    "elu",
    "softsign",
    "softplus",
    "leaky_relu",
)
#: Activations a Dense, Activation or Conv1D layer may use.
DENSE_ACTIVATIONS = (*ELEMENTWISE_ACTIVATIONS, "softmax")
#: Activations a recurrent layer may use in either slot.
GRU_ACTIVATIONS = ELEMENTWISE_ACTIVATIONS
RNN_ACTIVATIONS = ELEMENTWISE_ACTIVATIONS
#: Bidirectional merge modes.
MERGE_MODES = ("concat", "sum", "ave", "mul")

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
    mask_zero: bool = False  # id 0 masks its step (Keras Embedding(mask_zero=True))

    def __post_init__(self):
        self.table = _f32(self.table)
        if self.table.ndim != 2:
            raise ValueError(f"Embedding table must be 2-D (vocab, dim), got {self.table.shape}")

    @property
    def output_dim(self) -> int:
        return int(self.table.shape[1])


def _check_act(layer, slot: str, allowed) -> None:
    act = getattr(layer, slot)
    if act not in allowed:
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r}: {slot}={act!r} is not supported; "
            f"supported: {', '.join(allowed)}"
        )


class _RecurrentShape:
    """units and input_dim of a recurrent layer (GRU, LSTM, SimpleRNN), from its kernel (I, G*H)
    and recurrent kernel (H, G*H); LSTM and SimpleRNN also share their checks (_init_rnn)."""

    GATES = 1

    @property
    def units(self) -> int:
        return int(self.recurrent_kernel.shape[0])

    @property
    def input_dim(self) -> int:
        return int(self.kernel.shape[0])


@dataclass
class GRU(_RecurrentShape):
    """A Keras GRU layer (one direction).

    kernel: (I, 3H), columns [z | r | h].
    recurrent_kernel: (H, 3H), columns [z | r | h].
    input_bias: (3H,) added to x @ kernel (zeros when use_bias is False).
    recurrent_bias: (3H,) added to h @ recurrent_kernel; Keras has it only when reset_after is
        True (zeros otherwise, and when use_bias is False).
    reset_after: True  -> hh = act(x W_h + b_h + r * (h U_h + rb_h))  (Keras 3 default, cuDNN style)
                 False -> hh = act(x W_h + b_h + (r * h) U_h)
    return_sequences: output every step (batch, T, H) instead of the last state (batch, H).
    go_backwards: process the steps last to first (Keras does not flip the output back).
    Update rule (Keras and ONNX): h_t = z * h_{t-1} + (1 - z) * hh. Initial state is zero.
    With a mask, a masked step leaves the state unchanged and outputs the previous output (zero
    before the first valid step).
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
    go_backwards: bool = False  # steps last to first; sequence output stays in that order

    GATES = 3

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
        _check_act(self, "activation", GRU_ACTIVATIONS)
        _check_act(self, "recurrent_activation", GRU_ACTIVATIONS)


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
        _check_act(self, "activation", DENSE_ACTIVATIONS)

    @property
    def units(self) -> int:
        return int(self.kernel.shape[1])


@dataclass
class LSTM(_RecurrentShape):
    """A Keras LSTM layer (one direction).

    kernel: (I, 4H), recurrent_kernel: (H, 4H), bias: (4H,) (zeros when use_bias is False);
    gate blocks in Keras' order i (input), f (forget), c (cell candidate), o (output).
    With f = recurrent_activation, g = activation:
        a = x @ kernel + h @ recurrent_kernel + bias;  i, fg, o = f(a_i), f(a_f), f(a_o)
        c = fg * c + i * g(a_c);  h = o * g(c).   State (h, c) starts at zero; output is h.
    """

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray
    return_sequences: bool = False
    use_bias: bool = True
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    name: str = "lstm"
    go_backwards: bool = False

    GATES = 4

    def __post_init__(self):
        _init_rnn(self)


@dataclass
class SimpleRNN(_RecurrentShape):
    """A Keras SimpleRNN layer: h = activation(x @ kernel + h @ recurrent_kernel + bias).

    kernel: (I, H), recurrent_kernel: (H, H), bias: (H,). recurrent_activation is unused (kept
    for a uniform recurrent interface).
    """

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray
    return_sequences: bool = False
    use_bias: bool = True
    activation: str = "tanh"
    name: str = "simple_rnn"
    go_backwards: bool = False
    recurrent_activation: str = "sigmoid"

    def __post_init__(self):
        _init_rnn(self)


def _init_rnn(layer) -> None:
    """Shared checks of LSTM and SimpleRNN (kernel (I, G*H), recurrent (H, G*H), bias (G*H,))."""
    layer.kernel = _f32(layer.kernel)
    layer.recurrent_kernel = _f32(layer.recurrent_kernel)
    layer.bias = _f32(layer.bias)
    g, h, i = layer.GATES, layer.units, layer.kernel.shape[0]
    for what, got, want in (
        ("kernel", layer.kernel.shape, (i, g * h)),
        ("recurrent_kernel", layer.recurrent_kernel.shape, (h, g * h)),
        ("bias", layer.bias.shape, (g * h,)),
    ):
        if tuple(got) != want:
            raise ValueError(
                f"{type(layer).__name__} {layer.name!r}: {what} has shape {got}, expected {want}"
            )
    _check_act(layer, "activation", RNN_ACTIVATIONS)
    _check_act(layer, "recurrent_activation", RNN_ACTIVATIONS)


RECURRENT = (GRU, LSTM, SimpleRNN)


@dataclass
class Bidirectional:
    """Keras Bidirectional(layer): a forward and a backward recurrent layer of the same kind and
    config, run over the sequence in both directions; the backward outputs are aligned back to
    input time, then merged: concat [forward | backward], sum, ave or mul. With a mask, masked
    sequence outputs are zero (Keras sets zero_output_for_mask inside Bidirectional)."""

    forward: GRU | LSTM | SimpleRNN
    backward: GRU | LSTM | SimpleRNN
    merge_mode: str = "concat"
    name: str = "bidirectional"

    def __post_init__(self):
        f, b = self.forward, self.backward
        if type(f) is not type(b) or not isinstance(f, RECURRENT):
            raise ValueError(f"Bidirectional {self.name!r}: needs two recurrent layers of one kind")
        if self.merge_mode not in MERGE_MODES:
            raise ValueError(
                f"Bidirectional {self.name!r}: merge_mode={self.merge_mode!r} is not supported; "
                f"supported: {', '.join(MERGE_MODES)}"
            )
        for attr in (
            "units",
            "input_dim",
            "return_sequences",
            "activation",
            "recurrent_activation",
            "use_bias",
            "reset_after",
        ):
            if getattr(f, attr, None) != getattr(b, attr, None):
                raise ValueError(
                    f"Bidirectional {self.name!r}: the backward layer's {attr} "
                    f"({getattr(b, attr, None)!r}) differs from the forward layer's "
                    f"({getattr(f, attr, None)!r}); both directions must share one config"
                )
        if f.go_backwards or not b.go_backwards:
            raise ValueError(
                f"Bidirectional {self.name!r}: expected go_backwards False (forward) and True "
                "(backward)"
            )

    @property
    def units(self) -> int:
        return 2 * self.forward.units if self.merge_mode == "concat" else self.forward.units

    @property
    def input_dim(self) -> int:
        return self.forward.input_dim

    @property
    def return_sequences(self) -> bool:
        return self.forward.return_sequences


@dataclass
class Conv1D:
    """Keras Conv1D, channels last. kernel: (kernel_size, in, out) (Keras layout); bias: (out,).
    padding: "valid", "same" (TensorFlow's split: the extra step on the right) or "causal"
    (dilation * (kernel_size - 1) steps on the left)."""

    kernel: np.ndarray
    bias: np.ndarray
    strides: int = 1
    dilation_rate: int = 1
    padding: str = "valid"
    activation: str = "linear"
    name: str = "conv1d"

    def __post_init__(self):
        self.kernel = _f32(self.kernel)
        self.bias = _f32(self.bias)
        if self.kernel.ndim != 3 or self.bias.shape != (self.kernel.shape[2],):
            raise ValueError(
                f"Conv1D {self.name!r}: kernel {self.kernel.shape} / bias "
                f"{self.bias.shape} do not match (expected (k, in, out), (out,))"
            )
        if self.padding not in ("valid", "same", "causal"):
            raise ValueError(
                f"Conv1D {self.name!r}: padding={self.padding!r} is not supported; "
                "supported: valid, same, causal"
            )
        if self.strides < 1 or self.dilation_rate < 1:
            raise ValueError(f"Conv1D {self.name!r}: strides and dilation_rate must be >= 1")
        _check_act(self, "activation", ELEMENTWISE_ACTIVATIONS)

    @property
    def units(self) -> int:
        return int(self.kernel.shape[2])

    @property
    def input_dim(self) -> int:
        return int(self.kernel.shape[1])

    @property
    def kernel_size(self) -> int:
        return int(self.kernel.shape[0])

    def out_steps(self, steps: int) -> int:
        """Output steps for `steps` input steps (0: too short for 'valid')."""
        eff = self.dilation_rate * (self.kernel_size - 1) + 1
        if self.padding == "valid":
            return 0 if steps < eff else (steps - eff) // self.strides + 1
        return -(-steps // self.strides)


@dataclass
class GlobalPool:
    """GlobalAveragePooling1D (kind "average": a masked mean with a mask) or GlobalMaxPooling1D
    (kind "max"). (batch, T, C) -> (batch, C)."""

    dim: int
    kind: str = "average"
    name: str = "global_pooling"

    def __post_init__(self):
        if self.kind not in ("average", "max"):
            raise ValueError(f"GlobalPool {self.name!r}: kind must be 'average' or 'max'")

    @property
    def units(self) -> int:
        return int(self.dim)


@dataclass
class Affine:
    """y = x * scale + shift per feature: BatchNormalization (inference) and Normalization,
    folded at conversion. scale, shift: (C,)."""

    scale: np.ndarray
    shift: np.ndarray
    name: str = "affine"

    def __post_init__(self):
        self.scale = _f32(self.scale)
        self.shift = _f32(self.shift)
        if self.scale.ndim != 1 or self.scale.shape != self.shift.shape:
            raise ValueError(f"Affine {self.name!r}: scale and shift must be matching vectors")

    @property
    def units(self) -> int:
        return int(self.scale.shape[0])


@dataclass
class LayerNorm:
    """LayerNormalization over the last axis: (x - mean) / sqrt(var + epsilon) * gamma + beta,
    with the biased variance. gamma, beta: (C,) (ones / zeros when scale / center is off)."""

    gamma: np.ndarray
    beta: np.ndarray
    epsilon: float = 1e-3
    name: str = "layer_normalization"

    def __post_init__(self):
        self.gamma = _f32(self.gamma)
        self.beta = _f32(self.beta)
        self.epsilon = float(np.float32(self.epsilon))  # stored as float32 in the file
        if self.gamma.ndim != 1 or self.gamma.shape != self.beta.shape:
            raise ValueError(f"LayerNorm {self.name!r}: gamma and beta must be matching vectors")

    @property
    def units(self) -> int:
        return int(self.gamma.shape[0])


@dataclass
class Activation:
    """An activation applied to every step (softmax over the last axis)."""

    dim: int
    activation: str = "linear"
    name: str = "activation"

    def __post_init__(self):
        _check_act(self, "activation", DENSE_ACTIVATIONS)

    @property
    def units(self) -> int:
        return int(self.dim)


@dataclass
class Flatten:
    """Flatten of a (batch, T, C) sequence with a fixed T: (batch, T * C), row-major."""

    steps: int
    dim: int
    name: str = "flatten"

    @property
    def units(self) -> int:
        return int(self.steps * self.dim)


@dataclass
class Masking:
    """Keras Masking(mask_value): a step whose features all equal mask_value is masked (and
    zeroed); later mask-aware layers skip it."""

    dim: int
    mask_value: float = 0.0
    name: str = "masking"

    def __post_init__(self):
        self.mask_value = float(np.float32(self.mask_value))  # compared in float32

    @property
    def units(self) -> int:
        return int(self.dim)


Layer = (
    Embedding
    | GRU
    | Dense
    | LSTM
    | SimpleRNN
    | Bidirectional
    | Conv1D
    | GlobalPool
    | Affine
    | LayerNorm
    | Activation
    | Flatten
    | Masking
)

#: How each layer type treats an incoming mask (Keras 3; docs/keras-semantics.md section 5):
#: "pass" keeps it for the next layer, "consume" uses it (recurrent layers pass it on only with
#: return_sequences), "drop" ends it (Keras warns and destroys it; GlobalPool "max" drops it too).
#: Embedding(mask_zero) and Masking create one (Masking replaces any incoming mask).
MASK_RULES = {
    Dense: "pass",
    Activation: "pass",
    Affine: "pass",
    LayerNorm: "pass",
    GRU: "consume",
    LSTM: "consume",
    SimpleRNN: "consume",
    Bidirectional: "consume",
    GlobalPool: "consume",
    Conv1D: "drop",
    Flatten: "drop",
    Masking: "create",
    Embedding: "create",
}


def input_width(layer) -> int | None:
    """Width of one input step a layer needs (None: any, e.g. an Embedding's ids)."""
    if isinstance(layer, Embedding):
        return None
    if isinstance(layer, (GRU, LSTM, SimpleRNN, Bidirectional, Conv1D)):
        return layer.input_dim
    if isinstance(layer, Dense):
        return int(layer.kernel.shape[0])
    if isinstance(layer, Flatten):
        return int(layer.dim)
    return layer.units  # Affine, LayerNorm, Activation, GlobalPool, Masking keep the width


def output_width(layer) -> int:
    return layer.output_dim if isinstance(layer, Embedding) else layer.units


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
        """Check that the chain is well formed (each layer's input width matches the previous
        output, an Embedding comes first and only for token input, sequence layers see a
        sequence) and work out where a mask flows: each layer's `masked` attribute is set to
        whether a mask arrives at it (MASK_RULES)."""
        if not self.layers:
            raise ValueError("model has no layers")
        width = self.input.dim
        is_sequence = True
        mask = False
        for k, layer in enumerate(self.layers):
            where = f"layer {k} ({type(layer).__name__} {getattr(layer, 'name', '?')!r})"
            if type(layer) not in MASK_RULES:
                raise TypeError(f"{where}: not an IR layer")
            if isinstance(layer, Embedding):
                if k != 0 or self.input.kind != TOKENS:
                    raise ValueError(
                        f"{where}: an Embedding must be the first layer of a token model"
                    )
                if layer.table.shape[0] != self.input.dim:
                    raise ValueError(
                        f"{where}: vocabulary {layer.table.shape[0]} != input dim {self.input.dim}"
                    )
            elif k == 0 and self.input.kind == TOKENS:
                raise ValueError(f"{where}: a token model must start with an Embedding")
            needs_sequence = isinstance(
                layer, (*RECURRENT, Bidirectional, Conv1D, GlobalPool, Flatten, Masking)
            )
            if needs_sequence and not is_sequence:
                raise ValueError(
                    f"{where}: needs a sequence input, but the previous layer returns one vector "
                    "(set return_sequences=True on it)"
                )
            want = input_width(layer)
            if want is not None and want != width:
                raise ValueError(f"{where}: input width {want} != previous {width}")
            rule = MASK_RULES[type(layer)]
            if isinstance(layer, GlobalPool) and layer.kind == "max":
                rule = "drop"  # Keras' GlobalMaxPooling1D ignores the mask (max over all steps)
            layer.masked = mask and rule in ("pass", "consume")
            if rule == "create":
                mask = isinstance(layer, Masking) or layer.mask_zero
            elif rule == "drop":
                mask = False
            if isinstance(layer, (*RECURRENT, Bidirectional)):
                is_sequence = layer.return_sequences
            elif isinstance(layer, (GlobalPool, Flatten)):
                is_sequence = False
            if rule == "consume" and not is_sequence:
                mask = False
            width = output_width(layer)

    @property
    def output_dim(self) -> int:
        return output_width(self.layers[-1])

    @property
    def output_is_sequence(self) -> bool:
        seq = True
        for layer in self.layers:
            if isinstance(layer, (*RECURRENT, Bidirectional)):
                seq = layer.return_sequences
            elif isinstance(layer, (GlobalPool, Flatten)):
                seq = False
        return seq

    def output_steps(self, seq_len: int) -> int:
        """Steps of the output sequence for seq_len input steps (Conv1D may change them)."""
        steps = seq_len
        for layer in self.layers:
            if isinstance(layer, Conv1D):
                steps = layer.out_steps(steps)
        return steps

    def output_shape(self, batch: int, seq_len: int) -> tuple:
        """Shape of `predict`'s result for a (batch, seq_len[, dim]) input (as Keras returns)."""
        if self.output_is_sequence:
            return (batch, self.output_steps(seq_len), self.output_dim)
        return (batch, self.output_dim)

    def version_minor(self) -> int:
        """The lowest .egru minor version that can describe this model (docs/format.md)."""
        v10_acts = ("linear", "relu", "sigmoid", "tanh", "softmax")
        for layer in self.layers:
            if not isinstance(layer, (Embedding, GRU, Dense)) or layer.masked:
                return 1
            if isinstance(layer, Embedding) and layer.mask_zero:
                return 1
            if isinstance(layer, GRU) and (
                layer.go_backwards
                or layer.activation != "tanh"
                or layer.recurrent_activation != "sigmoid"
            ):
                return 1
            if isinstance(layer, Dense) and layer.activation not in v10_acts:
                return 1
        return 0
