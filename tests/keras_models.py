"""Keras model factories shared by the tests.

Every factory returns a built Keras 3 model whose weights are all re-drawn (`randomize`):

* matrices (Dense/GRU kernels, GRU recurrent kernels): normal, std = 1/sqrt(fan_in), where
  fan_in is the matrix's first axis (Keras layout (in, out));
* biases: normal, std 0.3. Keras initializes biases to zero, which would hide bias-placement
  bugs (e.g. swapping the GRU input and recurrent bias rows);
* embedding tables: standard normal (each row plays the part of one unit-variance input frame).

Fan-in scaling keeps the recurrence well conditioned. With large weights (std 0.5 at H=128) the
GRU becomes chaotic and two correct float32 implementations drift apart by up to 0.18, so a
fixed tolerance would flake.

Keras is imported lazily, after tests/conftest.py has set KERAS_BACKEND.
"""

from __future__ import annotations

import numpy as np

BIAS_STD = 0.3


def _keras():
    import keras

    return keras


#: Layer kinds whose first weights are matrices (kernels), and how many there are.
_KERNELS = {"GRU": 2, "LSTM": 2, "SimpleRNN": 2, "Dense": 1, "Conv1D": 1}


def _draw(layer, shapes, rng) -> list:
    """New values for one layer's weights (get_weights() order), by the layer's kind."""
    kind = type(layer).__name__
    if kind == "Embedding":
        return [rng.standard_normal(shapes[0])]
    if kind in _KERNELS:
        k = _KERNELS[kind]
        # fan_in: the input axis of the (in, out) matrix; (k * in) for a Conv1D kernel (k, in, out)
        new = [rng.standard_normal(s) / np.sqrt(np.prod(s[:-1])) for s in shapes[:k]]
        return new + [BIAS_STD * rng.standard_normal(s) for s in shapes[k:]]
    if kind == "Bidirectional":
        half = len(shapes) // 2
        return _draw(layer.forward_layer, shapes[:half], rng) + _draw(
            layer.backward_layer, shapes[half:], rng
        )
    if kind == "TimeDistributed":
        return _draw(layer.layer, shapes, rng)
    if kind == "BatchNormalization":
        new = []
        if layer.scale:
            new.append(rng.normal(1.0, 0.2, shapes[len(new)]))
        if layer.center:
            new.append(BIAS_STD * rng.standard_normal(shapes[len(new)]))
        new.append(BIAS_STD * rng.standard_normal(shapes[len(new)]))  # moving_mean
        new.append(rng.uniform(0.5, 2.0, shapes[len(new)]))  # moving_variance > 0
        return new
    if kind == "LayerNormalization":
        new = []
        if layer.scale or layer.rms_scaling:
            new.append(rng.normal(1.0, 0.2, shapes[0]))
        if layer.center and not layer.rms_scaling:
            new.append(BIAS_STD * rng.standard_normal(shapes[len(new)]))
        return new
    if kind == "Normalization":  # adapted: mean, variance, count
        return [
            rng.normal(0.0, 0.5, shapes[0]),
            rng.uniform(0.5, 2.0, shapes[1]),
            np.zeros(shapes[2], np.int64),
        ]
    raise TypeError(f"randomize: no weight roles known for {kind} {layer.name!r}")


def randomize(model, seed: int = 0):
    """Redraw every weight of `model` in place (see the module docstring); returns `model`.

    Roles are taken from each layer's class and its `get_weights()` order: Embedding [table];
    GRU/LSTM/SimpleRNN [kernel, recurrent_kernel, (bias)]; Dense/Conv1D [kernel, (bias)];
    Bidirectional [forward..., backward...]; TimeDistributed [inner...]; BatchNormalization
    [(gamma ~ N(1, 0.2)), (beta), moving_mean, moving_variance ~ U(0.5, 2)]; LayerNormalization
    [(gamma ~ N(1, 0.2)), (beta)]; adapted Normalization [mean, variance ~ U(0.5, 2), count].
    Nested models are randomized layer by layer.
    """
    rng = np.random.default_rng(seed)
    keras = _keras()
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            randomize(layer, int(rng.integers(2**31)))
            continue
        old = layer.get_weights()
        if not old:
            continue
        new = _draw(layer, [tuple(w.shape) for w in old], rng)
        layer.set_weights([np.asarray(n).astype(o.dtype) for n, o in zip(new, old, strict=True)])
        if type(layer).__name__ == "Normalization":
            layer.finalize_state()  # what adapt() and loading do; predict uses its result
    return model


