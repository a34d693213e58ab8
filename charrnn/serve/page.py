"""The writing page served at ``/``: a text area that asks the model for continuations.

Tab (or the button) sends the text before the cursor to ``POST /v1/generate`` and
lists a few continuations under the text area; the arrow keys choose one, Enter or
Tab inserts it at the cursor, Esc closes the list. Everything works from the
keyboard: since Tab belongs to the text area, Esc and then Tab moves the focus on
(Shift+Tab always moves it back). The seed is the last CONTEXT characters before the
cursor, without the characters the model never saw (the page knows the vocabulary),
so that typing a character the corpus lacks does not make every request fail.
"""

from __future__ import annotations

import html
import json

CONTEXT = 2000  # characters before the cursor sent as the seed

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #fafafa; }
main { max-width: 860px; margin: 0 auto; padding: 16px 20px 40px; }
h1 { font-size: 20px; margin: 0 0 2px; }
#meta { margin: 0 0 12px; color: #555; font-size: 13px; }
label[for=text] { font-weight: 600; }
#text { display: block; width: 100%; min-height: 16em; margin: 4px 0 6px; padding: 10px; font: 15px/1.55 ui-monospace,
  "DejaVu Sans Mono", Menlo, Consolas, monospace; border: 1px solid #bbb; border-radius: 4px; resize: vertical; }
