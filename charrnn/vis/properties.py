"""Simple properties of a text, one number per character, computed from the text alone:
what a unit of the network might have learned to track.

Each value describes the moment *after reading* character i, the moment the states
in trace.py describe: the opening quote itself is inside the quotes (the reader now
knows it is), the closing one is outside again. NaN marks a character where a
property is undefined (no line break follows, for ``to_newline``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

OPENING, CLOSING = "([{", ")]}"


def in_quotes(text: str) -> np.ndarray:
    """1 inside double quotes: '"' toggles; typographic “ opens and ” closes."""
    out = np.zeros(len(text))
    inside = False
    for i, ch in enumerate(text):
        if ch == '"':
            inside = not inside
        elif ch == "\u201c":
            inside = True
        elif ch == "\u201d":
            inside = False
        out[i] = inside
    return out


def in_brackets(text: str) -> np.ndarray:
    """1 inside parentheses, square or curly brackets (any nesting depth); a closing
    bracket with none open is ignored."""
    out = np.zeros(len(text))
    depth = 0
    for i, ch in enumerate(text):
        if ch in OPENING:
            depth += 1
        elif ch in CLOSING and depth:
            depth -= 1
        out[i] = depth > 0
    return out


def line_position(text: str) -> np.ndarray:
    """Characters read since the last line break: 1 after a line's first character,
    0 after the line break itself."""
    out = np.empty(len(text))
    col = 0
    for i, ch in enumerate(text):
        col = 0 if ch == "\n" else col + 1
        out[i] = col
    return out


def to_newline(text: str) -> np.ndarray:
    """Characters still to come before the next line break (0 right before it); NaN
    after the last one."""
    out = np.full(len(text), np.nan)
    left = None
    for i in range(len(text) - 1, -1, -1):
        if left is not None:
            out[i] = left
        left = 0 if text[i] == "\n" else (None if left is None else left + 1)
    return out


def word_start(text: str) -> np.ndarray:
    """1 at the first letter of a word (a letter after a non-letter)."""
    return np.array([ch.isalpha() and (i == 0 or not text[i - 1].isalpha()) for i, ch in enumerate(text)], dtype=float)


def upper_case(text: str) -> np.ndarray:
    """1 at an upper-case letter."""
    return np.array([ch.isupper() for ch in text], dtype=float)


@dataclass(frozen=True)
class Property:
    name: str
    label: str  # how the page and the summary say it
    binary: bool  # 0/1 (a yes-no property) rather than a count
    compute: Callable[[str], np.ndarray]


PROPERTIES = [
    Property("in_quotes", "inside double quotes", True, in_quotes),
    Property("in_brackets", "inside parentheses or brackets", True, in_brackets),
    Property("line_position", "position in the line", False, line_position),
    Property("to_newline", "characters until the next line break", False, to_newline),
    Property("word_start", "start of a word", True, word_start),
    Property("upper_case", "upper-case letter", True, upper_case),
]
