"""What an engine is: the functions that do a cell's per-step work, one set per cell.

An engine owns the part of the network that runs step by step (each cell's forward
and backward recurrence, and the generation step); everything that runs over all
steps at once (the input products, the weight gradients, the output layer, the
softmax) is model.py's and the same for every engine. An engine is one module that
builds one ``Engine``; engines/__init__.py chooses among them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class CellOps:
    """One cell's step-by-step work, in the layouts of engines/numpy_engine.py."""

    forward: Callable  # (Zx (T,G,B), Wh, extra, state, train) -> (hs (T+1,H,B), cache, final state)
    backward: Callable  # (dH (T,H,B), cache, Wh) -> (dZx, dR, {extra name: gradient})
    step: Callable  # generation, in place: (a (G,K), hW (G,K), extra, state, tmp)


@dataclass(frozen=True)
class Engine:
    name: str
    cells: dict[str, CellOps]
    # (cells) -> seconds: compile (or load) what running these cells needs; None: nothing to do
    warm_up: Callable | None = field(default=None)
    # (tableT (G,V), ids (T,B)) -> Zx (T,G,B): the first layer's lookup; None: model.py's one-hot product
    embed: Callable | None = field(default=None)
    # one parameter's Adam update in one pass (optim.update's adam_kernel); None: NumPy's
    adam: Callable | None = field(default=None)
    # (Stepper) -> an object whose draw(x, noise, top_k, top_p, greedy) reads character x and
    # returns the next: one stream's whole step in one call; None: the Stepper and sampling's picker
    stream: Callable | None = field(default=None)
