"""Keras Functional graph models shared by the tests (issue #13): importer, runtime, ONNX.

Every builder returns ``(model, inputs)``: a built, uncompiled Keras 3 model whose weights are
redrawn by `keras_models.randomize` (deterministic per seed), and sample inputs, a list in
``model.inputs`` order (float32 features and vectors, int32 token ids). Inputs of masked models
have padded rows: row 0 padded at the end, row 1 at the start, row 2 not at all and, where a
model has masks, row 3 entirely padding (padding = 0.0 frames for Masking, id 0 for
Embedding(mask_zero=True)).

`MODELS` maps a name to a builder; `build(name)` calls it. The names cover the Why section of
issue #13 at small size, plus each merge / concatenation with and without masks (`merges`,
`concatenations`: one model per kind, one node per masking; `merge` / `concatenate` build a
single node for one masking).

Keras is imported lazily, after tests/conftest.py has set KERAS_BACKEND.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from keras_models import randomize

BATCH = 4
T = 6


def _keras():
    import keras

    return keras


def _pad(x: np.ndarray, masked: bool) -> np.ndarray:
    """Zero the padded steps of rows 0, 1 and 3 (see the module docstring)."""
    x = np.array(x)
    if masked:
        steps = x.shape[1]
        x[0, steps - 2 :] = 0
        x[1, :2] = 0
        x[3, :] = 0
    return x


def _features(rng, steps, width, masked=False, batch=BATCH) -> np.ndarray:
    return _pad(rng.standard_normal((batch, steps, width)).astype(np.float32), masked)


def _tokens(rng, steps, vocab, masked=False, batch=BATCH) -> np.ndarray:
    ids = rng.integers(1, vocab, (batch, steps)).astype(np.int32)
    return _pad(ids, masked)


def _vector(rng, width, batch=BATCH) -> np.ndarray:
    return rng.standard_normal((batch, width)).astype(np.float32)


_ATTENTION = ("Attention", "AdditiveAttention")


def _done(model, inputs, seed):
    """Redraw the weights: `randomize` for every layer but the attention ones, whose scales
    (scalars, or AdditiveAttention's vector) are drawn here ~ N(1, 0.3)."""
    att = [la for la in model.layers if type(la).__name__ in _ATTENTION]
    randomize(SimpleNamespace(layers=[la for la in model.layers if la not in att]), seed)
    rng = np.random.default_rng(seed + 7919)
    for la in att:
        la.set_weights([rng.normal(1.0, 0.3, w.shape).astype(w.dtype) for w in la.get_weights()])
    return model, inputs


# ---------------------------------------------------------------------------------------------
# The models of issue #13's Why section


def residual_gru(seed=0, masked=False):
    """Add of a GRU(return_sequences)'s output and its input, then a GRU."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((T, 4), name="x")
    h = L.Masking(name="mask")(x) if masked else x
    g = L.GRU(4, return_sequences=True, name="g1")(h)
    r = L.Add(name="residual")([g, h])
    y = L.GRU(3, name="g2")(r)
    rng = np.random.default_rng(seed)
    return _done(keras.Model(x, y, name="residual"), [_features(rng, T, 4, masked)], seed)


def two_branches(seed=0, masked=False):
    """Two branches over one input (a GRU and a Dense) merged by Concatenate, then a GRU."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((T, 3), name="x")
    h = L.Masking(name="mask")(x) if masked else x
    a = L.GRU(4, return_sequences=True, name="branch_gru")(h)
    b = L.Dense(2, activation="tanh", name="branch_dense")(h)
    c = L.Concatenate(name="cat")([a, b])
    y = L.GRU(3, name="head")(c)
    rng = np.random.default_rng(seed)
    return _done(keras.Model(x, y, name="branches"), [_features(rng, T, 3, masked)], seed)


def tokens_and_features(seed=0):
    """A token input (Embedding, mask_zero) and a feature sequence concatenated per step, plus a
    float vector input: GRU over the concatenation, Dense over [GRU state, vector]."""
    keras = _keras()
    L = keras.layers
    ids = keras.Input((T,), dtype="int32", name="ids")
    feats = keras.Input((T, 3), name="feats")
    side = keras.Input((2,), name="side")
    e = L.Embedding(12, 4, mask_zero=True, name="emb")(ids)
    c = L.Concatenate(name="cat")([e, feats])
    g = L.GRU(5, name="gru")(c)
    g2 = L.GRU(3, name="gru_emb")(e)
    v = L.Concatenate(name="cat_vec")([g, g2, side])
    y = L.Dense(2, activation="softmax", name="out")(v)
    rng = np.random.default_rng(seed)
    inputs = [_tokens(rng, T, 12, True), _features(rng, T, 3), _vector(rng, 2)]
    return _done(keras.Model([ids, feats, side], y, name="tokens_features"), inputs, seed)


def shared_layers(seed=0, masked=False):
    """A Dense applied twice in a row and a GRU applied to two inputs, merged by Average."""
    keras = _keras()
    L = keras.layers
    a = keras.Input((T, 3), name="a")
    b = keras.Input((T, 3), name="b")
    d = L.Dense(3, activation="tanh", name="twice")
    g = L.GRU(4, name="shared_gru")
    ha = L.Masking(name="mask_a")(a) if masked else a
    y = L.Average(name="avg")([g(d(d(ha))), g(b)])
    out = L.Dense(2, name="out")(y)
    rng = np.random.default_rng(seed)
    inputs = [_features(rng, T, 3, masked), _features(rng, T, 3)]
    return _done(keras.Model([a, b], out, name="shared"), inputs, seed)


def autoencoder(seed=0):
    """GRU -> RepeatVector -> GRU(return_sequences) -> TimeDistributed(Dense)."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((T, 3), name="x")
    code = L.GRU(4, name="encoder")(x)
    rep = L.RepeatVector(T, name="repeat")(code)
    dec = L.GRU(4, return_sequences=True, name="decoder")(rep)
    y = L.TimeDistributed(L.Dense(3), name="recon")(dec)
    rng = np.random.default_rng(seed)
    return _done(keras.Model(x, y, name="autoencoder"), [_features(rng, T, 3)], seed)


ENC_VOCAB, DEC_VOCAB, UNITS = 11, 9, 6


def _seq2seq_layers():
    L = _keras().layers
    return {
        "enc_emb": L.Embedding(ENC_VOCAB, 4, mask_zero=True, name="enc_emb"),
        "encoder": L.GRU(UNITS, return_state=True, name="encoder"),
        "dec_emb": L.Embedding(DEC_VOCAB, 4, mask_zero=True, name="dec_emb"),
        "decoder": L.GRU(UNITS, return_sequences=True, return_state=True, name="decoder"),
        "probs": L.Dense(DEC_VOCAB, activation="softmax", name="probs"),
    }


def seq2seq(seed=0):
    """The encoder-decoder translation model (training form) and its inference halves.

    Returns (training model, inputs) where the encoder GRU's state is the decoder GRU's
    initial_state (two token inputs, masks on both); the two inference models sharing its
    layers are `seq2seq_inference(seed)`."""
    return _seq2seq(seed)[0]


def seq2seq_inference(seed=0):
    """[(encoder model, inputs), (decoder-step model, inputs)]: the encoder (source ids ->
    state) and one decoder step (one target id + the state input -> probabilities + the new
    state), with the training model's (randomized) layers."""
    return _seq2seq(seed)[1:]


def _seq2seq(seed):
    keras = _keras()
    layers = _seq2seq_layers()
    src = keras.Input((T,), dtype="int32", name="source")
    tgt = keras.Input((T - 1,), dtype="int32", name="target")
    _, state = layers["encoder"](layers["enc_emb"](src))
    seq, _ = layers["decoder"](layers["dec_emb"](tgt), initial_state=state)
    train = keras.Model([src, tgt], layers["probs"](seq), name="seq2seq")
    randomize(train, seed)
    rng = np.random.default_rng(seed)
    train_in = [_tokens(rng, T, ENC_VOCAB, True), _tokens(rng, T - 1, DEC_VOCAB, True)]
    encoder = keras.Model(src, state, name="encoder_model")
    step_id = keras.Input((1,), dtype="int32", name="step_id")
    state_in = keras.Input((UNITS,), name="state_in")
    step_seq, new_state = layers["decoder"](layers["dec_emb"](step_id), initial_state=state_in)
    step = keras.Model([step_id, state_in], [layers["probs"](step_seq), new_state], name="step")
    step_in = [rng.integers(1, DEC_VOCAB, (BATCH, 1)).astype(np.int32), _vector(rng, UNITS)]
    return (train, train_in), (encoder, [train_in[0]]), (step, step_in)


def seq2seq_lstm(seed=0):
    """An LSTM encoder-decoder sharing one Embedding (mask_zero) between source and target: the
    encoder's [h, c] is the decoder's initial_state; T is dynamic."""
    keras = _keras()
    L = keras.layers
    src = keras.Input((None,), dtype="int32", name="source")
    tgt = keras.Input((None,), dtype="int32", name="target")
    emb = L.Embedding(ENC_VOCAB, 4, mask_zero=True, name="shared_emb")
    _, h, c = L.LSTM(5, return_state=True, name="encoder")(emb(src))
    y = L.LSTM(5, return_sequences=True, name="decoder")(emb(tgt), initial_state=[h, c])
    out = L.TimeDistributed(L.Dense(ENC_VOCAB, activation="softmax"), name="probs")(y)
    rng = np.random.default_rng(seed)
    inputs = [_tokens(rng, T, ENC_VOCAB, True), _tokens(rng, T - 2, ENC_VOCAB, True)]
    return _done(keras.Model([src, tgt], out, name="seq2seq_lstm"), inputs, seed)


def rnnoise(seed=0, steps=T):
    """RNNoise-style: three GRUs whose outputs are concatenated with the input features and
    each other; two outputs (per-band gains, a VAD probability)."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((None, 6), name="features")
    d = L.Dense(4, activation="tanh", name="input_dense")(x)
    vad_gru = L.GRU(4, return_sequences=True, name="vad_gru")(d)
    vad = L.Dense(1, activation="sigmoid", name="vad")(vad_gru)
    noise_gru = L.GRU(5, return_sequences=True, name="noise_gru")(
        L.Concatenate(name="noise_in")([d, vad_gru, x])
    )
    denoise_gru = L.GRU(6, return_sequences=True, name="denoise_gru")(
        L.Concatenate(name="denoise_in")([vad_gru, noise_gru, x])
    )
    gains = L.Dense(5, activation="sigmoid", name="gains")(denoise_gru)
    rng = np.random.default_rng(seed)
    model = keras.Model(x, [gains, vad], name="rnnoise")
    return _done(model, [_features(rng, steps, 6)], seed)


def lstm_states(seed=0, masked=False):
    """LSTM with initial_state [h, c] from two vector inputs and return_state=True; a second
    LSTM continues from the first one's final states."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((T, 3), name="x")
    h0 = keras.Input((4,), name="h0")
    c0 = keras.Input((4,), name="c0")
    s = L.Masking(name="mask")(x) if masked else x
    y, h, c = L.LSTM(4, return_sequences=True, return_state=True, name="lstm")(
        s, initial_state=[h0, c0]
    )
    y2 = L.LSTM(4, name="lstm2")(y, initial_state=[h, c])
    rng = np.random.default_rng(seed)
    inputs = [_features(rng, T, 3, masked), _vector(rng, 4), _vector(rng, 4)]
    return _done(keras.Model([x, h0, c0], [y, h, c, y2], name="lstm_states"), inputs, seed)


def gru_states(seed=0, masked=False):
    """GRU(return_state) without initial states (the final state after the last valid step),
    and a GRU(return_sequences=False) started from it."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((T, 3), name="x")
    s = L.Masking(name="mask")(x) if masked else x
    out, h = L.GRU(4, return_state=True, name="gru")(s)
    y = L.GRU(4, go_backwards=True, name="gru2")(s, initial_state=h)
    rng = np.random.default_rng(seed)
    model = keras.Model(x, [out, h, y], name="gru_states")
    return _done(model, [_features(rng, T, 3, masked)], seed)


def bidirectional_states(seed=0, masked=False, cell="GRU", merge_mode="concat"):
    """Bidirectional(return_state=True): every state its own output (forward first)."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((T, 3), name="x")
    s = L.Masking(name="mask")(x) if masked else x
    rnn = getattr(L, cell)(3, return_sequences=True, return_state=True)
    outs = L.Bidirectional(rnn, merge_mode=merge_mode, name="bi")(s)
    rng = np.random.default_rng(seed)
    model = keras.Model(x, list(outs), name="bidirectional_states")
    return _done(model, [_features(rng, T, 3, masked)], seed)


def bidirectional_initial_state(seed=0, masked=False):
    """Bidirectional GRU started from two vector inputs (forward, backward), last output only."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((T, 3), name="x")
    hf = keras.Input((3,), name="hf")
    hb = keras.Input((3,), name="hb")
    s = L.Masking(name="mask")(x) if masked else x
    y = L.Bidirectional(L.GRU(3), name="bi")(s, initial_state=[hf, hb])
    rng = np.random.default_rng(seed)
    inputs = [_features(rng, T, 3, masked), _vector(rng, 3), _vector(rng, 3)]
    return _done(keras.Model([x, hf, hb], y, name="bi_init"), inputs, seed)


def nested(seed=0, masked=False):
    """A Functional model used as a layer, twice, and a nested Sequential: their nodes are
    inlined (with `masked`, a Masking before them: the mask flows into, through and out of the
    nested models)."""
    keras = _keras()
    L = keras.layers
    xi = keras.Input((T, 3), name="inner_in")
    inner = keras.Model(xi, L.GRU(3, return_sequences=True, name="inner_gru")(xi), name="block")
    seq = keras.Sequential(
        [
            keras.Input((T, 3)),
            L.GRU(3, return_sequences=True, name="seq_gru"),
            L.Dense(3, name="seq_dense"),
        ],
        name="seq_block",
    )
    x = keras.Input((T, 3), name="x")
    a = inner(L.Masking(name="mask")(x) if masked else x)
    b = inner(a)
    y = L.GRU(2, name="head")(L.Add(name="skip")([a, b, seq(a)]))
    rng = np.random.default_rng(seed)
    return _done(keras.Model(x, y, name="nested"), [_features(rng, T, 3, masked)], seed)


# ---------------------------------------------------------------------------------------------
# Merges and concatenations, with and without masks


MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
#: Keras merge layer -> ir.Merge mode.
MERGES_IR = {kind: kind.lower() for kind in MERGES}
#: Which inputs carry a mask: none, the first only, all of them.
MASKINGS = ("none", "first", "all")


def merge(kind="Add", masking="none", seed=0, count=2):
    """`count` feature inputs (Masking on the first / on all), merged by `kind`; outputs the
    merged sequence and a GRU over it (which reads the merged mask, if any)."""
    keras = _keras()
    L = keras.layers
    count = 2 if kind == "Subtract" else count
    xs = [keras.Input((T, 3), name=f"in{k}") for k in range(count)]
    hs = []
    for k, x in enumerate(xs):
        masked = masking == "all" or (masking == "first" and k == 0)
        hs.append(L.Masking(name=f"mask{k}")(x) if masked else x)
    m = getattr(L, kind)(name="merge")(hs)
    y = L.GRU(3, name="gru")(m)
    rng = np.random.default_rng(seed)
    inputs = []
    for k in range(count):
        masked = masking == "all" or (masking == "first" and k == 0)
        x = _features(rng, T, 3)
        if masked:  # a different padding per input, so the masks' OR differs from each
            x[0, T - 1 - k :] = 0
            x[1, : 1 + k] = 0
            x[3, :] = 0 if k == 0 else x[3, :]
        inputs.append(x)
    model = keras.Model(xs, [m, y], name=f"merge_{kind.lower()}_{masking}")
    return _done(model, inputs, seed)


def merges(kind="Add", seed=0, count=2):
    """One model with a `kind` merge of `count` inputs for each of MASKINGS (no input masked,
    the first, all: Masking layers on the inputs, padded differently), each merge followed by a
    GRU; outputs [merge_none, gru_none, merge_first, gru_first, merge_all, gru_all]."""
    keras = _keras()
    L = keras.layers
    count = 2 if kind == "Subtract" else count
    xs = [keras.Input((T, 3), name=f"in{k}") for k in range(count)]
    ms = [L.Masking(name=f"mask{k}")(x) for k, x in enumerate(xs)]
    outs = []
    for masking in MASKINGS:
        hs = [
            ms[k] if masking == "all" or (masking == "first" and k == 0) else xs[k]
            for k in range(count)
        ]
        m = getattr(L, kind)(name=f"merge_{masking}")(hs)
        outs += [m, L.GRU(3, name=f"gru_{masking}")(m)]
    rng = np.random.default_rng(seed)
    inputs = []
    for k in range(count):
        x = _features(rng, T, 3)
        x[0, T - 1 - k :] = 0  # a different padding per input: the masks' OR differs from each
        x[1, : 1 + k] = 0
        if k == 0:
            x[3, :] = 0
        inputs.append(x)
    model = keras.Model(xs, outs, name=f"merges_{kind.lower()}_{count}")
    return _done(model, inputs, seed)


def concatenations(axis=-1, seed=0):
    """One model with a Concatenate along `axis` (-1: features, 1: time) of two inputs for each
    of MASKINGS (as `merges`), each followed by a GRU."""
    keras = _keras()
    L = keras.layers
    steps = (T, T) if axis != 1 else (T, T - 2)
    xs = [keras.Input((s, 3), name=f"in{k}") for k, s in enumerate(steps)]
    ms = [L.Masking(name=f"mask{k}")(x) for k, x in enumerate(xs)]
    outs = []
    for masking in MASKINGS:
        hs = [
            ms[k] if masking == "all" or (masking == "first" and k == 0) else xs[k]
            for k in range(2)
        ]
        c = L.Concatenate(axis=axis, name=f"cat_{masking}")(hs)
        outs += [c, L.GRU(3, name=f"gru_{masking}")(c)]
    rng = np.random.default_rng(seed)
    inputs = []
    for k, s in enumerate(steps):
        x = _features(rng, s, 3)
        x[0, s - 1 - k :] = 0
        x[1, : 1 + k] = 0
        inputs.append(x)
    name = f"concatenations_{'time' if axis == 1 else 'features'}"
    return _done(keras.Model(xs, outs, name=name), inputs, seed)


def concatenate(axis=-1, masking="none", seed=0):
    """Two feature inputs concatenated along `axis` (-1: features, 1: time), masked as
    `merge`; outputs the concatenation and a GRU over it."""
    keras = _keras()
    L = keras.layers
    steps = (T, T) if axis != 1 else (T, T - 2)
    xs = [keras.Input((s, 3), name=f"in{k}") for k, s in enumerate(steps)]
    hs = []
    for k, x in enumerate(xs):
        masked = masking == "all" or (masking == "first" and k == 0)
        hs.append(L.Masking(name=f"mask{k}")(x) if masked else x)
    c = L.Concatenate(axis=axis, name="cat")(hs)
    y = L.GRU(3, name="gru")(c)
    rng = np.random.default_rng(seed)
    inputs = []
    for k, s in enumerate(steps):
        masked = masking == "all" or (masking == "first" and k == 0)
        x = _features(rng, s, 3)
        if masked:
            x[0, s - 1 - k :] = 0
            x[1, : 1 + k] = 0
        inputs.append(x)
    name = f"concat_{'time' if axis == 1 else 'features'}_{masking}"
    return _done(keras.Model(xs, [c, y], name=name), inputs, seed)


def self_attention(seed=0, masked=False, score="dot", causal=False):
    """Attention of a GRU's sequence over itself ([query, value]), then a GRU."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((T, 4), name="x")
    h = L.Masking(name="mask")(x) if masked else x
    g = L.GRU(4, return_sequences=True, name="g1")(h)
    a = L.Attention(use_scale=True, score_mode=score, name="att")([g, g], use_causal_mask=causal)
    y = L.GRU(3, name="g2")(a)
    rng = np.random.default_rng(seed)
    model = keras.Model(x, [y, a], name="self_attention")
    return _done(model, [_features(rng, T, 4, masked)], seed)


def _attention_front(L) -> tuple:
    """Token inputs source and target, the encoder GRU's sequence (mask_zero) and the decoder
    GRU's sequence started from the encoder's state: what the attention models share."""
    keras = _keras()
    src = keras.Input((None,), dtype="int32", name="source")
    tgt = keras.Input((None,), dtype="int32", name="target")
    enc, state = L.GRU(UNITS, return_sequences=True, return_state=True, name="encoder")(
        L.Embedding(ENC_VOCAB, 4, mask_zero=True, name="enc_emb")(src)
    )
    dec = L.GRU(UNITS, return_sequences=True, name="decoder")(
        L.Embedding(DEC_VOCAB, 4, mask_zero=True, name="dec_emb")(tgt), initial_state=state
    )
    return src, tgt, enc, dec


def attention_seq2seq(seed=0, additive=False):
    """Decoder-encoder attention (Luong): token encoder GRU (mask_zero) whose state starts the
    decoder GRU; Attention([decoder, encoder]) (query mask: the target's, value mask: the
    source's), concatenated with the decoder's output before a softmax Dense."""
    keras = _keras()
    L = keras.layers
    src, tgt, enc, dec = _attention_front(L)
    att = (L.AdditiveAttention(use_scale=True) if additive else L.Attention())([dec, enc])
    both = L.Concatenate(name="both")([dec, att])
    out = L.Dense(DEC_VOCAB, activation="softmax", name="probs")(both)
    rng = np.random.default_rng(seed)
    inputs = [_tokens(rng, T, ENC_VOCAB, True), _tokens(rng, T - 1, DEC_VOCAB, True)]
    return _done(keras.Model([src, tgt], out, name="attention_seq2seq"), inputs, seed)


def attention_key(seed=0):
    """AdditiveAttention over [query, value, key] feature sequences (query and value masked;
    the key's mask is ignored by Keras), and Attention with a key, causal, unmasked."""
    keras = _keras()
    L = keras.layers
    q = keras.Input((None, 3), name="q")
    v = keras.Input((None, 2), name="v")
    k = keras.Input((None, 3), name="k")
    qm, vm, km = (L.Masking(name=f"mask_{n}")(t) for n, t in (("q", q), ("v", v), ("k", k)))
    add = L.AdditiveAttention(use_scale=True, name="additive")([qm, vm, km])
    dot = L.Attention(use_scale=True, name="dot")([q, v, k], use_causal_mask=True)
    rng = np.random.default_rng(seed)
    inputs = [_features(rng, 4, 3, True), _features(rng, 5, 2, True), _features(rng, 5, 3)]
    return _done(keras.Model([q, v, k], [add, dot], name="attention_key"), inputs, seed)


def dot_attention(seed=0, general=False):
    """Luong attention written with layers, as Keras tutorials do: scores =
    Dot(axes=[2, 2])([decoder, encoder]), Activation("softmax"), context = Dot(axes=[2,
    1])([weights, encoder]), concatenated with the decoder's output. Keras' Dot drops masks, so
    the padded source steps (Embedding mask_zero) get weight too. general: the "general" score
    (the key is a Dense of the encoder's output), a Softmax layer instead of Activation and a
    Dropout on the weights (the identity at inference)."""
    keras = _keras()
    L = keras.layers
    src, tgt, enc, dec = _attention_front(L)
    key = L.Dense(UNITS, use_bias=False, name="key")(enc) if general else enc
    scores = L.Dot(axes=[2, 2], name="scores")([dec, key])
    soft = L.Softmax(name="weights") if general else L.Activation("softmax", name="weights")
    weights = L.Dropout(0.2, name="drop")(soft(scores)) if general else soft(scores)
    context = L.Dot(axes=[2, 1], name="context")([weights, enc])
    both = L.Concatenate(name="both")([context, dec])
    out = L.Dense(DEC_VOCAB, activation="softmax", name="probs")(both)
    rng = np.random.default_rng(seed)
    inputs = [_tokens(rng, T, ENC_VOCAB, True), _tokens(rng, T - 1, DEC_VOCAB, True)]
    name = "dot_attention_general" if general else "dot_attention"
    return _done(keras.Model([src, tgt], [out, context], name=name), inputs, seed)


def conditioned(seed=0):
    """Recurrent layers started from a conditioning vector (a speaker or device embedding):
    GRU(initial_state=Dense(v)) and LSTM(initial_state=[Dense(v), Dense(v)]) over a masked
    feature sequence, their sequences concatenated into a Dense. Streams: the initial states
    are fixed over the steps."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((None, 3), name="x")
    v = keras.Input((5,), name="v")
    m = L.Masking(name="mask")(x)
    h0 = L.Dense(4, activation="tanh", name="h0")(v)
    g = L.GRU(4, return_sequences=True, name="gru")(m, initial_state=h0)
    c0 = L.Dense(3, name="c0")(v)
    lstm = L.LSTM(3, return_sequences=True, name="lstm")(m, initial_state=[L.Dense(3)(v), c0])
    y = L.Dense(2, name="out")(L.Concatenate(name="both")([g, lstm]))
    rng = np.random.default_rng(seed)
    inputs = [_features(rng, T, 3, True), _vector(rng, 5)]
    return _done(keras.Model([x, v], y, name="conditioned"), inputs, seed)


def time_steps(seed=0, masked=False):
    """Cropping1D, ZeroPadding1D and UpSampling1D between GRUs (each ends a mask, as Keras);
    two outputs: the resampled sequence and the last GRU's output."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((None, 3), name="x")
    h = L.Masking(name="mask")(x) if masked else x
    g = L.GRU(4, return_sequences=True, name="g1")(h)
    c = L.Cropping1D((1, 2), name="crop")(g)
    p = L.ZeroPadding1D((2, 1), name="pad")(c)
    u = L.UpSampling1D(2, name="up")(p)
    y = L.GRU(3, name="g2")(u)
    rng = np.random.default_rng(seed)
    model = keras.Model(x, [u, y], name="time_steps")
    return _done(model, [_features(rng, T, 3, masked)], seed)


def time_steps_chain(seed=0):
    """A Sequential chain holding UpSampling1D and Cropping1D (a one-input graph file)."""
    keras = _keras()
    L = keras.layers
    model = keras.Sequential(
        [keras.Input((T, 3)), L.GRU(4, return_sequences=True), L.UpSampling1D(3),
         L.Cropping1D(2), L.GRU(2)],
        name="time_steps_chain",
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    return _done(model, [_features(rng, T, 3)], seed)


def dot_vectors(seed=0):
    """Dot of two GRU encodings (vectors): plain (axes=1) and normalized (axes=-1), a Dense on
    their concatenation."""
    keras = _keras()
    L = keras.layers
    a = keras.Input((T, 3), name="a")
    b = keras.Input((None, 2), name="b")
    ha = L.GRU(4, name="ga")(a)
    hb = L.GRU(4, name="gb")(L.Masking(name="mask")(b))
    d1 = L.Dot(axes=1, name="dot")([ha, hb])
    d2 = L.Dot(axes=-1, normalize=True, name="cosine")([ha, hb])
    y = L.Dense(2, name="out")(L.Concatenate(name="both")([d1, d2]))
    rng = np.random.default_rng(seed)
    inputs = [_features(rng, T, 3), _features(rng, T - 1, 2, True)]
    return _done(keras.Model([a, b], [y, d2], name="dot_vectors"), inputs, seed)


def reshape_permute(seed=0):
    """Permute((2, 1)) of a fixed-T GRU sequence, a GRU over it, Reshape of that sequence to a
    vector, and Reshape of a vector input to a sequence of 3 steps read by a GRU."""
    keras = _keras()
    L = keras.layers
    x = keras.Input((T, 3), name="x")
    v = keras.Input((6,), name="v")
    p = L.Permute((2, 1), name="swap")(L.GRU(4, return_sequences=True, name="g1")(x))
    flat = L.Reshape((-1,), name="flat")(L.GRU(2, return_sequences=True, name="g2")(p))
    y = L.Dense(3, name="out")(flat)
    z = L.GRU(2, name="g3")(L.Reshape((3, 2), name="steps")(v))
    rng = np.random.default_rng(seed)
    model = keras.Model([x, v], [y, z], name="reshape_permute")
    return _done(model, [_features(rng, T, 3), _vector(rng, 6)], seed)


def _case(builder, **kw):
    return lambda: builder(**kw)


MODELS = {
    "residual": _case(residual_gru),
    "residual_masked": _case(residual_gru, masked=True),
    "two_branches": _case(two_branches),
    "two_branches_masked": _case(two_branches, masked=True),
    "tokens_and_features": _case(tokens_and_features),
    "shared_layers": _case(shared_layers),
    "shared_layers_masked": _case(shared_layers, masked=True),
    "autoencoder": _case(autoencoder),
    "seq2seq": _case(seq2seq),
    "seq2seq_lstm": _case(seq2seq_lstm),
    "rnnoise": _case(rnnoise),
    "lstm_states": _case(lstm_states),
    "lstm_states_masked": _case(lstm_states, masked=True),
    "gru_states": _case(gru_states),
    "gru_states_masked": _case(gru_states, masked=True),
    "bidirectional_gru_states_masked": _case(bidirectional_states, masked=True),
    "bidirectional_lstm_states": _case(bidirectional_states, cell="LSTM", merge_mode="sum"),
    "bidirectional_lstm_states_masked": _case(bidirectional_states, masked=True, cell="LSTM"),
    "bidirectional_initial_state_masked": _case(bidirectional_initial_state, masked=True),
    "nested": _case(nested),
    "nested_masked": _case(nested, masked=True),
    **{f"merges_{kind.lower()}": _case(merges, kind=kind) for kind in MERGES},
    "merges_maximum_3": _case(merges, kind="Maximum", count=3),
    "merges_multiply_3": _case(merges, kind="Multiply", count=3),
    "concatenations_features": _case(concatenations, axis=-1),
    "concatenations_time": _case(concatenations, axis=1),
    "self_attention": _case(self_attention),
    "self_attention_masked": _case(self_attention, masked=True),
    "self_attention_concat_causal_masked": _case(
        self_attention, masked=True, score="concat", causal=True
    ),
    "attention_seq2seq": _case(attention_seq2seq),
    "additive_attention_seq2seq": _case(attention_seq2seq, additive=True),
    "attention_key": _case(attention_key),
    "conditioned": _case(conditioned),
    "dot_attention": _case(dot_attention),
    "dot_attention_general": _case(dot_attention, general=True),
    "time_steps": _case(time_steps),
    "time_steps_masked": _case(time_steps, masked=True),
    "time_steps_chain": _case(time_steps_chain),
    "dot_vectors": _case(dot_vectors),
    "reshape_permute": _case(reshape_permute),
}


def build(name: str):
    """(model, inputs) of the model `name` in MODELS."""
    return MODELS[name]()
