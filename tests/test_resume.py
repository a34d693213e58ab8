"""Resume: an interrupted run continued with --resume is the run that was not
interrupted, bit for bit; a resume that cannot be exact is refused and leaves the
checkpoint untouched."""

import pytest
from helpers import assert_same_run, fails, interrupt_at, interrupted, make_text, ok, run, sha256, train

from charrnn import checkpoint, rundir
from charrnn.config import format_duration

N = 40  # steps before the interruption; 2N crosses an epoch boundary (74 chunks of 8 x 3)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(make_text(2000, seed=1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "cell,optimizer,batch,extra",
    [
        ("rnn", "sgd", 3, []),
        ("lstm", "adam", 3, []),
        ("gru", "rmsprop", 3, []),
        ("lstm", "adagrad", 3, []),
        ("gru", "adam", 16, []),
        ("lstm", "adam", 16, ["--reset-prob", "0.25", "--clip-mode", "value", "--clip", "0.01"]),
    ],
)
def test_interrupt_and_resume_equals_an_uninterrupted_run(cell, optimizer, batch, extra, corpus, tmp_path, monkeypatch):
    # dropout > 0, so the generator's state matters; cosine lr over --max-steps 2N, so
    # the schedule's position matters; two layers, so all of the carried state matters;
    # a batch of 16 is split into shards that draw their own dropout masks
    opts = [
        "--cell",
        cell,
        "--optimizer",
        optimizer,
        "--layers",
        "2",
        "--dropout",
        "0.3",
        "--max-steps",
        2 * N,
        "--eval-every",
        N,
        "--lr",
        "0.01",
        "--batch-size",
        batch,
        *extra,
    ]

    ok(train(corpus, tmp_path / "straight", *opts))
    with monkeypatch.context() as m:
        interrupt_at(m, N)
        interrupted(train(corpus, tmp_path / "resumed", *opts), 130, f"at step {N}")
    assert checkpoint.load(tmp_path / "resumed" / rundir.LATEST).progress["step"] == N
    ok(run("train", corpus, "--checkpoint-dir", tmp_path / "resumed", "--resume", "-q"))
    assert_same_run(
        checkpoint.load(str(tmp_path / "straight" / rundir.LATEST)),
        checkpoint.load(str(tmp_path / "resumed" / rundir.LATEST)),
    )


def test_extending_max_steps_continues_exactly(corpus, tmp_path):
    """N steps, then --resume --max-steps 2N, is 2N steps (constant lr: the cosine
    schedule is defined by the run's length, which this changes on purpose)."""
    opts = ["--lr-schedule", "constant", "--dropout", "0.2", "--eval-every", N]
    ok(train(corpus, tmp_path / "straight", *opts, "--max-steps", 2 * N))
    ok(train(corpus, tmp_path / "twice", *opts, "--max-steps", N))
    ok(run("train", corpus, "--checkpoint-dir", tmp_path / "twice", "--resume", "--max-steps", 2 * N, "-q"))
    assert_same_run(
        checkpoint.load(str(tmp_path / "straight" / rundir.LATEST)),
        checkpoint.load(str(tmp_path / "twice" / rundir.LATEST)),
    )


@pytest.fixture
def trained(corpus, tmp_path):
    ck = tmp_path / "ck"
    ok(train(corpus, ck))
    return ck


