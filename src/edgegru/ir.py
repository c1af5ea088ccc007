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


# ---------------------------------------------------------------------------------------------
# Graphs (Keras' Functional API beyond a single chain; docs/format.md "Graphs")

#: Kinds of graph values: integer ids (batch, T), float sequences (batch, T, width) and float
#: vectors (batch, width). Graph inputs may be of any kind; computed values are never TOKENS.
SEQUENCE = "sequence"
VECTOR = "vector"
VALUE_KINDS = (TOKENS, SEQUENCE, VECTOR)
#: MERGE modes, in the file's params[0] order (1 add .. 6 minimum).
MERGE_OPS = ("add", "subtract", "multiply", "average", "maximum", "minimum")
#: CONCATENATE axes: "time" (steps add up) or "features" (widths add up).
CONCAT_AXES = ("time", "features")


@dataclass
class Merge:
    """Keras Add / Subtract / Multiply / Average / Maximum / Minimum of >= 2 inputs of one shape
    (Subtract: exactly 2, first minus second). Mask rules: docs/format.md "Graphs"."""

    mode: str
    dim: int
    name: str = "merge"

    def __post_init__(self):
        if self.mode not in MERGE_OPS:
            raise ValueError(f"Merge {self.name!r}: mode {self.mode!r} not in {MERGE_OPS}")

    @property
    def units(self) -> int:
        return int(self.dim)


@dataclass
class Concatenate:
    """Keras Concatenate along time (sequences of one width) or features (the widths add up)."""

    axis: str
    name: str = "concatenate"

    def __post_init__(self):
        if self.axis not in CONCAT_AXES:
            raise ValueError(f"Concatenate {self.name!r}: axis {self.axis!r} not in {CONCAT_AXES}")


@dataclass
class RepeatVector:
    """Keras RepeatVector(n): a vector (batch, dim) -> the sequence (batch, n, dim)."""

    n: int
    dim: int
    name: str = "repeat_vector"

    def __post_init__(self):
        if int(self.n) < 1:
            raise ValueError(f"RepeatVector {self.name!r}: n must be >= 1, got {self.n}")

    @property
    def units(self) -> int:
        return int(self.dim)


#: ATTENTION score modes, in the file's params[0] order (1 dot .. 3 additive).
ATTENTION_SCORES = ("dot", "concat", "additive")


@dataclass
class Attention:
    """Keras Attention (score "dot" or "concat") or AdditiveAttention (score "additive") over
    [query, value] or [query, value, key] sequences (docs/format.md "ATTENTION"). dim: the width
    of query and key; value_dim: the value's (and the output's). scale: dot / concat: a float
    (1.0 without use_scale); additive: None (no use_scale) or the (dim,) array. concat_weight:
    Keras' concat_score_weight (concat only). causal: the call's use_causal_mask.
    use_masks: False for Keras' attention written as layers, Dot(axes=[2, 2]) of query and key,
    softmax, Dot(axes=[2, 1]) with the value ("dot" score, scale 1, not causal): Keras' Dot drops
    every mask, so this node reads none (padded value steps get weight too) and writes none."""

    score: str
    dim: int
    value_dim: int
    scale: object = 1.0
    concat_weight: float = 1.0
    causal: bool = False
    name: str = "attention"
    use_masks: bool = True

    def __post_init__(self):
        if self.score not in ATTENTION_SCORES:
            raise ValueError(
                f"Attention {self.name!r}: score {self.score!r} not in {ATTENTION_SCORES}"
            )
        if self.score == "additive":
            if self.scale is not None:
                self.scale = np.asarray(self.scale, dtype=np.float32).reshape(-1)
                if self.scale.shape != (int(self.dim),):
                    raise ValueError(f"Attention {self.name!r}: scale must have {self.dim} values")
        else:
            self.scale = float(np.float32(1.0 if self.scale is None else self.scale))
        self.concat_weight = float(np.float32(self.concat_weight))
        self.use_masks = bool(self.use_masks)
        if not self.use_masks and (self.score != "dot" or self.causal):
            raise ValueError(
                f"Attention {self.name!r}: use_masks=False needs the dot score without causal"
            )

    @property
    def units(self) -> int:
        return int(self.value_dim)


