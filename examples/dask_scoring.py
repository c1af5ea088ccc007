"""Score a large data set with one loaded edgegru model on several worker processes (Dask).

    pip install edgegru "dask[distributed]"
    python examples/dask_scoring.py [model.egru] [--rows 20000] [--steps 40] [--workers 2]

A loaded `edgegru.Model` pickles as its file bytes plus its load options (docs/distributed.md),
so Dask ships it to the workers like any other Python object: `client.scatter` sends it to each
worker once, and every task then calls `Model.predict` on one chunk of rows there. The workers
need edgegru installed, not the .egru file. Each row's result does not depend on the other rows
of its batch, and the model travels with the kernel set it runs with, so the cluster's answer is
bit for bit the single-process one; the script checks that.

Without a model file it makes a small random-weight GRU (Embedding -> GRU -> Dense) to run.
Everything stays on this machine: a LocalCluster on 127.0.0.1, no dashboard.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import edgegru


def demo_model() -> bytes:
    """A random-weight Embedding(500, 16) -> GRU(32) -> Dense(1, sigmoid), as .egru bytes."""
    from edgegru import format as fmt
    from edgegru import ir

    rng = np.random.default_rng(0)
    vocab, dim, units = 500, 16, 32
    layers = [
        ir.Embedding(rng.normal(0, 1, (vocab, dim))),
        ir.GRU(
            kernel=rng.normal(0, dim**-0.5, (dim, 3 * units)),
            recurrent_kernel=rng.normal(0, units**-0.5, (units, 3 * units)),
            input_bias=rng.normal(0, 0.1, 3 * units),
            recurrent_bias=rng.normal(0, 0.1, 3 * units),
        ),
        ir.Dense(rng.normal(0, units**-0.5, (units, 1)), np.zeros(1), activation="sigmoid"),
    ]
    return fmt.write(ir.Model(ir.InputSpec(ir.TOKENS, vocab), layers))


def make_data(model: edgegru.Model, rows: int, steps: int, seed: int = 1) -> np.ndarray:
    """Random input of the model's kind: token ids (rows, steps) or frames (rows, steps, dim)."""
    rng = np.random.default_rng(seed)
    steps = model.fixed_seq_len or steps
    if model.input_kind == "tokens":
        return rng.integers(0, model.input_dim, size=(rows, steps), dtype=np.int32)
    return rng.normal(0, 1, size=(rows, steps, model.input_dim)).astype(np.float32)


def score_on_cluster(client, model: edgegru.Model, x: np.ndarray, chunk_rows: int) -> np.ndarray:
    """Model.predict over chunks of rows of `x`, on the client's workers; rows in order."""
    shared = client.scatter(model, broadcast=True)  # pickled once, one copy per worker
    chunks = [x[i : i + chunk_rows] for i in range(0, len(x), chunk_rows)]
    futures = [client.submit(edgegru.Model.predict, shared, c, pure=False) for c in chunks]
    return np.concatenate(client.gather(futures))


def main(argv=None) -> int:
    from dask.distributed import Client, LocalCluster

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help=".egru file (default: a small random GRU)")
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--chunk-rows", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    if min(args.rows, args.steps, args.chunk_rows, args.workers) < 1:
        p.error("--rows, --steps, --chunk-rows and --workers must be >= 1")

    model = edgegru.load(args.model if args.model else demo_model())
    x = make_data(model, args.rows, args.steps)
    t0 = time.perf_counter()
    local = model.predict(x)
    t_local = time.perf_counter() - t0

    with (
        LocalCluster(
            n_workers=args.workers,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        t0 = time.perf_counter()
        remote = score_on_cluster(client, model, x, args.chunk_rows)
        t_remote = time.perf_counter() - t0

    same = remote.shape == local.shape and np.array_equal(remote, local)
    print(f"{model!r}, kernels {model.kernels}; input {x.shape}")
    print(f"one process:            {t_local:.2f} s")
    print(f"{args.workers} worker processes:     {t_remote:.2f} s (shipping included)")
    print(f"identical results:      {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
