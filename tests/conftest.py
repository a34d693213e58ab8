"""Shared fixtures: small corpora written by the tests themselves (no ../shared needed)."""

import numpy as np
import pytest
from click.testing import CliRunner

WORDS = ("the cat sat on a mat and the dog ran to the log while a bird sang in the tree "
         "so the fox hid in a box and the hen met ten men").split()


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


@pytest.fixture
def tiny_corpus(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(make_text(6000), encoding="utf-8")
    return path


@pytest.fixture
def runner():
    return CliRunner()
