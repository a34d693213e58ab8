"""Ancestral sampling: feed the seed text, then draw one character at a time.

Each sample has its own random generator, spawned from the run's seed
(``np.random.SeedSequence(rng_seed).spawn``): sample k is the same text whether it is
drawn alone or as one of many, and however the samples are batched. Samples are drawn
BATCH at a time in one batched pass each, so any --num-samples works in bounded
memory and the first ones come out promptly.

Filters, applied to softmax(logits / temperature) in this order, both when given:
top-k keeps the k most likely characters; top-p (nucleus sampling) keeps the smallest
set of most likely characters whose probability sums to at least p. The draw is then
exact from the kept characters, renormalised.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from charrnn import engines, model
from charrnn.config import ModelConfig, SampleOptions
from charrnn.data import Vocab, format_chars
from charrnn.errors import UsageError
from charrnn.stepper import Stepper

BATCH = 256  # samples drawn together in one batched pass


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


def drop_unknown(seed: str, vocab: Vocab) -> tuple[str, dict[str, int]]:
    """The seed without the characters the model never saw, and how many of each went."""
    known = set(vocab.chars)
    dropped: dict[str, int] = {}
    for ch in seed:
        if ch not in known:
            dropped[ch] = dropped.get(ch, 0) + 1
    return "".join(ch for ch in seed if ch in known), dict(sorted(dropped.items(), key=lambda kv: -kv[1]))


def keep_mask(logits: np.ndarray, top_k: int, top_p: float) -> np.ndarray | None:
    """(K,V) bool: the characters each row may draw after top-k and top-p (None: all).

    Top-p keeps the smallest set of most likely characters whose probability (after
    top-k, renormalised) reaches ``top_p``: every character at least as likely as the
    least likely one of that set (a tie at the edge keeps both). ``_keep_row`` is the
    same arithmetic on one row (the same sums and the same threshold), so one stream
    draws what it would draw as one of many."""
    K, V = logits.shape
    keep = None
    if 0 < top_k < V:
        kth = np.partition(logits, -top_k, axis=1)[:, -top_k][:, None]
        keep = logits >= kth
    if top_p < 1:
        z = logits if keep is None else np.where(keep, logits, -np.inf)
        p = np.exp(z - z.max(axis=1, keepdims=True))  # (K,V) unnormalised, largest 1
        ranked = np.sort(p, axis=1)  # ascending
        tail = np.cumsum(ranked, axis=1)  # mass of the least likely characters
        # left out: the largest set of least likely characters with at most 1 - top_p of
        # the mass (never all of them: top_p > 0)
        out = (tail <= (1.0 - top_p) * tail[:, -1:]).sum(axis=1)
        kept = p >= ranked[_rows(K), out][:, None]  # at least as likely as the least likely kept
        keep = kept if keep is None else keep & kept
    return keep


def _keep_row(row: np.ndarray, top_k: int, top_p: float):
    """keep_mask for one row (V,), as (top-k mask or None, p, least): the row keeps
    character j when the mask allows it and p[j] >= least (no top-p: p is None)."""
    V = row.shape[0]
    keep = p = least = None
    if 0 < top_k < V:
        keep = row >= np.partition(row, -top_k)[-top_k]
    if top_p < 1:
        z = row if keep is None else np.where(keep, row, -np.inf)
        p = np.exp(z - z.max())
        ranked = np.sort(p)
        tail = np.cumsum(ranked)
        least = ranked[tail.searchsorted((1.0 - top_p) * tail[-1], side="right")]
    return keep, p, least


_ROWS: dict[int, np.ndarray] = {}


def _rows(K: int) -> np.ndarray:
    if K not in _ROWS:
        _ROWS[K] = np.arange(K)
    return _ROWS[K]


class _Picker:
    """Draws one id per row of logits (K,V) from softmax(logits), the temperature being
    already applied (the stepper scales its output weights by 1/temperature).

    Uses the Gumbel-max trick: argmax(z + Gumbel noise) is an exact draw from softmax(z),
    with no exp, no normalisation and no overflow for tiny temperatures; characters a
    filter removes get -inf. Each row's noise comes from its own generator, drawn BLOCK
    steps at a time: one call per block and sample, not per step."""

    BLOCK = 256

    def __init__(self, rngs: list[np.random.Generator], V: int, options: SampleOptions):
        self.rngs, self.V = rngs, V
        self.top_k, self.top_p, self.greedy = options.top_k, options.top_p, options.greedy
        self.noise, self.i = None, self.BLOCK

    def noise_rows(self, most: int) -> np.ndarray:
        """A single stream's noise for its next steps, as ``one`` would use it step by
        step: (m,V) with 1 <= m <= most, the rest of the current block (greedy: zeros,
        drawing none)."""
        if self.greedy:
            return np.zeros((min(most, self.BLOCK), self.V))
        if self.i == self.BLOCK:
            self._refill()
        m = min(most, self.BLOCK - self.i)
        self.i += m
        return self.noise[self.i - m : self.i, 0]

    def _refill(self) -> None:
        self.noise = np.stack([rng.gumbel(size=(self.BLOCK, self.V)) for rng in self.rngs], axis=1)  # (BLOCK,K,V)
        self.i = 0

    def _next_noise(self) -> np.ndarray:
        if self.i == self.BLOCK:
            self._refill()
        self.i += 1
        return self.noise[self.i - 1]  # (K,V)

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        if self.greedy:
            return logits.argmax(axis=1)
        z = logits + self._next_noise()  # float64
        keep = keep_mask(logits, self.top_k, self.top_p)
        if keep is not None:
            z = np.where(keep, z, -np.inf)
        return z.argmax(axis=1)

    def one(self, row: np.ndarray) -> int:
        """The same draw for one stream, row (V,): in fewer and cheaper calls, because
        one stream pays for every call on every character. The unfiltered winner is the
        filtered one whenever the filters keep it (most draws), so the mask over the
        whole row is only formed when they do not; and the filters always keep the most
        likely character, which is most of a trained model's draws, so for it they are
        not computed at all."""
        if self.greedy:
            return int(row.argmax())
        z = row + self._next_noise()[0]
        best = int(z.argmax())
        if best == int(row.argmax()):
            return best
        keep, p, least = _keep_row(row, self.top_k, self.top_p)
        if (keep is None or keep[best]) and (p is None or p[best] >= least):
            return best
        if p is not None:
            keep = p >= least if keep is None else keep & (p >= least)
        return int(np.where(keep, z, -np.inf).argmax())


def sample_rngs(rng_seed: int | None, count: int) -> list[np.random.Generator]:
    """One generator per sample, the same for sample k whatever ``count`` is."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(rng_seed).spawn(count)]


