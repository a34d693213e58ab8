"""Choosing the model for a corpus, a time budget and a machine.

`charrnn train FILE` with no size option picks the model here: the same 10 minutes buy
a 2x512 LSTM on a fast machine and a 2x192 on a slow one, and a 50 KB text wants a
smaller model and more dropout than a 3 MB one. ``choose`` is a pure function of the
corpus size, the budget and the machine's measured speed; ``probe`` measures that
speed in a few seconds by timing real training steps of two model sizes.

A run limited by steps (--max-steps) is sized the same way by ``choose_for_steps``,
for the characters its steps read, without measuring the machine.

The rule (benchmarks/AUTOSIZE.md says why; the grid of trainings it was fitted to is in
benchmarks/RESULTS.md):

- A candidate is an LSTM of 2 layers and hidden size H from LADDER. Training it for the
  budget reads D = rate(H) x budget characters, and it has P(H) parameters.
- The largest H whose budget gives enough characters per parameter (so it makes enough
  steps to learn: chars_per_param, more for a run that reads its text only about once)
  and has at most PARAMS_PER_CHAR parameters per training character (so it cannot
  simply memorise a small text) is chosen.
- Dropout grows with how often the run reads each character (epochs = D / N);
  smaller models, and runs that read their text about once, take larger steps (lr_for).
- The run validates often enough to keep the best checkpoint of a small corpus, and
  seldom enough that validating a large held-out text takes at most EVAL_SHARE of
  the budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from charrnn.config import ModelConfig, TrainConfig, format_duration

LADDER = (64, 96, 128, 192, 256, 320, 384, 448, 512, 640, 768, 1024)  # hidden sizes tried, 2 layers
LAYERS = 2
CHARS_PER_PARAM = (8.0, 2.5)  # fewest characters read per parameter: reading the text once .. FRESH_EPOCHS[1]
FRESH_EPOCHS = (1.0, 2.0)  # times or more (log-linear between)
PARAMS_PER_CHAR = 6.0  # most parameters per character of training text
DROPOUT_RANGE = (0.0, 0.4)  # at most one epoch .. DROPOUT_EPOCHS epochs or more
DROPOUT_EPOCHS = 100.0
EVAL_SHARE = 0.05  # of the budget spent validating, at most
# Characters scored per second (cold-start windows included) over characters trained
# per second: no backward pass, but each step is one call on 64 streams rather than two
# shards in parallel. Measured, not guessed: a guess too high lets validation take more
# than EVAL_SHARE (benchmarks/RESULTS.md, Validation speed: charrnn eval against train).
EVAL_SPEEDUP = 2.2
EVALS = (2, 20)  # fewest and most validations in a run
LR_AT_384 = 5e-3  # Adam's peak learning rate for H = 384; smaller models take larger steps
LR_MAX = 1e-2
FEW_EPOCHS = (1.5, 3.0)  # up to 1.5 epochs the full FEW_EPOCHS_LR, from 3 none, log-linear between
FEW_EPOCHS_LR = 1.6
RANK_STREAMS = 16  # fewest streams an MPI rank trains: two thread shards of parallel.MIN_SHARD
PROBE_SIZES = (128, 384)
PROBE_STEPS = 3  # timed steps per probe size, after one untimed


@dataclass(frozen=True)
class Speed:
    """How fast this machine trains a model: seconds per training character =
    ``fixed`` + ``per_gflop`` x the model's GFLOP per character (model.flops_per_char)."""

    fixed: float
    per_gflop: float

    def rate(self, cfg: ModelConfig) -> float:
        """Training characters per second for the model ``cfg``."""
        from charrnn.model import flops_per_char

        return 1.0 / (self.fixed + self.per_gflop * flops_per_char(cfg) / 1e9)


@dataclass(frozen=True)
class Choice:
    model: dict  # ModelConfig fields
    train: dict  # TrainConfig fields
    reason: str  # one line for the user


def candidate(hidden_size: int, vocab_size: int, dropout: float = 0.0) -> ModelConfig:
    return ModelConfig(cell="lstm", vocab_size=vocab_size, hidden_size=hidden_size, n_layers=LAYERS, dropout=dropout)


