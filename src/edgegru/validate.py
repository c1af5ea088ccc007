"""`validate`: run one input through Keras, onnxruntime and the C runtime and compare.

Tolerances are named constants with their reason; a report is `ok` only when every pair agrees
within its tolerance.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from . import ir
from .runtime import load

#: Max abs error allowed between any two fp32 implementations. All three compute the same float32
#: arithmetic in different orders; with realistic (fan-in scaled or trained) weights the measured
#: gap is <= 1e-6 (docs: shared notes, Q1), so 1e-5 leaves a 10x margin. Chaotic random models
#: (huge weights) can differ by far more in any pair; that is not a conversion error.
FP32_TOLERANCE = 1e-5

#: Sequence length used for generated inputs when the model does not fix one.
DEFAULT_SEQ_LEN = 50
#: Batch size of generated inputs.
DEFAULT_BATCH = 8

PAIRS = ("keras~onnxruntime", "keras~edgegru", "onnxruntime~edgegru")


@dataclass
class ValidationReport:
    """max_abs_error: pair name ("keras~onnxruntime", "keras~edgegru", "onnxruntime~edgegru")
    -> max |a - b| over the whole output. ok: every pair <= tolerance."""

    max_abs_error: dict
    tolerance: float
    input_shape: tuple
    output_shape: tuple
    outputs: dict = field(repr=False, default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(err <= self.tolerance for err in self.max_abs_error.values())

    def __str__(self) -> str:
        lines = [
            f"validation on input {self.input_shape} -> output {self.output_shape}",
            f"{'pair':<24}{'max abs error':>16}{'tolerance':>12}  result",
        ]
        for pair, err in self.max_abs_error.items():
            verdict = "ok" if err <= self.tolerance else "FAIL"
            lines.append(f"{pair:<24}{err:>16.3e}{self.tolerance:>12.0e}  {verdict}")
        lines.append("PASSED" if self.ok else "FAILED")
        return "\n".join(lines)


def generate_inputs(
    model: ir.Model, batch: int = DEFAULT_BATCH, seq_len: int | None = None, seed: int = 0
) -> np.ndarray:
    """Inputs that fit `model`: token ids uniform in [1, vocab) (0 is often padding), or float
    frames ~ N(0, 1). T: seq_len, else the model's fixed T, else DEFAULT_SEQ_LEN."""
    rng = np.random.default_rng(seed)
    steps = seq_len or model.input.seq_len or DEFAULT_SEQ_LEN
    if model.input.kind == ir.TOKENS:
        low = 1 if model.input.dim > 1 else 0
        return rng.integers(low, model.input.dim, size=(batch, steps)).astype(np.int64)
    return rng.standard_normal((batch, steps, model.input.dim)).astype(np.float32)


def _keras_model(model):
    if isinstance(model, (str, os.PathLike)):
        from .keras_import import _import_keras

        keras = _import_keras()
        return keras.saving.load_model(os.fspath(model), compile=False)
    return model


def run_onnx(onnx_model_or_path, x: np.ndarray) -> np.ndarray:
    """Run an exported edgegru ONNX graph in onnxruntime (CPU, one thread)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("validation needs the 'onnx' extra: pip install edgegru[onnx]") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    src = onnx_model_or_path
    if not isinstance(src, (str, os.PathLike, bytes)):
        src = src.SerializeToString()
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    feed = x.astype(np.int64) if inp.type == "tensor(int64)" else x.astype(np.float32)
    return sess.run(None, {inp.name: feed})[0]


def validate(
    model,
    egru_path,
    onnx_path=None,
    x=None,
    *,
    batch: int = DEFAULT_BATCH,
    seq_len: int | None = None,
    seed: int = 0,
    tolerance: float = FP32_TOLERANCE,
) -> ValidationReport:
    """Compare Keras, onnxruntime and the C runtime on the same input.

    model: the Keras model (live, or a .keras path) the files were converted from.
    egru_path: the converted `.egru` file (a path or bytes).
    onnx_path: the exported ONNX file; when None, the ONNX graph is exported in memory from the
        same conversion, so onnxruntime still takes part.
    x: the input; when None, `generate_inputs(batch, seq_len, seed)` makes one.
    """
    from .convert import to_ir

    keras_model = _keras_model(model)
    m_ir = to_ir(keras_model)
    if x is None:
        x = generate_inputs(m_ir, batch=batch, seq_len=seq_len, seed=seed)
    x = np.asarray(x)
    if onnx_path is None:
        from .onnx_export import to_onnx

        onnx_src = to_onnx(m_ir)
    else:
        onnx_src = onnx_path
    outputs = {
        "keras": np.asarray(keras_model.predict(x, verbose=0), dtype=np.float32),
        "onnxruntime": np.asarray(run_onnx(onnx_src, x), dtype=np.float32),
        "edgegru": load(egru_path).predict(x),
    }
    errors = {}
    for pair in PAIRS:
        a, b = (outputs[name] for name in pair.split("~"))
        if a.shape != b.shape:
            errors[pair] = float("inf")
        else:
            errors[pair] = float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
    return ValidationReport(
        errors, tolerance, tuple(x.shape), tuple(outputs["edgegru"].shape), outputs
    )
