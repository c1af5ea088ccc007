"""TIME_STEPS graph nodes (docs/format.md "TIME_STEPS": Cropping1D, ZeroPadding1D,
UpSampling1D), without Keras: IR-built graphs written, read back and run by the C runtime
against the float64 reference within 1e-5 (both plans bit-equal), the steps they give, a mask
ending at them, too-short inputs refused, hostile records refused by both readers. The Keras
models are in tests/graph_models.py (time_steps*)."""

from __future__ import annotations

import struct

import graph_cases as gc
import numpy as np
import pytest

import edgegru
from edgegru import format as fmt
from edgegru import ir, reference
from edgegru.errors import FormatError

B, C = 3, 2


def _graph(op: ir.TimeSteps, masked=True):
    rng = np.random.default_rng(5)
    nodes = [ir.Node(ir.Masking(C, 0.0, name="m"), ["x"], ["xm"])] if masked else []
    seq = "xm" if masked else "x"
    nodes += [
        ir.Node(gc.gru(rng, C, C, "g", return_sequences=True), [seq], ["h"]),
        ir.Node(op, ["h"], ["s"]),
        ir.Node(gc.gru(rng, C, 3, "g2"), ["s"], ["y"]),
    ]
    return ir.Graph([ir.GraphInput("x", ir.FEATURES, C)], nodes, ["s", "y"])


OPS = {
    "crop": ir.TimeSteps("crop", C, 1, 2),
    "crop_start": ir.TimeSteps("crop", C, 3, 0),
    "pad": ir.TimeSteps("pad", C, 2, 1),
    "pad_end": ir.TimeSteps("pad", C, 0, 4),
    "upsample": ir.TimeSteps("upsample", C, size=3),
}


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("masked", [False, True])
def test_runtime_matches_reference(name, masked):
    graph = _graph(OPS[name], masked)
    assert not graph.values["s"].masked  # the mask ends
    blob = fmt.write(graph)
    assert fmt.write(fmt.read(blob)[0]) == blob
    x = np.random.default_rng(1).standard_normal((B, 6, C)).astype(np.float32)
    x[0, 4:] = 0
    want = reference.forward_graph(graph, [x])
    m = edgegru.load(blob)
    got = m.predict(x)
    assert got[0].shape == (B, OPS[name].out_steps(6), C)
    for a, b in zip(got, want, strict=True):
        assert float(np.max(np.abs(a - b))) <= 1e-5
    m.arena_limit = 0
    for a, b in zip(got, m.predict(x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_values_of_each_mode():
    x = np.arange(2 * 4 * 1, dtype=np.float64).reshape(2, 4, 1)
    run = lambda op: reference._graph_node(op, [(x, None)])[0][0][0, :, 0]  # noqa: E731
    np.testing.assert_array_equal(run(ir.TimeSteps("crop", 1, 1, 1)), [1, 2])
    np.testing.assert_array_equal(run(ir.TimeSteps("pad", 1, 1, 2)), [0, 0, 1, 2, 3, 0, 0])
    np.testing.assert_array_equal(
        run(ir.TimeSteps("upsample", 1, size=2)), [0, 0, 1, 1, 2, 2, 3, 3]
    )


def test_too_short_to_crop_is_an_input_error():
    m = edgegru.load(fmt.write(_graph(OPS["crop"], masked=False)))
    with pytest.raises(edgegru.InputError):
        m.predict(np.ones((1, 3, C), np.float32))
    assert m.predict(np.ones((1, 4, C), np.float32))[0].shape == (1, 1, C)


@pytest.mark.parametrize(
    "name, param, value",
    [
        ("crop", 0, 0),  # mode 0
        ("crop", 0, 4),  # unknown mode
        ("crop", 3, 1),  # a size on crop
        ("upsample", 3, 0),  # size 0
        ("upsample", 1, 1),  # a start on upsample
        ("pad", 4, 7),  # an unused param
    ],
)
def test_hostile_records_are_refused(name, param, value):
    blob = bytearray(fmt.write(_graph(OPS[name], masked=False)))
    h = fmt.read_header(bytes(blob))
    off = next(
        h["layer_table_offset"] + k * h["layer_record_size"]
        for k in range(h["layer_count"])
        if struct.unpack_from("<H", blob, h["layer_table_offset"] + k * h["layer_record_size"])[0]
        == fmt.OP_TIME_STEPS
    )
    struct.pack_into("<I", blob, off + 24 + 4 * param, value)
    bad = gc.refresh_crcs(blob)
    with pytest.raises(FormatError):
        fmt.read(bad)
    with pytest.raises(FormatError):
        edgegru.load(bad)
