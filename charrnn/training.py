"""Training: the loop, validation in bits per char, checkpoints, resume and signals.

The whole training state (parameters, optimizer state, step and epoch counters, data
cursor, carried hidden state, smoothed loss, elapsed time and the generator's state)
lives in ``TrainState`` and goes into every checkpoint, so a resumed run continues
the run it came from bit for bit. No click here: the CLI passes in how to report.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from charrnn import checkpoint
from charrnn import data
from charrnn import evaluation
from charrnn import model
from charrnn import optim
from charrnn.config import ModelConfig, TrainConfig
from charrnn.memory import keep_freed_memory
from charrnn.parallel import ShardRunner
from charrnn.errors import CheckpointError, ConfigError, DataError, Interrupted, TrainingDiverged, UsageError

SMOOTHING = 0.98      # smoothed_loss = 0.98 * smoothed_loss + 0.02 * loss
METRICS = "metrics.jsonl"


@dataclass
class TrainState:
    params: dict
    opt_state: dict
    hidden: list                      # per-layer tuples of (B,H), carried across chunks
    rng: np.random.Generator
    step: int = 0                     # completed optimizer steps
    epoch: int = 0
    chunk: int = 0                    # next chunk of the epoch
    smoothed_loss: float | None = None
    elapsed: float = 0.0              # seconds of training so far, across resumes
    best_val: float | None = None     # best validation loss, nats/char
    last_val: float | None = None


@dataclass
class Run:
    """What the trainer needs besides the state: configs, data, where to write."""

    model_cfg: ModelConfig
    train_cfg: TrainConfig
    vocab: data.Vocab
    train_ids: np.ndarray
    val_ids: np.ndarray               # the validation text, after n_context chars of context
    checkpoint_dir: str
    corpus: dict = field(default_factory=dict)
    n_context: int = 1                # leading chars of val_ids that come from the training text
    notes: list = field(default_factory=list)  # things the user should know, reported when training starts


def prepare(path: str, model_cfg: dict, train_cfg: TrainConfig, checkpoint_dir: str,
            encoding: str = "utf-8", vocab: data.Vocab | None = None) -> Run:
    """Read the corpus, fix the vocabulary and validate that it can be trained on."""
    ids, vocab = data.load_corpus(path, encoding, vocab)
    train_ids, val_ids = data.split(ids, train_cfg.val_frac)
    B, T = train_cfg.batch_size, train_cfg.seq_len
    if len(train_ids) < B * (T + 1):  # one chunk per stream: checked first, it is the usual culprit
        raise DataError(
            f"{path} has {len(ids):,} characters and {len(train_ids):,} are left to train on after "
            f"holding out --val-frac {train_cfg.val_frac}, but --batch-size {B} and --seq-len {T} need "
            f"at least {B * (T + 1):,} (batch_size x (seq_len + 1)); lower --batch-size or --seq-len, "
            f"or use a longer text")
    if len(val_ids) < 1:
        raise DataError(f"{path} has {len(ids):,} characters, too few to hold out --val-frac "
                        f"{train_cfg.val_frac} (that rounds to none); raise --val-frac or use a longer text")
    cfg = ModelConfig(**{**model_cfg, "vocab_size": vocab.size})
    corpus = {"path": os.path.abspath(path), "name": os.path.basename(path), "chars": int(len(ids)),
              "sha256": data.file_sha256(path), "encoding": encoding}
    n_context = min(len(train_ids), evaluation.EVAL_WARMUP + 1)
    context_and_val = ids[len(train_ids) - n_context:]
    run = Run(cfg, train_cfg, vocab, train_ids, context_and_val, checkpoint_dir, corpus, n_context)
    if vocab.size == 1:  # trains fine (the loss is exactly 0), but the user probably meant another file
        run.notes.append(f"note: {path} holds a single distinct character, {vocab.chars!r}; "
                         f"the model can only learn to repeat it")
    return run


def new_state(run: Run) -> TrainState:
    rng = np.random.default_rng(run.train_cfg.rng_seed)
    params = model.init_params(run.model_cfg, rng)
    return TrainState(params=params, opt_state=optim.init_state(run.train_cfg.optimizer, params),
                      hidden=model.init_hidden(run.model_cfg, run.train_cfg.batch_size), rng=rng)


def state_from_checkpoint(ckpt: checkpoint.Checkpoint) -> TrainState:
    """The training state saved in ``ckpt``. checkpoint.load has checked the values of whatever
    it holds; a model saved without its training state cannot be resumed."""
    p = ckpt.progress
    missing = [k for k in (*checkpoint.PROGRESS_INTS, *checkpoint.PROGRESS_FLOATS) if k not in p]
    missing += [what for what, ok in (("rng_state", ckpt.rng_state is not None), ("hidden state", bool(ckpt.hidden)))
                if not ok]
    if missing:
        raise CheckpointError(f"the checkpoint holds a model but not its training state (no {missing[0]}), "
                              f"so it cannot be resumed; start a new run")
    rng = np.random.default_rng()
    rng.bit_generator.state = ckpt.rng_state
    hidden = model.unflatten_hidden(ckpt.model_cfg, ckpt.hidden)
    return TrainState(params=ckpt.params, opt_state=ckpt.opt_state, hidden=hidden, rng=rng,
                      step=p["step"], epoch=p["epoch"], chunk=p["chunk"],
                      smoothed_loss=p["smoothed_loss"], elapsed=p["elapsed"],
                      best_val=p["best_val"], last_val=p["last_val"])


def to_checkpoint(run: Run, st: TrainState) -> checkpoint.Checkpoint:
    progress = {"step": st.step, "epoch": st.epoch, "chunk": st.chunk, "smoothed_loss": st.smoothed_loss,
                "elapsed": st.elapsed, "best_val": st.best_val, "last_val": st.last_val}
    return checkpoint.Checkpoint(run.model_cfg, run.train_cfg, run.vocab, st.params, st.opt_state,
                        model.flatten_hidden(run.model_cfg, st.hidden), progress,
                        st.rng.bit_generator.state, run.corpus)


# ------------------------------------------------------------------------ resuming

# Fields a resumed run may change: when to stop and how often to report.
RESUMABLE_CHANGES = {"max_steps", "time_limit", "eval_every"}
FLAGS = {"n_layers": "--layers"}  # config fields whose command-line flag has another name


def _flag(key: str) -> str:
    return FLAGS.get(key, "--" + key.replace("_", "-"))


def _contradiction(key: str, value, saved) -> ConfigError:
    return ConfigError(f"{_flag(key)} {value} contradicts the checkpoint, which was trained with {_flag(key)} "
                       f"{saved}; drop {_flag(key)} to continue that run, or start a new one in another "
                       f"--checkpoint-dir")


def resume_source(path: str) -> str:
    """The checkpoint that --resume continues: a file, or a run directory's latest.npz."""
    if os.path.isdir(path):
        latest = os.path.join(path, checkpoint.LATEST)
        if os.path.isfile(latest):
            return latest
        raise CheckpointError(f"nothing to resume: {path} holds no {checkpoint.LATEST}; drop --resume to start a new run"
                              + (f", or resume from {os.path.join(path, checkpoint.BEST)}"
                                 if os.path.isfile(os.path.join(path, checkpoint.BEST)) else ""))
    if not os.path.exists(path):
        raise CheckpointError(f"nothing to resume: no checkpoint at {path}; drop --resume to start a new run")
    return path


