"""A `charrnn serve` process on 127.0.0.1 (a free port) for the HTTP and browser tests,
and a small HTTP client for it."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import threading

from helpers import spawn


class ServerProcess:
    """`charrnn serve ... --port 0` in its own process; ``url`` and ``port`` come from
    the line it prints on start. Everything it prints on stderr is kept in ``log``. It
    is killed when the test or fixture that started it ends (helpers.spawn)."""

    def __init__(self, *args: str, cwd=None):
        cmd = [sys.executable, "-m", "charrnn", "serve", "--port", "0", *map(str, args)]
        self.proc = spawn(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
        )
        self.first_line = self.proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", self.first_line)
        if not found:
            self.proc.kill()
            raise RuntimeError(f"the server did not start: {self.first_line}{self.proc.stderr.read()}")
        self.port = int(found.group(1))
        self.url = found.group(0)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return self.first_line + "".join(self.lines)

    def stop(self, signum=signal.SIGTERM, timeout: float = 20) -> int:
        """Send ``signum`` and wait for the exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        return code


def request(port: int, method: str, path: str, body=None, headers=None, conn=None):
    """(status, headers, decoded JSON or text) of one request; ``body`` is encoded as
    JSON unless it is bytes, and declared as JSON unless ``headers`` say otherwise."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        hdrs = dict(headers or {})
        if body is not None:
            body = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body, hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        ctype = resp.getheader("Content-Type", "")
        payload = json.loads(raw) if ctype.startswith("application/json") and raw else raw.decode("utf-8", "replace")
        return resp.status, dict(resp.getheaders()), payload
    finally:
        if own:
            conn.close()
