"""The installed `edgegru` command as a new user meets it (issue #10, items 9-13): exit status 0
for success, 1 for a broken tolerance, 2 for a usage or input error reported as ONE line on
stderr, never a traceback. Every case runs the entry point of this interpreter's environment in a
subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras_models import randomize

import edgegru

ROOT = Path(__file__).resolve().parents[1]
EDGEGRU = Path(sys.executable).parent / "edgegru"
#: Seconds a command may take (a validate run imports TensorFlow: ~10 s on the shared machine).
TIMEOUT = 300


def run(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(EDGEGRU), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        cwd=cwd,
    )


def assert_usage_error(proc: subprocess.CompletedProcess, *words) -> str:
    """Exit 2, exactly one line on stderr, no traceback, the line naming the problem."""
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert lines[0].startswith("edgegru"), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small Keras models saved as .keras (and converted), plus input files."""
    d = tmp_path_factory.mktemp("cli")
    seed = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(40, 8),
            keras.layers.GRU(12),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    randomize(seed, 1).save(d / "seed.keras")
    nan = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(5, 3, mask_zero=True),
            keras.layers.GRU(4, return_sequences=True),
            keras.layers.GlobalAveragePooling1D(),
        ]
    )
    randomize(nan, 2).save(d / "nan.keras")
    flat = keras.Sequential(
        [keras.Input((10, 3)), keras.layers.GRU(4, return_sequences=True), keras.layers.Flatten()]
    )
    randomize(flat, 3).save(d / "flat.keras")
    softplus = keras.Sequential(
        [keras.Input((None, 1)), keras.layers.SimpleRNN(1, activation="softplus")]
    )
    softplus.save(d / "softplus.keras")
    np.save(d / "nan_x.npy", np.array([[1, 2, 3], [0, 0, 0]]))
    np.save(d / "big_ids.npy", np.array([[1, 2, 40]]))
    np.save(d / "floats.npy", np.zeros((2, 3), np.float32))
    (d / "text.npy").write_text("not an array")
    data = (d / "seed.keras").read_bytes()
    (d / "truncated.keras").write_bytes(data[: len(data) // 2])
    edgegru.convert(d / "flat.keras", d / "flat.egru")
    return d


def test_help_is_whole_sentences():
    proc = run("--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "Parsing only; the work is done by the" not in text
    description = text.split("positional arguments")[0]
    assert description.rstrip().endswith("."), description
    for command in ("convert", "validate", "info", "demo"):
        assert command in text


def test_validate_int8_file_passes_with_defaults(files):
    """README's next step after `convert --quantize int8`: validate the int8 file as it is."""
    d = files
    proc = run("convert", d / "seed.keras", "--quantize", "int8", "-o", d / "seed8.egru")
    assert proc.returncode == 0, proc.stderr
    proc = run("validate", d / "seed.keras", d / "seed8.egru")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout and "int8" in proc.stdout
    # --tolerance overrides the bounds: 0 cannot hold for int8 weights -> exit 1, not 2
    proc = run("validate", d / "seed.keras", d / "seed8.egru", "--tolerance", "0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout and "Traceback" not in proc.stderr


def test_int16x8_convert_and_validate_as_the_readme_shows(files):
    """README: `convert --quantize int16x8 --calibration x_train.npy`, then validate the file with
    its default (int16x8) bounds, and with labels the accuracy of every variant."""
    d = files
    rng = np.random.default_rng(0)
    np.save(d / "x_train.npy", rng.integers(0, 40, (64, 12)))
    x = rng.integers(0, 40, (16, 12))
    np.save(d / "x16.npy", x)
    np.save(d / "y16.npy", rng.integers(0, 2, 16))
    out = d / "seed16.egru"
    proc = run("convert", d / "seed.keras", "-o", out, "--quantize", "int16x8",
               "--calibration", d / "x_train.npy")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "int16x8" in proc.stdout and "Warning" not in proc.stderr
    proc = run("validate", d / "seed.keras", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout and "int16x8 bounds" in proc.stdout
    proc = run("validate", d / "seed.keras", "--x", d / "x16.npy", "--y", d / "y16.npy",
               "--calibration", d / "x_train.npy")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "edgegru int16x8 " in proc.stdout
    proc = run("convert", d / "seed.keras", "-o", out, "--calibration", d / "x_train.npy")
    assert proc.returncode == 2 and "--quantize int16x8" in proc.stderr


def test_validate_all_three_agree_on_nan(files):
    """Item 9: an all-padding row pools to NaN in Keras, onnxruntime and edgegru: a pass."""
    d = files
    proc = run("validate", d / "nan.keras", "--x", d / "nan_x.npy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout


def test_validate_prints_no_tensorflow_banner(files):
    """TensorFlow's absl / oneDNN / cpu_feature_guard lines: none (at most once each)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = run("validate", files / "flat.keras", files / "flat.egru", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), proc.stderr
    for banner in ("oneDNN", "absl::InitializeLog", "cpu_feature_guard"):
        assert proc.stderr.count(banner) <= 1, proc.stderr


NEWCOMER = {
    "missing_keras": (("validate", "{d}/missing.keras"), ["no Keras model file", "missing.keras"]),
    "missing_egru": (("validate", "{d}/seed.keras", "{d}/missing.egru"), ["missing.egru"]),
    "ids_beyond_vocab": (
        ("validate", "{d}/seed.keras", "--x", "{d}/big_ids.npy"),
        ["token id 40", "40 ids"],
    ),
    "float_ids": (("validate", "{d}/seed.keras", "--x", "{d}/floats.npy"), ["integer"]),
    "x_not_npy": (("validate", "{d}/seed.keras", "--x", "{d}/text.npy"), ["--x", "text.npy"]),
    "x_missing": (("validate", "{d}/seed.keras", "--x", "{d}/none.npy"), ["--x", "none.npy"]),
    "batch_0": (("validate", "{d}/seed.keras", "--batch", "0"), ["--batch", ">= 1"]),
    "batch_minus_1": (("validate", "{d}/seed.keras", "--batch", "-1"), ["--batch", "-1"]),
    "seq_len_minus_3": (("validate", "{d}/seed.keras", "--seq-len", "-3"), ["--seq-len", "-3"]),
    "seq_len_0": (("validate", "{d}/seed.keras", "--seq-len", "0"), ["--seq-len", ">= 1"]),
    "seed_negative": (("validate", "{d}/seed.keras", "--seed", "-1"), ["--seed", "-1"]),
    "batch_huge": (("validate", "{d}/seed.keras", "--batch", "10**11"), ["--batch"]),
    "batch_too_large": (("validate", "{d}/seed.keras", "--batch", "100000000000"), ["values"]),
    "tolerance_negative": (("validate", "{d}/seed.keras", "--tolerance", "-1"), ["--tolerance"]),
    "tolerance_text": (("validate", "{d}/seed.keras", "--tolerance", "x"), ["--tolerance"]),
    "info_seq_len_minus_5": (("info", "{d}/flat.egru", "--seq-len", "-5"), ["--seq-len", "-5"]),
    "info_flatten_other_t": (("info", "{d}/flat.egru", "--seq-len", "7"), ["10 steps", "7"]),
    "validate_flatten_other_t": (
        ("validate", "{d}/flat.keras", "--seq-len", "7"),
        ["exactly 10 steps"],
    ),
    "info_missing": (("info", "{d}/missing.egru"), ["missing.egru"]),
    "info_not_egru": (("info", "{d}/seed.keras"), ["edgegru info: error"]),
    "convert_missing": (("convert", "{d}/missing.keras"), ["missing.keras"]),
    "convert_truncated": (("convert", "{d}/truncated.keras"), ["truncated.keras", "truncated"]),
    "convert_softplus_onnx": (
        ("convert", "{d}/softplus.keras", "-o", "{d}/sp.egru", "--onnx", "{d}/sp.onnx"),
        ["softplus", "simple_rnn", "log(1 + exp(x))"],
    ),
    "unknown_command": (("frobnicate",), ["invalid choice"]),
    "no_command": ((), ["required"]),
}


@pytest.mark.parametrize("case", list(NEWCOMER))
def test_newcomer_mistakes_are_one_line_and_exit_2(files, case):
    args, words = NEWCOMER[case]
    proc = run(*(a.format(d=files) for a in args))
    assert_usage_error(proc, *words)
    if case.startswith("info_flatten"):
        assert proc.stdout == ""  # nothing of the table before the error
    if case == "convert_softplus_onnx":  # nothing is written
        assert not (files / "sp.egru").exists() and not (files / "sp.onnx").exists()


def test_info_names_format_producer_shapes_and_the_fixed_t(files):
    proc = run("info", files / "flat.egru")
    assert proc.returncode == 0, proc.stderr
    first, inp, out = proc.stdout.splitlines()[:3]
    header = edgegru.format.read_header((files / "flat.egru").read_bytes())
    assert f"format {header['version_major']}.{header['version_minor']}" in first
    assert f"edgegru {edgegru.__version__}" in first  # the producer, apart from the format
    assert "exactly T = 10" in inp and "(batch, T, 3)" in inp
    assert out == "output: shape (batch, 40)"  # no quotes, no tuple repr
    assert "T=10" in proc.stdout.splitlines()[-1]  # the arena for the model's own T


def test_demo_without_its_extra_is_one_line(tmp_path):
    """`edgegru demo` without the demo extra (tqdm made unimportable here): exit 2, one line
    naming the extra with its install command quoted for zsh."""
    blocked = tmp_path / "blocked" / "tqdm"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError(\"No module named 'tqdm'\")\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "blocked")}
    proc = run("demo", "--epochs", "1", env=env)
    assert_usage_error(proc, "demo", "pip install 'edgegru[demo]'")


def test_tools_convert_runs_without_the_compiled_runtime(files, tmp_path):
    """tools/convert.py from the checkout, with edgegru._runtime, keras and tensorflow made
    unimportable: the same bytes as `edgegru convert`."""
    code = (
        "import runpy, sys\n"
        "for name in ('edgegru._runtime', 'keras', 'tensorflow'):\n"
        "    sys.modules[name] = None\n"
        f"sys.argv = ['convert.py', {str(files / 'seed.keras')!r}, '-o', "
        f"{str(tmp_path / 'tool.egru')!r}]\n"
        f"runpy.run_path({str(ROOT / 'tools' / 'convert.py')!r}, run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert proc.returncode == 0, proc.stderr
    assert run("convert", files / "seed.keras", "-o", tmp_path / "cli.egru").returncode == 0
    assert (tmp_path / "tool.egru").read_bytes() == (tmp_path / "cli.egru").read_bytes()
