"""Text in, character ids out: reading, the vocabulary, and the layout of training streams.

A corpus is read once, in pieces, so that pipes, FIFOs and standard input (``-``) work
and a text of hundreds of megabytes never exists as one Python string: the same pass
decodes, hashes the bytes and encodes the characters, 1 byte per character (2 when
the vocabulary exceeds 256).

Text policy (documented in the README): the bytes are decoded strictly in the chosen
encoding; a UTF-8 byte-order mark at the very start is dropped; Windows line ends
(CRLF) become ``\\n``; a lone ``\\r`` is kept. Nothing else is changed or dropped.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import functools
import hashlib
import os
import stat
import sys
from dataclasses import dataclass

import numpy as np

from charrnn.errors import DataError, UsageError

READ_BYTES = 1 << 20  # 1 MiB of bytes per read: large enough for speed; encoding needs ~14x that
BINARY_HINT = "it looks like a binary file, not text"


STDIN = "-"  # the path that means standard input


def _open_error(path: str, exc: OSError) -> DataError:
    if exc.errno == errno.ELOOP:
        return DataError(f"{path} is a symbolic link loop")
    if isinstance(exc, FileNotFoundError):
        return DataError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return DataError(f"{path} is a directory, not a text file")
    if isinstance(exc, PermissionError):
        return DataError(f"{path}: permission denied")
    return DataError(f"cannot read {path}: {exc.strerror or exc}")


def is_rereadable(path: str) -> bool:
    """Whether ``path`` can be read again later: a regular file, not standard input, a
    pipe, a FIFO or a process substitution (/dev/fd/N), which are gone once read."""
    if path == STDIN:
        return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def check_input(path: str) -> None:
    """Refuse a text path that cannot be read as a file, before any work starts: one
    message for every command (a usage error: exit code 2)."""
    if path == STDIN:
        return
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UsageError(str(_open_error(path, exc))) from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} is a directory, not a text file")


def text_name(path: str) -> str:
    """How a text is named in messages and run directories: its file name, "stdin" for
    standard input."""
    if path == STDIN or os.path.abspath(path) in ("/dev/stdin", "/proc/self/fd/0", "/dev/fd/0"):
        return "stdin"
    return os.path.basename(os.path.normpath(path))


def _open(path: str):
    if path == STDIN:
        return contextlib.nullcontext(sys.stdin.buffer)
    return open(path, "rb")


def iter_text(path: str, encoding: str = "utf-8", digest=None):
    """Yield the decoded text of ``path`` (``-``: standard input) in pieces, applying the
    text policy above; ``digest`` (a hashlib object) is fed the raw bytes."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}; try utf-8 or latin-1") from None
    drop_bom = codec.name == "utf-8"  # utf-8-sig and utf-16 drop their own BOM
    if path != STDIN and os.path.isdir(path):
        raise DataError(f"{path} is a directory, not a text file")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0  # bytes consumed so far, to say where a decoding error is
    carry = ""  # a trailing "\r" held back in case the next piece starts with "\n"
    first = True
    try:
        f = _open(path)
    except OSError as exc:
        raise _open_error(path, exc) from None
    with f as stream:
        while True:
            try:
                raw = stream.read(READ_BYTES)
            except OSError as exc:
                raise _open_error(path, exc) from None
            if digest is not None:
                digest.update(raw)
            final = not raw
            try:
                text = decoder.decode(raw, final=final)
            except UnicodeDecodeError as exc:
                pending = len(decoder.getstate()[0]) if hasattr(decoder, "getstate") else 0
                where = offset - pending + exc.start
                raise _decode_error(path, encoding, exc, max(where, 0), raw, offset) from None
            offset += len(raw)
            if first and text:
                if text[0] == "\ufeff" and drop_bom:
                    text = text[1:]
                first = False
            text = carry + text
            carry = ""
            if not final and text.endswith("\r"):
                text, carry = text[:-1], "\r"
            if "\x00" in text:
                nul = raw.find(b"\x00")  # where the encoding writes NUL as one zero byte (utf-8, latin-1)
                where = f"a NUL byte at offset {offset - len(raw) + nul}" if nul >= 0 else "NUL characters"
                raise DataError(f"{path} contains {where}: {BINARY_HINT}")
            if text:
                yield text.replace("\r\n", "\n")
            if final:
                return


