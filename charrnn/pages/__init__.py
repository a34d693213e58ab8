"""The HTML, CSS and JavaScript of charrnn's pages (``charrnn vis``, ``charrnn serve``),
as files shipped in this package:

- ``head.html``: what every page starts with, up to ``</head>``: the title, the styles
  all pages share, then the page's own styles;
- ``NAME.html``, ``NAME.css``, ``NAME.js``: one page's body, its own styles, its script.

The ``${...}`` placeholders are ``string.Template``'s. ``render`` fills them; a page's
data goes in as JSON inside a ``<script type="application/json">`` element, which
``script_json`` makes safe to put there.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from string import Template


def read(filename: str) -> str:
    """One of this package's page files."""
    return resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")


def script_json(value, **dumps_options) -> str:
    """``value`` as JSON in ASCII with every "<" escaped, so that no string in it (a
    "</script>", say) can end the script element that holds it."""
    return json.dumps(value, ensure_ascii=True, **dumps_options).replace("<", "\\u003c")


def render(name: str, title: str, **values: str) -> str:
    """Page ``name`` titled ``title`` (plain text), its body's placeholders filled from
    ``values`` (inserted as they are: the caller escapes them)."""
    head = Template(read("head.html")).substitute(title=html.escape(title), style=read(f"{name}.css"))
    body = Template(read(f"{name}.html")).substitute(script=read(f"{name}.js"), **values)
    return head + body
