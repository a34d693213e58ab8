"""A run's evaluation records, ``metrics.jsonl`` in its checkpoint directory, and units.

Training appends one JSON object per evaluation (step, epoch, elapsed, lr,
train_loss (the mean since the previous record, from step train_from), val_loss in
nats, val_bpc, chars_per_s, ...); plots and scripts read them. Losses are kept in
nats per character; bits per character are nats / ln 2.
"""

from __future__ import annotations

import json
import math
import os

from charrnn import rundir
from charrnn.errors import CheckpointError, DataError

LN2 = math.log(2.0)


def bits(nats: float | None) -> float | None:
    """Nats per character in bits per character (None stays None)."""
    return None if nats is None else nats / LN2


def reset(directory: str) -> None:
    """Remove a run directory's metrics.jsonl: a new run (not a resumed one) starts its
    own, so that plots of a directory trained again with --overwrite do not mix runs."""
    try:
        os.unlink(os.path.join(directory, rundir.METRICS))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise CheckpointError(f"cannot reset {rundir.METRICS} in {directory}: {exc.strerror or exc}") from None


def append(directory: str, record: dict) -> None:
    path = os.path.join(directory, rundir.METRICS)
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as exc:  # the checkpoint is already saved; say so rather than a traceback
        raise CheckpointError(
            f"cannot append to {path}: {exc.strerror or exc} (the checkpoint of step {record.get('step')} was saved)"
        ) from None


def read(run: str) -> tuple[list[dict], int]:
    """The evaluation records of a run directory (or a metrics.jsonl file), and how many
    lines were skipped as unreadable (a run killed mid-write leaves half a line).

    When the step counter goes back (a run resumed from an older checkpoint, or a fresh
    run in a reused directory), the records after the jump replace those from that step
    on, so the curve does not double back over itself."""
    path = rundir.metrics_path(run)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise DataError(
            f"no {rundir.METRICS} in {run}; pass a checkpoint directory written by `charrnn train`"
        ) from None
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


RISING_EVALS = 3  # validations in a row above the best before a run is said to memorise
RISING_MARGIN = 0.01  # ... and the last at least this much (relative) above the best


def memorising(records: list[dict], directory: str | None = None) -> str | None:
    """A sentence saying that validation has been rising for a while, or None: the
    last RISING_EVALS validations were all above the best one, the last by at least
    RISING_MARGIN. The model has begun to memorise its training text; ``directory``'s
    best.npz keeps the best step."""
    vals = [r["val_loss"] for r in records]
    if len(vals) <= RISING_EVALS:
        return None
    best = min(range(len(vals)), key=vals.__getitem__)
    if len(vals) - 1 - best < RISING_EVALS or vals[-1] < vals[best] * (1 + RISING_MARGIN):
        return None
    where = f"{os.path.join(directory, 'best.npz')} keeps" if directory else "best.npz keeps"
    return (
        f"validation has not improved for {len(vals) - 1 - best} validations: best {vals[best]:.4f} at step "
        f"{records[best]['step']:,}, now {vals[-1]:.4f} at step {records[-1]['step']:,}; the model has begun to "
        f"memorise its text ({where} step {records[best]['step']:,}; more --dropout or a smaller model would help)"
    )