@dataclass(frozen=True)
class GraphInput:
    """One model input. kind: "tokens" (ids (batch, T), dim = vocabulary), "features" (float
    (batch, T, dim)) or "vector" (float (batch, dim), e.g. a decoder's state input). seq_len: the
    T Keras declares (None: dynamic); informational, like InputSpec.seq_len."""

    name: str
    kind: str
    dim: int
    seq_len: int | None = None

    def __post_init__(self):
        if self.kind not in (TOKENS, FEATURES, VECTOR):
            raise ValueError(f"graph input {self.name!r}: kind {self.kind!r} is not supported")
        if int(self.dim) <= 0:
            raise ValueError(f"graph input {self.name!r}: dim must be positive, got {self.dim}")

    @property
    def value_kind(self) -> str:
        return SEQUENCE if self.kind == FEATURES else self.kind


@dataclass
class Value:
    """What check() infers for each value: kind (VALUE_KINDS), width, whether a mask travels
    with it, and a fixed step count when the graph fixes one (RepeatVector; else None)."""

    kind: str
    width: int
    masked: bool = False


@dataclass
class Node:
    """One application of a layer: it reads the values named in `inputs` and writes those in
    `outputs`. The same layer object in several nodes is a shared layer (its weights are stored
    once). Recurrent nodes read [sequence, *initial states] and write [output, *final states]
    (states per direction: h, or h and c for an LSTM; forward first). `masked` (set by
    Graph.check) says whether the node reads a mask."""

    layer: object
    inputs: list
    outputs: list
    masked: bool = False


#: TIME_STEPS modes, in the file's params[0] order: Keras Cropping1D, ZeroPadding1D, UpSampling1D.
TIME_STEP_MODES = ("crop", "pad", "upsample")


@dataclass
class TimeSteps:
    """A sequence -> sequence op that changes the steps (docs/format.md "TIME_STEPS"): "crop"
    drops `start` steps at the start and `end` at the end (Cropping1D), "pad" adds that many zero
    steps (ZeroPadding1D), "upsample" repeats each step `size` times (UpSampling1D). Keras'
    three layers end a mask (measured: docs/keras-semantics.md)."""

    mode: str
    dim: int
    start: int = 0
    end: int = 0
    size: int = 1
    name: str = "time_steps"

    def __post_init__(self):
        if self.mode not in TIME_STEP_MODES:
            raise ValueError(
                f"TimeSteps {self.name!r}: mode {self.mode!r} not in {TIME_STEP_MODES}"
            )
        self.start, self.end, self.size = int(self.start), int(self.end), int(self.size)
        if min(self.start, self.end) < 0 or self.size < 1:
            raise ValueError(f"TimeSteps {self.name!r}: negative steps or size < 1")
        if self.mode == "upsample" and (self.start or self.end):
            raise ValueError(f"TimeSteps {self.name!r}: upsample has no start / end")
        if self.mode != "upsample" and self.size != 1:
            raise ValueError(f"TimeSteps {self.name!r}: only upsample has a size")

    @property
    def units(self) -> int:
        return int(self.dim)

    def out_steps(self, steps: int) -> int:
        """The output's steps for `steps` input steps (< 1: the input is too short to crop)."""
        if self.mode == "crop":
            return steps - self.start - self.end
        if self.mode == "pad":
            return steps + self.start + self.end
        return steps * self.size


@dataclass
class Dot:
    """Keras Dot(axes=1 or -1, normalize) of two vectors (batch, dim) -> (batch, 1): the dot
    product, of the L2-normalized vectors with normalize (x * min(rsqrt(sum x^2), 1e7), Keras'
    normalize with epsilon 1e-7)."""

    dim: int
    normalize: bool = False
    name: str = "dot"

    @property
    def units(self) -> int:
        return 1


