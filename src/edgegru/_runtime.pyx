# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin Cython layer over the C runtime: owns the aligned model bytes, allocates the arena and the
output for each call, and releases the GIL around the C forward pass. Input checking with
user-facing messages lives in runtime.py; the C runtime checks everything again."""

import numpy as np

cimport cython
cimport numpy as cnp
from libc.stdint cimport int16_t, int32_t, uint8_t, uint32_t, uint64_t, uintptr_t

from ._cegru cimport *

from .errors import EdgeGRUError, FormatError, InputError, UnsupportedError

cnp.import_array()

STATUS_COUNT = EGRU_STATUS_COUNT
ERR_TOKEN_RANGE = EGRU_ERR_TOKEN_RANGE
ERR_NULL_ARG = EGRU_ERR_NULL_ARG
ERR_NONFINITE = EGRU_ERR_NONFINITE
ERR_BAD_SHAPE = EGRU_ERR_BAD_SHAPE
ERR_WRONG_DTYPE = EGRU_ERR_WRONG_DTYPE
#: Model.arena_limit's default: the most scratch memory one predict call takes for the fast
#: plan (256 MiB); larger shapes run the C runtime's chunked plans in this much (docs/c_api.md).
DEFAULT_ARENA_LIMIT = 256 * 1024 * 1024
VERSION = EGRU_VERSION_STRING.decode()


def status_message(int code):
    """The C runtime's message for a status code."""
    return egru_status_str(code).decode()


def crc32(const uint8_t[::1] data, uint32_t crc=0):
    """The C runtime's CRC-32 (must equal zlib.crc32)."""
    return egru_crc32(crc, &data[0] if data.shape[0] else NULL, data.shape[0])


# "cortex_m" (portable C on a host) comes before the SIMD sets: available_kernels() lists them in
# this order, the last being the one AUTO picks on a host.
KERNEL_SETS = {"auto": EGRU_KERNELS_AUTO, "ref": EGRU_KERNELS_REF,
               "cortex_m": EGRU_KERNELS_CORTEX_M, "avx2": EGRU_KERNELS_AVX2,
               "neon": EGRU_KERNELS_NEON, "avx512": EGRU_KERNELS_AVX512}


def available_kernels():
    """Names of the kernel sets this build and this CPU can run ("ref" always)."""
    return [name for name, code in KERNEL_SETS.items()
            if name != "auto" and egru_kernels_available(code)]


cdef _raise(int status, str what):
    raise EdgeGRUError(f"{what}: {egru_status_str(status).decode()} (status {status})", status)


