"""What ``POST /v1/generate`` accepts and answers, apart from HTTP.

A request body is one JSON object with any of these fields, meaning what the options
of ``charrnn sample`` mean, with the same defaults (config.SampleOptions)::

    seed         string or null   text to continue ("" or null: a newline)     --seed
    n            integer          characters per sample, 0..max_chars         -n
                                  (max_chars if the default is more)
    temperature  number > 0                                                    -t
    top_k        integer >= 0     0: all characters                            --top-k
    top_p        number in (0,1]  nucleus sampling                             --top-p
    greedy       boolean          argmax instead of a draw                     --greedy
    num_samples  integer          1..max_samples (1)                           --num-samples
    rng_seed     integer >= 0     or null for fresh entropy                    --rng-seed
    stop         string or null   end a sample once it has produced this       --stop

``stop`` is taken literally (JSON already writes a line break as "\\n"; the CLI's
backslash unescaping is for shells). Every way a body can be wrong raises
``RequestError`` with the one-line message the CLI would print and an HTTP status.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass

from charrnn import sampling
from charrnn.config import SampleOptions
from charrnn.errors import UsageError

OPTIONS = {f.name: f for f in dataclasses.fields(SampleOptions)}  # the fields of a request that are options
_DEFAULT = SampleOptions()
DEFAULTS = {
    "seed": None,
    "n": _DEFAULT.n,
    "temperature": _DEFAULT.temperature,
    "top_k": _DEFAULT.top_k,
    "top_p": _DEFAULT.top_p,
    "greedy": _DEFAULT.greedy,
    "num_samples": 1,
    "rng_seed": None,
    "stop": _DEFAULT.stop,
}


class RequestError(UsageError):
    """A request the server refuses; ``status`` is its HTTP status (4xx; 503 while stopping)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_chars: int = 2000  # n per sample
    max_samples: int = 16  # num_samples per request
    max_body: int = 64 * 1024  # bytes of a request body


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")  # json.loads would accept NaN and Infinity


def parse_body(raw: bytes) -> dict:
    """The JSON object in ``raw``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise RequestError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError("the body is not valid JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise RequestError(f"the body must be a JSON object, got {_kind(body)}")
    return body


def _kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "an object"
    )


def _integer(body: dict, name: str, low: int, high: int | None = None, what: str = "") -> int | None:
    value = body[name]
    if value is None and name == "rng_seed":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON has one number type: 200.0 is 200
        else:
            raise RequestError(f"{name} must be an integer, got {_kind(value)} {json.dumps(value)[:40]}")
    if value < low or (high is not None and value > high):
        bound = f"from {low:,} to {high:,}" if high is not None else f"at least {low:,}"
        raise RequestError(f"{name} must be {bound}{what}, got {value}")
    return value


def _number(body: dict, name: str) -> float:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{name} must be a number, got {_kind(value)} {json.dumps(value)[:40]}")
    return float(value)


def _string(body: dict, name: str) -> str | None:
    value = body[name]
    if value is not None and not isinstance(value, str):
        raise RequestError(f"{name} must be a string or null, got {_kind(value)}")
    return value


def _low(name: str) -> int:
    """The least value SampleOptions allows for its integer field ``name``."""
    return OPTIONS[name].metadata["low"]


def parse_generate(raw: bytes, limits: Limits) -> dict:
    """Validate a /v1/generate body: every field, by name, with the default of those not
    given (the seed not yet checked against the vocabulary: sampling.generate does that)."""
    body = parse_body(raw)
    unknown = sorted(set(body) - set(DEFAULTS))
    if unknown:
        raise RequestError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"the fields are {', '.join(DEFAULTS)}"
        )
    body = {**DEFAULTS, "n": min(DEFAULTS["n"], limits.max_chars), **body}
    greedy = body["greedy"]
    if not isinstance(greedy, bool):
        raise RequestError(f"greedy must be true or false, got {_kind(greedy)}")
    out = {
        "seed": _string(body, "seed") or "",
        "n": _integer(body, "n", _low("n"), limits.max_chars, " (the server's --max-chars)"),
        "temperature": _number(body, "temperature"),
        "top_k": _integer(body, "top_k", _low("top_k")),
        "top_p": _number(body, "top_p"),
        "greedy": greedy,
        "num_samples": _integer(body, "num_samples", 1, limits.max_samples, " (the server's --max-samples)"),
        "rng_seed": _integer(body, "rng_seed", 0),
        "stop": _string(body, "stop") or None,
    }
    try:  # the library's own messages; 1e400 reads as inf, which this refuses too
        options(out)
    except UsageError as exc:
        raise RequestError(str(exc)) from None
    return out


def options(request: dict) -> SampleOptions:
    """The SampleOptions of a parsed request."""
    return SampleOptions(**{name: request[name] for name in OPTIONS})


def generate(ckpt, checkpoint_path: str, request: dict, engine=None) -> dict:
    """Answer a parsed request: ``{"texts": [...], "checkpoint", "elapsed_ms"}``; each
    text is what was generated after the seed, as ``charrnn sample --json`` gives it."""
    t0 = time.perf_counter()
    samples = sampling.generate(
        ckpt.params,
        ckpt.model_cfg,
        ckpt.vocab,
        request["seed"],
        options(request),
        rng_seed=request["rng_seed"],
        num_samples=request["num_samples"],
        engine=engine,
    )
    texts = ["".join(chars) for chars in samples]
    return {"texts": texts, "checkpoint": checkpoint_path, "elapsed_ms": round(1000 * (time.perf_counter() - t0), 2)}
