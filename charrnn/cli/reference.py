"""docs/cli.md, the reference of every command and option, made from their --help.

    python -m charrnn.cli.reference --write docs/cli.md   # after changing a command or option
    python -m charrnn.cli.reference --check docs/cli.md   # exit 1 if it is out of date

The help is laid out at a fixed width, so the file does not depend on the terminal
that wrote it; tests/test_cli_reference.py fails when the file and the commands differ.
"""

from __future__ import annotations

import sys

import click

WIDTH = 100

HEADER = """# Command-line reference

Every `charrnn` command with its options, as `--help` prints them. This file is
generated: after changing a command, run `python -m charrnn.cli.reference --write docs/cli.md`
(`tests/test_cli_reference.py` fails while it is out of date).
"""


def _sections(command: click.Command, path: list[str], parent: click.Context | None):
    """(command line, help text) of ``command`` and of its subcommands, in the order
    they were added (the order of `charrnn --help`'s examples, not the alphabet's)."""
    ctx = click.Context(
        command,
        info_name=path[-1],
        parent=parent,
        terminal_width=WIDTH,
        max_content_width=WIDTH,
        **command.context_settings,
    )
    yield " ".join(path), command.get_help(ctx)
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _sections(sub, [*path, name], ctx)


def render() -> str:
    """The whole of docs/cli.md."""
    from charrnn.cli import cli

    sections = list(_sections(cli, ["charrnn"], None))
    contents = "\n".join(f"- [`{name}`](#{name.replace(' ', '-')})" for name, _ in sections[1:])
    body = "\n".join(f"## {name}\n\n```text\n{text}\n```\n" for name, text in sections)
    return f"{HEADER}\n{contents}\n\n{body}"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("--write", "--check"):
        print("usage: python -m charrnn.cli.reference --write|--check docs/cli.md", file=sys.stderr)
        return 2
    mode, path = argv
    text = render()
    if mode == "--write":
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return 0
    try:
        with open(path, encoding="utf-8") as f:
            current = f.read()
    except OSError as exc:
        print(f"Error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if current != text:
        print(f"Error: {path} is out of date; run: python -m charrnn.cli.reference --write {path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
