"""Training: the state, the loop, validation in bits per char, checkpoints and signals.

The whole training state (parameters, optimizer state, step and epoch counters, data
cursor, carried hidden state, smoothed loss, elapsed time and the generator's state)
lives in ``TrainState`` and goes into every checkpoint, so a resumed run continues
the run it came from bit for bit. No click here: the CLI passes in how to report.
"""

from __future__ import annotations

import functools
import math
import os
import shlex
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from charrnn import checkpoint, data, engines, evaluation, memory, metrics, model, optim, progress, sampling
from charrnn.config import ModelConfig, TrainConfig, format_duration
from charrnn.engines import Engine
from charrnn.errors import CheckpointError, DataError, Interrupted, TrainingDiverged, UsageError
from charrnn.parallel import ShardRunner

SMOOTHING = 0.98  # smoothed_loss = 0.98 * smoothed_loss + 0.02 * loss


@dataclass
class TrainState:
    params: dict
    opt_state: dict
    hidden: list  # per-layer tuples of (B,H), carried across chunks
    rng: np.random.Generator
    step: int = 0  # completed optimizer steps
    epoch: int = 0
    chunk: int = 0  # next chunk of the epoch
    smoothed_loss: float | None = None
    elapsed: float = 0.0  # seconds of training so far, across resumes
    best_val: float | None = None  # best validation loss, nats/char
    last_val: float | None = None
    cold_start: dict | None = None  # evaluation.cold_start at the last validation


@dataclass
class Run:
    """What the trainer needs besides the state: configs, data, where to write."""

    model_cfg: ModelConfig
    train_cfg: TrainConfig
    vocab: data.Vocab
    train_ids: np.ndarray
    val_ids: np.ndarray  # the validation text, after n_context chars of context
    checkpoint_dir: str
    corpus: dict = field(default_factory=dict)
    n_context: int = 1  # leading chars of val_ids that come from the training text
    notes: list = field(default_factory=list)  # things the user should know, reported when training starts
    fresh: bool = False  # a new run: its first checkpoint starts a new metrics.jsonl
    engine: Engine = field(default_factory=engines.get)  # runs the cells (engines/)


def prepare(
    path: str,
    model_cfg: dict,
    train_cfg: TrainConfig,
    checkpoint_dir: str,
    encoding: str = "utf-8",
    vocab: data.Vocab | None = None,
) -> Run:
    """Read the corpus, fix the vocabulary and validate that it can be trained on."""
    text = data.load_corpus(path, encoding, vocab)
    ids, vocab = text.ids, text.vocab
    train_ids, val_ids = data.split(ids, train_cfg.val_frac)
    # one chunk per stream: checked first, it is the usual culprit
    data.require_streams(
        len(train_ids),
        train_cfg.batch_size,
        train_cfg.seq_len,
        f"{path} has {len(ids):,} characters and {len(train_ids):,} are left to train on "
        f"after holding out --val-frac {train_cfg.val_frac}",
    )
    if len(val_ids) < 1:
        raise DataError(
            f"{path} has {len(ids):,} characters, too few to hold out --val-frac "
            f"{train_cfg.val_frac} (that rounds to none); raise --val-frac or use a longer text"
        )
    cfg = ModelConfig(**{**model_cfg, "vocab_size": vocab.size})
    corpus = {  # a text read from a pipe has no path to read it from again
        "path": os.path.abspath(path) if text.rereadable else None,
        "name": data.text_name(path),
        "chars": int(len(ids)),
        "sha256": text.sha256,
        "encoding": encoding,
    }
    context_and_val, n_context = evaluation.with_context(ids, len(train_ids))
    run = Run(cfg, train_cfg, vocab, train_ids, context_and_val, checkpoint_dir, corpus, n_context)
    if vocab.size == 1:  # trains fine (the loss is exactly 0), but the user probably meant another file
        run.notes.append(
            f"note: {path} holds a single distinct character, {vocab.chars!r}; the model can only learn to repeat it"
        )
    elif not vocab.chars.strip():  # spaces, tabs and line ends only: trains, but on no words
        run.notes.append(
            f"note: {path} holds only white space ({data.format_chars(vocab.chars)}); "
            f"the model will only learn to place it"
        )
    return run


