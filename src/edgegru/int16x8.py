"""The int16x8 integer-only scheme (docs/quantization.md, "int16x8"), emulated in numpy.

This module is the specification of the scheme: every run-time value is an integer (int64 numpy
arrays here), computed with exactly the operations the documentation lists, so the C kernels
that will implement it must give the same integers. Floats appear only where the specification
puts them: at conversion (scales, multipliers, biases, calibration) and at the model boundary
(quantizing float inputs, dequantizing outputs).

`quantize(ir_model, calibration)` builds the integer model in memory, `forward_int(qmodel, x)`
runs it; `from_blob(blob)` reads the one an int16x8 `.egru` file holds (the C runtime computes the
same integers, bit for bit, in every kernel set).

Layers covered: Embedding (mask_zero), Masking (first layer), GRU (both reset modes), LSTM,
SimpleRNN (go_backwards, masks, bounded or unbounded activations), Bidirectional (every merge
mode), Dense and Activation (every activation), Conv1D (every padding, strides, dilation),
GlobalPool (average, max; masked), Flatten, Affine (folded normalisations) and LayerNorm. GRU and
LSTM gates must be bounded (sigmoid, hard_sigmoid, tanh, softsign): others raise
`NotImplementedError` naming the layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import ir, reference
from .quantize import quantize_rows

#: int16 tensors use the symmetric range [-32767, 32767] (-32768 is never produced).
QMAX = 32767
#: 1.0 in the unit format U (scale 2^-15), the outputs of sigmoid, tanh and the gates.
ONE = 1 << 15
#: The gate domain G: int32 with scale 2^-16, saturated to +-2^30 after every addition.
G_SHIFT = 16
G_SAT = 1 << 30
#: Widest product whose int32 accumulator cannot overflow: 127 * 32767 * 516 < 2^31.
INT32_COLS = 516
#: Activations whose outputs lie in [-1, 1] (unit format U); the others stay in G.
BOUNDED = frozenset({"sigmoid", "tanh", "hard_sigmoid", "softsign", "softmax"})
#: Calibration when the caller gives none: this many random sequences of DEFAULT_STEPS steps.
DEFAULT_CALIBRATION_SEQUENCES = 256
DEFAULT_STEPS = 16


# --- integer primitives -------------------------------------------------------------------


def _i64(v) -> np.ndarray:
    return np.asarray(v, dtype=np.int64)


def rshift(v, n) -> np.ndarray:
    """floor((v + 2^(n-1)) / 2^n): an arithmetic shift right by n (0..62) rounding half up; v for
    n = 0. n may be an array (per row). Computed as floor(v / 2^n) + bit n-1 of v, which never
    forms v + 2^(n-1) (that sum overflows int64 for |v| near 2^63)."""
    v, n = _i64(v), _i64(n)
    m1 = np.maximum(n - 1, 0)
    rounded = np.right_shift(v, m1 + 1) + (np.right_shift(v, m1) & 1)
    return np.where(n > 0, rounded, v)


def sat16(v) -> np.ndarray:
    return np.clip(_i64(v), -QMAX, QMAX)


def sat_g(v) -> np.ndarray:
    return np.clip(_i64(v), -G_SAT, G_SAT)


@dataclass(frozen=True)
class Multiplier:
    """A real M > 0 as m * 2^-n, m in [2^30, 2^31) (or (0, 0) below 2^-31), n in [0, 62]."""

    m: int
    n: int

    @staticmethod
    def from_real(real: float, what: str = "multiplier") -> Multiplier:
        real = float(real)
        if not np.isfinite(real) or real < 0:
            raise ValueError(f"{what}: {real} is not a finite non-negative multiplier")
        if real == 0.0:
            return Multiplier(0, 0)
        f, e = np.frexp(real)
        m = int(np.rint(f * 2.0**31))
        if m == 1 << 31:
            m, e = 1 << 30, e + 1
        n = 31 - int(e)
        if n > 62:
            return Multiplier(0, 0)
        if n < 0:
            raise ValueError(f"{what}: {real} is too large for int16x8 (>= 2^31)")
        return Multiplier(m, n)


def _multipliers(reals, what: str) -> tuple[np.ndarray, np.ndarray]:
    ms = [Multiplier.from_real(r, what) for r in np.asarray(reals, dtype=np.float64).ravel()]
    return _i64([x.m for x in ms]), _i64([x.n for x in ms])


def mul(v, m, n) -> np.ndarray:
    """rshift(v * m, n), the product exact. int64 holds it when |v| < 2^32; beyond, the emulation
    computes with Python integers (the C kernels with a 64 x 32-bit product)."""
    v = _i64(v)
    if v.size and int(np.max(np.abs(v))) >= 1 << 32:
        m_b, n_b = np.broadcast_to(_i64(m), v.shape), np.broadcast_to(_i64(n), v.shape)
        flat = [
            (int(a) * int(b) + ((1 << (int(c) - 1)) if c > 0 else 0)) >> int(c)
            for a, b, c in zip(v.ravel(), m_b.ravel(), n_b.ravel(), strict=True)
        ]
        return _i64(flat).reshape(v.shape)
    return rshift(v * _i64(m), n)


# --- activation tables (fixed by the specification) -----------------------------------------

_K = np.arange(513, dtype=np.float64)
#: SIG[k] = rint(32768 sigmoid(k / 32)), k = 0..512
SIG = _i64(np.rint(ONE / (1.0 + np.exp(-_K / 32.0))))
#: TANH[k] = rint(32768 tanh(k / 64)), k = 0..512
TANH = _i64(np.rint(ONE * np.tanh(_K / 64.0)))
#: P2[j] = rint(32768 * 2^(-j / 256)), j = 0..256
P2 = _i64(np.rint(ONE * 2.0 ** (-np.arange(257, dtype=np.float64) / 256.0)))
#: LOG1PEXP[k] = rint(2^16 log(1 + e^(k / 16 - 16))), k = 0..512
LOG1PEXP = _i64(np.rint(2.0**G_SHIFT * np.logaddexp(0.0, _K / 16.0 - 16.0)))
_LOG2E = Multiplier.from_real(1.0 / np.log(2.0))
_FIFTH = Multiplier.from_real(0.2)
_TWELFTH = Multiplier.from_real(1.0 / 12.0)


def _interp(table, a, frac_bits):
    k, f = a >> frac_bits, a & ((1 << frac_bits) - 1)
    return table[k] + rshift((table[k + 1] - table[k]) * f, frac_bits)


def sigmoid(g) -> np.ndarray:
    """G -> U."""
    g = _i64(g)
    y = _interp(SIG, np.minimum(np.abs(g), (1 << 20) - 1), 11)
    return np.where(g < 0, ONE - y, y)


def tanh(g) -> np.ndarray:
    """G -> U."""
    g = _i64(g)
    y = _interp(TANH, np.minimum(np.abs(g), (1 << 19) - 1), 10)
    return np.where(g < 0, -y, y)


def exp_neg(d) -> np.ndarray:
    """e^(d / 2^16) in U for d <= 0 in G."""
    t = mul(-_i64(d), _LOG2E.m, _LOG2E.n)
    k, f = t >> 16, t & 0xFFFF
    p = _interp(P2, f, 8)
    return np.where(k > 15, 0, rshift(p, np.minimum(k, 62)))


def _softsign(g):
    a = np.abs(g)
    d = (1 << G_SHIFT) + a
    return np.sign(g) * ((a * ONE + d // 2) // d)


def _softplus(g):
    a = np.clip(g + (16 << G_SHIFT), 0, (32 << G_SHIFT) - 1)
    y = _interp(LOG1PEXP, a, 12)
    return np.where(g >= 16 << G_SHIFT, g, np.where(g < -(16 << G_SHIFT), 0, y))


def _softmax(g):
    d = g - g.max(axis=-1, keepdims=True)
    e = exp_neg(d)
    s = e.sum(axis=-1, keepdims=True)
    return (e * ONE + s // 2) // s


def activate(name: str, g) -> np.ndarray:
    """An activation of G values: U for the BOUNDED ones, G for the others."""
    g = _i64(g)
    if name == "linear":
        return g
    if name == "relu":
        return np.maximum(g, 0)
    if name == "leaky_relu":
        return np.where(g >= 0, g, mul(g, _FIFTH.m, _FIFTH.n))
    if name == "sigmoid":
        return sigmoid(g)
    if name == "tanh":
        return tanh(g)
    if name == "hard_sigmoid":
        return np.clip(mul(g + 3 * (1 << G_SHIFT), _TWELFTH.m, _TWELFTH.n), 0, ONE)
    if name == "softsign":
        return _softsign(g)
    if name == "elu":
        return np.where(g >= 0, g, exp_neg(np.minimum(g, 0)) * 2 - (1 << G_SHIFT))
    if name == "softplus":
        return _softplus(g)
    if name == "softmax":
        return _softmax(g)
    raise ValueError(f"activation {name!r} has no int16x8 definition")


# --- quantized layers -----------------------------------------------------------------------


def _scale(r: float) -> np.float32:
    """The int16 scale of a calibrated range: R / 32767 in float32 (2^-15 for R = 0)."""
    return np.float32(r / QMAX) if r > 0 else np.float32(2.0**-15)


@dataclass
class Product:
    """y = W x + b into G (or into an int16 scale): S8 rows, per-row multipliers, int32 bias."""

    q: np.ndarray  # (rows, cols) int8 values as int64
    m: np.ndarray
    n: np.ndarray
    bias: np.ndarray  # (rows,) in the output format

    @staticmethod
    def build(w_cols: np.ndarray, bias, in_scale, out_scale, what: str) -> Product:
        """w_cols: the IR's (cols, rows) kernel (x @ w). out_scale: the output's scale (2^-16
        for G)."""
        q, s = quantize_rows(np.asarray(w_cols, dtype=np.float32).T)
        real = s.astype(np.float64) * np.float64(in_scale) / np.float64(out_scale)
        m, n = _multipliers(real, what)
        b = np.zeros(q.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
        b = np.rint(b.astype(np.float32).astype(np.float64) / np.float64(out_scale))
        return Product(_i64(q), m, n, sat_g(b))

    def __call__(self, x) -> np.ndarray:
        acc = _i64(x) @ self.q.T
        return sat_g(mul(acc, self.m, self.n) + self.bias)


def out_multiplier(fmt: str, scale, what: str) -> Multiplier:
    """The conversion of a layer's output to its int16 tensor: G -> scale by 2^-16 / scale;
    (0, 0) for U (stored with sat16)."""
    if fmt == "U":
        return Multiplier(0, 0)
    return Multiplier.from_real(2.0**-G_SHIFT / float(scale), what)


def _to_int16(v, fmt: str, mult: Multiplier) -> np.ndarray:
    """A U or G value to an int16 tensor (U: at 2^-15, with sat16; G: with `mult`)."""
    if fmt == "U":
        return sat16(v)
    return sat16(mul(v, mult.m, mult.n))


@dataclass
class QRecurrent:
    layer: object
    kind: str  # "gru", "lstm", "rnn"
    wx: Product
    wh: Product
    in_scale: np.float32
    state_scale: np.float32
    state_mult: Multiplier  # G -> the state's int16 (unbounded activations; (0, 0) for U)

    @property
    def out_scale(self):
        return self.state_scale


_G = np.float32(2.0**-G_SHIFT)


def _act_fmt(name: str) -> str:
    return "U" if name in BOUNDED else "G"


def _build_recurrent(layer, in_scale, state_range: float) -> QRecurrent:
    kind = {ir.GRU: "gru", ir.LSTM: "lstm", ir.SimpleRNN: "rnn"}[type(layer)]
    if kind in ("gru", "lstm") and _act_fmt(layer.recurrent_activation) != "U":
        raise NotImplementedError(
            f"{type(layer).__name__} {layer.name!r}: recurrent_activation="
            f"{layer.recurrent_activation!r} is unbounded; int16x8 gates must be bounded"
        )
    bounded = _act_fmt(layer.activation) == "U"
    state_scale = np.float32(2.0**-15) if bounded else _scale(state_range)
    if kind == "gru":
        wx = Product.build(layer.kernel, layer.input_bias, in_scale, _G, f"{layer.name} kernel")
        wh = Product.build(
            layer.recurrent_kernel, layer.recurrent_bias, state_scale, _G, f"{layer.name} rec"
        )
    else:
        wx = Product.build(layer.kernel, layer.bias, in_scale, _G, f"{layer.name} kernel")
        wh = Product.build(layer.recurrent_kernel, None, state_scale, _G, f"{layer.name} rec")
    fmt = _act_fmt(layer.activation)
    mult = out_multiplier(fmt, state_scale, f"{layer.name} state scale")
    return QRecurrent(layer, kind, wx, wh, in_scale, state_scale, mult)


def _gru_step(q: QRecurrent, x, h):
    layer, units = q.layer, q.layer.units
    f, act = layer.recurrent_activation, layer.activation
    gx, gh = q.wx(x), None
    if layer.reset_after:
        gh = q.wh(h)
        z = activate(f, sat_g(gx[:, :units] + gh[:, :units]))
        r = activate(f, sat_g(gx[:, units : 2 * units] + gh[:, units : 2 * units]))
        n = sat_g(gx[:, 2 * units :] + sat_g(rshift(r * gh[:, 2 * units :], 15)))
    else:
        hz = q.wh.q[: 2 * units]
        acc = h @ hz.T
        gh = sat_g(mul(acc, q.wh.m[: 2 * units], q.wh.n[: 2 * units]) + q.wh.bias[: 2 * units])
        z = activate(f, sat_g(gx[:, :units] + gh[:, :units]))
        r = activate(f, sat_g(gx[:, units : 2 * units] + gh[:, units:]))
        rh = sat16(rshift(r * h, 15))
        acc = rh @ q.wh.q[2 * units :].T
        ghh = sat_g(mul(acc, q.wh.m[2 * units :], q.wh.n[2 * units :]) + q.wh.bias[2 * units :])
        n = sat_g(gx[:, 2 * units :] + ghh)
    hh = _to_int16(activate(act, n), _act_fmt(act), q.state_mult)
    return sat16(rshift(z * h + (ONE - z) * hh, 15))


def _lstm_step(q: QRecurrent, x, state):
    h, c = state
    layer, units = q.layer, q.layer.units
    f, act = layer.recurrent_activation, layer.activation
    a = sat_g(q.wx(x) + q.wh(h))
    i = activate(f, a[:, :units])
    fg = activate(f, a[:, units : 2 * units])
    g = activate(act, a[:, 2 * units : 3 * units])
    o = activate(f, a[:, 3 * units :])
    ig = rshift(i * g, 14) if _act_fmt(act) == "U" else rshift(i * g, 15)
    c = sat_g(rshift(fg * c, 15) + ig)
    ac = activate(act, c)
    if _act_fmt(act) == "U":
        h = sat16(rshift(o * ac, 15))
    else:
        h = _to_int16(rshift(o * ac, 15), "G", q.state_mult)
    return h, c


def _rnn_step(q: QRecurrent, x, h):
    act = q.layer.activation
    return _to_int16(activate(act, sat_g(q.wx(x) + q.wh(h))), _act_fmt(act), q.state_mult)


def _run_recurrent(q: QRecurrent, x, mask, *, reverse=None, zero_masked=False, align=False):
    """x: (batch, T, I) int16 values at q.in_scale. Follows reference.recurrent's masking and its
    options (reverse: default go_backwards; zero_masked, align: a Bidirectional direction).
    Returns (outputs (batch, T, H), the final h)."""
    layer = q.layer
    batch, steps, _ = x.shape
    units = layer.units
    reverse = layer.go_backwards if reverse is None else reverse
    h = np.zeros((batch, units), dtype=np.int64)
    state = (h, h.copy()) if q.kind == "lstm" else h
    seen = np.zeros((batch, 1), dtype=bool)
    outs = np.zeros((batch, steps, units), dtype=np.int64)
    step = {"gru": _gru_step, "lstm": _lstm_step, "rnn": _rnn_step}[q.kind]
    for p in range(steps):
        t = steps - 1 - p if reverse else p
        new = step(q, x[:, t], state)
        valid = np.ones((batch, 1), dtype=bool) if mask is None else mask[:, t : t + 1]
        if q.kind == "lstm":
            state = (np.where(valid, new[0], state[0]), np.where(valid, new[1], state[1]))
        else:
            state = np.where(valid, new, state)
        seen |= valid
        hs = state[0] if q.kind == "lstm" else state
        outs[:, t if align else p] = np.where(valid if zero_masked else seen, hs, 0)
    return outs, (state[0] if q.kind == "lstm" else state)


@dataclass
class QBidirectional:
    """Two directions at one state scale (so that concat needs no rescaling), then the merge:
    concat exact; sum, ave, mul to the calibrated output scale with `merge` (docs/quantization.md,
    "Layers")."""

    layer: object
    fwd: QRecurrent
    bwd: QRecurrent
    merge: Multiplier  # (0, 0) for concat
    out_scale: np.float32

    @property
    def state_scale(self):
        return self.fwd.state_scale


def merge_multiplier(mode: str, state_scale, out_scale) -> Multiplier:
    """The Bidirectional merge's multiplier: sum s / s_out, ave s / (2 s_out), mul s^2 / s_out."""
    s, so = np.float64(state_scale), np.float64(out_scale)
    real = {"concat": 0.0, "sum": s / so, "ave": s / (2.0 * so), "mul": s * s / so}[mode]
    return Multiplier.from_real(real, "Bidirectional merge")


