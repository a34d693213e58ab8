"""The character-level language model: stacked recurrent layers, softmax output, BPTT.

Parameters are a flat dict of arrays (names below), so optimizers and checkpoints
treat them uniformly. With L layers, cell width G (H, 4H or 3H), vocabulary V::

    l{k}.Wx   (V,G) for k = 0, (H,G) above   input weights; layer 0's are an embedding
    l{k}.Wh   (H,G)                          recurrent weights
    l{k}.b    (G,)                           input bias (LSTM forget gate starts at 1)
    l{k}.bhn  (H,)                           GRU only: bias inside r * (h Wh_n + bhn)
    Why       (H,V), by (V,)                 output layer

Forward for a chunk x (B,T) of character ids, with targets y (B,T)::

    Z_0   = Wx_0[x] + b_0                     embedding gather, all T steps at once
    H_k   = cell_k(Z_k, state_k)              the only per-step loop (see cells.py)
    D_k   = dropout(H_k)                      training only, on every layer's output
    Z_k+1 = D_k Wx_k+1 + b_k+1                one GEMM over all T*B rows
    P     = softmax(D_L-1 Why + by)           one GEMM, one softmax
    loss  = -mean log P[y]                    nats per character

Backward mirrors it: one GEMM per weight gradient over the whole chunk, and a
scatter-add into the rows of the embedding.
"""

from __future__ import annotations

import numpy as np

from charrnn import cells
from charrnn.config import ModelConfig

