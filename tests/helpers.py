"""Helpers shared by the tests: a generated corpus, one set of tiny training options,
running the CLI in-process, and the one-line error contract."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from charrnn import checkpoint, engines, training
from charrnn.cli import cli

# For tests of the numba engine: skipped, saying why, where it cannot load.
NEEDS_NUMBA = pytest.mark.skipif(
    engines.numba_missing() is not None, reason="numba is not installed (pip install 'charrnn[fast]')"
)
# Each engine as a test parameter.
ENGINES = ["numpy", pytest.param("numba", marks=NEEDS_NUMBA)]

WORDS = (
    "the cat sat on a mat and the dog ran to the log while a bird sang in the tree "
    "so the fox hid in a box and the hen met ten men"
).split()


def make_text(n_chars: int, seed: int = 0) -> str:
    """Lowercase pseudo-sentences with punctuation and line breaks: enough structure to learn."""
    rng = np.random.default_rng(seed)
    out, size = [], 0
    while size < n_chars:
        words = [WORDS[i] for i in rng.integers(0, len(WORDS), rng.integers(3, 9))]
        line = " ".join(words).capitalize() + (". " if rng.random() < 0.7 else "!\n")
        out.append(line)
        size += len(line)
    return "".join(out)[:n_chars]


# A model small enough that a step takes about a millisecond; tests that need a model
# that has learned something add "--max-steps N" (a later option wins).
TINY = [
    "--hidden-size",
    "12",
    "--layers",
    "1",
    "--seq-len",
    "8",
    "--batch-size",
    "3",
    "--time-limit",
    "0",
    "--eval-every",
    "5",
    "--max-steps",
    "10",
]


def tiny(**options) -> list[str]:
    """TINY with some options changed or added: tiny(hidden_size=8, max_steps=0) gives
    the flags (``--hidden-size 8`` ...) in TINY's order, the new ones after."""
    flags = dict(zip(TINY[::2], TINY[1::2]))
    for name, value in options.items():
        flags["--" + name.replace("_", "-")] = str(value)
    return [part for flag, value in flags.items() for part in (flag, value)]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def train(corpus, ckpt_dir, *extra):
    return run("train", corpus, "--checkpoint-dir", ckpt_dir, *TINY, "-q", *extra)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def fails(result, code: int, *fragments: str) -> str:
    """The error contract: exit ``code``, nothing on stdout, no traceback, and exactly
    one "Error: ..." line on stderr, the last one. Returns that line."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith("Error: ")] == lines[-1:], result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    return lines[-1]


def interrupted(result, code: int, *fragments: str) -> str:
    """The contract of a signal: exit ``code`` (128 + N), nothing on stdout, no traceback
    and no "Error:" line (a signal is nobody's mistake), and a last line on stderr that
    starts "note: interrupted". Returns that line."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("note: interrupted"), result.stderr
    assert not any(line.startswith("Error: ") for line in lines), result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    return lines[-1]


def sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def leftovers(directory) -> list[str]:
    """Temporary files a save could have left behind."""
    return [n for n in os.listdir(directory) if n.endswith(".tmp")]


def interrupt_at(monkeypatch, step: int, signum: int = signal.SIGINT) -> None:
    """Make training deliver ``signum`` to this process right after step ``step``."""
    real = training.train_step

    def step_then_signal(run_, st, streams, stop=None):
        loss = real(run_, st, streams, stop)
        if st.step == step:
            os.kill(os.getpid(), signum)
        return loss

    monkeypatch.setattr(training, "train_step", step_then_signal)


def assert_same_run(a: checkpoint.Checkpoint, b: checkpoint.Checkpoint) -> None:
    """Everything but wall-clock time is equal: arrays bit for bit, counters exactly."""
    for name in ("params", "opt_state", "hidden"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.keys() == y.keys() and (x or name == "opt_state"), name  # sgd keeps no state

        for k in x:
            assert x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]), f"{name}[{k}] differs"
    pa, pb = dict(a.progress), dict(b.progress)
    pa.pop("elapsed"), pb.pop("elapsed")
    assert pa == pb  # step, epoch, chunk, smoothed_loss, best_val, last_val
    assert a.rng_state == b.rng_state


# ------------------------------------------------------------------ child processes

CHILDREN: list[subprocess.Popen] = []  # every process the tests started, killed once its test ends


def default_signals() -> None:
    """In a child, before exec: SIGINT and SIGTERM as a terminal's child would have them.
    A suite started from a shell's background job runs with SIGINT ignored, which its
    children would inherit, and a test that sends Ctrl-C would wait forever."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def spawn(cmd, **kwargs) -> subprocess.Popen:
    """subprocess.Popen for a test: default signal handling in the child, and killed
    when the test (or the fixture's scope) that started it ends, passed or failed."""
    return track(subprocess.Popen(cmd, preexec_fn=default_signals, **kwargs))


def track(proc: subprocess.Popen) -> subprocess.Popen:
    CHILDREN.append(proc)
    return proc


def kill_children(since: int = 0) -> None:
    """Kill the tracked children from index ``since`` on that are still running."""
    while len(CHILDREN) > since:
        proc = CHILDREN.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def _kill_what_the_test_started():
    """Children started by a test or its function-scoped fixtures die with the test;
    those of fixtures of a wider scope (set up before this one) are left to them."""
    since = len(CHILDREN)
    yield
    kill_children(since)


@pytest.fixture(scope="session", autouse=True)
def _kill_what_is_left():
    """Whatever a fixture's teardown did not stop, once the suite ends."""
    yield
    kill_children()
