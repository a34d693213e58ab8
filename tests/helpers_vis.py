"""A model built by hand whose units track known properties, for the vis and browser
tests: a one-layer tanh RNN with three units.

- unit 0 follows upper case: its input weight is +3 for capitals and -3 for every
  other character, and it has no recurrence, so it is tanh(±3) = ±0.995;
- unit 1 remembers whether a bracket is open: "(" drives it to +1, ")" to -1, and a
  self-weight of 3 holds it there in between;
- unit 2 is noise (random input weights).

The output layer is random: the page needs predictions, not good ones.
"""

from __future__ import annotations

import json
import re

import numpy as np
from helpers import make_text

from charrnn import checkpoint, model, optim
from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import Vocab

UPPER_UNIT, BRACKET_UNIT = 0, 1


def marked_text(n_chars: int = 3000, seed: int = 0) -> str:
    """make_text with every third sentence in parentheses and every fourth in quotes."""
    parts = make_text(n_chars, seed).split(". ")
    out = []
    for i, p in enumerate(parts):
        if i % 3 == 1:
            p = f"({p})"
        elif i % 4 == 2:
            p = f'"{p}"'
        out.append(p)
    return ". ".join(out)


def constructed_checkpoint(text: str) -> checkpoint.Checkpoint:
    vocab = Vocab("".join(sorted(set(text))))
    V, H = vocab.size, 3
    cfg = ModelConfig(cell="rnn", vocab_size=V, hidden_size=H, n_layers=1, dropout=0.0)
    rng = np.random.default_rng(7)
    Wx = np.zeros((V, H), dtype=np.float32)
    for i, ch in enumerate(vocab.chars):
        Wx[i, UPPER_UNIT] = 3.0 if ch.isupper() else -3.0
        Wx[i, BRACKET_UNIT] = 6.0 if ch == "(" else -6.0 if ch == ")" else 0.0
    Wx[:, 2] = rng.normal(0, 0.5, V)
    Wh = np.zeros((H, H), dtype=np.float32)
    Wh[BRACKET_UNIT, BRACKET_UNIT] = 3.0
    params = {
        "l0.Wx": Wx,
        "l0.Wh": Wh,
        "l0.b": np.zeros(H, dtype=np.float32),
        "Why": rng.normal(0, 1.0, (H, V)).astype(np.float32),
        "by": np.zeros(V, dtype=np.float32),
    }
    assert set(params) == set(model.param_shapes(cfg))
    train = TrainConfig()
    opt = {k: np.zeros(s, np.float32) for k, s in optim.state_shapes(train.optimizer, model.param_shapes(cfg)).items()}
    return checkpoint.Checkpoint(cfg, train, vocab, params, opt_state=opt, corpus={"name": "constructed"})


def save_constructed(directory, text: str) -> str:
    """The constructed model saved as ``directory``/best.npz; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint.save(constructed_checkpoint(text), str(directory / "best.npz"))
    return str(directory)


def embedded(document: str) -> dict:
    """The data a vis page is drawn from."""
    found = re.search(r'<script type="application/json" id="charrnn-data">(.*?)</script>', document, re.S)
    return json.loads(found.group(1))
