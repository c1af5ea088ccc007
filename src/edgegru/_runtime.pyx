# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin Cython layer over the C runtime: owns the aligned model bytes, allocates the arena and the
output for each call, and releases the GIL around the C forward pass. Input checking with
user-facing messages lives in runtime.py; the C runtime checks everything again."""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int32_t, uint8_t, uint32_t, uintptr_t

from ._cegru cimport *

from .errors import EdgeGRUError, FormatError

cnp.import_array()

STATUS_COUNT = EGRU_STATUS_COUNT
VERSION = EGRU_VERSION_STRING.decode()


def status_message(int code):
    """The C runtime's message for a status code."""
    return egru_status_str(code).decode()


def crc32(const uint8_t[::1] data, uint32_t crc=0):
    """The C runtime's CRC-32 (must equal zlib.crc32)."""
    return egru_crc32(crc, &data[0] if data.shape[0] else NULL, data.shape[0])


cdef _raise(int status, str what):
    raise EdgeGRUError(f"{what}: {egru_status_str(status).decode()} (status {status})", status)


cdef class Runtime:
    """An immutable, validated model. Safe to share between threads: each call gets its own arena.

    blob: the .egru bytes. They are copied once into a buffer aligned to 64 bytes that this object
    owns and never changes (the C model points into it).
    """

    cdef egru_model_t model
    cdef object _buffer  # numpy uint8 array holding the aligned copy; read-only

    def __cinit__(self, blob):
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

    def describe(self):
        """The model's summary as the C parser computed it (a dict)."""
        m = &self.model
        return dict(
            input_kind="tokens" if m.input_kind == EGRU_INPUT_TOKENS else "features",
            input_dim=m.input_dim, output_dim=m.output_dim,
            output_is_sequence=bool(m.output_is_sequence), param_count=m.param_count,
            file_size=m.file_size, layer_count=m.layer_count, max_width=m.max_width,
            max_units=m.max_units)

    @property
    def metadata_bytes(self):
        if self.model.meta == NULL:
            return b""
        return bytes(<const char[:self.model.meta_size]><const char *>self.model.meta)

    def layer(self, uint32_t index):
        """Decoded layer record: dict of op, flags, input_dim, output_dim, activation codes,
        param_count, macs_per_step."""
        cdef egru_layer_t layer
        cdef int status = egru_model_layer(&self.model, index, &layer)
        if status != EGRU_OK:
            _raise(status, f"layer {index}")
        return dict(op=layer.op, flags=layer.flags, input_dim=layer.input_dim,
                    output_dim=layer.output_dim, activation=layer.activation,
                    recurrent_activation=layer.recurrent_activation,
                    param_count=layer.param_count, macs_per_step=layer.macs_per_step)

    def arena_size(self, uint32_t batch, uint32_t seq_len):
        """Bytes of arena the C runtime needs for this shape."""
        cdef size_t n = 0
        cdef int status = egru_arena_size(&self.model, batch, seq_len, &n)
        if status != EGRU_OK:
            _raise(status, "arena size")
        return n

    cdef _run(self, const void *data, bint tokens, uint32_t batch, uint32_t seq_len):
        """Allocate the output and the arena for this call, run the C forward pass without the
        GIL, return the output. `data` must hold the whole (batch, T[, dim]) input."""
        cdef size_t count = 0, arena_bytes = self.arena_size(batch, seq_len)
        cdef int status = egru_output_count(&self.model, batch, seq_len, &count)
        if status != EGRU_OK:
            _raise(status, "output size")
        if self.model.output_is_sequence:  # Conv1D may change the number of steps
            steps = count // (<size_t>batch * self.model.output_dim)
            out = np.empty((batch, steps, self.model.output_dim), dtype=np.float32)
        else:
            out = np.empty((batch, self.model.output_dim), dtype=np.float32)
        arena = np.empty(arena_bytes, dtype=np.uint8)
        cdef float[::1] out_view = out.reshape(-1)
        cdef uint8_t[::1] arena_view = arena
        with nogil:
            if tokens:
                status = egru_forward_tokens(&self.model, <const int32_t *>data, batch, seq_len,
                                             &out_view[0], count, &arena_view[0], arena_bytes)
            else:
                status = egru_forward_features(&self.model, <const float *>data, batch, seq_len,
                                               &out_view[0], count, &arena_view[0], arena_bytes)
        if status != EGRU_OK:
            _raise(status, "predict")
        return out

    def forward_tokens(self, const int32_t[:, ::1] ids):
        """ids: (batch, T) int32, C-contiguous. Returns float32 (batch, [T,] output_dim)."""
        return self._run(&ids[0, 0], True, ids.shape[0], ids.shape[1])

    def forward_features(self, const float[:, :, ::1] x):
        """x: (batch, T, input_dim) float32, C-contiguous. Returns float32 (batch, [T,] out)."""
        if <uint32_t>x.shape[2] != self.model.input_dim:
            raise EdgeGRUError(f"expected {self.model.input_dim} features, got {x.shape[2]}")
        return self._run(&x[0, 0, 0], False, x.shape[0], x.shape[1])
