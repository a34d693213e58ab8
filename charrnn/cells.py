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

The sigmoid is computed as 0.5 * tanh(0.5 x) + 0.5: one transcendental, no overflow
warnings for large |x|, and tanh is the fastest of NumPy's transcendental ufuncs.
Every function works in place on buffers it owns, so a step allocates nothing.
"""

from __future__ import annotations

import numpy as np


def _sigmoid_(a: np.ndarray) -> np.ndarray:
    """σ(a) computed in place through tanh."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


# ----------------------------------------------------------------------------- rnn

def rnn_forward(Zx, Wh, state):
    """Zx (T,B,H) is overwritten. Returns hs (T+1,B,H) with hs[0] = h0, cache, final state."""
    (h0,) = state
    T, B, H = Zx.shape
    hs = np.empty((T + 1, B, H), dtype=Zx.dtype)
    hs[0] = h0
    for t in range(T):
        a = np.matmul(hs[t], Wh, out=hs[t + 1])  # (B,H)@(H,H) -> (B,H)
        a += Zx[t]
        np.tanh(a, out=a)
    return hs, (hs,), (hs[T].copy(),)


def rnn_backward(dHs, cache, Wh):
    """dHs (T,B,H) is the loss gradient w.r.t. each h_t from above; it is overwritten.
    Returns dZx (T,B,H), {"Wh": dWh}."""
    (hs,) = cache
    T, B, H = dHs.shape
    dZx = dHs  # reuse: dHs[t] is read before dZx[t] is written
    dh_next = np.zeros((B, H), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        da = dZx[t]
        da += dh_next
        da *= 1.0 - hs[t + 1] * hs[t + 1]  # backprop through tanh
        np.matmul(da, Wh.T, out=dh_next)  # backprop through h_{t-1} Wh
    dWh = hs[:T].reshape(T * B, H).T @ dZx.reshape(T * B, H)  # all steps in one GEMM
    return dZx, {"Wh": dWh}


# ---------------------------------------------------------------------------- lstm

def lstm_forward(Zx, Wh, state):
    """Zx (T,B,4H) is overwritten with the gate activations [i,f,o,g]."""
    h0, c0 = state
    T, B, G = Zx.shape
    H = G // 4
    hs = np.empty((T + 1, B, H), dtype=Zx.dtype)
    cs = np.empty((T + 1, B, H), dtype=Zx.dtype)
    tcs = np.empty((T, B, H), dtype=Zx.dtype)
    hs[0], cs[0] = h0, c0
    hW = np.empty((B, G), dtype=Zx.dtype)
    for t in range(T):
        a = Zx[t]
        a += np.matmul(hs[t], Wh, out=hW)  # (B,H)@(H,4H) -> (B,4H)
        _sigmoid_(a[:, : 3 * H])
        np.tanh(a[:, 3 * H:], out=a[:, 3 * H:])
        i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c = cs[t + 1]
        np.multiply(f, cs[t], out=c)
        c += i * g
        np.tanh(c, out=tcs[t])
        np.multiply(o, tcs[t], out=hs[t + 1])
    return hs, (hs, cs, tcs, Zx), (hs[T].copy(), cs[T].copy())


def lstm_backward(dHs, cache, Wh):
    hs, cs, tcs, acts = cache
    T, B, H = dHs.shape
    G = 4 * H
    dA = np.empty((T, B, G), dtype=dHs.dtype)
    dh_next = np.zeros((B, H), dtype=dHs.dtype)
    dc = np.zeros((B, H), dtype=dHs.dtype)
    tmp = np.empty((B, H), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        a = acts[t]
        i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        di, df, do, dg = dA[t, :, :H], dA[t, :, H:2 * H], dA[t, :, 2 * H:3 * H], dA[t, :, 3 * H:]
        dh = dHs[t]
        dh += dh_next
        tc = tcs[t]
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
        np.matmul(dA[t], Wh.T, out=dh_next)  # backprop through h_{t-1} Wh
    dWh = hs[:T].reshape(T * B, H).T @ dA.reshape(T * B, G)
    return dA, {"Wh": dWh}


# ----------------------------------------------------------------------------- gru

def gru_forward(Zx, Wh, bhn, state):
    """Zx (T,B,3H) is overwritten: [r, z] activations in the first 2H, n in the last H."""
    (h0,) = state
    T, B, G = Zx.shape
    H = G // 3
    hs = np.empty((T + 1, B, H), dtype=Zx.dtype)
    hWn = np.empty((T, B, H), dtype=Zx.dtype)  # h_{t-1} Wh_n + bhn, needed for dr
    hs[0] = h0
    hW = np.empty((B, G), dtype=Zx.dtype)
    for t in range(T):
        a = Zx[t]
        np.matmul(hs[t], Wh, out=hW)  # (B,H)@(H,3H) -> (B,3H)
        rz = a[:, : 2 * H]
        rz += hW[:, : 2 * H]
        _sigmoid_(rz)
        r, z = a[:, :H], a[:, H:2 * H]
        np.add(hW[:, 2 * H:], bhn, out=hWn[t])
        n = a[:, 2 * H:]
        n += r * hWn[t]
        np.tanh(n, out=n)
        h = hs[t + 1]
        np.subtract(hs[t], n, out=h)  # h = n + z * (h_prev - n)
        h *= z
        h += n
    return hs, (hs, hWn, Zx), (hs[T].copy(),)


def gru_backward(dHs, cache, Wh):
    hs, hWn, acts = cache
    T, B, H = dHs.shape
    G = 3 * H
    dZx = np.empty((T, B, G), dtype=dHs.dtype)
    dhW = np.empty((T, B, G), dtype=dHs.dtype)  # gradient w.r.t. h_{t-1} Wh (+ bhn)
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
        np.matmul(dhW[t], Wh.T, out=dh_next)
        dh_next += dh * z
    dWh = hs[:T].reshape(T * B, H).T @ dhW.reshape(T * B, G)
    dbhn = dhW[:, :, 2 * H:].sum(axis=(0, 1))
    return dZx, {"Wh": dWh, "bhn": dbhn}
