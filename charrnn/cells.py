"""The three cells and their facts: one ``CellSpec`` each, in ``SPECS``.

Everything the rest of charrnn needs to know about a cell, besides its step-by-step
computation, which each engine implements (engines/; the equations are in
engines/numpy_engine.py)::

    rnn:   h_t = tanh(Zx[t] + Wh^T h_{t-1})
    lstm:  [i, f, o, g] = [σ, σ, σ, tanh](Zx[t] + Wh^T h_{t-1});  c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)
    gru:   [r, z] = σ(Zx_rz[t] + Wh_rz^T h_{t-1});  n = tanh(Zx_n[t] + r (Wh_n^T h_{t-1} + bhn))
           h_t = (1 - z) n + z h_{t-1}
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellSpec:
    """Everything the rest of charrnn needs to know about a cell, in one place."""

    name: str
    gates: int  # G = gates * H, the width of the fused pre-activations
    sigmoid_gates: int  # the first sigmoid_gates * H rows are σ gates (halved; see gate_scale)
    state: tuple[str, ...]  # what each layer carries from step to step; h first
    extra: tuple[str, ...]  # per-layer (H,) parameters besides Wx, Wh and b
    adds_recurrent: bool  # the gates see Zx[t] + Wh^T h_{t-1}; the GRU's n gate sees r * (Wh_n^T h)


SPECS: dict[str, CellSpec] = {
    "rnn": CellSpec(name="rnn", gates=1, sigmoid_gates=0, state=("h",), extra=(), adds_recurrent=True),
    "lstm": CellSpec(name="lstm", gates=4, sigmoid_gates=3, state=("h", "c"), extra=(), adds_recurrent=True),
    "gru": CellSpec(name="gru", gates=3, sigmoid_gates=2, state=("h",), extra=("bhn",), adds_recurrent=False),
}


def gate_scale(cell: CellSpec, H: int, dtype):
    """(G,) factors the caller applies to its input weights and bias so that Zx arrives
    with the σ-gate rows halved (None: nothing to halve): every engine computes
    σ(x) = 0.5 tanh(x/2) + 0.5, so that one tanh serves all gates. Scaling the (in,G)
    weights costs far less than a pass over the (G,T,B) pre-activations."""
    import numpy as np  # here, not at the top: config.py imports this table, and the CLI config

    if not cell.sigmoid_gates:
        return None
    scale = np.ones(cell.gates * H, dtype=dtype)
    scale[: cell.sigmoid_gates * H] = 0.5
    return scale
