"""Random IR models and inputs for the int16x8 ONNX export tests (tests/test_onnx_int16x8.py) and
its measurement (`python tests/int16x8_models.py`, which prints the table of docs/onnx.md).

Every model is one the int16x8 emulation (edgegru.int16x8) covers and the ONNX export accepts:
Embedding (mask_zero or not) or Masking first, then GRU (both reset modes) / LSTM / SimpleRNN
(return_sequences, go_backwards, stacked), then Dense. Weights as tests/ir_models.py (std
1/sqrt(fan_in), biases std 0.3). Candidate activations: tanh mostly, also softsign, sigmoid and
relu (an unbounded state at a calibrated scale); gates sigmoid or hard_sigmoid; Dense every
activation. softplus stays out of the recurrent layers (the ONNX export refuses it there).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ir_models import conv1d, dense, embedding, feat, gru, lstm, simple_rnn, tok

from edgegru import ir
from edgegru.quantize import quantize_rows

#: Layer kinds the models are grouped by (the measurement reports one maximum per kind).
KINDS = (
    "gru_reset_after",
    "gru_reset_before",
    "lstm",
    "simple_rnn",
    "embedding",
    "masking",
    "dense",
)
#: GRUs with an unbounded candidate activation (see _UNBOUNDED).
UNBOUNDED_GRU = "gru_unbounded_candidate"
#: Kinds of the layers that need the whole sequence and the per-step Activation / Affine
#: (`_sequence_model`), measured after KINDS and UNBOUNDED_GRU (their seeds follow, so the
#: numbers of those stay what they were).
SEQUENCE_KINDS = (
    "conv1d",
    "global_pool",
    "flatten",
    "activation",
    "affine",
    "bidirectional_concat",
    "bidirectional_sum",
    "bidirectional_ave",
    "bidirectional_mul",
    "layer_norm",
)

_CANDIDATE = ("tanh", "tanh", "tanh", "softsign", "sigmoid")
#: GRU candidate activations whose output the emulation requantizes to the state's scale with
#: saturation (docs/quantization.md, GRU: `hh = act(n)` "G requantized to the state's scale"):
#: the candidate's range is not calibrated and exceeds the state's (h is a convex combination of
#: h and hh), so hh saturates in the emulation but not inside onnxruntime's fused GRU. Measured
#: apart (UNBOUNDED_GRU), not under the bound.
_UNBOUNDED = ("relu", "linear", "elu", "leaky_relu")
_GATE = ("sigmoid", "sigmoid", "hard_sigmoid")
_DENSE_ACTS = ir.DENSE_ACTIVATIONS


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _recurrent(rng, kind: str, i: int, h: int, seq: bool, name: str):
    kw = {
        "return_sequences": seq,
        "go_backwards": bool(rng.random() < 0.25),
        "activation": _pick(rng, _CANDIDATE),
        "name": name,
    }
    if kind == "simple_rnn":
        kw["activation"] = _pick(rng, ("tanh", "tanh", "relu", "softsign"))
        return _contracting(simple_rnn(rng, i, h, **kw))
    kw["recurrent_activation"] = _pick(rng, _GATE)
    if kind == "lstm":
        kw["activation"] = _pick(rng, (*_CANDIDATE, "relu"))
        return _contracting(lstm(rng, i, h, **kw))
    if kind == UNBOUNDED_GRU:
        kw["activation"] = _pick(rng, _UNBOUNDED)
        return gru(rng, i, h, reset_after=bool(rng.random() < 0.5), **kw)
    return gru(rng, i, h, reset_after=kind == "gru_reset_after", **kw)


def _contracting(layer):
    """A relu SimpleRNN / LSTM with its recurrent kernel halved (std 0.5 / sqrt(H)): with std
    1 / sqrt(H) its unbounded state grows over the steps (spectral radius ~1, outputs up to 100
    and more), a recurrence that amplifies any rounding difference, as it does between two
    correct float32 runtimes; trained models are contracting. (Measured with std 1 / sqrt(H):
    docs/onnx.md.)"""
    if layer.activation != "relu" or not RELU_CONTRACTION:
        return layer
    return dataclasses.replace(layer, recurrent_kernel=0.5 * layer.recurrent_kernel)


#: Halve the recurrent kernels of relu SimpleRNN / LSTM layers (see _contracting). False
#: reproduces the measurement with std 1 / sqrt(H).
RELU_CONTRACTION = True


def _cell_kind(rng, kind: str) -> str:
    if kind in ("gru_reset_after", "gru_reset_before", "lstm", "simple_rnn", UNBOUNDED_GRU):
        return kind
    return _pick(rng, ("gru_reset_after", "gru_reset_before", "lstm", "simple_rnn"))


def _conv(rng, i: int, name: str) -> ir.Conv1D:
    """A random Conv1D: kernel 1-4, valid / same / causal, stride 2 or dilation 2 now and then
    (never both: Keras rejects that with "same"), every elementwise activation."""
    k = int(rng.integers(1, 5))
    stride = 2 if rng.random() < 0.25 else 1
    dilation = 2 if stride == 1 and rng.random() < 0.25 else 1
    return conv1d(
        rng,
        i,
        int(rng.integers(3, 17)),
        k,
        padding=_pick(rng, ("valid", "same", "causal")),
        strides=stride,
        dilation_rate=dilation,
        activation=_pick(rng, ir.ELEMENTWISE_ACTIVATIONS),
        name=name,
    )


def _bidirectional(rng, i: int, h: int, mode: str, seq: bool) -> ir.Bidirectional:
    """Bidirectional(cell) of a random recurrent kind (activations as `_recurrent`), forward and
    backward weights independent."""
    cell = _pick(rng, ("gru_reset_after", "gru_reset_before", "lstm", "simple_rnn"))
    fwd = _recurrent(rng, cell, i, h, seq, "forward")
    bwd = _recurrent(rng, cell, i, h, seq, "backward")
    keep = {f: getattr(fwd, f) for f in ("activation", "recurrent_activation") if hasattr(fwd, f)}
    fwd = dataclasses.replace(fwd, go_backwards=False)
    was_relu = bwd.activation == "relu"
    bwd = dataclasses.replace(bwd, go_backwards=True, **keep)  # one activation for both
    if not was_relu:  # a relu SimpleRNN / LSTM contracts as in `_recurrent`
        bwd = _contracting(bwd)
    return ir.Bidirectional(fwd, bwd, mode)


def _sequence_model(rng, kind: str, dim: int, units: int, out: int, steps: int) -> ir.Model:
    """A random model around one layer of SEQUENCE_KINDS: a plain, Masking or Embedding (mask_zero
    or not) front, the layer with what feeds or follows it, and a Dense head."""
    front = rng.random()
    in_dim, layers, vocab = dim, [], None
    if front < 0.25:
        layers.append(ir.Masking(dim, 0.0))
    elif front < 0.45:
        vocab = int(rng.integers(5, 60))
        emb = embedding(rng, vocab, dim)
        layers.append(ir.Embedding(emb.table, mask_zero=bool(rng.random() < 0.5)))
    cell = _cell_kind(rng, "")
    width, t = dim, steps  # the current width and step count

    def recurrent(seq: bool, name: str):
        nonlocal width
        layers.append(_recurrent(rng, cell, width, units, seq, name))
        width = units

    if kind == "conv1d":
        if rng.random() < 0.3:
            recurrent(True, "rnn_0")
        conv = _conv(rng, width, "conv1d")
        layers.append(conv)
        width, t = conv.units, conv.out_steps(t)
        tail = _pick(rng, ("recurrent", "pool", "flatten", "none"))
        if tail == "recurrent":
            recurrent(bool(rng.random() < 0.3), "rnn_1")
        elif tail == "pool":
            layers.append(ir.GlobalPool(width, _pick(rng, ("average", "max"))))
        elif tail == "flatten":
            layers.append(ir.Flatten(t, width))
            width *= t
    elif kind in ("global_pool", "flatten"):
        body = _pick(rng, ("recurrent", "conv", "bidirectional"))
        if body == "recurrent":
            recurrent(True, "rnn_0")
        elif body == "conv":
            conv = _conv(rng, width, "conv1d")
            layers.append(conv)
            width, t = conv.units, conv.out_steps(t)
        else:
            mode = _pick(rng, ir.MERGE_MODES)
            layers.append(_bidirectional(rng, width, units, mode, True))
            width = 2 * units if mode == "concat" else units
        if kind == "global_pool":
            layers.append(ir.GlobalPool(width, _pick(rng, ("average", "max"))))
        else:
            layers.append(ir.Flatten(t, width))
            width *= t
    elif kind == "activation":
        act = _pick(rng, ir.DENSE_ACTIVATIONS)
        if rng.random() < 0.5:
            recurrent(True, "rnn_0")
            layers.append(ir.Activation(width, act))
            recurrent(bool(rng.random() < 0.3), "rnn_1")
        else:
            recurrent(bool(rng.random() < 0.3), "rnn_0")
            layers.append(dense(rng, width, units, "linear", name="dense_0"))
            layers.append(ir.Activation(units, act))
            width = units
    elif kind == "layer_norm":
        eps = _pick(rng, (1e-3, 1e-5))
        layers.append(ir.LayerNorm(rng.normal(1.0, 0.3, width), rng.normal(0.0, 0.2, width), eps))
        recurrent(True, "rnn_0")
        layers.append(
            ir.LayerNorm(
                rng.normal(1.0, 0.3, width), rng.normal(0.0, 0.2, width), eps, "layer_norm_1"
            )
        )
        recurrent(bool(rng.random() < 0.3), "rnn_1")
    elif kind == "affine":
        layers.append(ir.Affine(rng.normal(0.0, 1.5, width), rng.normal(0.0, 0.5, width)))
        recurrent(bool(rng.random() < 0.5), "rnn_0")
        if rng.random() < 0.5:
            layers.append(
                ir.Affine(rng.normal(0.0, 1.5, width), rng.normal(0.0, 0.5, width), "affine_1")
            )
    else:  # bidirectional_<merge mode>
        mode = kind.split("_", 1)[1]
        seq = bool(rng.random() < 0.5)
        layers.append(_bidirectional(rng, width, units, mode, seq))
        width = 2 * units if mode == "concat" else units
        if seq:
            tail = _pick(rng, ("recurrent", "pool", "none"))
            if tail == "recurrent":
                recurrent(bool(rng.random() < 0.3), "rnn_1")
            elif tail == "pool":
                layers.append(ir.GlobalPool(width, _pick(rng, ("average", "max"))))
    layers.append(dense(rng, width, out, _pick(rng, _DENSE_ACTS)))
    seq_len = steps if any(isinstance(la, ir.Flatten) for la in layers) else None
    if vocab is not None:
        return ir.Model(ir.InputSpec(ir.TOKENS, vocab, seq_len), layers)
    return ir.Model(ir.InputSpec(ir.FEATURES, in_dim, seq_len), layers)


def random_model(kind: str, seed: int, steps: int = 20) -> ir.Model:
    """One random model whose distinctive layer is `kind` (one of KINDS, UNBOUNDED_GRU or
    SEQUENCE_KINDS). steps: the step count of a model with a Flatten (its declared length)."""
    rng = np.random.default_rng(seed)
    dim = int(rng.integers(2, 9))
    units = int(rng.integers(3, 33))
    out = int(rng.integers(1, 6))
    seq_out = bool(rng.random() < 0.3)
    if kind in SEQUENCE_KINDS:
        return _sequence_model(rng, kind, dim, units, out, steps)
    if kind == "dense":
        hidden = int(rng.integers(2, 17))
        return feat(
            dim,
            dense(rng, dim, hidden, _pick(rng, _DENSE_ACTS), name="dense"),
            dense(rng, hidden, out, _pick(rng, _DENSE_ACTS), name="dense_1"),
        )
    cell = _cell_kind(rng, kind)
    in_dim, layers = dim, []
    if kind == "embedding":
        vocab = int(rng.integers(5, 60))
        emb = embedding(rng, vocab, dim)
        if rng.random() < 0.5:
            emb = ir.Embedding(emb.table, mask_zero=True)
        layers.append(emb)
    elif kind == "masking":
        layers.append(ir.Masking(dim, 0.0))
    if rng.random() < 0.3:  # stacked
        mid = int(rng.integers(3, 17))
        layers.append(_recurrent(rng, cell, dim, mid, True, "rnn_0"))
        dim = mid
    layers.append(_recurrent(rng, cell, dim, units, seq_out, "rnn_1"))
    layers.append(dense(rng, units, out, _pick(rng, _DENSE_ACTS)))
    if kind == "embedding":
        return tok(vocab, *layers)
    return feat(in_dim, *layers)


def random_inputs(model: ir.Model, seed: int, batch: int = 12, steps: int = 20) -> np.ndarray:
    """Token ids uniform over the vocabulary, or N(0, 1) features; a third of the rows padded
    (ids 0, frames 0.0) at the end, at the front or in the middle, so masks have effect."""
    rng = np.random.default_rng(seed)
    if model.input.kind == ir.TOKENS:
        x = rng.integers(0, model.input.dim, (batch, steps), dtype=np.int64)
    else:
        x = rng.normal(0.0, 1.0, (batch, steps, model.input.dim)).astype(np.float32)
    pads = (slice(steps // 2, None), slice(0, steps // 3), slice(steps // 3, steps // 2))
    for row in range(batch // 3):
        x[row, pads[row % 3]] = 0
    return x


def calibration_for(model: ir.Model, x: np.ndarray, seed: int) -> np.ndarray:
    """A representative calibration set that covers x: 48 more random sequences and x itself
    (beyond the calibrated ranges values saturate, which the C runtime and the QDQ graph do at
    different places: inside the recurrence vs at the layer boundary)."""
    more = random_inputs(model, seed, batch=48, steps=x.shape[1])
    return np.concatenate([more, x])


def _dequantized(w) -> np.ndarray:
    """A (cols, rows) IR kernel as the int16x8 model and the ONNX graph hold it: per-row S8 of
    w.T, dequantized in float32."""
    q, scale = quantize_rows(np.asarray(w, np.float32).T)
    return (q.astype(np.float32) * scale[:, None]).T.astype(np.float64)


def boundary_model(qm, x, round_state: bool = False) -> np.ndarray:
    """What the QDQ graph computes, in float64: the dequantized S8 weights, float layers
    (edgegru.reference), and int16 rounding (half to even, saturated to [-32768, 32767]) only at
    the model input, the layer outputs and a Bidirectional's directions before a sum / ave / mul
    merge, at onnx_export.int16x8_scales. With round_state the
    recurrent state is also rounded to its int16 grid after every step (an LSTM's cell to the
    gate domain's 2^-16), as the integer scheme holds it: the difference between the two
    measures what the fused float recurrence does not round (docs/onnx.md)."""
    from edgegru import reference
    from edgegru.onnx_export import int16x8_scales

    def grid(v, s, lo=-32768, hi=32767):
        return np.clip(np.rint(np.asarray(v, np.float64) / float(s)), lo, hi) * float(s)

    scales = int16x8_scales(qm)
    x = np.asarray(x)
    mask, ids, y = None, None, None
    if qm.model.input.kind == ir.TOKENS:
        ids = x.astype(np.int64)
    else:
        y = x.astype(np.float64)
        if scales.input is not None:
            y = grid(y, scales.input)
    steps = {f: getattr(reference, f) for f in ("_gru_step", "_lstm_step", "_rnn_step")}

    def kind_lstm(layer) -> bool:
        return isinstance(layer.forward, ir.LSTM)

    def dequantized_cell(layer):
        kw = {"kernel": _dequantized(layer.kernel)}
        kw["recurrent_kernel"] = _dequantized(layer.recurrent_kernel)
        return dataclasses.replace(layer, **kw)

    def round_steps(s_h) -> None:
        """With round_state, the reference's steps round the state to its grid (s_h)."""
        for f, orig in steps.items():

            def rounded(lay, xt, st, orig=orig, s_h=s_h):
                new = orig(lay, xt, st)
                if not round_state:
                    return new
                if isinstance(new, tuple):  # LSTM (h, c)
                    return grid(new[0], s_h, -32767), grid(new[1], 2.0**-16, -(2**30), 2**30)
                return grid(new, s_h, -32767)

            setattr(reference, f, rounded)

    try:
        for k, (kind, layer, p) in enumerate(qm.layers):
            layer_mask = mask if getattr(layer, "masked", False) else None
            if kind == "embedding":
                q, scale = quantize_rows(layer.table)
                y = (q.astype(np.float32) * scale[:, None]).astype(np.float64)[ids]
                mask = ids != 0 if layer.mask_zero else None
            elif kind == "masking":
                mask = np.any(x != np.float32(layer.mask_value), axis=-1)
                y = np.where(mask[..., None], y, 0.0)
            elif kind == "recurrent":
                round_steps(p.state_scale)
                outs, state = reference.recurrent(dequantized_cell(layer), y, layer_mask)
                h = state[0] if isinstance(layer, ir.LSTM) else state
                y = outs if layer.return_sequences else h
                if not layer.return_sequences:
                    mask = None
            elif kind == "bidirectional":
                round_steps(p.state_scale)
                opts = {"zero_masked": True, "align": True}
                fwd = reference.recurrent(
                    dequantized_cell(layer.forward), y, layer_mask, reverse=False, **opts
                )
                bwd = reference.recurrent(
                    dequantized_cell(layer.backward), y, layer_mask, reverse=True, **opts
                )
                a, b = (
                    d[0] if layer.return_sequences else d[1][0] if kind_lstm(layer) else d[1]
                    for d in (fwd, bwd)
                )
                if layer.merge_mode == "concat":
                    y = np.concatenate([a, b], axis=-1)
                else:  # the directions at the state scale, then the merge
                    a, b = grid(a, scales.merges[k]), grid(b, scales.merges[k])
                    y = {"sum": a + b, "ave": (a + b) / 2.0, "mul": a * b}[layer.merge_mode]
                if not layer.return_sequences:
                    mask = None
            elif kind == "dense":
                pre = y @ _dequantized(layer.kernel) + np.asarray(layer.bias, np.float64)
                y = reference.ACTIVATIONS[layer.activation](pre)
            elif kind == "conv1d":
                kc = layer.kernel.shape
                w = _dequantized(layer.kernel.reshape(kc[0] * kc[1], kc[2])).reshape(kc)
                y, mask = reference.conv1d(dataclasses.replace(layer, kernel=w), y), None
            elif kind == "pool":
                valid = np.ones(y.shape[:2], bool) if layer_mask is None else layer_mask
                if layer.kind == "max":
                    y = y.max(axis=1)
                else:  # an all-masked row: 0, as the int16x8 graph (max(count, 1))
                    total = np.where(valid[..., None], y, 0.0).sum(axis=1)
                    y = total / np.maximum(valid.sum(axis=1), 1)[:, None]
                mask = None
            elif kind == "flatten":
                y, mask = y.reshape(y.shape[0], -1), None
            elif kind == "activation":
                y = reference.ACTIVATIONS[layer.activation](y)
            elif kind == "affine":
                y = y * np.asarray(layer.scale, np.float64) + np.asarray(layer.shift, np.float64)
            elif kind == "layer_norm":
                mean = y.mean(axis=-1, keepdims=True)
                var = ((y - mean) ** 2).mean(axis=-1, keepdims=True)
                y = (y - mean) / np.sqrt(var + np.float64(np.float32(layer.epsilon)))
                y = y * np.asarray(layer.gamma, np.float64) + np.asarray(layer.beta, np.float64)
            y = grid(y, scales.layers[k])
    finally:
        for f, orig in steps.items():
            setattr(reference, f, orig)
    return y


def measure(models_per_kind: int = 40, seed0: int = 0, steps: int = 20, only=()) -> dict:
    """kind -> (max |onnxruntime - emulation|, max in units of the output scale, max |emulation -
    float64 reference|) over `models_per_kind` random models and inputs of each kind (of `only`,
    when given)."""
    from edgegru import int16x8, reference
    from edgegru.onnx_export import to_onnx_int16x8
    from edgegru.validate import run_onnx

    table = {}
    for k, kind in enumerate((*KINDS, UNBOUNDED_GRU, *SEQUENCE_KINDS)):
        if only and kind not in only:
            continue
        worst = [0.0, 0.0, 0.0]
        for j in range(models_per_kind):
            seed = seed0 + 1000 * k + j
            model = random_model(kind, seed, steps)
            x = random_inputs(model, seed + 1, steps=steps)
            qm = int16x8.quantize(model, calibration_for(model, x, seed + 2))
            got = run_onnx(to_onnx_int16x8(qm), x).astype(np.float64)
            want = int16x8.forward(qm, x)
            d = float(np.max(np.abs(got - want)))
            worst[0] = max(worst[0], d)
            worst[1] = max(worst[1], d / float(qm.output_scale))
            worst[2] = max(worst[2], float(np.max(np.abs(want - reference.forward(model, x)))))
        table[kind] = tuple(worst)
    return table


if __name__ == "__main__":  # pragma: no cover - the measurement behind docs/onnx.md
    import sys

    if "--unscaled-relu" in sys.argv:
        sys.argv.remove("--unscaled-relu")
        RELU_CONTRACTION = False
    only = ()
    if "--kinds" in sys.argv:  # --kinds a,b,c: measure only these kinds
        k = sys.argv.index("--kinds")
        only = tuple(sys.argv[k + 1].split(","))
        del sys.argv[k : k + 2]
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    seed0 = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    print(f"{n} models per kind, T = {steps}, seeds from {seed0}")
    print(f"{'kind':24} {'|onnx - emu|':>13} {'(output units)':>15} {'|emu - ref|':>12}")
    for kind, (d, units, e) in measure(n, seed0, steps, only).items():
        print(f"{kind:24} {d:13.3g} {units:15.2f} {e:12.3g}")
