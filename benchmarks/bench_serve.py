"""charrnn serve under load: requests per second and latency percentiles for C
concurrent clients, each asking for N characters at a time.

Starts `charrnn serve` as its own process on 127.0.0.1 (a free port) for each
--workers value, then, for each client count, runs C client threads that each keep
one HTTP/1.1 connection open and send POST /v1/generate back to back until the
level's request budget is spent (or --max-seconds passes). Traffic goes to
127.0.0.1 only, and every loop is bounded. The model is --checkpoint, or random
weights of the given shape (speed does not depend on what the weights learned).

    python benchmarks/bench_serve.py --cell lstm --hidden 384 --layers 2 --clients 1 4 16 --workers 1 2

Prints one JSON object; the client threads run on the same machine as the server,
so they take a little of its CPU (about 0.1 ms per request).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from charrnn import checkpoint, model, optim, rundir, sampling
from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import Vocab

# 65 printable characters, like tiny Shakespeare's vocabulary
VOCAB = Vocab("".join(sorted("\n !$&',-.3:;?" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz")))
SEED = "ROMEO:\nWhat light through yonder window breaks?\n"


def random_checkpoint(directory: str, cell: str, hidden: int, layers: int) -> str:
    cfg = ModelConfig(cell=cell, vocab_size=VOCAB.size, hidden_size=hidden, n_layers=layers)
    train = TrainConfig()
    params = model.init_params(cfg, np.random.default_rng(0))
    opt = {k: np.zeros(s, np.float32) for k, s in optim.state_shapes(train.optimizer, model.param_shapes(cfg)).items()}
    path = os.path.join(directory, "random.npz")
    checkpoint.save(checkpoint.Checkpoint(cfg, train, VOCAB, params, opt_state=opt, corpus={"name": "random"}), path)
    return path


class ServerProcess:
    """`charrnn serve` in its own process; its address is read from its first line."""

    def __init__(self, ckpt: str, workers: int):
        cmd = [sys.executable, "-m", "charrnn", "serve", "-c", ckpt, "--port", "0", "--workers", str(workers), "-q"]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not found:
            self.proc.kill()
            raise SystemExit(f"the server did not start: {line}{self.proc.stderr.read()}")
        self.port = int(found.group(1))

    def stop(self) -> None:
        self.proc.terminate()  # SIGTERM: the server drains and exits 0
        self.proc.wait(timeout=30)


def run_level(port: int, clients: int, requests: int, body: bytes, max_seconds: float) -> dict:
    """``requests`` requests spread over ``clients`` threads, each on its own keep-alive
    connection; latency is from sending a request to having read its whole answer."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    budget = iter(range(requests))
    deadline = time.monotonic() + max_seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if next(budget, None) is None:
                        return
                t0 = time.perf_counter()
                conn.request("POST", "/v1/generate", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                dt = time.perf_counter() - t0
                with lock:
                    if resp.status == 200:
                        latencies.append(dt)
                    else:
                        errors.append(f"{resp.status} {data[:200]!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = sorted(1000 * x for x in latencies)

    def pct(q):  # nearest rank
        return round(ms[min(len(ms) - 1, max(0, int(np.ceil(q / 100 * len(ms))) - 1))], 2) if ms else None

    return {
        "clients": clients,
        "requests": len(ms),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(wall, 3),
        "rps": round(len(ms) / wall, 2),
        "chars_per_s": None,  # filled in by the caller, who knows n and num_samples
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
        "max_ms": round(ms[-1], 2) if ms else None,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint")
    p.add_argument("--cell", default="lstm", choices=["rnn", "lstm", "gru"])
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("-n", type=int, default=200, help="characters per request")
    p.add_argument("--num-samples", type=int, default=1)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="the server's --workers values to compare")
    p.add_argument("--requests", type=int, default=300, help="requests per level (at least 10 per client)")
    p.add_argument("--max-seconds", type=float, default=60.0, help="cap on each level's duration")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = rundir.resolve(a.checkpoint) if a.checkpoint else random_checkpoint(tmp, a.cell, a.hidden, a.layers)
        loaded = checkpoint.load(ckpt)
        cfg = loaded.model_cfg
        seed, _ = sampling.drop_unknown(SEED, loaded.vocab)  # the same request every time: the same work
        body = json.dumps({"seed": seed, "n": a.n, "num_samples": a.num_samples, "rng_seed": 1}).encode()
        out = {
            "checkpoint": a.checkpoint or "random weights",
            "cell": cfg.cell,
            "hidden": cfg.hidden_size,
            "layers": cfg.n_layers,
            "n": a.n,
            "num_samples": a.num_samples,
            "cpus": os.cpu_count(),
            "results": [],
        }
        for workers in a.workers:
            server = ServerProcess(ckpt, workers)
            try:
                run_level(server.port, 1, 5, body, a.max_seconds)  # warm up: imports, first-touch memory
                for clients in a.clients:
                    level = run_level(server.port, clients, max(a.requests, 10 * clients), body, a.max_seconds)
                    level["chars_per_s"] = round(level["rps"] * a.n * a.num_samples)
                    out["results"].append({"workers": workers, **level})
            finally:
                server.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
