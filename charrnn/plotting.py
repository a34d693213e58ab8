"""Loss curves from metrics.jsonl (metrics.py): bits per char against steps and against time.

matplotlib is an optional extra (``pip install 'charrnn[plot]'``); it is imported only
when a figure is drawn, with the Agg backend so no display is needed.
"""

from __future__ import annotations

from charrnn import metrics
from charrnn.errors import CharRNNError, DataError

INSTALL_HINT = "charrnn plot needs matplotlib: pip install 'charrnn[plot]'"


def _bpc(nats) -> float:
    return float("nan") if nats is None else metrics.bits(nats)


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
            ax.plot(
                x,
                val,
                "-",
                color=color,
                marker="o" if len(x) < 30 else None,
                markersize=3,
                label=f"{label} validation (best {best:.3f})",
            )
            ax.plot(x, train, "--", color=color, alpha=0.7, label=f"{label} training (mean since the last validation)")
    by_step.set_xlabel("step")
    by_time.set_xlabel(f"training time ({unit})")
    by_step.set_ylabel("loss (bits per character)")
    for ax in (by_step, by_time):
        ax.grid(True, alpha=0.3)
    by_time.legend(fontsize="small", loc="best")
    fig.suptitle(title or "charrnn: validation loss (solid) and mean training loss between validations (dashed)")
    try:
        fig.savefig(out, dpi=110)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot write {out}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        plt.close(fig)
