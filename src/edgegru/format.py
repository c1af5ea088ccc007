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
from dataclasses import dataclass, field

import numpy as np

from . import ir
from .errors import FormatError, UnsupportedError
from .quantize import QUANT_VERSION, dequantize_rows, int8_product_fits, quantize_rows

MAGIC = b"EGRU"
VERSION_MAJOR = 1
#: The newest minor version this module writes and reads. A file is stamped with the lowest minor
#: that can describe it (ir.Model.version_minor), so 1.0 readers keep reading 1.0-only models.
VERSION_MINOR = 4
HEADER_SIZE = 128
LAYER_RECORD_SIZE = 64
#: Graph files (1.4, docs/format.md "Graphs"): a longer header and layer records (nodes).
GRAPH_HEADER_SIZE = 160
NODE_RECORD_SIZE = 80
VALUE_RECORD_SIZE = 16
TENSOR_RECORD_SIZE = 64
ALIGNMENT = 64
MIN_ALIGNMENT = 16

INPUT_TOKENS = 1
INPUT_FEATURES = 2
INPUT_GRAPH = 3

VALUE_TOKENS = 1
VALUE_SEQUENCE = 2
VALUE_VECTOR = 3
VALUE_KINDS = {ir.TOKENS: VALUE_TOKENS, ir.SEQUENCE: VALUE_SEQUENCE, ir.VECTOR: VALUE_VECTOR}
VALUE_FLAG_MASKED = 1

OP_EMBEDDING = 1
OP_GRU = 2
OP_DENSE = 3
OP_LSTM = 4
OP_SIMPLE_RNN = 5
OP_CONV1D = 6
OP_GLOBAL_POOL = 7
OP_AFFINE = 8
OP_LAYER_NORM = 9
OP_ACTIVATION = 10
OP_FLATTEN = 11
OP_MASKING = 12
OP_MERGE = 13
OP_CONCATENATE = 14
OP_REPEAT_VECTOR = 15
OP_ATTENTION = 16
OP_TIME_STEPS = 17
OP_DOT = 18
OP_RESHAPE = 19
OP_PERMUTE = 20
OP_NAMES = {
    OP_EMBEDDING: "Embedding",
    OP_GRU: "GRU",
    OP_DENSE: "Dense",
    OP_LSTM: "LSTM",
    OP_SIMPLE_RNN: "SimpleRNN",
    OP_CONV1D: "Conv1D",
    OP_GLOBAL_POOL: "GlobalPool",
    OP_AFFINE: "Affine",
    OP_LAYER_NORM: "LayerNorm",
    OP_ACTIVATION: "Activation",
    OP_FLATTEN: "Flatten",
    OP_MASKING: "Masking",
    OP_MERGE: "Merge",
    OP_CONCATENATE: "Concatenate",
    OP_REPEAT_VECTOR: "RepeatVector",
    OP_ATTENTION: "Attention",
    OP_TIME_STEPS: "TimeSteps",
    OP_DOT: "Dot",
    OP_RESHAPE: "Reshape",
    OP_PERMUTE: "Permute",
}

FLAG_RETURN_SEQUENCES = 0x1
FLAG_RESET_AFTER = 0x2
FLAG_USE_BIAS = 0x4
FLAG_GO_BACKWARDS = 0x8
FLAG_BIDIRECTIONAL = 0x10
FLAG_MASKED = 0x20
FLAG_MASK_ZERO = 0x40

ACT_LINEAR = 0
ACT_RELU = 1
ACT_SIGMOID = 2
ACT_TANH = 3
ACT_SOFTMAX = 4
ACT_HARD_SIGMOID = 5
ACT_ELU = 6
ACT_SOFTSIGN = 7
ACT_SOFTPLUS = 8
ACT_LEAKY_RELU = 9
ACTIVATIONS = {
    "linear": ACT_LINEAR,
    "relu": ACT_RELU,
    "sigmoid": ACT_SIGMOID,
    "tanh": ACT_TANH,
    "softmax": ACT_SOFTMAX,
    "hard_sigmoid": ACT_HARD_SIGMOID,
    "elu": ACT_ELU,
    "softsign": ACT_SOFTSIGN,
    "softplus": ACT_SOFTPLUS,
    "leaky_relu": ACT_LEAKY_RELU,
}
ACTIVATION_NAMES = {v: k for k, v in ACTIVATIONS.items()}

MERGE_MODES = {"concat": 1, "sum": 2, "ave": 3, "mul": 4}
PADDINGS = {"valid": 0, "same": 1, "causal": 2}
POOLS = {"average": 1, "max": 2}

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
ROLE_SCALE = 7
ROLE_SHIFT = 8
ROLE_QPARAMS = 9  # 1.3: an int16x8 layer's integer parameters (S32)
ROLE_NAMES = {
    ROLE_TABLE: "table",
    ROLE_KERNEL: "kernel",
    ROLE_RECURRENT: "recurrent kernel",
    ROLE_INPUT_BIAS: "input bias",
    ROLE_RECURRENT_BIAS: "recurrent bias",
    ROLE_BIAS: "bias",
    ROLE_SCALE: "scale",
    ROLE_SHIFT: "shift",
    ROLE_QPARAMS: "int16x8 parameters",
}
#: Roles whose int8 matrices are products (their columns are bounded by S8_MAX_COLS).
PRODUCT_ROLES = (ROLE_KERNEL, ROLE_RECURRENT)

_RNN_FLAGS = (
    FLAG_RETURN_SEQUENCES | FLAG_USE_BIAS | FLAG_GO_BACKWARDS | FLAG_BIDIRECTIONAL | FLAG_MASKED
)
_ALLOWED_FLAGS = {
    OP_EMBEDDING: FLAG_MASK_ZERO,
    OP_GRU: _RNN_FLAGS | FLAG_RESET_AFTER,
    OP_LSTM: _RNN_FLAGS,
    OP_SIMPLE_RNN: _RNN_FLAGS,
    OP_DENSE: FLAG_USE_BIAS | FLAG_MASKED,
    OP_CONV1D: FLAG_USE_BIAS | FLAG_MASKED,
}

# struct layouts, little-endian, no implicit padding ("<").
HEADER = struct.Struct("<4sHHIIIIIIIIIIIIIIIIII40sII")
LAYER = struct.Struct("<HHIIIIBBH10I")
TENSOR = struct.Struct("<BBBB4IIIII28s")
assert HEADER.size == HEADER_SIZE and LAYER.size == LAYER_RECORD_SIZE
assert TENSOR.size == TENSOR_RECORD_SIZE
GRAPH_HEADER = struct.Struct("<IIIIIHH8s")  # at offset 128 of a graph file
NODE = struct.Struct("<IHHII")  # at offset 64 of a graph file's layer record
VALUE = struct.Struct("<BBHIII")
assert GRAPH_HEADER.size == 32 and NODE.size == 16 and VALUE.size == VALUE_RECORD_SIZE

PRODUCER = "edgegru"


def _align(n: int, a: int = ALIGNMENT) -> int:
    return (n + a - 1) // a * a


def _f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def _bits_f32(u: int) -> float:
    return struct.unpack("<f", struct.pack("<I", u))[0]


@dataclass
class _Record:
    op: int
    flags: int
    input_dim: int
    output_dim: int
    activation: int = 0
    recurrent_activation: int = 0
    tensors: list = field(default_factory=list)  # [(role, float32 array in file layout)]
    params: tuple = ()


def _rnn_tensors(layer) -> list:
    """One direction of a recurrent layer, output-major (docs/format.md)."""
    out = [(ROLE_KERNEL, layer.kernel.T), (ROLE_RECURRENT, layer.recurrent_kernel.T)]
    if isinstance(layer, ir.GRU):
        return [
            *out,
            (ROLE_INPUT_BIAS, layer.input_bias),
            (ROLE_RECURRENT_BIAS, layer.recurrent_bias),
        ]
    return [*out, (ROLE_BIAS, layer.bias)]


