"""Where a training step's time goes: one shard on one thread, in sections, and the two shards together.

    python benchmarks/profile_step.py --cell lstm --hidden 256 --layers 2 --batch 64 --seq-len 64 --engine numba

Sections of `model.loss_and_grads` for one shard (the batch's first shard, as
`parallel.ShardRunner` cuts it), on a single-threaded BLAS, medians over --steps:
the recurrences' forward and backward loops (the engine's `CellOps.forward` /
`.backward`: the per-step products and the elementwise work between them) and everything else (the
all-steps input products, weight gradients, output layer, softmax, copies). Beside
them: the per-step products alone (the recurrent GEMM at one step's shape, times T,
per layer and pass), and the whole batch through `ShardRunner`, shards in parallel
threads and one after the other, alternating (the ratio is what the second core buys).
Random weights and text: the time does not depend on what they are.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from charrnn import cells, engines, model, parallel, process
from charrnn.config import ModelConfig


def _timed(name, fn, totals):
    def run(*args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        totals[name] = totals.get(name, 0.0) + time.perf_counter() - t
        return out

    return run


def shard_sections(cfg: ModelConfig, B: int, T: int, steps: int, engine, seed: int = 0) -> dict:
    """Median seconds per step of one shard of B streams: total and per section."""
    rng = np.random.default_rng(seed)
    params = model.init_params(cfg, rng)
    x, y = rng.integers(0, cfg.vocab_size, (2, B, T))
    state = model.init_hidden(cfg, B)
    ops = engine.cells[cfg.cell]
    totals: dict[str, float] = {}
    timed = dataclasses.replace(
        ops,
        forward=_timed("recurrence forward", ops.forward, totals),
        backward=_timed("recurrence backward", ops.backward, totals),
    )
    engine.cells[cfg.cell] = timed
    rows = []
    try:
        with process.blas_threads(1):
            model.loss_and_grads(params, cfg, x, y, state, cfg.dropout, rng, engine=engine)
            for _ in range(steps):
                totals.clear()
                t = time.perf_counter()
                model.loss_and_grads(params, cfg, x, y, state, cfg.dropout, rng, engine=engine)
                rows.append({"step": time.perf_counter() - t, **totals})
    finally:
        engine.cells[cfg.cell] = ops
    out = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    out["everything else"] = statistics.median(
        r["step"] - r["recurrence forward"] - r["recurrence backward"] for r in rows
    )
    return out


def recurrent_gemms(cfg: ModelConfig, B: int, T: int, repeats: int = 7) -> float:
    """Seconds per step of the per-step products alone: for each layer, T forward
    products W^T (G,H) @ h (H,B) and T backward ones Wh (H,G) @ d (G,B)."""
    H, G = cfg.hidden_size, cfg.gates
    rng = np.random.default_rng(0)
    WT, W = rng.random((G, H), np.float32), rng.random((H, G), np.float32)
    h, d = rng.random((H, B), np.float32), rng.random((G, B), np.float32)
    a, dh = np.empty((G, B), np.float32), np.empty((H, B), np.float32)
    times = []
    with process.blas_threads(1):
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(T):
                np.matmul(WT, h, out=a)
                np.matmul(W, d, out=dh)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * cfg.n_layers


def whole_batch(cfg: ModelConfig, B: int, T: int, rounds: int, engine, seed: int = 0) -> dict:
    """Median seconds per step of the whole batch: shards in parallel and one after the
    other (on one core), alternating round by round."""
    rng = np.random.default_rng(seed)
    params = model.init_params(cfg, rng)
    x, y = rng.integers(0, cfg.vocab_size, (2, B, T))
    state = model.init_hidden(cfg, B)
    runner = parallel.ShardRunner(B)
    can_parallel = runner.parallel
    times: dict[str, list[float]] = {"parallel": [], "one after the other": []}
    for _ in range(rounds):
        for mode in times:
            runner.parallel = can_parallel and mode == "parallel"
            ctx = contextlib.nullcontext() if runner.parallel else process.blas_threads(1)
            with ctx:
                t = time.perf_counter()
                runner.loss_and_grads(params, cfg, x, y, state, cfg.dropout, rng, engine=engine)
                times[mode].append(time.perf_counter() - t)
    runner.parallel = can_parallel
    runner.close()
    return (
        {k: statistics.median(v) for k, v in times.items()}
        if can_parallel
        else {"one after the other": statistics.median(times["one after the other"])}
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cell", default="lstm", choices=sorted(cells.SPECS))
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=65)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--engine", choices=engines.NAMES, default=None, help="default: $CHARRNN_ENGINE, else auto")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    process.tune_for_training()  # as a training run does
    engine = engines.get(a.engine)
    engines.warm_up(engine, a.cell)
    cfg = ModelConfig(cell=a.cell, vocab_size=a.vocab, hidden_size=a.hidden, n_layers=a.layers, dropout=a.dropout)
    lo, hi = parallel.shard_bounds(a.batch)[0]
    B, T = hi - lo, a.seq_len
    sections = shard_sections(cfg, B, T, a.steps, engine)
    gemm = recurrent_gemms(cfg, B, T)
    batch = whole_batch(cfg, a.batch, T, a.steps, engine)
    out = {
        "model": f"{a.cell} {a.layers}x{a.hidden}",
        "engine": engine.name,
        "shard_streams": B,
        "seq_len": T,
        "shard_seconds": sections,
        "per_step_products_seconds": gemm,
        "batch_seconds": batch,
    }
    if a.json:
        print(json.dumps(out, indent=2))
        return
    step = sections["step"]
    head = f"{out['model']} on the {engine.name} engine, one shard of {B} streams x {T} steps on one thread"
    print(f"{head}: {step * 1e3:.1f} ms a step ({B * T / step:,.0f} chars/s)")
    for name in ("recurrence forward", "recurrence backward", "everything else"):
        print(f"  {name:20s} {sections[name] * 1e3:7.1f} ms  {sections[name] / step:4.0%}")
    rec = sections["recurrence forward"] + sections["recurrence backward"]
    print(f"  of the recurrences, the per-step products alone take {gemm * 1e3:.1f} ms ({gemm / rec:.0%})")
    for mode, s in batch.items():
        print(f"whole batch of {a.batch}, shards {mode}: {s * 1e3:.1f} ms a step ({a.batch * T / s:,.0f} chars/s)")
    if len(batch) == 2:
        print(f"second core: {batch['one after the other'] / batch['parallel']:.2f}x")


if __name__ == "__main__":
    main()
