"""`charrnn train`: parse the options, hand them to charrnn.orchestrate, report the results."""

from __future__ import annotations

import json
import sys

import click
from click.core import ParameterSource

from charrnn.cli.options import (
    More,
    config_options,
    encoding_option,
    engine_option,
    json_option,
    load_engine,
    quiet_option,
)
from charrnn.cli.output import number, table
from charrnn.config import ModelConfig, TrainConfig
from charrnn.errors import CharRNNError, Interrupted

MODEL_FIELDS = {f for f in ModelConfig.__dataclass_fields__}


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@config_options(ModelConfig, TrainConfig)
@click.option(
    "--checkpoint-dir",
    type=click.Path(file_okay=False),
    help="Where checkpoints go [default: checkpoints/<corpus name>/].",
)
@encoding_option(default=None, help_extra=" [default: utf-8, or the checkpoint's with --resume]")
@click.option(
    "--resume",
    "resume",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[PATH]",
    help="Continue from the latest checkpoint in the checkpoint directory, or from PATH.",
)
@click.option(
    "--overwrite", is_flag=True, help="Start a new run in a directory that holds another run's checkpoints (replaced)."
)
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="K",
    help="Also keep the last K checkpoints as step-NNNNNNNN.npz; 0 keeps only latest and best.",
)
@click.option("--concat", is_flag=True, help="Train one model on all FILES joined together.")
@click.option("--force", is_flag=True, help="Train even if another charrnn run is using the checkpoint directory.")
@engine_option
@json_option("the final summary (one object per corpus)")
@quiet_option
@click.pass_context
def train(
    ctx,
    files,
    checkpoint_dir,
    encoding,
    resume,
    overwrite,
    keep_last,
    concat,
    force,
    engine,
    as_json,
    quiet,
    **settings,
):
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
      charrnn train input.txt --resume --time-limit 20m   # 20 minutes in all, not 20 more
      charrnn train input.txt --resume --time-limit +20m  # 20 minutes more
      mpiexec -n 4 charrnn train big.txt --time-limit 2h  # one model, 4 processes (MPI)
    """
    from charrnn import data, distributed, orchestrate

    world = distributed.world()  # MPI's ranks under mpirun or srun; this process alone otherwise

    given = {
        k: v
        for k, v in settings.items()
        if ctx.get_parameter_source(k) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    }
    added = {k: v.value for k, v in given.items() if isinstance(v, More)}  # --time-limit +20m
    given.update({k: type(TrainConfig.__dataclass_fields__[k].default)(v) for k, v in added.items()})
    quiet = quiet or not world.root  # rank 0 reports for all ranks
    with world.together():  # every rank reads the files
        for path in files:  # a typo in any path should fail now, not after training the others
            data.check_input(path)
    planned = orchestrate.plan(files, checkpoint_dir, concat)
    report = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
    request = orchestrate.Request(
        model={k: v for k, v in given.items() if k in MODEL_FIELDS},
        train={k: v for k, v in given.items() if k not in MODEL_FIELDS},
        added=set(added),
        encoding=encoding,
        resume=resume,
        overwrite=overwrite,
        force=force,
        keep_last=keep_last,
        engine=load_engine(engine, None, None if quiet else report),  # given, so that no default is loaded
        world=world,
    )
    warn = (lambda s: click.echo(s, err=True)) if world.root else (lambda s: None)  # shown even with --quiet
    results = []
    try:
        for job, result in orchestrate.train_all(
            planned, request, report, warn, progress_bar=not quiet and sys.stderr.isatty()
        ):
            results.append((job, result))
            if result["status"] == "ok":
                report(
                    f"best validation loss {result['best_val_loss']:.4f} nats/char "
                    f"({result['best_val_bpc']:.4f} bits/char); best checkpoint {result['best_checkpoint']}; "
                    f"latest {result['latest_checkpoint']}"
                )
            if as_json and result["status"] != "interrupted" and world.root:
                click.echo(json.dumps(result))
    except Interrupted:
        _summary(results, len(planned), quiet)
        raise
    _summary(results, len(planned), quiet)


def _summary(results, n_jobs: int, quiet: bool) -> None:
    """With several corpora: a table on stderr of how each went, and exit 1 if any failed."""
    if n_jobs < 2:
        return
    if not quiet:
        rows = [
            [
                job.label,
                result.get("steps"),
                number(result.get("best_val_bpc")),
                result.get("best_checkpoint"),
                result["status"] + (f": {result['error']}" if result["status"] == "failed" else ""),
            ]
            for job, result in results
        ]
        click.echo(
            table(["corpus", "steps", "best val bits/char", "checkpoint", "result"], rows, right={1, 2}), err=True
        )
    failed = [job.label for job, result in results if result["status"] == "failed"]
    if failed:
        raise CharRNNError(f"{len(failed)} of {len(results)} corpora failed: {', '.join(failed)}")
