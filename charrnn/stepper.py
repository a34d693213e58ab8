"""One step of the network at a time, for generation.

Sampling feeds one character per stream per step, so the cost is the number of NumPy
calls and the bytes of weights read per step, not FLOPs. ``Stepper`` lays the weights
out once for that: layer 0's input weights and bias become one (V,G) table (a row
gather replaces the input product), each upper layer multiplies [input, h] by one
stacked (2H,G) matrix (one GEMM instead of two), the σ-gate columns are pre-halved so
one tanh serves all gates (σ(x) = 0.5 tanh(x/2) + 0.5, as in cells.py), and every
buffer is allocated once. The equations are those of cells.py; ``tests/test_stepper.py``
checks the outputs against ``model.forward``.
"""

from __future__ import annotations

import numpy as np

from charrnn.cells import gate_scale
from charrnn.config import ModelConfig


class Stepper:
    """Advance K streams by one character: ``logits = stepper.step(ids)``.

    All hidden states live side by side in one buffer, hb = [h_0 | h_1 | ... | h_L-1 | 1],
    so that layer k's [input, own state] is the contiguous slice [h_k-1 | h_k] (no
    copies between layers) and the output layer's [h_L-1 | 1] multiplies [Why; by]
    (the bias comes with the product)."""

    def __init__(self, params: dict, cfg: ModelConfig, state):
        self.cfg = cfg
        H, G, L, K = cfg.hidden_size, cfg.gates, cfg.n_layers, state[0][0].shape[0]
        dtype = params["Why"].dtype
        scale = gate_scale(cfg.cell, H, dtype)
        scale = np.ones(G, dtype=dtype) if scale is None else scale
        self.gru = cfg.cell == "gru"
        self.table = (params["l0.Wx"] + params["l0.b"]) * scale  # (V,G): gather = input product
        self.Wh = [params[f"l{k}.Wh"] * scale for k in range(L)]
        self.Wx = [None] + [params[f"l{k}.Wx"] * scale for k in range(1, L)]
        # [Wx; Wh] stacked for one product per upper layer; not for the GRU, whose n gate
        # needs h Wh_n apart from the input part
        self.W = [None] + [None if self.gru else np.concatenate([self.Wx[k], self.Wh[k]]) for k in range(1, L)]
        self.b = [None] + [params[f"l{k}.b"] * scale for k in range(1, L)]
        self.bhn = [params[f"l{k}.bhn"] for k in range(L)] if self.gru else None
        self.Wy = np.concatenate([params["Why"], params["by"][None, :]])  # (H+1,V)
        self.hb = np.ones((K, L * H + 1), dtype=dtype)
        self.h = [self.hb[:, k * H:(k + 1) * H] for k in range(L)]
        for k, layer in enumerate(state):
            self.h[k][...] = layer[0]
        self.c = [layer[1].copy() for layer in state] if cfg.cell == "lstm" else None
        self.a = np.empty((K, G), dtype=dtype)
        self.hW = np.empty((K, G), dtype=dtype)
        self.tmp = np.empty((K, H), dtype=dtype)
        self.logits = np.empty((K, self.Wy.shape[1]), dtype=dtype)

    def step(self, ids: np.ndarray) -> np.ndarray:
        """ids (K,) -> logits (K,V). The returned array is reused by the next call."""
        H = self.cfg.hidden_size
        a, hW, hb = self.a, self.hW, self.hb
        for k in range(self.cfg.n_layers):
            h = self.h[k]
            if k == 0:
                np.take(self.table, ids, axis=0, out=a)
                np.matmul(h, self.Wh[0], out=hW)  # (K,H)@(H,G)
                if not self.gru:
                    a += hW
            elif self.gru:
                np.matmul(self.h[k - 1], self.Wx[k], out=a)  # (K,H)@(H,G)
                a += self.b[k]
                np.matmul(h, self.Wh[k], out=hW)
            else:
                np.matmul(hb[:, (k - 1) * H:(k + 1) * H], self.W[k], out=a)  # (K,2H)@(2H,G)
                a += self.b[k]
            if self.gru:
                self._gru(a, hW, h, self.bhn[k])
            elif self.c is not None:
                self._lstm(a, h, self.c[k])
            else:
                np.tanh(a, out=h)
        return np.matmul(hb[:, -H - 1:], self.Wy, out=self.logits)  # [h, 1] @ [Why; by]
    def _lstm(self, a, h, c):
        H = self.cfg.hidden_size
        np.tanh(a, out=a)
        a[:, :3 * H] *= 0.5
        a[:, :3 * H] += 0.5
        i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c *= f
        c += np.multiply(i, g, out=self.tmp)
        np.tanh(c, out=h)
        h *= o

    def _gru(self, a, hW, h, bhn):
        H = self.cfg.hidden_size
        rz = a[:, :2 * H]
        rz += hW[:, :2 * H]
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        hWn = hW[:, 2 * H:]
        hWn += bhn
        n += np.multiply(r, hWn, out=self.tmp)
        np.tanh(n, out=n)
        h -= n  # h = n + z * (h_prev - n)
        h *= z
        h += n
