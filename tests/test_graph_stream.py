"""Streaming over graph models (issue #13, point 3): Model.stream() of a graph.

For the graph models of tests/graph_models.py that can stream, feeding the inputs step by step
gives, at every step, exactly (bit for bit) what predict gives on the whole sequences (sequence
outputs) or on the steps fed so far (vector outputs), and Keras' predict within 1e-5; masks
included (`conditioned`: recurrent layers started from Dense layers of a vector input). Per-layer
states get / set, reset, a decoder stream started from an encoder's state equal to the whole
encoder-decoder model, and graphs that cannot stream refused naming the node.
"""

from __future__ import annotations

import graph_models as gm
import numpy as np
import pytest

import edgegru
from edgegru.errors import InputError, UnsupportedError

# Keras warns that a nested model drops masks, while they flow at run time (test_graph_keras).
pytestmark = pytest.mark.filterwarnings("ignore:Layer .* was passed an input with a mask")
TOL = 1e-5
STREAMING = (
    "residual_masked",
    "two_branches",
    "tokens_and_features",
    "shared_layers_masked",
    "rnnoise",
    "nested_masked",
    "two_branches_masked",
    "merges_maximum_3",
    "merges_multiply_3",
    "merges_subtract",
    "concatenations_features",
    "conditioned",
)


def _convert(model, tmp_path, name, quantize=None) -> edgegru.Model:
    path = tmp_path / f"{name}{'_' + quantize if quantize else ''}.egru"
    edgegru.convert(model, path, quantize=quantize)
    return edgegru.load(path)


def _as_list(y) -> list:
    return list(y) if isinstance(y, (list, tuple)) else [y]


def _step_inputs(m: edgegru.Model, xs: list, t: int) -> list:
    return [x[:, t] if spec.kind != "vector" else x for spec, x in zip(m.inputs, xs, strict=True)]


