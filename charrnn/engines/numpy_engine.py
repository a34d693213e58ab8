"""The NumPy engine: the three cells' recurrences in plain NumPy calls. The reference
every other engine is tested against, and the engine wherever numba is missing.

Only the part that truly depends on the previous step lives here. The caller has
already computed the input pre-activations of every step at once (a one-hot product
for the first layer, one batched product above), and computes the weight gradients
afterwards; so each forward takes ``Zx`` and each backward returns ``dZx``.

Letters: T steps, B streams, H hidden units, G fused gate width (H, 4H or 3H),
vectors are columns. Arrays are time-major and feature-major: ``Zx[t]`` is one
contiguous (G, B) block whose columns are the streams, and the states are (H, B).
Every per-step product is then W^T (G,H) @ h (H,B), which OpenBLAS runs faster than
the batch-major (B,H) @ (H,G) at a shard's few dozen streams (benchmarks/gemm_rate.py
measures both), and each gate is a contiguous block of rows.

Forward (``*`` is elementwise, ``σ`` the logistic sigmoid, ``Zx[t] = Wx^T x_t + b``)::

    rnn:   h_t = tanh(a_t),  a_t = Zx[t] + Wh^T h_{t-1}

    lstm:  [i, f, o, g] = [σ, σ, σ, tanh](a_t),  a_t = Zx[t] + Wh^T h_{t-1}   (gate order i,f,o,g)
           c_t = f * c_{t-1} + i * g
           h_t = o * tanh(c_t)

    gru:   [r, z] = σ(Zx_rz[t] + Wh_rz^T h_{t-1})                            (gate order r,z,n)
           u_t    = Wh_n^T h_{t-1} + bhn
           n      = tanh(Zx_n[t] + r * u_t)
           h_t    = (1 - z) * n + z * h_{t-1}

Backward: ``dH[t]`` is the loss gradient w.r.t. h_t from above (the output layer or
the next layer up); the recurrence adds what flows back from step t+1. Each backward
returns dZx (T,G,B) and dR (T,G,B), the gradient w.r.t. Wh^T h_{t-1} (+ bhn), from
which the caller forms dWh = Σ_t h_{t-1} dR_t^T; for the RNN and LSTM the two are the
same array. The equations are in each backward's docstring.

How the per-step work is kept small (each NumPy call on an (H,B) block costs a few
microseconds however little it computes, so the number of calls per step matters):

- σ(x) = 0.5 * tanh(x / 2) + 0.5. The σ-gate rows of Zx (through the caller's input
  weights, see cells.gate_scale) and of Wh^T are halved, so one tanh call covers all
  gates of a step, sigmoid and tanh alike.
- The backward loop computes local derivatives from the cached activations step by
  step, while they are in cache; precomputing them for all T steps in large arrays
  was slower, because large elementwise passes run at memory speed.
- The RNN's and LSTM's backward write dZx over arrays they no longer need.
- ``train=False`` (validation, sampling) keeps no cache for the backward pass.
- Everything works in place on buffers allocated once per chunk.
"""

from __future__ import annotations

import numpy as np

from charrnn.engines.base import CellOps, Engine


def recurrent_weights(Wh: np.ndarray, n_sig: int) -> np.ndarray:
    """Wh^T (G,H), contiguous, with the first n_sig rows (the σ gates) halved."""
    WhT = np.ascontiguousarray(Wh.T)
    WhT[:n_sig] *= 0.5
    return WhT


def _tanh_to_sigmoid_(u: np.ndarray) -> np.ndarray:
    """tanh(x/2) -> σ(x), in place."""
    u *= 0.5
    u += 0.5
    return u


def _lstm_elementwise(a, c_prev, c, h, tmp):
    """The LSTM's elementwise step, shared by training and generation.

    a (4H,K) holds a_t (σ rows halved) and becomes the gates [i,f,o,g]. Writes c_t into
    ``c`` and h_t into ``h``; ``c`` may be ``c_prev`` (generation keeps one state
    buffer). tmp is (H,K) scratch."""
    H = a.shape[0] // 4
    np.tanh(a, out=a)
    _tanh_to_sigmoid_(a[: 3 * H])
    i, f, o, g = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
    np.multiply(f, c_prev, out=c)
    c += np.multiply(i, g, out=tmp)
    np.tanh(c, out=h)
    h *= o


def _gru_elementwise(a, hW, bhn, h_prev, h, u, tmp):
    """The GRU's elementwise step, shared by training and generation.

    a (3H,K) holds Zx[t] (σ rows halved) and becomes [r, z, n]; hW (3H,K) is
    Wh^T h_{t-1} (σ rows halved). Writes u_t = Wh_n^T h_{t-1} + bhn into ``u`` (which
    may be hW's n rows) and h_t into ``h`` (which may be ``h_prev``). bhn is (H,1),
    tmp (H,K)."""
    H = a.shape[0] // 3
    rz = a[: 2 * H]
    rz += hW[: 2 * H]
    np.tanh(rz, out=rz)
    _tanh_to_sigmoid_(rz)
    r, z, n = a[:H], a[H : 2 * H], a[2 * H :]
    np.add(hW[2 * H :], bhn, out=u)
    n += np.multiply(r, u, out=tmp)
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=h)  # h = n + z * (h_prev - n)
    h *= z
    h += n