@dataclass
class Reshape:
    """Keras Reshape where the model fixes the shapes: (in_steps, in_dim) -> (out_steps,
    out_dim), steps 0 meaning a vector; in_steps * in_dim == out_steps * out_dim (steps 0
    counting as 1). The bytes of a row are unchanged. Ends a mask (as Keras)."""

    in_steps: int
    in_dim: int
    out_steps: int
    out_dim: int
    name: str = "reshape"

    def __post_init__(self):
        a = max(int(self.in_steps), 1) * int(self.in_dim)
        if (
            a != max(int(self.out_steps), 1) * int(self.out_dim)
            or min(self.in_dim, self.out_dim) < 1
        ):
            raise ValueError(f"Reshape {self.name!r}: sizes differ")

    @property
    def units(self) -> int:
        return int(self.out_dim)


@dataclass
class Permute:
    """Keras Permute((2, 1)) of a sequence of a fixed `steps` T and width `dim` C: the sequence
    of C steps of width T, y[c][t] = x[t][c]. Ends a mask (as Keras)."""

    steps: int
    dim: int
    name: str = "permute"

    @property
    def units(self) -> int:
        return int(self.steps)


#: Layers only a graph file can hold (never a chain's).
GRAPH_ONLY = (Merge, Concatenate, RepeatVector, Attention, TimeSteps, Dot, Reshape, Permute)


def state_count(layer) -> int:
    """Initial / final states of a recurrent layer: S in docs/format.md "Graphs"."""
    cell = layer.forward if isinstance(layer, Bidirectional) else layer
    per_direction = 2 if isinstance(cell, LSTM) else 1
    return per_direction * (2 if isinstance(layer, Bidirectional) else 1)


def _mask_out(layer, ins: list) -> bool:
    """Whether the output of `layer` carries a mask, given its inputs' Values (the mask rules of
    docs/format.md "Graphs", which are Keras 3's)."""
    if isinstance(layer, Merge):
        return all(v.masked for v in ins)
    if isinstance(layer, Concatenate):
        return any(v.masked for v in ins)
    if isinstance(layer, RepeatVector):
        return False
    if isinstance(layer, Attention):
        return ins[0].masked and layer.use_masks  # the query's mask
    if isinstance(layer, (TimeSteps, Dot, Reshape, Permute)):
        return False
    rule = MASK_RULES[type(layer)]
    if isinstance(layer, GlobalPool) and layer.kind == "max":
        rule = "drop"
    if rule == "create":
        return isinstance(layer, Masking) or layer.mask_zero
    if rule == "pass":
        return ins[0].masked
    if rule == "consume":
        return ins[0].masked and getattr(layer, "return_sequences", False)
    return False


def _reads_mask(layer, ins: list) -> bool:
    """Whether a node of `layer` reads a mask (its record's MASKED flag)."""
    if isinstance(layer, (Merge, Concatenate)):
        return any(v.masked for v in ins)
    if isinstance(layer, RepeatVector):
        return False
    if isinstance(layer, Attention):
        # query and value masks (a key's is ignored); none for the Dot pattern (use_masks)
        return (ins[0].masked or ins[1].masked) and layer.use_masks
    if isinstance(layer, (TimeSteps, Dot, Reshape, Permute)):
        return False
    if isinstance(layer, (*RECURRENT, Bidirectional)) and len(ins) > 1:
        # Keras 3 hands a layer its input's mask only when the call has one tensor argument:
        # with initial_state= the recurrent layer runs unmasked (its output still carries the
        # mask, _mask_out). Measured: docs/keras-semantics.md, "Masks in graphs".
        return False
    rule = MASK_RULES[type(layer)]
    if isinstance(layer, GlobalPool) and layer.kind == "max":
        rule = "drop"
    return ins[0].masked and rule in ("pass", "consume")


