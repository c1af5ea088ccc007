"""The Keras front end, option by option: one case per layer option, each checked three ways.

For every case: Keras ``model.predict(x)`` against the float64 reference of the converted IR
(``reference.forward(from_keras(model), x)``) and against the C runtime
(``edgegru.load(format.write(ir)).predict(x)``), both within FP32_TOLERANCE, on several T.
Models are small, fan-in scaled (tests/keras_models.py) and built once per model key (several
cases, e.g. the three paddings of one masked model, share one model and its traced predict).

Also here: byte identity of the live and the file route for a handful of saved models, and the
error messages of the options the importer refuses.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
from keras_models import (
    conv_bn_gru_model,
    layers_model,
    masked_bilstm_model,
    padded_inputs,
    random_inputs,
    stacked_mixed_model,
    token_model,
)

import edgegru
from edgegru import format as fmt
from edgegru import ir, reference
from edgegru.keras_file import from_keras_file
from edgegru.keras_import import UnsupportedLayerError, from_keras
from edgegru.onnx_export import to_onnx
from edgegru.validate import FP32_TOLERANCE, run_onnx

L = keras.layers
BATCH = 4
TS = (3, 10)  # sequence lengths every unmasked case runs

# Warnings Keras itself gives for legal models (masks that Conv1D/Flatten/GlobalMaxPooling1D
# drop; retracing of predict over several T); not the importer's business.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Layer .* does not support masking:UserWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

# ---------------------------------------------------------------------------------------------
# Models, by key. Each value: () -> Keras model (randomized).
# ---------------------------------------------------------------------------------------------

MODELS: dict = {}
#: case name -> (model key, inputs: model -> list of x)
CASES: dict = {}


def _feat(model, ts=TS, batch=BATCH):
    return [random_inputs(model, batch, t, seed=t) for t in ts]


def _tok(model, ts=TS, batch=BATCH):
    return [np.where(x == 0, 1, x) for x in _feat(model, ts, batch)]  # no accidental padding


#: Single-T cases cycle through these lengths, so the matrix as a whole runs many T while each
#: case pays for one traced predict (about 0.25 s per new model and shape).
T_CYCLE = (2, 5, 9, 13)


def _case(name, factory, inputs=None):
    if inputs is None:
        inputs = functools.partial(_feat, ts=(T_CYCLE[len(CASES) % len(T_CYCLE)],))
    MODELS[name] = factory
    CASES[name] = (name, inputs)


def _seq_model(layers, seed, **kw):
    return lambda: layers_model(layers, seed=seed, **kw)


_seed = iter(range(1000, 10_000))

# Bidirectional: every merge mode x return_sequences (GRU), plus LSTM and SimpleRNN samples.
for merge in ir.MERGE_MODES:
    for rs in (True, False):
        _case(
            f"bidirectional_gru_{merge}_rs{int(rs)}",
            _seq_model(
                lambda m=merge, r=rs: [
                    L.Bidirectional(L.GRU(4, return_sequences=r), merge_mode=m),
                    L.Dense(2),
                ],
                next(_seed),
            ),
            _feat,
        )
_case(
    "bidirectional_lstm_concat_rs1",
    _seq_model(lambda: [L.Bidirectional(L.LSTM(3, return_sequences=True))], next(_seed)),
)
_case(
    "bidirectional_simple_rnn_ave_rs0",
    _seq_model(lambda: [L.Bidirectional(L.SimpleRNN(4), merge_mode="ave")], next(_seed)),
)
_case(
    "bidirectional_gru_reset_before_mul",
    _seq_model(
        lambda: [L.Bidirectional(L.GRU(3, reset_after=False, return_sequences=True), "mul")],
        next(_seed),
    ),
)

# Activations: every supported one in each GRU slot; samples for LSTM and SimpleRNN.
for act in ir.GRU_ACTIVATIONS:
    _case(
        f"gru_activation_{act}",
        _seq_model(lambda a=act: [L.GRU(4, activation=a, return_sequences=True)], next(_seed)),
    )
    # An unbounded gate (z > 1 or < 0) makes h grow geometrically; short sequences keep the
    # output O(1), where float32 rounding stays far below the tolerance.
    bounded = act in ("sigmoid", "hard_sigmoid", "tanh", "softsign")
    _case(
        f"gru_recurrent_activation_{act}",
        _seq_model(lambda a=act: [L.GRU(4, recurrent_activation=a)], next(_seed)),
        None if bounded else functools.partial(_feat, ts=(1, 2)),
    )
for act, ract in (("softsign", "sigmoid"), ("tanh", "hard_sigmoid"), ("elu", "hard_sigmoid")):
    _case(
        f"lstm_activation_{act}_{ract}",
        _seq_model(
            lambda a=act, r=ract: [
                L.LSTM(4, activation=a, recurrent_activation=r, return_sequences=True)
            ],
            next(_seed),
        ),
    )
for act in ("relu", "leaky_relu", "softsign"):
    _case(
        f"simple_rnn_activation_{act}",
        _seq_model(lambda a=act: [L.SimpleRNN(4, activation=a)], next(_seed)),
    )

# go_backwards, use_bias=False, reset_after=False, plain LSTM / SimpleRNN.
RNN = {"gru": L.GRU, "lstm": L.LSTM, "simple_rnn": L.SimpleRNN}
for kind, cls in RNN.items():
    for rs in (True, False):
        _case(
            f"{kind}_go_backwards_rs{int(rs)}",
            _seq_model(
                lambda c=cls, r=rs: [c(4, go_backwards=True, return_sequences=r), L.Dense(2)],
                next(_seed),
            ),
            _feat,
        )
        _case(
            f"{kind}_plain_rs{int(rs)}",
            _seq_model(lambda c=cls, r=rs: [c(5, return_sequences=r)], next(_seed)),
            _feat,
        )
    _case(
        f"{kind}_no_bias",
        _seq_model(lambda c=cls: [c(4, use_bias=False, return_sequences=True)], next(_seed)),
    )
_case(
    "gru_no_bias_reset_before",
    _seq_model(lambda: [L.GRU(4, use_bias=False, reset_after=False)], next(_seed)),
)
_case("gru_reset_before", _seq_model(lambda: [L.GRU(4, reset_after=False)], next(_seed)))

# Masks: Embedding(mask_zero) and Masking, post / pre / middle padding, several structures.
MASK_STRUCTURES = {
    "uni_seq": lambda: [L.GRU(4, return_sequences=True), L.Dense(2)],
    "uni_last": lambda: [L.GRU(4)],
    "stacked": lambda: [L.GRU(4, return_sequences=True), L.LSTM(3)],
    "bidirectional": lambda: [L.Bidirectional(L.GRU(3, return_sequences=True)), L.Dense(2)],
    "bidirectional_last": lambda: [L.Bidirectional(L.LSTM(3), merge_mode="sum")],
    "gap": lambda: [L.GRU(4, return_sequences=True), L.GlobalAveragePooling1D()],
    "go_backwards": lambda: [L.SimpleRNN(4, return_sequences=True, go_backwards=True)],
    "dense_then_gru": lambda: [L.Dense(4, activation="tanh"), L.GRU(3)],
    "gmp": lambda: [L.GRU(4, return_sequences=True), L.GlobalMaxPooling1D()],
}
MASK_T = 9


def _padded(padding, mask_value=0.0):
    def inputs(model):
        return [padded_inputs(model, 6, MASK_T, padding, seed=7, mask_value=mask_value)]

    return inputs


for structure, make in MASK_STRUCTURES.items():
    for source in ("embedding", "masking"):
        key = f"mask_{source}_{structure}"
        functional = structure not in ("stacked", "gap")  # both kinds of config
        if source == "embedding":
            MODELS[key] = functools.partial(
                layers_model,
                lambda m=make: [L.Embedding(20, 5, mask_zero=True), *m()],
                vocab=20,
                functional=functional,
                seed=next(_seed),
            )
        else:
            MODELS[key] = functools.partial(
                layers_model,
                lambda m=make: [L.Masking(0.0), *m()],
                functional=functional,
                seed=next(_seed),
            )
        for padding in ("post", "pre", "middle"):
            CASES[f"{key}_{padding}"] = (key, _padded(padding))
MODELS["mask_masking_value_minus1"] = _seq_model(
    lambda: [L.Masking(-1.0), L.LSTM(4, return_sequences=True)], next(_seed), functional=True
)
CASES["mask_masking_value_minus1_middle"] = ("mask_masking_value_minus1", _padded("middle", -1.0))

# Layers around the recurrent ones.
SURROUNDING = {
    "time_distributed_dense": lambda: [
        L.GRU(4, return_sequences=True),
        L.TimeDistributed(L.Dense(3, activation="tanh")),
        L.GRU(2),
    ],
    "dense_3d": lambda: [L.Dense(5, activation="relu"), L.GRU(4)],
    "dense_3d_no_bias_output": lambda: [
        L.GRU(4, return_sequences=True),
        L.Dense(3, use_bias=False, activation="softsign"),
    ],
    "global_average_pooling": lambda: [
        L.GRU(4, return_sequences=True),
        L.GlobalAveragePooling1D(),
        L.Dense(2),
    ],
    "global_max_pooling": lambda: [L.GRU(4, return_sequences=True), L.GlobalMaxPooling1D()],
    "conv_valid": lambda: [L.Conv1D(5, 3), L.GRU(4)],
    "conv_same_strides2": lambda: [
        L.Conv1D(5, 3, strides=2, padding="same"),
        L.GRU(4, return_sequences=True),
    ],
    "conv_causal_dilation2": lambda: [
        L.Conv1D(5, 2, dilation_rate=2, padding="causal", activation="tanh"),
        L.GRU(4),
    ],
    "conv_valid_strides3": lambda: [L.Conv1D(4, 2, strides=3), L.GRU(3, return_sequences=True)],
    "conv_same_dilation3_no_bias": lambda: [
        L.Conv1D(4, 3, dilation_rate=3, padding="same", use_bias=False, activation="relu"),
        L.LSTM(3),
    ],
    "batch_norm": lambda: [L.BatchNormalization(), L.GRU(4)],
    "batch_norm_no_center_no_scale": lambda: [
        L.BatchNormalization(center=False, scale=False, epsilon=0.01),
        L.GRU(4),
    ],
    "batch_norm_no_center_after_gru": lambda: [
        L.GRU(4, return_sequences=True),
        L.BatchNormalization(center=False),
    ],
    "batch_norm_no_scale_axis2": lambda: [L.BatchNormalization(axis=2, scale=False), L.GRU(3)],
    "layer_norm": lambda: [L.LayerNormalization(), L.GRU(4)],
    "layer_norm_no_center_no_scale": lambda: [
        L.GRU(4, return_sequences=True),
        L.LayerNormalization(center=False, scale=False, epsilon=1e-5),
    ],
    "layer_norm_no_scale": lambda: [L.LayerNormalization(scale=False), L.SimpleRNN(3)],
    "normalization_adapted": lambda: [L.Normalization(), L.GRU(4)],
    "normalization_config": lambda: [
        L.Normalization(mean=[0.1, -0.2, 0.3], variance=[0.5, 1.5, 2.0]),
        L.GRU(4),
    ],
    "normalization_config_scalar": lambda: [L.Normalization(mean=0.5, variance=2.0), L.GRU(4)],
    "activation_softmax": lambda: [L.GRU(4, return_sequences=True), L.Activation("softmax")],
    "activation_elu": lambda: [L.Dense(4), L.Activation("elu"), L.GRU(3)],
    "activation_hard_sigmoid": lambda: [L.GRU(4), L.Activation("hard_sigmoid")],
    "flatten_vector": lambda: [L.GRU(4), L.Flatten(), L.Dense(2)],
    "dropout": lambda: [L.GRU(4, return_sequences=True), L.Dropout(0.5), L.Dense(2)],
    "spatial_dropout1d": lambda: [L.SpatialDropout1D(0.5), L.GRU(4)],
    "gaussian_noise": lambda: [L.GaussianNoise(0.5), L.GRU(4)],
    "gaussian_dropout": lambda: [L.GRU(4, return_sequences=True), L.GaussianDropout(0.3)],
}
CONV_TS = (9, 16)
for name, make in SURROUNDING.items():
    # Keras' TimeDistributed keeps the T of its first traced predict (a longer T later is
    # silently cut, a shorter one fails), so every model with one runs a single T.
    inputs = functools.partial(_feat, ts=CONV_TS) if name.startswith("conv") else None
    _case(name, _seq_model(make, next(_seed)), inputs)

# Fixed T: Flatten of a sequence, unroll=True.
FIXED_T = 6
for name, make in {
    "flatten_sequence": lambda: [L.GRU(4, return_sequences=True), L.Flatten(), L.Dense(2)],
    "flatten_after_conv": lambda: [L.Conv1D(3, 2, strides=2), L.Flatten()],
    "gru_unroll": lambda: [L.GRU(4, unroll=True, return_sequences=True)],
    "bidirectional_lstm_unroll": lambda: [L.Bidirectional(L.LSTM(3, unroll=True))],
}.items():
    _case(
        name,
        _seq_model(make, next(_seed), seq_len=FIXED_T),
        functools.partial(_feat, ts=(FIXED_T,)),
    )
MODELS["mask_unroll_forward"] = _seq_model(
    lambda: [L.Embedding(20, 4, mask_zero=True), L.GRU(4, unroll=True)],
    next(_seed),
    vocab=20,
    seq_len=MASK_T,
)
CASES["mask_unroll_forward_post"] = ("mask_unroll_forward", _padded("post"))


# return_state in Functional models: the model output is the output or the state.
def _state_model(cls, output_index, seed, vocab=None, return_sequences=False, **kw):
    def make():
        if vocab:
            inp = keras.Input((None,), dtype="int32")
            x = L.Embedding(vocab, 4, mask_zero=True)(inp)
        else:
            inp = keras.Input((None, 3))
            x = inp
        outs = cls(5, return_state=True, return_sequences=return_sequences, **kw)(x)
        y = outs[output_index]
        if output_index == 0:
            y = L.Dense(2)(y)
        from keras_models import randomize

        return randomize(keras.Model(inp, y), seed)

    return make


_case("return_state_gru_output", _state_model(L.GRU, 0, next(_seed)))
_case("return_state_gru_state", _state_model(L.GRU, 1, next(_seed)))
_case("return_state_gru_seq_state", _state_model(L.GRU, 1, next(_seed), return_sequences=True))
_case("return_state_lstm_h", _state_model(L.LSTM, 1, next(_seed), go_backwards=True))
_case("return_state_simple_rnn_state", _state_model(L.SimpleRNN, 1, next(_seed)))
MODELS["return_state_masked_gru_state"] = _state_model(
    L.GRU, 1, next(_seed), vocab=20, return_sequences=True
)
CASES["return_state_masked_gru_state_pre"] = ("return_state_masked_gru_state", _padded("pre"))

# stateful=True with a fixed batch (the state is reset before each predict).
STATEFUL_BATCH = 3
for name, make in {
    "stateful_gru": lambda: [L.GRU(4, stateful=True, return_sequences=True), L.Dense(2)],
    "stateful_lstm": lambda: [L.LSTM(4, stateful=True)],
}.items():
    _case(
        name,
        _seq_model(make, next(_seed), batch_size=STATEFUL_BATCH),
        functools.partial(_feat, batch=STATEFUL_BATCH),
    )

# The models of the byte-identity tests, run through the matrix too.
for name, factory, inputs in (
    ("token_seed_like", lambda: token_model(200, 16, (12,), True, 1, "sigmoid", seed=5), _tok),
    ("masked_bilstm_post", masked_bilstm_model, _padded("post")),
    ("conv_bn_gru", conv_bn_gru_model, _feat),
    ("stacked_mixed_middle", stacked_mixed_model, _padded("middle")),
):
    MODELS[name] = factory
    CASES[name] = (name, inputs)
CASES["stacked_mixed_middle"] = ("stacked_mixed_middle", lambda m: [padded_inputs(m, 5, 8)])


# Nested models on the chain (flattened; masks flow into, through and out of them in Keras).
def _nested(outer_functional, inner_functional, seed):
    def make():
        if inner_functional:
            i = keras.Input((None, 5))
            inner = keras.Model(i, L.Dense(3)(L.GRU(4, return_sequences=True)(i)), name="inner")
        else:
            inner = keras.Sequential(
                [keras.Input((None, 5)), L.GRU(4, return_sequences=True), L.Dense(3)], name="inner"
            )
        return layers_model(
            [L.Embedding(12, 5, mask_zero=True), inner, L.LSTM(2)],
            vocab=12,
            functional=outer_functional,
            seed=seed,
        )

    return make


for outer in (True, False):
    for inner in (True, False):
        key = f"nested_{'functional' if inner else 'sequential'}_in_" + (
            "functional" if outer else "sequential"
        )
        MODELS[key] = _nested(outer, inner, next(_seed))
        CASES[f"{key}_middle"] = (key, _padded("middle"))


# ---------------------------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------------------------


@functools.cache
def _built(key):
    """(Keras model, IR, C runtime model, onnxruntime on the exported graph) of a model key,
    built once."""
    model = MODELS[key]()
    irm = from_keras(model)
    try:
        onnx_model = to_onnx(irm)
    except edgegru.UnsupportedError as exc:  # softplus in a fused recurrent op (docs/onnx.md)
        assert "softplus" in str(exc), exc
        onnx_model = None
    return model, irm, edgegru.load(fmt.write(irm)), onnx_model


def _predict(model, x):
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()
    return np.asarray(model.predict(x, verbose=0, batch_size=len(x)), dtype=np.float64)


MAX_ERRORS = {"reference": 0.0, "c": 0.0, "onnxruntime": 0.0}


@pytest.fixture(scope="module", autouse=True)
def _report_max_errors():
    yield
    print(", ".join(f"keras~{k} max {v:.3g}" for k, v in MAX_ERRORS.items()))


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_reference_c_and_onnx_agree(case):
    """Keras' predict against the float64 reference, the C runtime and onnxruntime on the
    exported ONNX graph, each within FP32_TOLERANCE."""
    key, make_inputs = CASES[case]
    model, irm, runtime, onnx_model = _built(key)
    for x in make_inputs(model):
        want = _predict(model, x)
        got = {"reference": reference.forward(irm, x), "c": runtime.predict(x)}
        if onnx_model is not None:
            got["onnxruntime"] = run_onnx(onnx_model, x)
        else:  # the export refuses exactly the recurrent layers with softplus
            assert "softplus" in case, case
        assert np.all(np.isfinite(want))
        for name, y in got.items():
            assert y.shape == want.shape, (name, y.shape, want.shape)
            err = float(np.max(np.abs(y - want)))
            MAX_ERRORS[name] = max(MAX_ERRORS[name], err)
            assert err <= FP32_TOLERANCE, f"T={x.shape[1]}: keras~{name} {err:.3g}"


def test_matrix_covers_the_options():
    layer_types = set()
    for key in MODELS:
        layer_types |= {type(layer) for layer in _built(key)[1].layers}
    assert layer_types == set(ir.MASK_RULES)  # every IR layer type is produced from Keras
    assert len(CASES) >= 100


# ---------------------------------------------------------------------------------------------
# The live route and the file route give the same bytes
# ---------------------------------------------------------------------------------------------

IDENTITY = {
    "token_seed_like": "token_seed_like",
    "masked_bilstm": "masked_bilstm_post",
    "conv_bn_gru": "conv_bn_gru",
    "stacked_mixed": "stacked_mixed_middle",
    "stacked_mixed_functional": None,
    "return_state_masked": "return_state_masked_gru_state",
    "normalization_config": "normalization_config",
    "nested": "nested_sequential_in_functional",
}


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_file_route_gives_the_live_bytes(name, tmp_path):
    key = IDENTITY[name]
    model = _built(key)[0] if key else stacked_mixed_model(seed=3, functional=True)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    live = fmt.write(from_keras(model))
    assert fmt.write(from_keras_file(path)) == live
    assert fmt.write(from_keras(str(path))) == live
    edgegru.convert(path, tmp_path / "file.egru")
    edgegru.convert(model, tmp_path / "live.egru")
    assert (tmp_path / "file.egru").read_bytes() == (tmp_path / "live.egru").read_bytes()
    meta = fmt.read(live)[1]
    assert meta["source"]["keras_version"] == keras.__version__
    assert "backend" not in meta["source"]


# ---------------------------------------------------------------------------------------------
# Refusals: the message names the layer, the option, its value and what is supported
# ---------------------------------------------------------------------------------------------


def _functional(build, shape=(None, 3), dtype="float32"):
    inp = keras.Input(shape, dtype=dtype)
    return keras.Model(inp, build(inp))


REFUSED = {
    "gru_gelu": (
        lambda: layers_model([L.GRU(3, activation="gelu", name="g")]),
        ["'g'", "GRU", "activation='gelu'", "'hard_sigmoid'", "'leaky_relu'"],
    ),
    "lstm_swish": (
        lambda: layers_model([L.LSTM(3, recurrent_activation="swish", name="l")]),
        ["'l'", "LSTM", "recurrent_activation='silu'", "supported: 'linear'"],
    ),
    "simple_rnn_softmax": (
        lambda: layers_model([L.SimpleRNN(3, activation="softmax", name="s")]),
        ["'s'", "SimpleRNN", "activation='softmax'", "supported"],
    ),
    "merge_mode_none": (
        lambda: _functional(lambda x: L.Bidirectional(L.GRU(3), merge_mode=None, name="bi")(x)[0]),
        ["'bi'", "Bidirectional", "merge_mode=None", "'concat', 'sum', 'ave', 'mul'"],
    ),
    "backward_differs": (
        lambda: layers_model(
            [
                L.Bidirectional(
                    L.GRU(3),
                    backward_layer=L.GRU(3, activation="relu", go_backwards=True),
                    name="bi",
                )
            ]
        ),
        ["'bi'", "backward layer's activation ('relu')", "forward layer's ('tanh')"],
    ),
    "backward_kind_differs": (
        lambda: layers_model(
            [L.Bidirectional(L.GRU(3), backward_layer=L.LSTM(3, go_backwards=True), name="bi")]
        ),
        ["'bi'", "backward layer is a LSTM", "forward layer a GRU"],
    ),
    "conv_groups": (
        lambda: layers_model([L.Conv1D(4, 2, groups=2, name="c")], features=4),
        ["'c'", "Conv1D", "groups=2", "supported: 1"],
    ),
    "conv_channels_first": (
        lambda: layers_model([L.Conv1D(4, 2, data_format="channels_first", name="c")], seq_len=5),
        ["'c'", "data_format='channels_first'", "'channels_last'"],
    ),
    "pool_keepdims": (
        lambda: layers_model([L.GlobalAveragePooling1D(keepdims=True, name="p")]),
        ["'p'", "GlobalAveragePooling1D", "keepdims=True", "supported: False"],
    ),
    "batch_norm_axis": (
        lambda: layers_model([L.BatchNormalization(axis=1, name="bn")], seq_len=4),
        ["'bn'", "BatchNormalization", "axis=1", "supported: -1"],
    ),
    "layer_norm_rms": (
        lambda: layers_model([L.LayerNormalization(rms_scaling=True, name="ln")]),
        ["'ln'", "LayerNormalization", "rms_scaling=True", "supported: False"],
    ),
    "normalization_invert": (
        lambda: layers_model([L.Normalization(mean=0.0, variance=1.0, invert=True, name="n")]),
        ["'n'", "Normalization", "invert=True", "supported: False"],
    ),
    "flatten_dynamic_t": (
        lambda: layers_model([L.GRU(3, return_sequences=True), L.Flatten(name="f")]),
        ["'f'", "Flatten", "T=None", "keras.Input(shape=(T"],
    ),
    "lstm_c_state": (
        lambda: _functional(lambda x: L.LSTM(3, return_state=True, name="l")(x)[2]),
        ["'l'", "LSTM", "output 2", "state c", "not supported"],
    ),
    "bidirectional_state": (
        lambda: _functional(
            lambda x: L.Bidirectional(L.GRU(3, return_state=True), name="bi")(x)[1]
        ),
        ["'bi'", "Bidirectional", "state output 1", "merged output"],
    ),
    "unroll_mask_backward": (
        lambda: layers_model(
            [L.Embedding(9, 3, mask_zero=True), L.GRU(3, unroll=True, go_backwards=True, name="g")],
            vocab=9,
            seq_len=5,
        ),
        ["'g'", "unroll=True", "mask", "supported: unroll=False"],
    ),
    "unroll_mask_bidirectional": (
        lambda: layers_model(
            [L.Masking(), L.Bidirectional(L.GRU(3, unroll=True), name="bi")], seq_len=5
        ),
        ["'bi'", "Bidirectional", "unroll=True", "backward", "supported: unroll=False"],
    ),
    "zero_output_for_mask": (
        lambda: layers_model(
            [
                L.Embedding(9, 3, mask_zero=True),
                L.GRU(3, zero_output_for_mask=True, return_sequences=True, name="g"),
            ],
            vocab=9,
        ),
        ["'g'", "zero_output_for_mask=True", "supported: False"],
    ),
    "time_distributed_layer_norm": (
        lambda: layers_model([L.TimeDistributed(L.LayerNormalization(), name="td")]),
        ["'td'", "TimeDistributed", "wraps LayerNormalization", "supported: Dense"],
    ),
    "mixed_precision": (
        lambda: layers_model([L.GRU(3, dtype="mixed_float16", name="g")]),
        ["'g'", "dtype='mixed_float16'", "supported: 'float32'"],
    ),
    "dense_gelu": (
        lambda: layers_model([L.Dense(3, activation="gelu", name="d")]),
        ["'d'", "Dense", "activation='gelu'", "'softmax'"],
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_options_name_the_problem(case, tmp_path):
    make, words = REFUSED[case]
    model = make()
    with pytest.raises(UnsupportedLayerError) as live:
        from_keras(model)
    for word in words:
        assert word in str(live.value), f"{word!r} missing from: {live.value}"
    # The file route refuses with the same message.
    path = tmp_path / "m.keras"
    model.save(path)
    with pytest.raises(UnsupportedLayerError) as from_file:
        from_keras_file(path)
    assert str(from_file.value) == str(live.value)


@pytest.mark.parametrize("key", ["masked_bilstm_post", "conv_bn_gru", "stacked_mixed_middle"])
def test_legacy_h5_from_keras3_gives_the_live_bytes(key, tmp_path):
    model = _built(key)[0]
    path = tmp_path / "m.h5"
    model.save(path)  # Keras 3's legacy HDF5 full-model format
    edgegru.convert(path, tmp_path / "file.egru")
    edgegru.convert(model, tmp_path / "live.egru")
    assert (tmp_path / "file.egru").read_bytes() == (tmp_path / "live.egru").read_bytes()


def _tf_keras2_file(path, recurrent_activation="sigmoid", nested=False):
    """A tf.keras 2.15-style HDF5 full model written by hand: Sequential without an InputLayer
    entry (batch_input_shape on the first layer), list-style configs, weight_names per layer."""
    import json

    import h5py

    rng = np.random.default_rng(0)
    gru_w = [rng.normal(0, 0.5, (3, 12)), rng.normal(0, 0.5, (4, 12)), rng.normal(0, 0.3, (2, 12))]
    dense_w = [rng.normal(0, 0.5, (4, 2)), rng.normal(0, 0.3, (2,))]
    gru_cfg = {
        "name": "gru",
        "trainable": True,
        "batch_input_shape": [None, None, 3],
        "dtype": "float32",
        "return_sequences": False,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
        "time_major": False,
        "units": 4,
        "activation": "tanh",
        "recurrent_activation": recurrent_activation,
        "use_bias": True,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "implementation": 2,
        "reset_after": True,
    }
    dense_cfg = {"name": "dense", "dtype": "float32", "units": 2, "activation": "softmax"}
    layers = [
        {"class_name": "GRU", "config": gru_cfg},
        {"class_name": "Dense", "config": dense_cfg},
    ]
    if nested:
        layers = [{"class_name": "Sequential", "config": {"name": "inner", "layers": layers}}]
    config = {"class_name": "Sequential", "config": {"name": "tf2_model", "layers": layers}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        weights = f.create_group("model_weights")
        for name, arrays, wnames in (
            ("gru", gru_w, ["gru/gru_cell/kernel:0", "gru/gru_cell/recurrent_kernel:0"]),
            ("dense", dense_w, ["dense/kernel:0", "dense/bias:0"]),
        ):
            if name == "gru":
                wnames = [*wnames, "gru/gru_cell/bias:0"]
            g = weights.create_group(name)
            g.attrs["weight_names"] = [n.encode() for n in wnames]
            for n, a in zip(wnames, arrays, strict=True):
                g.create_dataset(n, data=np.asarray(a, np.float32))
    return gru_w, dense_w


def test_legacy_h5_from_tf_keras2(tmp_path):
    path = tmp_path / "tf2.h5"
    gru_w, dense_w = _tf_keras2_file(path)
    irm = from_keras(path)
    gru, dense = irm.layers
    assert irm.input == ir.InputSpec(ir.FEATURES, 3, None)
    assert irm.source["keras_version"] == "2.15.0"
    np.testing.assert_array_equal(gru.kernel, np.float32(gru_w[0]))
    np.testing.assert_array_equal(gru.recurrent_kernel, np.float32(gru_w[1]))
    np.testing.assert_array_equal(gru.input_bias, np.float32(gru_w[2][0]))
    np.testing.assert_array_equal(gru.recurrent_bias, np.float32(gru_w[2][1]))
    np.testing.assert_array_equal(dense.kernel, np.float32(dense_w[0]))
    assert (dense.activation, gru.reset_after) == ("softmax", True)
    # The same weights in a Keras 3 model give the same numbers.
    km = layers_model([L.GRU(4), L.Dense(2, activation="softmax")])
    km.layers[0].set_weights(gru_w)
    km.layers[1].set_weights(dense_w)
    x = random_inputs(km, 3, 6)
    np.testing.assert_allclose(reference.forward(irm, x), _predict(km, x), atol=FP32_TOLERANCE)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"recurrent_activation": "hard_sigmoid"}, ["'gru'", "hard_sigmoid", "0.2 x + 0.5"]),
        ({"nested": True}, ["nests the model 'inner'"]),
    ],
)
def test_legacy_h5_refusals_say_how_to_resave(kwargs, words, tmp_path):
    path = tmp_path / "tf2.h5"
    _tf_keras2_file(path, **kwargs)
    with pytest.raises(edgegru.UnsupportedError) as info:
        edgegru.convert(path, tmp_path / "m.egru")
    message = str(info.value)
    for word in [*words, "legacy" if "nested" in kwargs else "tf.keras 2", "model.save('m.keras')"]:
        assert word in message, f"{word!r} missing from: {message}"
    assert not (tmp_path / "m.egru").exists()
