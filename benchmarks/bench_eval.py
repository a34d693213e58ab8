"""Validation speed: scoring a checkpoint's held-out text on each engine, alternating.

Times what training's validation does (evaluation.char_losses over the held-out part,
then the cold-start windows), in one process, engine after engine for --rounds rounds,
after one untimed round that loads (or compiles) each engine; prints each round and the
medians' ratio to the NumPy engine.

    python benchmarks/bench_eval.py --checkpoint checkpoints/tinyshakespeare --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from charrnn import checkpoint, cold_start, data, engines, evaluation, process, rundir


def held_out(ckpt, corpus: str | None):
    """The ids the checkpoint's validation scores: the last val_frac of its corpus, with context."""
    loaded = data.load_corpus(corpus or ckpt.corpus["path"], ckpt.corpus.get("encoding") or "utf-8", ckpt.vocab)
    train_ids, _ = data.split(loaded.ids, ckpt.train_cfg.val_frac)
    return evaluation.with_context(loaded.ids, len(train_ids))


def validate(ckpt, ids, n_context, engine) -> float:
    t = time.perf_counter()
    losses = evaluation.char_losses(ckpt.params, ckpt.model_cfg, ids, n_context, engine=engine)
    cold_start.measure(ckpt.params, ckpt.model_cfg, ids, n_context, losses, engine=engine)
    return time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or run directory")
    p.add_argument("--corpus", help="its training text [default: the path the checkpoint records]")
    p.add_argument("--engines", nargs="+", choices=("numpy", "numba"), default=None)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    process.tune_for_training()  # as a training run does
    ckpt = checkpoint.load(rundir.resolve(a.checkpoint))
    ids, n_context = held_out(ckpt, a.corpus)
    names = a.engines or engines.available()
    loaded = {name: engines.get(name) for name in names}
    for e in loaded.values():
        engines.warm_up(e, ckpt.model_cfg.cell)
        validate(ckpt, ids[: 20 * evaluation.CONTEXT_CHARS], n_context, e)
    seconds = {name: [] for name in names}
    for _ in range(a.rounds):
        for name, e in loaded.items():
            seconds[name].append(validate(ckpt, ids, n_context, e))
    m = ckpt.model_cfg
    out = {
        "model": f"{m.cell} {m.n_layers}x{m.hidden_size}",
        "chars": len(ids) - n_context,
        "seconds": {k: [round(s, 3) for s in v] for k, v in seconds.items()},
        "chars_per_s": {k: round((len(ids) - n_context) / statistics.median(v)) for k, v in seconds.items()},
    }
    if "numpy" in seconds:
        base = statistics.median(seconds["numpy"])
        out["speedup_over_numpy"] = {k: round(base / statistics.median(v), 3) for k, v in seconds.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
