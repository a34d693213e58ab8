"""One step of the network at a time, for generation.

Sampling feeds one character per stream per step, so the cost is the number of NumPy
calls and the bytes of weights read per step, not FLOPs. ``Stepper`` lays the weights
out once for that:

- Feature-major: the K streams are columns. Every product is W^T (G,in) @ x (in,K),
  which for one stream is a matrix-vector product reading W^T's rows in order, and
  every gate is a contiguous block of rows, so the elementwise work never strides.
- Layer 0's input weights and bias are one (G,V) table: a column gather replaces the
  input product. Each upper layer multiplies [input; h] by one stacked (G,2H) matrix.
- All hidden states live in one buffer, hb = [h_0; h_1; ...; h_L-1; 1], so layer k's
  [input; own state] is the slice [h_k-1; h_k] (no copies between layers) and the
  output layer's [h_L-1; 1] multiplies [Why; by]^T (the bias comes with the product).
- The σ-gate rows are pre-halved so one tanh serves all gates (σ(x) = 0.5 tanh(x/2)
  + 0.5, as in training: cells.gate_scale), and every buffer is allocated once.

Each cell's elementwise step is the engine's (``CellOps.step``, engines/), which shares
its elementwise code with training; ``tests/test_stepper.py`` checks the outputs
against ``model.forward`` and ``tests/test_reference.py`` against an independent
reference, on every engine.
"""

from __future__ import annotations

import numpy as np

from charrnn import engines
from charrnn.cells import gate_scale
from charrnn.config import ModelConfig
from charrnn.engines import Engine


class Stepper:
    """Advance K streams by one character: ``logits = stepper.step(ids)``."""

    def __init__(self, params: dict, cfg: ModelConfig, state, logit_scale: float = 1.0, engine: Engine | None = None):
        """``logit_scale`` multiplies the logits (1/temperature), folded into the weights;
        ``engine`` runs the cells' elementwise steps (None: engines.get())."""
        self.cfg, self.spec = cfg, cfg.spec
        self.cell_step = (engines.get() if engine is None else engine).cells[cfg.cell].step
        H, G, L, K = cfg.hidden_size, cfg.gates, cfg.n_layers, state[0][0].shape[0]
        dtype = params["Why"].dtype
        scale = gate_scale(self.spec, H, dtype)
        scale = np.ones(G, dtype=dtype) if scale is None else scale

        def t(w):  # (in,G) weights -> (G,in), σ rows halved, contiguous
            return np.ascontiguousarray((w * scale).T)

        self.table = t(params["l0.Wx"] + params["l0.b"])  # (G,V): gather = input product
        self.rows = np.ascontiguousarray(self.table.T) if K == 1 else None  # (V,G), for one stream
        upper = range(1, L)
        if self.spec.adds_recurrent:
            # layer 0 adds its recurrent product to the gathered column; each layer above
            # multiplies [input; h] by one stacked (G,2H) matrix
            self.WhT = [t(params["l0.Wh"])]
            self.WT = [None] + [t(np.concatenate([params[f"l{k}.Wx"], params[f"l{k}.Wh"]])) for k in upper]
        else:  # the GRU keeps Wh^T h apart from the input product
            self.WhT = [t(params[f"l{k}.Wh"]) for k in range(L)]
            self.WxT = [None] + [t(params[f"l{k}.Wx"]) for k in upper]
        self.b = [None] + [(params[f"l{k}.b"] * scale)[:, None] for k in upper]
        self.extra = [{name: params[f"l{k}.{name}"][:, None] for name in self.spec.extra} for k in range(L)]
        Wy = np.concatenate([params["Why"], params["by"][None, :]]) * logit_scale
        self.WyT = np.ascontiguousarray(Wy.T.astype(dtype))  # (V,H+1)
        self.hb = np.ones((L * H + 1, K), dtype=dtype)
        # each layer's state buffers: h is a slice of hb, c (the LSTM's) its own array
        self.state = []
        for k, layer in enumerate(state):
            h = self.hb[k * H : (k + 1) * H]
            h[...] = layer[0].T
            self.state.append((h, *(np.ascontiguousarray(s.T) for s in layer[1:])))
        self.a = np.empty((G, K), dtype=dtype)
        self.hW = np.empty((G, K), dtype=dtype)
        self.tmp = np.empty((H, K), dtype=dtype)
        self.logits = np.empty((self.WyT.shape[0], K), dtype=dtype)

    def step(self, ids: np.ndarray) -> np.ndarray:
        """ids (K,) -> logits (K,V), a view of a buffer the next call reuses."""
        H = self.cfg.hidden_size
        a, hW, hb = self.a, self.hW, self.hb
        adds = self.spec.adds_recurrent
        for k in range(self.cfg.n_layers):
            h = self.state[k][0]
            if k == 0:
                np.matmul(self.WhT[0], h, out=hW)  # (G,H)@(H,K)
                if self.rows is not None:  # one stream: a contiguous row, no gather call
                    if adds:
                        np.add(hW[:, 0], self.rows[ids[0]], out=a[:, 0])
                    else:
                        np.copyto(a[:, 0], self.rows[ids[0]])
                else:
                    np.take(self.table, ids, axis=1, out=a)
                    if adds:
                        a += hW
            elif adds:
                np.matmul(self.WT[k], hb[(k - 1) * H : (k + 1) * H], out=a)  # (G,2H)@(2H,K)
                a += self.b[k]
            else:
                np.matmul(self.WxT[k], self.state[k - 1][0], out=a)  # (G,H)@(H,K)
                a += self.b[k]
                np.matmul(self.WhT[k], h, out=hW)
            self.cell_step(a, hW, self.extra[k], self.state[k], self.tmp)
        np.matmul(self.WyT, hb[-H - 1 :], out=self.logits)  # [Why; by]^T @ [h; 1]
        return self.logits.T
