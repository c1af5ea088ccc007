"""`validate`: run one input through Keras, onnxruntime and the C runtime and compare.

Tolerances are named constants with their reason; a report is `ok` only when every pair agrees
within its tolerance. The comparison is NaN-aware (`compare`): NaN equals NaN and an infinity
equals the same-signed infinity; a non-finite value against anything else is a mismatch, counted
per pair and failing the report whatever the tolerance.

An int8 `.egru` file (`convert(..., quantize="int8")`) is validated against the int8 bounds of
docs/quantization.md by default (`INT8_TOLERANCE`, `INT8_ONNX_TOLERANCE`); `tolerance=` overrides
every pair's bound.

Bad arguments (a missing file, an input that does not fit the model, a batch or T below 1) raise
an edgegru error naming the problem (InputError, FormatError, ...) before Keras or TensorFlow run,
so that their tracebacks never stand in for a message.

`accuracy_report`: with labelled inputs, the task accuracy of Keras and of any number of other
predict functions (edgegru fp32, ...), one row each, with the drop against Keras in points.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from . import format as fmt
from . import ir
from .errors import EdgeGRUError, FormatError, InputError, UnsupportedError
from .runtime import load

#: Max abs error allowed between any two fp32 implementations. All three compute the same float32
#: arithmetic in different orders; with realistic (fan-in scaled or trained) weights the measured
#: gap is <= 1e-6 (docs: shared notes, Q1), so 1e-5 leaves a 10x margin. Chaotic random models
#: (huge weights) can differ by far more in any pair; that is not a conversion error.
FP32_TOLERANCE = 1e-5
#: Max abs error allowed between an int8 `.egru` model and a float32 implementation of the same
#: model (Keras, or onnxruntime on a float32 export): the bound docs/quantization.md states and
#: tests/test_quantize.py holds on 61 random models ("C int8 vs the float32 model": 0.1, measured
#: max 3.9e-2).
INT8_TOLERANCE = 0.1
#: Max abs error allowed between an int8 `.egru` model and onnxruntime on the int8 ONNX export
#: (the same int8 weights dequantized, float inputs): docs/quantization.md's bound 0.05
#: (measured max 2.1e-2).
INT8_ONNX_TOLERANCE = 0.05
#: Max abs error allowed between an int16x8 (integer-only) `.egru` model and a float32
#: implementation of the same model, for inputs inside the calibrated ranges (beyond them
#: values saturate): tests/test_int16x8.py measures at most 0.03 (MODEL_TOLERANCE) on its random
#: GRU / LSTM / SimpleRNN models; docs/quantization.md, "int16x8".
INT16X8_TOLERANCE = 0.05

#: Header input_kind of a graph file (docs/format.md "Graphs").
INPUT_GRAPH = 3

#: Sequence length used for generated inputs when the model does not fix one.
DEFAULT_SEQ_LEN = 50
#: Batch size of generated inputs.
DEFAULT_BATCH = 8
#: Largest generated input (values): 2**28 float32 values are 1 GiB, and Keras, onnxruntime and
#: edgegru each hold the input and outputs as well; a validation needs far less.
MAX_GENERATED_VALUES = 2**28

PAIRS = ("keras~onnxruntime", "keras~edgegru", "onnxruntime~edgegru")


def compare(a, b) -> tuple[float, int]:
    """NaN-aware comparison of two outputs: (max |a - b| over the positions where both are
    finite, number of positions where a non-finite value meets a different value). NaN == NaN and
    +-inf == the same-signed inf count as agreeing; NaN against a number, inf against a number or
    against -inf count as mismatches. Differently shaped outputs: (inf, 0). Empty: (0.0, 0)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf"), 0
    if not a.size:
        return 0.0, 0
    finite = np.isfinite(a) & np.isfinite(b)
    same_nonfinite = (np.isnan(a) & np.isnan(b)) | (~finite & (a == b))
    mismatches = int(np.count_nonzero(~finite & ~same_nonfinite))
    err = float(np.max(np.abs(a[finite] - b[finite]))) if finite.any() else 0.0
    return err, mismatches


@dataclass
class ValidationReport:
    """max_abs_error: pair name ("keras~onnxruntime", "keras~edgegru", "onnxruntime~edgegru")
    -> max |a - b| over the positions where both outputs are finite (inf when the shapes differ).
    nonfinite_mismatches: pair -> positions where a NaN or inf of one output meets a different
    value in the other (NaN == NaN and same-signed infinities agree).
    tolerance: one bound for every pair (a float) or pair -> bound; `tolerances` gives the latter.
    ok: every pair within its bound and without non-finite mismatches.
    skipped: runtime name -> why it took no part (a pair with it is then absent).
    quantized: the `.egru` file holds int8 weights (its default bounds are the int8 ones)."""

    max_abs_error: dict
    tolerance: float | dict
    input_shape: tuple
    output_shape: tuple
    outputs: dict = field(repr=False, default_factory=dict)
    nonfinite_mismatches: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    quantized: bool = False
    int16x8: bool = False

    @property
    def tolerances(self) -> dict:
        if isinstance(self.tolerance, Mapping):
            return dict(self.tolerance)
        return {pair: float(self.tolerance) for pair in self.max_abs_error}

    def pair_ok(self, pair: str) -> bool:
        err = self.max_abs_error[pair]
        return err <= self.tolerances[pair] and not self.nonfinite_mismatches.get(pair, 0)

    @property
    def ok(self) -> bool:
        return all(self.pair_ok(pair) for pair in self.max_abs_error)

    def __str__(self) -> str:
        kind = (
            " (int16x8 .egru: int16x8 bounds, docs/quantization.md)"
            if self.int16x8
            else " (int8 .egru: int8 bounds, docs/quantization.md)"
            if self.quantized
            else ""
        )
        lines = [
            f"validation on input {self.input_shape} -> output {self.output_shape}{kind}",
            f"{'pair':<24}{'max abs error':>16}{'non-finite diff':>17}{'tolerance':>12}  result",
        ]
        tolerances = self.tolerances
        for pair, err in self.max_abs_error.items():
            verdict = "ok" if self.pair_ok(pair) else "FAIL"
            bad = self.nonfinite_mismatches.get(pair, 0)
            lines.append(f"{pair:<24}{err:>16.3e}{bad:>17}{tolerances[pair]:>12.0e}  {verdict}")
        for name, why in self.skipped.items():
            lines.append(f"{name} skipped: {why}")
        lines.append("PASSED" if self.ok else "FAILED")
        return "\n".join(lines)


