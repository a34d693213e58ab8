"""The character-level language model: stacked recurrent layers, softmax output, BPTT.

Parameters are a flat dict of arrays (names below), so optimizers and checkpoints
treat them uniformly. With L layers, cell width G (H, 4H or 3H), vocabulary V::

    l{k}.Wx   (V,G) for k = 0, (H,G) above   input weights; layer 0's are an embedding
    l{k}.Wh   (H,G)                          recurrent weights
    l{k}.b    (G,)                           input bias
    l{k}.bhn  (H,)                           GRU only: bias inside r * (Wh_n^T h + bhn)
    Why       (H,V), by (V,)                 output layer

Forward for a chunk x (B,T) of character ids, with targets y (B,T); vectors are
columns, and every line holds for all T steps at once but the cell::

    Z_0[t]    = Wx_0^T onehot(x_t) + b_0      a lookup: column x_t of the (G,V) table
    H_k       = cell_k(Z_k, state_k)          the only per-step loop (the engine's)
    D_k       = dropout(H_k)                  training only, on every layer's output
    Z_k+1[t]  = Wx_k+1^T D_k[t] + b_k+1       one product for all steps
    logits[t] = Why^T D_L-1[t] + by
    loss      = -mean log softmax(logits)[y]  nats per character

Backward, from the top::

    dlogits   = (softmax(logits) - onehot(y)) / (B T)
    dWhy      = Σ_t D_L-1[t] dlogits_t^T,   dby = Σ_t dlogits_t,   dD_L-1 = Why dlogits
    dH_k      = dropout mask * dD_k / (1 - p)
    dZ_k, dR_k = cell_k backward (the engine's)
    db_k      = Σ_t dZ_k[t],   dWh_k = Σ_t h_{t-1} dR_k[t]^T
    dWx_k     = Σ_t D_k-1[t] dZ_k[t]^T        (k = 0: rows of the embedding)
    dD_k-1    = Wx_k dZ_k

Each weight gradient is a GEMM over all steps (``_step_outer``). Internally all arrays
are feature-major, (T,F,B) per chunk or (F,T*B) as rows for the weight gradients. Only
the cells run step by step, in the engine (engines/: NumPy or numba), which sees the
contiguous (G,B) and (H,B) blocks of one step.
"""

from __future__ import annotations

import numpy as np

