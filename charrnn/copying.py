"""How much of a sample is copied from the training text: the copying report.

Definitions, for a sample s (|s| characters) and a training text c:

- A *copied span* is a substring s[i:j] (j > i) that also occurs somewhere in c.
- The *matching statistic* at position i is the length of the longest copied span
  that starts there: ``ms[i] = max{ L : s[i:i+L] occurs in c }`` (0 when s[i] does
  not occur in c at all).
- The *longest copied substring* is s[i*:i*+ms[i*]] with ``i* = argmax ms`` (the
  first such i); its length is ``max ms``, 0 for an empty sample or when no
  character of s occurs in c.
- Position p of s is *covered* at minimum span m when some copied span of length
  >= m contains it: ``exists i <= p with ms[i] >= m and p < i + ms[i]``. (Every
  substring of a copied span is itself copied, so taking only the longest span from
  each start loses nothing.) The *copied share* is the number of covered positions
  over |s|, 0 for an empty sample.

How, and what it costs (n = |c|; V distinct characters in c, each packed in
b = bit_length(V + 1) bits, k = floor(63 / b) of them to an int64 word: 9 for up to
126 distinct characters, tiny Shakespeare has 65; 7 for up to 510):

- The index is the suffix array of c: the start positions of all suffixes of c in
  lexicographic order, plus for every position the k characters from there packed
  big-endian into one int64 (so integer order is string order). It is built by prefix
  doubling (Manber and Myers) with NumPy sorts: one sort of the packed k-character
  words, then rounds that double the sorted prefix length (k, 2k, 4k, ...) and re-sort
  only the suffixes still tied with another (Larsson and Sadakane's refinement), until
  no two are. With R the length of the longest repeated substring of c, that is
  ceil(log2((R + 1) / k)) doubling rounds, each an O(a log a) sort of the a suffixes
  still tied: O(n log n) for the first sort and in practice little for the rest (tiny
  Shakespeare: 1.1 M suffixes, 495 k still tied after the first sort, 32 k after the
  first round, none after the fourth). A pathological text such as one character
  repeated n times keeps almost every suffix tied for log2(n / k) rounds:
  O(n log^2 n). Memory: 12 bytes per character kept (the int64 words and an int32
  suffix array), about 55 at the peak of the build.
- A sample is matched against the index one word at a time for all of its positions
  at once (vectorized): the suffixes that share the first t·k characters with s[i:]
  form a range of the suffix array, sorted by their next word, so two binary searches
  narrow it to the suffixes that share the next word too; where none does, the match
  ends inside that word and its length is read off the two neighbours of the
  insertion point (the longest common prefix with a sorted set is reached at one of
  them). Cost O(|s| · (log n) · (max ms / k + 1)) word comparisons, independent of n
  apart from the log, so one index serves many samples.

A suffix automaton (the textbook linear-time answer) built in pure Python takes
seconds per megabyte; hashed n-grams give the copied share for one fixed m cheaply
but need a new table for every length to find the longest match. The suffix array
answers both, exactly (no hashing, no collisions). ``benchmarks/bench_copying.py``
measures it.

The comparison is by characters, of the text as charrnn reads it (data.iter_text: CRLF
as one line end, no byte-order mark), and offsets count those characters. A sample
character that the training text lacks matches nothing.

Lines: a text of short lines (a list of names) is copied a line at a time, and a
copied name is shorter than any useful span. So the report also says, for each
complete non-empty line of the sample that holds generated characters (the sample is
taken to start at a line start), whether it is a *whole line* of the training text:
"\n" + line + "\n" occurs in it, or it is the text's first or last line. Each line
is one lookup in the same index (its matching statistic at the line's leading "\n").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charrnn import trained_text
from charrnn.data import Vocab, load_corpus
from charrnn.errors import DataError

DEFAULT_MIN_SPAN = 20  # the span length from which a stretch of a sample counts as copied
LONGEST_LINE = 10_000  # a first or last line longer than this is no list entry: not looked up as one


@dataclass(frozen=True)
class CopyReport:
    """The copying report of one sample (definitions in the module docstring)."""

    chars: int  # characters in the sample
    longest_length: int
    longest_text: str
    longest_offset: int | None  # where (in characters) that substring starts in the training text
    copied_chars: int  # covered positions at min_span
    min_span: int
    lines: tuple = ()  # the complete lines holding generated characters, each (line, whole line of the text?)

    @property
    def copied_share(self) -> float:
        return self.copied_chars / self.chars if self.chars else 0.0

    @property
    def lines_in_text(self) -> list[str]:
        return [line for line, found in self.lines if found]

    def to_dict(self) -> dict:
        n, found = len(self.lines), len(self.lines_in_text)
        return {
            "longest": {"length": self.longest_length, "text": self.longest_text, "corpus_offset": self.longest_offset},
            "copied_share": self.copied_share,
            "copied_chars": self.copied_chars,
            "chars": self.chars,
            "min_span": self.min_span,
            "lines": {"complete": n, "in_corpus": found, "new_share": (n - found) / n if n else None},
        }


class CorpusIndex:
    """The suffix array of a training text, built once and queried for many samples."""

    def __init__(self, ids: np.ndarray, vocab: Vocab):
        """``ids``: the text as ids into ``vocab`` (as data.load_corpus gives them)."""
        self.vocab = vocab
        self.n = n = len(ids)
        # symbols: 0 past the end of a text (sorts first), 1..V the characters, V+1 a
        # sample character the text lacks (matches nothing)
        self.unknown = vocab.size + 1
        self.bits = max(1, self.unknown.bit_length())
        self.k = 63 // self.bits
        self.words = _pack(np.asarray(ids, dtype=np.int64) + 1, self.k, self.bits)  # n + 1 words, the last 0
        self.sa = _suffix_array(self.words[:n], n, self.k)
        # what "\n" + line + "\n" cannot find: the text's first line, and its last when unterminated
        newline = vocab.chars.find("\n")
        breaks = np.flatnonzero(np.asarray(ids) == newline) if newline >= 0 else np.zeros(0, dtype=np.int64)
        self.line_count = len(breaks) + (not len(breaks) or breaks[-1] != n - 1)
        first = ids[: breaks[0]] if len(breaks) else ids[:0]
        last = ids[breaks[-1] + 1 :] if len(breaks) else ids[:0]
        self.first_line = vocab.decode(first) if 0 < len(first) <= LONGEST_LINE else None
        self.last_line = vocab.decode(last) if 0 < len(last) <= LONGEST_LINE else None

    @property
    def short_lines(self) -> bool:
        """Are the text's lines shorter on average than the default span (a list of names)?"""
        return self.n > 0 and self.n / self.line_count < DEFAULT_MIN_SPAN

    @classmethod
    def from_text(cls, text: str) -> CorpusIndex:
        vocab = Vocab("".join(sorted(set(text))))
        ids = vocab.lookup(text) if text else np.zeros(0, dtype=np.int64)
        return cls(ids, vocab)

    def symbols(self, sample: str) -> np.ndarray:
        """The sample as index symbols (int64): its characters' ids + 1, V + 1 for the unknown."""
        if not sample or not self.vocab.size:
            return np.full(len(sample), self.unknown, dtype=np.int64)
        ids = self.vocab.lookup(sample)
        return np.where(ids < 0, self.unknown, ids + 1)

    def matching_statistics(self, sample: str) -> tuple[np.ndarray, np.ndarray]:
        """For each position i of ``sample``: ms[i], the length of the longest substring
        starting at i that occurs in the text, and where one occurrence of it starts in
        the text (-1 when ms[i] is 0)."""
        m = len(sample)
        length = np.zeros(m, dtype=np.int64)
        where = np.full(m, -1, dtype=np.int64)
        if m == 0 or self.n == 0:
            return length, where
        k, n, sa, words = self.k, self.n, self.sa, self.words
        qwords = _pack(self.symbols(sample), k, self.bits)  # m + 1 words, the last 0
        top = np.int64(self.bits * k)
        lanes = np.arange(m)  # sample positions still matching whole words
        lo = np.zeros(m, dtype=np.int64)
        hi = np.full(m, n, dtype=np.int64)
        t = 0  # characters matched so far by every lane still alive
        while len(lanes):
            offset = lanes + t
            rest = np.minimum(m - offset, k)  # sample characters in this word (0 past its end)
            q = qwords[np.minimum(offset, m)]

            def word_at(j, t=t):  # the corpus word t characters into the suffix at rank j
                return words[np.minimum(sa[j] + t, n)]

            first = _bisect(word_at, q, lo, hi, right=False)
            past = _bisect(word_at, q, lo, hi, right=True)
            whole = (rest == k) & (first < past)
            # the lanes whose match ends in this word (or with the sample): the better of
            # the two neighbours of the insertion point
            ends = ~whole
            e_lo, e_hi, e_first, e_q, e_rest = lo[ends], hi[ends], first[ends], q[ends], rest[ends]
            below = np.maximum(e_first - 1, e_lo)  # both inside the non-empty range [lo, hi)
            above = np.minimum(e_first, e_hi - 1)
            common_below = np.minimum(_common_chars(e_q, word_at(below), k, top, self.bits), e_rest)
            common_above = np.minimum(_common_chars(e_q, word_at(above), k, top, self.bits), e_rest)
            best = np.maximum(common_below, common_above)
            rank = np.where(common_above >= common_below, above, below)
            done = lanes[ends]
            length[done] = t + best
            where[done] = np.where(length[done] > 0, sa[rank], -1)
            lanes, lo, hi = lanes[whole], first[whole], past[whole]
            t += k
        return length, where

    def whole_lines(self, sample: str, seed: str = "") -> tuple:
        """(line, is it a whole line of the text?) for each complete non-empty line of
        ``seed + sample`` that holds a character of ``sample`` (see the module docstring)."""
        text = "\n" + seed + sample
        ends = [i for i, c in enumerate(text) if c == "\n"]
        if len(ends) < 2:
            return ()
        length, _ = self.matching_statistics(text)
        out = []
        for a, b in zip(ends, ends[1:]):
            if b == a + 1 or b <= len(seed) + 1:  # empty, or inside the seed
                continue
            line = text[a + 1 : b]
            out.append((line, bool(length[a] >= b - a + 1) or line in (self.first_line, self.last_line)))
        return tuple(out)

    def report(self, sample: str, min_span: int = DEFAULT_MIN_SPAN, seed: str = "") -> CopyReport:
        """The copying report of ``sample`` against this text; ``seed``, the text the
        sample continues, only places its lines."""
        if min_span < 1:
            raise ValueError("min_span must be at least 1")
        length, where = self.matching_statistics(sample)
        m = len(sample)
        if m == 0:
            return CopyReport(0, 0, "", None, 0, min_span)
        i = int(np.argmax(length))
        best = int(length[i])
        starts = np.flatnonzero(length >= min_span)
        cover = np.zeros(m + 1, dtype=np.int64)
        np.add.at(cover, starts, 1)
        np.add.at(cover, starts + length[starts], -1)
        copied = int(np.count_nonzero(np.cumsum(cover[:m])))
        return CopyReport(
            chars=m,
            longest_length=best,
            longest_text=sample[i : i + best],
            longest_offset=int(where[i]) if best else None,
            copied_chars=copied,
            min_span=min_span,
            lines=self.whole_lines(sample, seed),
        )


