"""`convert`: a Keras model (live or a .keras path) or an IR model -> `.egru` file (+ ONNX)."""

from __future__ import annotations

import os

from . import format as fmt
from . import ir
from ._version import __version__


def to_ir(model) -> ir.Model | ir.Graph:
    """Any supported model description -> IR: an ir.Model or ir.Graph passes through; a path to
    a .keras file is read by edgegru.keras_file (no TensorFlow or Keras needed); a live
    keras.Model goes through the Keras importer. Both Keras routes share one set of layer
    converters. A single chain gives an ir.Model (the same as before graphs existed), any other
    Functional model an ir.Graph (docs/format.md "Graphs")."""
    if isinstance(model, (ir.Model, ir.Graph)):
        return model
    if isinstance(model, (str, os.PathLike)):
        from .keras_file import from_keras_file

        return from_keras_file(model, graphs=True)
    from .keras_import import from_keras

    return from_keras(model, graphs=True)


def _write_atomic(path, data: bytes) -> None:
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def convert(
    model,
    egru_path,
    onnx_path=None,
    *,
    opset: int | None = None,
    quantize: str | None = None,
    calibration=None,
) -> ir.Model | ir.Graph:
    """Convert `model` and write `egru_path` (and `onnx_path`, if given).

    model: a keras.Model, a path to a .keras file, an edgegru.ir.Model or an ir.Graph (a
        Functional model that is not a single chain converts to a graph file, see `to_ir`).
    onnx_path: also export a standard ONNX graph (fused GRU operator) there.
    quantize: None (float32); "int8": weight matrices as int8 with one scale per row, inputs
        quantized at run time (docs/quantization.md), the ONNX graph then carrying the same int8
        weights behind DequantizeLinear; "int16x8": integer-only inference (int8 weights, int16
        activations at scales calibrated at conversion; docs/quantization.md, "int16x8").
    calibration: int16x8 only: representative inputs (token ids or features, as `predict` takes
        them, ideally training data) that fix the activation ranges; None calibrates on random
        inputs (int16x8.default_calibration) with a warning.
    Returns the IR the files were written from. Raises UnsupportedError (a ValueError) naming the
    layer and option for anything edgegru cannot convert, and, with onnx_path, for a model the
    ONNX export refuses (softplus in a recurrent layer: docs/onnx.md); both files are built in
    memory first, so nothing is written then. FileNotFoundError / FormatError for a .keras path
    that is missing or not a readable archive.
    """
    m = to_ir(model)
    meta = {"producer": f"{fmt.PRODUCER} {__version__}"}
    if quantize is not None:
        meta["quantize"] = quantize
    blob = fmt.write(m, metadata=meta, quantize=quantize, calibration=calibration)
    onnx_model = None
    if onnx_path is not None:
        from .onnx_export import DEFAULT_OPSET, to_onnx

        if quantize == "int16x8":
            from . import int16x8

            onnx_model = int16x8.to_onnx(int16x8.from_blob(blob), opset=opset)
        else:
            onnx_model = to_onnx(m, opset=opset or DEFAULT_OPSET, quantize=quantize)
    _write_atomic(egru_path, blob)
    if onnx_model is not None:
        _write_atomic(onnx_path, onnx_model.SerializeToString())
    return m
