#!/usr/bin/env python3
"""Convert a Keras model to an .egru file (and optionally ONNX).

    python tools/convert.py model.keras -o model.egru --onnx model.onnx

The same code as `edgegru convert` (this script only forwards its arguments), kept for users who
do not install the package's entry points. Needs `pip install edgegru[keras,onnx]`.
"""

import sys

from edgegru.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
