"""An RNNoise-style denoiser streamed frame by frame with edgegru (issue #13, example (b)).

    python examples/rnnoise.py [--epochs 4] [--out-dir DIR] [--c-dir examples/rnnoise_c/gen]

The net (as RNNoise): three GRUs whose outputs are concatenated with the input features and each
other, two outputs: per-band gains (sigmoid) and a voice-activity probability (sigmoid). It is
trained briefly in Keras on synthetic data this script makes: a "speech-like" signal (a few
harmonics of a gliding pitch, switched on and off in syllables) plus noise of a random colour
(spectral tilt) and level, cut into frames; the features are the log energies of the frame's
spectrum in BANDS bands, the targets the ideal gains sqrt(clean / noisy energy) per band and the
VAD (the speech is on). Then the model is converted to a graph .egru file and a test recording
is streamed through it ONE frame at a time (model.stream(): every GRU keeps its state between
frames), as a real-time denoiser would run; every frame's gains and VAD must be within 1e-5 of
Keras' predict on the whole recording (the maximum difference is printed), and equal bit for bit
to edgegru's own predict on the whole recording.

With --c-dir DIR it also writes the C headers of examples/rnnoise_c (the model and the test
frames as C arrays, tools/egru2c.py) and keras.npy (Keras' outputs, for tests/test_rnnoise.py).
Exit status 0 when every frame matches.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RATE = 8000  # samples per second
FRAME = 160  # samples per frame (20 ms)
BANDS = 12  # band energies per frame: the features and the gains
TOL = 1e-5


def _band_edges() -> np.ndarray:
    """BANDS + 1 FFT bin edges, spaced on a mel-like scale up to RATE / 2."""
    mel = np.linspace(0.0, 2595 * np.log10(1 + (RATE / 2) / 700), BANDS + 1)
    hz = 700 * (10 ** (mel / 2595) - 1)
    edges = np.round(hz / (RATE / 2) * (FRAME // 2)).astype(int)
    for k in range(1, len(edges)):  # at least one bin per band
        edges[k] = max(edges[k], edges[k - 1] + 1)
    return np.minimum(edges, FRAME // 2 + 1)


EDGES = _band_edges()


def band_energies(signal: np.ndarray) -> np.ndarray:
    """(frames, BANDS) energies of the Hann-windowed frames of `signal`."""
    frames = signal[: len(signal) // FRAME * FRAME].reshape(-1, FRAME) * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return np.stack([power[:, a:b].sum(axis=1) for a, b in itertools.pairwise(EDGES)], axis=1)


def recording(rng: np.random.Generator, frames: int) -> tuple:
    """One synthetic noisy recording: (features (frames, BANDS), gains (frames, BANDS),
    vad (frames, 1)), float32."""
    n = frames * FRAME
    t = np.arange(n) / RATE
    # syllables: speech on / off in runs of 5 to 25 frames
    on = np.zeros(frames, bool)
    k, state = 0, rng.random() < 0.5
    while k < frames:
        run = int(rng.integers(5, 26))
        on[k : k + run] = state
        k, state = k + run, not state
    envelope = np.repeat(on.astype(float), FRAME)
    envelope = np.convolve(envelope, np.hanning(200) / np.hanning(200).sum(), mode="same")
    pitch = rng.uniform(90, 250) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    speech = sum(np.sin(h * phase) / h for h in range(1, 8)) * envelope
    # noise: white noise coloured by a random spectral tilt (|f|^alpha), at a random level
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.arange(len(spectrum)), 1) / len(spectrum)
    noise = np.fft.irfft(spectrum * f ** rng.uniform(-1.0, 0.5), n)
    noise *= rng.uniform(0.05, 0.6) / (noise.std() + 1e-9)
    clean_e, noisy_e = band_energies(speech), band_energies(speech + noise)
    features = np.log10(noisy_e + 1e-3)
    gains = np.sqrt(np.clip(clean_e / (noisy_e + 1e-9), 0.0, 1.0))
    return features.astype(np.float32), gains.astype(np.float32), on[:, None].astype(np.float32)


def dataset(rng: np.random.Generator, count: int, frames: int) -> tuple:
    rows = [recording(rng, frames) for _ in range(count)]
    return tuple(np.stack([r[i] for r in rows]) for i in range(3))


def build_model(units=(16, 24, 32)):
    """The RNNoise-style graph (tests/graph_models.rnnoise, at a useful size)."""
    import keras

    L = keras.layers
    x = keras.Input((None, BANDS), name="features")
    d = L.Dense(units[0], activation="tanh", name="input_dense")(x)
    vad_gru = L.GRU(units[0], return_sequences=True, name="vad_gru")(d)
    vad = L.Dense(1, activation="sigmoid", name="vad")(vad_gru)
    noise_gru = L.GRU(units[1], return_sequences=True, name="noise_gru")(
        L.Concatenate(name="noise_in")([d, vad_gru, x])
    )
    denoise_gru = L.GRU(units[2], return_sequences=True, name="denoise_gru")(
        L.Concatenate(name="denoise_in")([vad_gru, noise_gru, x])
    )
    gains = L.Dense(BANDS, activation="sigmoid", name="gains")(denoise_gru)
    return keras.Model(x, [gains, vad], name="rnnoise")


def stream_frames(model, features: np.ndarray) -> tuple:
    """features: (1, frames, BANDS). Streams them frame by frame: (gains, vad) per frame,
    stacked to (1, frames, BANDS) and (1, frames, 1)."""
    s = model.stream(batch=1)
    gains, vads = [], []
    for t in range(features.shape[1]):
        g, v = s.step(features[:, t])  # (1, BANDS), (1, 1): this frame's outputs
        gains.append(g)
        vads.append(v)
    return np.stack(gains, axis=1), np.stack(vads, axis=1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--train", type=int, default=256, help="training recordings")
    p.add_argument("--frames", type=int, default=100, help="frames per training recording")
    p.add_argument("--test-frames", type=int, default=200, help="frames of the test recording")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, help="where to write the files (default: a temp dir)")
    p.add_argument("--c-dir", type=Path, help="also write examples/rnnoise_c's headers here")
    args = p.parse_args(argv)

    import keras

    import edgegru

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x, g, v = dataset(rng, args.train, args.frames)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=["binary_crossentropy"] * 2)
    hist = model.fit(x, [g, v], batch_size=32, epochs=args.epochs, verbose=0)
    loss = hist.history["loss"][-1]
    print(f"trained {args.epochs} epochs on {args.train} recordings: loss {loss:.4f}")

    out = args.out_dir or Path(tempfile.mkdtemp(prefix="rnnoise_"))
    out.mkdir(parents=True, exist_ok=True)
    edgegru.convert(model, out / "rnnoise.egru")
    m = edgegru.load(out / "rnnoise.egru")
    print(f"{out / 'rnnoise.egru'}: {m}")

    xt, gt, vt = (a[None] for a in recording(rng, args.test_frames))
    k_gains, k_vad = model.predict(xt, verbose=0)
    s_gains, s_vad = stream_frames(m, xt)
    p_gains, p_vad = m.predict(xt)
    diff = max(np.abs(s_gains - k_gains).max(), np.abs(s_vad - k_vad).max())
    same = np.array_equal(s_gains, p_gains) and np.array_equal(s_vad, p_vad)
    vad_acc = float(((s_vad > 0.5) == (vt > 0.5)).mean())
    print(f"streamed {xt.shape[1]} frames one at a time: max |edgegru - Keras| = {diff:.3g}")
    print(f"stream equal to edgegru predict on the whole recording, bit for bit: {same}")
    print(f"VAD accuracy on the test recording: {vad_acc:.3f}; mean gain error "
          f"{float(np.abs(s_gains - gt).mean()):.3f}")  # fmt: skip
    if args.c_dir:
        write_c_headers(args.c_dir, out / "rnnoise.egru", xt, k_gains, k_vad)
        print(f"C headers and keras.npy in {args.c_dir}")
    return 0 if diff <= TOL and same else 1


def write_c_headers(c_dir: Path, egru: Path, x: np.ndarray, gains, vad) -> None:
    """examples/rnnoise_c's inputs: model.h (the .egru file as a C array), input.h (the test
    frames, float32 (1, frames, BANDS)), keras.npy (Keras' outputs per frame, (frames, BANDS
    + 1): the gains, then the VAD)."""
    c_dir.mkdir(parents=True, exist_ok=True)
    egru2c = Path(__file__).resolve().parent.parent / "tools" / "egru2c.py"
    np.save(c_dir / "x.npy", x.astype(np.float32))
    for src, dst, name in (
        (egru, c_dir / "model.h", "model"),
        (c_dir / "x.npy", c_dir / "input.h", "input"),
    ):
        subprocess.run(
            [sys.executable, str(egru2c), str(src), str(dst), "--name", name], check=True
        )
    np.save(c_dir / "keras.npy", np.concatenate([gains[0], vad[0]], axis=1))


if __name__ == "__main__":
    sys.exit(main())
