"""Batch training: several corpora in one `charrnn train`, one failing without stopping the
others, --concat, and the lock that keeps two runs out of one checkpoint directory."""

import json
import os

import pytest
from helpers import TINY, make_text

from charrnn.cli import cli
from charrnn.lock import RunLock


@pytest.fixture
def corpora(tmp_path):
    good_a, bad, good_c = tmp_path / "alpha.txt", tmp_path / "bad.txt", tmp_path / "gamma.txt"
    good_a.write_text(make_text(2000, seed=1))
    bad.write_bytes(b"caf\xe9 au lait\n" * 20)  # latin-1, not UTF-8
    good_c.write_text(make_text(2000, seed=2))
    return good_a, bad, good_c


def test_one_bad_corpus_of_three(runner, corpora, tmp_path):
    out = tmp_path / "runs"
    result = runner.invoke(cli, ["train", *map(str, corpora), "--checkpoint-dir", str(out), *TINY, "--json"])
    assert result.exit_code == 1
    runs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["status"] for r in runs] == ["ok", "failed", "ok"]
    assert runs[0]["steps"] == runs[2]["steps"] == 10
    assert "is not valid utf-8" in runs[1]["error"]
    assert (out / "alpha" / "best.npz").is_file() and (out / "gamma" / "best.npz").is_file()
    assert not (out / "bad").exists()  # a corpus that failed before training leaves nothing behind
    err = result.stderr.splitlines()
    header = next(i for i, line in enumerate(err) if line.startswith("corpus "))
    table = err[header : header + 4]
    assert "best val bits/char" in table[0] and "checkpoint" in table[0] and "result" in table[0]
    assert table[1].startswith(str(corpora[0])) and table[1].endswith("ok") and " 10 " in table[1]
    assert table[2].startswith(str(corpora[1])) and "failed: " in table[2]
    assert str(out / "gamma" / "best.npz") in table[3]
    assert err[-1] == f"Error: 1 of 3 corpora failed: {corpora[1]}"


def test_quiet_batch_keeps_failures_and_the_error_line(runner, corpora, tmp_path):
    result = runner.invoke(cli, ["train", *map(str, corpora), "--checkpoint-dir", str(tmp_path / "r"), *TINY, "-q"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{corpora[1]}: failed: " + result.stderr.split(": failed: ")[1].splitlines()[0],
        f"Error: 1 of 3 corpora failed: {corpora[1]}",
    ]


def test_a_missing_path_fails_before_anything_trains(runner, corpora, tmp_path):
    result = runner.invoke(
        cli, ["train", str(corpora[0]), str(tmp_path / "typo.txt"), "--checkpoint-dir", str(tmp_path / "r"), *TINY]
    )
    assert result.exit_code == 2 and not (tmp_path / "r").exists()


def test_two_corpora_with_one_name_are_refused(runner, corpora, tmp_path):
    other = tmp_path / "sub"
    other.mkdir()
    (other / "alpha.txt").write_text(make_text(2000))
    result = runner.invoke(cli, ["train", str(corpora[0]), str(other / "alpha.txt"), *TINY])
    assert result.exit_code == 2 and "would both train into checkpoints/alpha" in result.stderr


def test_concat_trains_one_model_on_the_joined_text(runner, corpora, tmp_path):
    a, _, c = corpora
    ck = tmp_path / "joined"
    result = runner.invoke(cli, ["train", str(a), str(c), "--concat", "--checkpoint-dir", str(ck), *TINY, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 10
    assert (ck / "corpus.txt").read_text() == a.read_text() + "\n" + c.read_text()  # neither ends in \n
    info = json.loads(runner.invoke(cli, ["info", str(ck), "--json"]).stdout)
    assert info["corpus"]["name"] == "alpha+gamma"
    assert info["corpus"]["sources"] == [str(a), str(c)]


def test_a_locked_directory_is_refused_unless_forced(runner, corpora, tmp_path):
    ck = tmp_path / "busy"
    with RunLock(str(ck)):  # another run holds the directory (flock conflicts within one process too)
        refused = runner.invoke(cli, ["train", str(corpora[0]), "--checkpoint-dir", str(ck), *TINY])
        forced = runner.invoke(cli, ["train", str(corpora[0]), "--checkpoint-dir", str(ck), *TINY, "--force"])
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"Error: checkpoint directory {ck} is in use by another charrnn run "
        f"(pid {os.getpid()}); use --force to train there anyway, or choose "
        f"another --checkpoint-dir\n"
    )
    assert forced.exit_code == 0 and "training there anyway (--force)" in forced.stderr
    again = runner.invoke(
        cli, ["train", str(corpora[0]), "--checkpoint-dir", str(ck), *TINY, "--resume", "--max-steps", "12", "-q"]
    )
    assert again.exit_code == 0, again.output  # released at the end of the run


def test_resume_path_with_several_corpora_is_a_usage_error(runner, corpora, tmp_path):
    result = runner.invoke(cli, ["train", str(corpora[0]), str(corpora[2]), "--resume", "x.npz", *TINY])
    assert result.exit_code == 2 and "--resume PATH names one checkpoint" in result.stderr


def test_temp_files_of_a_killed_save_are_swept_only_by_the_lock_holder(runner, corpora, tmp_path):
    """A SIGKILL during a save leaves .ckpt-*.tmp behind. The next run that holds the
    directory's lock removes it; a run forced in beside a live one must not, since the
    file may be that run's save in progress."""
    ck = tmp_path / "ck"
    ck.mkdir()
    stale = [ck / ".ckpt-x1y2.tmp", ck / ".probe-abc.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    keep = ck / "notes.tmp"  # not one of ours
    keep.write_text("mine")
    with RunLock(str(ck)):
        forced = runner.invoke(cli, ["train", str(corpora[0]), "--checkpoint-dir", str(ck), *TINY, "--force"])
    assert forced.exit_code == 0 and all(p.exists() for p in stale)
    result = runner.invoke(
        cli, ["train", str(corpora[0]), "--checkpoint-dir", str(ck), *TINY, "--resume", "--max-steps", "12"]
    )
    assert result.exit_code == 0, result.output
    assert not any(p.exists() for p in stale) and keep.read_text() == "mine"
    assert "removed .ckpt-x1y2.tmp, left by an interrupted save" in result.stderr