def report(sample: str, text: str, min_span: int = DEFAULT_MIN_SPAN, seed: str = "") -> CopyReport:
    """The copying report of ``sample`` (continuing ``seed``) against ``text`` (indexes
    ``text`` each call: build a CorpusIndex to reuse it)."""
    return CorpusIndex.from_text(text).report(sample, min_span, seed)


# ---------------------------------------------------------------- the index itself


def _pack(symbols: np.ndarray, k: int, bits: int) -> np.ndarray:
    """Word i = symbols[i : i + k] packed big-endian into an int64 (0 past the end),
    for i in 0..len(symbols) (the last one is all padding, 0)."""
    n = len(symbols)
    padded = np.concatenate([symbols, np.zeros(k, dtype=np.int64)])
    words = np.zeros(n + 1, dtype=np.int64)
    for c in range(k):
        words <<= bits
        words |= padded[c : c + n + 1]
    return words


def _suffix_array(words: np.ndarray, n: int, k: int) -> np.ndarray:
    """The suffix array by prefix doubling from k-character words (see the module
    docstring); int32 when n allows."""
    index_type = np.int32 if n < 2**31 else np.int64
    if n == 0:
        return np.zeros(0, dtype=index_type)
    sa = np.argsort(words, kind="quicksort")
    ranks, tied = _group(words[sa])
    open_ = np.flatnonzero(tied)
    del tied
    rank = np.empty(n + 1, dtype=np.int64)  # rank[i]: the first rank of i's tie group
    rank[sa] = ranks
    del ranks
    rank[n] = -1  # past the end: before everything
    h = k  # every suffix is sorted by its first h characters
    while len(open_):  # suffix-array positions whose suffix is still tied with another
        suffixes = sa[open_]
        first, second = rank[suffixes], rank[np.minimum(suffixes + h, n)]
        if n < 3_000_000_000:  # (first, second) as one int64: one sort instead of a lexsort
            key = first * (n + 1) + (second + 1)
            order = np.argsort(key, kind="quicksort")
            key = key[order]
        else:
            order = np.lexsort((second, first))
            key = np.stack([first[order], second[order]], axis=1)
        suffixes = suffixes[order]
        sa[open_] = suffixes
        ranks, still = _group(key, open_)
        rank[suffixes] = ranks
        open_ = open_[still]
        h *= 2
    return sa.astype(index_type)


