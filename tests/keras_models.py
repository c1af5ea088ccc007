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


def randomize(model, seed: int = 0):
    """Redraw every weight of `model` in place (see the module docstring); returns `model`.

    Roles are taken from each layer's class and its `get_weights()` order:
    Embedding [table]; GRU [kernel, recurrent_kernel, (bias)]; Dense [kernel, (bias)].
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        kind = type(layer).__name__
        shapes = [tuple(w.shape) for w in layer.weights]  # get_weights() order
        if not shapes:
            continue
        if kind == "Embedding":
            new = [rng.standard_normal(shapes[0])]
        elif kind in ("GRU", "Dense"):
            kernels = 2 if kind == "GRU" else 1
            new = [rng.standard_normal(s) / np.sqrt(s[0]) for s in shapes[:kernels]]
            new += [BIAS_STD * rng.standard_normal(s) for s in shapes[kernels:]]
        else:
            raise TypeError(f"randomize: no weight roles known for {kind} {layer.name!r}")
        layer.set_weights([w.astype(np.float32) for w in new])
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
