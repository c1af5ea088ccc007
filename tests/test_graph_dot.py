"""DOT graph nodes (docs/format.md "DOT": Keras Dot of two vectors), without Keras: IR-built
graphs run by the C runtime against the float64 reference (plain and normalized, a zero
vector included), hostile records refused by both readers, sequences refused by the IR. The
Keras model is tests/graph_models.py's dot_vectors."""

from __future__ import annotations

import struct

import graph_cases as gc
import numpy as np
import pytest

import edgegru
from edgegru import format as fmt
from edgegru import ir, reference
from edgegru.errors import FormatError


def _graph(normalize):
    gis = [ir.GraphInput("a", ir.VECTOR, 5), ir.GraphInput("b", ir.VECTOR, 5)]
    return ir.Graph(gis, [ir.Node(ir.Dot(5, normalize, name="d"), ["a", "b"], ["y"])], ["y"])


@pytest.mark.parametrize("normalize", [False, True])
def test_runtime_matches_reference(normalize):
    g = _graph(normalize)
    blob = fmt.write(g)
    assert fmt.write(fmt.read(blob)[0]) == blob
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((4, 5)).astype(np.float32) for _ in range(2))
    a[3] = 0  # a zero vector: 0 (normalized: Keras' epsilon keeps it 0)
    want = reference.forward_graph(g, [a, b])[0]
    got = edgegru.load(blob).predict([a, b])
    assert got.shape == (4, 1)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert got[3, 0] == 0
    if normalize:
        assert np.all(np.abs(got[:3]) <= 1 + 1e-6)


def test_sequences_are_refused():
    with pytest.raises(ValueError, match="two vector inputs"):
        gis = [ir.GraphInput("a", ir.FEATURES, 5), ir.GraphInput("b", ir.FEATURES, 5)]
        ir.Graph(gis, [ir.Node(ir.Dot(5), ["a", "b"], ["y"])], ["y"])


@pytest.mark.parametrize("field, value", [(24, 2), (28, 1), (8, 2)])
def test_hostile_records_are_refused(field, value):
    blob = bytearray(fmt.write(_graph(True)))
    off = fmt.read_header(bytes(blob))["layer_table_offset"]
    struct.pack_into("<I", blob, off + field, value)  # normalize 2, params[1], width 2
    bad = gc.refresh_crcs(blob)
    with pytest.raises(FormatError):
        fmt.read(bad)
    with pytest.raises(FormatError):
        edgegru.load(bad)
