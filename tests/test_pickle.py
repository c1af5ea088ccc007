"""A model travels (issue #10, item 14): Model and Stream pickle and copy, and the copy computes
bit for bit what the original computes (docs/distributed.md, docs/streaming.md)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from ir_models import CASES, build, build_more, inputs, masked_inputs

import edgegru
from edgegru import format as fmt
from edgegru.runtime import KERNEL_SETS

KERNELS = edgegru.available_kernels()


def _roundtrip(obj, how: str):
    if how == "pickle":
        return pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    if how == "pickle0":  # the oldest protocol: nothing depends on protocol-5 buffers
        return pickle.loads(pickle.dumps(obj, protocol=0))
    return copy.deepcopy(obj)


@pytest.mark.parametrize("how", ["pickle", "pickle0", "deepcopy"])
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("case_name", list(CASES))
def test_model_roundtrip_predicts_bit_identically(case_name, kernels, how):
    model = build(case_name)
    em = edgegru.load(fmt.write(model), kernels=kernels)
    back = _roundtrip(em, how)
    assert back is not em and back._rt is not em._rt
    assert back.kernels == em.kernels == kernels
    assert back.pack_bytes == em.pack_bytes and back.fold_bytes == em.fold_bytes
    x = inputs(model, 3, 9, seed=5)
    np.testing.assert_array_equal(back.predict(x), em.predict(x))


@pytest.mark.parametrize(
    "opts",
    [
        dict(fold_embedding=True),
        dict(fold_embedding=True, pack=False),
        dict(pack=True, kernels="ref"),
        dict(pack=False),
        dict(quantize="int8"),
        dict(quantize="int8", fold_embedding=True),
    ],
    ids=str,
)
def test_load_options_travel(opts):
    """fold_embedding, pack and the kernel set are part of the pickle: the copy spends the same
    memory and gives the same bits (folding and packing change the order of float sums, so
    dropping an option would show as a difference at some input)."""
    opts = dict(opts)
    quantize = opts.pop("quantize", None)
    model = build("tokens_gru_sigmoid_reset_after")
    em = edgegru.load(fmt.write(model, quantize=quantize), **opts)
    back = pickle.loads(pickle.dumps(em))
    assert (back.pack_bytes, back.fold_bytes, back.kernels) == (
        em.pack_bytes,
        em.fold_bytes,
        em.kernels,
    )
    assert (back.pack_bytes > 0) == opts.get("pack", em.kernels != "ref")
    # The default folds this small model with a SIMD set: its table (vocab x 3H floats) is well
    # within FOLD_AUTO_RATIO times the file (edgegru.load's docstring).
    blob = fmt.write(model, quantize=quantize)
    table = model.input.dim * 3 * model.layers[1].units * 4
    auto = em.kernels != "ref" and table <= edgegru.runtime.FOLD_AUTO_RATIO * len(blob)
    assert (back.fold_bytes > 0) == opts.get("fold_embedding", auto)
    x = inputs(model, 4, 11, seed=2)
    np.testing.assert_array_equal(back.predict(x), em.predict(x))


def test_pickle_keeps_path_and_metadata_and_validates_again(tmp_path):
    model = build("features_gru_softmax_reset_after")
    blob = fmt.write(model)
    p = tmp_path / "m.egru"
    p.write_bytes(blob)
    em = edgegru.load(p)
    back = pickle.loads(pickle.dumps(em))
    assert back.path == str(p) and back.metadata == em.metadata
    assert repr(back) == repr(em) and back.layers() == em.layers()
    # The pickle holds the file bytes: the file is not read again (it may be gone) ...
    p.unlink()
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(em)).predict(inputs(model, 1, 3)),
        em.predict(inputs(model, 1, 3)),
    )
    # ... and they are parsed and validated again: corrupt bytes are a FormatError.
    reconstruct, (data, path, opts) = em.__reduce__()
    assert data == blob
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0x40
    with pytest.raises(edgegru.FormatError):
        reconstruct(bytes(bad), path, opts)


def test_a_missing_explicit_kernel_set_is_a_clear_error():
    """Unpickling where the pickled kernel set does not exist: an explicit choice is an
    UnsupportedError naming it and what is available; a set "auto" chose runs as "auto" here."""
    missing = [k for k in KERNEL_SETS if k != "auto" and k not in KERNELS]
    assert missing  # no build has both the x86 and the Arm sets
    em = edgegru.load(fmt.write(build("stacked_gru_linear")), kernels="ref")
    reconstruct, (data, path, opts) = em.__reduce__()
    assert opts["kernels"] == "ref" and opts["explicit_kernels"]
    with pytest.raises(edgegru.UnsupportedError) as info:
        reconstruct(data, path, {**opts, "kernels": missing[0]})
    message = str(info.value)
    assert f"kernel set {missing[0]!r}" in message and "not available" in message
    assert f"available: {', '.join(KERNELS)}" in message
    auto = reconstruct(data, path, {**opts, "kernels": missing[0], "explicit_kernels": False})
    assert auto.kernels == edgegru.load(data, kernels="auto").kernels
    with pytest.raises(edgegru.UnsupportedError, match="incompatible edgegru version"):
        reconstruct(data, path, {**opts, "version": 99})


def test_auto_kernels_travel_as_the_set_auto_chose(monkeypatch):
    """A model loaded with "auto" pickles the set auto chose, so a worker whose
    $EDGEGRU_KERNELS says otherwise still computes the same bits."""
    model = build("tokens_gru_sigmoid_reset_after")
    em = edgegru.load(fmt.write(model))
    monkeypatch.setenv("EDGEGRU_KERNELS", "ref")
    back = pickle.loads(pickle.dumps(em))
    assert back.kernels == em.kernels
    x = inputs(model, 2, 6)
    np.testing.assert_array_equal(back.predict(x), em.predict(x))


def _fed(stream, x, steps):
    return [stream.step(x[:, t]) for t in steps]


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
@pytest.mark.parametrize(
    ("family", "name"),
    [
        ("base", "features_gru_softmax_reset_after"),
        ("base", "tokens_stacked_sequence_output"),
        ("more", "lstm"),
        ("more", "simple_rnn"),
        ("more", "mask_zero_gru_sequences"),
        ("more", "masking_features"),
    ],
)
def test_stream_continues_identically_after_pickling(family, name, how):
    """A stream pickled mid-sequence (masked steps included) continues exactly as the original:
    same outputs, state, step count and batch."""
    model = build(name) if family == "base" else build_more(name)
    em = edgegru.load(fmt.write(model))
    make = masked_inputs if family == "more" else inputs
    x = make(model, 3, 12, seed=7)
    s = em.stream(batch=3)
    _fed(s, x, range(5))
    other = copy.copy(s) if how == "copy" else _roundtrip(s, how)
    assert (other.steps, other.batch) == (s.steps, s.batch) == (5, 3)
    assert (other._model is em) == (how == "copy")
    for a, b in zip(other.state, s.state, strict=True):
        np.testing.assert_array_equal(a, b)
    want, got = _fed(s, x, range(5, 12)), _fed(other, x, range(5, 12))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert other.steps == s.steps == 12
    # The copy is independent: stepping it did not move the original, nor the reverse.
    other.reset()
    assert s.steps == 12 and other.steps == 0


def test_stream_pickle_keeps_the_seen_flags():
    """Each row's "had a valid step" flag is part of the pickled state: a fully masked step
    right after unpickling gives the carried output, as the original does, not the zero that
    a stream restored through `state =` alone gives (set_state acts as Keras' initial_state)."""
    model = build_more("mask_zero_gru_sequences")  # Embedding(mask_zero) -> GRU(sequences)
    em = edgegru.load(fmt.write(model))
    rng = np.random.default_rng(0)
    ids = rng.integers(1, model.input.dim, size=(2, 4)).astype(np.int32)
    s = em.stream(batch=2)
    _fed(s, ids, range(4))
    back = pickle.loads(pickle.dumps(s))
    state_only = em.stream(batch=2)
    state_only.state = s.state
    masked = np.zeros(2, np.int32)
    want = s.step(masked)  # the masked step carries the last valid GRU output into the Dense
    np.testing.assert_array_equal(back.step(masked), want)
    # Without the flags the GRU would give zero there, so the head would give its bias.
    bias = np.asarray(model.layers[-1].bias, dtype=np.float32)
    np.testing.assert_allclose(state_only.step(masked), np.tile(bias, (2, 1)), rtol=0, atol=1e-7)
    assert np.all(np.abs(want - bias) > 1e-4)


def test_fresh_and_reset_streams_pickle():
    model = build("tokens_gru_sigmoid_reset_after")
    em = edgegru.load(fmt.write(model))
    ids = inputs(model, 1, 3).astype(np.int32)
    s = em.stream()
    back = pickle.loads(pickle.dumps(s))
    assert back.steps == 0 and back.batch == 1
    np.testing.assert_array_equal(back.step(ids[:, 0]), s.step(ids[:, 0]))
    s.reset()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(s)).step(ids[:, 1]), s.step(ids[:, 1]))