def _gru_stack(units_list, reset_after, return_sequences, use_bias, dropout):
    """Keras layers for stacked GRUs: return_sequences=True on all but the last, whose value is
    `return_sequences`. With `dropout`, GRUs get dropout/recurrent_dropout and a Dropout layer
    follows each GRU (all identities at inference)."""
    keras = _keras()
    layers = []
    for k, units in enumerate(units_list):
        last = k == len(units_list) - 1
        layers.append(
            keras.layers.GRU(
                units,
                reset_after=reset_after,
                return_sequences=return_sequences if last else True,
                use_bias=use_bias,
                dropout=0.25 if dropout else 0.0,
                recurrent_dropout=0.25 if dropout else 0.0,
            )
        )
        if dropout:
            layers.append(keras.layers.Dropout(0.5))
    return layers


def _assemble(input_tensor, layers, functional: bool, name: str | None):
    """Chain `layers` after `input_tensor` as a Sequential or a Functional model."""
    keras = _keras()
    if functional:
        x = input_tensor
        for layer in layers:
            x = layer(x)
        return keras.Model(input_tensor, x, name=name)
    return keras.Sequential([input_tensor, *layers], name=name)


def token_model(
    vocab: int = 50,
    emb: int = 8,
    units_list=(8,),
    reset_after: bool = True,
    dense_units: int | None = 1,
    dense_activation: str = "sigmoid",
    seed: int = 0,
    dropout: bool = False,
    *,
    return_sequences: bool = False,
    use_bias: bool = True,
    functional: bool = False,
    seq_len: int | None = None,
    name: str | None = None,
):
    """Input(int32, (batch, seq_len)) -> Embedding(vocab, emb) -> GRU stack -> [Dense].

    dense_units=None leaves out the Dense head. use_bias applies to the GRUs and the Dense.
    Output: (batch, dense_units or units_list[-1]), or (batch, T, ...) with return_sequences.
    """
    keras = _keras()
    inp = keras.Input((seq_len,), dtype="int32", name="tokens")
    layers = [keras.layers.Embedding(vocab, emb)]
    layers += _gru_stack(units_list, reset_after, return_sequences, use_bias, dropout)
    if dense_units is not None:
        layers.append(keras.layers.Dense(dense_units, dense_activation, use_bias=use_bias))
    return randomize(_assemble(inp, layers, functional, name), seed)


def feature_model(
    features: int = 3,
    units_list=(8,),
    reset_after: bool = True,
    head: tuple | None = (2, "linear"),
    seed: int = 0,
    dropout: bool = False,
    *,
    return_sequences: bool = False,
    use_bias: bool = True,
    functional: bool = False,
    seq_len: int | None = None,
    name: str | None = None,
):
    """Input(float32, (batch, seq_len, features)) -> GRU stack -> [Dense(*head)].

    head: (units, activation) of the Dense head, or None for none.
    """
    keras = _keras()
    inp = keras.Input((seq_len, features), dtype="float32", name="frames")
    layers = _gru_stack(units_list, reset_after, return_sequences, use_bias, dropout)
    if head is not None:
        units, activation = head
        layers.append(keras.layers.Dense(units, activation, use_bias=use_bias))
    return randomize(_assemble(inp, layers, functional, name), seed)


def seed_model(vocab=20000, emb=128, units=128, seq_len=200, seed=0):
    """The classic text classifier: Embedding(vocab, emb) -> GRU(units) -> Dense(1, sigmoid),
    Sequential, fixed input length seq_len. Output (batch, 1)."""
    return token_model(
        vocab, emb, (units,), True, 1, "sigmoid", seed, seq_len=seq_len, name="seed_model"
    )


