"""int16x8 test models with the layers that need the whole sequence (Conv1D, GlobalPool,
Bidirectional in every merge mode, Flatten, a go_backwards layer after another recurrent one)
and the per-step Affine, Activation and LayerNorm: shared by tests/test_int16x8.py (the
emulation against the float64 reference), tests/test_int16x8_runtime.py (the C runtime against
the emulation, bit for bit) and tests/test_onnx_int16x8.py. Random weights, fixed seeds."""

from __future__ import annotations

import numpy as np

from edgegru import ir


def gru(rng, i, h, reset_after=True, act="tanh", ract="sigmoid", seq=False, back=False, name="gru"):
    return ir.GRU(
        rng.normal(0, 0.4, (i, 3 * h)),
        rng.normal(0, 0.3, (h, 3 * h)),
        rng.normal(0, 0.1, 3 * h),
        rng.normal(0, 0.1, 3 * h) if reset_after else np.zeros(3 * h),
        reset_after=reset_after,
        activation=act,
        recurrent_activation=ract,
        return_sequences=seq,
        go_backwards=back,
        name=name,
    )


def lstm(rng, i, h, act="tanh", ract="sigmoid", seq=False, back=False, name="lstm"):
    return ir.LSTM(
        rng.normal(0, 0.4, (i, 4 * h)),
        rng.normal(0, 0.3, (h, 4 * h)),
        rng.normal(0, 0.1, 4 * h),
        activation=act,
        recurrent_activation=ract,
        return_sequences=seq,
        go_backwards=back,
        name=name,
    )


def rnn(rng, i, h, act="tanh", seq=False, back=False, name="simple_rnn"):
    return ir.SimpleRNN(
        rng.normal(0, 0.4, (i, h)),
        rng.normal(0, 0.3, (h, h)),
        rng.normal(0, 0.1, h),
        activation=act,
        return_sequences=seq,
        go_backwards=back,
        name=name,
    )


def dense(rng, i, o, act, name="dense"):
    return ir.Dense(rng.normal(0, 0.5, (i, o)), rng.normal(0, 0.1, o), act, name=name)


def _bidi(rng, kind, i, h, mode, seq=False, act="tanh"):
    def cell(back):
        if kind == "gru":
            return gru(rng, i, h, True, act, seq=seq, back=back)
        make = lstm if kind == "lstm" else rnn
        return make(rng, i, h, act=act, seq=seq, back=back)

    return ir.Bidirectional(cell(False), cell(True), mode)


def _conv(rng, i, o, k, padding="valid", act="linear", strides=1, dilation=1):
    return ir.Conv1D(
        rng.normal(0, 0.4, (k, i, o)),
        rng.normal(0, 0.1, o),
        strides=strides,
        dilation_rate=dilation,
        padding=padding,
        activation=act,
    )


def sequence_models():
    """Models with the layers that need the whole sequence (Conv1D, pooling, Bidirectional,
    Flatten) and the per-step Affine and Activation."""
    rng = np.random.default_rng(14)
    feats = ir.InputSpec("features", 6)
    yield (
        "conv-same-avgpool",
        ir.Model(
            feats,
            [
                _conv(rng, 6, 12, 3, "same", "relu"),
                ir.GlobalPool(12, "average"),
                dense(rng, 12, 3, "softmax"),
            ],
        ),
    )
    yield (
        "conv-causal-gru",
        ir.Model(
            feats,
            [
                _conv(rng, 6, 8, 3, "causal", dilation=2),
                gru(rng, 8, 12, False),
                dense(rng, 12, 1, "sigmoid"),
            ],
        ),
    )
    yield (
        "conv-valid-stride-maxpool",
        ir.Model(
            feats,
            [
                _conv(rng, 6, 10, 4, "valid", "tanh", strides=2),
                ir.GlobalPool(10, "max"),
                dense(rng, 10, 2, "linear"),
            ],
        ),
    )
    yield (
        "bidi-gru-concat",
        ir.Model(feats, [_bidi(rng, "gru", 6, 8, "concat"), dense(rng, 16, 3, "softmax")]),
    )
    yield (
        "masked-bidi-lstm-sum-seq-avgpool",
        ir.Model(
            feats,
            [
                ir.Masking(6, 0.0),
                _bidi(rng, "lstm", 6, 8, "sum", seq=True),
                ir.GlobalPool(8, "average"),
                dense(rng, 8, 1, "sigmoid"),
            ],
        ),
    )
    yield (
        "masked-bidi-rnn-ave-seq-gru",
        ir.Model(
            feats,
            [
                ir.Masking(6, 0.0),
                _bidi(rng, "rnn", 6, 8, "ave", seq=True),
                gru(rng, 8, 8, True),
                dense(rng, 8, 2, "linear"),
            ],
        ),
    )
    yield (
        "bidi-gru-relu-mul-seq-maxpool",
        ir.Model(
            feats,
            [
                _bidi(rng, "gru", 6, 8, "mul", seq=True, act="relu"),
                ir.GlobalPool(8, "max"),
                dense(rng, 8, 1, "linear"),
            ],
        ),
    )
    yield (
        "affine-activation-gru-flatten",
        ir.Model(
            ir.InputSpec("features", 6, 20),
            [
                ir.Affine(rng.normal(0, 1.5, 6), rng.normal(0, 0.5, 6)),
                gru(rng, 6, 8, True, seq=True),
                ir.Activation(8, "relu"),
                ir.Flatten(20, 8),
                dense(rng, 160, 2, "softmax"),
            ],
        ),
    )
    yield (
        "masked-layernorm-gru-layernorm",
        ir.Model(
            feats,
            [
                ir.Masking(6, 0.0),
                ir.LayerNorm(rng.normal(1, 0.3, 6), rng.normal(0, 0.2, 6), 1e-3),
                gru(rng, 6, 8, True, seq=True),
                ir.LayerNorm(rng.normal(1, 0.3, 8), rng.normal(0, 0.2, 8), 1e-5),
                gru(rng, 8, 6, False),
                dense(rng, 6, 2, "softmax"),
            ],
        ),
    )
    yield (
        "tokens-bidi-lstm-ave-seq-dense-avgpool",  # per-step layers after the Embedding
        ir.Model(
            ir.InputSpec("tokens", 30),
            [
                ir.Embedding(rng.normal(0, 1, (30, 6)), mask_zero=True),
                _bidi(rng, "lstm", 6, 5, "ave", seq=True),
                dense(rng, 5, 4, "relu"),
                ir.Activation(4, "tanh"),
                ir.GlobalPool(4, "average"),
                dense(rng, 4, 2, "softmax"),
            ],
        ),
    )
    yield (
        "tokens-bidi-gru-seq-conv",
        ir.Model(
            ir.InputSpec("tokens", 40),
            [
                ir.Embedding(rng.normal(0, 1, (40, 8)), mask_zero=True),
                _bidi(rng, "gru", 8, 6, "concat", seq=True),
                _conv(rng, 12, 8, 3, "same", "relu"),
                ir.GlobalPool(8, "average"),
                dense(rng, 8, 1, "sigmoid"),
            ],
        ),
    )
