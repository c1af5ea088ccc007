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
        y = _check_ids(x, model.input.dim)
    else:
        y = x.astype(np.float64)
    for layer in model.layers:
        layer_mask = mask if getattr(layer, "masked", False) else None
        y, mask = _apply_layer(layer, y, mask, layer_mask)
    return y


def _check_ids(x, vocab: int) -> np.ndarray:
    ids = np.asarray(x).astype(np.int64)
    if ids.min(initial=0) < 0 or ids.max(initial=0) >= vocab:
        raise ValueError("token id out of range")
    return ids


def _apply_layer(layer, y, mask, layer_mask):
    """One layer of one input: y (ids for an Embedding), the mask the value carries and the mask
    the layer reads (None: it reads none). Returns (output, the output's mask)."""
    if isinstance(layer, ir.Embedding):
        ids = y
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
    else:  # pragma: no cover - ir.Model.check / ir.Graph.check reject this first
        raise TypeError(type(layer).__name__)
    return y, mask


# ---------------------------------------------------------------------------------------------
# Graphs (ir.Graph): the same layer code, plus initial / final states, merges, concatenation and
# RepeatVector, with Keras 3's mask rules (docs/format.md "Graphs", docs/keras-semantics.md).


def forward_graph(graph: ir.Graph, inputs, int8_inputs: bool = False) -> list:
    """Run an ir.Graph in float64. inputs: a list in graph.inputs order, or a dict keyed by the
    input names: token ids (batch, T), float sequences (batch, T, F), float vectors (batch, F).
    Returns the outputs (float64 arrays) in graph.outputs order. Every value's mask is computed
    from the rules here (written from Keras' code and measured), independently of the IR's
    `masked` flags, which are checked against them (ValueError when they disagree).
    int8_inputs: as in `forward`."""
    global _INT8_INPUTS
    previous, _INT8_INPUTS = _INT8_INPUTS, int8_inputs
    try:
        return _forward_graph(graph, inputs)
    finally:
        _INT8_INPUTS = previous


def _graph_inputs(graph: ir.Graph, inputs) -> list:
    if isinstance(inputs, dict):
        missing = [gi.name for gi in graph.inputs if gi.name not in inputs]
        if missing or len(inputs) != len(graph.inputs):
            raise ValueError(f"inputs: expected the names {[gi.name for gi in graph.inputs]}")
        inputs = [inputs[gi.name] for gi in graph.inputs]
    if isinstance(inputs, np.ndarray) and len(graph.inputs) == 1:
        inputs = [inputs]
    inputs = list(inputs)
    if len(inputs) != len(graph.inputs):
        raise ValueError(f"graph has {len(graph.inputs)} inputs, got {len(inputs)} arrays")
    out = []
    for gi, x in zip(graph.inputs, inputs, strict=True):
        x = np.asarray(x)
        rank = {ir.TOKENS: 2, ir.FEATURES: 3, ir.VECTOR: 2}[gi.kind]
        if x.ndim != rank or (gi.kind != ir.TOKENS and x.shape[-1] != gi.dim):
            raise ValueError(f"input {gi.name!r}: shape {x.shape} does not fit {gi}")
        out.append(_check_ids(x, gi.dim) if gi.kind == ir.TOKENS else x.astype(np.float64))
    return out


def _forward_graph(graph: ir.Graph, inputs) -> list:
    env = {}
    for gi, x in zip(graph.inputs, _graph_inputs(graph, inputs), strict=True):
        env[gi.name] = (x, None)
    for node in graph.nodes:
        ins = [env[v] for v in node.inputs]
        outs = _graph_node(node.layer, ins)
        if len(outs) < len(node.outputs):
            raise ValueError(f"node {node.layer.name!r}: writes {len(node.outputs)} values")
        for name, (y, mask) in zip(node.outputs, outs, strict=False):
            want = graph.values[name].masked if name in graph.values else mask is not None
            if want != (mask is not None):
                raise ValueError(
                    f"value {name!r}: the IR says masked={want}, Keras' rules say "
                    f"{mask is not None}"
                )
            env[name] = (y, mask)
    return [env[name][0] for name in graph.outputs]


