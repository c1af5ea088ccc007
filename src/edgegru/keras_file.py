"""Read a Keras 3 ``.keras`` file WITHOUT TensorFlow or Keras: zipfile + json + h5py + numpy.

Entry point: `from_keras_file(path) -> ir.Model`. It feeds the same converters as the live route
(`edgegru.keras_import`), so a model converted from its file and from the live object gives the
same IR and byte-identical ``.egru`` files.

Archive layout (docs/keras-semantics.md section 10):

* ``config.json``: the serialized model ({"class_name", "config", ...}); Sequential and
  Functional, nested layers (Bidirectional, TimeDistributed) and nested models included.
* ``metadata.json``: {"keras_version", "date_saved"}.
* ``model.weights.h5``: variables by index under ``<path>/vars/<i>``. Inside each container (a
  model's ``layers``), every layer's group is the snake_case of its class name, made unique by
  order of appearance (``gru``, ``gru_1``, ...; the config name is ignored). Sub-objects are
  addressed by attribute: ``cell``, ``forward_layer``, ``backward_layer``, ``layer``; a nested
  model is ``layers/<its snake name>/layers/...``.

Legacy ``.h5`` files (a tf.keras 2 or Keras ``model.save("m.h5")`` HDF5 full model) are
converted when that is straightforward: the ``model_config`` attribute is the config, and
``model_weights/<layer name>`` holds each layer's weights in the order its ``weight_names``
attribute lists them, which is the order the converters expect. Nested models, a weights-only
file, and ``hard_sigmoid`` in a file from tf.keras 2 (where it was clip(0.2 x + 0.5, 0, 1), not
Keras 3's relu6(x + 3) / 6) are refused with a message saying how to re-save the model as
``.keras``.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile

import numpy as np

from .errors import FormatError, UnsupportedError
from .keras_import import _entry_name, convert_any, convert_chain, saved_layer_indices

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
H5PY_MISSING = "reading a .keras file needs h5py: pip install h5py"


class KerasFileError(UnsupportedError):
    """The file is a Keras model edgegru does not convert (a legacy ``.h5`` it cannot map,
    sharded weights). A file that is not a valid ``.keras`` archive at all (truncated, corrupt,
    inconsistent) raises `edgegru.FormatError` instead."""


def snake_case(name: str) -> str:
    """Keras' naming.to_snake_case: GRU -> gru, SimpleRNN -> simple_rnn, Conv1D -> conv1d."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def group_names(model: dict) -> dict:
    """{index into the container's config "layers": h5 group name} for the container `model`."""
    entries = model["config"]["layers"]
    used: dict = {}
    names = {}
    for index in saved_layer_indices(model):
        base = snake_case(str(entries[index].get("class_name")))
        if base in used:
            used[base] += 1
            names[index] = f"{base}_{used[base]}"
        else:
            used[base] = 0
            names[index] = base
    return names


class _H5Reader:
    """Weights from model.weights.h5, addressed like `keras_import._LiveReader`."""

    def __init__(self, h5):
        self.h5 = h5

    def layer(self, path):
        group = self.h5
        where = ""
        for container, index in path:
            names = group_names(container)
            if index not in names:  # a Sequential's InputLayer: no group
                return None
            where = f"{where}/layers/{names[index]}".lstrip("/")
            layers = group.get("layers")
            if layers is None or names[index] not in layers:
                entry = container["config"]["layers"][index]
                raise FormatError(
                    f"model.weights.h5 has no group {where!r} for layer "
                    f"{_entry_name(entry)!r} ({entry.get('class_name')})"
                )
            group = layers[names[index]]
        return group

    def own(self, group) -> list:
        if group is None or "vars" not in group:
            return []
        variables = group["vars"]
        keys = sorted(variables.keys(), key=int)
        if keys != [str(i) for i in range(len(keys))]:
            raise FormatError(f"{variables.name}: variables are not numbered 0..n-1: {keys}")
        return [np.asarray(variables[k][()]) for k in keys]

    def child(self, group, attribute):
        if group is None:
            return None
        if attribute not in group:
            raise FormatError(f"model.weights.h5 has no group {group.name}/{attribute}")
        return group[attribute]


RESAVE = (
    "load it with tf.keras (tf.keras.models.load_model) and save it as .keras: "
    "model.save('m.keras')"
)


def _legacy_h5_error(path: str, why: str) -> KerasFileError:
    return KerasFileError(
        f"{path!r} is a legacy HDF5 model file (tf.keras 2 / model.save('m.h5')) that edgegru "
        f"cannot convert directly ({why}); {RESAVE}"
    )


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class _LegacyReader:
    """Weights of a legacy HDF5 full model: model_weights/<layer name>, in weight_names order
    (a layer's own and its sub-layers' weights together, so `child` has nothing more)."""

    def __init__(self, path: str, weights):
        self.path = path
        self.weights = weights

    def layer(self, path):
        if len(path) != 1:  # pragma: no cover - _legacy_config refuses nested models first
            raise _legacy_h5_error(self.path, "it nests a model")
        container, index = path[0]
        name = _entry_name(container["config"]["layers"][index])
        return self.weights[name] if name in self.weights else None

    def own(self, group) -> list:
        if group is None:
            return []
        names = [_text(n) for n in group.attrs.get("weight_names", [])]
        return [np.asarray(group[n][()]) for n in names]

    def child(self, group, attribute):
        return None


