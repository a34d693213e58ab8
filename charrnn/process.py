"""This process on this machine: the memory it may use, and the process-wide settings
a training run makes, in one place and visibly (``tune_for_training``), never as a
side effect of building an object.

Memory. ``available`` is what the machine can give now; ``check_fits`` refuses a model
whose weights or training step would not fit, before anything is allocated.

Keeping freed memory (``keep_freed_memory``). A step allocates and frees tens of
megabytes of (T,G,B) arrays. glibc's malloc serves blocks above its mmap threshold
(128 KB at first, raised adaptively) with fresh mmap'd pages and trims freed memory at
the top of the heap, so with its defaults every step faults the same pages in again, a
large share of the step's time in the kernel. Fixing both thresholds makes freed blocks
reusable. The trim threshold is the largest glibc takes, not its 128 MB ceiling for the
automatic one: a step that frees more than that at once (an LSTM 2x448 on War and
Peace) would still give the heap's top back, and fault it in again, every step. Since
nothing goes back to the system, the peak resident size is the sum of each malloc
arena's own peak. glibc gives each thread an arena of its own, so the two shard threads
and the main thread (validation) would each keep theirs; one arena for the whole process
lets each reuse what the others freed. The shards allocate a few dozen large blocks a
step, so sharing the arena's lock is cheap. The page faults and peaks, with and without
each setting, are in benchmarks/RESULTS.md (Design alternatives, measured);
tests/test_memory.py counts the faults. Only glibc has ``mallopt``; elsewhere, or when
the user tunes malloc through the environment, this does nothing.

BLAS threads (``blas_threads``). The thread shards (parallel.py) each want a
single-threaded BLAS: two shards driving a two-threaded BLAS each would only fight over
the cores. NumPy does not expose OpenBLAS's thread count, so it is set through the
library NumPy loaded, found in this process's memory map (ctypes); where it cannot be
found, the shards run one after the other.

Cores (``cores``). What the affinity mask allows, unless the training run said how many
of them are this process's: several MPI ranks on one machine share its cores
(distributed.World.cores_here), and a rank given one core runs its shards one after the
other with a one-threaded BLAS.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import threading

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 * 2**20  # glibc's ceiling for this setting on 64-bit systems
TRIM_THRESHOLD = 2**31 - 1  # the largest mallopt takes: never give the heap top back while training
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES")

_done = False


def available() -> int | None:
    """Bytes of memory the machine can give this process now (Linux's MemAvailable;
    elsewhere the physical memory), or None if it cannot be told."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: float) -> str:
    """Bytes as the messages show them: '298 GiB', '1.5 GiB', '0.2 GiB'."""
    g = n / 2**30
    return f"{g:,.0f} GiB" if g >= 10 else f"{g:.1f} GiB"


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds and use one arena for this process,
    once. Returns whether the settings took effect."""
    global _done
    if _done:
        return True
    if any(name in os.environ for name in _ENV):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library already loaded in this process
    except (OSError, AttributeError, TypeError):  # TypeError: Windows has no CDLL(None)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = all(
        mallopt(option, value) == 1
        for option, value in ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    )
    return _done


# ------------------------------------------------------------------ BLAS threads


class _Blas:
    """OpenBLAS's thread-count functions, from the library NumPy loaded (None: not found)."""

    NAMES = (
        "scipy_openblas_set_num_threads64_",
        "scipy_openblas_set_num_threads",
        "openblas_set_num_threads64_",
        "openblas_set_num_threads",
    )

    def __init__(self):
        self.set = self.get = None
        try:
            with open("/proc/self/maps") as f:
                paths = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", f.read())))
            for path in paths:
                lib = ctypes.CDLL(path)
                for name in self.NAMES:
                    if hasattr(lib, name):
                        self.set = getattr(lib, name)
                        self.set.argtypes = [ctypes.c_int64 if "64" in name else ctypes.c_int]
                        self.get = getattr(lib, name.replace("set_", "get_"))
                        self.get.restype = ctypes.c_int
                        return
        except (OSError, AttributeError):
            self.set = self.get = None


_blas: _Blas | None = None
_blas_lock = threading.Lock()


def blas_control() -> _Blas:
    """The BLAS thread control, found once."""
    global _blas
    import numpy  # noqa: F401 - loads the BLAS library whose thread count is set

    with _blas_lock:
        if _blas is None:
            _blas = _Blas()
        return _blas


@contextlib.contextmanager
def blas_threads(n: int):
    """Run the block with OpenBLAS limited to n threads (no-op when it cannot be set)."""
    blas = blas_control()
    if blas.set is None:
        yield
        return
    before = blas.get()
    blas.set(n)
    try:
        yield
    finally:
        blas.set(before)


_cores: int | None = None  # set by tune_for_training(cores=...)


def cores() -> int:
    """The cores this process may run on."""
    if _cores is not None:
        return _cores
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# ------------------------------------------------------------------ the settings


def tune_for_training(cores: int | None = None) -> None:
    """The process-wide settings of a training run, made once, at its start (and by the
    benchmarks that time training): keep freed memory, find the BLAS thread control;
    with ``cores``, use that many cores (BLAS threads included) and no more."""
    global _cores
    keep_freed_memory()
    blas = blas_control()
    if cores is not None:
        _cores = cores
        if blas.set is not None:
            blas.set(cores)


def check_fits(model_cfg, train_cfg, free: int | None = None) -> None:
    """Refuse, before anything is allocated, a model whose weights or whose training step
    would not fit in the memory this machine has free (``available``)."""
    from charrnn import model, optim
    from charrnn.errors import UsageError

    free = available() if free is None else free
    if free is None:
        return
    m, t = model_cfg, train_cfg
    slots = len(optim.SLOTS[t.optimizer])
    weights, step = model.memory_estimate(m, t.batch_size, t.seq_len, True, slots)
    options = f"--hidden-size {m.hidden_size} --layers {m.n_layers}"
    if weights > free:
        raise UsageError(
            f"{options} needs about {gib(weights)} for the weights alone; this machine has {gib(free)} free"
        )
    if step > free:
        raise UsageError(
            f"{options} with --batch-size {t.batch_size} and --seq-len {t.seq_len} needs about "
            f"{gib(step)} for one training step (weights, gradients, optimizer state and "
            f"activations); this machine has {gib(free)} free; use a smaller model or "
            f"lower --batch-size or --seq-len"
        )
