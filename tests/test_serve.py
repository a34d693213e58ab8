"""`charrnn serve`: the request checks on their own, then a real server process on
127.0.0.1: every endpoint, every bad request (a 4xx JSON answer with the CLI's
one-line message, never a 5xx or a traceback), concurrent clients, and stopping."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import pytest
from helpers import TINY, make_text, ok, run
from helpers_serve import ServerProcess, request

from charrnn.serve import api

LIMITS = api.Limits(max_chars=300, max_samples=4, max_body=2048)

# ------------------------------------------------------------------ the request checks


def test_defaults_are_those_of_charrnn_sample():
    assert api.parse_generate(b"{}", api.Limits()) == {
        "seed": "",
        "n": 500,
        "temperature": 0.8,
        "top_k": 0,
        "top_p": 1.0,
        "greedy": False,
        "num_samples": 1,
        "rng_seed": None,
        "stop": None,
    }
    assert api.parse_generate(b"{}", LIMITS)["n"] == 300  # a server with a lower --max-chars: its limit
    body = api.parse_generate(b'{"n": 200, "stop": "", "seed": null, "rng_seed": 3, "top_p": 1}', LIMITS)
    assert body["n"] == 200 and body["stop"] is None and body["seed"] == "" and body["rng_seed"] == 3
    assert api.parse_generate(b'{"n": 200.0}', LIMITS)["n"] == 200  # JSON has one number type


@pytest.mark.parametrize(
    "raw, status, fragment",
    [
        (b'{"n": ', 400, "not valid JSON"),
        (b"\xff\xfe{}", 400, "not UTF-8"),
        (b"[1, 2]", 400, "must be a JSON object, got an array"),
        (b'{"n": NaN}', 400, "NaN is not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, 400, "not valid JSON"),
        (b'{"seeds": "x", "temp": 1}', 400, "unknown fields 'seeds', 'temp'; the fields are seed, n,"),
        (b'{"n": "200"}', 400, 'n must be an integer, got a string "200"'),
        (b'{"n": true}', 400, "n must be an integer, got a boolean"),
        (b'{"n": 2.5}', 400, "n must be an integer, got a number 2.5"),
        (b'{"n": 301}', 400, "n must be from 0 to 300 (the server's --max-chars), got 301"),
        (b'{"n": 10, "num_samples": 5}', 400, "num_samples must be from 1 to 4 (the server's --max-samples), got 5"),
        (b'{"n": 10, "num_samples": 0}', 400, "num_samples must be from 1 to 4"),
        (b'{"n": 10, "temperature": "hot"}', 400, "temperature must be a number, got a string"),
        (b'{"n": 10, "temperature": 0}', 400, "temperature must be a positive finite number, got 0.0"),
        (b'{"n": 10, "temperature": 1e400}', 400, "temperature must be a positive finite number, got inf"),
        (b'{"n": 10, "top_p": 1.5}', 400, "top-p must be in (0, 1], got 1.5"),
        (b'{"n": 10, "top_k": -1}', 400, "top_k must be at least 0, got -1"),
        (b'{"n": 10, "rng_seed": -1}', 400, "rng_seed must be at least 0"),
        (b'{"n": 10, "greedy": 1}', 400, "greedy must be true or false, got an integer"),
        (b'{"n": 10, "seed": 5}', 400, "seed must be a string or null, got an integer"),
        (b'{"n": 10, "stop": ["\\n"]}', 400, "stop must be a string or null, got an array"),
    ],
)
def test_bad_bodies(raw, status, fragment):
    with pytest.raises(api.RequestError) as info:
        api.parse_generate(raw, LIMITS)
    assert info.value.status == status and fragment in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ a real server


@pytest.fixture(scope="module")
def ck(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    corpus = tmp / "tiny.txt"
    corpus.write_text(make_text(5000))
    ok(run("train", corpus, "--checkpoint-dir", tmp / "ck", *TINY, "--max-steps", "30", "-q"))
    return str(tmp / "ck")


@pytest.fixture(scope="module")
def server(ck):
    srv = ServerProcess("-c", ck, "--max-chars", "300", "--max-samples", "4", "--max-body", "2048")
    yield srv
    code = srv.stop(signal.SIGTERM)
    assert code == 0, srv.log
    assert "stopped by SIGTERM" in srv.log
    assert "Traceback" not in srv.log  # no request, good or bad, made the server print one


def test_start_line_says_where_and_to_whom(server):
    assert server.first_line.startswith("serving ") and "on http://127.0.0.1:" in server.first_line
    assert "this machine only" in server.first_line and "Ctrl-C stops" in server.first_line


def test_healthz_and_info(server, ck):
    assert request(server.port, "GET", "/healthz")[::2] == (200, {"status": "ok"})
    status, headers, info = request(server.port, "GET", "/v1/info")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert info == json.loads(ok(run("info", ck, "--json")).stdout)  # exactly what `charrnn info --json` prints


def test_the_writing_page(server):
    status, headers, body = request(server.port, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "<textarea" in body and "Tab" in body and '"max_chars": 300' in body
    assert "http://" not in body and "https://" not in body and " src=" not in body  # nothing from outside
    status, headers, body = request(server.port, "HEAD", "/")
    assert status == 200 and body == "" and int(headers["Content-Length"]) > 1000


def test_generate_answers_what_charrnn_sample_prints(server, ck):
    body = {"seed": "The cat", "n": 120, "num_samples": 3, "rng_seed": 5, "temperature": 0.7, "top_k": 10}
    status, _, answer = request(server.port, "POST", "/v1/generate", body)
    assert status == 200 and set(answer) == {"texts", "checkpoint", "elapsed_ms"}
    assert answer["checkpoint"].endswith("best.npz") and answer["elapsed_ms"] > 0
    same = "--seed|The cat|-n|120|--num-samples|3|--rng-seed|5|-t|0.7|-k|10|--json".split("|")
    cli = ok(run("sample", "-c", ck, *same))
    assert answer["texts"] == [json.loads(line)["text"] for line in cli.stdout.splitlines()]
    assert all(len(t) == 120 for t in answer["texts"])


def test_generate_with_stop_and_defaults(server):
    status, _, answer = request(
        server.port, "POST", "/v1/generate", {"n": 300, "stop": "\n", "rng_seed": 1, "num_samples": 4}
    )
    assert status == 200
    assert all(t.endswith("\n") or len(t) == 300 for t in answer["texts"])
    assert any(t.endswith("\n") for t in answer["texts"])
    status, _, answer = request(server.port, "POST", "/v1/generate", {"n": 0})
    assert status == 200 and answer["texts"] == [""]


def test_unknown_seed_characters_are_named(server, ck):
    status, _, answer = request(server.port, "POST", "/v1/generate", {"seed": "The ZQ cat", "n": 5})
    assert status == 400
    assert answer == {"error": "the seed contains characters the model never saw: 'Q', 'Z'"}
    cli = run("sample", "-c", ck, "--seed", "The ZQ cat", "-n", 5)
    assert cli.stderr.strip() == "Error: " + answer["error"]  # the CLI's one line, word for word


def raw_exchange(port: int, data: bytes, timeout: float = 10) -> tuple[int, dict]:
    """Send raw bytes and end our side (so a body shorter than declared ends there),
    then read the answer until the server closes: (status, JSON)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    "method, path, body, headers, status, fragment",
    [
        ("POST", "/v1/generate", b'{"n": 5', None, 400, "not valid JSON"),
        ("POST", "/v1/generate", {"n": "5"}, None, 400, "n must be an integer"),
        ("POST", "/v1/generate", {"n": 5, "colour": "red"}, None, 400, "unknown field 'colour'"),
        ("POST", "/v1/generate", {"n": 301}, None, 400, "--max-chars"),
        ("POST", "/v1/generate", {"n": 5, "num_samples": 99}, None, 400, "--max-samples"),
        ("POST", "/v1/generate", {"seed": "x" * 3000}, None, 413, "at most 2,048 (--max-body)"),
        ("POST", "/v1/generate", b'{"n": 5}', {"Content-Type": "text/plain"}, 415, "Content-Type: application/json"),
        ("GET", "/v1/generate", None, None, 405, "/v1/generate takes POST, not GET"),
        ("POST", "/v1/info", {}, None, 405, "/v1/info takes GET, HEAD, not POST"),
        ("DELETE", "/", None, None, 405, "takes GET"),
        ("GET", "/v2/generate", None, None, 404, "no such endpoint /v2/generate"),
        ("GET", "/healthz", None, {"Host": "attacker.example:80"}, 403, "is not this server"),
    ],
)
def test_bad_requests_get_a_4xx_json_error(server, method, path, body, headers, status, fragment):
    got, hdrs, answer = request(server.port, method, path, body, headers)
    assert got == status and hdrs["Content-Type"] == "application/json", (got, answer)
    assert set(answer) == {"error"} and fragment in answer["error"], answer
    if status == 405:
        assert hdrs["Allow"] in ("GET, HEAD", "POST")