def _group(sorted_keys: np.ndarray, positions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For keys in sorted order at suffix-array ``positions`` (default 0, 1, 2, ...): each
    one's group rank (the position of the first of its equal keys) and a mask of those
    in a group of two or more."""
    m = len(sorted_keys)
    if sorted_keys.ndim == 2:
        differs = np.any(sorted_keys[1:] != sorted_keys[:-1], axis=1)
    else:
        differs = sorted_keys[1:] != sorted_keys[:-1]
    starts = np.ones(m, dtype=bool)
    starts[1:] = differs
    tied = np.ones(m, dtype=bool)
    tied[:-1] = differs  # now: ends a group
    tied &= starts
    np.logical_not(tied, out=tied)
    first = np.arange(m)
    first[~starts] = 0
    np.maximum.accumulate(first, out=first)
    return (first if positions is None else positions[first]), tied


def _bisect(word_at, q: np.ndarray, lo: np.ndarray, hi: np.ndarray, right: bool) -> np.ndarray:
    """Per lane, the first rank j in [lo, hi) whose word is >= q (> q when ``right``),
    hi if none: a binary search for all lanes at once."""
    lo, hi = lo.copy(), hi.copy()
    active = np.flatnonzero(lo < hi)
    while len(active):
        a_lo, a_hi = lo[active], hi[active]
        mid = (a_lo + a_hi) // 2
        w = word_at(mid)
        go_right = (w <= q[active]) if right else (w < q[active])
        lo[active] = np.where(go_right, mid + 1, a_lo)
        hi[active] = np.where(go_right, a_hi, mid)
        active = active[lo[active] < hi[active]]
    return lo


def _common_chars(a: np.ndarray, b: np.ndarray, k: int, top: np.int64, bits: int) -> np.ndarray:
    """How many leading characters two packed words share (k when equal)."""
    x = a ^ b
    high = x >> 32
    _, e_high = np.frexp(high.astype(np.float64))  # exact: both halves are below 2**32
    _, e_low = np.frexp((x & 0xFFFFFFFF).astype(np.float64))
    bit_length = np.where(high > 0, e_high + 32, e_low)
    return (top - bit_length) // bits


# ------------------------------------------------------- finding the training text


def training_text(ckpt, checkpoint_path: str, corpus: str | None = None) -> tuple[CorpusIndex, str, list[str]]:
    """Read and index the text to compare samples against, in the checkpoint's encoding:
    ``corpus`` if given, else the training text the checkpoint records, which must be
    there and unchanged (its SHA-256). Returns (index, path, notes); raises DataError
    when the recorded text cannot be used."""
    encoding = trained_text.encoding(ckpt)
    hint = "pass the training text with --corpus PATH"
    notes = []
    if corpus is None:
        corpus = trained_text.path(ckpt, checkpoint_path, hint)
        text = load_corpus(corpus, encoding)
        if not trained_text.unchanged(ckpt, text.sha256):
            raise DataError(f"{corpus} changed since {checkpoint_path} was trained on it (its SHA-256 differs); {hint}")
    else:
        text = load_corpus(corpus, encoding)
        if not trained_text.unchanged(ckpt, text.sha256):
            notes.append(
                f"note: {corpus} is not the text {checkpoint_path} was trained on (its SHA-256 differs); "
                f"the samples are compared with it all the same"
            )
    return CorpusIndex(text.ids, text.vocab), corpus, notes
