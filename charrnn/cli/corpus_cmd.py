"""`charrnn corpus list|get`: the catalogue of public corpora, and verified downloads."""

from __future__ import annotations

import json
import os
import sys

import click

from charrnn.cli.options import json_option, quiet_option
from charrnn.cli.output import table

DIR_OPTION = click.option(
    "-d",
    "--dir",
    "dest_dir",
    default="corpora",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory the corpora go into.",
)


@click.group()
def corpus():
    """Well-known public corpora: list them, download them with a verified checksum.

    \b
    Examples:
      charrnn corpus list
      charrnn corpus get tinyshakespeare
      charrnn corpus get names --mirror /data/corpora
    """


@corpus.command("list")
@DIR_OPTION
@json_option("one object per corpus")
def list_(dest_dir, as_json):
    """Show the catalogue, and which corpora are already in --dir.

    \b
    Examples:
      charrnn corpus list
      charrnn corpus list --json | jq -r .name
    """
    from charrnn import catalogue

    entries = catalogue.load().values()
    present = {c.name: os.path.isfile(os.path.join(dest_dir, c.file)) for c in entries}
    if as_json:
        for c in entries:
            click.echo(json.dumps({**c.to_dict(), "present": present[c.name]}))
        return
    rows = [
        [
            c.name,
            f"{c.bytes / 1e6:.1f} MB",
            os.path.join(dest_dir, c.file),
            "yes" if present[c.name] else "no",
            c.description,
        ]
        for c in entries
    ]
    click.echo(table(["name", "size", "file", "here", "description"], rows, right={1}))


@corpus.command()
@click.argument("names", nargs=-1, required=True)
@DIR_OPTION
@click.option(
    "--mirror",
    type=click.Path(exists=True, file_okay=False),
    envvar="CHARRNN_CORPUS_MIRROR",
    help="Copy from this local directory instead of downloading [env: CHARRNN_CORPUS_MIRROR].",
)
@click.option("--force", is_flag=True, help="Replace a file of the same name whose checksum differs.")
@quiet_option
def get(names, dest_dir, mirror, force, quiet):
    """Download corpora NAMES into --dir, verifying size and SHA-256.

    A file whose checksum does not match the catalogue is deleted, not kept. The
    path of each corpus is printed on stdout, so scripts can use it directly.

    \b
    Examples:
      charrnn corpus get tinyshakespeare
      charrnn train "$(charrnn corpus get names -q)" --time-limit 5m
      CHARRNN_CORPUS_MIRROR=/mnt/corpora charrnn corpus get tinyshakespeare warpeace
    """
    from tqdm import tqdm

    from charrnn import catalogue

    wanted = [catalogue.lookup(name) for name in names]  # an unknown name fails before any download
    for c in wanted:
        with tqdm(
            total=c.bytes, unit="B", unit_scale=True, desc=c.name, leave=False, disable=quiet or not sys.stderr.isatty()
        ) as bar:
            path, how = catalogue.fetch(c, dest_dir, mirror, force, progress=bar.update)
        if not quiet:
            origin = {
                "present": "already present, checksum verified",
                "mirror": f"copied from {mirror}, checksum verified",
                "download": f"downloaded from {c.url}, checksum verified",
            }[how]
            click.echo(f"{c.name}: {origin}", err=True)
        click.echo(path)
