"""Engines: interchangeable implementations of the cells' step-by-step work.

- ``numpy``: plain NumPy calls (engines/numpy_engine.py). The reference: every other
  engine is tested against it, and it runs wherever NumPy does.
- ``numba``: each step of each cell compiled into one pass (engines/numba_engine.py),
  with the optional extra ``pip install 'charrnn[fast]'``.

``auto`` takes numba when it imports and NumPy otherwise, and says so once on a
machine where numba is missing (a marker file in the user's cache directory). The CHARRNN_ENGINE
environment variable names the engine used where none is named (``--engine``'s
default, and the library's). Nothing here imports numba until an engine is asked for,
so ``import charrnn`` and ``charrnn --help`` stay quick.
"""

from __future__ import annotations

import os

from charrnn.engines.base import CellOps, Engine
from charrnn.errors import UsageError

ENGINES = ("numpy", "numba")  # what a checkpoint records as the engine that trained it
NAMES = ("auto", *ENGINES)
ENV = "CHARRNN_ENGINE"
FAST_EXTRA = "pip install 'charrnn[fast]'"

SLOW_WARM_UP = 1.0  # seconds of compiling worth a note (numba's first run; later runs load its cache)

__all__ = [
    "CellOps",
    "Engine",
    "NAMES",
    "ENGINES",
    "ENV",
    "get",
    "available",
    "default_name",
    "numba_missing",
    "warm_up",
]

_loaded: dict[str, Engine] = {}
_failed: dict[str, str] = {}  # why an engine could not be imported: Python does not remember a failed import


def default_name() -> str:
    """The engine asked for when none is named: $CHARRNN_ENGINE, else auto."""
    return os.environ.get(ENV, "").strip().lower() or "auto"


def numba_missing() -> str | None:
    """Why the numba engine cannot load here (None: it can)."""
    if "numba" not in _failed:
        try:
            _load("numba")
        except (ImportError, RuntimeError, OSError) as exc:  # not installed, or no cache it can write
            _failed["numba"] = str(exc) or type(exc).__name__
    return _failed.get("numba")


def available() -> tuple[str, ...]:
    """The engines that load here: numpy, and numba where it imports."""
    return ENGINES if numba_missing() is None else ("numpy",)


def _load(name: str) -> Engine:
    if name not in _loaded:
        if name == "numpy":
            from charrnn.engines import numpy_engine as module
        else:
            from charrnn.engines import numba_engine as module
        _loaded[name] = module.ENGINE
    return _loaded[name]


def get(name: str | None = None, note=None) -> Engine:
    """The engine called ``name`` (numpy, numba or auto; None: default_name()).

    ``auto`` falls back to NumPy when numba cannot be imported and then calls
    ``note`` (if given) with one line saying so, the first time on this machine.
    Naming numba where it is missing is a UsageError that says how to install it."""
    name = default_name() if name is None else name
    if name not in NAMES:
        raise UsageError(f"unknown engine {name!r}; choose one of {', '.join(NAMES)}")
    if name == "numpy":
        return _load("numpy")
    missing = numba_missing()
    if missing is None:
        return _load("numba")
    if name == "numba":
        raise UsageError(f"the numba engine needs numba, which cannot be imported here ({missing}); {FAST_EXTRA}")
    if note is not None and _first_fallback():
        note(
            f"note: using the NumPy engine: numba is not installed ({FAST_EXTRA} for the faster numba engine; "
            f"this note is shown once)"
        )
    return _load("numpy")


def cache_dir() -> str:
    """charrnn's directory in the user's cache ($XDG_CACHE_HOME/charrnn or ~/.cache/charrnn)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "charrnn")


FALLBACK_NOTED = "numpy-engine-noted"  # in cache_dir(): the fallback note was shown here once


def _first_fallback() -> bool:
    """Is this the first fallback to NumPy on this machine? Marks it as seen; where the
    marker cannot be written, every fallback is the first."""
    marker = os.path.join(cache_dir(), FALLBACK_NOTED)
    if os.path.exists(marker):
        return False
    try:
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "w", encoding="utf-8") as f:
            f.write("charrnn showed its note that numba is missing; delete this file to see it again\n")
    except OSError:
        pass
    return True


def warm_up(engine: Engine, cell: str, report=None) -> float:
    """Make ``engine`` ready to run ``cell`` now, so that compiling is neither inside a
    timed step nor a surprise: numba compiles its kernels on their first run (once per
    machine: later runs load them from its cache). ``report`` hears of it when it took
    SLOW_WARM_UP seconds or more. Returns the seconds it took."""
    if engine.warm_up is None:
        return 0.0
    seconds = engine.warm_up((cell,))
    if report is not None and seconds >= SLOW_WARM_UP:
        report(f"note: compiled the {engine.name} engine's {cell} kernels in {seconds:.1f}s; later runs reuse them")
    return seconds
