"""The `charrnn` command: a thin Click shell over the library.

Each command lives in its own module here and only parses options, calls one library
function and formats the result. Library errors (CharRNNError) become one
"Error: ..." line on stderr with the error's exit code; no traceback reaches the user.
Heavy modules (numpy and the model) are imported inside the commands, so that
`charrnn --help` stays fast.
"""

from __future__ import annotations

import sys

import click

from charrnn import __version__
from charrnn.errors import CharRNNError


class CharRNNGroup(click.Group):
    """Maps the library's errors to messages and exit codes at the one boundary."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CharRNNError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=CharRNNGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="charrnn")
def cli():
    """Character-level RNN, LSTM and GRU language models in NumPy.

    \b
    Train a model on any UTF-8 text, then sample from it:
      charrnn train corpora/tales.txt --time-limit 3m
      charrnn sample --seed "KING:" -n 500

    Checkpoints go to checkpoints/<corpus name>/ (latest.npz and best.npz).
    Progress goes to stderr; stdout carries only the product (text or JSON).
    """


from charrnn.cli import sample_cmd, train_cmd  # noqa: E402  (commands register on `cli`)

cli.add_command(train_cmd.train)
cli.add_command(sample_cmd.sample)


def main() -> None:
    cli(prog_name="charrnn")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