def check_memory(run: Run, available: int | None = None) -> None:
    """Refuse, before anything is allocated, a model whose weights or whose training step
    would not fit in the memory this machine has free (memory.available)."""
    available = memory.available() if available is None else available
    if available is None:
        return
    m, t = run.model_cfg, run.train_cfg
    slots = len(optim.SLOTS[t.optimizer])
    weights, step = model.memory_estimate(m, t.batch_size, t.seq_len, True, slots)
    options = f"--hidden-size {m.hidden_size} --layers {m.n_layers}"
    if weights > available:
        raise UsageError(
            f"{options} needs about {memory.gib(weights)} for the weights alone; "
            f"this machine has {memory.gib(available)} free"
        )
    if step > available:
        raise UsageError(
            f"{options} with --batch-size {t.batch_size} and --seq-len {t.seq_len} needs about "
            f"{memory.gib(step)} for one training step (weights, gradients, optimizer state and "
            f"activations); this machine has {memory.gib(available)} free; use a smaller model or "
            f"lower --batch-size or --seq-len"
        )


def new_state(run: Run) -> TrainState:
    rng = np.random.default_rng(run.train_cfg.rng_seed)
    params = model.init_params(run.model_cfg, rng)
    return TrainState(
        params=params,
        opt_state=optim.init_state(run.train_cfg.optimizer, params),
        hidden=model.init_hidden(run.model_cfg, run.train_cfg.batch_size),
        rng=rng,
    )


def state_from_checkpoint(ckpt: checkpoint.Checkpoint) -> TrainState:
    """The training state saved in ``ckpt``. checkpoint.load has checked the values of whatever
    it holds; a model saved without its training state cannot be resumed."""
    p = ckpt.progress
    missing = [k for k in (*checkpoint.PROGRESS_INTS, *checkpoint.PROGRESS_FLOATS) if k not in p]
    missing += [
        what for what, ok in (("rng_state", ckpt.rng_state is not None), ("hidden state", bool(ckpt.hidden))) if not ok
    ]
    if missing:
        raise CheckpointError(
            f"the checkpoint holds a model but not its training state (no {missing[0]}), "
            f"so it cannot be resumed; start a new run"
        )
    rng = np.random.default_rng()
    rng.bit_generator.state = ckpt.rng_state
    hidden = model.unflatten_hidden(ckpt.model_cfg, ckpt.hidden)
    return TrainState(
        params=ckpt.params,
        opt_state=ckpt.opt_state,
        hidden=hidden,
        rng=rng,
        step=p["step"],
        epoch=p["epoch"],
        chunk=p["chunk"],
        smoothed_loss=p["smoothed_loss"],
        elapsed=p["elapsed"],
        best_val=p["best_val"],
        last_val=p["last_val"],
        cold_start=p.get("cold_start"),
    )


