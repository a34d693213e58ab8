"""`charrnn vis`: a self-contained HTML page of what a model's units track in a text."""

from __future__ import annotations

import json

import click

from charrnn.cli.options import (
    Integer,
    checkpoint_option,
    checkpoint_path_of,
    encoding_option,
    engine_option,
    json_option,
    load_engine,
    quiet_option,
)
from charrnn.errors import CharRNNError, UsageError

LIMIT_MAX = 200_000  # --max-chars cannot go past this: the page would be hundreds of MB


def read_text(path: str, encoding: str, max_chars: int) -> tuple[str, bool]:
    """The first ``max_chars`` characters of ``path`` (``-``: standard input), and
    whether it has more; the rest is never read."""
    from charrnn import data

    data.check_input(path)
    pieces, size = [], 0
    for piece in data.iter_text(path, encoding):
        pieces.append(piece)
        size += len(piece)
        if size > max_chars:
            return "".join(pieces)[:max_chars], True
    return "".join(pieces), False


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@checkpoint_option
@click.option("--text", default=None, help="The text to show, instead of a FILE.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The page to write ('-': stdout).",
)
@click.option(
    "--max-chars",
    type=Integer(min=1, max=LIMIT_MAX),
    default=20_000,
    show_default=True,
    help="Show at most this many characters of the text, the first ones (the page holds every unit's "
    "activation at every character).",
)
@click.option("--drop-unknown", is_flag=True, help="Leave out characters the model never saw instead of refusing.")
@encoding_option(default=None, help_extra=" [default: the checkpoint's corpus encoding]")
@engine_option
@json_option('a summary: {"output", "checkpoint", "chars", "bits_per_char", "bytes", "found", "absent"}')
@quiet_option
def vis(file, checkpoint_path, text, output, max_chars, drop_unknown, encoding, engine, as_json, quiet):
    """Write an HTML page showing what the model's units track in a text.

    A text longer than --max-chars is cut to its first --max-chars characters (a
    note says so). The page colours each character of the text by the activation of a chosen unit
    (a layer's h, or the LSTM's tanh(c)), or by its surprisal in bits; hovering over or
    clicking a character shows the probability the model gave it and its top 5
    guesses. "Found for you" ranks the units most correlated with properties of the
    text: inside double quotes, inside brackets, position in the line, characters
    until the line break, start of a word, upper case. The file has no external
    resources: it opens from disk in any browser, with no network.

    \b
    Examples:
      charrnn vis -c checkpoints/tales corpora/tales.txt -o page.html    # its first 20,000 characters
      head -c 5000 corpora/tales.txt | charrnn vis -c checkpoints/tales - -o tales.html
      charrnn vis --text '"Hello," she said (quietly).' -o hello.html --json | jq .found[0]
    """
    from charrnn import checkpoint, data, sampling, trained_text, vis
    from charrnn.vis import page

    if (file is None) == (text is None):
        raise UsageError("give the text as FILE or with --text (one of them)")
    if as_json and output == "-":
        raise UsageError("--json prints a summary on stdout; write the page to a file with -o PAGE.html")
    path = checkpoint_path_of(checkpoint_path, None if quiet else lambda line: click.echo(line, err=True))
    ckpt = checkpoint.load(path)
    if file is not None:
        text, cut = read_text(file, trained_text.encoding(ckpt, encoding), max_chars)
    else:
        text, cut = text[:max_chars], len(text) > max_chars
    if cut and not quiet:
        click.echo(
            f"note: {'--text' if file is None else file} is longer than {max_chars:,} characters; the page shows "
            f"the first {max_chars:,} (--max-chars, up to {LIMIT_MAX:,})",
            err=True,
        )
    if drop_unknown:
        text, dropped = sampling.drop_unknown(text, ckpt.vocab)
        if dropped and not quiet:
            click.echo(data.dropped_note(dropped), err=True)
    if not quiet:
        click.echo(f"running {path} over {len(text):,} characters ...", err=True)
    cells = load_engine(engine, ckpt.model_cfg.cell, None if quiet else lambda s: click.echo(s, err=True))
    data = vis.build(ckpt, path, text, max_chars, cells)
    document = page.render(data)
    try:
        with click.open_file(output, "w", encoding="utf-8", atomic=output != "-") as f:
            f.write(document)
    except OSError as exc:
        raise CharRNNError(f"cannot write {output}: {exc.strerror or exc}") from None
    size = len(document.encode("utf-8"))
    summary = {
        "output": output,
        "checkpoint": path,
        "chars": len(text),
        "bits_per_char": data["predictions"]["bits_per_char"],
        "bytes": size,
        "found": data["found"],
        "absent": {p["name"]: p["absent"] for p in data["properties"] if p["absent"]},
    }
    if as_json:
        click.echo(json.dumps(summary))
    if not quiet:
        click.echo(_summary_text(summary), err=True)


def _summary_text(s: dict) -> str:
    lines = [f"wrote {s['output']}: {s['chars']:,} characters, {s['bytes'] / 1e6:.1f} MB"]
    for f in s["found"][:10]:
        unit = f"{f['series_label']} {f['unit']}"
        lines.append(f"  {unit:<16} r = {f['r']:+.2f}  {f['property_label']}")
    for name, why in s["absent"].items():
        lines.append(f"  not ranked: {name} ({why})")
    return "\n".join(lines)
