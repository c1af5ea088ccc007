#!/usr/bin/env python3
"""Convert a Keras model to an .egru file (and optionally ONNX), from a source checkout.

    python tools/convert.py model.keras -o model.egru [--quantize int8] [--onnx model.onnx]

The same code as `edgegru convert` (this script forwards its arguments to it), for users who have
not installed the package: it runs the converter from this checkout's src/edgegru without
building or importing the compiled C runtime (conversion never needs it). A `.keras` file needs
only numpy and h5py (`pip install numpy h5py`); `--onnx` also needs `pip install onnx`.
"""

import sys
import types
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "edgegru"


def _checkout_package() -> None:
    """Make `import edgegru.<module>` load this checkout's modules without running
    edgegru/__init__.py, which imports the compiled runtime (edgegru._runtime)."""
    pkg = types.ModuleType("edgegru")
    pkg.__path__ = [str(SRC)]
    pkg.__file__ = str(SRC / "__init__.py")
    sys.modules["edgegru"] = pkg


if __name__ == "__main__":
    _checkout_package()
    from edgegru.cli import main

    sys.exit(main(["convert", *sys.argv[1:]]))
