"""RESHAPE and PERMUTE graph nodes (docs/format.md), without Keras: IR-built graphs run by the
C runtime against the float64 reference (bit-exact: they move bytes), other steps than the
fixed ones refused as input errors, hostile records refused by both readers. The Keras model is
tests/graph_models.py's reshape_permute."""

from __future__ import annotations

import struct

import graph_cases as gc
import numpy as np
import pytest

import edgegru
from edgegru import format as fmt
from edgegru import ir, reference
from edgegru.errors import FormatError


def _graph():
    gis = [ir.GraphInput("x", ir.FEATURES, 3, 4), ir.GraphInput("v", ir.VECTOR, 6)]
    nodes = [
        ir.Node(ir.Permute(4, 3, name="p"), ["x"], ["xt"]),  # (4, 3) -> (3, 4)
        ir.Node(ir.Reshape(3, 4, 0, 12, name="flat"), ["xt"], ["f"]),
        ir.Node(ir.Reshape(0, 6, 2, 3, name="seq"), ["v"], ["s"]),
        ir.Node(ir.Reshape(2, 3, 3, 2, name="re"), ["s"], ["s2"]),
    ]
    return ir.Graph(gis, nodes, ["xt", "f", "s2"])


def test_runtime_matches_reference():
    g = _graph()
    blob = fmt.write(g)
    assert fmt.write(fmt.read(blob)[0]) == blob
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 4, 3)).astype(np.float32), rng.standard_normal((2, 6))]
    xs[1] = xs[1].astype(np.float32)
    want = reference.forward_graph(g, xs)
    got = edgegru.load(blob).predict(xs)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b.astype(np.float32))
    np.testing.assert_array_equal(got[0], np.transpose(xs[0], (0, 2, 1)))
    np.testing.assert_array_equal(got[2], xs[1].reshape(2, 3, 2))


def test_other_steps_are_an_input_error():
    m = edgegru.load(fmt.write(_graph()))
    with pytest.raises(edgegru.InputError):
        m.predict([np.ones((1, 5, 3), np.float32), np.ones((1, 6), np.float32)])


@pytest.mark.parametrize(
    "node, field, value",
    [
        (0, 24, 5),  # Permute T != its output width
        (0, 28, 1),  # Permute params[1]
        (1, 28, 2),  # Reshape sizes differ
        (1, 32, 1),  # Reshape params[2]
    ],
)
def test_hostile_records_are_refused(node, field, value):
    blob = bytearray(fmt.write(_graph()))
    h = fmt.read_header(bytes(blob))
    struct.pack_into(
        "<I", blob, h["layer_table_offset"] + node * h["layer_record_size"] + field, value
    )
    bad = gc.refresh_crcs(blob)
    with pytest.raises(FormatError):
        fmt.read(bad)
    with pytest.raises(FormatError):
        edgegru.load(bad)