_RNN_OPS = {ir.GRU: OP_GRU, ir.LSTM: OP_LSTM, ir.SimpleRNN: OP_SIMPLE_RNN}


def _encode_rnn(layer) -> _Record:
    bidir = isinstance(layer, ir.Bidirectional)
    cell = layer.forward if bidir else layer
    flags = (
        (FLAG_RETURN_SEQUENCES if cell.return_sequences else 0)
        | (FLAG_RESET_AFTER if getattr(cell, "reset_after", False) else 0)
        | (FLAG_USE_BIAS if cell.use_bias else 0)
        | (FLAG_GO_BACKWARDS if cell.go_backwards and not bidir else 0)
        | (FLAG_BIDIRECTIONAL if bidir else 0)
    )
    tensors = _rnn_tensors(cell) + (_rnn_tensors(layer.backward) if bidir else [])
    params = (MERGE_MODES[layer.merge_mode],) if bidir else ()
    return _Record(
        _RNN_OPS[type(cell)],
        flags,
        cell.input_dim,
        layer.units,
        ACTIVATIONS[cell.activation],
        ACTIVATIONS[cell.recurrent_activation] if not isinstance(cell, ir.SimpleRNN) else 0,
        tensors,
        params,
    )


#: IR layer type -> record. Every record's MASKED flag is added by _records from layer.masked.
_ENCODERS = {
    ir.Embedding: lambda x: _Record(
        OP_EMBEDDING,
        FLAG_MASK_ZERO if x.mask_zero else 0,
        x.table.shape[0],
        x.output_dim,
        tensors=[(ROLE_TABLE, x.table)],
    ),
    ir.GRU: _encode_rnn,
    ir.LSTM: _encode_rnn,
    ir.SimpleRNN: _encode_rnn,
    ir.Bidirectional: _encode_rnn,
    ir.Dense: lambda x: _Record(
        OP_DENSE,
        FLAG_USE_BIAS,
        x.kernel.shape[0],
        x.units,
        ACTIVATIONS[x.activation],
        tensors=[(ROLE_KERNEL, x.kernel.T), (ROLE_BIAS, x.bias)],
    ),
    ir.Conv1D: lambda x: _Record(
        OP_CONV1D,
        FLAG_USE_BIAS,
        x.input_dim,
        x.units,
        ACTIVATIONS[x.activation],
        tensors=[(ROLE_KERNEL, x.kernel.transpose(2, 0, 1)), (ROLE_BIAS, x.bias)],
        params=(x.kernel_size, x.strides, x.dilation_rate, PADDINGS[x.padding]),
    ),
    ir.GlobalPool: lambda x: _Record(OP_GLOBAL_POOL, 0, x.dim, x.dim, params=(POOLS[x.kind],)),
    ir.Affine: lambda x: _Record(
        OP_AFFINE, 0, x.units, x.units, tensors=[(ROLE_SCALE, x.scale), (ROLE_SHIFT, x.shift)]
    ),
    ir.LayerNorm: lambda x: _Record(
        OP_LAYER_NORM,
        0,
        x.units,
        x.units,
        tensors=[(ROLE_SCALE, x.gamma), (ROLE_SHIFT, x.beta)],
        params=(_f32_bits(x.epsilon),),
    ),
    ir.Activation: lambda x: _Record(OP_ACTIVATION, 0, x.dim, x.dim, ACTIVATIONS[x.activation]),
    ir.Flatten: lambda x: _Record(OP_FLATTEN, 0, x.dim, x.units, params=(x.steps,)),
    ir.Masking: lambda x: _Record(OP_MASKING, 0, x.dim, x.dim, params=(_f32_bits(x.mask_value),)),
}


def _records(model: ir.Model) -> list:
    """IR layers -> layer records with their tensors in the file's output-major layout."""
    out = []
    for layer in model.layers:
        try:
            record = _ENCODERS[type(layer)](layer)
        except KeyError:
            raise TypeError(f"cannot write IR layer {type(layer).__name__}") from None
        if getattr(layer, "masked", False):
            record.flags |= FLAG_MASKED
        out.append(record)
    return out


#: (op, role) of the tensors `write(..., quantize="int8")` stores as int8 (docs/quantization.md).
QUANTIZABLE = {
    (OP_EMBEDDING, ROLE_TABLE),
    (OP_GRU, ROLE_KERNEL),
    (OP_GRU, ROLE_RECURRENT),
    (OP_LSTM, ROLE_KERNEL),
    (OP_LSTM, ROLE_RECURRENT),
    (OP_SIMPLE_RNN, ROLE_KERNEL),
    (OP_SIMPLE_RNN, ROLE_RECURRENT),
    (OP_DENSE, ROLE_KERNEL),
}
#: int16x8 stores every matrix as int8: QUANTIZABLE and the Conv1D kernel, (out, kernel_size, in)
#: with one scale per output channel (docs/quantization.md, "int16x8").
QUANTIZABLE_INT16X8 = QUANTIZABLE | {(OP_CONV1D, ROLE_KERNEL)}
QUANTIZE_MODES = (None, "int8", "int16x8")
#: header quant_version of int16x8 files (docs/quantization.md; format 1.3).
QUANT_VERSION_INT16X8 = 2


def _check_writable(layers: list, records: list) -> None:
    """The values the runtime would reject (docs/format.md, validation step 7/8), refused here
    with the layer and tensor named: every float32 weight finite (after the cast to float32, so
    values beyond its range count as infinite), LayerNorm epsilon finite and >= 0, Masking
    mask_value not NaN."""
    for k, (layer, r) in enumerate(zip(layers, records, strict=True)):
        where = f"layer {k} ({type(layer).__name__} {getattr(layer, 'name', '?')!r})"
        per_dir = len(r.tensors) // 2 if isinstance(layer, ir.Bidirectional) else 0
        for i, (role, array) in enumerate(r.tensors):
            with np.errstate(over="ignore", invalid="ignore"):
                a = np.asarray(array, dtype=np.float32)
            bad = ~np.isfinite(a)
            if bad.any():
                side = ("forward " if i < per_dir else "backward ") if per_dir else ""
                first = tuple(int(v) for v in np.argwhere(bad)[0])
                raise UnsupportedError(
                    f"{where}: the {side}{ROLE_NAMES[role]} holds {int(bad.sum())} NaN or "
                    f"infinite value(s) as float32 (first at index {first}); .egru files store "
                    "finite weights only"
                )
        if isinstance(layer, ir.LayerNorm):
            eps = np.float32(layer.epsilon)
            if not (np.isfinite(eps) and eps >= 0):
                raise UnsupportedError(
                    f"{where}: epsilon {float(layer.epsilon)!r} must be finite and >= 0"
                )
        if isinstance(layer, ir.Masking) and np.isnan(np.float32(layer.mask_value)):
            raise UnsupportedError(
                f"{where}: mask_value NaN equals no value, so nothing would ever be masked; "
                ".egru files do not store it"
            )


