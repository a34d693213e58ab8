"""Scoring a text file under a trained model: loss in nats and bits per char, perplexity.

The file is streamed: it is read piece by piece and scored in blocks of BLOCK_CHARS
characters, each block carrying the end of the previous one as context, so memory stays
bounded whatever the file's size. Scoring (``evaluate``) is also the trainer's
validation: parallel streams with carried state and a warm-up, so evaluating the
held-out part of a training corpus reproduces the validation loss of its checkpoint.

Characters outside the model's vocabulary cannot be fed to the model nor predicted by
it. They are counted (per character) and reported, and then left out of the text, as
if the file did not contain them: they are not scored, the state is not reset, and the
characters around them are scored as neighbours. The loss therefore covers the
in-vocabulary characters only; the report says how many were left out.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from charrnn import data, distributed, metrics, model, trained_text
from charrnn.errors import DataError

EVAL_STREAMS = 64  # streams used to score a text
EVAL_CHUNK = 64  # at most this many steps per forward call while scoring
EVAL_WARMUP = 128  # characters each scoring stream reads before it is scored
CALL_BYTES = 16 << 20  # bound on one scoring call's widest (steps, width, streams) array (call_width)
BLOCK_CHARS = 1 << 20  # characters scored per evaluate call
CONTEXT_CHARS = EVAL_WARMUP + 1  # all the scoring streams can use of the text before a block


@dataclass
class Score:
    path: str
    chars: int  # characters in the file (after the text policy of data.py)
    scored: int  # characters predicted and counted in the loss
    unknown: dict = field(default_factory=dict)  # out-of-vocabulary character -> count
    loss: float | None = None  # mean nats per scored character
    held_out: bool = False  # only the last val_frac of the file was scored
    cold_start: dict | None = None  # the cold-start measurement over the first block scored

    @property
    def bpc(self) -> float | None:
        return metrics.bits(self.loss)

    @property
    def perplexity(self) -> float | None:
        return None if self.loss is None else math.exp(self.loss)

    @property
    def n_unknown(self) -> int:
        return sum(self.unknown.values())

    def to_dict(self) -> dict:
        return {
            "file": self.path,
            "chars": self.chars,
            "scored": self.scored,
            "held_out": self.held_out,
            "loss_nats": self.loss,
            "bpc": self.bpc,
            "perplexity": self.perplexity,
            "unknown_chars": self.n_unknown,
            "unknown": self.unknown,
            "cold_start": self.cold_start,
        }


def with_context(ids: np.ndarray, start: int) -> tuple[np.ndarray, int]:
    """The text to score from index ``start`` on, preceded by what the scoring streams
    can use of the text before it as context: (ids, how many of them are context)."""
    n_context = min(start, CONTEXT_CHARS)
    return ids[start - n_context :], n_context


def call_width(cfg) -> int:
    """Floats per step and stream in a scoring call's widest array: the logits (V) or a
    layer's gate pre-activations (G), whichever is wider. The gates matter: the 300
    cold-start windows of an LSTM 2x384 make a (64, 1536, 300) array unless bounded
    (tests/test_cold_start.py measures the peak)."""
    return max(cfg.vocab_size, cfg.gates)


def scoring_streams(width: int, wanted: int) -> int:
    """Streams per scoring call: ``wanted``, fewer when even one step of its widest
    array would pass CALL_BYTES (vocabularies above about 65,000 characters)."""
    return int(max(1, min(wanted, CALL_BYTES // (4 * width))))


def chunk_steps(width: int, streams: int) -> int:
    """Steps per scoring call, so that its widest array stays within CALL_BYTES whatever
    the vocabulary and model (up to EVAL_CHUNK; at least one)."""
    return int(max(1, min(EVAL_CHUNK, CALL_BYTES // (4 * width * streams))))


def char_losses(
    params,
    cfg,
    ids: np.ndarray,
    n_context: int = 1,
    deadline: float | None = None,
    engine=None,
    progress=None,
    part: tuple[int, int] = (0, 1),
):
    """The loss (nats) of predicting each character of ids[n_context:] from all that
    precedes it, in EVAL_STREAMS streams with carried state and a warm-up
    (data.eval_chunks): out[i] is the loss of ids[n_context + i]. None if
    time.perf_counter() passes ``deadline`` first. ``engine`` runs the cells (None: the
    default, engines.get()); ``progress``, if given, is called after each call of the
    model with how many characters have been scored. ``part`` (k, n) scores only the
    k-th of n contiguous groups of the streams (an MPI rank's share of a validation),
    leaving 0 for the others' characters: the n parts' outputs sum to the whole."""
    out = np.zeros(max(len(ids) - n_context, 0), dtype=np.float64)
    state, done = None, 0
    width = call_width(cfg)
    layout = scoring_streams(width, EVAL_STREAMS)
    streams = max(1, min(layout, len(out)))
    for x, y, targets in data.eval_chunks(ids, n_context, layout, EVAL_WARMUP, chunk_steps(width, streams)):
        if deadline is not None and time.perf_counter() > deadline:
            return None
        lo, hi = distributed.split(x.shape[0], part[1], part[0])
        if lo == hi:  # more parts than streams: this one has none
            continue
        x, y, targets = x[lo:hi], y[lo:hi], targets[lo:hi]
        if state is None:
            state = model.init_hidden(cfg, x.shape[0], params["Why"].dtype)
        nll, state = model.sequence_nll(params, cfg, x, y, state, engine)
        scored = targets >= 0
        out[targets[scored] - n_context] = nll[scored]
        if progress is not None:
            done += int(np.count_nonzero(scored))
            progress(done)
    return out


def count_chars(path: str, encoding: str = "utf-8") -> int:
    return sum(len(piece) for piece in data.iter_text(path, encoding))


def score_file(
    params,
    cfg,
    vocab: data.Vocab,
    path: str,
    encoding: str = "utf-8",
    start: int = 0,
    engine=None,
    first_block=None,
) -> Score:
    """Score every character of ``path`` from index ``start`` on; the characters before
    ``start`` are read only as context. See the module docstring for unknown characters.
    ``first_block(ids, n_context, losses)``, when given, measures something more on the
    first block scored (cold_start.measure): its result is the Score's cold_start."""
    unknown: Counter = Counter()
    context = np.empty(0, dtype=vocab.dtype)  # ids just before the pending block
    pending: list[np.ndarray] = []  # in-vocabulary ids waiting to be scored
    n_pending = 0
    total, scored, pos = 0.0, 0, 0
    cold = None

    def flush(ids: np.ndarray) -> None:
        nonlocal context, total, scored, cold
        n_context = max(len(context), 1)  # nothing predicts the file's first character
        seq = np.concatenate([context, ids])
        if len(seq) > n_context:
            losses = char_losses(params, cfg, seq, n_context, engine=engine)
            if not scored:
                cold = None if first_block is None else first_block(seq, n_context, losses)
            total += float(losses.sum())
            scored += len(losses)
        context = seq[-CONTEXT_CHARS:]

    for piece in data.iter_text(path, encoding):
        ids = vocab.lookup(piece)
        cut = min(max(start - pos, 0), len(ids))  # chars of this piece before ``start``
        pos += len(ids)
        missing = ids[cut:] < 0  # only the scored part's unknown characters are reported
        if missing.any():
            bad, counts = np.unique(data.code_points(piece)[cut:][missing], return_counts=True)
            unknown.update({chr(int(c)): int(n) for c, n in zip(bad, counts)})
        before, after = ids[:cut], ids[cut:]
        if cut:
            context = np.concatenate([context, before[before >= 0].astype(vocab.dtype)])[-CONTEXT_CHARS:]
        after = after[after >= 0].astype(vocab.dtype)
        pending.append(after)
        n_pending += len(after)
        if n_pending >= BLOCK_CHARS:
            block = np.concatenate(pending)
            for s in range(0, len(block) - BLOCK_CHARS + 1, BLOCK_CHARS):
                flush(block[s : s + BLOCK_CHARS])
            rest = block[len(block) - len(block) % BLOCK_CHARS :]
            pending, n_pending = [rest], len(rest)
    if pos == 0:
        raise DataError(f"{path} is empty")
    if n_pending:
        flush(np.concatenate(pending))
    return Score(
        path=path,
        chars=pos,
        scored=scored,
        loss=total / scored if scored else None,
        unknown=dict(unknown.most_common()),
        cold_start=cold,
    )


def score(ckpt, path: str, encoding: str = "utf-8", held_out: bool = False, engine=None, first_block=None) -> Score:
    """Score ``path`` under checkpoint ``ckpt``; with ``held_out`` only the last
    val_frac of it, the part its training held out when ``path`` is its corpus."""
    start = data.held_out_start(count_chars(path, encoding), ckpt.train_cfg.val_frac) if held_out else 0
    result = score_file(ckpt.params, ckpt.model_cfg, ckpt.vocab, path, encoding, start, engine, first_block)
    result.held_out = held_out
    return result


def training_corpus(ckpt, checkpoint_path: str) -> tuple[str, str, bool]:
    """The text ``ckpt`` was trained on: (path, encoding, unchanged). ``unchanged`` is
    False when the file's SHA-256 differs from the one recorded at training time."""
    where = trained_text.path(ckpt, checkpoint_path, "pass the text to evaluate as FILE")
    return where, trained_text.encoding(ckpt), trained_text.file_unchanged(ckpt, where)
