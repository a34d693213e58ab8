"""Plain-text tables for people: the commands' tables and summaries share one layout."""

from __future__ import annotations


def table(headers: list[str], rows: list[list], right: set[int] = frozenset()) -> str:
    """Columns padded to their widest cell, two spaces apart; columns whose index is in
    ``right`` (numbers) are right-aligned so their digits line up."""
    cells = [[str(c) for c in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in cells
    ]
    return "\n".join(lines)


def number(value, fmt: str = ".4f"):
    """A float for a table cell; None (not measured) stays None and shows as "-"."""
    return None if value is None else format(value, fmt)