def log_between(x: float, low: float, high: float) -> float:
    """Where x lies between low and high on a log scale: 0 at or below low, 1 at or
    above high (each rule below blends two settings by it)."""
    return min(1.0, max(0.0, math.log(max(x, 1e-9) / low) / math.log(high / low)))


def chars_per_param(epochs: float) -> float:
    """Fewest characters a model must read per parameter in its budget, when that
    budget reads the training text ``epochs`` times. A text read about once is all
    new to the model and a smaller model that makes more steps learns more of it; a
    text read several times favours the larger model (the grid of
    benchmarks/autosize_grid.py: War and Peace against tiny Shakespeare and tales in
    two minutes, benchmarks/RESULTS.md)."""
    most, fewest = CHARS_PER_PARAM
    t = log_between(epochs, *FRESH_EPOCHS)
    return most + t * (fewest - most)


def dropout_for(epochs: float) -> float:
    """Dropout for a run that reads each training character ``epochs`` times: the low
    end of DROPOUT_RANGE up to one epoch, the high end from DROPOUT_EPOCHS on, and
    log-linear between."""
    low, high = DROPOUT_RANGE
    t = log_between(epochs, 1.0, DROPOUT_EPOCHS)
    return round(low + t * (high - low), 2)


def lr_for(hidden_size: int, epochs: float = math.inf) -> float:
    """Peak learning rate for hidden size H: LR_AT_384 x sqrt(384 / H), at most LR_MAX
    (smaller models learn faster with larger steps), times up to FEW_EPOCHS_LR for a run
    that reads its text about once, where each step must count; with more passes the
    larger rate is worse (benchmarks/RESULTS.md: the learning-rate rows and the grid)."""
    t = log_between(epochs, *FEW_EPOCHS)
    factor = FEW_EPOCHS_LR + t * (1.0 - FEW_EPOCHS_LR)
    return round(min(LR_MAX, LR_AT_384 * math.sqrt(384 / hidden_size)) * factor, 5)


def eval_every(steps: float, val_chars: int, rate: float, budget: float) -> int:
    """Steps between validations: as many as EVALS allows, while validating the
    ``val_chars`` held-out characters takes at most EVAL_SHARE of ``budget`` seconds of
    training at ``rate`` characters a second. Only rate x budget, the characters the
    run trains on, matters: scoring runs EVAL_SPEEDUP times as fast as training."""
    seconds = val_chars / (EVAL_SPEEDUP * rate)
    affordable = EVAL_SHARE * budget / max(seconds, 1e-9)
    n = max(EVALS[0], min(EVALS[1], int(affordable)))
    return max(1, int(math.ceil(steps / n)))


def _choose(n_chars: int, rate, budget: float, vocab_size: int, val_frac: float, batch_size: int, seq_len: int):
    """The rule (module docstring) for a run that trains the model ``cfg`` at
    ``rate(cfg)`` characters a second for ``budget`` seconds: (hidden size, epochs,
    model fields, train fields)."""
    from charrnn.model import n_params

    train_chars = n_chars - round(n_chars * val_frac)
    best = None
    for H in LADDER:
        cfg = candidate(H, vocab_size)
        P, D = n_params(cfg), rate(cfg) * budget
        enough = D >= chars_per_param(D / max(train_chars, 1)) * P
        if best is None or (enough and P <= PARAMS_PER_CHAR * train_chars):
            best = (H, D, rate(cfg))
    H, D, speed = best
    epochs = D / max(train_chars, 1)
    dropout = dropout_for(epochs)
    steps = D / (batch_size * seq_len)
    model = {"cell": "lstm", "hidden_size": H, "n_layers": LAYERS, "dropout": dropout}
    train = {"eval_every": eval_every(steps, n_chars - train_chars, speed, budget), "lr": lr_for(H, epochs)}
    return H, epochs, model, train


