"""Shared fixtures: small corpora written by the tests themselves (no ../shared needed)."""

import pytest
from click.testing import CliRunner
from helpers import make_text


@pytest.fixture
def tiny_corpus(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(make_text(6000), encoding="utf-8")
    return path


@pytest.fixture
def runner():
    return CliRunner()