# ----------------------------------------------------------------------------- rnn


def rnn_forward(Zx, Wh, extra, state, train=True):
    """Zx (T,H,B). Returns hs (T+1,H,B) with hs[0] = h0, the backward cache, final state."""
    (h0,) = state
    T, H, B = Zx.shape
    WhT = np.ascontiguousarray(Wh.T)
    hs = np.empty((T + 1, H, B), dtype=Zx.dtype)
    hs[0] = h0
    for t in range(T):
        a = np.matmul(WhT, hs[t], out=hs[t + 1])  # (H,H)@(H,B) -> (H,B)
        a += Zx[t]
        np.tanh(a, out=a)
    return hs, (hs,) if train else None, (hs[T].copy(),)


def rnn_backward(dHs, cache, Wh):
    """dHs (T,H,B) is dH; it is overwritten with dZx. Returns (dZx, dR, {})::

    dh_t = dH[t] + Wh da_{t+1}
    da_t = dh_t * (1 - h_t²)            dZx[t] = dR_t = da_t
    """
    (hs,) = cache
    T, H, B = dHs.shape
    dZx = dHs  # reuse: dHs[t] is read before dZx[t] is written
    dh_next = np.zeros((H, B), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        da = dZx[t]
        da += dh_next
        da *= 1.0 - hs[t + 1] * hs[t + 1]  # backprop through tanh
        np.matmul(Wh, da, out=dh_next)  # backprop through Wh^T h_{t-1}: (H,H)@(H,B)
    return dZx, dZx, {}


def rnn_step(a, hW, extra, state, tmp):
    """Generation: a (H,K) holds a_t; h_t goes into state[0]."""
    np.tanh(a, out=state[0])


# ---------------------------------------------------------------------------- lstm


def lstm_forward(Zx, Wh, extra, state, train=True):
    """Zx (T,4H,B), σ-gate rows halved (see cells.gate_scale), is overwritten with the gate
    activations [i,f,o,g]."""
    h0, c0 = state
    T, G, B = Zx.shape
    H = G // 4
    WhT = recurrent_weights(Wh, 3 * H)
    hs = np.empty((T + 1, H, B), dtype=Zx.dtype)
    cs = np.empty((T + 1, H, B), dtype=Zx.dtype)
    hs[0], cs[0] = h0, c0
    hW = np.empty((G, B), dtype=Zx.dtype)
    ig = np.empty((H, B), dtype=Zx.dtype)
    for t in range(T):
        a = Zx[t]
        a += np.matmul(WhT, hs[t], out=hW)  # (4H,H)@(H,B) -> (4H,B)
        _lstm_elementwise(a, cs[t], cs[t + 1], hs[t + 1], ig)
    return hs, (hs, cs, Zx) if train else None, (hs[T].copy(), cs[T].copy())  # copies: cs can go


def lstm_backward(dHs, cache, Wh):
    """Returns (dZx, dR, {}) with dR = dZx (T,4H,B), written over the cached gates::

        dh_t = dH[t] + Wh da_{t+1}
        do   = dh_t * tanh(c_t)
        dc_t = dc_{t+1} * f_{t+1} + dh_t * o * (1 - tanh²(c_t))
        di   = dc_t * g,   df = dc_t * c_{t-1},   dg = dc_t * i
        da_t = [di * i (1 - i), df * f (1 - f), do * o (1 - o), dg * (1 - g²)]

    tanh(c_t) is recomputed rather than cached: one (H,B) tanh a step costs less than
    keeping a (T,H,B) array alive between the passes."""
    hs, cs, acts = cache
    T, H, B = dHs.shape
    G = 4 * H
    dA = acts  # dA[t] is written only after acts[t] is copied to `a`
    dh_next = np.zeros((H, B), dtype=dHs.dtype)
    dc = np.zeros((H, B), dtype=dHs.dtype)
    tmp = np.empty((H, B), dtype=dHs.dtype)
    tc = np.empty((H, B), dtype=dHs.dtype)
    a = np.empty((G, B), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        np.copyto(a, acts[t])
        i, f, o, g = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
        d = dA[t]
        di, df, do, dg = d[:H], d[H : 2 * H], d[2 * H : 3 * H], d[3 * H :]
        dh = dHs[t]
        dh += dh_next
        np.tanh(cs[t + 1], out=tc)
        np.multiply(dh, tc, out=do)  # backprop through h = o * tanh(c)
        np.multiply(tc, tc, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp  # dc from above (dc_next * f) plus this step's h
        np.multiply(dc, g, out=di)  # backprop through c = f * c_prev + i * g
        np.multiply(dc, i, out=dg)
        np.multiply(dc, cs[t], out=df)
        dc *= f  # becomes dc_{t-1}
        # backprop through the gate nonlinearities: σ' = s(1-s), tanh' = 1-g²
        sig = a[: 3 * H]
        dsig = d[: 3 * H]
        dsig *= sig
        np.subtract(1.0, sig, out=sig)
        dsig *= sig
        np.multiply(g, g, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        dg *= tmp
        np.matmul(Wh, d, out=dh_next)  # backprop through Wh^T h_{t-1}: (H,4H)@(4H,B)
    return dA, dA, {}


def lstm_step(a, hW, extra, state, tmp):
    """Generation: a (4H,K) holds a_t; state (h, c) is updated in place."""
    h, c = state
    _lstm_elementwise(a, c, c, h, tmp)


# ----------------------------------------------------------------------------- gru


def gru_forward(Zx, Wh, extra, state, train=True):
    """Zx (T,3H,B), σ-gate rows halved (see cells.gate_scale), is overwritten: [r, z]
    activations in the first 2H rows, n in the last H."""
    (h0,) = state
    T, G, B = Zx.shape
    H = G // 3
    WhT = recurrent_weights(Wh, 2 * H)
    bhn = extra["bhn"][:, None]
    hs = np.empty((T + 1, H, B), dtype=Zx.dtype)
    us = np.empty((T, H, B), dtype=Zx.dtype)  # u_t = Wh_n^T h_{t-1} + bhn, needed for dr
    hs[0] = h0
    hW = np.empty((G, B), dtype=Zx.dtype)
    rh = np.empty((H, B), dtype=Zx.dtype)
    for t in range(T):
        np.matmul(WhT, hs[t], out=hW)  # (3H,H)@(H,B) -> (3H,B)
        _gru_elementwise(Zx[t], hW, bhn, hs[t], hs[t + 1], us[t], rh)
    return hs, (hs, us, Zx) if train else None, (hs[T].copy(),)


def gru_backward(dHs, cache, Wh):
    """Returns (dZx, dR, {"bhn": dbhn}); dR (T,3H,B) differs from dZx in its n rows::

    dh_t  = dH[t] + Wh dR_{t+1} + dh_{t+1} * z_{t+1}
    da_n  = dh_t * (1 - z) * (1 - n²)
    du    = da_n * r                               dbhn = Σ_t du (summed over streams)
    da_r  = da_n * u_t * r (1 - r)
    da_z  = dh_t * (h_{t-1} - n) * z (1 - z)
    dZx[t] = [da_r, da_z, da_n],   dR_t = [da_r, da_z, du]
    """
    hs, us, acts = cache
    T, H, B = dHs.shape
    G = 3 * H
    dZx = np.empty((T, G, B), dtype=dHs.dtype)
    dR = np.empty((T, G, B), dtype=dHs.dtype)
    dh_next = np.zeros((H, B), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        a = acts[t]
        r, z, n = a[:H], a[H : 2 * H], a[2 * H :]
        dh = dHs[t]
        dh += dh_next
        dan = dZx[t, 2 * H :]
        np.multiply(dh, 1.0 - z, out=dan)  # backprop through h = (1-z) n + z h_prev
        dan *= 1.0 - n * n  # backprop through n = tanh(...)
        np.multiply(dan, r, out=dR[t, 2 * H :])  # through r * u
        dar = dZx[t, :H]
        np.multiply(dan, us[t], out=dar)
        dar *= r * (1.0 - r)  # backprop through σ
        daz = dZx[t, H : 2 * H]
        np.subtract(hs[t], n, out=daz)
        daz *= dh
        daz *= z * (1.0 - z)
        dR[t, : 2 * H] = dZx[t, : 2 * H]
        np.matmul(Wh, dR[t], out=dh_next)  # (H,3H)@(3H,B)
        dh_next += dh * z
    return dZx, dR, {"bhn": dR[:, 2 * H :].sum(axis=(0, 2))}


def gru_step(a, hW, extra, state, tmp):
    """Generation: a (3H,K) holds Zx[t], hW (3H,K) Wh^T h_{t-1}; h_t goes into state[0].
    ``extra["bhn"]`` is (H,1) here."""
    H = a.shape[0] // 3
    h = state[0]
    _gru_elementwise(a, hW, extra["bhn"], h, h, hW[2 * H :], tmp)


ENGINE = Engine(
    name="numpy",
    cells={
        "rnn": CellOps(rnn_forward, rnn_backward, rnn_step),
        "lstm": CellOps(lstm_forward, lstm_backward, lstm_step),
        "gru": CellOps(gru_forward, gru_backward, gru_step),
    },
)
