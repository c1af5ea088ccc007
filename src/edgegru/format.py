"""Writer and reader of the `.egru` file format (docs/format.md), in pure Python.

The constants mirror ``ext/include/egru_format.h``; ``tests/test_format.py`` checks that they
agree. `write` is the only producer of `.egru` files; `read` is used by tools (`edgegru info`,
round-trip tests) and checks the same things as the C reader, so that the Python side never trusts a
file the runtime would reject.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from . import ir
from .errors import FormatError

MAGIC = b"EGRU"
VERSION_MAJOR = 1
VERSION_MINOR = 0
HEADER_SIZE = 128
LAYER_RECORD_SIZE = 64
TENSOR_RECORD_SIZE = 64
ALIGNMENT = 64
MIN_ALIGNMENT = 16

INPUT_TOKENS = 1
INPUT_FEATURES = 2

OP_EMBEDDING = 1
OP_GRU = 2
OP_DENSE = 3
OP_NAMES = {OP_EMBEDDING: "Embedding", OP_GRU: "GRU", OP_DENSE: "Dense"}

FLAG_RETURN_SEQUENCES = 0x1
FLAG_RESET_AFTER = 0x2
FLAG_USE_BIAS = 0x4

ACT_LINEAR = 0
ACT_RELU = 1
ACT_SIGMOID = 2
ACT_TANH = 3
ACT_SOFTMAX = 4
ACTIVATIONS = {
    "linear": ACT_LINEAR,
    "relu": ACT_RELU,
    "sigmoid": ACT_SIGMOID,
    "tanh": ACT_TANH,
    "softmax": ACT_SOFTMAX,
}
ACTIVATION_NAMES = {v: k for k, v in ACTIVATIONS.items()}

DTYPE_F32 = 1
DTYPE_S8 = 2
DTYPE_S32 = 3
QUANT_NONE = 0
QUANT_SYMMETRIC_PER_ROW = 1

ROLE_TABLE = 1
ROLE_KERNEL = 2
ROLE_RECURRENT = 3
ROLE_INPUT_BIAS = 4
ROLE_RECURRENT_BIAS = 5
ROLE_BIAS = 6

_ALLOWED_FLAGS = {
    OP_EMBEDDING: 0,
    OP_GRU: FLAG_RETURN_SEQUENCES | FLAG_RESET_AFTER | FLAG_USE_BIAS,
    OP_DENSE: FLAG_USE_BIAS,
}

# struct layouts, little-endian, no implicit padding ("<").
HEADER = struct.Struct("<4sHHIIIIIIIIIIIIIIIIII40sII")
LAYER = struct.Struct("<HHIIIIBBH40s")
TENSOR = struct.Struct("<BBBB4IIIII28s")
assert HEADER.size == HEADER_SIZE and LAYER.size == LAYER_RECORD_SIZE
assert TENSOR.size == TENSOR_RECORD_SIZE

PRODUCER = "edgegru"


def _align(n: int, a: int = ALIGNMENT) -> int:
    return (n + a - 1) // a * a


@dataclass
class _Record:
    op: int
    flags: int
    input_dim: int
    output_dim: int
    activation: int
    recurrent_activation: int
    tensors: list  # [(role, float32 array in file layout)]


def _records(model: ir.Model) -> list:
    """IR layers -> layer records with their tensors in the file's output-major layout."""
    out = []
    for layer in model.layers:
        if isinstance(layer, ir.Embedding):
            out.append(
                _Record(
                    OP_EMBEDDING,
                    0,
                    layer.table.shape[0],
                    layer.output_dim,
                    0,
                    0,
                    [(ROLE_TABLE, layer.table)],
                )
            )
        elif isinstance(layer, ir.GRU):
            flags = (
                (FLAG_RETURN_SEQUENCES if layer.return_sequences else 0)
                | (FLAG_RESET_AFTER if layer.reset_after else 0)
                | (FLAG_USE_BIAS if layer.use_bias else 0)
            )
            out.append(
                _Record(
                    OP_GRU,
                    flags,
                    layer.input_dim,
                    layer.units,
                    ACTIVATIONS[layer.activation],
                    ACTIVATIONS[layer.recurrent_activation],
                    [
                        (ROLE_KERNEL, layer.kernel.T),
                        (ROLE_RECURRENT, layer.recurrent_kernel.T),
                        (ROLE_INPUT_BIAS, layer.input_bias),
                        (ROLE_RECURRENT_BIAS, layer.recurrent_bias),
                    ],
                )
            )
        elif isinstance(layer, ir.Dense):
            out.append(
                _Record(
                    OP_DENSE,
                    FLAG_USE_BIAS,
                    layer.kernel.shape[0],
                    layer.units,
                    ACTIVATIONS[layer.activation],
                    0,
                    [(ROLE_KERNEL, layer.kernel.T), (ROLE_BIAS, layer.bias)],
                )
            )
        else:
            raise TypeError(f"cannot write IR layer {type(layer).__name__}")
    return out


