"""The vis and serve pages in a real headless Chromium (Debian's ``chromium``), driven by
Playwright as a person would use them: clicks, keys and typing go in as trusted input
events, so the pages' own handlers, focus and default actions answer them.

Skipped, with the reason, only when no Chromium or no Playwright can be found; under CI
(``CI`` set) a missing one fails instead, since .ci/run installs chromium and the test
extra Playwright. Playwright drives the installed Chromium (``executable_path``), never
a browser build of its own. Screenshots go to $CHARRNN_SCREENSHOTS when it is set (to
look at them), else to the test's tmp dir.
"""

from __future__ import annotations

import base64
import math
import os
import re
import shutil
import signal
from typing import NoReturn

import numpy as np
import pytest
from helpers import TINY, make_text, ok, run
from helpers_serve import ServerProcess
from helpers_vis import BRACKET_UNIT, UPPER_UNIT, embedded, marked_text, save_constructed

from charrnn.config import SampleOptions

POS, NEG, HOT = (214, 39, 40), (31, 119, 180), (255, 127, 14)  # the page's red, blue and orange
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ARGS = [  # no network of its own, no profile work: only the pages under test
    "--no-sandbox",  # Chromium refuses to run its sandbox as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
READY = "document.body && document.body.dataset.ready === 'true'"  # both pages set it once drawn


def find_chromium() -> str | None:
    """$CHARRNN_CHROMIUM, else the first Chromium on PATH."""
    return os.environ.get("CHARRNN_CHROMIUM") or next((p for p in map(shutil.which, CANDIDATES) if p), None)


def unavailable(reason: str) -> NoReturn:
    """Skip, saying why; under CI, fail."""
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI must have it (.ci/run installs chromium, the test extra Playwright)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def page():
    """One page (tab) of one headless Chromium for the module's tests."""
    executable = find_chromium()
    if executable is None:
        unavailable("no headless browser: apt-get install -y chromium (or set CHARRNN_CHROMIUM to one)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed: pip install '.[test]' (or pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.set_default_timeout(20_000)
        yield tab
        browser.close()


def visit(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(READY)


@pytest.fixture
def shots(tmp_path):
    directory = os.environ.get("CHARRNN_SCREENSHOTS") or str(tmp_path)
    os.makedirs(directory, exist_ok=True)
    return lambda name: os.path.join(directory, name)


# ------------------------------------------------------------------ charrnn vis


@pytest.fixture(scope="module")
def vis_page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vis_page")
    text = marked_text(2500)
    (tmp / "text.txt").write_text(text, encoding="utf-8")
    ck = save_constructed(tmp / "ck", text)
    ok(run("vis", "-c", ck, tmp / "text.txt", "-o", tmp / "page.html", "-q"))
    return tmp / "page.html", embedded((tmp / "page.html").read_text(encoding="utf-8"))


def span_colours(page, n: int) -> list[tuple]:
    """(r, g, b, alpha) of the background of the first n characters."""
    css = page.evaluate(
        f"Array.from(document.querySelectorAll('#text span')).slice(0, {n})"
        f".map(function (s) {{ return getComputedStyle(s).backgroundColor; }})"
    )
    out = []
    for c in css:
        parts = [float(x) for x in re.findall(r"[\d.]+", c)]
        out.append(tuple(parts) if len(parts) == 4 else (*parts, 1.0))
    return out


def unit_values(data: dict, series: int, unit: int) -> list[float]:
    raw = base64.b64decode(data["series"][series]["units"][unit])
    return (np.frombuffer(raw, dtype=np.int8) / data["levels"]).tolist()


def assert_coloured_by(colours, values):
    """Red where the unit is positive, blue where negative, stronger the larger |value|."""
    for (r, g, b, a), v in zip(colours, values):
        if abs(v) < 0.05:
            continue
        assert (r, g, b) == (POS if v > 0 else NEG), (r, g, b, v)
        assert a == pytest.approx(0.75 * min(abs(v), 1), abs=0.01)


def test_vis_page_colours_by_the_chosen_unit(page, vis_page, shots):
    path, data = vis_page
    visit(page, path.as_uri())
    n = 400
    # found for you is there, ranked as the data says, and the best finding is shown
    found = page.evaluate(
        "Array.from(document.querySelectorAll('#found-list button')).map(function (b) { return b.textContent; })"
    )
    assert len(found) == len(data["found"]) >= 6
    assert "upper-case letter" in found[0] and f"l0.h {UPPER_UNIT}" in found[0] and "+1.00" in found[0]
    assert page.evaluate("document.querySelector('#found-list button').getAttribute('aria-pressed')") == "true"
    first = span_colours(page, n)
    assert_coloured_by(first, unit_values(data, 0, UPPER_UNIT))
    page.screenshot(path=shots("vis_found_upper_case.png"))

    # another unit, chosen with the keyboard: focus the unit field, arrow up
    page.click("#unit")
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.getElementById('unit').value") == str(UPPER_UNIT + 1)
    after = span_colours(page, n)
    assert after != first
    assert_coloured_by(after, unit_values(data, 0, UPPER_UNIT + 1))

    # a found-for-you entry colours the text by its unit
    k = next(i for i, f in enumerate(data["found"]) if f["property"] == "in_brackets")
    page.click(f"#found-list li:nth-child({k + 1}) button")
    assert page.evaluate("document.getElementById('unit').value") == str(BRACKET_UNIT)
    assert page.evaluate(f"document.querySelectorAll('#found-list button')[{k}].getAttribute('aria-pressed')") == "true"
    bracket = span_colours(page, n)
    assert_coloured_by(bracket, unit_values(data, 0, BRACKET_UNIT))
    inside = [c for c, (r, g, b, a) in zip(data["text"], bracket) if (r, g, b) == POS and a > 0.5]
    assert "(" in inside and ")" not in inside  # the unit is high exactly inside the brackets
    page.screenshot(path=shots("vis_found_brackets.png"))


def test_vis_page_surprisal_and_top_guesses(page, vis_page, shots):
    path, data = vis_page
    visit(page, path.as_uri())
    page.click("input[name=view][value=surprisal]")
    colours = span_colours(page, 200)
    assert colours[0][3] == 0  # nothing predicts the first character
    assert all((r, g, b) == HOT for r, g, b, a in colours[1:]) and len({a for *_, a in colours[1:]}) > 5
    assert "surprisal" in page.evaluate("document.getElementById('selection').textContent")

    page.click("#text span:nth-child(60)")  # pins the character's details
    detail = page.evaluate("document.getElementById('detail-body').innerText")
    assert "at position 59" in detail and "top 5 guesses" in detail
    assert page.evaluate("document.querySelectorAll('#detail tr').length") == 5
    p = data["predictions"]["p"][59]
    assert f"({-math.log2(p):.2f} bits)" in detail
    # the arrow keys move along the text, the details follow
    page.keyboard.press("ArrowRight")
    assert "at position 60" in page.evaluate("document.getElementById('detail-body').innerText")
    page.screenshot(path=shots("vis_surprisal.png"))


# ------------------------------------------------------------------ charrnn serve


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("served")
    corpus = tmp / "tiny.txt"
    corpus.write_text(make_text(5000))
    ok(run("train", corpus, "--checkpoint-dir", tmp / "ck", *TINY, "--max-steps", "30", "-q"))
    srv = ServerProcess("-c", tmp / "ck", "-q")
    yield srv
    assert srv.stop(signal.SIGTERM) == 0, srv.log


CONTINUATIONS = (
    "Array.from(document.querySelectorAll('#suggestions li')).map(function (li) {"
    " return Array.from(li.childNodes).slice(1).map(function (n) { return n.textContent; }).join('')"
    ".split('\\u21b5\\n').join('\\n'); })"
)


def test_writing_page_tab_asks_and_inserts(page, served, shots):
    visit(page, served.url)
    page.click("#text")
    page.keyboard.type("The cat sat on the ")
    page.keyboard.press("Tab")
    page.wait_for_function("document.querySelectorAll('#suggestions li').length === 3")
    options = page.evaluate(CONTINUATIONS)
    assert len(options) == 3 and all(len(o) == 80 for o in options)  # the page asks for 80 characters
    temperature = float(page.evaluate("document.getElementById('temperature').value"))
    assert temperature == SampleOptions().temperature  # the page starts where `charrnn sample` does
    assert page.evaluate("document.activeElement.id") == "text"  # Tab did not move the focus
    page.keyboard.press("ArrowDown")  # the second one
    assert page.evaluate("document.querySelectorAll('#suggestions li')[1].getAttribute('aria-selected')") == "true"
    page.screenshot(path=shots("serve_continuations.png"))
    page.keyboard.press("Enter")
    value = page.evaluate("document.getElementById('text').value")
    assert value == "The cat sat on the " + options[1]
    assert page.evaluate("document.getElementById('text').selectionStart") == len(value)  # the cursor after it
    assert page.evaluate("document.querySelectorAll('#suggestions li').length") == 0
    assert "Inserted 80" in page.evaluate("document.getElementById('status').textContent")
    page.screenshot(path=shots("serve_inserted.png"))

    # Tab twice: ask, then take the first one
    page.keyboard.press("Tab")
    page.wait_for_function("document.querySelectorAll('#suggestions li').length === 3")
    first = page.evaluate(CONTINUATIONS)[0]
    page.keyboard.press("Tab")
    assert page.evaluate("document.getElementById('text').value") == value + first


def test_writing_page_keyboard_only_and_unknown_characters(page, served):
    visit(page, served.url)
    page.click("#text")
    page.keyboard.type("Zebra and the cat")  # the tiny corpus has no Z
    page.keyboard.press("Tab")
    page.wait_for_function("document.querySelectorAll('#suggestions li').length === 3")
    assert "left out 1 character" in page.evaluate("document.getElementById('status').textContent")
    page.keyboard.press("Escape")  # closes the list, inserts nothing
    assert page.evaluate("document.querySelectorAll('#suggestions li').length") == 0
    assert page.evaluate("document.getElementById('text').value") == "Zebra and the cat"
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")  # Esc, then Tab: the focus moves on to the button
    assert page.evaluate("document.activeElement.id") == "suggest"
    page.keyboard.press("Enter")  # the button asks too
    page.wait_for_function("document.querySelectorAll('#suggestions li').length === 3")
    assert page.evaluate("document.activeElement.id") == "text"