def _merge(mode: str, mult: Multiplier, a, b) -> np.ndarray:
    if mode == "concat":
        return np.concatenate([a, b], axis=-1)
    v = a * b if mode == "mul" else a + b
    return sat16(mul(v, mult.m, mult.n))


def _run_bidirectional(q: QBidirectional, x, mask):
    fwd, fs = _run_recurrent(q.fwd, x, mask, reverse=False, zero_masked=True, align=True)
    bwd, bs = _run_recurrent(q.bwd, x, mask, reverse=True, zero_masked=True, align=True)
    if not q.layer.return_sequences:
        fwd, bwd = fs, bs
    return _merge(q.layer.merge_mode, q.merge, fwd, bwd)


def conv1d_geometry(layer, steps: int) -> tuple[int, int]:
    """(output steps, left padding) of a Conv1D over `steps` steps (reference.conv1d's)."""
    k, s, d = layer.kernel_size, layer.strides, layer.dilation_rate
    eff = d * (k - 1) + 1
    out_steps = layer.out_steps(steps)
    if layer.padding == "causal":
        left = eff - 1
    elif layer.padding == "same":
        left = max((out_steps - 1) * s + eff - steps, 0) // 2
    else:
        left = 0
    return out_steps, left


def _conv_windows(layer, y) -> np.ndarray:
    """(batch, T_out, kernel_size * in): each output position's window, step-major, 0 outside."""
    batch, steps, cin = y.shape
    out_steps, left = conv1d_geometry(layer, steps)
    if out_steps == 0:
        raise ValueError(
            f"Conv1D {layer.name!r}: {steps} steps are too few for kernel_size "
            f"{layer.kernel_size} with padding 'valid'"
        )
    k, s, d = layer.kernel_size, layer.strides, layer.dilation_rate
    win = np.zeros((batch, out_steps, k, cin), dtype=np.int64)
    for t in range(out_steps):
        for j in range(k):
            src = t * s + j * d - left
            if 0 <= src < steps:
                win[:, t, j] = y[:, src]
    return win.reshape(batch, out_steps, k * cin)


