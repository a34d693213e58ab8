"""PyTorch CPU reference for charrnn: training throughput, training quality, sampling.

Optional comparison only: charrnn never imports this, and torch is never a
dependency. Install it just for the comparison with ``pip install torch==2.13.0``.

The model is charrnn's model built from PyTorch's layers: Embedding(V, V) ->
stacked RNN/LSTM/GRU with input size V -> Linear(H, V), float32, Adam, global-norm
clipping at 5, cross-entropy (``--inputs`` gives the variants; see _build_model).
Data: the ids are cut into ``batch`` contiguous streams; each step trains on the
next ``seq_len`` window of every stream with the hidden state carried over
(detached: truncated BPTT), reset at the start of each pass.

Script use (prints one JSON object; exit 3 if torch is missing):
    python benchmarks/torch_reference.py --corpus PATH --cell lstm --hidden 256 \
        --layers 2 --batch 64 --seq-len 64 --steps 30 --threads 2 [--repeats 3]
    python benchmarks/torch_reference.py --mode quality --corpus PATH --hidden 384 \
        --dropout 0.25 --lr 3e-3 --time-limit 600        # best validation loss in a budget
    python benchmarks/torch_reference.py --mode sample --sample-chars 2000
The environment's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE do not matter to torch's
own kernels (ATEN_CPU_CAPABILITY=avx2 makes it use its AVX2 ones), but all three are
echoed in the output so runs can be told apart.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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


INPUTS = ("embed-v", "onehot", "embed-h")


def _build_model(torch, vocab_size, cell, hidden, layers, dropout, inputs="embed-v"):
    """The reference network. ``inputs`` says what feeds the first recurrent layer:

    - embed-v: Embedding(V, V) -> RNN with input size V. The same function as charrnn's
      model, whose first layer is a (V, G) lookup (char-rnn's one-hot input); the
      default, so that both do the same work.
    - onehot: one-hot vectors -> RNN with input size V: the same function again,
      without the extra (V, V) factor.
    - embed-h: Embedding(V, H) -> RNN with input size H, which also runs an (H, G)
      input product per character of the first layer that charrnn's model does not
      have. Reported only as a labelled variant.

    ``dropout`` applies between layers (nn.LSTM's own) and before the output layer,
    as charrnn drops out every layer's output."""
    nn = torch.nn
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")
    rnn_cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
    drop = dropout if layers > 1 else 0.0  # torch warns about dropout with one layer
    in_size = hidden if inputs == "embed-h" else vocab_size

    class CharModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = None if inputs == "onehot" else nn.Embedding(vocab_size, in_size)
            self.rnn = rnn_cls(in_size, hidden, num_layers=layers, dropout=drop, batch_first=False, **kwargs)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(hidden, vocab_size)

        def forward(self, x, state=None):  # x: (T, B) int64
            if self.emb is None:
                inp = torch.nn.functional.one_hot(x, vocab_size).float()
            else:
                inp = self.emb(x)
            out, state = self.rnn(inp, state)
            return self.head(self.drop(out)), state

    return CharModel()


def describe_model(vocab_size, cell, hidden, layers, inputs="embed-v") -> str:
    """The reference network's shapes in one line, for example
    Embedding(65, 65) -> LSTM(65, 256, 2 layers) -> Linear(256, 65)."""
    in_size = hidden if inputs == "embed-h" else vocab_size
    first = f"one-hot({vocab_size})" if inputs == "onehot" else f"Embedding({vocab_size}, {in_size})"
    rnn = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell]
    stack = f"{layers} layer{'s' if layers > 1 else ''}"
    return f"{first} -> {rnn}({in_size}, {hidden}, {stack}) -> Linear({hidden}, {vocab_size})"


def _detach(state):
    if state is None:
        return None
    if isinstance(state, tuple):  # LSTM carries (h, c)
        return tuple(s.detach() for s in state)
    return state.detach()


def torch_train_throughput(
    text_ids,
    vocab_size,
    cell,
    hidden,
    layers,
    batch,
    seq_len,
    steps,
    warmup=3,
    threads=2,
    dropout=0.0,
    seed=0,
    inputs="embed-v",
):
    """Train the reference model for ``warmup + steps`` steps; time the last ``steps``."""
    torch = _torch()
    ids = np.asarray(text_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError("text_ids must be a non-empty 1-D array of token ids")
    if int(ids.max()) >= vocab_size or int(ids.min()) < 0:
        raise ValueError(f"token ids must lie in [0, {vocab_size})")
    stream_len = ids.size // batch
    if stream_len < seq_len + 1:
        raise ValueError(f"text too short: {ids.size} ids give streams of {stream_len} < seq_len + 1 = {seq_len + 1}")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    # (batch, L) streams, stored time-major (L, batch) so each window is a
    # contiguous (T, B) slice, the layout batch_first=False expects.
    streams = ids[: batch * stream_len].astype(np.int64).reshape(batch, stream_len)
    data = torch.from_numpy(np.ascontiguousarray(streams.T))

    model = _build_model(torch, vocab_size, cell, hidden, layers, dropout, inputs)
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
        x = data[pos : pos + seq_len]
        y = data[pos + 1 : pos + seq_len + 1]
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
    return {
        "impl": "torch",
        "torch_version": torch.__version__,
        "threads": threads,
        "inputs": inputs,
        "reference_model": describe_model(vocab_size, cell, hidden, layers, inputs),
        "cell": cell,
        "hidden": hidden,
        "layers": layers,
        "batch": batch,
        "seq_len": seq_len,
        "steps": steps,
        "seconds": seconds,
        "chars_per_s": batch * seq_len * steps / seconds,
        "final_loss": float(loss.item()),
    }


def torch_sample_throughput(
    vocab_size=65, cell="lstm", hidden=256, layers=2, n_chars=2000, warmup=50, threads=2, temperature=1.0, seed=0
):
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
    return {
        "impl": "torch",
        "torch_version": torch.__version__,
        "mode": "sample",
        "threads": threads,
        "cell": cell,
        "hidden": hidden,
        "layers": layers,
        "vocab_size": vocab_size,
        "chars": n_chars,
        "seconds": seconds,
        "chars_per_s": n_chars / seconds,
    }


def budget_fraction(step: int, elapsed: float, max_steps: int, time_limit: float) -> float:
    """How far a run is through its budget, 0 to 1: ``max_steps`` steps or ``time_limit``
    seconds (0: no such limit), whichever ends first."""
    fractions = [step / max_steps] if max_steps else []
    if time_limit:
        fractions.append(elapsed / time_limit)
    return min(1.0, max(fractions, default=0.0))


def cosine_lr(peak: float, floor: float, fraction: float) -> float:
    """Cosine decay from ``peak`` at fraction 0 to ``floor`` at 1."""
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * fraction))


