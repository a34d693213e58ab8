"""What the network computes at each character of a text: every layer's states after
reading it, and the model's distribution over the character that comes next.

The states come from the model's own forward pass (``model._forward`` with
``train=True``), never from a second implementation of the cells: the public
``model.forward`` keeps no per-step states, and the training pass's cache holds them.
For every cell, the first ``len(spec.state)`` entries of a layer's cache are the state
sequences, (T+1,H,B) with entry 0 the state carried in: (hs,) for the RNN and GRU,
(hs, cs, gates) for the LSTM. ``tests/test_vis.py`` checks that contract against the
final state and the logits ``model.forward`` returns, so a change to the cells'
caches fails there rather than drawing wrong pictures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charrnn import model
from charrnn.config import ModelConfig

CHUNK = 1024  # characters per forward call: caches of a long text stay a few MB


@dataclass(frozen=True)
class Series:
    """One state of one layer at every character: ``values[i]`` (H,) after reading
    character i. The LSTM's cell state is kept as tanh(c), in (-1, 1) like h: it is
    what the output gate sees, and it colours on the same scale."""

    name: str  # "l0.h", "l1.c": the checkpoint's hidden-state names (model.hidden_names)
    layer: int
    state: str  # "h" or "c"
    values: np.ndarray  # (N,H) float32

    @property
    def label(self) -> str:
        return f"l{self.layer}." + ("tanh(c)" if self.state == "c" else self.state)


@dataclass(frozen=True)
class Trace:
    series: list[Series]
    logits: np.ndarray  # (N,V) float32: after reading character i, the scores for character i+1

    def next_char_probs(self) -> np.ndarray:
        """(N,V) float64 softmax of the logits: row i predicts character i+1."""
        z = self.logits.astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return p


def record(params: dict, cfg: ModelConfig, ids: np.ndarray, chunk: int = CHUNK, engine=None) -> Trace:
    """Run one stream through ``ids`` (N,) from the zero state (as sampling starts) and
    keep every layer's states and the logits at every character, without dropout."""
    N = len(ids)
    dtype = params["Why"].dtype
    names = cfg.spec.state
    values = {(k, s): np.empty((N, cfg.hidden_size), dtype=np.float32) for k in range(cfg.n_layers) for s in names}
    logits = np.empty((N, cfg.vocab_size), dtype=np.float32)
    state = model.init_hidden(cfg, 1, dtype)
    for start in range(0, N, chunk):
        x = np.asarray(ids[start : start + chunk], dtype=np.int64)[None, :]
        T = x.shape[1]
        out, state, (_, _, caches) = model._forward(params, cfg, x, state, 0.0, None, True, engine=engine)
        logits[start : start + T] = out[:, :, 0]  # (T,V,1)
        for k, (cache, _mask, _D) in enumerate(caches):
            for j, s in enumerate(names):
                seq = cache[j]
                assert seq.shape == (T + 1, cfg.hidden_size, 1), (s, seq.shape)  # the contract above
                v = seq[1:, :, 0]
                values[k, s][start : start + T] = np.tanh(v) if s == "c" else v
    series = [Series(f"l{k}.{s}", k, s, values[k, s]) for k in range(cfg.n_layers) for s in names]
    return Trace(series, logits)
