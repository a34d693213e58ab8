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

from charrnn.config import ModelConfig


class Stepper:
    """Advance K streams by one character: ``logits = stepper.step(ids)``."""

    def __init__(self, params: dict, cfg: ModelConfig, state):
        self.cfg = cfg
        H, G, K = cfg.hidden_size, cfg.gates, state[0][0].shape[0]
        dtype = params["Why"].dtype
        scale = np.ones(G, dtype=dtype)
        scale[: {"rnn": 0, "lstm": 3 * H, "gru": 2 * H}[cfg.cell]] = 0.5
        self.gru = cfg.cell == "gru"
        # Stack [Wx; Wh] for upper layers, except in the GRU whose n gate needs h Wh_n apart.
        self.stacked = not self.gru
        self.table = (params["l0.Wx"] + params["l0.b"]) * scale  # (V,G): gather = input product
        self.Wx, self.Wh, self.b, self.W = [None], [params["l0.Wh"] * scale], [None], [None]
        for k in range(1, cfg.n_layers):
            Wx, Wh = params[f"l{k}.Wx"] * scale, params[f"l{k}.Wh"] * scale
            self.Wx.append(Wx)
            self.Wh.append(Wh)
            self.W.append(np.concatenate([Wx, Wh]) if self.stacked else None)  # (2H,G)
            self.b.append(params[f"l{k}.b"] * scale)
        self.bhn = [params[f"l{k}.bhn"] for k in range(cfg.n_layers)] if self.gru else None
        self.Why, self.by = params["Why"], params["by"]
        # xh[k] = [input of layer k, h of layer k]: layer k-1 writes its h into the first half
        self.xh = [np.zeros((K, 2 * H), dtype=dtype) for _ in range(cfg.n_layers)]
        for k, layer in enumerate(state):
            self.xh[k][:, H:] = layer[0]
        self.c = [layer[1].copy() for layer in state] if cfg.cell == "lstm" else None
        self.a = np.empty((K, G), dtype=dtype)
        self.hW = np.empty((K, G), dtype=dtype)
        self.tmp = np.empty((K, H), dtype=dtype)
        self.logits = np.empty((K, self.Why.shape[1]), dtype=dtype)

    def step(self, ids: np.ndarray) -> np.ndarray:
        """ids (K,) -> logits (K,V). The returned array is reused by the next call."""
        H = self.cfg.hidden_size
        a, hW = self.a, self.hW
        for k in range(self.cfg.n_layers):
            xh = self.xh[k]
            h = xh[:, H:]
            if k == 0:
                np.take(self.table, ids, axis=0, out=a)
            elif self.stacked:
                np.matmul(xh, self.W[k], out=a)  # (K,2H)@(2H,G): input and recurrent at once
            else:
                np.matmul(xh[:, :H], self.Wx[k], out=a)  # (K,H)@(H,G)
            if k > 0:
                a += self.b[k]
            if k == 0 or not self.stacked:
                np.matmul(h, self.Wh[k], out=hW)  # (K,H)@(H,G)
            if self.gru:
                self._gru(a, hW, h, self.bhn[k])
            else:
                if k == 0:
                    a += hW
                if self.c is not None:
                    self._lstm(a, h, self.c[k])
                else:
                    np.tanh(a, out=h)
            if k + 1 < self.cfg.n_layers:
                self.xh[k + 1][:, :H] = h
        np.matmul(self.xh[-1][:, H:], self.Why, out=self.logits)
        self.logits += self.by
        return self.logits

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
