"""Training: the state, the loop, validation in bits per char, checkpoints and signals.

The whole training state (parameters, optimizer state, step and epoch counters, data
cursor, carried hidden state, smoothed loss, elapsed time and the generator's state)
lives in ``TrainState`` and goes into every checkpoint, so a resumed run continues
the run it came from bit for bit. No click here: the CLI passes in how to report.

On several MPI ranks (distributed.py) every rank runs this same loop on its part of the
batch: the gradient, the loss, the clock and a stop signal are agreed at every step, so
the ranks take the same steps and stop at the same one; rank 0 alone writes.
"""

from __future__ import annotations

import math
import os
import signal
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from charrnn import (
    checkpoint,
    cold_start,
    data,
    distributed,
    engines,
    evaluation,
    metrics,
    model,
    optim,
    parallel,
    process,
    progress,
    resume,
    rundir,
    sampling,
)
from charrnn.config import ModelConfig, SampleOptions, TrainConfig, format_duration
from charrnn.engines import Engine
from charrnn.errors import CheckpointError, DataError, Interrupted, TrainingDiverged, UsageError
from charrnn.signals import StopFlag

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
    cold_start: dict | None = None  # cold_start.measure at the last validation


@dataclass(frozen=True)
class Run:
    """What the trainer needs besides the state: configs, data, where to write. Built
    once (``prepare``), from configs already settled, and never changed afterwards."""

    model_cfg: ModelConfig
    train_cfg: TrainConfig
    vocab: data.Vocab
    train_ids: np.ndarray
    val_ids: np.ndarray  # the validation text, after n_context chars of context
    checkpoint_dir: str
    corpus: dict = field(default_factory=dict)
    n_context: int = 1  # leading chars of val_ids that come from the training text
    notes: tuple = ()  # things the user should know, reported when training starts
    fresh: bool = False  # a new run: its first checkpoint starts a new metrics.jsonl
    engine: Engine = field(default_factory=engines.get)  # runs the cells (engines/)
    world: distributed.World = field(default_factory=distributed.World)  # the processes training it together