def _legacy_config(path: str, h5) -> tuple:
    """(model config, keras_version) of a legacy HDF5 full model, in the form `_walk` reads."""
    if "model_config" not in h5.attrs or "model_weights" not in h5:
        raise _legacy_h5_error(path, "it holds no model_config and model_weights")
    try:
        config = json.loads(_text(h5.attrs["model_config"]))
    except ValueError:
        raise _legacy_h5_error(path, "its model_config is not JSON") from None
    version = _text(h5.attrs.get("keras_version", "unknown"))
    inner = config.get("config") or {}
    layers = inner.get("layers") or []
    if config.get("class_name") == "Sequential" and layers:
        first = layers[0].get("config") or {}
        if layers[0].get("class_name") != "InputLayer" and "batch_input_shape" in first:
            # tf.keras 2: Sequential([GRU(..., input_shape=...)]) has no InputLayer entry
            layers.insert(
                0,
                {
                    "class_name": "InputLayer",
                    "config": {
                        "batch_input_shape": first["batch_input_shape"],
                        "dtype": first.get("dtype", "float32"),
                        "name": "input",
                    },
                },
            )
    for entry in layers:
        if "layers" in (entry.get("config") or {}):
            raise _legacy_h5_error(path, f"it nests the model {_entry_name(entry)!r}")
    if version.startswith("2."):
        for entry in layers:
            if '"hard_sigmoid"' in json.dumps(entry):
                raise KerasFileError(
                    f"{path!r}: layer {_entry_name(entry)!r} ({entry.get('class_name')}) uses "
                    "hard_sigmoid, which tf.keras 2 computes as clip(0.2 x + 0.5, 0, 1) and "
                    "Keras 3 as relu6(x + 3) / 6; edgegru implements the Keras 3 function, so a "
                    f"tf.keras {version} model would change its numbers: {RESAVE} after "
                    "checking its outputs, or retrain with Keras 3"
                )
    return config, version


def from_legacy_h5(path):
    """Convert a legacy HDF5 full model (see the module docstring)."""
    path = os.fspath(path)
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(H5PY_MISSING) from exc
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{path!r}: the HDF5 model file is corrupt: {exc}") from None
    with h5:
        config, version = _legacy_config(path, h5)
        return convert_chain(config, _LegacyReader(path, h5["model_weights"]), version)


def read_archive(path) -> tuple:
    """(config dict, metadata dict, weights.h5 bytes) of a .keras file; (None, None, None) for an
    HDF5 file (a legacy full model). Raises FileNotFoundError, FormatError for a file that is not
    a readable zip archive with a model config (truncated, corrupt), KerasFileError for sharded
    or npz weights."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no Keras model file at {path!r}")
    with open(path, "rb") as f:
        head = f.read(len(HDF5_SIGNATURE))
    if head == HDF5_SIGNATURE:
        return None, None, None
    if not zipfile.is_zipfile(path):
        raise FormatError(
            f"{path!r} is not a .keras file (a zip archive): truncated, corrupt or another format"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            if "config.json" not in members:
                raise FormatError(f"{path!r}: the archive has no config.json")
            if "model.weights.h5" not in members:
                raise KerasFileError(
                    f"{path!r}: the archive has no model.weights.h5 (sharded or npz weights are "
                    "not supported; save with model.save('m.keras'))"
                )
            try:
                config = json.loads(archive.read("config.json"))
                metadata = (
                    json.loads(archive.read("metadata.json")) if "metadata.json" in members else {}
                )
            except ValueError as exc:
                raise FormatError(f"{path!r}: invalid JSON in the archive: {exc}") from None
            weights = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        # truncated or corrupt members: bad CRC, bad local header, short read
        raise FormatError(f"{path!r}: the .keras archive is corrupt: {exc}") from None
    if not isinstance(config, dict) or "config" not in config:
        raise FormatError(f"{path!r}: config.json does not describe a model")
    return config, metadata if isinstance(metadata, dict) else {}, weights


def from_keras_file(path, *, graphs: bool = False):
    """Convert the ``.keras`` file at `path` to an `ir.Model` (see the module docstring); with
    graphs=True a model that is not a single chain gives an `ir.Graph` (as
    `keras_import.from_keras(..., graphs=True)` does for the live model).

    Raises FileNotFoundError, FormatError for a file that is not a readable ``.keras`` archive
    (truncated, corrupt, inconsistent weights), KerasFileError (an UnsupportedError) for a
    Keras file edgegru does not convert (a legacy ``.h5`` that is not straightforward, sharded
    weights), and whatever the converters raise (`keras_import.UnsupportedLayerError`, ...).
    """
    config, metadata, weights = read_archive(path)
    if config is None:
        return from_legacy_h5(path)
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(H5PY_MISSING) from exc
    try:
        h5 = h5py.File(io.BytesIO(weights), "r")
    except OSError as exc:
        raise FormatError(f"{os.fspath(path)!r}: model.weights.h5 is corrupt: {exc}") from None
    with h5:
        convert = convert_any if graphs else convert_chain
        return convert(config, _H5Reader(h5), str(metadata.get("keras_version", "unknown")))
