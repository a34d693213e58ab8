"""Continuing a run: which checkpoint --resume means, and whether the options agree with it.

A resumed run is the run it came from: its model and training configuration come
from the checkpoint. The options given explicitly on the command line must agree with
it, except the resumable ones (config.setting(resumable=True): when to stop and how
often to report); a contradiction names the flag. The vocabulary of the text must be
the checkpoint's exactly.
"""

from __future__ import annotations

import os
import shlex

from charrnn import checkpoint, data, rundir
from charrnn.config import TrainConfig, flag, resumable
from charrnn.errors import CheckpointError, ConfigError, DataError, UsageError


def source(path: str) -> str:
    """The checkpoint that --resume continues: a file, or a run directory's latest.npz."""
    if os.path.isdir(path):
        latest = os.path.join(path, rundir.LATEST)
        if os.path.isfile(latest):
            return latest
        best = os.path.join(path, rundir.BEST)
        raise CheckpointError(
            f"nothing to resume: {path} holds no {rundir.LATEST}; drop --resume to start "
            f"a new run" + (f", or resume from {best}" if os.path.isfile(best) else "")
        )
    if not os.path.exists(path):
        raise CheckpointError(f"nothing to resume: no checkpoint at {path}; drop --resume to start a new run")
    return path


def hint(corpus_path: str | None, directory: str, keep_last: int = 0, ranks: int = 1) -> str:
    """The command that continues the run in ``directory``, quoted for a POSIX shell
    (under mpiexec for a run of several ``ranks``; any number of ranks can resume it)."""
    cmd = ["mpiexec", "-n", str(ranks)] if ranks > 1 else []
    cmd += ["charrnn", "train", corpus_path or "FILE", "--resume", "--checkpoint-dir", directory]
    if keep_last:
        cmd += ["--keep-last", str(keep_last)]
    return " ".join(shlex.quote(str(part)) for part in cmd)


def load(source: str) -> checkpoint.Checkpoint:
    """The checkpoint ``source``; when it cannot be loaded, the error names the newest
    intact checkpoint beside it (best.npz, or a --keep-last step file) and the command
    that continues from it."""
    try:
        return checkpoint.load(source)
    except CheckpointError as exc:
        other = intact_neighbour(source)
        if other is None:
            raise
        path, step = other
        raise CheckpointError(f"{exc}; {path} (step {step:,}) is intact: resume from it with --resume {path}") from None


def intact_neighbour(path: str) -> tuple[str, int] | None:
    """The checkpoint in ``path``'s directory, other than ``path``, that loads and has
    the most steps: (its path, its step), or None."""
    directory = os.path.dirname(path) or "."
    try:
        names = [n for n in os.listdir(directory) if n == rundir.BEST or rundir.STEP_FILE.fullmatch(n)]
    except OSError:
        return None
    found = []
    for name in names:
        candidate = os.path.join(directory, name)
        if os.path.abspath(candidate) == os.path.abspath(path):
            continue
        try:
            found.append((checkpoint.load(candidate).progress.get("step", 0), candidate))
        except CheckpointError:
            continue
    if not found:
        return None
    step, best = max(found)
    return best, step


def check_fresh(directory: str) -> None:
    """A new run writes latest.npz and best.npz: refuse to overwrite another run's, which
    may hold hours of training, unless asked to."""
    for name in (rundir.LATEST, rundir.BEST):
        if os.path.exists(os.path.join(directory, name)):
            raise UsageError(
                f"{directory} already holds a checkpoint ({name}); continue that run with "
                f"--resume, start over with --overwrite, or choose another --checkpoint-dir"
            )


def _contradiction(key: str, value, saved) -> ConfigError:
    return ConfigError(
        f"{flag(key)} {value} contradicts the checkpoint, which was trained with {flag(key)} "
        f"{saved}; drop {flag(key)} to continue that run, or start a new one in another "
        f"--checkpoint-dir"
    )


def check_vocab(ckpt: checkpoint.Checkpoint, vocab: data.Vocab) -> None:
    if vocab.chars != ckpt.vocab.chars:
        added = sorted(set(vocab.chars) - set(ckpt.vocab.chars))
        removed = sorted(set(ckpt.vocab.chars) - set(vocab.chars))
        detail = "; ".join(
            s
            for s in (
                added and f"new characters {data.format_chars(added, 12)}",
                removed and f"missing characters {data.format_chars(removed, 12)}",
            )
            if s
        )
        raise DataError(f"vocabulary mismatch: the text's vocabulary differs from the checkpoint's ({detail})")


def train_config(ckpt: checkpoint.Checkpoint, model_opts: dict, train_opts: dict) -> TrainConfig:
    """The train config a resumed run continues with: the checkpoint's, with the
    resumable options the user gave. Any other given option must equal the saved one."""
    saved_model = ckpt.model_cfg.to_dict()
    for key, value in model_opts.items():
        if saved_model[key] != value:
            raise _contradiction(key, value, saved_model[key])
    saved = ckpt.train_cfg.to_dict()
    for key, value in train_opts.items():
        if not resumable(key) and saved[key] != value:
            raise _contradiction(key, value, saved[key])
    saved.update({k: v for k, v in train_opts.items() if resumable(k)})
    return TrainConfig.from_dict(saved)
