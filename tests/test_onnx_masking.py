"""ONNX export of masked models (Embedding(mask_zero), Masking) vs the float64 reference.

Inputs come from ir_models.masked_inputs: rows padded at the end, at the front, in the middle,
not at all, and entirely. Keras' rules (docs/keras-semantics.md): a masked step leaves the state
unchanged; a unidirectional sequence output repeats the previous output there (zero before the
first valid step); a Bidirectional sequence output is zero there; GlobalAveragePooling1D is the
mean over valid steps (NaN for an all-masked row).

Run from the repository root: PYTHONPATH=src python -m pytest tests/test_onnx_masking.py
"""

from __future__ import annotations

import copy
import functools
import zlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from ir_models import (
    MORE_CASES,
    bidir,
    build_more,
    dense,
    feat,
    gru,
    lstm,
    masked_inputs,
    simple_rnn,
    tok,
)

from edgegru import ir, onnx_export, reference
from edgegru.onnx_export import to_onnx
from edgegru.validate import FP32_TOLERANCE

#: masked_inputs pads row r as PATTERNS[r % 5].
PATTERNS = ("post", "pre", "middle", "none", "all")
BATCH = 5  # one row per pattern
STEPS = (1, 4, 9, 16)


def _emb(r):
    return ir.Embedding(r.normal(0, 1, (12, 5)), mask_zero=True)


# Masked models beyond MORE_CASES: go_backwards, every cell in a masked Bidirectional, masks shared
# by several layers (forward and reverse), pooling in batch-major layout, a non-zero mask_value.
EXTRA_CASES = {
    "mask_gru_go_backwards_sequences": lambda r: tok(
        12, _emb(r), gru(r, 5, 6, return_sequences=True, go_backwards=True)
    ),
    "mask_gru_go_backwards_last": lambda r: tok(
        12, _emb(r), gru(r, 5, 6, go_backwards=True, reset_after=False)
    ),
    "mask_rnn_go_backwards_sequences": lambda r: feat(
        3, ir.Masking(3), simple_rnn(r, 3, 4, return_sequences=True, go_backwards=True)
    ),
    "mask_bidir_rnn_ave_sequences": lambda r: feat(
        3, ir.Masking(3), bidir(r, simple_rnn, 3, 4, "ave", return_sequences=True)
    ),
    "mask_bidir_gru_mul_sequences": lambda r: tok(
        12, _emb(r), bidir(r, gru, 5, 4, "mul", return_sequences=True)
    ),
    "mask_bidir_lstm_concat_last": lambda r: tok(12, _emb(r), bidir(r, lstm, 5, 3, "concat")),
    # Dense passes the mask; one compaction feeds a forward, a go_backwards and a last-state layer.
    "mask_forward_backward_stack": lambda r: tok(
        12,
        _emb(r),
        dense(r, 5, 5, "tanh"),
        gru(r, 5, 6, return_sequences=True),
        gru(r, 6, 4, return_sequences=True, go_backwards=True, name="gru_1"),
        lstm(r, 4, 3),
    ),
    "mask_bidir_then_gru": lambda r: tok(
        12, _emb(r), bidir(r, gru, 5, 3, "concat", return_sequences=True), gru(r, 6, 4)
    ),
    "mask_pool_after_embedding": lambda r: tok(12, _emb(r), ir.GlobalPool(5, "average")),
    "mask_pool_max_ignores_mask": lambda r: tok(
        12, _emb(r), gru(r, 5, 4, return_sequences=True), ir.GlobalPool(4, "max")
    ),
    "masking_value_half": lambda r: feat(
        3, ir.Masking(3, 0.5), gru(r, 3, 5, return_sequences=True), ir.GlobalPool(5, "average")
    ),
    # Masking zeroes masked steps, which a per-step Dense then sees (Dense(0) = bias there).
    "masking_value_dense_sequence": lambda r: feat(3, ir.Masking(3, 0.5), dense(r, 3, 4, "linear")),
    # A Masking layer replaces the Embedding's mask (embedding rows are never all zero).
    "masking_replaces_mask_zero": lambda r: tok(12, _emb(r), ir.Masking(5), gru(r, 5, 4)),
}


def _uses_mask(model: ir.Model) -> bool:
    return any(isinstance(la, ir.Masking) or getattr(la, "mask_zero", False) for la in model.layers)


MORE_MASKED = [n for n in MORE_CASES if _uses_mask(build_more(n))]
ALL_MASKED = [*MORE_MASKED, *EXTRA_CASES]


def _build(case_name: str) -> ir.Model:
    if case_name in MORE_CASES:
        return build_more(case_name)
    return EXTRA_CASES[case_name](np.random.default_rng(zlib.crc32(case_name.encode())))