def _count(name: str, value, allow_none: bool = False):
    """A batch size or sequence length argument: an int >= 1 (or None when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise InputError(f"{name} must be >= 1, got {value}")
    return int(value)


def _fixed_steps(model: ir.Model) -> int | None:
    """The T a model with a Flatten needs (the shortest, when a strided Conv1D before it lets a
    few T give the same width), else None."""
    flat = next((k for k, la in enumerate(model.layers) if isinstance(la, ir.Flatten)), None)
    if flat is None:
        return None
    before = ir.Model(model.input, model.layers[:flat])
    want = model.layers[flat].steps
    lo, hi = 1, max(1, want)
    while before.output_steps(hi) < want:  # output_steps never decreases as T grows
        lo, hi = hi, 2 * hi
        if hi > 2**32:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        if before.output_steps(mid) >= want:
            hi = mid
        else:
            lo = mid + 1
    return lo if before.output_steps(lo) == want else None


def generate_inputs(
    model: ir.Model, batch: int = DEFAULT_BATCH, seq_len: int | None = None, seed: int = 0
) -> np.ndarray:
    """Inputs that fit `model`: token ids uniform in [1, vocab) (0 is often padding), or float
    frames ~ N(0, 1). T: seq_len, else the T a Flatten fixes, else the T the Keras model
    declares, else DEFAULT_SEQ_LEN. Raises InputError for batch or seq_len below 1, a negative
    seed, more than MAX_GENERATED_VALUES values, and a seq_len other than a Flatten's."""
    batch = _count("batch", batch)
    seq_len = _count("seq_len", seq_len, allow_none=True)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")
    fixed = _fixed_steps(model)
    if seq_len is not None and fixed is not None and seq_len != fixed:
        raise InputError(
            f"this model takes sequences of exactly {fixed} steps (it has a Flatten); "
            f"got seq_len {seq_len}"
        )
    steps = seq_len or fixed or model.input.seq_len or DEFAULT_SEQ_LEN
    values = batch * steps * (model.input.dim if model.input.kind == ir.FEATURES else 1)
    if values > MAX_GENERATED_VALUES:
        raise InputError(
            f"a generated input of batch {batch} x T {steps} would hold {values} values, more "
            f"than {MAX_GENERATED_VALUES}: use a smaller --batch / --seq-len, or give --x"
        )
    rng = np.random.default_rng(seed)
    if model.input.kind == ir.TOKENS:
        low = 1 if model.input.dim > 1 else 0
        return rng.integers(low, model.input.dim, size=(batch, steps)).astype(np.int64)
    return rng.standard_normal((batch, steps, model.input.dim)).astype(np.float32)


def check_inputs(model: ir.Model, x) -> np.ndarray:
    """`x` as an array fitting `model` (what Keras' predict would accept without an error), or
    InputError naming what does not fit: rank, dtype, feature width, an empty batch or T, a T
    other than a Flatten's, a token id outside the vocabulary, a NaN or infinity."""
    try:
        x = np.asarray(x)
    except ValueError as exc:  # a ragged list
        raise InputError(f"the input is not a rectangular array: {exc}") from None
    spec = model.input
    if spec.kind == ir.TOKENS:
        if x.ndim != 2:
            raise InputError(f"expected token ids of shape (batch, T), got shape {x.shape}")
        if x.dtype.kind not in "iu":
            raise InputError(f"token ids must be an integer array, got dtype {x.dtype}")
    else:
        want = f"features of shape (batch, T, {spec.dim})"
        if x.ndim != 3:
            raise InputError(f"expected {want}, got shape {x.shape}")
        if x.dtype.kind not in "fiu":
            raise InputError(f"features must be a float array, got dtype {x.dtype}")
        if x.shape[2] != spec.dim:
            raise InputError(f"expected {want}, got {x.shape[2]} features per step")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise InputError(f"batch and sequence length must be >= 1, got shape {x.shape}")
    fixed = _fixed_steps(model)
    if fixed is not None and x.shape[1] != fixed:
        raise InputError(
            f"this model takes sequences of exactly {fixed} steps (it has a Flatten); "
            f"the input has {x.shape[1]} (shape {x.shape})"
        )
    if spec.kind == ir.TOKENS:
        bad = (x < 0) | (x >= spec.dim)
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(
                f"token id {x[pos]} at position {pos} is out of range: the model's vocabulary "
                f"has {spec.dim} ids (0 .. {spec.dim - 1})"
            )
    else:
        with np.errstate(over="ignore"):
            finite = np.isfinite(x.astype(np.float32))
        if not finite.all():
            pos = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise InputError(
                f"input value {x[pos]} at position {pos} is not a finite float32; NaN and "
                "infinity are not valid inputs"
            )
    return x


def _keras_model(model):
    if isinstance(model, (str, os.PathLike)):
        from .keras_import import _import_keras

        path = os.fspath(model)
        if not os.path.isfile(path):
            raise InputError(f"no Keras model file at {path!r}")
        keras = _import_keras()
        try:
            return keras.saving.load_model(path, compile=False)
        except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors, ...
            raise FormatError(f"Keras cannot load {path!r}: {_first_line(exc)}") from None
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _is_graph_file(blob: bytes) -> bool:
    """Whether `.egru` bytes are a graph file (header input_kind GRAPH); False for bytes whose
    header cannot be read (the runtime's load then names the problem)."""
    try:
        return fmt.read_header(blob)["input_kind"] == INPUT_GRAPH
    except Exception:  # any unreadable header: load() reports it
        return False


