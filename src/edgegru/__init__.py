"""edgegru: run Keras GRU models exactly and fast on CPUs and microcontrollers.

    import edgegru
    edgegru.convert(keras_model, "m.egru", onnx_path="m.onnx")   # Keras -> .egru (+ ONNX)
    m = edgegru.load("m.egru")                                   # needs only numpy
    y = m.predict(x)                                             # as keras_model.predict(x)
    edgegru.validate(keras_model, "m.egru", onnx_path="m.onnx")  # Keras vs onnxruntime vs C

Running a model needs only numpy; converting needs the `keras` extra, ONNX the `onnx` extra.
"""

from ._runtime import available_kernels
from ._version import __version__
from .convert import convert
from .errors import EdgeGRUError, FormatError, InputError, UnsupportedError
from .runtime import Model, load
from .validate import FP32_TOLERANCE, ValidationReport, validate

__all__ = [
    "FP32_TOLERANCE",
    "EdgeGRUError",
    "FormatError",
    "InputError",
    "Model",
    "UnsupportedError",
    "ValidationReport",
    "__version__",
    "available_kernels",
    "convert",
    "load",
    "validate",
]
