"""Ancestral sampling: feed the seed text, then draw one character at a time.

K streams are sampled together in one batched pass (``num_samples``), each with its
own draws from the same ``np.random.Generator``, so the same checkpoint, seed text,
options and ``--rng-seed`` always give the same text.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from charrnn import model
from charrnn.config import ModelConfig
from charrnn.data import Vocab, format_chars
from charrnn.errors import UsageError
from charrnn.stepper import Stepper


def default_seed(vocab: Vocab) -> str:
    """What an empty --seed means: a newline (the start of a line) when the model knows
    one, else the first character of the vocabulary."""
    return "\n" if "\n" in vocab.chars else vocab.chars[0]


def resolve_seed(seed: str, vocab: Vocab) -> str:
    """The seed text generation starts from: ``seed``, or the default for an empty one.
    Characters the model never saw are a usage error that names them."""
    seed = seed or default_seed(vocab)
    unknown = vocab.unknown(seed)
    if unknown:
        raise UsageError(f"the seed contains characters the model never saw: {format_chars(unknown)}")
    return seed


class _Picker:
    """Draws one id per row of logits (K,V) from softmax(logits), the temperature being
    already applied (the stepper scales its output weights by 1/temperature).

    Uses the Gumbel-max trick: argmax(z + Gumbel noise) is an exact draw from softmax(z),
    with no exp, no normalisation and no overflow for tiny temperatures. The noise is
    drawn from ``rng`` for BLOCK steps at a time: one call per block, not per step."""

    BLOCK = 256

    def __init__(self, rng: np.random.Generator, K: int, V: int, top_k: int, greedy: bool):
        self.rng, self.shape, self.top_k, self.greedy = rng, (self.BLOCK, K, V), top_k, greedy
        self.noise, self.i = None, self.BLOCK

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        if self.greedy:
            return logits.argmax(axis=1)
        if self.i == self.BLOCK:
            self.noise, self.i = self.rng.gumbel(size=self.shape), 0
        z = logits + self.noise[self.i]  # float64
        self.i += 1
        if 0 < self.top_k < z.shape[1]:
            kth = np.partition(logits, -self.top_k, axis=1)[:, -self.top_k][:, None]
            z[logits < kth] = -np.inf
        return z.argmax(axis=1)


def generate(
    params,
    cfg: ModelConfig,
    vocab: Vocab,
    seed: str,
    n: int,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    greedy: bool = False,
    rng: np.random.Generator,
    num_samples: int = 1,
    stop: str | None = None,
) -> Iterator[list[str]]:
    """Return an iterator that yields, step by step, the next character of each of
    ``num_samples`` streams ("" for a stream that has already produced ``stop``), for at
    most ``n`` steps. Bad arguments raise here, before anything is generated."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise UsageError(f"temperature must be a positive finite number, got {temperature}")
    seed = resolve_seed(seed, vocab)
    return _generate(params, cfg, vocab, seed, n, temperature, top_k, greedy, rng, num_samples, stop)


def _generate(params, cfg, vocab, seed, n, temperature, top_k, greedy, rng, K, stop):
    if n == 0:
        return
    ids = np.tile(vocab.encode(seed).astype(np.int64), (K, 1))  # (K, len(seed))
    state = model.init_hidden(cfg, K, params["Why"].dtype)
    logits, state, _ = model.forward(params, cfg, ids, state)  # the whole seed in one pass
    last = logits[-1] / np.float32(temperature)  # (K,V)
    stepper = Stepper(params, cfg, state, logit_scale=1.0 / temperature)
    pick = _Picker(rng, K, vocab.size, top_k, greedy)
    yield from _steps(stepper, last, vocab, n, pick, K, stop)


def _steps(stepper, last, vocab, n, pick, K, stop):
    chars = vocab.chars
    tails = [""] * K  # the end of each stream, long enough to match `stop`
    alive = [True] * K
    n_alive = K
    for _ in range(n):
        nxt = pick(last).tolist()
        out = [chars[i] if a else "" for i, a in zip(nxt, alive)]
        if stop:
            for k, ch in enumerate(out):
                if ch:
                    tails[k] = (tails[k] + ch)[-len(stop) :]
                    if tails[k] == stop:
                        alive[k] = False
                        n_alive -= 1
        yield out
        if not n_alive:
            return
        last = stepper.step(np.asarray(nxt))