def test_resume_with_another_vocabulary_is_refused(trained, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text(make_text(2000, seed=1).upper() + "@", encoding="utf-8")
    before = sha256(trained / rundir.LATEST)
    fails(
        run("train", other, "--checkpoint-dir", trained, "--resume"),
        1,
        "vocabulary mismatch",
        "new characters '@', 'E'",
        "and ",
    )
    assert sha256(trained / rundir.LATEST) == before


@pytest.mark.parametrize(
    "option,value,saved",
    [
        ("--hidden-size", "16", "12"),
        ("--layers", "2", "1"),
        ("--cell", "gru", "lstm"),
        ("--dropout", "0.5", "0.3"),
        ("--seq-len", "9", "8"),
        ("--batch-size", "4", "3"),
        ("--optimizer", "sgd", "adam"),
        ("--lr", "0.1", "0.003"),
        ("--rng-seed", "7", "1234"),
    ],
)
def test_resume_with_contradicting_options_names_the_flag(trained, corpus, option, value, saved):
    before = sorted(p.name for p in trained.iterdir()), sha256(trained / rundir.LATEST)
    fails(
        run("train", corpus, "--checkpoint-dir", trained, "--resume", option, value),
        2,  # a usage mistake, like an existing run without --resume
        f"{option} {value} contradicts the checkpoint, which was trained with {option} {saved}",
        f"drop {option}",
    )
    assert (sorted(p.name for p in trained.iterdir()), sha256(trained / rundir.LATEST)) == before


def test_resume_may_change_when_to_stop_and_report(trained, corpus):
    ok(
        run(
            "train",
            corpus,
            "--checkpoint-dir",
            trained,
            "--resume",
            "--max-steps",
            "14",
            "--eval-every",
            "2",
            "--time-limit",
            "1h",
            "-q",
        )
    )
    assert checkpoint.load(str(trained / rundir.LATEST)).progress["step"] == 14


def test_resume_of_a_finished_run_is_an_error_that_says_how_to_add_more(trained, corpus):
    before = {p.name: sha256(p) for p in trained.iterdir() if p.is_file()}
    fails(
        run("train", corpus, "--checkpoint-dir", trained, "--resume"),
        2,
        f"the run in {trained} is at step 10, the --max-steps 10 it was given; nothing was trained",
        "--max-steps +N",
    )
    assert {p.name: sha256(p) for p in trained.iterdir() if p.is_file()} == before  # metrics.jsonl too
    fails(
        run("train", corpus, "--checkpoint-dir", trained, "--resume", "--max-steps", "0", "--time-limit", "0.001"),
        2,
        "past --time-limit 0s (the run's total training time); nothing was trained; add time with --time-limit +20m",
    )
    result = run("train", corpus, "--checkpoint-dir", trained, "--resume", "--json")
    assert result.exit_code == 2 and result.stdout == ""  # a script sees it in the exit code


def test_a_plus_limit_adds_to_what_the_run_has_done(trained, corpus):
    ok(run("train", corpus, "--checkpoint-dir", trained, "--resume", "--max-steps", "+4", "-q"))
    assert checkpoint.load(str(trained / rundir.LATEST)).progress["step"] == 14
    elapsed = checkpoint.load(str(trained / rundir.LATEST)).progress["elapsed"]
    result = ok(run("train", corpus, "--checkpoint-dir", trained, "--resume", "--max-steps", 0, "--time-limit", "+1s"))
    ckpt = checkpoint.load(str(trained / rundir.LATEST))
    assert ckpt.train_cfg.time_limit == pytest.approx(elapsed + 1.0) and ckpt.progress["step"] > 14
    assert f"--time-limit {format_duration(elapsed + 1.0)} is the run's total training time" in result.stderr
    ok(train(corpus, trained, "--overwrite", "--max-steps", "+3"))  # a new run: +3 is 3
    assert checkpoint.load(str(trained / rundir.LATEST)).progress["step"] == 3


def test_a_corrupt_latest_names_the_intact_checkpoint_to_resume_from(trained, corpus):
    (trained / rundir.LATEST).write_bytes((trained / rundir.LATEST).read_bytes()[:500])
    best = checkpoint.load(str(trained / rundir.BEST)).progress["step"]
    line = fails(run("train", corpus, "--checkpoint-dir", trained, "--resume"), 1, "is corrupt")
    intact = trained / rundir.BEST
    assert line.endswith(f"; {intact} (step {best}) is intact: resume from it with --resume {intact}")
    ok(run("train", corpus, "--checkpoint-dir", trained, "--resume", intact, "--max-steps", 12, "-q"))
    assert checkpoint.load(str(trained / rundir.LATEST)).progress["step"] == 12


def test_resume_remembers_the_encoding(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes(make_text(2000).replace("e", "\xe9").encode("latin-1"))
    ck = tmp_path / "ck"
    ok(train(latin, ck, "--encoding", "latin-1"))
    ok(run("train", latin, "--checkpoint-dir", ck, "--resume", "--max-steps", "12", "-q"))


def test_resume_on_changed_text_with_the_same_characters_warns(trained, corpus):
    corpus.write_text(corpus.read_text(encoding="utf-8")[::-1], encoding="utf-8")
    result = ok(run("train", corpus, "--checkpoint-dir", trained, "--resume", "--max-steps", "12"))
    assert "differs from the text this checkpoint was trained on" in result.stderr


def test_resume_with_nothing_to_resume(corpus, tmp_path):
    fails(
        run("train", corpus, "--checkpoint-dir", tmp_path / "none", "--resume"),
        1,
        "nothing to resume",
        "drop --resume to start a new run",
    )
    fails(run("train", corpus, "--resume", tmp_path / "no.npz"), 1, "nothing to resume")


def test_resume_from_a_model_without_training_state(trained, corpus, tmp_path):
    ckpt = checkpoint.load(str(trained / rundir.LATEST))
    ckpt.progress, ckpt.rng_state = {}, None  # as an exported, sample-only model would be
    checkpoint.save(ckpt, str(tmp_path / "model.npz"))
    fails(
        run("train", corpus, "--checkpoint-dir", tmp_path / "new", "--resume", tmp_path / "model.npz"),
        1,
        "holds a model but not its training state",
        "start a new run",
    )


def test_a_new_run_does_not_overwrite_an_old_one(trained, corpus):
    before = sha256(trained / rundir.LATEST)
    fails(train(corpus, trained), 2, "already holds a checkpoint", "--resume", "--overwrite")
    assert sha256(trained / rundir.LATEST) == before
    ok(train(corpus, trained, "--overwrite", "--max-steps", "5"))
    assert checkpoint.load(str(trained / rundir.LATEST)).progress["step"] == 5
