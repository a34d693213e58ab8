"""The vis page: one HTML file with its styles, its script and its data inline, so it
opens from disk in any browser with no network access. Its markup, styles and script are
``charrnn/pages/vis.html``, ``vis.css`` and ``vis.js`` (see charrnn.pages).

The data (``vis.build``) sits in a ``<script type="application/json">`` element and the
script draws everything from it: one span per character, coloured either by the
selected unit's activation (blue negative, red positive) or by the surprisal of the
character in bits. Each unit's activations are a base64 string of int8 levels, decoded
only when the unit is first shown, so a page with thousands of units opens quickly.
"""

from __future__ import annotations

from charrnn import pages


def render(data: dict) -> str:
    """The page for ``data`` (vis.build), the data embedded as compact JSON (it holds
    every unit's activations)."""
    payload = pages.script_json(data, separators=(",", ":"))
    return pages.render("vis", f"charrnn vis: {data.get('corpus') or data['checkpoint']}", data=payload)
