"""charrnn on several MPI ranks: measured on this machine, and predicted for a cluster.

Measured (the default): training chars/s of one process using the machine's cores with
thread shards, against `mpiexec -n N` ranks of one core each, alternating, over
--rounds rounds; each figure is the median of --repeats timings of --steps steps, as
bench_train.py times them (real training steps, no validation or checkpoints). The MPI
figure also says how long the gradient's Allreduce took, per step.

    python benchmarks/bench_mpi.py --corpus ../shared/corpora/tinyshakespeare.txt --rounds 5

Predicted (--paper): the bytes each step's Allreduce moves for the usual models, and the
speed-up of N ranks over one, each rank training RANK_STREAMS x 2 streams on one core
(the batch grows with N, as autosize.batch_for_ranks has it), on networks of 1, 10 and 25
Gb/s. The step's compute time is measured here, in this process, on one core; the
Allreduce time is a ring's (each rank sends and receives 2 (N-1)/N of the message)
plus a latency per message round: t = 2 (N-1)/N * bytes / bandwidth + 2 (N-1) * latency.
The Allreduce starts after the backward pass ends, so nothing overlaps it.

    python benchmarks/bench_mpi.py --corpus ../shared/corpora/tinyshakespeare.txt --paper

--worker is what the measured mode runs, once as one process and once under mpiexec.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench_train

from charrnn import autosize, data, distributed, engines, model, process, training

# (cell, layers, hidden): the fixed default, autosize's usual range, and compare.py's GRU and RNN
MODELS = (("lstm", 2, 256), ("lstm", 2, 384), ("lstm", 2, 512), ("gru", 1, 256), ("rnn", 1, 512))
NETWORKS = ((1, 50e-6), (10, 20e-6), (25, 10e-6))  # Gb/s, latency per message round (TCP/Ethernet, typical)
RANKS = (2, 4, 8, 16, 32)


def make_run(ids, vocab, a, world: distributed.World, batch: int | None = None) -> training.Run:
    return bench_train.make_run(
        ids, vocab, a.cell, a.hidden, a.layers, batch or a.batch, a.seq_len, a.dropout, engines.get(a.engine), world
    )


class TimedWorld:
    """A world whose sums are timed: the Allreduce's share of a step."""

    def __init__(self, world: distributed.World):
        self.world, self.seconds = world, 0.0

    def __getattr__(self, name):
        return getattr(self.world, name)

    def sum_(self, flat):
        t = time.perf_counter()
        out = self.world.sum_(flat)
        self.seconds += time.perf_counter() - t
        return out

    def sum_arrays(self, arrays):
        distributed.World.sum_arrays(self, arrays)  # its one sum_ is the timed one above


def worker(a) -> None:
    world = distributed.world()
    process.tune_for_training(cores=world.cores_here())
    engines.warm_up(engines.get(a.engine), a.cell)
    loaded = data.load_corpus(a.corpus)
    timed = TimedWorld(world)
    run = make_run(loaded.ids, loaded.vocab, a, timed)
    rates, allreduce = [], []
    for _ in range(a.repeats):
        timed.seconds = 0.0
        seconds = bench_train.train_throughput(run, a.steps)["seconds"]
        seconds = float(world.max_(np.array([seconds]))[0])  # the slowest rank's
        rates.append(a.batch * a.seq_len * a.steps / seconds)
        allreduce.append(timed.seconds / a.steps)
    if world.root:
        print(
            json.dumps(
                {
                    "ranks": world.size,
                    "cores_each": process.cores(),
                    "chars_per_s": statistics.median(rates),
                    "allreduce_ms_per_step": 1e3 * statistics.median(allreduce),
                    "step_ms": 1e3 * a.batch * a.seq_len / statistics.median(rates),
                }
            )
        )


def mpiexec() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.access(here, os.X_OK) else shutil.which("mpiexec")
    if found is None:
        sys.exit("no mpiexec: pip install '.[mpi]'")
    return found


