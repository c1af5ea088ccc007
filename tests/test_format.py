"""The .egru format: layout constants agree between C and Python, files are deterministic and
round-trip, and every corruption or truncation is rejected with a clear error, never a crash."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from ir_models import CASES, build, build_more, inputs

import edgegru
from edgegru import _runtime, reference
from edgegru import format as fmt
from edgegru.validate import FP32_TOLERANCE

ROOT = Path(__file__).resolve().parents[1]


def _c_constants() -> dict:
    """#define NAME value and enum NAME = value pairs of ext/include/egru_format.h."""
    text = (ROOT / "ext" / "include" / "egru_format.h").read_text()
    pairs = re.findall(r"#define\s+(EGRU_\w+)\s+(0x[0-9a-fA-F]+|\d+)u?\b", text)
    pairs += re.findall(r"\b(EGRU_\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)", text)
    return {k: int(v, 0) for k, v in pairs}


def _op_names() -> dict:
    """fmt.OP_NAMES as C enum suffixes: SimpleRNN -> SIMPLE_RNN, GlobalPool -> GLOBAL_POOL."""
    return {
        re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=RNN)", "_", v).rstrip("_"): k
        for k, v in fmt.OP_NAMES.items()
    }


def test_python_constants_mirror_the_c_header():
    c = _c_constants()
    py = {
        "EGRU_FORMAT_VERSION_MAJOR": fmt.VERSION_MAJOR,
        "EGRU_FORMAT_VERSION_MINOR": fmt.VERSION_MINOR,
        "EGRU_HEADER_SIZE": fmt.HEADER_SIZE,
        "EGRU_LAYER_RECORD_SIZE": fmt.LAYER_RECORD_SIZE,
        "EGRU_TENSOR_RECORD_SIZE": fmt.TENSOR_RECORD_SIZE,
        "EGRU_FILE_ALIGNMENT": fmt.ALIGNMENT,
        "EGRU_MIN_ALIGNMENT": fmt.MIN_ALIGNMENT,
        "EGRU_INPUT_TOKENS": fmt.INPUT_TOKENS,
        "EGRU_INPUT_FEATURES": fmt.INPUT_FEATURES,
        "EGRU_OP_EMBEDDING": fmt.OP_EMBEDDING,
        "EGRU_OP_GRU": fmt.OP_GRU,
        "EGRU_OP_DENSE": fmt.OP_DENSE,
        "EGRU_FLAG_RETURN_SEQUENCES": fmt.FLAG_RETURN_SEQUENCES,
        "EGRU_FLAG_RESET_AFTER": fmt.FLAG_RESET_AFTER,
        "EGRU_FLAG_USE_BIAS": fmt.FLAG_USE_BIAS,
        "EGRU_ACT_LINEAR": fmt.ACT_LINEAR,
        "EGRU_ACT_RELU": fmt.ACT_RELU,
        "EGRU_ACT_SIGMOID": fmt.ACT_SIGMOID,
        "EGRU_ACT_TANH": fmt.ACT_TANH,
        "EGRU_ACT_SOFTMAX": fmt.ACT_SOFTMAX,
        "EGRU_DTYPE_F32": fmt.DTYPE_F32,
        "EGRU_DTYPE_S8": fmt.DTYPE_S8,
        "EGRU_DTYPE_S32": fmt.DTYPE_S32,
        "EGRU_QUANT_NONE": fmt.QUANT_NONE,
        "EGRU_QUANT_SYMMETRIC_PER_ROW": fmt.QUANT_SYMMETRIC_PER_ROW,
        "EGRU_ROLE_TABLE": fmt.ROLE_TABLE,
        "EGRU_ROLE_KERNEL": fmt.ROLE_KERNEL,
        "EGRU_ROLE_RECURRENT": fmt.ROLE_RECURRENT,
        "EGRU_ROLE_INPUT_BIAS": fmt.ROLE_INPUT_BIAS,
        "EGRU_ROLE_RECURRENT_BIAS": fmt.ROLE_RECURRENT_BIAS,
        "EGRU_ROLE_BIAS": fmt.ROLE_BIAS,
        **{f"EGRU_OP_{n.upper()}": v for n, v in _op_names().items()},
        **{f"EGRU_ACT_{k.upper()}": v for k, v in fmt.ACTIVATIONS.items()},
        **{f"EGRU_MERGE_{k.upper()}": v for k, v in fmt.MERGE_MODES.items()},
        **{f"EGRU_PADDING_{k.upper()}": v for k, v in fmt.PADDINGS.items()},
        **{f"EGRU_POOL_{k.upper()}": v for k, v in fmt.POOLS.items()},
        "EGRU_FLAG_GO_BACKWARDS": fmt.FLAG_GO_BACKWARDS,
        "EGRU_FLAG_BIDIRECTIONAL": fmt.FLAG_BIDIRECTIONAL,
        "EGRU_FLAG_MASKED": fmt.FLAG_MASKED,
        "EGRU_FLAG_MASK_ZERO": fmt.FLAG_MASK_ZERO,
        "EGRU_ROLE_SCALE": fmt.ROLE_SCALE,
        "EGRU_ROLE_SHIFT": fmt.ROLE_SHIFT,
        "EGRU_OP_MAX": max(fmt.OP_NAMES),
        "EGRU_ACT_MAX": max(fmt.ACTIVATIONS.values()),
        "EGRU_HDR_PAYLOAD_CRC": 120,
        "EGRU_HDR_HEADER_CRC": 124,
    }
    for name, value in py.items():
        assert c[name] == value, name
    # Every header field sits where the C header says: pack distinct values, read them back at
    # the C offsets.
    names = [n for n in c if n.startswith("EGRU_HDR_") and n != "EGRU_HDR_MAGIC"]
    fields = [b"EGRU", 1, 2, *list(range(3, 21)), bytes(40), 21, 22]
    packed = fmt.HEADER.pack(*fields)
    order = [
        "VERSION_MAJOR",
        "VERSION_MINOR",
        "HEADER_SIZE",
        "FLAGS",
        "ALIGNMENT",
        "FILE_SIZE",
        "LAYER_COUNT",
        "LAYER_RECORD_SIZE",
        "LAYER_TABLE_OFFSET",
        "TENSOR_COUNT",
        "TENSOR_RECORD_SIZE",
        "TENSOR_TABLE_OFFSET",
        "DATA_OFFSET",
        "DATA_SIZE",
        "META_OFFSET",
        "META_SIZE",
        "INPUT_KIND",
        "INPUT_DIM",
        "OUTPUT_DIM",
        "QUANT_VERSION",
        "PAYLOAD_CRC",
        "HEADER_CRC",
    ]
    assert sorted(names) == sorted("EGRU_HDR_" + n for n in order)
    for value, name in enumerate(order, start=1):
        off = c["EGRU_HDR_" + name]
        size = 2 if name.startswith("VERSION") else 4
        got = int.from_bytes(packed[off : off + size], "little")
        assert got == value, name
    # Layer and tensor records likewise.
    layer = fmt.LAYER.pack(1, 2, 3, 4, 5, 6, 7, 8, 0, 9, *([0] * 9))
    for value, name in enumerate(
        [
            "OP",
            "FLAGS",
            "INPUT_DIM",
            "OUTPUT_DIM",
            "FIRST_TENSOR",
            "TENSOR_COUNT",
            "ACTIVATION",
            "RECURRENT_ACTIVATION",
        ],
        1,
    ):
        off = c["EGRU_LYR_" + name]
        size = 2 if name in ("OP", "FLAGS") else 1 if "ACTIVATION" in name else 4
        assert int.from_bytes(layer[off : off + size], "little") == value, name
    assert int.from_bytes(layer[c["EGRU_LYR_PARAMS"] :][:4], "little") == 9
    tensor = fmt.TENSOR.pack(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, bytes(28))
    for value, name in [
        (1, "DTYPE"),
        (2, "QUANT"),
        (3, "RANK"),
        (4, "ROLE"),
        (5, "DIMS"),
        (9, "DATA_OFFSET"),
        (10, "DATA_SIZE"),
        (11, "SCALE_OFFSET"),
        (12, "SCALE_COUNT"),
    ]:
        off = c["EGRU_TNS_" + name]
        size = 1 if off < 4 else 4
        assert int.from_bytes(tensor[off : off + size], "little") == value, name