def write(model: ir.Model, metadata: dict | None = None) -> bytes:
    """Serialise an IR model to `.egru` bytes (format 1.0, fp32). Deterministic: the same model
    and metadata always give the same bytes."""
    model.check()
    records = _records(model)
    tensors = [t for r in records for t in r.tensors]
    meta = json.dumps(
        {
            "producer": PRODUCER,
            "model_name": model.name,
            "source": model.source,
            **(metadata or {}),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()

    layer_off = HEADER_SIZE
    tensor_off = layer_off + LAYER_RECORD_SIZE * len(records)
    meta_off = tensor_off + TENSOR_RECORD_SIZE * len(tensors)
    data_off = _align(meta_off + len(meta))

    data = bytearray()
    tensor_bytes = bytearray()
    for role, array in tensors:
        a = np.ascontiguousarray(array, dtype="<f4")
        if a.ndim > 4:
            raise ValueError("tensor rank > 4")
        dims = list(a.shape) + [0] * (4 - a.ndim)
        offset = len(data)
        data += a.tobytes()
        data += bytes(_align(len(data)) - len(data))
        tensor_bytes += TENSOR.pack(
            DTYPE_F32, QUANT_NONE, a.ndim, role, *dims, offset, a.nbytes, 0, 0, bytes(28)
        )
    layer_bytes = bytearray()
    first = 0
    for r in records:
        layer_bytes += LAYER.pack(
            r.op,
            r.flags,
            r.input_dim,
            r.output_dim,
            first,
            len(r.tensors),
            r.activation,
            r.recurrent_activation,
            0,
            bytes(40),
        )
        first += len(r.tensors)

    body = bytes(layer_bytes) + bytes(tensor_bytes) + meta
    body += bytes(data_off - HEADER_SIZE - len(body)) + bytes(data)
    file_size = HEADER_SIZE + len(body)
    if file_size >= 2**32:
        raise ValueError(f"model too large for format 1.0 ({file_size} bytes >= 4 GiB)")
    payload_crc = zlib.crc32(body)
    kind = INPUT_TOKENS if model.input.kind == ir.TOKENS else INPUT_FEATURES
    fields = [
        MAGIC,
        VERSION_MAJOR,
        VERSION_MINOR,
        HEADER_SIZE,
        0,
        ALIGNMENT,
        file_size,
        len(records),
        LAYER_RECORD_SIZE,
        layer_off,
        len(tensors),
        TENSOR_RECORD_SIZE,
        tensor_off,
        data_off,
        len(data),
        meta_off,
        len(meta),
        kind,
        model.input.dim,
        model.output_dim,
        0,
        bytes(40),
        payload_crc,
        0,
    ]
    header = HEADER.pack(*fields)
    fields[-1] = zlib.crc32(header[:124])
    return HEADER.pack(*fields) + body


# ---------------------------------------------------------------------------------------------
# Reader


def _fail(msg: str):
    raise FormatError(msg)


def _inside(offset: int, size: int, lo: int, hi: int) -> bool:
    return lo <= offset <= hi and size <= hi - offset


def read_header(blob) -> dict:
    """Decode and check the header (steps 1-6 of the spec). Returns its fields as a dict."""
    blob = memoryview(blob).cast("B")
    if len(blob) < HEADER_SIZE:
        _fail(f"file is truncated: {len(blob)} bytes, shorter than the {HEADER_SIZE}-byte header")
    names = (
        "magic version_major version_minor header_size flags alignment file_size "
        "layer_count layer_record_size layer_table_offset tensor_count tensor_record_size "
        "tensor_table_offset data_offset data_size meta_offset meta_size input_kind "
        "input_dim output_dim quant_version reserved payload_crc32 header_crc32"
    ).split()
    h = dict(zip(names, HEADER.unpack_from(blob, 0), strict=True))
    if h["magic"] != MAGIC:
        _fail(f"not an .egru file: magic is {h['magic']!r}, expected {MAGIC!r}")
    if h["version_major"] != VERSION_MAJOR:
        _fail(
            f"unsupported .egru format version {h['version_major']}.{h['version_minor']} "
            f"(this edgegru reads {VERSION_MAJOR}.x)"
        )
    if zlib.crc32(blob[:124]) != h["header_crc32"]:
        _fail("header CRC-32 mismatch: the file is corrupt")
    if (
        h["header_size"] < HEADER_SIZE
        or h["file_size"] < h["header_size"]
        or h["layer_count"] == 0
        or h["layer_record_size"] < LAYER_RECORD_SIZE
        or h["tensor_record_size"] < TENSOR_RECORD_SIZE
        or h["alignment"] < MIN_ALIGNMENT
        or h["alignment"] & (h["alignment"] - 1)
    ):
        _fail("invalid header field (sizes, counts or alignment)")
    if h["file_size"] > len(blob):
        _fail(f"file is truncated: header says {h['file_size']} bytes, got {len(blob)}")
    if zlib.crc32(blob[HEADER_SIZE : h["file_size"]]) != h["payload_crc32"]:
        _fail("payload CRC-32 mismatch: the file is corrupt")
    lo, hi = h["header_size"], h["file_size"]
    sections = [
        ("layer table", h["layer_table_offset"], h["layer_count"] * h["layer_record_size"]),
        ("tensor table", h["tensor_table_offset"], h["tensor_count"] * h["tensor_record_size"]),
        ("data section", h["data_offset"], h["data_size"]),
    ]
    if h["meta_size"]:
        sections.append(("metadata", h["meta_offset"], h["meta_size"]))
    for what, off, size in sections:
        if not _inside(off, size, lo, hi):
            _fail(f"the {what} lies outside the file")
    if h["data_offset"] % h["alignment"]:
        _fail("the data section is not aligned")
    if h["input_kind"] not in (INPUT_TOKENS, INPUT_FEATURES) or not h["input_dim"]:
        _fail("invalid input kind or dimension in the header")
    return h


def read(blob) -> tuple[ir.Model, dict]:
    """Parse `.egru` bytes back into an IR model and its metadata dict. Raises FormatError."""
    blob = memoryview(blob).cast("B")
    h = read_header(blob)
    data_lo = h["data_offset"]
    tensors = []
    for i in range(h["tensor_count"]):
        off = h["tensor_table_offset"] + i * h["tensor_record_size"]
        dtype, quant, rank, role, *rest = TENSOR.unpack_from(blob, off)
        dims, (doff, dsize) = rest[:4], rest[4:6]
        if dtype != DTYPE_F32 or quant != QUANT_NONE:
            _fail(f"tensor {i}: dtype {dtype}/quantization {quant} is not supported by this reader")
        if not 1 <= rank <= 4 or any(d == 0 for d in dims[:rank]) or any(dims[rank:]):
            _fail(f"tensor {i}: invalid rank or dims {dims}")
        shape = tuple(dims[:rank])
        if (
            int(np.prod(shape)) * 4 != dsize
            or doff % h["alignment"]
            or not _inside(doff, dsize, 0, h["data_size"])
        ):
            _fail(f"tensor {i}: data size or offset invalid")
        a = np.frombuffer(blob, dtype="<f4", count=dsize // 4, offset=data_lo + doff)
        tensors.append((role, a.reshape(shape).astype(np.float32)))

    kind = ir.TOKENS if h["input_kind"] == INPUT_TOKENS else ir.FEATURES
    meta = {}
    if h["meta_size"]:
        raw = bytes(blob[h["meta_offset"] : h["meta_offset"] + h["meta_size"]])
        try:
            meta = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            _fail("metadata block is not valid UTF-8 JSON")
    names = meta.get("source", {}).get("layers", []) if isinstance(meta, dict) else []
    layers = []
    next_tensor = 0
    for k in range(h["layer_count"]):
        off = h["layer_table_offset"] + k * h["layer_record_size"]
        op, flags, in_dim, out_dim, first, count, act, ract, _r, _p = LAYER.unpack_from(blob, off)
        if first != next_tensor or first + count > len(tensors):
            _fail(f"layer {k}: tensor range {first}..{first + count} invalid")
        next_tensor += count
        if flags & ~_ALLOWED_FLAGS.get(op, 0):
            _fail(f"layer {k}: flags {flags:#x} not valid for op {OP_NAMES.get(op, op)}")
        ts = tensors[first : first + count]
        roles = [r for r, _ in ts]
        name = names[k] if k < len(names) and isinstance(names[k], str) else f"layer_{k}"
        try:
            if op == OP_EMBEDDING and roles == [ROLE_TABLE]:
                layers.append(ir.Embedding(ts[0][1], name=name))
            elif op == OP_GRU and roles == [
                ROLE_KERNEL,
                ROLE_RECURRENT,
                ROLE_INPUT_BIAS,
                ROLE_RECURRENT_BIAS,
            ]:
                layers.append(
                    ir.GRU(
                        ts[0][1].T,
                        ts[1][1].T,
                        ts[2][1],
                        ts[3][1],
                        reset_after=bool(flags & FLAG_RESET_AFTER),
                        return_sequences=bool(flags & FLAG_RETURN_SEQUENCES),
                        use_bias=bool(flags & FLAG_USE_BIAS),
                        activation=ACTIVATION_NAMES[act],
                        recurrent_activation=ACTIVATION_NAMES[ract],
                        name=name,
                    )
                )
            elif op == OP_DENSE and roles == [ROLE_KERNEL, ROLE_BIAS]:
                layers.append(ir.Dense(ts[0][1].T, ts[1][1], ACTIVATION_NAMES[act], name=name))
            else:
                _fail(f"layer {k}: unknown op {op} or wrong tensors {roles}")
        except (KeyError, ValueError) as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"layer {k} ({OP_NAMES.get(op, op)}): {exc}") from None
        last = layers[-1]
        widths = (
            (last.table.shape[0], last.output_dim)
            if isinstance(last, ir.Embedding)
            else (last.input_dim if isinstance(last, ir.GRU) else last.kernel.shape[0], last.units)
        )
        if widths != (in_dim, out_dim):
            _fail(f"layer {k}: record widths {(in_dim, out_dim)} do not match its tensors {widths}")
    if next_tensor != len(tensors):
        _fail("some tensors belong to no layer")
    try:
        model = ir.Model(
            ir.InputSpec(kind, h["input_dim"]),
            layers,
            name=meta.get("model_name", "model") if isinstance(meta, dict) else "model",
            source=meta.get("source", {}) if isinstance(meta, dict) else {},
        )
    except (ValueError, TypeError) as exc:
        raise FormatError(f"inconsistent layer chain: {exc}") from None
    if model.output_dim != h["output_dim"]:
        _fail("header output_dim does not match the last layer")
    return model, meta
