"""Every kernel set this machine has runs every model within FP32_TOLERANCE of the float64
reference (the C kernel tests in ext/tests/test_kernels.c bound the kernels one by one; this
checks them inside whole models). `make test` also runs the whole suite with EDGEGRU_KERNELS=ref.
"""

from __future__ import annotations

import numpy as np
import pytest
from ir_models import CASES, MORE_CASES, build, build_more, inputs, masked_inputs

import edgegru
from edgegru import format as fmt
from edgegru import reference
from edgegru.validate import FP32_TOLERANCE

SETS = edgegru.available_kernels()
NAMES = [("base", n) for n in CASES] + [("more", n) for n in MORE_CASES]


def test_reference_set_is_always_there():
    assert SETS[0] == "ref"


@pytest.mark.parametrize("pack", [False, True], ids=["plain", "packed"])
@pytest.mark.parametrize("kernels", SETS)
@pytest.mark.parametrize(("family", "name"), NAMES, ids=[n for _, n in NAMES])
def test_kernel_set_matches_reference(kernels, pack, family, name):
    """Plain (row-major, as in the file) and packed (egru_model_pack, transposed) weights, with a
    batch of 21 rows: one block of 16 rows run together and one of 5 (egru_forward.c)."""
    model = build(name) if family == "base" else build_more(name)
    m = edgegru.load(fmt.write(model), kernels=kernels, pack=pack)
    assert m.kernels == kernels
    assert (m.pack_bytes > 0) == pack
    steps = 6 if name == "activation_flatten" else 37
    make = masked_inputs if name.startswith("mask") else inputs
    x = make(model, 21, steps, seed=3)
    np.testing.assert_allclose(
        m.predict(x), reference.forward(model, x), rtol=0, atol=FP32_TOLERANCE, equal_nan=True
    )
    if kernels == "ref":  # the reference kernels sum in the same order in both layouts
        plain = edgegru.load(fmt.write(model), kernels="ref", pack=not pack)
        np.testing.assert_array_equal(m.predict(x), plain.predict(x))


def test_packing_is_the_default_except_for_the_reference_kernels():
    blob = fmt.write(build("stacked_gru_linear"))
    assert edgegru.load(blob, kernels="ref").pack_bytes == 0
    for name in set(SETS) - {"ref"}:
        assert edgegru.load(blob, kernels=name).pack_bytes > 0


def test_unknown_or_missing_kernel_set_is_a_clear_error():
    blob = fmt.write(build("stacked_gru_linear"))
    with pytest.raises(edgegru.EdgeGRUError, match="unknown kernel set 'fast'"):
        edgegru.load(blob, kernels="fast")
    for name in {"avx2", "avx512", "neon"} - set(SETS):
        with pytest.raises(edgegru.EdgeGRUError, match="not available"):
            edgegru.load(blob, kernels=name)


def test_environment_variable_chooses_the_default(monkeypatch):
    blob = fmt.write(build("stacked_gru_linear"))
    monkeypatch.setenv("EDGEGRU_KERNELS", "ref")
    assert edgegru.load(blob).kernels == "ref"
    monkeypatch.setenv("EDGEGRU_KERNELS", "auto")
    assert edgegru.load(blob).kernels == SETS[-1]