def _decode_error(
    path: str, encoding: str, exc: UnicodeDecodeError, where: int, raw: bytes, raw_offset: int
) -> DataError:
    """Say where decoding failed and what to do: another --encoding fixes text, not binaries."""
    byte = f"byte 0x{exc.object[exc.start]:02x} at offset {where}"
    boms = (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    )
    bom = next((name for mark, name in boms if raw_offset == 0 and raw.startswith(mark)), None)
    if bom:
        hint = f"the file starts with a {bom.upper()} byte-order mark: pass --encoding {bom}"
    elif b"\x00" in raw:  # UTF-16/32 text is full of NULs, but then it decodes
        nul = raw_offset + raw.find(b"\x00")
        return DataError(
            f"{path} is not valid {encoding} ({byte}) and contains NUL bytes (the first at offset {nul}): {BINARY_HINT}"
        )
    else:
        hint = "if the file uses another encoding, pass it with --encoding (for example --encoding latin-1)"
    return DataError(f"{path} is not valid {encoding}: {byte} cannot be decoded; {hint}")


@dataclass(frozen=True)
class Vocab:
    """The sorted distinct characters of the training text; id i is ``chars[i]``."""

    chars: str

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars) or list(self.chars) != sorted(self.chars):
            raise DataError("vocabulary must be sorted distinct characters")

    @property
    def size(self) -> int:
        return len(self.chars)

    @property
    def dtype(self):
        """Smallest unsigned type that holds every id (id_dtype)."""
        return id_dtype(self.size)

    @functools.cached_property
    def _ids_by_code(self) -> np.ndarray:
        """Code point -> id (int64), -1 for the code points below the largest that the
        vocabulary lacks."""
        codes = code_points(self.chars)
        table = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
        table[codes] = np.arange(self.size)
        return table

    def lookup(self, text: str) -> np.ndarray:
        """The id of each character of ``text`` (int64), -1 where the vocabulary lacks it."""
        codes, table = code_points(text), self._ids_by_code
        return np.where(codes < len(table), table[np.minimum(codes, len(table) - 1)], -1)

    def encode(self, text: str) -> np.ndarray:
        """Ids of ``text`` in ``dtype``; raises DataError naming any character outside the
        vocabulary."""
        ids = self.lookup(text)
        if (ids < 0).any():
            raise DataError(f"characters not in the vocabulary: {format_chars(self.unknown(text))}")
        return ids.astype(self.dtype)

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in np.asarray(ids).ravel())

    def unknown(self, text: str) -> list[str]:
        return sorted(set(text) - set(self.chars))


def code_points(text: str) -> np.ndarray:
    """The Unicode code point of each character of ``text`` (uint32), without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def format_chars(chars, limit: int | None = None) -> str:
    """Characters as the user should see them in a message: repr'd, so '\\n' is visible;
    past ``limit`` of them, only how many more there are."""
    chars = list(chars)
    shown = ", ".join(repr(c) for c in chars[:limit])
    return shown if limit is None or len(chars) <= limit else f"{shown} and {len(chars) - limit} more"


def dropped_note(dropped: dict[str, int], limit: int = 10) -> str:
    """The note for characters left out of a text because the model never saw them:
    ``dropped`` maps each to how often it occurred, most frequent first."""
    items = list(dropped.items())
    shown = ", ".join(f"{c!r} x{k}" for c, k in items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"note: dropped {sum(dropped.values())} characters the model never saw: {shown}{more}"


@dataclass(frozen=True)
class Corpus:
    """A text read once: its ids, its vocabulary, and what identifies it."""

    ids: np.ndarray  # 1-D, the vocabulary's dtype
    vocab: Vocab
    sha256: str  # of the bytes read
    rereadable: bool  # False for standard input, pipes and FIFOs: gone once read


def id_dtype(n: int):
    """Smallest unsigned type that holds n ids: 1 byte per char for up to 256 chars."""
    return np.uint8 if n <= 256 else np.uint16 if n <= 65536 else np.uint32


def load_corpus(path: str, encoding: str = "utf-8", vocab: Vocab | None = None) -> Corpus:
    """Read, hash and encode a text in one streamed pass (``-`` reads standard input).

    Without ``vocab``, ids are first given in order of first appearance and renumbered
    into the sorted vocabulary at the end, piece by piece, so the peak memory stays
    about one byte per character. With ``vocab`` (resuming) a character outside it
    raises DataError naming all of them.
    """
    digest = hashlib.sha256()
    table = np.full(0, -1, dtype=np.int64)  # code point -> provisional id (no vocab given)
    order: list[int] = []  # code points in order of first appearance (no vocab given)
    pieces: list[np.ndarray] = []
    unknown: set[str] = set()
    n = 0
    for piece in iter_text(path, encoding, digest):
        codes = code_points(piece)
        n += len(codes)
        if vocab is not None:
            ids = vocab.lookup(piece)
            if (ids < 0).any():
                unknown.update(vocab.unknown(piece))
                continue
            pieces.append(ids.astype(vocab.dtype))
            continue
        top = int(codes.max())
        if top >= len(table):
            table = np.concatenate([table, np.full(top + 1 - len(table), -1, dtype=np.int64)])
        prov = table[codes]
        new = prov < 0
        if new.any():
            fresh = np.unique(codes[new])
            table[fresh] = np.arange(len(order), len(order) + len(fresh))
            order.extend(fresh.tolist())
            prov = table[codes]
        pieces.append(prov.astype(id_dtype(len(order))))
    if n == 0:
        raise DataError(f"{path} is empty")
    if unknown:
        raise DataError(f"{path} has characters the model's vocabulary lacks: {format_chars(sorted(unknown))}")
    renumber = None
    if vocab is None:
        codes = np.array(order, dtype=np.int64)
        vocab = Vocab("".join(map(chr, np.sort(codes))))
        renumber = np.searchsorted(np.sort(codes), codes).astype(vocab.dtype)  # provisional -> sorted id
    ids = np.empty(n, dtype=vocab.dtype)
    pos = 0
    for i, piece in enumerate(pieces):
        ids[pos : pos + len(piece)] = piece if renumber is None else renumber[piece]
        pos += len(piece)
        pieces[i] = None  # freed as soon as it is copied
    return Corpus(ids, vocab, digest.hexdigest(), is_rereadable(path))


def file_sha256(path: str) -> str:
    """The SHA-256 of a file's bytes, read a block at a time: what identifies a corpus."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(READ_BYTES), b""):
            h.update(block)
    return h.hexdigest()


