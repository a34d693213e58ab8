"""The command line, through click's CliRunner: train then sample, and the core error cases."""

import json

import pytest
from helpers import TINY, fails, ok, run

from charrnn.cli import cli

SMALL = [*TINY, "--eval-every", "60", "--max-steps", "120"]  # a model that has learned a little


@pytest.fixture
def trained(runner, tiny_corpus, tmp_path):
    ck = tmp_path / "ck"
    result = runner.invoke(cli, ["train", str(tiny_corpus), "--checkpoint-dir", str(ck), *SMALL])
    assert result.exit_code == 0, result.output
    return ck


def test_help_has_examples(runner):
    for args in (["--help"], ["train", "--help"], ["sample", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0
        assert "charrnn" in result.output and "Examples" in result.output or args == ["--help"]


def test_train_writes_checkpoints_and_reports(runner, trained):
    assert (trained / "latest.npz").is_file() and (trained / "best.npz").is_file()
    lines = (trained / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [60, 120]


def test_train_stdout_is_clean_and_json_summary(runner, tiny_corpus, tmp_path):
    result = runner.invoke(cli, ["train", str(tiny_corpus), "--checkpoint-dir", str(tmp_path / "c"), *SMALL, "--json"])
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["steps"] == 120 and summary["best_val_bpc"] > 0
    assert "bits/char" in result.stderr


def test_sample_is_deterministic_and_continues_the_seed(runner, trained):
    args = ["sample", "-c", str(trained), "--seed", "The cat", "-n", "50", "--rng-seed", "3"]
    a = runner.invoke(cli, args)
    b = runner.invoke(cli, args)
    assert a.exit_code == 0 and a.stdout == b.stdout
    assert a.stdout.startswith("The cat") and len(a.stdout) == len("The cat") + 50 + 1
    c = runner.invoke(cli, args[:-1] + ["4"])
    assert c.stdout != a.stdout


def test_sample_greedy_and_stop(runner, trained):
    result = runner.invoke(
        cli, ["sample", "-c", str(trained / "best.npz"), "-s", "The", "-n", "300", "--stop", " ", "--greedy"]
    )
    assert result.exit_code == 0
    assert result.stdout.endswith(" ") and result.stdout.count(" ") == 1


def test_sample_num_samples_json(runner, trained):
    result = runner.invoke(
        cli, ["sample", "-c", str(trained), "-s", "a", "-n", "20", "--num-samples", "3", "--json", "--rng-seed", "0"]
    )
    assert result.exit_code == 0
    objs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objs) == 3 and all(o["seed"] == "a" and len(o["text"]) == 20 for o in objs)
    assert len({o["text"] for o in objs}) > 1


def test_missing_input_file(runner, tmp_path):
    result = runner.invoke(cli, ["train", str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'nope.txt'}: no such file\n"
    assert result.stdout == ""


def test_empty_input_file(runner, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    result = runner.invoke(cli, ["train", str(empty), "--checkpoint-dir", str(tmp_path / "ck")])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {empty} is empty\n"
    assert not (tmp_path / "ck" / "latest.npz").exists()


def test_seed_with_unknown_characters(runner, trained):
    result = runner.invoke(cli, ["sample", "-c", str(trained), "--seed", "The Zq"])
    assert result.exit_code == 2
    assert result.stderr == "Error: the seed contains characters the model never saw: 'Z', 'q'\n"
    assert result.stdout == ""


def test_overwrite_starts_a_new_metrics_file(runner, tiny_corpus, tmp_path):
    ck = tmp_path / "ck"
    args = ["train", str(tiny_corpus), "--checkpoint-dir", str(ck), *SMALL]
    assert runner.invoke(cli, args).exit_code == 0
    assert runner.invoke(cli, args + ["--overwrite"]).exit_code == 0
    steps = [json.loads(line)["step"] for line in (ck / "metrics.jsonl").read_text().splitlines()]
    assert steps == [60, 120]


def test_library_refuses_non_finite_lr_and_temperature():
    import numpy as np

    from charrnn import sampling
    from charrnn.config import ModelConfig, SampleOptions, TrainConfig
    from charrnn.data import Vocab
    from charrnn.errors import ConfigError, UsageError
    from charrnn.model import init_params

    with pytest.raises(ConfigError, match="lr must be a positive finite number"):
        TrainConfig(lr=float("inf"))
    cfg = ModelConfig(vocab_size=2, hidden_size=4, n_layers=1)
    params = init_params(cfg, np.random.default_rng(0))
    with pytest.raises(UsageError, match="temperature must be a positive finite number"):
        sampling.generate(params, cfg, Vocab("ab"), "a", SampleOptions(n=5, temperature=float("nan")), rng_seed=0)


def test_sample_without_a_checkpoint_names_the_run_it_uses(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok(run("train", tiny_corpus, *TINY, "-q"))  # into checkpoints/tiny/
    result = ok(run("sample", "-n", 5))
    assert result.stderr.splitlines()[0] == (
        "using checkpoints/tiny/best.npz, the most recently written run (-c PATH chooses another)"
    )
    assert ok(run("sample", "-n", 5, "-q")).stderr == ""
    assert "using" not in ok(run("sample", "-c", "checkpoints/tiny", "-n", 5)).stderr


def test_sample_takes_the_run_as_an_argument(runner, trained):
    args = ["-n", 30, "--rng-seed", 2, "-q"]
    assert ok(run("sample", trained, *args)).stdout == ok(run("sample", "-c", trained, *args)).stdout
    fails(run("sample", trained, "-c", trained / "latest.npz", *args), 2, "two checkpoints given")


def test_several_samples_are_each_under_a_header(trained):
    args = ["sample", "-c", trained, "-s", "The", "-n", 40, "--num-samples", 3, "--rng-seed", 1]
    texts = [json.loads(line)["text"] for line in ok(run(*args, "--json")).stdout.splitlines()]
    lines = ["The" + text + ("" if text.endswith("\n") else "\n") for text in texts]  # each ends its line
    expected = "".join(f"--- sample {k} of 3 ---\n{line}" for k, line in enumerate(lines, 1))
    assert ok(run(*args)).stdout == expected
    one = ok(run("sample", "-c", trained, "-s", "The", "-n", 40, "--rng-seed", 1)).stdout
    assert "--- sample" not in one


@pytest.mark.parametrize(
    "args, fragment",
    [
        (
            ["-primetext", "The"],
            "-primetext is another tool's option; in charrnn it is --seed (the text to start from)",
        ),
        (["-seed", "123"], "-seed is another tool's option; in charrnn it is --rng-seed (the random seed"),
        (["-length", "20"], "-length: charrnn spells it --length"),
        (["--num_samples", "2"], "--num_samples: charrnn spells it --num-samples"),
        (["-gpuid", "-1"], "-gpuid is another tool's option; charrnn has no such setting"),
    ],
)
def test_other_tools_options_get_a_one_line_hint(trained, args, fragment):
    fails(run("sample", "-c", trained, *args), 2, fragment)


def test_other_tools_options_are_not_looked_for_in_values(trained):
    result = ok(run("sample", "-c", trained, "-s", "The", "-n5", "-t0.5", "--stop", "-seed", "-q"))
    assert result.stdout.startswith("The")
    fails(
        run("train", "-rnn_size", 12, "x.txt"), 2, "-rnn_size is another tool's option; in charrnn it is --hidden-size"
    )


def test_a_seed_of_digits_reminds_that_the_random_seed_is_rng_seed(trained, tmp_path):
    digits = tmp_path / "digits.txt"
    digits.write_text("0123456789 " * 400)
    ok(run("train", digits, "--checkpoint-dir", tmp_path / "d", *TINY, "-q"))
    result = ok(run("sample", "-c", tmp_path / "d", "--seed", "123", "-n", 5))
    assert "note: --seed is the text to start from ('123' is fed to the model); the random seed: --rng-seed" in (
        result.stderr
    )
    fails(
        run("sample", "-c", trained, "--seed", "123"),
        2,
        "--seed is the text to start from, the random seed is --rng-seed",
    )
