"""Dropout masks drawn stream by stream, so that no split of the batch changes them.

A training step's streams are split into shards (threads, parallel.py) and may be split
across processes; each piece draws only its own streams' masks. Stream s of a step draws
from its own generator, ``np.random.default_rng([key, s])``, where ``key`` is one number
the step takes from the run's generator: stream s sees the same masks whether the batch
is one piece or many, and however the pieces are cut, and a resumed run (whose generator
state is in the checkpoint) draws what the uninterrupted run would have. Each stream's
generator gives layer 0's (T,H) uniforms, then layer 1's, and so on.
"""

from __future__ import annotations

import numpy as np


class StreamMasks:
    """The dropout masks of streams first, first+1, ... of the step keyed ``key``."""

    def __init__(self, key: int, first: int = 0):
        self.key, self.first = int(key), int(first)
        self._rngs: list[np.random.Generator] = []

    @classmethod
    def from_rng(cls, rng: np.random.Generator, first: int = 0) -> "StreamMasks":
        """Masks keyed by one draw from the run's generator ``rng``."""
        return cls(int(rng.integers(0, 2**63)), first)

    def keep(self, shape: tuple[int, int, int], p: float) -> np.ndarray:
        """The next layer's mask, (T,H,B) bool: True keeps a unit (probability 1 - p).
        Stream b of these masks is stream ``first + b`` of the step."""
        T, H, B = shape
        while len(self._rngs) < B:
            self._rngs.append(np.random.default_rng([self.key, self.first + len(self._rngs)]))
        mask = np.empty((T, H, B), dtype=bool)
        for b in range(B):
            mask[:, :, b] = self._rngs[b].random((T, H), dtype=np.float32) >= p
        return mask