#: LayerNorm's largest W = V + E (its sum of squares plus the scaled epsilon): 2^62 - 1.
W_MAX = (1 << 62) - 1


def layer_norm_unit(x, e) -> np.ndarray:
    """The normalized steps of a LayerNorm in Q30: t_j = (x_j - m) / sqrt(W) * 2^30 with m the
    mean rounded half up, W = min(sum_j (x_j - m)^2 + e, W_MAX) (0 where W = 0). The reciprocal
    square root is integer: k = (62 - bitlen(W)) >> 1, R = isqrt(W << 2k) (in [2^30, 2^31)),
    inv = floor(2^62 / R), t_j = rshift(d_j * inv, 32 - k). x: (..., C) int16 values."""
    x = _i64(x)
    c = x.shape[-1]
    mean = (2 * x.sum(axis=-1, keepdims=True) + c) // (2 * c)
    d = x - mean
    w = np.minimum((d * d).sum(axis=-1) + int(e), W_MAX)
    t = np.zeros_like(d)
    flat_w, flat_d, flat_t = w.reshape(-1), d.reshape(-1, c), t.reshape(-1, c)
    for i, wi in enumerate(flat_w.tolist()):
        if wi == 0:
            continue
        k = (62 - wi.bit_length()) >> 1
        inv = (1 << 62) // math.isqrt(wi << (2 * k))
        flat_t[i] = rshift(flat_d[i] * inv, 32 - k)
    return t


