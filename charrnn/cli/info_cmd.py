"""`charrnn info`: what a checkpoint holds, for a person (or --json for a script)."""

from __future__ import annotations

import json
import os

import click

from charrnn import rundir
from charrnn.cli.options import json_option
from charrnn.cli.output import number
from charrnn.config import format_duration


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@json_option("one object per checkpoint")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing: only check that every PATH loads (exit 1 if not).")
def info(paths, as_json, quiet):
    """Show a checkpoint's configuration, size, progress and training corpus.

    PATH is a checkpoint file or a run directory (its best.npz, else latest.npz).
    From the run's metrics.jsonl, it also shows how far the run went beyond the
    checkpoint, and says when validation has been rising for a while (the model has
    begun to memorise its text).

    \b
    Examples:
      charrnn info checkpoints/tales
      charrnn info checkpoints/tales/latest.npz --json
      charrnn info checkpoints/*/ --json | jq .best_val_bpc
      charrnn info -q checkpoints/tales/best.npz && echo usable
    """
    from charrnn import checkpoint

    for i, spec in enumerate(paths):
        path = rundir.resolve(spec)
        facts = describe(path, checkpoint.load(path))
        if quiet:
            continue
        if as_json:
            click.echo(json.dumps(facts))
        else:
            click.echo(("\n" if i else "") + render(facts))


def run_history(path: str) -> dict | None:
    """What the run directory of checkpoint ``path`` says about the run as a whole
    (its metrics.jsonl): the last validation's step and loss, how many there were,
    and whether validation has been rising (metrics.memorising); None without it."""
    from charrnn import metrics
    from charrnn.errors import CharRNNError

    directory = os.path.dirname(os.path.abspath(path))
    try:
        records, _ = metrics.read(directory)
    except CharRNNError:
        return None
    return {
        "last_step": records[-1]["step"],
        "last_val_loss": records[-1]["val_loss"],
        "validations": len(records),
        "memorising": metrics.memorising(records, os.path.dirname(path) or "."),
    }


def describe(path: str, ckpt) -> dict:
    """Everything worth knowing about ``ckpt``, JSON-ready (no parameters, no RNG state)."""
    from charrnn import metrics, model

    progress = dict(ckpt.progress)
    best = progress.get("best_val")
    return {
        "run": run_history(path),
        "checkpoint": path,
        "model": ckpt.model_cfg.to_dict(),
        "train": ckpt.train_cfg.to_dict(),
        "n_params": model.n_params(ckpt.model_cfg),
        "vocab_size": ckpt.vocab.size,
        "vocab": ckpt.vocab.chars,
        "progress": progress,
        "steps": progress.get("step"),
        "best_val_loss": best,
        "best_val_bpc": metrics.bits(best),
        "cold_start": progress.get("cold_start"),
        "engine": progress.get("engine"),
        "ranks": progress.get("ranks", 1),
        "corpus": dict(ckpt.corpus),
    }


def _run_lines(f: dict) -> list[tuple[str, str]]:
    """The run beyond this checkpoint (a best.npz is often behind the run), and whether
    it has begun to memorise."""
    run = f.get("run")
    if not run:
        return []
    lines = []
    if run["last_step"] != f["steps"]:
        lines.append(
            (
                "run",
                f"went on to step {run['last_step']:,} (validation {run['last_val_loss']:.4f} there; "
                f"{run['validations']} validations in metrics.jsonl); this checkpoint is from step {f['steps'] or 0:,}",
            )
        )
    if run["memorising"]:
        lines.append(("note", run["memorising"]))
    return lines


def render(f: dict) -> str:
    from charrnn import cold_start  # numpy: only once a checkpoint is shown

    m, t, p, c = f["model"], f["train"], f["progress"], f["corpus"]
    vocab = "".join(f["vocab"])
    shown = vocab if len(vocab) <= 40 else vocab[:40] + "..."
    limits = ", ".join(
        s
        for s in (
            t["max_steps"] and f"max {t['max_steps']:,} steps",
            t["time_limit"] and f"time limit {format_duration(t['time_limit'])}",
        )
        if s
    )
    schedule = f"cosine to {t['min_lr_frac']:g}x" if t["lr_schedule"] == "cosine" else t["lr_schedule"]
    lines = [
        ("checkpoint", f["checkpoint"]),
        ("model", f"{m['cell']}, {m['n_layers']} layer(s) x {m['hidden_size']} hidden units, dropout {m['dropout']:g}"),
        ("parameters", f"{f['n_params']:,}"),
        ("vocabulary", f"{f['vocab_size']} characters: {shown!r}"),
        (
            "training",
            f"{t['optimizer']} lr {t['lr']:g} ({schedule})"
            + (f", beta2 {t['adam_beta2']:g}" if t["optimizer"] == "adam" else "")
            + f", seq-len {t['seq_len']}, "
            f"batch {t['batch_size']}, clip {t['clip']:g}, val-frac {t['val_frac']:g}, "
            f"seed {t['rng_seed']}" + (f"; {limits}" if limits else ""),
        ),
        (
            "progress",
            f"{p.get('step', 0):,} steps, epoch {p.get('epoch', 0)}, "
            f"{format_duration(p.get('elapsed') or 0)} of training"
            + (f" on the {f['engine']} engine" if f.get("engine") else "")
            + (f", {f['ranks']} MPI ranks" if f.get("ranks", 1) > 1 else ""),
        ),
        *_run_lines(f),
        (
            "validation",
            f"best {number(f['best_val_loss'])} nats/char = {number(f['best_val_bpc'])} bits/char"
            if f["best_val_loss"] is not None
            else "not validated yet",
        ),
        *([("cold start", cold_start.line(f["cold_start"]))] if f.get("cold_start") else []),
        (
            "corpus",
            f"{c.get('name', '?')}: {c.get('chars', 0):,} chars, {c.get('encoding', 'utf-8')}, "
            f"sha256 {str(c.get('sha256', '?'))[:16]}..., "
            + (f"at {c['path']}" if c.get("path") else "read from a pipe, not kept (eval needs it again as FILE)")
            + (f"; joined from {', '.join(c['sources'])}" if c.get("sources") else ""),
        ),
    ]
    return "\n".join(f"{k:<11} {v}" for k, v in lines)
