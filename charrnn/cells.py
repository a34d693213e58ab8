"""The recurrences of the three cells, forward and backward over a whole chunk.

Only the part that truly depends on the previous step lives here. The caller has
already computed the input pre-activations of every step at once (a one-hot product
for the first layer, one batched product above), and computes the input-weight
gradients afterwards; so each function below takes ``Zx`` and returns ``dZx``.

Letters: T steps, B streams, H hidden units, G fused gate width (H, 4H or 3H),
N = T*B. Arrays are time-major and feature-major: ``Zx[t]`` is one contiguous (G, B)
block whose columns are the streams, and the states are (H, B). Every per-step
product is then W^T (G,H) @ h (H,B), which OpenBLAS runs 1.4-1.8x faster than the
batch-major (B,H) @ (H,G) at B = 32 (one thread, LSTM 256: 88 against 156 us in one
measurement, 184 against 129 GFLOP/s in benchmarks/gemm_rate.py's lstm_h256_step_b32
rows), and each gate is a contiguous block of rows.

Equations (``*`` is elementwise, ``σ`` the logistic sigmoid, ``Zx[t] = Wx^T x_t + b``)::

    rnn:   h_t = tanh(Zx[t] + Wh^T h_{t-1})

    lstm:  [i, f, o, g] = [σ, σ, σ, tanh](Zx[t] + Wh^T h_{t-1})      (gate order i,f,o,g)
           c_t = f * c_{t-1} + i * g
           h_t = o * tanh(c_t)

    gru:   [r, z] = σ(Zx_rz[t] + Wh_rz^T h_{t-1})                     (gate order r,z,n)
           n      = tanh(Zx_n[t] + r * (Wh_n^T h_{t-1} + bhn))
           h_t    = (1 - z) * n + z * h_{t-1}

How the per-step work is kept small (each NumPy call on an (H,B) block costs a few
microseconds however little it computes, so the number of calls per step matters):

- σ(x) = 0.5 * tanh(x / 2) + 0.5. The sigmoid gates' rows of Zx (through the
  caller's input weights, see ``gate_scale``) and of Wh^T are halved, so one tanh
  call covers all gates of a step, sigmoid and tanh alike.
- The backward loop computes local derivatives from the cached activations step by
  step, while they are in cache. (Precomputing them for all T steps at once in large
  arrays was tried: it made the forward pass 60% slower than it saved backward,
  because large elementwise passes run at memory speed, per-step ones at cache speed.)
- The backward functions return the gradients w.r.t. the pre-activations as (T,G,B)
  arrays (the RNN's and LSTM's written over arrays they no longer need), and leave
  the weight gradients, which need the steps as columns of one matrix, to the
  caller (model._step_outer).
- ``train=False`` (validation, sampling) keeps no cache for the backward pass.
- Everything works in place on buffers allocated once per chunk.
"""

from __future__ import annotations

import numpy as np


def gate_scale(cell: str, H: int, dtype) -> np.ndarray | None:
    """(G,) factors the caller applies to its input weights and bias so that Zx arrives
    with the σ-gate rows halved (None: nothing to halve). Scaling the (H,G) weights
    costs far less than a pass over the (T,G,B) pre-activations."""
    n_sig = {"rnn": 0, "lstm": 3 * H, "gru": 2 * H}[cell]
    if not n_sig:
        return None
    scale = np.ones({"lstm": 4, "gru": 3}[cell] * H, dtype=dtype)
    scale[:n_sig] = 0.5
    return scale


def rows(A: np.ndarray) -> np.ndarray:
    """(T,F,B) -> (F, T*B): one row per feature, for the all-steps GEMMs. A copy: the
    B-long runs stay contiguous, so it moves at about memory speed."""
    T, F, B = A.shape
    return np.ascontiguousarray(A.transpose(1, 0, 2)).reshape(F, T * B)


def _recurrent_weights(Wh: np.ndarray, n_sig: int) -> np.ndarray:
    """Wh^T (G,H), contiguous, with the first n_sig rows (the σ gates) halved."""
    WhT = np.ascontiguousarray(Wh.T)
    WhT[:n_sig] *= 0.5
    return WhT


def _tanh_to_sigmoid_(u: np.ndarray) -> np.ndarray:
    """tanh(x/2) -> σ(x), in place."""
    u *= 0.5
    u += 0.5
    return u


def lstm_step(a, c_prev, c, h, tmp):
    """The LSTM's elementwise step, shared by training (cells) and generation (stepper).

    a (4H,K) holds Zx[t] + Wh^T h_{t-1}, σ rows halved, and becomes the gates [i,f,o,g].
    Writes c_t into ``c`` and h_t into ``h``; ``c`` may be ``c_prev`` (generation keeps
    one state buffer). tmp is (H,K) scratch."""
    H = a.shape[0] // 4
    np.tanh(a, out=a)
    _tanh_to_sigmoid_(a[: 3 * H])
    i, f, o, g = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
    np.multiply(f, c_prev, out=c)
    c += np.multiply(i, g, out=tmp)
    np.tanh(c, out=h)
    h *= o


