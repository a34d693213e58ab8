"""charrnn against PyTorch's CPU recurrent layers: training chars/s, same shapes, one run.

For each model, runs charrnn's training benchmark on each engine and PyTorch's in turn,
each in a fresh process (so none inherits another's thread pools or spinning OpenMP
threads), and repeats the round at least 3 times; prints the medians and their ratio. PyTorch is
optional: without it, the script says so and reports charrnn's figures alone.

    python benchmarks/compare.py --corpus ../shared/corpora/tinyshakespeare.txt
    python benchmarks/compare.py --models lstm:2:256 --repeats 5 --steps 30 --engines numba
    python benchmarks/compare.py --inputs embed-h     # the labelled variant with an extra input product
    python benchmarks/avx2_only.py python benchmarks/compare.py   # as the AVX2 class runs, on an AVX-512 CPU

The first lines say where and against what the figures were measured: the CPU and
its vector extensions, NumPy's BLAS, OPENBLAS_CORETYPE if set, and the reference
network's shapes (by default the same function as charrnn's model: Embedding(V, V)
into a recurrent layer of input size V).

Never run two benchmarks at the same time: on 2 cores they distort each other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import avx2_only  # noqa: E402  (beside this script)

from charrnn import engines

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ("lstm:2:256", "gru:1:256", "rnn:1:512")  # one of each cell, the sizes RESULTS.md compares
TORCH_MISSING = 3


def _run(script: str, args: list[str]) -> tuple[int, dict | None, str]:
    proc = subprocess.run([sys.executable, os.path.join(HERE, script), *args], capture_output=True, text=True)
    try:
        return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr
    except (ValueError, IndexError):
        return proc.returncode, None, proc.stderr


def machine() -> dict:
    """The CPU, its vector extensions and NumPy's BLAS: what every figure depends on."""
    import numpy as np

    cpu, flags, cpu_id = "unknown", set(), {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and cpu == "unknown":
                    cpu = value.strip()
                elif key.strip() in ("cpu family", "model") and "family" not in cpu_id:
                    cpu_id[key.strip()] = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - older NumPy: no dict form
        blas = "unknown"
    if cpu_id:  # a virtual machine may name only the vendor: family and model tell the generation
        cpu += f" (family {cpu_id.get('cpu family', '?')}, model {cpu_id.get('model', '?')})"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "vector_extensions": [x for x in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if x in flags],
        "numpy": np.__version__,
        "blas": blas,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "numpy_avx512": avx2_only.numpy_avx512(),
        # set by benchmarks/avx2_only.py: the instruction set every library was held to
        "isa_settings": {k: os.environ[k] for k in (*avx2_only.SETTINGS, "NUMBA_CPU_NAME") if k in os.environ},
    }


def compare(
    corpus: str,
    model: str,
    batch: int,
    seq_len: int,
    steps: int,
    repeats: int,
    threads: int,
    inputs: str = "embed-v",
    engine_names: tuple = ("numpy",),
) -> dict:
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
    ours: dict[str, list[float]] = {name: [] for name in engine_names}
    theirs, torch_note, last = [], None, None
    for _ in range(repeats):  # one round: each engine, then PyTorch, each in a fresh process
        for name in engine_names:
            code, out, err = _run("bench_train.py", shape + ["--repeats", "1", "--engine", name])
            if out is None:
                raise SystemExit(f"bench_train.py --engine {name} failed:\n{err}")
            ours[name].append(out["chars_per_s"])
            last = out
        if torch_note is None:
            torch_args = shape + ["--threads", str(threads), "--repeats", "1", "--inputs", inputs]
            code, out, err = _run("torch_reference.py", torch_args)
            if code == TORCH_MISSING:
                torch_note = "PyTorch is not installed (pip install torch==2.13.0); charrnn figures only"
            elif out is None:
                torch_note = f"torch_reference.py failed: {err.strip().splitlines()[-1] if err.strip() else code}"
            else:
                theirs.append(out["chars_per_s"])
                torch_version = out.get("torch_version")
                reference = out.get("reference_model")
    result = {
        "model": model,
        "batch": batch,
        "seq_len": seq_len,
        "steps": steps,
        "repeats": repeats,
        "gemm_gflops_step_shape": last["gemm_gflops_step_shape"],
        "gemm_gflops_step_shape_batch_major": last["gemm_gflops_step_shape_batch_major"],
        "gemm_gflops_all_steps_shape": last["gemm_gflops_all_steps_shape"],
        "engines": {},
    }
    for name, runs in ours.items():
        median = statistics.median(runs)
        gflops = median * last["mflop_per_char"] / 1e3
        result["engines"][name] = {
            "chars_per_s": round(median, 1),
            "runs": [round(r) for r in runs],
            "gflops": round(gflops, 2),
            "fraction_of_step_gemm": round(gflops / result["gemm_gflops_step_shape"], 3),
        }
    if theirs:
        result.update(
            {
                "torch_version": torch_version,
                "reference_model": reference,
                "torch_threads": threads,
                "torch_chars_per_s": round(statistics.median(theirs), 1),
                "torch_runs": [round(r) for r in theirs],
            }
        )
        for e in result["engines"].values():
            e["ratio"] = round(e["chars_per_s"] / result["torch_chars_per_s"], 3)
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
    p.add_argument(
        "--engines", nargs="+", choices=("numpy", "numba"), default=None, help="default: every engine that loads here"
    )
    p.add_argument(
        "--inputs",
        choices=("embed-v", "onehot", "embed-h"),
        default="embed-v",
        help="what feeds PyTorch's first layer (torch_reference.py --inputs); embed-v is charrnn's function",
    )
    a = p.parse_args(argv)
    if a.repeats < 3:
        p.error("--repeats must be at least 3: one run on a shared machine proves nothing")
    engine_names = tuple(a.engines or engines.available())
    where = machine()
    print(json.dumps({"machine": where}), flush=True)
    print(
        f"CPU {where['cpu']} ({where['cores']} cores; {', '.join(where['vector_extensions']) or 'no AVX2'}); "
        f"NumPy {where['numpy']} with {where['blas']}"
        + (f"; OPENBLAS_CORETYPE={where['openblas_coretype']}" if where["openblas_coretype"] else "")
        + ("; held to AVX2 by avx2_only.py" if where["isa_settings"] else ""),
        file=sys.stderr,
        flush=True,
    )
    for model in a.models:
        r = compare(a.corpus, model, a.batch, a.seq_len, a.steps, a.repeats, a.threads, a.inputs, engine_names)
        print(json.dumps(r), flush=True)
        lines = [f"{model} (GEMM at one step's shape: {r['gemm_gflops_step_shape']} GFLOP/s feature-major)"]
        for name, e in r["engines"].items():
            line = (
                f"  charrnn {name:5s} {e['chars_per_s']:>9,.0f} chars/s, {e['gflops']} GFLOP/s "
                f"({e['fraction_of_step_gemm']:.0%} of that rate); rounds {e['runs']}"
            )
            if "ratio" in e:
                line += f"; {e['ratio']:.2f}x torch"
            lines.append(line)
        if "torch_chars_per_s" in r:
            lines.append(
                f"  torch         {r['torch_chars_per_s']:>9,.0f} chars/s ({r['reference_model']}); "
                f"rounds {r['torch_runs']}"
            )
        else:
            lines.append(f"  {r['note']}")
        print("\n".join(lines), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