from charrnn import cells, engines
from charrnn.config import ModelConfig
from charrnn.dropout import StreamMasks
from charrnn.engines import Engine


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in a fixed order."""
    V, H, G = cfg.vocab_size, cfg.hidden_size, cfg.gates
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(cfg.n_layers):
        shapes[f"l{k}.Wx"] = (V if k == 0 else H, G)
        shapes[f"l{k}.Wh"] = (H, G)
        shapes[f"l{k}.b"] = (G,)
        for name in cfg.spec.extra:
            shapes[f"l{k}.{name}"] = (H,)
    shapes["Why"] = (H, V)
    shapes["by"] = (V,)
    return shapes


def _is_bias(name: str, cfg: ModelConfig) -> bool:
    return name == "by" or name.split(".")[-1] in ("b", *cfg.spec.extra)


def init_params(cfg: ModelConfig, rng: np.random.Generator, dtype=np.float32) -> dict[str, np.ndarray]:
    """Uniform(-1/sqrt(H), 1/sqrt(H)) weights as in PyTorch's recurrent layers; biases zero,
    the LSTM's forget gate included: with the embedding's larger steps (lr_scales), the
    usual advice of a forget-gate bias of 1 learned more slowly.

    Layer 0's input weights are an embedding fused with an input projection. PyTorch's
    Embedding(V,H) ~ N(0,1) followed by U(±1/sqrt(H)) weights gives rows of std
    1/sqrt(3), so they start as U(-1, 1), which has that std: with the ±1/sqrt(H) of
    the other weights the input signal starts 16x weaker (at H = 256) and learning
    starts much more slowly. Its learning rate is scaled to match (lr_scales).
    """
    H = cfg.hidden_size
    bound = 1.0 / np.sqrt(H)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if _is_bias(name, cfg):
            p = np.zeros(shape, dtype=dtype)
        else:
            scale = 1.0 if name == "l0.Wx" else bound
            p = rng.uniform(-scale, scale, size=shape).astype(dtype)
        params[name] = p
    return params


def lr_scales(cfg: ModelConfig) -> dict[str, float]:
    """Per-parameter factors on the learning rate of the adaptive optimizers (Adam,
    Adagrad, RMSprop), which move every weight by about lr a step whatever its size.
    The embedding's entries start sqrt(H) times larger than the other weights
    (init_params), so its steps are sqrt(H) times larger too: each matrix then moves
    by the same fraction of its size."""
    return {"l0.Wx": float(np.sqrt(cfg.hidden_size))}


def flops_per_char(cfg: ModelConfig) -> float:
    """Floating-point operations of the model's matrix products per training character,
    forward and backward (2mnk per product): 6HG per layer for the recurrence
    (Wh^T h, Wh dR, dWh), 6HG for the input product of each layer above the first (the
    first is a lookup, counted as none), and 6HV for the output layer."""
    H, G, V, L = cfg.hidden_size, cfg.gates, cfg.vocab_size, cfg.n_layers
    return 6.0 * H * G * L + 6.0 * H * G * (L - 1) + 6.0 * H * V


def memory_estimate(cfg: ModelConfig, streams: int, steps: int, training: bool, slots: int = 2) -> tuple[int, int]:
    """(bytes of the weights, bytes at the peak of one forward (and backward, when
    ``training``) call over ``streams`` x ``steps`` characters), float32.

    Training keeps the weights, their gradients (one copy per shard, summed into the
    first) and ``slots`` optimizer arrays per weight; each layer caches its states,
    gates, dropout mask and output for the backward pass; the output layer needs the
    logits, their softmax and the one-hot inputs. An estimate, to refuse what cannot
    fit before anything is allocated, not an exact account."""
    P, L, H, G, V = n_params(cfg), cfg.n_layers, cfg.hidden_size, cfg.gates, cfg.vocab_size
    weights = 4 * P
    N = streams * steps
    if training:
        per_layer = N * (2 * G + 4 * H)  # gates (and their gradient), h, c or u, output, mask
        return weights, weights * (3 + slots) + 4 * (L * per_layer + 3 * N * V)
    return weights, weights + 4 * (streams * (2 * G + H * L) + 3 * N * V)


def n_params(cfg: ModelConfig) -> int:
    return int(sum(np.prod(s) for s in param_shapes(cfg).values()))


def hidden_names(cfg: ModelConfig) -> list[str]:
    """Names of the carried hidden-state arrays, each (B,H), in order."""
    return [f"l{k}.{s}" for k in range(cfg.n_layers) for s in cfg.spec.state]


def init_hidden(cfg: ModelConfig, batch_size: int, dtype=np.float32) -> list[tuple[np.ndarray, ...]]:
    """Zero state: one tuple per layer, (h,) or (h, c) for the LSTM, each (B,H)."""
    return [
        tuple(np.zeros((batch_size, cfg.hidden_size), dtype=dtype) for _ in cfg.spec.state) for _ in range(cfg.n_layers)
    ]


def flatten_hidden(cfg: ModelConfig, hidden) -> dict[str, np.ndarray]:
    return dict(zip(hidden_names(cfg), (a for layer in hidden for a in layer)))


def unflatten_hidden(cfg: ModelConfig, flat: dict[str, np.ndarray]):
    n = len(cfg.spec.state)
    arrays = [flat[name] for name in hidden_names(cfg)]
    return [tuple(arrays[k * n : (k + 1) * n]) for k in range(cfg.n_layers)]


# ------------------------------------------------------------------------- forward
#
# Inside the network every per-chunk array is time-major and feature-major, (T,F,B):
# see engines/numpy_engine.py for why. The carried states are (B,H) outside, (H,B) inside.


def layer_extra(cfg: ModelConfig, params, k: int) -> dict[str, np.ndarray]:
    """Layer k's parameters besides Wx, Wh and b (the GRU's bhn), by short name."""
    return {name: params[f"l{k}.{name}"] for name in cfg.spec.extra}


ONE_HOT_MAX_V = 512  # up to this vocabulary, the embedding is a GEMM with a 0/1 matrix


def _one_hot_rows(X_ids: np.ndarray, V: int, dtype) -> np.ndarray:
    """(V, T*B) 0/1 matrix with a 1 at (X_ids[t,b], t*B + b)."""
    N = X_ids.size
    onehot = np.zeros((V, N), dtype=dtype)
    onehot[X_ids.reshape(N), np.arange(N)] = 1.0
    return onehot


def _input_preactivations(cfg, params, k, X_ids, D_below, onehot, embed=None):
    """Z_k (T,G,B) for all steps at once; the σ-gate rows come out halved, as the
    engines expect (cells.gate_scale).

    Layer 0 is an embedding lookup. Gathering rows gives (T,B,G), and turning that into
    (T,G,B) costs a transposing copy; for a small vocabulary the one-hot product
    table^T (G,V) @ onehot_t (V,B) makes the right layout directly and costs less, and
    its 0/1 matrix serves the gradient too. An engine may look the columns up itself
    (``embed``, Engine.embed), which costs less than either."""
    Wx, b = params[f"l{k}.Wx"], params[f"l{k}.b"]
    scale = cells.gate_scale(cfg.spec, cfg.hidden_size, Wx.dtype)
    T, B = X_ids.shape
    if k == 0:
        table = Wx + b if scale is None else (Wx + b) * scale  # (V,G): bias folded in
        tableT = np.ascontiguousarray(table.T)  # (G,V)
        if embed is not None:
            return embed(tableT, X_ids)
        if onehot is not None:
            V = onehot.shape[0]
            return np.matmul(tableT, onehot.reshape(V, T, B).transpose(1, 0, 2))  # -> (T,G,B)
        return np.ascontiguousarray(np.take(tableT, X_ids, axis=1).transpose(1, 0, 2))
    if scale is not None:
        Wx, b = Wx * scale, b * scale
    Z = np.matmul(np.ascontiguousarray(Wx.T), D_below)  # (G,H)@(T,H,B) -> (T,G,B), per step
    Z += b[:, None]
    return Z


class Stopped(Exception):
    """A training step was abandoned because ``stop`` was set (the trainer got a signal)."""


def _check(stop) -> None:
    """Between layers: give up the step when asked to, so that a run with a slow step
    still stops within about one layer's time of a signal."""
    if stop is not None and stop.is_set():
        raise Stopped()


