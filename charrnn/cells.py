"""The recurrences of the three cells, forward and backward over a whole chunk.

Only the part that truly depends on the previous step lives here. The caller has
already computed the input pre-activations of every step in one GEMM (or, for the
first layer, one embedding gather), and computes the input-weight gradients in one
GEMM afterwards; so each function below takes ``Zx`` and returns ``dZx``.

Letters: T steps, B streams, H hidden units, G fused gate width (H, 4H or 3H).
All arrays are time-major: ``Zx[t]`` is one contiguous (B, G) block.

Equations (``*`` is elementwise, ``σ`` the logistic sigmoid, ``Zx[t] = x_t Wx + b``)::

    rnn:   h_t = tanh(Zx[t] + h_{t-1} Wh)

    lstm:  [i, f, o, g] = [σ, σ, σ, tanh](Zx[t] + h_{t-1} Wh)      (gate order i,f,o,g)
           c_t = f * c_{t-1} + i * g
           h_t = o * tanh(c_t)

    gru:   [r, z] = σ(Zx_rz[t] + h_{t-1} Wh_rz)                     (gate order r,z,n)
           n      = tanh(Zx_n[t] + r * (h_{t-1} Wh_n + bhn))
           h_t    = (1 - z) * n + z * h_{t-1}

How the per-step work is kept small (each NumPy call on a (B,H) block costs a few
microseconds however little it computes, so the number of calls per step matters):

- σ(x) = 0.5 * tanh(x / 2) + 0.5. The sigmoid gates' columns of Zx (through the
  caller's input weights, see ``gate_scale``) and of Wh are halved, so one tanh call
  covers all gates of a step, sigmoid and tanh alike.
- The backward loop computes local derivatives from the cached activations step by
  step, while they are in cache. (Precomputing them for all T steps at once in large
  arrays was tried: it made the forward pass 60% slower than it saved backward,
  because large elementwise passes run at memory speed, per-step ones at cache speed.)
- ``train=False`` (validation, sampling) keeps no cache for the backward pass.
- Everything works in place on buffers allocated once per chunk.
"""

from __future__ import annotations

import numpy as np


def gate_scale(cell: str, H: int, dtype) -> np.ndarray | None:
    """(G,) factors the caller applies to its input weights and bias so that Zx arrives
    with the σ-gate columns halved (None: nothing to halve). Scaling the (H,G) weights
    costs far less than a strided pass over the (T,B,G) pre-activations."""
    n_sig = {"rnn": 0, "lstm": 3 * H, "gru": 2 * H}[cell]
    if not n_sig:
        return None
    scale = np.ones({"lstm": 4, "gru": 3}[cell] * H, dtype=dtype)
    scale[:n_sig] = 0.5
    return scale


def _half_sigmoid_columns(Wh: np.ndarray, n_sig: int):
    """A copy of Wh with the first n_sig columns (the σ gates) halved."""
    Wh_half = Wh.copy()
    Wh_half[:, :n_sig] *= 0.5
    return Wh_half


def _tanh_to_sigmoid_(u: np.ndarray) -> np.ndarray:
    """tanh(x/2) -> σ(x), in place."""
    u *= 0.5
    u += 0.5
    return u


# ----------------------------------------------------------------------------- rnn

def rnn_forward(Zx, Wh, state, train=True):
    """Zx (T,B,H). Returns hs (T+1,B,H) with hs[0] = h0, the backward cache, final state."""
    (h0,) = state
    T, B, H = Zx.shape
    hs = np.empty((T + 1, B, H), dtype=Zx.dtype)
    hs[0] = h0
    for t in range(T):
        a = np.matmul(hs[t], Wh, out=hs[t + 1])  # (B,H)@(H,H) -> (B,H)
        a += Zx[t]
        np.tanh(a, out=a)
    return hs, (hs,) if train else None, (hs[T].copy(),)


