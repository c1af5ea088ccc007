"""Graph files (docs/format.md "Graphs", format 1.4) in the Python writer and reader: round trips
(float32 and int8), shared layers stored once, the metadata's names, chains written as chains
byte for byte (the golden files), int16x8 refused, and hostile graph files refused by the
reader (each rule of the spec broken with valid checksums, every truncation, every byte).

The C reader and runtime are tested on the same files in ext/tests/test_graph.c (run by
tests/test_c_suite.py through `make -C ext check`); this file checks that the header it
includes is the one ext/tests/gen_graph_models.py writes today.
"""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import graph_cases as gc
import numpy as np
import pytest

from edgegru import format as fmt
from edgegru import ir
from edgegru.errors import FormatError, UnsupportedError

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = sorted((ROOT / "tests" / "data").glob("*.egru"))


@pytest.fixture(scope="module", params=sorted(gc.GRAPHS))
def graph(request):
    return gc.GRAPHS[request.param]()


def _tensor_count(blob: bytes) -> int:
    return fmt.read_header(blob)["tensor_count"]


def test_graph_header_and_tables(graph):
    blob = fmt.write(graph)
    h = fmt.read_header(blob)
    assert (h["version_minor"], h["header_size"], h["layer_record_size"]) == (4, 160, 80)
    assert (h["input_kind"], h["input_dim"], h["output_dim"]) == (3, 0, 0)
    assert h["graph_input_count"] == len(graph.inputs)
    assert h["graph_output_count"] == len(graph.outputs)
    assert h["value_count"] == len(graph.values)
    assert h["layer_count"] == len(graph.nodes)
    assert h["io_count"] == len(graph.inputs) + len(graph.outputs) + sum(
        len(n.inputs) + len(n.outputs) for n in graph.nodes
    )
    io = struct.unpack_from(f"<{h['io_count']}I", blob, h["io_table_offset"])
    names = graph.value_names()
    assert [names[i] for i in io[: len(graph.inputs)]] == [gi.name for gi in graph.inputs]
    assert [
        names[i] for i in io[len(graph.inputs) : h["graph_input_count"] + len(graph.outputs)]
    ] == list(graph.outputs)
    for v, name in enumerate(names):
        kind, flags, _r, width, *_ = fmt.VALUE.unpack_from(blob, h["value_table_offset"] + 16 * v)
        value = graph.values[name]
        assert (kind, width, bool(flags)) == (
            fmt.VALUE_KINDS[value.kind],
            value.width,
            value.masked,
        )


def test_round_trip_is_exact_and_deterministic(graph):
    blob = fmt.write(graph, metadata={"extra": 1})
    assert fmt.write(graph, metadata={"extra": 1}) == blob
    back, meta = fmt.read(blob)
    assert meta["graph"] == {
        "inputs": [gi.name for gi in graph.inputs],
        "outputs": list(graph.outputs),
        "values": graph.value_names(),
    }
    assert meta["extra"] == 1
    assert [gi.name for gi in back.inputs] == [gi.name for gi in graph.inputs]
    assert back.outputs == graph.outputs
    assert [(n.inputs, n.outputs, n.masked) for n in back.nodes] == [
        (n.inputs, n.outputs, n.masked) for n in graph.nodes
    ]
    assert back.values == graph.values
    meta.pop("graph")
    assert fmt.write(back, metadata=meta) == blob


def test_read_back_computes_what_the_graph_computes(graph):
    xs = gc.inputs_for(graph, 3, 5)
    back, _ = fmt.read(fmt.write(graph))
    for a, b in zip(gc.forward_graph(graph, xs), gc.forward_graph(back, xs), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)  # weights stored as float32


def test_shared_layer_is_stored_once():
    graph = gc.graph_states()
    blob = fmt.write(graph)
    unique = {id(n.layer) for n in graph.nodes}
    assert len(unique) < len(graph.nodes)  # the Dense is applied twice
    per_layer = {ir.GRU: 4, ir.LSTM: 3, ir.Dense: 2}
    assert _tensor_count(blob) == sum(
        per_layer.get(type(n.layer), 0) for n in {id(n.layer): n for n in graph.nodes}.values()
    )
    back, _ = fmt.read(blob)
    dense = [n.layer for n in back.nodes if isinstance(n.layer, ir.Dense)]
    assert len(dense) == 2 and dense[0] is dense[1]
    h = fmt.read_header(blob)
    ranges = [
        struct.unpack_from("<II", blob, h["layer_table_offset"] + 80 * k + 12)
        for k, n in enumerate(graph.nodes)
        if isinstance(n.layer, ir.Dense)
    ]
    assert ranges[0] == ranges[1]


def test_int8_graph():
    graph = gc.graph_states()
    blob = fmt.write(graph, quantize="int8")
    h = fmt.read_header(blob)
    assert (h["version_minor"], h["quant_version"]) == (4, 1)
    dtypes = [blob[h["tensor_table_offset"] + 64 * i] for i in range(h["tensor_count"])]
    assert dtypes.count(fmt.DTYPE_S8) == 2 + 2 + 1  # GRU and LSTM kernel + recurrent, Dense
    back, _ = fmt.read(blob)
    assert fmt.write(back, quantize="int8") == blob  # dequantized weights quantize back exactly


def test_int16x8_graph_is_refused():
    with pytest.raises(UnsupportedError, match="int16x8 graphs are not supported yet"):
        fmt.write(gc.graph_states(), quantize="int16x8")


