"""Hostile and edge-case .egru files (issue #10, items 1, 3, 4): crafted with the project's writer
or by patching bytes and recomputing both CRCs, they are refused by the C parser with a
FormatError that names the problem (never a crash, never a silent wrong answer), by the Python
reader likewise, and the writer refuses to produce them.

Expected numbers come from exact arithmetic (sums of ones), not from the code under test.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from ir_models import bidir, dense, embedding, gru, lstm

import edgegru
from edgegru import format as fmt
from edgegru import ir
from edgegru.quantize import S8_MAX_COLS, quantize_rows

ROOT = Path(__file__).resolve().parents[1]

#: An int8 product of exact integer sums is scaled by (scale_w * scale_x) in float32: three
#: roundings of relative size <= 2**-24 each, and the float32 sum of up to 140000 ones is exact.
S8_SCALE_REL_TOL = 4e-7


def _with_crcs(blob: bytearray) -> bytes:
    """Both CRCs recomputed for the (possibly patched) bytes, as a writer would."""
    size = struct.unpack_from("<I", blob, 20)[0]
    struct.pack_into("<I", blob, 120, zlib.crc32(bytes(blob[128:size])))
    struct.pack_into("<I", blob, 124, zlib.crc32(bytes(blob[:124])))
    return bytes(blob)


def _tensor(blob, index: int) -> tuple[int, tuple]:
    """(offset of tensor record `index`, its unpacked fields)."""
    h = fmt.read_header(blob)
    off = h["tensor_table_offset"] + index * h["tensor_record_size"]
    return off, fmt.TENSOR.unpack_from(blob, off)


def _data_offset(blob) -> int:
    return fmt.read_header(blob)["data_offset"]


def _patch_f32(blob: bytes, index: int, element: int, value: float) -> bytes:
    """The float32 `element` of tensor `index` set to `value` (bits written as is)."""
    b = bytearray(blob)
    _, rec = _tensor(b, index)
    assert rec[0] == fmt.DTYPE_F32
    struct.pack_into("<f", b, _data_offset(b) + rec[8] + 4 * element, value)
    return _with_crcs(b)


def _to_int8(blob: bytes, index: int) -> bytes:
    """Tensor `index` (float32, rank 2) rewritten in place as an S8 tensor with per-row scales
    (docs/quantization.md), its q and scales inside the float32 data's own bytes; the header
    becomes an int8 file (minor 2, quant_version 1)."""
    b = bytearray(blob)
    roff, rec = _tensor(b, index)
    dtype, _q, rank, role, d0, d1, d2, d3, doff, dsize, _so, _sc, reserved = rec
    assert dtype == fmt.DTYPE_F32 and rank == 2
    data = _data_offset(b)
    a = np.frombuffer(bytes(b[data + doff : data + doff + dsize]), "<f4").reshape(d0, d1)
    q, scale = quantize_rows(a)
    scale_off = doff + (q.size + 63) // 64 * 64
    assert scale_off + 4 * d0 <= doff + dsize  # fits where the float32 data was
    b[data + doff : data + doff + q.size] = q.tobytes()
    b[data + scale_off : data + scale_off + 4 * d0] = scale.astype("<f4").tobytes()
    fmt.TENSOR.pack_into(
        b, roff, fmt.DTYPE_S8, fmt.QUANT_SYMMETRIC_PER_ROW, rank, role, d0, d1, d2, d3,
        doff, q.size, scale_off, d0, reserved,
    )  # fmt: skip
    struct.pack_into("<H", b, 6, 2)
    struct.pack_into("<I", b, 76, 1)
    return _with_crcs(b)


def _dtypes(blob) -> list[int]:
    h = fmt.read_header(blob)
    return [_tensor(blob, i)[1][0] for i in range(h["tensor_count"])]


def _bidir_model(make=gru) -> ir.Model:
    """tokens -> Embedding(20, 12) -> Bidirectional(make(8), concat) -> Dense(1, sigmoid)."""
    rng = np.random.default_rng(10)
    return ir.Model(
        ir.InputSpec(ir.TOKENS, 20),
        [embedding(rng, 20, 12), bidir(rng, make, 12, 8), dense(rng, 16, 1, "sigmoid")],
    )


def _load_fails(blob: bytes, words: str, reader_words: str) -> None:
    """edgegru.load (plain and fold_embedding) refuses the blob with a FormatError whose message
    contains `words` (the C runtime's status message), the Python reader with one that contains
    `reader_words` (case-insensitive)."""
    for opts in ({}, {"fold_embedding": True}, {"kernels": "ref", "fold_embedding": True}):
        with pytest.raises(edgegru.FormatError) as exc:
            edgegru.load(blob, **opts)
        assert words.lower() in str(exc.value).lower(), str(exc.value)
    with pytest.raises(edgegru.FormatError) as exc:
        fmt.read(blob)
    assert reader_words.lower() in str(exc.value).lower(), str(exc.value)


# -- item 1: weight dtypes per direction ----------------------------------------------------------


@pytest.mark.parametrize("make", [gru, lstm], ids=["gru", "lstm"])
@pytest.mark.parametrize("matrix", [0, 1], ids=["kernel", "recurrent"])
def test_directions_with_different_dtypes_are_rejected(make, matrix):
    """The issue's reproducer (forward KERNEL float32, backward KERNEL int8, after an Embedding:
    egru_model_fold wrote past its memory) and the same for the recurrent matrix, either way."""
    blob = fmt.write(_bidir_model(make))
    per_dir = 4 if make is gru else 3
    for direction in (0, 1):
        bad = _to_int8(blob, 1 + direction * per_dir + matrix)
        _load_fails(bad, "dtypes", "different dtypes (float32 vs int8)")


def test_converter_int8_files_fold_and_agree():
    """What the converter writes (every matrix int8, both directions alike) loads, folds and gives
    the unfolded numbers bit for bit with the reference kernels; a file whose directions agree but
    whose kernel and recurrent matrices differ (the converter's over-wide case) does too."""
    model = _bidir_model()
    ids = np.random.default_rng(1).integers(0, 20, (3, 7)).astype(np.int32)
    int8 = fmt.write(model, quantize="int8")
    assert set(_dtypes(int8)[1:3]) == {fmt.DTYPE_S8}
    mixed = _to_int8(_to_int8(fmt.write(model), 1), 5)  # both kernels int8, recurrents float32
    for blob in (int8, mixed):
        plain = edgegru.load(blob, kernels="ref").predict(ids)
        folded = edgegru.load(blob, kernels="ref", fold_embedding=True).predict(ids)
        np.testing.assert_array_equal(plain, folded)
        assert np.all(np.isfinite(plain))


# -- item 3: non-finite weights and float parameters ---------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_in_a_file_are_rejected(value):
    blob = fmt.write(_bidir_model())
    named = ("NaN weight", "float32 weight is NaN or infinite")
    _load_fails(_patch_f32(blob, 3, 5, value), *named)  # forward input bias
    _load_fails(_patch_f32(blob, 0, 0, value), *named)  # the embedding table
    int8 = fmt.write(_bidir_model(), quantize="int8")
    _load_fails(_patch_f32(int8, 10, 0, value), *named)  # dense bias of an int8 file
    edgegru.load(_patch_f32(blob, 3, 5, 3e38))  # large but finite: fine


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_writer_refuses_non_finite_weights_naming_layer_and_tensor(value):
    model = _bidir_model()
    model.layers[1].backward.recurrent_kernel[2, 3] = value
    with pytest.raises(edgegru.UnsupportedError) as exc:
        fmt.write(model)
    msg = str(exc.value)
    assert "layer 1" in msg and "backward recurrent kernel" in msg and "NaN or infinite" in msg
    model = _bidir_model()
    model.layers[2].bias[0] = value
    with pytest.raises(edgegru.UnsupportedError, match=r"layer 2 \(Dense 'dense'\).*bias"):
        fmt.write(model, quantize="int8")


def _layer_norm_model(epsilon: float) -> ir.Model:
    rng = np.random.default_rng(3)
    return ir.Model(
        ir.InputSpec(ir.FEATURES, 4),
        [gru(rng, 4, 6, return_sequences=True), ir.LayerNorm(np.ones(6), np.zeros(6), epsilon)],
    )


def _patch_param0(blob: bytes, layer: int, bits: int) -> bytes:
    b = bytearray(blob)
    h = fmt.read_header(b)
    struct.pack_into("<I", b, h["layer_table_offset"] + 64 * layer + 24, bits)
    return _with_crcs(b)


@pytest.mark.parametrize("bits", [0x7FC00000, 0x7F800000, 0xFF800000, 0xBA83126F])
def test_layer_norm_epsilon_must_be_finite_and_non_negative(bits):
    """NaN, +-inf and -1e-3 in the file are refused; 0 (Keras computes the same formula) is not."""
    blob = fmt.write(_layer_norm_model(1e-3))
    _load_fails(_patch_param0(blob, 1, bits), "float params", "LayerNorm): epsilon")
    edgegru.load(_patch_param0(blob, 1, 0))
    eps = struct.unpack("<f", struct.pack("<I", bits))[0]
    with pytest.raises(edgegru.UnsupportedError, match="epsilon"):
        fmt.write(_layer_norm_model(eps))


def test_masking_value_nan_is_rejected_and_infinity_accepted():
    rng = np.random.default_rng(4)
    model = ir.Model(
        ir.InputSpec(ir.FEATURES, 3),
        [ir.Masking(3, 0.0), gru(rng, 3, 5)],  # Model.check marks the GRU masked
    )
    blob = fmt.write(model)
    _load_fails(_patch_param0(blob, 0, 0x7FC00000), "float params", "mask_value is NaN")
    edgegru.load(_patch_param0(blob, 0, 0x7F800000))
    model.layers[0].mask_value = float("nan")
    with pytest.raises(edgegru.UnsupportedError, match="mask_value"):
        fmt.write(model)


# -- item 4: int8 product widths ------------------------------------------------------------------


def test_bound_matches_the_c_header():
    text = (ROOT / "ext" / "include" / "egru_format.h").read_text()
    assert int(re.search(r"#define EGRU_S8_MAX_COLS (\d+)u", text).group(1)) == S8_MAX_COLS
    assert S8_MAX_COLS * 127 * 127 <= 2**31 - 1  # the bound's arithmetic


def _wide_model(cols: int) -> ir.Model:
    """features (T, cols) -> Dense(1) with kernel ones -> Dense(1) with kernel 1 (both bias 0):
    on a step of ones the output is exactly `cols`."""
    return ir.Model(
        ir.InputSpec(ir.FEATURES, cols),
        [
            ir.Dense(np.ones((cols, 1)), np.zeros(1), name="wide"),
            ir.Dense(np.ones((1, 1)), np.zeros(1), name="head"),
        ],
    )


def test_over_wide_int8_matrix_is_written_float32_and_runs():
    """The issue's 1 x 140000 Dense on 1.0 gave -126288 with AVX2; the converter keeps that
    matrix float32 (the head stays int8) and every kernel set gives 140000."""
    cols = 140000
    blob = fmt.write(_wide_model(cols), quantize="int8")
    assert _dtypes(blob)[0] == fmt.DTYPE_F32 and _dtypes(blob)[2] == fmt.DTYPE_S8
    x = np.ones((1, 1, cols), np.float32)
    for kernels in ("ref", "auto"):
        y = edgegru.load(blob, kernels=kernels).predict(x)
        assert abs(float(y.reshape(-1)[0]) - cols) <= 3 * S8_SCALE_REL_TOL * cols


def test_int8_onnx_export_keeps_the_over_wide_matrix_float32_as_the_file_does():
    """The ONNX int8 graph holds the same weights as the .egru file: the over-wide kernel as a
    float32 initializer (no DequantizeLinear), the narrow head int8; onnxruntime then gives
    `cols` as the C runtime does."""
    from edgegru.onnx_export import to_onnx
    from edgegru.validate import run_onnx

    cols = 140000
    graph = to_onnx(_wide_model(cols), quantize="int8")
    dequantized = [n.output[0] for n in graph.graph.node if n.op_type == "DequantizeLinear"]
    assert dequantized and not any("wide" in name for name in dequantized), dequantized
    y = run_onnx(graph, np.ones((1, 1, cols), np.float32))
    assert abs(float(y.reshape(-1)[0]) - cols) <= 3 * S8_SCALE_REL_TOL * cols


def test_int8_matrix_at_the_bound_is_exact_and_over_it_is_rejected():
    x = np.ones((1, 1, S8_MAX_COLS), np.float32)
    at = fmt.write(_wide_model(S8_MAX_COLS), quantize="int8")
    assert _dtypes(at)[0] == fmt.DTYPE_S8  # at the bound: still int8
    outs = [edgegru.load(at, kernels=k).predict(x) for k in ("ref", "auto")]
    assert abs(float(outs[0].reshape(-1)[0]) - S8_MAX_COLS) <= 3 * S8_SCALE_REL_TOL * S8_MAX_COLS
    np.testing.assert_array_equal(outs[0], outs[1])  # int8: bit-exact across kernel sets
    over = _to_int8(fmt.write(_wide_model(S8_MAX_COLS + 1)), 0)  # crafted: the writer won't
    with pytest.raises(edgegru.FormatError, match="over 131072 columns"):
        edgegru.load(over)
    with pytest.raises(edgegru.FormatError, match="131072"):
        fmt.read(over)
