"""Configuration: one frozen dataclass per concern, stored in checkpoints as JSON.

ModelConfig fixes the shapes of the weights; TrainConfig says how they are trained.
Both validate themselves, so every entry point (CLI, library, resume) gets the same
checks and the same messages.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from charrnn.cells import SPECS, CellSpec
from charrnn.errors import ConfigError

CELLS = tuple(SPECS)
OPTIMIZERS = ("adam", "adagrad", "rmsprop", "sgd")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"          # rnn | lstm | gru
    vocab_size: int = 0         # V, set from the training text
    hidden_size: int = 384      # H
    n_layers: int = 2           # stacked recurrent layers
    dropout: float = 0.3        # on each layer's output during training, 0 turns it off

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        _positive("hidden_size", self.hidden_size)
        _positive("n_layers", self.n_layers)
        if self.vocab_size < 1:
            raise ConfigError(f"vocab_size must be at least 1, got {self.vocab_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def spec(self) -> CellSpec:
        """The cell's facts and functions (cells.SPECS)."""
        return SPECS[self.cell]

    @property
    def gates(self) -> int:
        """Width G of the fused gate pre-activations: H, 4H (i,f,o,g) or 3H (r,z,n)."""
        return self.spec.gates * self.hidden_size

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return _from_dict(cls, d)


@dataclass(frozen=True)
class TrainConfig:
    seq_len: int = 64           # T: characters per chunk of truncated BPTT
    batch_size: int = 64        # B: parallel streams through the corpus
    optimizer: str = "adam"     # adam | adagrad | rmsprop | sgd
    lr: float = 3e-3            # peak learning rate
    lr_schedule: str = "cosine" # cosine decays to lr * min_lr_frac over the run; constant keeps lr
    min_lr_frac: float = 0.05   # final lr as a fraction of lr (cosine only)
    clip: float = 5.0           # clip gradients to this global norm, 0 turns clipping off
    val_frac: float = 0.1       # last fraction of the text held out for validation
    max_steps: int = 0          # stop after this many steps, 0 means no step limit
    time_limit: float = 600.0   # stop after this many seconds of training, 0 means none
    eval_every: int = 500       # validate and checkpoint every this many steps
    rng_seed: int = 1234        # seeds init, dropout and anything else random

    def __post_init__(self):
        _positive("seq_len", self.seq_len)
        _positive("batch_size", self.batch_size)
        _positive("eval_every", self.eval_every)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in SCHEDULES:
            raise ConfigError(f"unknown lr schedule {self.lr_schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive finite number, got {self.lr}")
        if not 0.0 <= self.min_lr_frac <= 1.0:
            raise ConfigError(f"min_lr_frac must be in [0, 1], got {self.min_lr_frac}")
        if not self.clip >= 0:
            raise ConfigError(f"clip must be 0 (off) or positive, got {self.clip}")
        if not 0.0 < self.val_frac < 1.0:
            raise ConfigError(f"val_frac must be between 0 and 1 (exclusive), got {self.val_frac}")
        if self.max_steps < 0 or self.time_limit < 0:
            raise ConfigError("max_steps and time_limit must be 0 (no limit) or positive")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return _from_dict(cls, d)


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _from_dict(cls, d: dict):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    return cls(**d)
