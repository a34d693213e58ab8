"""The copying report: the index against a brute-force reading of its definitions on
small random texts, and `charrnn sample --report-copying`."""

import json
import random
import sys

import pytest
from helpers import TINY, fails, make_text, ok, run, train

from charrnn import copying, sampling
from charrnn.copying import CorpusIndex

# ------------------------------------------------------------------ brute force


def brute_matching(sample: str, text: str) -> list[int]:
    """ms[i]: the longest substring starting at i that occurs in text."""
    out = []
    for i in range(len(sample)):
        length = 0
        while i + length < len(sample) and sample[i : i + length + 1] in text:
            length += 1
        out.append(length)
    return out


def brute_report(sample: str, text: str, min_span: int) -> tuple[int, str, int]:
    """(longest length, longest text, copied characters), straight from the definitions:
    every substring of the sample is tried."""
    best, best_text = 0, ""
    covered = [False] * len(sample)
    for i in range(len(sample)):
        for j in range(i + 1, len(sample) + 1):
            if sample[i:j] not in text:
                continue
            if j - i > best:
                best, best_text = j - i, sample[i:j]
            if j - i >= min_span:
                covered[i:j] = [True] * (j - i)
    return best, best_text, sum(covered)


def random_pair(rng: random.Random) -> tuple[str, str]:
    """A text and a sample over a small alphabet, so that repeats happen; the sample is
    often spliced from pieces of the text, with characters the text lacks mixed in."""
    alphabet = rng.choice(["ab", "abc", "abcd\n", "aé b"])
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
    sample = ""
    target = rng.randint(0, 30)
    while len(sample) < target:
        if text and rng.random() < 0.5:
            start = rng.randrange(len(text))
            sample += text[start : start + rng.randint(1, 15)]
        else:
            sample += rng.choice(alphabet + "xz")
    return text, sample


def test_report_matches_brute_force_on_random_texts():
    rng = random.Random(0)
    for _ in range(600):
        text, sample = random_pair(rng)
        index = CorpusIndex.from_text(text)
        ms, where = index.matching_statistics(sample)
        assert ms.tolist() == brute_matching(sample, text), (text, sample)
        for i, length in enumerate(ms):
            assert (where[i] >= 0) == (length > 0)
            if length:
                assert text[where[i] : where[i] + length] == sample[i : i + length]
        for min_span in (1, 2, 3, 5, 20):
            report = index.report(sample, min_span)
            best, best_text, copied = brute_report(sample, text, min_span)
            assert (report.longest_length, report.longest_text, report.copied_chars) == (best, best_text, copied)
            assert report.copied_share == (copied / len(sample) if sample else 0.0)
            if best:
                offset = report.longest_offset
                assert text[offset : offset + best] == best_text


