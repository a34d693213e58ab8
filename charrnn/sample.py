"""Ancestral sampling: feed the seed text, then draw one character at a time.

K streams are sampled together in one batched pass (``num_samples``), each with its
own draws from the same ``np.random.Generator``, so the same checkpoint, seed text,
options and ``--rng-seed`` always give the same text.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from charrnn import model as M
from charrnn.config import ModelConfig
from charrnn.data import Vocab, format_chars
from charrnn.errors import UsageError
from charrnn.parallel import blas_threads
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
    """One id per row of logits (K,V), drawn from softmax(logits / temperature).

    Uses the Gumbel-max trick: argmax(z + Gumbel noise) is an exact draw from softmax(z),
    with no exp, no normalisation and no overflow for tiny temperatures."""
    if greedy:
        return logits.argmax(axis=1)
    z = logits / np.float64(temperature)  # float64: no overflow for tiny temperatures
    if 0 < top_k < z.shape[1]:
        kth = np.partition(z, -top_k, axis=1)[:, -top_k][:, None]
        z[z < kth] = -np.inf
    z += rng.gumbel(size=z.shape)
    return z.argmax(axis=1)


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
    # Steps of a few streams are too small to share between BLAS threads (waking the
    # second thread costs more than the product); wide batches still profit from it.
    with blas_threads(1) if K < 16 else contextlib.nullcontext():
        yield from _steps(stepper, last, vocab, n, temperature, top_k, greedy, rng, K, stop)


def _steps(stepper, last, vocab, n, temperature, top_k, greedy, rng, K, stop):
    chars = vocab.chars
    tails = [""] * K  # the end of each stream, long enough to match `stop`
    alive = [True] * K
    n_alive = K
    for _ in range(n):
        nxt = _pick(last, temperature, top_k, greedy, rng).tolist()
        out = [chars[i] if a else "" for i, a in zip(nxt, alive)]
        if stop:
            for k, ch in enumerate(out):
                if ch:
                    tails[k] = (tails[k] + ch)[-len(stop):]
                    if tails[k] == stop:
                        alive[k] = False
                        n_alive -= 1
        yield out
        if not n_alive:
            return
        last = stepper.step(np.asarray(nxt))