def check_fresh(directory: str) -> None:
    """A new run writes latest.npz and best.npz: refuse to overwrite another run's, which
    may hold hours of training, unless asked to."""
    for name in (checkpoint.LATEST, checkpoint.BEST):
        if os.path.exists(os.path.join(directory, name)):
            raise UsageError(f"{directory} already holds a checkpoint ({name}); continue that run with "
                             f"--resume, start over with --overwrite, or choose another --checkpoint-dir")


def check_resume(ckpt: checkpoint.Checkpoint, model_opts: dict, train_opts: dict, vocab: data.Vocab) -> TrainConfig:
    """Compare the options the user gave explicitly with the checkpoint's; return the
    train config to continue with. Contradictions name the field."""
    if vocab.chars != ckpt.vocab.chars:
        added = sorted(set(vocab.chars) - set(ckpt.vocab.chars))
        removed = sorted(set(ckpt.vocab.chars) - set(vocab.chars))
        detail = "; ".join(s for s in (added and f"new characters {data.format_chars(added, 12)}",
                                       removed and f"missing characters {data.format_chars(removed, 12)}") if s)
        raise ConfigError(f"vocabulary mismatch: the text's vocabulary differs from the checkpoint's ({detail})")
    saved_model = ckpt.model_cfg.to_dict()
    for key, value in model_opts.items():
        if saved_model[key] != value:
            raise _contradiction(key, value, saved_model[key])
    saved = ckpt.train_cfg.to_dict()
    for key, value in train_opts.items():
        if key not in RESUMABLE_CHANGES and saved[key] != value:
            raise _contradiction(key, value, saved[key])
    saved.update({k: v for k, v in train_opts.items() if k in RESUMABLE_CHANGES})
    return TrainConfig.from_dict(saved)