def _session(proto: onnx.ModelProto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


@functools.cache
def _exported(case_name: str):
    model = _build(case_name)
    proto = to_onnx(model)
    return model, proto, _session(proto)


def _run(model, sess, x) -> np.ndarray:
    (y,) = sess.run(None, {onnx_export.INPUT_NAME[model.input.kind]: x})
    return y


def _padded(model: ir.Model, batch: int, steps: int, seed: int = 0) -> np.ndarray:
    """masked_inputs, with padded frames set to the first Masking layer's mask_value."""
    x = masked_inputs(model, batch, steps, seed)
    first = model.layers[0]
    if isinstance(first, ir.Masking) and first.mask_value != 0.0:
        x[np.all(x == 0.0, axis=-1)] = first.mask_value
    return x


def _valid_steps(model: ir.Model, x: np.ndarray) -> np.ndarray:
    """bool [B, T]: the steps the model's first mask keeps."""
    if model.input.kind == ir.TOKENS:
        return x != 0
    return np.any(x != np.float32(model.layers[0].mask_value), axis=-1)


def _max_err(got, want) -> float:
    """Max |got - want|, with NaN required at the same places."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    return float(np.max(np.abs(got[finite] - want[finite]), initial=0.0))


# --- numerics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_name", ALL_MASKED)
def test_masked_cases_match_reference(case_name):
    model, _, sess = _exported(case_name)
    for steps in STEPS:
        for batch, seed in ((BATCH, steps), (2 * BATCH, steps + 1)):
            x = _padded(model, batch, steps, seed)
            got = _run(model, sess, x)
            want = reference.forward(model, x)
            assert got.dtype == np.float32
            assert got.shape == want.shape == model.output_shape(batch, steps)
            np.testing.assert_allclose(got, want, rtol=0, atol=FP32_TOLERANCE, equal_nan=True)


@pytest.mark.parametrize("case_name", MORE_MASKED)
def test_dropping_the_mask_would_be_wrong(case_name):
    """Negative control: the same model without masks differs from Keras on padded rows by far more
    than the tolerance (so the match above really tests the masking)."""
    model, _, sess = _exported(case_name)
    x = _padded(model, BATCH, 9)
    want = reference.forward(model, x)
    no_mask = [la for la in copy.deepcopy(model.layers) if not isinstance(la, ir.Masking)]
    for la in no_mask:
        if isinstance(la, ir.Embedding):
            la.mask_zero = False
    naive = reference.forward(ir.Model(model.input, no_mask), x)
    partly_padded = [PATTERNS.index(p) for p in ("post", "pre", "middle")]
    naive_err = np.abs(naive - want)[partly_padded].reshape(len(partly_padded), -1).max(axis=1)
    assert naive_err.min() > 1e-3, naive_err
    assert _max_err(_run(model, sess, x), want) <= FP32_TOLERANCE


def _sequence_lens_only(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The naive export: the same graph, but the GRU reads the uncompacted input (so only
    sequence_lens = valid count tells it about the mask)."""
    naive = copy.deepcopy(proto)
    producers = {o: n for n in naive.graph.node for o in n.output}
    (node,) = [n for n in naive.graph.node if n.op_type == "GRU"]
    gather = producers[node.input[0]]
    assert gather.op_type == "GatherElements" and len(node.input) == 5
    node.input[0] = gather.input[0]
    return naive


def test_sequence_lens_alone_fails_on_pre_and_middle_padding():
    """Negative control run in onnxruntime: without compaction, sequence_lens treats the first
    `count` steps as valid, which is right for post-padding only."""
    model, proto, sess = _exported("mask_zero_gru")
    naive_proto = _sequence_lens_only(proto)
    onnx.checker.check_model(naive_proto, full_check=True)
    x = _padded(model, BATCH, 9)
    want = reference.forward(model, x)
    row_err = lambda y: np.abs(y - want).max(axis=1)  # noqa: E731
    naive = row_err(_run(model, _session(naive_proto), x))
    ours = row_err(_run(model, sess, x))
    for row, pattern in enumerate(PATTERNS):
        assert ours[row] <= FP32_TOLERANCE, pattern
        if pattern in ("pre", "middle"):
            assert naive[row] > 1e-3, pattern
        else:
            assert naive[row] <= FP32_TOLERANCE, pattern
    # The naive graph really computes "the first `count` steps, unmasked" (the reference agrees).
    unmasked = copy.deepcopy(model)
    unmasked.layers[0].mask_zero = False
    for row in range(BATCH):
        count = int(np.count_nonzero(x[row]))
        if count:
            first = reference.forward(unmasked, x[row : row + 1, :count])
            got = _run(model, _session(naive_proto), x[row : row + 1])
            assert np.max(np.abs(got - first)) <= FP32_TOLERANCE


# --- Keras semantics checked without the reference ---------------------------------------------


def test_all_masked_row_pools_to_nan():
    """GlobalAveragePooling1D over an all-masked row is 0/0: NaN in Keras, the reference and ORT."""
    model, _, sess = _exported("mask_zero_pool_average")
    x = _padded(model, BATCH, 6)
    got = _run(model, sess, x)
    all_masked = PATTERNS.index("all")
    assert np.all(np.isnan(got[all_masked]))
    assert np.all(np.isfinite(np.delete(got, all_masked, axis=0)))
    assert np.all(np.isnan(reference.forward(model, x)[all_masked]))


@pytest.mark.parametrize(
    "case_name",
    ["mask_gru_go_backwards_last", "mask_zero_bidir_last_sum", "mask_bidir_lstm_concat_last"],
)
def test_all_masked_row_gives_the_zero_initial_state(case_name):
    model, _, sess = _exported(case_name)
    got = _run(model, sess, _padded(model, BATCH, 7))
    assert np.all(got[PATTERNS.index("all")] == 0.0)
    assert np.all(got[PATTERNS.index("none")] != 0.0)


# Last-state models whose output must not depend on where the padding is: the row with its padding
# removed gives the same output. (Not mask_zero_stacked_lstm_backwards: Keras hands the next layer
# the unreversed mask with the reversed sequence, so there the padding position matters; nor
# masking_replaces_mask_zero, whose Masking layer replaces the id-0 mask with an all-valid one.)
INVARIANT = [
    "mask_zero_gru",
    "mask_zero_bidir_last_sum",
    "mask_zero_pool_average",
    "masking_features",
    "mask_gru_go_backwards_last",
    "mask_bidir_lstm_concat_last",
    "mask_bidir_then_gru",
    "masking_value_half",
]


@pytest.mark.parametrize("case_name", INVARIANT)
def test_padding_position_does_not_change_the_result(case_name):
    model, _, sess = _exported(case_name)
    x = _padded(model, BATCH, 9, seed=4)
    got = _run(model, sess, x)
    valid = _valid_steps(model, x)
    for row, pattern in enumerate(PATTERNS):
        if pattern == "all":
            continue
        trimmed = _run(model, sess, x[row : row + 1, valid[row]])
        assert np.max(np.abs(trimmed[0] - got[row])) <= FP32_TOLERANCE, pattern


def test_go_backwards_with_mask_reverses_the_valid_steps():
    """go_backwards + mask: the layer reads the valid steps last to first and outputs in processing
    order. Pre-padded: the valid outputs come first, then the last one repeats; post-padded: zeros
    first (no valid step processed yet), then the valid outputs."""
    model, _, sess = _exported("mask_gru_go_backwards_sequences")
    x = _padded(model, BATCH, 9)
    got = _run(model, sess, x)
    valid = _valid_steps(model, x)
    for pattern in ("post", "pre"):
        row = PATTERNS.index(pattern)
        n = int(valid[row].sum())
        alone = _run(model, sess, x[row : row + 1, valid[row]])[0]  # [n, H], no padding
        if pattern == "pre":
            np.testing.assert_allclose(got[row, :n], alone, rtol=0, atol=FP32_TOLERANCE)
            np.testing.assert_array_equal(
                got[row, n:], np.broadcast_to(got[row, n - 1], got[row, n:].shape)
            )
        else:
            assert np.all(got[row, : 9 - n] == 0.0)
            np.testing.assert_allclose(got[row, 9 - n :], alone, rtol=0, atol=FP32_TOLERANCE)


# --- graph structure -----------------------------------------------------------------------------


@pytest.mark.parametrize("case_name", ALL_MASKED)
def test_masked_graph_is_standard_and_compacted(case_name):
    model, proto, _ = _exported(case_name)
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node]
    assert "Loop" not in ops and "Scan" not in ops
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    recurrent = [la for la in model.layers if isinstance(la, (*ir.RECURRENT, ir.Bidirectional))]
    fused = [n for n in proto.graph.node if n.op_type in ("GRU", "LSTM", "RNN")]
    assert len(fused) == len(recurrent)
    producers = {o: n for n in proto.graph.node for o in n.output}
    for layer, node in zip(recurrent, fused, strict=True):
        if layer.masked:
            # Compacted input and sequence_lens = valid count; never the plain padded input.
            assert producers[node.input[0]].op_type == "GatherElements"
            assert producers[node.input[4]].op_type == "Cast"
        else:
            assert len(node.input) == 4
    # One compaction (one TopK) per mask, shared by every recurrent layer it reaches.
    compacted, creator = set(), None
    for la in model.layers:
        if isinstance(la, (ir.Embedding, ir.Masking)):
            creator = la
        elif any(la is r for r in recurrent) and la.masked:
            compacted.add(id(creator))
    assert ops.count("TopK") == len(compacted)
    consumed = {i for n in proto.graph.node for i in n.input} | {"output"}
    assert all(consumed.intersection(n.output) for n in proto.graph.node), "dead nodes"
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    assert len(inferred.graph.output[0].type.tensor_type.shape.dim) == len(model.output_shape(1, 1))


def test_unconsumed_mask_leaves_no_nodes():
    """A mask no layer uses (Conv1D drops it, Dense passes it to nothing) costs nothing."""
    rng = np.random.default_rng(7)
    model = tok(12, _emb(rng), dense(rng, 5, 3, "tanh"))
    proto = to_onnx(model)
    assert [n.op_type for n in proto.graph.node] == ["Gather", "MatMul", "Add", "Tanh"]
    x = _padded(model, BATCH, 6)
    assert _max_err(_run(model, _session(proto), x), reference.forward(model, x)) <= 1e-6
