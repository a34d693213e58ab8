"""An independent, plainly written forward pass: the textbook equations, nothing else.

It shares no code with charrnn's model: batch-major row vectors, an explicit logistic
sigmoid, no halving of the σ gates, no fused gate products, no feature-major layout,
one Python loop over the time steps and one over the layers. Only the parameter names
and the gate order of charrnn's checkpoints are shared, so that the same weights can
be run through both::

    l{k}.Wx (in, G)   l{k}.Wh (H, G)   l{k}.b (G,)   l{k}.bhn (H,) for the GRU
    Why (H, V)   by (V,)

    rnn:   h = tanh(x Wx + h Wh + b)
    lstm:  i, f, o = σ(...), σ(...), σ(...);  g = tanh(...)   (column blocks in this order)
           c = f c + i g;  h = o tanh(c)
    gru:   r = σ(x Wx_r + h Wh_r + b_r);  z = σ(x Wx_z + h Wh_z + b_z)
           n = tanh(x Wx_n + b_n + r (h Wh_n + bhn));  h = (1 - z) n + z h
    logits = h_top Why + by
"""

from __future__ import annotations

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def rnn_cell(x, state, Wx, Wh, b):
    (h,) = state
    return (np.tanh(x @ Wx + h @ Wh + b),)


def lstm_cell(x, state, Wx, Wh, b):
    h, c = state
    H = h.shape[1]
    a = x @ Wx + h @ Wh + b
    i = sigmoid(a[:, 0 * H : 1 * H])
    f = sigmoid(a[:, 1 * H : 2 * H])
    o = sigmoid(a[:, 2 * H : 3 * H])
    g = np.tanh(a[:, 3 * H : 4 * H])
    c = f * c + i * g
    h = o * np.tanh(c)
    return h, c


def gru_cell(x, state, Wx, Wh, b, bhn):
    (h,) = state
    H = h.shape[1]
    xr, xz, xn = (x @ Wx[:, j * H : (j + 1) * H] + b[j * H : (j + 1) * H] for j in range(3))
    hr, hz, hn = (h @ Wh[:, j * H : (j + 1) * H] for j in range(3))
    r = sigmoid(xr + hr)
    z = sigmoid(xz + hz)
    n = np.tanh(xn + r * (hn + bhn))
    return ((1.0 - z) * n + z * h,)


def forward(params, cell: str, n_layers: int, vocab_size: int, x, state):
    """x (B,T) ids, state a list per layer of tuples of (B,H) arrays.
    Returns logits (T,B,V) and the final state."""
    B, T = x.shape
    state = [tuple(np.array(s, dtype=np.float64) for s in layer) for layer in state]
    logits = np.empty((T, B, vocab_size))
    for t in range(T):
        inp = np.eye(vocab_size)[x[:, t]]  # one-hot rows (B,V)
        for k in range(n_layers):
            w = [params[f"l{k}.Wx"], params[f"l{k}.Wh"], params[f"l{k}.b"]]
            if cell == "gru":
                w.append(params[f"l{k}.bhn"])
            step = {"rnn": rnn_cell, "lstm": lstm_cell, "gru": gru_cell}[cell]
            state[k] = step(inp, state[k], *w)
            inp = state[k][0]
        logits[t] = inp @ params["Why"] + params["by"]
    return logits, state
