"""Graph models end to end (issue #13): every Keras model of tests/graph_models.py converted
(live and from its .keras file, to the same bytes) and run by the C runtime through
`Model.predict`, against Keras' own predict within 1e-5 (fp32) and within a loose bound with
int8 weights; both arena plans bit-equal; the Python API in Keras' conventions (a list in
model.inputs order or a dict by input name; a list for several outputs) and its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import graph_models
import numpy as np
import pytest

import edgegru
from edgegru import InputError, UnsupportedError

#: fp32 against Keras: float32 arithmetic in another order (docs/validation.md).
FP32_TOLERANCE = 1e-5
#: int8 weights against Keras: per-row symmetric int8 of random weights, small models.
INT8_TOLERANCE = 0.1


def _keras_outputs(model, inputs) -> list:
    out = model.predict(inputs[0] if len(inputs) == 1 else inputs, verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


def _as_list(out) -> list:
    return out if isinstance(out, list) else [out]


@pytest.fixture(scope="module", params=sorted(graph_models.MODELS))
def case(request, tmp_path_factory):
    model, inputs = graph_models.build(request.param)
    d = tmp_path_factory.mktemp(request.param)
    model.save(d / "model.keras")
    blob_live = d / "live.egru"
    edgegru.convert(model, blob_live)
    edgegru.convert(d / "model.keras", d / "file.egru")
    edgegru.convert(model, d / "int8.egru", quantize="int8")
    return request.param, model, inputs, d


def test_live_and_file_convert_to_the_same_bytes(case):
    _, _, _, d = case
    assert (d / "live.egru").read_bytes() == (d / "file.egru").read_bytes()


def test_runtime_matches_keras(case):
    name, model, inputs, d = case
    m = edgegru.load(d / "live.egru")
    want = _keras_outputs(model, inputs)
    got = _as_list(m.predict(inputs))
    assert len(got) == len(want) == len(model.outputs)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g, w, rtol=0, atol=FP32_TOLERANCE, err_msg=name)


def test_dict_inputs_and_both_plans_agree(case):
    name, _, inputs, d = case
    m = edgegru.load(d / "live.egru")
    by_name = {spec.name: x for spec, x in zip(m.inputs, inputs, strict=True)}
    a = _as_list(m.predict(inputs))
    b = _as_list(m.predict(by_name))
    m.arena_limit = 0  # the low-memory plan
    c = _as_list(m.predict(inputs))
    for x, y, z in zip(a, b, c, strict=True):
        assert np.array_equal(x, y) and np.array_equal(x, z), name


def test_int8_runs_close_to_keras(case):
    name, model, inputs, d = case
    m = edgegru.load(d / "int8.egru")
    for g, w in zip(_as_list(m.predict(inputs)), _keras_outputs(model, inputs), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=INT8_TOLERANCE, err_msg=name)


@pytest.fixture(scope="module")
def seq2seq_step(tmp_path_factory):
    (_, _), (step, step_in) = graph_models.seq2seq_inference()
    d = tmp_path_factory.mktemp("step")
    edgegru.convert(step, d / "step.egru")
    return step, step_in, edgegru.load(d / "step.egru"), d


def test_io_description(seq2seq_step):
    _, _, m, _ = seq2seq_step
    assert m.is_graph and m.input_kind == "graph"
    assert [(s.name, s.kind) for s in m.inputs] == [("step_id", "tokens"), ("state_in", "vector")]
    assert [s.kind for s in m.outputs] == ["sequence", "vector"]
    assert m.output_shape(3, [1, 1]) == [(3, 1, m.outputs[0].width), (3, m.outputs[1].width)]
    assert "graph" in repr(m)


def test_input_errors_name_the_input(seq2seq_step):
    _, (ids, h), m, _ = seq2seq_step
    with pytest.raises(InputError, match="missing: \\['state_in'\\]"):
        m.predict({"step_id": ids})
    with pytest.raises(InputError, match="unknown: \\['nope'\\]"):
        m.predict({"step_id": ids, "state_in": h, "nope": h})
    with pytest.raises(InputError, match="takes 2 inputs"):
        m.predict([ids])
    with pytest.raises(InputError, match="takes 2 inputs"):
        m.predict(ids)
    with pytest.raises(InputError, match=r"'state_in'.*batch 2"):
        m.predict([ids, h[:2]])
    with pytest.raises(InputError, match=r"'state_in'.*shape"):
        m.predict([ids, h[:, :-1]])
    bad = ids.copy()
    bad[1, 0] = 10**6
    with pytest.raises(InputError, match="'step_id': token id 1000000 at position \\(1, 0\\)"):
        m.predict([bad, h])
    with pytest.raises(InputError, match="'step_id': token id -1"):
        m.predict([np.full_like(ids, -1), h])
    nan = h.copy()
    nan[2, 3] = np.nan
    with pytest.raises(InputError, match="'state_in' contains nan at position \\(2, 3\\)"):
        m.predict([ids, nan])
    with pytest.raises(InputError, match="'step_id': token ids must be an integer"):
        m.predict([ids.astype(np.float32), h])
    with pytest.raises(UnsupportedError, match="graph"):
        edgegru.convert(seq2seq_step[0], os.fspath(seq2seq_step[3] / "q.egru"), quantize="int16x8")


def test_mismatched_steps_is_an_input_error(tmp_path):
    import keras

    a, b = keras.Input((None, 3), name="a"), keras.Input((None, 3), name="b")
    model = keras.Model([a, b], keras.layers.Add()([a, b]))
    edgegru.convert(model, tmp_path / "m.egru")
    m = edgegru.load(tmp_path / "m.egru")
    x = np.ones((2, 5, 3), np.float32)
    np.testing.assert_array_equal(m.predict([x, x]), 2 * x)
    with pytest.raises(InputError, match="sequence lengths"):
        m.predict([x, x[:, :-1]])


EDGEGRU = Path(sys.executable).parent / "edgegru"


def _cli(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [str(EDGEGRU), *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_info_shows_the_graph(seq2seq_step):
    _, _, _, d = seq2seq_step
    proc = _cli("info", d / "step.egru")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "graph" in out.splitlines()[0]
    assert "step_id" in out and "state_in" in out and "vector" in out
    # The GRU node reads the embedding and the state input and writes its output and its state.
    gru = next(line for line in out.splitlines() if " GRU " in line)
    assert "state_in ->" in gru and "," in gru.split("->")[1]


def test_cli_validate_with_an_npz_per_input(seq2seq_step, tmp_path):
    step, (ids, h), _, _ = seq2seq_step
    step.save(tmp_path / "step.keras")
    np.savez(tmp_path / "x.npz", step_id=ids, state_in=h)
    proc = _cli("validate", tmp_path / "step.keras", "--x", tmp_path / "x.npz")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout
    np.savez(tmp_path / "bad.npz", step_id=ids)
    proc = _cli("validate", tmp_path / "step.keras", "--x", tmp_path / "bad.npz")
    assert proc.returncode != 0 and "state_in" in proc.stdout + proc.stderr