def test_a_tampered_stream_pickle_is_an_input_error():
    em = edgegru.load(fmt.write(build_more("lstm")))
    s = em.stream(batch=2)
    reconstruct, (model, batch, saved) = s.__reduce__()
    with pytest.raises(edgegru.InputError, match="contains NaN"):
        bad = tuple(a.copy() for a in saved["state"])
        bad[0][0, 0, 0] = np.nan
        reconstruct(model, batch, {**saved, "state": bad})
    with pytest.raises(edgegru.InputError, match="must have shape"):
        reconstruct(model, 3, saved)
    with pytest.raises(edgegru.InputError, match="step count"):
        reconstruct(model, batch, {**saved, "steps": -1})
    with pytest.raises(edgegru.UnsupportedError, match="incompatible"):
        reconstruct(model, batch, {**saved, "version": 0})


def test_stream_over_a_folded_int8_model_pickles():
    """The stream's model travels with its options: a folded int8 model's stream continues
    bit-identically after a round trip."""
    model = build_more("mask_zero_gru_sequences")
    em = edgegru.load(fmt.write(model, quantize="int8"), fold_embedding=True)
    x = masked_inputs(model, 5, 8, seed=2)
    s = em.stream(batch=5)
    _fed(s, x, range(3))
    back = pickle.loads(pickle.dumps(s))
    assert back._model.fold_bytes == em.fold_bytes > 0
    for a, b in zip(_fed(back, x, range(3, 8)), _fed(s, x, range(3, 8)), strict=True):
        np.testing.assert_array_equal(a, b)
