"""charrnn sampling throughput: chars/s for one stream and for K streams in one batched pass.

Uses `charrnn.sampling.generate`, the code path of `charrnn sample`, on a model with random
weights of the given shape (speed does not depend on what the weights learned), or on
a checkpoint with --checkpoint. ``weights`` in the output says what bounds one stream:
the bytes of weight matrices its step reads per character and how fast one
matrix-vector product of that size streams them on this machine.

    python benchmarks/bench_sample.py --cell lstm --hidden 256 --layers 2 -n 20000 --num-samples 1 64 --engine numba
    python benchmarks/bench_sample.py --checkpoint checkpoints/tinyshakespeare --top-p 0.9 --num-samples 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from charrnn import engines, model, process, rundir, sampling
from charrnn.config import ModelConfig, SampleOptions
from charrnn.data import Vocab
from charrnn.stepper import Stepper

# 65 printable characters, like tiny Shakespeare's vocabulary
VOCAB = Vocab("".join(sorted("\n !$&',-.3:;?" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz")))


def sample_throughput(
    params, cfg, vocab, n: int, num_samples: int, seed_text: str = "\n", top_p: float = 1.0, engine=None
) -> float:
    """Aggregate chars/s over all streams, seed feeding included."""
    t0 = time.perf_counter()
    produced = 0
    options = SampleOptions(n=n, temperature=1.0, top_p=top_p)
    for chars in sampling.generate(
        params, cfg, vocab, seed_text, options, rng_seed=0, num_samples=num_samples, engine=engine
    ):
        produced += sum(1 for _ in chars)
    return produced / (time.perf_counter() - t0)


def weight_streaming(params, cfg, repeats: int = 2000) -> dict:
    """What one stream's step must read: the bytes of the stepper's weight matrices (one
    matrix-vector product each per character), and how fast this machine streams that
    many bytes through one matrix-vector product of the same size, on one BLAS thread
    and on the default threads: a ceiling on one stream's chars/s from the weights alone."""
    stepper = Stepper(params, cfg, model.init_hidden(cfg, 1, params["Why"].dtype))
    mats = [
        m
        for m in (*stepper.WhT, *getattr(stepper, "WT", []), *getattr(stepper, "WxT", []), stepper.WyT)
        if m is not None
    ]
    nbytes = sum(m.nbytes for m in mats)
    rows = max(m.shape[0] for m in mats)
    W = np.ones((rows, max(1, nbytes // (4 * rows))), dtype=np.float32)
    x, out = np.ones((W.shape[1], 1), np.float32), np.empty((rows, 1), np.float32)
    rates = {}
    for name, threads in (("one_thread", 1), ("default_threads", None)):
        ctx = process.blas_threads(threads) if threads else contextlib.nullcontext()
        with ctx:
            np.matmul(W, x, out=out)
            t = time.perf_counter()
            for _ in range(repeats):
                np.matmul(W, x, out=out)
            rates[name] = W.nbytes * repeats / (time.perf_counter() - t)
    best = max(rates.values())
    return {
        "weight_bytes_per_char": nbytes,
        "matvec_gb_per_s": {k: round(v / 1e9, 1) for k, v in rates.items()},
        "ceiling_chars_per_s": round(best / nbytes),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint")
    p.add_argument("--cell", default="lstm", choices=["rnn", "lstm", "gru"])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("-n", type=int, default=20000, help="characters per stream")
    p.add_argument("--num-samples", type=int, nargs="+", default=[1, 64])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling, as charrnn sample --top-p")
    p.add_argument("--engine", choices=engines.NAMES, default=None, help="default: $CHARRNN_ENGINE, else auto")
    a = p.parse_args(argv)
    if a.checkpoint:
        from charrnn import checkpoint

        ck = checkpoint.load(rundir.resolve(a.checkpoint))
        params, cfg, vocab = ck.params, ck.model_cfg, ck.vocab
    else:
        vocab = VOCAB
        cfg = ModelConfig(cell=a.cell, vocab_size=vocab.size, hidden_size=a.hidden, n_layers=a.layers)
        params = model.init_params(cfg, np.random.default_rng(0))
    engine = engines.get(a.engine)
    engines.warm_up(engine, cfg.cell)
    out = {
        "impl": "charrnn",
        "engine": engine.name,
        "top_p": a.top_p,
        "cell": cfg.cell,
        "hidden": cfg.hidden_size,
        "layers": cfg.n_layers,
        "n_per_stream": a.n,
        "results": [],
    }
    for k in a.num_samples:
        n = a.n if k == 1 else max(200, a.n // k * 4)
        rates = [sample_throughput(params, cfg, vocab, n, k, top_p=a.top_p, engine=engine) for _ in range(a.repeats)]
        out["results"].append(
            {
                "num_samples": k,
                "n_per_stream": n,
                "chars_per_s": round(statistics.median(rates), 1),
                "runs": [round(r, 1) for r in rates],
            }
        )
    out["weights"] = weight_streaming(params, cfg)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
