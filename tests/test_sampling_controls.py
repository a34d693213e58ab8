"""`charrnn sample`'s controls through the CLI: a bad --top-p, and priming from a file
(--seed-file). Their definitions, by counting draws, are in test_sampling.py."""

from __future__ import annotations

import pytest
from helpers import fails, make_text, ok, run, train

from charrnn import rundir


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("controls")
    (root / "c.txt").write_text(make_text(6000, seed=4), encoding="utf-8")
    ok(train(root / "c.txt", root / "ck", "--max-steps", "30"))
    return root / "ck"


@pytest.mark.parametrize("value", ["0", "-0.1", "1.5", "nan"])
def test_invalid_top_p_is_a_usage_error(value, trained):
    fails(run("sample", "-c", trained, "--top-p", value, "-n", "5"), 2, "top-p")


# ------------------------------------------------------------- --seed-file


@pytest.fixture
def vocabulary(trained):
    from charrnn import checkpoint

    return checkpoint.load(str(trained / rundir.BEST)).vocab.chars


def test_seed_file_primes_like_seed(trained, tmp_path, vocabulary):
    seed = "The cat sat"
    (tmp_path / "seed.txt").write_text(seed, encoding="utf-8")
    from_file = ok(run("sample", "-c", trained, "--seed-file", tmp_path / "seed.txt", "-n", "40", "--rng-seed", "4"))
    given = ok(run("sample", "-c", trained, "--seed", seed, "-n", "40", "--rng-seed", "4"))
    assert from_file.stdout == given.stdout and from_file.stdout.startswith(seed)


def test_seed_file_from_standard_input(trained):
    from click.testing import CliRunner

    from charrnn.cli import cli

    result = CliRunner().invoke(cli, ["sample", "-c", str(trained), "--seed-file", "-", "-n", "30"], input="The dog")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("The dog") and len(result.stdout) == len("The dog") + 30 + 1


def test_empty_seed_file_means_the_default_seed(trained, tmp_path):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    from_file = ok(run("sample", "-c", trained, "--seed-file", tmp_path / "empty.txt", "-n", "30", "--rng-seed", "4"))
    default = ok(run("sample", "-c", trained, "-n", "30", "--rng-seed", "4"))
    assert from_file.stdout == default.stdout


def test_seed_file_with_characters_the_model_never_saw(trained, tmp_path):
    (tmp_path / "odd.txt").write_text("caf\u00e9 \u2014 the \u00e9t\u00e9", encoding="utf-8")
    fails(
        run("sample", "-c", trained, "--seed-file", tmp_path / "odd.txt", "-n", "10"),
        2,
        "the seed contains characters the model never saw: '\u00e9', '\u2014'",
    )
    result = ok(run("sample", "-c", trained, "--seed-file", tmp_path / "odd.txt", "--drop-unknown", "-n", "10"))
    assert "note: dropped 4 characters the model never saw: '\u00e9' x3, '\u2014' x1" in result.stderr
    assert result.stdout.startswith("caf  the t")


def test_seed_and_seed_file_together_are_refused(trained, tmp_path):
    (tmp_path / "s.txt").write_text("a", encoding="utf-8")
    fails(run("sample", "-c", trained, "--seed", "a", "--seed-file", tmp_path / "s.txt"), 2, "not both")