def random_inputs(model, batch: int, T: int, seed: int = 0) -> np.ndarray:
    """A random input batch for an `ir.Model` or a Keras model built by this module.

    Tokens: int32 (batch, T), uniform over the whole vocabulary (0 included).
    Features: float32 (batch, T, features), standard normal.
    """
    rng = np.random.default_rng(seed)
    if hasattr(model, "input") and hasattr(model.input, "kind"):  # ir.Model
        kind, dim = model.input.kind, model.input.dim
    else:  # Keras: decide from the input dtype and the Embedding, independently of the importer
        tensor = model.inputs[0]
        embeddings = [layer for layer in model.layers if type(layer).__name__ == "Embedding"]
        if "int" in str(tensor.dtype) or embeddings:
            kind, dim = "tokens", embeddings[0].input_dim
        else:
            kind, dim = "features", tensor.shape[-1]
    if kind == "tokens":
        return rng.integers(0, dim, size=(batch, T)).astype(np.int32)
    return rng.standard_normal((batch, T, dim)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Models with the 1.1 layers (LSTM, SimpleRNN, Bidirectional, masks, Conv1D, normalizations, ...)
# ---------------------------------------------------------------------------------------------


def layers_model(
    layers,
    *,
    features: int | None = 3,
    vocab: int | None = None,
    seq_len: int | None = None,
    batch_size: int | None = None,
    functional: bool = False,
    seed: int = 0,
    name: str | None = None,
):
    """Input -> `layers` (a list of Keras layers, or a callable returning one), randomized.

    Token input (int32, (batch, seq_len)) when `vocab` is given (the first layer is then usually
    an Embedding(vocab, ...)), else float frames (batch, seq_len, features).
    """
    keras = _keras()
    layers = layers() if callable(layers) else list(layers)
    if vocab is not None:
        inp = keras.Input((seq_len,), batch_size=batch_size, dtype="int32", name="tokens")
    else:
        inp = keras.Input(
            (seq_len, features), batch_size=batch_size, dtype="float32", name="frames"
        )
    return randomize(_assemble(inp, layers, functional, name), seed)


def masked_bilstm_model(seed: int = 0, merge_mode: str = "concat"):
    """Embedding(30, 6, mask_zero) -> Bidirectional(LSTM(5, seq)) -> TimeDistributed(Dense(4))
    -> GlobalAveragePooling1D -> Dense(2, softmax); Functional (the mask is in the config)."""
    keras = _keras()
    L = keras.layers
    return layers_model(
        [
            L.Embedding(30, 6, mask_zero=True),
            L.Bidirectional(L.LSTM(5, return_sequences=True), merge_mode=merge_mode),
            L.TimeDistributed(L.Dense(4, activation="relu")),
            L.GlobalAveragePooling1D(),
            L.Dense(2, activation="softmax"),
        ],
        vocab=30,
        functional=True,
        seed=seed,
        name="masked_bilstm",
    )


def conv_bn_gru_model(seed: int = 0):
    """frames(4) -> Conv1D(6, 3, causal, relu) -> BatchNormalization -> GRU(5) -> Dense(1)."""
    keras = _keras()
    L = keras.layers
    return layers_model(
        [
            L.Conv1D(6, 3, padding="causal", activation="relu"),
            L.BatchNormalization(),
            L.GRU(5),
            L.Dense(1),
        ],
        features=4,
        seed=seed,
        name="conv_bn_gru",
    )


def stacked_mixed_model(seed: int = 0, functional: bool = False):
    """frames(3, T=8) -> Masking -> LayerNormalization -> SimpleRNN(4, seq) -> Bidirectional(
    GRU(3, seq), sum) -> LSTM(4, seq, go_backwards) -> Dropout -> Flatten -> Dense(2)."""
    keras = _keras()
    L = keras.layers
    return layers_model(
        [
            L.Masking(0.0),
            L.LayerNormalization(),
            L.SimpleRNN(4, return_sequences=True),
            L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"),
            L.LSTM(4, return_sequences=True, go_backwards=True),
            L.Dropout(0.3),
            L.Flatten(),
            L.Dense(2),
        ],
        features=3,
        seq_len=8,
        functional=functional,
        seed=seed,
        name="stacked_mixed",
    )


def padded_inputs(
    model, batch: int, T: int, padding: str = "post", seed: int = 0, mask_value: float = 0.0
):
    """A random batch with masked steps: token id 0, or frames equal to mask_value everywhere.

    padding: "post" (valid steps first), "pre" (valid steps last) or "middle" (masked steps
    scattered between valid ones). Row 0 is unpadded; every row keeps at least one valid step.
    """
    rng = np.random.default_rng(seed)
    x = random_inputs(model, batch, T, seed=seed)
    tokens = x.ndim == 2
    if tokens:
        x = np.where(x == 0, 1, x)  # no accidental padding
    masked = np.zeros((batch, T), bool)
    for row in range(1, batch):
        valid = int(rng.integers(1, T)) if T > 1 else 1
        if padding == "post":
            masked[row, valid:] = True
        elif padding == "pre":
            masked[row, : T - valid] = True
        elif padding == "middle":
            masked[row] = rng.random(T) < 0.4
            masked[row, rng.integers(T)] = False
        else:
            raise ValueError(padding)
    if tokens:
        x[masked] = 0
    else:
        x[masked] = mask_value
    return x
