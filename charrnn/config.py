"""Configuration: one frozen dataclass per concern.

ModelConfig fixes the shapes of the weights and TrainConfig says how they are trained
(both stored in checkpoints as JSON); SampleOptions says how a sample is drawn.
Each field carries, in its metadata, its help text, its command-line flag and its
allowed values: the dataclasses validate themselves from it (so every entry point,
CLI, library, server or resume, gets the same checks and messages), and the commands
build their options from it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from charrnn.cells import SPECS, CellSpec
from charrnn.errors import ConfigError, UsageError

CELLS = tuple(SPECS)
OPTIMIZERS = ("adam", "adagrad", "rmsprop", "sgd")
SCHEDULES = ("cosine", "constant")
CLIP_MODES = ("norm", "value")


def setting(
    default,
    help: str,
    *,
    flag: str | None = None,
    low=None,
    high=None,
    low_open=False,
    high_open=False,
    choices=None,
    duration=False,
    resumable=False,
    addable=False,
    cli=True,
    allowed=None,
):
    """A config field with what the validator and the CLI need to know about it.

    low/high bound the value ([low, high], either end open with low_open/high_open);
    choices lists the allowed strings; duration marks seconds written as 90s or 10m;
    resumable fields may change when a run is resumed (when to stop and report);
    addable ones may be given as +N on the command line, N more than the run has done;
    allowed words the bounds for the error message where a value has a meaning of its
    own (top-k's 0). Fields of other types (a flag, a text) are not checked."""
    return field(
        default=default,
        metadata={
            "help": help,
            "flag": flag,
            "low": low,
            "high": high,
            "low_open": low_open,
            "high_open": high_open,
            "allowed": allowed,
            "choices": choices,
            "duration": duration,
            "resumable": resumable,
            "addable": addable,
            "cli": cli,
        },
    )


@dataclass(frozen=True)
class ModelConfig:
    cell: str = setting("lstm", "Recurrent cell.", choices=CELLS)
    vocab_size: int = setting(0, "Distinct characters of the training text (V).", low=1, cli=False)
    hidden_size: int = setting(
        384,
        "Hidden units per layer (H). Without --cell, --hidden-size and --layers, the model (and its dropout "
        "and lr) is chosen for the text and the time limit on this machine, or for the text and --max-steps; "
        "the defaults shown are for runs without either limit.",
        low=1,
    )
    n_layers: int = setting(2, "Stacked recurrent layers.", flag="--layers", low=1)
    dropout: float = setting(0.3, "Dropout on each layer's output while training.", low=0, high=1, high_open=True)

    def __post_init__(self):
        validate(self)

    @property
    def spec(self) -> CellSpec:
        """The cell's facts (cells.SPECS); engines/ implement its steps."""
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
    seq_len: int = setting(64, "Characters per chunk of truncated backpropagation through time (T).", low=1)
    batch_size: int = setting(64, "Parallel streams through the text (B).", low=1)
    optimizer: str = setting("adam", "Optimizer.", choices=OPTIMIZERS)
    lr: float = setting(3e-3, "Peak learning rate.", low=0, low_open=True)
    adam_beta2: float = setting(
        0.999,
        "Adam's decay of its mean squared gradient (beta2; PyTorch's default): 0.999 forgets in "
        "about 1,000 steps, 0.98 in about 50.",
        low=0,
        high=1,
        high_open=True,
    )
    lr_schedule: str = setting(
        "cosine", "cosine decays to lr * --min-lr-frac by the end of the run.", choices=SCHEDULES
    )
    min_lr_frac: float = setting(0.05, "Final learning rate as a fraction of --lr (cosine only).", low=0, high=1)
    clip: float = setting(
        5.0, "Clip gradients to this global norm (each element to +-clip with --clip-mode value); 0: off.", low=0
    )
    clip_mode: str = setting(
        "norm",
        "norm scales the whole gradient; value clips each element (min-char-rnn, char-rnn).",
        choices=CLIP_MODES,
    )
    reset_prob: float = setting(
        0.125,
        "Chance that a stream starts a chunk from a fresh state, so that the model learns to start "
        "well (sampling starts fresh).",
        low=0,
        high=1,
    )
    val_frac: float = setting(
        0.1, "Last fraction of the text held out for validation.", low=0, high=1, low_open=True, high_open=True
    )
    max_steps: int = setting(
        0,
        "Stop after this many steps in all; 0 means no step limit. +N: N more than the resumed run made. "
        "Without a size option, the model is chosen for this many steps and the text (the same on every machine).",
        low=0,
        resumable=True,
        addable=True,
    )
    time_limit: float = setting(
        600.0,
        "Stop when the run has trained this long in all, resumes included (90s, 10m, 1h); 0 means none. "
        "+20m: 20 minutes more than the resumed run has trained.",
        low=0,
        duration=True,
        resumable=True,
        addable=True,
    )
    eval_every: int = setting(
        500, "Validate and checkpoint every this many steps (and at the end).", low=1, resumable=True
    )
    rng_seed: int = setting(1234, "Seed for initialisation and dropout.", low=0)
    sample_chars: int = setting(
        200,
        "At each validation, print (on stderr) and store in metrics.jsonl a sample of this many "
        "characters, always from the same generator seed; 0: none.",
        low=0,
        resumable=True,
    )

    def __post_init__(self):
        validate(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return _from_dict(cls, d)


@dataclass(frozen=True)
class SampleOptions:
    """How each sample is drawn: the options of `charrnn sample`, of a server's request,
    of sampling.generate and of the samples while training, with their one set of
    defaults and checks (a bad value is a UsageError, exit code 2)."""

    n: int = setting(500, "Characters to generate.", low=0)
    temperature: float = setting(0.8, "Below 1: safer, more repetitive text; above 1: wilder.", low=0, low_open=True)
    top_k: int = setting(
        0,
        "Sample only among the k most likely characters; 0 means all.",
        low=0,
        allowed="0 (all characters) or a positive integer",
    )
    top_p: float = setting(
        1.0,
        "Nucleus sampling: only among the most likely characters whose probabilities sum to at least p.",
        low=0,
        high=1,
        low_open=True,
    )
    greedy: bool = setting(False, "Always take the most likely character (argmax).")
    stop: str | None = setting(None, "Stop once this string has been generated (e.g. '\\n').")

    def __post_init__(self):
        validate(self, UsageError, lambda name: name.replace("_", "-"))  # top-k, as the flag says it


def flag_duration(seconds: float) -> str:
    """600 -> '10m', 90 -> '90s', 5400 -> '1h30m': a duration as --time-limit takes it
    (how --help shows a default)."""
    s = int(seconds)
    if s != seconds or s == 0:
        return f"{seconds:g}"
    h, m, sec = s // 3600, s // 60 % 60, s % 60
    if sec and (h or m) and s < 600:
        return f"{s}s"
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (sec, "s")) if v)


