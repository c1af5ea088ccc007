"""int8 quantization, quant_version 1 (docs/quantization.md): symmetric, one scale per row.

`quantize_rows` is what the converter writes; `quantize_vector` is the run-time quantization of a
product's input as the C reference kernel does it (egru_quantize_s8), written here from the
equations in float32 so that tests can model the int8 runtime independently.
"""

from __future__ import annotations

import numpy as np

#: The quantization semantics this package writes and runs (header field quant_version).
QUANT_VERSION = 1
#: Largest int8 magnitude used: the range is symmetric, -128 is never written.
QMAX = 127
#: Widest int8 product (columns of an int8 KERNEL or RECURRENT matrix), EGRU_S8_MAX_COLS of
#: ext/include/egru_format.h: the runtime sums up to this many products q * w with |q|, |w| <= 127
#: in int32, and 2**17 * 127 * 127 = 2,114,060,288 <= 2**31 - 1 (docs/quantization.md). The
#: runtime rejects wider int8 matrices; the writer keeps them float32 (`int8_product_fits`).
S8_MAX_COLS = 2**17


def int8_product_fits(cols: int) -> bool:
    """True when a matrix of `cols` columns may be stored as int8: its int32 sums cannot
    overflow. The converter's decision for `write(..., quantize="int8")`: a KERNEL or RECURRENT
    matrix wider than S8_MAX_COLS stays float32 (the format allows a float32 matrix in an int8
    file, and the runtime runs it with the float kernels); other matrices are unaffected."""
    return 0 < cols <= S8_MAX_COLS


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w (rows, ...) float -> (q int8 of the same shape, scale float32 (rows,)) with
    w[i] ~ scale[i] * q[i]: scale = max|w[i]| / 127 (0 for an all-zero row), q = clamp(rint(w /
    scale), -127, 127), rint rounding half to even."""
    w = np.asarray(w, dtype=np.float32)
    rows = w.reshape(w.shape[0], -1)
    m = np.max(np.abs(rows), axis=1).astype(np.float32)
    scale = (m / np.float32(QMAX)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1))
    q = np.clip(np.rint(rows / safe[:, None]), -QMAX, QMAX).astype(np.int8)
    q[scale == 0] = 0
    return q.reshape(w.shape), scale


def dequantize_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """scale[i] * q[i] in float32 (what the quantized weights mean)."""
    q = np.asarray(q)
    return (q.reshape(q.shape[0], -1).astype(np.float32) * scale[:, None]).reshape(q.shape)


#: The smallest max|x| the run-time quantization inverts (EGRU_QUANT_S8_MIN in the C kernels):
#: 2^-119, so that 127 / m stays finite and m / 127 is a normal float. Below it the vector is
#: quantized as all zeros with scale 0 (docs/quantization.md).
QUANT_MIN = np.float32(2.0**-119)


def quantize_vector(x: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """The run-time quantization of one product input (egru_quantize_s8), in float32, with
    m = max|x|:

    - some x is NaN or +-inf: q all 0 and scale NaN (every output of the product is NaN);
    - m < QUANT_MIN (2^-119; exact zeros, denormals, tiny values, an empty vector): q all 0 and
      scale 0 (the product gives its bias);
    - else inv = 127 / m, q = clamp(rint(x * inv), -127, 127), scale m / 127."""
    x = np.asarray(x, dtype=np.float32)
    if x.size and not np.all(np.isfinite(x)):
        return np.zeros(x.shape, np.int8), np.float32(np.nan)
    m = np.float32(np.max(np.abs(x))) if x.size else np.float32(0)
    if m < QUANT_MIN:
        return np.zeros(x.shape, np.int8), np.float32(0)
    inv = np.float32(QMAX) / m
    q = np.clip(np.rint(x * inv), -QMAX, QMAX).astype(np.int8)
    return q, np.float32(m / np.float32(QMAX))
