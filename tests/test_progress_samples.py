"""Samples while training: one at each validation, on stderr and in metrics.jsonl,
drawn without touching the training state."""

import json

from helpers import TINY, assert_same_run, make_text, ok, run

from charrnn import checkpoint, rundir

STEPS = ["--max-steps", "20", "--eval-every", "10", "--dropout", "0.2", "--layers", "2"]


def rows(directory):
    with open(directory / "metrics.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_each_validation_prints_and_stores_a_sample(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_text(3000, seed=2), encoding="utf-8")
    result = ok(run("train", corpus, "--checkpoint-dir", tmp_path / "ck", *TINY, *STEPS, "--sample-chars", "37"))
    assert result.stdout == ""  # the samples are progress, not product
    assert result.stderr.count("sample at step ") == 2
    samples = [r["sample"] for r in rows(tmp_path / "ck")]
    assert [len(s) for s in samples] == [37, 37]
    assert all(set(s) <= set(make_text(3000, seed=2)) for s in samples)
    for step, text in zip((10, 20), samples):
        assert f"sample at step {step}:\n{text}\n" in result.stderr


def test_sampling_leaves_the_training_unchanged(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_text(3000, seed=2), encoding="utf-8")
    ok(run("train", corpus, "--checkpoint-dir", tmp_path / "with", *TINY, *STEPS, "--sample-chars", "200"))
    ok(run("train", corpus, "--checkpoint-dir", tmp_path / "without", *TINY, *STEPS, "--sample-chars", "0"))
    assert_same_run(
        checkpoint.load(str(tmp_path / "with" / rundir.LATEST)),
        checkpoint.load(str(tmp_path / "without" / rundir.LATEST)),
    )
    assert "sample" not in rows(tmp_path / "without")[-1]
    assert [r["val_loss"] for r in rows(tmp_path / "with")] == [r["val_loss"] for r in rows(tmp_path / "without")]


def test_same_weights_give_the_same_sample(tmp_path):
    # the generator is seeded by --rng-seed alone: resuming a finished run's last
    # validation, or any two validations of equal weights, show the same text
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_text(3000, seed=2), encoding="utf-8")
    for name in ("a", "b"):
        ok(run("train", corpus, "--checkpoint-dir", tmp_path / name, *TINY, *STEPS))
    assert [r["sample"] for r in rows(tmp_path / "a")] == [r["sample"] for r in rows(tmp_path / "b")]