def _as_graph(model: ir.Model) -> ir.Graph:
    names = ["x", *(f"v{k}" for k in range(len(model.layers)))]
    return ir.Graph(
        [ir.GraphInput("x", model.input.kind, model.input.dim)],
        [ir.Node(layer, [names[k]], [names[k + 1]]) for k, layer in enumerate(model.layers)],
        [names[-1]],
        name=model.name,
        source=model.source,
    )


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_a_chain_graph_is_written_as_the_chain(path):
    """A graph that is a chain gives exactly the chain's bytes (the golden files)."""
    blob = path.read_bytes()
    model, meta = fmt.read(blob)
    graph = _as_graph(model)
    assert graph.as_chain() is not None
    assert fmt.write(graph, metadata=meta) == blob


def test_a_chain_graph_int8_is_the_chain_int8():
    rng = np.random.default_rng(0)
    layer = gc.gru(rng, 3, 4, "g")
    model = ir.Model(ir.InputSpec(ir.FEATURES, 3), [layer])
    assert fmt.write(_as_graph(model), quantize="int8") == fmt.write(model, quantize="int8")


def test_hostile_graph_files_are_refused(graph):
    blob = fmt.write(graph)
    cases = gc.hostile(blob)
    assert len(cases) > 30
    for name, bad, _status in cases:
        with pytest.raises(FormatError):
            fmt.read(bad)
            pytest.fail(f"accepted: {name}")


def test_every_truncation_and_byte_of_a_graph_file_is_refused():
    blob = fmt.write(gc.graph_masks())
    for n in range(0, len(blob), 7):
        with pytest.raises(FormatError):
            fmt.read(blob[:n])
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x41
        with pytest.raises(FormatError):
            fmt.read(bytes(bad))


def test_graph_ops_are_refused_in_a_chain_file():
    rng = np.random.default_rng(0)
    blob = bytearray(fmt.write(ir.Model(ir.InputSpec(ir.FEATURES, 4), [gc.dense(rng, 4, 4, "d")])))
    h = fmt.read_header(bytes(blob))
    struct.pack_into("<HH", blob, h["layer_table_offset"], fmt.OP_MERGE, 0)
    with pytest.raises(FormatError):
        fmt.read(gc.refresh_crcs(blob))


def test_c_constants_of_graphs():
    import re

    text = (ROOT / "ext" / "include" / "egru_format.h").read_text()
    text += (ROOT / "ext" / "include" / "edgegru.h").read_text()
    pairs = re.findall(r"#define\s+(EGRU_\w+)\s+(0x[0-9a-fA-F]+|\d+)u?\b", text)
    pairs += re.findall(r"\b(EGRU_\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)", text)
    c = {k: int(v, 0) for k, v in pairs}
    assert c["EGRU_FORMAT_VERSION_MINOR"] == fmt.VERSION_MINOR == 4
    assert c["EGRU_INPUT_GRAPH"] == fmt.INPUT_GRAPH
    assert c["EGRU_GRAPH_HEADER_SIZE"] == fmt.GRAPH_HEADER_SIZE
    assert c["EGRU_NODE_RECORD_SIZE"] == fmt.NODE_RECORD_SIZE
    assert c["EGRU_VALUE_RECORD_SIZE"] == fmt.VALUE_RECORD_SIZE
    assert c["EGRU_VALUE_FLAG_MASKED"] == fmt.VALUE_FLAG_MASKED
    assert c["EGRU_OP_MERGE"] == fmt.OP_MERGE
    assert c["EGRU_OP_CONCATENATE"] == fmt.OP_CONCATENATE
    assert c["EGRU_OP_REPEAT_VECTOR"] == fmt.OP_REPEAT_VECTOR
    for kind, code in fmt.VALUE_KINDS.items():
        name = {ir.TOKENS: "TOKENS", ir.SEQUENCE: "SEQUENCE", ir.VECTOR: "VECTOR"}[kind]
        assert c[f"EGRU_VALUE_{name}"] == code
    modes = ["ADD", "SUBTRACT", "MULTIPLY", "AVERAGE", "MAXIMUM", "MINIMUM"]
    assert [c[f"EGRU_MERGE_{m}"] for m in modes] == [
        ir.MERGE_OPS.index(m.lower()) + 1 for m in modes
    ]
    assert (c["EGRU_CONCAT_TIME"], c["EGRU_CONCAT_FEATURES"]) == (1, 2)


def test_the_c_test_data_is_current():
    """ext/tests/egru_graph_models.h is what gen_graph_models.py writes (regenerate it after a
    change of the format or of tests/graph_cases.py)."""
    tool = ROOT / "ext" / "tests" / "gen_graph_models.py"
    spec = importlib.util.spec_from_file_location("gen_graph_models", tool)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.OUT.read_text() == gen.render()


def test_python_and_c_readers_agree_on_random_edits(graph):
    """Random bit flips in a graph file's tables (checksums made valid again): the Python reader
    refuses exactly the files the C reader (egru_model_init, through the extension) refuses."""
    from edgegru import _runtime

    blob = fmt.write(graph)
    end = fmt.read_header(blob)["meta_offset"]  # the C reader ignores the metadata's content
    rng = np.random.default_rng(5)
    disagree = []
    for _ in range(1500):
        bad = bytearray(blob)
        for _ in range(int(rng.integers(1, 3))):
            bad[int(rng.integers(128, end))] ^= 1 << int(rng.integers(0, 8))
        bad = gc.refresh_crcs(bad)
        try:
            _runtime.Runtime(bad)
            c_ok = True
        except FormatError:
            c_ok = False
        try:
            fmt.read(bad)
            py_ok = True
        except FormatError:
            py_ok = False
        if c_ok != py_ok:
            disagree.append((c_ok, bytes(bad)))
    assert not disagree, f"{len(disagree)} files where the readers disagree"