def _prefix(m: edgegru.Model, xs: list, t: int) -> list:
    return [
        x[:, : t + 1] if spec.kind != "vector" else x for spec, x in zip(m.inputs, xs, strict=True)
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """name -> (keras model, inputs, edgegru model)."""
    tmp = tmp_path_factory.mktemp("graph_stream")
    out = {}
    for name in STREAMING:
        model, xs = gm.build(name)
        out[name] = (model, xs, _convert(model, tmp, name))
    return out


def _stream_all(m: edgegru.Model, xs: list, s=None) -> list:
    """Every step's outputs, a list (per step) of lists (per output)."""
    s = s if s is not None else m.stream(batch=xs[0].shape[0])
    steps = next(x.shape[1] for spec, x in zip(m.inputs, xs, strict=True) if spec.kind != "vector")
    return [_as_list(s.step(_step_inputs(m, xs, t))) for t in range(steps)]


@pytest.mark.parametrize("name", STREAMING)
def test_steps_equal_predict_bit_for_bit(built, name):
    model, xs, m = built[name]
    whole = _as_list(m.predict(xs))
    keras_out = _as_list(model.predict(xs if len(xs) > 1 else xs[0], verbose=0))
    steps = _stream_all(m, xs)
    T = len(steps)
    for t, outs in enumerate(steps):
        prefix = _as_list(m.predict(_prefix(m, xs, t))) if t in (0, T // 2, T - 1) else None
        for j, spec in enumerate(m.outputs):
            if spec.kind == "sequence":
                np.testing.assert_array_equal(outs[j], whole[j][:, t])
                np.testing.assert_allclose(outs[j], keras_out[j][:, t], rtol=0, atol=TOL)
            elif prefix is not None:
                np.testing.assert_array_equal(outs[j], prefix[j])
    for j, spec in enumerate(m.outputs):  # the last step's vectors: the whole run's
        if spec.kind == "vector":
            np.testing.assert_array_equal(steps[-1][j], whole[j])
            np.testing.assert_allclose(steps[-1][j], keras_out[j], rtol=0, atol=TOL)


def test_int8_graph_streams_as_predict(built, tmp_path):
    model, xs, _ = built["rnnoise"]
    m = _convert(model, tmp_path, "rnnoise", quantize="int8")
    whole = m.predict(xs)
    steps = _stream_all(m, xs)
    for t, (gains, vad) in enumerate(steps):
        np.testing.assert_array_equal(gains, whole[0][:, t])
        np.testing.assert_array_equal(vad, whole[1][:, t])


def test_a_large_batch_streams_as_predict(built):
    """20 rows: predict runs them in blocks of 16 rows, a stream all at once; the same bits."""
    _, xs, m = built["tokens_and_features"]
    big = [np.concatenate([x] * 5, axis=0) for x in xs]
    rng = np.random.default_rng(5)
    big[1] = big[1] + rng.standard_normal(big[1].shape).astype(np.float32)
    np.testing.assert_array_equal(_stream_all(m, big)[-1][0], m.predict(big))


def test_inputs_as_dict_and_shapes(built):
    _, xs, m = built["tokens_and_features"]
    ids, feats, side = xs
    a = m.stream(batch=ids.shape[0])
    b = m.stream(batch=ids.shape[0])
    for t in range(ids.shape[1]):
        ya = a.step([ids[:, t], feats[:, t], side])
        yb = b.step({"side": side, "feats": feats[:, t : t + 1], "ids": ids[:, t : t + 1]})
        np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(ya, m.predict(xs))
    assert a.steps == ids.shape[1]
    a.reset()
    assert a.steps == 0
    np.testing.assert_array_equal(_stream_all(m, xs, a)[-1][0], m.predict(xs))


def test_bad_steps_refused_and_nothing_changes(built):
    _, xs, m = built["tokens_and_features"]
    ids, feats, side = xs
    B = ids.shape[0]
    s, ref = m.stream(batch=B), m.stream(batch=B)
    s.step([ids[:, 0], feats[:, 0], side])
    ref.step([ids[:, 0], feats[:, 0], side])
    bad_ids = ids[:, 1].copy()
    bad_ids[2] = 12
    nan = feats[:, 1].copy()
    nan[1, 2] = np.nan
    cases = [
        ([bad_ids, feats[:, 1], side], "'ids': token id 12 at row 2 is out of range"),
        ([ids[:, 1], nan, side], "'feats' contains NaN or infinity (row 1)"),
        ([ids[:, 1], feats[:, 1, :2], side], "'feats'"),
        ([ids[:1, 1], feats[:1, 1], side[:1]], "batch 1, this stream has 4"),
        ([ids[:, 1], feats[:, 1]], "takes 3 inputs"),
        ([ids[:, 1], feats[:, 1], None], "['side'] left out"),
        ({"ids": ids[:, 1], "side": side}, "missing: ['feats']"),
        ([ids[:, 1].astype(np.float32), feats[:, 1], side], "integer"),
        ([ids[:, :2], feats[:, 1], side], "one step of token ids"),
    ]
    for inputs, message in cases:
        with pytest.raises(InputError) as err:
            s.step(inputs)
        assert message in str(err.value), str(err.value)
    assert s.steps == 1
    for t in range(1, ids.shape[1]):  # unchanged: continues as the untouched stream
        np.testing.assert_array_equal(
            s.step([ids[:, t], feats[:, t], side]), ref.step([ids[:, t], feats[:, t], side])
        )


def test_the_c_session_binding_checks_buffers(built):
    """The Cython layer under GraphStream refuses arrays the C step would read past (wrong
    dtype, size, layout), whatever its caller checked."""
    _, xs, m = built["tokens_and_features"]
    ids, feats, side = xs
    session = m.stream(batch=4)._session
    good = [ids[:, 0].copy(), np.ascontiguousarray(feats[:, 0]), side]
    session.step(good)
    for k, bad in (
        (0, ids[:2, 0].copy()),
        (0, ids[:, 0].astype(np.int64)),
        (1, np.ascontiguousarray(feats[:, 0, :2])),
        (1, np.asfortranarray(np.ones((4, 3), np.float32))[:, ::-1]),
        (2, side.astype(np.float64)),
        (2, [[0.0, 0.0]] * 4),
    ):
        args = list(good)
        args[k] = bad
        with pytest.raises(edgegru.EdgeGRUError, match=f"input {k}: expected a C-contiguous"):
            session.step(args)
    assert session.steps == 1


def test_states_by_name_round_trip(built):
    _, xs, m = built["shared_layers_masked"]
    s = m.stream(batch=xs[0].shape[0])
    # the shared GRU applied twice has two states; the names say which application
    assert s.state_names == ["shared_gru@0", "shared_gru@1"]
    _, xs, m = built["two_branches"]
    B, T = xs[0].shape[:2]
    s = m.stream(batch=B)
    assert s.state_names == ["branch_gru", "head"]
    for t in range(3):
        s.step(xs[0][:, t])
    saved = s.state
    assert set(saved) == {"branch_gru", "head"} and saved["head"].shape == (B, 3)
    other = m.stream(batch=B)
    other.state = saved
    for name in saved:
        np.testing.assert_array_equal(other.get_state(name), saved[name])
    for t in range(3, T):  # no masks: the copy continues exactly as the original
        np.testing.assert_array_equal(other.step(xs[0][:, t]), s.step(xs[0][:, t]))
    with pytest.raises(InputError, match="no recurrent layer 'nope'"):
        s.set_state("nope", saved["head"])
    with pytest.raises(InputError, match=r"shape \(4, 3\)"):
        s.set_state("head", saved["head"][:, :2])
    with pytest.raises(InputError, match="NaN"):
        s.set_state("head", np.full((B, 3), np.nan))
    with pytest.raises(InputError, match="not a recurrent node"):
        s.get_state(1)
    np.testing.assert_array_equal(s.get_state(3), s.get_state("head"))  # by node index


def test_lstm_state_is_h_and_c(tmp_path):
    keras = gm._keras()
    L = keras.layers
    x = keras.Input((gm.T, 3), name="x")
    h0, c0 = keras.Input((4,), name="h0"), keras.Input((4,), name="c0")
    y, h, c = L.LSTM(4, return_sequences=True, return_state=True, name="lstm")(
        L.Masking(name="mask")(x), initial_state=[h0, c0]
    )
    model = gm.randomize(keras.Model([x, h0, c0], [y, h, c]), 3)
    rng = np.random.default_rng(3)
    xs = [gm._features(rng, gm.T, 3, True), gm._vector(rng, 4), gm._vector(rng, 4)]
    m = _convert(model, tmp_path, "lstm")
    keras_out = model.predict(xs, verbose=0)
    whole = m.predict(xs)
    s = m.stream(batch=gm.BATCH)
    for t in range(gm.T):  # h0, c0: read at the first step only
        y_t, h_t, c_t = s.step([xs[0][:, t], xs[1], xs[2]] if t == 0 else {"x": xs[0][:, t]})
        np.testing.assert_array_equal(y_t, whole[0][:, t])
        np.testing.assert_allclose(y_t, keras_out[0][:, t], rtol=0, atol=TOL)
    np.testing.assert_array_equal(h_t, whole[1])
    np.testing.assert_array_equal(c_t, whole[2])
    np.testing.assert_allclose(c_t, keras_out[2], rtol=0, atol=TOL)
    h, c = s.state["lstm"]
    np.testing.assert_array_equal(h, whole[1])  # the state after the last step: return_state's
    np.testing.assert_array_equal(c, whole[2])
    # set_state instead of the initial-state inputs: the same run
    s.reset()
    s.state = {"lstm": (xs[1], xs[2])}
    for t in range(gm.T):
        y_t = s.step({"x": xs[0][:, t]})[0]
        np.testing.assert_array_equal(y_t, whole[0][:, t])
    with pytest.raises(InputError, match=r"\(h, c\)"):
        s.set_state("lstm", xs[1])


def _seq2seq_unmasked(seed=0):
    """gm._seq2seq's models without mask_zero."""
    keras = gm._keras()
    L = keras.layers
    enc_emb, dec_emb = L.Embedding(gm.ENC_VOCAB, 4, name="enc_emb"), L.Embedding(gm.DEC_VOCAB, 4)
    encoder = L.GRU(gm.UNITS, return_state=True, name="encoder")
    decoder = L.GRU(gm.UNITS, return_sequences=True, return_state=True, name="decoder")
    probs = L.Dense(gm.DEC_VOCAB, activation="softmax", name="probs")
    src = keras.Input((gm.T,), dtype="int32", name="source")
    tgt = keras.Input((gm.T - 1,), dtype="int32", name="target")
    _, state = encoder(enc_emb(src))
    seq, _ = decoder(dec_emb(tgt), initial_state=state)
    train = gm.randomize(keras.Model([src, tgt], probs(seq)), seed)
    step_id = keras.Input((1,), dtype="int32", name="step_id")
    state_in = keras.Input((gm.UNITS,), name="state_in")
    step_seq, new_state = decoder(dec_emb(step_id), initial_state=state_in)
    step = keras.Model([step_id, state_in], [probs(step_seq), new_state])
    rng = np.random.default_rng(seed)
    src_ids = rng.integers(0, gm.ENC_VOCAB, (gm.BATCH, gm.T)).astype(np.int32)
    tgt_ids = rng.integers(0, gm.DEC_VOCAB, (gm.BATCH, gm.T - 1)).astype(np.int32)
    return train, keras.Model(src, state), step, [src_ids, tgt_ids]


def _seq2seq_masked(seed=0):
    """gm._seq2seq: mask_zero Embeddings, padded rows."""
    (train, train_in), (encoder, _), (step, _) = gm._seq2seq(seed)
    return train, encoder, step, train_in


@pytest.mark.parametrize("builder", [_seq2seq_unmasked, _seq2seq_masked])
def test_decoder_started_from_encoder_state(tmp_path, builder):
    """The encoder model's final state, set as the decoder-step stream's state, then the target
    ids fed step by step: the probabilities of the whole encoder-decoder model, bit for bit (and
    Keras' within 1e-5); the state input at the first step instead of set_state: the same."""
    train, encoder, step, (src, tgt) = builder()
    m_train = _convert(train, tmp_path, "train")
    m_enc = _convert(encoder, tmp_path, "encoder")
    m_step = _convert(step, tmp_path, "step")
    with pytest.raises(UnsupportedError, match=r"node \d+ \(decoder, GRU\) takes its initial"):
        m_train.stream()
    whole = m_train.predict([src, tgt])
    keras_out = train.predict([src, tgt], verbose=0)
    state = m_enc.predict(src)
    a, b = m_step.stream(batch=gm.BATCH), m_step.stream(batch=gm.BATCH)
    a.set_state("decoder", state)
    assert a.state_names == ["decoder"]
    for t in range(tgt.shape[1]):
        pa, ha = a.step({"step_id": tgt[:, t]})
        pb, hb = b.step({"step_id": tgt[:, t], "state_in": state} if t == 0 else [tgt[:, t], None])
        np.testing.assert_array_equal(pa, whole[:, t])
        np.testing.assert_array_equal(pb, whole[:, t])
        np.testing.assert_array_equal(ha, hb)
        np.testing.assert_array_equal(a.get_state("decoder"), ha)
        np.testing.assert_allclose(pa, keras_out[:, t], rtol=0, atol=TOL)


@pytest.mark.parametrize(
    "name, node",
    [
        ("autoencoder", "repeat, RepeatVector"),
        ("concatenations_time", "cat_none, Concatenate"),
        ("gru_states", "gru2, GRU"),
        ("bidirectional_lstm_states", "bi, LSTM"),
        ("lstm_states", "lstm2, LSTM"),
    ],
)
def test_graphs_that_cannot_stream(tmp_path, name, node):
    model, xs = gm.build(name)
    m = _convert(model, tmp_path, name)
    with pytest.raises(UnsupportedError) as err:
        m.stream()
    assert "this graph cannot stream: node " in str(err.value)
    assert f"({node})" in str(err.value), str(err.value)
    m.predict(xs)  # still runs whole sequences