def layer_norm_epsilon(epsilon: float, c: int, in_scale) -> int:
    """E = rint(C * epsilon / s_x^2), the epsilon in the units of the sum of squares, capped at
    W_MAX."""
    e = np.rint(np.float64(c) * np.float64(np.float32(epsilon)) / np.float64(in_scale) ** 2)
    return int(min(e, W_MAX))


def _signed_multipliers(real, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature multipliers that carry their sign (Affine, LayerNorm): (+-m, n)."""
    real = np.asarray(real, np.float64)
    m, n = _multipliers(np.abs(real), what)
    return np.where(real < 0, -m, m), n


def _pool(kind: str, y, mask) -> np.ndarray:
    """GlobalPool of int16 values at one scale: max, or the mean rounded half up, over the valid
    steps (0 when none is valid)."""
    valid = np.ones(y.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    n = valid.sum(axis=1)[:, None].astype(np.int64)
    if kind == "max":
        top = np.where(valid[..., None], y, -QMAX).max(axis=1)
        return np.where(n > 0, top, 0)
    total = np.where(valid[..., None], y, 0).sum(axis=1)
    return np.where(n > 0, (2 * total + n) // np.maximum(2 * n, 1), 0)


@dataclass
class QModel:
    """An int16x8 model: the IR, its calibrated ranges and the integer layers."""

    model: ir.Model
    input_scale: np.float32
    layers: list
    output_scale: np.float32
    ranges: dict


def _unsupported(layer) -> NotImplementedError:
    return NotImplementedError(
        f"int16x8: layer {type(layer).__name__} {getattr(layer, 'name', '')!r} is not covered "
        "by the emulation yet (issue #12)"
    )


def _trace(model: ir.Model, x) -> dict:
    """Calibration: the largest |value| of every tensor of the float64 reference on x."""
    ranges = {}
    x = np.asarray(x)

    def note(key, v):
        v = np.abs(np.asarray(v, dtype=np.float64))
        ranges[key] = max(ranges.get(key, 0.0), float(v.max(initial=0.0)))

    def note_candidate(cell, key, xs, outs):
        """A GRU's candidate is converted to the state's scale: with an unbounded activation,
        calibrate on it too, so that it does not saturate where the state (a mix of it and the
        old state) does not. xs, outs: in processing order."""
        if isinstance(cell, ir.GRU) and _act_fmt(cell.activation) == "G":
            prev = np.concatenate([np.zeros_like(outs[:, :1]), outs[:, :-1]], axis=1)
            note((key, "state"), reference.gru_candidate(cell, xs, prev))

    mask = None
    if model.input.kind == ir.TOKENS:
        ids, y = x.astype(np.int64), None
    else:
        y = x.astype(np.float64)
        note("input", y)
    for layer in model.layers:
        layer_mask = mask if getattr(layer, "masked", False) else None
        if isinstance(layer, ir.Embedding):
            y = np.asarray(layer.table, dtype=np.float64)[ids]
            mask = ids != 0 if layer.mask_zero else None
        elif isinstance(layer, ir.Masking):
            mask = np.any(y != np.float32(layer.mask_value), axis=-1)
            y = np.where(mask[..., None], y, 0.0)
        elif isinstance(layer, ir.RECURRENT):
            outs, _ = reference.recurrent(layer, y, layer_mask)
            note((id(layer), "state"), outs)
            xs = y[:, ::-1] if layer.go_backwards else y
            note_candidate(layer, id(layer), xs, outs)
            y = outs if layer.return_sequences else outs[:, -1]
            if not layer.return_sequences:
                mask = None
        elif isinstance(layer, ir.Bidirectional):
            opts = {"zero_masked": True, "align": True}
            fo, _ = reference.recurrent(layer.forward, y, layer_mask, reverse=False, **opts)
            bo, _ = reference.recurrent(layer.backward, y, layer_mask, reverse=True, **opts)
            note((id(layer), "state"), fo)  # one state scale for both directions
            note((id(layer), "state"), bo)
            note_candidate(layer.forward, id(layer), y, fo)
            note_candidate(layer.backward, id(layer), y[:, ::-1], bo[:, ::-1])
            y = reference._run_recurrent(layer, y, layer_mask)
            if not layer.return_sequences:
                mask = None
        elif isinstance(layer, ir.Dense):
            y = reference.ACTIVATIONS[layer.activation](
                y @ np.asarray(layer.kernel, np.float64) + np.asarray(layer.bias, np.float64)
            )
        elif isinstance(layer, ir.Conv1D):
            y, mask = reference.conv1d(layer, y), None
        elif isinstance(layer, ir.GlobalPool):
            valid = np.ones(y.shape[:2], bool) if layer_mask is None else layer_mask
            if layer.kind == "max":
                y = np.where(valid[..., None], y, -np.inf).max(axis=1)
            else:
                y = (
                    np.where(valid[..., None], y, 0.0).sum(axis=1)
                    / np.maximum(valid.sum(axis=1), 1)[:, None]
                )
            y, mask = np.where(np.isfinite(y), y, 0.0), None
        elif isinstance(layer, ir.Affine):
            y = y * np.asarray(layer.scale, np.float64) + np.asarray(layer.shift, np.float64)
        elif isinstance(layer, ir.Activation):
            y = reference.ACTIVATIONS[layer.activation](y)
        elif isinstance(layer, ir.LayerNorm):
            mean = y.mean(axis=-1, keepdims=True)
            var = ((y - mean) ** 2).mean(axis=-1, keepdims=True)
            y = (y - mean) / np.sqrt(var + layer.epsilon) * np.asarray(
                layer.gamma, np.float64
            ) + np.asarray(layer.beta, np.float64)
        elif isinstance(layer, ir.Flatten):
            if y.shape[1] != layer.steps:
                raise ValueError(
                    f"calibration: Flatten {layer.name!r} expects {layer.steps} steps, the "
                    f"calibration inputs have {y.shape[1]}"
                )
            y, mask = y.reshape(y.shape[0], -1), None
        else:
            raise _unsupported(layer)
        note((id(layer), "out"), y)
    return ranges


def default_calibration(model: ir.Model, seed: int = 0) -> np.ndarray:
    """The inputs calibrated on when the caller gives none (docs/quantization.md)."""
    rng = np.random.default_rng(seed)
    steps = model.input.seq_len or DEFAULT_STEPS
    shape = (DEFAULT_CALIBRATION_SEQUENCES, steps)
    if model.input.kind == ir.TOKENS:
        return rng.integers(0, model.input.dim, size=shape)
    return rng.standard_normal((*shape, model.input.dim)).astype(np.float32)


def quantize(model: ir.Model, calibration=None) -> QModel:
    """The int16x8 model of an IR model, its ranges calibrated on `calibration` (inputs as
    `predict` takes them; default_calibration when None)."""
    model.check()
    x = default_calibration(model) if calibration is None else np.asarray(calibration)
    with np.errstate(over="ignore"):  # e.g. exp(-x) of sigmoid overflows to inf: y = 0, exact
        ranges = _trace(model, x)
    scale = _scale(ranges["input"]) if model.input.kind == ir.FEATURES else None
    input_scale, layers = scale, []
    for layer in model.layers:
        if isinstance(layer, ir.Embedding):
            out = _scale(ranges[id(layer), "out"])
            q, s = quantize_rows(layer.table)
            m, n = _multipliers(s.astype(np.float64) / np.float64(out), f"{layer.name} table")
            layers.append(("embedding", layer, (_i64(q), m, n, out)))
            scale = out
        elif isinstance(layer, ir.Masking):
            if layers or model.input.kind != ir.FEATURES:
                raise NotImplementedError(
                    f"int16x8: Masking {layer.name!r} must be the first layer (it compares the "
                    "caller's float features with mask_value before quantization)"
                )
            layers.append(("masking", layer, None))
        elif isinstance(layer, ir.RECURRENT):
            qr = _build_recurrent(layer, scale, ranges.get((id(layer), "state"), 0.0))
            layers.append(("recurrent", layer, qr))
            scale = qr.out_scale
        elif isinstance(layer, ir.Dense):
            prod = Product.build(layer.kernel, layer.bias, scale, _G, f"{layer.name} kernel")
            if _act_fmt(layer.activation) == "U":
                out = np.float32(2.0**-15)
            else:
                out = _scale(ranges[id(layer), "out"])
            mult = out_multiplier(_act_fmt(layer.activation), out, f"{layer.name} output scale")
            layers.append(("dense", layer, (prod, out, mult)))
            scale = out
        elif isinstance(layer, ir.Conv1D):
            k, cin, cout = layer.kernel.shape
            w = layer.kernel.reshape(k * cin, cout)  # rows: windows of k steps x in features
            prod = Product.build(w, layer.bias, scale, _G, f"{layer.name} kernel")
            fmt = _act_fmt(layer.activation)
            out = np.float32(2.0**-15) if fmt == "U" else _scale(ranges[id(layer), "out"])
            mult = out_multiplier(fmt, out, f"{layer.name} output scale")
            layers.append(("conv1d", layer, (prod, out, mult)))
            scale = out
        elif isinstance(layer, ir.Bidirectional):
            r = ranges.get((id(layer), "state"), 0.0)
            qf = _build_recurrent(layer.forward, scale, r)
            qb = _build_recurrent(layer.backward, scale, r)
            mode = layer.merge_mode
            out = qf.state_scale if mode == "concat" else _scale(ranges[id(layer), "out"])
            merge = merge_multiplier(mode, qf.state_scale, out)
            layers.append(("bidirectional", layer, QBidirectional(layer, qf, qb, merge, out)))
            scale = out
        elif isinstance(layer, (ir.GlobalPool, ir.Flatten)):  # exact, at the input's scale
            layers.append(("pool" if isinstance(layer, ir.GlobalPool) else "flatten", layer, None))
        elif isinstance(layer, ir.Activation):
            in_mult = Multiplier.from_real(np.float64(scale) * 2.0**G_SHIFT, f"{layer.name} input")
            fmt = _act_fmt(layer.activation)
            out = np.float32(2.0**-15) if fmt == "U" else _scale(ranges[id(layer), "out"])
            mult = out_multiplier(fmt, out, f"{layer.name} output scale")
            layers.append(("activation", layer, (in_mult, out, mult)))
            scale = out
        elif isinstance(layer, ir.LayerNorm):
            c = layer.units
            e = layer_norm_epsilon(layer.epsilon, c, scale)
            real = np.asarray(layer.gamma, np.float64) * np.sqrt(c) * 2.0**-14  # Q30 -> G
            m, n = _signed_multipliers(real, f"{layer.name} gamma")
            bias = sat_g(np.rint(np.asarray(layer.beta, np.float64) * 2.0**G_SHIFT))
            out = _scale(ranges[id(layer), "out"])
            mult = out_multiplier("G", out, f"{layer.name} output scale")
            layers.append(("layer_norm", layer, (e, m, n, bias, out, mult)))
            scale = out
        elif isinstance(layer, ir.Affine):
            real = np.asarray(layer.scale, np.float64) * np.float64(scale) * 2.0**G_SHIFT
            m, n = _signed_multipliers(real, f"{layer.name} scale")  # a negative scale
            bias = sat_g(np.rint(np.asarray(layer.shift, np.float64) * 2.0**G_SHIFT))
            out = _scale(ranges[id(layer), "out"])
            mult = out_multiplier("G", out, f"{layer.name} output scale")
            layers.append(("affine", layer, (m, n, bias, out, mult)))
            scale = out
        else:
            raise _unsupported(layer)
    return QModel(model, input_scale, layers, scale, ranges)


def quantize_input(qm: QModel, x) -> np.ndarray:
    """Float features (as float32, the model's input type) to the model's int16 input:
    sat16(rint(x / s_in)), the division in float64."""
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    return sat16(np.rint(x / np.float64(qm.input_scale)))


def forward_int(qm: QModel, x) -> np.ndarray:
    """Run the integer model. x: token ids (batch, T), float features (batch, T, F) (quantized
    with quantize_input; a first Masking layer compares them in float), or integer features
    already at qm.input_scale (a Masking layer compares them with mask_value_q). Returns the
    output as int16 values at qm.output_scale (int64 array)."""
    model, x = qm.model, np.asarray(x)
    mask = None
    if model.input.kind == ir.TOKENS:
        ids, y = x.astype(np.int64), None
        if ids.min(initial=0) < 0 or ids.max(initial=0) >= model.input.dim:
            raise ValueError("token id out of range")
    elif np.issubdtype(x.dtype, np.integer):  # int16 features given directly
        y = sat16(x)  # -32768 reads as -32767, as in the C runtime
        raw = None
    else:
        y = quantize_input(qm, x)
        raw = np.asarray(x, dtype=np.float32)
    for kind, layer, p in qm.layers:
        layer_mask = mask if getattr(layer, "masked", False) else None
        if kind == "embedding":
            q, m, n, _out = p
            y = sat16(mul(q[ids], m[ids][..., None], n[ids][..., None]))
            mask = ids != 0 if layer.mask_zero else None
        elif kind == "masking":
            if raw is None:  # int16 input: against the quantized mask value
                mask = np.any(y != mask_value_q(qm), axis=-1)
            else:  # float input: Keras' comparison, before quantization
                mask = np.any(raw != np.float32(layer.mask_value), axis=-1)
            y = np.where(mask[..., None], y, 0)
        elif kind == "recurrent":
            outs, last = _run_recurrent(p, y, layer_mask)
            y = outs if layer.return_sequences else last
            if not layer.return_sequences:
                mask = None
        elif kind == "bidirectional":
            y = _run_bidirectional(p, y, layer_mask)
            if not layer.return_sequences:
                mask = None
        elif kind in ("dense", "conv1d"):
            prod, _out, mult = p
            if kind == "conv1d":
                y, mask = _conv_windows(layer, y), None
            g = prod(y.reshape(-1, y.shape[-1])).reshape(*y.shape[:-1], -1)
            fmt = _act_fmt(layer.activation)
            y = _to_int16(activate(layer.activation, g), fmt, mult)
        elif kind == "pool":
            y, mask = _pool(layer.kind, y, layer_mask), None
        elif kind == "flatten":
            if y.shape[1] != layer.steps:
                raise ValueError(f"Flatten expects {layer.steps} steps, got {y.shape[1]}")
            y, mask = y.reshape(y.shape[0], -1), None
        elif kind == "activation":
            in_mult, _out, mult = p
            g = sat_g(mul(y, in_mult.m, in_mult.n))
            y = _to_int16(activate(layer.activation, g), _act_fmt(layer.activation), mult)
        elif kind == "affine":
            m, n, bias, _out, mult = p
            y = _to_int16(sat_g(mul(y, m, n) + bias), "G", mult)
        elif kind == "layer_norm":
            e, m, n, bias, _out, mult = p
            y = _to_int16(sat_g(mul(layer_norm_unit(y, e), m, n) + bias), "G", mult)
    return y


def forward(qm: QModel, x) -> np.ndarray:
    """forward_int, dequantized to float64 (the host convenience layer)."""
    return forward_int(qm, x).astype(np.float64) * np.float64(qm.output_scale)


def mask_value_q(qm: QModel) -> int:
    """The int16 value of a Masking layer's mask_value at the input scale (0 without one)."""
    for kind, layer, _p in qm.layers:
        if kind == "masking":
            v = np.float64(np.float32(layer.mask_value)) / np.float64(qm.input_scale)
            return int(sat16(np.rint(np.clip(v, -2.0 * QMAX, 2.0 * QMAX))))
    return 0


# --- the file's QPARAMS tensors (docs/format.md, "Integer-only files") ----------------------

#: Words before the per-product arrays of a QPARAMS tensor.
QPARAMS_HEADER = 8


def _bits(x) -> int:
    """float32 bits of x as a signed int32 (what an S32 word holds)."""
    return int(np.array(np.float32(0.0 if x is None else x)).view(np.int32))


def _from_bits(v) -> np.float32:
    return np.array(int(v), dtype=np.int32).view(np.float32)[()]


def _product_words(prod: Product) -> list:
    return [prod.m, prod.n, prod.bias]


def layer_qparams(qm: QModel) -> list[tuple[np.ndarray, list]]:
    """Per layer of qm: (its QPARAMS words as int32, the int8 matrices of its S8 tensors in
    tensor order). The matrices are those the words' multipliers were computed for."""
    out = []
    in_scale = qm.input_scale
    for kind, layer, p in qm.layers:
        head = [0] * QPARAMS_HEADER
        arrays, mats = [], []
        if kind == "embedding":
            q, m, n, scale = p
            head[1] = _bits(scale)
            arrays, mats = [m, n, np.zeros_like(m)], [q]
        elif kind == "masking":
            scale = in_scale
            head[0] = head[1] = _bits(scale)
            head[5] = mask_value_q(qm)
        elif kind == "recurrent":
            scale = p.state_scale
            fmt = _act_fmt(layer.activation)
            head[:5] = [_bits(in_scale), _bits(scale), p.state_mult.m, p.state_mult.n, fmt == "U"]
            arrays = _product_words(p.wx) + _product_words(p.wh)
            mats = [p.wx.q, p.wh.q]
        elif kind in ("dense", "conv1d"):
            prod, scale, mult = p
            fmt = _act_fmt(layer.activation)
            head[:5] = [_bits(in_scale), _bits(scale), mult.m, mult.n, fmt == "U"]
            arrays, mats = _product_words(prod), [prod.q]
        elif kind in ("pool", "flatten"):
            scale = in_scale
            head[0] = head[1] = _bits(scale)
        elif kind == "activation":
            in_mult, scale, mult = p
            fmt = _act_fmt(layer.activation)
            head[:5] = [_bits(in_scale), _bits(scale), mult.m, mult.n, fmt == "U"]
            head[6:8] = [in_mult.m, in_mult.n]
        elif kind == "affine":
            m, n, bias, scale, mult = p
            head[:4] = [_bits(in_scale), _bits(scale), mult.m, mult.n]
            arrays = [m, n, bias]
        elif kind == "layer_norm":  # words 6, 7: E = w6 * 2^31 + w7
            e, m, n, bias, scale, mult = p
            head[:4] = [_bits(in_scale), _bits(scale), mult.m, mult.n]
            head[6:8] = [e >> 31, e & 0x7FFFFFFF]
            arrays = [m, n, bias]
        else:  # bidirectional: two recurrent blocks, forward then backward
            scale, fmt = p.out_scale, _act_fmt(layer.forward.activation)
            sm = p.fwd.state_mult
            head = [_bits(in_scale), _bits(scale), sm.m, sm.n, fmt == "U"]
            head += [_bits(p.state_scale), p.merge.m, p.merge.n]
            for q in (p.fwd, p.bwd):
                arrays += [_i64(head)] if q is p.bwd else []
                arrays += _product_words(q.wx) + _product_words(q.wh)
                mats += [q.wx.q, q.wh.q]
        words = np.concatenate([_i64(head)] + [_i64(a) for a in arrays]).astype(np.int32)
        out.append((words, mats))
        in_scale = scale
    return out


def _products(words, mats) -> list:
    """The Products of a QPARAMS tensor's arrays (`words` after the header) and its matrices."""
    prods, pos = [], 0
    for q in mats:
        r = q.shape[0]
        q = np.reshape(q, (r, -1))  # a Conv1D kernel is (out, kernel_size, in)
        m, n, b = (
            words[pos : pos + r],
            words[pos + r : pos + 2 * r],
            words[pos + 2 * r : pos + 3 * r],
        )
        prods.append(Product(_i64(q), m, n, b))
        pos += 3 * r
    return prods


def from_qparams(model: ir.Model, stored: list[tuple[np.ndarray, list]]) -> QModel:
    """The QModel of a file's layers: `stored` holds, per layer, its QPARAMS words and the int8
    matrices of its S8 tensors (edgegru.format.read_int16x8). The inverse of layer_qparams."""
    layers = []
    input_scale = None
    scale = None
    for k, (layer, (words, mats)) in enumerate(zip(model.layers, stored, strict=True)):
        w = _i64(words)
        head, rest = w[:QPARAMS_HEADER], w[QPARAMS_HEADER:]
        in_scale, out_scale = _from_bits(head[0]), _from_bits(head[1])
        mult = Multiplier(int(head[2]), int(head[3]))
        if k == 0 and model.input.kind == ir.FEATURES:
            input_scale = in_scale

        no_s8 = isinstance(layer, (ir.Affine, ir.LayerNorm, ir.Bidirectional))
        prods = [] if no_s8 else _products(rest, mats)
        if isinstance(layer, ir.Embedding):
            (emb,) = prods
            layers.append(("embedding", layer, (emb.q, emb.m, emb.n, out_scale)))
        elif isinstance(layer, ir.Masking):
            layers.append(("masking", layer, None))
        elif isinstance(layer, ir.RECURRENT):
            wx, wh = prods
            kind = {ir.GRU: "gru", ir.LSTM: "lstm", ir.SimpleRNN: "rnn"}[type(layer)]
            layers.append(
                ("recurrent", layer, QRecurrent(layer, kind, wx, wh, in_scale, out_scale, mult))
            )
        elif isinstance(layer, (ir.Dense, ir.Conv1D)):
            (prod,) = prods
            kind = "dense" if isinstance(layer, ir.Dense) else "conv1d"
            layers.append((kind, layer, (prod, out_scale, mult)))
        elif isinstance(layer, ir.GlobalPool):
            layers.append(("pool", layer, None))
        elif isinstance(layer, ir.Flatten):
            layers.append(("flatten", layer, None))
        elif isinstance(layer, ir.Activation):
            in_mult = Multiplier(int(head[6]), int(head[7]))
            layers.append(("activation", layer, (in_mult, out_scale, mult)))
        elif isinstance(layer, (ir.Affine, ir.LayerNorm)):
            c = layer.units
            m, n, b = rest[:c], rest[c : 2 * c], rest[2 * c : 3 * c]
            if isinstance(layer, ir.Affine):
                layers.append(("affine", layer, (m, n, b, out_scale, mult)))
            else:
                e = (int(head[6]) << 31) + int(head[7])
                layers.append(("layer_norm", layer, (e, m, n, b, out_scale, mult)))
        elif isinstance(layer, ir.Bidirectional):
            half = len(w) // 2  # two blocks of one recurrent layer's layout
            fw = _products(w[QPARAMS_HEADER:half], mats[:2])
            bw = _products(w[half + QPARAMS_HEADER :], mats[2:])
            state_scale = _from_bits(head[5])
            kind = {ir.GRU: "gru", ir.LSTM: "lstm", ir.SimpleRNN: "rnn"}[type(layer.forward)]
            qf, qb = (
                QRecurrent(cell, kind, *pr, in_scale, state_scale, mult)
                for cell, pr in ((layer.forward, fw), (layer.backward, bw))
            )
            merge = Multiplier(int(head[6]), int(head[7]))
            layers.append(("bidirectional", layer, QBidirectional(layer, qf, qb, merge, out_scale)))
        else:
            raise _unsupported(layer)
        scale = out_scale
    return QModel(model, input_scale, layers, scale, {})


def from_blob(blob) -> QModel:
    """The QModel an int16x8 `.egru` file holds (the integers the runtime computes with)."""
    from . import format as fmt

    model, _meta, stored = fmt.read_int16x8(blob)
    return from_qparams(model, stored)


def to_onnx(qm: QModel, opset: int | None = None):
    """The ONNX export of an int16x8 model: a QDQ graph (docs/quantization.md, "ONNX export")."""
    from . import onnx_export

    export = getattr(onnx_export, "to_onnx_int16x8", None)
    if export is None:
        from .errors import UnsupportedError

        raise UnsupportedError(
            "the ONNX export of int16x8 models is not built yet (issue #12); convert without "
            "--onnx, or export the float32 model"
        )
    return export(qm, opset=opset)