def to_checkpoint(run: Run, st: TrainState) -> checkpoint.Checkpoint:
    progress = {
        "step": st.step,
        "epoch": st.epoch,
        "chunk": st.chunk,
        "smoothed_loss": st.smoothed_loss,
        "elapsed": st.elapsed,
        "best_val": st.best_val,
        "last_val": st.last_val,
        "cold_start": st.cold_start,
        "engine": run.engine.name,
    }
    return checkpoint.Checkpoint(
        run.model_cfg,
        run.train_cfg,
        run.vocab,
        st.params,
        st.opt_state,
        model.flatten_hidden(run.model_cfg, st.hidden),
        progress,
        st.rng.bit_generator.state,
        run.corpus,
    )


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
    first also keeps malloc from handing each step's temporaries back to the OS, which
    would fault them in again every step (memory.py)."""
    memory.keep_freed_memory()
    return ShardRunner(batch_size)


DIVERGED_FACTOR = 10.0  # a loss above this many times a uniform guess's (ln V) is divergence
HIGH_FACTOR, HIGH_EVALS = 2.0, 3  # ... and so is twice that at this many validations in a row


def uniform_loss(vocab_size: int) -> float:
    """The loss of a uniform guess over the vocabulary, ln V (ln 2 for one character,
    so that a one-character text still has a divergence threshold)."""
    return math.log(max(vocab_size, 2))


def train_step(run: Run, st: TrainState, streams: data.Streams, stop=None) -> float:
    """One optimizer step on the next chunk. Returns the chunk's loss (nats/char).

    Nothing of ``st`` changes unless the step completes: a step abandoned because
    ``stop`` was set (model.Stopped) or because it diverged leaves the state, the
    generator included, as it was, so a checkpoint of it resumes exactly."""
    cfg = run.train_cfg
    rng_state = st.rng.bit_generator.state
    epoch, chunk, hidden = st.epoch, st.chunk, st.hidden
    if chunk >= streams.chunks_per_epoch:  # a new pass starts from the zero state
        epoch, chunk = epoch + 1, 0
        hidden = model.init_hidden(run.model_cfg, cfg.batch_size)
    elif cfg.reset_prob > 0:  # some streams start this chunk fresh, as sampling does
        fresh = st.rng.random(cfg.batch_size) < cfg.reset_prob
        if fresh.any():
            hidden = [tuple(np.where(fresh[:, None], 0, s).astype(s.dtype) for s in layer) for layer in hidden]
    x, y = streams.chunk(chunk)
    lr = learning_rate(cfg, st)
    try:
        loss, grads, new_hidden = shard_runner(cfg.batch_size).loss_and_grads(
            st.params, run.model_cfg, x, y, hidden, run.model_cfg.dropout, st.rng, stop, run.engine
        )
        loss += 0.0  # a one-character vocabulary gives -0.0, which would print as "-0.0000"
        if not math.isfinite(loss):
            raise TrainingDiverged(f"loss became {loss} at step {st.step + 1} (lr={lr:.3g})")
        if loss > DIVERGED_FACTOR * uniform_loss(run.vocab.size):
            raise TrainingDiverged(
                f"loss became {loss:.4g} at step {st.step + 1}, far above the {uniform_loss(run.vocab.size):.3g} "
                f"nats/char of a uniform guess (lr={lr:.3g})"
            )
        clip = optim.clip_by_global_norm if cfg.clip_mode == "norm" else optim.clip_by_value
        norm = clip(grads, cfg.clip)
        if not math.isfinite(norm):
            raise TrainingDiverged(f"gradient norm became {norm} at step {st.step + 1} (lr={lr:.3g})")
    except (model.Stopped, TrainingDiverged):
        st.rng.bit_generator.state = rng_state
        raise
    scales = model.lr_scales(run.model_cfg)
    optim.update(
        cfg.optimizer,
        st.params,
        grads,
        st.opt_state,
        lr,
        st.step + 1,
        scales,
        beta2=cfg.adam_beta2,
        adam_kernel=run.engine.adam,
    )
    st.epoch, st.chunk, st.hidden = epoch, chunk + 1, new_hidden
    st.step += 1
    st.smoothed_loss = loss if st.smoothed_loss is None else SMOOTHING * st.smoothed_loss + (1 - SMOOTHING) * loss
    return loss


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag, so that a signal never lands in the middle of an
    update and a second Ctrl-C cannot interrupt a save. ``event`` is set too: a step in
    progress gives up at its next layer (model.Stopped), so a slow step stops quickly."""

    def __init__(self):
        self.signum = None
        self.event = threading.Event()
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
        self.event.set()

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


def resume_hint(run: Run, keep_last: int = 0) -> str:
    """The command that continues this run, quoted for a POSIX shell."""
    cmd = ["charrnn", "train", run.corpus.get("path", "FILE"), "--resume", "--checkpoint-dir", run.checkpoint_dir]
    if keep_last:
        cmd += ["--keep-last", str(keep_last)]
    return " ".join(shlex.quote(str(part)) for part in cmd)


class NothingToTrain(UsageError):
    """A resumed run that already reached its limit: nothing would be trained, which a
    script must be able to tell from success (exit code 2)."""


def nothing_left(run: Run, st: TrainState) -> str:
    """Why a resumed run has nothing to train, and how to give it more."""
    cfg = run.train_cfg
    if cfg.max_steps and st.step >= cfg.max_steps:
        reached = f"is at step {st.step:,}, the --max-steps {cfg.max_steps:,} it was given"
        more = "add steps with --max-steps +N (N more steps)"
    else:
        reached = (
            f"has trained for {format_duration(st.elapsed)}, past --time-limit {format_duration(cfg.time_limit)} "
            f"(the run's total training time)"
        )
        more = "add time with --time-limit +20m (20 minutes more)"
    return f"the run in {run.checkpoint_dir} {reached}; nothing was trained; {more}, or give a larger total"


def _what_was_kept(run: Run, saved_step: int | None) -> str:
    latest = os.path.join(run.checkpoint_dir, checkpoint.LATEST)
    if saved_step is not None:
        return f"{latest} (step {saved_step}) was left as it was"
    if os.path.exists(latest):
        return f"{latest} was left as it was"
    return "no checkpoint was written"


