"""A run directory: what lives in it, what its files are called, and where runs live.

One directory per run (``checkpoints/<corpus name>/`` unless --checkpoint-dir says
otherwise) holds::

    latest.npz            the last checkpoint (resume continues it)
    best.npz              the checkpoint of the lowest validation loss (sample, eval use it)
    step-00001500.npz     with --keep-last K, the last K checkpoints by step
    metrics.jsonl         one line per validation (metrics.py)
    corpus.txt            with --concat, the joined text the run trains on
    .lock                 held by the run training there (lock.py)
    .ckpt-*.tmp           a save in progress (checkpoint.save), .probe-*.tmp a writability probe

checkpoint.py owns the file format and its safe loader; this module owns the names,
finding a run's checkpoint, the latest run under the root, pruning, and whether the
directory can be written.
"""

from __future__ import annotations

import glob
import os
import re
import tempfile

from charrnn.errors import CheckpointError

ROOT = "checkpoints"  # where runs go unless --checkpoint-dir says otherwise
LATEST, BEST = "latest.npz", "best.npz"
STEP_FILE = re.compile(r"step-(\d{8,})\.npz")  # --keep-last copies: step-00001500.npz
METRICS = "metrics.jsonl"
JOINED = "corpus.txt"  # the joined text of a --concat run
LOCK = ".lock"
TEMP_PREFIXES, TEMP_SUFFIX = (".ckpt-", ".probe-"), ".tmp"  # a save in progress, a writability probe


def default(name: str) -> str:
    """The run directory of a corpus named ``name`` when none is given."""
    return os.path.join(ROOT, name)


def step_path(directory: str, step: int) -> str:
    return os.path.join(directory, f"step-{step:08d}.npz")


def prune_steps(directory: str, keep: int) -> None:
    """Delete all but the ``keep`` most recently written step-numbered checkpoints. The
    order is by write time, then step, so that after resuming from an older checkpoint
    the new branch's files are the ones kept."""
    found = []
    for name in os.listdir(directory):
        m = STEP_FILE.fullmatch(name)
        if m:
            path = os.path.join(directory, name)
            try:
                found.append((os.stat(path).st_mtime_ns, int(m.group(1)), path))
            except FileNotFoundError:
                continue
    for _, _, path in sorted(found)[:-keep]:
        try:
            os.unlink(path)
        except OSError:
            pass  # a file we cannot delete costs disk space, not progress: go on training


def sweep_stale_temps(directory: str) -> list[str]:
    """Delete the temporary files a killed run left in ``directory`` (a save or a
    writability probe cut short by SIGKILL or a power cut) and return their names.
    Only for a caller that holds the directory's lock: then no other run can be
    writing them."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in sorted(names):
        if name.startswith(TEMP_PREFIXES) and name.endswith(TEMP_SUFFIX):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def check_writable(directory: str) -> None:
    """Create ``directory`` if needed and prove a file can be written there, before any
    training time is spent."""
    existed = os.path.isdir(directory)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIXES[1], suffix=TEMP_SUFFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise directory_error(directory, exc, existed) from None


def directory_error(directory: str, exc: OSError, existed: bool) -> CheckpointError:
    """The one message for a checkpoint directory that cannot be made or written."""
    reason = (exc.strerror or str(exc)).lower()
    what = f"checkpoint directory {directory} is not writable" if existed else f"cannot create {directory}"
    return CheckpointError(f"{what} ({reason}); choose another with --checkpoint-dir")


def resolve(path: str) -> str:
    """A checkpoint file, or a run directory, in which case its best.npz (else
    latest.npz)."""
    if os.path.isdir(path):
        for name in (BEST, LATEST):
            candidate = os.path.join(path, name)
            if os.path.isfile(candidate):
                return candidate
        raise CheckpointError(f"no checkpoint in {path}; run `charrnn train FILE` first")
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}; run `charrnn train FILE` first")
    return path


def latest_run(root: str = ROOT) -> str:
    """The run directory under ``root`` whose checkpoint was written most recently."""
    found = glob.glob(os.path.join(root, "*", "*.npz"))
    if not found:
        raise CheckpointError(
            f"no checkpoint found under {root}/; run `charrnn train FILE` first, or pass --checkpoint PATH"
        )
    return os.path.dirname(max(found, key=os.path.getmtime))


def metrics_path(run: str) -> str:
    """metrics.jsonl of a run directory, or ``run`` itself when it names the file."""
    return os.path.join(run, METRICS) if os.path.isdir(run) else run
