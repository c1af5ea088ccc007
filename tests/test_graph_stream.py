"""Streaming over graph models (issue #13, point 3): Model.stream() of a graph.

For the graph models of tests/graph_models.py that can stream, feeding the inputs step by step
gives, at every step, exactly (bit for bit) what predict gives on the whole sequences (sequence
outputs) or on the steps fed so far (vector outputs), and Keras' predict within 1e-5; masks
included (`conditioned`: recurrent layers started from Dense layers of a vector input). Per-layer
states get / set, reset, a decoder stream started from an encoder's state equal to the whole
encoder-decoder model, graphs that cannot stream refused naming the node, and a pickled (or
copied) stream continuing with the bits of the uninterrupted one.
"""

from __future__ import annotations

import copy
import pickle

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


# ---------------------------------------------------------------------------------------------
# Pickling (docs/streaming.md, "Pickling"): a graph stream continues bit for bit


def _continue(m: edgegru.Model, xs: list, s, start: int) -> list:
    """The outputs of steps start .. T-1 fed to stream s."""
    T = next(x.shape[1] for spec, x in zip(m.inputs, xs, strict=True) if spec.kind != "vector")
    return [_as_list(s.step(_step_inputs(m, xs, t))) for t in range(start, T)]


def _assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for outs_a, outs_b in zip(a, b, strict=True):
        for ya, yb in zip(outs_a, outs_b, strict=True):
            assert np.array_equal(ya, yb)


PICKLED = ("residual_masked", "tokens_and_features", "rnnoise", "shared_layers_masked")


@pytest.mark.parametrize("name", PICKLED)
def test_graph_stream_pickles_and_continues(built, name):
    """k steps, then pickle.loads(pickle.dumps(s)), copy.deepcopy(s) and copy.copy(s) each
    continue with exactly the bits of the uninterrupted stream, for k at the start, inside and
    before the last step."""
    _, xs, m = built[name]
    whole = _stream_all(m, xs)
    T = len(whole)
    for k in (0, 2, T - 1):
        s = m.stream(batch=gm.BATCH)
        for t in range(k):
            s.step(_step_inputs(m, xs, t))
        restored = pickle.loads(pickle.dumps(s))
        deep, shallow = copy.deepcopy(s), copy.copy(s)
        assert restored.steps == deep.steps == shallow.steps == k
        assert restored.state_names == s.state_names
        assert deep.model is not m and shallow.model is m
        for other in (restored, deep, shallow, s):
            _assert_same(_continue(m, xs, other, k), whole[k:])


def test_graph_stream_pickle_keeps_the_seen_flags(tmp_path):
    """On masked input the pickle is the same stream, unlike a new stream given s.state (which
    acts as an initial state: zero at a masked step until the row's next valid step): a GRU's
    sequence output, a graph output, at row 0's padded last steps."""
    keras = gm._keras()
    L = keras.layers
    x, side = keras.Input((gm.T, 3), name="x"), keras.Input((gm.T, 2), name="side")
    y = L.GRU(4, return_sequences=True, name="gru")(L.Masking(name="mask")(x))
    model = gm.randomize(keras.Model([x, side], [y, L.Dense(2, name="d")(side)]), 4)
    rng = np.random.default_rng(4)
    xs = [gm._features(rng, gm.T, 3, True), gm._features(rng, gm.T, 2)]
    m = _convert(model, tmp_path, "masked_gru")
    whole = _stream_all(m, xs)
    k = gm.T - 2  # row 0's padding starts here
    s = m.stream(batch=gm.BATCH)
    for t in range(k):
        s.step(_step_inputs(m, xs, t))
    restored = pickle.loads(pickle.dumps(s))
    other = m.stream(batch=gm.BATCH)
    other.state = s.state
    _assert_same(_continue(m, xs, restored, k), whole[k:])
    rest = _continue(m, xs, other, k)
    assert not np.array_equal(rest[0][0][0], whole[k][0][0])  # row 0: zeros, not the state
    assert not rest[0][0][0].any() and whole[k][0][0].any()


