"""`charrnn train`: option parsing and reporting around charrnn.training."""

from __future__ import annotations

import json
import os
import re
import sys

import click
from click.core import ParameterSource

from charrnn.cli.output import number, table
from charrnn.cli.params import FiniteFloatRange
from charrnn.errors import CharRNNError, Interrupted, UsageError
from charrnn.lock import RunLock
from charrnn.config import CELLS, OPTIMIZERS, SCHEDULES, ModelConfig, TrainConfig

DEFAULT_MODEL = ModelConfig(vocab_size=1)
DEFAULT_TRAIN = TrainConfig()

# option name -> (config, field); the options a resumed run compares with its checkpoint
MODEL_OPTIONS = {"cell": "cell", "hidden_size": "hidden_size", "layers": "n_layers", "dropout": "dropout"}
TRAIN_OPTIONS = ("seq_len", "batch_size", "optimizer", "lr", "lr_schedule", "min_lr_frac", "clip",
                 "val_frac", "max_steps", "time_limit", "eval_every", "rng_seed")


class Duration(click.ParamType):
    """Seconds, written as 90, 90s, 10m, 1.5h or 1h30m; 0 means no limit."""

    name = "duration"
    _part = re.compile(r"(\d+(?:\.\d+)?)([smh]?)")

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().lower()
        parts = self._part.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration; use for example 90s, 10m or 1h30m", param, ctx)
        return float(sum(float(n) * {"": 1, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts))


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--cell", type=click.Choice(CELLS), default=DEFAULT_MODEL.cell, show_default=True,
              help="Recurrent cell.")
@click.option("--hidden-size", type=click.IntRange(min=1), default=DEFAULT_MODEL.hidden_size,
              show_default=True, help="Hidden units per layer (H).")
@click.option("--layers", type=click.IntRange(min=1), default=DEFAULT_MODEL.n_layers, show_default=True,
              help="Stacked recurrent layers.")
@click.option("--dropout", type=FiniteFloatRange(0, 1, max_open=True), default=DEFAULT_MODEL.dropout,
              show_default=True, help="Dropout on each layer's output while training.")
@click.option("--seq-len", type=click.IntRange(min=1), default=DEFAULT_TRAIN.seq_len, show_default=True,
              help="Characters per chunk of truncated backpropagation through time (T).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_TRAIN.batch_size,
              show_default=True, help="Parallel streams through the text (B).")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=DEFAULT_TRAIN.optimizer,
              show_default=True)
@click.option("--lr", type=FiniteFloatRange(0, min_open=True), default=DEFAULT_TRAIN.lr,
              show_default=True, help="Peak learning rate.")
@click.option("--lr-schedule", type=click.Choice(SCHEDULES), default=DEFAULT_TRAIN.lr_schedule,
              show_default=True, help="cosine decays to lr * --min-lr-frac by the end of the run.")
@click.option("--min-lr-frac", type=FiniteFloatRange(0, 1), default=DEFAULT_TRAIN.min_lr_frac,
              show_default=True)
@click.option("--clip", type=FiniteFloatRange(min=0), default=DEFAULT_TRAIN.clip, show_default=True,
              help="Clip gradients to this global norm; 0 turns clipping off.")
@click.option("--val-frac", type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
              default=DEFAULT_TRAIN.val_frac, show_default=True,
              help="Last fraction of the text held out for validation.")
@click.option("--max-steps", type=click.IntRange(min=0), default=DEFAULT_TRAIN.max_steps,
              show_default=True, help="Stop after this many steps; 0 means no step limit.")
@click.option("--time-limit", type=Duration(), default="10m", show_default=True,
              help="Stop after this much training time (90s, 10m, 1h); 0 means none.")
@click.option("--eval-every", type=click.IntRange(min=1), default=DEFAULT_TRAIN.eval_every,
              show_default=True, help="Validate and checkpoint every this many steps (and at the end).")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False),
              help="Where checkpoints go [default: checkpoints/<corpus name>/].")
@click.option("--rng-seed", type=int, default=DEFAULT_TRAIN.rng_seed, show_default=True,
              help="Seed for initialisation and dropout.")
@click.option("--encoding", default="utf-8", show_default=True, help="Encoding of the text files.")
@click.option("--resume", "resume", is_flag=False, flag_value="", default=None, metavar="[PATH]",
              help="Continue from the latest checkpoint in the checkpoint directory, or from PATH.")
@click.option("--overwrite", is_flag=True,
              help="Start a new run even where an earlier run saved checkpoints (they are replaced).")
@click.option("--keep-last", type=click.IntRange(min=0), default=0, show_default=True, metavar="K",
              help="Also keep the last K checkpoints as step-NNNNNNNN.npz; 0 keeps only latest and best.")
@click.option("--concat", is_flag=True, help="Train one model on all FILES joined together.")
@click.option("--force", is_flag=True,
              help="Train even if another charrnn run is using the checkpoint directory.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the final summary as JSON on stdout (one object per corpus).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or log lines.")