#text:focus { outline: 2px solid #4a6fd0; outline-offset: 1px; }
#help { margin: 0 0 8px; font-size: 13px; color: #555; }
kbd { border: 1px solid #bbb; border-bottom-width: 2px; border-radius: 3px; padding: 0 4px; font-size: 12px;
  background: #fff; }
#toolbar { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; font-size: 14px; }
#toolbar input { width: 5.5em; }
#status { min-height: 1.5em; margin: 8px 0 4px; font-size: 14px; color: #444; }
#status.error { color: #b00020; }
#suggestions { list-style: none; margin: 0; padding: 0; }
#suggestions li { font: 14px/1.5 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: pre-wrap;
  border: 1px solid #ccc; border-radius: 4px; padding: 6px 10px; margin: 0 0 6px; background: #fff; cursor: pointer; }
#suggestions li[aria-selected="true"] { border-color: #4a6fd0; background: #eef2ff; box-shadow: 0 0 0 1px #4a6fd0; }
#suggestions .nl { color: #999; }
#suggestions .num { color: #888; margin-right: 8px; }
</style>
</head>
<body>
<main>
<h1>Write with the model</h1>
<p id="meta"></p>
<label for="text">Your text</label>
<textarea id="text" spellcheck="false" autofocus aria-describedby="help" aria-controls="suggestions"
  aria-autocomplete="list"></textarea>
<p id="help"><kbd>Tab</kbd> asks for continuations of the text before the cursor;
  <kbd>&uarr;</kbd> <kbd>&darr;</kbd> choose, <kbd>Enter</kbd> or <kbd>Tab</kbd> inserts,
  <kbd>Esc</kbd> closes the list.
  <kbd>Esc</kbd> then <kbd>Tab</kbd> leaves the text area.</p>
<div id="toolbar">
  <button type="button" id="suggest">Suggest continuations (Tab)</button>
  <label>Length <input id="n" type="number" min="1" step="1"></label>
  <label>Temperature <input id="temperature" type="number" min="0.05" step="0.05" value="0.8"></label>
  <label>Choices <input id="count" type="number" min="1" step="1" value="3"></label>
</div>
<div id="status" role="status" aria-live="polite"></div>
<ol id="suggestions" role="listbox" aria-label="Continuations"></ol>
</main>
<script type="application/json" id="charrnn-config">__CONFIG__</script>
<script>
(function () {
  "use strict";
  var C = JSON.parse(document.getElementById("charrnn-config").textContent);
  var known = {};
  Array.from(C.vocab).forEach(function (ch) { known[ch] = true; });
  var ta = document.getElementById("text"), list = document.getElementById("suggestions");
  var statusEl = document.getElementById("status"), nEl = document.getElementById("n");
  var tEl = document.getElementById("temperature"), countEl = document.getElementById("count");
  var open = null;  // {texts, index, start, end} while continuations are listed
  var asked = 0, passTab = false;

  document.getElementById("meta").textContent = C.checkpoint + " (" + C.model + ")";
  nEl.max = String(C.max_chars); nEl.value = String(Math.min(80, C.max_chars));
  countEl.max = String(C.max_samples); countEl.value = String(Math.min(3, C.max_samples));

  function status(text, isError) { statusEl.textContent = text; statusEl.className = isError ? "error" : ""; }

  function seed() {
    var before = Array.from(ta.value.slice(0, ta.selectionStart)).slice(-C.context);
    var kept = before.filter(function (ch) { return known[ch]; });
    return { text: kept.join(""), dropped: before.length - kept.length };
  }

  function close() {
    open = null;
    list.innerHTML = "";
    ta.removeAttribute("aria-activedescendant");
  }

  function render() {
    list.innerHTML = "";
    open.texts.forEach(function (text, k) {
      var li = document.createElement("li"), num = document.createElement("span");
      li.id = "continuation-" + k;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(k === open.index));
      num.className = "num"; num.textContent = (k + 1) + ".";
      li.appendChild(num);
      text.split("\n").forEach(function (part, j) {
        if (j) {
          var nl = document.createElement("span");
          nl.className = "nl";
          nl.textContent = "\u21b5\n";
          li.appendChild(nl);
        }
        li.appendChild(document.createTextNode(part));
      });
      li.addEventListener("mousedown", function (e) { e.preventDefault(); });  // keep the focus in the text
      li.addEventListener("click", function () { insert(k); });
      list.appendChild(li);
    });
    ta.setAttribute("aria-activedescendant", "continuation-" + open.index);
  }

  function suggest() {
    var s = seed(), mine = ++asked;
    var at = { start: ta.selectionStart, end: ta.selectionEnd, value: ta.value };
    var body = { seed: s.text, n: +nEl.value, temperature: +tEl.value, num_samples: +countEl.value };
    close();
    status("Asking the model\u2026");
    fetch("v1/generate", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, j: j }; });
    }).then(function (res) {
      if (mine !== asked) return;  // a newer request (or Esc) replaced this one
      if (!res.ok) { status("Error: " + res.j.error, true); return; }
      if (ta.value !== at.value) { status("The text changed while the model wrote; press Tab again."); return; }
      open = { texts: res.j.texts, index: 0, start: at.start, end: at.end };
      render();
      status(res.j.texts.length + " continuation(s) in " + Math.round(res.j.elapsed_ms) + " ms" +
        (s.dropped ? "; left out " + s.dropped + " character(s) the model never saw" : "") +
        ". \u2191 \u2193 choose, Enter inserts, Esc closes.");
    }).catch(function (err) {
      if (mine === asked) status("Error: no answer from the server (" + err + ")", true);
    });
  }

  function insert(k) {
    var text = open.texts[k], start = open.start, end = open.end;
    close();
    ta.focus();
    ta.setRangeText(text, start, end, "end");
    ta.dispatchEvent(new Event("input", { bubbles: true }));
    status("Inserted " + Array.from(text).length + " character(s).");
  }

  function move(step) {
    open.index = (open.index + step + open.texts.length) % open.texts.length;
    render();
  }

  ta.addEventListener("keydown", function (e) {
    var plain = !e.ctrlKey && !e.altKey && !e.metaKey;
    if (e.key === "Tab" && plain && !e.shiftKey) {
      if (passTab) { passTab = false; return; }  // Esc, Tab: let the focus move on
      e.preventDefault();
      if (open) insert(open.index); else suggest();
      return;
    }
    passTab = false;
    if (open) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") { e.preventDefault(); move(e.key === "ArrowDown" ? 1 : -1); }
      else if (e.key === "Enter" && plain) { e.preventDefault(); insert(open.index); }
      else if (e.key === "Escape") { e.preventDefault(); close(); status(""); }
      else if (["Shift", "Control", "Alt", "Meta"].indexOf(e.key) < 0) close();  // typing on: the list is stale
      return;
    }
    if (e.key === "Escape") {
      asked++;  // forget a request still under way
      passTab = true;
      status("Tab now moves the focus out of the text area.");
    }
  });
  document.getElementById("suggest").addEventListener("click", function () { ta.focus(); suggest(); });
  document.body.dataset.ready = "true";
})();
</script>
</body>
</html>
"""


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
    }
    payload = json.dumps(config, ensure_ascii=True).replace("<", "\\u003c")
    title = html.escape(f"charrnn: {ckpt.corpus.get('name') or checkpoint_path}")
    head, tail = TEMPLATE.split("__CONFIG__")
    return (head.replace("__TITLE__", title) + payload + tail).encode("utf-8")