def test_graph_stream_pickle_keeps_which_nodes_read_initial_states(tmp_path):
    """The decoder-step model (a state input read at the first step): pickled before its first
    step, a fresh stream still reads the state input; one whose state was set does not."""
    _, encoder, step, (src, tgt) = _seq2seq_unmasked()
    m_enc = _convert(encoder, tmp_path, "encoder")
    m_step = _convert(step, tmp_path, "step")
    state = m_enc.predict(src)
    other_state = np.zeros_like(state)
    fresh, set_ = m_step.stream(batch=gm.BATCH), m_step.stream(batch=gm.BATCH)
    set_.set_state("decoder", state)
    fresh2, set2 = pickle.loads(pickle.dumps(fresh)), pickle.loads(pickle.dumps(set_))
    first = {"step_id": tgt[:, 0], "state_in": state}
    ignored = {"step_id": tgt[:, 0], "state_in": other_state}  # set_ ignores state_in
    want = fresh.step(first)
    for a, b in zip(want, set_.step(ignored), strict=True):
        assert np.array_equal(a, b)
    for got in (fresh2.step(first), set2.step(ignored)):
        for a, b in zip(want, got, strict=True):
            assert np.array_equal(a, b)
    for t in range(1, tgt.shape[1]):
        for a, b in zip(fresh.step([tgt[:, t], None]), set2.step([tgt[:, t], None]), strict=True):
            assert np.array_equal(a, b)


def test_int8_graph_stream_pickles_and_continues(built, tmp_path):
    model, xs, _ = built["rnnoise"]
    m = _convert(model, tmp_path, "rnnoise", quantize="int8")
    whole = _stream_all(m, xs)
    s = m.stream(batch=gm.BATCH)
    for t in range(3):
        s.step(_step_inputs(m, xs, t))
    for other in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s), s):
        _assert_same(_continue(m, xs, other, 3), whole[3:])


def test_corrupted_graph_stream_pickles_refused(built):
    """A pickled graph stream whose states, flags or step count do not fit its model (edited,
    from another model, another batch) is an InputError; another format version an
    UnsupportedError."""
    _, xs, m = built["rnnoise"]
    s = m.stream(batch=gm.BATCH)
    for t in range(2):
        s.step(_step_inputs(m, xs, t))
    fn, (model, batch, saved) = s.__reduce__()
    name = s.state_names[0]

    def edited(**changes):
        d = copy.deepcopy(saved)
        for key, fix in changes.items():
            d[key] = fix(d[key])
        return d

    bad = [
        edited(state=lambda st: {**st, name: st[name][:, :-1]}),  # a state's shape
        edited(state=lambda st: {**st, name: np.full_like(st[name], np.nan)}),  # NaN
        edited(state=lambda st: {k: v for k, v in st.items() if k != name}),  # a node missing
        edited(state=lambda st: {**st, "nope": st[name]}),  # an unknown node
        edited(seen=lambda f: {**f, name: f[name][:-1]}),  # flags of another batch
        edited(seen=lambda f: {**f, name: f[name].astype(np.float32)}),  # not booleans
        edited(fresh=lambda f: {**f, name: 2}),  # not a boolean
        edited(steps=lambda _: -1),
        edited(steps=lambda _: 2**64),
        edited(steps=lambda _: True),
        edited(state=lambda _: [1, 2, 3]),
    ]
    for d in bad:
        with pytest.raises(InputError):
            fn(model, batch, d)
    with pytest.raises(InputError):  # another batch
        fn(model, batch + 1, saved)
    m2 = built["tokens_and_features"][2]
    with pytest.raises(InputError):  # another model's states
        fn(m2, batch, saved)
    with pytest.raises(UnsupportedError, match="incompatible edgegru version"):
        fn(model, batch, {**saved, "version": 2})
    _assert_same(_continue(m, xs, fn(model, batch, saved), 2), _stream_all(m, xs)[2:])