@click.pass_context
def train(ctx, files, encoding, checkpoint_dir, resume, concat, force, as_json, quiet, **opts):
    """Train a character-level language model on FILES (UTF-8 text).

    The last --val-frac of the text is held out; its loss is reported in nats
    and bits per character. latest.npz and best.npz are kept in the checkpoint
    directory; Ctrl-C saves the last completed step, and --resume continues it.

    Several FILES train one model each, one after another, in
    checkpoints/<name>/ (or --checkpoint-dir/<name>/); a corpus that fails is
    reported and the others still train, then a summary table is printed and
    the exit code is 1 if any failed. --concat trains one model on them all.
    A run locks its checkpoint directory: a second run there is refused.

    \b
    Examples:
      charrnn train corpora/tales.txt --time-limit 3m
      charrnn train a.txt b.txt c.txt --time-limit 5m --json > runs.jsonl
      charrnn train a.txt b.txt --concat --checkpoint-dir checkpoints/ab
      charrnn train input.txt --cell gru --hidden-size 512 --layers 1
      charrnn train input.txt --resume --time-limit 20m
    """
    from charrnn import jobs
    from charrnn import checkpoint
    from charrnn import training

    given = {k for k in opts if ctx.get_parameter_source(k) in
             (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    model_opts = {field: opts[opt] for opt, field in MODEL_OPTIONS.items()}
    train_opts = {k: opts[k] for k in TRAIN_OPTIONS}
    show_progress = not quiet and sys.stderr.isatty()
    report = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
    for path in files:  # a typo in any path should fail now, not after training the others
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file")
        if os.path.isdir(path):
            raise UsageError(f"{path} is a directory, not a text file")
    planned = jobs.plan(files, checkpoint_dir, concat)
    if resume and len(planned) > 1:
        raise UsageError("--resume PATH names one checkpoint; with several corpora, use --resume "
                         "alone and each continues from its own directory")
    results = []
    for job in planned:  # one corpus failing must not stop the others: report it and go on
        try:
            with RunLock(job.directory, force, warn=lambda s: click.echo(s, err=True)) as lock:
                if lock.exclusive:  # what a killed run left half-written
                    for name in checkpoint.sweep_stale_temps(job.directory):
                        report(f"removed {name}, left by an interrupted save")
                if job.sources:
                    jobs.join_files(job.sources, encoding, job.path)
                    job_encoding = "utf-8"  # join_files wrote UTF-8
                else:
                    job_encoding = encoding
                if resume is not None:
                    source = training.resume_source(resume or job.directory)
                    given_encoding = job.sources or ctx.get_parameter_source("encoding") is ParameterSource.COMMANDLINE
                    run, state = training.resume(job.path, checkpoint.load(source), job.directory,  # None: the checkpoint's
                                          job_encoding if given_encoding else None,
                                          {MODEL_OPTIONS[k]: opts[k] for k in MODEL_OPTIONS if k in given},
                                          {k: train_opts[k] for k in TRAIN_OPTIONS if k in given})
                    report(f"resuming from {source} at step {state.step}")
                else:
                    if not opts["overwrite"]:
                        training.check_fresh(job.directory)
                    run = training.prepare(job.path, model_opts, TrainConfig(**train_opts), job.directory, job_encoding)
                    state = training.new_state(run)
                    training.reset_metrics(run)
                if job.sources:
                    run.corpus.update(name=job.label, sources=[os.path.abspath(f) for f in job.sources])
                report(f"training {run.model_cfg.cell} {run.model_cfg.n_layers}x{run.model_cfg.hidden_size} "
                       f"on {job.label}: {len(run.train_ids):,} train / {len(run.val_ids) - run.n_context:,} "
                       f"validation chars, vocabulary {run.vocab.size}; checkpoints in {job.directory}")
                result = training.train(run, state, report=report, progress_bar=show_progress,
                                 keep_last=opts["keep_last"])

            report(f"best validation loss {result['best_val_loss']:.4f} nats/char "
                   f"({result['best_val_bpc']:.4f} bits/char); best checkpoint {result['best_checkpoint']}; "
                   f"latest {result['latest_checkpoint']}")
            result = {**result, "status": "ok"}
        except Interrupted as exc:
            results.append((job, {"status": "interrupted", "error": str(exc)}))
            _batch_summary(results, len(planned), quiet)
            raise
        except CharRNNError as exc:
            if len(planned) == 1:
                raise
            click.echo(f"{job.label}: failed: {exc}", err=True)
            result = {"corpus": os.path.abspath(job.path), "status": "failed", "error": str(exc)}
        result["checkpoint_dir"] = job.directory
        results.append((job, result))
        if as_json:
            click.echo(json.dumps(result))
    _batch_summary(results, len(planned), quiet)


def _batch_summary(results, n_jobs: int, quiet: bool) -> None:
    """With several corpora: a table on stderr of how each went, and exit 1 if any failed."""
    if n_jobs < 2:
        return
    if not quiet:
        rows = [[job.label, result.get("steps"), number(result.get("best_val_bpc")),
                 result.get("best_checkpoint"),
                 result["status"] + (f": {result['error']}" if result["status"] == "failed" else "")]
                for job, result in results]
        click.echo(table(["corpus", "steps", "best val bits/char", "checkpoint", "result"], rows,
                         right={1, 2}), err=True)
    failed = [job.label for job, result in results if result["status"] == "failed"]
    if failed:
        raise CharRNNError(f"{len(failed)} of {len(results)} corpora failed: {', '.join(failed)}")
