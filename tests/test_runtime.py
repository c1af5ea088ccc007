"""The C runtime through Python (edgegru.load / Model.predict) against the float64 reference,
and its handling of bad input."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from ir_models import CASES, MORE_CASES, build, build_more, inputs, masked_inputs

import edgegru
from edgegru import format as fmt
from edgegru import ir, reference
from edgegru.runtime import KERNEL_SETS
from edgegru.validate import FP32_TOLERANCE


@pytest.fixture(scope="module")
def loaded():
    """case name -> (ir model, loaded edgegru model), each built once."""
    cache = {}

    def get(name):
        if name not in cache:
            m = build(name)
            cache[name] = (m, edgegru.load(fmt.write(m)))
        return cache[name]

    return get


@pytest.mark.parametrize("steps", [1, 7, 50])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("case_name", list(CASES))
def test_matches_reference(loaded, case_name, batch, steps):
    model, em = loaded(case_name)
    x = inputs(model, batch, steps, seed=batch * 100 + steps)
    got = em.predict(x)
    want = reference.forward(model, x)
    assert got.dtype == np.float32
    assert got.shape == model.output_shape(batch, steps) == want.shape
    err = float(np.max(np.abs(got - want)))
    assert err <= FP32_TOLERANCE, f"{case_name}: max abs error {err:.3g}"


def _steps_for(name: str) -> tuple:
    if name == "activation_flatten":
        return (6,)  # Flatten fixes T
    return (1, 7, 12) if not name.startswith("conv_valid") else (3, 7, 12)


@pytest.mark.parametrize("case_name", list(MORE_CASES))
def test_more_layers_match_reference(case_name):
    """Issue #3 layers and options, with padded inputs (post, pre, middle, none, all) for the
    masked cases: the C runtime equals the float64 reference within FP32_TOLERANCE (NaN where
    the reference has NaN: a masked average over no valid step is 0 / 0, as in Keras)."""
    model = build_more(case_name)
    em = edgegru.load(fmt.write(model))
    back, _ = fmt.read(fmt.write(model))
    for steps in _steps_for(case_name):
        make = masked_inputs if case_name.startswith("mask") else inputs
        x = make(model, 5, steps, seed=steps)
        want = reference.forward(model, x)
        got = em.predict(x)
        assert got.shape == want.shape == model.output_shape(5, steps)
        np.testing.assert_allclose(got, want, rtol=0, atol=FP32_TOLERANCE, equal_nan=True)
        np.testing.assert_array_equal(reference.forward(back, x), want)  # file round trip


def test_seed_model_size(loaded):
    """Embedding(20000,128) -> GRU(128) -> Dense(1, sigmoid), T=200, the issue's seed model."""
    from ir_models import dense, embedding, gru, tok

    rng = np.random.default_rng(7)
    model = tok(
        20000, embedding(rng, 20000, 128), gru(rng, 128, 128), dense(rng, 128, 1, "sigmoid")
    )
    em = edgegru.load(fmt.write(model))
    x = inputs(model, 2, 200, seed=3)
    err = float(np.max(np.abs(em.predict(x) - reference.forward(model, x))))
    assert err <= FP32_TOLERANCE
    assert em.param_count == 20000 * 128 + 3 * 128 * (128 + 128 + 2) + 128 + 1


def test_each_row_is_independent_of_the_batch(loaded):
    model, em = loaded("tokens_gru_sigmoid_reset_after")
    x = inputs(model, 5, 9, seed=11)
    whole = em.predict(x)
    rows = np.concatenate([em.predict(x[i : i + 1]) for i in range(5)])
    np.testing.assert_array_equal(whole, rows)