def _is_quantized(blob: bytes) -> bool:
    """Whether `.egru` bytes hold int8 weights (header quant_version != 0)."""
    return fmt.read_header(blob)["quant_version"] != 0


def _onnx_is_quantized(src) -> bool:
    import onnx

    proto = src if isinstance(src, onnx.ModelProto) else None
    if proto is None:
        if isinstance(src, (bytes, bytearray)):
            proto = onnx.load_from_string(bytes(src))
        else:
            proto = onnx.load(os.fspath(src), load_external_data=False)
    return any(n.op_type == "DequantizeLinear" for n in proto.graph.node)


def default_tolerances(
    quantized: bool, onnx_quantized: bool = False, int16x8: bool = False
) -> dict:
    """Pair -> the documented bound: FP32_TOLERANCE between float32 implementations; with an
    int8 `.egru` file INT8_TOLERANCE against float32 ones and INT8_ONNX_TOLERANCE against an
    int8 ONNX export (same int8 weights); with an int16x8 file INT16X8_TOLERANCE."""
    egru = INT16X8_TOLERANCE if int16x8 else INT8_TOLERANCE if quantized else FP32_TOLERANCE
    if onnx_quantized:
        onnx_egru = INT8_ONNX_TOLERANCE if quantized else INT8_TOLERANCE
        keras_onnx = INT8_TOLERANCE
    else:
        onnx_egru = egru
        keras_onnx = FP32_TOLERANCE
    return {
        "keras~onnxruntime": keras_onnx,
        "keras~edgegru": egru,
        "onnxruntime~edgegru": onnx_egru,
    }


