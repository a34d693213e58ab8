"""What `charrnn train FILES...` does, from the parsed options to the trained models.

Each corpus is a job with its own run directory, named after the file, so runs never
share checkpoints or metrics. With --concat the files are joined into one text
(written into the run directory, so the checkpoint records a corpus that still exists
for resume, eval and info) and a single model trains on it. A job holds its
directory's lock while it trains, starts a new run or resumes one, and trains it;
one corpus failing does not stop the others.

Under an MPI launcher (distributed.py) every rank runs the same job: each reads the text
(and the checkpoint it resumes), the ranks check that they read the same text, and rank 0
alone holds the lock, joins --concat files and reports. Each step that can fail on one
rank runs inside ``World.together()`` so that all ranks stop on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Iterator

from charrnn import autosize, data, distributed, engines, process, resume, rundir, trained_text, training
from charrnn.config import ModelConfig, TrainConfig, format_duration
from charrnn.engines import Engine
from charrnn.errors import CharRNNError, DataError, Interrupted, UsageError
from charrnn.lock import RunLock

MAX_NAME = 60
SAME_TEXT = "every rank must read the same text (a copy on each machine, or a shared file system)"


@dataclass(frozen=True)
class Job:
    label: str  # how logs and the summary name the run
    path: str  # the text to train on (for --concat: the joined file)
    directory: str  # the run's checkpoint directory
    sources: tuple = ()  # with --concat: the files joined into ``path``


def corpus_name(path: str) -> str:
    """The run directory's name for a text: its file name without the extension."""
    return os.path.splitext(data.text_name(path))[0] or "corpus"


def plan(files, checkpoint_dir: str | None, concat: bool = False) -> list[Job]:
    """One job per file (or one for all with ``concat``). With several files,
    ``checkpoint_dir`` is the parent of the per-corpus directories."""
    if concat:
        names = "+".join(corpus_name(f) for f in files)
        name = names if len(names) <= MAX_NAME else f"{corpus_name(files[0])}+{len(files) - 1}-more"
        directory = checkpoint_dir or rundir.default(name)
        return [Job(name, os.path.join(directory, rundir.JOINED), directory, tuple(files))]
    if len(files) == 1:
        return [Job(files[0], files[0], checkpoint_dir or rundir.default(corpus_name(files[0])))]
    jobs, seen = [], {}
    for path in files:
        directory = os.path.join(checkpoint_dir or rundir.ROOT, corpus_name(path))
        if directory in seen:
            raise UsageError(
                f"{seen[directory]} and {path} would both train into {directory}; "
                f"rename one, or train them in separate commands with --checkpoint-dir"
            )
        seen[directory] = path
        jobs.append(Job(path, path, directory))
    return jobs


def join_files(files, encoding: str, dest: str) -> None:
    """Write the texts of ``files`` one after the other to ``dest`` as UTF-8, with a
    newline between two files where the first does not end with one (so the last line
    of one and the first of the next do not fuse). Atomic: temp file, then os.replace."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(dest)), prefix=".join-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            last = "\n"
            for path in files:
                if last != "\n":
                    out.write("\n")
                for piece in data.iter_text(path, encoding):
                    out.write(piece)
                    last = piece[-1]
        os.replace(tmp, dest)
        tmp = None
    except OSError as exc:
        raise DataError(f"cannot write the joined corpus {dest}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            os.unlink(tmp)


@dataclass
class Request:
    """What `charrnn train` was asked, as the library needs it. ``model`` and ``train``
    hold only the ModelConfig and TrainConfig fields given explicitly: a new run takes
    the defaults for the others, a resumed run the checkpoint's."""

    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    encoding: str | None = None  # None: utf-8 for a new run, the checkpoint's for --resume
    resume: str | None = None  # None: a new run; "": the run directory's latest.npz; else a path
    overwrite: bool = False
    force: bool = False
    keep_last: int = 0
    engine: Engine = field(default_factory=engines.get)  # runs the cells
    added: set = field(default_factory=set)  # limits given as +N: N more than the resumed run has done
    world: distributed.World = field(default_factory=distributed.World)  # the processes training together