def test_accepts_any_integer_dtype_and_float64_features(loaded):
    model, em = loaded("tokens_gru_sigmoid_reset_after")
    x = inputs(model, 2, 5)
    ref = em.predict(x)
    for dtype in (np.int32, np.int16, np.uint8, np.uint64):
        np.testing.assert_array_equal(em.predict(x.astype(dtype)), ref)
    np.testing.assert_array_equal(em.predict(x.tolist()), ref)
    fmodel, fem = loaded("features_gru_softmax_reset_after")
    xf = inputs(fmodel, 2, 5)
    np.testing.assert_array_equal(fem.predict(xf.astype(np.float64)), fem.predict(xf))
    # A non-contiguous view gives the same numbers as its copy.
    xs = np.asfortranarray(xf)
    np.testing.assert_array_equal(fem.predict(xs), fem.predict(xf))


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((3,), np.int64), "expected token ids of shape (batch, T)"),
        (np.zeros((2, 3, 1), np.int64), "expected token ids of shape (batch, T)"),
        (np.zeros((2, 3), np.float32), "token ids must be an integer array"),
        (np.zeros((0, 3), np.int64), "batch and sequence length must be >= 1"),
        (np.zeros((2, 0), np.int64), "batch and sequence length must be >= 1"),
        (np.array([[1, 2, 40]]), "token id 40 at position (0, 2) is out of range"),
        (np.array([[1, -1, 3]]), "token id -1 at position (0, 1) is out of range"),
        (np.array([[2**40]]), "is out of range"),
        (np.array([["a"]]), "token ids must be an integer array"),
    ],
)
def test_bad_token_input_is_a_clear_error(loaded, x, message):
    _, em = loaded("tokens_gru_sigmoid_reset_after")  # vocabulary 40
    with pytest.raises(edgegru.InputError) as info:
        em.predict(x)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((2, 3), np.float32), "expected features of shape (batch, T, 5)"),
        (np.zeros((2, 3, 4), np.float32), "expected 5 features per step, got 4"),
        (np.zeros((2, 3, 5), np.int32), "features must be a float array"),
        (np.zeros((2, 3, 5), np.complex64), "features must be a float array"),
        (np.full((1, 2, 5), np.nan, np.float32), "input contains nan at position (0, 0, 0)"),
        (np.full((1, 2, 5), np.inf, np.float64), "NaN and infinity are not valid inputs"),
        (np.full((1, 2, 5), 1e300, np.float64), "1e+300 at position (0, 0, 0) does not fit"),
    ],
)
def test_bad_feature_input_is_a_clear_error(loaded, x, message):
    _, em = loaded("features_gru_softmax_reset_after")  # 5 features
    with pytest.raises(edgegru.InputError) as info:
        em.predict(x)
    assert message in str(info.value)


def test_c_runtime_checks_inputs_too(loaded):
    """The C layer's own checks (below the Python ones) answer with its status codes."""
    _, em = loaded("tokens_gru_sigmoid_reset_after")
    rt = em._rt
    with pytest.raises(edgegru.EdgeGRUError, match="token id is negative") as info:
        rt.forward_tokens(np.array([[1, 99]], dtype=np.int32))
    assert info.value.code == -15
    _, fem = loaded("features_gru_softmax_reset_after")
    with pytest.raises(edgegru.EdgeGRUError, match="NaN or infinity"):
        fem._rt.forward_features(np.full((1, 1, 5), np.nan, np.float32))
    with pytest.raises(edgegru.EdgeGRUError, match="expected 5 features"):
        fem._rt.forward_features(np.zeros((1, 1, 4), np.float32))


