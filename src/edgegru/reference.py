"""A float64 numpy model of the IR, written from the equations (not from any runtime).

It is the independent oracle the tests compare the C runtime, onnxruntime and Keras against,
and it is deliberately plain: one loop over time, no tricks.
"""

from __future__ import annotations

import numpy as np

from . import ir


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


_ACT = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
}


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def gru(layer: ir.GRU, x: np.ndarray) -> np.ndarray:
    """x: (batch, T, I) float64 -> (batch, T, H) if return_sequences else (batch, H)."""
    h_units = layer.units
    w = layer.kernel.astype(np.float64)
    u = layer.recurrent_kernel.astype(np.float64)
    bi = layer.input_bias.astype(np.float64)
    br = layer.recurrent_bias.astype(np.float64)
    f = _ACT[layer.recurrent_activation]
    g = _ACT[layer.activation]
    batch, steps, _ = x.shape
    h = np.zeros((batch, h_units))
    outs = []
    for t in range(steps):
        xp = x[:, t, :] @ w + bi  # (batch, 3H)
        xz, xr, xh = np.split(xp, 3, axis=1)
        uz, ur, uh = np.split(u, 3, axis=1)
        brz, brr, brh = np.split(br, 3)
        z = f(xz + h @ uz + brz)
        r = f(xr + h @ ur + brr)
        if layer.reset_after:
            hh = g(xh + r * (h @ uh + brh))
        else:
            hh = g(xh + (r * h) @ uh + brh)
        h = z * h + (1.0 - z) * hh
        outs.append(h)
    if layer.return_sequences:
        return np.stack(outs, axis=1) if outs else np.zeros((batch, 0, h_units))
    return h


def dense(layer: ir.Dense, x: np.ndarray) -> np.ndarray:
    y = x @ layer.kernel.astype(np.float64) + layer.bias.astype(np.float64)
    if layer.activation == "softmax":
        return _softmax(y)
    return _ACT[layer.activation](y)


def forward(model: ir.Model, x) -> np.ndarray:
    """Run the IR in float64. x: (batch, T) ints or (batch, T, F) floats. Returns float64."""
    x = np.asarray(x)
    if model.input.kind == ir.TOKENS:
        ids = x.astype(np.int64)
        if ids.min(initial=0) < 0 or ids.max(initial=0) >= model.input.dim:
            raise ValueError("token id out of range")
        y = None
    else:
        y = x.astype(np.float64)
    for layer in model.layers:
        if isinstance(layer, ir.Embedding):
            y = layer.table.astype(np.float64)[ids]
        elif isinstance(layer, ir.GRU):
            y = gru(layer, y)
        elif isinstance(layer, ir.Dense):
            y = dense(layer, y)
        else:  # pragma: no cover - ir.Model.check rejects this first
            raise TypeError(type(layer).__name__)
    return y