def resume(path: str, ckpt: checkpoint.Checkpoint, checkpoint_dir: str, encoding: str,
           model_opts: dict, train_opts: dict) -> tuple[Run, TrainState]:
    """Set up a run that continues ``ckpt`` on the text at ``path``. The options are only
    those the user gave explicitly; they must agree with the checkpoint. ``encoding``
    None means the one the checkpoint's text was read with."""
    saved_encoding = ckpt.corpus.get("encoding")
    encoding = encoding or (saved_encoding if isinstance(saved_encoding, str) else "utf-8")
    state = state_from_checkpoint(ckpt)  # before reading the text: a model-only file fails fast
    run = prepare(path, ckpt.model_cfg.to_dict(), ckpt.train_cfg, checkpoint_dir, encoding)
    run.train_cfg = check_resume(ckpt, model_opts, train_opts, run.vocab)
    run.model_cfg = ckpt.model_cfg
    if ckpt.corpus.get("sha256") not in (None, run.corpus["sha256"]):
        run.notes.append(f"note: {path} differs from the text this checkpoint was trained on "
                         f"({ckpt.corpus.get('name', '?')}); it has the same characters, so training goes on")
    return run, state


# ---------------------------------------------------------------------- the loop

def learning_rate(cfg: TrainConfig, st: TrainState) -> float:
    """Cosine decay from lr to lr * min_lr_frac over the run. The run's length is known
    from --max-steps or --time-limit, whichever is reached first."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    fractions = []
    if cfg.max_steps:
        fractions.append(st.step / cfg.max_steps)
    if cfg.time_limit:
        fractions.append(st.elapsed / cfg.time_limit)
    progress = min(1.0, max(fractions, default=0.0))
    floor = cfg.lr * cfg.min_lr_frac
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


@functools.lru_cache(maxsize=4)
def shard_runner(batch_size: int) -> ShardRunner:
    """One runner (and thread pool) per batch size for the life of the process. The
    first also keeps malloc from handing each step's temporaries back to the OS
    (memory.py: a third of the step went to page faults)."""
    keep_freed_memory()
    return ShardRunner(batch_size)


def train_step(run: Run, st: TrainState, streams: data.Streams) -> float:
    """One optimizer step on the next chunk. Returns the chunk's loss (nats/char)."""
    cfg = run.train_cfg
    if st.chunk >= streams.chunks_per_epoch:
        st.epoch += 1
        st.chunk = 0
        st.hidden = model.init_hidden(run.model_cfg, cfg.batch_size)  # a new pass starts from zero state
    x, y = streams.chunk(st.chunk)
    loss, grads, hidden = shard_runner(cfg.batch_size).loss_and_grads(
        st.params, run.model_cfg, x, y, st.hidden, run.model_cfg.dropout, st.rng)
    loss += 0.0  # a one-character vocabulary gives -0.0, which would print as "-0.0000"
    if not math.isfinite(loss):
        raise TrainingDiverged(f"loss became {loss} at step {st.step + 1} (lr={learning_rate(cfg, st):.3g})")
    norm = optim.clip_by_global_norm(grads, cfg.clip)
    if not math.isfinite(norm):
        raise TrainingDiverged(f"gradient norm became {norm} at step {st.step + 1} (lr={learning_rate(cfg, st):.3g})")
    optim.update(cfg.optimizer, st.params, grads, st.opt_state, learning_rate(cfg, st), st.step + 1)
    st.hidden = hidden
    st.step += 1
    st.chunk += 1
    st.smoothed_loss = loss if st.smoothed_loss is None else SMOOTHING * st.smoothed_loss + (1 - SMOOTHING) * loss
    return loss


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so that a signal never
    lands in the middle of an update and a second Ctrl-C cannot interrupt a save."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals stay as they were
                pass
        return self

    def _handle(self, signum, frame):
        self.signum = self.signum or signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def save_checkpoints(run: Run, st: TrainState, improved: bool, keep_last: int = 0) -> dict:
    """latest.npz always, best.npz when validation improved, and with ``keep_last`` a
    step-numbered copy, pruned to the newest ``keep_last`` once the new one is in place."""
    ckpt = to_checkpoint(run, st)
    latest = os.path.join(run.checkpoint_dir, checkpoint.LATEST)
    checkpoint.save(ckpt, latest)
    paths = {"latest": latest}
    if improved:
        best = os.path.join(run.checkpoint_dir, checkpoint.BEST)
        checkpoint.save(ckpt, best)
        paths["best"] = best
    if keep_last:
        paths["step"] = checkpoint.step_path(run.checkpoint_dir, st.step)
        checkpoint.save(ckpt, paths["step"])
        checkpoint.prune_steps(run.checkpoint_dir, keep_last)
    return paths