def _masked_merge(mode: str, items: list):
    """Keras 3's merge layers (keras/src/layers/merging) on (value, mask) pairs."""
    xs = [x for x, _ in items]
    masks = [m for _, m in items]
    every = all(m is not None for m in masks)
    union = None
    if every:
        union = masks[0]
        for m in masks[1:]:
            union = union | m
    if mode in ("add", "average"):
        acc = xs[0]
        for x in xs[1:]:
            acc = acc + x
        if mode == "average":
            acc = acc / len(xs)
        return acc, union
    if mode == "subtract":
        return xs[0] - xs[1], union
    if mode == "multiply":
        acc = None
        for x, m in items:
            if m is not None:
                x = np.where(m[..., None], x, 1.0)
            acc = x if acc is None else acc * x
        if every:
            acc = np.where(union[..., None], acc, 0.0)
        return acc, union
    op = np.maximum if mode == "maximum" else np.minimum
    acc, acc_mask = xs[0], masks[0]
    for x, m in items[1:]:
        if m is not None:
            x = np.where(m[..., None], x, acc)
        if acc_mask is not None:
            acc = np.where(acc_mask[..., None], acc, x)
        acc_mask = acc_mask | m if (m is not None and acc_mask is not None) else None
        acc = op(acc, x)
    return acc, acc_mask


def _concatenate(axis: str, items: list):
    xs = [x for x, _ in items]
    if axis == "features":
        steps = {x.shape[1] for x in xs} if xs[0].ndim == 3 else set()
        if len(steps) > 1:
            raise ValueError(f"concatenation along features of sequences of {sorted(steps)} steps")
        y = np.concatenate(xs, axis=-1)
    else:
        y = np.concatenate(xs, axis=1)
    if all(m is None for _, m in items):
        return y, None
    full = [np.ones(x.shape[:2], bool) if m is None else m for x, m in items]
    if axis == "features":
        mask = full[0]
        for m in full[1:]:
            mask = mask | m
        return y, mask
    return y, np.concatenate(full, axis=1)


def _states_in(layer, given: list, batch: int) -> list:
    """Initial states per direction: tuples (h, c) for an LSTM, arrays h otherwise."""
    cell = layer.forward if isinstance(layer, ir.Bidirectional) else layer
    h = cell.units
    lstm = isinstance(cell, ir.LSTM)
    per = 2 if lstm else 1
    directions = 2 if isinstance(layer, ir.Bidirectional) else 1
    if not given:
        given = [np.zeros((batch, h)) for _ in range(per * directions)]
    out = []
    for d in range(directions):
        part = [np.asarray(s, dtype=np.float64) for s in given[d * per : (d + 1) * per]]
        out.append((part[0], part[1]) if lstm else part[0])
    return out


def _flat_state(state) -> list:
    return list(state) if isinstance(state, tuple) else [state]


def _recurrent_node(layer, x, mask, given: list) -> list:
    """[output, *final states] of a recurrent node (states per direction, forward first).
    Without return_sequences the output is Keras' last output: the state after the last valid
    step, zero for a row without one (whatever the initial state); the final state of such a
    row is its initial state."""
    batch = x.shape[0]
    states = _states_in(layer, given, batch)
    seen = np.ones((batch, 1), bool) if mask is None else mask.any(axis=1)[:, None]
    if not isinstance(layer, ir.Bidirectional):
        outs, state = recurrent(layer, x, mask, state=states[0])
        y = outs if layer.return_sequences else outs[:, -1]
        return [(y, mask if layer.return_sequences else None)] + [
            (s, None) for s in _flat_state(state)
        ]
    opts = dict(zero_masked=True, align=True)
    fwd, fs = recurrent(layer.forward, x, mask, reverse=False, state=states[0], **opts)
    bwd, bs = recurrent(layer.backward, x, mask, reverse=True, state=states[1], **opts)
    if not layer.return_sequences:
        fwd = np.where(seen, _flat_state(fs)[0], 0.0)
        bwd = np.where(seen, _flat_state(bs)[0], 0.0)
    merge = {
        "concat": lambda a, b: np.concatenate([a, b], axis=-1),
        "sum": lambda a, b: a + b,
        "ave": lambda a, b: (a + b) / 2.0,
        "mul": lambda a, b: a * b,
    }[layer.merge_mode]
    y = merge(fwd, bwd)
    out_mask = mask if layer.return_sequences else None
    return [(y, out_mask)] + [(s, None) for s in _flat_state(fs) + _flat_state(bs)]


#: Layers whose node reads the mask its (first) input carries (Keras hands them mask=).
_MASK_READERS = (*ir.RECURRENT, ir.Bidirectional, ir.GlobalPool)


