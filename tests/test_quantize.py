"""int8 models (docs/quantization.md): the scheme's numpy definition, the file format, the C
runtime against a numpy model of the scheme written from the equations, streaming, the error
against the float model, and the checks on corrupt int8 data."""

from __future__ import annotations

import struct

import numpy as np
import onnx
import pytest
from ir_models import CASES, MORE_CASES, build, build_more, inputs, masked_inputs
from test_format import _with_crcs

import edgegru
from edgegru import format as fmt
from edgegru import ir, reference
from edgegru.quantize import QMAX, dequantize_rows, quantize_rows, quantize_vector

SETS = edgegru.available_kernels()
NAMES = [("base", n) for n in CASES] + [("more", n) for n in MORE_CASES]

#: C int8 runtime vs the numpy model of the same scheme (reference.forward(int8_inputs=True) on
#: the dequantized weights). Both quantize the same product inputs and multiply the same int8
#: weights; what differs is float32 (C) against float64 (numpy) in the float steps, as in fp32,
#: so the fp32 tolerance holds for almost every output (measured: 2.8e-7). The exception: a
#: product input within float rounding of the midpoint between two int8 levels can round to
#: different levels in C and numpy, and that row's later outputs then differ by about one
#: quantization step. Measured over every case at batch 21: one such flip, 13 of 65598 outputs
#: (max 2.6e-3). Hence: at most INT8_FLIP_FRACTION of a case's outputs may exceed the tolerance,
#: and none may exceed INT8_FLIP_BOUND.
INT8_EMULATION_TOLERANCE = edgegru.FP32_TOLERANCE
INT8_FLIP_FRACTION = 0.02
INT8_FLIP_BOUND = 1e-2
#: int8 runtime vs the float32 model on these small random test models (fan-in scaled weights,
#: biases ~0.3): the error of int8 weights and inputs, measured at most 3.9e-2 (an unbounded
#: relu SimpleRNN over 20 steps), typically 1e-3..1e-2. Task accuracy is what int8 is judged by
#: (tests/test_accuracy.py); this bound only catches a broken scheme.
INT8_VS_FP32_BOUND = 0.1
#: int8 runtime vs onnxruntime on the int8 ONNX export (the same dequantized weights, float
#: inputs): only the run-time quantization of the products' inputs differs. Measured at most
#: 2.1e-2 on these models (an unbounded relu SimpleRNN); typically a few 1e-3.
INT8_VS_DEQUANTIZED_BOUND = 0.05


def _model(family: str, name: str) -> ir.Model:
    return build(name) if family == "base" else build_more(name)


def _x(model: ir.Model, name: str, batch: int = 5):
    steps = 6 if name == "activation_flatten" else 20
    make = masked_inputs if name.startswith("mask") else inputs
    return make(model, batch, steps, seed=3)


def test_quantize_rows_follows_its_definition():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (37, 19)).astype(np.float32)
    w[3] = 0.0  # an all-zero row: scale 0, q 0
    w[5, 7] = -np.abs(w[5]).max() * 2  # the row's extreme is negative
    q, s = quantize_rows(w)
    assert q.dtype == np.int8 and s.dtype == np.float32 and s.shape == (37,)
    assert q.min() >= -QMAX and q.max() <= QMAX
    assert s[3] == 0 and not q[3].any()
    assert q[5, 7] == -QMAX
    np.testing.assert_array_equal(s, np.abs(w).max(axis=1) / np.float32(QMAX))
    err = np.abs(dequantize_rows(q, s) - w)
    assert np.all(err <= s[:, None] / 2 * (1 + 1e-6))


def test_quantize_vector_follows_its_definition():
    x = np.array([0.5, -2.0, 1.0, 0.0, 1.5 / 127 * 2.0], np.float32)
    q, s = quantize_vector(x)
    assert s == np.float32(2.0) / np.float32(127)
    inv = np.float32(127) / np.float32(2.0)
    np.testing.assert_array_equal(q, np.rint(x * inv).astype(np.int8))
    assert q[1] == -127
    q0, s0 = quantize_vector(np.zeros(4, np.float32))
    assert s0 == 0 and not q0.any()


@pytest.mark.parametrize("kernels", SETS)
@pytest.mark.parametrize(("family", "name"), NAMES, ids=[n for _, n in NAMES])
def test_int8_runtime_matches_the_numpy_model_of_the_scheme(kernels, family, name):
    """Every layer kind, masking, bidirectional and both reset_after modes: the C runtime with
    int8 weights equals the numpy model of docs/quantization.md, and stays near the float
    model. Batch 21: a block of 16 rows run together and one of 5."""
    model = _model(family, name)
    blob8 = fmt.write(model, quantize="int8")
    m8 = edgegru.load(blob8, kernels=kernels)
    x = _x(model, name, batch=21)
    got = m8.predict(x)
    dequantized, _ = fmt.read(blob8)
    want = reference.forward(dequantized, x, int8_inputs=True)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    diff = np.abs(got - want)[~np.isnan(want)]
    assert np.mean(diff > INT8_EMULATION_TOLERANCE) <= INT8_FLIP_FRACTION, diff.max()
    assert diff.max() <= INT8_FLIP_BOUND
    fp32 = reference.forward(model, x)
    assert np.nanmax(np.abs(got - fp32)) <= INT8_VS_FP32_BOUND


