"""`validate`: run one input through Keras, onnxruntime and the C runtime and compare.

Tolerances are named constants with their reason; a report is `ok` only when every pair agrees
within its tolerance.

`accuracy_report`: with labelled inputs, the task accuracy of Keras and of any number of other
predict functions (edgegru fp32, ...), one row each, with the drop against Keras in points.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
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
            diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
            err = float(np.max(diff)) if out.size else 0.0
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