def _engine(engine: Engine | None) -> Engine:
    return engines.get() if engine is None else engine


def _forward(params, cfg: ModelConfig, x, state, dropout, rng, train, stop=None, engine: Engine | None = None):
    """forward() with logits (T,V,B) and the cache the backward pass needs."""
    engine = _engine(engine)
    ops = engine.cells[cfg.cell]
    masks = None if dropout <= 0.0 else rng if isinstance(rng, StreamMasks) else StreamMasks.from_rng(rng)
    X_ids = np.ascontiguousarray(x.T)  # (T,B)
    dtype = params["Why"].dtype
    small = cfg.vocab_size <= ONE_HOT_MAX_V and (train or engine.embed is None)  # the gradient needs it too
    onehot = _one_hot_rows(X_ids, cfg.vocab_size, dtype) if small else None
    D = None
    caches, new_state = [], []
    for k in range(cfg.n_layers):
        _check(stop)
        Zx = _input_preactivations(cfg, params, k, X_ids, D, onehot, engine.embed)
        s_in = tuple(np.ascontiguousarray(s.T, dtype=dtype) for s in state[k])  # (B,H) -> (H,B)
        hs, cache, s = ops.forward(Zx, params[f"l{k}.Wh"], layer_extra(cfg, params, k), s_in, train)
        del Zx  # without train, the gates are garbage now: free them before the next layer's
        H_out = hs[1:]  # (T,H,B)
        mask = None
        if dropout > 0.0:
            mask = masks.keep(H_out.shape, dropout)  # bool: 1 byte a unit
            D = H_out * mask
            D *= 1.0 / (1.0 - dropout)  # inverted dropout: no rescaling at inference
        else:
            D = H_out
        if train:  # inference keeps nothing of a layer once the next one has its input
            caches.append((cache, mask, D))
        new_state.append(tuple(np.ascontiguousarray(a.T) for a in s))
    logits = np.matmul(np.ascontiguousarray(params["Why"].T), D)  # (V,H)@(T,H,B) -> (T,V,B)
    logits += params["by"][:, None]
    return logits, new_state, (X_ids, onehot, caches)


def forward(
    params,
    cfg: ModelConfig,
    x: np.ndarray,
    state,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
    train: bool = False,
    engine: Engine | None = None,
):
    """Run a chunk x (B,T) through the network.

    Returns logits (T,B,V) time-major (a view), the new state, and the cache for the
    backward pass (only with ``train``). Dropout is applied only when ``dropout > 0``,
    its masks drawn stream by stream (dropout.StreamMasks: ``rng`` is one, or the run's
    generator that keys one). ``engine`` runs the cells (engines.get(); None takes the default).
    """
    logits, new_state, cache = _forward(params, cfg, x, state, dropout, rng, train, engine=engine)
    return logits.transpose(0, 2, 1), new_state, cache