def format_duration(seconds: float) -> str:
    """90.5 -> '1m 30s'; 3725 -> '1h 2m 5s'."""
    s = int(round(seconds))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return " ".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def flag(name: str) -> str:
    """The command-line flag of a ModelConfig or TrainConfig field."""
    for cls in (ModelConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            if f.name == name:
                return f.metadata["flag"] or "--" + name.replace("_", "-")
    raise KeyError(name)


def resumable(name: str) -> bool:
    """May a resumed run change this TrainConfig field?"""
    return any(f.name == name and f.metadata["resumable"] for f in dataclasses.fields(TrainConfig))


def validate(cfg, error: type[Exception] = ConfigError, name=lambda field: field) -> None:
    """Check every field of a config against its metadata; ``error`` names the field,
    spelled ``name(field)``."""
    for f in dataclasses.fields(cfg):
        value, m = getattr(cfg, f.name), f.metadata
        if m["choices"] is not None:
            if value not in m["choices"]:
                raise error(f"unknown {f.name.replace('_', ' ')} {value!r}; choose one of {', '.join(m['choices'])}")
            continue
        if f.type not in ("int", "float"):
            continue
        is_int = f.type == "int"
        if is_int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        low, high = m["low"], m["high"]
        if ok and low is not None:
            ok = value > low if m["low_open"] else value >= low
        if ok and high is not None:
            ok = value < high if m["high_open"] else value <= high
        if not ok:
            raise error(f"{name(f.name)} must be {_allowed(is_int, m)}, got {value!r}")


def _allowed(is_int: bool, m: dict) -> str:
    """What a field's bounds allow, in words: 'a positive integer', 'in [0, 1)'."""
    if m["allowed"] is not None:
        return m["allowed"]
    low, high = m["low"], m["high"]
    if high is None:
        if low is None:
            return "an integer" if is_int else "a finite number"
        if is_int:
            return {0: "0 or a positive integer", 1: "a positive integer"}.get(low, f"an integer of at least {low}")
        if low == 0:
            return "a positive finite number" if m["low_open"] else "0 or a positive finite number"
        return f"a finite number {'above' if m['low_open'] else 'of at least'} {low:g}"
    left, right = "(" if m["low_open"] else "[", ")" if m["high_open"] else "]"
    return f"in {left}{low:g}, {high:g}{right}"


# Fields added after checkpoints were first written, and the value a checkpoint without
# the field was trained with: its run resumes as it would have.
ADDED_FIELDS = {"adam_beta2": 0.999}


def _from_dict(cls, d: dict):
    names = {f.name for f in dataclasses.fields(cls)}
    d = {**{k: v for k, v in ADDED_FIELDS.items() if k in names}, **d}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    return cls(**d)
