"""One run on several processes: MPI's ranks as a single data-parallel trainer.

`mpirun -n N charrnn train FILE` (or `srun` under Slurm) starts N processes. Each owns a
contiguous slice of the batch's B streams (``World.streams``), computes its share of the
batch's mean loss and gradient, and the ranks sum those shares in one Allreduce before
every rank takes the same optimizer step. Every rank holds the same weights and the same
generator, and draws the same random numbers for all B streams (dropout masks are keyed
per stream, dropout.StreamMasks), so the ranks stay identical without sending weights,
and each stream sees the same draws whatever N is. Rank 0 alone prints, writes
checkpoints and metrics and holds the run directory's lock.

A process started without an MPI launcher is a world of one (``World``), which
communicates nothing: nothing imports mpi4py until the environment says that a launcher
started several processes.

The order of the sum: MPI's Allreduce sums in an order fixed by the library for a given
N and message size, so a run on N ranks repeats bit for bit; runs on different N sum in
different orders and agree to float32 rounding (tests/test_distributed.py).

Failing together: a rank that meets an error where the others wait for it in a
collective call would hang them. The setup steps run inside ``World.together()``, which
tells every rank whether any rank failed, so all stop with rank 0 printing the one
message; an error on one rank alone during training (a full disk under rank 0's
checkpoint) aborts the MPI job (``World.abort``), which the launcher turns into every
rank's exit.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import numpy as np

from charrnn import process
from charrnn.errors import CharRNNError, UsageError

MPI_EXTRA = "pip install 'charrnn[mpi]'"
# set by the launchers for every process: Open MPI's mpirun, MPICH's Hydra (and Intel MPI), Slurm's srun
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS")
LEAVING_SECONDS = 10.0  # how long a failing rank waits for the others to fail too before aborting them


class RankFailed(CharRNNError):
    """Raised on every rank when some rank failed in a step they take together: the
    message and exit code are the failing rank's (the lowest, if several failed)."""

    def __init__(self, message: str, exit_code: int, rank: int):
        super().__init__(message)
        self.exit_code, self.rank = exit_code, rank


def launcher(environ=None) -> tuple[str | None, int]:
    """(the variable that says it, how many processes) of the launcher that started this
    one; (None, 1) without one."""
    environ = os.environ if environ is None else environ
    for name in SIZE_VARIABLES:
        value = environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return name, int(value)
    return None, 1


def split(n: int, parts: int, index: int) -> tuple[int, int]:
    """(start, stop) of part ``index`` of range(n) cut into ``parts`` contiguous parts,
    as even as they come (the larger ones last)."""
    edges = np.linspace(0, n, parts + 1).round().astype(int)
    return int(edges[index]), int(edges[index + 1])


