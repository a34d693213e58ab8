"""`charrnn vis`: one self-contained HTML page showing what a model's units track.

- ``trace.py`` runs the model over the text (its own forward code) and keeps every
  layer's states and the next-character distribution at every character;
- ``properties.py`` computes simple properties of the text (inside quotes, position
  in the line, ...);
- ``search.py`` correlates every unit with every property ("found for you");
- ``page.py`` embeds the data gathered here in the page as JSON; the page's script
  (``charrnn/pages/vis.js``) draws everything from it.

``build`` returns that data (a JSON-ready dict) and ``page.render`` turns it into HTML.
"""

from __future__ import annotations

import base64

import numpy as np

from charrnn.data import format_chars
from charrnn.errors import UsageError
from charrnn.vis import search, trace
from charrnn.vis.properties import PROPERTIES

FORMAT, VERSION = "charrnn-vis", 1
MAX_CHARS = 20_000  # about 1 MB of page per 40 units of states at this length
TOP = 5  # guesses shown per character
LEVELS = 127  # activations in (-1, 1) are embedded as int8 multiples of 1/127


def check_text(text: str, vocab, max_chars: int = MAX_CHARS) -> None:
    """The text must be non-empty, at most ``max_chars`` long, and made of characters
    the model knows (named otherwise)."""
    if not text:
        raise UsageError("the text is empty; give a FILE or --text")
    if len(text) > max_chars:
        raise UsageError(
            f"the text has {len(text):,} characters; vis shows at most {max_chars:,} "
            f"(a page holds every unit at every character): cut it (e.g. head -c {max_chars} FILE) "
            f"or raise --max-chars"
        )
    unknown = vocab.unknown(text)
    if unknown:
        raise UsageError(
            f"the text contains characters the model never saw: {format_chars(unknown, 20)}; "
            f"pass --drop-unknown to leave them out"
        )


def build(ckpt, checkpoint_path: str, text: str, max_chars: int = MAX_CHARS, engine=None) -> dict:
    """Everything the page shows, JSON-ready (see charrnn/pages/vis.js for how each part is drawn);
    ``engine`` runs the cells (None: the default)."""
    check_text(text, ckpt.vocab, max_chars)
    ids = ckpt.vocab.encode(text)
    tr = trace.record(ckpt.params, ckpt.model_cfg, ids, engine=engine)
    found = search.rank(tr.series, text)
    return page_data(ckpt, checkpoint_path, text, ids, tr, found)


def _unit_bytes(values: np.ndarray) -> list[str]:
    """(N,H) activations in [-1, 1] -> one base64 string of N int8 levels per unit."""
    q = np.clip(np.rint(values * LEVELS), -LEVELS, LEVELS).astype(np.int8)
    return [base64.b64encode(np.ascontiguousarray(q[:, u]).tobytes()).decode("ascii") for u in range(q.shape[1])]


def predictions(tr: trace.Trace, ids: np.ndarray) -> dict:
    """Per character i >= 1: the probability the model gave it after reading 0..i-1
    and its TOP most likely guesses (ids, probabilities) there. Character 0 has none:
    nothing before it predicts it (as in evaluation.py)."""
    probs = tr.next_char_probs()[:-1]  # row i-1 predicts character i
    p_actual = probs[np.arange(len(probs)), ids[1:]]
    top = np.argsort(-probs, axis=1, kind="stable")[:, :TOP]
    top_p = np.take_along_axis(probs, top, axis=1)
    bits = -np.log2(np.maximum(p_actual, 1e-300))
    return {
        "p": [None] + [float(f"{p:.4g}") for p in p_actual],
        "top": [None] + top.tolist(),
        "top_p": [None] + np.round(top_p, 4).tolist(),
        "bits_per_char": float(bits.mean()) if len(bits) else None,
    }


def page_data(ckpt, checkpoint_path: str, text: str, ids: np.ndarray, tr: trace.Trace, found: search.Search) -> dict:
    labels = {p.name: p.label for p in PROPERTIES}
    return {
        "format": FORMAT,
        "version": VERSION,
        "checkpoint": checkpoint_path,
        "model": ckpt.model_cfg.to_dict(),
        "corpus": ckpt.corpus.get("name"),
        "vocab": ckpt.vocab.chars,
        "text": text,
        "levels": LEVELS,
        "series": [
            {"name": s.name, "label": s.label, "layer": s.layer, "state": s.state, "units": _unit_bytes(s.values)}
            for s in tr.series
        ],
        "predictions": predictions(tr, ids),
        "properties": [
            {"name": p.name, "label": p.label, "binary": p.binary, "absent": found.absent.get(p.name)}
            for p in PROPERTIES
        ],
        "found": [
            {
                "series": f.series,
                "series_label": tr.series[f.series].label,
                "unit": f.unit,
                "property": f.prop,
                "property_label": labels[f.prop],
                "r": round(f.r, 4),
            }
            for f in found.found
        ],
        # every unit's r with every property shown, for the selected unit's own list
        "r": {name: [[round(v, 3) for v in r.tolist()] for r in rs] for name, rs in found.table.items()},
    }
