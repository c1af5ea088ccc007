"""Speaker identification on Japanese Vowels: train a small Keras GRU, convert it with edgegru,
and compare the test accuracy of Keras and the C runtime, with float32 and with int8 weights.

    pip install ".[keras,onnx]" && pip install --no-deps aeon==1.6.0   # aeon: its data files only
    python examples/japanese_vowels.py [--epochs 20] [--out-dir DIR]

The data (edgegru.datasets.japanese_vowels): 12 LPC cepstrum coefficients per frame, 7..29 frames
per utterance padded with zero frames to 29, 9 speakers, 270 training / 370 test utterances. The
model is Masking -> GRU(64) -> Dense(9, softmax): the mask makes the GRU stop at each utterance's
last real frame, in Keras and in edgegru alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import edgegru
from edgegru import datasets
from edgegru.validate import accuracy_report


def build_model(keras, max_len: int, n_features: int, n_classes: int, units: int):
    return keras.Sequential(
        [
            keras.Input((max_len, n_features)),
            keras.layers.Masking(mask_value=0.0),
            keras.layers.GRU(units),
            keras.layers.Dense(n_classes, activation="softmax"),
        ]
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--units", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, help="where to write the files (default: a temp dir)")
    args = p.parse_args(argv)

    import keras

    data = datasets.japanese_vowels()
    print(
        f"Japanese Vowels ({data.source['package']} {data.source['version']}): "
        f"{len(data.x_train)} train / {len(data.x_test)} test utterances, "
        f"{data.n_classes} speakers, {data.n_features} features, padded to {data.max_len} frames"
    )

    keras.utils.set_random_seed(args.seed)
    model = build_model(keras, data.max_len, data.n_features, data.n_classes, args.units)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    t0 = time.perf_counter()
    model.fit(data.x_train, data.y_train, epochs=args.epochs, batch_size=32, verbose=0)
    print(f"trained GRU({args.units}) for {args.epochs} epochs in {time.perf_counter() - t0:.1f} s")

    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="edgegru-vowels-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    egru_path = out_dir / "vowels.egru"
    edgegru.convert(model, egru_path, onnx_path=out_dir / "vowels.onnx")
    int8_path = out_dir / "vowels-int8.egru"
    edgegru.convert(model, int8_path, quantize="int8")  # docs/quantization.md
    print(
        f"wrote {egru_path} ({egru_path.stat().st_size} bytes), {int8_path.name} "
        f"({int8_path.stat().st_size} bytes) and vowels.onnx in {out_dir}\n"
    )

    validation = edgegru.validate(
        model, egru_path, onnx_path=out_dir / "vowels.onnx", x=data.x_test
    )
    print(validation)
    print()
    report = accuracy_report(
        model,
        data.x_test,
        data.y_test,
        {
            "edgegru fp32": edgegru.load(egru_path).predict,
            "edgegru int8": edgegru.load(int8_path).predict,
        },
    )
    print(report)
    return 0 if validation.ok else 1


if __name__ == "__main__":
    sys.exit(main())
