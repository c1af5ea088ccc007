"""The int16x8 (integer-only) C runtime against its specification, the numpy emulation
edgegru.int16x8 (docs/quantization.md, "int16x8"): bit for bit, with every kernel set, on random
models of every layer kind it covers, on hostile inputs and on hostile files."""

from __future__ import annotations

import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from int16x8_layers import dense as _dense
from int16x8_layers import gru as _gru
from int16x8_layers import lstm as _lstm
from int16x8_layers import rnn as _rnn
from int16x8_layers import sequence_models

import edgegru
from edgegru import format as fmt
from edgegru import int16x8 as q16
from edgegru import ir

ROOT = Path(__file__).resolve().parents[1]
KERNEL_SETS = edgegru.available_kernels()


ACTS = ["linear", "relu", "sigmoid", "tanh", "hard_sigmoid", "softsign", "elu", "softplus"]
ACTS += ["leaky_relu"]


def _cases():
    """(name, IR model): every layer kind, activation and flag int16x8 implements."""
    rng = np.random.default_rng(11)
    F = ir.InputSpec("features", 5)
    for act in ACTS:
        yield f"gru-after-{act}", ir.Model(F, [_gru(rng, 5, 7, True, act), _dense(rng, 7, 2, act)])
        yield f"gru-before-{act}", ir.Model(F, [_gru(rng, 5, 6, False, act, seq=True)])
        yield f"lstm-{act}", ir.Model(F, [_lstm(rng, 5, 6, act), _dense(rng, 6, 3, "softmax")])
        yield f"rnn-{act}", ir.Model(F, [_rnn(rng, 5, 9, act, seq=True), _dense(rng, 9, 2, act)])
    for ract in ("hard_sigmoid", "sigmoid"):
        yield f"gru-ract-{ract}", ir.Model(F, [_gru(rng, 5, 8, True, ract=ract)])
        yield f"lstm-ract-{ract}", ir.Model(F, [_lstm(rng, 5, 8, ract=ract, seq=True)])
    yield (
        "stack-back",
        ir.Model(
            F,
            [
                _dense(rng, 5, 6, "relu"),
                _lstm(rng, 6, 5, seq=True, back=True),
                _gru(rng, 5, 4, False, seq=True),
                _rnn(rng, 4, 3, "relu"),
                _dense(rng, 3, 4, "softmax"),
            ],
        ),
    )
    yield (
        "masking",
        ir.Model(F, [ir.Masking(5, 0.0), _gru(rng, 5, 6, seq=True), _dense(rng, 6, 2, "sigmoid")]),
    )
    yield (
        "masking-back",
        ir.Model(F, [ir.Masking(5, 1.5), _rnn(rng, 5, 6, back=True), _dense(rng, 6, 2, "tanh")]),
    )
    # a go_backwards sequence feeding another recurrent layer: Keras passes the mask on unchanged
    yield (
        "masking-back-seq-rnn",
        ir.Model(
            F,
            [
                ir.Masking(5, 0.0),
                _gru(rng, 5, 4, seq=True, back=True),
                _gru(rng, 4, 5),
                _dense(rng, 5, 2, "linear"),
            ],
        ),
    )
    T = ir.InputSpec("tokens", 40)
    yield (
        "tokens-back-seq-rnn",
        ir.Model(
            T,
            [
                ir.Embedding(rng.normal(0, 1, (40, 6)), mask_zero=True),
                _lstm(rng, 6, 5, seq=True, back=True),
                _rnn(rng, 5, 4, seq=True),
            ],
        ),
    )
    yield (
        "tokens-mask-zero",
        ir.Model(
            T,
            [
                ir.Embedding(rng.normal(0, 1, (40, 6)), mask_zero=True),
                _gru(rng, 6, 8, seq=True),
                _lstm(rng, 8, 4),
                _dense(rng, 4, 1, "sigmoid"),
            ],
        ),
    )
    yield (
        "tokens-dense-seq",
        ir.Model(T, [ir.Embedding(rng.normal(0, 2, (40, 3))), _dense(rng, 3, 4, "softmax")]),
    )


CASES = list(_cases())


