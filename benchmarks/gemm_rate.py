"""NumPy float32 matmul rate (GFLOP/s) at the shapes charrnn's models run.

Tells how far a NumPy model can go at best: a training step cannot beat the
BLAS rate of its matmuls. Shapes are the per-timestep recurrent products of the
reference models at batch 64 and at a shard's 32 streams (small, latency-bound),
and the "all timesteps at once" products (64 x 64 = 4096 rows).

Each step product appears in two layouts with the same FLOPs: batch-major,
(B,H)@(H,G), and feature-major, W^T (G,H) @ h (H,B) (names ending in _fm), which
is what charrnn runs (cells.py): OpenBLAS is much faster at the second when B is
small.

Script use (prints one JSON object):
    python benchmarks/gemm_rate.py [--repeats 5] [--min-time 0.3]
The environment sets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which slow OpenBLAS
here; compare with them removed for this command only:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gemm_rate.py
1-thread rates (what each of the two training shards gets) are reported as well.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name -> (m, k, n): A is (m, k), B is (k, n).
SHAPES = {
    "square_2048": (2048, 2048, 2048),
    "lstm_h256_step": (64, 256, 1024),
    "lstm_h256_step_fm": (1024, 256, 64),
    "lstm_h256_step_b32": (32, 256, 1024),
    "lstm_h256_step_b32_fm": (1024, 256, 32),
    "gru_h256_step": (64, 256, 768),
    "gru_h256_step_fm": (768, 256, 64),
    "rnn_h512_step": (64, 512, 512),
    "rnn_h512_step_fm": (512, 512, 64),
    "lstm_h256_all": (4096, 256, 1024),
    "gru_h256_all": (4096, 256, 768),
    "rnn_h512_all": (4096, 512, 512),
    "proj_h256_v65_all": (4096, 256, 65),
    "proj_h512_v65_all": (4096, 512, 65),
}


def gemm_gflops(m, k, n, repeats=5, min_time=0.3, seed=0):
    """Median GFLOP/s of ``A @ B`` over ``repeats`` timed runs, 2*m*k*n flops each.

    Each run loops the product into a preallocated ``out`` until it has lasted at
    least ``min_time`` seconds, so tiny shapes are not dominated by timer noise
    and allocation does not count. The median resists the odd interrupted run.
    """
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), dtype=np.float32)
    np.matmul(a, b, out=out)  # warm caches and the BLAS thread pool
    # Calibrate the loop count once so every run does the same work.
    iters, elapsed = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(iters):
            np.matmul(a, b, out=out)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            break
        iters = max(iters * 2, int(iters * min_time / max(elapsed, 1e-9) * 1.1))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            np.matmul(a, b, out=out)
        rates.append(2.0 * m * k * n * iters / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


def rate_table(shapes=None, repeats=5, min_time=0.3):
    """{name: {"m","k","n","gflops"}} for a {name: (m, k, n)} dict (default SHAPES)."""
    shapes = SHAPES if shapes is None else shapes
    return {
        name: {"m": m, "k": k, "n": n, "gflops": round(gemm_gflops(m, k, n, repeats, min_time), 2)}
        for name, (m, k, n) in shapes.items()
    }


def _blas_info():
    # Which BLAS numpy uses, so results are comparable.
    try:
        cfg = np.show_config(mode="dicts")
    except TypeError:  # NumPy before 1.26 only prints it
        return None
    return (cfg or {}).get("Build Dependencies", {}).get("blas")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.3, help="minimum seconds per timed run")
    p.add_argument("--no-single-thread", action="store_true", help="skip the 1-thread table")
    a = p.parse_args(argv)
    result = {
        "numpy_version": np.__version__,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "blas": _blas_info(),
        "default_threads": rate_table(repeats=a.repeats, min_time=a.min_time),
    }
    if a.no_single_thread:
        result["single_thread"] = "skipped (--no-single-thread)"
    else:
        from charrnn.process import blas_threads

        with blas_threads(1):
            result["single_thread"] = rate_table(repeats=a.repeats, min_time=a.min_time)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
