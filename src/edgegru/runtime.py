"""The Python face of the C runtime: `load()` and `Model.predict()`.

Input checking happens here, with messages that name the problem; the C runtime checks again
(its own contract), so a check missed here is still an error, never a crash.
"""

from __future__ import annotations

import json
import os

import numpy as np

from . import format as fmt
from ._runtime import Runtime
from .errors import InputError

_UINT32_MAX = 2**32 - 1


class Model:
    """A loaded `.egru` model. Immutable; `predict` may be called from several threads at once
    (each call uses its own scratch arena, and the C call runs without the GIL)."""

    def __init__(self, blob: bytes, path: str | None = None):
        self._rt = Runtime(blob)
        self._info = self._rt.describe()
        self.path = path
        try:
            self.metadata = json.loads(self._rt.metadata_bytes.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            self.metadata = {}

    # -- description ----------------------------------------------------------------------------
    @property
    def input_kind(self) -> str:
        """``"tokens"`` (integer ids, (batch, T)) or ``"features"`` (float, (batch, T, dim))."""
        return self._info["input_kind"]

    @property
    def input_dim(self) -> int:
        """Vocabulary size (tokens) or features per step."""
        return self._info["input_dim"]

    @property
    def output_dim(self) -> int:
        return self._info["output_dim"]

    @property
    def output_is_sequence(self) -> bool:
        return self._info["output_is_sequence"]

    @property
    def param_count(self) -> int:
        return self._info["param_count"]

    @property
    def file_size(self) -> int:
        return self._info["file_size"]

    def layers(self) -> list[dict]:
        """One dict per layer: op name, widths, activations, parameter count, MACs per step."""
        out = []
        names = self.metadata.get("source", {}).get("layers", [])
        for k in range(self._info["layer_count"]):
            d = self._rt.layer(k)
            d["op"] = fmt.OP_NAMES.get(d["op"], str(d["op"]))
            d["activation"] = fmt.ACTIVATION_NAMES.get(d["activation"], d["activation"])
            d["recurrent_activation"] = fmt.ACTIVATION_NAMES.get(
                d["recurrent_activation"], d["recurrent_activation"]
            )
            d["name"] = names[k] if k < len(names) else f"layer_{k}"
            out.append(d)
        return out

    def arena_size(self, batch: int, seq_len: int) -> int:
        """Bytes of scratch memory the C runtime needs for a (batch, seq_len) call."""
        return self._rt.arena_size(batch, seq_len)

    def output_shape(self, batch: int, seq_len: int) -> tuple:
        if self.output_is_sequence:
            return (batch, seq_len, self.output_dim)
        return (batch, self.output_dim)

    def __repr__(self) -> str:
        return (
            f"<edgegru.Model {self.input_kind}[{self.input_dim}] -> {self.output_dim}, "
            f"{self._info['layer_count']} layers, {self.param_count} parameters>"
        )

    # -- inference ------------------------------------------------------------------------------
    def predict(self, x) -> np.ndarray:
        """Run the model on a batch.

        x: token ids of shape (batch, T) (any integer dtype) for a token model, or float frames of
           shape (batch, T, input_dim) (float16/32/64) for a feature model. Any batch and T >= 1.
        Returns float32, shaped as Keras' ``model.predict`` returns: (batch, output_dim), or
        (batch, T, output_dim) when the model's output is a sequence.
        Raises InputError naming the problem for a wrong rank, dtype or width, a token id out of
        range, or a NaN/infinity.
        """
        x = np.asarray(x)
        if self.input_kind == "tokens":
            return self._rt.forward_tokens(self._check_tokens(x))
        return self._rt.forward_features(self._check_features(x))

    def _check_shape(self, x: np.ndarray, rank: int, what: str) -> None:
        if x.ndim != rank:
            raise InputError(f"expected {what}, got an array of shape {x.shape}")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise InputError(f"batch and sequence length must be >= 1, got shape {x.shape}")
        if x.shape[0] > _UINT32_MAX or x.shape[1] > _UINT32_MAX:
            raise InputError(f"shape {x.shape} is too large")

    def _check_tokens(self, x: np.ndarray) -> np.ndarray:
        self._check_shape(x, 2, "token ids of shape (batch, T)")
        if x.dtype.kind not in "iu":
            raise InputError(f"token ids must be an integer array, got dtype {x.dtype}")
        bad = (x < 0) | (x >= self.input_dim)
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(
                f"token id {x[pos]} at position {pos} is out of range: the "
                f"vocabulary has {self.input_dim} ids (0 .. {self.input_dim - 1})"
            )
        return np.ascontiguousarray(x, dtype=np.int32)

    def _check_features(self, x: np.ndarray) -> np.ndarray:
        self._check_shape(x, 3, f"features of shape (batch, T, {self.input_dim})")
        if x.dtype.kind != "f":
            raise InputError(f"features must be a float array, got dtype {x.dtype}")
        if x.shape[2] != self.input_dim:
            raise InputError(
                f"expected {self.input_dim} features per step, got {x.shape[2]} "
                f"(input shape {x.shape})"
            )
        finite = np.isfinite(x)
        if not finite.all():
            pos = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise InputError(
                f"input contains {x[pos]} at position {pos}; NaN and infinity are not valid inputs"
            )
        with np.errstate(over="ignore"):
            x32 = np.ascontiguousarray(x, dtype=np.float32)
        if x.dtype.itemsize > 4 and not np.isfinite(x32).all():
            pos = tuple(int(i) for i in np.argwhere(~np.isfinite(x32))[0])
            raise InputError(f"input value {x[pos]} at position {pos} does not fit in float32")
        return x32


def load(source) -> Model:
    """Load an `.egru` model from a path or from bytes. Raises FormatError for an invalid file."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Model(bytes(source))
    path = os.fspath(source)
    with open(path, "rb") as f:
        return Model(f.read(), path=path)