@dataclass
class World:
    """The processes of one run. A world of one process communicates nothing: each
    collective call returns its argument as the sum, maximum or gathering of one."""

    rank: int = 0
    size: int = 1

    @property
    def root(self) -> bool:
        """Rank 0: the one that prints, saves and locks."""
        return self.rank == 0

    def streams(self, batch_size: int) -> tuple[int, int]:
        """The (start, stop) of this rank's streams among the batch's ``batch_size``."""
        return split(batch_size, self.size, self.rank)

    # the collective calls: every rank makes the same ones in the same order

    def sum_(self, flat: np.ndarray) -> np.ndarray:
        """Sum a contiguous 1-d array over the ranks, in place; returns it."""
        return flat

    def max_(self, flat: np.ndarray) -> np.ndarray:
        """The elementwise maximum over the ranks, in place; returns it."""
        return flat

    def gather(self, obj) -> list | None:
        """Every rank's ``obj`` on rank 0, in rank order (None on the others)."""
        return [obj]

    def allgather(self, obj) -> list:
        """Every rank's ``obj`` on every rank, in rank order."""
        return [obj]

    def bcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        return obj

    def cores_here(self) -> int | None:
        """The cores this rank may use (None: all that its affinity mask allows): those
        of its mask, shared with the ranks on the same machine whose masks are the same
        (an unbound mpirun gives every local rank all the cores; Slurm binds each task
        to its own). For process.tune_for_training."""
        return None

    def abort(self, code: int) -> None:
        """End every rank's process now (an error met by one rank alone)."""

    def leaving_together(self, seconds: float = LEAVING_SECONDS) -> bool:
        """Called by a rank that is about to exit on an error: whether every rank is
        (they all met the same error, at the same step). False after ``seconds``: the
        others are waiting for this rank in a collective call, and only ``abort`` ends
        them."""
        return True

    @contextlib.contextmanager
    def together(self):
        """Run the block on every rank, then raise on every rank if it failed on any:
        the rank's own error where it failed, RankFailed elsewhere."""
        failure = None
        try:
            yield
        except CharRNNError as exc:
            failure = exc
        outcomes = self.allgather(None if failure is None else (str(failure), failure.exit_code))
        if failure is not None:
            raise failure
        for rank, outcome in enumerate(outcomes):
            if outcome is not None:
                message, code = outcome
                raise RankFailed(f"rank {rank}: {message}", code, rank)

    def agree(self, values, what: str, fix: str) -> None:
        """Stop every rank, with one message, unless all ranks hold the same ``values``
        (the text's SHA-256 and length, say): ``what`` names them, ``fix`` says how to
        make them the same."""
        everyone = self.allgather(values)
        differ = [rank for rank, v in enumerate(everyone) if v != everyone[0]]
        if differ:
            ranks = ", ".join(map(str, differ))
            have = "has" if len(differ) == 1 else "have"
            raise UsageError(
                f"rank{'s' if len(differ) > 1 else ''} {ranks} of {self.size} {have} a different {what} "
                f"from rank 0; {fix}"
            )

    def sum_arrays(self, arrays: list[np.ndarray]) -> None:
        """Sum each array (all of one dtype) over the ranks, in place, in one message."""
        if self.size == 1 or not arrays:
            return
        flat = np.concatenate([a.reshape(-1) for a in arrays])
        self.sum_(flat)
        at = 0
        for a in arrays:
            a.reshape(-1)[:] = flat[at : at + a.size]
            at += a.size


class MPIWorld(World):
    """MPI's COMM_WORLD through mpi4py."""

    def __init__(self, comm, MPI):
        super().__init__(rank=comm.Get_rank(), size=comm.Get_size())
        self.comm, self.MPI = comm, MPI
        self.exits = comm.Dup()  # leaving_together's own: it must not match a collective call of the run's

    def sum_(self, flat: np.ndarray) -> np.ndarray:
        self.comm.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)
        return flat

    def max_(self, flat: np.ndarray) -> np.ndarray:
        self.comm.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.MAX)
        return flat

    def gather(self, obj):
        return self.comm.gather(obj, root=0)

    def allgather(self, obj):
        return self.comm.allgather(obj)

    def bcast(self, obj):
        return self.comm.bcast(obj, root=0)

    def cores_here(self) -> int:
        mine = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        try:
            masks = node.allgather(mine)
        finally:
            node.Free()
        return max(1, process.cores() // masks.count(mine))

    def abort(self, code: int) -> None:
        self.comm.Abort(code)

    def leaving_together(self, seconds: float = LEAVING_SECONDS) -> bool:
        request = self.exits.Ibarrier()
        deadline = time.monotonic() + seconds
        while not request.Test():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


_world: World | None = None


def current() -> World | None:
    """The world if ``world()`` made one in this process, else None (nothing is made)."""
    return _world


def world() -> World:
    """This process's world: MPI's when a launcher started several processes, else one."""
    global _world
    if _world is None:
        variable, size = launcher()
        if size == 1:
            _world = World()
        else:
            try:
                from mpi4py import MPI
            except ImportError:
                raise UsageError(
                    f"started as one of {size} processes (by mpirun or srun), but mpi4py cannot be imported; "
                    f"install it with {MPI_EXTRA}"
                ) from None
            seen, library = MPI.COMM_WORLD.Get_size(), MPI.Get_library_version().split()[0]
            if seen != size:  # each process alone: it would train a model of its own
                raise UsageError(
                    f"started as one of {size} processes ({variable}={size}), but MPI sees "
                    f"{seen}: the MPI library mpi4py uses ({library}) "
                    f"cannot reach this launcher's processes; start charrnn with that library's mpiexec, or build "
                    f"mpi4py against the MPI the launcher serves (under srun: srun --mpi=pmix or pmi2)"
                )
            _world = MPIWorld(MPI.COMM_WORLD, MPI)
    return _world
