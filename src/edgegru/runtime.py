"""The Python face of the C runtime: `load()`, `Model.predict()` and `Model.stream()`.

Input checking happens here, with messages that name the problem; the C runtime checks again
(its own contract), so a check missed here is still an error, never a crash.
"""

from __future__ import annotations

import json
import os

import numpy as np

from . import format as fmt
from ._runtime import (
    DEFAULT_ARENA_LIMIT,  # noqa: F401 (re-exported: Model.arena_limit names it)
    ERR_BAD_SHAPE,
    ERR_NONFINITE,
    ERR_NULL_ARG,
    ERR_TOKEN_RANGE,
    KERNEL_SETS,
    GraphSession,
    Runtime,
    Session,
    available_kernels,
)
from .errors import EdgeGRUError, InputError, UnsupportedError

_UINT32_MAX = 2**32 - 1

#: Environment variable choosing the kernel set when `load` is not told: "auto" (default: the
#: fastest set this CPU has), "ref" (the scalar reference kernels), "cortex_m" (the Cortex-M
#: kernels, portable C on a host), "avx2", "avx512", "neon".
KERNELS_ENV = "EDGEGRU_KERNELS"
#: The most threads `load(..., threads=N)` takes.
MAX_THREADS = 64


class Model:
    """A loaded `.egru` model. Immutable; `predict` may be called from several threads at once
    (each call uses its own scratch arena, and the C call runs without the GIL). Pickles and
    copies as its bytes plus its load options, and computes the same bits after the trip
    (docs/distributed.md)."""

    def __init__(
        self,
        blob: bytes,
        path: str | None = None,
        kernels: str | None = None,
        fold_embedding: bool | None = None,
        pack: bool | None = None,
        threads: int = 1,
    ):
        name, explicit = _kernel_choice(kernels)
        threads = _threads_arg(threads)
        if fold_embedding is not None and not isinstance(fold_embedding, (bool, np.bool_)):
            raise InputError(f"fold_embedding must be True, False or None, got {fold_embedding!r}")
        if pack is not None and not isinstance(pack, (bool, np.bool_)):
            raise InputError(f"pack must be True, False or None, got {pack!r}")
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise InputError(f"a model is made from bytes, got {type(blob).__name__}")
        self._rt = Runtime(blob)
        self._rt.use_kernels(name)
        self._rt.use_threads(threads)
        #: int16x8 (integer-only) model: (input scale, output scale, Masking mask_value or None)
        self._q16 = None
        if self._rt.quant_version == 2:
            if pack or fold_embedding:
                raise UnsupportedError(
                    "int16x8 models run their int8 rows in place: pack and fold_embedding do "
                    "not apply"
                )
            pack = False
            first = self._rt.layer(0)
            mask = None
            if first["op"] == 12:  # MASKING: Keras compares the float features
                mask = np.array(first["params"][0], dtype=np.uint32).view(np.float32)[()]
            self._q16 = (*self._rt.scales(), mask)
        # What pickling needs to rebuild this model exactly (__reduce__).
        self._explicit_kernels = explicit
        self._pack_arg = pack
        if pack is None:
            pack = self._rt.kernels != "ref"
        self._pack = bool(pack)
        if fold_embedding is None:
            fold_embedding = _fold_by_default(self._rt, len(blob))
        self._fold = bool(fold_embedding)
        #: Bytes of memory spent on the packed (transposed) recurrent weights (0: not packed).
        self.pack_bytes = self._rt.pack() if pack else 0
        #: Bytes of memory spent on folded projections (0 when not folded).
        self.fold_bytes = self._rt.fold_embedding() if fold_embedding else 0
        self._info = self._rt.describe()
        self.path = path
        try:
            self.metadata = json.loads(self._rt.metadata_bytes.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            self.metadata = {}
        if not isinstance(self.metadata, dict):
            self.metadata = {}
        self._inputs, self._outputs = _io_specs(self)
        self._graph = self._info["input_kind"] == "graph"
        #: predict tries the C runtime's exact-input path first (a chain float or int8 model).
        self._exact_first = not self._graph and self._q16 is None
        self._seq_limits = (1, None, "") if self._graph else _seq_len_limits(self)

    # -- description ----------------------------------------------------------------------------
    @property
    def input_kind(self) -> str:
        """``"tokens"`` (integer ids, (batch, T)) or ``"features"`` (float, (batch, T, dim));
        ``"graph"`` for a graph model (several inputs or outputs: see `inputs`)."""
        return self._info["input_kind"]

    @property
    def is_graph(self) -> bool:
        """True for a graph model (docs/format.md "Graphs"): `inputs` and `outputs` describe it."""
        return self._graph

    @property
    def inputs(self) -> list:
        """The model inputs in Keras' ``model.inputs`` order, each an IOSpec(name, kind, width):
        kind "tokens" (ids (batch, T), width = vocabulary), "features" (float (batch, T, width))
        or "vector" (float (batch, width)). A chain model has one."""
        return list(self._inputs)

    @property
    def outputs(self) -> list:
        """The model outputs in Keras' ``model.outputs`` order, each an IOSpec(name, kind,
        width), kind "sequence" ((batch, T, width)) or "vector" ((batch, width))."""
        return list(self._outputs)

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
    def kernels(self) -> str:
        """The kernel set the model runs with ("ref", "avx2", "avx512", "neon")."""
        return self._rt.kernels

    @property
    def threads(self) -> int:
        """Threads a call runs on (load's threads argument)."""
        return self._rt.threads

    @property
    def param_count(self) -> int:
        return self._info["param_count"]

    @property
    def file_size(self) -> int:
        return self._info["file_size"]

    def layers(self) -> list[dict]:
        """One dict per layer (a graph: per node): op name, widths, activations, parameter count,
        MACs per step, name (a graph's node: the first value it writes). The layers as the file
        stores them, also when fold_embedding replaced the first two by a table lookup."""
        out = []
        names = self.metadata.get("source", {}).get("layers", [])
        if self._graph:  # a node is named by the first value it writes (shared layers: name@i)
            names = [node.outputs[0] for node in fmt.read(self._rt.blob_bytes)[0].nodes]
        rt = self._rt
        if self._fold:  # describe the stored layers: an unfolded parse of the same bytes, kept
            rt = getattr(self, "_plain_rt", None)
            if rt is None:
                rt = self._plain_rt = Runtime(bytes(self._rt.blob_bytes))
        for k in range(self._info["layer_count"]):
            d = rt.layer(k)
            d["op"] = fmt.OP_NAMES.get(d["op"], str(d["op"]))
            d["activation"] = fmt.ACTIVATION_NAMES.get(d["activation"], d["activation"])
            d["recurrent_activation"] = fmt.ACTIVATION_NAMES.get(
                d["recurrent_activation"], d["recurrent_activation"]
            )
            d["name"] = names[k] if k < len(names) else f"layer_{k}"
            out.append(d)
        return out

    @property
    def fixed_seq_len(self) -> int | None:
        """The number of time steps this model needs when it needs a fixed one (a model with a
        Flatten, whose width depends on T), else None (any T >= 1 works, or any T from a
        minimum: see `seq_len_range`). With a strided Conv1D before the Flatten a few
        consecutive T give the same flattened width and all work; this is the shortest."""
        lo, hi, _ = self._seq_limits
        return lo if hi is not None else None

    @property
    def seq_len_range(self) -> tuple:
        """(shortest, longest) sequence length this model accepts; longest is None when there is
        no bound beyond the runtime's 2**32 - 1 (the shortest is above 1 only after a Conv1D
        with padding="valid"; a Flatten bounds both)."""
        lo, hi, _ = self._seq_limits
        return (lo, hi)

    def arena_size(self, batch: int, seq_len: int, minimal: bool = False) -> int:
        """Bytes of scratch memory the C runtime needs for a (batch, seq_len) call: the fast
        plan's (whole sequences, 16 rows at a time), or with minimal=True the low-memory plan's
        (one row, one step at a time: the smallest arena any call runs in; independent of
        seq_len for models whose layers all run step by step). Both give the same outputs bit
        for bit (docs/embedded.md)."""
        if not isinstance(minimal, (bool, np.bool_)):
            raise InputError(f"minimal must be True or False, got {minimal!r}")
        if self._graph:
            batch, steps = _count("batch", batch), self._graph_steps(seq_len)
            return self._rt.run_arena_size(batch, steps, bool(minimal))
        batch, seq_len = _count("batch", batch), _count("seq_len", seq_len)
        try:
            return self._rt.arena_size(batch, seq_len, bool(minimal))
        except EdgeGRUError as exc:
            raise self._shape_error(exc, batch, seq_len) from None

    @property
    def arena_limit(self) -> int:
        """The most scratch memory (bytes) a `predict` call allocates for the fast plan; larger
        shapes (a long T, a big batch) run the low-memory plan's chunks of steps in an arena of
        this size instead, with the same results (only slower: one row at a time). Default
        DEFAULT_ARENA_LIMIT (256 MiB). A model whose low-memory arena is larger still (a
        Bidirectional layer or Conv1D over a very long sequence) gets that arena."""
        return self._rt.arena_limit

    @arena_limit.setter
    def arena_limit(self, value: int) -> None:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise InputError(f"arena_limit must be an int number of bytes, got {value!r}")
        if value < 0 or value > 2**63 - 1:
            raise InputError(f"arena_limit must be in [0, 2**63), got {value}")
        self._rt.arena_limit = int(value)

    def _graph_steps(self, seq_len) -> list:
        """A graph's input steps: one int for every sequence input, or a list per input."""
        if isinstance(seq_len, (list, tuple)):
            if len(seq_len) != len(self._inputs):
                raise InputError(f"give one sequence length per input ({len(self._inputs)})")
            return [_count("seq_len", t) for t in seq_len]
        return [_count("seq_len", seq_len)] * len(self._inputs)

    def output_shape(self, batch: int, seq_len: int) -> tuple:
        """The shape predict returns for input of `batch` sequences of `seq_len` steps (a
        graph: a list of shapes, one per output; seq_len one int or one per input)."""
        if self._graph:
            batch, steps = _count("batch", batch), self._graph_steps(seq_len)
            out_steps = self._rt.run_output_steps(steps)
            return [
                (batch, o.width) if o.kind == "vector" else (batch, n, o.width)
                for o, n in zip(self._outputs, out_steps, strict=True)
            ]
        batch, seq_len = _count("batch", batch), _count("seq_len", seq_len)
        try:
            count = self._rt.output_count(batch, seq_len)
        except EdgeGRUError as exc:
            raise self._shape_error(exc, batch, seq_len) from None
        if self.output_is_sequence:  # a Conv1D may change the number of steps
            return (batch, count // (batch * self.output_dim), self.output_dim)
        return (batch, self.output_dim)

    def _shape_error(self, exc: EdgeGRUError, batch: int, seq_len: int) -> EdgeGRUError:
        """The C runtime refused a (batch, seq_len) shape (EGRU_ERR_BAD_SHAPE): say why."""
        if exc.code != ERR_BAD_SHAPE:
            return exc
        lo, hi, why = self._seq_limits
        if hi is not None and hi < lo:
            return InputError(f"this model cannot run on any sequence length ({why})")
        if seq_len < lo or (hi is not None and seq_len > hi):
            if hi == lo:
                need = f"exactly {lo} steps"
            elif hi is not None:
                need = f"{lo} to {hi} steps"
            else:
                need = f"at least {lo} steps"
            return InputError(f"this model takes sequences of {need} ({why}); got {seq_len}")
        return InputError(
            f"batch {batch} x sequence length {seq_len} is too large for the C runtime (its "
            "step counts or scratch memory would overflow); split the batch or the sequence"
        )

    # -- pickling -------------------------------------------------------------------------------
    def __reduce__(self):
        """A model pickles as its file bytes and its load options: the kernel set it runs with,
        fold_embedding and pack (docs/distributed.md). Unpickling parses and validates the
        bytes again and runs with the same kernel set, so predict gives bit-identical results;
        copy.deepcopy goes the same way."""
        opts = {
            "version": 1,
            "kernels": self._rt.kernels,
            "explicit_kernels": self._explicit_kernels,
            "fold_embedding": self._fold,
            "pack": self._pack,
            "pack_arg": self._pack_arg,
            "threads": self._rt.threads,
        }
        return (_unpickle_model, (self._rt.blob_bytes, self.path, opts))

    def __repr__(self) -> str:
        if self._graph:
            ins = ", ".join(f"{i.name}: {i.kind}[{i.width}]" for i in self._inputs)
            outs = ", ".join(f"{o.name}: {o.kind}[{o.width}]" for o in self._outputs)
            return (
                f"<edgegru.Model graph ({ins}) -> ({outs}), {self._info['layer_count']} nodes, "
                f"{self.param_count} parameters>"
            )
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
        if self._exact_first and type(x) is np.ndarray:  # the common call: one array, float
            try:
                out = self._rt.forward_exact(x)  # None unless x is already int32/float32
            except EdgeGRUError as exc:
                raise _located(self, exc, x) from None
            if out is not None:
                return out
        if self._graph:
            return self._predict_graph(x)
        x = self._single_input(x)
        if self._q16 is not None:
            y = self.predict_int(x)
            return (y.astype(np.float64) * np.float64(self._q16[1])).astype(np.float32)
        try:
            out = self._rt.forward_exact(x)  # None unless x is already int32/float32 as needed
            if out is not None:
                return out
        except EdgeGRUError as exc:
            raise _located(self, exc, x) from None
        x = _as_array(x, "input")
        try:
            if self._info["input_kind"] == "tokens":
                return self._rt.forward_tokens(self._check_tokens(x))
            return self._rt.forward_features(self._check_features(x))
        except EdgeGRUError as exc:
            raise _located(self, exc, x) from None

    def _single_input(self, x):
        """A chain model's input given as Keras allows for one input: the array itself, a list
        or tuple holding one array, or a dict holding it under the input's name."""
        if isinstance(x, dict):
            return self._inputs_in_order(x)[0]
        if isinstance(x, (list, tuple)) and len(x) == 1 and isinstance(x[0], np.ndarray):
            return x[0]
        return x

    def _inputs_in_order(self, x) -> list:
        """The inputs as a list in `inputs` order, from a list / tuple in that order, a dict keyed
        by input name, or (one input) the array alone."""
        names = [spec.name for spec in self._inputs]
        if isinstance(x, dict):
            unknown = [k for k in x if k not in names]
            missing = [k for k in names if k not in x]
            if unknown or missing:
                raise InputError(
                    f"the inputs are {names}; "
                    + (f"unknown: {unknown}" if unknown else "")
                    + ("; " if unknown and missing else "")
                    + (f"missing: {missing}" if missing else "")
                )
            return [x[k] for k in names]
        if isinstance(x, (list, tuple)) and (
            len(names) > 1 or (len(x) == 1 and isinstance(x[0], np.ndarray))
        ):
            if len(x) != len(names):
                raise InputError(f"this model takes {len(names)} inputs {names}, got {len(x)}")
            return list(x)
        if len(names) > 1:
            raise InputError(
                f"this model takes {len(names)} inputs {names}: pass a list in that order or a "
                "dict keyed by input name"
            )
        return [x]

    def _predict_graph(self, x):
        """predict for a graph model: the inputs checked one by one (named in every message),
        the C runtime's egru_run, a list of outputs (the array alone for one output)."""
        arrays, batch = [], None
        for spec, a in zip(self._inputs, self._inputs_in_order(x), strict=True):
            a = _check_graph_input(spec, _as_array(a, f"input {spec.name!r}"))
            if batch is None:
                batch = a.shape[0]
            elif a.shape[0] != batch:
                raise InputError(
                    f"input {spec.name!r} has batch {a.shape[0]}, the first input has {batch}"
                )
            arrays.append(a)
        try:
            outs = self._rt.run(arrays, batch)
        except EdgeGRUError as exc:
            raise self._graph_error(exc, arrays) from None
        return outs if len(outs) > 1 else outs[0]

    def _graph_error(self, exc: EdgeGRUError, arrays: list) -> EdgeGRUError:
        """Name the input behind a status of egru_run."""
        for spec, a in zip(self._inputs, arrays, strict=True):
            if exc.code == ERR_TOKEN_RANGE and spec.kind == "tokens":
                bad = np.argwhere((a < 0) | (a >= spec.width))
                if len(bad):
                    pos = tuple(int(i) for i in bad[0])
                    return InputError(
                        f"input {spec.name!r}: token id {a[pos]} at position {pos} is out of "
                        f"range: the vocabulary has {spec.width} ids (0 .. {spec.width - 1})"
                    )
            if exc.code == ERR_NONFINITE and spec.kind != "tokens" and not np.isfinite(a).all():
                pos = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
                return InputError(
                    f"input {spec.name!r} contains {a[pos]} at position {pos}; NaN and "
                    "infinity are not valid inputs"
                )
        if exc.code == ERR_BAD_SHAPE:
            pairs = zip(self._inputs, arrays, strict=True)
            steps = {s.name: a.shape[1] for s, a in pairs if s.kind != "vector"}
            return InputError(
                f"the inputs' sequence lengths {steps} do not fit this graph (a merge or a "
                "concatenation along features needs equal steps, a Conv1D with padding='valid' "
                "enough of them), or the shape is too large for the C runtime"
            )
        return exc

    @property
    def int16x8(self) -> bool:
        """True for an integer-only int16x8 model (quantize="int16x8"; docs/quantization.md)."""
        return self._q16 is not None

    @property
    def scales(self) -> tuple:
        """int16x8 models: (input scale, output scale), float32: an int16 input q means
        q * input scale, an output q means q * output scale. (None, None) otherwise."""
        return (self._q16[0], self._q16[1]) if self._q16 is not None else (None, None)

    def predict_int(self, x) -> np.ndarray:
        """int16x8 models: the integer output, int16 (batch, [T,] output_dim) at the output
        scale, exactly what the C runtime computes (the numpy emulation edgegru.int16x8 gives
        the same integers). x: token ids; float features, quantized here with
        sat16(rint(x / input scale)) (a first Masking layer compares them with mask_value in
        float, as Keras); or int16 features already at the input scale."""
        if self._q16 is None:
            raise UnsupportedError("predict_int is for int16x8 models (quantize='int16x8')")
        x = _as_array(x, "input")
        valid = None
        try:
            if self._info["input_kind"] == "tokens":
                return self._rt.forward_s16(self._check_tokens(x))
            if x.dtype == np.int16:
                self._check_shape(x, 3, f"features of shape (batch, T, {self.input_dim})")
                if x.shape[2] != self.input_dim:
                    raise InputError(
                        f"expected {self.input_dim} features per step, got {x.shape[2]}"
                    )
                q = np.ascontiguousarray(x)
            else:
                f = self._check_features(x)
                if not np.isfinite(f).all():
                    raise self._nonfinite_error(x)
                q = np.clip(np.rint(f.astype(np.float64) / np.float64(self._q16[0])), -32767, 32767)
                q = np.ascontiguousarray(q, dtype=np.int16)
                if self._q16[2] is not None:
                    valid = np.ascontiguousarray(np.any(f != self._q16[2], axis=-1), dtype=np.uint8)
            return self._rt.forward_s16(q, valid)
        except EdgeGRUError as exc:
            raise _located(self, exc, x) from None

    def stream(self, batch: int = 1) -> Stream:
        """A stream over this model: feed one time step at a time, with every recurrent layer's
        state carried from step to step (docs/streaming.md). Starts from the zero state.

        A graph model gives a GraphStream (every sequence input advances one step per call,
        every recurrent node carries its state; docs/streaming.md "Graphs").

        Raises UnsupportedError when a layer needs more than the steps seen so far
        (Bidirectional, go_backwards, Conv1D, GlobalPooling, Flatten; in graphs also
        RepeatVector, Concatenate along time, an initial state computed by another node), naming
        it; int16x8 models stream
        when every layer is an Embedding, Masking, Dense, Activation, Affine, LayerNorm, GRU,
        LSTM or SimpleRNN (their steps are integer-only and equal ``predict_int`` bit for bit:
        docs/streaming.md, "int16x8").
        """
        if self._graph:
            return GraphStream(self, batch)
        return Stream(self, batch)

    def _check_shape(self, x: np.ndarray, rank: int, what: str) -> None:
        if x.ndim != rank:
            raise InputError(f"expected {what}, got an array of shape {x.shape}")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise InputError(f"batch and sequence length must be >= 1, got shape {x.shape}")
        if x.shape[0] > _UINT32_MAX or x.shape[1] > _UINT32_MAX:
            raise InputError(f"shape {x.shape} is too large")

    def _check_tokens(self, x: np.ndarray) -> np.ndarray:
        """Shape and dtype; the range of the ids is checked by the C runtime, except that ids of
        a wider type must fit int32 before the cast (else a huge id could wrap into range)."""
        self._check_shape(x, 2, "token ids of shape (batch, T)")
        if x.dtype.kind not in "iu":
            raise InputError(f"token ids must be an integer array, got dtype {x.dtype}")
        if x.dtype != np.int32 and (x.min() < 0 or x.max() >= self.input_dim):
            raise self._token_range_error(x)
        return np.ascontiguousarray(x, dtype=np.int32)

    def _token_range_error(self, x: np.ndarray) -> InputError:
        bad = np.argwhere((x < 0) | (x >= self.input_dim))
        if not len(bad):
            # The C runtime read an id out of range, and the array holds none now: another
            # thread wrote it while the call ran (without the GIL). No id past the check is
            # ever used (the runtime checks each id where it reads it).
            return InputError(
                f"a token id was out of range (the vocabulary has {self.input_dim} ids) when "
                "the runtime read it, but the array holds none now: it was changed by another "
                "thread during the call; do not write the ids while predict or step reads them"
            )
        pos = tuple(int(i) for i in bad[0])
        return InputError(
            f"token id {x[pos]} at position {pos} is out of range: the "
            f"vocabulary has {self.input_dim} ids (0 .. {self.input_dim - 1})"
        )

    def _nonfinite_error(self, x: np.ndarray) -> InputError:
        finite = np.isfinite(x)
        if not finite.all():
            pos = tuple(int(i) for i in np.argwhere(~finite)[0])
            return InputError(
                f"input contains {x[pos]} at position {pos}; NaN and infinity are not valid inputs"
            )
        with np.errstate(over="ignore"):
            big = np.argwhere(~np.isfinite(x.astype(np.float32)))
        if not len(big):  # as in _token_range_error: changed by another thread meanwhile
            return InputError(
                "the input held a NaN or infinity when the runtime read it, but holds none now: "
                "it was changed by another thread during the call"
            )
        pos = tuple(int(i) for i in big[0])
        return InputError(f"input value {x[pos]} at position {pos} does not fit in float32")

    def _check_features(self, x: np.ndarray) -> np.ndarray:
        self._check_shape(x, 3, f"features of shape (batch, T, {self.input_dim})")
        if x.dtype.kind != "f":
            raise InputError(f"features must be a float array, got dtype {x.dtype}")
        if x.shape[2] != self.input_dim:
            raise InputError(
                f"expected {self.input_dim} features per step, got {x.shape[2]} "
                f"(input shape {x.shape})"
            )
        # NaN and infinity (also from float64 values too large for float32) are found by the C
        # runtime; predict then builds the message (_nonfinite_error).
        if x.dtype == np.float32 and x.flags.c_contiguous:
            return x
        with np.errstate(over="ignore"):
            return np.ascontiguousarray(x, dtype=np.float32)


class IOSpec(tuple):
    """One model input or output: (name, kind, width); see Model.inputs / Model.outputs."""

    __slots__ = ()

    def __new__(cls, name: str, kind: str, width: int):
        return super().__new__(cls, (name, kind, width))

    name = property(lambda self: self[0])
    kind = property(lambda self: self[1])
    width = property(lambda self: self[2])

    def __repr__(self) -> str:
        return f"IOSpec(name={self.name!r}, kind={self.kind!r}, width={self.width})"


def _io_specs(model: Model) -> tuple:
    """The model's IOSpecs from the C runtime (kinds, widths) and the metadata (names)."""
    ins, outs = model._rt.io()
    graph = model.metadata.get("graph", {}) if isinstance(model.metadata, dict) else {}
    in_names = graph.get("inputs") if isinstance(graph, dict) else None
    out_names = graph.get("outputs") if isinstance(graph, dict) else None

    def names(given, n: int, default: str) -> list:
        ok = isinstance(given, list) and len(given) == n and all(isinstance(g, str) for g in given)
        if ok and len(set(given)) == n:
            return given
        return [default] if n == 1 else [f"{default}_{k}" for k in range(n)]

    kinds = {"sequence": "features"}
    return (
        [
            IOSpec(nm, kinds.get(kind, kind), width)
            for nm, (kind, width) in zip(names(in_names, len(ins), "input"), ins, strict=True)
        ],
        [
            IOSpec(nm, kind, width)
            for nm, (kind, width) in zip(names(out_names, len(outs), "output"), outs, strict=True)
        ],
    )


def _check_graph_input(spec: IOSpec, a: np.ndarray) -> np.ndarray:
    """One graph input, shape and dtype checked with its name in the message, as the C runtime
    takes it (C-contiguous int32 ids or float32)."""
    what = f"input {spec.name!r}"
    rank = 2 if spec.kind in ("tokens", "vector") else 3
    want = {
        "tokens": "token ids of shape (batch, T)",
        "features": f"features of shape (batch, T, {spec.width})",
        "vector": f"a float array of shape (batch, {spec.width})",
    }[spec.kind]
    if a.ndim != rank:
        raise InputError(f"{what}: expected {want}, got an array of shape {a.shape}")
    if min(a.shape[:2]) < 1 or max(a.shape[:2]) > _UINT32_MAX:
        raise InputError(f"{what}: batch and steps must be in [1, 2**32), got shape {a.shape}")
    if spec.kind == "tokens":
        if a.dtype.kind not in "iu":
            raise InputError(f"{what}: token ids must be an integer array, got dtype {a.dtype}")
        if a.dtype != np.int32 and (a.min() < 0 or a.max() >= spec.width):
            bad = np.argwhere((a < 0) | (a >= spec.width))
            pos = tuple(int(i) for i in bad[0])
            raise InputError(
                f"{what}: token id {a[pos]} at position {pos} is out of range: the vocabulary "
                f"has {spec.width} ids (0 .. {spec.width - 1})"
            )
        return np.ascontiguousarray(a, dtype=np.int32)
    if a.dtype.kind != "f":
        raise InputError(f"{what}: must be a float array, got dtype {a.dtype}")
    if a.shape[-1] != spec.width:
        raise InputError(f"{what}: expected {want}, got shape {a.shape}")
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(a, dtype=np.float32)


def _kernel_choice(kernels) -> tuple:
    """(kernel set name, chosen explicitly) from load()'s argument or $EDGEGRU_KERNELS (unset or
    empty: "auto"). Names are case-insensitive; InputError for anything but a known name."""
    if kernels is None:
        raw, where = os.environ.get(KERNELS_ENV, ""), f" (from ${KERNELS_ENV})"
    elif isinstance(kernels, str):
        raw, where = kernels, ""
    else:
        raise InputError(f"kernels must be a kernel set name (a str), got {kernels!r}")
    name = raw.strip().lower() or "auto"
    if name not in KERNEL_SETS:
        raise InputError(
            f"unknown kernel set {raw!r}{where}; choose one of {', '.join(KERNEL_SETS)}"
        )
    return name, name != "auto"


def _threads_arg(threads) -> int:
    """load()'s threads: an int (not bool) in [1, 64]; InputError otherwise."""
    if isinstance(threads, (bool, np.bool_)) or not isinstance(threads, (int, np.integer)):
        raise InputError(f"threads must be an integer >= 1, got {threads!r}")
    if not 1 <= threads <= MAX_THREADS:
        raise InputError(f"threads must be in [1, {MAX_THREADS}], got {threads}")
    return int(threads)


def _unpickle_model(blob: bytes, path, opts: dict) -> Model:
    """Model.__reduce__'s reconstructor: the same bytes, kernel set and options."""
    if not isinstance(opts, dict) or opts.get("version") != 1:
        raise UnsupportedError(
            "this pickled edgegru model comes from an incompatible edgegru version"
        )
    kernels, pack = opts["kernels"], opts["pack"]
    if kernels not in available_kernels():
        if opts["explicit_kernels"]:
            raise UnsupportedError(
                f"this model was pickled running kernel set {kernels!r}, chosen explicitly, "
                f"which is not available on this CPU/build (available: "
                f"{', '.join(available_kernels())}); load the file here with another kernels="
            )
        # Chosen by "auto" where it was pickled: "auto" again here (results then agree within
        # the kernel bounds of docs/kernels.md, not bit for bit).
        kernels, pack = "auto", opts["pack_arg"]
    model = Model(
        blob,
        path=path,
        kernels=kernels,
        fold_embedding=opts["fold_embedding"],
        pack=pack,
        threads=opts.get("threads", 1),
    )
    model._explicit_kernels = opts["explicit_kernels"]
    model._pack_arg = opts["pack_arg"]
    return model


def _located(model: Model, exc: EdgeGRUError, x: np.ndarray) -> EdgeGRUError:
    """The C runtime checks every input value; when it has found a bad one, say which and where.
    The search runs only then, so a good input pays for no extra pass over it."""
    if exc.code == ERR_TOKEN_RANGE:
        return model._token_range_error(x)
    if exc.code == ERR_NONFINITE:
        return model._nonfinite_error(x)
    if exc.code == ERR_BAD_SHAPE and x.ndim >= 2:
        return model._shape_error(exc, int(x.shape[0]), int(x.shape[1]))
    return exc


def _as_array(x, what: str) -> np.ndarray:
    """np.asarray, with numpy's own complaints (a ragged nested list, a value it cannot
    convert) as an InputError."""
    try:
        return np.asarray(x)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"{what} is not a rectangular numeric array: {exc}") from None


def _count(name: str, value) -> int:
    """A batch size or sequence length argument: an int (not bool) in [1, 2**32)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not 1 <= value <= _UINT32_MAX:
        raise InputError(f"{name} must be >= 1 (and < 2**32), got {value}")
    return int(value)


def _layer_steps(layer: dict, steps: int) -> int:
    """Output steps of one layer (a Runtime.layer record) for `steps` input steps, as the C
    runtime plans them (egru_forward.c), except that a Flatten gives 1 whatever `steps` is (its
    own condition is checked apart); 0 when a Conv1D with padding "valid" gets too few. The
    result never decreases when `steps` grows."""
    op = layer["op"]
    if op in (fmt.OP_GRU, fmt.OP_LSTM, fmt.OP_SIMPLE_RNN):
        return steps if layer["flags"] & fmt.FLAG_RETURN_SEQUENCES else 1
    if op == fmt.OP_CONV1D:
        k, s, d, padding = layer["params"][:4]
        if padding != fmt.PADDINGS["valid"]:
            return -(-steps // s)
        e = d * (k - 1) + 1
        return 0 if steps < e else (steps - e) // s + 1
    if op in (fmt.OP_GLOBAL_POOL, fmt.OP_FLATTEN):
        return 1
    return steps


def _seq_len_limits(model: Model) -> tuple:
    """(shortest, longest or None, why) sequence length the model accepts. A Conv1D with
    padding "valid" needs at least its receptive field; a Flatten needs the steps reaching it
    to be its fixed number. Each such condition holds on an interval of T (the steps reaching a
    layer never decrease as T grows), found by bisection; the model accepts their intersection."""
    records = [model._rt.layer(k) for k in range(model._info["layer_count"])]
    names = [d["name"] for d in model.layers()]
    lo, hi, why_lo, why_hi = 1, None, "", ""

    def steps_before(k: int, t: int) -> int:
        for layer in records[:k]:
            t = _layer_steps(layer, t)
        return t

    def first(k: int, want: int) -> int:
        """The smallest T with steps_before(k, T) >= want (_UINT32_MAX + 1 when none)."""
        a, b = 1, _UINT32_MAX + 1
        while a < b:
            mid = (a + b) // 2
            if steps_before(k, mid) >= want:
                b = mid
            else:
                a = mid + 1
        return a

    strided = False
    for k, layer in enumerate(records):
        if layer["op"] == fmt.OP_CONV1D:
            ksize, stride, dilation, padding = layer["params"][:4]
            strided = strided or stride > 1
            field = dilation * (ksize - 1) + 1
            if padding == fmt.PADDINGS["valid"] and field > 1 and first(k, field) > lo:
                lo = first(k, field)
                why_lo = (
                    f"layer {k} ({names[k]}) is a Conv1D with padding='valid' and a receptive "
                    f"field of {field} steps"
                )
        elif layer["op"] == fmt.OP_FLATTEN:
            fixed = layer["params"][0]
            a, b = first(k, fixed), first(k, fixed + 1) - 1
            after = " after a strided Conv1D" if strided else ""
            why = f"it has a Flatten{after}: layer {k} ({names[k]}) flattens {fixed} steps"
            if a > lo:
                lo, why_lo = a, why
            if hi is None or b < hi:
                hi, why_hi = b, why
    if hi is not None and hi > _UINT32_MAX:
        hi = _UINT32_MAX
    return lo, hi, why_hi or why_lo


#: Why a layer cannot stream, by op name (recurrent layers: by flag).
_NO_STREAM = {
    "Conv1D": "is a Conv1D, which mixes neighbouring steps",
    "GlobalPool": "pools over the whole sequence",
    "Flatten": "flattens the whole sequence",
}
_RECURRENT = ("GRU", "LSTM", "SimpleRNN")
#: The layers an int16x8 stream runs (egru_session_check's allow-list for quant_version 2).
_Q16_STREAM_OPS = (
    "Embedding",
    "Masking",
    "Dense",
    "Activation",
    "Affine",
    "LayerNorm",
    *_RECURRENT,
)
#: An int16x8 state's ranges: h (int16, symmetric) and an LSTM's c (the gate domain G).
_H_MAX, _C_MAX = 32767, 2**30
#: The scale of an int16x8 LSTM's cell state c (the gate domain G, Q15.16).
_C_SCALE = 2.0**-16


def _no_stream_why(layer: dict, int16x8: bool) -> str:
    """Why layer `layer` (a Model.layers() record) cannot stream, as egru_session_check found."""
    op = layer["op"]
    if op in _NO_STREAM:
        return _NO_STREAM[op]
    if op in _RECURRENT:
        if layer["flags"] & fmt.FLAG_BIDIRECTIONAL:
            return "is Bidirectional: its backward half starts at the end of the sequence"
        if layer["flags"] & fmt.FLAG_GO_BACKWARDS or not int16x8:
            return "has go_backwards=True: it starts at the end of the sequence"
        return (
            "follows a recurrent layer with return_sequences=False, so it runs once per "
            "sequence, not once per step"
        )
    return f"is not one of the layers an int16x8 stream runs ({', '.join(_Q16_STREAM_OPS)})"


class Stream:
    """Step-by-step inference with carried state: ``model.stream(batch)``.

    ``step(x_t)`` runs the model on ONE time step of each batch row and returns float32
    (batch, output_dim): the output ``predict`` gives for the whole sequence fed so far, at its
    last step (sequence models: ``predict(x[:, :t+1])[:, -1]``; models whose last recurrent
    layer returns only its last state: ``predict(x[:, :t+1])``, the head run on the current
    state). ``reset()`` goes back to the zero state (Keras' ``reset_state()``); ``state`` gets
    and sets every recurrent layer's state. Not for use by several threads at once (one stream
    per thread; the model itself may be shared). Pickles with its model, state and step count
    and continues exactly after unpickling (docs/streaming.md).
    """

    def __init__(self, model: Model, batch: int = 1):
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)):
            raise InputError(f"batch must be an integer, got {batch!r}")
        if not 1 <= batch <= _UINT32_MAX:
            raise InputError(f"batch must be >= 1 (and < 2**32), got {batch}")
        layers = model.layers()
        blocker = model._rt.stream_blocker()
        if blocker is not None:
            layer = layers[blocker]
            why = _no_stream_why(layer, model.int16x8)
            raise UnsupportedError(
                f"this model cannot stream: layer {blocker} ({layer['name']}, {layer['op']}) "
                f"{why}; streaming needs layers that work one step at a time "
                "(docs/streaming.md)"
            )
        self._model = model
        #: int16x8 models: (input scale, output scale, Masking mask_value or None), else None
        self._q16 = model._q16
        self._session = Session(model._rt, int(batch))
        #: (parts, batch, units) per recurrent layer; parts = 2 (h, c) for LSTM, else 1 (h).
        self._shapes = tuple(
            (2 if layer["op"] == "LSTM" else 1, int(batch), layer["output_dim"])
            for layer in layers
            if layer["op"] in _RECURRENT
        )
        self._names = tuple(layer["name"] for layer in layers if layer["op"] in _RECURRENT)
        #: int16x8: each recurrent layer's state scale (of h: its output scale), float32
        self._h_scales = tuple(
            model._rt.layer_scales(k)[1]
            for k, layer in enumerate(layers)
            if layer["op"] in _RECURRENT and self._q16 is not None
        )

    @property
    def batch(self) -> int:
        return self._session.batch

    @property
    def output_dim(self) -> int:
        return self._session.output_dim

    @property
    def steps(self) -> int:
        """Steps run since the stream was made or last reset."""
        return self._session.steps

    @property
    def state_shapes(self) -> tuple:
        """The shape of each entry of ``state``: (parts, batch, units) per recurrent layer."""
        return self._shapes

    def __repr__(self) -> str:
        return (
            f"<edgegru.Stream batch={self.batch} -> {self.output_dim}, "
            f"{len(self._shapes)} recurrent layers, {self.steps} steps>"
        )

    def step(self, x) -> np.ndarray:
        """Feed one time step. x: token ids of shape (batch,) or (batch, 1) for a token model;
        float frames of shape (batch, input_dim) or (batch, 1, input_dim) for a feature model.
        Returns float32 (batch, output_dim). Raises InputError as ``predict`` does (wrong rank,
        dtype, width or batch, a token id out of range, a NaN/infinity); the state is unchanged
        then.

        int16x8 models: the integer step (``step_int``) dequantized, float32 ``q * output
        scale`` (as ``predict``); int16 features pass through at the input scale."""
        if self._q16 is not None:
            y = self.step_int(x)
            return (y.astype(np.float64) * np.float64(self._q16[1])).astype(np.float32)
        m = self._model
        # Fast path for the common, already well-formed step (the C runtime checks the values).
        try:
            out = self._session.step_exact(x)
            if out is not None:
                return out
        except EdgeGRUError as exc:
            raise _located(m, exc, x) from None
        x = _as_array(x, "input")
        if m.input_kind == "tokens":
            if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[1] != 1):
                raise InputError(
                    f"expected one step of token ids, shape (batch,) or (batch, 1), got an "
                    f"array of shape {x.shape}"
                )
            self._check_batch(x)
            x = x.reshape(-1, 1)
            try:
                return self._session.step_tokens(m._check_tokens(x).reshape(-1))
            except EdgeGRUError as exc:
                raise _located(m, exc, x) from None
        if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[1] != 1):
            raise InputError(
                f"expected one step of features, shape (batch, {m.input_dim}) or "
                f"(batch, 1, {m.input_dim}), got an array of shape {x.shape}"
            )
        self._check_batch(x)
        x = x.reshape(x.shape[0], 1, x.shape[-1])
        try:
            return self._session.step_features(m._check_features(x)[:, 0])
        except EdgeGRUError as exc:
            raise _located(m, exc, x) from None

    def step_int(self, x) -> np.ndarray:
        """int16x8 models: one step in integers, as ``predict_int``: returns int16
        (batch, output_dim) at the output scale, bit for bit ``predict_int`` of the steps fed
        so far at the last one. x: token ids of shape (batch,) or (batch, 1); float features of
        shape (batch, input_dim) or (batch, 1, input_dim), quantized with
        sat16(rint(x / input scale)) (a first Masking layer compares them with mask_value in
        float, as Keras); or int16 features already at the input scale (a first Masking layer
        compares them with the quantized mask value). Errors as ``step``."""
        m = self._model
        if self._q16 is None:
            raise UnsupportedError(
                "step_int is for int16x8 models (quantize='int16x8'); use step for this one"
            )
        x = _as_array(x, "input")
        if m.input_kind == "tokens":
            if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[1] != 1):
                raise InputError(
                    f"expected one step of token ids, shape (batch,) or (batch, 1), got an "
                    f"array of shape {x.shape}"
                )
            self._check_batch(x)
            x = x.reshape(-1, 1)
            try:
                return self._session.step_tokens_s16(m._check_tokens(x).reshape(-1))
            except EdgeGRUError as exc:
                raise _located(m, exc, x) from None
        if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[1] != 1):
            raise InputError(
                f"expected one step of features, shape (batch, {m.input_dim}) or "
                f"(batch, 1, {m.input_dim}), got an array of shape {x.shape}"
            )
        self._check_batch(x)
        x = x.reshape(x.shape[0], 1, x.shape[-1])
        valid = None
        try:
            if x.dtype == np.int16:
                if x.shape[2] != m.input_dim:
                    raise InputError(
                        f"expected {m.input_dim} features per step, got {x.shape[2]} "
                        f"(input shape {x.shape})"
                    )
                q = np.ascontiguousarray(x[:, 0])
            else:
                f = m._check_features(x)[:, 0]
                if not np.isfinite(f).all():
                    raise m._nonfinite_error(x)
                q = np.rint(f.astype(np.float64) / np.float64(self._q16[0]))
                q = np.ascontiguousarray(np.clip(q, -_H_MAX, _H_MAX), dtype=np.int16)
                if self._q16[2] is not None:
                    valid = np.ascontiguousarray(np.any(f != self._q16[2], axis=-1), dtype=np.uint8)
            return self._session.step_features_s16(q, valid)
        except EdgeGRUError as exc:
            raise _located(m, exc, x) from None

    # -- pickling -------------------------------------------------------------------------------
    def __reduce__(self):
        """A stream pickles with its model, batch, state and step count, and continues after
        unpickling exactly as it would have (docs/streaming.md). copy.copy gives such a copy
        that shares the model; copy.deepcopy copies the model too."""
        q16 = self._q16 is not None
        raw = self._session.raw_state_s16() if q16 else self._session.raw_state()
        cells, seen, pos = [], [], 0
        for parts, batch, units in self._shapes:  # per layer: its cells, then its seen flags
            n = parts * batch * units
            cells.append(raw[pos : pos + n].reshape(parts, batch, units))
            seen.append(raw[pos + n : pos + n + batch] != 0)
            pos += n + batch
        state = {"version": 1, "state": tuple(cells), "seen": tuple(seen), "steps": self.steps}
        if q16:  # the integer state, exactly (unpickling sets it with state_int)
            state["dtype"] = "int16x8"
        return (_unpickle_stream, (self._model, self.batch, state))

    def _check_batch(self, x: np.ndarray) -> None:
        if x.shape[0] != self.batch:
            raise InputError(
                f"this stream has batch {self.batch}, got {x.shape[0]} rows (shape {x.shape}); "
                f"make one with model.stream(batch={x.shape[0]})"
            )

    def reset(self) -> None:
        """Back to the zero state: the same as a fresh stream (Keras' ``reset_state()``)."""
        self._session.reset()

    @property
    def state(self) -> tuple:
        """Every recurrent layer's state, in model order: a tuple with one float32 array of shape
        (parts, batch, units) per recurrent layer, parts = [h] or, for LSTM, [h, c]. A copy.

        Set it with the same structure (any float arrays of exactly those shapes, all finite) to
        continue from that state; it acts as Keras' ``initial_state`` (a masked step then gives
        zero from a recurrent layer until the row's next valid step).

        int16x8 models: the integer state (``state_int``) dequantized, in float64 (exact):
        h times the layer's state scale, an LSTM's c times 2**-16. Setting quantizes back,
        h to sat16(rint(h / state scale)) and c to rint(c * 2**16) clamped to +-2**30, so
        ``s.state = s.state`` changes nothing; values beyond those ranges saturate.
        """
        if self._q16 is not None:
            out = []
            for entry, h_scale in zip(self.state_int, self._h_scales, strict=True):
                f = entry.astype(np.float64)
                f[0] *= np.float64(h_scale)
                f[1:] *= _C_SCALE
                out.append(f)
            return tuple(out)
        return self._split(self._session.get_state())

    def _split(self, flat: np.ndarray) -> tuple:
        """A flat state (the C layout) as one (parts, batch, units) array per recurrent layer."""
        out, pos = [], 0
        for shape in self._shapes:
            n = int(np.prod(shape))
            out.append(flat[pos : pos + n].reshape(shape))
            pos += n
        return tuple(out)

    def _entries(self, value, what: str) -> list:
        """The arrays of a state being set, checked for structure, shape and a numeric dtype."""
        if isinstance(value, np.ndarray) or not isinstance(value, (tuple, list)):
            raise InputError(
                f"{what} must be a tuple of {len(self._shapes)} arrays (one per recurrent layer, "
                f"shapes {list(self._shapes)}), got {type(value).__name__}"
            )
        if len(value) != len(self._shapes):
            raise InputError(
                f"{what} must have {len(self._shapes)} entries (one per recurrent layer, shapes "
                f"{list(self._shapes)}), got {len(value)}"
            )
        out = []
        entries = zip(value, self._shapes, self._names, strict=True)
        for k, (entry, shape, name) in enumerate(entries):
            a = _as_array(entry, f"{what}[{k}]")
            if a.shape != shape:
                raise InputError(
                    f"{what}[{k}] (layer {name}) must have shape {shape} (parts, batch, units), "
                    f"got {a.shape}"
                )
            if a.dtype.kind not in "fiu":
                raise InputError(f"{what}[{k}] (layer {name}) must be numeric, got {a.dtype}")
            out.append(a)
        return out

    @property
    def state_int(self) -> tuple:
        """int16x8 models: every recurrent layer's integer state, as ``state`` is shaped: one
        int32 array (parts, batch, units) per recurrent layer, h (int16 values at the layer's
        state scale) then, for LSTM, c (the gate domain, scale 2**-16). A copy; exactly what the
        C session holds (egru_session_get_state_s16).

        Set it with the same structure (integer arrays, h in [-32767, 32767], c in
        [-2**30, 2**30]); like ``state`` it acts as Keras' ``initial_state``."""
        if self._q16 is None:
            raise UnsupportedError("state_int is for int16x8 models; use state for this one")
        return self._split(self._session.get_state_s16())

    @state_int.setter
    def state_int(self, value) -> None:
        if self._q16 is None:
            raise UnsupportedError("state_int is for int16x8 models; use state for this one")
        parts = []
        for k, a in enumerate(self._entries(value, "state_int")):
            name = self._names[k]
            if a.dtype.kind not in "iu":
                raise InputError(
                    f"state_int[{k}] (layer {name}) must be an integer array, got {a.dtype} "
                    "(set float values through state)"
                )
            for p, (part, hi) in enumerate(((a[:1], _H_MAX), (a[1:], _C_MAX))):
                bad = np.argwhere((part < -hi) | (part > hi))
                if len(bad):
                    pos = (p, *(int(i) for i in bad[0][1:]))
                    what = "h" if p == 0 else "c"
                    raise InputError(
                        f"state_int[{k}] (layer {name}) holds {a[pos]} at {pos}: {what} must be "
                        f"in [-{hi}, {hi}]"
                    )
            parts.append(a.astype(np.int32).reshape(-1))
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        self._session.set_state_s16(np.ascontiguousarray(flat))

    @state.setter
    def state(self, value) -> None:
        entries = self._entries(value, "state")
        if self._q16 is not None:
            ints = []
            for k, (a, h_scale) in enumerate(zip(entries, self._h_scales, strict=True)):
                f = a.astype(np.float64)
                if not np.isfinite(f).all():
                    raise InputError(
                        f"state[{k}] (layer {self._names[k]}) contains NaN or infinity"
                    )
                q = np.empty(f.shape, dtype=np.int32)
                q[0] = np.clip(np.rint(f[0] / np.float64(h_scale)), -_H_MAX, _H_MAX)
                q[1:] = np.clip(np.rint(f[1:] / _C_SCALE), -_C_MAX, _C_MAX)
                ints.append(q)
            self.state_int = tuple(ints)
            return
        parts = []
        for k, a in enumerate(entries):
            name = self._names[k]
            with np.errstate(over="ignore"):
                a32 = a.astype(np.float32)
            if not np.isfinite(a32).all():
                raise InputError(
                    f"state[{k}] (layer {name}) contains NaN, infinity or a value beyond float32"
                )
            parts.append(a32.reshape(-1))
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        self._session.set_state(np.ascontiguousarray(flat))


def _unpickle_stream(model: Model, batch: int, saved: dict) -> Stream:
    """Stream.__reduce__'s reconstructor: a new stream over `model`, then the saved state, seen
    flags and step count, checked as the state setter checks a state."""
    if not isinstance(saved, dict) or saved.get("version") != 1:
        raise UnsupportedError(
            "this pickled edgegru stream comes from an incompatible edgegru version"
        )
    stream = Stream(model, batch)
    q16 = saved.get("dtype") == "int16x8"
    if q16 != (stream._q16 is not None):
        raise InputError("a pickled stream's state does not fit its model (int16x8 or not)")
    if q16:
        stream.state_int = saved["state"]  # checks shapes, dtypes and ranges
    else:
        stream.state = saved["state"]  # checks shapes and finiteness
    seen, steps = saved["seen"], saved["steps"]
    if (
        len(seen) != len(stream._shapes)
        or any(np.shape(f) != (batch,) for f in seen)
        or not isinstance(steps, int)
        or not 0 <= steps < 2**64
    ):
        raise InputError("a pickled stream's seen flags or step count do not fit its model")
    parts = []
    dtype = np.int32 if q16 else np.float32
    for cells, flags in zip(stream.state_int if q16 else stream.state, seen, strict=True):
        parts += [cells.reshape(-1), np.asarray(flags, dtype=bool).astype(dtype)]
    raw = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    if q16:
        stream._session.set_raw_state_s16(np.ascontiguousarray(raw, dtype=np.int32), steps)
    else:
        stream._session.set_raw_state(raw, steps)
    return stream


#: The default load folds a model's Embedding into its first recurrent layer (fold_embedding
#: None) when the table of folded projections takes at most FOLD_AUTO_RATIO times the model
#: file's bytes and at most FOLD_AUTO_MAX_BYTES: memory traded for time only where it at most
#: quadruples what the model already takes. A GRU's table is vocab x 3H floats against the
#: Embedding's vocab x E weights, so a float model folds when E >= 3H / 4 and an int8 model when
#: E >= 3H (bidirectional: twice that); the workload of
#: docs/benchmarks.md (Embedding(20000, 128) -> GRU(128), a 10.6 MB file) folds into 29.3 MiB and
#: runs about 1.4x faster per call.
FOLD_AUTO_RATIO = 4
FOLD_AUTO_MAX_BYTES = 256 << 20


def _fold_by_default(rt, blob_bytes: int) -> bool:
    """Whether fold_embedding=None folds: a SIMD kernel set (the reference set runs the plain
    layers, as pack's default does), a float or int8 model that can be folded, and a table
    within the limits above."""
    if rt.kernels == "ref" or rt.quant_version == 2:
        return False
    n = rt.fold_size()
    return 0 < n <= min(FOLD_AUTO_RATIO * blob_bytes, FOLD_AUTO_MAX_BYTES)


def load(
    source,
    kernels: str | None = None,
    fold_embedding: bool | None = None,
    pack: bool | None = None,
    threads: int = 1,
) -> Model:
    """Load an `.egru` model from a path or from bytes. Raises FormatError for an invalid file.

    kernels: the compute kernels to run with: "auto" (the fastest set this CPU has), "ref" (the
        scalar reference kernels), "avx2", "avx512" or "neon"; default: $EDGEGRU_KERNELS, else
        "auto" (unset or empty: "auto"). A set this CPU or build lacks is an UnsupportedError
        naming the sets it has; an unknown name an InputError.
    fold_embedding: for a model starting Embedding -> recurrent layer, precompute that layer's
        input projection of every token id once (vocab x 3H floats for a GRU, per direction), so
        predict and stream look it up instead of multiplying: faster, at that memory cost.
        Default (None): fold when the table is at most FOLD_AUTO_RATIO (4) times the model
        file's size and at most FOLD_AUTO_MAX_BYTES (256 MiB), with any kernel set but "ref";
        `fold_bytes` says what it took. True / False force it.
    pack: copy the recurrent layers' weights transposed for the SIMD kernels (egru_model_pack):
        faster, at the cost of one more copy of those weights. Default: on with any kernel set
        but "ref" (so the reference run checks the plain layout that microcontrollers use).
    threads: threads a call runs on: the model starts threads - 1 worker threads of its own,
        once; at batch 1 (predict on one row, a stream of batch 1) each step of its larger
        recurrent layers (>= 16384 multiply-adds a step: GRU(74), LSTM(64), SimpleRNN(128) and
        up; not a GRU with reset_after=False) is split by units over them, at larger batches
        the steps of GRU and SimpleRNN layers by rows, and a whole sequence's input projection
        by steps. The results are bit-identical to threads=1 (docs/c_api.md, "Threads");
        int16x8 models run on the calling thread. An int in [1, 64];
        default 1; > 1 needs pthreads (not on Windows: UnsupportedError). Pickles with the
        model. Measured gains depend on a free second core (docs/benchmarks.md).

    The model pickles (and copy.deepcopy's) as its bytes and these options, so it can be shipped
    to other processes (multiprocessing, Dask, Spark, Ray): docs/distributed.md.
    """
    opts = dict(kernels=kernels, fold_embedding=fold_embedding, pack=pack, threads=threads)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Model(bytes(source), **opts)
    try:
        path = os.fspath(source)
    except TypeError:
        raise InputError(
            f"load() takes a path or the model's bytes, got {type(source).__name__}"
        ) from None
    with open(path, "rb") as f:
        return Model(f.read(), path=path, **opts)


def _graph_node_names(model: Model) -> list:
    """Each node's name: its first output value's name (the file's value names, metadata
    "graph"), or node_k; cached on the model."""
    names = getattr(model, "_node_names", None)
    if names is None:
        try:
            graph, _ = fmt.read(bytes(model._rt.blob_bytes))
            names = [node.outputs[0] for node in graph.nodes]
        except Exception:  # names are a convenience: the C runtime has the graph
            names = [f"node_{k}" for k in range(model._info["layer_count"])]
        model._node_names = names
    return names


def _graph_no_stream_why(layer: dict) -> str:
    """Why graph node `layer` (a Model.layers() record) cannot stream, as
    egru_graph_session_check found."""
    op = layer["op"]
    if op in _NO_STREAM:
        return _NO_STREAM[op]
    if op == "RepeatVector":
        return "repeats a vector over steps of its own, not the inputs' steps"
    if op == "Concatenate" and layer["params"][0] == 1:
        return "concatenates along time: its steps follow the whole of its first input"
    if op in _RECURRENT:
        if layer["flags"] & fmt.FLAG_BIDIRECTIONAL:
            return "is Bidirectional: its backward half starts at the end of the sequence"
        if layer["flags"] & fmt.FLAG_GO_BACKWARDS:
            return "has go_backwards=True: it starts at the end of the sequence"
        return (
            "takes its initial state from a value that changes with the steps (for instance an "
            "encoder's final state, known only at the end of the encoder's sequence), not from "
            "a vector model input or a value computed from vector inputs alone; stream the parts "
            "as separate models and pass the state with set_state"
        )
    return "mixes sequences and vectors"


class GraphStream:
    """Step-by-step inference over a graph model: ``model.stream(batch)`` for a graph.

    ``step(inputs)`` advances every sequence input (tokens or features) by ONE step, in a list
    in ``model.inputs`` order or a dict keyed by input name: token ids (batch,) or (batch, 1),
    features (batch, width) or (batch, 1, width), vectors (batch, width). It returns the
    outputs' values at this step (a list for several outputs, as ``predict``): a sequence
    output's step, and a vector output (a last state, a final state) as ``predict`` gives it on
    the steps fed so far; equal to ``predict`` bit for bit. Every recurrent node keeps its own
    state; a recurrent node's initial-state inputs (vector model inputs) are read at the first
    step after the stream was made or reset (they may be left out, or None, afterwards; left
    out at the first step: zero). ``state`` gets and sets the states by layer name (LSTM:
    (h, c)); ``reset()`` starts again. Not for use by several threads at once.
    """

    def __init__(self, model: Model, batch: int = 1):
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)):
            raise InputError(f"batch must be an integer, got {batch!r}")
        if not 1 <= batch <= _UINT32_MAX:
            raise InputError(f"batch must be >= 1 (and < 2**32), got {batch}")
        layers = model.layers()
        names = _graph_node_names(model)
        blocker = model._rt.graph_stream_blocker()
        if blocker is not None:
            layer = layers[blocker]
            raise UnsupportedError(
                f"this graph cannot stream: node {blocker} ({names[blocker]}, {layer['op']}) "
                f"{_graph_no_stream_why(layer)}; streaming needs nodes that work one step at "
                'a time (docs/streaming.md, "Graphs")'
            )
        self._model = model
        self._batch = int(batch)
        self._session = GraphSession(model._rt, self._batch)
        #: state name (the node's first output value: the layer's name, name@i for the i-th
        #: application of a shared layer) -> (node index, parts, units)
        self._nodes = {
            names[k]: (k, 2 if layer["op"] == "LSTM" else 1, layer["output_dim"])
            for k, layer in enumerate(layers)
            if layer["op"] in _RECURRENT
        }

    @property
    def model(self) -> Model:
        return self._model

    @property
    def batch(self) -> int:
        return self._batch

    def __reduce__(self):
        """A graph stream pickles with its model, batch, every recurrent node's state, its rows'
        "valid step seen" flags, whether the node still reads its initial-state inputs at the
        next step, and the step count (egru_graph_session_save), and continues after unpickling
        exactly as it would have (docs/streaming.md). copy.copy gives such a copy that shares
        the model; copy.deepcopy copies the model too."""
        raw = self._session.raw_state()
        state, seen, fresh, pos = {}, {}, {}, 0
        for key, (_, parts, units) in self._nodes.items():  # node order, as the snapshot
            n = parts * self._batch * units
            cells = raw[pos : pos + n].reshape(parts, self._batch, units)
            state[key] = (cells[0].copy(), cells[1].copy()) if parts == 2 else cells[0].copy()
            seen[key] = raw[pos + n : pos + n + self._batch] != 0
            fresh[key] = bool(raw[pos + n + self._batch] != 0)
            pos += n + self._batch + 1
        saved = {"version": 1, "state": state, "seen": seen, "fresh": fresh, "steps": self.steps}
        return (_unpickle_graph_stream, (self._model, self._batch, saved))

    @property
    def steps(self) -> int:
        """Steps run since the stream was made or reset."""
        return self._session.steps

    @property
    def inputs(self) -> list:
        return self._model.inputs

    @property
    def outputs(self) -> list:
        return self._model.outputs

    @property
    def memory_bytes(self) -> int:
        """Bytes of C session memory (egru_graph_session_size): independent of the steps."""
        return self._session.memory_bytes

    @property
    def state_names(self) -> list:
        """The recurrent nodes' names, in node order: each node's first output value, which is
        the layer's name (a shared layer applied several times: ``name@0``, ``name@1``, ...;
        inside a nested model ``model/name``)."""
        return list(self._nodes)

    def _ordered(self, x) -> list:
        specs = self._model.inputs
        names = [spec.name for spec in specs]
        if isinstance(x, dict):
            unknown = [k for k in x if k not in names]
            missing = [s.name for s in specs if s.name not in x and s.kind != "vector"]
            if unknown or missing:
                raise InputError(
                    f"the inputs are {names}; "
                    + (f"unknown: {unknown}" if unknown else "")
                    + ("; " if unknown and missing else "")
                    + (f"missing: {missing}" if missing else "")
                )
            return [x.get(n) for n in names]
        if isinstance(x, (list, tuple)) and (len(names) > 1 or len(x) == 1):
            if len(x) != len(names):
                raise InputError(f"this model takes {len(names)} inputs {names}, got {len(x)}")
            return list(x)
        if len(names) > 1:
            raise InputError(
                f"this model takes {len(names)} inputs {names}: pass a list in that order or a "
                "dict keyed by input name"
            )
        return [x]

    def step(self, inputs):
        """Feed one step (see the class). Raises InputError naming the input for a wrong rank,
        dtype, width or batch, a token id out of range or a NaN/infinity; nothing changes
        then."""
        specs = self._model.inputs
        arrays, full = [], []  # as the C step takes them; as predict's checks see them
        for spec, a in zip(specs, self._ordered(inputs), strict=True):
            if a is None:
                if spec.kind != "vector":
                    raise InputError(f"input {spec.name!r} is a sequence: it is needed every step")
                arrays.append(None)
                full.append(None)
                continue
            a = _as_array(a, f"input {spec.name!r}")
            if spec.kind == "tokens":
                if a.ndim not in (1, 2) or (a.ndim == 2 and a.shape[1] != 1):
                    raise InputError(
                        f"input {spec.name!r}: expected one step of token ids, shape (batch,) or "
                        f"(batch, 1), got an array of shape {a.shape}"
                    )
                a = a.reshape(-1, 1) if a.ndim == 1 else a
            elif spec.kind == "features":
                if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[1] != 1):
                    raise InputError(
                        f"input {spec.name!r}: expected one step of features, shape (batch, "
                        f"{spec.width}) or (batch, 1, {spec.width}), got an array of shape "
                        f"{a.shape}"
                    )
                a = a.reshape(a.shape[0], 1, a.shape[-1]) if a.ndim == 2 else a
            a = _check_graph_input(spec, a)
            if a.shape[0] != self._batch:
                raise InputError(
                    f"input {spec.name!r} has batch {a.shape[0]}, this stream has {self._batch}"
                )
            full.append(a)
            arrays.append(
                a.reshape(self._batch)
                if spec.kind == "tokens"
                else a.reshape(self._batch, spec.width)
            )
        try:
            outs = self._session.step(arrays)
        except EdgeGRUError as exc:
            if exc.code == ERR_NULL_ARG:
                gone = [s.name for s, a in zip(specs, arrays, strict=True) if a is None]
                raise InputError(
                    f"input(s) {gone} left out, but a node reads them at every step (not only as "
                    "an initial state)"
                ) from None
            given = [(s, a) for s, a in zip(specs, full, strict=True) if a is not None]
            raise _graph_step_error(exc, given) from None
        return outs if len(outs) > 1 else outs[0]

    def reset(self) -> None:
        """Back to the zero states; initial-state inputs are read again at the next step."""
        self._session.reset()

    def _node(self, name):
        if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
            for key, (k, parts, units) in self._nodes.items():
                if k == name:
                    return key, k, parts, units
            raise InputError(
                f"node {name} is not a recurrent node; they are "
                f"{[v[0] for v in self._nodes.values()]}"
            )
        if name not in self._nodes:
            raise InputError(f"no recurrent layer {name!r}; the states are {self.state_names}")
        return (name, *self._nodes[name])

    def get_state(self, name):
        """The state of recurrent layer `name` (or node index): float32 (batch, units) h, or for
        an LSTM the tuple (h, c)."""
        _, k, parts, units = self._node(name)
        flat = self._session.get_state(k).reshape(parts, self._batch, units)
        return (flat[0].copy(), flat[1].copy()) if parts == 2 else flat[0].copy()

    def set_state(self, name, value) -> None:
        """Sets recurrent layer `name`'s state (h, or (h, c) for an LSTM; (batch, units) each,
        finite): it acts as that node's initial state (its initial-state inputs are then not
        read at the next step), so a decoder stream set from an encoder's final state continues
        as the whole encoder-decoder model would."""
        key, k, parts, units = self._node(name)
        parts_given = list(value) if parts == 2 and isinstance(value, (tuple, list)) else [value]
        if len(parts_given) != parts:
            raise InputError(f"state {key!r} is an LSTM's (h, c): give both")
        arrs = []
        for a in parts_given:
            a = _as_array(a, f"state {key!r}")
            if a.dtype.kind not in "fiu" or a.shape != (self._batch, units):
                raise InputError(
                    f"state {key!r}: expected a numeric array of shape ({self._batch}, {units}), "
                    f"got {a.dtype} {a.shape}"
                )
            with np.errstate(over="ignore"):
                a = a.astype(np.float32)
            if not np.isfinite(a).all():
                raise InputError(f"state {key!r} contains NaN or infinity")
            arrs.append(a)
        self._session.set_state(k, np.ascontiguousarray(np.concatenate(arrs, axis=0).ravel()))

    @property
    def state(self) -> dict:
        """Every recurrent node's state, a dict by name (``state_names``): h, or (h, c)."""
        return {key: self.get_state(key) for key in self._nodes}

    @state.setter
    def state(self, value: dict) -> None:
        if not isinstance(value, dict):
            raise InputError("a graph stream's state is a dict by layer name")
        for key in value:
            self._node(key)
        for key, v in value.items():
            self.set_state(key, v)


