"""Character-level translation with a Keras encoder-decoder GRU, decoded by edgegru: dates written
as people write them ("3 March 2021", "Mar 3, 21", "03/03/2021", "wednesday 3rd of march 2021")
into ISO dates ("2021-03-03").

    pip install ".[keras,onnx]"
    python examples/translate.py [--epochs 12] [--attention] [--out-dir DIR] [--c-dir DIR]

Keras trains one two-input model (the encoder's token ids, and the decoder's input: the target
shifted right, "teacher forcing"). Inference uses two models that share its layers, the standard
Keras recipe: the **encoder** (token ids -> the GRU's final state) and the **decoder step** (one
token and a state -> the next token's probabilities and the new state). Both convert to `.egru`
graph files (several inputs or outputs: docs/format.md "Graphs"). Greedy decoding runs once with
Keras' own models and once with edgegru's; the example checks that every decoded string is the
same, and reports how many are the right date.

The data is generated here (no download): random dates from 1950 to 2049 in 16 human formats.

The sources are left-padded (Keras' pad_sequences default). With --attention the decoder step
masks the encoder's padded steps as training did (Masking(0.0) on its sequence input, see
`build`); the example checks that Keras' step models give its training model's probabilities.

With --c-dir DIR it also writes the C headers of examples/translate_c (both models, the test
inputs, the vocabulary) and keras.txt (Keras' decoded strings, one per line), which that
example's C program, on the host and on a Cortex-M4F in QEMU, must print exactly.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import edgegru

MONTHS = [datetime.date(2000, m, 1).strftime("%B").lower() for m in range(1, 13)]
DAYS = [datetime.date(2001, 1, d).strftime("%A").lower() for d in range(1, 8)]  # Monday first


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


#: The human formats: date -> text (lower case; the model sees characters).
FORMATS = [
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year % 100:02d}",
    lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
    lambda d: f"{d.day}.{d.month}.{d.year}",
    lambda d: f"{d.year}.{d.month:02d}.{d.day:02d}",
    lambda d: f"{d.day}-{MONTHS[d.month - 1][:3]}-{d.year}",
    lambda d: f"{DAYS[d.weekday()]} {_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{DAYS[d.weekday()][:3]}, {d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    lambda d: f"{_ordinal(d.day)} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {_ordinal(d.day)} {d.year}",
    lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",
    lambda d: f"{d.day:02d} {MONTHS[d.month - 1][:3]} {d.year % 100:02d}",
    lambda d: f"{MONTHS[d.month - 1]} {d.year}, {d.day}",
]
IN_CHARS = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789 ,./-"))
IN_VOCAB = {c: k + 1 for k, c in enumerate(IN_CHARS)}  # 0 pads (and is masked)
OUT_CHARS = list("0123456789-")
START, END = len(OUT_CHARS), len(OUT_CHARS) + 1  # decoder tokens; the vocabulary is END + 1
OUT_LEN = 10  # "yyyy-mm-dd"
MAX_IN = 40
STEP_TOL = 1e-5  # step models against the training model (float32 rounding, not a mask missed)


def make_data(n: int, seed: int) -> tuple:
    """n (human, iso) pairs: uniform dates in 1950..2049, a uniform format each."""
    rng = np.random.default_rng(seed)
    first = datetime.date(1950, 1, 1).toordinal()
    span = datetime.date(2049, 12, 31).toordinal() - first + 1
    pairs = []
    for _ in range(n):
        d = datetime.date.fromordinal(first + int(rng.integers(span)))
        pairs.append((FORMATS[int(rng.integers(len(FORMATS)))](d)[:MAX_IN], d.isoformat()))
    return pairs


def encode_inputs(texts: list, steps: int = MAX_IN) -> np.ndarray:
    """Token ids (n, steps), left-padded with 0 (Keras' pad_sequences default; the Embedding
    masks it). Left padding keeps the encoder's outputs at the padded steps exactly 0 (a masked
    GRU outputs 0 before its first valid step), which the attention decoder step's Masking(0.0)
    turns back into the source mask (see `build`); more padding changes nothing."""
    x = np.zeros((len(texts), steps), dtype=np.int32)
    for i, t in enumerate(texts):
        if t:
            x[i, -len(t) :] = [IN_VOCAB[c] for c in t]
    return x


def encode_targets(isos: list) -> tuple:
    """(decoder input: START + target, decoder target: target + END), each (n, OUT_LEN + 1)."""
    y = np.array([[OUT_CHARS.index(c) for c in s] for s in isos], dtype=np.int32)
    start = np.full((len(isos), 1), START, dtype=np.int32)
    end = np.full((len(isos), 1), END, dtype=np.int32)
    return np.concatenate([start, y], axis=1), np.concatenate([y, end], axis=1)


def build(keras, units: int, embed: int = 32, attention: bool = False) -> tuple:
    """(training model, encoder, decoder step): one set of layers used by all three. With
    attention (Luong): the encoder also outputs its sequence, the decoder step reads it as a
    third input, and Attention([decoder output, encoder sequence]) is concatenated with the
    decoder's output before the Dense. In training the encoder sequence carries the source's
    mask, so the attention never looks at a padded source step. The step model gets the same
    mask back from its encoder-sequence input with Masking(0.0): the sources are left-padded
    and a masked GRU outputs exactly 0 before its first valid step (docs/keras-semantics.md
    section 3; right padding would repeat the last valid output instead), while a valid step's
    output is never all zeros. So the step model attends as training did (the example checks
    it: teacher-forced step probabilities equal the training model's), in Keras and in edgegru
    alike; edgegru runs that Masking as a view of the caller's sequence (docs/format.md
    "ATTENTION"), so the step's arena does not grow with the sentence."""
    if attention:
        return _build_attention(keras, units, embed)
    L = keras.layers
    enc_emb = L.Embedding(len(IN_VOCAB) + 1, embed, mask_zero=True, name="enc_embedding")
    enc_gru = L.GRU(units, return_state=True, name="encoder")
    dec_emb = L.Embedding(END + 1, embed, name="dec_embedding")
    dec_gru = L.GRU(units, return_sequences=True, return_state=True, name="decoder")
    dec_out = L.Dense(END + 1, activation="softmax", name="next_char")

    src = keras.Input((None,), dtype="int32", name="source")
    tgt = keras.Input((None,), dtype="int32", name="target_in")
    _, state = enc_gru(enc_emb(src))
    seq, _ = dec_gru(dec_emb(tgt), initial_state=state)
    train = keras.Model([src, tgt], dec_out(seq), name="date_translator")

    encoder = keras.Model(src, state, name="encoder")
    token = keras.Input((1,), dtype="int32", name="token")
    h = keras.Input((units,), name="state")
    seq1, h1 = dec_gru(dec_emb(token), initial_state=h)
    step = keras.Model([token, h], [dec_out(seq1), h1], name="decoder_step")
    return train, encoder, step


