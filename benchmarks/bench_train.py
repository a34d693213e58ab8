"""charrnn training throughput: chars/s, matmul GFLOP/s, and the fraction of NumPy's GEMM rate.

Times the real training step (forward, BPTT, clipping, Adam update) on a corpus laid out
as B streams, exactly as `charrnn train` runs it, without validation or checkpoints.

    python benchmarks/bench_train.py --corpus ../shared/corpora/tinyshakespeare.txt \\
        --cell lstm --hidden 256 --layers 2 --batch 64 --seq-len 64 --engine numba

FLOPs counted per character are those of the model's matrix products (2mnk each),
forward and backward: per layer 6HG for the recurrence (h Wh, dh Wh^T, dWh), 6HG for
the input product of every layer above the first (the first is a lookup, counted as
no FLOPs though charrnn does it as a one-hot product), and 6HV for the output layer.
The GEMM rate it is compared with is measured here, in the same process, with
NumPy's default threads, at the shape of one recurrent step in both layouts,
(B,H)x(H,G) and the feature-major (G,H)x(H,B) that charrnn runs (the faster one; the
fraction is of that one), and at the all-steps shape (B*T,H)x(H,G).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from gemm_rate import gemm_gflops

from charrnn import data, engines, model, process, training
from charrnn.config import ModelConfig, TrainConfig
from charrnn.distributed import World

DEFAULT_CORPUS = os.path.join(os.path.dirname(__file__), "..", "corpora", "tales.txt")


def make_run(ids, vocab, cell, hidden, layers, batch, seq_len, dropout, engine=None, world=None) -> training.Run:
    """The run a training step is timed on; ``world``: the MPI ranks taking part (bench_mpi.py)."""
    cfg = ModelConfig(cell=cell, vocab_size=vocab.size, hidden_size=hidden, n_layers=layers, dropout=dropout)
    tc = TrainConfig(seq_len=seq_len, batch_size=batch, lr=2e-3, clip=5.0, time_limit=0, lr_schedule="constant")
    return training.Run(
        cfg, tc, vocab, ids, ids[-1000:], "/nonexistent", engine=engine or engines.get(), world=world or World()
    )


def train_throughput(run: training.Run, steps: int, warmup: int = 3) -> dict:
    """chars/s of `steps` timed training steps after `warmup` untimed ones."""
    st = training.new_state(run)
    streams = data.Streams(run.train_ids, run.train_cfg.batch_size, run.train_cfg.seq_len)
    for _ in range(warmup):
        training.train_step(run, st, streams)
    run.world.max_(np.zeros(1))  # several ranks start the clock together
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = training.train_step(run, st, streams)
    seconds = time.perf_counter() - t0
    chars = run.train_cfg.batch_size * run.train_cfg.seq_len * steps
    return {"seconds": seconds, "chars_per_s": chars / seconds, "final_loss": loss}


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The corpus, model, batch, engine and timing options (bench_mpi.py takes them too)."""
    p.add_argument("--corpus", default=DEFAULT_CORPUS)
    p.add_argument("--cell", default="lstm", choices=["rnn", "lstm", "gru"])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--engine", choices=engines.NAMES, default=None, help="default: $CHARRNN_ENGINE, else auto")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_run_arguments(p)
    a = p.parse_args(argv)
    process.tune_for_training()  # as a training run does
    engine = engines.get(a.engine)
    engines.warm_up(engine, a.cell)
    loaded = data.load_corpus(a.corpus)
    ids, vocab = loaded.ids, loaded.vocab
    run = make_run(ids, vocab, a.cell, a.hidden, a.layers, a.batch, a.seq_len, a.dropout, engine)
    rates = [train_throughput(run, a.steps)["chars_per_s"] for _ in range(a.repeats)]
    cps = statistics.median(rates)
    fpc = model.flops_per_char(run.model_cfg)
    G = run.model_cfg.gates
    step_rate_bm = gemm_gflops(a.batch, a.hidden, G, repeats=3, min_time=0.2)
    step_rate = gemm_gflops(G, a.hidden, a.batch, repeats=3, min_time=0.2)  # feature-major
    all_rate = gemm_gflops(a.batch * a.seq_len, a.hidden, G, repeats=3, min_time=0.2)
    achieved = cps * fpc / 1e9
    print(
        json.dumps(
            {
                "impl": "charrnn",
                "engine": engine.name,
                "cell": a.cell,
                "hidden": a.hidden,
                "layers": a.layers,
                "batch": a.batch,
                "seq_len": a.seq_len,
                "dropout": a.dropout,
                "vocab": vocab.size,
                "steps": a.steps,
                "chars_per_s": round(cps, 1),
                "chars_per_s_runs": [round(r, 1) for r in rates],
                "mflop_per_char": round(fpc / 1e6, 3),
                "gflops": round(achieved, 2),
                "gemm_gflops_step_shape": round(step_rate, 2),
                "gemm_gflops_step_shape_batch_major": round(step_rate_bm, 2),
                "gemm_gflops_all_steps_shape": round(all_rate, 2),
                "fraction_of_step_gemm": round(achieved / step_rate, 3),
                "env": {
                    k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
                },
            }
        )
    )


if __name__ == "__main__":
    main()
