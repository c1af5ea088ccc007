"""Every kernel set this machine has runs every model within FP32_TOLERANCE of the float64
reference (the C kernel tests in ext/tests/test_kernels.c bound the kernels one by one; this
checks them inside whole models). `make test` also runs the whole suite with EDGEGRU_KERNELS=ref.
"""

from __future__ import annotations

import numpy as np
import pytest
from ir_models import (
    CASES,
    MORE_CASES,
    bidir,
    build,
    build_more,
    dense,
    feat,
    gru,
    inputs,
    lstm,
    masked_inputs,
    simple_rnn,
)

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


def _panel_models():
    """Recurrent layers whose packed matrix spans several 64-output panels (egru_layers.h), with
    a reset-before GRU's candidate product starting inside a panel (2H = 80, 140), a panel
    narrower than 64 at the end, bidirectional and stacked layers."""
    rng = np.random.default_rng(7)
    return {
        "gru40_reset_after": feat(
            5, gru(rng, 5, 40, return_sequences=True), dense(rng, 40, 3, "linear")
        ),
        "gru70_reset_before": feat(
            5, gru(rng, 5, 70, reset_after=False), dense(rng, 70, 2, "linear")
        ),
        "lstm33_seq": feat(4, lstm(rng, 4, 33, return_sequences=True)),
        "simple_rnn100": feat(3, simple_rnn(rng, 3, 100)),
        "bidir_gru24_stacked": feat(
            6,
            bidir(rng, gru, 6, 24, merge_mode="sum", return_sequences=True),
            gru(rng, 24, 36, reset_after=False),
        ),
    }


@pytest.mark.parametrize("name", list(_panel_models()))
def test_packed_panels_equal_the_plain_layout(name):
    """The packed recurrent matrix is stored in panels of 64 outputs; a product over several
    panels runs one kernel call per panel (through a scratch block for batches). With the
    reference set the packed products add in the plain layout's order, so predict and a stream
    must give the same bits packed and unpacked, at batch 1 (matvec_t per panel) and at batches
    that run 16 and 3 rows together (matmul_t per panel); every other set stays within
    FP32_TOLERANCE of the float64 reference."""
    model = _panel_models()[name]
    blob = fmt.write(model)
    plain = edgegru.load(blob, kernels="ref", pack=False)
    packed = edgegru.load(blob, kernels="ref", pack=True)
    assert packed.pack_bytes > 0
    for batch in (1, 19):
        x = inputs(model, batch, 23, seed=batch)
        np.testing.assert_array_equal(packed.predict(x), plain.predict(x))
        if not name.startswith("bidir"):  # a Bidirectional layer does not stream
            s_plain, s_packed = plain.stream(batch=batch), packed.stream(batch=batch)
            for t in range(4):
                np.testing.assert_array_equal(s_packed.step(x[:, t]), s_plain.step(x[:, t]))
        want = reference.forward(model, x)
        for kernels in SETS:
            got = edgegru.load(blob, kernels=kernels, pack=True).predict(x)
            np.testing.assert_allclose(got, want, rtol=0, atol=FP32_TOLERANCE)
