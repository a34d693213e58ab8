"""`charrnn eval`: score text files under one or more checkpoints."""

from __future__ import annotations

import json

import click

from charrnn import rundir
from charrnn.cli.options import encoding_option, engine_option, json_option, load_engine, quiet_option
from charrnn.cli.output import number, table
from charrnn.errors import DataError


@click.command("eval")
@click.argument("files", nargs=-1, type=click.Path())
@click.option(
    "-c",
    "--checkpoint",
    "checkpoints",
    multiple=True,
    required=True,
    type=click.Path(),
    help="A checkpoint file or run directory (its best.npz); repeat to compare models.",
)
@click.option(
    "--held-out",
    is_flag=True,
    help="Score only the last --val-frac of each FILE: the part training held out when FILE is the model's own corpus.",
)
@encoding_option()
@engine_option
@json_option("one object per checkpoint and file")
@quiet_option
def eval_(files, checkpoints, held_out, encoding, engine, as_json, quiet):
    """Loss of FILES under a model: nats and bits per character, and perplexity.

    Without FILES, each checkpoint is scored on the held-out validation part of the
    corpus it was trained on (as recorded in the checkpoint), which compares runs
    trained on different corpora. cold16 and cold64 are the loss of the first 16
    and 64 characters read from a fresh state (as sampling starts), at 300 random
    places of the (first MiB of the) scored text; warm16 and warm64 are the loss of
    the same characters in the ordinary scoring, where each has a long context.
    Characters outside a model's vocabulary are counted in the "unknown" column,
    listed on stderr, and left out of the text: they are neither fed to the model
    nor scored. A file none of whose characters a model knows is an error (exit
    1), reported after the other files have been scored.

    \b
    Examples:
      charrnn eval -c checkpoints/tales corpora/tales.txt
      charrnn eval -c checkpoints/a -c checkpoints/b test.txt --json
      charrnn eval -c checkpoints/tales -c checkpoints/names
    """
    from charrnn import checkpoint, data, evaluation

    for file in files:  # the same check and message as train's
        data.check_input(file)

    results = []
    for spec in checkpoints:
        path = rundir.resolve(spec)
        ckpt = checkpoint.load(path)
        cells = load_engine(engine, ckpt.model_cfg.cell, None if quiet else lambda s: click.echo(s, err=True))
        if files:
            jobs = [(f, encoding, held_out) for f in files]
        else:
            corpus, corpus_encoding, unchanged = evaluation.training_corpus(ckpt, path)
            if not unchanged and not quiet:
                click.echo(f"warning: {corpus} changed since {path} was trained on it", err=True)
            jobs = [(corpus, corpus_encoding, True)]
        for file, enc, only_held_out in jobs:
            score = evaluation.score(ckpt, file, enc, only_held_out, cells)
            results.append((path, score))
            if score.unknown and not quiet:
                shown = ", ".join(f"{c!r} x{n}" for c, n in list(score.unknown.items())[:10])
                more = f" and {len(score.unknown) - 10} more" if len(score.unknown) > 10 else ""
                click.echo(
                    f"note: {file}: {score.n_unknown:,} characters outside the vocabulary of {path} "
                    f"were left out: {shown}{more}",
                    err=True,
                )
    unscored = [(path, score) for path, score in results if score.scored == 0]
    if as_json:
        for path, score in results:
            record = {"checkpoint": path, **score.to_dict()}
            if score.scored == 0:
                record["error"] = _nothing_scored(path, score)
            click.echo(json.dumps(record))
    else:
        _print_table(results)
    if unscored:
        path, score = unscored[0]
        more = f" (and {len(unscored) - 1} more file(s) scored nothing)" if len(unscored) > 1 else ""
        raise DataError(_nothing_scored(path, score) + more)


def _nothing_scored(path: str, score) -> str:
    return f"none of {score.path}'s {score.chars:,} characters is in the vocabulary of {path}"


def _print_table(results) -> None:
    rows = [
        [
            path,
            score.path + (" (held out)" if score.held_out else ""),
            f"{score.scored:,}",
            f"{score.n_unknown:,}",
            number(score.loss),
            number(score.bpc),
            number(score.perplexity, ".2f"),
            *(number((score.cold_start or {}).get(key)) for key in COLD_COLUMNS),
        ]
        for path, score in results
    ]
    headers = ["checkpoint", "file", "scored", "unknown", "nats/char", "bits/char", "perplexity"]
    headers += ["cold16", "warm16", "cold64", "warm64"]
    click.echo(table(headers, rows, right=set(range(2, len(headers)))))


COLD_COLUMNS = ("cold_0_15", "warm_0_15", "cold_0_63", "warm_0_63")
