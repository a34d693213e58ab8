"""charrnn against PyTorch's CPU recurrent layers: training chars/s, same shapes, one run.

For each model, runs charrnn's and PyTorch's training benchmark in turn, each in a fresh
process (so neither inherits the other's thread pools or spinning OpenMP threads), and
repeats the pair at least 3 times; prints the medians and their ratio. PyTorch is
optional: without it, the script says so and reports charrnn's figures alone.

    python benchmarks/compare.py --corpus ../shared/corpora/tinyshakespeare.txt
    python benchmarks/compare.py --models lstm:2:256 --repeats 5 --steps 30

Never run two benchmarks at the same time: on 2 cores they distort each other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ("lstm:2:256", "gru:1:256", "rnn:1:512")  # the reference models
TORCH_MISSING = 3


def _run(script: str, args: list[str]) -> tuple[int, dict | None, str]:
    proc = subprocess.run([sys.executable, os.path.join(HERE, script), *args], capture_output=True, text=True)
    try:
        return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr
    except (ValueError, IndexError):
        return proc.returncode, None, proc.stderr


def compare(corpus: str, model: str, batch: int, seq_len: int, steps: int, repeats: int, threads: int) -> dict:
    cell, layers, hidden = model.split(":")
    shape = [
        "--corpus",
        corpus,
        "--cell",
        cell,
        "--layers",
        layers,
        "--hidden",
        hidden,
        "--batch",
        str(batch),
        "--seq-len",
        str(seq_len),
        "--steps",
        str(steps),
    ]
    ours, theirs, torch_note, last = [], [], None, None
    for _ in range(repeats):
        code, out, err = _run("bench_train.py", shape + ["--repeats", "1"])
        if out is None:
            raise SystemExit(f"bench_train.py failed:\n{err}")
        ours.append(out["chars_per_s"])
        last = out
        if torch_note is None:
            code, out, err = _run("torch_reference.py", shape + ["--threads", str(threads), "--repeats", "1"])
            if code == TORCH_MISSING:
                torch_note = "PyTorch is not installed (pip install torch==2.13.0); charrnn figures only"
            elif out is None:
                torch_note = f"torch_reference.py failed: {err.strip().splitlines()[-1] if err.strip() else code}"
            else:
                theirs.append(out["chars_per_s"])
                torch_version = out.get("torch_version")
    result = {
        "model": model,
        "batch": batch,
        "seq_len": seq_len,
        "steps": steps,
        "repeats": repeats,
        "charrnn_chars_per_s": round(statistics.median(ours), 1),
        "charrnn_runs": [round(r) for r in ours],
        "charrnn_gflops": round(statistics.median(ours) * last["mflop_per_char"] / 1e3, 2),
        "gemm_gflops_step_shape": last["gemm_gflops_step_shape"],
        "gemm_gflops_step_shape_batch_major": last["gemm_gflops_step_shape_batch_major"],
        "gemm_gflops_all_steps_shape": last["gemm_gflops_all_steps_shape"],
    }
    result["fraction_of_step_gemm"] = round(result["charrnn_gflops"] / result["gemm_gflops_step_shape"], 3)
    if theirs:
        result.update(
            {
                "torch_version": torch_version,
                "torch_threads": threads,
                "torch_chars_per_s": round(statistics.median(theirs), 1),
                "torch_runs": [round(r) for r in theirs],
                "ratio": round(statistics.median(ours) / statistics.median(theirs), 3),
            }
        )
    else:
        result["note"] = torch_note
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default=os.path.join(HERE, "..", "corpora", "tales.txt"))
    p.add_argument("--models", nargs="+", default=list(MODELS), help="cell:layers:hidden")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads")
    a = p.parse_args(argv)
    if a.repeats < 3:
        p.error("--repeats must be at least 3: one run on a shared machine proves nothing")
    for model in a.models:
        r = compare(a.corpus, model, a.batch, a.seq_len, a.steps, a.repeats, a.threads)
        print(json.dumps(r), flush=True)
        summary = (
            f"{model}: charrnn {r['charrnn_chars_per_s']:,.0f} chars/s, {r['charrnn_gflops']} GFLOP/s "
            f"({r['fraction_of_step_gemm']:.0%} of the {r['gemm_gflops_step_shape']} GFLOP/s GEMM rate "
            f"at one step's shape, feature-major; {r['gemm_gflops_step_shape_batch_major']} batch-major)"
        )
        if "ratio" in r:
            summary += f"; torch {r['torch_chars_per_s']:,.0f} chars/s; ratio {r['ratio']:.2f}x"
        else:
            summary += f"; {r['note']}"
        print(summary, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
