"""The text a checkpoint was trained on, as its record says (``Checkpoint.corpus``: path,
name, encoding, SHA-256, size). One place decides what the record means for resuming,
evaluating, sampling from a seed file, vis and the copying report: which encoding to read
with, whether the text can be read again, and whether it changed since.
"""

from __future__ import annotations

import os

from charrnn import data
from charrnn.errors import DataError


def encoding(ckpt, given: str | None = None) -> str:
    """The encoding to read a text with for ``ckpt``: the one given, else the one its
    training text was read with, else UTF-8."""
    saved = (ckpt.corpus or {}).get("encoding")
    return given or (saved if isinstance(saved, str) else "utf-8")


def path(ckpt, checkpoint_path: str, hint: str) -> str:
    """The recorded training text's path, or a DataError that ends with ``hint`` (how to
    name the text instead) when it cannot be read again: it came from a pipe, the
    checkpoint does not record it, or it is not there any more."""
    recorded = ckpt.corpus or {}
    where = recorded.get("path")
    if not where:
        name = recorded.get("name")
        piped = "standard input" if name in (None, "stdin") else f"{name} (a pipe)"
        source = (
            f"text read from {piped}, which charrnn could not keep"
            if recorded.get("sha256")
            else "a text it does not record"
        )
        raise DataError(f"{checkpoint_path} was trained on {source}; {hint}")
    if not os.path.isfile(where):
        raise DataError(f"{checkpoint_path} was trained on {where}, which is not there any more; {hint}")
    return where


def unchanged(ckpt, sha256: str) -> bool:
    """Is a text of this SHA-256 the one ``ckpt`` was trained on (as far as it records)?"""
    recorded = (ckpt.corpus or {}).get("sha256")
    return recorded in (None, sha256)


def file_unchanged(ckpt, where: str) -> bool:
    """unchanged() for the file at ``where``."""
    return unchanged(ckpt, data.file_sha256(where))