STOP_VALIDATION_SECONDS = 2.0  # on the way out after a signal, validate only if it is this quick


def train(
    run: Run,
    st: TrainState,
    report: Callable[[str], None] = lambda s: None,
    progress_bar: bool = False,
    on_step: Callable | None = None,
    keep_last: int = 0,
) -> dict:
    """Train until --max-steps or --time-limit, validating and checkpointing every
    --eval-every steps and at the end. Returns a summary dict.

    SIGINT/SIGTERM end the run within about a layer's time: the step in progress is
    given up, the last completed one is saved, and Interrupted is raised. A loss that
    is not finite, or far above a uniform guess's, raises TrainingDiverged and leaves
    the checkpoints as they were. A run that already reached its limit raises
    NothingToTrain, before anything is trained, validated or written."""
    cfg = run.train_cfg
    streams = data.Streams(run.train_ids, cfg.batch_size, cfg.seq_len)
    chars_per_step = cfg.batch_size * cfg.seq_len
    start_step, t0, start_elapsed = st.step, time.perf_counter(), st.elapsed
    rate, step_seconds = 0.0, 0.0  # chars/s counts training steps only, not validation
    saved: dict = {}
    saved_step = None  # the step of the last checkpoint written by this call
    high = 0  # validations in a row far above a uniform guess
    interval = [0.0, 0, st.step + 1]  # training losses since the last validation: sum, count, first step
    train_mean = None  # their mean at the last validation
    memorising_noted = False

    def done() -> bool:
        return bool((cfg.max_steps and st.step >= cfg.max_steps) or (cfg.time_limit and st.elapsed >= cfg.time_limit))

    if done():
        raise NothingToTrain(nothing_left(run, st))
    for note in run.notes:
        report(note)
    checkpoint.check_writable(run.checkpoint_dir)
    shown = progress.Progress(cfg, progress_bar, report)
    write = shown.write

    def checkpoint_now(deadline: float | None = None, sample: bool = True):
        nonlocal saved, saved_step, high, interval, train_mean, memorising_noted
        for name, p in st.params.items():  # checkpoint.save would refuse them; say what happened instead
            if not np.all(np.isfinite(p)):
                raise TrainingDiverged(f"parameter {name} became NaN or infinite by step {st.step}")
        validating = shown.validating(len(run.val_ids) - run.n_context)
        try:
            losses = evaluation.char_losses(
                st.params, run.model_cfg, run.val_ids, run.n_context, deadline, run.engine, validating
            )
        finally:
            validating.close()
        train_mean = interval[0] / interval[1] if interval[1] else None
        first, interval = interval[2], [0.0, 0, st.step + 1]
        if losses is None:  # stopping, and validating would take too long: keep latest.npz only
            st.elapsed = start_elapsed + time.perf_counter() - t0
            saved.update(save_checkpoints(run, st, False, keep_last))
            saved_step = st.step
            return
        val = float(losses.mean())
        high = high + 1 if val > HIGH_FACTOR * uniform_loss(run.vocab.size) else 0
        if not math.isfinite(val) or val > DIVERGED_FACTOR * uniform_loss(run.vocab.size) or high >= HIGH_EVALS:
            raise TrainingDiverged(
                f"the validation loss is {val:.4g} nats/char at step {st.step}, far above the "
                f"{uniform_loss(run.vocab.size):.3g} of a uniform guess"
            )
        st.last_val = val
        st.cold_start = evaluation.cold_start(
            st.params, run.model_cfg, run.val_ids, run.n_context, losses, engine=run.engine
        )
        improved = st.best_val is None or val < st.best_val
        if improved:
            st.best_val = val
        st.elapsed = start_elapsed + time.perf_counter() - t0  # validating counts, in the checkpoint too
        saved.update(save_checkpoints(run, st, improved, keep_last))
        saved_step = st.step
        record = {
            "step": st.step,
            "epoch": st.epoch,
            "elapsed": round(st.elapsed, 3),
            "lr": learning_rate(cfg, st),
            "train_loss": train_mean,  # the mean since the previous record, so that it compares with val_loss
            "train_from": first,
            "val_loss": val,
            "val_bpc": metrics.bits(val),
            "chars_per_s": round(rate, 1),
            "engine": run.engine.name,
            **(st.cold_start or {}),
        }
        text = progress_sample(run, st) if sample else None
        if text is not None:
            record["sample"] = text
        if run.fresh:  # the old run's metrics go only once this run has a checkpoint to show
            metrics.reset(run.checkpoint_dir)
            run.fresh = False
        metrics.append(run.checkpoint_dir, record)
        steps = f"step {first}" if first == st.step else f"steps {first}-{st.step}"
        write(
            f"step {st.step}  epoch {st.epoch}  "
            + ("" if train_mean is None else f"train {train_mean:.4f} (mean of {steps})  ")
            + f"val {val:.4f} nats/char = {metrics.bits(val):.4f} bits/char"
            f"{'  (best)' if improved else ''}  {rate:,.0f} chars/s"
        )
        if text is not None:
            write(f"sample at step {st.step}:\n{text}")
        if not memorising_noted:
            rising = metrics.memorising(metrics.read(run.checkpoint_dir)[0], run.checkpoint_dir)
            if rising is not None:
                write(f"note: {rising}")
                memorising_noted = True

    try:
        # Overflow on the way to a NaN would print numpy warnings; the guard in train_step
        # reports divergence instead, as one line, before anything non-finite is saved.
        with _StopFlag() as stop, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while not done() and stop.signum is None:
                t_step = time.perf_counter()
                try:
                    loss = train_step(run, st, streams, stop.event)
                except model.Stopped:
                    break
                now = time.perf_counter()
                step_seconds += now - t_step
                st.elapsed = start_elapsed + now - t0
                rate = (st.step - start_step) * chars_per_step / max(step_seconds, 1e-9)
                interval[0] += loss
                interval[1] += 1
                per_step = (now - t0) / (st.step - start_step)  # validations included: for the time left
                shown.update(st.step, st.elapsed, per_step, interval[0] / interval[1], st.last_val, rate)
                if on_step is not None:
                    on_step(st)
                if st.step % cfg.eval_every == 0 and not done() and stop.signum is None:
                    checkpoint_now()
                    st.elapsed = start_elapsed + time.perf_counter() - t0  # validation counts too
            if saved_step != st.step and st.step > start_step:  # not just saved by the periodic checkpoint
                stopping = stop.signum is not None
                checkpoint_now(time.perf_counter() + STOP_VALIDATION_SECONDS if stopping else None, not stopping)
            if stop.signum is not None:
                name = signal.Signals(stop.signum).name
                what = f"saved {saved['latest']}" if saved else f"no step was completed; {_what_was_kept(run, None)}"
                raise Interrupted(
                    f"interrupted by {name} at step {st.step}; {what}; resume with: {resume_hint(run, keep_last)}",
                    stop.signum,
                )
    except TrainingDiverged as exc:
        raise TrainingDiverged(
            f"{exc}; {_what_was_kept(run, saved_step)}; try a lower --lr or a smaller --clip"
        ) from None
    finally:
        shown.close()

    return summary(run, st, saved, rate, train_mean)