def rnn_backward(dHs, cache, Wh):
    """dHs (T,B,H) is the loss gradient w.r.t. each h_t from above; it is overwritten.
    Returns dZx (T,B,H), {"Wh": dWh}."""
    (hs,) = cache
    T, B, H = dHs.shape
    dZx = dHs  # reuse: dHs[t] is read before dZx[t] is written
    WhT = np.ascontiguousarray(Wh.T)
    dh_next = np.zeros((B, H), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        da = dZx[t]
        da += dh_next
        da *= 1.0 - hs[t + 1] * hs[t + 1]  # backprop through tanh
        np.matmul(da, WhT, out=dh_next)  # backprop through h_{t-1} Wh
    dWh = hs[:T].reshape(T * B, H).T @ dZx.reshape(T * B, H)  # all steps in one GEMM
    return dZx, {"Wh": dWh}


# ---------------------------------------------------------------------------- lstm

def lstm_forward(Zx, Wh, state, train=True):
    """Zx (T,B,4H), σ-gate columns halved (see gate_scale), is overwritten with the
    gate activations [i,f,o,g]."""
    h0, c0 = state
    T, B, G = Zx.shape
    H = G // 4
    Wh_half = _half_sigmoid_columns(Wh, 3 * H)
    hs = np.empty((T + 1, B, H), dtype=Zx.dtype)
    cs = np.empty((T + 1, B, H), dtype=Zx.dtype)
    hs[0], cs[0] = h0, c0
    hW = np.empty((B, G), dtype=Zx.dtype)
    ig = np.empty((B, H), dtype=Zx.dtype)
    tc = np.empty((B, H), dtype=Zx.dtype)
    for t in range(T):
        a = Zx[t]
        a += np.matmul(hs[t], Wh_half, out=hW)  # (B,H)@(H,4H) -> (B,4H)
        np.tanh(a, out=a)
        _tanh_to_sigmoid_(a[:, : 3 * H])
        i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c = cs[t + 1]
        np.multiply(f, cs[t], out=c)
        c += np.multiply(i, g, out=ig)
        np.tanh(c, out=tc)
        np.multiply(o, tc, out=hs[t + 1])
    return hs, (hs, cs, Zx) if train else None, (hs[T].copy(), cs[T].copy())


def lstm_backward(dHs, cache, Wh):
    """Returns dZx (T,B,4H), written over the cached activations, and {"Wh": dWh}.
    tanh(c) is recomputed rather than cached: one (B,H) tanh a step costs less than
    keeping a (T,B,H) array alive between the passes."""
    hs, cs, acts = cache
    T, B, H = dHs.shape
    G = 4 * H
    dA = acts  # dA[t] is written only after acts[t] is copied to `a`
    WhT = np.ascontiguousarray(Wh.T)
    dh_next = np.zeros((B, H), dtype=dHs.dtype)
    dc = np.zeros((B, H), dtype=dHs.dtype)
    tmp = np.empty((B, H), dtype=dHs.dtype)
    tc = np.empty((B, H), dtype=dHs.dtype)
    a = np.empty((B, G), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        np.copyto(a, acts[t])
        i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        di, df, do, dg = dA[t, :, :H], dA[t, :, H:2 * H], dA[t, :, 2 * H:3 * H], dA[t, :, 3 * H:]
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
        sig = a[:, : 3 * H]
        dsig = dA[t, :, : 3 * H]
        dsig *= sig
        dsig *= 1.0 - sig
        dg *= 1.0 - g * g
        np.matmul(dA[t], WhT, out=dh_next)  # backprop through h_{t-1} Wh
    dWh = hs[:T].reshape(T * B, H).T @ dA.reshape(T * B, G)
    return dA, {"Wh": dWh}


# ----------------------------------------------------------------------------- gru

def gru_forward(Zx, Wh, bhn, state, train=True):
    """Zx (T,B,3H), σ-gate columns halved (see gate_scale), is overwritten: [r, z]
    activations in the first 2H, n in the last H."""
    (h0,) = state
    T, B, G = Zx.shape
    H = G // 3
    Wh_half = _half_sigmoid_columns(Wh, 2 * H)
    hs = np.empty((T + 1, B, H), dtype=Zx.dtype)
    hWn = np.empty((T, B, H), dtype=Zx.dtype)  # h_{t-1} Wh_n + bhn, needed for dr
    hs[0] = h0
    hW = np.empty((B, G), dtype=Zx.dtype)
    rh = np.empty((B, H), dtype=Zx.dtype)
    for t in range(T):
        a = Zx[t]
        np.matmul(hs[t], Wh_half, out=hW)  # (B,H)@(H,3H) -> (B,3H)
        rz = a[:, : 2 * H]
        rz += hW[:, : 2 * H]
        np.tanh(rz, out=rz)
        _tanh_to_sigmoid_(rz)
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        np.add(hW[:, 2 * H:], bhn, out=hWn[t])
        n += np.multiply(r, hWn[t], out=rh)
        np.tanh(n, out=n)
        h = hs[t + 1]
        np.subtract(hs[t], n, out=h)  # h = n + z * (h_prev - n)
        h *= z
        h += n
    return hs, (hs, hWn, Zx) if train else None, (hs[T].copy(),)


def gru_backward(dHs, cache, Wh):
    hs, hWn, acts = cache
    T, B, H = dHs.shape
    G = 3 * H
    dZx = np.empty((T, B, G), dtype=dHs.dtype)
    dhW = np.empty((T, B, G), dtype=dHs.dtype)  # gradient w.r.t. h_{t-1} Wh (+ bhn)
    WhT = np.ascontiguousarray(Wh.T)
    dh_next = np.zeros((B, H), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        a = acts[t]
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        dh = dHs[t]
        dh += dh_next
        dan = dZx[t, :, 2 * H:]
        np.multiply(dh, 1.0 - z, out=dan)  # backprop through h = (1-z) n + z h_prev
        dan *= 1.0 - n * n  # backprop through n = tanh(...)
        np.multiply(dan, r, out=dhW[t, :, 2 * H:])  # through r * (h_prev Wh_n + bhn)
        dar = dZx[t, :, :H]
        np.multiply(dan, hWn[t], out=dar)
        dar *= r * (1.0 - r)  # backprop through σ
        daz = dZx[t, :, H:2 * H]
        np.subtract(hs[t], n, out=daz)
        daz *= dh
        daz *= z * (1.0 - z)
        dhW[t, :, : 2 * H] = dZx[t, :, : 2 * H]
        np.matmul(dhW[t], WhT, out=dh_next)
        dh_next += dh * z
    dWh = hs[:T].reshape(T * B, H).T @ dhW.reshape(T * B, G)
    dbhn = dhW[:, :, 2 * H:].sum(axis=(0, 1))
    return dZx, {"Wh": dWh, "bhn": dbhn}