def _build_attention(keras, units: int, embed: int) -> tuple:
    L = keras.layers
    enc_emb = L.Embedding(len(IN_VOCAB) + 1, embed, mask_zero=True, name="enc_embedding")
    enc_gru = L.GRU(units, return_sequences=True, return_state=True, name="encoder")
    dec_emb = L.Embedding(END + 1, embed, name="dec_embedding")
    dec_gru = L.GRU(units, return_sequences=True, return_state=True, name="decoder")
    attend = L.Attention(name="attention")
    both = L.Concatenate(name="context")
    dec_out = L.Dense(END + 1, activation="softmax", name="next_char")
    src = keras.Input((None,), dtype="int32", name="source")
    tgt = keras.Input((None,), dtype="int32", name="target_in")
    enc_seq, state = enc_gru(enc_emb(src))
    seq, _ = dec_gru(dec_emb(tgt), initial_state=state)
    probs = dec_out(both([seq, attend([seq, enc_seq])]))
    train = keras.Model([src, tgt], probs, name="date_translator")
    encoder = keras.Model(src, [enc_seq, state], name="encoder")
    token = keras.Input((1,), dtype="int32", name="token")
    h = keras.Input((units,), name="state")
    enc_in = keras.Input((None, units), name="encoder_outputs")
    source_mask = L.Masking(0.0, name="source_mask")  # zero steps: the (left) padding
    seq1, h1 = dec_gru(dec_emb(token), initial_state=h)
    probs1 = dec_out(both([seq1, attend([seq1, source_mask(enc_in)])]))
    step = keras.Model([token, h, enc_in], [probs1, h1], name="decoder_step")
    return train, encoder, step


def greedy_decode(encode, step, x: np.ndarray) -> list:
    """Greedy decoding of a batch: encode(x) -> state; OUT_LEN times: step([token, state]) ->
    (probabilities (n, 1, vocab), state), next token = argmax. `encode` and `step` are callables
    (Keras' predict or edgegru's), so both decoders run the same loop."""
    state = encode(x)
    extra = []  # with attention the encoder gives [sequence, state]; the step reads both
    if isinstance(state, (list, tuple)):
        extra, state = [state[0]], state[1]
    token = np.full((len(x), 1), START, dtype=np.int32)
    out = []
    for _ in range(OUT_LEN):
        probs, state = step([token, state, *extra])
        token = np.argmax(probs[:, -1, :], axis=-1).astype(np.int32)[:, None]
        out.append(token[:, 0])
    ids = np.stack(out, axis=1)
    return ["".join(OUT_CHARS[i] if i < len(OUT_CHARS) else "?" for i in row) for row in ids]


