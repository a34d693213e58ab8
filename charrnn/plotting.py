"""Loss curves from metrics.jsonl: bits per char against steps and against time.

matplotlib is an optional extra (``pip install 'charrnn[plot]'``); it is imported only
when a figure is drawn, with the Agg backend so no display is needed.
"""

from __future__ import annotations

import json
import math
import os

from charrnn.errors import CharRNNError, DataError

METRICS = "metrics.jsonl"  # the file charrnn.training appends to in each checkpoint directory
INSTALL_HINT = "charrnn plot needs matplotlib: pip install 'charrnn[plot]'"


def metrics_path(run: str) -> str:
    return os.path.join(run, METRICS) if os.path.isdir(run) else run


def read_metrics(run: str) -> tuple[list[dict], int]:
    """The evaluation records of a run directory (or a metrics.jsonl file), and how many
    lines were skipped as unreadable (a run killed mid-write leaves half a line).

    When the step counter goes back (a run resumed from an older checkpoint, or a fresh
    run in a reused directory), the later records replace the earlier ones from that
    step on, so the curve does not double back over itself."""
    path = metrics_path(run)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise DataError(f"no {METRICS} in {run}; pass a checkpoint directory written by `charrnn train`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    records, skipped = [], 0
    for line in lines:
        try:
            record = json.loads(line)
            float(record["step"]), float(record["val_loss"])
        except (ValueError, KeyError, TypeError):
            skipped += line.strip() != ""
            continue
        if records and record["step"] <= records[-1]["step"]:
            records = [r for r in records if r["step"] < record["step"]]
        records.append(record)
    if not records:
        raise DataError(f"{path} holds no evaluation records yet")
    return records, skipped


def _bpc(nats) -> float:
    return float("nan") if nats is None else nats / math.log(2)


def plot_runs(runs: dict[str, list[dict]], out: str, title: str = "") -> None:
    """Draw every run (label -> records) on one figure of two panels, validation solid
    and training dashed in the run's colour, and save it to ``out`` (format from the
    extension: .png, .svg, .pdf)."""
    try:
        import matplotlib
    except ImportError:
        raise CharRNNError(INSTALL_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True, constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    longest = max((r.get("elapsed") or 0.0) for records in runs.values() for r in records)
    unit, scale = ("minutes", 60.0) if longest >= 120 else ("seconds", 1.0)  # short runs read in seconds
    for i, (label, records) in enumerate(runs.items()):
        color = colors[i % len(colors)]
        steps = [r["step"] for r in records]
        times = [(r.get("elapsed") or 0.0) / scale for r in records]
        val = [_bpc(r["val_loss"]) for r in records]
        train = [_bpc(r.get("train_loss")) for r in records]
        best = min(val)
        for ax, x in ((by_step, steps), (by_time, times)):
            ax.plot(x, val, "-", color=color, marker="o" if len(x) < 30 else None, markersize=3,
                    label=f"{label} validation (best {best:.3f})")
            ax.plot(x, train, "--", color=color, alpha=0.7, label=f"{label} training")
    by_step.set_xlabel("step")
    by_time.set_xlabel(f"training time ({unit})")
    by_step.set_ylabel("loss (bits per character)")
    for ax in (by_step, by_time):
        ax.grid(True, alpha=0.3)
    by_time.legend(fontsize="small", loc="best")
    fig.suptitle(title or "charrnn: training (dashed) and validation (solid) loss")
    try:
        fig.savefig(out, dpi=110)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot write {out}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        plt.close(fig)