@pytest.mark.parametrize(
    "data, status, fragment",
    [
        (
            b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\r\n",
            411,
            "Content-Length",
        ),
        (
            b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            411,
            "chunked",
        ),
        (
            b"POST /v1/generate HTTP/1.1\r\nContent-Length: -4\r\nContent-Type: application/json\r\n\r\n",
            400,
            "Content-Length",
        ),
        (
            b"POST /v1/generate HTTP/1.1\r\nContent-Length: 10\r\nContent-Type: application/json\r\n\r\n{}",
            400,
            "ended after 2",
        ),
        (b"BREW /pot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "method 'BREW' is not supported"),
        (b"this is not http\r\n\r\n", 400, "Bad request"),
    ],
)
def test_requests_http_itself_refuses_get_json_too(server, data, status, fragment):
    got, answer = raw_exchange(server.port, data)
    assert got == status and fragment in answer["error"], (got, answer)


def test_one_connection_serves_many_requests_and_errors_do_not_break_it(server):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for body, status in [({"n": 10, "rng_seed": 1}, 200), ({"n": "x"}, 400), ({"n": 10, "rng_seed": 1}, 200)]:
            got, _, answer = request(server.port, "POST", "/v1/generate", body, conn=conn)
            assert got == status
        assert request(server.port, "GET", "/healthz", conn=conn)[0] == 200
    finally:
        conn.close()


def test_concurrent_clients_each_get_their_own_answer(server):
    """16 clients at once, each with its own rng_seed, three requests each: every answer
    is the one the same request gets alone (no state leaks between generations)."""

    def ask(s):
        return request(server.port, "POST", "/v1/generate", {"seed": "The", "n": 150, "rng_seed": s})

    alone = {s: ask(s)[2]["texts"] for s in range(16)}
    results, errors = {}, []

    def client(s):
        try:
            for _ in range(3):
                status, _, answer = ask(s)
                assert status == 200, answer
                results.setdefault(s, []).append(answer["texts"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(s,)) for s in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert {s: r for s, r in results.items()} == {s: [alone[s]] * 3 for s in range(16)}


# ------------------------------------------------------------------ starting and stopping


def test_ctrl_c_stops_cleanly_and_lets_a_running_request_finish(ck):
    srv = ServerProcess("-c", ck, "-q", "--max-chars", "20000")
    answers = []

    def ask():  # about a second of work for the tiny model
        answers.append(request(srv.port, "POST", "/v1/generate", {"n": 20000, "num_samples": 16}))
        answers.append(time.monotonic())

    t = threading.Thread(target=ask)
    t.start()
    time.sleep(0.2)
    signalled = time.monotonic()
    code = srv.stop(signal.SIGINT)
    t.join(timeout=30)
    assert code == 0 and "stopped by SIGINT" in srv.log and "Traceback" not in srv.log
    (status, _, answer), answered = answers
    assert status == 200 and len(answer["texts"]) == 16 and answered > signalled  # it was under way at the signal
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


def test_a_port_in_use_is_one_error_line(ck, server):
    result = run("serve", "-c", ck, "--port", server.port)
    assert result.exit_code == 1 and result.stderr.strip().splitlines()[-1] == (
        f"Error: port {server.port} on 127.0.0.1 is in use; choose another with --port (0 picks a free one)"
    )


def test_serve_help_has_examples():
    result = ok(run("serve", "--help"))
    assert "Examples:" in result.output and "POST /v1/generate" in result.output
