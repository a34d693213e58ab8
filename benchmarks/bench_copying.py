"""charrnn copying report speed: indexing a corpus, and reporting on a sample against it.

Times what `charrnn sample --report-copying` adds: reading the corpus (data.load_corpus:
decoding, hashing), building its suffix array (copying.CorpusIndex) and reporting on
samples of --sample-chars characters: one copied verbatim from the corpus (the worst
case: its matches are as long as the sample), one drawn character by character from
the corpus's character frequencies (a poor model: matches of a few characters) and one
spliced from 30-character pieces of the corpus (a model that recites phrases).
Medians of --repeats runs. With --automaton-chars N, also times building a suffix
automaton in pure Python on the first N characters, the alternative the module's
docstring weighs.

    python benchmarks/bench_copying.py /path/to/tinyshakespeare.txt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from charrnn import copying, data


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def samples(text: str, vocab: data.Vocab, ids: np.ndarray, n: int, rng: np.random.Generator) -> dict[str, str]:
    start = int(rng.integers(0, len(text) - n))
    freq = np.bincount(ids, minlength=vocab.size) / len(ids)
    drawn = "".join(vocab.chars[i] for i in rng.choice(vocab.size, n, p=freq))
    pieces = []
    while sum(map(len, pieces)) < n:
        s = int(rng.integers(0, len(text) - 30))
        pieces.append(text[s : s + 30])
    return {"verbatim": text[start : start + n], "unigram": drawn, "spliced-30": "".join(pieces)[:n]}


def automaton_seconds(text: str) -> float:
    """Build a suffix automaton over ``text`` in pure Python (dict transitions)."""
    t0 = time.perf_counter()
    nxt, link, length, last = [{}], [-1], [0], 0
    for ch in text:
        cur = len(length)
        nxt.append({})
        length.append(length[last] + 1)
        link.append(0)
        p = last
        while p != -1 and ch not in nxt[p]:
            nxt[p][ch] = cur
            p = link[p]
        if p != -1:
            q = nxt[p][ch]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(length)
                nxt.append(dict(nxt[q]))
                length.append(length[p] + 1)
                link.append(link[q])
                while p != -1 and nxt[p].get(ch) == q:
                    nxt[p][ch] = clone
                    p = link[p]
                link[q] = link[cur] = clone
        last = cur
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("corpus", help="a text file, e.g. tiny Shakespeare")
    p.add_argument("--encoding", default="utf-8")
    p.add_argument("--sample-chars", type=int, default=2000)
    p.add_argument("--min-span", type=int, default=copying.DEFAULT_MIN_SPAN)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--automaton-chars", type=int, default=0, help="also time a pure-Python suffix automaton")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a = p.parse_args(argv)

    load_s, corpus = median_time(lambda: data.load_corpus(a.corpus, a.encoding), a.repeats)
    index_s, index = median_time(lambda: copying.CorpusIndex(corpus.ids, corpus.vocab), a.repeats)
    text = corpus.vocab.decode(corpus.ids)
    rng = np.random.default_rng(0)
    results = {
        "cpu": cpu_name(),
        "numpy": np.__version__,
        "corpus": os.path.basename(a.corpus),
        "corpus_chars": len(corpus.ids),
        "vocab": corpus.vocab.size,
        "chars_per_word": index.k,
        "load_s": load_s,
        "index_s": index_s,
        "sample_chars": a.sample_chars,
        "min_span": a.min_span,
        "report_s": {},
        "report": {},
    }
    for name, sample in samples(text, corpus.vocab, corpus.ids, a.sample_chars, rng).items():
        seconds, report = median_time(lambda s=sample: index.report(s, a.min_span), a.repeats)
        results["report_s"][name] = seconds
        results["report"][name] = {"longest": report.longest_length, "copied_share": round(report.copied_share, 4)}
    if a.automaton_chars:
        results["automaton_chars"] = a.automaton_chars
        results["automaton_s"] = automaton_seconds(text[: a.automaton_chars])
    if a.json:
        print(json.dumps(results))
        return
    print(f"CPU: {results['cpu']}, NumPy {results['numpy']}; medians of {a.repeats} runs")
    print(
        f"{results['corpus']}: {results['corpus_chars']:,} characters, {results['vocab']} distinct "
        f"({index.k} per packed word)"
    )
    print(f"  read, decode and hash:  {load_s * 1000:8.1f} ms")
    print(f"  suffix array (index):   {index_s * 1000:8.1f} ms")
    for name, seconds in results["report_s"].items():
        r = results["report"][name]
        print(
            f"  report, {a.sample_chars:,}-char sample, {name + ':':12s} {seconds * 1000:6.1f} ms "
            f"(longest {r['longest']:,}, copied share {r['copied_share']:.1%} at {a.min_span}+)"
        )
    total = load_s + index_s + max(results["report_s"].values())
    print(f"  read + index + slowest report: {total * 1000:.1f} ms")
    if a.automaton_chars:
        rate = a.automaton_chars / results["automaton_s"]
        print(
            f"  pure-Python suffix automaton: {results['automaton_s']:.2f} s for {a.automaton_chars:,} characters "
            f"({len(corpus.ids) / rate:.1f} s for the whole corpus at that rate)"
        )


if __name__ == "__main__":
    main()
