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