def measured(a, argv) -> None:
    me = [sys.executable, os.path.abspath(__file__), "--worker", *argv]
    commands = {"1 process": me, f"mpiexec -n {a.ranks}": [mpiexec(), "-n", str(a.ranks), *me]}
    results = {name: [] for name in commands}
    for r in range(a.rounds):
        for name, cmd in commands.items():
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results[name].append(json.loads(out.strip().splitlines()[-1]))
        one, many = (results[name][-1] for name in commands)
        print(
            f"round {r + 1}: 1 process {one['chars_per_s']:,.0f} chars/s ({one['cores_each']} cores), "
            f"{a.ranks} ranks {many['chars_per_s']:,.0f} chars/s ({many['cores_each']} core each, Allreduce "
            f"{many['allreduce_ms_per_step']:.2f} of {many['step_ms']:.1f} ms a step), "
            f"ratio {many['chars_per_s'] / one['chars_per_s']:.3f}",
            flush=True,
        )
    one, many = (results[name] for name in commands)
    med = lambda rows, key: statistics.median(row[key] for row in rows)  # noqa: E731
    ratios = [m["chars_per_s"] / o["chars_per_s"] for o, m in zip(one, many)]
    print(
        f"median: 1 process {med(one, 'chars_per_s'):,.0f} chars/s, {a.ranks} ranks {med(many, 'chars_per_s'):,.0f} "
        f"chars/s (Allreduce {med(many, 'allreduce_ms_per_step'):.2f} ms of {med(many, 'step_ms'):.1f} ms a step); "
        f"ratio of the pairs' ratios {statistics.median(ratios):.3f} (rounds: {', '.join(f'{x:.3f}' for x in ratios)})"
    )


def paper(a) -> None:
    process.tune_for_training(cores=1)  # a rank on one core
    loaded = data.load_corpus(a.corpus)
    per_rank = 2 * autosize.RANK_STREAMS
    print(
        f"each rank: {per_rank} streams x {a.seq_len} characters a step on one core, {a.engine or 'auto'} engine; "
        f"vocabulary {loaded.vocab.size}"
    )
    for cell, layers, hidden in MODELS:
        a.cell, a.layers, a.hidden = cell, layers, hidden
        # rank 0 of two that send nothing: its step is a rank's, without the Allreduce
        run = make_run(loaded.ids, loaded.vocab, a, distributed.World(0, 2), batch=2 * per_rank)
        engines.warm_up(run.engine, cell)
        compute = statistics.median(
            bench_train.train_throughput(run, a.steps)["seconds"] / a.steps for _ in range(a.repeats)
        )
        n_bytes = 4 * model.n_params(run.model_cfg) + 8  # the float32 gradient, then the float64 loss
        print(
            f"\n{cell} {layers}x{hidden}: {model.n_params(run.model_cfg):,} parameters, Allreduce of "
            f"{n_bytes / 1e6:.2f} MB a step; one rank's step {1e3 * compute:.1f} ms "
            f"({per_rank * a.seq_len / compute:,.0f} chars/s)"
        )
        print("   N" + "".join(f" | {gbps:>2} Gb/s: Allreduce, speed-up" for gbps, _ in NETWORKS))
        for n in RANKS:
            cells = []
            for gbps, latency in NETWORKS:
                comm = 2 * (n - 1) / n * n_bytes / (gbps * 1e9 / 8) + 2 * (n - 1) * latency
                cells.append(f" | {1e3 * comm:>12.1f} ms, {n * compute / (compute + comm):>6.1f}x")
            print(f"  {n:>2}" + "".join(cells))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bench_train.add_run_arguments(p)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--paper", action="store_true", help="the Allreduce sizes and the predicted scaling")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        worker(a)
    elif a.paper:
        paper(a)
    else:
        measured(a, argv)


if __name__ == "__main__":
    main()
