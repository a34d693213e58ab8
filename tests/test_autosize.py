"""The automatic model choice: a pure function of (corpus size, budget, measured speed),
tested on its own; and when `charrnn train` uses it (and when it must not)."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import TINY, make_text, ok, run

from charrnn import autosize, checkpoint, orchestrate, rundir
from charrnn.model import n_params

# seconds per training character = fixed + per_gflop x GFLOP per character: a fit to the
# LSTM 2x96..2x320 rates of the 2-minute grid on the 2-core Xeon-207 (benchmarks/RESULTS.md)
GRID_MACHINE = autosize.Speed(fixed=6.17e-6, per_gflop=8.11e-3)
V = 65


def choice(n_chars, budget, speed=GRID_MACHINE):
    return autosize.choose(n_chars, budget, speed, V)


def hidden(n_chars, budget, speed=GRID_MACHINE) -> int:
    return choice(n_chars, budget, speed).model["hidden_size"]


def test_the_choice_is_a_pure_function():
    assert choice(1_000_000, 600) == choice(1_000_000, 600)
    faster = autosize.Speed(GRID_MACHINE.fixed / 3, GRID_MACHINE.per_gflop / 3)
    assert choice(1_000_000, 600, faster) == choice(1_000_000, 600, faster)


def test_more_time_or_a_faster_machine_buys_a_larger_model():
    sizes = [hidden(3_000_000, t) for t in (30, 120, 600, 3600)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    faster = autosize.Speed(GRID_MACHINE.fixed / 3, GRID_MACHINE.per_gflop / 3)
    assert hidden(3_000_000, 600, faster) > hidden(3_000_000, 600)


def test_the_chosen_model_reads_enough_characters_per_parameter():
    def reads_enough(H, n, budget):
        cfg = autosize.candidate(H, V)
        D = GRID_MACHINE.rate(cfg) * budget
        return D >= autosize.chars_per_param(D / (n - round(n * 0.1))) * n_params(cfg)

    for n, budget in ((3_000_000, 120), (3_000_000, 600), (20_000_000, 3600), (1_000_000, 600)):
        H = hidden(n, budget)
        assert reads_enough(H, n, budget)
        i = autosize.LADDER.index(H)
        if i + 1 < len(autosize.LADDER):  # and the next size up would not
            assert not reads_enough(autosize.LADDER[i + 1], n, budget)


def test_a_text_read_about_once_wants_more_characters_per_parameter():
    needs = [autosize.chars_per_param(e) for e in (0.3, 1.0, 1.4, 2.0, 5.0)]
    assert needs == sorted(needs, reverse=True)
    assert needs[0] == needs[1] == autosize.CHARS_PER_PARAM[0] and needs[-1] == needs[-2] == autosize.CHARS_PER_PARAM[1]
    # the grid's cells on its machine: War and Peace in 2 minutes gets the smaller 2x192,
    # tiny Shakespeare in 2 minutes the 2x256, in 10 minutes the 2x384
    assert [hidden(3_196_211, 120), hidden(1_115_394, 120), hidden(1_115_394, 600)] == [192, 256, 384]


def test_a_small_text_gets_a_small_model_and_more_dropout():
    small, large = choice(50_000, 600), choice(3_000_000, 600)
    assert small.model["hidden_size"] < large.model["hidden_size"]
    assert small.model["dropout"] > large.model["dropout"]
    P = n_params(autosize.candidate(small.model["hidden_size"], V))
    assert P <= autosize.PARAMS_PER_CHAR * 45_000  # parameters per training character
    assert hidden(500, 600) == autosize.LADDER[0]  # the smallest candidate, never none


def test_dropout_grows_with_epochs_within_its_range():
    values = [autosize.dropout_for(e) for e in (0.2, 1, 3, 10, 30, 100, 1000)]
    assert values == sorted(values)
    assert values[0] == values[1] == autosize.DROPOUT_RANGE[0] and values[-1] == autosize.DROPOUT_RANGE[1]


def test_smaller_models_take_larger_steps():
    rates = [autosize.lr_for(H) for H in autosize.LADDER]
    assert rates == sorted(rates, reverse=True) and max(rates) <= autosize.LR_MAX
    assert autosize.lr_for(384) == autosize.LR_AT_384
    few = [autosize.lr_for(384, e) for e in (0.5, 1.5, 2.0, 3.0, 30.0)]
    assert few == sorted(few, reverse=True) and few[0] == few[1] == round(autosize.LR_AT_384 * 1.6, 5)
    assert few[-1] == few[-2] == autosize.LR_AT_384


def test_validation_takes_a_bounded_share_of_the_budget():
    steps, budget, rate = 1000, 120.0, 20_000
    every = autosize.eval_every(steps, val_chars=100_000, rate=rate, budget=budget)
    evals = steps // every
    seconds = evals * 100_000 / (autosize.EVAL_SPEEDUP * rate)
    assert autosize.EVALS[0] <= evals and seconds <= autosize.EVAL_SHARE * budget
    # a held-out text too large for that still gets the fewest validations, no fewer
    assert steps // autosize.eval_every(steps, val_chars=10**8, rate=rate, budget=budget) == autosize.EVALS[0]
    assert autosize.eval_every(steps, val_chars=1_000, rate=rate, budget=budget) == steps // autosize.EVALS[1]


def test_the_reason_names_the_model_and_how_to_override():
    c = choice(1_115_394, 600)
    assert c.reason.startswith(f"auto: lstm 2x{c.model['hidden_size']}, dropout ")
    assert "pass --hidden-size to choose yourself" in c.reason


# ------------------------------------------------------------- when train uses it


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(make_text(6000, seed=5), encoding="utf-8")
    return path


def fake_probe(monkeypatch, calls):
    def probe(vocab_size, train_cfg, seed=0, engine=None, world=None):
        calls.append(vocab_size)
        return autosize.Speed(fixed=1e-6, per_gflop=1e-3), 0.25

    monkeypatch.setattr(autosize, "probe", probe)


def test_time_limited_run_without_size_options_is_chosen_and_counts_the_probe(corpus, tmp_path, monkeypatch):
    calls = []
    fake_probe(monkeypatch, calls)
    small = ["--seq-len", "8", "--batch-size", "3", "--time-limit", "1s"]
    result = ok(run("train", corpus, "--checkpoint-dir", tmp_path / "ck", *small))
    assert calls == [len(set(corpus.read_text()))]
    assert "auto: lstm 2x" in result.stderr
    ck = checkpoint.load(str(tmp_path / "ck" / rundir.LATEST))
    assert ck.model_cfg.hidden_size in autosize.LADDER and ck.model_cfg.n_layers == 2
    assert ck.progress["elapsed"] >= 0.25  # the probe's time is part of the budget


@pytest.mark.parametrize("given", [["--hidden-size", "12"], ["--layers", "1"], ["--cell", "gru"]])
def test_an_explicit_size_keeps_the_fixed_defaults(given, corpus, tmp_path, monkeypatch):
    calls = []
    fake_probe(monkeypatch, calls)
    opts = ["--seq-len", "8", "--batch-size", "3", "--time-limit", "1s", *given]
    result = ok(run("train", corpus, "--checkpoint-dir", tmp_path / "ck", *opts))
    assert calls == [] and "auto:" not in result.stderr


def test_a_step_limit_sizes_the_model_for_its_steps_without_a_probe(corpus, tmp_path, monkeypatch):
    calls = []
    fake_probe(monkeypatch, calls)
    opts = ["--seq-len", "8", "--batch-size", "3", "--max-steps", "6", "--time-limit", "0"]
    result = ok(run("train", corpus, "--checkpoint-dir", tmp_path / "ck", *opts))
    expected = autosize.choose_for_steps(6000, 6, len(set(corpus.read_text())), 0.1, 3, 8)
    assert calls == [] and expected.reason in result.stderr and "the same on every machine" in expected.reason
    ck = checkpoint.load(str(tmp_path / "ck" / rundir.LATEST))
    assert ck.model_cfg.hidden_size == expected.model["hidden_size"] and ck.progress["step"] == 6
    assert ck.train_cfg.lr == expected.train["lr"] and ck.train_cfg.eval_every == expected.train["eval_every"]
    capped = ok(run("train", corpus, "--checkpoint-dir", tmp_path / "ck2", *opts[:-2], "--max-steps", "6"))
    assert "--time-limit 10m still ends it if reached first" in capped.stderr


def test_choose_for_steps_is_pure_and_grows_with_the_steps():
    few = autosize.choose_for_steps(96_000, 40, 80)
    assert few == autosize.choose_for_steps(96_000, 40, 80)
    assert few.model["hidden_size"] == autosize.LADDER[0]  # 40 steps read 164k characters: the smallest model
    sizes = [autosize.choose_for_steps(1_115_394, s, 65).model["hidden_size"] for s in (100, 1_000, 5_000, 50_000)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    # the characters read set the model, whether they come from a time budget or a step count
    per_step = 64 * 64
    one_step_a_second = autosize.Speed(fixed=1.0 / per_step, per_gflop=0.0)
    timed = autosize.choose(1_115_394, 1_000, one_step_a_second, 65)
    assert timed.model == autosize.choose_for_steps(1_115_394, 1_000, 65).model


def test_an_explicit_option_beside_the_automatic_ones_is_used(corpus, tmp_path, monkeypatch):
    fake_probe(monkeypatch, [])
    opts = ["--seq-len", "8", "--batch-size", "3", "--time-limit", "1s", "--dropout", "0.05", "--lr", "0.002"]
    ok(run("train", corpus, "--checkpoint-dir", tmp_path / "ck", *opts))
    ck = checkpoint.load(str(tmp_path / "ck" / rundir.LATEST))
    assert ck.model_cfg.dropout == 0.05 and ck.train_cfg.lr == 0.002


def test_resume_never_probes(corpus, tmp_path, monkeypatch):
    ok(run("train", corpus, "--checkpoint-dir", tmp_path / "ck", *TINY))
    calls = []
    fake_probe(monkeypatch, calls)
    ok(run("train", corpus, "--checkpoint-dir", tmp_path / "ck", "--resume", "--max-steps", "0", "--time-limit", "1s"))
    assert calls == []


def test_wants_auto_reads_only_the_request():
    base = orchestrate.Request(model={}, train={"time_limit": 600.0})
    assert orchestrate.wants_auto(base) == "time"
    assert orchestrate.wants_auto(dataclasses.replace(base, model={"hidden_size": 64})) is None
    assert orchestrate.wants_auto(dataclasses.replace(base, train={"time_limit": 600.0, "max_steps": 10})) == "steps"
    assert orchestrate.wants_auto(dataclasses.replace(base, train={"time_limit": 0.0})) is None
