"""The numba engine: the NumPy engine's recurrences with each step's elementwise work
compiled into one kernel call (engines/numba_kernels.py).

Each step of each recurrence is one BLAS call (the recurrent product, as in the NumPy
engine) and one kernel call that does everything else of that step: the gates, the
state update, and in the backward pass all their derivatives. Layouts, arguments and
results are those of engines/numpy_engine.py, whose docstrings give the equations;
tests/test_engines.py holds the two engines to each other.

The kernels are compiled the first time they run and cached on disk by numba: in a
``__pycache__`` beside this package when it is writable, else in numba's user-wide
cache directory ($NUMBA_CACHE_DIR, or ~/.cache/numba). ``warm_up`` compiles (or
loads) the float32 kernels of a cell ahead of their first real use.
"""

from __future__ import annotations

import time

import numpy as np

from charrnn.engines import numba_kernels as k
from charrnn.engines.base import CellOps, Engine
from charrnn.engines.numpy_engine import recurrent_weights

# ----------------------------------------------------------------------------- rnn


def rnn_forward(Zx, Wh, extra, state, train=True):
    (h0,) = state
    T, H, B = Zx.shape
    WhT = np.ascontiguousarray(Wh.T)
    hs = np.empty((T + 1, H, B), dtype=Zx.dtype)
    hs[0] = h0
    hW = np.empty((H, B), dtype=Zx.dtype)
    for t in range(T):
        np.matmul(WhT, hs[t], out=hW)  # (H,H)@(H,B)
        k.rnn_forward_step(Zx, hW, hs, t)
    return hs, (hs,) if train else None, (hs[T].copy(),)