def _unpickle_graph_stream(model: Model, batch: int, saved: dict) -> GraphStream:
    """GraphStream.__reduce__'s reconstructor: a new stream over `model`, then the saved states
    (checked as the state setter checks them), seen and fresh flags and step count, restored
    together (egru_graph_session_restore)."""
    if not isinstance(saved, dict) or saved.get("version") != 1:
        raise UnsupportedError(
            "this pickled edgegru graph stream comes from an incompatible edgegru version"
        )
    stream = GraphStream(model, batch)
    state, seen, fresh = saved.get("state"), saved.get("seen"), saved.get("fresh")
    steps = saved.get("steps")
    names = stream.state_names
    if (
        not all(isinstance(d, dict) for d in (state, seen, fresh))
        or any(sorted(d) != sorted(names) for d in (state, seen, fresh))
        or isinstance(steps, bool)
        or not isinstance(steps, int)
        or not 0 <= steps < 2**64
    ):
        raise InputError(
            f"a pickled graph stream's states, flags or step count do not fit its model (the "
            f"states are {names})"
        )
    stream.state = state  # checks shapes and finiteness
    parts = []
    for key in names:
        flags = np.asarray(seen[key])
        if flags.shape != (batch,) or flags.dtype != bool or not isinstance(fresh[key], bool):
            raise InputError(f"a pickled graph stream's flags of {key!r} do not fit its model")
        cells = stream.get_state(key)
        cells = np.stack(cells) if isinstance(cells, tuple) else cells[None]
        parts += [cells.reshape(-1), flags.astype(np.float32), np.float32([fresh[key]])]
    raw = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    stream._session.set_raw_state(np.ascontiguousarray(raw, dtype=np.float32), steps)
    return stream


def _graph_step_error(exc: EdgeGRUError, given: list) -> EdgeGRUError:
    """Name the input behind a status of egru_graph_session_step; given: (spec, array) pairs."""
    for spec, a in given:
        if exc.code == ERR_TOKEN_RANGE and spec.kind == "tokens":
            bad = np.argwhere((a < 0) | (a >= spec.width))
            if len(bad):
                return InputError(
                    f"input {spec.name!r}: token id {a[tuple(bad[0])]} at row {int(bad[0][0])} "
                    f"is out of range: the vocabulary has {spec.width} ids (0 .. "
                    f"{spec.width - 1})"
                )
        if exc.code == ERR_NONFINITE and spec.kind != "tokens" and not np.isfinite(a).all():
            row = int(np.argwhere(~np.isfinite(a))[0][0])
            return InputError(
                f"input {spec.name!r} contains NaN or infinity (row {row}); they are not valid "
                "inputs"
            )
    return exc
