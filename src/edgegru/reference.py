"""A float64 numpy model of the IR, written from the equations (not from any runtime).

It is the independent oracle the tests compare the C runtime, onnxruntime and Keras against,
and it is deliberately plain: one loop over time, no tricks. Masks follow Keras 3
(docs/keras-semantics.md): a masked step leaves a recurrent state unchanged; a unidirectional
sequence output repeats the previous output there (zero before the first valid step); inside a
Bidirectional layer it is zero.
"""

from __future__ import annotations

import numpy as np

from . import ir
from .quantize import quantize_vector


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "hard_sigmoid": lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "softmax": _softmax,
}


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


#: Set by forward(..., int8_inputs=True): every matrix product's input vector goes through the
#: run-time int8 quantization of docs/quantization.md first (the weights are whatever the IR
#: holds: the dequantized int8 weights when it was read from an int8 file).
_INT8_INPUTS = False


def _qin(v: np.ndarray) -> np.ndarray:
    """A product's input as the int8 runtime sees it: each vector (last axis) quantized on its
    own (edgegru.quantize.quantize_vector, in float32) and scaled back; unchanged in float mode."""
    if not _INT8_INPUTS:
        return v
    flat = np.asarray(v, dtype=np.float32).reshape(-1, v.shape[-1])
    out = np.empty(flat.shape, dtype=np.float64)
    for i, row in enumerate(flat):
        q, scale = quantize_vector(row)
        out[i] = q.astype(np.float64) * np.float64(scale)
    return out.reshape(v.shape)


def _gru_parts(layer: ir.GRU, x, h):
    """The update gate z and the candidate hh of a GRU step on input x and state h."""
    f, g = ACTIVATIONS[layer.recurrent_activation], ACTIVATIONS[layer.activation]
    xz, xr, xh = np.split(_qin(x) @ _f64(layer.kernel) + _f64(layer.input_bias), 3, axis=-1)
    uz, ur, uh = np.split(_f64(layer.recurrent_kernel), 3, axis=1)
    brz, brr, brh = np.split(_f64(layer.recurrent_bias), 3)
    hq = _qin(h)
    z = f(xz + hq @ uz + brz)
    r = f(xr + hq @ ur + brr)
    if layer.reset_after:
        hh = g(xh + r * (hq @ uh + brh))
    else:
        hh = g(xh + _qin(r * h) @ uh + brh)
    return z, hh


def gru_candidate(layer: ir.GRU, x, h):
    """The candidate state hh a GRU step computes from input x (..., I) and state h (..., H)."""
    return _gru_parts(layer, x, h)[1]


def _gru_step(layer: ir.GRU, x, h):
    z, hh = _gru_parts(layer, x, h)
    return z * h + (1.0 - z) * hh


def _lstm_step(layer: ir.LSTM, x, state):
    h, c = state
    f, g = ACTIVATIONS[layer.recurrent_activation], ACTIVATIONS[layer.activation]
    a = _qin(x) @ _f64(layer.kernel) + _qin(h) @ _f64(layer.recurrent_kernel) + _f64(layer.bias)
    ai, af, ac, ao = np.split(a, 4, axis=-1)
    c = f(af) * c + f(ai) * g(ac)
    return f(ao) * g(c), c


def _rnn_step(layer: ir.SimpleRNN, x, h):
    a = _qin(x) @ _f64(layer.kernel) + _qin(h) @ _f64(layer.recurrent_kernel) + _f64(layer.bias)
    return ACTIVATIONS[layer.activation](a)


def recurrent(
    layer, x: np.ndarray, mask=None, *, reverse=None, zero_masked=False, align=False, state=None
):
    """One direction of a GRU, LSTM or SimpleRNN over x: (batch, T, I).

    mask: (batch, T) bools or None. reverse: process last to first (default: go_backwards).
    align: write reversed outputs at their input time (Bidirectional's backward layer) instead of
    in processing order (go_backwards). state: the initial state (zeros when None).
    Returns (outputs (batch, T, H), final state); outputs follow the masking rules above.
    """
    batch, steps, _ = x.shape
    h_units = layer.units
    reverse = layer.go_backwards if reverse is None else reverse
    lstm = isinstance(layer, ir.LSTM)
    if state is None:
        zeros = np.zeros((batch, h_units))
        state = (zeros, zeros.copy()) if lstm else zeros
    seen = np.zeros((batch, 1), dtype=bool)
    outs = np.zeros((batch, steps, h_units))
    for p in range(steps):
        t = steps - 1 - p if reverse else p
        if isinstance(layer, ir.GRU):
            new = _gru_step(layer, x[:, t], state)
        elif lstm:
            new = _lstm_step(layer, x[:, t], state)
        else:
            new = _rnn_step(layer, x[:, t], state)
        valid = np.ones((batch, 1), dtype=bool) if mask is None else mask[:, t : t + 1]
        if lstm:
            state = (np.where(valid, new[0], state[0]), np.where(valid, new[1], state[1]))
        else:
            state = np.where(valid, new, state)
        seen |= valid
        h = state[0] if lstm else state
        keep = valid if zero_masked else seen
        outs[:, t if align else p] = np.where(keep, h, 0.0)
    return outs, state


