"""Shared fixtures: small corpora written by the tests themselves (no ../shared needed),
a user cache of the suite's own, and children that never outlive their test."""

import os
import signal

import pytest
from click.testing import CliRunner
from helpers import _kill_what_is_left, _kill_what_the_test_started, make_text  # noqa: F401 (autouse fixtures)

from charrnn import engines

# Started from a background job, the suite inherits SIGINT ignored: Ctrl-C tests behave
# as under a terminal only with Python's own handler back (children: helpers.spawn).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory):
    """The suite's own $XDG_CACHE_HOME, where the once-per-machine note that numba is
    missing counts as already shown: where numba is not installed, every command falls
    back to NumPy silently, whichever test runs first (tests/test_engines.py shows
    the note with an empty cache of its own)."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    os.makedirs(engines.cache_dir())
    open(os.path.join(engines.cache_dir(), engines.FALLBACK_NOTED), "w").close()
    yield cache
    if old is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture
def tiny_corpus(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(make_text(6000), encoding="utf-8")
    return path


@pytest.fixture
def runner():
    return CliRunner()