LN2 = float(np.log(2.0))


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in a fixed order."""
    V, H, G = cfg.vocab_size, cfg.hidden_size, cfg.gates
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(cfg.n_layers):
        shapes[f"l{k}.Wx"] = (V if k == 0 else H, G)
        shapes[f"l{k}.Wh"] = (H, G)
        shapes[f"l{k}.b"] = (G,)
        if cfg.cell == "gru":
            shapes[f"l{k}.bhn"] = (H,)
    shapes["Why"] = (H, V)
    shapes["by"] = (V,)
    return shapes


def init_params(cfg: ModelConfig, rng: np.random.Generator, dtype=np.float32) -> dict[str, np.ndarray]:
    """Uniform(-1/sqrt(H), 1/sqrt(H)) weights as in PyTorch's recurrent layers; biases zero
    except the LSTM forget gate, which starts at 1 so that memory is kept by default.

    Layer 0's input weights are an embedding fused with an input projection. PyTorch's
    Embedding(V,H) ~ N(0,1) followed by U(±1/sqrt(H)) weights gives rows of std
    1/sqrt(3), so they start as U(-1, 1), which has that std: with the ±1/sqrt(H) of
    the other weights the input signal starts 16x weaker (at H = 256) and learning
    starts much more slowly.
    """
    H = cfg.hidden_size
    bound = 1.0 / np.sqrt(H)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith(".b") or name.endswith(".bhn") or name == "by":
            p = np.zeros(shape, dtype=dtype)
            if cfg.cell == "lstm" and name.endswith(".b"):
                p[H:2 * H] = 1.0
        else:
            scale = 1.0 if name == "l0.Wx" else bound
            p = rng.uniform(-scale, scale, size=shape).astype(dtype)
        params[name] = p
    return params


def n_params(cfg: ModelConfig) -> int:
    return int(sum(np.prod(s) for s in param_shapes(cfg).values()))


def state_names(cfg: ModelConfig) -> list[str]:
    """Names of the carried hidden-state arrays, each (B,H), in order."""
    per_layer = ("h", "c") if cfg.cell == "lstm" else ("h",)
    return [f"l{k}.{s}" for k in range(cfg.n_layers) for s in per_layer]


def init_state(cfg: ModelConfig, batch_size: int, dtype=np.float32) -> list[tuple[np.ndarray, ...]]:
    """Zero state: one tuple per layer, (h,) or (h, c) for the LSTM, each (B,H)."""
    n = 2 if cfg.cell == "lstm" else 1
    return [tuple(np.zeros((batch_size, cfg.hidden_size), dtype=dtype) for _ in range(n))
            for _ in range(cfg.n_layers)]


def flatten_state(cfg: ModelConfig, state) -> dict[str, np.ndarray]:
    return dict(zip(state_names(cfg), (a for layer in state for a in layer)))


def unflatten_state(cfg: ModelConfig, flat: dict[str, np.ndarray]):
    n = 2 if cfg.cell == "lstm" else 1
    arrays = [flat[name] for name in state_names(cfg)]
    return [tuple(arrays[k * n:(k + 1) * n]) for k in range(cfg.n_layers)]


# ------------------------------------------------------------------------- forward

def _layer_forward(cfg, params, k, Zx, state, train):
    Wh = params[f"l{k}.Wh"]
    if cfg.cell == "rnn":
        return cells.rnn_forward(Zx, Wh, state, train)
    if cfg.cell == "lstm":
        return cells.lstm_forward(Zx, Wh, state, train)
    return cells.gru_forward(Zx, Wh, params[f"l{k}.bhn"], state, train)


def _layer_backward(cfg, dHs, cache, params, k):
    backward = {"rnn": cells.rnn_backward, "lstm": cells.lstm_backward, "gru": cells.gru_backward}
    return backward[cfg.cell](dHs, cache, params[f"l{k}.Wh"])


def _input_preactivations(cfg, params, k, X_ids, D_below):
    """Z_k for all steps at once: a gather for layer 0, one GEMM above; the σ-gate
    columns come out halved, as the cells expect (cells.gate_scale)."""
    Wx, b = params[f"l{k}.Wx"], params[f"l{k}.b"]
    scale = cells.gate_scale(cfg.cell, cfg.hidden_size, Wx.dtype)
    if k == 0:
        table = Wx + b if scale is None else (Wx + b) * scale  # (V,G): bias folded in
        return table[X_ids]  # (T,B) ids -> (T,B,G) rows: the embedding gather
    if scale is not None:
        Wx, b = Wx * scale, b * scale
    T, B, H = D_below.shape
    Z = D_below.reshape(T * B, H) @ Wx  # (T*B,H)@(H,G) -> (T*B,G)
    Z += b
    return Z.reshape(T, B, -1)


def forward(params, cfg: ModelConfig, x: np.ndarray, state, dropout: float = 0.0,
            rng: np.random.Generator | None = None, train: bool = False):
    """Run a chunk x (B,T) through the network.

    Returns logits (T,B,V) time-major, the new state, and the cache for the backward
    pass (only with ``train``). Dropout is applied (with ``rng``) only when ``dropout > 0``.
    """
    X_ids = np.ascontiguousarray(x.T)  # (T,B): time-major so each step is contiguous
    D = None
    caches, new_state = [], []
    for k in range(cfg.n_layers):
        Zx = _input_preactivations(cfg, params, k, X_ids, D)
        hs, cache, s = _layer_forward(cfg, params, k, Zx, state[k], train)
        H_out = hs[1:]  # (T,B,H)
        mask = None
        if dropout > 0.0:
            mask = rng.random(H_out.shape, dtype=np.float32) >= dropout  # bool: 1 byte a unit
            D = H_out * mask
            D *= 1.0 / (1.0 - dropout)  # inverted dropout: no rescaling at inference
        else:
            D = H_out
        if train:  # inference keeps nothing of a layer once the next one has its input
            caches.append((cache, mask, D))
        new_state.append(s)
    T, B, H = D.shape
    logits = D.reshape(T * B, H) @ params["Why"]  # (T*B,H)@(H,V) -> (T*B,V)
    logits += params["by"]
    return logits.reshape(T, B, -1), new_state, (X_ids, caches)


def log_softmax_(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis, in place."""
    logits -= logits.max(axis=-1, keepdims=True)
    logits -= np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return logits