def generate(
    params,
    cfg: ModelConfig,
    vocab: Vocab,
    seed: str,
    options: SampleOptions = SampleOptions(),
    *,
    rng_seed: int | None = None,
    num_samples: int = 1,
    engine=None,
) -> Iterator[Iterator[str]]:
    """Return an iterator over ``num_samples`` samples, each an iterator over its
    characters as they are generated (at most ``options.n``; a sample ends after
    ``options.stop``). Samples are computed BATCH at a time; a bad seed raises here,
    before anything is generated (bad options raise when the SampleOptions is made).
    ``engine`` runs the cells (None: the default, engines.get())."""
    seed = resolve_seed(seed, vocab)
    rngs = sample_rngs(rng_seed, num_samples)
    engine = engines.get() if engine is None else engine
    return _samples(params, cfg, vocab, seed, options, rngs, engine)


def _samples(params, cfg, vocab, seed, options, rngs, engine):
    for start in range(0, len(rngs), BATCH):
        batch = rngs[start : start + BATCH]
        if len(batch) == 1:  # one sample streams its characters as they come
            yield _one_stream(params, cfg, vocab, seed, options, batch, engine)
            continue
        texts = (
            ["".join(parts) for parts in zip(*_steps(params, cfg, vocab, seed, options, batch, engine))]
            if options.n
            else [""] * len(batch)
        )
        yield from (iter(text) for text in texts)


SEED_CHUNK = 4096  # seed characters per forward pass: a long seed file needs no more memory


