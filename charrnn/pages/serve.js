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
  tEl.value = String(C.temperature);

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