def reset_metrics(run: Run) -> None:
    """A new run (not a resumed one) starts its own metrics.jsonl, so that plots of a
    directory trained again with --overwrite do not mix two runs."""
    try:
        os.unlink(os.path.join(run.checkpoint_dir, METRICS))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise CheckpointError(f"cannot reset {METRICS} in {run.checkpoint_dir}: {exc.strerror or exc}") from None


def append_metrics(run: Run, record: dict) -> None:
    path = os.path.join(run.checkpoint_dir, METRICS)
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as exc:  # the checkpoint is already saved; say so rather than a traceback
        raise CheckpointError(f"cannot append to {path}: {exc.strerror or exc} (the checkpoint "
                              f"of step {record.get('step')} was saved)") from None


def resume_hint(run: Run, keep_last: int = 0) -> str:
    """The command that continues this run, quoted for a POSIX shell."""
    cmd = ["charrnn", "train", run.corpus.get("path", "FILE"), "--resume", "--checkpoint-dir", run.checkpoint_dir]
    if keep_last:
        cmd += ["--keep-last", str(keep_last)]
    return " ".join(shlex.quote(str(part)) for part in cmd)


def _what_was_kept(run: Run, saved_step: int | None) -> str:
    latest = os.path.join(run.checkpoint_dir, checkpoint.LATEST)
    if saved_step is not None:
        return f"{latest} (step {saved_step}) was left as it was"
    if os.path.exists(latest):
        return f"{latest} was left as it was"
    return "no checkpoint was written"


