"""The HTTP side of ``charrnn serve``: routes, limits, errors as JSON, and stopping.

Built on the standard library's ``ThreadingHTTPServer``, one thread per connection.
The work of a request is the model's (tens of milliseconds for 200 characters); the
HTTP parsing around it costs about a tenth of a millisecond, so an asynchronous
framework would buy nothing here, and the core keeps its three dependencies. What
the standard server lacks is added here: bounded bodies, read timeouts, JSON errors
for every refusal (never an HTML error page, a traceback or a 5xx for a bad
request), a Host check against DNS rebinding, and draining on stop.

Concurrency: the connection threads read, check and answer requests in parallel,
but at most ``workers`` generations run at once (a semaphore; 1 by default, which is
a lock around the model); the others wait their turn, roughly in order of arrival.
The model is read-only and each generation builds its own stepper, so several could
run together, but on two cores it does not pay: one generation already keeps both busy
(its matrix-vector products use both BLAS threads), and between them each step is a
few dozen small NumPy calls holding the GIL. Two at once are slower in total than one
after the other, with a far worse 99th-percentile latency
(``python benchmarks/bench_serve.py --workers 1 2``). A request's samples (``num_samples``) are one
batched pass; batching different requests together would need sampling.generate to
take one seed per stream.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from charrnn import __version__
from charrnn.errors import CharRNNError
from charrnn.serve import api

READ_TIMEOUT = 30.0  # seconds a connection may sit idle or dribble a request
GRACE = 10.0  # seconds to let running requests finish after a stop signal
DRAIN_LIMIT = 1 << 20  # a refused body up to this size is read, to keep the connection


class Service:
    """What every request thread shares: the model (read-only), the limits, the page,
    the generation slots and the count of requests under way."""

    def __init__(
        self,
        ckpt,
        checkpoint_path: str,
        info: dict,
        limits: api.Limits,
        workers: int,
        page: bytes,
        log=None,
        engine=None,
    ):
        self.ckpt, self.checkpoint_path, self.limits = ckpt, checkpoint_path, limits
        self.engine = engine  # runs the cells (None: the default)
        self.info = json.dumps(info).encode("utf-8")
        self.page = page
        self.log = log  # a function taking one line, or None for no request log
        self.slots = threading.BoundedSemaphore(workers)
        self.busy = threading.Condition()
        self.in_flight = 0
        self.stopping = False

    @contextmanager
    def request(self):
        """Count a request as under way (stop waits for it)."""
        with self.busy:
            self.in_flight += 1
        try:
            yield
        finally:
            with self.busy:
                self.in_flight -= 1
                self.busy.notify_all()

    def generate(self, raw: bytes) -> dict:
        request = api.parse_generate(raw, self.limits)
        with self.slots:
            return api.generate(self.ckpt, self.checkpoint_path, request, self.engine)

    def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the requests under way; how many are left."""
        deadline = time.monotonic() + timeout
        with self.busy:
            while self.in_flight and time.monotonic() < deadline:
                self.busy.wait(deadline - time.monotonic())
            return self.in_flight