def progress_sample(run: Run, st: TrainState) -> str | None:
    """--sample-chars characters from the current weights, from the default seed and a
    generator seeded by --rng-seed alone: the samples of a run differ only because the
    model learned, and drawing them leaves the training state (its generator included)
    untouched."""
    n = run.train_cfg.sample_chars
    if not n:
        return None
    seed = sampling.default_seed(run.vocab)
    chars = next(
        sampling.generate(
            st.params,
            run.model_cfg,
            run.vocab,
            seed,
            n,
            temperature=sampling.TEMPERATURE,
            rng_seed=run.train_cfg.rng_seed,
            engine=run.engine,
        )
    )
    return "".join(chars)


def summary(run: Run, st: TrainState, saved: dict, rate: float, train_mean: float | None = None) -> dict:
    """What a finished run reports; ``train_loss`` is the mean training loss since the
    validation before the last."""
    best = os.path.join(run.checkpoint_dir, checkpoint.BEST)
    return {
        "corpus": run.corpus.get("path"),
        "steps": st.step,
        "epochs": st.epoch,
        "elapsed": round(st.elapsed, 3),
        "chars_per_s": round(rate, 1),
        "train_loss": train_mean,
        "val_loss": st.last_val,
        "best_val_loss": st.best_val,
        "best_val_bpc": metrics.bits(st.best_val),
        "latest_checkpoint": saved.get("latest"),
        "best_checkpoint": best if os.path.exists(best) else None,
    }