# no_gc_clear: when a Runtime is collected as part of a reference cycle, the GC must not clear
# its attributes before __dealloc__ runs. self.model points into them (the blob's bytes, the
# decoded-layer cache array), and a cleared attribute frees that memory while the C struct still
# refers to it.
@cython.no_gc_clear
cdef class Runtime:
    """An immutable, validated model. Safe to share between threads: each call gets its own arena.

    blob: the .egru bytes. They are copied once into a buffer aligned to 64 bytes that this object
    owns and never changes (the C model points into it).
    """

    cdef egru_model_t model
    cdef object _buffer  # numpy uint8 array holding the aligned copy; read-only
    cdef object _fold    # numpy float32 array of folded projections (fold_embedding), or None
    cdef object _pack    # numpy uint8 array of packed weights (pack), or None
    cdef object _layer_cache  # numpy uint8 array of decoded layers (egru_model_cache_layers)
    # The last call's shape and sizes (planning is not free for tiny models), and an arena kept
    # for reuse: a call takes it when no other thread holds it (checked and set under the GIL),
    # else allocates its own.
    cdef uint32_t _last_batch, _last_len
    cdef size_t _last_count, _last_arena
    cdef object _arena
    cdef bint _arena_busy
    cdef size_t _last_limit
    # Bytes of arena above which a call runs a chunked plan instead of the fast one
    # (Model.arena_limit; DEFAULT_ARENA_LIMIT).
    cdef public size_t arena_limit
    # use_threads: the pthread workers (src/edgegru/_egru_tpool.c) the C model runs batch-1
    # recurrent steps on, or NULL for one thread; created once, reused by every call.
    cdef egru_tpool_t *_pool
    cdef uint32_t _threads

    def __cinit__(self, blob):
        self.arena_limit = DEFAULT_ARENA_LIMIT
        self._pool = NULL
        self._threads = 1
        cdef const uint8_t[::1] src = memoryview(blob).cast("B")
        cdef Py_ssize_t n = src.shape[0]
        raw = np.zeros(n + 64, dtype=np.uint8)
        cdef uintptr_t addr = <uintptr_t>cnp.PyArray_DATA(raw)
        cdef Py_ssize_t shift = (64 - addr % 64) % 64
        buf = raw[shift:shift + n]
        if n:
            buf[:] = np.frombuffer(memoryview(blob).cast("B"), dtype=np.uint8)
        buf.flags.writeable = False
        self._buffer = buf
        cdef const uint8_t[::1] view = buf
        cdef int status = egru_model_init(&self.model, &view[0] if n else NULL, n)
        if n == 0:
            status = EGRU_ERR_TRUNCATED
        if status != EGRU_OK:
            raise FormatError(
                f"invalid .egru model: {egru_status_str(status).decode()} (status {status})",
                status)
        # Every layer decoded once (egru_model_cache_layers): a forward pass then copies the
        # descriptions instead of decoding each layer several times (half the fixed cost of a
        # small model's call); use_kernels, fold and pack refresh it.
        cdef size_t cache_bytes = 0
        if egru_model_cache_layers_size(&self.model, &cache_bytes) == EGRU_OK:
            cache = np.empty(cache_bytes, dtype=np.uint8)
            if egru_model_cache_layers(&self.model, cnp.PyArray_DATA(cache),
                                       cache_bytes) == EGRU_OK:
                self._layer_cache = cache

    def __dealloc__(self):
        # Sessions keep their Runtime alive, so no call can be using the workers here. The model
        # is not touched: egru_model_use_workers would re-decode every layer into the layer
        # cache (writing into an array this object is about to release), for a model that
        # nothing uses after this. Only the worker threads need stopping.
        egru_tpool_destroy(self._pool)
        self._pool = NULL

    def use_threads(self, uint32_t threads):
        """Run batch-1 recurrent steps on `threads` threads (egru_model_use_workers): 1 = this
        thread only; more starts threads - 1 worker threads that live as long as this object.
        Once, before any call (raises EdgeGRUError when threads were set already)."""
        if self._pool != NULL:
            raise EdgeGRUError("use_threads: the threads were set already")
        if threads < 1 or threads > EGRU_TPOOL_MAX_THREADS:
            raise InputError(f"threads must be in [1, {EGRU_TPOOL_MAX_THREADS}], got {threads}")
        if threads == 1:
            return
        cdef egru_tpool_t *pool = egru_tpool_create(threads)
        if pool == NULL:
            raise UnsupportedError(f"could not start {threads - 1} worker threads")
        cdef int status = egru_model_use_workers(&self.model, egru_tpool_workers(pool))
        if status != EGRU_OK:
            egru_tpool_destroy(pool)
            _raise(status, "use_threads")
        self._pool = pool
        self._threads = threads

    @property
    def threads(self):
        """Threads a batch-1 call runs on (use_threads)."""
        return self._threads

    def use_kernels(self, str name):
        """Run with kernel set `name`: "auto" (fastest this CPU has), "ref" (the scalar
        reference), "avx2", "avx512" or "neon". Raises UnsupportedError when this build or CPU
        lacks it (the model keeps its set then), InputError for an unknown name."""
        if name not in KERNEL_SETS:
            raise InputError(
                f"unknown kernel set {name!r}; choose one of {', '.join(KERNEL_SETS)}")
        cdef int status = egru_model_use_kernels(&self.model, KERNEL_SETS[name])
        if status != EGRU_OK:
            raise UnsupportedError(
                f"kernel set {name!r} is not available on this CPU/build; available: "
                f"{', '.join(available_kernels())}", status)

    def fold_size(self):
        """Bytes egru_model_fold would take for this model, or 0 when it cannot be folded (it
        does not start Embedding -> recurrent layer, is int16x8, or is folded already)."""
        cdef size_t n = 0
        if egru_model_fold_size(&self.model, &n) != EGRU_OK:
            return 0
        return n

    def fold_embedding(self):
        """Precompute the first recurrent layer's input projection for every token id
        (egru_model_fold) into a buffer this object owns. Raises EdgeGRUError when the model
        does not start with Embedding -> recurrent layer."""
        cdef size_t n = 0
        cdef int status = egru_model_fold_size(&self.model, &n)
        if status != EGRU_OK:
            _raise(status, "fold_embedding needs a model that starts with Embedding -> GRU, "
                   "LSTM or SimpleRNN")
        # Rows are gathered from it every step: start it on a cache line, as the pack is.
        raw = np.empty((n + 3) // 4 + 16, dtype=np.float32)
        cdef Py_ssize_t shift = ((64 - <uintptr_t>cnp.PyArray_DATA(raw) % 64) % 64) // 4
        lut = raw[shift:shift + (n + 3) // 4]
        cdef float[::1] view = lut
        with nogil:
            status = egru_model_fold(&self.model, &view[0], n)
        if status != EGRU_OK:
            _raise(status, "fold_embedding")
        self._fold = lut
        self._last_batch = 0  # the layer widths changed: plan the next call afresh
        return n

    def pack(self):
        """Copy the recurrent weights transposed for the matvec_t / matmul_t kernels
        (egru_model_pack) into a buffer this object owns; returns its size in bytes."""
        cdef size_t n = 0
        cdef int status = egru_model_pack_size(&self.model, &n)
        if status != EGRU_OK:
            _raise(status, "pack")
        mem = np.empty(n, dtype=np.uint8)
        cdef uint8_t[::1] view = mem
        with nogil:
            status = egru_model_pack(&self.model, &view[0], n)
        if status != EGRU_OK:
            _raise(status, "pack")
        self._pack = mem
        self._last_batch = 0  # plan the next call afresh
        return n

    @property
    def kernels(self):
        """Name of the kernel set in use."""
        return egru_model_kernels_name(&self.model).decode()

    def describe(self):
        """The model's summary as the C parser computed it (a dict)."""
        m = &self.model
        return dict(
            input_kind="tokens" if m.input_kind == EGRU_INPUT_TOKENS else
                       "features" if m.input_kind == EGRU_INPUT_FEATURES else "graph",
            input_dim=m.input_dim, output_dim=m.output_dim,
            output_is_sequence=bool(m.output_is_sequence), param_count=m.param_count,
            file_size=m.file_size, layer_count=m.layer_count, max_width=m.max_width,
            max_units=m.max_units)

    @property
    def blob_bytes(self):
        """A copy of the model bytes this object was made from (what Runtime(blob) took)."""
        return self._buffer.tobytes()

    @property
    def metadata_bytes(self):
        if self.model.meta == NULL:
            return b""
        return bytes(<const char[:self.model.meta_size]><const char *>self.model.meta)

    def layer(self, uint32_t index):
        """Decoded layer record: dict of op, flags, input_dim, output_dim, activation codes,
        params (the op's parameters, egru_format.h), param_count, macs_per_step."""
        cdef egru_layer_t layer
        cdef int status = egru_model_layer(&self.model, index, &layer)
        if status != EGRU_OK:
            _raise(status, f"layer {index}")
        return dict(op=layer.op, flags=layer.flags, input_dim=layer.input_dim,
                    output_dim=layer.output_dim, activation=layer.activation,
                    recurrent_activation=layer.recurrent_activation,
                    params=tuple(layer.params[k] for k in range(10)),
                    param_count=layer.param_count, macs_per_step=layer.macs_per_step)

    def arena_size(self, uint32_t batch, uint32_t seq_len, bint minimal=False):
        """Bytes of arena of the fast plan for this shape, or with minimal=True of the
        low-memory plan (the smallest arena a forward pass runs in)."""
        cdef size_t n = 0
        cdef int status
        if minimal:
            status = egru_arena_size_min(&self.model, batch, seq_len, &n)
        else:
            status = egru_arena_size(&self.model, batch, seq_len, &n)
        if status != EGRU_OK:
            _raise(status, "arena size")
        return n

    def output_count(self, uint32_t batch, uint32_t seq_len):
        """Floats the output of a (batch, seq_len) forward pass holds."""
        cdef size_t n = 0
        cdef int status = egru_output_count(&self.model, batch, seq_len, &n)
        if status != EGRU_OK:
            _raise(status, "output size")
        return n

    cdef _run(self, const void *data, bint tokens, uint32_t batch, uint32_t seq_len):
        """Allocate the output (and, unless the kept one is free and large enough, the arena) for
        this call, run the C forward pass without the GIL, return the output. `data` must hold
        the whole (batch, T[, dim]) input."""
        cdef size_t count = 0, arena_bytes = 0
        cdef int status = EGRU_OK
        cdef size_t low = 0
        if batch == self._last_batch and seq_len == self._last_len and \
                self._last_limit == self.arena_limit:
            count, arena_bytes = self._last_count, self._last_arena
        else:
            # The fast plan's arena unless it is larger than arena_limit: then an arena of
            # arena_limit bytes (the C runtime runs the longest chunks of steps that fit), or the
            # low-memory plan's when even that is larger.
            status = egru_arena_size(&self.model, batch, seq_len, &arena_bytes)
            if status == EGRU_OK or status == EGRU_ERR_BAD_SHAPE:
                if status != EGRU_OK or arena_bytes > self.arena_limit:
                    status = egru_arena_size_min(&self.model, batch, seq_len, &low)
                    arena_bytes = low if low > self.arena_limit else self.arena_limit
            if status == EGRU_OK:
                status = egru_output_count(&self.model, batch, seq_len, &count)
            if status != EGRU_OK:
                _raise(status, "predict")
            self._last_limit = self.arena_limit
            self._last_batch, self._last_len = batch, seq_len
            self._last_count, self._last_arena = count, arena_bytes
        # The output through the C API: no shape tuple, no argument parsing (this is the whole
        # Python-side cost of a call for a small model).
        cdef cnp.npy_intp dims[3]
        dims[0] = batch
        if self.model.output_is_sequence:  # Conv1D may change the number of steps
            dims[1] = count // (<size_t>batch * self.model.output_dim)
            dims[2] = self.model.output_dim
            out = cnp.PyArray_EMPTY(3, dims, cnp.NPY_FLOAT32, 0)
        else:
            dims[1] = self.model.output_dim
            out = cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT32, 0)
        cdef bint own = False
        if not self._arena_busy and self._arena is not None and \
                <size_t>cnp.PyArray_SIZE(self._arena) >= arena_bytes:
            arena = self._arena
            self._arena_busy = own = True
        else:
            arena = np.empty(arena_bytes, dtype=np.uint8)
            if not self._arena_busy:
                self._arena = arena
                self._arena_busy = own = True
        # Fresh or kept C-contiguous numpy arrays: their data pointers are all the C call needs.
        cdef float *out_ptr = <float *>cnp.PyArray_DATA(out)
        cdef void *arena_ptr = cnp.PyArray_DATA(arena)
        try:
            with nogil:
                if self._pool != NULL:
                    egru_tpool_wake(self._pool)  # sleeping workers start while we plan
                if tokens:
                    status = egru_forward_tokens(&self.model, <const int32_t *>data, batch,
                                                 seq_len, out_ptr, count, arena_ptr, arena_bytes)
                else:
                    status = egru_forward_features(&self.model, <const float *>data, batch,
                                                   seq_len, out_ptr, count, arena_ptr,
                                                   arena_bytes)
        finally:
            if own:
                self._arena_busy = False
        if status != EGRU_OK:
            _raise(status, "predict")
        return out

    def forward_exact(self, x):
        """The forward pass for an input already in its final form: a C-contiguous ndarray,
        int32 (batch, T) for a token model or float32 (batch, T, input_dim) for a features
        model, batch and T in [1, 2**32). Returns None for anything else, which the caller
        then checks and converts with messages that name the problem (runtime.Model)."""
        if not cnp.PyArray_Check(x):
            return None
        cdef cnp.ndarray a = <cnp.ndarray>x
        if not cnp.PyArray_IS_C_CONTIGUOUS(a):
            return None
        cdef int nd = cnp.PyArray_NDIM(a)
        cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(a)
        cdef bint tokens = self.model.input_kind == EGRU_INPUT_TOKENS
        if tokens:
            if nd != 2 or cnp.PyArray_TYPE(a) != cnp.NPY_INT32:
                return None
        elif nd != 3 or cnp.PyArray_TYPE(a) != cnp.NPY_FLOAT32 or \
                dims[2] != <cnp.npy_intp>self.model.input_dim:
            return None
        if dims[0] < 1 or dims[1] < 1 or dims[0] > 0xFFFFFFFF or dims[1] > 0xFFFFFFFF:
            return None
        return self._run(cnp.PyArray_DATA(a), tokens, <uint32_t>dims[0], <uint32_t>dims[1])

    @property
    def quant_version(self):
        """The header's quant_version: 0 float32, 1 int8, 2 int16x8 (integer-only)."""
        return self.model.quant_version

    def scales(self):
        """int16x8 models: (input scale, output scale) as float32 (egru_model_scales)."""
        cdef uint32_t bits[2]
        cdef int status = egru_model_scales(&self.model, &bits[0], &bits[1])
        if status != EGRU_OK:
            _raise(status, "scales")
        s = np.array([bits[0], bits[1]], dtype=np.uint32).view(np.float32)
        return s[0], s[1]

    def forward_s16(self, x, valid=None):
        """int16x8 models: x int32 (batch, T) token ids, or int16 (batch, T, input_dim) features
        at the input scale, C-contiguous; valid: None or uint8 (batch, T) (a first Masking
        layer's step validity). Returns int16 (batch, [T,] output_dim) at the output scale."""
        cdef bint tokens = self.model.input_kind == EGRU_INPUT_TOKENS
        want = np.int32 if tokens else np.int16
        if not isinstance(x, np.ndarray) or x.dtype != want or not x.flags.c_contiguous or \
                x.ndim != (2 if tokens else 3) or x.shape[0] < 1 or x.shape[1] < 1 or \
                x.shape[0] > 0xFFFFFFFF or x.shape[1] > 0xFFFFFFFF or \
                (not tokens and x.shape[2] != self.model.input_dim):
            raise EdgeGRUError(f"forward_s16 takes a C-contiguous {np.dtype(want)} array of shape "
                               f"(batch, T{'' if tokens else ', input_dim'})")
        if valid is not None and (not isinstance(valid, np.ndarray) or valid.dtype != np.uint8
                                  or not valid.flags.c_contiguous
                                  or valid.shape != x.shape[:2]):
            raise EdgeGRUError("valid must be a C-contiguous uint8 array of shape (batch, T)")
        cdef cnp.ndarray a = <cnp.ndarray>x
        cdef uint32_t batch = <uint32_t>a.shape[0], seq_len = <uint32_t>a.shape[1]
        cdef size_t count = 0, arena_bytes = 0
        cdef int status = egru_arena_size(&self.model, batch, seq_len, &arena_bytes)
        if status == EGRU_OK:
            status = egru_output_count(&self.model, batch, seq_len, &count)
        if status != EGRU_OK:
            _raise(status, "predict")
        if self.model.output_is_sequence:  # a Conv1D may change the number of steps
            out = np.empty((batch, count // (batch * self.model.output_dim),
                            self.model.output_dim), dtype=np.int16)
        else:
            out = np.empty((batch, self.model.output_dim), dtype=np.int16)
        arena = np.empty(arena_bytes, dtype=np.uint8)
        cdef int16_t *out_ptr = <int16_t *>cnp.PyArray_DATA(out)
        cdef void *arena_ptr = cnp.PyArray_DATA(arena)
        cdef const void *data = cnp.PyArray_DATA(a)
        cdef const uint8_t *valid_ptr = NULL
        if valid is not None:
            valid_ptr = <const uint8_t *>cnp.PyArray_DATA(<cnp.ndarray>valid)
        with nogil:
            if tokens:
                status = egru_forward_tokens_s16(&self.model, <const int32_t *>data, batch,
                                                 seq_len, out_ptr, count, arena_ptr, arena_bytes)
            else:
                status = egru_forward_features_s16(&self.model, <const int16_t *>data,
                                                   valid_ptr, batch, seq_len, out_ptr, count,
                                                   arena_ptr, arena_bytes)
        if status != EGRU_OK:
            _raise(status, "predict")
        return out

    def io(self):
        """([(kind, width) per model input], [(kind, width) per output]); kind "tokens",
        "sequence" or "vector" (egru_model_io, egru_model_input / _output)."""
        cdef uint32_t n_in = 0, n_out = 0, k
        cdef egru_io_info_t info
        cdef int status = egru_model_io(&self.model, &n_in, &n_out)
        if status != EGRU_OK:
            _raise(status, "model inputs")
        names = {EGRU_VALUE_TOKENS: "tokens", EGRU_VALUE_SEQUENCE: "sequence",
                 EGRU_VALUE_VECTOR: "vector"}
        ins, outs = [], []
        for k in range(n_in):
            status = egru_model_input(&self.model, k, &info)
            if status != EGRU_OK:
                _raise(status, f"input {k}")
            ins.append((names.get(info.kind, str(info.kind)), info.width))
        for k in range(n_out):
            status = egru_model_output(&self.model, k, &info)
            if status != EGRU_OK:
                _raise(status, f"output {k}")
            outs.append((names.get(info.kind, str(info.kind)), info.width))
        return ins, outs

    def run_arena_size(self, uint32_t batch, steps, bint minimal=False):
        """Bytes of arena egru_run needs: the fast plan's, or the low-memory plan's."""
        cdef uint32_t[::1] st = np.ascontiguousarray(steps, dtype=np.uint32)
        cdef size_t n = 0
        cdef int status = egru_run_arena_size(&self.model, batch, &st[0] if st.shape[0] else NULL,
                                              minimal, &n)
        if status != EGRU_OK:
            _raise(status, "arena size")
        return n

    def run_output_steps(self, steps):
        """Steps of each output (1 for a vector) for inputs of `steps` steps."""
        cdef uint32_t[::1] st = np.ascontiguousarray(steps, dtype=np.uint32)
        cdef uint32_t n_in = 0, n_out = 0, k, out_steps = 0
        cdef int status = egru_model_io(&self.model, &n_in, &n_out)
        if status == EGRU_OK and <uint32_t>st.shape[0] != n_in:
            raise EdgeGRUError(f"run_output_steps takes {n_in} step counts")
        res = []
        for k in range(n_out):
            if status == EGRU_OK:
                status = egru_run_output_steps(&self.model, &st[0], k, &out_steps)
            if status != EGRU_OK:
                _raise(status, "output shape")
            res.append(out_steps)
        return res

    def run(self, list arrays, uint32_t batch):
        """egru_run: `arrays` are the model inputs in order, each C-contiguous: int32 (batch, T)
        ids, float32 (batch, T, width) sequences, float32 (batch, width) vectors (checked by the
        caller, runtime.Model; the C runtime checks everything again). Returns the outputs, a
        list of float32 arrays (batch, [steps,] width). The arena is the fast plan's unless that
        is larger than arena_limit: then the low-memory plan's."""
        ins, outs = self.io()
        if len(arrays) != len(ins):
            raise EdgeGRUError(f"run takes {len(ins)} inputs, got {len(arrays)}")
        steps = np.ones(len(ins), dtype=np.uint32)
        for k, (a, (kind, width)) in enumerate(zip(arrays, ins)):
            if kind != "vector":
                steps[k] = (<cnp.ndarray>a).shape[1]
        out_steps = self.run_output_steps(steps)
        cdef size_t arena_bytes = 0
        cdef int status
        cdef uint32_t[::1] st = steps
        status = egru_run_arena_size(&self.model, batch, &st[0], 0, &arena_bytes)
        if status == EGRU_OK or status == EGRU_ERR_BAD_SHAPE:
            if status != EGRU_OK or arena_bytes > self.arena_limit:
                status = egru_run_arena_size(&self.model, batch, &st[0], 1, &arena_bytes)
        if status != EGRU_OK:
            _raise(status, "predict")
        results = []
        for (kind, width), n in zip(outs, out_steps):
            shape = (batch, width) if kind == "vector" else (batch, n, width)
            results.append(np.empty(shape, dtype=np.float32))
        arena = np.empty(arena_bytes, dtype=np.uint8)
        cdef uint32_t n_in = len(arrays), n_out = len(results), k2
        in_mem = np.zeros(max(n_in, 1) * sizeof(egru_input_t), dtype=np.uint8)
        out_mem = np.zeros(max(n_out, 1) * sizeof(egru_output_t), dtype=np.uint8)
        cdef egru_input_t *cin = <egru_input_t *>cnp.PyArray_DATA(in_mem)
        cdef egru_output_t *cout = <egru_output_t *>cnp.PyArray_DATA(out_mem)
        for k2 in range(n_in):
            cin[k2].data = cnp.PyArray_DATA(<cnp.ndarray>arrays[k2])
            cin[k2].steps = st[k2]
        for k2 in range(n_out):
            cout[k2].data = <float *>cnp.PyArray_DATA(<cnp.ndarray>results[k2])
            cout[k2].count = <size_t>cnp.PyArray_SIZE(<cnp.ndarray>results[k2])
        cdef void *arena_ptr = cnp.PyArray_DATA(arena)
        with nogil:
            if self._pool != NULL:
                egru_tpool_wake(self._pool)
            status = egru_run(&self.model, batch, cin, n_in, cout, n_out, arena_ptr, arena_bytes)
        if status != EGRU_OK:
            _raise(status, "predict")
        return results

    def forward_tokens(self, const int32_t[:, ::1] ids):
        """ids: (batch, T) int32, C-contiguous. Returns float32 (batch, [T,] output_dim)."""
        return self._run(&ids[0, 0], True, ids.shape[0], ids.shape[1])

    def forward_features(self, const float[:, :, ::1] x):
        """x: (batch, T, input_dim) float32, C-contiguous. Returns float32 (batch, [T,] out)."""
        if <uint32_t>x.shape[2] != self.model.input_dim:
            raise EdgeGRUError(f"expected {self.model.input_dim} features, got {x.shape[2]}")
        return self._run(&x[0, 0, 0], False, x.shape[0], x.shape[1])

    def layer_scales(self, uint32_t index):
        """int16x8 models: layer `index`'s (input scale, output scale) as float32, from its
        QPARAMS words (a recurrent layer's output scale is its state h's); None otherwise."""
        cdef egru_layer_t layer
        cdef int status = egru_model_layer(&self.model, index, &layer)
        if status != EGRU_OK:
            _raise(status, f"layer {index}")
        if layer.qparams == NULL or layer.qparams_count < 2:
            return None
        bits = np.array([layer.qparams[0], layer.qparams[1]], dtype=np.int32).view(np.float32)
        return bits[0], bits[1]

    def stream_blocker(self):
        """Index of the first layer that cannot stream (egru_session_check), or None."""
        cdef uint32_t index = 0
        cdef int status = egru_session_check(&self.model, &index)
        if status == EGRU_ERR_UNSUPPORTED:
            return index
        if status != EGRU_OK:
            _raise(status, "stream")
        return None

    def graph_stream_blocker(self):
        """Index of the first node of a graph that cannot stream (egru_graph_session_check), or
        None."""
        cdef uint32_t index = 0
        cdef int status = egru_graph_session_check(&self.model, &index)
        if status == EGRU_ERR_UNSUPPORTED:
            return index
        if status != EGRU_OK:
            _raise(status, "stream")
        return None


cdef class Session:
    """A C streaming session (egru_session_t) over a Runtime, in memory this object owns.

    Not for concurrent use: a call made while another thread is inside one (the C step runs
    without the GIL) raises RuntimeError instead of racing. Input checking with user-facing
    messages lives in runtime.Stream; the C runtime checks everything again.
    """

    cdef egru_session_t session
    cdef Runtime runtime  # keeps the model (and the blob it points into) alive
    cdef object _mem  # numpy uint8 array: the session memory
    cdef bint _busy

    def __cinit__(self, Runtime runtime, uint32_t batch):
        cdef size_t nbytes = 0
        cdef int status = egru_session_size(&runtime.model, batch, &nbytes)
        if status != EGRU_OK:
            _raise(status, "stream")
        self.runtime = runtime
        self._mem = np.empty(nbytes, dtype=np.uint8)
        cdef uint8_t[::1] mem = self._mem
        status = egru_session_init(&self.session, &runtime.model, batch, &mem[0], nbytes)
        if status != EGRU_OK:
            _raise(status, "stream")

    @property
    def batch(self):
        return self.session.batch

    @property
    def output_dim(self):
        return self.session.output_dim

    @property
    def state_count(self):
        return self.session.state_count

    @property
    def steps(self):
        return self.session.steps

    @property
    def memory_bytes(self):
        """Bytes of session memory (egru_session_size for this model and batch)."""
        return self._mem.size

    cdef _enter(self):
        if self._busy:
            raise RuntimeError("this stream is in use by another thread; use one stream per thread")
        self._busy = True

    def step_tokens(self, const int32_t[::1] ids):
        """ids: (batch,) int32. Returns float32 (batch, output_dim)."""
        return self._step(&ids[0], True, ids.shape[0])

    def step_features(self, const float[:, ::1] x):
        """x: (batch, input_dim) float32, C-contiguous. Returns float32 (batch, output_dim)."""
        if <uint32_t>x.shape[1] != self.runtime.model.input_dim:
            raise EdgeGRUError(f"expected {self.runtime.model.input_dim} features, got "
                               f"{x.shape[1]}")
        return self._step(&x[0, 0], False, x.shape[0])

    def step_exact(self, x):
        """One step for an input already in its final form: a C-contiguous ndarray, int32
        (batch,) for a token model or float32 (batch, input_dim) for a features model. Returns
        None for anything else (runtime.Stream then checks and converts, with messages)."""
        if not cnp.PyArray_Check(x):
            return None
        cdef cnp.ndarray a = <cnp.ndarray>x
        cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(a)
        if cnp.PyArray_NDIM(a) < 1 or not cnp.PyArray_IS_C_CONTIGUOUS(a) or \
                dims[0] != <cnp.npy_intp>self.session.batch:
            return None
        if self.runtime.model.input_kind == EGRU_INPUT_TOKENS:
            if cnp.PyArray_NDIM(a) != 1 or cnp.PyArray_TYPE(a) != cnp.NPY_INT32:
                return None
            return self._step(cnp.PyArray_DATA(a), True, dims[0])
        if cnp.PyArray_NDIM(a) != 2 or cnp.PyArray_TYPE(a) != cnp.NPY_FLOAT32 or \
                dims[1] != <cnp.npy_intp>self.runtime.model.input_dim:
            return None
        return self._step(cnp.PyArray_DATA(a), False, dims[0])

    cdef _step(self, const void *data, bint tokens, Py_ssize_t rows):
        if rows != self.session.batch:
            raise EdgeGRUError(f"this stream has batch {self.session.batch}, got {rows} rows")
        cdef cnp.npy_intp dims[2]
        dims[0] = self.session.batch
        dims[1] = self.session.output_dim
        out = cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT32, 0)
        cdef float *out_ptr = <float *>cnp.PyArray_DATA(out)
        cdef size_t count = <size_t>self.session.batch * self.session.output_dim
        cdef int status
        self._enter()
        try:
            with nogil:
                if self.runtime._pool != NULL:
                    egru_tpool_wake(self.runtime._pool)
                if tokens:
                    status = egru_session_step_tokens(&self.session, <const int32_t *>data,
                                                      out_ptr, count)
                else:
                    status = egru_session_step_features(&self.session, <const float *>data,
                                                        out_ptr, count)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream step")
        return out

    def raw_state(self):
        """The session's snapshot (egru_session_save), float32: per recurrent layer its state
        blocks, then its rows' "valid step seen" flags. With set_raw_state, what pickling a stream
        needs to continue exactly (set_state clears the flags)."""
        cdef size_t n = 0
        egru_session_snapshot_size(&self.session, &n)
        raw = np.empty(n, dtype=np.float32)
        cdef float[::1] view = raw
        cdef float dummy = 0.0
        cdef int status
        self._enter()
        try:
            status = egru_session_save(&self.session, &view[0] if n else &dummy, n)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream snapshot")
        return raw

    def set_raw_state(self, const float[::1] raw, uint64_t steps):
        """Restore raw_state()'s snapshot and the step count (egru_session_restore: checked)."""
        cdef float dummy = 0.0
        cdef int status
        self._enter()
        try:
            status = egru_session_restore(&self.session, &raw[0] if raw.shape[0] else &dummy,
                                          raw.shape[0], steps)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream restore")

    def reset(self):
        self._enter()
        try:
            status = egru_session_reset(&self.session)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream reset")

    def get_state(self):
        """The state, flat (docs/streaming.md): float32 (state_count,)."""
        state = np.empty(self.session.state_count, dtype=np.float32)
        cdef float[::1] view = state
        cdef float dummy = 0.0
        self._enter()
        try:
            status = egru_session_get_state(&self.session,
                                            &view[0] if view.shape[0] else &dummy,
                                            self.session.state_count)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream state")
        return state

    def set_state(self, const float[::1] state):
        """state: float32 (state_count,), the layout of get_state(), all finite."""
        cdef float dummy = 0.0
        self._enter()
        try:
            status = egru_session_set_state(&self.session,
                                            &state[0] if state.shape[0] else &dummy,
                                            state.shape[0])
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream state")

    # -- int16x8 sessions (egru_session_*_s16): int16 steps, int32 states -----------------------
    def step_tokens_s16(self, const int32_t[::1] ids):
        """ids: (batch,) int32. Returns int16 (batch, output_dim) at the output scale."""
        return self._step_s16(&ids[0], NULL, True, ids.shape[0])

    def step_features_s16(self, const int16_t[:, ::1] x, valid=None):
        """x: (batch, input_dim) int16 at the input scale, C-contiguous; valid: None or uint8
        (batch,) (a first Masking layer's validity). Returns int16 (batch, output_dim)."""
        if <uint32_t>x.shape[1] != self.runtime.model.input_dim:
            raise EdgeGRUError(f"expected {self.runtime.model.input_dim} features, got "
                               f"{x.shape[1]}")
        cdef const uint8_t *valid_ptr = NULL
        if valid is not None:
            if not isinstance(valid, np.ndarray) or valid.dtype != np.uint8 or \
                    not valid.flags.c_contiguous or valid.shape != (x.shape[0],):
                raise EdgeGRUError("valid must be a C-contiguous uint8 array of shape (batch,)")
            valid_ptr = <const uint8_t *>cnp.PyArray_DATA(<cnp.ndarray>valid)
        return self._step_s16(&x[0, 0], valid_ptr, False, x.shape[0])

    cdef _step_s16(self, const void *data, const uint8_t *valid, bint tokens, Py_ssize_t rows):
        if rows != self.session.batch:
            raise EdgeGRUError(f"this stream has batch {self.session.batch}, got {rows} rows")
        out = np.empty((self.session.batch, self.session.output_dim), dtype=np.int16)
        cdef int16_t *out_ptr = <int16_t *>cnp.PyArray_DATA(out)
        cdef size_t count = <size_t>self.session.batch * self.session.output_dim
        cdef int status
        self._enter()
        try:
            with nogil:
                if tokens:
                    status = egru_session_step_tokens_s16(&self.session, <const int32_t *>data,
                                                          out_ptr, count)
                else:
                    status = egru_session_step_features_s16(&self.session,
                                                            <const int16_t *>data, valid,
                                                            out_ptr, count)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream step")
        return out

    def get_state_s16(self):
        """The integer state, flat (docs/streaming.md): int32 (state_count,)."""
        state = np.empty(self.session.state_count, dtype=np.int32)
        cdef int32_t[::1] view = state
        cdef int32_t dummy = 0
        self._enter()
        try:
            status = egru_session_get_state_s16(&self.session,
                                                &view[0] if view.shape[0] else &dummy,
                                                self.session.state_count)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream state")
        return state

    def set_state_s16(self, const int32_t[::1] state):
        """state: int32 (state_count,), the layout of get_state_s16(), each value in range."""
        cdef int32_t dummy = 0
        self._enter()
        try:
            status = egru_session_set_state_s16(&self.session,
                                                &state[0] if state.shape[0] else &dummy,
                                                state.shape[0])
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream state")

    def raw_state_s16(self):
        """The int16x8 session's snapshot (egru_session_save_s16), int32."""
        cdef size_t n = 0
        egru_session_snapshot_size(&self.session, &n)
        raw = np.empty(n, dtype=np.int32)
        cdef int32_t[::1] view = raw
        cdef int32_t dummy = 0
        cdef int status
        self._enter()
        try:
            status = egru_session_save_s16(&self.session, &view[0] if n else &dummy, n)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream snapshot")
        return raw

    def set_raw_state_s16(self, const int32_t[::1] raw, uint64_t steps):
        """Restore raw_state_s16()'s snapshot and the step count (egru_session_restore_s16)."""
        cdef int32_t dummy = 0
        cdef int status
        self._enter()
        try:
            status = egru_session_restore_s16(&self.session,
                                              &raw[0] if raw.shape[0] else &dummy,
                                              raw.shape[0], steps)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream restore")