def test_crc_is_zlib_crc32():
    data = np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    assert _runtime.crc32(b"123456789") == 0xCBF43926
    assert _runtime.crc32(data) == zlib.crc32(data)
    assert _runtime.crc32(data[500:], _runtime.crc32(data[:500])) == zlib.crc32(data)


def test_every_status_has_a_distinct_message():
    messages = [_runtime.status_message(-k) for k in range(_runtime.STATUS_COUNT)]
    assert len(set(messages)) == len(messages)
    assert _runtime.status_message(-_runtime.STATUS_COUNT) == "unknown status"


def test_versions_agree():
    assert _runtime.VERSION == edgegru.__version__


@pytest.mark.parametrize("case_name", list(CASES))
def test_layout_is_aligned_and_round_trips(case_name):
    model = build(case_name)
    blob = fmt.write(model)
    assert blob == fmt.write(build(case_name))  # deterministic
    h = fmt.read_header(blob)
    assert h["file_size"] == len(blob) and h["alignment"] == 64
    assert h["data_offset"] % 64 == 0
    for i in range(h["tensor_count"]):
        rec = fmt.TENSOR.unpack_from(blob, h["tensor_table_offset"] + 64 * i)
        assert rec[8] % 64 == 0  # data_offset
    back, meta = fmt.read(blob)
    assert meta["producer"] == "edgegru"
    x = inputs(model, 2, 5)
    np.testing.assert_array_equal(reference.forward(back, x), reference.forward(model, x))


