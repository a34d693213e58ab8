"""The writing page served at ``/``: a text area that asks the model for continuations.

Tab (or the button) sends the text before the cursor to ``POST /v1/generate`` and
lists a few continuations under the text area; the arrow keys choose one, Enter or
Tab inserts it at the cursor, Esc closes the list. Everything works from the
keyboard: since Tab belongs to the text area, Esc and then Tab moves the focus on
(Shift+Tab always moves it back). The seed is the last CONTEXT characters before the
cursor, without the characters the model never saw (the page knows the vocabulary),
so that typing a character the corpus lacks does not make every request fail.

Its markup, styles and script are ``charrnn/pages/serve.html``, ``serve.css`` and
``serve.js`` (see charrnn.pages); this module fills in what they need of the model.
"""

from __future__ import annotations

from charrnn import pages
from charrnn.config import SampleOptions

CONTEXT = 2000  # characters before the cursor sent as the seed


def render(ckpt, checkpoint_path: str, limits) -> bytes:
    """The page for this model, with what its script needs embedded as JSON."""
    cfg = ckpt.model_cfg
    config = {
        "checkpoint": checkpoint_path,
        "model": f"{cfg.cell}, {cfg.n_layers} layer(s) x {cfg.hidden_size} units",
        "vocab": ckpt.vocab.chars,
        "max_chars": limits.max_chars,
        "max_samples": limits.max_samples,
        "context": CONTEXT,
        "temperature": SampleOptions().temperature,  # the page starts where `charrnn sample` does
    }
    title = f"charrnn: {ckpt.corpus.get('name') or checkpoint_path}"
    return pages.render("serve", title, config=pages.script_json(config)).encode("utf-8")