def _int16x8_records(model: ir.Model, records: list, calibration) -> None:
    """Appends each layer's QPARAMS tensor (docs/format.md, "Integer-only files") to its record,
    from the int16x8 model calibrated on `calibration` (int16x8.quantize)."""
    from . import int16x8

    for layer, r in zip(model.layers, records, strict=True):
        for role, a in r.tensors:
            if (r.op, role) in QUANTIZABLE_INT16X8 and role in PRODUCT_ROLES:
                cols = int(np.prod(np.shape(a)[1:]))
                if not int8_product_fits(cols):
                    raise UnsupportedError(
                        f"int16x8: {type(layer).__name__} {layer.name!r}: its "
                        f"{ROLE_NAMES[role]} has {cols} columns, more than "
                        f"{2**17}; int16x8 stores every matrix as int8"
                    )
    try:
        qm = int16x8.quantize(model, calibration)
    except NotImplementedError as exc:
        raise UnsupportedError(str(exc)) from None
    for r, (words, mats) in zip(records, int16x8.layer_qparams(qm), strict=True):
        s8 = [a for role, a in r.tensors if (r.op, role) in QUANTIZABLE_INT16X8]
        for a, q in zip(s8, mats, strict=True):  # the multipliers were computed for these
            if not np.array_equal(quantize_rows(a)[0].reshape(q.shape), q):
                raise AssertionError("int16x8: the emulation quantized a matrix differently")
        r.tensors.append((ROLE_QPARAMS, words))


def _pack_tensors(tensors: list, quantize) -> tuple:
    """Tensors [(op, role, array)] -> (data section, tensor records, number of S8 tensors)."""
    data = bytearray()
    tensor_bytes = bytearray()
    quantized = 0
    for op, role, array in tensors:
        if role == ROLE_QPARAMS:
            words = np.ascontiguousarray(array, dtype="<i4")
            offset = len(data)
            data += words.tobytes()
            data += bytes(_align(len(data)) - len(data))
            tensor_bytes += TENSOR.pack(
                DTYPE_S32, QUANT_NONE, 1, role, len(words), 0, 0, 0, offset, words.nbytes, 0, 0,
                bytes(28),
            )  # fmt: skip
            continue
        a = np.ascontiguousarray(array, dtype="<f4")
        if a.ndim > 4:
            raise ValueError("tensor rank > 4")
        dims = list(a.shape) + [0] * (4 - a.ndim)
        offset = len(data)
        # int8 only where the runtime's int32 sums cannot overflow: a wider product matrix stays
        # float32 (quantize.int8_product_fits, docs/quantization.md).
        if (
            quantize in ("int8", "int16x8")
            and (op, role) in (QUANTIZABLE_INT16X8 if quantize == "int16x8" else QUANTIZABLE)
            and (role not in PRODUCT_ROLES or int8_product_fits(int(np.prod(a.shape[1:]))))
        ):
            q, scale = quantize_rows(a)
            data += q.tobytes()
            data += bytes(_align(len(data)) - len(data))
            scale_offset = len(data)
            data += scale.astype("<f4").tobytes()
            data += bytes(_align(len(data)) - len(data))
            tensor_bytes += TENSOR.pack(
                DTYPE_S8, QUANT_SYMMETRIC_PER_ROW, a.ndim, role, *dims, offset, q.nbytes,
                scale_offset, len(scale), bytes(28),
            )  # fmt: skip
            quantized += 1
            continue
        data += a.tobytes()
        data += bytes(_align(len(data)) - len(data))
        tensor_bytes += TENSOR.pack(
            DTYPE_F32, QUANT_NONE, a.ndim, role, *dims, offset, a.nbytes, 0, 0, bytes(28)
        )
    return data, tensor_bytes, quantized


def write(
    model: ir.Model | ir.Graph,
    metadata: dict | None = None,
    quantize: str | None = None,
    calibration=None,
) -> bytes:
    """Serialise an IR model or graph to `.egru` bytes (format 1.x), stamped with the lowest
    minor version that describes it. Deterministic: the same model, metadata and calibration
    give the same bytes. An ir.Graph is written as a graph file (format 1.4, docs/format.md
    "Graphs"), unless graph.as_chain() gives a chain: then exactly the chain's bytes.

    quantize: None (float32); "int8": the QUANTIZABLE matrices become S8 tensors with one float
    scale per row (docs/quantization.md; format 1.2, header quant_version 1); "int16x8": the
    integer-only scheme (every matrix S8, one QPARAMS tensor per layer; format 1.3, header
    quant_version 2), its activation ranges calibrated on `calibration` (inputs as `predict` takes
    them; None: int16x8.default_calibration, with a warning that the ranges are a guess)."""
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
    if calibration is not None and quantize != "int16x8":
        raise ValueError('calibration is used by quantize="int16x8" only')
    if isinstance(model, ir.Graph):
        model.check()
        chain = model.as_chain()
        if chain is None:
            return _write_graph(model, metadata, quantize)
        model = chain  # a chain keeps the chain layout, byte for byte
    model.check()
    records = _records(model)
    _check_writable(model.layers, records)
    if quantize == "int16x8":
        if calibration is None:
            import warnings

            warnings.warn(
                "int16x8 without calibration data: the activation ranges are calibrated on "
                "random inputs (docs/quantization.md); pass calibration=representative inputs",
                stacklevel=2,
            )
        _int16x8_records(model, records, calibration)
        metadata = {
            **(metadata or {}),
            "int16x8": {"calibration": "default" if calibration is None else "caller"},
        }
    tensors = [(r.op, role, a) for r in records for role, a in r.tensors]
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

    data, tensor_bytes, quantized = _pack_tensors(tensors, quantize)
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
            *(tuple(r.params) + (0,) * (10 - len(r.params))),
        )
        first += len(r.tensors)

    body = bytes(layer_bytes) + bytes(tensor_bytes) + meta
    body += bytes(data_off - HEADER_SIZE - len(body)) + bytes(data)
    file_size = HEADER_SIZE + len(body)
    if file_size >= 2**32:
        raise ValueError(f"model too large for the .egru format ({file_size} bytes >= 4 GiB)")
    payload_crc = zlib.crc32(body)
    kind = INPUT_TOKENS if model.input.kind == ir.TOKENS else INPUT_FEATURES
    fields = [
        MAGIC,
        VERSION_MAJOR,
        3 if quantize == "int16x8" else 2 if quantized else model.version_minor(),
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
        QUANT_VERSION_INT16X8 if quantize == "int16x8" else QUANT_VERSION if quantized else 0,
        bytes(40),
        payload_crc,
        0,
    ]
    header = HEADER.pack(*fields)
    fields[-1] = zlib.crc32(header[:124])
    return HEADER.pack(*fields) + body


_CONCAT_AXES = {"time": 1, "features": 2}
_GRAPH_ENCODERS = {
    ir.Merge: lambda x: _Record(
        OP_MERGE, 0, x.dim, x.dim, params=(ir.MERGE_OPS.index(x.mode) + 1,)
    ),
    ir.Concatenate: lambda x: _Record(OP_CONCATENATE, 0, 0, 0, params=(_CONCAT_AXES[x.axis],)),
    ir.RepeatVector: lambda x: _Record(OP_REPEAT_VECTOR, 0, x.dim, x.dim, params=(int(x.n),)),
    ir.Attention: lambda x: _encode_attention(x),
    ir.Dot: lambda x: _Record(OP_DOT, 0, x.dim, 1, params=(int(x.normalize),)),
    ir.Reshape: lambda x: _Record(
        OP_RESHAPE, 0, x.in_dim, x.out_dim, params=(int(x.in_steps), int(x.out_steps))
    ),
    ir.Permute: lambda x: _Record(OP_PERMUTE, 0, x.dim, x.steps, params=(int(x.steps),)),
    ir.TimeSteps: lambda x: _Record(
        OP_TIME_STEPS,
        0,
        x.dim,
        x.dim,
        params=(
            ir.TIME_STEP_MODES.index(x.mode) + 1,
            x.start,
            x.end,
            x.size if x.mode == "upsample" else 0,
        ),
    ),
}


