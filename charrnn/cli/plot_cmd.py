"""`charrnn plot`: loss curves of one or more runs, from their metrics.jsonl."""

from __future__ import annotations

import os

import click


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "-o",
    "--output",
    default="loss.png",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Image to write; the extension picks the format (.png, .svg, .pdf).",
)
@click.option("--title", default="", help="Title of the figure.")
def plot(runs, output, title):
    """Plot training and validation loss of RUNS (checkpoint directories).

    Two panels, bits per character against steps and against training time; each
    run has its colour, validation solid and training dashed (the mean training loss
    since the previous validation, so that the two compare). Needs matplotlib:
    pip install 'charrnn[plot]'.

    \b
    Examples:
      charrnn plot checkpoints/tales
      charrnn plot checkpoints/*/ -o compare.png --title "LSTM vs GRU"
    """
    from charrnn import metrics, plotting, rundir

    curves = {}
    for run in runs:
        records, skipped = metrics.read(run)
        label = os.path.basename(os.path.abspath(run if os.path.isdir(run) else os.path.dirname(os.path.abspath(run))))
        while label in curves:  # two runs with the same directory name still get two curves
            label += "'"
        curves[label] = records
        if skipped:
            click.echo(f"warning: skipped {skipped} unreadable line(s) in {rundir.metrics_path(run)}", err=True)
    plotting.plot_runs(curves, output, title)
    click.echo(f"wrote {output} ({len(curves)} run{'s' if len(curves) > 1 else ''})", err=True)