def start(job: Job, request: Request, report: Callable[[str], None]) -> tuple[training.Run, training.TrainState]:
    """The run and training state ``job`` trains: a new one, or the one it resumes. The
    configs are settled first (the checkpoint's, the options', the automatic choice);
    the run is then built once from them."""
    request.world.agree(
        request.engine.name, "engine", "install the same charrnn on every machine, or choose one with --engine"
    )
    if job.sources:
        with request.world.together():
            if request.world.root:
                join_files(job.sources, request.encoding or "utf-8", job.path)
        encoding = "utf-8"  # join_files wrote UTF-8
    else:
        encoding = request.encoding
    joined = {"name": job.label, "sources": [os.path.abspath(f) for f in job.sources]} if job.sources else None
    if request.resume is not None:
        return _resumed(job, request, encoding, joined, report)
    return _new(job, request, encoding or "utf-8", joined, report)


def _resumed(job: Job, request: Request, encoding: str | None, joined: dict | None, report):
    with request.world.together():
        source = resume.source(request.resume or job.directory)
        ckpt = resume.load(source)
        state = training.state_from_checkpoint(ckpt)  # before reading the text: a model-only file fails fast
        encoding = trained_text.encoding(ckpt, encoding)
        text = data.load_corpus(job.path, encoding)
        resume.check_vocab(ckpt, text.vocab)
    request.world.agree((text.sha256, len(text.ids)), f"text in {job.path}", SAME_TEXT)
    train_cfg = resume.train_config(ckpt, request.model, request.train)
    done = {"time_limit": state.elapsed, "max_steps": state.step}
    train_cfg = dataclasses.replace(train_cfg, **{key: done[key] + request.train[key] for key in request.added})
    notes = []
    trained_on = ckpt.progress.get("engine")
    if trained_on not in (None, request.engine.name):
        notes.append(
            f"note: this run was trained on the {trained_on} engine and goes on with the {request.engine.name} "
            f"engine; the figures will differ from an uninterrupted run in the last bits"
        )
    if ckpt.corpus.get("sha256") not in (None, text.sha256):
        notes.append(
            f"note: {job.path} differs from the text this checkpoint was trained on "
            f"({ckpt.corpus.get('name', '?')}); it has the same characters, so training goes on"
        )
    limit = train_cfg.time_limit
    left = (
        f"; --time-limit {format_duration(limit)} is the run's total training time, so about "
        f"{format_duration(max(0.0, limit - state.elapsed))} are left"
        if limit
        else ""
    )
    if train_cfg.max_steps:
        left += f"; it stops at step {train_cfg.max_steps:,}"
    report(f"resuming from {source} at step {state.step}, after {format_duration(state.elapsed)} of training{left}")
    run = training.prepare(
        text,
        job.path,
        ckpt.model_cfg,
        train_cfg,
        job.directory,
        encoding=encoding,
        engine=request.engine,
        notes=tuple(notes),
        corpus=joined,
        world=request.world,
    )
    return run, state


def _new(job: Job, request: Request, encoding: str, joined: dict | None, report):
    world = request.world
    with world.together():
        if not request.overwrite:
            resume.check_fresh(job.directory)
        text = data.load_corpus(job.path, encoding)
    world.agree((text.sha256, len(text.ids)), f"text in {job.path}", SAME_TEXT)
    train_cfg = TrainConfig(**request.train)
    if world.size > 1 and "batch_size" not in request.train:
        B = autosize.batch_for_ranks(train_cfg.batch_size, world.size)
        train_cfg = dataclasses.replace(train_cfg, batch_size=B)
        lo, hi = world.streams(B)
        report(
            f"auto: batch of {B} streams on {world.size} ranks, {hi - lo} on each (a rank needs "
            f"{autosize.RANK_STREAMS} or more for efficient products); pass --batch-size to choose yourself"
        )
    training.check_text(text, job.path, train_cfg)  # a text too short fails before the probe
    model_cfg = ModelConfig(**{**ModelConfig(vocab_size=1).to_dict(), **request.model, "vocab_size": text.vocab.size})
    probe_seconds = 0.0
    if wants_auto(request):
        model_cfg, train_cfg, probe_seconds = choose_model(text, train_cfg, request, report)
    process.check_fits(model_cfg, train_cfg)
    run = training.prepare(
        text,
        job.path,
        model_cfg,
        train_cfg,
        job.directory,
        encoding=encoding,
        engine=request.engine,
        fresh=True,
        corpus=joined,
        world=world,
    )
    return run, training.new_state(run, elapsed=probe_seconds)  # the probe is part of the run's time budget


AUTO_FIELDS = ("cell", "hidden_size", "n_layers")  # given any of these, the user chose the model