def _encode_attention(x: ir.Attention) -> _Record:
    """ATTENTION: params score (1 dot, 2 concat, 3 additive), causal, scale and concat weight
    as f32 bits (dot / concat; 0 for additive), 1 when masks are ignored (the Keras Dot
    pattern, ir.Attention.use_masks; written only then, so other records keep their bytes);
    additive with use_scale: one SCALE tensor."""
    score = ir.ATTENTION_SCORES.index(x.score) + 1
    additive = x.score == "additive"
    tensors = [(ROLE_SCALE, x.scale)] if additive and x.scale is not None else []
    params = (score, int(x.causal))
    if not additive:
        params += (_f32_bits(x.scale), _f32_bits(x.concat_weight) if x.score == "concat" else 0)
    if not x.use_masks:
        params += (1,)
    return _Record(OP_ATTENTION, 0, x.dim, x.value_dim, tensors=tensors, params=params)


def _encode(layer) -> _Record:
    enc = _ENCODERS.get(type(layer)) or _GRAPH_ENCODERS.get(type(layer))
    if enc is None:
        raise TypeError(f"cannot write IR layer {type(layer).__name__}")
    return enc(layer)


def _header_bytes(fields: list) -> bytes:
    header = HEADER.pack(*fields)
    fields[-1] = zlib.crc32(header[:124])
    return HEADER.pack(*fields)