@dataclass
class Graph:
    """A model that is not a single chain: inputs, nodes in topological order, outputs (value
    names, in Keras' model.inputs / model.outputs order). check() infers every value (self.values)
    and each node's `masked`. A graph that is a chain (one input, one output, each node reading
    the previous node's only output) converts to `Model` with `as_chain()`, which the writer
    uses so that chain files stay byte-identical."""

    inputs: list
    nodes: list
    outputs: list
    name: str = "model"
    source: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        if not self.inputs or not self.outputs or not self.nodes:
            raise ValueError("a graph needs at least one input, one node and one output")
        values: dict = {}
        for gi in self.inputs:
            if gi.name in values:
                raise ValueError(f"graph input name {gi.name!r} is used twice")
            values[gi.name] = Value(gi.value_kind, int(gi.dim))
        for k, node in enumerate(self.nodes):
            layer = node.layer
            where = f"node {k} ({type(layer).__name__} {getattr(layer, 'name', '?')!r})"
            missing = [v for v in node.inputs if v not in values]
            if missing:
                raise ValueError(f"{where}: reads {missing}, which no earlier node writes")
            ins = [values[v] for v in node.inputs]
            outs = _infer_node(layer, ins, where)
            if isinstance(layer, (*RECURRENT, Bidirectional)) and len(node.outputs) == 1:
                outs = outs[:1]  # no return_state
            if len(node.outputs) != len(outs):
                raise ValueError(
                    f"{where}: writes {len(node.outputs)} values, its layer gives {len(outs)}"
                )
            node.masked = _reads_mask(layer, ins)
            outs[0].masked = _mask_out(layer, ins)
            for name, v in zip(node.outputs, outs, strict=True):
                if name in values:
                    raise ValueError(f"{where}: value {name!r} is written twice")
                values[name] = v
        inputs = {gi.name for gi in self.inputs}
        for name in self.outputs:
            if name not in values or name in inputs:
                raise ValueError(f"graph output {name!r} is not written by a node")
        if len(set(self.outputs)) != len(self.outputs):
            raise ValueError("a graph output is listed twice")
        self.values = values

    def value_names(self) -> list:
        """Every value, in the file's order: the inputs, then each node's outputs."""
        return list(self.values)

    def as_chain(self):
        """The equivalent chain Model, or None when the graph is not a chain."""
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            return None
        gi = self.inputs[0]
        if gi.kind == VECTOR:
            return None
        cur = gi.name
        for node in self.nodes:
            if node.inputs != [cur] or len(node.outputs) != 1:
                return None
            if isinstance(node.layer, GRAPH_ONLY):
                return None
            cur = node.outputs[0]
        if cur != self.outputs[0]:
            return None
        layers = [n.layer for n in self.nodes]
        if len({id(x) for x in layers}) != len(layers):
            return None  # a layer applied twice: stored once only in a graph file
        try:
            return Model(InputSpec(gi.kind, gi.dim, gi.seq_len), layers, self.name, self.source)
        except (ValueError, TypeError):
            return None