def wants_auto(request: Request) -> str | None:
    """How a new run with no size option has its model chosen (autosize): "steps" for
    the text and --max-steps (no probe: the same on every machine), "time" for the
    text, the time limit and this machine's measured speed; None when the user chose
    the model or the run has no limit at all (the fixed defaults)."""
    if any(k in request.model for k in AUTO_FIELDS):
        return None
    if request.train.get("max_steps"):
        return "steps"
    return "time" if request.train.get("time_limit", TrainConfig().time_limit) > 0 else None


def choose_model(
    text: data.Corpus, train_cfg: TrainConfig, request: Request, report: Callable[[str], None]
) -> tuple[ModelConfig, TrainConfig, float]:
    """The model (and how often it validates) that autosize chooses for the text, for
    --max-steps or for the time limit on this machine (probing its speed first); options
    the user gave win. Returns both configs and the seconds spent probing."""
    tc, seconds = train_cfg, 0.0
    n_chars, vocab_size = len(text.ids), text.vocab.size
    if wants_auto(request) == "steps":
        choice = autosize.choose_for_steps(n_chars, tc.max_steps, vocab_size, tc.val_frac, tc.batch_size, tc.seq_len)
    else:
        engines.warm_up(request.engine, "lstm", report)  # not inside the probe's timed steps
        speed, seconds = request.world.bcast(autosize.probe(vocab_size, tc, engine=request.engine, world=request.world))
        choice = autosize.choose(
            n_chars,
            max(tc.time_limit - seconds, 1.0),
            speed,
            vocab_size,
            tc.val_frac,
            tc.batch_size,
            tc.seq_len,
            request.engine.name,
            request.world.size,
        )
    model_cfg = ModelConfig(**{**choice.model, **request.model, "vocab_size": vocab_size})
    train_cfg = dataclasses.replace(tc, **{k: v for k, v in choice.train.items() if k not in request.train})
    if tc.max_steps and tc.time_limit:  # sized for the steps, but the clock may end it first
        report(f"{choice.reason}; --time-limit {format_duration(tc.time_limit)} still ends it if reached first")
    else:
        report(choice.reason)
    return model_cfg, train_cfg, seconds


def run_job(
    job: Job, request: Request, report: Callable[[str], None], warn: Callable[[str], None], progress_bar: bool = False
) -> dict:
    """Train ``job`` while holding its directory's lock; returns training.train's summary."""
    world = request.world
    # before the probe, which times training steps; ranks on one machine share its cores
    process.tune_for_training(cores=world.cores_here())
    with contextlib.ExitStack() as held:
        with world.together():
            if world.root:
                lock = held.enter_context(RunLock(job.directory, request.force, warn=warn))
                if lock.exclusive:  # what a killed run left half-written
                    for name in rundir.sweep_stale_temps(job.directory):
                        report(f"removed {name}, left by an interrupted save")
        run, state = start(job, request, report)
        cfg = run.model_cfg
        engines.warm_up(run.engine, cfg.cell, report)
        report(
            f"training {cfg.cell} {cfg.n_layers}x{cfg.hidden_size} on {job.label}: "
            f"{len(run.train_ids):,} train / {len(run.val_ids) - run.n_context:,} validation chars, "
            f"vocabulary {run.vocab.size}; checkpoints in {job.directory}"
            + (f"; {world.size} MPI ranks" if world.size > 1 else "")
        )
        return training.train(run, state, report=report, progress_bar=progress_bar, keep_last=request.keep_last)


def train_all(
    planned: list[Job],
    request: Request,
    report: Callable[[str], None],
    warn: Callable[[str], None],
    progress_bar: bool = False,
) -> Iterator[tuple[Job, dict]]:
    """Train each job in turn, yielding (job, result) as each ends. With several jobs, a
    failing one is reported (``warn``) and yields {"status": "failed", "error": ...}; an
    interruption yields {"status": "interrupted"} and then raises."""
    if request.resume and len(planned) > 1:
        raise UsageError(
            "--resume PATH names one checkpoint; with several corpora, use --resume "
            "alone and each continues from its own directory"
        )
    for job in planned:
        try:
            result = {**run_job(job, request, report, warn, progress_bar), "status": "ok"}
        except Interrupted as exc:
            yield job, {"status": "interrupted", "error": str(exc), "checkpoint_dir": job.directory}
            raise
        except CharRNNError as exc:
            if len(planned) == 1:
                raise
            warn(f"{job.label}: failed: {exc}")
            result = {"corpus": os.path.abspath(job.path), "status": "failed", "error": str(exc)}
        result["checkpoint_dir"] = job.directory
        yield job, result
