"""PyTorch CPU reference for charrnn's training and sampling throughput.

Optional comparison only: charrnn never imports this, and torch is never a
dependency. Install it just for the comparison with ``pip install torch==2.13.0``.

The model mirrors charrnn's design: Embedding(V, H) -> stacked RNN/LSTM/GRU(H, H)
-> Linear(H, V), float32, Adam lr 2e-3, global-norm clipping at 5, cross-entropy.
Data: the ids are cut into ``batch`` contiguous streams; each step trains on the
next ``seq_len`` window of every stream with the hidden state carried over
(detached: truncated BPTT), wrapping to the start of the streams at the end.

Script use (prints one JSON object; exit 3 if torch is missing):
    python benchmarks/torch_reference.py --corpus PATH --cell lstm --hidden 256 \
        --layers 2 --batch 64 --seq-len 64 --steps 30 --threads 2 [--repeats 3]
    python benchmarks/torch_reference.py --mode sample --sample-chars 2000
The environment's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE do not matter to torch's
MKL kernels, but are echoed in the output so runs can be told apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

CELLS = ("rnn", "lstm", "gru")
MISSING = "PyTorch is not installed; pip install torch==2.13.0 for the comparison"


class TorchUnavailable(RuntimeError):
    """Raised when torch cannot be imported; the script maps it to exit code 3."""


def _torch():
    # Imported lazily so this module (and `--help`) loads without torch.
    try:
        import torch
    except ImportError as exc:
        raise TorchUnavailable(MISSING) from exc
    return torch


def _build_model(torch, vocab_size, cell, hidden, layers, dropout):
    nn = torch.nn
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    rnn_cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
    # torch applies RNN dropout only between layers (and warns if layers == 1).
    drop = dropout if layers > 1 else 0.0

    class CharModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab_size, hidden)
            self.rnn = rnn_cls(hidden, hidden, num_layers=layers, dropout=drop,
                               batch_first=False, **kwargs)
            self.head = nn.Linear(hidden, vocab_size)

        def forward(self, x, state=None):  # x: (T, B) int64
            out, state = self.rnn(self.emb(x), state)
            return self.head(out), state

    return CharModel()


def _detach(state):
    if state is None:
        return None
    if isinstance(state, tuple):  # LSTM carries (h, c)
        return tuple(s.detach() for s in state)
    return state.detach()


def torch_train_throughput(text_ids, vocab_size, cell, hidden, layers, batch, seq_len,
                           steps, warmup=3, threads=2, dropout=0.0, seed=0):
    """Train the reference model for ``warmup + steps`` steps; time the last ``steps``."""
    torch = _torch()
    ids = np.asarray(text_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError("text_ids must be a non-empty 1-D array of token ids")
    if int(ids.max()) >= vocab_size or int(ids.min()) < 0:
        raise ValueError(f"token ids must lie in [0, {vocab_size})")
    stream_len = ids.size // batch
    if stream_len < seq_len + 1:
        raise ValueError(f"text too short: {ids.size} ids give streams of {stream_len} "
                         f"< seq_len + 1 = {seq_len + 1}")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    # (batch, L) streams, stored time-major (L, batch) so each window is a
    # contiguous (T, B) slice, the layout batch_first=False expects.
    streams = ids[:batch * stream_len].astype(np.int64).reshape(batch, stream_len)
    data = torch.from_numpy(np.ascontiguousarray(streams.T))

    model = _build_model(torch, vocab_size, cell, hidden, layers, dropout)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    state, pos = None, 0

    def step():
        nonlocal state, pos
        if pos + seq_len + 1 > stream_len:
            # Wrap to the stream starts; the end of a stream does not precede its
            # start, so the carried state is reset rather than reused.
            pos, state = 0, None
        x = data[pos:pos + seq_len]
        y = data[pos + 1:pos + seq_len + 1]
        pos += seq_len
        logits, state = model(x, state)
        state = _detach(state)
        loss = loss_fn(logits.reshape(-1, vocab_size), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    seconds = time.perf_counter() - t0
    return {"impl": "torch", "torch_version": torch.__version__, "threads": threads,
            "cell": cell, "hidden": hidden, "layers": layers, "batch": batch,
            "seq_len": seq_len, "steps": steps, "seconds": seconds,
            "chars_per_s": batch * seq_len * steps / seconds,
            "final_loss": float(loss.item())}


def torch_sample_throughput(vocab_size=65, cell="lstm", hidden=256, layers=2,
                            n_chars=2000, warmup=50, threads=2, temperature=1.0, seed=0):
    """Generate ``n_chars`` one at a time from an untrained model; return chars/s.

    Weights are random: only speed matters here, and each step costs the same.
    """
    torch = _torch()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = _build_model(torch, vocab_size, cell, hidden, layers, 0.0)
    model.eval()

    def generate(n):
        state, idx, out = None, 0, []
        for _ in range(n):
            x = torch.tensor([[idx]], dtype=torch.int64)  # (T=1, B=1)
            logits, state = model(x, state)
            probs = torch.softmax(logits[0, 0] / temperature, dim=-1)
            # .item() each step, as a real sampler must emit every char.
            idx = int(torch.multinomial(probs, 1).item())
            out.append(idx)
        return out

    with torch.inference_mode():
        generate(warmup)
        t0 = time.perf_counter()
        generate(n_chars)
        seconds = time.perf_counter() - t0
    return {"impl": "torch", "torch_version": torch.__version__, "mode": "sample",
            "threads": threads, "cell": cell, "hidden": hidden, "layers": layers,
            "vocab_size": vocab_size, "chars": n_chars, "seconds": seconds,
            "chars_per_s": n_chars / seconds}


def encode_corpus(path):
    """Read UTF-8 text, build the sorted-char vocabulary, return (ids, vocab)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    vocab = sorted(set(text))
    codes = np.array([ord(c) for c in vocab])
    # Sorted vocab means searchsorted maps each code point to its id in one pass.
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    ids = np.searchsorted(codes, points).astype(np.int64)
    return ids, vocab


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=("train", "sample"), default="train")
    p.add_argument("--corpus", help="UTF-8 text file (required for --mode train)")
    p.add_argument("--cell", choices=CELLS, default="lstm")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--repeats", type=int, default=1,
                   help="independent timed runs; chars_per_s reports their median")
    p.add_argument("--sample-chars", type=int, default=2000)
    p.add_argument("--vocab-size", type=int, default=65,
                   help="vocabulary for --mode sample without --corpus")
    a = p.parse_args(argv)
    if a.mode == "train" and not a.corpus:
        p.error("--corpus is required for --mode train")
    ids, vocab_size = None, a.vocab_size
    if a.corpus:
        ids, vocab = encode_corpus(a.corpus)
        vocab_size = len(vocab)
    try:
        runs = []
        for _ in range(a.repeats):
            if a.mode == "train":
                runs.append(torch_train_throughput(
                    ids, vocab_size, a.cell, a.hidden, a.layers, a.batch, a.seq_len,
                    a.steps, warmup=a.warmup, threads=a.threads, dropout=a.dropout))
            else:
                runs.append(torch_sample_throughput(
                    vocab_size, a.cell, a.hidden, a.layers, n_chars=a.sample_chars,
                    threads=a.threads))
    except TorchUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 3
    rates = [run["chars_per_s"] for run in runs]
    result = runs[rates.index(sorted(rates)[(len(rates) - 1) // 2])]  # a median run
    result = dict(result, chars_per_s=statistics.median(rates), runs_chars_per_s=rates,
                  env={k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