def _small_blob() -> bytes:
    return fmt.write(build("tokens_gru_sigmoid_reset_before"))


def test_every_single_byte_corruption_is_rejected():
    """Flip each byte of a whole file (two different ways): the C reader must reject every one
    with a FormatError; none may crash the process or be accepted."""
    blob = _small_blob()
    for i in range(len(blob)):
        for new in (blob[i] ^ 0xFF, (blob[i] + 1) % 256):
            bad = bytearray(blob)
            bad[i] = new
            with pytest.raises(edgegru.FormatError):
                edgegru.load(bytes(bad))


def test_every_truncation_is_rejected():
    blob = _small_blob()
    for n in range(len(blob)):
        with pytest.raises(edgegru.FormatError) as info:
            edgegru.load(blob[:n])
        assert "truncated" in str(info.value) or "CRC" in str(info.value)


def _with_crcs(blob: bytearray) -> bytes:
    """Recompute both checksums, as a (buggy or malicious) writer would."""
    size = min(struct.unpack_from("<I", blob, 20)[0], len(blob))
    struct.pack_into("<I", blob, 120, zlib.crc32(bytes(blob[128 : max(size, 128)])))
    struct.pack_into("<I", blob, 124, zlib.crc32(bytes(blob[:124])))
    return bytes(blob)


@pytest.mark.parametrize(
    ("offset", "fmt_", "value", "message"),
    [
        (0, "4s", b"GGUF", "bad magic"),
        (4, "<H", 2, "format major version"),
        (8, "<I", 64, "invalid header field"),
        (16, "<I", 48, "invalid header field"),  # alignment not a power of two
        (20, "<I", 10**9, "truncated"),
        (24, "<I", 0, "invalid header field"),
        (32, "<I", 2**32 - 8, "outside the file"),
        (36, "<I", 2**31, "outside the file"),
        (48, "<I", 100, "outside the file"),
        (64, "<I", 7, "invalid header field"),
        (68, "<I", 39, "layer record"),  # input_dim no longer matches the Embedding
        (72, "<I", 2, "layer record"),
        (128 + 0, "<H", 9, "layer record"),  # unknown op
        (128 + 2, "<H", 0x80, "layer record"),  # unknown flag
        (128 + 64 + 20, "B", 4, "layer record"),  # softmax as a GRU activation
        (128 + 64 + 12, "<I", 2, "layer record"),  # tensors out of order
        (128 + 3 * 64 + 0, "B", 3, "tensor record"),  # int32: only int16x8 QPARAMS (1.3)
        (128 + 3 * 64 + 0, "B", 9, "tensor record"),  # unknown dtype
        (128 + 3 * 64 + 2, "B", 5, "tensor record"),  # rank 5
        (128 + 3 * 64 + 4, "<I", 41, "tensor record"),  # dims no longer match data_size
        (128 + 3 * 64 + 20, "<I", 32, "tensor record"),  # misaligned data
        (128 + 3 * 64 + 24, "<I", 2**32 - 4, "tensor record"),  # size overflow
    ],
)
def test_structural_errors_are_named(offset, fmt_, value, message):
    """Fields broken with valid checksums: the structural checks, not the CRCs, must catch them."""
    bad = bytearray(_small_blob())
    struct.pack_into(fmt_, bad, offset, value)
    blob = _with_crcs(bad) if offset >= 8 else bytes(bad)
    with pytest.raises(edgegru.FormatError) as info:
        edgegru.load(blob)
    assert message in str(info.value)
    with pytest.raises(edgegru.FormatError):
        fmt.read(blob)


