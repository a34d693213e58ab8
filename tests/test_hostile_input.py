"""Hostile and unusual input, as a new user or a script meets it: pipes, FIFOs and
standard input, sizes that cannot fit, counts without bound, huge vocabularies, a
learning rate that diverges, and the small inconsistencies of messages and codes.

Cases that need a real pipe, FIFO or signal run charrnn in a subprocess; the others
go through CliRunner. Every failure keeps the contract of helpers.fails."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from helpers import TINY, fails, make_text, ok, run, sha256, spawn, train

from charrnn import checkpoint, rundir

CHARRNN = [sys.executable, "-m", "charrnn"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(make_text(6000, seed=3), encoding="utf-8")
    return path


@pytest.fixture
def trained(corpus, tmp_path):
    ok(train(corpus, tmp_path / "ck"))
    return tmp_path / "ck"


def charrnn(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CHARRNN, *map(str, args)], capture_output=True, text=True, timeout=120, **kwargs)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# ------------------------------------------------------------- pipes, FIFOs, stdin


def assert_trained_from_a_stream(ck, corpus) -> None:
    ckpt = checkpoint.load(str(ck / rundir.LATEST))
    assert ckpt.progress["step"] == 10
    assert ckpt.corpus["path"] is None  # nothing to re-read later
    assert ckpt.corpus["sha256"] == sha256(corpus) and ckpt.corpus["chars"] == 6000


def test_train_from_standard_input(corpus, tmp_path):
    ck = tmp_path / "ck"
    with open(corpus, "rb") as f:
        result = charrnn("train", "-", "--checkpoint-dir", ck, *TINY, "-q", stdin=f)
    assert result.returncode == 0, result.stderr
    assert_trained_from_a_stream(ck, corpus)
    info = charrnn("info", ck)
    assert "read from a pipe, not kept (eval needs it again as FILE)" in info.stdout, info.stdout
    # scoring the held-out part needs the text again, and says so
    result = charrnn("eval", "-c", ck)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "pass the file" in last_line(result.stderr) or "FILE" in last_line(result.stderr), result.stderr


def test_train_from_dev_stdin_through_a_real_pipe(corpus, tmp_path):
    ck = tmp_path / "ck"
    cat = subprocess.Popen(["cat", str(corpus)], stdout=subprocess.PIPE)
    result = charrnn("train", "/dev/stdin", "--checkpoint-dir", ck, *TINY, "-q", stdin=cat.stdout)
    cat.wait()
    assert result.returncode == 0, result.stderr
    assert_trained_from_a_stream(ck, corpus)


def test_train_from_a_fifo_fed_once(corpus, tmp_path):
    fifo, ck = tmp_path / "fifo", tmp_path / "ck"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as w:  # blocks until charrnn opens the FIFO, then writes once
            w.write(corpus.read_bytes())

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result = charrnn("train", fifo, "--checkpoint-dir", ck, *TINY, "-q")
    writer.join(timeout=5)
    assert result.returncode == 0, result.stderr
    assert_trained_from_a_stream(ck, corpus)


@pytest.mark.skipif(shutil.which("bash") is None, reason="process substitution needs bash")
def test_train_from_process_substitution(corpus, tmp_path):
    ck = tmp_path / "ck"
    command = " ".join([*CHARRNN, "train", f"<(cat {corpus})", "--checkpoint-dir", str(ck), *TINY, "-q"])
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert_trained_from_a_stream(ck, corpus)


def test_ctrl_c_while_waiting_for_a_fifo_writer(tmp_path):
    fifo, ck = tmp_path / "fifo", tmp_path / "ck"
    os.mkfifo(fifo)  # nobody ever writes: charrnn waits in open()
    proc = spawn([*CHARRNN, "train", str(fifo), "--checkpoint-dir", str(ck)], stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)  # past start-up, into the wait
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=20)[1].decode()
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert last_line(err).startswith("note: interrupted") and "Traceback" not in err and "Error:" not in err
    assert not ck.exists() or os.listdir(ck) == []  # no lock file or half run left behind


# ------------------------------------------------------------- sizes that cannot fit


def test_huge_hidden_size_is_refused_before_allocating(corpus, tmp_path):
    line = fails(run("train", corpus, "--checkpoint-dir", tmp_path / "ck", "--hidden-size", "100000"), 2)
    assert line.startswith("Error: --hidden-size 100000 --layers 2 needs about ")
    assert "GiB for the weights alone; this machine has " in line


def test_huge_depth_is_refused_and_the_old_run_is_kept(trained, corpus):
    before = {p.name: sha256(p) for p in trained.iterdir() if p.is_file() and p.name != ".lock"}
    t0 = time.perf_counter()
    line = fails(
        run("train", corpus, "--checkpoint-dir", trained, "--overwrite", "--hidden-size", "16", "--layers", "100000"),
        2,
    )
    assert time.perf_counter() - t0 < 60  # refused up front, not after a ten-minute crawl
    assert "--hidden-size 16 --layers 100000 with --batch-size 64 and --seq-len 64 needs about " in line
    assert "for one training step" in line
    # --overwrite deletes nothing before the new run has checked its options
    assert {p.name: sha256(p) for p in trained.iterdir() if p.is_file() and p.name != ".lock"} == before


def test_sigterm_during_model_set_up(corpus, tmp_path):
    # a model that fits but takes seconds to initialise: the signal still ends it promptly
    ck = tmp_path / "ck"
    args = ["train", str(corpus), "--checkpoint-dir", str(ck), "--hidden-size", "3000", "--layers", "3"]
    proc = spawn([*CHARRNN, *args, "--max-steps", "1", "--time-limit", "0"], stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=30)[1].decode()
        waited = time.perf_counter() - t0
    finally:
        proc.kill()
    if proc.returncode == 2 and "this machine has" in err:
        pytest.skip("this machine has too little memory for a model that is slow to set up")
    assert proc.returncode == 143, err
    assert last_line(err).startswith("note: interrupted by SIGTERM") and "Traceback" not in err and "Error:" not in err
    assert waited < 15, waited  # generous for a loaded CI machine; typically well under two seconds


# ------------------------------------------------------------- counts and vocabularies


def test_many_samples_stream_in_bounded_memory(trained):
    # the first samples come promptly, long before 100,000 are done
    proc = spawn(
        [*CHARRNN, "sample", "-c", str(trained), "-n", "5", "--num-samples", "100000", "--json", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        t0 = time.perf_counter()
        first = proc.stdout.readline()
        assert first and time.perf_counter() - t0 < 20
        rest = proc.stdout.read()
        assert proc.wait(timeout=300) == 0
    finally:
        proc.kill()
    lines = (first + rest).decode().splitlines()
    assert len(lines) == 100000 and all(len(json.loads(line)["text"]) <= 5 for line in lines[::997])


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM (the peak resident memory of this process alone) is Linux's")
def test_many_samples_peak_memory(trained):
    code = (
        "import sys; from charrnn.cli import cli; "
        "sys.argv=['charrnn','sample','-c',sys.argv[1],'-n','5','--num-samples','20000']; "
        "exec('try:\\n cli()\\nexcept SystemExit: pass'); "
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) // 1024, "
        "file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(trained)], capture_output=True, text=True, timeout=300, check=True
    )
    peak_mib = int(result.stderr.strip().splitlines()[-1])
    # samples are drawn in batches of 256: 20,000 held at once would need gigabytes
    assert peak_mib < 400, peak_mib


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM (the peak resident memory of this process alone) is Linux's")
def test_seventy_thousand_distinct_characters_score_in_bounded_memory(tmp_path):
    # every code point from U+4E00 on (CJK and beyond, no surrogates) once, then some text again
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 70_000) if not 0xD800 <= c < 0xE000]
    text = "".join(chars)
    path = tmp_path / "wide.txt"
    path.write_text(text, encoding="utf-8")
    scored = tmp_path / "scored.txt"  # the peak depends on the vocabulary, not on the file's length
    scored.write_text("".join(chars[::35]), encoding="utf-8")
    ck = tmp_path / "ck"
    small = ["--hidden-size", "8", "--layers", "1", "--batch-size", "2", "--seq-len", "4", "--sample-chars", "0"]
    ok(run("train", path, "--checkpoint-dir", ck, *small, "--max-steps", "1", "--time-limit", "0", "-q"))
    code = (
        "import sys; from charrnn.cli import cli; "
        "sys.argv=['charrnn','eval','-q','-c',sys.argv[1],sys.argv[2]]; "
        "exec('try:\\n cli()\\nexcept SystemExit: pass'); "
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) // 1024, "
        "file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(ck), str(path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "nats/char" in result.stdout
    peak_mib = int(result.stderr.strip().splitlines()[-1])
    print(f"peak RSS scoring under a model of {len(chars):,} distinct characters: {peak_mib} MiB")
    assert peak_mib < 300, peak_mib  # a scoring call of 64 steps of 70,000 logits would hold over 1 GB


# ------------------------------------------------------------- divergence and finished runs


def test_a_learning_rate_of_1e30_is_divergence_not_a_crash(trained, corpus):
    before = {p.name: sha256(p) for p in trained.iterdir() if p.is_file()}
    line = fails(run("train", corpus, "--checkpoint-dir", trained, "--overwrite", *TINY, "--lr", "1e30"), 1)
    assert "try a lower --lr" in line and ("NaN" in line or "far above" in line), line
    # the run that diverged wrote nothing, so the old run is all still there
    assert {p.name: sha256(p) for p in trained.iterdir() if p.is_file()} == before


def test_resuming_a_finished_run_is_exit_2_and_changes_nothing(trained, corpus):
    before = {p.name: sha256(p) for p in trained.iterdir() if p.is_file()}
    fails(run("train", corpus, "--checkpoint-dir", trained, "--resume"), 2, "nothing was trained")
    assert {p.name: sha256(p) for p in trained.iterdir() if p.is_file()} == before


# ------------------------------------------------------------- messages and codes


def test_eval_of_a_file_with_no_known_character(trained, corpus, tmp_path):
    alien = tmp_path / "alien.txt"
    alien.write_text("\u2603\u2603\u00e9", encoding="utf-8")
    result = run("eval", "-c", trained, alien, corpus)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: none of {alien}'s 3 characters is in the vocabulary of {trained / rundir.BEST}"
    )
    rows = result.stdout.splitlines()
    assert len(rows) == 3 and str(corpus) in rows[2]  # the other file was still scored
    records = [json.loads(line) for line in run("eval", "-c", trained, alien, corpus, "--json").stdout.splitlines()]
    assert records[0]["scored"] == 0 and "none of" in records[0]["error"]
    assert records[1]["scored"] > 0 and "error" not in records[1]


def test_quiet_eval_and_info(trained, corpus, tmp_path):
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(make_text(500) + "\u2603", encoding="utf-8")
    result = ok(run("eval", "-q", "-c", trained, mixed))
    assert result.stderr == "" and "nats/char" in result.stdout
    assert "note:" in ok(run("eval", "-c", trained, mixed)).stderr
    quiet = ok(run("info", "-q", trained))
    assert quiet.stdout == "" and quiet.stderr == ""
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a checkpoint")
    fails(run("info", "-q", broken), 1, "is corrupt or unreadable")


def test_version_short_flag():
    result = ok(run("-V"))
    assert result.stdout.startswith("charrnn, version ")


def test_resume_states_the_total_time_meaning(trained, corpus):
    result = ok(
        run("train", corpus, "--checkpoint-dir", trained, "--resume", "--time-limit", "20m", "--max-steps", "12")
    )
    assert "--time-limit 20m is the run's total training time, so about 20m are left" in result.stderr, result.stderr


def test_several_names_one_per_line(trained):
    # --stop ending in a newline: one sample per line, no seed reprinted, no blank separators
    out = ok(
        run("sample", "-c", trained, "--seed", "", "--stop", "\n", "--num-samples", "20", "-n", "30", "--rng-seed", "1")
    ).stdout
    assert out.count("\n") == 20 and out.endswith("\n")
