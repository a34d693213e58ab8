"""A nanoGPT-style character-level transformer in PyTorch, trained for a time budget and
scored on the same held-out characters as charrnn: the other peer charrnn is measured
against (text per CPU-minute on the same machine).

Optional comparison only: charrnn never imports this, and torch is never a dependency
(``pip install torch==2.13.0``; exit 3 without it).

The model is nanoGPT's GPT (github.com/karpathy/nanoGPT, model.py and train.py, written
here afresh): learned token and position embeddings, ``--layers`` pre-LayerNorm blocks
of causal multi-head self-attention and a 4x GELU MLP with residual connections, a
final LayerNorm and an output layer tied to the token embedding; weights N(0, 0.02),
the residual projections N(0, 0.02 / sqrt(2 layers)); biases as nanoGPT's default.
Training as nanoGPT's train.py: random ``--block``-character windows of the training
text, ``--batch`` of them a step; AdamW (betas 0.9 and ``--beta2``, weight decay 0.1 on
the matrices and embeddings only); a linear warm-up over ``--warmup`` steps, then
cosine decay to ``--min-lr`` over the time budget (nanoGPT decays over a step count;
a budget in seconds has none, so the clock stands in for it); clipping at global norm
1; dropout ``--dropout``.

Scoring: the last ``--val-frac`` of the text, as charrnn's validation holds it out
(charrnn.data.held_out_start), every character predicted once, in windows of
``--block`` characters advanced by half a block, so that each is predicted with at
least half a block of context (the first with the training text before it as
context): the same characters as charrnn's validation loss, in nats per character.
Validation time is not counted in the budget (charrnn's is).

    python benchmarks/gpt_reference.py --corpus tinyshakespeare.txt --time-limit 600
    python benchmarks/gpt_reference.py --corpus tinyshakespeare.txt --layers 4 --heads 4 \\
        --embd 128 --block 64 --batch 12 --dropout 0 --lr 1e-3 --time-limit 180
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch_reference import (  # noqa: E402  (beside this script)
    TorchUnavailable,
    _torch,
    budget_fraction,
    cosine_lr,
    encode_corpus,
)


def scoring_windows(n: int, first: int, block: int) -> list[tuple[int, int, int]]:
    """How to predict every character seq[first:] of an n-character sequence with a
    model of context ``block``: [(a, j0, j1)], one per window, whose input is
    seq[a : a + block] and which scores the characters j0 <= j < j1 (position j - a - 1
    of its output). Windows advance by half a block, so every character but those of
    the first window has at least block - block // 2 + 1 characters of context; each
    character is scored exactly once. Needs first >= 1 and n >= block + 1."""
    stride = max(1, block // 2)
    out = []
    j0 = first
    while j0 < n:
        j1 = min(j0 + stride, n)
        a = max(0, j1 - 1 - block)  # the last character scored sits at the window's end
        out.append((a, j0, j1))
        j0 = j1
    return out


def _build_gpt(torch, vocab_size, layers, heads, embd, block, dropout, bias=True):
    nn, F = torch.nn, torch.nn.functional

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(embd, 3 * embd, bias=bias)
            self.proj = nn.Linear(embd, embd, bias=bias)
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = (t.view(B, T, heads, C // heads).transpose(1, 2) for t in self.qkv(x).split(embd, dim=2))
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout if self.training else 0.0, is_causal=True)
            return self.drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(embd, bias=bias), nn.LayerNorm(embd, bias=bias)
            self.attn = Attention()
            self.fc = nn.Linear(embd, 4 * embd, bias=bias)
            self.proj = nn.Linear(4 * embd, embd, bias=bias)
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.drop(self.proj(F.gelu(self.fc(self.ln2(x)))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab_size, embd)
            self.pos = nn.Embedding(block, embd)
            self.drop = nn.Dropout(dropout)
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.ln = nn.LayerNorm(embd, bias=bias)
            self.head = nn.Linear(embd, vocab_size, bias=False)
            self.tok.weight = self.head.weight  # tied, as GPT-2 and nanoGPT
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, 0.0, 0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
            for name, p in self.named_parameters():
                if name.endswith("proj.weight"):  # the residual projections
                    nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))

        def forward(self, idx):
            T = idx.shape[1]
            x = self.drop(self.tok(idx) + self.pos(torch.arange(T, device=idx.device)))
            for b in self.blocks:
                x = b(x)
            return self.head(self.ln(x))

    return GPT()


def train_quality(ids, vocab_size, a, log=None) -> dict:
    """Train for a.time_limit seconds of steps (or a.max_steps) and score the held-out
    text every a.eval_every steps and at the end; returns a summary dict."""
    torch = _torch()
    from charrnn import data

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    ids = np.asarray(ids, dtype=np.int64)
    start = data.held_out_start(len(ids), a.val_frac)
    train_ids = torch.from_numpy(ids[:start])
    context = min(start, a.block)
    seq = torch.from_numpy(ids[start - context :])
    windows = scoring_windows(len(seq), context, a.block)
    model = _build_gpt(torch, vocab_size, a.layers, a.heads, a.embd, a.block, a.dropout)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr,
        betas=(0.9, a.beta2),
    )
    offsets = torch.arange(a.block + 1)

    def validate() -> float:
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for g in range(0, len(windows), 64):
                group = windows[g : g + 64]
                starts = torch.tensor([w[0] for w in group])
                chunk = seq[starts[:, None] + offsets]  # (W, block + 1)
                logp = torch.log_softmax(model(chunk[:, :-1]).double(), dim=-1)
                for r, (a0, j0, j1) in enumerate(group):
                    p = torch.arange(j0 - a0 - 1, j1 - a0 - 1)
                    total -= float(logp[r, p, chunk[r, p + 1]].sum())
                    count += j1 - j0
        model.train()
        return total / count

    def lr_at(step: int, elapsed: float) -> float:
        if step < a.warmup:
            return a.lr * (step + 1) / (a.warmup + 1)
        return cosine_lr(a.lr, a.min_lr, budget_fraction(step, elapsed, a.max_steps, a.time_limit))

    model.train()
    step, elapsed, best, evals, smoothed = 0, 0.0, None, [], None
    while not ((a.max_steps and step >= a.max_steps) or (a.time_limit and elapsed >= a.time_limit)):
        t0 = time.perf_counter()
        starts = torch.from_numpy(rng.integers(0, len(train_ids) - a.block - 1, a.batch))
        chunk = train_ids[starts[:, None] + offsets]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, elapsed)
        logits = model(chunk[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab_size), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        value = float(loss.item())
        smoothed = value if smoothed is None else 0.98 * smoothed + 0.02 * value
        elapsed += time.perf_counter() - t0
        done = (a.max_steps and step >= a.max_steps) or (a.time_limit and elapsed >= a.time_limit)
        if step % a.eval_every == 0 or done:
            val = validate()
            best = val if best is None else min(best, val)
            record = {
                "step": step,
                "elapsed": round(elapsed, 2),
                "train_loss": round(smoothed, 4),
                "val_loss": round(val, 4),
            }
            evals.append(record)
            if log is not None:
                log(record)
    n_params = sum(p.numel() for p in model.parameters()) - model.pos.weight.numel()
    return {
        "impl": "gpt",
        "torch_version": torch.__version__,
        "threads": a.threads,
        "model": f"GPT {a.layers} layers, {a.heads} heads, {a.embd} wide, block {a.block}",
        "params": int(n_params),
        "dropout": a.dropout,
        "lr": a.lr,
        "min_lr": a.min_lr,
        "beta2": a.beta2,
        "batch": a.batch,
        "time_limit": a.time_limit,
        "steps": step,
        "train_seconds": round(elapsed, 2),
        "chars_per_s": round(step * a.batch * a.block / elapsed, 1) if elapsed else None,
        "best_val_loss": best,
        "evals": evals,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", required=True, help="UTF-8 text file")
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--embd", type=int, default=384)
    p.add_argument("--block", type=int, default=256, help="context, characters")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--beta2", type=float, default=0.99)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--val-frac", type=float, default=0.1)
    p.add_argument("--time-limit", type=float, default=600.0, help="seconds of training steps; 0: none")
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    ids, vocab = encode_corpus(a.corpus)
    try:
        out = train_quality(ids, len(vocab), a, log=lambda r: print(json.dumps(r), file=sys.stderr, flush=True))
    except TorchUnavailable as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