def test_shared_between_threads(loaded):
    """One loaded model, four threads, each predicting its own inputs: same answers as serially."""
    model, em = loaded("stacked_gru_linear")
    xs = [inputs(model, 2, 30, seed=s) for s in range(8)]
    want = [em.predict(x) for x in xs]
    got = [None] * len(xs)

    def work(k):
        for _ in range(5):
            got[k] = em.predict(xs[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_model_description(loaded):
    _model, em = loaded("tokens_stacked_sequence_output")
    assert em.input_kind == "tokens" and em.input_dim == 30
    assert em.output_is_sequence and em.output_dim == 6
    layers = em.layers()
    assert [d["op"] for d in layers] == ["Embedding", "GRU", "GRU"]
    assert layers[1]["macs_per_step"] == 3 * 12 * (8 + 12)
    assert sum(d["param_count"] for d in layers) == em.param_count
    assert em.arena_size(1, 100) >= 2 * 100 * 12 * 4
    assert em.output_shape(2, 5) == (2, 5, 6)
    assert "tokens[30]" in repr(em)


def test_load_from_path_and_bytes(tmp_path, loaded):
    model, _ = loaded("features_gru_softmax_reset_before")
    blob = fmt.write(model)
    p = tmp_path / "m.egru"
    p.write_bytes(blob)
    x = inputs(model, 2, 4)
    a = edgegru.load(p).predict(x)
    b = edgegru.load(str(p)).predict(x)
    c = edgegru.load(bytearray(blob)).predict(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert edgegru.load(p).path == str(p)


def _foldable() -> list:
    """Token cases that start Embedding -> recurrent layer (the ones fold_embedding applies to)."""
    out = []
    for family, names, make in (("base", CASES, build), ("more", MORE_CASES, build_more)):
        for name in names:
            model = make(name)
            if model.input.kind == "tokens" and isinstance(
                model.layers[1], (*ir.RECURRENT, ir.Bidirectional)
            ):
                out.append((family, name))
    return out


@pytest.mark.parametrize("kernels", edgegru.available_kernels())
@pytest.mark.parametrize(("family", "name"), _foldable(), ids=lambda v: str(v))
def test_fold_embedding_matches_reference(family, name, kernels):
    """Folded projections (lookup instead of product) keep every result within FP32_TOLERANCE
    of the float64 reference, masks included, in predict and in a stream."""
    model = build(name) if family == "base" else build_more(name)
    em = edgegru.load(fmt.write(model), kernels=kernels, fold_embedding=True)
    first = model.layers[1]
    units = first.forward.units if isinstance(first, ir.Bidirectional) else first.units
    dirs = 2 if isinstance(first, ir.Bidirectional) else 1
    gates = {ir.GRU: 3, ir.LSTM: 4, ir.SimpleRNN: 1}[type(first.forward if dirs == 2 else first)]
    assert em.fold_bytes == model.input.dim * dirs * gates * units * 4
    x = masked_inputs(model, 5, 9, seed=4)
    want = reference.forward(model, x)
    np.testing.assert_allclose(em.predict(x), want, rtol=0, atol=FP32_TOLERANCE, equal_nan=True)
    unfolded = edgegru.load(fmt.write(model), kernels=kernels, fold_embedding=False)
    # The same products (the set's, on the same layout) computed once: bit-equal with every set.
    np.testing.assert_array_equal(em.predict(x), unfolded.predict(x))
    unpacked = edgegru.load(fmt.write(model), kernels=kernels, pack=False, fold_embedding=False)
    folded_unpacked = edgegru.load(
        fmt.write(model), kernels=kernels, pack=False, fold_embedding=True
    )
    np.testing.assert_array_equal(folded_unpacked.predict(x), unpacked.predict(x))


def test_fold_after_a_call_plans_the_next_call_afresh():
    """The low-level Runtime caches the last call's plan; folding changes the layer widths, so a
    call of the same shape afterwards must be planned again (and give the same numbers)."""
    model = build("tokens_gru_sigmoid_reset_after")
    em = edgegru.load(fmt.write(model), fold_embedding=False)
    x = inputs(model, 3, 9, seed=2).astype(np.int32)
    before = em.predict(x)
    em._rt.fold_embedding()
    np.testing.assert_allclose(em.predict(x), before, rtol=0, atol=FP32_TOLERANCE)


def test_fold_embedding_streams_like_predict():
    model = build_more("mask_zero_gru_sequences")
    em = edgegru.load(fmt.write(model), fold_embedding=True)
    x = masked_inputs(model, 3, 7, seed=1)
    s = em.stream(batch=3)
    steps = np.stack([s.step(x[:, t]) for t in range(7)], axis=1)
    np.testing.assert_allclose(steps, em.predict(x), rtol=0, atol=1e-6)


def test_fold_embedding_needs_embedding_then_recurrent():
    for name in ("features_gru_softmax_reset_after", "embedding_dense_no_gru"):
        with pytest.raises(edgegru.EdgeGRUError, match="fold_embedding needs a model"):
            edgegru.load(fmt.write(build(name)), fold_embedding=True)


def _strided_flatten(r):
    """Conv1D(kernel 3, stride 2, valid) -> Flatten(5 steps): (T - 3) // 2 + 1 == 5 exactly for
    T in {11, 12}."""
    return ir.Model(
        ir.InputSpec(ir.FEATURES, 3),
        [
            ir.Conv1D(r.normal(0, 0.4, (3, 3, 4)), r.normal(0, 0.3, 4), strides=2),
            ir.Flatten(5, 4),
            ir.Dense(r.normal(0, 0.3, (20, 2)), r.normal(0, 0.3, 2)),
        ],
    )


def test_fixed_seq_len_and_its_error():
    """A Flatten fixes T: fixed_seq_len says which, and another T is an InputError naming it
    (was the base EdgeGRUError 'batch and sequence length must be >= 1 ... (status -12)')."""
    em = edgegru.load(fmt.write(build_more("activation_flatten")))  # Flatten(6 steps)
    assert em.fixed_seq_len == 6 and em.seq_len_range == (6, 6)
    for t in (1, 5, 7, 100):
        for x in (np.zeros((2, t, 3), np.float32), np.zeros((2, t, 3), np.float64)):
            with pytest.raises(edgegru.InputError) as info:
                em.predict(x)
            assert str(info.value).startswith(
                "this model takes sequences of exactly 6 steps (it has a Flatten"
            )
            assert str(info.value).endswith(f"; got {t}")
        with pytest.raises(edgegru.InputError, match="exactly 6 steps"):
            em.arena_size(1, t)
        with pytest.raises(edgegru.InputError, match="exactly 6 steps"):
            em.output_shape(1, t)
    assert em.predict(np.zeros((2, 6, 3), np.float32)).shape == (2, 2) == em.output_shape(2, 6)


def test_models_without_a_fixed_seq_len():
    """Any T: None. A valid Conv1D of receptive field 3 needs T >= 3 (an InputError naming the
    layer below that), and a strided Conv1D changes the output's steps (ceil(T / 2))."""
    assert edgegru.load(fmt.write(build("stacked_gru_linear"))).seq_len_range == (1, None)
    em = edgegru.load(fmt.write(build_more("conv_valid_gru")))
    assert em.fixed_seq_len is None and em.seq_len_range == (3, None)
    with pytest.raises(edgegru.InputError, match=r"at least 3 steps \(layer 0 .*Conv1D.*got 2$"):
        em.predict(np.zeros((1, 2, 3), np.float32))
    em.predict(np.zeros((1, 3, 3), np.float32))
    strided = edgegru.load(fmt.write(build_more("conv_same_strided")))
    for t in (1, 7, 8):
        got = strided.predict(np.zeros((2, t, 3), np.float32))
        assert got.shape == strided.output_shape(2, t) == (2, -(-t // 2), 5)


def test_strided_conv_before_flatten_accepts_each_matching_length():
    model = _strided_flatten(np.random.default_rng(3))
    em = edgegru.load(fmt.write(model))
    assert em.seq_len_range == (11, 12) and em.fixed_seq_len == 11
    for t in (11, 12):
        x = inputs(model, 2, t, seed=t)
        np.testing.assert_allclose(
            em.predict(x), reference.forward(model, x), rtol=0, atol=FP32_TOLERANCE
        )
    for t in (10, 13):
        with pytest.raises(edgegru.InputError, match=rf"of 11 to 12 steps .*strided.*got {t}$"):
            em.predict(np.zeros((1, t, 3), np.float32))


@pytest.mark.parametrize("bad", [0, -1, -(2**40), 2**32, 2**70, True, 1.0, "3", None, np.int8(-1)])
def test_shape_arguments_are_checked(bad):
    """arena_size / output_shape: InputError naming the argument, never OverflowError."""
    em = edgegru.load(fmt.write(build("stacked_gru_linear")))
    for method in (em.arena_size, em.output_shape):
        with pytest.raises(edgegru.InputError, match="batch must be"):
            method(bad, 3)
        with pytest.raises(edgegru.InputError, match="seq_len must be"):
            method(2, bad)
    assert em.arena_size(np.int64(2), np.uint16(3)) == em.arena_size(2, 3)
    with pytest.raises(edgegru.InputError, match="too large for the C runtime"):
        em.arena_size(2**32 - 1, 2**32 - 1)


#: The race below: a thread flips the ids array between valid ids and 2**31 - 1 while the main
#: thread predicts and steps on it (the C calls run without the GIL). Run in a child process so
#: that a crash is a test failure, not the end of the test run.
_RACE = r"""
import sys, threading, time
import numpy as np
import edgegru
from edgegru import format as fmt
sys.path.insert(0, sys.argv[1])
from ir_models import build

model = edgegru.load(fmt.write(build("tokens_stacked_sequence_output")), kernels=sys.argv[2])
ids = np.ones((64, 200), dtype=np.int32)
good = np.arange(64 * 200, dtype=np.int32).reshape(64, 200) % model.input_dim
ids[:] = good
stop = False

def writer():
    while not stop:
        ids[:, 100:] = 2**31 - 1
        ids[:, 100:] = good[:, 100:]

stream = model.stream(batch=64)
t = threading.Thread(target=writer)
t.start()
counts = {"ok": 0, "input_error": 0}
end = time.monotonic() + float(sys.argv[3])
try:
    while time.monotonic() < end:
        for call in (lambda: model.predict(ids), lambda: stream.step(ids[:, 150])):
            try:
                call()
                counts["ok"] += 1
            except edgegru.InputError:
                counts["input_error"] += 1
finally:
    stop = True
    t.join()
print(counts["ok"], counts["input_error"])
"""


@pytest.mark.parametrize("kernels", edgegru.available_kernels())
def test_ids_written_during_a_call_never_crash(kernels):
    """Issue #10 item 2: ids checked, then overwritten by another thread before the Embedding
    read them, made the C runtime read out of bounds (a segfault), and the Python side raised
    IndexError finding no bad id afterwards. Now every call returns a result or raises
    InputError, and the child process exits normally."""
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.run(
        [sys.executable, "-c", _RACE, str(Path(__file__).parent), kernels, "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    ok, errors = (int(v) for v in proc.stdout.split())
    assert ok + errors > 0 and ok > 0


#: Models dropped inside reference cycles, collected by the GC, with the heap checked by glibc's
#: malloc debugging (libc_malloc_debug, check=3): a write into freed memory corrupts the free
#: chunks' links, which the allocations after each collection then trip over (abort).
_CYCLES = r"""
import gc, sys
import numpy as np
import edgegru
from edgegru import format as fmt
sys.path.insert(0, sys.argv[1])
from ir_models import build, inputs

model = build("dense_before_gru")
blob, x = fmt.write(model), inputs(model, 3, 23)
want = edgegru.load(blob).predict(x)
for i in range(300):
    m = edgegru.load(blob)
    assert np.array_equal(m.predict(x), want)
    cycle = [m, m.stream(batch=1)]
    cycle.append(cycle)
    del m, cycle
    gc.collect()
    junk = [np.empty(n, np.uint8) for n in (64, 256, 1024, 4096, 16384)] * 4
print("ok")
"""

#: glibc's malloc debugging library (Debian's libc6 ships it since glibc 2.34).
_MALLOC_DEBUG = "/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"


def test_a_model_collected_in_a_reference_cycle_leaves_the_heap_intact():
    """A Runtime collected as part of a reference cycle: the GC cleared its attributes (the blob
    and the decoded-layer cache its C model points into) before __dealloc__ ran, and
    __dealloc__ re-decoded every layer into the freed cache (egru_model_use_workers(NULL)):
    heap corruption that surfaced later as 'corrupted double-linked list' or a segfault in
    unrelated code. Now the class is no_gc_clear and __dealloc__ leaves the model alone."""
    import os
    import platform
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONMALLOC="malloc", GLIBC_TUNABLES="glibc.malloc.check=3")
    if platform.machine() == "x86_64":
        assert Path(_MALLOC_DEBUG).exists(), f"{_MALLOC_DEBUG} (libc6) is missing"
        env["LD_PRELOAD"] = _MALLOC_DEBUG
    proc = subprocess.run(
        [sys.executable, "-c", _CYCLES, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (
        f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    )


def test_token_error_when_the_bad_id_is_gone():
    """_token_range_error on an array that holds no bad id any more (it was rewritten after the
    C runtime saw one): an InputError saying so, not IndexError."""
    em = edgegru.load(fmt.write(build("tokens_gru_sigmoid_reset_after")))
    exc = em._token_range_error(np.ones((2, 3), np.int32))
    assert isinstance(exc, edgegru.InputError)
    assert "changed by another thread during the call" in str(exc)
    exc = em._nonfinite_error(np.ones((1, 2, 5), np.float32))
    assert isinstance(exc, edgegru.InputError) and "another thread" in str(exc)


def _missing_kernel_set() -> str:
    missing = [k for k in KERNEL_SETS if k != "auto" and k not in edgegru.available_kernels()]
    assert missing  # no build has both the x86 and the Arm sets
    return missing[0]


def test_kernel_set_choice_errors(monkeypatch):
    """Item 13: a kernel set this CPU lacks names what it has, without the C runtime's generic
    status text; $EDGEGRU_KERNELS empty means auto; an unknown name or a non-str is an
    InputError naming where it came from."""
    blob = fmt.write(build("stacked_gru_linear"))
    missing = _missing_kernel_set()
    have = ", ".join(edgegru.available_kernels())
    want = f"kernel set {missing!r} is not available on this CPU/build; available: {have}"
    with pytest.raises(edgegru.UnsupportedError) as info:
        edgegru.load(blob, kernels=missing)
    assert str(info.value) == want
    monkeypatch.setenv("EDGEGRU_KERNELS", missing.upper())  # names are case-insensitive
    with pytest.raises(edgegru.UnsupportedError) as info:
        edgegru.load(blob)
    assert str(info.value) == want
    auto = edgegru.load(blob, kernels="auto").kernels
    for value in ("", "  ", "auto"):
        monkeypatch.setenv("EDGEGRU_KERNELS", value)
        assert edgegru.load(blob).kernels == auto
    monkeypatch.setenv("EDGEGRU_KERNELS", "fastest")
    with pytest.raises(edgegru.InputError, match=r"'fastest' \(from \$EDGEGRU_KERNELS\)"):
        edgegru.load(blob)
    monkeypatch.delenv("EDGEGRU_KERNELS")
    for bad, message in [
        (dict(kernels=1), "kernels must be a kernel set name"),
        (dict(fold_embedding="yes"), "fold_embedding must be True, False or None"),
        (dict(pack=1), "pack must be True, False or None"),
    ]:
        with pytest.raises(edgegru.InputError, match=message):
            edgegru.load(blob, **bad)
    for source in (123, None, np.zeros(8, np.uint8)):
        with pytest.raises(edgegru.InputError, match="load\\(\\) takes a path or the model's"):
            edgegru.load(source)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        ([[1, 2], [3]], "not a rectangular numeric array"),
        ([[[0.1] * 5], [[0.1] * 4]], "not a rectangular numeric array"),
        (np.array(3), "expected token ids of shape"),
        (np.ones((2, 3), bool), "token ids must be an integer array, got dtype bool"),
        (np.full((1, 2), np.nan), "token ids must be an integer array, got dtype float64"),
        (np.array([[1, None]], object), "got dtype object"),
        (np.ones((1, 2), "m8[s]"), "got dtype timedelta64"),
        ([[2**70]], "got dtype object"),
        (np.array([[2**64 - 1]], np.uint64), "is out of range"),
        (np.broadcast_to(np.int32(1), (1, 2**33)), "too large"),
    ],
)
def test_odd_token_inputs_are_input_errors(loaded, x, message):
    """Item 13: every kind of odd input is an InputError naming the problem (a ragged list was
    numpy's ValueError)."""
    _, em = loaded("tokens_gru_sigmoid_reset_after")
    with pytest.raises(edgegru.InputError, match=message):
        em.predict(x)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        ([[[0.1] * 5], [[0.1] * 4]], "not a rectangular numeric array"),
        (np.array(1.0), "expected features of shape"),
        (np.ones((1, 2, 5), bool), "features must be a float array, got dtype bool"),
        (np.ones((1, 2, 5), complex), "features must be a float array"),
        (np.full((1, 2, 5), "1.0"), "features must be a float array"),
        (np.array([[[np.nan] * 5]], np.float16), "input contains nan at position"),
    ],
)
def test_odd_feature_inputs_are_input_errors(loaded, x, message):
    _, em = loaded("features_gru_softmax_reset_after")
    with pytest.raises(edgegru.InputError, match=message):
        em.predict(x)


def test_non_contiguous_and_list_inputs_equal_their_copies(loaded):
    model, em = loaded("tokens_gru_sigmoid_reset_after")
    ids = inputs(model, 3, 12).astype(np.int32)
    np.testing.assert_array_equal(em.predict(ids[:, ::2]), em.predict(ids[:, ::2].copy()))
    np.testing.assert_array_equal(em.predict(ids.tolist()), em.predict(ids))
    fmodel, fem = loaded("features_gru_softmax_reset_after")
    x = inputs(fmodel, 2, 8)
    np.testing.assert_array_equal(fem.predict(x[:, ::-1]), fem.predict(x[:, ::-1].copy()))
    np.testing.assert_array_equal(fem.predict(x.tolist()), fem.predict(x))


def _invariance_models() -> list:
    """(id, ir model) pairs for the batch-invariance test: GRU (both flavours), LSTM, SimpleRNN,
    token and feature inputs, stacked layers, Dense on a sequence, masks; and two wider models
    whose products cross the kernels' row blocks (3 * 70 = 210 recurrent rows: blocks of
    EGRU_RECURRENT_BLOCK = 64 plus a partial one; 33 inputs, not a multiple of any vector)."""
    from ir_models import dense, embedding, feat, gru, lstm, tok

    out = [(n, build(n)) for n in ("tokens_gru_sigmoid_reset_after", "stacked_gru_linear")]
    out += [(n, build(n)) for n in ("features_gru_softmax_reset_before", "dense_on_sequence")]
    out += [(n, build_more(n)) for n in ("lstm", "simple_rnn", "bidir_gru_concat_seq")]
    out += [(n, build_more(n)) for n in ("mask_zero_gru", "masking_features")]
    rng = np.random.default_rng(37)
    wide_feat = feat(
        33, gru(rng, 33, 40, return_sequences=True), lstm(rng, 40, 24), dense(rng, 24, 5, "softmax")
    )
    wide_tok = tok(50, embedding(rng, 50, 20), gru(rng, 20, 70), dense(rng, 70, 3, "linear"))
    return [*out, ("wide_features_gru_lstm", wide_feat), ("wide_tokens_gru70", wide_tok)]


@pytest.mark.parametrize("pack", [False, True], ids=["unpacked", "packed"])
@pytest.mark.parametrize("kernels", ["auto", *edgegru.available_kernels()])
def test_each_row_is_bit_identical_alone_in_every_kernel_set(kernels, pack):
    """Batch invariance (ext/src/kernels/egru_kernels.h): predict(x)[i] equals
    predict(x[i:i+1])[0] bit for bit for a batch of 37 rows, in every kernel set this build and
    CPU have, on row-major (unpacked) and packed weights: the batched plan computes the products
    of many rows and steps at once, a single row's plan one row (and for packed weights blocks of
    64 recurrent rows), and each output must be the same float either way."""
    for name, model in _invariance_models():
        em = edgegru.load(fmt.write(model), kernels=kernels, pack=pack)
        make = masked_inputs if name.startswith("mask") else inputs
        x = make(model, 37, 9, seed=5)
        whole = em.predict(x)
        for i in range(37):
            alone = em.predict(x[i : i + 1])
            assert np.array_equal(alone[0], whole[i], equal_nan=True), (
                f"{name} ({em.kernels}, pack={pack}): row {i} differs alone, max abs "
                f"{float(np.nanmax(np.abs(alone[0] - whole[i]))):.3g}"
            )