def log_softmax_(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax along ``axis``, in place."""
    logits -= logits.max(axis=axis, keepdims=True)
    logits -= np.log(np.exp(logits).sum(axis=axis, keepdims=True))
    return logits


def _targets(y: np.ndarray):
    """Index arrays that pick logp[t, y[b,t], b] out of a (T,V,B) array."""
    B, T = y.shape
    return np.arange(T)[:, None], np.ascontiguousarray(y.T), np.arange(B)[None, :]


def loss_and_grads(
    params,
    cfg: ModelConfig,
    x: np.ndarray,
    y: np.ndarray,
    state,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
    stop=None,
    engine: Engine | None = None,
):
    """Mean cross-entropy (nats/char) of predicting y from x, and its gradients.

    Parameters
    ----------
    params : dict of arrays, as made by ``init_params`` (float32, or float64 for checks)
    x, y : (B,T) integer arrays; y[:, t] is the character that follows x[:, t]
    state : per-layer tuples of (B,H) arrays carried in from the previous chunk
    dropout, rng : dropout probability on layer outputs, and its masks: a
        dropout.StreamMasks, or the generator that keys one with a draw
    stop : a threading.Event; once set, the step raises Stopped at the next layer
    engine : runs the cells (engines.get(); None takes the default)

    Returns
    -------
    loss : float, grads : dict like params, new_state : state after the last step
    (truncated BPTT: no gradient flows into ``state``).
    """
    ops = _engine(engine).cells[cfg.cell]
    logits, new_state, (X_ids, onehot, caches) = _forward(params, cfg, x, state, dropout, rng, True, stop, engine)
    T, V, B = logits.shape
    N = T * B
    logp = log_softmax_(logits, axis=1)
    pick = _targets(y)
    loss = -float(logp[pick].sum(dtype=np.float64)) / N
    # backprop through softmax + cross-entropy: (p - onehot(y)) / N
    dlogits = np.exp(logp, out=logp)
    dlogits[pick] -= 1.0
    dlogits *= 1.0 / N
    grads = {}
    # dWhy, dby and dD_L-1 = Why dlogits in one pass over dlogits' blocks
    (grads["Why"],), grads["by"], dD = _step_outer(dlogits, [caches[-1][2]], params["Why"], _spent(caches[-1]))
    del dlogits, logp, logits
    for k in range(cfg.n_layers - 1, -1, -1):
        _check(stop)
        cache, mask, _ = caches[k]
        caches[k] = None  # free this layer's cache as soon as it is used (its D went up already)
        if mask is not None:
            dD *= mask  # backprop through dropout
            dD *= 1.0 / (1.0 - dropout)
        dZx, dR, extra = ops.backward(dD, cache, params[f"l{k}.Wh"])  # (T,G,B) each
        hs_prev = cache[0][:T]  # h_{t-1} of every step
        del cache, dD
        for name, value in extra.items():
            grads[f"l{k}.{name}"] = value
        spent = None
        if k == 0:
            below = None if onehot is None else onehot.reshape(V, T, B).transpose(1, 0, 2)  # (T,V,B)
        else:
            below, spent = caches[k - 1][2], _spent(caches[k - 1])  # the layer's input, (T,H,B)
        Wx = params[f"l{k}.Wx"] if k > 0 else None  # the layer below needs dD = Wx dZx
        grads[f"l{k}.Wh"], grads[f"l{k}.Wx"], grads[f"l{k}.b"], dD = _weight_grads(dZx, dR, hs_prev, below, Wx, spent)
        if below is None:  # a vocabulary too large for the one-hot matrix
            grads["l0.Wx"] = _embedding_grad(X_ids.reshape(N), dZx, V)
        del dZx, dR, hs_prev  # before the layer below allocates its own
    return loss, grads, new_state


def _spent(layer_cache) -> np.ndarray | None:
    """A layer's dropout output D once the backward pass has read it for the last time:
    the gradient sent down may be written over it (_step_outer's ``out``). None without
    dropout, where D is a view of the states the layer's own backward still needs."""
    _, mask, D = layer_cache
    return None if mask is None else D


def _weight_grads(dZx, dR, hs_prev, below, Wx=None, out=None):
    """(dWh, dWx, db, dD) of one layer: dWh = Σ_t h_{t-1} dR_t^T, dWx = Σ_t below_t dZx_t^T
    (None without ``below``: an embedding too large for the one-hot matrix), db = Σ_t
    dZx_t over steps and streams, and given Wx the input gradient dD_t = Wx dZx_t
    (T,H,B) for the layer below (else None), written into ``out`` if given (which may be
    ``below``). Everything that reads dZx comes from one pass over its blocks; where dR
    is dZx (the cell adds its recurrent product, cells.CellSpec.adds_recurrent) dWh
    comes from the same pass."""
    Zs = [] if below is None else [below]
    if dR is dZx:
        (dWh, *dWx), db, dD = _step_outer(dZx, [hs_prev, *Zs], Wx, out)
    else:
        dWx, db, dD = _step_outer(dZx, Zs, Wx, out)
        (dWh,), _, _ = _step_outer(dR, [hs_prev])
    return dWh, (dWx[0] if dWx else None), db, dD


def rows(A: np.ndarray) -> np.ndarray:
    """(T,F,B) -> (F, T*B): one row per feature, for the all-steps GEMMs. A copy: the
    B-long runs stay contiguous, so it moves at about memory speed."""
    T, F, B = A.shape
    return np.ascontiguousarray(A.transpose(1, 0, 2)).reshape(F, T * B)


STEP_BLOCK = 16  # steps per block in _step_outer: (G, 16*B) copies stay small and in cache


def _step_outer(A: np.ndarray, Zs: list[np.ndarray], W: np.ndarray | None = None, out: np.ndarray | None = None):
    """For A (T,P,B): ([Σ_t Z[t] A[t]^T (Q,P) for each Z (T,Q,B) in Zs], Σ_t A[t] summed
    over streams (P,), and given W (R,P) the products W A[t] for every step (T,R,B),
    else None), written into ``out`` (T,R,B) when given. ``out`` may be one of Zs: each
    block of the Zs is read before the same block of ``out`` is written, so a layer's
    dropout output, which nothing needs after this, holds the gradient sent below
    instead of a new (T,H,B) array beside it (two of them per shard at the peak).

    These are a layer's weight gradients (e.g. dWh = Σ_t h_{t-1} dA_t^T), its bias
    gradient and the gradient sent to the layer below. Each is a GEMM with the steps as
    columns, which needs the (T,F,B) arrays as (F, T*B) rows: they are copied block by
    block (STEP_BLOCK steps at a time) rather than whole, so the copy of A never doubles
    the largest array of the step, and each block of A is still in cache for all of its
    uses. W A[t] as one (R,P) x (P, STEP_BLOCK*B) GEMM per block instead of T thin
    (R,P) x (P,B) ones runs at the large-GEMM rate.
    """
    T, P, B = A.shape
    sums: list[np.ndarray] = []
    total = np.zeros(P, dtype=A.dtype)
    down = None if W is None else out if out is not None else np.empty((T, W.shape[0], B), dtype=A.dtype)
    for t0 in range(0, T, STEP_BLOCK):
        Ab = rows(A[t0 : t0 + STEP_BLOCK])  # (P,n)
        total += Ab.sum(axis=1)
        for j, Z in enumerate(Zs):
            part = Ab @ rows(Z[t0 : t0 + STEP_BLOCK]).T  # (P,n)@(n,Q) -> (P,Q)
            if t0 == 0:
                sums.append(part)
            else:
                sums[j] += part
        if down is not None:  # after the Zs' block is read: ``out`` may be one of them
            n = Ab.shape[1] // B
            down[t0 : t0 + n] = (W @ Ab).reshape(W.shape[0], n, B).transpose(1, 0, 2)  # (R,P)@(P,n)
    # (P,n)@(n,Q) then one transpose: OpenBLAS ran it faster than (Q,n)@(n,P)
    return [np.ascontiguousarray(s.T) for s in sums], total, down


def _embedding_grad(ids: np.ndarray, dZ: np.ndarray, V: int) -> np.ndarray:
    """Sum dZ (T,G,B) over the positions of each id in ``ids`` (T*B,), giving a (V,G)
    gradient, for vocabularies too large for the one-hot product. The positions are
    sorted by id and summed in runs with np.add.reduceat (np.add.at does about 10 ns
    of bookkeeping per element)."""
    T, G, B = dZ.shape
    by_position = np.ascontiguousarray(dZ.transpose(0, 2, 1)).reshape(T * B, G)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    out = np.zeros((V, G), dtype=dZ.dtype)
    out[sorted_ids[starts]] = np.add.reduceat(by_position[order], starts, axis=0)
    return out


def sequence_nll(params, cfg: ModelConfig, x: np.ndarray, y: np.ndarray, state, engine: Engine | None = None):
    """Negative log-likelihood (nats) of each y given x and all before it, without dropout
    or gradients: (nll (B,T), state after the last step)."""
    logits, new_state, _ = _forward(params, cfg, x, state, 0.0, None, False, engine=engine)
    logp = log_softmax_(logits, axis=1)
    return -logp[_targets(y)].T, new_state
