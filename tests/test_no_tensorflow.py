"""Converting a `.keras` file needs neither TensorFlow nor Keras (edgegru.keras_file reads the
archive with zipfile + json + h5py + numpy), and gives the bytes the live Keras route gives.

Two checks: in this interpreter with `tensorflow` and `keras` made unimportable, and in a fresh
virtual environment that holds only numpy, h5py and an edgegru wheel built from this tree, where
the `edgegru convert` command runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from keras_models import conv_bn_gru_model, masked_bilstm_model, stacked_mixed_model, token_model

import edgegru

ROOT = Path(__file__).resolve().parents[1]

MODELS = {
    "tokens": lambda: token_model(60, 8, (8, 6), False, 3, "softmax", seed=41),
    "masked_bilstm": lambda: masked_bilstm_model(seed=42, merge_mode="ave"),
    "conv_bn_gru": lambda: conv_bn_gru_model(seed=43),
    "stacked_mixed": lambda: stacked_mixed_model(seed=44, functional=True),
}

pytestmark = pytest.mark.filterwarnings("ignore:Layer .* does not support masking:UserWarning")

BLOCK = "import sys\nsys.modules['tensorflow'] = None\nsys.modules['keras'] = None\n"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{name: (.keras path, .egru bytes written by edgegru.convert from the live model)}."""
    d = tmp_path_factory.mktemp("no_tf")
    out = {}
    for name, make in MODELS.items():
        model = make()
        model.save(d / f"{name}.keras")
        edgegru.convert(model, d / f"{name}.live.egru")
        out[name] = (d / f"{name}.keras", (d / f"{name}.live.egru").read_bytes())
    return out


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_blocked_tensorflow_and_keras(saved, tmp_path):
    paths = {name: str(path) for name, (path, _) in saved.items()}
    code = BLOCK + (
        "import json, edgegru\n"
        "from edgegru.keras_import import from_keras\n"
        f"paths = {paths!r}\n"
        "for name, path in paths.items():\n"
        f"    edgegru.convert(path, {str(tmp_path)!r} + '/' + name + '.egru')\n"
        "    from_keras(path)  # the importer's path route needs no keras either\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras') and sys.modules[m] is not None)))\n"
    )
    proc = _run([sys.executable, "-c", code])  # the edgegru installed in this interpreter
    assert proc.stdout.strip() == "[]"
    for name, (_, live_bytes) in saved.items():
        assert (tmp_path / f"{name}.egru").read_bytes() == live_bytes, name


def test_live_object_route_says_keras_is_missing(tmp_path):
    code = BLOCK + (
        "from edgegru.keras_import import from_keras, KERAS_MISSING\n"
        "try:\n"
        "    from_keras(object())\n"
        "except ImportError as e:\n"
        "    assert str(e) == KERAS_MISSING, e\n"
        "    print('ok')\n"
    )
    proc = _run([sys.executable, "-c", code])  # the edgegru installed in this interpreter
    assert proc.stdout.strip() == "ok"


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory):
    """A virtual environment with only numpy, h5py and an edgegru wheel of this tree (built once,
    from a copy of the tree so that the build leaves nothing in the work tree)."""
    d = tmp_path_factory.mktemp("bare_venv")
    tree = d / "tree"
    shutil.copytree(
        ROOT,
        tree,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "__pycache__", "*.so", "*.egg-info", ".*_cache", "*.egru"
        ),
    )
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(d / "dist"), tree])
    (wheel,) = (d / "dist").glob("edgegru-*.whl")
    venv = d / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([*pip, "--python", str(python), "install", "-q", "--no-deps", str(wheel)])
    _run([*pip, "--python", str(python), "install", "-q", "numpy", "h5py"])
    return venv


def test_cli_in_a_venv_without_tensorflow_and_keras(bare_venv, saved, tmp_path):
    python = bare_venv / "bin" / "python"
    probe = _run(
        [
            str(python),
            "-c",
            "import importlib.util as u, edgegru; "
            "print(u.find_spec('tensorflow'), u.find_spec('keras'), edgegru.__file__)",
        ],
        cwd=tmp_path,
    )
    none_tf, none_keras, location = probe.stdout.split()
    assert (none_tf, none_keras) == ("None", "None")
    assert str(bare_venv) in location  # the installed wheel, not the work tree
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for name, (path, live_bytes) in saved.items():
        out = tmp_path / f"{name}.egru"
        proc = _run(
            [str(bare_venv / "bin" / "edgegru"), "convert", str(path), "-o", str(out)], env=env
        )
        assert "wrote" in proc.stdout
        assert out.read_bytes() == live_bytes, name