def choose(
    n_chars: int,
    budget: float,
    speed: Speed,
    vocab_size: int,
    val_frac: float = 0.1,
    batch_size: int = 64,
    seq_len: int = 64,
    engine: str | None = None,
    ranks: int = 1,
) -> Choice:
    """The model for a text of ``n_chars`` characters trained for ``budget`` seconds on a
    machine of ``speed`` (measured on the engine named ``engine`` by ``ranks`` MPI ranks
    together, which the reason names). Pure: the same arguments give the same choice."""
    H, epochs, model, train = _choose(n_chars, speed.rate, budget, vocab_size, val_frac, batch_size, seq_len)
    rate = speed.rate(candidate(H, vocab_size))
    reason = (
        f"auto: lstm {LAYERS}x{H}, dropout {model['dropout']:g} for {n_chars / 1e6:.2g} M chars and "
        f"{format_duration(budget)} at ~{rate / 1e3:.0f}k chars/s{f' on the {engine} engine' if engine else ''}"
        f"{f' on {ranks} MPI ranks' if ranks > 1 else ''} "
        f"({epochs:.1f} epochs); "
        f"pass --hidden-size to choose yourself"
    )
    return Choice(model, train, reason)


def choose_for_steps(
    n_chars: int, steps: int, vocab_size: int, val_frac: float = 0.1, batch_size: int = 64, seq_len: int = 64
) -> Choice:
    """The model for a text of ``n_chars`` characters trained for ``steps`` steps of
    ``batch_size`` x ``seq_len`` characters: the rule of ``choose`` for the characters
    those steps read, whatever the model. No machine is measured, so a --max-steps run
    chooses the same model everywhere."""
    per_step = float(batch_size * seq_len)  # a "rate" of one step a second, for ``steps`` seconds
    H, epochs, model, train = _choose(n_chars, lambda cfg: per_step, steps, vocab_size, val_frac, batch_size, seq_len)
    reason = (
        f"auto: lstm {LAYERS}x{H}, dropout {model['dropout']:g} for {n_chars / 1e6:.2g} M chars and "
        f"{steps:,} steps ({epochs:.1f} epochs; the same on every machine); pass --hidden-size to choose yourself"
    )
    return Choice(model, train, reason)


def batch_for_ranks(batch_size: int, ranks: int) -> int:
    """The batch of a run on ``ranks`` MPI ranks: ``batch_size``, or more where that
    would leave a rank fewer than RANK_STREAMS streams, whose per-step products are too
    thin to run at the BLAS's pace."""
    return max(batch_size, RANK_STREAMS * ranks)


def probe(vocab_size: int, train_cfg: TrainConfig, seed: int = 0, engine=None, world=None) -> tuple[Speed, float]:
    """Time training steps of two model sizes on random text of ``vocab_size``
    characters (the run's batch and chunk sizes, optimizer and clipping) on ``engine``
    (None: the default); returns the fitted Speed and the seconds the probe took. On
    several MPI ranks (``world``) every rank takes part in the same steps, so the speed
    is the ranks' together, their gradient sums included."""
    import numpy as np

    from charrnn import data, distributed, engines, training

    t0 = time.perf_counter()
    B, T = train_cfg.batch_size, train_cfg.seq_len
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab_size, B * (T + 1) * (PROBE_STEPS + 2)).astype(np.int64)
    vocab = data.Vocab("".join(chr(0x100 + i) for i in range(vocab_size)))
    points = []
    for H in PROBE_SIZES:
        cfg = candidate(H, vocab_size, dropout=0.2)
        run = training.Run(
            cfg,
            train_cfg,
            vocab,
            ids,
            ids[:100],
            checkpoint_dir="",
            engine=engine or engines.get(),
            world=world or distributed.World(),
        )
        st = training.new_state(run)
        streams = data.Streams(ids, B, T)
        training.train_step(run, st, streams)  # the first step pays for thread pools and caches
        times = []
        for _ in range(PROBE_STEPS):
            t = time.perf_counter()
            training.train_step(run, st, streams)
            times.append(time.perf_counter() - t)
        seconds_per_char = sorted(times)[len(times) // 2] / (B * T)  # the median: one odd step moves it least
        from charrnn.model import flops_per_char

        points.append((flops_per_char(cfg) / 1e9, seconds_per_char))
    (g1, s1), (g2, s2) = points
    per_gflop = max((s2 - s1) / (g2 - g1), 1e-12)
    fixed = max(s1 - per_gflop * g1, 0.0)
    return Speed(fixed, per_gflop), time.perf_counter() - t0