@pytest.mark.parametrize(
    "alphabet",
    ["ab", "abcdefghij", "".join(chr(0x100 + i) for i in range(300))],  # 2, 4 and 9 bits a character
    ids=["2-chars", "10-chars", "300-chars"],
)
def test_long_matches_across_many_packed_words(alphabet):
    """Repetitive texts need several doubling rounds, and long copied stretches are
    matched over many packed words."""
    rng = random.Random(len(alphabet))
    for _ in range(15):
        block = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        text = "".join(block if rng.random() < 0.5 else rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        sample = ""
        while len(sample) < 150:
            start = rng.randrange(len(text))
            sample += text[start : start + rng.randint(1, 90)] + rng.choice(alphabet + "#")
        index = CorpusIndex.from_text(text)
        assert [text[p:] for p in index.sa] == sorted(text[p:] for p in range(len(text)))
        assert index.matching_statistics(sample)[0].tolist() == brute_matching(sample, text)


def test_suffix_array_of_a_single_repeated_character():
    index = CorpusIndex.from_text("a" * 1000)
    assert index.sa.tolist() == list(range(999, -1, -1))
    report = index.report("b" + "a" * 300 + "b", 20)
    assert (report.longest_length, report.copied_chars, report.chars) == (300, 300, 302)


def test_edge_cases():
    text = "the cat sat on the mat"
    index = CorpusIndex.from_text(text)
    empty = index.report("", 20)
    assert (empty.chars, empty.longest_length, empty.longest_text, empty.copied_share) == (0, 0, "", 0.0)
    assert empty.longest_offset is None
    short = index.report("cat sat", 20)  # wholly in the text, but shorter than the span
    assert (short.longest_length, short.longest_text, short.copied_chars) == (7, "cat sat", 0)
    assert short.longest_offset == text.index("cat sat")
    inside = index.report("cat sat on the mat", 5)
    assert (inside.longest_length, inside.copied_share) == (18, 1.0)
    whole = index.report(text, len(text))
    assert (whole.longest_length, whole.longest_offset, whole.copied_share) == (len(text), 0, 1.0)
    foreign = index.report("XYZ!?", 1)
    assert (foreign.longest_length, foreign.longest_offset, foreign.copied_chars) == (0, None, 0)
    assert CorpusIndex.from_text("").report("abc", 1).longest_length == 0
    with pytest.raises(ValueError):
        index.report("cat", 0)


def test_one_index_serves_many_samples():
    text = make_text(5000, seed=3)
    index = CorpusIndex.from_text(text)
    rng = random.Random(5)
    for _ in range(20):
        start = rng.randrange(len(text) - 100)
        sample = text[start : start + rng.randint(0, 60)] + "Zq" + make_text(40, seed=rng.randrange(99))
        assert index.report(sample, 10) == copying.report(sample, text, 10)
        assert index.report(sample, 10).copied_chars == brute_report(sample, text, 10)[2]


def test_to_dict_shape():
    # "the cat sat " is the longest copy; " the " (from "on the mat") also covers the space before it
    d = copying.report("xx the cat sat yy", "the cat sat on the mat", 4).to_dict()
    assert d == {
        "longest": {"length": 12, "text": "the cat sat ", "corpus_offset": 0},
        "copied_share": 13 / 17,
        "copied_chars": 13,
        "chars": 17,
        "min_span": 4,
        "lines": {"complete": 0, "in_corpus": 0, "new_share": None},
    }


def test_whole_lines_against_the_definition():
    names = "emma\nliam\nolivia\nava"  # first and last line have no newline on one side
    index = CorpusIndex.from_text(names)
    cases = [
        ("emma\nzed\nliam\nav", "", [("emma", True), ("zed", False), ("liam", True)]),  # "av" is unfinished
        ("ma\nolivia\nava\n", "em", [("emma", True), ("olivia", True), ("ava", True)]),  # the seed starts a line
        ("mma\nlia\n\n", "", [("mma", False), ("lia", False)]),  # parts of lines; the empty line is skipped
        ("emma\n", "liam\n", [("emma", True)]),  # lines of the seed alone are not the sample's
    ]
    for sample, seed, expected in cases:
        assert list(index.whole_lines(sample, seed)) == expected, (sample, seed)
        brute = [(line, line in names.split("\n")) for line, _ in expected]
        assert list(index.whole_lines(sample, seed)) == brute
    assert index.short_lines and not CorpusIndex.from_text("a line longer than twenty characters\n" * 3).short_lines
    d = index.report("zed\nava\n").to_dict()["lines"]
    assert d == {"complete": 2, "in_corpus": 1, "new_share": 0.5}


# ------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny model whose corpus stays in place: (run directory, corpus path)."""
    root = tmp_path_factory.mktemp("copying")
    corpus = root / "tiny.txt"
    corpus.write_text(make_text(6000), encoding="utf-8")
    ok(train(corpus, root / "ck"))
    return root / "ck", corpus


def trained_elsewhere(tmp_path):
    """A tiny model of its own, for the tests that move or change its corpus."""
    corpus = tmp_path / "tiny.txt"
    corpus.write_text(make_text(6000), encoding="utf-8")
    ok(train(corpus, tmp_path / "ck"))
    return tmp_path / "ck", corpus


def test_json_objects_carry_the_report(model):
    ck, corpus = model
    result = ok(
        run(
            "sample", "-c", ck, "-s", "The", "-n", 80, "--num-samples", 3, "--rng-seed", 1,
            "--json", "--report-copying", "--copy-min-span", 5,
        )
    )  # fmt: skip
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3
    text = corpus.read_text(encoding="utf-8")
    for record in records:
        expected = copying.report(record["text"], text, 5, "The").to_dict()  # the generated text, not the seed
        assert record["copying"] == {**expected, "corpus": str(corpus)}
        assert record["copying"]["chars"] == 80 and record["copying"]["min_span"] == 5
    plain = ok(run("sample", "-c", ck, "-s", "The", "-n", 80, "--num-samples", 3, "--rng-seed", 1, "--json"))
    assert [json.loads(line)["text"] for line in plain.stdout.splitlines()] == [r["text"] for r in records]
    assert all("copying" not in json.loads(line) for line in plain.stdout.splitlines())


@pytest.mark.parametrize("num_samples", [1, 2])
def test_text_report_goes_to_stderr_and_leaves_stdout_alone(model, num_samples):
    ck, corpus = model
    args = ["sample", "-c", ck, "-s", "The", "-n", 60, "--rng-seed", 2, "--num-samples", num_samples]
    plain = ok(run(*args))
    reported = ok(run(*args, "--report-copying"))
    assert reported.stdout == plain.stdout
    lines = reported.stderr.splitlines()
    assert len(lines) == 2 * num_samples
    label = "copying" if num_samples == 1 else "copying, sample 2"
    assert lines[-2].startswith(f"{label}: the longest substring also in tiny.txt has ")
    assert lines[-1].startswith(f"{label}: ") and "of the 60 generated characters" in lines[-1]
    assert "20+ characters" in lines[-1]


def test_one_sample_still_streams(model, monkeypatch):
    """Characters reach stdout while the sample is being drawn; the report comes after."""
    ck, corpus = model
    seen = []

    def chars():
        for ch in "the cat\nsat on\nthe mat":
            seen.append((sys.stdout.buffer.getvalue().decode(), sys.stderr.buffer.getvalue().decode()))
            yield ch

    monkeypatch.setattr(sampling, "generate", lambda *a, **k: iter([chars()]))
    result = ok(run("sample", "-c", ck, "-s", "", "--report-copying"))
    assert result.stdout == "the cat\nsat on\nthe mat\n"
    assert [out for out, _ in seen if out] == ["the cat\n"] * 7 + ["the cat\nsat on\n"] * 7
    assert all(err == "" for _, err in seen)
    longest = copying.report(result.stdout[:-1], corpus.read_text(encoding="utf-8")).longest_length
    assert result.stderr.startswith(f"copying: the longest substring also in tiny.txt has {longest} characters")


def test_missing_corpus_is_an_error_naming_corpus_option(tmp_path):
    ck, corpus = trained_elsewhere(tmp_path)
    corpus.rename(tmp_path / "moved.txt")
    line = fails(run("sample", "-c", ck, "-n", 10, "--report-copying"), 1, "not there any more", "--corpus")
    assert str(corpus) in line
    result = ok(run("sample", "-c", ck, "-n", 10, "--report-copying", "--corpus", tmp_path / "moved.txt"))
    assert "also in moved.txt" in result.stderr and "note:" not in result.stderr


def test_changed_corpus_is_an_error_but_given_with_corpus_is_a_note(tmp_path):
    ck, corpus = trained_elsewhere(tmp_path)
    with open(corpus, "a", encoding="utf-8") as f:
        f.write("One more line.\n")
    fails(run("sample", "-c", ck, "-n", 10, "--report-copying"), 1, "changed since", "SHA-256", "--corpus")
    given = ok(run("sample", "-c", ck, "-n", 10, "--report-copying", "--corpus", corpus))
    assert given.stderr.startswith(f"note: {corpus} is not the text")
    assert len(given.stderr.splitlines()) == 3
    quiet = ok(run("sample", "-c", ck, "-n", 10, "--report-copying", "--corpus", corpus, "-q"))
    assert "note:" not in quiet.stderr and len(quiet.stderr.splitlines()) == 2


def test_model_trained_from_stdin_needs_corpus(tmp_path, runner):
    from charrnn.cli import cli

    text = make_text(6000)
    result = runner.invoke(cli, ["train", "-", "--checkpoint-dir", str(tmp_path / "ck"), *TINY, "-q"], input=text)
    assert result.exit_code == 0, result.output
    fails(run("sample", "-c", tmp_path / "ck", "-n", 10, "--report-copying"), 1, "standard input", "--corpus")
    corpus = tmp_path / "same.txt"
    corpus.write_text(text, encoding="utf-8")
    result = ok(run("sample", "-c", tmp_path / "ck", "-n", 10, "--report-copying", "--corpus", corpus))
    assert "note:" not in result.stderr  # the same bytes: the recorded SHA-256 matches


def test_corpus_is_read_in_the_checkpoints_encoding(tmp_path):
    corpus = tmp_path / "latin.txt"
    corpus.write_bytes((make_text(3000) + "Café crème, déjà vu.\n" + make_text(3000, seed=1)).encode("latin-1"))
    ok(train(corpus, tmp_path / "ck", "--encoding", "latin-1"))
    result = ok(run("sample", "-c", tmp_path / "ck", "-n", 30, "--report-copying", "--json"))
    assert json.loads(result.stdout)["copying"]["chars"] == 30


def test_copying_options_need_report_copying(model, tmp_path):
    ck, corpus = model
    fails(run("sample", "-c", ck, "--corpus", corpus), 2, "--corpus", "--report-copying")
    fails(run("sample", "-c", ck, "--copy-min-span", 5), 2, "--copy-min-span", "--report-copying")
    fails(run("sample", "-c", ck, "--report-copying", "--copy-min-span", 0), 2)
    fails(run("sample", "-c", ck, "--report-copying", "--corpus", tmp_path / "none.txt"), 2, "no such file")


@pytest.fixture(scope="module")
def names_model(tmp_path_factory):
    """A tiny model of a list of names, each far shorter than the copying span."""
    root = tmp_path_factory.mktemp("names")
    corpus = root / "names.txt"
    rng = random.Random(0)
    corpus.write_text("".join(rng.choice(["emma", "liam", "ava", "noah", "mia"]) + "\n" for _ in range(800)))
    ok(train(corpus, root / "ck", "--max-steps", "400"))  # enough to produce some of the names
    return root / "ck", corpus


def test_a_list_of_names_says_which_generated_names_are_new(names_model):
    ck, corpus = names_model
    args = ["sample", "-c", ck, "-s", "", "--stop", "\\n", "--num-samples", 20, "--rng-seed", 3, "--report-copying"]
    result = ok(run(*args))
    names = [n for n in result.stdout.splitlines() if n]  # an empty line is no name
    known = set(corpus.read_text().split("\n")) - {""}
    found = [n for n in names if n in known]
    assert found and len(found) < len(names)
    [line] = result.stderr.splitlines()
    assert line.startswith(f"copying: {len(names) - len(found)} of the {len(names)} generated lines")
    assert f"; {len(found)} are whole lines of names.txt: {found[0]!r}" in line
    records = [json.loads(r) for r in ok(run(*args, "--json")).stdout.splitlines()]
    texts = [r["text"].rstrip("\n") for r in records]
    assert [r["copying"]["lines"]["in_corpus"] for r in records] == [int(t in known) for t in texts]


def test_one_long_sample_of_a_list_counts_its_lines(names_model):
    ck, corpus = names_model
    result = ok(run("sample", "-c", ck, "-s", "", "-n", 200, "--rng-seed", 4, "--report-copying"))
    lines = [n for n in result.stdout.split("\n")[:-2] if n]  # the last line may be cut short by -n
    known = set(corpus.read_text().split("\n"))
    new = sum(n not in known for n in lines)
    assert f"copying: {new} of its {len(lines)} complete lines" in result.stderr.splitlines()[-1]