def check_text(text: data.Corpus, path: str, train_cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The text's training and validation ids, once it is known that it can be trained
    on with these batch and chunk sizes (before a model is chosen: it fails fast)."""
    ids = text.ids
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
    return train_ids, val_ids


def prepare(
    text: data.Corpus,
    path: str,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    checkpoint_dir: str,
    *,
    encoding: str = "utf-8",
    engine: Engine | None = None,
    fresh: bool = False,
    notes: tuple = (),
    corpus: dict | None = None,
    world: distributed.World | None = None,
) -> Run:
    """The run that trains ``model_cfg`` with ``train_cfg`` on ``text`` (data.load_corpus
    of ``path``), writing to ``checkpoint_dir``. ``corpus`` adds to what the checkpoint
    records of the text (a joined text's sources)."""
    if model_cfg.vocab_size != text.vocab.size:
        raise ValueError(f"the model's vocabulary is {model_cfg.vocab_size}, the text's {text.vocab.size}")
    train_ids, _ = check_text(text, path, train_cfg)
    world = world or distributed.World()
    if train_cfg.batch_size < world.size:
        raise UsageError(
            f"a batch of {train_cfg.batch_size} stream{'s' if train_cfg.batch_size != 1 else ''} cannot be shared by "
            f"{world.size} MPI ranks, "
            f"each needs one or more; start fewer ranks or a run with --batch-size {world.size} or more"
        )
    vocab = text.vocab
    record = {  # a text read from a pipe has no path to read it from again
        "path": os.path.abspath(path) if text.rereadable else None,
        "name": data.text_name(path),
        "chars": int(len(text.ids)),
        "sha256": text.sha256,
        "encoding": encoding,
        **(corpus or {}),
    }
    context_and_val, n_context = evaluation.with_context(text.ids, len(train_ids))
    notes = list(notes)
    if vocab.size == 1:  # trains fine (the loss is exactly 0), but the user probably meant another file
        notes.append(
            f"note: {path} holds a single distinct character, {vocab.chars!r}; the model can only learn to repeat it"
        )
    elif not vocab.chars.strip():  # spaces, tabs and line ends only: trains, but on no words
        notes.append(
            f"note: {path} holds only white space ({data.format_chars(vocab.chars)}); "
            f"the model will only learn to place it"
        )
    return Run(
        model_cfg,
        train_cfg,
        vocab,
        train_ids,
        context_and_val,
        checkpoint_dir,
        record,
        n_context,
        tuple(notes),
        fresh,
        engines.get() if engine is None else engine,
        world,
    )


def new_state(run: Run, elapsed: float = 0.0) -> TrainState:
    """A new run's state; ``elapsed`` counts what its budget already spent (the probe)."""
    rng = np.random.default_rng(run.train_cfg.rng_seed)
    params = model.init_params(run.model_cfg, rng)
    return TrainState(
        params=params,
        opt_state=optim.init_state(run.train_cfg.optimizer, params),
        hidden=model.init_hidden(run.model_cfg, run.train_cfg.batch_size),
        rng=rng,
        elapsed=elapsed,
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


def to_checkpoint(run: Run, st: TrainState, hidden: list | None = None) -> checkpoint.Checkpoint:
    """The checkpoint of ``st``; ``hidden`` is every stream's state when ``st`` holds only
    a rank's part of it current (whole_state)."""
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
        "ranks": run.world.size,  # MPI processes that trained it together
    }
    return checkpoint.Checkpoint(
        run.model_cfg,
        run.train_cfg,
        run.vocab,
        st.params,
        st.opt_state,
        model.flatten_hidden(run.model_cfg, st.hidden if hidden is None else hidden),
        progress,
        st.rng.bit_generator.state,
        run.corpus,
    )


# ---------------------------------------------------------------------- the loop


def learning_rate(cfg: TrainConfig, st: TrainState) -> float:
    """Cosine decay from lr to lr * min_lr_frac over the run. The run's length is known
    from --max-steps or --time-limit, whichever is reached first (progress.fraction)."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    done = progress.fraction(cfg, st.step, st.elapsed) or 0.0
    floor = cfg.lr * cfg.min_lr_frac
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * done))


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
        loss, grads, new_hidden = step_gradient(run, st, x, y, hidden, stop)
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


def step_gradient(run: Run, st: TrainState, x, y, hidden, stop=None):
    """The batch's mean loss and gradient at the current weights and its new hidden state.
    On several ranks each computes its part of the streams and the parts' shares are
    summed (one Allreduce for the gradient); a rank never gives a step up half-way (the
    others would wait for it), so ``stop`` is only for a process of its own."""
    world, B = run.world, run.train_cfg.batch_size
    if world.size == 1:
        return parallel.runner(B).loss_and_grads(
            st.params, run.model_cfg, x, y, hidden, run.model_cfg.dropout, st.rng, stop, run.engine
        )
    lo, hi = part = world.streams(B)
    loss, grads, mine = parallel.runner(B, part).loss_and_grads(
        st.params, run.model_cfg, x, y, hidden, run.model_cfg.dropout, st.rng, None, run.engine
    )
    world.sum_arrays(list(grads.values()))
    loss = float(world.sum_(np.array([loss], dtype=np.float64))[0])
    # every rank keeps all B streams' state, its own part current (gathered for checkpoints)
    new_hidden = [
        tuple(np.concatenate([s[:lo], m, s[hi:]]) for s, m in zip(layer, mine_layer))
        for layer, mine_layer in zip(hidden, mine)
    ]
    return loss, grads, new_hidden


def agreed(run: Run, elapsed: float, signum: int | None) -> tuple[float, int | None]:
    """The run's clock and stop signal as every rank takes them: the latest clock of all
    (the learning rate and the time limit depend on it) and any rank's signal."""
    if run.world.size == 1:
        return elapsed, signum
    both = run.world.max_(np.array([elapsed, signum or 0], dtype=np.float64))
    return float(both[0]), int(both[1]) or None


def whole_state(run: Run, st: TrainState) -> list | None:
    """Every stream's hidden state, on rank 0 (None on the others): each rank holds its
    own part of the streams current."""
    if run.world.size == 1:
        return st.hidden
    lo, hi = run.world.streams(run.train_cfg.batch_size)
    parts = run.world.gather([tuple(s[lo:hi] for s in layer) for layer in st.hidden])
    if parts is None:
        return None
    return [tuple(np.concatenate(pieces) for pieces in zip(*layers)) for layers in zip(*parts)]


def save_checkpoints(run: Run, st: TrainState, improved: bool, keep_last: int = 0, hidden=None) -> dict:
    """latest.npz always, best.npz when validation improved, and with ``keep_last`` a
    step-numbered copy, pruned to the newest ``keep_last`` once the new one is in place."""
    ckpt = to_checkpoint(run, st, hidden)
    latest = os.path.join(run.checkpoint_dir, rundir.LATEST)
    checkpoint.save(ckpt, latest)
    paths = {"latest": latest}
    if improved:
        best = os.path.join(run.checkpoint_dir, rundir.BEST)
        checkpoint.save(ckpt, best)
        paths["best"] = best
    if keep_last:
        paths["step"] = rundir.step_path(run.checkpoint_dir, st.step)
        checkpoint.save(ckpt, paths["step"])
        rundir.prune_steps(run.checkpoint_dir, keep_last)
    return paths


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
    latest = os.path.join(run.checkpoint_dir, rundir.LATEST)
    if saved_step is not None:
        return f"{latest} (step {saved_step}) was left as it was"
    if os.path.exists(latest):
        return f"{latest} was left as it was"
    return "no checkpoint was written"


STOP_VALIDATION_SECONDS = 2.0  # on the way out after a signal, validate only if it is this quick


@dataclass
class Tally:
    """What one call of ``train`` keeps beside the state that goes into checkpoints."""

    start_step: int
    start_elapsed: float
    started: float = field(default_factory=time.perf_counter)  # time.perf_counter() at the start
    step_seconds: float = 0.0  # in training steps only, for chars/s (validation excluded)
    rate: float = 0.0  # chars/s
    loss_sum: float = 0.0  # training losses since the last validation: their sum and count
    loss_count: int = 0
    first: int = 0  # the step the first of them was
    train_mean: float | None = None  # their mean at the last validation
    saved: dict = field(default_factory=dict)  # checkpoint paths written
    saved_step: int | None = None  # the step of the last checkpoint written
    high: int = 0  # validations in a row far above a uniform guess
    metrics_started: bool = False  # this run's metrics.jsonl has its first line
    memorising_noted: bool = False

    def elapsed(self) -> float:
        """The run's training time so far, resumes included."""
        return self.start_elapsed + time.perf_counter() - self.started


@dataclass(frozen=True)
class Validation:
    loss: float  # mean nats/char on the held-out text
    improved: bool
    cold_start: dict | None
    train_mean: float | None  # the mean training loss since the validation before
    first: int  # the step where that mean starts


def validate(run: Run, st: TrainState, tally: Tally, shown: progress.Progress, deadline=None) -> Validation | None:
    """Score the held-out text; None when ``deadline`` (time.perf_counter()) passed first.
    Refuses weights or a loss that show the run diverged."""
    for name, p in st.params.items():  # checkpoint.save would refuse them; say what happened instead
        if not np.all(np.isfinite(p)):
            raise TrainingDiverged(f"parameter {name} became NaN or infinite by step {st.step}")
    losses = validation_losses(run, st, shown, deadline)
    train_mean = tally.loss_sum / tally.loss_count if tally.loss_count else None
    first, tally.first, tally.loss_sum, tally.loss_count = tally.first, st.step + 1, 0.0, 0
    if losses is None:
        return None
    val = float(losses.mean())
    uniform = uniform_loss(run.vocab.size)
    tally.high = tally.high + 1 if val > HIGH_FACTOR * uniform else 0
    if not math.isfinite(val) or val > DIVERGED_FACTOR * uniform or tally.high >= HIGH_EVALS:
        raise TrainingDiverged(
            f"the validation loss is {val:.4g} nats/char at step {st.step}, far above the "
            f"{uniform:.3g} of a uniform guess"
        )
    cold = None
    if run.world.root:  # it goes into rank 0's checkpoint and metrics only
        cold = cold_start.measure(st.params, run.model_cfg, run.val_ids, run.n_context, losses, engine=run.engine)
    return Validation(val, st.best_val is None or val < st.best_val, cold, train_mean, first)


def validation_losses(run: Run, st: TrainState, shown: progress.Progress, deadline=None):
    """char_losses of the held-out text (None past ``deadline``), each rank scoring its
    part of the scoring streams; the parts are summed in one message with the count of
    ranks that ran out of time, so that all ranks return the same."""
    world = run.world
    total = len(run.val_ids) - run.n_context
    validating = shown.validating(total)
    try:
        losses = evaluation.char_losses(
            st.params,
            run.model_cfg,
            run.val_ids,
            run.n_context,
            deadline,
            run.engine,
            lambda done: validating(min(done * world.size, total)),  # rank 0 shows its part's pace
            part=(world.rank, world.size),
        )
    finally:
        validating.close()
    if world.size == 1:
        return losses
    both = np.zeros(total + 1)
    if losses is None:
        both[-1] = 1
    else:
        both[:-1] = losses
    world.sum_(both)
    return None if both[-1] else both[:-1]


def same_weights(run: Run, st: TrainState) -> None:
    """Refuse to go on if the ranks' weights have come apart (they take the same steps
    from the same sums, so they never should): checked at every validation."""
    if run.world.size == 1:
        return
    digest = 0
    for name in sorted(st.params):
        digest = zlib.crc32(np.ascontiguousarray(st.params[name]).data, digest)
    if len(set(run.world.allgather(digest))) > 1:
        raise TrainingDiverged(
            f"the ranks' weights differ at step {st.step}: the MPI library's sums are not the same on every rank"
        )


def record(run: Run, st: TrainState, tally: Tally, v: Validation | None, write, keep_last: int, sample: bool):
    """Write what a validation ``v`` gives (None: none could be made; latest.npz only):
    the checkpoints, a metrics.jsonl line, the log line and a sample (rank 0 alone)."""
    if v is not None:
        st.last_val, st.cold_start, tally.train_mean = v.loss, v.cold_start, v.train_mean
        if v.improved:
            st.best_val = v.loss
    same_weights(run, st)
    hidden = whole_state(run, st)
    st.elapsed, _ = agreed(run, tally.elapsed(), None)  # validating counts, in the checkpoint too
    with run.world.together():  # a save that fails on rank 0 stops every rank
        if run.world.root:
            tally.saved.update(save_checkpoints(run, st, v is not None and v.improved, keep_last, hidden))
    tally.saved_step = st.step
    if v is None or not run.world.root:
        return
    line = {
        "step": st.step,
        "epoch": st.epoch,
        "elapsed": round(st.elapsed, 3),
        "lr": learning_rate(run.train_cfg, st),
        "train_loss": v.train_mean,  # the mean since the previous line, so that it compares with val_loss
        "train_from": v.first,
        "val_loss": v.loss,
        "val_bpc": metrics.bits(v.loss),
        "chars_per_s": round(tally.rate, 1),
        "engine": run.engine.name,
        "ranks": run.world.size,
        **(v.cold_start or {}),
    }
    text = progress_sample(run, st) if sample else None
    if text is not None:
        line["sample"] = text
    if run.fresh and not tally.metrics_started:  # the old run's metrics go once this run has a checkpoint
        metrics.reset(run.checkpoint_dir)
    tally.metrics_started = True
    metrics.append(run.checkpoint_dir, line)
    steps = f"step {v.first}" if v.first == st.step else f"steps {v.first}-{st.step}"
    write(
        f"step {st.step}  epoch {st.epoch}  "
        + ("" if v.train_mean is None else f"train {v.train_mean:.4f} (mean of {steps})  ")
        + f"val {v.loss:.4f} nats/char = {metrics.bits(v.loss):.4f} bits/char"
        f"{'  (best)' if v.improved else ''}  {tally.rate:,.0f} chars/s"
    )
    if text is not None:
        write(f"sample at step {st.step}:\n{text}")
    if not tally.memorising_noted:
        rising = metrics.memorising(metrics.read(run.checkpoint_dir)[0], run.checkpoint_dir)
        if rising is not None:
            write(f"note: {rising}")
            tally.memorising_noted = True


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
    done = lambda: bool(  # noqa: E731
        (cfg.max_steps and st.step >= cfg.max_steps) or (cfg.time_limit and st.elapsed >= cfg.time_limit)
    )
    if done():
        raise NothingToTrain(nothing_left(run, st))
    process.tune_for_training()
    for note in run.notes:
        report(note)
    with run.world.together():
        if run.world.root:
            rundir.check_writable(run.checkpoint_dir)
    streams = data.Streams(run.train_ids, cfg.batch_size, cfg.seq_len)
    tally = Tally(st.step, st.elapsed, first=st.step + 1)
    shown = progress.Progress(cfg, progress_bar, report)
    try:
        # Overflow on the way to a NaN would print numpy warnings; the guard in train_step
        # reports divergence instead, as one line, before anything non-finite is saved.
        with StopFlag() as stop, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            signum = None  # the stop signal, once every rank knows of it
            while not done() and signum is None:
                t_step = time.perf_counter()
                try:
                    loss = train_step(run, st, streams, stop.event)
                except model.Stopped:
                    signum = stop.signum
                    break
                tally.step_seconds += time.perf_counter() - t_step
                st.elapsed, signum = agreed(run, tally.elapsed(), stop.signum)
                steps = st.step - tally.start_step
                tally.rate = steps * cfg.batch_size * cfg.seq_len / max(tally.step_seconds, 1e-9)
                tally.loss_sum += loss
                tally.loss_count += 1
                per_step = (st.elapsed - tally.start_elapsed) / steps  # validations included: for the time left
                shown.update(st.step, st.elapsed, per_step, tally.loss_sum / tally.loss_count, st.last_val, tally.rate)
                if on_step is not None:
                    on_step(st)
                if st.step % cfg.eval_every == 0 and not done() and signum is None:
                    record(run, st, tally, validate(run, st, tally, shown), shown.write, keep_last, True)
                    st.elapsed, signum = agreed(run, tally.elapsed(), stop.signum)  # validation counts too
            if tally.saved_step != st.step and st.step > tally.start_step:  # not just saved periodically
                stopping = signum is not None
                deadline = time.perf_counter() + STOP_VALIDATION_SECONDS if stopping else None
                record(run, st, tally, validate(run, st, tally, shown, deadline), shown.write, keep_last, not stopping)
            signum = agreed(run, st.elapsed, signum or stop.signum)[1]  # a signal during the last save counts
            if signum is not None:
                raise Interrupted(_interrupted(run, st, tally, signal.Signals(signum).name, keep_last), signum)
    except TrainingDiverged as exc:
        raise TrainingDiverged(
            f"{exc}; {_what_was_kept(run, tally.saved_step)}; try a lower --lr or a smaller --clip"
        ) from None
    finally:
        shown.close()
    return summary(run, st, tally.saved, tally.rate, tally.train_mean)


def _interrupted(run: Run, st: TrainState, tally: Tally, signal_name: str, keep_last: int) -> str:
    what = f"saved {tally.saved['latest']}" if tally.saved else f"no step was completed; {_what_was_kept(run, None)}"
    return (
        f"interrupted by {signal_name} at step {st.step}; {what}; resume with: "
        f"{resume.hint(run.corpus.get('path'), run.checkpoint_dir, keep_last, run.world.size)}"
    )


def progress_sample(run: Run, st: TrainState) -> str | None:
    """--sample-chars characters from the current weights, drawn as `charrnn sample`
    draws them unless told (SampleOptions' defaults), from the default seed and a
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
            SampleOptions(n=n),
            rng_seed=run.train_cfg.rng_seed,
            engine=run.engine,
        )
    )
    return "".join(chars)


def summary(run: Run, st: TrainState, saved: dict, rate: float, train_mean: float | None = None) -> dict:
    """What a finished run reports; ``train_loss`` is the mean training loss since the
    validation before the last."""
    best = os.path.join(run.checkpoint_dir, rundir.BEST)
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
