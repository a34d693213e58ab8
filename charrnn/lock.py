"""One training run per checkpoint directory: an advisory lock file.

Two runs writing latest.npz, best.npz and metrics.jsonl in the same directory would
interleave their checkpoints and metrics, so a run holds ``<dir>/.lock`` while it
trains. The lock is ``fcntl.flock`` on the open file: the kernel drops it when the
process dies, so a crash never leaves a stale lock behind. The file itself stays
(deleting a flock'ed file lets two processes lock two different inodes); it only
carries the holder's pid for the message.
"""

from __future__ import annotations

import os

from charrnn import rundir
from charrnn.errors import CheckpointError

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows: runs are not locked)
    fcntl = None


class RunLock:
    """Context manager: hold the lock on ``directory`` (created if needed) or raise
    CheckpointError naming the pid that holds it. ``force`` trains anyway, with
    ``warn`` told why."""

    def __init__(self, directory: str, force: bool = False, warn=lambda message: None):
        self.directory = directory
        self.path = os.path.join(directory, rundir.LOCK)
        self.force = force
        self.warn = warn
        self._file = None
        self._created_dir = False
        self.exclusive = False  # True once this run alone holds the directory

    def __enter__(self) -> "RunLock":
        self._created_dir = not os.path.isdir(self.directory)
        try:
            os.makedirs(self.directory, exist_ok=True)
            self._file = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise rundir.directory_error(self.directory, exc, not self._created_dir) from None
        if fcntl is None:
            return self
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = self._holder()
            if not self.force:
                self._file.close()
                raise CheckpointError(
                    f"checkpoint directory {self.directory} is in use by another charrnn run "
                    f"(pid {holder}); use --force to train there anyway, or choose another "
                    f"--checkpoint-dir"
                ) from None
            self.warn(
                f"warning: {self.directory} is in use by another charrnn run (pid {holder}); "
                f"training there anyway (--force)"
            )
            return self
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()
        self.exclusive = True
        return self

    def _holder(self) -> str:
        self._file.seek(0)
        return self._file.read().strip() or "unknown"

    def __exit__(self, *exc) -> None:
        self._file.close()  # closing releases the flock
        # A run that failed before writing anything leaves no empty directory behind.
        if self._created_dir and os.listdir(self.directory) == [rundir.LOCK]:
            try:
                os.unlink(self.path)
                os.rmdir(self.directory)
            except OSError:
                pass