def train(run: Run, st: TrainState, report: Callable[[str], None] = lambda s: None,
          progress_bar: bool = False, on_step: Callable | None = None, keep_last: int = 0) -> dict:
    """Train until --max-steps or --time-limit, validating and checkpointing every
    --eval-every steps and at the end. Returns a summary dict.

    SIGINT/SIGTERM end the run after the current step with a checkpoint of it and
    raise Interrupted; a NaN or infinite loss raises TrainingDiverged and leaves the
    checkpoints as they were."""
    from tqdm import tqdm

    cfg = run.train_cfg
    streams = data.Streams(run.train_ids, cfg.batch_size, cfg.seq_len)
    chars_per_step = cfg.batch_size * cfg.seq_len
    checkpoint.check_writable(run.checkpoint_dir)
    bar = tqdm(total=cfg.max_steps or None, initial=st.step, disable=not progress_bar,
               unit="step", dynamic_ncols=True, leave=True)
    write = bar.write if progress_bar else report
    start_step, t0, start_elapsed = st.step, time.perf_counter(), st.elapsed
    rate, step_seconds = 0.0, 0.0  # chars/s counts training steps only, not validation
    saved: dict = {}
    saved_step = None  # the step of the last checkpoint written by this call

    def done() -> bool:
        return bool((cfg.max_steps and st.step >= cfg.max_steps)
                    or (cfg.time_limit and st.elapsed >= cfg.time_limit))

    for note in run.notes:
        write(note)
    if done():
        limit = f"--max-steps {cfg.max_steps}" if cfg.max_steps and st.step >= cfg.max_steps \
            else f"--time-limit {cfg.time_limit:g}s"
        write(f"note: this run already reached {limit}; pass a larger one to train further")

    def checkpoint_now():
        nonlocal saved, saved_step
        for name, p in st.params.items():  # checkpoint.save would refuse them; say what happened instead
            if not np.all(np.isfinite(p)):
                raise TrainingDiverged(f"parameter {name} became NaN or infinite by step {st.step}")
        total, count = evaluation.evaluate(st.params, run.model_cfg, run.val_ids, run.n_context)
        val = total / max(count, 1)
        st.last_val = val
        improved = st.best_val is None or val < st.best_val
        if improved:
            st.best_val = val
        saved.update(save_checkpoints(run, st, improved, keep_last))
        saved_step = st.step
        record = {"step": st.step, "epoch": st.epoch, "elapsed": round(st.elapsed, 3),
                  "lr": learning_rate(cfg, st), "train_loss": st.smoothed_loss,
                  "val_loss": val, "val_bpc": val / model.LN2, "chars_per_s": round(rate, 1)}
        append_metrics(run, record)
        write(f"step {st.step}  epoch {st.epoch}  train {st.smoothed_loss:.4f}  "
              f"val {val:.4f} nats/char = {val / model.LN2:.4f} bits/char"
              f"{'  (best)' if improved else ''}  {rate:,.0f} chars/s")

    try:
        # Overflow on the way to a NaN would print numpy warnings; the guard in train_step
        # reports divergence instead, as one line, before anything non-finite is saved.
        with _StopFlag() as stop, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while not done() and stop.signum is None:
                t_step = time.perf_counter()
                train_step(run, st, streams)
                now = time.perf_counter()
                step_seconds += now - t_step
                st.elapsed = start_elapsed + now - t0
                rate = (st.step - start_step) * chars_per_step / max(step_seconds, 1e-9)
                bar.update(1)
                bar.set_postfix_str(f"loss {st.smoothed_loss:.3f} val "
                                    f"{'-' if st.last_val is None else f'{st.last_val:.3f}'} "
                                    f"{rate:,.0f} chars/s", refresh=False)
                if on_step is not None:
                    on_step(st)
                if st.step % cfg.eval_every == 0 and not done():
                    checkpoint_now()
                    st.elapsed = start_elapsed + time.perf_counter() - t0  # validation counts too
            if saved_step != st.step:  # not just saved by the periodic checkpoint
                checkpoint_now()
            if stop.signum is not None:
                name = signal.Signals(stop.signum).name
                raise Interrupted(f"interrupted by {name} at step {st.step}; saved {saved['latest']}; "
                                  f"resume with: {resume_hint(run, keep_last)}", stop.signum)
    except TrainingDiverged as exc:
        raise TrainingDiverged(f"{exc}; {_what_was_kept(run, saved_step)}; "
                               f"try a lower --lr or a smaller --clip") from None
    finally:
        bar.close()

    return summary(run, st, saved, rate)


def summary(run: Run, st: TrainState, saved: dict, rate: float) -> dict:
    best = os.path.join(run.checkpoint_dir, checkpoint.BEST)
    return {
        "corpus": run.corpus.get("path"), "steps": st.step, "epochs": st.epoch,
        "elapsed": round(st.elapsed, 3), "chars_per_s": round(rate, 1),
        "train_loss": st.smoothed_loss, "val_loss": st.last_val,
        "best_val_loss": st.best_val, "best_val_bpc": None if st.best_val is None else st.best_val / model.LN2,
        "latest_checkpoint": saved.get("latest"), "best_checkpoint": best if os.path.exists(best) else None,
    }