def _write_graph(graph: ir.Graph, metadata: dict | None, quantize: str | None) -> bytes:
    """A graph file (docs/format.md "Graphs"): one tensor range per layer object (a layer
    applied in several nodes is stored once), one node record per node."""
    if quantize == "int16x8":
        raise UnsupportedError(
            "int16x8 graphs are not supported yet: this model is a graph (several inputs or "
            "outputs, merges, shared layers or states); use quantize='int8' or float32"
        )
    names = graph.value_names()
    ids = {n: i for i, n in enumerate(names)}
    unique, where = [], {}  # layer objects in order of first use; id(layer) -> index
    for node in graph.nodes:
        if id(node.layer) not in where:
            where[id(node.layer)] = len(unique)
            unique.append(node.layer)
    records = [_encode(layer) for layer in unique]
    _check_writable(unique, records)
    firsts, first = [], 0
    for r in records:
        firsts.append(first)
        first += len(r.tensors)
    tensors = [(r.op, role, a) for r in records for role, a in r.tensors]
    io = [ids[n] for n in (gi.name for gi in graph.inputs)] + [ids[n] for n in graph.outputs]
    node_bytes = bytearray()
    for k, node in enumerate(graph.nodes):
        u = where[id(node.layer)]
        r = records[u]
        in_w = graph.values[node.inputs[0]].width
        out_w = graph.values[node.outputs[0]].width
        if r.op == OP_EMBEDDING:
            in_w = r.input_dim
        if (r.op != OP_CONCATENATE and (r.input_dim, r.output_dim) != (in_w, out_w)) or (
            len(node.inputs) > 0xFFFF or len(node.outputs) > 0xFFFF
        ):
            raise ValueError(f"node {k}: widths {in_w} -> {out_w} do not match its layer")
        io_first = len(io)
        io += [ids[n] for n in node.inputs] + [ids[n] for n in node.outputs]
        node_bytes += LAYER.pack(
            r.op,
            r.flags | (FLAG_MASKED if node.masked else 0),
            in_w,
            out_w,
            firsts[u],
            len(r.tensors),
            r.activation,
            r.recurrent_activation,
            0,
            *(tuple(r.params) + (0,) * (10 - len(r.params))),
        )
        node_bytes += NODE.pack(io_first, len(node.inputs), len(node.outputs), 0, 0)
    value_bytes = bytearray()
    for n in names:
        v = graph.values[n]
        flags = VALUE_FLAG_MASKED if v.masked else 0
        value_bytes += VALUE.pack(VALUE_KINDS[v.kind], flags, 0, int(v.width), 0, 0)
    io_bytes = struct.pack(f"<{len(io)}I", *io)
    meta = json.dumps(
        {
            "producer": PRODUCER,
            "model_name": graph.name,
            "source": graph.source,
            **(metadata or {}),
            "graph": {
                "inputs": [gi.name for gi in graph.inputs],
                "outputs": list(graph.outputs),
                "values": names,
            },
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    data, tensor_bytes, quantized = _pack_tensors(tensors, quantize)
    layer_off = GRAPH_HEADER_SIZE
    tensor_off = layer_off + len(node_bytes)
    value_off = tensor_off + len(tensor_bytes)
    io_off = value_off + len(value_bytes)
    meta_off = io_off + len(io_bytes)
    data_off = _align(meta_off + len(meta))
    graph_header = GRAPH_HEADER.pack(
        len(names),
        VALUE_RECORD_SIZE,
        value_off,
        len(io),
        io_off,
        len(graph.inputs),
        len(graph.outputs),
        bytes(8),
    )
    body = graph_header + node_bytes + tensor_bytes + value_bytes + io_bytes + meta
    body += bytes(data_off - HEADER_SIZE - len(body)) + bytes(data)
    file_size = HEADER_SIZE + len(body)
    if file_size >= 2**32:
        raise ValueError(f"model too large for the .egru format ({file_size} bytes >= 4 GiB)")
    fields = [
        MAGIC, VERSION_MAJOR, 4, GRAPH_HEADER_SIZE, 0, ALIGNMENT, file_size,
        len(graph.nodes), NODE_RECORD_SIZE, layer_off, len(tensors), TENSOR_RECORD_SIZE,
        tensor_off, data_off, len(data), meta_off, len(meta), INPUT_GRAPH, 0, 0,
        QUANT_VERSION if quantized else 0, bytes(40), zlib.crc32(body), 0,
    ]  # fmt: skip
    return _header_bytes(fields) + body


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
    if h["input_kind"] == INPUT_GRAPH:
        _read_graph_header(blob, h, sections)
    elif h["input_kind"] not in (INPUT_TOKENS, INPUT_FEATURES) or not h["input_dim"]:
        _fail("invalid input kind or dimension in the header")
    return h


def _read_graph_header(blob, h: dict, sections: list) -> None:
    """The graph header of a graph file (docs/format.md "Graphs"), its value and io tables."""
    if (
        h["header_size"] < GRAPH_HEADER_SIZE
        or h["layer_record_size"] < NODE_RECORD_SIZE
        or h["input_dim"]
        or h["output_dim"]
    ):
        _fail("invalid graph header: header size, node record size or input/output widths")
    names = "value_count value_record_size value_table_offset io_count io_table_offset"
    names += " graph_input_count graph_output_count"
    g = dict(zip(names.split(), GRAPH_HEADER.unpack_from(blob, HEADER_SIZE)[:7], strict=True))
    if (
        g["value_count"] < 2
        or g["value_record_size"] < VALUE_RECORD_SIZE
        or g["io_table_offset"] % 4
        or g["graph_input_count"] < 1
        or g["graph_output_count"] < 1
    ):
        _fail("invalid graph header field (value table, io table or input/output counts)")
    lo, hi = h["header_size"], h["file_size"]
    new = [
        ("value table", g["value_table_offset"], g["value_count"] * g["value_record_size"]),
        ("io table", g["io_table_offset"], 4 * g["io_count"]),
    ]
    for what, off, size in new:
        if not _inside(off, size, lo, hi):
            _fail(f"the {what} lies outside the file")
    for i, (what, off, size) in enumerate(new):
        for other, o2, s2 in sections + new[i + 1 :]:
            if size and s2 and off < o2 + s2 and o2 < off + size:
                _fail(f"the {what} overlaps the {other}")
    h.update(g)


def read(blob) -> tuple[ir.Model | ir.Graph, dict]:
    """Parse `.egru` bytes back into an IR model (an ir.Graph for a graph file; nodes naming the
    same tensors share one layer object) and its metadata dict. Raises FormatError."""
    model, meta, _stored = _read(blob)
    return model, meta


def read_int16x8(blob) -> tuple[ir.Model, dict, list]:
    """An int16x8 file (header quant_version 2): its IR model (weights dequantized), metadata,
    and per layer (QPARAMS words as int32, [the int8 values of its S8 tensors in order]), the
    integers the runtime computes with (edgegru.int16x8.from_blob). Raises FormatError."""
    model, meta, stored = _read(blob)
    if stored is None:
        _fail("not an int16x8 file (header quant_version is not 2)")
    return model, meta, stored


#: Activations whose int16x8 outputs are in U (int16x8.BOUNDED), by code.
_UNIT_ACTS = frozenset({ACT_SIGMOID, ACT_TANH, ACT_HARD_SIGMOID, ACT_SOFTSIGN, ACT_SOFTMAX})
#: Ops whose output conversion follows their activation (U or G with a multiplier).
_ACT_CONVERTED = (OP_DENSE, OP_CONV1D, OP_ACTIVATION, OP_GRU, OP_LSTM, OP_SIMPLE_RNN)


def _check_int16x8_layer(k: int, op: int, act: int, ract: int, mats: list) -> None:
    """What the C runtime implements of int16x8 (EGRU_ERR_UNSUPPORTED / S8_TOO_WIDE there):
    Masking only first, bounded GRU / LSTM gates, a Conv1D window within the int8 bound."""
    if op == OP_MASKING and k != 0:
        _fail(f"layer {k}: an int16x8 Masking layer must be the first layer")
    if op in (OP_GRU, OP_LSTM) and ract not in _UNIT_ACTS - {ACT_SOFTMAX}:
        _fail(f"layer {k} ({OP_NAMES[op]}): int16x8 gates must be bounded")
    if op == OP_CONV1D and mats and not int8_product_fits(int(np.prod(mats[0].shape[1:]))):
        _fail(f"layer {k} (Conv1D): its int8 kernel window is wider than the int8 bound")


def _check_qparams(
    k: int, op: int, flags: int, dim: int, words: np.ndarray, mats: list, act: int
) -> None:
    """The rules of docs/format.md ("Integer-only files") for layer k's QPARAMS words: 8 header
    words, then per S8 tensor its rows' multipliers, shifts and biases (a Bidirectional layer: two
    such blocks, forward then backward, with equal headers; an Affine or LayerNorm layer: one
    signed multiplier, shift and bias per feature, and no S8 tensor)."""
    from .int16x8 import G_SAT, QMAX, QPARAMS_HEADER

    rows = [int(q.shape[0]) for q in mats]
    bidi = op in (OP_GRU, OP_LSTM, OP_SIMPLE_RNN) and bool(flags & FLAG_BIDIRECTIONAL)
    blocks = [(0, rows[:2]), (QPARAMS_HEADER + 3 * sum(rows[:2]), rows[2:])] if bidi else []
    if op in (OP_AFFINE, OP_LAYER_NORM):
        rows = [dim]
    if op == OP_LAYER_NORM and dim > 1 << 14:
        _fail(f"layer {k}: an int16x8 LayerNorm has at most {1 << 14} features, not {dim}")
    if not blocks:
        blocks = [(0, rows)]
    want = len(blocks) * QPARAMS_HEADER + 3 * sum(rows)
    if len(words) != want:
        _fail(f"layer {k}: its QPARAMS tensor has {len(words)} words, not {want}")
    w = words.astype(np.int64)

    def mult_ok(m, n):
        return np.all(((m == 0) & (n == 0)) | ((m >= 2**30) & (m < 2**31) & (n >= 0) & (n <= 62)))

    signed = op in (OP_AFFINE, OP_LAYER_NORM)  # their products' multipliers carry a sign
    for start, block_rows in blocks:
        pos = start + QPARAMS_HEADER
        for r in block_rows:
            m, n, b = w[pos : pos + r], w[pos + r : pos + 2 * r], w[pos + 2 * r : pos + 3 * r]
            if not mult_ok(np.abs(m) if signed else m, n) or np.any(np.abs(b) > G_SAT):
                _fail(f"layer {k}: a QPARAMS multiplier or bias is out of range")
            pos += 3 * r
    head = w[:QPARAMS_HEADER]
    if bidi and not np.array_equal(head, w[blocks[1][0] : blocks[1][0] + QPARAMS_HEADER]):
        _fail(f"layer {k}: the backward block's QPARAMS header differs from the forward one's")
    second = op == OP_ACTIVATION or bidi  # words 6, 7: a second multiplier

    def scale_ok(word):  # a positive finite float32
        v = np.array(word, dtype=np.int64).astype(np.uint32).view(np.float32)
        return bool(np.isfinite(v) and v > 0)

    state_bits = np.array(head[5], dtype=np.int64).astype(np.uint32).view(np.float32)
    fmt, no_mult = int(head[4]), head[2] == 0 and head[3] == 0
    if op in _ACT_CONVERTED:  # the activation's format; (0, 0) for U
        conversion_ok = fmt == (act in _UNIT_ACTS) and (fmt == 0 or no_mult)
    elif op in (OP_AFFINE, OP_LAYER_NORM):
        conversion_ok = fmt == 0
    else:
        conversion_ok = fmt == 0 and no_mult
    if (
        not mult_ok(head[2:3], head[3:4])
        or not conversion_ok
        or not scale_ok(head[1])
        or (head[0] != 0 if op == OP_EMBEDDING else not scale_ok(head[0]))
        or head[4] not in (0, 1)
        or (op == OP_MASKING and abs(int(head[5])) > QMAX)
        or (bidi and not (np.isfinite(state_bits) and state_bits > 0))
        or (op != OP_MASKING and not bidi and head[5])
        or (second and not mult_ok(head[6:7], head[7:8]))
        or (op == OP_LAYER_NORM and (head[6] < 0 or head[7] < 0))  # its epsilon E, >= 0
        or (not second and op != OP_LAYER_NORM and (head[6] or head[7]))
    ):
        _fail(f"layer {k}: a QPARAMS header word is out of range")


def _read(blob) -> tuple[ir.Model, dict, list | None]:
    blob = memoryview(blob).cast("B")
    h = read_header(blob)
    int16x8 = h["quant_version"] == QUANT_VERSION_INT16X8
    if int16x8 and h["input_kind"] == INPUT_GRAPH:
        _fail("int16x8 graphs are not supported yet (header quant_version 2 in a graph file)")
    data_lo = h["data_offset"]
    tensors, dtypes, ints = [], [], []
    for i in range(h["tensor_count"]):
        off = h["tensor_table_offset"] + i * h["tensor_record_size"]
        dtype, quant, rank, role, *rest = TENSOR.unpack_from(blob, off)
        dims, (doff, dsize, soff, scount) = rest[:4], rest[4:8]
        if (dtype, quant) not in (
            (DTYPE_F32, QUANT_NONE),
            (DTYPE_S8, QUANT_SYMMETRIC_PER_ROW),
            (DTYPE_S32, QUANT_NONE),
        ):
            _fail(f"tensor {i}: dtype {dtype}/quantization {quant} is not supported by this reader")
        if dtype == DTYPE_S8 and h["quant_version"] not in (QUANT_VERSION, QUANT_VERSION_INT16X8):
            _fail(f"tensor {i}: int8 data of quant_version {h['quant_version']} is not supported")
        if (dtype == DTYPE_S32) != (role == ROLE_QPARAMS) or (dtype == DTYPE_S32 and not int16x8):
            _fail(f"tensor {i}: int32 data is only for the QPARAMS of int16x8 files")
        if not 1 <= rank <= 4 or any(d == 0 for d in dims[:rank]) or any(dims[rank:]):
            _fail(f"tensor {i}: invalid rank or dims {dims}")
        shape = tuple(dims[:rank])
        itemsize = 1 if dtype == DTYPE_S8 else 4
        if (
            int(np.prod(shape)) * itemsize != dsize
            or doff % h["alignment"]
            or not _inside(doff, dsize, 0, h["data_size"])
        ):
            _fail(f"tensor {i}: data size or offset invalid")
        if dtype != DTYPE_S8 and (soff or scount):
            _fail(f"tensor {i}: scales on a tensor that is not int8")
        dtypes.append(dtype)
        if dtype == DTYPE_S32:
            if rank != 1:
                _fail(f"tensor {i}: a QPARAMS tensor has rank 1")
            words = np.frombuffer(blob, dtype="<i4", count=dsize // 4, offset=data_lo + doff)
            tensors.append((role, words.astype(np.int32)))
            ints.append(words.astype(np.int32))
            continue
        if dtype == DTYPE_F32:
            a = np.frombuffer(blob, dtype="<f4", count=dsize // 4, offset=data_lo + doff)
            if not np.all(np.isfinite(a)):
                _fail(
                    f"tensor {i} ({ROLE_NAMES.get(role, role)}): a float32 weight is NaN or "
                    "infinite"
                )
            tensors.append((role, a.reshape(shape).astype(np.float32)))
            ints.append(None)
            continue
        if role in PRODUCT_ROLES and rank == 2 and not int8_product_fits(shape[1]):
            _fail(
                f"tensor {i} ({ROLE_NAMES[role]}): an int8 matrix of {shape[1]} columns, more "
                "than 131072: its int32 sums could overflow"
            )
        if (
            scount != shape[0]
            or soff % h["alignment"]
            or not _inside(soff, 4 * scount, 0, h["data_size"])
        ):
            _fail(f"tensor {i}: int8 scales invalid")
        q = np.frombuffer(blob, dtype=np.int8, count=dsize, offset=data_lo + doff).reshape(shape)
        scale = np.frombuffer(blob, dtype="<f4", count=scount, offset=data_lo + soff)
        if not np.all(np.isfinite(scale)) or np.any(scale < 0) or np.any(q == -128):
            _fail(f"tensor {i}: int8 values or scales out of range")
        tensors.append((role, dequantize_rows(q, scale.astype(np.float32))))
        ints.append(q.astype(np.int8))

    kind = ir.TOKENS if h["input_kind"] == INPUT_TOKENS else ir.FEATURES
    meta = {}
    if h["meta_size"]:
        raw = bytes(blob[h["meta_offset"] : h["meta_offset"] + h["meta_size"]])
        try:
            meta = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            _fail("metadata block is not valid UTF-8 JSON")
    if h["input_kind"] == INPUT_GRAPH:
        return _read_graph(blob, h, tensors, dtypes, meta), meta, None
    names = meta.get("source", {}).get("layers", []) if isinstance(meta, dict) else []
    layers, masked_flags, stored = [], [], []
    next_tensor = 0
    for k in range(h["layer_count"]):
        off = h["layer_table_offset"] + k * h["layer_record_size"]
        op, flags, in_dim, out_dim, first, count, act, ract, _r, *params = LAYER.unpack_from(
            blob, off
        )
        if first != next_tensor or first + count > len(tensors):
            _fail(f"layer {k}: tensor range {first}..{first + count} invalid")
        next_tensor += count
        if op not in _DECODERS:
            _fail(f"layer {k}: unknown op {op}")
        if flags & ~_ALLOWED_FLAGS.get(op, FLAG_MASKED):
            _fail(f"layer {k}: flags {flags:#x} not valid for op {OP_NAMES[op]}")
        if op in (OP_GRU, OP_LSTM, OP_SIMPLE_RNN) and flags & FLAG_BIDIRECTIONAL and count:
            half = count // 2
            d = dtypes[first : first + count]
            if d[0] != d[half] or d[1 % count] != d[(half + 1) % count]:
                _fail(
                    f"layer {k} ({OP_NAMES[op]}): its directions store the kernel or the "
                    "recurrent kernel in different dtypes (float32 vs int8), which the runtime "
                    "does not implement"
                )
        if op == OP_LAYER_NORM:
            eps = np.float32(_bits_f32(params[0]))
            if not (np.isfinite(eps) and eps >= 0):
                _fail(f"layer {k} (LayerNorm): epsilon {float(eps)!r} is not finite and >= 0")
        if op == OP_MASKING and np.isnan(_bits_f32(params[0])):
            _fail(f"layer {k} (Masking): mask_value is NaN")
        name = names[k] if k < len(names) and isinstance(names[k], str) else f"layer_{k}"
        own = tensors[first : first + count]
        if int16x8:  # the last tensor is the layer's QPARAMS, every matrix S8
            if not own or own[-1][0] != ROLE_QPARAMS:
                _fail(f"layer {k} ({OP_NAMES[op]}): an int16x8 layer ends with its QPARAMS")
            mats = [q for q in ints[first : first + count - 1] if q is not None]
            n_s8 = sum((op, r) in QUANTIZABLE_INT16X8 for r, _a in own[:-1])
            if len(mats) != n_s8:
                _fail(f"layer {k} ({OP_NAMES[op]}): int16x8 stores every matrix as int8")
            _check_int16x8_layer(k, op, act, ract, mats)
            _check_qparams(k, op, flags, out_dim, own[-1][1], mats, act)
            stored.append((own[-1][1], mats))
            own = own[:-1]
        elif any(r == ROLE_QPARAMS for r, _a in own):
            _fail(f"layer {k}: QPARAMS outside an int16x8 file")
        rec = _Record(op, flags, in_dim, out_dim, act, ract, own, params)
        try:
            layer = _DECODERS[op](rec, name)
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"layer {k} ({OP_NAMES[op]}): {exc}") from None
        # Re-encoding the decoded layer must give back the same record: widths, tensors' roles
        # and shapes, activations and parameters all agree.
        again = _ENCODERS[type(layer)](layer)
        same = (
            (again.op, again.input_dim, again.output_dim, again.activation)
            == (op, in_dim, out_dim, act)
            and again.recurrent_activation == ract
            and again.flags == flags & ~FLAG_MASKED
            and tuple(again.params) + (0,) * (10 - len(again.params)) == tuple(params)
            and [(r, np.shape(a)) for r, a in again.tensors]
            == [(r, a.shape) for r, a in rec.tensors]
        )
        if not same:
            _fail(f"layer {k} ({OP_NAMES[op]}): record fields do not match its tensors")
        layers.append(layer)
        masked_flags.append(bool(flags & FLAG_MASKED))
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
    if [layer.masked for layer in model.layers] != masked_flags:
        _fail("MASKED flags do not follow the model's mask flow")
    return model, meta, stored if int16x8 else None


def _decode_node(k: int, fields: tuple, tensors: list, dtypes: list, name: str):
    """One node record of a graph file -> its IR layer (the checks of a chain's layer record,
    except the chain's widths; a Concatenate's widths come from its values)."""
    op, flags, in_dim, out_dim, first, count, act, ract, _r, *params = fields
    if op not in _DECODERS and op not in _GRAPH_DECODERS:
        _fail(f"node {k}: unknown op {op}")
    if flags & ~_ALLOWED_FLAGS.get(op, FLAG_MASKED):
        _fail(f"node {k}: flags {flags:#x} not valid for op {OP_NAMES[op]}")
    if not in_dim or not out_dim or act not in ACTIVATION_NAMES or ract not in ACTIVATION_NAMES:
        _fail(f"node {k}: zero width or unknown activation")
    if op in (OP_GRU, OP_LSTM, OP_SIMPLE_RNN) and flags & FLAG_BIDIRECTIONAL and count:
        half = count // 2
        d = dtypes[first : first + count]
        if d[0] != d[half] or d[1 % count] != d[(half + 1) % count]:
            _fail(f"node {k} ({OP_NAMES[op]}): its directions store a matrix in two dtypes")
    if op == OP_LAYER_NORM:
        eps = np.float32(_bits_f32(params[0]))
        if not (np.isfinite(eps) and eps >= 0):
            _fail(f"node {k} (LayerNorm): epsilon {float(eps)!r} is not finite and >= 0")
    if op == OP_MASKING and np.isnan(_bits_f32(params[0])):
        _fail(f"node {k} (Masking): mask_value is NaN")
    rec = _Record(op, flags, in_dim, out_dim, act, ract, tensors[first : first + count], params)
    try:
        layer = (_DECODERS.get(op) or _GRAPH_DECODERS[op])(rec, name)
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"node {k} ({OP_NAMES[op]}): {exc}") from None
    again = _encode(layer)
    widths = (in_dim, out_dim) if op != OP_CONCATENATE else (0, 0)
    # USE_BIAS is informational for Dense and Conv1D (their IR always has a bias): either value.
    loose = FLAG_MASKED | (FLAG_USE_BIAS if op in (OP_DENSE, OP_CONV1D) else 0)
    same = (
        (again.op, again.input_dim, again.output_dim, again.activation) == (op, *widths, act)
        and again.recurrent_activation == ract
        and again.flags & ~loose == flags & ~loose
        and tuple(again.params) + (0,) * (10 - len(again.params)) == tuple(params)
        and [(r, np.shape(a)) for r, a in again.tensors] == [(r, a.shape) for r, a in rec.tensors]
    )
    if not same:
        _fail(f"node {k} ({OP_NAMES[op]}): record fields do not match its tensors")
    return layer


_GRAPH_DECODERS = {
    OP_MERGE: lambda r, n: (
        ir.Merge(ir.MERGE_OPS[r.params[0] - 1], r.output_dim, name=n)
        if 1 <= r.params[0] <= len(ir.MERGE_OPS)
        else _fail(f"Merge mode {r.params[0]} unknown")
    ),
    OP_CONCATENATE: lambda r, n: ir.Concatenate(
        {v: k for k, v in _CONCAT_AXES.items()}[r.params[0]], name=n
    ),
    OP_REPEAT_VECTOR: lambda r, n: ir.RepeatVector(r.params[0], r.input_dim, name=n),
    OP_ATTENTION: lambda r, n: _decode_attention(r, n),
    OP_TIME_STEPS: lambda r, n: _decode_time_steps(r, n),
    OP_RESHAPE: lambda r, n: ir.Reshape(
        r.params[0], r.input_dim, r.params[1], r.output_dim, name=n
    ),
    OP_PERMUTE: lambda r, n: ir.Permute(r.params[0], r.input_dim, name=n),
    OP_DOT: lambda r, n: (
        ir.Dot(r.input_dim, bool(r.params[0]), name=n)
        if r.params[0] <= 1 and r.output_dim == 1
        else _fail(f"Dot normalize {r.params[0]} or width {r.output_dim} invalid")
    ),
}


def _decode_time_steps(r: _Record, name: str) -> ir.TimeSteps:
    if not 1 <= r.params[0] <= len(ir.TIME_STEP_MODES):
        raise ValueError(f"mode {r.params[0]} unknown")
    mode = ir.TIME_STEP_MODES[r.params[0] - 1]
    size = r.params[3] if mode == "upsample" else 1  # re-encoding checks params[3] == 0
    return ir.TimeSteps(mode, r.input_dim, r.params[1], r.params[2], size, name=name)


def _decode_attention(r: _Record, name: str) -> ir.Attention:
    if not 1 <= r.params[0] <= len(ir.ATTENTION_SCORES) or r.params[1] > 1:
        raise ValueError(f"score {r.params[0]} or causal {r.params[1]} unknown")
    score = ir.ATTENTION_SCORES[r.params[0] - 1]
    if r.params[4] > 1 or (r.params[4] and (score != "dot" or r.params[1])):
        raise ValueError(f"masks-ignored flag {r.params[4]} invalid (1 only for dot, not causal)")
    scale, weight = np.float32(_bits_f32(r.params[2])), np.float32(_bits_f32(r.params[3]))
    if score == "additive":
        scale = _tensor(r, 0, ROLE_SCALE) if r.tensors else None
    elif not (np.isfinite(scale) and np.isfinite(weight)):
        raise ValueError("scale or concat weight not finite")
    return ir.Attention(
        score, r.input_dim, r.output_dim, scale, weight if score == "concat" else 1.0,
        causal=bool(r.params[1]), name=name, use_masks=not r.params[4],
    )  # fmt: skip


def _read_graph(blob, h: dict, tensors: list, dtypes: list, meta) -> ir.Graph:
    """The graph of a graph file: values, io table and nodes, with every rule of docs/format.md
    "Graphs" checked (FormatError otherwise)."""
    n_val, n_in, n_out = h["value_count"], h["graph_input_count"], h["graph_output_count"]
    kinds = {v: k for k, v in VALUE_KINDS.items()}
    values = []
    for i in range(n_val):
        kind, flags, _r0, width, _r1, _r2 = VALUE.unpack_from(
            blob, h["value_table_offset"] + i * h["value_record_size"]
        )
        if kind not in kinds or not width or flags & ~VALUE_FLAG_MASKED:
            _fail(f"value {i}: unknown kind {kind}, zero width or unknown flags {flags:#x}")
        if flags & VALUE_FLAG_MASKED and kind != VALUE_SEQUENCE:
            _fail(f"value {i}: only a sequence carries a mask")
        values.append(ir.Value(kinds[kind], int(width), bool(flags & VALUE_FLAG_MASKED)))
    io = list(struct.unpack_from(f"<{h['io_count']}I", blob, h["io_table_offset"]))
    if any(v >= n_val for v in io):
        _fail("the io table names a value that does not exist")
    g = meta.get("graph", {}) if isinstance(meta, dict) else {}
    vnames = g.get("values") if isinstance(g, dict) else None
    ok = isinstance(vnames, list) and len(vnames) == n_val and len(set(map(str, vnames))) == n_val
    vnames = [str(v) for v in vnames] if ok else [f"value_{i}" for i in range(n_val)]
    if n_in + n_out > len(io):
        _fail("the io table is shorter than the model's inputs and outputs")
    ins, outs = io[:n_in], io[n_in : n_in + n_out]
    written = [0] * n_val
    for v in ins:
        written[v] += 1
    if len(set(ins)) != n_in:
        _fail("a model input is listed twice")
    for v in ins:
        if values[v].masked:
            _fail(f"model input {v} carries a mask")
    names = meta.get("source", {}).get("layers", []) if isinstance(meta, dict) else []
    nodes, by_range, pos, next_tensor = [], {}, n_in + n_out, 0
    for k in range(h["layer_count"]):
        off = h["layer_table_offset"] + k * h["layer_record_size"]
        fields = LAYER.unpack_from(blob, off)
        io_first, n_i, n_o, _r0, _r1 = NODE.unpack_from(blob, off + LAYER_RECORD_SIZE)
        first, count = fields[4], fields[5]
        if io_first != pos or n_i < 1 or n_o < 1 or pos + n_i + n_o > len(io):
            _fail(f"node {k}: its io range {io_first}+{n_i}+{n_o} is not the next in the table")
        pos += n_i + n_o
        reads, writes = io[io_first : io_first + n_i], io[io_first + n_i : pos]
        if any(written[v] == 0 for v in reads):
            _fail(f"node {k}: reads a value that no earlier node writes")
        for v in writes:
            written[v] += 1
            if written[v] > 1:
                _fail(f"node {k}: writes value {v}, which is an input or written before")
        name = names[k] if k < len(names) and isinstance(names[k], str) else f"node_{k}"
        if count and (first, count) in by_range:
            layer, fields0 = by_range[(first, count)]
            a, b = list(fields), list(fields0)
            a[1] &= ~FLAG_MASKED
            b[1] &= ~FLAG_MASKED
            if a != b:
                _fail(f"node {k}: shares tensors with an earlier node whose record differs")
        else:
            if first != next_tensor or first + count > len(tensors):
                _fail(f"node {k}: tensor range {first}..{first + count} invalid")
            next_tensor += count
            layer = _decode_node(k, fields, tensors, dtypes, name)
            if count:
                by_range[(first, count)] = (layer, fields)
        node = ir.Node(layer, [vnames[v] for v in reads], [vnames[v] for v in writes])
        node.masked = bool(fields[1] & FLAG_MASKED)
        nodes.append((node, fields))
    if pos != len(io) or next_tensor != len(tensors):
        _fail("some io table entries or tensors belong to no node")
    if any(w != 1 for w in written):
        _fail("a value is written by no node")
    if set(outs) & set(ins) or len(set(outs)) != n_out:
        _fail("a model output is a model input or listed twice")
    inputs = []
    for v in ins:
        x = values[v]
        kind = {ir.SEQUENCE: ir.FEATURES}.get(x.kind, x.kind)
        inputs.append(ir.GraphInput(vnames[v], kind, x.width))
    flags = [f[1] & FLAG_MASKED for _n, f in nodes]
    try:
        graph = ir.Graph(
            inputs,
            [n for n, _f in nodes],
            [vnames[v] for v in outs],
            name=meta.get("model_name", "model") if isinstance(meta, dict) else "model",
            source=meta.get("source", {}) if isinstance(meta, dict) else {},
        )
    except (ValueError, TypeError) as exc:
        raise FormatError(f"inconsistent graph: {exc}") from None
    for k, ((node, fields), flag) in enumerate(zip(nodes, flags, strict=True)):
        if node.masked != bool(flag):
            _fail(f"node {k}: its MASKED flag does not follow the graph's masks")
        in_w = graph.values[node.inputs[0]].width
        out_w = graph.values[node.outputs[0]].width
        if (fields[2], fields[3]) != (in_w, out_w):
            _fail(f"node {k}: input_dim / output_dim {fields[2:4]} != its values' {in_w, out_w}")
    for i, name in enumerate(vnames):
        if graph.values[name] != values[i]:
            _fail(f"value {i}: kind, width or mask {values[i]} != {graph.values[name]}")
    return graph


DTYPE_NAMES = {DTYPE_F32: "f32", DTYPE_S8: "int8", DTYPE_S32: "int32"}


def layer_storage(blob) -> list[dict]:
    """Per layer, how its weights are stored: {"dtypes": sorted dtype names of its tensors,
    "bytes": data bytes including int8 scales}. For `edgegru info`; the blob must be valid."""
    blob = memoryview(blob).cast("B")
    h = read_header(blob)
    out = []
    for k in range(h["layer_count"]):
        off = h["layer_table_offset"] + k * h["layer_record_size"]
        first, count = LAYER.unpack_from(blob, off)[4:6]
        dtypes, size = set(), 0
        for i in range(first, first + count):
            t = h["tensor_table_offset"] + i * h["tensor_record_size"]
            dtype, _q, _rank, _role, *rest = TENSOR.unpack_from(blob, t)
            dtypes.add(DTYPE_NAMES.get(dtype, str(dtype)))
            size += rest[5] + 4 * rest[7]  # data_size + scale_count floats
        out.append({"dtypes": sorted(dtypes), "bytes": size})
    return out


def _tensor(rec: _Record, i: int, role: int) -> np.ndarray:
    r, a = rec.tensors[i]
    if r != role:
        raise ValueError(f"tensor {i} has role {r}, expected {role}")
    return a


def _decode_rnn(rec: _Record, name: str):
    cls = {OP_GRU: ir.GRU, OP_LSTM: ir.LSTM, OP_SIMPLE_RNN: ir.SimpleRNN}[rec.op]
    bidir = bool(rec.flags & FLAG_BIDIRECTIONAL)
    per_dir = 4 if rec.op == OP_GRU else 3
    if len(rec.tensors) != per_dir * (2 if bidir else 1):
        raise ValueError("wrong number of tensors")

    def one(k: int, backwards: bool):
        t = [
            _tensor(rec, k * per_dir + j, role)
            for j, role in enumerate(
                [ROLE_KERNEL, ROLE_RECURRENT, ROLE_INPUT_BIAS, ROLE_RECURRENT_BIAS]
                if rec.op == OP_GRU
                else [ROLE_KERNEL, ROLE_RECURRENT, ROLE_BIAS]
            )
        ]
        common = dict(
            return_sequences=bool(rec.flags & FLAG_RETURN_SEQUENCES),
            use_bias=bool(rec.flags & FLAG_USE_BIAS),
            activation=ACTIVATION_NAMES[rec.activation],
            go_backwards=backwards,
            name=f"{name}/{'backward' if k else 'forward'}" if bidir else name,
        )
        if rec.op != OP_SIMPLE_RNN:
            common["recurrent_activation"] = ACTIVATION_NAMES[rec.recurrent_activation]
        if rec.op == OP_GRU:
            return ir.GRU(
                t[0].T, t[1].T, t[2], t[3], reset_after=bool(rec.flags & FLAG_RESET_AFTER), **common
            )
        return cls(t[0].T, t[1].T, t[2], **common)

    if not bidir:
        return one(0, bool(rec.flags & FLAG_GO_BACKWARDS))
    modes = {v: k for k, v in MERGE_MODES.items()}
    return ir.Bidirectional(one(0, False), one(1, True), modes[rec.params[0]], name=name)


def _decode_affine(rec: _Record, name: str):
    scale, shift = _tensor(rec, 0, ROLE_SCALE), _tensor(rec, 1, ROLE_SHIFT)
    if rec.op == OP_AFFINE:
        return ir.Affine(scale, shift, name=name)
    return ir.LayerNorm(scale, shift, _bits_f32(rec.params[0]), name=name)


#: op -> (record, name) -> IR layer; the inverse of _ENCODERS.
_DECODERS = {
    OP_EMBEDDING: lambda r, n: ir.Embedding(
        _tensor(r, 0, ROLE_TABLE), name=n, mask_zero=bool(r.flags & FLAG_MASK_ZERO)
    ),
    OP_GRU: _decode_rnn,
    OP_LSTM: _decode_rnn,
    OP_SIMPLE_RNN: _decode_rnn,
    OP_DENSE: lambda r, n: ir.Dense(
        _tensor(r, 0, ROLE_KERNEL).T, _tensor(r, 1, ROLE_BIAS), ACTIVATION_NAMES[r.activation], n
    ),
    OP_CONV1D: lambda r, n: ir.Conv1D(
        _tensor(r, 0, ROLE_KERNEL).transpose(1, 2, 0),
        _tensor(r, 1, ROLE_BIAS),
        strides=r.params[1],
        dilation_rate=r.params[2],
        padding={v: k for k, v in PADDINGS.items()}[r.params[3]],
        activation=ACTIVATION_NAMES[r.activation],
        name=n,
    ),
    OP_GLOBAL_POOL: lambda r, n: ir.GlobalPool(
        r.input_dim, {v: k for k, v in POOLS.items()}[r.params[0]], name=n
    ),
    OP_AFFINE: _decode_affine,
    OP_LAYER_NORM: _decode_affine,
    OP_ACTIVATION: lambda r, n: ir.Activation(r.input_dim, ACTIVATION_NAMES[r.activation], n),
    OP_FLATTEN: lambda r, n: ir.Flatten(r.params[0], r.input_dim, name=n),
    OP_MASKING: lambda r, n: ir.Masking(r.input_dim, _bits_f32(r.params[0]), name=n),
}
