"""Exceptions raised by edgegru. All derive from ValueError, so that bad input of any kind can be
caught as one thing; each names the problem in its message."""


class EdgeGRUError(ValueError):
    """Base class. `code` is the C runtime's egru_status_t value when the error came from it."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class FormatError(EdgeGRUError):
    """The bytes are not a valid `.egru` file (corrupt, truncated, or from an unknown version)."""


class InputError(EdgeGRUError):
    """An input or argument is invalid: data given to predict or a stream step of the wrong
    rank, shape, dtype or sequence length, a token id out of range, a NaN/infinity; a batch
    size, sequence length or load option of the wrong type or out of range."""


class UnsupportedError(EdgeGRUError):
    """The model uses a layer, option or activation edgegru does not support (yet), or asks for
    something this CPU or build lacks (a kernel set, streaming a model that cannot stream)."""
