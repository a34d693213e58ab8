"""Ancestral sampling: feed the seed text, then draw one character at a time.

K streams are sampled together in one batched pass (``num_samples``), each with its
own draws from the same ``np.random.Generator``, so the same checkpoint, seed text,
options and ``--rng-seed`` always give the same text.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from charrnn import model as M
from charrnn.config import ModelConfig
from charrnn.data import Vocab, format_chars
from charrnn.errors import UsageError
from charrnn.stepper import Stepper


def default_seed(vocab: Vocab) -> str:
    """What an empty --seed means: a newline (the start of a line) when the model knows
    one, else the first character of the vocabulary."""
    return "\n" if "\n" in vocab.chars else vocab.chars[0]


def check_seed(seed: str, vocab: Vocab) -> None:
    unknown = vocab.unknown(seed)
    if unknown:
        raise UsageError(f"the seed contains characters the model never saw: {format_chars(unknown)}")


def _pick(logits: np.ndarray, temperature: float, top_k: int, greedy: bool,
          rng: np.random.Generator) -> np.ndarray:
    """One id per row of logits (K,V)."""
    if greedy:
        return logits.argmax(axis=1)
    z = logits.astype(np.float64) / temperature  # float64: no overflow for tiny temperatures
    if 0 < top_k < z.shape[1]:
        kth = np.partition(z, -top_k, axis=1)[:, -top_k][:, None]
        z = np.where(z < kth, -np.inf, z)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(z)) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(axis=1), z.shape[1] - 1)


def generate(params, cfg: ModelConfig, vocab: Vocab, seed: str, n: int, *,
             temperature: float = 1.0, top_k: int = 0, greedy: bool = False,
             rng: np.random.Generator, num_samples: int = 1,
             stop: str | None = None) -> Iterator[list[str]]:
    """Return an iterator that yields, step by step, the next character of each of
    ``num_samples`` streams ("" for a stream that has already produced ``stop``), for at
    most ``n`` steps. Bad arguments raise here, before anything is generated."""
    if temperature <= 0:
        raise UsageError(f"temperature must be positive, got {temperature}")
    seed = seed or default_seed(vocab)
    check_seed(seed, vocab)
    return _generate(params, cfg, vocab, seed, n, temperature, top_k, greedy, rng, num_samples, stop)


def _generate(params, cfg, vocab, seed, n, temperature, top_k, greedy, rng, K, stop):
    if n == 0:
        return
    ids = np.tile(vocab.encode(seed).astype(np.int64), (K, 1))  # (K, len(seed))
    state = M.init_state(cfg, K, params["Why"].dtype)
    logits, state, _ = M.forward(params, cfg, ids, state)  # the whole seed in one pass
    last = logits[-1]  # (K,V)
    stepper = Stepper(params, cfg, state)
    tails = [""] * K  # the end of each stream, long enough to match `stop`
    alive = np.ones(K, dtype=bool)
    for _ in range(n):
        nxt = _pick(last, temperature, top_k, greedy, rng)
        out = []
        for k in range(K):
            if not alive[k]:
                out.append("")
                continue
            ch = vocab.chars[nxt[k]]
            out.append(ch)
            if stop:
                tails[k] = (tails[k] + ch)[-len(stop):]
                if tails[k] == stop:
                    alive[k] = False
        yield out
        if not alive.any():
            return
        last = stepper.step(nxt)