STREAMED = ["mask_zero_gru_sequences", "lstm", "simple_rnn", "features_gru_softmax_reset_before"]


@pytest.mark.parametrize("name", STREAMED)
def test_int8_streaming_equals_predict_on_every_prefix(name):
    model = build_more(name) if name in MORE_CASES else build(name)
    m8 = edgegru.load(fmt.write(model, quantize="int8"))
    x = _x(model, name, batch=3)[:, :9]
    s = m8.stream(batch=3)
    for t in range(x.shape[1]):
        step = s.step(x[:, t])
        whole = m8.predict(x[:, : t + 1])
        np.testing.assert_allclose(step, whole if whole.ndim == 2 else whole[:, -1], atol=1e-6)


def test_int8_file_layout_and_round_trip():
    model = build("tokens_gru_sigmoid_reset_after")
    blob32, blob8 = fmt.write(model), fmt.write(model, quantize="int8")
    h = fmt.read_header(blob8)
    assert (h["version_minor"], h["quant_version"]) == (2, 1)
    assert fmt.read_header(blob32)["quant_version"] == 0
    assert fmt.write(model, quantize="int8") == blob8  # deterministic
    storage = fmt.layer_storage(blob8)
    assert [s["dtypes"] for s in storage] == [["int8"], ["f32", "int8"], ["f32", "int8"]]
    back, _ = fmt.read(blob8)
    emb, gru = model.layers[0], model.layers[1]
    q, s = quantize_rows(emb.table)
    np.testing.assert_array_equal(back.layers[0].table, dequantize_rows(q, s))
    q, s = quantize_rows(gru.kernel.T)
    np.testing.assert_array_equal(back.layers[1].kernel, dequantize_rows(q, s).T)
    np.testing.assert_array_equal(back.layers[1].input_bias, gru.input_bias)  # biases stay f32
    with pytest.raises(ValueError, match="quantize must be one of"):
        fmt.write(model, quantize="int4")


def test_int8_file_is_under_0_3_of_fp32_for_a_realistic_model():
    """The seed architecture at a smaller vocabulary: Embedding(5000, 64) -> GRU(64) -> Dense(1)."""
    rng = np.random.default_rng(2)
    units, dim, vocab = 64, 64, 5000
    model = ir.Model(
        ir.InputSpec(ir.TOKENS, vocab),
        [
            ir.Embedding(rng.normal(0, 1, (vocab, dim)).astype(np.float32)),
            ir.GRU(
                rng.normal(0, 0.1, (dim, 3 * units)).astype(np.float32),
                rng.normal(0, 0.1, (units, 3 * units)).astype(np.float32),
                rng.normal(0, 0.1, 3 * units).astype(np.float32),
                rng.normal(0, 0.1, 3 * units).astype(np.float32),
            ),
            ir.Dense(rng.normal(0, 0.1, (units, 1)).astype(np.float32), np.zeros(1, np.float32)),
        ],
    )
    ratio = len(fmt.write(model, quantize="int8")) / len(fmt.write(model))
    assert ratio <= 0.3, ratio


def _tensor_record_offset(blob: bytes, index: int) -> int:
    h = fmt.read_header(blob)
    return h["tensor_table_offset"] + index * h["tensor_record_size"]


def test_corrupt_int8_data_is_rejected_by_both_readers():
    model = build("features_gru_softmax_reset_after")
    blob = fmt.write(model, quantize="int8")
    h = fmt.read_header(blob)
    kernel = _tensor_record_offset(blob, 0)  # the GRU kernel: S8
    data_offset, _size, scale_offset, _count = struct.unpack_from("<IIII", blob, kernel + 20)
    assert blob[kernel] == fmt.DTYPE_S8

    def patched(offset: int, raw: bytes) -> bytes:
        bad = bytearray(blob)
        bad[offset : offset + len(raw)] = raw
        return _with_crcs(bad)

    cases = {
        "-128 weight": patched(h["data_offset"] + data_offset, b"\x80"),
        "NaN scale": patched(h["data_offset"] + scale_offset, struct.pack("<f", np.nan)),
        "negative scale": patched(h["data_offset"] + scale_offset, struct.pack("<f", -1.0)),
        "scale count": patched(kernel + 32, struct.pack("<I", 1)),
        "quantization kind": patched(kernel + 1, b"\x00"),
    }
    for what, bad in cases.items():
        with pytest.raises(edgegru.FormatError):
            edgegru.load(bad)
        with pytest.raises(edgegru.FormatError):
            fmt.read(bad)
        assert what
    newer = bytearray(blob)
    struct.pack_into("<I", newer, 76, 3)  # quant_version 3: semantics this runtime lacks
    with pytest.raises(edgegru.FormatError, match="does not support"):
        edgegru.load(_with_crcs(newer))
    with pytest.raises(edgegru.FormatError, match="quant_version 3 is not supported"):
        fmt.read(_with_crcs(newer))
    relabeled = bytearray(blob)
    struct.pack_into("<I", relabeled, 76, 2)  # int16x8, but its layers have no QPARAMS
    with pytest.raises(edgegru.FormatError, match="layer record"):
        edgegru.load(_with_crcs(relabeled))
    with pytest.raises(edgegru.FormatError, match="ends with its QPARAMS"):
        fmt.read(_with_crcs(relabeled))


