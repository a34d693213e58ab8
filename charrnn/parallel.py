"""Data parallelism on the CPU's cores: a training step split into independent shards.

Why: a step's matrix products are small, (G,H)x(H,B) per time step, where a 2-thread
BLAS call is far from twice as fast as a 1-thread one, and NumPy's elementwise work
runs on one core whatever BLAS does. The B streams of a chunk are independent until
the gradients are summed, so the batch is cut into shards that run the whole forward
and backward pass in parallel Python threads (NumPy releases the GIL inside matmul and
ufunc loops), each with a single-threaded BLAS (process.blas_threads); their gradients
are then averaged.

The shard layout depends only on the batch size, never on the machine, so a run gives
the same numbers on one core (shards run one after the other) as on two.

Across processes (distributed.py) each MPI rank runs a ``part`` of the batch, a
contiguous range of its streams, cut into shards the same way, except on a rank with a
single core: there the part is one shard, since shards run one after the other only cost
(two of 16 streams take a fifth longer than one of 32: benchmarks/RESULTS.md). A rank's
layout so depends on its cores, and runs on N ranks repeat bit for bit where each rank
has as many cores as before; elsewhere they agree to float32 rounding, as runs on
different N do. Its result is that part's share of the batch's mean, which the ranks
then sum.
"""

from __future__ import annotations

import atexit
import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from charrnn import model, process
from charrnn.dropout import StreamMasks

MIN_SHARD = 8  # streams per shard below which the per-step products get too thin to pay


def shard_bounds(batch_size: int, max_shards: int = 2) -> list[tuple[int, int]]:
    """[(start, stop)] of each shard of the batch."""
    n = max(1, min(max_shards, batch_size // MIN_SHARD))
    edges = np.linspace(0, batch_size, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


class ShardRunner:
    """Runs the shards of each step in parallel when the machine and the BLAS allow it."""

    def __init__(
        self, batch_size: int, threads: int | None = None, part: tuple[int, int] | None = None, max_shards: int = 2
    ):
        self.batch_size = batch_size
        lo, hi = part or (0, batch_size)
        self.part = (lo, hi)
        self.bounds = [(lo + a, lo + b) for a, b in shard_bounds(hi - lo, max_shards)]
        cores = threads or process.cores()
        self.parallel = len(self.bounds) > 1 and cores > 1 and process.blas_control().set is not None
        self.pool = ThreadPoolExecutor(len(self.bounds)) if self.parallel else None
        if self.pool is not None:
            atexit.register(self.close)

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()

    def loss_and_grads(self, params, cfg, x, y, state, dropout, rng: np.random.Generator, stop=None, engine=None):
        """model.loss_and_grads over the whole batch (x, y and ``state`` hold all B streams)
        restricted to this runner's part: the part's share of the batch's mean loss and
        gradient (all of it when the part is the whole batch), and the part's new state.
        The step's dropout masks are keyed by one draw from ``rng`` and drawn stream by
        stream (dropout.StreamMasks), so they are the whole batch's whatever the shards
        and parts."""
        key = StreamMasks.from_rng(rng).key
        jobs = [
            (
                params,
                cfg,
                x[a:b],
                y[a:b],
                [tuple(s[a:b] for s in layer) for layer in state],
                dropout,
                StreamMasks(key, a),
                stop,
                engine,
            )
            for a, b in self.bounds
        ]
        if self.parallel:
            with process.blas_threads(1):
                results = list(self.pool.map(lambda job: model.loss_and_grads(*job), jobs))
        else:
            results = [model.loss_and_grads(*job) for job in jobs]
        weights = [(b - a) / self.batch_size for a, b in self.bounds]  # mean over all positions
        if len(results) == 1 and weights[0] == 1.0:
            return results[0]
        loss = sum(w * r[0] for w, r in zip(weights, results))
        grads = results[0][1]
        for name, g in grads.items():
            g *= weights[0]
            for w, r in zip(weights[1:], results[1:]):
                g += w * r[1][name]
        new_state = [tuple(np.concatenate(parts) for parts in zip(*layers)) for layers in zip(*(r[2] for r in results))]
        return loss, grads, new_state


@functools.lru_cache(maxsize=4)
def runner(batch_size: int, part: tuple[int, int] | None = None) -> ShardRunner:
    """One runner (and thread pool) per batch size and part for the life of the process;
    an MPI rank's ``part`` is one shard where the rank has one core."""
    return ShardRunner(batch_size, part=part, max_shards=2 if part is None or process.cores() > 1 else 1)