def _run_recurrent(layer, x, mask):
    if not isinstance(layer, ir.Bidirectional):
        outs, state = recurrent(layer, x, mask)
        h = state[0] if isinstance(layer, ir.LSTM) else state
        return outs if layer.return_sequences else h
    fwd, fs = recurrent(layer.forward, x, mask, reverse=False, zero_masked=True, align=True)
    bwd, bs = recurrent(layer.backward, x, mask, reverse=True, zero_masked=True, align=True)
    if not layer.return_sequences:
        fwd = fs[0] if isinstance(layer.forward, ir.LSTM) else fs
        bwd = bs[0] if isinstance(layer.forward, ir.LSTM) else bs
    merge = {
        "concat": lambda a, b: np.concatenate([a, b], axis=-1),
        "sum": lambda a, b: a + b,
        "ave": lambda a, b: (a + b) / 2.0,
        "mul": lambda a, b: a * b,
    }[layer.merge_mode]
    return merge(fwd, bwd)


def conv1d(layer: ir.Conv1D, x: np.ndarray) -> np.ndarray:
    """x: (batch, T, in) -> (batch, T_out, out), zero padding as Keras/TensorFlow pad."""
    k, s, d = layer.kernel_size, layer.strides, layer.dilation_rate
    steps = x.shape[1]
    eff = d * (k - 1) + 1
    out_steps = layer.out_steps(steps)
    if layer.padding == "causal":
        left = eff - 1
    elif layer.padding == "same":
        left = max((out_steps - 1) * s + eff - steps, 0) // 2
    else:
        left = 0
    w = _f64(layer.kernel)  # (k, in, out)
    y = np.zeros((x.shape[0], out_steps, w.shape[2])) + _f64(layer.bias)
    for t in range(out_steps):
        for j in range(k):
            src = t * s + j * d - left
            if 0 <= src < steps:
                y[:, t] += x[:, src] @ w[j]
    return ACTIVATIONS[layer.activation](y)


def forward(model: ir.Model, x, int8_inputs: bool = False) -> np.ndarray:
    """Run the IR in float64. x: (batch, T) ints or (batch, T, F) floats. Returns float64.

    int8_inputs: model the int8 runtime (docs/quantization.md): every GRU/LSTM/SimpleRNN and
    Dense product quantizes its input vector at run time. Use it with the IR read back from an
    int8 file (edgegru.format.read), whose weights are the dequantized int8 ones."""
    global _INT8_INPUTS
    previous, _INT8_INPUTS = _INT8_INPUTS, int8_inputs
    try:
        return _forward(model, np.asarray(x))
    finally:
        _INT8_INPUTS = previous


def _forward(model: ir.Model, x: np.ndarray) -> np.ndarray:
    mask = None
    if model.input.kind == ir.TOKENS:
        ids = x.astype(np.int64)
        if ids.min(initial=0) < 0 or ids.max(initial=0) >= model.input.dim:
            raise ValueError("token id out of range")
        y = None
    else:
        y = x.astype(np.float64)
    for layer in model.layers:
        layer_mask = mask if getattr(layer, "masked", False) else None
        if isinstance(layer, ir.Embedding):
            y = _f64(layer.table)[ids]
            mask = ids != 0 if layer.mask_zero else None
        elif isinstance(layer, ir.Masking):
            mask = np.any(y != np.float32(layer.mask_value), axis=-1)
            y = np.where(mask[..., None], y, 0.0)
        elif isinstance(layer, (*ir.RECURRENT, ir.Bidirectional)):
            y = _run_recurrent(layer, y, layer_mask)
            if not layer.return_sequences:
                mask = None
        elif isinstance(layer, ir.Dense):
            y = ACTIVATIONS[layer.activation](_qin(y) @ _f64(layer.kernel) + _f64(layer.bias))
        elif isinstance(layer, ir.Conv1D):
            y, mask = conv1d(layer, y), None
        elif isinstance(layer, ir.GlobalPool):
            if layer.kind == "average":
                if layer_mask is None:
                    y = y.mean(axis=1)
                else:
                    m = layer_mask[..., None].astype(np.float64)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        y = (y * m).sum(axis=1) / m.sum(axis=1)
            elif layer_mask is None:
                y = y.max(axis=1)
            else:
                y = np.where(layer_mask[..., None], y, -np.inf).max(axis=1)
            mask = None
        elif isinstance(layer, ir.Affine):
            y = y * _f64(layer.scale) + _f64(layer.shift)
        elif isinstance(layer, ir.LayerNorm):
            mean = y.mean(axis=-1, keepdims=True)
            var = ((y - mean) ** 2).mean(axis=-1, keepdims=True)
            y = (y - mean) / np.sqrt(var + layer.epsilon) * _f64(layer.gamma) + _f64(layer.beta)
        elif isinstance(layer, ir.Activation):
            y = ACTIVATIONS[layer.activation](y)
        elif isinstance(layer, ir.Flatten):
            if y.shape[1] != layer.steps:
                raise ValueError(f"Flatten expects {layer.steps} steps, got {y.shape[1]}")
            y, mask = y.reshape(y.shape[0], -1), None
        else:  # pragma: no cover - ir.Model.check rejects this first
            raise TypeError(type(layer).__name__)
    return y