def loss_and_grads(params, cfg: ModelConfig, x: np.ndarray, y: np.ndarray, state,
                   dropout: float = 0.0, rng: np.random.Generator | None = None):
    """Mean cross-entropy (nats/char) of predicting y from x, and its gradients.

    Parameters
    ----------
    params : dict of arrays, as made by ``init_params`` (float32, or float64 for checks)
    x, y : (B,T) integer arrays; y[:, t] is the character that follows x[:, t]
    state : per-layer tuples of (B,H) arrays carried in from the previous chunk
    dropout, rng : dropout probability on layer outputs and the generator that draws it

    Returns
    -------
    loss : float, grads : dict like params, new_state : state after the last step
    (truncated BPTT: no gradient flows into ``state``).
    """
    logits, new_state, (X_ids, caches) = forward(params, cfg, x, state, dropout, rng, train=True)
    T, B, V = logits.shape
    N = T * B
    Y = y.T.reshape(N)
    logp = log_softmax_(logits.reshape(N, V))
    rows = np.arange(N)
    loss = -float(logp[rows, Y].sum(dtype=np.float64)) / N
    # backprop through softmax + cross-entropy: (p - onehot(y)) / N
    dlogits = np.exp(logp, out=logp)
    dlogits[rows, Y] -= 1.0
    dlogits *= 1.0 / N
    grads = {}
    D_top = caches[-1][2].reshape(N, -1)
    grads["Why"] = D_top.T @ dlogits  # (H,N)@(N,V) -> (H,V)
    grads["by"] = dlogits.sum(axis=0)
    dD = (dlogits @ params["Why"].T).reshape(T, B, -1)  # (N,V)@(V,H) -> (T,B,H)
    for k in range(cfg.n_layers - 1, -1, -1):
        cache, mask, _ = caches[k]
        caches[k] = (None, None, caches[k][2])  # free this layer's cache as soon as it is used
        if mask is not None:
            dD *= mask  # backprop through dropout
            dD *= 1.0 / (1.0 - dropout)
        dZx, g = _layer_backward(cfg, dD, cache, params, k)
        del cache
        G = dZx.shape[-1]
        dZ2 = dZx.reshape(N, G)
        grads[f"l{k}.b"] = dZ2.sum(axis=0)
        for name, value in g.items():
            grads[f"l{k}.{name}"] = value
        if k == 0:
            grads["l0.Wx"] = _embedding_grad(X_ids.reshape(N), dZ2, V)  # backprop through the gather
        else:
            D_below = caches[k - 1][2].reshape(N, -1)
            grads[f"l{k}.Wx"] = D_below.T @ dZ2  # (H,N)@(N,G) -> (H,G)
            dD = (dZ2 @ params[f"l{k}.Wx"].T).reshape(T, B, -1)
        del dZx, dZ2  # before the layer below allocates its own
    return loss, grads, new_state


ONE_HOT_MAX_V = 512  # below this, the scatter-add is cheaper as a GEMM than as np.add.at


def _embedding_grad(ids: np.ndarray, dZ: np.ndarray, V: int) -> np.ndarray:
    """Scatter-add the rows of dZ (N,G) into a (V,G) gradient at rows ``ids``.

    np.add.at is exact but does about 10 ns of bookkeeping per element (40 ms for a
    64x64 chunk of an LSTM 256); for a small vocabulary the same sum is a (V,N)@(N,G)
    GEMM with a 0/1 matrix, about 4 ms. For large vocabularies the GEMM's V*N*G work
    loses, so add.at stays.
    """
    if V > ONE_HOT_MAX_V:
        out = np.zeros((V, dZ.shape[1]), dtype=dZ.dtype)
        np.add.at(out, ids, dZ)
        return out
    selector = np.zeros((V, len(ids)), dtype=dZ.dtype)
    selector[ids, np.arange(len(ids))] = 1.0
    return selector @ dZ  # (V,N)@(N,G) -> (V,G)


def sequence_nll(params, cfg: ModelConfig, x: np.ndarray, y: np.ndarray, state, mask=None):
    """Summed negative log-likelihood (nats) of y given x, without dropout or gradients.
    Positions where ``mask`` (B,T) is False are not counted. Returns (sum, count, state)."""
    logits, new_state, _ = forward(params, cfg, x, state)
    T, B, V = logits.shape
    logp = log_softmax_(logits.reshape(T * B, V))
    nll = -logp[np.arange(T * B), y.T.reshape(-1)]
    if mask is None:
        return float(nll.sum(dtype=np.float64)), T * B, new_state
    m = mask.T.reshape(-1)
    return float(nll[m].sum(dtype=np.float64)), int(m.sum()), new_state
