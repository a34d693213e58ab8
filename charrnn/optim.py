"""Gradient clipping (by global norm or by value) and the four optimizers, as pure
updates on dicts of arrays.

Each optimizer's state is a flat dict of arrays (plus the step count kept by the
trainer), so it goes into a checkpoint like the parameters do and a resumed run
continues bit for bit. Updates are in place: no new arrays per step.

    sgd:      p -= lr * g
    adagrad:  m += g²;            p -= lr * g / (sqrt(m) + eps)          (min-char-rnn)
    rmsprop:  m = a m + (1-a) g²; p -= lr * g / (sqrt(m) + eps)          (char-rnn, a=0.95)
    adam:     m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
              p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)     (b1 = 0.9; b2 from the config)
"""

from __future__ import annotations

import numpy as np

EPS = 1e-8
RMSPROP_ALPHA = 0.95
ADAM_BETA1 = 0.9


def global_norm(grads: dict[str, np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))


def clip_by_global_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients together so their global norm is at most max_norm (0: no clipping).
    The direction is kept. Returns the norm before clipping."""
    norm = global_norm(grads)
    if max_norm > 0 and max_norm < norm < np.inf:  # scaling by max_norm/inf would make inf*0 = NaN
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= scale
    return norm


def clip_by_value(grads: dict[str, np.ndarray], limit: float) -> float:
    """Clip every gradient element to [-limit, limit] (min-char-rnn, char-rnn; 0: no
    clipping). Returns the global norm before clipping."""
    norm = global_norm(grads)
    if limit > 0:
        for g in grads.values():
            np.clip(g, -limit, limit, out=g)
    return norm


ADAPTIVE = ("adam", "adagrad", "rmsprop")  # steps normalised by the gradient's own scale
SLOTS = {"sgd": (), "adagrad": ("m",), "rmsprop": ("m",), "adam": ("m", "v")}


def state_shapes(name: str, param_shapes: dict[str, tuple]) -> dict[str, tuple]:
    """Names and shapes of the optimizer's state arrays: one per slot and parameter."""
    return {f"{slot}.{k}": s for slot in SLOTS[name] for k, s in param_shapes.items()}


def init_state(name: str, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{slot}.{k}": np.zeros_like(p) for slot in SLOTS[name] for k, p in params.items()}


def update(
    name: str,
    params,
    grads,
    state,
    lr: float,
    t: int,
    lr_scales: dict | None = None,
    *,
    beta2: float,
    adam_kernel=None,
) -> None:
    """Apply one update in place. ``t`` is the 1-based step number (Adam's bias correction).
    ``lr_scales`` multiplies the learning rate of the parameters it names (not for sgd);
    ``beta2`` is Adam's (TrainConfig.adam_beta2). ``adam_kernel(p, g, m, v, b1, b2, step,
    denom_scale, eps)``, when given (an engine's), does one parameter's Adam update in
    one pass, the same arithmetic as below."""
    base = lr
    for k, p in params.items():
        g = grads[k]
        lr = base * (lr_scales or {}).get(k, 1.0) if name in ADAPTIVE else base
        if name == "sgd":
            p -= lr * g
            continue
        m = state[f"m.{k}"]
        if name == "adam":
            b1, b2 = ADAM_BETA1, beta2
            v = state[f"v.{k}"]
            if adam_kernel is not None:
                adam_kernel(p, g, m, v, b1, b2, lr / (1 - b1**t), 1.0 / np.sqrt(1 - b2**t), EPS)
                continue
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            step = lr / (1 - b1**t)
            denom = np.sqrt(v)
            denom *= 1.0 / np.sqrt(1 - b2**t)
            denom += EPS
            p -= step * m / denom
            continue
        if name == "adagrad":
            m += g * g
        else:  # rmsprop
            m *= RMSPROP_ALPHA
            m += (1 - RMSPROP_ALPHA) * (g * g)
        p -= lr * g / (np.sqrt(m) + EPS)
