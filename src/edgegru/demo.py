"""``edgegru demo``: train the seed model on a real dataset, convert it, and compare the runtimes.

Flow: build the wordfreq language-ID dataset (:func:`edgegru.datasets.language_id`), train
``Embedding -> GRU -> Dense(softmax)`` in Keras with a progress bar, write the model as
``.keras``, ``.egru`` and ``.onnx``, then run the test split through Keras, the edgegru runtime
and onnxruntime and print one table: test accuracy, file size, batch-1 latency and the maximum
absolute differences between the three runtimes' outputs.

With the defaults the whole run (training included) takes under 2 minutes on a 2-core x86 CPU
and reaches about 84 % test accuracy over 8 languages. Needs the ``demo`` extra
(``pip install 'edgegru[demo]'``: wordfreq, tqdm) plus TensorFlow/Keras and onnxruntime.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import datasets

#: Defaults, chosen to train well within the demo's time budget (under 3 minutes end to end on
#: a 2-core CPU). GRU(128) is the issue's seed model.
EPOCHS = 8
UNITS = 128
EMBED_DIM = 32
BATCH_SIZE = 256
LEARNING_RATE = 5e-3  # Adam, cosine-decayed to 5 % over the run
WORDS_PER_LANGUAGE = 10_000
MAX_LEN = 16
#: Test rows given to edgegru.validate.
VALIDATE_ROWS = 256
#: Latency: untimed warm-up calls, then timed calls; the median of the timed calls is reported.
LATENCY_WARMUP = 20
LATENCY_CALLS = 200

#: Runtime names as edgegru.validate's pairs spell them -> table label, file extension.
_DISPLAY_NAMES = {
    "keras": "Keras",
    "onnxruntime": "onnxruntime",
    "edgegru": "edgegru",
    "edgegru int8": "edgegru int8",
    "edgegru int16x8": "edgegru int16x8",
}
_FILE_EXTENSIONS = {
    "keras": ".keras",
    "onnxruntime": ".onnx",
    "edgegru": ".egru",
    "edgegru int8": "-int8.egru",
    "edgegru int16x8": "-int16x8.egru",
}
#: Training words the int16x8 model is calibrated on (docs/quantization.md: training data only).
CALIBRATION_ROWS = 2048

_MISSING_EXTRA = "the demo needs the 'demo' extra: pip install 'edgegru[demo]'"


def build_parser() -> argparse.ArgumentParser:
    """The ``edgegru demo`` argument parser."""
    p = argparse.ArgumentParser(
        prog="edgegru demo",
        description="Train a GRU language identifier on wordfreq's word lists, convert it with "
        "edgegru and compare Keras, edgegru and onnxruntime.",
    )
    p.add_argument(
        "--epochs", type=_positive_int, default=EPOCHS, help=f"training epochs (default {EPOCHS})"
    )
    p.add_argument(
        "--units", type=_positive_int, default=UNITS, help=f"GRU units (default {UNITS})"
    )
    p.add_argument(
        "--words-per-language",
        type=_positive_int,
        default=WORDS_PER_LANGUAGE,
        help=f"words per language, 80/20 train/test (default {WORDS_PER_LANGUAGE})",
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where to write the .keras, .egru and .onnx files "
        "(default: a new temporary directory, kept and printed)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for the dataset split and Keras initialisation (default 0)",
    )
    return p


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main(argv=None) -> int:
    """Run the demo with command-line arguments ``argv`` (default ``sys.argv[1:]``).

    Prints the dataset, the model and one result table to stdout; the training progress bar goes
    to stderr. Writes ``langid.keras``, ``langid.egru`` and ``langid.onnx`` to ``--out-dir``.
    Returns 0 when ``edgegru.validate`` accepts the converted model, 1 when it does not, 2 when
    Keras runs on a backend other than TensorFlow.
    """
    args = build_parser().parse_args(argv)
    t_start = time.perf_counter()
    # Keras picks its backend at first import; the Keras latency needs TensorFlow.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # its notice ignores the log level
    try:
        from tqdm.auto import tqdm  # first: the cheapest of the demo's imports
    except ImportError as exc:  # cli.main prints it as one line, exit status 2
        raise ImportError(_MISSING_EXTRA + " (tqdm is not installed)") from exc
    try:
        import keras
        import onnxruntime as ort
        import tensorflow as tf
    except ImportError as exc:  # cli.main prints it as one line, exit status 2
        missing = f" ({exc.name} is not installed)" if exc.name else ""
        raise ImportError(_MISSING_EXTRA + missing) from exc

    import edgegru
    from edgegru.validate import compare

    if keras.backend.backend() != "tensorflow":
        print(
            f"edgegru demo: needs the TensorFlow Keras backend, not "
            f"{keras.backend.backend()!r} (set KERAS_BACKEND=tensorflow)",
            file=sys.stderr,
        )
        return 2

    data = datasets.language_id(
        words_per_language=args.words_per_language, max_len=MAX_LEN, seed=args.seed
    )
    src = data.source
    print(
        f"dataset: {src['package']} {src['version']}, {src['function']}, "
        f"languages {' '.join(data.labels)}\n"
        f"         {src['train_size']} train / {src['test_size']} test words ({src['filters']}), "
        f"{data.vocab_size} token ids, length {data.max_len}"
    )
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="edgegru-demo-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {name: out_dir / f"langid{ext}" for name, ext in _FILE_EXTENSIONS.items()}

    t_train = time.perf_counter()
    model = _train(keras, tf, tqdm, data, args)
    train_seconds = time.perf_counter() - t_train
    model.save(files["keras"])

    edgegru.convert(model, files["edgegru"], onnx_path=files["onnxruntime"])
    edgegru.convert(model, files["edgegru int8"], quantize="int8")  # docs/quantization.md
    # integer-only, its activation ranges calibrated on training words (docs/quantization.md)
    edgegru.convert(
        model,
        files["edgegru int16x8"],
        quantize="int16x8",
        calibration=data.x_train[:CALIBRATION_ROWS],
    )
    runtime = edgegru.load(files["edgegru"])
    runtime8 = edgegru.load(files["edgegru int8"])
    runtime16 = edgegru.load(files["edgegru int16x8"])
    report = edgegru.validate(
        model, files["edgegru"], onnx_path=files["onnxruntime"], x=data.x_test[:VALIDATE_ROWS]
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(files["onnxruntime"]), options, providers=["CPUExecutionProvider"]
    )

    one = data.x_test[:1]
    keras_call = tf.function(
        lambda x: model(x, training=False), input_signature=[tf.TensorSpec(one.shape, tf.int32)]
    )
    one_tf = tf.constant(one)
    one_i64 = one.astype(np.int64)
    # name -> (test-split probabilities, batch-1 predict call)
    runs = {
        "keras": (
            model.predict(data.x_test, batch_size=1024, verbose=0),
            lambda: keras_call(one_tf).numpy(),
        ),
        "onnxruntime": (
            session.run(["output"], {"tokens": data.x_test.astype(np.int64)})[0],
            lambda: session.run(["output"], {"tokens": one_i64}),
        ),
        "edgegru": (runtime.predict(data.x_test), lambda: runtime.predict(one)),
        "edgegru int8": (runtime8.predict(data.x_test), lambda: runtime8.predict(one)),
        "edgegru int16x8": (runtime16.predict(data.x_test), lambda: runtime16.predict(one)),
    }
    # The quantized models are compared on the same validation rows (they are not expected to
    # meet the fp32 tolerance: their quality is their accuracy).
    errors = dict(report.max_abs_error)
    for quantized in ("edgegru int8", "edgegru int16x8"):
        for other in ("keras", "onnxruntime", "edgegru"):
            errors[f"{quantized}~{other}"], _ = compare(
                runs[quantized][0][:VALIDATE_ROWS], runs[other][0][:VALIDATE_ROWS]
            )
    table = [
        (
            _DISPLAY_NAMES[name],
            files[name].name,
            f"{files[name].stat().st_size / 1024:.1f} KiB",
            f"{100.0 * float(np.mean(np.argmax(probs, axis=-1) == data.y_test)):.2f} %",
            f"{_median_latency(call) * 1e3:.3f} ms",
            *(_pair_error(errors, name, other) for other in ("keras", "onnxruntime", "edgegru")),
        )
        for name, (probs, call) in runs.items()
    ]
    header = (
        "runtime",
        "file",
        "size",
        "test accuracy",
        "latency (batch 1)",
        # one column per fp32 runtime
        "max |diff| vs Keras",
        "vs onnxruntime",
        "vs edgegru",
    )
    print()
    print(_format_table(header, table))
    print(
        f"\nlatency: median of {LATENCY_CALLS} calls after {LATENCY_WARMUP} warm-up calls on one "
        f"word ({data.max_len} tokens); Keras: tf.function(model(x, training=False)) on "
        "TensorFlow's default thread pools; onnxruntime: 1 thread.\n"
        f"max |diff|: edgegru.validate on {VALIDATE_ROWS} test words, tolerance "
        f"{max(report.tolerances.values()):.1e}: {'OK' if report.ok else 'FAILED'} (the fp32 "
        "runtimes; edgegru "
        "int8 has int8 weights and run-time int8 inputs; int16x8 is integer-only, int16 "
        f"activations calibrated on {CALIBRATION_ROWS} training words, docs/quantization.md)\n"
        f"files in {out_dir}; training {train_seconds:.0f} s, "
        f"total {time.perf_counter() - t_start:.0f} s"
    )
    return 0 if report.ok else 1


def _train(keras, tf, tqdm, data: datasets.Dataset, args):
    """Build the seed model, train it on ``data``'s training split and return it."""
    keras.utils.set_random_seed(args.seed)
    model = _build_model(keras, data.vocab_size, data.max_len, data.n_classes, args.units)
    steps_per_epoch = -(-len(data.x_train) // BATCH_SIZE)
    schedule = keras.optimizers.schedules.CosineDecay(
        LEARNING_RATE, decay_steps=steps_per_epoch * args.epochs, alpha=0.05
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        # Keras turns XLA off for every TF GRU in case cuDNN is used; on CPU XLA works and saves
        # about a third of the training time.
        jit_compile=not tf.config.list_physical_devices("GPU"),
    )
    print(
        f"model: Embedding({data.vocab_size}, {EMBED_DIM}) -> GRU({args.units}) -> "
        f"Dense({data.n_classes}, softmax), {model.count_params()} parameters; "
        f"{args.epochs} epochs, batch {BATCH_SIZE}"
    )
    model.fit(
        data.x_train,
        data.y_train,
        batch_size=BATCH_SIZE,
        epochs=args.epochs,
        verbose=0,
        callbacks=[_progress_callback(keras, tqdm, args.epochs, steps_per_epoch)],
    )
    return model


def _build_model(keras, vocab_size: int, max_len: int, n_classes: int, units: int):
    """The seed architecture: token ids (batch, max_len) -> class probabilities (batch, n)."""
    return keras.Sequential(
        [
            keras.Input(shape=(max_len,), dtype="int32", name="tokens"),
            keras.layers.Embedding(vocab_size, EMBED_DIM, name="embedding"),
            keras.layers.GRU(units, name="gru"),
            keras.layers.Dense(n_classes, activation="softmax", name="output"),
        ],
        name="langid",
    )


def _progress_callback(keras, tqdm, epochs: int, steps_per_epoch: int):
    """A Keras callback driving one ``tqdm`` bar over all training batches (on stderr)."""

    class TqdmProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            # On a terminal the bar redraws in place; in a log file (CI) every redraw is a new
            # chunk of text, so redraw rarely there.
            self.bar = tqdm(
                total=epochs * steps_per_epoch,
                unit="batch",
                desc="training",
                dynamic_ncols=True,
                mininterval=0.2 if sys.stderr.isatty() else 10.0,
            )

        def on_epoch_begin(self, epoch, logs=None):
            self.bar.set_description(f"epoch {epoch + 1}/{epochs}")

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            self.bar.set_postfix(
                loss=f"{float(logs.get('loss', float('nan'))):.4f}",
                acc=f"{float(logs.get('accuracy', float('nan'))):.4f}",
                refresh=False,
            )
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return TqdmProgress()


def _median_latency(call) -> float:
    """Median wall time in seconds of ``call()`` over LATENCY_CALLS calls, after a warm-up."""
    for _ in range(LATENCY_WARMUP):
        call()
    times = []
    for _ in range(LATENCY_CALLS):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _pair_error(errors: dict, a: str, b: str) -> str:
    """``errors["a~b"]`` (or ``"b~a"``) formatted; "-" on the diagonal."""
    if a == b:
        return "-"
    return f"{errors.get(f'{a}~{b}', errors.get(f'{b}~{a}')):.2e}"


def _format_table(header, rows) -> str:
    """Plain-text table: columns left-aligned, widths fitted to the contents."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, tuple("-" * w for w in widths), *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