#: 1.1 models for the corruption tests: every new op, flag and parameter kind appears.
FUZZ_MODELS = [
    "mask_zero_bidir_last_sum",
    "conv_same_strided",
    "affine_layernorm",
    "activation_flatten",
    "masking_features",
    "lstm_stacked_backwards",
]


@pytest.mark.parametrize("case_name", FUZZ_MODELS)
def test_every_single_byte_corruption_of_a_1_1_model_is_rejected(case_name):
    blob = fmt.write(build_more(case_name))
    assert fmt.read_header(blob)["version_minor"] == 1
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x41
        with pytest.raises(edgegru.FormatError):
            edgegru.load(bytes(bad))
    for n in range(0, len(blob), 7):
        with pytest.raises(edgegru.FormatError):
            edgegru.load(blob[:n])


@pytest.mark.parametrize("case_name", ["gru", *FUZZ_MODELS])
def test_random_structural_corruption_never_crashes(case_name):
    """Random bytes in the header and tables with fixed-up CRCs: load either fails with a
    FormatError or gives a model that runs; the process never crashes."""
    blob = _small_blob() if case_name == "gru" else fmt.write(build_more(case_name))
    rng = np.random.default_rng(1)
    accepted = 0
    for _ in range(3000):
        bad = bytearray(blob)
        pos = int(rng.integers(8, 128 + 7 * 64 + 3 * 64))
        if 120 <= pos < 128:
            continue
        bad[pos : pos + 2] = rng.integers(0, 256, 2, dtype=np.uint8).tobytes()
        try:
            m = edgegru.load(_with_crcs(bad))
        except edgegru.FormatError:
            continue
        accepted += 1
        x = np.ones((1, 6, m.input_dim), np.float32) if m.input_kind == "features" else None
        try:
            m.predict(x if x is not None else np.zeros((1, 6), np.int64))
        except edgegru.EdgeGRUError as exc:  # e.g. a Conv1D or Flatten that no longer fits T
            assert "batch and sequence length" in str(exc) or "status -12" in str(exc)
    assert accepted < 3000


def test_the_blob_must_not_be_empty():
    with pytest.raises(edgegru.FormatError, match="truncated"):
        edgegru.load(b"")
    with pytest.raises(edgegru.FormatError, match="bad magic"):
        edgegru.load(b"x" * 200)


def test_unsupported_major_version_message_from_python_reader():
    bad = bytearray(_small_blob())
    struct.pack_into("<H", bad, 4, 2)
    with pytest.raises(edgegru.FormatError, match=r"version 2\.0"):
        fmt.read(bytes(bad))


GOLDEN = sorted((ROOT / "tests" / "data").glob("*.egru"))


def test_golden_files_exist():
    assert len(GOLDEN) >= 2


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_file_reproduces_keras(path):
    """Files written by an earlier edgegru (tools/gen_golden.py; versions in PROVENANCE.json)
    still load and reproduce the Keras output recorded with them."""
    x = np.load(path.with_suffix(".x.npy"))
    want = np.load(path.with_suffix(".keras_y.npy"))
    got = edgegru.load(path).predict(x)
    assert got.shape == want.shape
    assert float(np.max(np.abs(got - want))) <= FP32_TOLERANCE


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_writer_is_stable_against_golden(path):
    """Reading a golden file and writing it again gives the same bytes: the writer's layout has
    not drifted (a deliberate format change adds new goldens instead)."""
    blob = path.read_bytes()
    model, meta = fmt.read(blob)
    assert fmt.write(model, metadata=meta) == blob
