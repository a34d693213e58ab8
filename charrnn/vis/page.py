"""The vis page: one HTML file with its styles, its script and its data inline, so it
opens from disk in any browser with no network access.

The data (``vis.build``) sits in a ``<script type="application/json">`` element and the
script draws everything from it: one span per character, coloured either by the
selected unit's activation (blue negative, red positive) or by the surprisal of the
character in bits. Each unit's activations are a base64 string of int8 levels, decoded
only when the unit is first shown, so a page with thousands of units opens quickly.
"""

from __future__ import annotations

import html
import json

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #fafafa; }
header { padding: 12px 20px 4px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 0 0 8px; }
#meta { margin: 0; color: #555; font-size: 13px; }
#controls { display: flex; flex-wrap: wrap; gap: 10px 18px; align-items: center; padding: 8px 20px;
  border-bottom: 1px solid #ddd; position: sticky; top: 0; background: #fafafa; z-index: 2; }
#controls fieldset { border: 0; padding: 0; margin: 0; display: flex; gap: 10px; align-items: center; }
#controls legend { float: left; margin-right: 8px; font-weight: 600; }
#unit { width: 6em; }
#legend { display: flex; align-items: center; gap: 6px; font-size: 12px; color: #555; }
#legend .bar { width: 140px; height: 12px; border: 1px solid #ccc; }
#selection { font-size: 13px; color: #333; }
main { display: grid; grid-template-columns: minmax(0, 1fr) 360px; gap: 16px; padding: 12px 20px 40px; }
#text { font: 14px/1.6 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: pre-wrap;
  word-wrap: break-word; background: #fff; border: 1px solid #ddd; padding: 12px; outline-offset: 2px; }
#text span { cursor: pointer; }
#text span.nl { color: #aaa; }
#text span.pinned { outline: 2px solid #111; outline-offset: 0; }
aside section { background: #fff; border: 1px solid #ddd; padding: 10px 12px; margin-bottom: 12px; }
aside { position: sticky; top: 60px; align-self: start; }
#found-scroll { max-height: 34vh; overflow: auto; }
#found-list .unitname { font-size: 12px; }
#found-list { margin: 0; padding: 0; list-style: none; counter-reset: found; }
#found-list li { margin: 1px 0; }
#found-list button { font: 13px/1.35 inherit; font-family: inherit; text-align: left; width: 100%; background: none;
  border: 1px solid transparent; border-radius: 3px; padding: 2px 4px; cursor: pointer; display: grid;
  grid-template-columns: 1.6em 8.4em 1fr 3.2em; gap: 4px; align-items: baseline; }
