"""`charrnn vis`: the text properties, the correlation search (on a model built so that
known units follow known properties), the states taken from the model's own forward
pass, the data embedded in the page, and the command."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import fails, ok, run
from helpers_vis import BRACKET_UNIT, UPPER_UNIT, constructed_checkpoint, embedded, marked_text, save_constructed

from charrnn import data, model
from charrnn.cli import cli
from charrnn.config import ModelConfig
from charrnn.vis import build, page, properties, search, trace

# ------------------------------------------------------------------ properties


def test_quotes_and_brackets_describe_the_moment_after_each_character():
    text = 'a "bc" d (e [f] g) h) “i” j'
    q = properties.in_quotes(text)
    b = properties.in_brackets(text)
    assert "".join(c for c, v in zip(text, q) if v) == '"bc“i'  # the opening quote is inside, the closing one not
    assert "".join(c for c, v in zip(text, b) if v) == "(e [f] g"  # nesting; a stray ")" changes nothing


def test_line_properties():
    text = "ab\ncde\nf"
    assert properties.line_position(text).tolist() == [1, 2, 0, 1, 2, 3, 0, 1]
    to_nl = properties.to_newline(text)
    assert to_nl[:6].tolist() == [1, 0, 3, 2, 1, 0] and np.isnan(to_nl[6:]).all()  # no break follows: undefined


def test_word_start_and_upper_case():
    text = "Hi you, O'Neil!"
    assert "".join(c for c, v in zip(text, properties.word_start(text)) if v) == "HyON"
    assert "".join(c for c, v in zip(text, properties.upper_case(text)) if v) == "HON"


# ------------------------------------------------------------------ correlation search


def test_correlations_match_numpy_and_skip_undefined_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X[:, 3] = 1.0  # a unit that never moves
    y = X[:, 0] * 2 + rng.normal(size=200)
    y[::7] = np.nan
    r = search.correlations(X, y)
    keep = ~np.isnan(y)
    for u in range(3):
        assert r[u] == pytest.approx(np.corrcoef(X[keep, u], y[keep])[0, 1], abs=1e-12)
    assert r[3] == 0.0


def test_a_property_the_text_barely_shows_ranks_nothing():
    text = 'Ab "c" ' + "x" * 200
    series = [trace.Series("l0.h", 0, "h", np.random.default_rng(0).normal(size=(len(text), 5)).astype(np.float32))]
    result = search.rank(series, text)
    assert "in_quotes" in result.absent and "at least 10" in result.absent["in_quotes"]
    assert "in_brackets" in result.absent
    assert {f.prop for f in result.found}.isdisjoint(result.absent)


def test_the_search_finds_the_units_built_to_follow_a_property():
    text = marked_text(3000)
    ckpt = constructed_checkpoint(text)
    tr = trace.record(ckpt.params, ckpt.model_cfg, ckpt.vocab.encode(text))
    result = search.rank(tr.series, text)
    best = {}
    for f in result.found:  # ranked: the first finding of each property is its best unit
        best.setdefault(f.prop, f)
    assert (best["upper_case"].unit, best["upper_case"].series) == (UPPER_UNIT, 0)
    assert best["upper_case"].r > 0.99
    assert best["in_brackets"].unit == BRACKET_UNIT and best["in_brackets"].r > 0.9
    assert [abs(f.r) for f in result.found] == sorted((abs(f.r) for f in result.found), reverse=True)
    assert len([f for f in result.found if f.prop == "upper_case"]) == search.PER_PROPERTY
    assert set(result.table) == {p.name for p in properties.PROPERTIES} - set(result.absent)


# ------------------------------------------------------------------ states from the model's forward pass


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_trace_is_the_models_own_forward_pass(cell):
    """The cache contract trace.py relies on: the states it reads are the ones forward
    carries out (final state), the top layer's h gives forward's logits, and
    splitting the text into chunks changes nothing."""
    rng = np.random.default_rng(3)
    cfg = ModelConfig(cell=cell, vocab_size=7, hidden_size=5, n_layers=2, dropout=0.0)
    params = model.init_params(cfg, rng, dtype=np.float64)
    for p in params.values():
        p += rng.normal(0, 0.4, p.shape)
    ids = rng.integers(0, 7, 41)
    tr = trace.record(params, cfg, ids, chunk=9)
    logits, state, _ = model.forward(params, cfg, ids[None, :], model.init_hidden(cfg, 1, np.float64))
    np.testing.assert_allclose(tr.logits, logits[:, 0, :], rtol=1e-5, atol=1e-5)
    names = [s.name for s in tr.series]
    assert names == model.hidden_names(cfg)
    assert [s.label for s in tr.series][:2] == (["l0.h", "l0.tanh(c)"] if cell == "lstm" else ["l0.h", "l1.h"])
    for s in tr.series:
        final = state[s.layer][cfg.spec.state.index(s.state)][0]
        np.testing.assert_allclose(s.values[-1], np.tanh(final) if s.state == "c" else final, rtol=1e-5, atol=1e-6)
    top_h = tr.series[names.index("l1.h")].values
    np.testing.assert_allclose(top_h @ params["Why"] + params["by"], logits[:, 0, :], rtol=1e-4, atol=1e-4)
    whole = trace.record(params, cfg, ids)
    for a, b in zip(tr.series, whole.series):
        np.testing.assert_allclose(a.values, b.values, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ the page and its data


def test_the_page_embeds_what_it_shows():
    text = marked_text(1500) + " </script><b>not markup</b> "
    ckpt = constructed_checkpoint(text)
    data = build(ckpt, "ck/best.npz", text)
    document = page.render(data)
    assert embedded(document) == json.loads(json.dumps(data))  # the data survives the trip through the HTML
    assert document.count("</script>") == 2  # the text's "</script>" cannot end the data element
    assert data["text"] == text and data["vocab"] == ckpt.vocab.chars

    ids = ckpt.vocab.encode(text)
    tr = trace.record(ckpt.params, ckpt.model_cfg, ids)
    (series,) = data["series"]
    assert (series["name"], series["label"], len(series["units"])) == ("l0.h", "l0.h", 3)
    levels = np.frombuffer(base64.b64decode(series["units"][UPPER_UNIT]), dtype=np.int8)
    np.testing.assert_allclose(levels / data["levels"], tr.series[0].values[:, UPPER_UNIT], atol=0.5 / 127 + 1e-6)

    probs = tr.next_char_probs()
    pred = data["predictions"]
    assert pred["p"][0] is None and pred["top"][0] is None  # nothing predicts the first character
    for i in (1, 2, 500, len(text) - 1):
        assert pred["p"][i] == pytest.approx(probs[i - 1, ids[i]], rel=1e-3)
        assert pred["top"][i] == list(np.argsort(-probs[i - 1], kind="stable")[:5])
        assert pred["top_p"][i] == sorted(pred["top_p"][i], reverse=True)
    bits = -np.log2([probs[i - 1, ids[i]] for i in range(1, len(text))])
    assert pred["bits_per_char"] == pytest.approx(bits.mean())

    first = {}
    for f in data["found"]:
        first.setdefault(f["property"], f)
    assert first["upper_case"]["unit"] == UPPER_UNIT and first["upper_case"]["property_label"] == "upper-case letter"
    assert data["r"]["upper_case"][0][UPPER_UNIT] > 0.99
    assert [p["name"] for p in data["properties"]] == [p.name for p in properties.PROPERTIES]


def test_the_page_needs_nothing_from_outside():
    text = marked_text(600)
    document = page.render(build(constructed_checkpoint(text), "ck", text))
    assert not re.search(r"\b(src|href)\s*=|@import|url\(|https?://", document.split('id="charrnn-data">')[0])
    assert not re.search(r"\b(src|href)\s*=|https?://", document.split("</script>", 1)[1])


# ------------------------------------------------------------------ the command


@pytest.fixture(scope="module")
def ck(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vis")
    text = marked_text(2500)
    (tmp / "text.txt").write_text(text, encoding="utf-8")
    return save_constructed(tmp / "ck", text), tmp / "text.txt"


def test_vis_writes_a_page_and_a_summary(ck, tmp_path):
    directory, text_file = ck
    out = tmp_path / "page.html"
    result = ok(run("vis", "-c", directory, text_file, "-o", out, "--json"))
    summary = json.loads(result.stdout)
    assert summary["output"] == str(out) and summary["chars"] == len(text_file.read_text())
    assert summary["bytes"] == out.stat().st_size
    assert summary["found"][0]["unit"] == UPPER_UNIT and summary["found"][0]["property"] == "upper_case"
    assert "wrote" in result.stderr and "upper-case letter" in result.stderr
    assert embedded(out.read_text(encoding="utf-8"))["text"] == text_file.read_text()


def test_vis_takes_text_from_an_option_or_stdin(ck, tmp_path):
    directory, _ = ck
    result = ok(run("vis", "-c", directory, "--text", "(The cat) sat.", "-o", "-", "-q"))
    assert result.stdout.startswith("<!DOCTYPE html>") and result.stderr == ""
    assert embedded(result.stdout)["text"] == "(The cat) sat."
    piped = CliRunner().invoke(cli, ["vis", "-c", directory, "-", "-o", str(tmp_path / "p.html")], input="The dog ran.")
    assert piped.exit_code == 0, piped.output
    assert embedded((tmp_path / "p.html").read_text())["text"] == "The dog ran."


@pytest.mark.parametrize(
    "args, fragments",
    [
        ([], ["give the text as FILE or with --text"]),
        (["--text", "The cat", "FILE"], ["one of them"]),
        (["--text", "The cat ZQ"], ["never saw: 'Q', 'Z'", "--drop-unknown"]),
        (["--text", ""], ["the text is empty"]),
        (["--text", "The cat", "-o", "-", "--json"], ["--json prints a summary"]),
    ],
)
def test_vis_usage_errors(ck, tmp_path, args, fragments):
    directory, text_file = ck
    args = [str(text_file) if a == "FILE" else a for a in args]
    output = [] if "-o" in args else ["-o", str(tmp_path / "p.html")]
    fails(run("vis", "-c", directory, *args, *output), 2, *fragments)
    assert not (tmp_path / "p.html").exists()


def test_vis_shows_the_beginning_of_a_long_file_without_reading_it_all(ck, tmp_path, monkeypatch):
    directory, _ = ck
    big = tmp_path / "big.txt"
    big.write_text("the cat sat. " * 200_000)  # 2.6 M characters, read 1 MiB at a time
    pieces = []
    real = data.iter_text

    def counted(*args, **kwargs):
        for piece in real(*args, **kwargs):
            pieces.append(piece)
            yield piece

    monkeypatch.setattr(data, "iter_text", counted)
    result = ok(run("vis", "-c", directory, big, "-o", tmp_path / "p.html", "--max-chars", 1000))
    assert embedded((tmp_path / "p.html").read_text())["text"] == ("the cat sat. " * 100)[:1000]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: {big} is longer than 1,000 characters; the page shows the first 1,000 (--max-chars, up to 200,000)"
    ]
    assert sum(map(len, pieces)) < 2_600_000  # the rest was never read


def test_vis_cuts_a_long_text_option_the_same_way(ck, tmp_path):
    directory, _ = ck
    result = ok(run("vis", "-c", directory, "--text", "The cat. " * 30, "--max-chars", 100, "-o", tmp_path / "p.html"))
    assert embedded((tmp_path / "p.html").read_text())["text"] == ("The cat. " * 30)[:100]
    assert "note: --text is longer than 100 characters; the page shows the first 100" in result.stderr
    quiet = run("vis", "-c", directory, "--text", "The cat. " * 30, "--max-chars", 100, "-o", tmp_path / "q.html", "-q")
    ok(quiet)
    assert quiet.stderr == ""


def test_vis_drop_unknown(ck, tmp_path):
    directory, _ = ck
    result = ok(run("vis", "-c", directory, "--text", "The ZcatZ sat.", "--drop-unknown", "-o", tmp_path / "p.html"))
    assert "dropped 2 characters" in result.stderr
    assert embedded((tmp_path / "p.html").read_text())["text"] == "The cat sat."


def test_vis_help_has_examples():
    result = ok(run("vis", "--help"))
    assert "Examples:" in result.output and "charrnn vis" in result.output
