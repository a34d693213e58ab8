"""Keep the training step's large temporaries in the process instead of returning
them to the operating system after every step.

Why: a step allocates and frees tens of megabytes of (T,G,B) arrays. glibc's malloc
serves blocks above its mmap threshold (128 KB at first, raised adaptively) with
fresh mmap'd pages and trims freed memory at the top of the heap, so every step
faulted the same pages in again: for an LSTM 2x256 at batch 64, about 10,400 page
faults and 30 ms of kernel time a step, a third of the step. Fixing both thresholds
makes freed blocks reusable; the peak resident size hardly changes (130 -> 137 MB in
that benchmark), because it is set by the largest step, not by the number of steps.

Only glibc has ``mallopt``; elsewhere, or when the user tunes malloc through the
environment, this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's ceiling for this setting on 64-bit systems
TRIM_THRESHOLD = 128 * 2**20
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")

_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process, once. Returns whether
    the setting took effect."""
    global _done
    if _done:
        return True
    if any(name in os.environ for name in _ENV):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