#found-list button .rank { color: #888; text-align: right; }
#found-list button .r { text-align: right; }
#found-list button:hover, #found-list button:focus { border-color: #999; }
#found-list button[aria-pressed="true"] { background: #eef; border-color: #88a; }
.r { font-variant-numeric: tabular-nums; font-weight: 600; }
.unitname { font-family: ui-monospace, monospace; }
.muted { color: #666; font-size: 13px; }
#detail table { border-collapse: collapse; width: 100%; font-size: 13px; }
#detail td { padding: 1px 4px; }
#detail td.ch { font-family: ui-monospace, monospace; white-space: pre; width: 3.5em; }
#detail td.pb { width: 50%; }
#detail .pbar { height: 10px; background: #888; }
#detail tr.actual td { font-weight: 700; }
#detail tr.actual .pbar { background: #2a7; }
#unit-r td { font-size: 13px; padding: 0 4px; }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } aside { position: static; max-height: none; } }
</style>
</head>
<body>
<header>
<h1>What the units track</h1>
<p id="meta"></p>
</header>
<div id="controls">
  <fieldset id="view"><legend>Colour by</legend>
    <label><input type="radio" name="view" value="unit" checked> a unit's activation</label>
    <label><input type="radio" name="view" value="surprisal"> surprisal (bits)</label>
  </fieldset>
  <label>State <select id="series"></select></label>
  <label>Unit <input id="unit" type="number" min="0" step="1" value="0"></label>
  <button type="button" id="prev" aria-label="previous unit">&#9664;</button>
  <button type="button" id="next" aria-label="next unit">&#9654;</button>
  <span id="legend"></span>
  <span id="selection"></span>
</div>
<main>
  <section aria-label="text">
    <div id="text" tabindex="0"
      aria-label="The text, one coloured box per character. Arrow keys move between characters."></div>
  </section>
  <aside>
    <section id="found">
      <h2>Found for you</h2>
      <p class="muted">The units whose activation is most correlated (Pearson r) with a property of this text.
        Choose one to colour the text by it.</p>
      <div id="found-scroll"><ol id="found-list"></ol></div>
      <p id="absent" class="muted"></p>
    </section>
    <section id="detail" aria-live="polite">
      <h2>Character</h2>
      <div id="detail-body" class="muted">
        Hover over or click a character (or focus the text and use the arrow keys).</div>
    </section>
    <section id="unit-info">
      <h2>This unit</h2>
      <table id="unit-r"></table>
    </section>
  </aside>
</main>
<script type="application/json" id="charrnn-data">__DATA__</script>
<script>
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("charrnn-data").textContent);
  var chars = Array.from(D.text);  // code points, as Python counts them
  var N = chars.length, P = D.predictions;
  var textEl = document.getElementById("text"), seriesEl = document.getElementById("series");
  var unitEl = document.getElementById("unit"), foundEl = document.getElementById("found-list");
  var spans = [], cache = {}, view = "unit", pinned = -1, activeFound = -1;
  var POS = "214,39,40", NEG = "31,119,180", HOT = "255,127,14";  // red, blue, orange
  var propLabel = {};
  D.properties.forEach(function (p) { propLabel[p.name] = p.label; });

  function shown(ch) {
    if (ch === "\n") return "\u21b5";
    if (ch === " ") return "\u2423";
    if (ch === "\t") return "\u21e5";
    return ch;
  }
  function fmt(x, digits) { return (x >= 0 ? "+" : "\u2212") + Math.abs(x).toFixed(digits); }

  function values(s, u) {
    var key = s + ":" + u;
    if (!cache[key]) {
      var b = atob(D.series[s].units[u]), a = new Float32Array(b.length);
      for (var i = 0; i < b.length; i++) { var v = b.charCodeAt(i); a[i] = (v > 127 ? v - 256 : v) / D.levels; }
      cache[key] = a;
    }
    return cache[key];
  }
  function current() { return { s: +seriesEl.value, u: +unitEl.value }; }
  function unitName(s, u) { return D.series[s].label + " " + u; }

  function actColour(v) {
    var a = Math.min(Math.abs(v), 1) * 0.75;
    return "rgba(" + (v >= 0 ? POS : NEG) + "," + a.toFixed(3) + ")";
  }
  function bitsColour(bits) {
    return "rgba(" + HOT + "," + Math.min(bits / 8, 1).toFixed(3) + ")";
  }
  function bitsAt(i) { return P.p[i] === null ? null : -Math.log2(Math.max(P.p[i], 1e-300)); }

  function paint() {
    var i;
    if (view === "surprisal") {
      for (i = 0; i < N; i++) { var b = bitsAt(i); spans[i].style.backgroundColor = b === null ? "" : bitsColour(b); }
    } else {
      var c = current(), a = values(c.s, c.u);
      for (i = 0; i < N; i++) spans[i].style.backgroundColor = actColour(a[i]);
    }
    legend();
    unitInfo();
    if (pinned >= 0) detail(pinned);
  }

  function legend() {
    var el = document.getElementById("legend");
    var bar = "<span class='bar' style='background:linear-gradient(90deg,";
    if (view === "surprisal") {
      el.innerHTML = "0 bits " + bar + "#fff,rgb(" + HOT + "))'></span> 8+ bits";
    } else {
      el.innerHTML = "\u22121 " + bar + "rgb(" + NEG + "),#fff,rgb(" + POS + "))'></span> +1";
    }
  }

  function unitInfo() {
    var c = current(), rows = [], sel = document.getElementById("selection");
    Object.keys(D.r).forEach(function (name) {
      var r = D.r[name][c.s][c.u];
      rows.push("<tr><td>" + propLabel[name] + "</td><td class='r'>r = " + fmt(r, 2) + "</td></tr>");
    });
    document.getElementById("unit-r").innerHTML =
      "<caption class='muted' style='text-align:left'>" + esc(unitName(c.s, c.u)) + ", correlation with</caption>" +
      rows.join("");
    sel.textContent = view === "unit" ? "showing " + unitName(c.s, c.u) : "showing surprisal; mean " +
      (P.bits_per_char === null ? "-" : P.bits_per_char.toFixed(3)) + " bits/char";
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; });
  }

  function detail(i) {
    var body = document.getElementById("detail-body"), c = current();
    var html = "<p><span class='unitname'>" + esc(JSON.stringify(chars[i])) + "</span> at position " + i;
    html += "<br>" + esc(unitName(c.s, c.u)) + " after reading it: <span class='r'>" +
      fmt(values(c.s, c.u)[i], 3) + "</span>";
    if (P.p[i] === null) {
      html += "<br>The first character: nothing before it predicts it.</p>";
    } else {
      html += "<br>The model gave it p = " + P.p[i].toPrecision(3) + " (" + bitsAt(i).toFixed(2) + " bits)</p>";
      html += "<table aria-label='top guesses'><caption class='muted' style='text-align:left'>Its top " +
        P.top[i].length + " guesses for this character</caption>";
      for (var k = 0; k < P.top[i].length; k++) {
        var ch = D.vocab[P.top[i][k]], p = P.top_p[i][k];
        html += "<tr" + (ch === chars[i] ? " class='actual'" : "") + "><td class='ch'>" + esc(JSON.stringify(ch)) +
          "</td><td class='pb'><div class='pbar' style='width:" + (100 * p).toFixed(1) + "%'></div></td><td>" +
          p.toFixed(3) + "</td></tr>";
      }
      html += "</table>";
    }
    body.innerHTML = html;
    body.className = "";
  }

  function pin(i) {
    if (pinned >= 0) spans[pinned].classList.remove("pinned");
    pinned = i;
    if (i >= 0) { spans[i].classList.add("pinned"); detail(i); }
  }

  function select(s, u, fromFound) {
    seriesEl.value = String(s);
    unitEl.max = D.series[s].units.length - 1;
    unitEl.value = String(Math.max(0, Math.min(u, D.series[s].units.length - 1)));
    if (view !== "unit") { view = "unit"; document.querySelector("input[name=view][value=unit]").checked = true; }
    activeFound = fromFound === undefined ? -1 : fromFound;
    Array.prototype.forEach.call(foundEl.querySelectorAll("button"), function (b, k) {
      b.setAttribute("aria-pressed", String(k === activeFound));
    });
    paint();
  }

  // --- build the page from the data
  var m = D.model;
  document.title = "charrnn vis: " + (D.corpus || D.checkpoint);
  document.getElementById("meta").textContent = D.checkpoint + ": " + m.cell + ", " + m.n_layers + " layer(s) x " +
    m.hidden_size + " units; " + N.toLocaleString() + " characters" +
    (P.bits_per_char === null ? "" : ", " + P.bits_per_char.toFixed(3) + " bits/char");
  D.series.forEach(function (s, k) {
    var o = document.createElement("option");
    o.value = String(k); o.textContent = s.label + " (" + s.units.length + " units)";
    seriesEl.appendChild(o);
  });
  var frag = document.createDocumentFragment();
  for (var i = 0; i < N; i++) {
    var sp = document.createElement("span");
    sp.dataset.i = String(i);
    if (chars[i] === "\n") { sp.textContent = "\u21b5\n"; sp.className = "nl"; } else sp.textContent = chars[i];
    spans.push(sp);
    frag.appendChild(sp);
  }
  textEl.appendChild(frag);
  D.found.forEach(function (f, k) {
    var li = document.createElement("li"), b = document.createElement("button");
    b.type = "button";
    b.setAttribute("aria-pressed", "false");
    b.dataset.series = String(f.series); b.dataset.unit = String(f.unit);
    b.innerHTML = "<span class='rank'>" + (k + 1) + ".</span><span class='unitname'>" +
      esc(f.series_label + " " + f.unit) + "</span><span>" + esc(f.property_label) + "</span><span class='r'>" +
      fmt(f.r, 2) + "</span>";
    b.setAttribute("aria-label", "unit " + f.series_label + " " + f.unit + ", " + f.property_label +
      ", r = " + fmt(f.r, 2));
    b.addEventListener("click", function () { select(f.series, f.unit, k); });
    li.appendChild(b);
    foundEl.appendChild(li);
  });
  if (!D.found.length) {
    foundEl.outerHTML = "<p class='muted'>No property of this text shows often enough to rank units.</p>";
  }
  var absent = D.properties.filter(function (p) { return p.absent; });
  if (absent.length) {
    document.getElementById("absent").textContent = "Not ranked: " + absent.map(function (p) {
      return p.label + " (" + p.absent + ")";
    }).join("; ") + ".";
  }

  // --- events
  seriesEl.addEventListener("change", function () { select(+seriesEl.value, +unitEl.value); });
  unitEl.addEventListener("input", function () { if (unitEl.value !== "") select(+seriesEl.value, +unitEl.value); });
  function step(by) { return function () { select(+seriesEl.value, +unitEl.value + by); }; }
  document.getElementById("prev").addEventListener("click", step(-1));
  document.getElementById("next").addEventListener("click", step(1));
  Array.prototype.forEach.call(document.querySelectorAll("input[name=view]"), function (r) {
    r.addEventListener("change", function () { view = r.value; paint(); });
  });
  textEl.addEventListener("mouseover", function (e) {
    if (pinned < 0 && e.target.dataset && e.target.dataset.i !== undefined) detail(+e.target.dataset.i);
  });
  textEl.addEventListener("click", function (e) {
    if (!e.target.dataset || e.target.dataset.i === undefined) return;
    var i = +e.target.dataset.i;
    pin(i === pinned ? -1 : i);
  });
  textEl.addEventListener("keydown", function (e) {
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      e.preventDefault();
      var i = pinned < 0 ? 0 : Math.max(0, Math.min(N - 1, pinned + (e.key === "ArrowRight" ? 1 : -1)));
      pin(i);
      spans[i].scrollIntoView({ block: "nearest" });
    } else if (e.key === "Escape") {
      pin(-1);
    }
  });

  if (D.found.length) select(D.found[0].series, D.found[0].unit, 0); else select(0, 0);
  document.body.dataset.ready = "true";
})();
</script>
</body>
</html>
"""


def render(data: dict) -> str:
    """The page for ``data`` (vis.build). The JSON is embedded as ASCII with every "<"
    escaped, so no text (a "</script>" in it, say) can end the data element early."""
    payload = json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("<", "\\u003c")
    title = html.escape(f"charrnn vis: {data.get('corpus') or data['checkpoint']}")
    head, tail = TEMPLATE.split("__DATA__")
    return head.replace("__TITLE__", title) + payload + tail