def _infer_node(layer, ins: list, where: str) -> list:
    """The Values a node of `layer` writes (masks filled in by the caller), after checking the
    kinds and widths of its inputs (docs/format.md "Graphs", "Ops in a graph")."""

    def need(cond, msg):
        if not cond:
            raise ValueError(f"{where}: {msg}")

    if isinstance(layer, (Merge, Concatenate)):
        need(len(ins) >= 2, "needs at least two inputs")
        need(all(v.kind != TOKENS for v in ins), "cannot read token ids")
        kinds = {v.kind for v in ins}
        need(len(kinds) == 1, f"inputs mix sequences and vectors: {[v.kind for v in ins]}")
        kind = ins[0].kind
        if isinstance(layer, Merge):
            need(layer.mode != "subtract" or len(ins) == 2, "subtract needs exactly two inputs")
            need(
                all(v.width == layer.dim for v in ins),
                f"input widths {[v.width for v in ins]} != {layer.dim}",
            )
            return [Value(kind, layer.dim)]
        if layer.axis == "time":
            need(kind == SEQUENCE, "concatenation along time needs sequences")
            need(len({v.width for v in ins}) == 1, f"widths differ: {[v.width for v in ins]}")
            return [Value(SEQUENCE, ins[0].width)]
        return [Value(kind, sum(v.width for v in ins))]
    if isinstance(layer, RepeatVector):
        need(len(ins) == 1 and ins[0].kind == VECTOR, "needs one vector input")
        need(ins[0].width == layer.dim, f"input width {ins[0].width} != {layer.dim}")
        return [Value(SEQUENCE, layer.dim)]
    if isinstance(layer, Attention):
        need(len(ins) in (2, 3), "reads [query, value] or [query, value, key]")
        need(all(v.kind == SEQUENCE for v in ins), "reads sequences only")
        key = ins[2] if len(ins) == 3 else ins[1]
        need(ins[0].width == layer.dim, f"query width {ins[0].width} != {layer.dim}")
        need(key.width == layer.dim, f"key width {key.width} != query width {layer.dim}")
        need(ins[1].width == layer.value_dim, f"value width {ins[1].width} != {layer.value_dim}")
        return [Value(SEQUENCE, layer.value_dim)]
    if isinstance(layer, Reshape):
        kind = SEQUENCE if layer.in_steps else VECTOR
        need(len(ins) == 1 and ins[0].kind == kind, f"needs one {kind} input")
        need(ins[0].width == layer.in_dim, f"input width {ins[0].width} != {layer.in_dim}")
        return [Value(SEQUENCE if layer.out_steps else VECTOR, layer.out_dim)]
    if isinstance(layer, Permute):
        need(len(ins) == 1 and ins[0].kind == SEQUENCE, "needs one sequence input")
        need(ins[0].width == layer.dim, f"input width {ins[0].width} != {layer.dim}")
        return [Value(SEQUENCE, layer.steps)]
    if isinstance(layer, Dot):
        need(len(ins) == 2 and all(v.kind == VECTOR for v in ins), "needs two vector inputs")
        need(all(v.width == layer.dim for v in ins), f"input widths != {layer.dim}")
        return [Value(VECTOR, 1)]
    if isinstance(layer, TimeSteps):
        need(len(ins) == 1 and ins[0].kind == SEQUENCE, "needs one sequence input")
        need(ins[0].width == layer.dim, f"input width {ins[0].width} != {layer.dim}")
        return [Value(SEQUENCE, layer.dim)]
    if type(layer) not in MASK_RULES:
        raise TypeError(f"{where}: not an IR layer")
    x = ins[0]
    if isinstance(layer, Embedding):
        need(len(ins) == 1 and x.kind == TOKENS, "an Embedding reads one token input")
        need(x.width == layer.table.shape[0], f"vocabulary {layer.table.shape[0]} != {x.width}")
        return [Value(SEQUENCE, layer.output_dim)]
    need(x.kind != TOKENS, "token ids can only go to an Embedding")
    want = input_width(layer)
    need(want is None or want == x.width, f"input width {x.width} != {want}")
    if isinstance(layer, (*RECURRENT, Bidirectional)):
        need(x.kind == SEQUENCE, "needs a sequence input")
        s = state_count(layer)
        need(len(ins) in (1, 1 + s), f"reads the sequence and 0 or {s} initial states")
        h = layer.forward.units if isinstance(layer, Bidirectional) else layer.units
        for v in ins[1:]:
            need(v.kind == VECTOR and v.width == h, f"an initial state must be a vector of {h}")
        out = Value(SEQUENCE if layer.return_sequences else VECTOR, layer.units)
        # [output, *final states]; Graph.check drops the states of a node without return_state
        return [out, *(Value(VECTOR, h) for _ in range(s))]
    need(len(ins) == 1, "reads one input")
    if isinstance(layer, (Conv1D, Masking)):
        need(x.kind == SEQUENCE, "needs a sequence input")
        return [Value(SEQUENCE, output_width(layer))]
    if isinstance(layer, (GlobalPool, Flatten)):
        need(x.kind == SEQUENCE, "needs a sequence input")
        return [Value(VECTOR, output_width(layer))]
    return [Value(x.kind, output_width(layer))]  # per-step layers keep the kind
