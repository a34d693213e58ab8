"""The grid behind charrnn.autosize: explicit alternatives per (corpus size, budget) cell.

For each cell, trains (through the `charrnn train` command, one run at a time):
  1. five hidden sizes of the LADDER around the rule's choice, at the rule's dropout;
  2. the best of those with dropout 0.15 lower and 0.15 higher;
  3. the best so far with a 1.6x higher learning rate (autosize.lr_for gives the others');
and then the rule's own choice, the plain `charrnn train FILE --time-limit T` (its
probe counted in the budget). Each run validates as often as the rule would have
it validate (autosize.eval_every), so that keeping the best checkpoint is equally
fair to every run. One JSON line per run goes to --out; a table is printed at the end.

    python benchmarks/autosize_grid.py --cell names50k=PATH:120 --cell shakespeare=PATH:600 \\
        --out grid.jsonl [--launcher "flock /tmp/cpu.lock"]

    python benchmarks/autosize_grid.py --table grid.jsonl    # the Markdown tables of benchmarks/RESULTS.md

--launcher prefixes every command that computes (e.g. a lock that keeps other jobs
off the machine while a run is timed). Never run two trainings at the same time.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from charrnn import autosize, data
from charrnn.model import n_params


def train(launcher, corpus, budget, options, workdir, name):
    ck = os.path.join(workdir, name)
    cmd = [
        *launcher,
        sys.executable,
        "-m",
        "charrnn",
        "train",
        corpus,
        "--time-limit",
        f"{budget:g}",
        "--checkpoint-dir",
        ck,
        "--overwrite",
        "--json",
        "-q",
        *map(str, options),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    info = subprocess.run([sys.executable, "-m", "charrnn", "info", ck, "--json"], capture_output=True, text=True)
    facts = json.loads(info.stdout)
    return {
        "best_val_loss": summary["best_val_loss"],
        "steps": summary["steps"],
        "chars_per_s": summary["chars_per_s"],
        "model": facts["model"],
        "train": {k: facts["train"][k] for k in ("lr", "eval_every", "batch_size", "seq_len")},
        "cold_start": facts.get("cold_start"),
        "n_params": facts["n_params"],
    }


def probe_speed(launcher, vocab_size):
    code = (
        "import json; from charrnn import autosize; from charrnn.config import TrainConfig; "
        f"s, t = autosize.probe({vocab_size}, TrainConfig()); print(json.dumps([s.fixed, s.per_gflop]))"
    )
    out = subprocess.run([*launcher, sys.executable, "-c", code], capture_output=True, text=True, check=True)
    fixed, per_gflop = json.loads(out.stdout)
    return autosize.Speed(fixed, per_gflop)


def run_cell(label, corpus, budget, launcher, workdir, log):
    loaded = data.load_corpus(corpus)
    ids, vocab = loaded.ids, loaded.vocab
    n, V = len(ids), vocab.size
    speed = probe_speed(launcher, V)
    rule = autosize.choose(n, budget, speed, V)
    H0, d0 = rule.model["hidden_size"], rule.model["dropout"]
    val_chars = round(n * 0.1)
    results = []

    def one(H, dropout, lr=None, tag=""):
        cfg = autosize.candidate(H, V, dropout)
        rate = speed.rate(cfg)
        steps = rate * budget / (64 * 64)
        every = autosize.eval_every(steps, val_chars, rate, budget)
        opts = [
            "--cell",
            "lstm",
            "--layers",
            autosize.LAYERS,
            "--hidden-size",
            H,
            "--dropout",
            dropout,
            "--eval-every",
            every,
            "--lr",
            lr or autosize.lr_for(H),
        ]
        name = f"{label}-h{H}-d{dropout:g}" + (f"-lr{lr:g}" if lr else "") + tag
        r = {
            "cell": label,
            "corpus_chars": n,
            "budget": budget,
            "run": name,
            "auto": False,
            "predicted_chars_per_s": round(rate),
            "n_params": n_params(cfg),
            **train(launcher, corpus, budget, opts, workdir, name),
        }
        log(r)
        results.append(r)
        return r

    i0 = autosize.LADDER.index(H0)
    for H in autosize.LADDER[max(0, i0 - 2) : i0 + 3]:
        one(H, d0)
    ok = [r for r in results if "best_val_loss" in r]
    best = min(ok, key=lambda r: r["best_val_loss"])
    Hb = best["model"]["hidden_size"]
    for d in (round(max(0.0, d0 - 0.15), 2), round(min(0.6, d0 + 0.15), 2)):
        one(Hb, d)
    ok = [r for r in results if "best_val_loss" in r]
    best = min(ok, key=lambda r: r["best_val_loss"])
    one(best["model"]["hidden_size"], best["model"]["dropout"], lr=round(1.6 * best["train"]["lr"], 6))
    auto = {
        "cell": label,
        "corpus_chars": n,
        "budget": budget,
        "run": f"{label}-auto",
        "auto": True,
        "rule_choice": rule.model,
        **train(launcher, corpus, budget, [], workdir, f"{label}-auto"),
    }
    log(auto)
    return results, auto


def table(path: str) -> str:
    """Markdown: per cell, every run (hidden size, dropout, lr, steps, chars/s, best
    validation loss) and the automatic choice's gap to the best explicit run. A run
    recorded twice shows its last record; a record's "note" (for example, that other
    load slowed it) follows its name."""
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    cells: dict = {}
    for r in records:
        if "best_val_loss" in r:
            cells.setdefault(r["cell"], {})[r["run"]] = r
    out = []
    for cell, runs in cells.items():
        explicit = [r for r in runs.values() if not r.get("auto") and not r.get("torch")]
        best = min(explicit, key=lambda r: r["best_val_loss"]) if explicit else None
        first = next(iter(runs.values()))
        out.append(f"### {cell}: {first.get('corpus_chars', 0):,} characters, {first.get('budget', 0):g} s\n")
        out.append("| run | hidden | dropout | lr | steps | chars/s | best val (nats/char) | vs best |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in sorted(runs.values(), key=lambda r: (bool(r.get("auto") or r.get("torch")), r["best_val_loss"])):
            m, t = r.get("model", {}), r.get("train", {})
            gap = f"{r['best_val_loss'] / best['best_val_loss'] - 1:+.1%}" if best else ""
            name = f"**{r['run']}**" if r.get("auto") else f"*{r['run']}*" if r.get("torch") else r["run"]
            if r.get("note"):
                name += f" ({r['note']})"
            out.append(
                f"| {name} | {m.get('hidden_size', '')} | {m.get('dropout', '')} | {t.get('lr', '')} | "
                f"{r.get('steps', '')} | {r.get('chars_per_s', 0):,.0f} | {r['best_val_loss']:.4f} | {gap} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--table", metavar="JSONL", help="print the Markdown tables of a grid's records and exit")
    p.add_argument("--cell", action="append", help="LABEL=PATH:SECONDS")
    p.add_argument("--out", help="JSON lines, one per run (appended)")
    p.add_argument("--launcher", default="", help="command prefix for every computing step")
    p.add_argument("--workdir", default=None, help="where the runs' checkpoints go [default: a temp dir]")
    a = p.parse_args(argv)
    if a.table:
        print(table(a.table))
        return
    if not a.cell or not a.out:
        p.error("--cell and --out are needed to run a grid")
    launcher = shlex.split(a.launcher)
    workdir = a.workdir or tempfile.mkdtemp(prefix="autosize-grid-")

    def log(record):
        with open(a.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)

    for spec in a.cell:
        label, rest = spec.split("=", 1)
        path, seconds = rest.rsplit(":", 1)
        results, auto = run_cell(label, path, float(seconds), launcher, workdir, log)
        ok = [r for r in results if "best_val_loss" in r]
        best = min(ok, key=lambda r: r["best_val_loss"])
        gap = auto.get("best_val_loss", float("nan")) / best["best_val_loss"] - 1
        print(
            f"{label}: best of grid {best['best_val_loss']:.4f} ({best['run']}), auto "
            f"{auto.get('best_val_loss', float('nan')):.4f} ({gap:+.1%})",
            file=sys.stderr,
            flush=True,
        )


if __name__ == "__main__":
    main()
