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

- σ(x) = 0.5 * tanh(x / 2) + 0.5. The sigmoid gates' columns of Zx and Wh are halved
  once per chunk, so one tanh call covers all gates of a step, sigmoid and tanh alike.
- In training mode (``train=True``) the forward pass computes, for all T steps at once
  after its loop, the products of local derivatives that the backward step needs
  (for instance g * σ'(i) for the input gate), so the backward loop is mostly a
  handful of multiplications and one GEMM per step.
- Everything works in place on buffers allocated once per chunk.
"""

from __future__ import annotations

import numpy as np


def _half_sigmoid_columns(Zx: np.ndarray, Wh: np.ndarray, n_sig: int):
    """Halve the first n_sig columns (the σ gates) of Zx in place and of a copy of Wh."""
    Zx[..., :n_sig] *= 0.5
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
    cache = None
    if train:
        dtanh = hs[1:] * hs[1:]  # tanh' = 1 - h², for all steps at once
        np.subtract(1.0, dtanh, out=dtanh)
        cache = (hs, dtanh)
    return hs, cache, (hs[T].copy(),)


def rnn_backward(dHs, cache, Wh):
    """dHs (T,B,H) is the loss gradient w.r.t. each h_t from above; it is overwritten.
    Returns dZx (T,B,H) and {"Wh": dWh}."""
    hs, dtanh = cache
    T, B, H = dHs.shape
    dZx = dHs  # dHs[t] is read before dZx[t] is written
    WhT = np.ascontiguousarray(Wh.T)
    dh_next = np.zeros((B, H), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        da = dZx[t]
        da += dh_next
        da *= dtanh[t]  # backprop through tanh
        np.matmul(da, WhT, out=dh_next)  # backprop through h_{t-1} Wh
    dWh = hs[:T].reshape(T * B, H).T @ dZx.reshape(T * B, H)  # all steps in one GEMM
    return dZx, {"Wh": dWh}


# ---------------------------------------------------------------------------- lstm

def lstm_forward(Zx, Wh, state, train=True):
    """Zx (T,B,4H) is overwritten with the gate activations [i,f,o,g]."""
    h0, c0 = state
    T, B, G = Zx.shape
    H = G // 4
    Wh_half = _half_sigmoid_columns(Zx, Wh, 3 * H)
    hs = np.empty((T + 1, B, H), dtype=Zx.dtype)
    cs = np.empty((T + 1, B, H), dtype=Zx.dtype)
    tcs = np.empty((T, B, H), dtype=Zx.dtype)
    hs[0], cs[0] = h0, c0
    hW = np.empty((B, G), dtype=Zx.dtype)
    ig = np.empty((B, H), dtype=Zx.dtype)
    for t in range(T):
        a = Zx[t]
        a += np.matmul(hs[t], Wh_half, out=hW)  # (B,H)@(H,4H) -> (B,4H)
        np.tanh(a, out=a)
        _tanh_to_sigmoid_(a[:, : 3 * H])
        i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c = cs[t + 1]
        np.multiply(f, cs[t], out=c)
        c += np.multiply(i, g, out=ig)
        np.tanh(c, out=tcs[t])
        np.multiply(o, tcs[t], out=hs[t + 1])
    cache = _lstm_backward_factors(Zx, cs, tcs) + (hs,) if train else None
    return hs, cache, (hs[T].copy(), cs[T].copy())


def _lstm_backward_factors(acts, cs, tcs):
    """For all steps at once: P (T,B,4H) with dZ = dc * P for the i, f, g slots and
    dZ = dh * P for the o slot, Q = o * tanh'(c) so that dc += dh * Q, and f for dc_prev."""
    T, B, G = acts.shape
    H = G // 4
    i, f, o, g = acts[..., :H], acts[..., H:2 * H], acts[..., 2 * H:3 * H], acts[..., 3 * H:]
    P = np.empty_like(acts)
    dsig = acts[..., : 3 * H] * (1.0 - acts[..., : 3 * H])  # σ' = s (1 - s)
    np.multiply(g, dsig[..., :H], out=P[..., :H])                  # dc -> d(i preact)
    np.multiply(cs[:T], dsig[..., H:2 * H], out=P[..., H:2 * H])   # dc -> d(f preact)
    np.multiply(tcs, dsig[..., 2 * H:], out=P[..., 2 * H:3 * H])   # dh -> d(o preact)
    np.multiply(i, 1.0 - g * g, out=P[..., 3 * H:])                # dc -> d(g preact)
    Q = 1.0 - tcs * tcs
    Q *= o                                                         # dh -> dc
    return P, Q, np.ascontiguousarray(f)


def lstm_backward(dHs, cache, Wh):
    P, Q, f, hs = cache
    T, B, H = dHs.shape
    G = 4 * H
    dA = np.empty((T, B, G), dtype=dHs.dtype)
    dA4, P4 = dA.reshape(T, B, 4, H), P.reshape(T, B, 4, H)
    WhT = np.ascontiguousarray(Wh.T)
    dh_next = np.zeros((B, H), dtype=dHs.dtype)
    dc = np.zeros((B, H), dtype=dHs.dtype)
    tmp = np.empty((B, H), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        dh = dHs[t]
        dh += dh_next
        dc += np.multiply(dh, Q[t], out=tmp)  # backprop through h = o * tanh(c)
        np.multiply(dc[:, None, :], P4[t], out=dA4[t])  # through c = f c_prev + i g and the gates
        np.multiply(dh, P[t, :, 2 * H:3 * H], out=dA[t, :, 2 * H:3 * H])  # the o gate sees dh
        dc *= f[t]  # becomes dc_{t-1}
        np.matmul(dA[t], WhT, out=dh_next)  # backprop through h_{t-1} Wh
    dWh = hs[:T].reshape(T * B, H).T @ dA.reshape(T * B, G)
    return dA, {"Wh": dWh}


# ----------------------------------------------------------------------------- gru

def gru_forward(Zx, Wh, bhn, state, train=True):
    """Zx (T,B,3H) is overwritten: [r, z] activations in the first 2H, n in the last H."""
    (h0,) = state
    T, B, G = Zx.shape
    H = G // 3
    Wh_half = _half_sigmoid_columns(Zx, Wh, 2 * H)
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
    cache = _gru_backward_factors(Zx, hs, hWn) + (hs,) if train else None
    return hs, cache, (hs[T].copy(),)


def _gru_backward_factors(acts, hs, hWn):
    """For all steps at once: F_n = (1-z) tanh'(n) so d(n preact) = dh * F_n;
    F_r = hWn σ'(r) so d(r preact) = d(n preact) * F_r; F_z = (h_prev - n) σ'(z) so
    d(z preact) = dh * F_z; plus r and z themselves."""
    T, B, G = acts.shape
    H = G // 3
    r, z, n = acts[..., :H], acts[..., H:2 * H], acts[..., 2 * H:]
    F_n = (1.0 - z) * (1.0 - n * n)
    F_r = hWn * r * (1.0 - r)
    F_z = (hs[:T] - n) * z * (1.0 - z)
    return F_n, F_r, F_z, np.ascontiguousarray(r), np.ascontiguousarray(z)


def gru_backward(dHs, cache, Wh):
    F_n, F_r, F_z, r, z, hs = cache
    T, B, H = dHs.shape
    G = 3 * H
    dhW = np.empty((T, B, G), dtype=dHs.dtype)  # gradient w.r.t. h_{t-1} Wh (+ bhn)
    dan = np.empty((T, B, H), dtype=dHs.dtype)  # gradient w.r.t. the n pre-activation
    WhT = np.ascontiguousarray(Wh.T)
    dh_next = np.zeros((B, H), dtype=dHs.dtype)
    tmp = np.empty((B, H), dtype=dHs.dtype)
    for t in range(T - 1, -1, -1):
        dh = dHs[t]
        dh += dh_next
        np.multiply(dh, F_n[t], out=dan[t])  # through h = (1-z) n + z h_prev, n = tanh(.)
        np.multiply(dan[t], r[t], out=dhW[t, :, 2 * H:])  # through r * (h_prev Wh_n + bhn)
        np.multiply(dan[t], F_r[t], out=dhW[t, :, :H])  # through r = σ(.)
        np.multiply(dh, F_z[t], out=dhW[t, :, H:2 * H])  # through z = σ(.)
        np.matmul(dhW[t], WhT, out=dh_next)
        dh_next += np.multiply(dh, z[t], out=tmp)  # the direct path z * h_prev
    dWh = hs[:T].reshape(T * B, H).T @ dhW.reshape(T * B, G)
    dbhn = dhW[:, :, 2 * H:].sum(axis=(0, 1))
    dZx = dhW  # the r and z slots are the same; the n slot differs (no factor r)
    dZx[:, :, 2 * H:] = dan
    return dZx, {"Wh": dWh, "bhn": dbhn}