def _attention(layer, ins: list):
    """ATTENTION (docs/format.md): [query, value(, key)] -> (output, the query's mask); the
    Keras Dot pattern (use_masks False) reads no mask and writes none."""
    (q, q_mask), (v, v_mask) = ins[0], ins[1]
    if not layer.use_masks:
        q_mask = v_mask = None
    k = ins[2][0] if len(ins) > 2 else v
    if layer.score == "dot":
        s = np.einsum("btd,bsd->bts", q, k) * layer.scale
    else:
        pre = q[:, :, None, :] + k[:, None, :, :]
        if layer.score == "concat":
            s = layer.concat_weight * np.tanh(layer.scale * pre).sum(-1)
        else:
            scale = 1.0 if layer.scale is None else layer.scale.astype(np.float64)
            s = (scale * np.tanh(pre)).sum(-1)
    tq, tv = s.shape[1:]
    valid = np.ones(s.shape, bool)
    if v_mask is not None:
        valid &= v_mask[:, None, :]
    if layer.causal:
        valid &= np.arange(tq)[:, None] >= np.arange(tv)[None, :]
    # Keras lowers masked scores by 1e9 in float32: the result, rounded to float32, matters
    # only when a query step sees no valid value step (then nearly equal scores tie).
    s = np.where(valid, s, (s.astype(np.float32) - np.float32(1e9)).astype(np.float64))
    w = np.exp(s - s.max(-1, keepdims=True))
    y = (w / w.sum(-1, keepdims=True)) @ v
    if q_mask is not None:
        y = np.where(q_mask[..., None], y, 0.0)
    return y, q_mask


def _graph_node(layer, ins: list) -> list:
    """The (value, mask) pairs a node writes, from the (value, mask) pairs it reads."""
    if isinstance(layer, ir.Attention):
        return [_attention(layer, ins)]
    if isinstance(layer, (ir.Reshape, ir.Permute)):
        x = ins[0][0]
        steps = layer.in_steps if isinstance(layer, ir.Reshape) else layer.steps
        if steps and x.shape[1] != steps:
            raise ValueError(f"{layer.name!r} takes {steps} steps, got {x.shape[1]}")
        if isinstance(layer, ir.Permute):
            return [(np.transpose(x, (0, 2, 1)), None)]
        shape = (layer.out_steps, layer.out_dim) if layer.out_steps else (layer.out_dim,)
        return [(x.reshape((x.shape[0], *shape)), None)]
    if isinstance(layer, ir.Dot):
        a, b = ins[0][0], ins[1][0]
        if layer.normalize:  # Keras: x * min(rsqrt(sum x^2), 1 / epsilon); a zero vector stays 0
            with np.errstate(divide="ignore"):
                a, b = (
                    x * np.minimum(1 / np.sqrt((x * x).sum(-1, keepdims=True)), 1e7) for x in (a, b)
                )
        return [((a * b).sum(-1, keepdims=True), None)]
    if isinstance(layer, ir.TimeSteps):
        x = ins[0][0]
        if layer.out_steps(x.shape[1]) < 1:
            raise ValueError(f"{layer.name!r}: {x.shape[1]} steps cannot be cropped")
        if layer.mode == "crop":
            return [(x[:, layer.start : x.shape[1] - layer.end], None)]
        if layer.mode == "pad":
            return [(np.pad(x, ((0, 0), (layer.start, layer.end), (0, 0))), None)]
        return [(np.repeat(x, layer.size, axis=1), None)]
    if isinstance(layer, ir.Merge):
        return [_masked_merge(layer.mode, ins)]
    if isinstance(layer, ir.Concatenate):
        return [_concatenate(layer.axis, ins)]
    if isinstance(layer, ir.RepeatVector):
        x = ins[0][0]
        return [(np.repeat(x[:, None, :], layer.n, axis=1), None)]
    x, mask = ins[0]
    if isinstance(layer, (*ir.RECURRENT, ir.Bidirectional)):
        # With initial states Keras runs the layer without the mask (it hands `mask=` only to a
        # call with one tensor argument), but the sequence output still carries it.
        states = [v for v, _ in ins[1:]]
        outs = _recurrent_node(layer, x, None if states else mask, states)
        if layer.return_sequences:
            outs[0] = (outs[0][0], mask)
        return outs
    reads = isinstance(layer, _MASK_READERS) and not (
        isinstance(layer, ir.GlobalPool) and layer.kind == "max"
    )
    return [_apply_layer(layer, x, mask, mask if reads else None)]