def _inputs(model, rng, batch=6, steps=9, scale=1.0):
    steps = model.input.seq_len or steps  # a Flatten fixes T
    if model.input.kind == ir.TOKENS:
        ids = rng.integers(0, model.input.dim, (batch, steps))
        ids[: batch // 2, steps // 2 :] = 0  # padding (masked with mask_zero)
        return ids
    x = scale * rng.standard_normal((batch, steps, model.input.dim)).astype(np.float32)
    x[: batch // 2, steps // 2 :] = 0.0  # padding (masked by Masking(0.0))
    x[-1, 1] = 1.5  # a step equal to the other Masking's mask_value
    return x


def _blob(model, calibration):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # calibration given: no warning
        return fmt.write(model, quantize="int16x8", calibration=calibration)


@pytest.mark.parametrize("name, model", CASES, ids=[n for n, _ in CASES])
def test_runtime_equals_the_emulation_bit_for_bit(name, model):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    blob = _blob(model, _inputs(model, rng, batch=32))
    assert fmt.read_header(blob)["quant_version"] == 2
    qm = q16.from_blob(blob)
    x = _inputs(model, rng)
    tokens = model.input.kind == ir.TOKENS
    for inputs in (x,) if tokens else (x, x * 3):  # and beyond the calibrated ranges
        want = q16.forward_int(qm, inputs)
        for kernels in KERNEL_SETS:
            got = edgegru.load(blob, kernels=kernels).predict_int(inputs)
            assert got.dtype == np.int16 and got.shape == want.shape
            assert np.array_equal(got, want), (name, kernels, np.abs(got - want).max())
    m = edgegru.load(blob)
    scale = np.float64(m.scales[1])
    want = (q16.forward_int(qm, x).astype(np.float64) * scale).astype(np.float32)
    assert np.array_equal(m.predict(x), want)


def test_the_file_round_trips_the_in_memory_model():
    _, model = CASES[0]
    rng = np.random.default_rng(3)
    cal = _inputs(model, rng, batch=16)
    qm = q16.quantize(model, calibration=cal)
    back = q16.from_blob(_blob(model, cal))
    for (w1, m1), (w2, m2) in zip(q16.layer_qparams(qm), q16.layer_qparams(back), strict=True):
        assert np.array_equal(w1, w2)
        assert all(np.array_equal(a, b) for a, b in zip(m1, m2, strict=True))
    x = _inputs(model, rng)
    assert np.array_equal(q16.forward_int(qm, x), q16.forward_int(back, x))


def test_int16_inputs_and_masking_compare_integers():
    """int16 features pass through (-32768 reads as -32767); a Masking layer then compares them
    with the quantized mask value, float features with mask_value itself (Keras)."""
    _, model = next(c for c in CASES if c[0] == "masking-back")
    rng = np.random.default_rng(5)
    blob = _blob(model, _inputs(model, rng, batch=16))
    qm = q16.from_blob(blob)
    m = edgegru.load(blob)
    mq = q16.mask_value_q(qm)
    xi = rng.integers(-32768, 32768, (5, 7, 5)).astype(np.int16)
    xi[0, 2:] = mq  # masked steps
    xi[1, :, 0] = -32768
    for kernels in KERNEL_SETS:
        got = edgegru.load(blob, kernels=kernels).predict_int(xi)
        assert np.array_equal(got, q16.forward_int(qm, xi))
    # a float step whose features all quantize to mask_q but differ from mask_value is valid
    s = float(m.scales[0])
    xf = np.full((1, 3, 5), 1.5, dtype=np.float32)
    xf[0, 1] = np.float32(1.5 + 0.25 * s)  # rounds to the same int16, not equal in float
    want = q16.forward_int(qm, xf)
    assert np.array_equal(m.predict_int(xf), want)
    assert not np.array_equal(want, q16.forward_int(qm, q16.quantize_input(qm, xf)))


def test_extreme_scales_and_wide_products():
    """Calibrations 1e-6 and 1e4 wide (multipliers near both ends of their range), and products
    wider than 516 columns (the int32 blocks) and than 1032 (the 64-bit product of mul)."""
    rng = np.random.default_rng(8)
    for width, scale in ((3, 1e-6), (3, 1e4), (600, 1.0), (1100, 1.0)):
        model = ir.Model(
            ir.InputSpec("features", width),
            [_gru(rng, width, 5, act="relu"), _dense(rng, 5, 2, "linear")],
        )
        if width == 1100:  # every weight of one row +-max: |sum| reaches 127 * 32767 * 1100
            model.layers[0].kernel[:, 0] = 1.0
        blob = _blob(model, _inputs(model, rng, batch=8, scale=scale))
        qm = q16.from_blob(blob)
        x = _inputs(model, rng, batch=4, scale=scale * 50)
        for kernels in KERNEL_SETS:
            got = edgegru.load(blob, kernels=kernels).predict_int(x)
            assert np.array_equal(got, q16.forward_int(qm, x)), (width, scale, kernels)


def test_arena_does_not_grow_with_the_sequence_or_the_batch():
    _, model = next(c for c in CASES if c[0] == "stack-back")
    m = edgegru.load(_blob(model, _inputs(model, np.random.default_rng(1))))
    sizes = {
        m.arena_size(b, t, minimal=low) for b in (1, 64) for t in (1, 5000) for low in (False, True)
    }
    assert len(sizes) == 1 and sizes.pop() < 1024


def test_apis_refuse_the_other_dtype():
    _, model = CASES[0]
    rng = np.random.default_rng(2)
    x = _inputs(model, rng)
    q = edgegru.load(_blob(model, x))
    with pytest.raises(edgegru.EdgeGRUError, match="wrong data type"):
        q._rt.forward_features(np.zeros((1, 2, 5), np.float32))
    with pytest.raises(edgegru.EdgeGRUError, match="wrong data type"):  # float session step
        q.stream()._session.step_features(np.zeros((1, 5), np.float32))
    f = edgegru.load(fmt.write(model))
    with pytest.raises(edgegru.EdgeGRUError, match="wrong data type"):
        f._rt.forward_s16(np.zeros((1, 2, 5), np.int16))
    with pytest.raises(edgegru.UnsupportedError, match="int16x8"):
        f.predict_int(x)
    with pytest.raises(edgegru.UnsupportedError, match="pack"):
        edgegru.load(_blob(model, x), pack=True)
    with pytest.raises(edgegru.InputError, match="NaN"):
        q.predict(np.full((1, 2, 5), np.nan, np.float32))


def test_unsupported_layers_are_refused_by_name():
    rng = np.random.default_rng(4)
    F = ir.InputSpec("features", 4)
    for model, name in (
        (ir.Model(F, [_gru(rng, 4, 3, ract="relu")]), "relu"),
        (ir.Model(F, [_lstm(rng, 4, 3, ract="linear")]), "linear"),
    ):
        with pytest.raises(edgegru.UnsupportedError, match=name):
            fmt.write(model, quantize="int16x8", calibration=np.ones((2, 3, 4), np.float32))


def _with_crcs(blob: bytearray) -> bytes:
    body_crc = zlib.crc32(bytes(blob[128:]))
    struct.pack_into("<I", blob, 120, body_crc)
    struct.pack_into("<I", blob, 124, zlib.crc32(bytes(blob[:124])))
    return bytes(blob)


def test_hostile_qparams_are_rejected_by_both_readers():
    """Every rule of docs/format.md's "Integer-only files", broken in a file with valid CRCs."""
    _, model = CASES[0]
    blob = _blob(model, _inputs(model, np.random.default_rng(6)))
    h = fmt.read_header(blob)
    rec = h["tensor_table_offset"] + 4 * h["tensor_record_size"]  # the GRU's QPARAMS
    assert blob[rec + 3] == fmt.ROLE_QPARAMS
    words = h["data_offset"] + struct.unpack_from("<I", blob, rec + 20)[0]
    rows = 3 * 7

    def word(k, v):
        bad = bytearray(blob)
        struct.pack_into("<i", bad, words + 4 * k, v)
        return _with_crcs(bad)

    cases = {
        "small multiplier": word(8, 2**30 - 1),
        "shift 63": word(8 + rows, 63),
        "negative shift": word(8 + rows, -1),
        "bias beyond G": word(8 + 2 * rows, 2**30 + 1),
        "out_fmt 2": word(4, 2),
        "reserved word": word(6, 1),
        "mask_q outside a Masking": word(5, 3),
        "out multiplier": word(2, 5),
    }
    short = bytearray(blob)
    struct.pack_into("<I", short, rec + 4, 8 + 3 * rows - 1)  # one word short
    struct.pack_into("<I", short, rec + 24, 4 * (8 + 3 * rows - 1))
    cases["count"] = _with_crcs(short)
    f32 = bytearray(blob)
    f32[rec] = fmt.DTYPE_F32  # QPARAMS as float32
    cases["dtype"] = _with_crcs(f32)
    for what, bad in cases.items():
        with pytest.raises(edgegru.FormatError):
            edgegru.load(bad)
        with pytest.raises(fmt.FormatError):
            fmt.read(bad)
        assert what


def test_every_single_byte_corruption_is_rejected():
    _, model = CASES[0]
    blob = _blob(model, _inputs(model, np.random.default_rng(9)))
    for i in range(0, len(blob), 7):
        bad = bytearray(blob)
        bad[i] ^= 0x5A
        with pytest.raises(edgegru.FormatError):
            edgegru.load(bytes(bad))


def test_activation_tables_are_what_the_generator_writes():
    """ext/src/int16x8/egru_q16_tables.c: the specification's tables and multipliers."""
    tool = ROOT / "tools" / "gen_q16_tables.py"
    r = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = (ROOT / "ext/src/int16x8/egru_q16_tables.c").read_text()
    assert f"{{{q16._LOG2E.m}, {q16._LOG2E.n}}}" in text
    assert str(int(q16.SIG[1])) in text and len(q16.SIG) == 513


def test_cli_convert_calibration_and_info(tmp_path, capsys):
    import keras

    from edgegru.cli import main as cli

    model = keras.Sequential(
        [keras.Input((None, 4)), keras.layers.GRU(6), keras.layers.Dense(2, activation="softmax")]
    )
    model.save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "cal.npy", rng.standard_normal((16, 8, 4)).astype(np.float32))
    out = tmp_path / "m.egru"
    argv = ["convert", str(tmp_path / "m.keras"), "-o", str(out), "--quantize", "int16x8"]
    assert cli([*argv, "--calibration", str(tmp_path / "cal.npy")]) == 0
    assert "int16x8" in capsys.readouterr().out
    assert cli(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "int16x8 integer-only" in text and "state scale Q15" in text and "input 0." in text
    assert cli(["convert", str(tmp_path / "m.keras"), "--calibration", str(out)]) == 2
    x = rng.standard_normal((3, 8, 4)).astype(np.float32)
    want = q16.forward(q16.from_blob(out.read_bytes()), x)
    got = edgegru.load(out).predict(x)
    assert np.array_equal(got, want.astype(np.float32))


SEQUENCE_CASES = [
    *sequence_models(),
    (
        "stack-seq-back-later",  # go_backwards after another recurrent layer: the sequence plan
        ir.Model(
            ir.InputSpec("features", 5),
            [ir.Masking(5, 0.0), _gru(np.random.default_rng(8), 5, 6, seq=True),
             _lstm(np.random.default_rng(9), 6, 4, seq=True, back=True),
             _dense(np.random.default_rng(10), 4, 2, "tanh")],
        ),
    ),
    (
        "conv-valid-sequence-out",  # the output is a shorter sequence
        ir.Model(
            ir.InputSpec("features", 5),
            [ir.Conv1D(np.random.default_rng(11).normal(0, 0.4, (3, 5, 4)), np.zeros(4),
                       strides=2, padding="valid", activation="relu")],
        ),
    ),
]  # fmt: skip


@pytest.mark.parametrize("name, model", SEQUENCE_CASES, ids=[n for n, _ in SEQUENCE_CASES])
def test_sequence_plan_equals_the_emulation_bit_for_bit(name, model):
    """Conv1D, GlobalPool, Flatten, Bidirectional (every merge mode, masks), Affine, Activation:
    the C runtime's integers are the emulation's, for every kernel set."""
    test_runtime_equals_the_emulation_bit_for_bit(name, model)


def test_sequence_plan_arena_grows_with_the_sequence_only():
    _, model = next(c for c in SEQUENCE_CASES if c[0] == "bidi-gru-concat")
    m = edgegru.load(_blob(model, _inputs(model, np.random.default_rng(1))))
    assert m.arena_size(1, 50) == m.arena_size(64, 50) == m.arena_size(1, 50, minimal=True)
    grow = m.arena_size(1, 100) - m.arena_size(1, 50)
    # two (T, width) int16 sequences and T validity bytes: 2 * 2 * 6 * 50 + 50 (rounded)
    assert 2 * 2 * 6 * 50 + 48 <= grow <= 2 * 2 * 6 * 50 + 56, grow


def test_sequence_shapes_that_do_not_fit_are_refused():
    rng = np.random.default_rng(12)
    _, conv = next(c for c in SEQUENCE_CASES if c[0] == "conv-valid-sequence-out")
    m = edgegru.load(_blob(conv, _inputs(conv, rng)))
    assert m.predict_int(np.ones((2, 7, 5), np.int16)).shape == (2, 3, 4)
    with pytest.raises(edgegru.InputError, match="at least 3 steps"):
        m.predict_int(np.ones((2, 2, 5), np.int16))  # shorter than the window
    with pytest.raises(edgegru.EdgeGRUError, match="status -12"):  # the C runtime checks too
        m._rt.forward_s16(np.ones((2, 2, 5), np.int16))
    _, flat = next(c for c in SEQUENCE_CASES if c[0].startswith("affine-activation-gru-flatten"))
    f = edgegru.load(_blob(flat, rng.standard_normal((4, 20, 6)).astype(np.float32)))
    with pytest.raises(edgegru.InputError, match="exactly 20 steps"):
        f.predict(rng.standard_normal((1, 19, 6)).astype(np.float32))


def _qparams_words(blob, layer):
    """(byte offset, word count) of layer `layer`'s QPARAMS words in an int16x8 file."""
    h = fmt.read_header(blob)
    recs = [
        h["tensor_table_offset"] + i * h["tensor_record_size"] for i in range(h["tensor_count"])
    ]
    qp = [r for r in recs if blob[r + 3] == fmt.ROLE_QPARAMS]
    r = qp[layer]
    return h["data_offset"] + struct.unpack_from("<I", blob, r + 20)[0], struct.unpack_from(
        "<I", blob, r + 4
    )[0]


def test_hostile_qparams_of_the_sequence_layers():
    """The words 5-7 of Bidirectional, Activation and LayerNorm, the backward block's header, and
    the signed multipliers of Affine and LayerNorm: broken in files with valid CRCs, refused by
    both readers."""
    rng = np.random.default_rng(16)
    named = dict(SEQUENCE_CASES)
    bidi = _blob(named["bidi-gru-concat"], _inputs(named["bidi-gru-concat"], rng))
    flat = named["affine-activation-gru-flatten"]
    affine = _blob(flat, _inputs(flat, rng))

    def word(blob, layer, k, v):
        at, count = _qparams_words(blob, layer)
        assert 0 <= k < count
        bad = bytearray(blob)
        struct.pack_into("<i", bad, at + 4 * k, v)
        return _with_crcs(bad)

    ln_model = named["masked-layernorm-gru-layernorm"]
    norm = _blob(ln_model, _inputs(ln_model, rng))
    tok_model = named["tokens-bidi-gru-seq-conv"]
    tokens = _blob(tok_model, _inputs(tok_model, rng))
    _, count = _qparams_words(bidi, 0)
    half = count // 2
    nan_bits = int(np.array(np.float32("nan")).view(np.int32))
    one_bits = int(np.array(np.float32(1.0)).view(np.int32))
    cases = {
        "backward header differs": word(bidi, 0, half + 1, 1),
        "state scale 0": word(bidi, 0, 5, 0),
        "state scale NaN": word(bidi, 0, 5, nan_bits),
        "merge multiplier": word(bidi, 0, 6, 5),
        "backward product multiplier": word(bidi, 0, half + 8, 7),
        "affine multiplier magnitude": word(affine, 0, 8, -(2**30 - 1)),
        "affine int32 min": word(affine, 0, 8, -(2**31)),
        "activation input multiplier": word(affine, 2, 6, 5),
        "aux word of a Dense": word(affine, 4, 7, 3),
        "layernorm epsilon high word": word(norm, 1, 6, -1),
        "layernorm epsilon low word": word(norm, 1, 7, -5),
        "layernorm gamma multiplier": word(norm, 1, 8, 2**29),
        # the output conversion must be the one the op and its activation have
        "affine header multiplier signed": word(affine, 0, 2, -(2**30)),
        "relu Activation stored as U": word(affine, 2, 4, 1),
        "softmax Dense stored as G": word(affine, 4, 4, 0),
        "a multiplier on a Flatten": word(affine, 3, 2, 2**30),
        "output scale 0": word(affine, 0, 1, 0),
        "input scale NaN": word(affine, 1, 0, nan_bits),
        "embedding input scale": word(tokens, 0, 0, one_bits),
    }
    for what, bad in cases.items():
        with pytest.raises(edgegru.FormatError):
            edgegru.load(bad)
        with pytest.raises(fmt.FormatError):
            fmt.read(bad)
        assert what
    # a negative Affine multiplier of a valid magnitude is a valid file (a negative scale)
    at, _ = _qparams_words(affine, 0)
    m0 = struct.unpack_from("<i", affine, at + 32)[0]
    edgegru.load(word(affine, 0, 8, -m0))
