"""docs/cli.md is the commands' own --help: it fails here as soon as they differ."""

import os

from charrnn.cli import reference

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "cli.md")


def test_docs_cli_md_is_up_to_date():
    with open(DOC, encoding="utf-8") as f:
        current = f.read()
    fix = "python -m charrnn.cli.reference --write docs/cli.md"
    assert current == reference.render(), f"docs/cli.md is out of date; run: {fix}"


def test_the_reference_has_every_command_and_option():
    text = reference.render()
    for command in ("train", "sample", "eval", "info", "plot", "corpus list", "corpus get", "vis", "serve"):
        assert f"\n## charrnn {command}\n" in text
    for option in ("--time-limit DURATION", "--report-copying", "--max-chars", "--engine [auto|numpy|numba]"):
        assert option in text


def test_check_fails_on_a_stale_file_and_write_mends_it(tmp_path, capsys):
    stale = tmp_path / "cli.md"
    stale.write_text("# an old reference\n")
    assert reference.main(["--check", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert reference.main(["--write", str(stale)]) == 0
    assert reference.main(["--check", str(stale)]) == 0
