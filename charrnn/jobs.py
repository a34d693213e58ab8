"""Several corpora in one `charrnn train`: which run trains on what, and where it writes.

Each corpus gets its own run directory, named after the file, so runs never share
checkpoints or metrics. With --concat the files are joined into one text (written into
the run directory, so the checkpoint records a corpus that still exists for resume,
eval and info) and a single model trains on it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from charrnn import data
from charrnn.errors import DataError, UsageError

JOINED = "corpus.txt"  # the joined text of a --concat run, inside its run directory
MAX_NAME = 60


@dataclass(frozen=True)
class Job:
    label: str              # how logs and the summary name the run
    path: str               # the text to train on (for --concat: the joined file)
    directory: str          # the run's checkpoint directory
    sources: tuple = ()     # with --concat: the files joined into ``path``


def corpus_name(path: str) -> str:
    base = os.path.basename(os.path.normpath(path))
    return os.path.splitext(base)[0] or "corpus"


def plan(files, checkpoint_dir: str | None, concat: bool = False) -> list[Job]:
    """One job per file (or one for all with ``concat``). With several files,
    ``checkpoint_dir`` is the parent of the per-corpus directories."""
    if concat:
        names = "+".join(corpus_name(f) for f in files)
        name = names if len(names) <= MAX_NAME else f"{corpus_name(files[0])}+{len(files) - 1}-more"
        directory = checkpoint_dir or os.path.join("checkpoints", name)
        return [Job(name, os.path.join(directory, JOINED), directory, tuple(files))]
    if len(files) == 1:
        return [Job(files[0], files[0], checkpoint_dir or os.path.join("checkpoints", corpus_name(files[0])))]
    jobs, seen = [], {}
    for path in files:
        directory = os.path.join(checkpoint_dir or "checkpoints", corpus_name(path))
        if directory in seen:
            raise UsageError(f"{seen[directory]} and {path} would both train into {directory}; "
                             f"rename one, or train them in separate commands with --checkpoint-dir")
        seen[directory] = path
        jobs.append(Job(path, path, directory))
    return jobs


def join_files(files, encoding: str, dest: str) -> None:
    """Write the texts of ``files`` one after the other to ``dest`` as UTF-8, with a
    newline between two files where the first does not end with one (so the last line
    of one and the first of the next do not fuse). Atomic: temp file, then os.replace."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(dest)), prefix=".join-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            last = "\n"
            for path in files:
                if last != "\n":
                    out.write("\n")
                for piece in data.iter_text(path, encoding):
                    out.write(piece)
                    last = piece[-1]
        os.replace(tmp, dest)
        tmp = None
    except OSError as exc:
        raise DataError(f"cannot write the joined corpus {dest}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            os.unlink(tmp)