def rnn_backward(dHs, cache, Wh):
    (hs,) = cache
    T, H, B = dHs.shape
    dh_next = np.zeros((H, B), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        k.rnn_backward_step(dHs, dh_next, hs, t)  # dHs[t] becomes da_t
        np.matmul(Wh, dHs[t], out=dh_next)  # (H,H)@(H,B)
    return dHs, dHs, {}


def rnn_step(a, hW, extra, state, tmp):
    k.rnn_gen_step(a, state[0])


# ---------------------------------------------------------------------------- lstm


def lstm_forward(Zx, Wh, extra, state, train=True):
    h0, c0 = state
    T, G, B = Zx.shape
    H = G // 4
    WhT = recurrent_weights(Wh, 3 * H)
    hs = np.empty((T + 1, H, B), dtype=Zx.dtype)
    cs = np.empty((T + 1, H, B), dtype=Zx.dtype)
    hs[0], cs[0] = h0, c0
    hW = np.empty((G, B), dtype=Zx.dtype)
    for t in range(T):
        np.matmul(WhT, hs[t], out=hW)  # (4H,H)@(H,B)
        k.lstm_forward_step(Zx, hW, cs, hs, t)
    return hs, (hs, cs, Zx) if train else None, (hs[T].copy(), cs[T].copy())


def lstm_backward(dHs, cache, Wh):
    hs, cs, acts = cache
    T, H, B = dHs.shape
    dh_next = np.zeros((H, B), dtype=dHs.dtype)
    dc = np.zeros((H, B), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        k.lstm_backward_step(dHs, dh_next, dc, acts, cs, t)  # acts[t] becomes da_t
        np.matmul(Wh, acts[t], out=dh_next)  # (H,4H)@(4H,B)
    return acts, acts, {}


def lstm_step(a, hW, extra, state, tmp):
    h, c = state
    k.lstm_gen_step(a, h, c)


# ----------------------------------------------------------------------------- gru


def gru_forward(Zx, Wh, extra, state, train=True):
    (h0,) = state
    T, G, B = Zx.shape
    H = G // 3
    WhT = recurrent_weights(Wh, 2 * H)
    hs = np.empty((T + 1, H, B), dtype=Zx.dtype)
    hs[0] = h0
    us = np.empty((T, H, B), dtype=Zx.dtype)
    hW = np.empty((G, B), dtype=Zx.dtype)
    bhn = np.ascontiguousarray(extra["bhn"], dtype=Zx.dtype)
    for t in range(T):
        np.matmul(WhT, hs[t], out=hW)  # (3H,H)@(H,B)
        k.gru_forward_step(Zx, hW, bhn, hs, us, t)
    return hs, (hs, us, Zx) if train else None, (hs[T].copy(),)


def gru_backward(dHs, cache, Wh):
    hs, us, acts = cache
    T, H, B = dHs.shape
    dR = np.empty((T, 3 * H, B), dtype=dHs.dtype)
    mm = np.zeros((H, B), dtype=dHs.dtype)
    carry = np.zeros((H, B), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        k.gru_backward_step(dHs, mm, carry, acts, hs, us, dR, t)  # acts[t] becomes dZx[t]
        np.matmul(Wh, dR[t], out=mm)  # (H,3H)@(3H,B)
    return acts, dR, {"bhn": dR[:, 2 * H :].sum(axis=(0, 2))}


def gru_step(a, hW, extra, state, tmp):
    k.gru_gen_step(a, hW, extra["bhn"], state[0])


# --------------------------------------------------------------- all-steps work


def embed(tableT, X_ids):
    """The first layer's Zx (T,G,B): column X_ids[t,b] of tableT (G,V) per position.
    The ids are widened to intp first (T*B of them: nothing beside the (T,G,B) output),
    so that one compiled kernel serves every id type a vocabulary has (data.id_dtype)."""
    T, B = X_ids.shape
    Z = np.empty((T, tableT.shape[0], B), dtype=tableT.dtype)
    k.embed(tableT, X_ids.astype(np.intp, copy=False), Z)
    return Z


# ------------------------------------------------------------------ one stream

CELL_CODES = {"rnn": 0, "lstm": 1, "gru": 2}  # numba_kernels.stream_step's ``cell``


class Stream:
    """One stream's generation compiled: every layer, the output layer and the draw of
    each character (numba_kernels.stream_step), a block of characters per call, from
    the weights a Stepper laid out (stepper.py). Each draw is what sampling._Picker.one
    would draw from the Stepper's logits, to float32 rounding."""

    def __init__(self, stepper):
        cfg = stepper.cfg
        H, L, G = cfg.hidden_size, cfg.n_layers, cfg.gates
        dtype = stepper.table.dtype
        self.cell = CELL_CODES[cfg.cell]
        self.rows = stepper.rows if stepper.rows is not None else np.ascontiguousarray(stepper.table.T)  # (V,G)
        if cfg.spec.adds_recurrent:  # the Stepper stacks [Wx; Wh]^T above layer 0: split it again
            Wx = [stepper.WT[k][:, :H] for k in range(1, L)]
            Wh = [stepper.WhT[0]] + [stepper.WT[k][:, H:] for k in range(1, L)]
        else:
            Wx, Wh = stepper.WxT[1:], stepper.WhT
        self.Wx = np.ascontiguousarray(np.stack(Wx)) if Wx else np.zeros((0, G, H), dtype=dtype)  # (L-1,G,H)
        self.Wh = np.ascontiguousarray(np.stack(Wh))  # (L,G,H)
        self.b = np.stack([b[:, 0] for b in stepper.b[1:]]) if L > 1 else np.zeros((0, G), dtype=dtype)
        self.bhn = np.zeros((L, H), dtype=dtype)
        if "bhn" in cfg.spec.extra:
            self.bhn[...] = [e["bhn"][:, 0] for e in stepper.extra]
        self.Wy = np.ascontiguousarray(stepper.WyT[:, :H])  # (V,H), temperature folded in
        self.by = np.ascontiguousarray(stepper.WyT[:, H])
        self.h = np.stack([s[0][:, 0] for s in stepper.state])  # (L,H)
        self.h_next = np.empty_like(self.h)
        self.c = np.stack([s[1][:, 0] for s in stepper.state]) if len(cfg.spec.state) > 1 else np.zeros_like(self.h)
        self.logits = np.empty(self.Wy.shape[0], dtype=dtype)

    def run(self, x: int, noise, top_k: int, top_p: float, greedy: bool, stop, recent, out) -> int:
        """Draw up to len(out) characters after ``x`` (numba_kernels.stream_run): noise
        (len(out),V) float64 gives each draw's Gumbel noise; ``stop`` and ``recent``
        (int64 ids) end the run after the stop text. Returns how many were drawn."""
        # the scalars as the types warm_up compiled for: an int top_p would compile anew
        return int(
            k.stream_run(
                self.cell, self.rows, self.Wx, self.Wh, self.b, self.bhn, self.Wy, self.by,
                self.h, self.h_next, self.c, int(x), self.logits, noise, int(top_k), float(top_p), bool(greedy),
                stop, recent, out,
            )
        )  # fmt: skip


# ------------------------------------------------------------------ compiling


def warm_up(cells=("rnn", "lstm", "gru"), dtype=np.float32, stream: bool = True) -> float:
    """Run every kernel of ``cells`` once on a tiny input, so that numba compiles them
    (or loads them from its cache) now rather than inside a timed step; with
    ``stream``, the one-stream generation step too. Returns the seconds it took."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    H, T, B = 2, 2, 2
    for name in cells:
        spec = ENGINE.cells[name]
        G = {"rnn": 1, "lstm": 4, "gru": 3}[name] * H
        Wh = rng.standard_normal((H, G)).astype(dtype)
        extra = {"bhn": np.zeros(H, dtype=dtype)} if name == "gru" else {}
        state = tuple(np.zeros((H, B), dtype=dtype) for _ in range(2 if name == "lstm" else 1))
        hs, cache, _ = spec.forward(rng.standard_normal((T, G, B)).astype(dtype), Wh, extra, state, True)
        spec.backward(np.ones((T, H, B), dtype=dtype), cache, Wh)
        gen_extra = {"bhn": np.zeros((H, 1), dtype=dtype)} if name == "gru" else {}
        gen_state = tuple(np.zeros((H, 1), dtype=dtype) for _ in state)
        spec.step(np.zeros((G, 1), dtype=dtype), np.zeros((G, 1), dtype=dtype), gen_extra, gen_state, None)
    embed(np.zeros((2 * H, 3), dtype=dtype), np.zeros((T, B), dtype=np.uint8))  # any id type: embed widens it
    if stream:
        L, V, H = 2, 3, 2
        for code in {CELL_CODES[name] for name in cells}:
            G = (1, 4, 3)[code] * H
            h, c = np.zeros((L, H), dtype=dtype), np.zeros((L, H), dtype=dtype)
            z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
            ids = np.zeros(1, dtype=np.int64)
            weights = (z(V, G), z(L - 1, G, H), z(L, G, H), z(L - 1, G), z(L, H), z(V, H), z(V))
            noise = np.zeros((1, V))
            k.stream_run(code, *weights, h, h.copy(), c, 1, z(V), noise, 0, 0.9, False, ids, ids.copy(), ids.copy())
    for shape in ((H,), (H, H)):  # Adam's update, on vectors and matrices
        p, g, m, v = (np.zeros(shape, dtype=dtype) for _ in range(4))
        k.adam_update(p, g, m, v, 0.9, 0.999, 1e-3, 1.0, 1e-8)
    return time.perf_counter() - t0


ENGINE = Engine(
    name="numba",
    cells={
        "rnn": CellOps(rnn_forward, rnn_backward, rnn_step),
        "lstm": CellOps(lstm_forward, lstm_backward, lstm_step),
        "gru": CellOps(gru_forward, gru_backward, gru_step),
    },
    warm_up=warm_up,
    stream=Stream,
    embed=embed,
    adam=k.adam_update,
)