def feed(params, cfg: ModelConfig, ids: np.ndarray, engine=None):
    """Run one stream through the seed ``ids``: (logits (1,V) after its last character,
    the state after it), from the state sampling starts from."""
    state = model.init_hidden(cfg, 1, params["Why"].dtype)
    ids = ids.astype(np.int64)[None, :]
    for t in range(0, ids.shape[1], SEED_CHUNK):
        logits, state, _ = model.forward(params, cfg, ids[:, t : t + SEED_CHUNK], state, engine=engine)
    return logits[-1], state


def _start(params, cfg, vocab, seed, options: SampleOptions, rngs, engine):
    """What both sampling loops start from, for K = len(rngs) streams that all read the
    seed: logits (K,V) after it (temperature applied), the stepper and the picker."""
    engine = engines.get() if engine is None else engine
    K = len(rngs)
    last, state = feed(params, cfg, vocab.encode(seed), engine)
    last = np.repeat(last / np.float32(options.temperature), K, axis=0)
    state = [tuple(np.repeat(s, K, axis=0) for s in layer) for layer in state]
    stepper = Stepper(params, cfg, state, logit_scale=1.0 / options.temperature, engine=engine)
    return last, stepper, _Picker(rngs, vocab.size, options)


def _steps(params, cfg, vocab, seed, options: SampleOptions, rngs, engine=None):
    """Per step, the next character of each of the K = len(rngs) streams ("" for one that
    has already produced ``options.stop``), for at most ``options.n`` steps."""
    n, stop = options.n, options.stop
    if n == 0:
        return
    K = len(rngs)
    last, stepper, pick = _start(params, cfg, vocab, seed, options, rngs, engine)
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


def _one_stream(params, cfg, vocab, seed, options: SampleOptions, rngs, engine=None):
    """_steps for one stream, character by character: the same draws, without the
    per-step lists that K streams need. Where the engine compiles one stream's whole
    step (Engine.stream: the layers, the output layer and the draw), the characters
    after the first come from it a block at a time (as many as the noise block has
    rows left), so Python's work per character is one yield. Elsewhere (the NumPy
    engine) this loop with _Picker.one is about 10% faster end to end than _steps with
    one stream when top-k or top-p is on, and the same without them (LSTM 2x256:
    benchmarks/RESULTS.md, "One stream's own loop on the NumPy engine")."""
    n, stop = options.n, options.stop
    if n == 0:
        return
    engine = engines.get() if engine is None else engine
    last, stepper, pick = _start(params, cfg, vocab, seed, options, rngs, engine)
    chars = vocab.chars
    i = pick.one(last[0])
    yield chars[i]
    if engine.stream is not None:
        yield from _compiled_stream(engine.stream(stepper), i, n - 1, vocab, pick, stop)
        return
    tail = chars[i][-len(stop) :] if stop else ""
    ids = np.zeros(1, dtype=np.int64)
    for _ in range(n - 1):
        if stop and tail == stop:
            return
        ids[0] = i
        i = pick.one(stepper.step(ids)[0])
        ch = chars[i]
        yield ch
        if stop:
            tail = (tail + ch)[-len(stop) :]


def _compiled_stream(stream, first: int, n: int, vocab: Vocab, pick: _Picker, stop: str | None):
    """The characters after ``first`` (at most n) from an engine's compiled stream."""
    chars = vocab.chars
    lookup = {ch: j for j, ch in enumerate(chars)}
    if stop and all(ch in lookup for ch in stop):
        stop_ids = np.array([lookup[ch] for ch in stop], dtype=np.int64)
    else:  # a stop text with characters the model never draws never ends a sample
        stop_ids = np.zeros(0, dtype=np.int64)
    recent = np.full(len(stop_ids), -1, dtype=np.int64)
    if len(stop_ids):
        recent[-1] = first
        if np.array_equal(recent, stop_ids):
            return
    out = np.empty(_Picker.BLOCK, dtype=np.int64)
    x, left = first, n
    while left > 0:
        noise = pick.noise_rows(left)  # (m,V): this block's rows not used yet
        m = noise.shape[0]
        drawn = stream.run(x, noise, pick.top_k, pick.top_p, pick.greedy, stop_ids, recent, out[:m])
        yield from (chars[j] for j in out[:drawn].tolist())
        if drawn < m:  # the stop text was drawn
            return
        x, left = int(out[drawn - 1]), left - drawn