def torch_train_quality(
    ids,
    vocab_size,
    cell="lstm",
    hidden=384,
    layers=2,
    batch=64,
    seq_len=64,
    dropout=0.25,
    lr=3e-3,
    min_lr_frac=0.05,
    clip=5.0,
    val_frac=0.1,
    time_limit=600.0,
    max_steps=0,
    eval_every=500,
    threads=2,
    seed=0,
    inputs="embed-v",
    log=None,
    beta2=0.999,
    count_validation=False,
):
    """Train the reference model the way ``charrnn train`` trains, and validate it the
    way charrnn validates, so that the two best validation losses can be compared.

    - Data: the first (1 - val_frac) of the text, as ``batch`` contiguous streams read
      ``seq_len`` characters at a time, state carried (detached) and reset to zero at
      the start of each pass, as charrnn.data.Streams lays them out.
    - Schedule: Adam (betas 0.9 and ``beta2``, PyTorch's default 0.999), cosine decay
      from ``lr`` to ``lr * min_lr_frac`` over the run's length: ``max_steps``, or
      ``time_limit`` seconds counted on training steps only (validation pauses the
      clock; with ``count_validation`` it counts too, as charrnn's --time-limit does),
      whichever ends first. Clipping at global norm ``clip``.
    - Validation: every character of the last val_frac, with charrnn's own layout
      (charrnn.data.eval_chunks: 64 streams, 128 characters of warm-up each, state
      carried), every ``eval_every`` steps and at the end; nats per character.
    Returns a summary dict; each evaluation is also passed to ``log`` as a dict.
    """
    torch = _torch()
    from charrnn import data, evaluation

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    ids = np.asarray(ids)
    start = data.held_out_start(len(ids), val_frac)
    train_ids = ids[:start]
    val_ids, n_context = evaluation.with_context(ids, start)
    streams = data.Streams(train_ids, batch, seq_len)
    columns = torch.from_numpy(np.ascontiguousarray(streams.data.T.astype(np.int64)))  # (L, B)
    model = _build_model(torch, vocab_size, cell, hidden, layers, dropout, inputs)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, beta2))
    loss_fn = torch.nn.CrossEntropyLoss()

    def validate():
        model.eval()
        total, count, state = 0.0, 0, None
        with torch.no_grad():
            for x, y, targets in data.eval_chunks(
                val_ids, n_context, evaluation.EVAL_STREAMS, evaluation.EVAL_WARMUP, evaluation.EVAL_CHUNK
            ):
                xt = torch.from_numpy(np.ascontiguousarray(x.T.astype(np.int64)))
                yt = torch.from_numpy(np.ascontiguousarray(y.T.astype(np.int64)))
                logits, state = model(xt, state)
                nll = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, vocab_size), yt.reshape(-1), reduction="none"
                ).reshape(yt.shape)
                m = torch.from_numpy(np.ascontiguousarray(targets.T >= 0))
                total += float(nll[m].double().sum())
                count += int(m.sum())
        model.train()
        return total / count

    def lr_at(step, elapsed):
        return cosine_lr(lr, lr * min_lr_frac, budget_fraction(step, elapsed, max_steps, time_limit))

    model.train()
    state, chunk, step, elapsed, best, evals = None, 0, 0, 0.0, None, []
    smoothed = None
    while not ((max_steps and step >= max_steps) or (time_limit and elapsed >= time_limit)):
        t0 = time.perf_counter()
        if chunk >= streams.chunks_per_epoch:
            chunk, state = 0, None
        x = columns[chunk * seq_len : (chunk + 1) * seq_len]
        y = columns[chunk * seq_len + 1 : (chunk + 1) * seq_len + 1]
        chunk += 1
        for group in opt.param_groups:
            group["lr"] = lr_at(step, elapsed)
        logits, state = model(x, state)
        state = _detach(state)
        loss = loss_fn(logits.reshape(-1, vocab_size), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        step += 1
        value = float(loss.item())
        smoothed = value if smoothed is None else 0.98 * smoothed + 0.02 * value
        elapsed += time.perf_counter() - t0
        done = (max_steps and step >= max_steps) or (time_limit and elapsed >= time_limit)
        if step % eval_every == 0 or done:
            t1 = time.perf_counter()
            val = validate()
            if count_validation:
                elapsed += time.perf_counter() - t1
            best = val if best is None else min(best, val)
            record = {
                "step": step,
                "elapsed": round(elapsed, 2),
                "train_loss": round(smoothed, 4),
                "val_loss": round(val, 4),
                "chars_per_s": round(step * batch * seq_len / elapsed),
            }
            evals.append(record)
            if log is not None:
                log(record)
    return {
        "impl": "torch",
        "mode": "quality",
        "torch_version": torch.__version__,
        "threads": threads,
        "inputs": inputs,
        "cell": cell,
        "hidden": hidden,
        "layers": layers,
        "dropout": dropout,
        "lr": lr,
        "min_lr_frac": min_lr_frac,
        "beta2": beta2,
        "count_validation": count_validation,
        "batch": batch,
        "seq_len": seq_len,
        "clip": clip,
        "time_limit": time_limit,
        "max_steps": max_steps,
        "steps": step,
        "train_seconds": round(elapsed, 2),
        "chars_per_s": round(step * batch * seq_len / elapsed, 1),
        "best_val_loss": best,
        "evals": evals,
    }


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
    p.add_argument("--mode", choices=("train", "sample", "quality"), default="train")
    p.add_argument("--corpus", help="UTF-8 text file (required for --mode train and quality)")
    p.add_argument("--cell", choices=CELLS, default="lstm")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument(
        "--inputs",
        choices=INPUTS,
        default="embed-v",
        help="what feeds the first layer (see _build_model); embed-v is charrnn's model",
    )
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dropout", type=float, default=None, help="default 0 for --mode train, 0.25 for --mode quality")
    p.add_argument("--repeats", type=int, default=1, help="independent timed runs; chars_per_s reports their median")
    p.add_argument("--sample-chars", type=int, default=2000)
    p.add_argument("--vocab-size", type=int, default=65, help="vocabulary for --mode sample without --corpus")
    q = p.add_argument_group("--mode quality")
    q.add_argument("--lr", type=float, default=3e-3)
    q.add_argument("--min-lr-frac", type=float, default=0.05)
    q.add_argument("--beta2", type=float, default=0.999, help="Adam's beta2 (PyTorch's default, and charrnn's)")
    q.add_argument(
        "--count-validation",
        action="store_true",
        help="validation time counts in --time-limit, as in charrnn train (default: it pauses the clock)",
    )
    q.add_argument("--clip", type=float, default=5.0)
    q.add_argument("--val-frac", type=float, default=0.1)
    q.add_argument("--time-limit", type=float, default=600.0, help="seconds of training; 0: none")
    q.add_argument("--max-steps", type=int, default=0)
    q.add_argument("--eval-every", type=int, default=500)
    q.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.mode in ("train", "quality") and not a.corpus:
        p.error(f"--corpus is required for --mode {a.mode}")
    ids, vocab_size = None, a.vocab_size
    if a.corpus:
        ids, vocab = encode_corpus(a.corpus)
        vocab_size = len(vocab)
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "ATEN_CPU_CAPABILITY")}
    try:
        if a.mode == "quality":
            result = torch_train_quality(
                ids,
                vocab_size,
                a.cell,
                a.hidden,
                a.layers,
                a.batch,
                a.seq_len,
                0.25 if a.dropout is None else a.dropout,
                a.lr,
                a.min_lr_frac,
                a.clip,
                a.val_frac,
                a.time_limit,
                a.max_steps,
                a.eval_every,
                a.threads,
                a.seed,
                a.inputs,
                log=lambda r: print(json.dumps(r), file=sys.stderr, flush=True),
                beta2=a.beta2,
                count_validation=a.count_validation,
            )
            print(json.dumps(dict(result, env=env)))
            return 0
        runs = []
        for _ in range(a.repeats):
            if a.mode == "train":
                runs.append(
                    torch_train_throughput(
                        ids,
                        vocab_size,
                        a.cell,
                        a.hidden,
                        a.layers,
                        a.batch,
                        a.seq_len,
                        a.steps,
                        warmup=a.warmup,
                        threads=a.threads,
                        dropout=a.dropout or 0.0,
                        inputs=a.inputs,
                    )
                )
            else:
                runs.append(
                    torch_sample_throughput(
                        vocab_size, a.cell, a.hidden, a.layers, n_chars=a.sample_chars, threads=a.threads
                    )
                )
    except TorchUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 3
    rates = [run["chars_per_s"] for run in runs]
    result = runs[rates.index(sorted(rates)[(len(rates) - 1) // 2])]  # a median run
    result = dict(result, chars_per_s=statistics.median(rates), runs_chars_per_s=rates, env=env)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