cdef class GraphSession:
    """A C graph session (egru_graph_session_t) over a graph Runtime, in memory this object owns:
    one step of every sequence input per call, each recurrent node's state carried.

    Not for concurrent use (RuntimeError, as Session). Input checking with user-facing messages
    lives in runtime.GraphStream; the C runtime checks everything again.
    """

    cdef egru_graph_session_t session
    cdef Runtime runtime  # keeps the model (and the blob it points into) alive
    cdef object _mem  # numpy uint8 array: the session memory
    cdef object _in_mem, _out_mem  # the egru_input_t / egru_output_t arrays of a step
    cdef object _widths  # output widths
    cdef object _ins  # the inputs' (kind, width)
    cdef bint _busy

    def __cinit__(self, Runtime runtime, uint32_t batch):
        cdef size_t nbytes = 0
        cdef int status = egru_graph_session_size(&runtime.model, batch, &nbytes)
        if status != EGRU_OK:
            _raise(status, "stream")
        self.runtime = runtime
        self._mem = np.empty(nbytes, dtype=np.uint8)
        cdef uint8_t[::1] mem = self._mem
        status = egru_graph_session_init(&self.session, &runtime.model, batch, &mem[0], nbytes)
        if status != EGRU_OK:
            _raise(status, "stream")
        self._in_mem = np.zeros(max(self.session.n_inputs, 1) * sizeof(egru_input_t), np.uint8)
        self._out_mem = np.zeros(max(self.session.n_outputs, 1) * sizeof(egru_output_t), np.uint8)
        ins, outs = runtime.io()
        self._ins = ins
        self._widths = [width for _, width in outs]

    @property
    def batch(self):
        return self.session.batch

    @property
    def steps(self):
        return self.session.steps

    @property
    def memory_bytes(self):
        """Bytes of session memory (egru_graph_session_size for this model and batch)."""
        return self._mem.size

    cdef _enter(self):
        if self._busy:
            raise RuntimeError("this stream is in use by another thread; use one stream per thread")
        self._busy = True

    def step(self, list arrays):
        """One step. arrays: the model inputs in order, each a C-contiguous int32 (batch,) for
        tokens, float32 (batch, width) for sequences and vectors, or None (a vector read only as
        an initial state). Returns the outputs' step values, float32 (batch, width) each."""
        cdef uint32_t n_in = self.session.n_inputs, n_out = self.session.n_outputs, k
        if <uint32_t>len(arrays) != n_in:
            raise EdgeGRUError(f"step takes {n_in} inputs, got {len(arrays)}")
        outs = [np.empty((self.session.batch, w), dtype=np.float32) for w in self._widths]
        cdef egru_input_t *cin = <egru_input_t *>cnp.PyArray_DATA(self._in_mem)
        cdef egru_output_t *cout = <egru_output_t *>cnp.PyArray_DATA(self._out_mem)
        cdef cnp.ndarray a
        for k in range(n_in):
            if arrays[k] is None:
                cin[k].data = NULL
            else:
                kind, width = self._ins[k]
                want = np.int32 if kind == "tokens" else np.float32
                count = self.session.batch * (1 if kind == "tokens" else width)
                obj = arrays[k]
                if not isinstance(obj, np.ndarray) or obj.dtype != want or \
                        not obj.flags.c_contiguous or obj.size != count or obj.ndim < 1 or \
                        obj.shape[0] != self.session.batch:
                    raise EdgeGRUError(f"input {k}: expected a C-contiguous {np.dtype(want)} "
                                       f"array of {self.session.batch} rows, {count} values")
                a = <cnp.ndarray>obj
                cin[k].data = cnp.PyArray_DATA(a)
            cin[k].steps = 1
        for k in range(n_out):
            cout[k].data = <float *>cnp.PyArray_DATA(<cnp.ndarray>outs[k])
            cout[k].count = <size_t>cnp.PyArray_SIZE(<cnp.ndarray>outs[k])
        cdef int status
        self._enter()
        try:
            with nogil:
                if self.runtime._pool != NULL:
                    egru_tpool_wake(self.runtime._pool)
                status = egru_graph_session_step(&self.session, cin, n_in, cout, n_out)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream step")
        return outs

    def reset(self):
        self._enter()
        try:
            status = egru_graph_session_reset(&self.session)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream reset")

    def state_size(self, uint32_t node):
        cdef size_t n = 0
        cdef int status = egru_graph_session_state_size(&self.session, node, &n)
        if status != EGRU_OK:
            _raise(status, f"stream state of node {node}")
        return n

    def get_state(self, uint32_t node):
        """Node `node`'s state, flat: float32 (parts * batch * units,), h then c (LSTM)."""
        state = np.empty(self.state_size(node), dtype=np.float32)
        cdef float[::1] view = state
        self._enter()
        try:
            status = egru_graph_session_get_state(&self.session, node, &view[0], view.shape[0])
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, f"stream state of node {node}")
        return state

    def set_state(self, uint32_t node, const float[::1] state):
        """Sets node `node`'s state from get_state's layout (count and finiteness checked)."""
        cdef float dummy = 0.0
        self._enter()
        try:
            status = egru_graph_session_set_state(&self.session, node,
                                                  &state[0] if state.shape[0] else &dummy,
                                                  state.shape[0])
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, f"stream state of node {node}")

    def raw_state(self):
        """The session's snapshot (egru_graph_session_save), float32: per recurrent node its
        state, its rows' "valid step seen" flags and its "fresh" flag. With set_raw_state, what
        pickling a graph stream needs to continue exactly (set_state clears the flags)."""
        cdef size_t n = 0
        egru_graph_session_snapshot_size(&self.session, &n)
        raw = np.empty(n, dtype=np.float32)
        cdef float[::1] view = raw
        cdef float dummy = 0.0
        cdef int status
        self._enter()
        try:
            status = egru_graph_session_save(&self.session, &view[0] if n else &dummy, n)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream snapshot")
        return raw

    def set_raw_state(self, const float[::1] raw, uint64_t steps):
        """Restore raw_state()'s snapshot and the step count (egru_graph_session_restore:
        checked; on error nothing changes)."""
        cdef float dummy = 0.0
        cdef int status
        self._enter()
        try:
            status = egru_graph_session_restore(&self.session,
                                                &raw[0] if raw.shape[0] else &dummy,
                                                raw.shape[0], steps)
        finally:
            self._busy = False
        if status != EGRU_OK:
            _raise(status, "stream restore")
