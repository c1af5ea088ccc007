#!/usr/bin/env python3
"""Regenerate the golden files in tests/data/ (run from the repository root):

    python tools/gen_golden.py

Writes, for each golden model: NAME.egru (converted by this edgegru), NAME.x.npy (the input) and
NAME.keras_y.npy (Keras' own output on it), plus PROVENANCE.json recording the versions of Keras,
its backend, numpy, edgegru and the seeds. The golden files pin the format: tests check that the
current runtime still reads them and reproduces Keras' output, and that the current writer gives
the same bytes for the same model. When the format version changes, add new goldens; keep the old.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
OUT = ROOT / "tests" / "data"
SEED = 20261127


def main() -> int:
    import keras
    from keras_models import feature_model, random_inputs, token_model

    import edgegru

    models = {
        # tokens -> Embedding -> GRU(reset_after=False, sequences) -> GRU -> Dense(softmax)
        "tokens_v1_0": token_model(30, 6, (8, 5), False, 3, "softmax", seed=SEED),
        # frames -> GRU(sequences) -> Dense per step
        "features_v1_0": feature_model(
            4, (6,), True, (2, "tanh"), seed=SEED + 1, return_sequences=True
        ),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    provenance = {
        "generator": "tools/gen_golden.py",
        "seed": SEED,
        "edgegru": edgegru.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": np.__version__,
        "models": {},
    }
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        provenance["tensorflow"] = tf.__version__
    for name, km in models.items():
        x = random_inputs(km, 3, 9, seed=SEED)
        y = np.asarray(km.predict(x, verbose=0), dtype=np.float32)
        edgegru.convert(km, OUT / f"{name}.egru")
        np.save(OUT / f"{name}.x.npy", x)
        np.save(OUT / f"{name}.keras_y.npy", y)
        provenance["models"][name] = {
            "layers": [type(layer).__name__ for layer in km.layers],
            "input_shape": list(x.shape),
            "output_shape": list(y.shape),
        }
    (OUT / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {len(models)} golden models to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
