"""What a run shows while it trains: the status (how far, how long, how much is left),
lines instead of a bar where stderr is not a terminal, validation's own progress, the
mean training loss between validations, and the note when validation keeps rising."""

import json

import numpy as np
import pytest
from helpers import TINY, make_text, ok, run

from charrnn import evaluation, metrics, model, progress, training
from charrnn.config import ModelConfig, TrainConfig


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(make_text(3000, seed=2), encoding="utf-8")
    return path


def test_status_counts_towards_the_first_limit():
    timed = TrainConfig(time_limit=600)
    assert progress.fraction(timed, 55, 150.0) == 0.25
    line = progress.status(timed, 55, 150.0, 2.5, 2.1034, None, 8300.4)
    assert line == "step 55  2m 30s of 10m, 7m 30s left  train 2.103  val -  8,300 chars/s"
    both = TrainConfig(time_limit=600, max_steps=100)
    assert progress.fraction(both, 55, 150.0) == 0.55  # the steps run out first
    assert progress.time_left(both, 55, 150.0, 2.0) == 90.0
    assert progress.status(both, 55, 150.0, 2.0, None, 1.5, 10).startswith("step 55 of 100  2m 30s of 10m, 1m 30s left")
    unlimited = TrainConfig(time_limit=0)
    assert progress.fraction(unlimited, 5, 1.0) is None and progress.time_left(unlimited, 5, 1.0, 0.2) is None


def test_without_a_terminal_the_status_is_a_line_every_few_seconds(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.0)  # every step and every scoring call
    result = ok(
        run("train", corpus, "--checkpoint-dir", tmp_path / "ck", *TINY, "--time-limit", "10m", "--sample-chars", 0)
    )
    status = [line for line in result.stderr.splitlines() if line.startswith("step ") and "left" in line]
    assert len(status) == 10
    assert status[0].startswith("step 1 of 10  ") and " of 10m, " in status[0] and " left  train " in status[0]
    assert any(line.startswith("validating: 100% of ") for line in result.stderr.splitlines())
    quiet = ok(run("train", corpus, "--checkpoint-dir", tmp_path / "q", *TINY, "-q"))
    assert quiet.stderr == ""


def test_slow_validation_reports_its_progress(monkeypatch):
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.0)
    lines = []
    shown = progress.Progress(TrainConfig(), terminal=False, report=lines.append)
    validating = shown.validating(1000)
    ids = np.arange(2000) % 7
    cfg = ModelConfig(cell="gru", vocab_size=7, hidden_size=8, n_layers=1)
    params = model.init_params(cfg, np.random.default_rng(0))
    evaluation.char_losses(params, cfg, ids, 1000, progress=validating)
    assert lines and lines[-1].startswith("validating: 100% of 1,000 characters in ")


def test_train_loss_is_the_mean_since_the_previous_validation(corpus, tmp_path, monkeypatch):
    losses = {}
    real = training.train_step

    def recorded(run_, st, streams, stop=None):
        loss = real(run_, st, streams, stop)
        losses[st.step] = loss
        return loss

    monkeypatch.setattr(training, "train_step", recorded)
    result = ok(run("train", corpus, "--checkpoint-dir", tmp_path / "ck", *TINY, "--eval-every", 4))
    rows = [json.loads(line) for line in (tmp_path / "ck" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["train_from"]) for r in rows] == [(4, 1), (8, 5), (10, 9)]
    for r in rows:
        mean = np.mean([losses[s] for s in range(r["train_from"], r["step"] + 1)])
        assert r["train_loss"] == pytest.approx(mean, rel=1e-12)
        assert f"train {r['train_loss']:.4f} (mean of steps {r['train_from']}-{r['step']})" in result.stderr


def record(step, val):
    return {"step": step, "val_loss": val}


def test_memorising_is_a_rise_that_lasts():
    assert metrics.memorising([record(s, v) for s, v in [(1, 2.0), (2, 1.5), (3, 1.6), (4, 1.7)]]) is None  # 2 only
    rising = [record(s, v) for s, v in [(10, 2.0), (20, 1.5), (30, 1.6), (40, 1.55), (50, 1.7)]]
    line = metrics.memorising(rising, "ck")
    assert line.startswith("validation has not improved for 3 validations: best 1.5000 at step 20, now 1.7000 at")
    assert "ck/best.npz keeps step 20" in line
    flat = [record(s, v) for s, v in [(10, 2.0), (20, 1.5), (30, 1.501), (40, 1.502), (50, 1.503)]]
    assert metrics.memorising(flat) is None  # within the margin: not a rise


def test_train_and_info_say_when_validation_keeps_rising(corpus, tmp_path, monkeypatch):
    real = evaluation.char_losses
    calls = []

    def worse_after_the_first(*args, **kwargs):  # validation gets worse at every call after the first
        out = real(*args, **kwargs)
        calls.append(1)
        return None if out is None else out + 0.1 * (len(calls) - 1)

    monkeypatch.setattr(evaluation, "char_losses", worse_after_the_first)
    ck = tmp_path / "ck"
    result = ok(run("train", corpus, "--checkpoint-dir", ck, *TINY, "--eval-every", 2, "--lr", "1e-6"))
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: validation has not improved")]
    assert len(notes) == 1 and "the model has begun to memorise its text" in notes[0]
    monkeypatch.undo()
    shown = ok(run("info", ck)).stdout
    assert "went on to step 10 (validation " in shown and "this checkpoint is from step 2" in shown
    assert "note        validation has not improved for 4 validations: best " in shown
    latest = ok(run("info", ck / "latest.npz")).stdout
    assert "went on to step" not in latest and "note        validation has not improved" in latest
