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
@click.option(
    "--cold-start",
    "show_cold",
    is_flag=True,
    help="Also show the cold-start columns: the loss of the first characters read from a fresh state.",
)
@encoding_option()
@engine_option
@json_option("one object per checkpoint and file (with the cold-start measurement)")
@quiet_option
def eval_(files, checkpoints, held_out, show_cold, encoding, engine, as_json, quiet):
    """Loss of FILES under a model: nats and bits per character, and perplexity.

    Without FILES, each checkpoint is scored on the held-out validation part of the
    corpus it was trained on (as recorded in the checkpoint), which compares runs
    trained on different corpora. With --cold-start, cold16 and cold64 are the loss
    of the first 16 and 64 characters read from a fresh state (as sampling starts),
    at 300 random places of the (first MiB of the) scored text; warm16 and warm64
    are the loss of the same characters in the ordinary scoring, where each has a
    long context.
    Characters outside a model's vocabulary are counted in the "unknown" column,
    listed on stderr, and left out of the text: they are neither fed to the model
    nor scored. A file none of whose characters a model knows is an error (exit
    1), reported after the other files have been scored.

    \b
    Examples:
      charrnn eval -c checkpoints/tales corpora/tales.txt
      charrnn eval -c checkpoints/a -c checkpoints/b test.txt --json
      charrnn eval -c checkpoints/tales -c checkpoints/names --cold-start
    """
    from charrnn import checkpoint, cold_start, data, evaluation

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
            measure = None
            if show_cold or as_json:
                measure = lambda ids, n, losses, c=ckpt, e=cells: cold_start.measure(  # noqa: E731
                    c.params, c.model_cfg, ids, n, losses, engine=e
                )
            score = evaluation.score(ckpt, file, enc, only_held_out, cells, measure)
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
        _print_table(results, show_cold)
    if unscored:
        path, score = unscored[0]
        more = f" (and {len(unscored) - 1} more file(s) scored nothing)" if len(unscored) > 1 else ""
        raise DataError(_nothing_scored(path, score) + more)


def _nothing_scored(path: str, score) -> str:
    return f"none of {score.path}'s {score.chars:,} characters is in the vocabulary of {path}"


def _print_table(results, show_cold: bool) -> None:
    from charrnn import cold_start

    rows = [
        [
            path,
            score.path + (" (held out)" if score.held_out else ""),
            f"{score.scored:,}",
            f"{score.n_unknown:,}",
            number(score.loss),
            number(score.bpc),
            number(score.perplexity, ".2f"),
            *((number((score.cold_start or {}).get(key)) for key in cold_start.KEYS) if show_cold else ()),
        ]
        for path, score in results
    ]
    headers = ["checkpoint", "file", "scored", "unknown", "nats/char", "bits/char", "perplexity"]
    headers += list(cold_start.COLUMNS) if show_cold else []
    click.echo(table(headers, rows, right=set(range(2, len(headers)))))