def _onnx_session(onnx_model_or_path):
    """An onnxruntime session (CPU, one thread) of an ONNX model, a path or serialized bytes."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("validation needs the 'onnx' extra: pip install 'edgegru[onnx]'") from exc
    import onnx

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    src = onnx_model_or_path
    proto = src if isinstance(src, onnx.ModelProto) else None
    if proto is None and isinstance(src, (str, os.PathLike)):
        proto = onnx.load(os.fspath(src), load_external_data=False)
    if proto is not None and any(n.op_type == "DequantizeLinear" for n in proto.graph.node):
        # An int8 export: onnxruntime's extended optimisations would fuse DequantizeLinear into
        # integer kernels that also quantize the activations; the basic level folds the
        # dequantized weights into float constants, so the graph runs exactly those weights.
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if not isinstance(src, (str, os.PathLike, bytes)):
        src = src.SerializeToString()
    if isinstance(src, os.PathLike):
        src = os.fspath(src)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def run_onnx(onnx_model_or_path, x: np.ndarray) -> np.ndarray:
    """Run an exported edgegru ONNX graph in onnxruntime (CPU, one thread)."""
    sess = _onnx_session(onnx_model_or_path)
    inp = sess.get_inputs()[0]
    feed = x.astype(np.int64) if inp.type == "tensor(int64)" else x.astype(np.float32)
    return sess.run(None, {inp.name: feed})[0]


def _read_egru(egru_path) -> bytes:
    if isinstance(egru_path, (bytes, bytearray, memoryview)):
        return bytes(egru_path)
    path = os.fspath(egru_path)
    if not os.path.isfile(path):
        raise InputError(f"no .egru file at {path!r}")
    with open(path, "rb") as f:
        return f.read()


def validate(
    model,
    egru_path,
    onnx_path=None,
    x=None,
    *,
    batch: int = DEFAULT_BATCH,
    seq_len: int | None = None,
    seed: int = 0,
    tolerance: float | None = None,
    ir_model=None,
) -> ValidationReport | GraphValidationReport:
    """Compare Keras, onnxruntime and the C runtime on the same input.

    model: the Keras model (live, or a .keras path) the files were converted from.
    egru_path: the converted `.egru` file (a path or bytes).
    onnx_path: the exported ONNX file; when None, the ONNX graph is exported (float32) in memory
        from the same conversion, so onnxruntime still takes part; when that export refuses the
        model (an activation onnxruntime cannot reproduce, docs/onnx.md), onnxruntime is skipped
        and the report says why.
    x: the input; when None, `generate_inputs(batch, seq_len, seed)` makes one. A dict (or an
        `.npz` from `read_inputs_npz`) holding one array, whatever its name, is that array.
    tolerance: one bound for every pair; None: the documented bounds (`default_tolerances`):
        FP32_TOLERANCE for a float32 file, INT8_TOLERANCE / INT8_ONNX_TOLERANCE for an int8 one.

    ir_model: the IR of `model` when the caller has it (an ir.Model or ir.Graph); None: imported
        from `model` (`convert.to_ir`).

    Graph models (an ir.Graph, Keras' Functional API beyond a chain): x is a list in the model's
    input order, a dict keyed by the input names (e.g. `read_inputs_npz(path)`), or for one
    input an array; None: `generate_graph_inputs(batch, seq_len, seed)`. egru_path may be None
    (edgegru is then skipped and the report says so). Every output is compared; the result is a
    `GraphValidationReport` (one `ValidationReport` per output name).

    Raises InputError for arguments that do not fit (a missing file, an input of the wrong shape
    or dtype, a token id outside the vocabulary, batch or seq_len below 1), FormatError for a
    file that cannot be read, UnsupportedError for a model edgegru cannot convert.
    """
    from .convert import to_ir

    if tolerance is not None and (
        isinstance(tolerance, bool) or not np.isfinite(tolerance) or tolerance < 0
    ):
        raise InputError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    if isinstance(model, (str, os.PathLike)) and not os.path.isfile(os.fspath(model)):
        raise InputError(f"no Keras model file at {os.fspath(model)!r}")
    blob = None if egru_path is None else _read_egru(egru_path)
    if ir_model is None and (blob is None or _is_graph_file(blob)):
        ir_model = to_ir(model)
    if isinstance(ir_model, ir.Graph):
        return _validate_graph(model, ir_model, blob, onnx_path, x, batch, seq_len, seed, tolerance)
    if blob is None:
        raise InputError("a chain model needs its .egru file (egru_path)")
    egru_model = load(blob)
    quantized = _is_quantized(blob)
    int16x8 = egru_model.int16x8
    # The IR first: a .keras path is read without TensorFlow, so a bad file or an unsupported
    # layer is reported before Keras starts.
    m_ir = to_ir(model) if ir_model is None else ir_model
    if isinstance(m_ir, ir.Graph):
        return _validate_graph(model, m_ir, blob, onnx_path, x, batch, seq_len, seed, tolerance)
    if (egru_model.input_kind, egru_model.input_dim) != (m_ir.input.kind, m_ir.input.dim):
        raise InputError(
            f"the .egru file takes {egru_model.input_kind} of width {egru_model.input_dim} but "
            f"the Keras model takes {m_ir.input.kind} of width {m_ir.input.dim}: they are not "
            "the same model"
        )
    if x is None:
        x = generate_inputs(m_ir, batch=batch, seq_len=seq_len, seed=seed)
    if isinstance(x, Mapping) or hasattr(x, "files"):  # a dict / .npz: one array for a chain
        keys = list(x.files if hasattr(x, "files") else x.keys())
        if len(keys) != 1:
            raise InputError(f"this model has one input; got {len(keys)} arrays {keys}")
        x = x[keys[0]]
    x = check_inputs(m_ir, x)
    keras_model = _keras_model(model)

    skipped = {}
    onnx_src = onnx_path
    if onnx_path is None:
        from .onnx_export import to_onnx

        try:
            onnx_src = to_onnx(m_ir)
        except UnsupportedError as exc:
            onnx_src = None
            skipped["onnxruntime"] = f"the ONNX export refuses this model: {exc}"
    elif not isinstance(onnx_path, (bytes, bytearray)) and not os.path.isfile(os.fspath(onnx_path)):
        raise InputError(f"no ONNX file at {os.fspath(onnx_path)!r}")

    outputs = {}
    try:
        outputs["keras"] = np.asarray(keras_model.predict(x, verbose=0), dtype=np.float32)
    except Exception as exc:  # TensorFlow's errors for inputs the checks above let through
        raise InputError(
            f"Keras could not run the model on the input of shape {x.shape}: {_first_line(exc)}"
        ) from None
    onnx_quantized = False
    if onnx_src is not None:
        try:
            onnx_quantized = _onnx_is_quantized(onnx_src)
            outputs["onnxruntime"] = np.asarray(run_onnx(onnx_src, x), dtype=np.float32)
        except ImportError:
            raise
        except Exception as exc:  # onnx / onnxruntime errors: not a graph for this input
            raise FormatError(
                f"onnxruntime could not run the ONNX model on the input of shape {x.shape}: "
                f"{_first_line(exc)}"
            ) from None
    try:
        outputs["edgegru"] = egru_model.predict(x)
    except EdgeGRUError as exc:
        raise type(exc)(f"the .egru model: {exc}", exc.code) from None

    tolerances = (
        default_tolerances(quantized, onnx_quantized, int16x8)
        if tolerance is None
        else dict.fromkeys(PAIRS, float(tolerance))
    )
    errors, nonfinite = {}, {}
    for pair in PAIRS:
        a_name, b_name = pair.split("~")
        if a_name not in outputs or b_name not in outputs:
            continue
        errors[pair], nonfinite[pair] = compare(outputs[a_name], outputs[b_name])
    tolerances = {pair: tolerances[pair] for pair in errors}
    return ValidationReport(
        errors,
        tolerances,
        tuple(x.shape),
        tuple(outputs["edgegru"].shape),
        outputs,
        nonfinite_mismatches=nonfinite,
        skipped=skipped,
        quantized=quantized,
        int16x8=int16x8,
    )


# --- graphs (ir.Graph): several inputs and outputs ------------------------------------------------
#
# A graph model's inputs are a list in `graph.inputs` order (Keras' model.inputs), or a dict keyed
# by the input names; from files, one `.npz` with an array per input name (`read_inputs_npz`).
# Every output is compared separately; `GraphValidationReport` has one `ValidationReport` per
# output, named as the graph output.

#: Scale of generated vector inputs (e.g. a decoder's state input): N(0, 0.5^2), inside the
#: (-1, 1) range a tanh state lives in for most rows.
VECTOR_INPUT_SCALE = 0.5


def _input_readers(graph: ir.Graph, name: str) -> list:
    return [n.layer for n in graph.nodes if name in n.inputs]


def _pad_rows(x: np.ndarray, value) -> np.ndarray:
    """Rows padded (set to `value`, what the model's Embedding(mask_zero) or Masking masks): row
    r % 4 == 0 not at all, 1 at the end (the last T // 3 steps), 2 at the front (the first T // 4),
    3 in the middle (T // 4 steps from T // 3); every row keeps at least one valid step."""
    steps = x.shape[1]
    pads = (
        slice(0, 0),
        slice(steps - steps // 3, steps),
        slice(0, steps // 4),
        slice(steps // 3, steps // 3 + steps // 4),
    )
    for row in range(x.shape[0]):
        x[row, pads[row % len(pads)]] = value
    return x


def graph_steps(graph: ir.Graph, steps: Mapping) -> dict:
    """Value name -> its steps (None for vectors), from the steps of the token / feature inputs
    (`steps`: input name -> T), node by node as the runtimes derive them (docs/format.md
    "Steps"). Raises InputError for a merge or a concatenation along features of sequences with
    different steps, a Conv1D input shorter than its kernel, a Flatten whose T differs."""
    out = {gi.name: (None if gi.kind == ir.VECTOR else int(steps[gi.name])) for gi in graph.inputs}
    for node in graph.nodes:
        layer = node.layer
        ins = [out[v] for v in node.inputs]
        where = f"{type(layer).__name__} {getattr(layer, 'name', '?')!r}"
        kind = graph.values[node.outputs[0]].kind
        if isinstance(layer, ir.RepeatVector):
            t = int(layer.n)
        elif isinstance(layer, (ir.Reshape, ir.Permute)):
            want = layer.in_steps if isinstance(layer, ir.Reshape) else layer.steps
            if want and ins[0] != want:
                raise InputError(f"{where} takes sequences of exactly {want} steps, got {ins[0]}")
            t = (layer.out_steps or None) if isinstance(layer, ir.Reshape) else int(layer.dim)
        elif isinstance(layer, ir.TimeSteps):
            t = layer.out_steps(ins[0])
            if t < 1:
                raise InputError(f"{where}: an input of {ins[0]} steps is too short to crop")
        elif isinstance(layer, ir.Concatenate) and layer.axis == "time":
            t = sum(ins)
        elif isinstance(layer, (ir.Merge, ir.Concatenate)):
            if kind == ir.SEQUENCE and len(set(ins)) != 1:
                raise InputError(
                    f"{where} merges sequences of different lengths {ins} (inputs "
                    f"{node.inputs}): give inputs whose steps agree"
                )
            t = ins[0]
        elif isinstance(layer, ir.Conv1D):
            t = layer.out_steps(ins[0])
            if t < 1:
                raise InputError(f"{where}: an input of {ins[0]} steps is shorter than its kernel")
        elif isinstance(layer, ir.Flatten):
            if ins[0] != layer.steps:
                raise InputError(
                    f"{where} takes sequences of exactly {layer.steps} steps, got {ins[0]}"
                )
            t = None
        else:
            t = ins[0]
        for k, name in enumerate(node.outputs):
            out[name] = t if k == 0 and kind == ir.SEQUENCE else None
    return out


def generate_graph_inputs(
    graph: ir.Graph, batch: int = DEFAULT_BATCH, seq_len: int | None = None, seed: int = 0
) -> dict:
    """Inputs that fit `graph`, as a dict in `graph.inputs` order: token ids uniform in
    [1, vocab), features ~ N(0, 1), vectors ~ N(0, VECTOR_INPUT_SCALE^2). T of a token /
    feature input: the T Keras declares for it (GraphInput.seq_len; Keras refuses any other for
    a graph), else seq_len, else DEFAULT_SEQ_LEN. An input read by an Embedding(mask_zero) or a
    Masking gets padded rows (`_pad_rows`: at the end, the front, in the middle, none), so the
    masks take part. Raises
    InputError as `generate_inputs` does, and for steps the graph cannot combine
    (`graph_steps`)."""
    batch = _count("batch", batch)
    seq_len = _count("seq_len", seq_len, allow_none=True)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")
    steps = {gi.name: gi.seq_len or seq_len or DEFAULT_SEQ_LEN for gi in graph.inputs}
    graph_steps(graph, steps)
    values = sum(
        batch
        * (1 if gi.kind == ir.VECTOR else steps[gi.name])
        * (gi.dim if gi.kind != ir.TOKENS else 1)
        for gi in graph.inputs
    )
    if values > MAX_GENERATED_VALUES:
        raise InputError(
            f"generated inputs of batch {batch} would hold {values} values, more than "
            f"{MAX_GENERATED_VALUES}: use a smaller --batch / --seq-len, or give --x"
        )
    rng = np.random.default_rng(seed)
    out = {}
    for gi in graph.inputs:
        t = steps[gi.name]
        if gi.kind == ir.TOKENS:
            low = 1 if gi.dim > 1 else 0
            x = rng.integers(low, gi.dim, size=(batch, t)).astype(np.int64)
        elif gi.kind == ir.FEATURES:
            x = rng.standard_normal((batch, t, gi.dim)).astype(np.float32)
        else:
            x = (VECTOR_INPUT_SCALE * rng.standard_normal((batch, gi.dim))).astype(np.float32)
        for layer in _input_readers(graph, gi.name):
            if isinstance(layer, ir.Embedding) and layer.mask_zero and gi.kind == ir.TOKENS:
                x = _pad_rows(x, 0)
            elif isinstance(layer, ir.Masking) and gi.kind == ir.FEATURES:
                x = _pad_rows(x, np.float32(layer.mask_value))
        out[gi.name] = x
    return out


def _as_input_list(graph: ir.Graph, x) -> list:
    names = [gi.name for gi in graph.inputs]
    if isinstance(x, Mapping) or hasattr(x, "files"):  # a dict, or np.load's NpzFile
        keys = list(x.files if hasattr(x, "files") else x.keys())
        missing = [n for n in names if n not in keys]
        unknown = [k for k in keys if k not in names]
        if missing or unknown:
            raise InputError(
                f"the model's inputs are {names}; "
                + (f"missing {missing}" if missing else "")
                + ("; " if missing and unknown else "")
                + (f"unknown {unknown}" if unknown else "")
            )
        return [x[n] for n in names]
    if isinstance(x, np.ndarray) and len(names) == 1:
        return [x]
    if not isinstance(x, (list, tuple)):
        raise InputError(
            f"the model has {len(names)} inputs {names}: give a list in that order or a dict "
            f"keyed by these names, not a {type(x).__name__}"
        )
    if len(x) != len(names):
        raise InputError(f"the model has {len(names)} inputs {names}, got {len(x)} arrays")
    return list(x)


def check_graph_inputs(graph: ir.Graph, x) -> list:
    """`x` (a list in graph.inputs order, a dict keyed by input name, or for a one-input graph
    an array) as a list of arrays fitting `graph`, or InputError naming the input and what does
    not fit: missing or unknown names, rank, dtype, width, an empty batch or T, batches that
    differ, steps the graph cannot combine (`graph_steps`), a token id outside the vocabulary, a
    NaN or infinity."""
    arrays = []
    for gi, a in zip(graph.inputs, _as_input_list(graph, x), strict=True):
        what = f"input {gi.name!r}"
        try:
            a = np.asarray(a)
        except ValueError as exc:
            raise InputError(f"{what} is not a rectangular array: {exc}") from None
        if gi.kind == ir.TOKENS:
            if a.ndim != 2 or a.dtype.kind not in "iu":
                raise InputError(
                    f"{what}: expected integer token ids of shape (batch, T), got {a.dtype} "
                    f"of shape {a.shape}"
                )
        else:
            want = f"(batch, T, {gi.dim})" if gi.kind == ir.FEATURES else f"(batch, {gi.dim})"
            rank = 3 if gi.kind == ir.FEATURES else 2
            if a.ndim != rank or a.shape[-1] != gi.dim or a.dtype.kind not in "fiu":
                raise InputError(
                    f"{what}: expected floats of shape {want}, got {a.dtype} {a.shape}"
                )
        if min(a.shape[: 2 if gi.kind != ir.VECTOR else 1]) < 1:
            raise InputError(f"{what}: batch and sequence length must be >= 1, got {a.shape}")
        if gi.kind == ir.TOKENS:
            bad = (a < 0) | (a >= gi.dim)
            if bad.any():
                pos = tuple(int(i) for i in np.argwhere(bad)[0])
                raise InputError(
                    f"{what}: token id {a[pos]} at position {pos} is out of range: the "
                    f"vocabulary has {gi.dim} ids (0 .. {gi.dim - 1})"
                )
        else:
            with np.errstate(over="ignore"):
                finite = np.isfinite(a.astype(np.float32))
            if not finite.all():
                pos = tuple(int(i) for i in np.argwhere(~finite)[0])
                raise InputError(
                    f"{what}: value {a[pos]} at position {pos} is not a finite float32; NaN "
                    "and infinity are not valid inputs"
                )
        arrays.append(a)
    batches = {gi.name: a.shape[0] for gi, a in zip(graph.inputs, arrays, strict=True)}
    if len(set(batches.values())) != 1:
        raise InputError(f"the inputs' batch sizes differ: {batches}")
    graph_steps(
        graph,
        {gi.name: a.shape[1] for gi, a in zip(graph.inputs, arrays, strict=True) if a.ndim > 1},
    )
    return arrays


def read_inputs_npz(path) -> dict:
    """The arrays of an `.npz` file (one per input name, as `validate --x` takes them), as a
    dict; InputError for a missing or unreadable file or a non-numeric array."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"no input file at {path!r}")
    try:
        npz = np.load(path, allow_pickle=False)
        if not hasattr(npz, "files"):
            raise InputError(f"{path!r} is one .npy array; give an .npz with one per input")
        with npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path!r} is not a readable .npz archive ({exc})") from None
    for name, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise InputError(f"{path!r}: array {name!r} holds dtype {a.dtype}, expected numbers")
    return arrays


def run_onnx_graph(onnx_model_or_path, inputs: list, names: list | None = None) -> list:
    """Run an ONNX graph in onnxruntime (CPU, one thread) on `inputs` (arrays in the graph's
    input order; `names`: the graph's input names to feed them by, else the session's order).
    Token inputs are fed as int64, the rest as float32. Returns every output, in order."""
    sess = _onnx_session(onnx_model_or_path)
    declared = sess.get_inputs()
    if len(declared) != len(inputs):
        raise FormatError(
            f"the ONNX model has {len(declared)} inputs {[i.name for i in declared]}, the model "
            f"{len(inputs)}"
        )
    by_name = {i.name: i for i in declared}
    feed = {}
    for k, a in enumerate(inputs):
        inp = by_name.get(names[k]) if names is not None else declared[k]
        if inp is None:
            raise FormatError(f"the ONNX model has no input {names[k]!r} (it has {list(by_name)})")
        feed[inp.name] = a.astype(np.int64) if inp.type == "tensor(int64)" else a.astype(np.float32)
    return list(sess.run(None, feed))


@dataclass
class GraphValidationReport:
    """The validation of a graph model: `reports` maps each output name (graph.outputs order) to
    its `ValidationReport` (pairs, errors, tolerances, that output's shape). ok: every output
    ok. max_abs_error / nonfinite_mismatches: per pair, the worst over the outputs.
    input_shape: input name -> shape. outputs: runtime name -> its outputs (a list, in order).
    skipped: runtime name -> why it took no part."""

    reports: dict
    input_shape: dict
    skipped: dict = field(default_factory=dict)
    quantized: bool = False
    int16x8: bool = False
    outputs: dict = field(repr=False, default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports.values())

    @property
    def output_shape(self) -> dict:
        return {name: r.output_shape for name, r in self.reports.items()}

    @property
    def max_abs_error(self) -> dict:
        out: dict = {}
        for r in self.reports.values():
            for pair, err in r.max_abs_error.items():
                out[pair] = max(out.get(pair, 0.0), err)
        return out

    @property
    def nonfinite_mismatches(self) -> dict:
        out: dict = {}
        for r in self.reports.values():
            for pair, n in r.nonfinite_mismatches.items():
                out[pair] = out.get(pair, 0) + n
        return out

    @property
    def tolerances(self) -> dict:
        return next(iter(self.reports.values())).tolerances if self.reports else {}

    def __str__(self) -> str:
        kind = " (int8 .egru: int8 bounds, docs/quantization.md)" if self.quantized else ""
        ins = ", ".join(f"{n} {tuple(s)}" for n, s in self.input_shape.items())
        outs = ", ".join(f"{n} {tuple(s)}" for n, s in self.output_shape.items())
        lines = [
            f"validation on inputs {ins} -> outputs {outs}{kind}",
            f"{'output':<20}{'pair':<24}{'max abs error':>16}{'non-finite diff':>17}"
            f"{'tolerance':>12}  result",
        ]
        for name, r in self.reports.items():
            tolerances = r.tolerances
            for pair, err in r.max_abs_error.items():
                verdict = "ok" if r.pair_ok(pair) else "FAIL"
                bad = r.nonfinite_mismatches.get(pair, 0)
                lines.append(
                    f"{name:<20}{pair:<24}{err:>16.3e}{bad:>17}{tolerances[pair]:>12.0e}  {verdict}"
                )
        for name, why in self.skipped.items():
            lines.append(f"{name} skipped: {why}")
        lines.append("PASSED" if self.ok else "FAILED")
        return "\n".join(lines)


def _as_list(out) -> list:
    return [
        np.asarray(o, dtype=np.float32) for o in (out if isinstance(out, (list, tuple)) else [out])
    ]


def _validate_graph(
    model, graph: ir.Graph, blob, onnx_path, x, batch, seq_len, seed, tolerance
) -> GraphValidationReport:
    """`validate` for an ir.Graph (its docstring has the contract)."""
    skipped = {}
    egru_model = None
    if blob is None:
        skipped["edgegru"] = "no .egru file given"
    else:
        egru_model = load(blob)
    quantized = blob is not None and _is_quantized(blob)
    if x is None:
        x = generate_graph_inputs(graph, batch=batch, seq_len=seq_len, seed=seed)
    xs = check_graph_inputs(graph, x)
    names = [gi.name for gi in graph.inputs]
    keras_model = _keras_model(model)
    onnx_src = onnx_path
    if onnx_path is None:
        from .onnx_export import to_onnx

        try:
            onnx_src = to_onnx(graph)
        except UnsupportedError as exc:
            onnx_src = None
            skipped["onnxruntime"] = f"the ONNX export refuses this model: {exc}"
    elif not isinstance(onnx_path, (bytes, bytearray)) and not os.path.isfile(os.fspath(onnx_path)):
        raise InputError(f"no ONNX file at {os.fspath(onnx_path)!r}")
    shapes = {n: tuple(a.shape) for n, a in zip(names, xs, strict=True)}

    outputs = {}
    try:
        feed = xs if len(xs) > 1 else xs[0]  # Keras warns about a list for one input
        outputs["keras"] = _as_list(keras_model.predict(feed, verbose=0))
    except Exception as exc:  # TensorFlow's errors for inputs the checks above let through
        raise InputError(
            f"Keras could not run the model on the inputs {shapes}: {_first_line(exc)}"
        ) from None
    onnx_quantized = False
    if onnx_src is not None:
        try:
            onnx_quantized = _onnx_is_quantized(onnx_src)
            outputs["onnxruntime"] = _as_list(run_onnx_graph(onnx_src, xs, names))
        except (ImportError, FormatError):
            raise
        except Exception as exc:  # onnx / onnxruntime errors: not a graph for these inputs
            raise FormatError(
                f"onnxruntime could not run the ONNX model on the inputs {shapes}: "
                f"{_first_line(exc)}"
            ) from None
    if egru_model is not None:
        try:
            outputs["edgegru"] = _as_list(egru_model.predict(xs if len(xs) > 1 else xs[0]))
        except EdgeGRUError as exc:
            raise type(exc)(f"the .egru model: {exc}", exc.code) from None
    for runtime, outs in outputs.items():
        if len(outs) != len(graph.outputs):
            raise FormatError(
                f"{runtime} gives {len(outs)} outputs, the model has {len(graph.outputs)} "
                f"({graph.outputs}): they are not the same model"
            )
    int16x8 = bool(getattr(egru_model, "int16x8", False))
    tolerances = (
        default_tolerances(quantized, onnx_quantized, int16x8)
        if tolerance is None
        else dict.fromkeys(PAIRS, float(tolerance))
    )
    reports = {}
    for k, name in enumerate(graph.outputs):
        errors, nonfinite = {}, {}
        for pair in PAIRS:
            a_name, b_name = pair.split("~")
            if a_name in outputs and b_name in outputs:
                errors[pair], nonfinite[pair] = compare(outputs[a_name][k], outputs[b_name][k])
        ref = outputs.get("edgegru", outputs["keras"])[k]
        reports[name] = ValidationReport(
            errors,
            {pair: tolerances[pair] for pair in errors},
            tuple(shapes.values()),
            tuple(ref.shape),
            {runtime: outs[k] for runtime, outs in outputs.items()},
            nonfinite_mismatches=nonfinite,
            skipped=skipped,
            quantized=quantized,
            int16x8=int16x8,
        )
    return GraphValidationReport(reports, shapes, skipped, quantized, int16x8, outputs)


#: Name of the reference row of an accuracy report: Keras' own predictions.
KERAS_FP32 = "keras fp32"
#: A single output is a probability (sigmoid) and predicts class 1 above this.
BINARY_THRESHOLD = 0.5


def class_predictions(outputs) -> np.ndarray:
    """Predicted class ids from model outputs ``(..., C)``: the argmax over the last axis when
    ``C > 1`` (softmax probabilities or logits), ``output > 0.5`` when ``C == 1`` (a sigmoid
    probability). A 1-D array counts as ``C == 1``. Returns int64 of shape ``outputs.shape[:-1]``.
    """
    out = np.asarray(outputs)
    if out.ndim == 1:
        out = out[:, None]
    if out.shape[-1] == 1:
        return (out[..., 0] > BINARY_THRESHOLD).astype(np.int64)
    return np.argmax(out, axis=-1).astype(np.int64)


def _labels_for(outputs: np.ndarray, y) -> np.ndarray:
    """`y` as class ids shaped like ``class_predictions(outputs)``: int ids ``(N,)`` (also
    ``(N, 1)`` for one output) or one-hot rows shaped like ``outputs``; ValueError otherwise."""
    out = np.asarray(outputs)
    if out.ndim == 1:
        out = out[:, None]
    target = out.shape[:-1]
    y = np.asarray(y)
    if y.shape == out.shape and out.shape[-1] > 1:
        y = np.argmax(y, axis=-1)  # one-hot
    elif y.shape == (*target, 1):
        y = y[..., 0]
    if y.shape != target:
        raise ValueError(
            f"labels of shape {y.shape} do not fit outputs of shape {out.shape}: expected "
            f"class ids of shape {target}"
            + (f" or one-hot {out.shape}" if out.shape[-1] > 1 else "")
        )
    if y.dtype.kind not in "iub":
        if y.dtype.kind != "f" or not np.array_equal(y, np.round(y)):
            raise ValueError(f"labels must be integer class ids, got dtype {y.dtype}")
    y = y.astype(np.int64)
    classes = max(out.shape[-1], 2)
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"labels must be class ids in 0..{classes - 1}, got {y.min()}..{y.max()}")
    return y


@dataclass
class AccuracyRow:
    """One row of an :class:`AccuracyReport`.

    accuracy: fraction of labelled rows predicted right, in [0, 1].
    drop_points: ``100 * (reference accuracy - accuracy)``; positive when worse than Keras.
    agreement: fraction of rows whose predicted class equals the reference's.
    max_abs_error: max |output - reference output| (0 for the reference itself). A variant whose
        outputs are not shaped like the reference's has inf here and nan in the other fields.
    """

    name: str
    accuracy: float
    drop_points: float
    agreement: float
    max_abs_error: float


@dataclass
class AccuracyReport:
    """Task accuracy of several predictors on the same labelled inputs, one row each; ``rows[0]``
    is the reference (Keras fp32) that the drops and errors are measured against."""

    rows: list
    n_labels: int
    rule: str
    outputs: dict = field(repr=False, default_factory=dict)

    @property
    def reference(self) -> AccuracyRow:
        return self.rows[0]

    def __getitem__(self, name: str) -> AccuracyRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def __str__(self) -> str:
        ref = self.reference.name
        lines = [
            f"accuracy on {self.n_labels} labelled outputs ({self.rule})",
            f"{'variant':<18}{'accuracy':>10}{'drop vs ' + ref:>22}{'same class':>12}"
            f"{'max abs error':>15}",
        ]
        for k, row in enumerate(self.rows):
            if k == 0:
                drop = same = err = "-"
            else:
                drop = f"{row.drop_points:.2f} points"
                same = f"{100 * row.agreement:.2f} %"
                err = f"{row.max_abs_error:.3e}"
            lines.append(f"{row.name:<18}{100 * row.accuracy:>8.2f} %{drop:>22}{same:>12}{err:>15}")
        return "\n".join(lines)

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, np.ndarray], y) -> AccuracyReport:
        """A report from outputs already computed on the same inputs: ``outputs`` maps row name
        -> outputs, the first entry being the reference. ``y``: class ids (see
        :func:`accuracy_report`). Raises ValueError when the labels do not fit."""
        if not outputs:
            raise ValueError("no outputs to score")
        outputs = {name: np.asarray(out) for name, out in outputs.items()}
        ref = next(iter(outputs.values()))
        labels = _labels_for(ref, y)
        ref_pred = class_predictions(ref)

        def mean(hits) -> float:
            return float(np.mean(hits)) if hits.size else float("nan")

        ref_acc = mean(ref_pred == labels)
        rows = []
        for name, out in outputs.items():
            if out.shape != ref.shape:  # a wrong conversion: nothing to score
                nan = float("nan")
                rows.append(AccuracyRow(name, nan, nan, nan, float("inf")))
                continue
            pred = class_predictions(out)
            acc = mean(pred == labels)
            err, nonfinite = compare(out, ref)
            if nonfinite:  # a NaN or inf where the reference has another value
                err = float("inf")
            rows.append(
                AccuracyRow(name, acc, 100.0 * (ref_acc - acc), mean(pred == ref_pred), err)
            )
        width = ref.shape[-1] if ref.ndim > 1 else 1
        rule = f"argmax of {width} outputs" if width > 1 else f"output > {BINARY_THRESHOLD}"
        return cls(rows, int(labels.size), rule, outputs)


def accuracy_report(
    keras_model,
    x,
    y,
    variants: Mapping[str, Callable] | Iterable[tuple[str, Callable]],
    *,
    reference: str = KERAS_FP32,
) -> AccuracyReport:
    """Task accuracy of Keras and of each variant on labelled inputs, one row each.

    keras_model: a live keras.Model or a .keras path: the reference row, named ``reference``.
    x: the inputs, as ``keras_model.predict`` takes them.
    y: the labels: integer class ids, shaped like the outputs without their last axis (``(N,)``
        for one output per row), or one-hot rows shaped like the outputs. A prediction is the
        argmax of the outputs (several outputs: softmax or logits), or ``output > 0.5`` (one
        output: a sigmoid probability); see :func:`class_predictions`.
    variants: row name -> predict function ``f(x) -> outputs`` (a mapping, or (name, f) pairs,
        in display order), e.g. ``{"edgegru fp32": edgegru.load("m.egru").predict}``.

    Each row has the accuracy, the drop against the reference in points, the fraction of
    predicted classes equal to the reference's and the max abs error of the outputs against the
    reference's (see :class:`AccuracyRow`). Raises ValueError when the labels do not fit.
    """
    keras_model = _keras_model(keras_model)
    x = np.asarray(x)
    variants = dict(variants)
    if reference in variants:
        raise ValueError(f"a variant may not be named {reference!r}: that is the reference row")
    outputs = {reference: np.asarray(keras_model.predict(x, verbose=0), dtype=np.float32)}
    for name, predict in variants.items():
        outputs[name] = np.asarray(predict(x), dtype=np.float32)
    return AccuracyReport.from_outputs(outputs, y)
