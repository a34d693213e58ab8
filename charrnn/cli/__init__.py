"""The `charrnn` command: a thin Click shell over the library.

Each command lives in its own module here and only parses options, calls one library
function and formats the result. Library errors (CharRNNError) become one
"Error: ..." line on stderr with the error's exit code; no traceback reaches the user.
Heavy modules (numpy and the model) are imported inside the commands, so that
`charrnn --help` stays fast.
"""

from __future__ import annotations

import signal
import sys

import click

from charrnn import __version__
from charrnn.errors import CharRNNError, Interrupted


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that every `with` block on the
    way out (the run directory's lock, temp files) cleans up."""

    signum = signal.SIGTERM


def _terminate(signum, frame):
    raise Terminated()


class CharRNNGroup(click.Group):
    """The one boundary where errors become messages: a single "Error: ..." line on
    stderr and an exit code (1 bad data or state, 2 bad usage). A signal is no one's
    mistake: "note: interrupted ..." and 128+N for signal N."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            previous = signal.signal(signal.SIGTERM, _terminate)
        except ValueError:  # not the main thread
            previous = None
        try:
            args = list(sys.argv[1:] if args is None else args)
            _refuse_other_tools_options(self, args)
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except Interrupted as exc:  # not the user's mistake: said as a note, with the signal's exit code
            if _speaks():
                click.echo(f"note: {exc}", err=True)
            code = exc.exit_code
        except CharRNNError as exc:
            code = _fail(str(exc), exc.exit_code)
        except click.ClickException as exc:  # usage errors included (exit 2)
            code = _fail(exc.format_message(), exc.exit_code)
        except click.Abort as exc:  # a KeyboardInterrupt while click parses the command line
            if isinstance(exc.__cause__, KeyboardInterrupt):
                click.echo("note: interrupted", err=True)
                code = 130
            else:
                code = _fail("aborted", 1)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM outside training's own handling
            signum = getattr(exc, "signum", signal.SIGINT)
            raise Interrupted(f"interrupted by {signal.Signals(signum).name}", signum) from None


def _refuse_other_tools_options(group: click.Group, args: list[str]) -> None:
    """char-rnn's -primetext or nanoGPT's --num_samples, refused with the charrnn
    spelling before Click reads them as something else (habits.py)."""
    from charrnn.cli import habits

    name = next((a for a in args if not a.startswith("-")), None)
    command = group.commands.get(name) if name else None
    if command is None or isinstance(command, click.Group):
        return
    message = habits.hint(command, args[args.index(name) + 1 :])
    if message:
        raise click.UsageError(message)


def _fail(message: str, code: int) -> int:
    world = _mpi_world()
    if world is not None and not world.leaving_together():  # the others wait for this rank: end them
        click.echo(f"Error: rank {world.rank}: {message}", err=True)
        world.abort(code)
    if _speaks():
        click.echo(f"Error: {message}", err=True)
    return code


def _mpi_world():
    """The MPI world of a `charrnn train` started by mpirun or srun, None otherwise
    (distributed.py is imported only by commands that can run on several ranks)."""
    module = sys.modules.get("charrnn.distributed")
    world = module.current() if module is not None else None
    return world if world is not None and world.size > 1 else None


def _speaks() -> bool:
    """Whether this process prints messages: always, but for the ranks after rank 0 of
    an MPI run, whose messages rank 0 prints for all."""
    world = _mpi_world()
    return world is None or world.root


@click.group(cls=CharRNNGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="charrnn")
def cli():
    """Character-level RNN, LSTM and GRU language models in NumPy.

    \b
    Train a model on any UTF-8 text, then sample from it:
      charrnn train corpora/tales.txt --time-limit 3m
      charrnn sample --seed "LISK:" -n 500

    \b
    Compare, inspect and plot runs; fetch public corpora:
      charrnn eval -c checkpoints/tales corpora/tales.txt
      charrnn info checkpoints/tales
      charrnn plot checkpoints/*/ -o loss.png
      charrnn corpus get tinyshakespeare

    \b
    Look inside a model, and write with it:
      charrnn vis -c checkpoints/tales corpora/tales.txt -o page.html
      charrnn serve -c checkpoints/tales          # http://127.0.0.1:8000/

    Checkpoints go to checkpoints/<corpus name>/ (latest.npz, best.npz, metrics.jsonl).
    Progress goes to stderr; stdout carries only the product (text or JSON).
    """


from charrnn.cli import corpus_cmd, eval_cmd, info_cmd, plot_cmd, sample_cmd, serve_cmd, train_cmd, vis_cmd  # noqa: E402

cli.add_command(train_cmd.train)
cli.add_command(sample_cmd.sample)
cli.add_command(eval_cmd.eval_)
cli.add_command(info_cmd.info)
cli.add_command(plot_cmd.plot)
cli.add_command(corpus_cmd.corpus)
cli.add_command(vis_cmd.vis)
cli.add_command(serve_cmd.serve)


def main() -> None:
    cli(prog_name="charrnn")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
