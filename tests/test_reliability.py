"""Bad input and faults, through the command line, one test per case.

Every failure is one "Error: ..." line on stderr, nothing on stdout, exit 1 for bad
data or state and 2 for bad usage; a signal saves, says so in a note and exits 128 + N."""

import errno
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import fails, interrupt_at, interrupted, leftovers, make_text, ok, run, sha256, spawn, tiny, train

from charrnn import checkpoint, data, model, rundir, training


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(make_text(2000), encoding="utf-8")
    return path


@pytest.fixture
def trained(corpus, tmp_path):
    ck = tmp_path / "ck"
    ok(train(corpus, ck))
    return ck


# ------------------------------------------------------------------ input files


def test_missing_file(tmp_path):
    fails(run("train", tmp_path / "nope.txt"), 2, f"{tmp_path / 'nope.txt'}: no such file")
    assert os.listdir(tmp_path) == []


def test_directory_instead_of_file(tmp_path):
    fails(run("train", tmp_path), 2, f"{tmp_path} is a directory, not a text file")


def test_unreadable_file(corpus, tmp_path, monkeypatch):
    # as root, chmod 000 does not stop reading: make open() answer as it would for a user
    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(data, "open", denied, raising=False)
    fails(train(corpus, tmp_path / "ck"), 1, f"Error: {corpus}: permission denied")


