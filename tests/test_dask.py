"""A model travels to worker processes (issue #10, item 14): a data set scored on a Dask
LocalCluster of 2 worker processes, the loaded model shipped by pickling, gives exactly the
single-process result. Loopback only: scheduler on 127.0.0.1, no dashboard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dask.array as da
import distributed
import numpy as np
import pytest
from ir_models import build, build_more, inputs, masked_inputs

import edgegru
from edgegru import format as fmt
from edgegru.runtime import Stream

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_the_workers_are_other_processes(client):
    pids = client.run(os.getpid)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    assert len(set(pids.values())) == 2


@pytest.mark.parametrize(
    ("name", "opts"),
    [
        ("tokens_gru_sigmoid_reset_after", {}),
        ("tokens_gru_sigmoid_reset_after", {"kernels": "ref", "fold_embedding": True}),
        ("features_gru_softmax_reset_after", {}),
        ("tokens_stacked_sequence_output", {"pack": False}),
    ],
)
def test_scatter_and_submit_give_the_single_process_result(client, name, opts):
    """The model is loaded from bytes (no file a worker could read), scattered to both workers
    (pickled), and each of 8 chunks is predicted on a worker; the concatenation equals one
    local predict bit for bit."""
    model = build(name)
    em = edgegru.load(fmt.write(model), **opts)
    x = inputs(model, 400, 13, seed=11)
    want = em.predict(x)
    shared = client.scatter(em, broadcast=True)
    futures = [
        client.submit(edgegru.Model.predict, shared, x[i : i + 50], pure=False)
        for i in range(0, 400, 50)
    ]
    got = np.concatenate(client.gather(futures))
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got, want)
    # Both workers took part.
    ran_on = {w for ws in client.who_has(futures).values() for w in ws}
    assert len(ran_on) == 2


def test_dask_array_map_blocks_gives_the_single_process_result(client):
    """The other common way: the model's bound predict inside a dask.array graph."""
    model = build_more("masking_features")
    em = edgegru.load(fmt.write(model))
    x = masked_inputs(model, 300, 9, seed=3).astype(np.float64)
    want = em.predict(x)
    dx = da.from_array(x, chunks=(40, 9, model.input.dim))
    dy = dx.map_blocks(
        em.predict, dtype=np.float32, drop_axis=2, chunks=(dx.chunks[0], (em.output_dim,))
    )
    got = client.compute(dy).result()
    assert np.array_equal(got, want)


def test_a_stream_continues_on_a_worker(client):
    """A stream fed 4 steps here, pickled to a worker, takes its 5th step there exactly as the
    original takes it here."""
    model = build("tokens_stacked_sequence_output")
    em = edgegru.load(fmt.write(model))
    x = inputs(model, 3, 5, seed=9).astype(np.int32)
    s = em.stream(batch=3)
    for t in range(4):
        s.step(x[:, t])
    remote = client.submit(Stream.step, s, x[:, 4], pure=False).result()
    assert np.array_equal(remote, s.step(x[:, 4]))


def test_the_example_runs():
    """examples/dask_scoring.py on a small data set: its own cluster, its own check (exit 0
    only when the results are identical)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "dask_scoring.py"), "--rows", "600"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical results:      True" in proc.stdout
