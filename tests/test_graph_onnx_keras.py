"""ONNX export of the Keras graph importer's models (tests/graph_models.py: every model of the
Why section of issue #13 and each merge / concatenation with and without masks) end to end:
Keras -> from_keras(graphs=True) -> ONNX, onnxruntime within 1e-5 of Keras on every output, on
the builders' inputs (padded where the model masks); int8 within the int8 bound; and
`validate` on generated inputs for a representative subset (it runs Keras once more).
"""

from __future__ import annotations

import graph_models
import numpy as np
import pytest
from test_graph_onnx import _keras_outputs, _run

from edgegru import ir
from edgegru.keras_import import from_keras
from edgegru.onnx_export import to_onnx
from edgegru.validate import FP32_TOLERANCE, INT8_TOLERANCE, validate

#: validate() on these (the others are covered by the direct comparison).
VALIDATED = {
    "seq2seq",
    "seq2seq_decoder_step",
    "rnnoise",
    "nested",
    "shared_layers_masked",
    "bidirectional_lstm_states_masked",
    "merge_maximum_3_all",
    "concat_time_first",
}
# --- the Keras graph importer's models (tests/graph_models.py), end to end ----------------------


def _imported_cases():
    cases = dict(graph_models.MODELS)
    cases["seq2seq_encoder"] = lambda: graph_models.seq2seq_inference(0)[0]
    cases["seq2seq_decoder_step"] = lambda: graph_models.seq2seq_inference(0)[1]
    return cases


IMPORTED = _imported_cases()


@pytest.mark.parametrize("name", list(IMPORTED))
def test_imported_graph_export_matches_keras(name):
    """Keras -> from_keras(graphs=True) -> ONNX: onnxruntime within 1e-5 of Keras on every
    output (the builders' inputs are padded where the model masks), int8 within the int8 bound,
    and `validate` passes on the graph's generated inputs."""
    model, inputs = IMPORTED[name]()
    m = from_keras(model, graphs=True)
    want = _keras_outputs(model, {i.name: x for i, x in zip(model.inputs, inputs, strict=True)})
    if isinstance(m, ir.Graph):
        feeds = {gi.name: x for gi, x in zip(m.inputs, inputs, strict=True)}
    else:  # a chain: the chain export's one input
        feeds = {"tokens" if m.input.kind == ir.TOKENS else "features": inputs[0]}
    feeds = {k: v.astype(np.int64) if v.dtype.kind == "i" else v for k, v in feeds.items()}
    got = _run(to_onnx(m), feeds)
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a.shape == b.shape, (k, a.shape, b.shape)
        np.testing.assert_allclose(a, b, atol=FP32_TOLERANCE, rtol=0, err_msg=f"output {k}")
    for a, b in zip(_run(to_onnx(m, quantize="int8"), feeds), want, strict=True):
        assert float(np.max(np.abs(a - b))) <= INT8_TOLERANCE
    if isinstance(m, ir.Graph) and name in VALIDATED:
        report = validate(model, None, ir_model=m, batch=3, seq_len=5)
        assert report.ok, f"{name}\n{report}"