def test_empty_file(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    fails(train(tmp_path / "empty.txt", tmp_path / "ck"), 1, f"Error: {tmp_path / 'empty.txt'} is empty")
    assert not (tmp_path / "ck").exists() or leftovers(tmp_path / "ck") == []


def test_text_shorter_than_one_chunk(tmp_path):
    (tmp_path / "ab.txt").write_text("ab")
    fails(
        run("train", tmp_path / "ab.txt", "--seq-len", "25", "--batch-size", "32", "--checkpoint-dir", tmp_path / "ck"),
        1,
        "has 2 characters",
        "--batch-size 32 and --seq-len 25 need at least 832",
        "lower --batch-size or --seq-len",
    )


def test_single_distinct_character_trains_and_samples_it(tmp_path):
    (tmp_path / "a.txt").write_text("a" * 500)
    result = ok(
        run(
            "train",
            tmp_path / "a.txt",
            "--checkpoint-dir",
            tmp_path / "ck",
            "--hidden-size",
            "8",
            "--seq-len",
            "8",
            "--batch-size",
            "3",
            "--max-steps",
            "6",
            "--time-limit",
            "0",
            "--json",
        )
    )
    assert "holds a single distinct character, 'a'; the model can only learn to repeat it" in result.stderr
    assert '"best_val_loss": 0.0' in result.stdout  # exactly zero: no NaN, no division by zero
    ckpt = checkpoint.load(str(tmp_path / "ck" / rundir.LATEST))
    assert all(np.all(np.isfinite(p)) for p in ckpt.params.values())
    # the default seed (the only character) is read but not printed: the user gave none
    assert ok(run("sample", "-c", tmp_path / "ck", "-n", "20")).stdout == "a" * 20 + "\n"


@pytest.mark.parametrize("raw,byte,offset", [(b"caf\xe9 au lait", "0xe9", 3), (b"it\x92s", "0x92", 2)])
def test_bytes_invalid_in_the_encoding(raw, byte, offset, tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(raw * 100)
    fails(
        train(path, tmp_path / "ck"),
        1,
        f"{path} is not valid utf-8: byte {byte} at offset {offset} "
        f"cannot be decoded; if the file uses another encoding, pass it with --encoding",
    )
    ok(train(path, tmp_path / "ck", "--encoding", "cp1252"))


def test_unknown_encoding(corpus, tmp_path):
    fails(train(corpus, tmp_path / "ck", "--encoding", "klingon"), 1, "unknown encoding 'klingon'")


@pytest.mark.parametrize(
    "content,message",
    [
        (np.random.default_rng(0).bytes(3000), "and contains NUL bytes (the first at offset"),
        (b"GIF89a" + b"\x00\x01" * 500, "contains a NUL byte at offset 6: it looks like a binary file, not text"),
        ("utf-16 text ".encode("utf-16") * 50, "starts with a UTF-16 byte-order mark: pass --encoding utf-16"),
    ],
)
def test_binary_files(content, message, tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    fails(train(path, tmp_path / "ck"), 1, message)


def test_bom_and_line_ends_policy(tmp_path):
    """A UTF-8 BOM at the very start is dropped, CRLF becomes LF, a lone CR stays, and
    every other character (a BOM later on, emoji, combining marks) is kept exactly."""
    text = "l\u00e9a\u0301 \U0001f642\r\nold mac\rline\r\nmid\ufeffdle\n"
    path = tmp_path / "t.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    loaded = data.load_corpus(str(path))
    ids, vocab = loaded.ids, loaded.vocab
    assert vocab.decode(ids) == text.replace("\r\n", "\n")
    for encoding in ("utf-8-sig", "utf-16"):  # these codecs drop their own BOM
        path.write_bytes(text.encode(encoding))
        loaded = data.load_corpus(str(path), encoding)
        ids, vocab = loaded.ids, loaded.vocab
        assert vocab.decode(ids) == text.replace("\r\n", "\n")


def test_crlf_file_trains_to_a_model_without_cr(tmp_path):
    path = tmp_path / "win.txt"
    path.write_bytes(b"\xef\xbb\xbf" + make_text(2000).replace("\n", "\r\n").encode())
    ok(train(path, tmp_path / "ck"))
    chars = checkpoint.load(str(tmp_path / "ck" / rundir.LATEST)).vocab.chars
    assert "\n" in chars and "\r" not in chars and "\ufeff" not in chars


# --------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "args,flag",
    [
        (["train", "X", "--seq-len", "0"], "--seq-len"),
        (["train", "X", "--seq-len", "-3"], "--seq-len"),
        (["train", "X", "--batch-size", "0"], "--batch-size"),
        (["train", "X", "--hidden-size", "0"], "--hidden-size"),
        (["train", "X", "--layers", "-1"], "--layers"),
        (["train", "X", "--max-steps", "-1"], "--max-steps"),
        (["train", "X", "--val-frac", "0"], "--val-frac"),
        (["train", "X", "--val-frac", "1"], "--val-frac"),
        (["train", "X", "--val-frac", "1.5"], "--val-frac"),
        (["train", "X", "--val-frac", "nan"], "--val-frac"),
        (["train", "X", "--lr", "0"], "--lr"),
        (["train", "X", "--lr", "inf"], "--lr"),
        (["train", "X", "--dropout", "1"], "--dropout"),
        (["train", "X", "--clip", "nan"], "--clip"),
        (["train", "X", "--time-limit", "soon"], "--time-limit"),
        (["train", "X", "--keep-last", "-1"], "--keep-last"),
        (["sample", "-n", "-5"], "--length"),
        (["sample", "-t", "0"], "--temperature"),
        (["sample", "-t", "-1"], "--temperature"),
        (["sample", "-t", "nan"], "--temperature"),
        (["sample", "-k", "-1"], "--top-k"),
        (["sample", "--num-samples", "0"], "--num-samples"),
    ],
)
def test_invalid_option_values_are_usage_errors(args, flag, corpus):
    fails(run(*[str(corpus) if a == "X" else a for a in args]), 2, "Invalid value for", flag)


def test_seed_with_unknown_characters_and_empty_seed(trained):
    fails(
        run("sample", "-c", trained, "--seed", "the \u00e9\u2603"),
        2,
        "Error: the seed contains characters the model never saw: '\u00e9', '\u2603'",
    )

    out = ok(run("sample", "-c", trained, "--seed", "", "-n", "5")).stdout  # from a line start, not printed
    assert len(out) == 6 and out.endswith("\n")


def test_extreme_temperatures_give_text_without_warnings(trained):
    for t in ("1e-4", "1e4"):
        result = ok(run("sample", "-c", trained, "-t", t, "-n", "50", "--rng-seed", "1"))
        assert len(result.stdout) == 50 + 1 and result.stderr == ""  # the default seed is not printed


def test_sample_before_any_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails(run("sample"), 1, "no checkpoint found under checkpoints/; run `charrnn train FILE` first")
    fails(
        run("sample", "-c", tmp_path / "run"), 1, f"no checkpoint at {tmp_path / 'run'}; run `charrnn train FILE` first"
    )


def test_unwritable_checkpoint_dir_is_detected_before_training(corpus, tmp_path):
    (tmp_path / "afile").write_text("x")  # a directory below a regular file cannot exist, even for root
    line = fails(train(corpus, tmp_path / "afile" / "sub"), 1)
    assert (
        line
        == f"Error: cannot create {tmp_path / 'afile' / 'sub'} (not a directory); choose another with --checkpoint-dir"
    )


def test_checkpoint_dir_under_a_read_only_parent(corpus, tmp_path, monkeypatch):
    # what a read-only parent does to os.makedirs, also when the tests run as root
    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "makedirs", denied)
    line = fails(train(corpus, tmp_path / "ro" / "run"), 1)
    assert (
        line
        == f"Error: cannot create {tmp_path / 'ro' / 'run'} (permission denied); choose another with --checkpoint-dir"
    )
    assert not (tmp_path / "ro").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_checkpoint_dir(corpus, tmp_path):
    (tmp_path / "ro").mkdir(mode=0o500)
    fails(
        train(corpus, tmp_path / "ro"), 1, f"checkpoint directory {tmp_path / 'ro'} is not writable (permission denied)"
    )


# ------------------------------------------------------------- faults in training


def test_ctrl_c_saves_the_last_step_and_says_how_to_resume(corpus, tmp_path, monkeypatch):
    ck = tmp_path / "my ck"  # a space: the printed command must still work when pasted
    interrupt_at(monkeypatch, 7)
    saves = []
    real_save = checkpoint.save

    def save_and_press_ctrl_c_again(ckpt, path):  # the second Ctrl-C lands inside the save
        os.kill(os.getpid(), signal.SIGINT)
        real_save(ckpt, path)
        saves.append(path)

    monkeypatch.setattr(checkpoint, "save", save_and_press_ctrl_c_again)
    line = interrupted(
        run(
            "train",
            corpus,
            "--checkpoint-dir",
            ck,
            *tiny(hidden_size=8, max_steps=0, eval_every=500),
        ),
        130,
        f"note: interrupted by SIGINT at step 7; saved {ck / rundir.LATEST}; resume with: charrnn train ",
    )
    assert saves == [str(ck / rundir.LATEST), str(ck / rundir.BEST)] and leftovers(ck) == []
    assert checkpoint.load(str(ck / rundir.LATEST)).progress["step"] == 7
    monkeypatch.undo()
    command = shlex.split(line.split("resume with: ")[1])
    assert command[:2] == ["charrnn", "train"]
    ok(run(*command[1:], "--max-steps", "9", "-q"))

    assert checkpoint.load(str(ck / rundir.LATEST)).progress["step"] == 9


def _python_charrnn(*args, **kwargs):
    return spawn(
        [sys.executable, "-m", "charrnn", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs
    )


def test_sigterm_in_a_real_process(corpus, tmp_path):
    ck = tmp_path / "ck"
    proc = _python_charrnn(
        "train",
        corpus,
        "--checkpoint-dir",
        ck,
        *tiny(hidden_size=8, max_steps=0, eval_every=3),
    )
    try:
        for _ in range(600):  # the first checkpoint proves the signal handlers are installed
            if (ck / rundir.LATEST).exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    last = err.decode().splitlines()[-1]
    assert proc.returncode == 143 and out == b"" and "Error:" not in err.decode(), err.decode()
    step = int(
        re.match(r"note: interrupted by SIGTERM at step (\d+); saved .*; resume with: charrnn train ", last).group(1)
    )
    assert checkpoint.load(str(ck / rundir.LATEST)).progress["step"] == step and leftovers(ck) == []


@pytest.mark.parametrize("broken", ["loss", "gradients"])
def test_nan_stops_training_and_keeps_the_last_good_checkpoint(broken, corpus, tmp_path, monkeypatch):
    real = model.loss_and_grads
    calls = []

    def diverging(*args, **kwargs):
        loss, grads, state = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 8:
            if broken == "loss":
                loss = float("nan")
            else:
                grads["Why"][0, 0] = np.inf
        return loss, grads, state

    monkeypatch.setattr(model, "loss_and_grads", diverging)
    shas = []
    real_save = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda ckpt, path: (real_save(ckpt, path), shas.append(sha256(path))))
    what = "loss became nan" if broken == "loss" else "gradient norm became inf"
    fails(
        train(corpus, tmp_path / "ck"),
        1,
        f"Error: {what} at step 8 (lr=",
        f"{tmp_path / 'ck' / rundir.LATEST} (step 5) was left as it was; try a lower --lr or a smaller --clip",
    )
    assert sha256(tmp_path / "ck" / rundir.LATEST) == shas[0]  # latest, then best, at step 5
    assert checkpoint.load(str(tmp_path / "ck" / rundir.LATEST)).progress["step"] == 5


def test_disk_full_while_saving(trained, corpus, monkeypatch):
    before = sha256(trained / rundir.LATEST)

    def full(f, **arrays):
        f.write(b"PK partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", full)
    fails(
        run("train", corpus, "--checkpoint-dir", trained, "--resume", "--max-steps", "15"),
        1,
        f"Error: disk full while saving {trained / rundir.LATEST}; the previous checkpoint was kept",
    )
    assert sha256(trained / rundir.LATEST) == before and leftovers(trained) == []
    monkeypatch.undo()
    ok(run("train", corpus, "--checkpoint-dir", trained, "--resume", "--max-steps", "15", "-q"))


def test_ctrl_c_before_training_starts(corpus, tmp_path, monkeypatch):
    def pressed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "prepare", pressed)
    interrupted(train(corpus, tmp_path / "ck"), 130, "note: interrupted by SIGINT")


def test_keep_last_latest_and_best(corpus, tmp_path):
    ck = tmp_path / "ck"
    ok(train(corpus, ck, "--eval-every", "2", "--keep-last", "2", "--lr", "0.05"))
    steps = sorted(p.name for p in ck.glob("step-*.npz"))
    assert steps == ["step-00000008.npz", "step-00000010.npz"]
    assert [checkpoint.load(str(ck / s)).progress["step"] for s in steps] == [8, 10]
    val = {r["step"]: r["val_loss"] for r in map(json.loads, (ck / "metrics.jsonl").read_text().splitlines())}
    assert checkpoint.load(str(ck / rundir.LATEST)).progress["step"] == 10
    assert checkpoint.load(str(ck / rundir.BEST)).progress["step"] == min(val, key=val.get)


# ---------------------------------------------------------------------- output


def test_closed_stdout_pipe_while_sampling_ends_quietly(trained):
    proc = _python_charrnn("sample", "-c", trained, "-n", "100000")
    head = proc.stdout.read(10)
    proc.stdout.close()  # as `| head -c 10` does
    with proc.stderr:
        err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and len(head) == 10 and err == b""