def gru_step(a, hW, bhn, h_prev, h, hWn, tmp):
    """The GRU's elementwise step, shared by training (cells) and generation (stepper).

    a (3H,K) holds Zx[t] (σ rows halved) and becomes [r, z, n]; hW (3H,K) is
    Wh^T h_{t-1} (σ rows halved). Writes Wh_n^T h_{t-1} + bhn into ``hWn`` (which may be
    hW's n rows) and h_t into ``h`` (which may be ``h_prev``). bhn is (H,1), tmp (H,K)."""
    H = a.shape[0] // 3
    rz = a[: 2 * H]
    rz += hW[: 2 * H]
    np.tanh(rz, out=rz)
    _tanh_to_sigmoid_(rz)
    r, z, n = a[:H], a[H:2 * H], a[2 * H:]
    np.add(hW[2 * H:], bhn, out=hWn)
    n += np.multiply(r, hWn, out=tmp)
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=h)  # h = n + z * (h_prev - n)
    h *= z
    h += n


# ----------------------------------------------------------------------------- rnn

def rnn_forward(Zx, Wh, state, train=True):
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
    """dHs (T,H,B) is the loss gradient w.r.t. each h_t from above; it is overwritten.

    Returns (dZx, dR, extra): dZx (T,G,B) w.r.t. the input pre-activations, dR the
    gradient w.r.t. Wh^T h_{t-1} (the same array, but for the GRU), from which the
    caller forms dWh = sum_t h_{t-1} dR_t^T, and the gradients of any other cell
    parameters (the GRU's bhn)."""
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


# ---------------------------------------------------------------------------- lstm

def lstm_forward(Zx, Wh, state, train=True):
    """Zx (T,4H,B), σ-gate rows halved (see gate_scale), is overwritten with the gate
    activations [i,f,o,g]."""
    h0, c0 = state
    T, G, B = Zx.shape
    H = G // 4
    WhT = _recurrent_weights(Wh, 3 * H)
    hs = np.empty((T + 1, H, B), dtype=Zx.dtype)
    cs = np.empty((T + 1, H, B), dtype=Zx.dtype)
    hs[0], cs[0] = h0, c0
    hW = np.empty((G, B), dtype=Zx.dtype)
    ig = np.empty((H, B), dtype=Zx.dtype)
    for t in range(T):
        a = Zx[t]
        a += np.matmul(WhT, hs[t], out=hW)  # (4H,H)@(H,B) -> (4H,B)
        lstm_step(a, cs[t], cs[t + 1], hs[t + 1], ig)
    return hs, (hs, cs, Zx) if train else None, (hs[T].copy(), cs[T].copy())  # copies: cs can go


def lstm_backward(dHs, cache, Wh):
    """Returns (dZx, dZx, {}) as rnn_backward does, dZx (T,4H,B) written over the
    cached activations. tanh(c) is recomputed rather than cached: one (H,B) tanh a
    step costs less than keeping a (T,H,B) array alive between the passes."""
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
        i, f, o, g = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
        d = dA[t]
        di, df, do, dg = d[:H], d[H:2 * H], d[2 * H:3 * H], d[3 * H:]
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


# ----------------------------------------------------------------------------- gru

def gru_forward(Zx, Wh, bhn, state, train=True):
    """Zx (T,3H,B), σ-gate rows halved (see gate_scale), is overwritten: [r, z]
    activations in the first 2H rows, n in the last H."""
    (h0,) = state
    T, G, B = Zx.shape
    H = G // 3
    WhT = _recurrent_weights(Wh, 2 * H)
    bhn = bhn[:, None]
    hs = np.empty((T + 1, H, B), dtype=Zx.dtype)
    hWn = np.empty((T, H, B), dtype=Zx.dtype)  # Wh_n^T h_{t-1} + bhn, needed for dr
    hs[0] = h0
    hW = np.empty((G, B), dtype=Zx.dtype)
    rh = np.empty((H, B), dtype=Zx.dtype)
    for t in range(T):
        np.matmul(WhT, hs[t], out=hW)  # (3H,H)@(H,B) -> (3H,B)
        gru_step(Zx[t], hW, bhn, hs[t], hs[t + 1], hWn[t], rh)
    return hs, (hs, hWn, Zx) if train else None, (hs[T].copy(),)


def gru_backward(dHs, cache, Wh):
    """Returns (dZx, dhW, {"bhn": dbhn}) (see rnn_backward); dhW (T,3H,B) differs
    from dZx in its n rows, which pass through r."""
    hs, hWn, acts = cache
    T, H, B = dHs.shape
    G = 3 * H
    dZx = np.empty((T, G, B), dtype=dHs.dtype)
    dhW = np.empty((T, G, B), dtype=dHs.dtype)  # gradient w.r.t. Wh^T h_{t-1} (+ bhn)
    dh_next = np.zeros((H, B), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        a = acts[t]
        r, z, n = a[:H], a[H:2 * H], a[2 * H:]
        dh = dHs[t]
        dh += dh_next
        dan = dZx[t, 2 * H:]
        np.multiply(dh, 1.0 - z, out=dan)  # backprop through h = (1-z) n + z h_prev
        dan *= 1.0 - n * n  # backprop through n = tanh(...)
        np.multiply(dan, r, out=dhW[t, 2 * H:])  # through r * (Wh_n^T h_prev + bhn)
        dar = dZx[t, :H]
        np.multiply(dan, hWn[t], out=dar)
        dar *= r * (1.0 - r)  # backprop through σ
        daz = dZx[t, H:2 * H]
        np.subtract(hs[t], n, out=daz)
        daz *= dh
        daz *= z * (1.0 - z)
        dhW[t, : 2 * H] = dZx[t, : 2 * H]
        np.matmul(Wh, dhW[t], out=dh_next)  # (H,3H)@(3H,B)
        dh_next += dh * z
    return dZx, dhW, {"bhn": dhW[:, 2 * H:].sum(axis=(0, 2))}
