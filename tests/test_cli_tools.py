"""`charrnn eval`, `info` and `plot`, and the promises scripts rely on: stdout carries only
the product, --json is one object per line, and logs stay on stderr."""

import json
import math
import sys

import pytest
from click.testing import CliRunner
from helpers import TINY as _TINY
from helpers import make_text

from charrnn.cli import cli

TINY = [*_TINY, "--eval-every", "10", "--max-steps", "30", "--dropout", "0"]  # a model that has learned a little


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny trained run shared by the tests here: (checkpoint dir, its corpus)."""
    tmp = tmp_path_factory.mktemp("run")
    corpus = tmp / "tiny.txt"
    corpus.write_text(make_text(5000))
    result = CliRunner().invoke(cli, ["train", str(corpus), "--checkpoint-dir", str(tmp / "ck"), *TINY, "-q"])
    assert result.exit_code == 0, result.output
    return tmp / "ck", corpus


@pytest.mark.parametrize("command", [["eval"], ["info"], ["plot"], ["corpus"], ["corpus", "list"], ["corpus", "get"]])
def test_help_has_examples(runner, command):
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and "charrnn " in result.output


def test_eval_held_out_reproduces_the_validation_loss(runner, run):
    ck, corpus = run
    info = json.loads(runner.invoke(cli, ["info", str(ck), "--json"]).stdout)
    result = runner.invoke(cli, ["eval", "-c", str(ck), str(corpus), "--held-out", "--json"])
    assert result.exit_code == 0, result.output
    score = json.loads(result.stdout)
    assert score["loss_nats"] == pytest.approx(info["best_val_loss"], rel=1e-6)
    assert score["scored"] == 500 and score["held_out"] and score["unknown_chars"] == 0
    # without FILE: the checkpoint's own corpus, held-out part
    own = json.loads(runner.invoke(cli, ["eval", "-c", str(ck), "--json"]).stdout)
    assert own["loss_nats"] == score["loss_nats"] and own["file"] == str(corpus)


def test_eval_table_without_the_cold_start_columns_unless_asked(runner, run):
    ck, corpus = run
    result = runner.invoke(cli, ["eval", "-c", str(ck), str(corpus)])
    assert result.exit_code == 0
    header, row = result.stdout.splitlines()
    assert header.split()[-1] == "perplexity" and len(row.split()) == 7


def test_eval_table_and_units(runner, run):
    ck, corpus = run
    result = runner.invoke(cli, ["eval", "-c", str(ck), str(corpus), "--cold-start"])
    assert result.exit_code == 0 and result.stderr == ""
    header, row = result.stdout.splitlines()
    assert header.split() == [
        "checkpoint",
        "file",
        "scored",
        "unknown",
        "nats/char",
        "bits/char",
        "perplexity",
        "cold16",
        "warm16",
        "cold64",
        "warm64",
    ]
    nats, bpc, ppl = map(float, row.split()[4:7])
    cold16, warm16, cold64, warm64 = map(float, row.split()[7:])
    assert all(0 < v < 10 for v in (cold16, warm16, cold64, warm64))
    assert bpc == pytest.approx(nats / math.log(2), abs=1e-3) and ppl == pytest.approx(math.exp(nats), rel=1e-3)
    assert row.split()[2] == "4,999"  # every character but the first, which nothing predicts


def test_eval_counts_characters_outside_the_vocabulary(runner, run, tmp_path):
    ck, _ = run
    text = tmp_path / "other.txt"
    text.write_text("the cat sat. ZZ the dog ran! Q\n" * 10)
    result = runner.invoke(cli, ["eval", "-c", str(ck), str(text), "--json"])
    assert result.exit_code == 0
    score = json.loads(result.stdout)
    assert score["unknown"] == {"Z": 20, "Q": 10} and score["unknown_chars"] == 30
    assert score["chars"] == 310 and score["scored"] == 310 - 30 - 1
    assert "30 characters outside the vocabulary" in result.stderr and "'Z' x20" in result.stderr
    tail = json.loads(runner.invoke(cli, ["eval", "-c", str(ck), str(text), "--json", "--held-out"]).stdout)
    assert tail["unknown"] == {"Z": 2, "Q": 1}  # only the scored last 10 % (one of the ten lines)
    assert tail["scored"] == 31 - 3


def test_eval_streams_in_blocks_like_one_pass(runner, run, monkeypatch):
    """Blocks carry context across their boundary: the loss barely moves with block size."""
    from charrnn import evaluation

    ck, corpus = run
    whole = json.loads(runner.invoke(cli, ["eval", "-c", str(ck), str(corpus), "--json"]).stdout)
    monkeypatch.setattr(evaluation, "BLOCK_CHARS", 700)
    blocked = json.loads(runner.invoke(cli, ["eval", "-c", str(ck), str(corpus), "--json"]).stdout)
    assert blocked["scored"] == whole["scored"]
    assert blocked["loss_nats"] == pytest.approx(whole["loss_nats"], rel=0.02)


def test_eval_errors(runner, run, tmp_path):
    ck, corpus = run
    missing = runner.invoke(cli, ["eval", "-c", str(tmp_path / "nope"), str(corpus)])
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: no checkpoint at ")
    no_ckpt = runner.invoke(cli, ["eval", str(corpus)])
    assert no_ckpt.exit_code == 2
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = runner.invoke(cli, ["eval", "-c", str(ck), str(empty)])
    assert result.exit_code == 1 and result.stderr == f"Error: {empty} is empty\n"


def test_info_text_and_json(runner, run):
    ck, corpus = run
    result = runner.invoke(cli, ["info", str(ck)])
    assert result.exit_code == 0 and result.stderr == ""
    fields = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(fields) == {
        "checkpoint",
        "model",
        "parameters",
        "vocabulary",
        "training",
        "progress",
        "validation",
        "cold",
        "corpus",
    }
    assert "from a fresh state against" in fields["cold"]
    assert "lstm, 1 layer(s) x 12 hidden units" in fields["model"]
    assert "30 steps" in fields["progress"] and "bits/char" in fields["validation"]
    assert str(corpus) in fields["corpus"] and "5,000 chars" in fields["corpus"]
    facts = json.loads(runner.invoke(cli, ["info", str(ck / "latest.npz"), "--json"]).stdout)
    assert facts["steps"] == 30 and facts["vocab_size"] == len(facts["vocab"])
    assert facts["n_params"] == int(fields["parameters"].split()[1].replace(",", ""))
    assert facts["corpus"]["path"] == str(corpus) and "rng_state" not in facts
    assert set(facts["cold_start"]) == {"cold_0_15", "warm_0_15", "cold_0_63", "warm_0_63"}


def test_train_quiet_and_json_keep_streams_apart(runner, tmp_path):
    corpus = tmp_path / "t.txt"
    corpus.write_text(make_text(3000))
    result = runner.invoke(cli, ["train", str(corpus), "--checkpoint-dir", str(tmp_path / "c"), *TINY, "--json", "-q"])
    assert result.exit_code == 0 and result.stderr == ""
    summary = json.loads(result.stdout)
    assert summary["status"] == "ok" and summary["checkpoint_dir"] == str(tmp_path / "c")
    records = [json.loads(line) for line in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert set(records[0]) >= {"step", "epoch", "elapsed", "lr", "train_loss", "val_loss", "val_bpc", "chars_per_s"}
    assert [r["train_from"] for r in records] == [1, 11, 21]  # train_loss: the mean since the previous record


def test_plot_draws_a_png(runner, run, tmp_path):
    pytest.importorskip("matplotlib")
    ck, _ = run
    out = tmp_path / "loss.png"
    result = runner.invoke(cli, ["plot", str(ck), str(ck / "metrics.jsonl"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert result.stdout == "" and f"wrote {out} (2 runs)" in result.stderr


def test_plot_reads_what_a_crash_left(tmp_path):
    from charrnn.metrics import read as read_metrics

    # a run resumed from its step-10 checkpoint after reaching step 30, then killed mid-write
    lines = [
        {"step": s, "val_loss": v, "train_loss": 2.1, "elapsed": s}
        for s, v in ((10, 2.0), (20, 2.0), (30, 2.0), (20, 1.5), (30, 1.4))
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(map(json.dumps, lines)) + '\n{"step": 4')
    records, skipped = read_metrics(str(tmp_path))
    assert [(r["step"], r["val_loss"]) for r in records] == [(10, 2.0), (20, 1.5), (30, 1.4)]
    assert skipped == 1


def test_plot_without_matplotlib_says_how_to_install(runner, run, tmp_path, monkeypatch):
    ck, _ = run
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    result = runner.invoke(cli, ["plot", str(ck), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 1
    assert result.stderr == "Error: charrnn plot needs matplotlib: pip install 'charrnn[plot]'\n"


def test_plot_a_directory_without_metrics(runner, tmp_path):
    result = runner.invoke(cli, ["plot", str(tmp_path), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 1 and "no metrics.jsonl in" in result.stderr