def step_vs_training(train, encode, step, x: np.ndarray, y_in: np.ndarray) -> float:
    """The largest difference between the training model's probabilities (teacher forcing:
    the whole target at once, the source masked) and the encoder plus decoder-step models fed
    the same target tokens one at a time (Keras' models both): near float32 rounding when the
    step models compute what training did, masks included."""
    want = train.predict([x, y_in], verbose=0)
    state = encode.predict(x, verbose=0)
    extra = []
    if isinstance(state, (list, tuple)):
        extra, state = [state[0]], state[1]
    worst = 0.0
    for i in range(y_in.shape[1]):
        probs, state = step.predict([y_in[:, i : i + 1], state, *extra], verbose=0)
        worst = max(worst, float(np.max(np.abs(probs[:, 0] - want[:, i]))))
    return worst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--train", type=int, default=20000, help="training pairs")
    p.add_argument("--test", type=int, default=500, help="test pairs")
    p.add_argument("--units", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, help="where to write the files (default: a temp dir)")
    p.add_argument("--c-dir", type=Path, help="also write examples/translate_c's headers here")
    p.add_argument("--c-rows", type=int, default=50, help="test rows the C program decodes")
    p.add_argument(
        "--attention",
        action="store_true",
        help="the decoder attends over the encoder's outputs (Attention, Luong style)",
    )
    args = p.parse_args(argv)

    import keras

    keras.utils.set_random_seed(args.seed)
    train_pairs, test_pairs = make_data(args.train, args.seed), make_data(args.test, args.seed + 1)
    x = encode_inputs([h for h, _ in train_pairs])
    y_in, y_out = encode_targets([iso for _, iso in train_pairs])
    model, k_encoder, k_step = build(keras, args.units, attention=args.attention)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    t0 = time.perf_counter()
    model.fit([x, y_in], y_out, batch_size=128, epochs=args.epochs, verbose=0)
    print(f"trained {args.epochs} epochs on {args.train} pairs in {time.perf_counter() - t0:.0f} s")

    out = args.out_dir or Path(tempfile.mkdtemp(prefix="edgegru-translate-"))
    out.mkdir(parents=True, exist_ok=True)
    for m, name in ((k_encoder, "encoder"), (k_step, "decoder_step")):
        m.save(out / f"{name}.keras")
        edgegru.convert(m, out / f"{name}.egru")
    encoder = edgegru.load(out / "encoder.egru")
    step = edgegru.load(out / "decoder_step.egru")
    print(f"encoder: {encoder}\ndecoder step: {step}")

    xt = encode_inputs([h for h, _ in test_pairs])
    want = [iso for _, iso in test_pairs]
    k_strings = greedy_decode(
        lambda a: k_encoder.predict(a, verbose=0),
        lambda ab: k_step.predict(ab, verbose=0),
        xt,
    )
    e_strings = greedy_decode(encoder.predict, step.predict, xt)
    same = sum(a == b for a, b in zip(k_strings, e_strings, strict=True))
    gap = step_vs_training(model, k_encoder, k_step, xt, encode_targets(want)[0])
    print(f"Keras' step models against its training model (teacher forcing): {gap:.1e}")
    right = sum(a == b for a, b in zip(e_strings, want, strict=True))
    for (human, iso), s in list(zip(test_pairs, e_strings, strict=True))[:5]:
        print(f"  {human!r:40} -> {s}  (want {iso})")
    print(f"decoded strings equal to Keras': {same}/{len(xt)}")
    print(f"correct dates: {right}/{len(xt)} ({100 * right / len(xt):.1f}%)")
    print(f"files in {out}")
    if args.c_dir:
        write_c_headers(
            args.c_dir, out, xt[: args.c_rows], k_strings[: args.c_rows], args.units, args.attention
        )
        print(f"C headers and keras.txt ({min(args.c_rows, len(xt))} rows) in {args.c_dir}")
    return 0 if same == len(xt) and gap <= STEP_TOL else 1


def write_c_headers(
    c_dir: Path, model_dir: Path, x: np.ndarray, strings: list, units: int, attention=False
):
    """examples/translate_c's inputs: encoder.h, decoder.h (the .egru files as C arrays),
    input.h (the token ids), meta.h (the decoding constants), keras.txt (Keras' strings)."""
    c_dir.mkdir(parents=True, exist_ok=True)
    egru2c = Path(__file__).resolve().parent.parent / "tools" / "egru2c.py"
    np.save(c_dir / "x.npy", x)
    for src, dst, name in (
        (model_dir / "encoder.egru", c_dir / "encoder.h", "encoder"),
        (model_dir / "decoder_step.egru", c_dir / "decoder.h", "decoder"),
        (c_dir / "x.npy", c_dir / "input.h", "input"),
    ):
        subprocess.run(
            [sys.executable, str(egru2c), str(src), str(dst), "--name", name], check=True
        )
    (c_dir / "meta.h").write_text(
        "/* examples/translate.py: the decoder's constants. */\n"
        f"#define OUT_LEN {OUT_LEN}\n#define START_TOKEN {START}\n#define VOCAB {END + 1}\n"
        f'#define UNITS {units}\nstatic const char OUT_CHARS[] = "{"".join(OUT_CHARS)}";\n'
        f"#define ATTENTION {int(attention)} /* the step also reads the encoder's sequence */\n"
        f"#define MAX_IN {MAX_IN}\n"
    )
    (c_dir / "keras.txt").write_text("".join(f"{t}\n" for t in strings))


if __name__ == "__main__":
    sys.exit(main())