def _json(obj) -> bytes:
    return json.dumps(obj).encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's requests share one connection
    server_version = f"charrnn/{__version__}"
    timeout = READ_TIMEOUT
    # The headers and the body are two writes; with Nagle's algorithm the second waits
    # for the client's delayed ACK of the first, a delay added to every answer.
    disable_nagle_algorithm = True
    service: Service  # set on the subclass the server makes

    GET_ROUTES = {"/": "page", "/healthz": "healthz", "/v1/info": "info", "/favicon.ico": "favicon"}
    POST_ROUTES = {"/v1/generate": "generate"}

    # ------------------------------------------------------------------ routing

    def do_GET(self):
        self._handle("GET")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_OPTIONS(self):
        self._handle("OPTIONS")

    def _handle(self, method: str) -> None:
        t0 = time.perf_counter()
        path = urlsplit(self.path).path
        self.body_done = False  # the request's body is read (or there is none)
        status = 500
        try:
            with self.service.request():
                status = self._route(method, path)
        except api.RequestError as exc:
            status = self._error(exc.status, str(exc))
        except CharRNNError as exc:  # the library's refusals (e.g. unknown seed characters)
            status = self._error(400, str(exc))
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True  # the client went away; nobody to answer
            return
        except Exception:  # noqa: BLE001 - a bug: log it here, answer one JSON line there
            traceback.print_exc(file=sys.stderr)
            status = self._error(500, "internal error; the server's log has the details")
        if self.service.log:
            ms = 1000 * (time.perf_counter() - t0)
            self.service.log(f'{self.address_string()} "{method} {self.path}" {status} {ms:.1f} ms')

    def _route(self, method: str, path: str) -> int:
        self._check_host()
        if self.service.stopping:
            self.close_connection = True
            raise api.RequestError("the server is stopping", 503)
        known = path in self.GET_ROUTES or path in self.POST_ROUTES
        if not known:
            raise api.RequestError(
                f"no such endpoint {path}; there are GET /, /healthz, /v1/info and POST /v1/generate", 404
            )
        allowed = "POST" if path in self.POST_ROUTES else "GET, HEAD"
        if method not in allowed.split(", "):
            raise api.RequestError(f"{path} takes {allowed}, not {method}", 405)
        if method in ("GET", "HEAD"):
            name = self.GET_ROUTES[path]
            if name == "favicon":  # browsers ask for one; there is none, and that is not an error
                return self._send(204, b"", "image/x-icon", head=True)
            if name == "page":
                return self._send(200, self.service.page, "text/html; charset=utf-8", head=method == "HEAD")
            body = self.service.info if name == "info" else _json({"status": "ok"})
            return self._send(200, body, head=method == "HEAD")
        raw = self._read_body()
        return self._send(200, _json(self.service.generate(raw)))

    # ------------------------------------------------------------------ requests

    def _check_host(self) -> None:
        """A page on another site could point its own name at 127.0.0.1 (DNS rebinding)
        and then read our answers; a loopback server answers only loopback names."""
        if not self.server.loopback:
            return
        host = self.headers.get("Host")
        if host is None:
            return
        name = urlsplit("//" + host).hostname or ""
        if name == "localhost" or name.endswith(".localhost") or _is_loopback(name):
            return
        raise api.RequestError(f"Host {host!r} is not this server; it answers to localhost and 127.0.0.1", 403)

    def _body_length(self) -> int:
        """The declared body size; RequestError when it cannot be known."""
        if "Transfer-Encoding" in self.headers:
            raise api.RequestError(
                "send the body with a Content-Length header (chunked encoding is not supported)", 411
            )
        length = self.headers.get("Content-Length")
        if length is None:
            return -1
        try:
            n = int(length)
        except ValueError:
            n = -2
        if n < 0:
            raise api.RequestError(f"Content-Length {length!r} is not a number of bytes")
        return n

    def _read_body(self) -> bytes:
        """The request body of a POST, within the size limit and declared as JSON."""
        n = self._body_length()
        if n == -1:
            self.close_connection = True  # whatever follows cannot be told from a body
            raise api.RequestError("a POST needs a Content-Length header", 411)
        limit = self.service.limits.max_body
        if n > limit:
            raise api.RequestError(f"the body has {n:,} bytes; this server takes at most {limit:,} (--max-body)", 413)
        if self.headers.get_content_type() != "application/json":
            raise api.RequestError(
                f"send the body as JSON with Content-Type: application/json (got {self.headers.get('Content-Type')!r})",
                415,
            )
        raw = self.rfile.read(n)
        self.body_done = True
        if len(raw) < n:
            self.close_connection = True
            raise api.RequestError(f"the body ended after {len(raw)} of its {n} bytes")
        return raw

    def _finish_body(self) -> None:
        """Before answering a request whose body was not read: read it (when it is small)
        so that the connection stays usable, or close the connection, since the unread
        body would be taken for the next request. Closing with unread data makes the
        kernel reset the connection, which can destroy our answer before the client
        reads it; hence reading rather than closing when that is cheap."""
        self.body_done = True
        headers = getattr(self, "headers", None)
        if headers is None:  # http.server refused the request line itself
            self.close_connection = True
            return
        try:
            n = self._body_length()
        except api.RequestError:
            self.close_connection = True
            return
        if n <= 0:
            return
        if n > DRAIN_LIMIT:
            self.close_connection = True
            return
        if len(self.rfile.read(n)) < n:
            self.close_connection = True

    # ------------------------------------------------------------------ answers

    def _send(self, status: int, body: bytes, ctype: str = "application/json", head: bool = False) -> int:
        if not getattr(self, "body_done", False):
            self._finish_body()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if status != 204:  # a 204 must not have one
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if status == 405:
            path = urlsplit(getattr(self, "path", "") or "").path
            self.send_header("Allow", "POST" if path in self.POST_ROUTES else "GET, HEAD")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)
        return status

    def _error(self, status: int, message: str) -> int:
        try:
            return self._send(status, _json({"error": message}), head=self.command == "HEAD")
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
            return status

    def send_error(self, code, message=None, explain=None):
        """What http.server itself refuses (a garbled request line, headers too long,
        an unknown method) is answered in JSON too; an unknown method is a 405."""
        self.close_connection = True
        self.body_done = True  # closing anyway; and self.headers may be the last request's
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # so that the answer has a status line and headers
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code, message = 405, f"method {self.command!r} is not supported; use GET or POST"
        status = HTTPStatus(code)
        self._error(status.value, message or status.phrase)

    def log_message(self, format, *args):  # the base class's signature
        if self.service.log:
            self.service.log(f"{self.address_string()} {format % args}")

    def log_request(self, code="-", size="-"):
        pass  # _handle logs each request once, with its time


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


class Server(ThreadingHTTPServer):
    daemon_threads = True  # an idle keep-alive connection must not hold up the exit
    request_queue_size = 64

    def __init__(self, host: str, port: int, service: Service):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        handler = type("BoundHandler", (Handler,), {"service": service})
        self.service = service
        self.loopback = host == "localhost" or _is_loopback(host)
        try:
            super().__init__((host.strip("[]"), port), handler)
        except OSError as exc:
            raise CharRNNError(_bind_error(host, port, exc)) from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def run(self) -> None:
        """Serve until a KeyboardInterrupt (Ctrl-C; the CLI turns SIGTERM into one too),
        then stop accepting, let the requests under way finish (GRACE s at most), and
        close. The interrupt goes on to the caller."""
        try:
            self.serve_forever(poll_interval=0.2)
        finally:
            self.service.stopping = True
            self.socket.close()  # new connections are refused from here on
            self.service.drain(GRACE)
            self.server_close()

    def handle_error(self, request, client_address):
        """An exception outside a request's own handling (a connection reset while
        reading the request line): one line in the log, not a traceback."""
        exc = sys.exc_info()[1]
        if self.service.log and not isinstance(exc, (ConnectionError, socket.timeout)):
            self.service.log(f"{client_address[0]} connection error: {type(exc).__name__}: {exc}")


def _bind_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use; choose another with --port (0 picks a free one)"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {port} of {host}; ports below 1024 need privileges: try --port 8000"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host!r}: not an address of this machine ({exc.strerror or exc})"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
