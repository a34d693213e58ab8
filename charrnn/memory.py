"""Process memory: how much the machine has free, and keeping the training step's large
temporaries in the process instead of returning them to the system after every step.

Why: a step allocates and frees tens of megabytes of (T,G,B) arrays. glibc's malloc
serves blocks above its mmap threshold (128 KB at first, raised adaptively) with fresh
mmap'd pages and trims freed memory at the top of the heap, so with its defaults every
step faults the same pages in again, a large share of the step's time in the kernel.
Fixing both thresholds makes freed blocks reusable. The trim threshold is the largest
glibc takes, not its 128 MB ceiling for the automatic one: a step that frees more than
that at once (an LSTM 2x448 on War and Peace) would still give the heap's top back, and
fault it in again, every step.

Since nothing goes back to the system, the peak resident size is the sum of each malloc
arena's own peak. glibc gives each thread an arena of its own, so the two shard threads
and the main thread (validation) would each keep theirs; one arena for the whole process
lets each reuse what the others freed. The shards allocate a few dozen large blocks a
step, so sharing the arena's lock is cheap. The page faults and peaks, with and without
each setting, are in benchmarks/RESULTS.md (Design alternatives, measured); tests/
test_memory.py counts the faults.

Only glibc has ``mallopt``; elsewhere, or when the user tunes malloc through the
environment, this does nothing.
"""

from __future__ import annotations

import ctypes
import os

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
