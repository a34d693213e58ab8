"""Well-known public corpora: where to get them and how to know the bytes are right.

The catalogue (catalogue.json, shipped inside the package so an installed charrnn has
it) pins every corpus by size and SHA-256. A corpus is fetched from its URL, or copied
from a local mirror directory for machines without internet; either way the bytes go
to a temp file next to the destination, are hashed on the way, and only a file whose
checksum matches is moved into place (os.replace). A mismatch deletes the temp file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable

from charrnn import __version__
from charrnn.data import file_sha256
from charrnn.errors import DataError, UsageError

CATALOGUE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalogue.json")
MIRROR_ENV = "CHARRNN_CORPUS_MIRROR"
BLOCK = 1 << 16
TIMEOUT = 30.0  # seconds without a byte before a download gives up


@dataclass(frozen=True)
class Corpus:
    name: str
    file: str  # file name under the destination directory
    url: str
    bytes: int
    sha256: str
    description: str = ""
    license: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def load(path: str = "") -> dict[str, Corpus]:
    with open(path or CATALOGUE, encoding="utf-8") as f:
        return {entry["name"]: Corpus(**entry) for entry in json.load(f)}


def lookup(name: str, path: str = "") -> Corpus:
    corpora = load(path)
    if name not in corpora:
        raise UsageError(f"unknown corpus {name!r}; the catalogue has {', '.join(corpora)} (see `charrnn corpus list`)")
    return corpora[name]


def fetch(
    corpus: Corpus,
    dest_dir: str,
    mirror: str | None = None,
    force: bool = False,
    progress: Callable[[int], None] = lambda n: None,
) -> tuple[str, str]:
    """Put ``corpus`` into ``dest_dir``, from ``mirror`` (a directory) if given, else
    from its URL. Returns (path, how): how is "present", "mirror" or "download".
    ``progress`` is called with the number of bytes of each block received."""
    dest = os.path.join(dest_dir, corpus.file)
    if os.path.isfile(dest):
        if file_sha256(dest) == corpus.sha256:
            return dest, "present"
        if not force:
            raise DataError(
                f"{dest} exists but is not the catalogue's {corpus.name} (its sha256 differs); "
                f"delete it, or pass --force to replace it"
            )
    try:
        os.makedirs(dest_dir, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {dest_dir}: {exc.strerror or exc}") from None
    if mirror:
        source = _mirror_file(corpus, mirror)
        with open(source, "rb") as f:
            _install(f, corpus, dest, source, progress)
        return dest, "mirror"
    request = urllib.request.Request(corpus.url, headers={"User-Agent": f"charrnn/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            _install(response, corpus, dest, corpus.url, progress)
    except urllib.error.HTTPError as exc:
        raise _download_error(corpus, f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, OSError):  # urllib wraps the socket's error: say what it says
            reason = reason.strerror or reason
        raise _download_error(corpus, str(reason)) from None
    return dest, "download"


def _download_error(corpus: Corpus, reason: str) -> DataError:
    return DataError(
        f"cannot download {corpus.name} from {corpus.url}: {reason}; without internet, "
        f"copy it from a local directory with --mirror DIR (or {MIRROR_ENV}=DIR)"
    )


def _mirror_file(corpus: Corpus, mirror: str) -> str:
    """The corpus in a mirror directory, under its catalogue name or its URL's."""
    names = dict.fromkeys((corpus.file, os.path.basename(corpus.url)))
    for name in names:
        candidate = os.path.join(mirror, name)
        if os.path.isfile(candidate):
            return candidate
    raise DataError(f"the mirror {mirror} has no {' or '.join(names)}")


def _install(stream, corpus: Corpus, dest: str, origin: str, progress) -> None:
    """Copy ``stream`` to a temp file beside ``dest``, hashing it; move it into place
    only if size and SHA-256 match the catalogue. Stops reading as soon as the stream
    is longer than the catalogue says, so a wrong URL cannot fill the disk."""
    directory = os.path.dirname(os.path.abspath(dest))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".corpus-", suffix=".tmp")
    except OSError as exc:
        raise DataError(f"cannot write into {directory}: {exc.strerror or exc}") from None
    try:
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            while size <= corpus.bytes:
                block = stream.read(BLOCK)
                if not block:
                    break
                h.update(block)
                out.write(block)
                size += len(block)
                progress(len(block))
        if size != corpus.bytes or h.hexdigest() != corpus.sha256:
            got = f"{size:,} bytes" if size != corpus.bytes else f"sha256 {h.hexdigest()}"
            raise DataError(
                f"{origin} is not the catalogue's {corpus.name}: got {got}, expected "
                f"{corpus.bytes:,} bytes with sha256 {corpus.sha256}; the file was not saved"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        tmp = None
    finally:
        if tmp is not None:
            os.unlink(tmp)