def test_every_single_byte_corruption_of_an_int8_model_is_rejected():
    blob = fmt.write(build("features_gru_softmax_reset_after"), quantize="int8")
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x41
        with pytest.raises(edgegru.FormatError):
            edgegru.load(bytes(bad))


@pytest.mark.parametrize("kernels", SETS)
@pytest.mark.parametrize(
    "name",
    [
        "tokens_gru_sigmoid_reset_after",
        "mask_zero_bidir_sequences",
        "mask_zero_stacked_lstm_backwards",
    ],
)
def test_int8_fold_embedding_is_bit_equal_to_the_unfolded_model(kernels, name):
    """The folded projections of an int8 model are the same int8 products, computed once."""
    model = build(name) if name in CASES else build_more(name)
    blob = fmt.write(model, quantize="int8")
    folded = edgegru.load(blob, kernels=kernels, fold_embedding=True)
    assert folded.fold_bytes > 0
    x = masked_inputs(model, 7, 11, seed=5)
    np.testing.assert_array_equal(folded.predict(x), edgegru.load(blob, kernels=kernels).predict(x))


@pytest.mark.parametrize("kernels", SETS)
@pytest.mark.parametrize(("family", "name"), NAMES, ids=[n for _, n in NAMES])
def test_int8_packed_row_sums_give_the_unpacked_bits(kernels, family, name):
    """egru_model_pack keeps the int8 recurrent rows' weight sums (avx512 with VNNI multiplies
    x + 128 by w and takes 128 * sum(w) off): the same bits as the unpacked model, in predict
    (batch 21: blocks of 16 and 5) and in a stream."""
    model = _model(family, name)
    blob8 = fmt.write(model, quantize="int8")
    packed = edgegru.load(blob8, kernels=kernels, pack=True, fold_embedding=False)
    plain = edgegru.load(blob8, kernels=kernels, pack=False, fold_embedding=False)
    recurrent = any(isinstance(getattr(x, "forward", x), ir.RECURRENT) for x in model.layers)
    assert (packed.pack_bytes > 0) and plain.pack_bytes == 0
    x = _x(model, name, batch=21)
    np.testing.assert_array_equal(packed.predict(x), plain.predict(x))
    if recurrent and not any(isinstance(x, ir.Bidirectional) for x in model.layers):
        try:
            a, b = packed.stream(batch=3), plain.stream(batch=3)
        except edgegru.UnsupportedError:  # Conv1D, pooling, Flatten: predict only
            return
        for t in range(min(x.shape[1], 5)):
            np.testing.assert_array_equal(a.step(x[:3, t]), b.step(x[:3, t]))


def _has_recurrent_softplus(model) -> bool:
    """A recurrent layer with softplus in either activation slot (the ONNX export refuses it)."""
    cells = [getattr(layer, "forward", layer) for layer in model.layers]  # Bidirectional: its cell
    return any(
        "softplus" in (cell.activation, cell.recurrent_activation)
        for cell in cells
        if isinstance(cell, ir.RECURRENT)
    )


@pytest.mark.parametrize(("family", "name"), NAMES, ids=[n for _, n in NAMES])
def test_int8_onnx_export_runs_the_dequantized_weights(family, name):
    """The int8 ONNX graph (int8 initializers -> DequantizeLinear) in onnxruntime equals the float
    model with the dequantized weights (the .egru file's, read back), and the C int8 runtime
    stays within INT8_VS_DEQUANTIZED_BOUND of it: the only difference left is the run-time
    quantization of the products' inputs."""
    from edgegru.onnx_export import to_onnx
    from edgegru.validate import run_onnx

    model = _model(family, name)
    if _has_recurrent_softplus(model):  # onnxruntime's fused op overflows: refused (docs/onnx.md)
        with pytest.raises(edgegru.UnsupportedError, match="softplus"):
            to_onnx(model, quantize="int8")
        return
    graph = to_onnx(model, quantize="int8")
    ops = {n.op_type for n in graph.graph.node}
    assert "DequantizeLinear" in ops
    int8_inits = [t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8_inits
    x = _x(model, name)
    ort = run_onnx(graph, x)
    dequantized, _ = fmt.read(fmt.write(model, quantize="int8"))
    np.testing.assert_allclose(
        ort, reference.forward(dequantized, x), rtol=0, atol=edgegru.FP32_TOLERANCE, equal_nan=True
    )
    c8 = edgegru.load(fmt.write(model, quantize="int8")).predict(x)
    assert np.nanmax(np.abs(c8 - ort)) <= INT8_VS_DEQUANTIZED_BOUND
