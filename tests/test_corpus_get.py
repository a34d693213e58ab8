"""`charrnn corpus list|get`: the catalogue, verified downloads from a local HTTP server on
127.0.0.1, the refusal of a file whose checksum differs, and copies from a mirror directory."""

import hashlib
import http.server
import json
import os
import threading
from pathlib import Path

import pytest

from charrnn import catalogue
from charrnn.cli import cli
from charrnn.data import file_sha256

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
BODY = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 200


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """A static file server on 127.0.0.1 over tmp_path/www, stopped at teardown."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "input.txt").write_bytes(BODY)

    def handler(*args, **kwargs):
        return _QuietHandler(*args, directory=str(root), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def use_catalogue(monkeypatch, tmp_path, url, body=BODY, sha=None):
    """Point charrnn at a one-entry catalogue describing ``body`` at ``url``."""
    entry = {
        "name": "tiny",
        "file": "tiny.txt",
        "url": url,
        "bytes": len(body),
        "sha256": sha or hashlib.sha256(body).hexdigest(),
        "description": "test corpus",
    }
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps([entry]))
    monkeypatch.setattr(catalogue, "CATALOGUE", str(path))


def test_list_shows_the_catalogue(runner, tmp_path):
    result = runner.invoke(cli, ["corpus", "list", "-d", str(tmp_path)])
    assert result.exit_code == 0
    assert "tinyshakespeare" in result.stdout and "1.1 MB" in result.stdout
    entries = [json.loads(line) for line in runner.invoke(cli, ["corpus", "list", "--json"]).stdout.splitlines()]
    shakespeare = next(e for e in entries if e["name"] == "tinyshakespeare")
    assert shakespeare["url"] == (
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
    )
    assert shakespeare["bytes"] == 1115394
    assert shakespeare["sha256"] == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def test_get_downloads_and_verifies(runner, server, tmp_path, monkeypatch):
    use_catalogue(monkeypatch, tmp_path, f"{server}/input.txt")
    dest = tmp_path / "corpora"
    result = runner.invoke(cli, ["corpus", "get", "tiny", "-d", str(dest)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{dest / 'tiny.txt'}\n"
    assert "downloaded from" in result.stderr and "checksum verified" in result.stderr
    assert (dest / "tiny.txt").read_bytes() == BODY
    again = runner.invoke(cli, ["corpus", "get", "tiny", "-d", str(dest)])
    assert again.exit_code == 0 and "already present" in again.stderr


def test_get_refuses_a_checksum_mismatch(runner, server, tmp_path, monkeypatch):
    use_catalogue(monkeypatch, tmp_path, f"{server}/input.txt", sha="0" * 64)
    dest = tmp_path / "corpora"
    result = runner.invoke(cli, ["corpus", "get", "tiny", "-d", str(dest)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {server}/input.txt is not the catalogue's tiny: got sha256 ")
    assert "the file was not saved" in result.stderr and result.stdout == ""
    assert os.listdir(dest) == []  # neither the file nor the temp file is left


def test_get_reports_http_errors(runner, server, tmp_path, monkeypatch):
    use_catalogue(monkeypatch, tmp_path, f"{server}/missing.txt")
    result = runner.invoke(cli, ["corpus", "get", "tiny", "-d", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "HTTP 404" in result.stderr and "--mirror DIR" in result.stderr
    assert result.stderr.count("\n") == 1


def test_get_keeps_a_different_file_unless_forced(runner, server, tmp_path, monkeypatch):
    use_catalogue(monkeypatch, tmp_path, f"{server}/input.txt")
    dest = tmp_path / "corpora"
    dest.mkdir()
    (dest / "tiny.txt").write_text("my own notes")
    result = runner.invoke(cli, ["corpus", "get", "tiny", "-d", str(dest)])
    assert result.exit_code == 1 and "pass --force to replace it" in result.stderr
    assert (dest / "tiny.txt").read_text() == "my own notes"
    forced = runner.invoke(cli, ["corpus", "get", "tiny", "-d", str(dest), "--force"])
    assert forced.exit_code == 0 and (dest / "tiny.txt").read_bytes() == BODY


def test_get_unknown_name_is_a_usage_error(runner):
    result = runner.invoke(cli, ["corpus", "get", "nosuch"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: unknown corpus 'nosuch'; the catalogue has tinyshakespeare")


def test_mirror_with_a_bad_copy_is_refused(runner, tmp_path, monkeypatch):
    use_catalogue(monkeypatch, tmp_path, "https://example.invalid/input.txt")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "input.txt").write_bytes(BODY[:-1] + b"?")  # found under the URL's file name
    result = runner.invoke(cli, ["corpus", "get", "tiny", "-d", str(tmp_path / "c"), "--mirror", str(mirror)])
    assert result.exit_code == 1 and "is not the catalogue's tiny" in result.stderr
    assert not (tmp_path / "c" / "tiny.txt").exists()


@pytest.mark.skipif(not (SHARED / "names.txt").is_file(), reason="../shared/corpora is not available")
def test_mirror_from_shared_corpora_via_environment(runner, tmp_path):
    dest = tmp_path / "corpora"
    result = runner.invoke(
        cli, ["corpus", "get", "names", "tinyshakespeare", "-d", str(dest)], env={"CHARRNN_CORPUS_MIRROR": str(SHARED)}
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [str(dest / "names.txt"), str(dest / "tinyshakespeare.txt")]
    assert file_sha256(dest / "tinyshakespeare.txt") == catalogue.lookup("tinyshakespeare").sha256