def held_out_start(n_chars: int, val_frac: float) -> int:
    """Index of the first validation character of an n_chars text: the last val_frac
    is held out. charrnn eval --held-out cuts a file here too."""
    return n_chars - int(round(n_chars * val_frac))


def split(ids: np.ndarray, val_frac: float):
    """Train on the first (1 - val_frac) of the text, validate on the rest (views, no copy)."""
    start = held_out_start(len(ids), val_frac)
    return ids[:start], ids[start:]


def require_streams(n_chars: int, batch_size: int, seq_len: int, what: str) -> None:
    """Refuse a text too short for one chunk per stream: B streams of seq_len + 1."""
    need = batch_size * (seq_len + 1)
    if n_chars < need:
        raise DataError(
            f"{what}, but --batch-size {batch_size} and --seq-len {seq_len} need at least "
            f"{need:,} (batch_size x (seq_len + 1)); lower --batch-size or --seq-len, "
            f"or use a longer text"
        )


class Streams:
    """B contiguous streams through the text, read T characters at a time.

    Stream b is ``ids[b*L : (b+1)*L]`` (as in karpathy/char-rnn), so each stream reads
    a continuous stretch of text and the hidden state carried from one chunk to the
    next in the same stream is meaningful.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int):
        B, T = batch_size, seq_len
        require_streams(len(ids), B, T, f"the training text has {len(ids):,} characters")
        L = len(ids) // B
        self.data = ids[: B * L].reshape(B, L)  # view: no copy of the corpus
        self.batch_size, self.seq_len = B, T
        self.chunks_per_epoch = (L - 1) // T

    def chunk(self, k: int):
        """Inputs and targets (B,T) of chunk k of an epoch."""
        T = self.seq_len
        x = self.data[:, k * T : (k + 1) * T]
        y = self.data[:, k * T + 1 : (k + 1) * T + 1]
        return x, y


def eval_chunks(ids: np.ndarray, n_context: int, n_streams: int, warmup: int, chunk: int):
    """Lay out text for scoring so that every character after the first ``n_context``
    is a target exactly once, in ``n_streams`` parallel streams.

    Each stream first reads up to ``warmup`` characters before its first target without
    scoring them, so its hidden state is not cold where scoring starts (the first
    stream's context comes from the end of the training text). Yields (x, y, targets)
    chunks of shape (B, <=chunk): targets holds the index in ``ids`` of each scored y,
    and -1 on warm-up and padding positions.
    """
    n_targets = len(ids) - n_context
    B = max(1, min(n_streams, n_targets))
    L = -(-n_targets // B)  # targets per stream, ceil
    # position of the input that predicts stream b's first target, minus the warm-up
    first = n_context - 1 + np.arange(B) * L - warmup
    for s in range(0, warmup + L, chunk):
        cols = np.arange(s, min(s + chunk, warmup + L))
        pos = first[:, None] + cols[None, :]  # (B,C) input positions
        mask = (cols[None, :] >= warmup) & (pos >= n_context - 1) & (pos + 1 < len(ids))
        mask &= pos + 1 < n_context + (np.arange(B)[:, None] + 1) * L  # not into the next stream
        valid = np.clip(pos, 0, len(ids) - 2)
        yield ids[valid], ids[valid + 1], np.where(mask, pos + 1, -1)
