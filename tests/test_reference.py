"""charrnn's forward pass and generation stepper against an independent reference.

The gradient check proves that the backward pass matches the forward pass, and the
stepper test that generation matches training; both would still pass if the forward
pass itself computed the wrong function (two LSTM gates swapped, say). Here the
logits of every engine are compared with tests/reference.py, the textbook equations
written plainly, and, where PyTorch is installed, with nn.RNN / nn.LSTM / nn.GRU
loaded with the same weights.
"""

import numpy as np
import pytest
import reference
from helpers import ENGINES

from charrnn import engines, model
from charrnn.config import ModelConfig
from charrnn.stepper import Stepper

CELLS = ("rnn", "lstm", "gru")


def _setup(cell, n_layers, seed=0, B=3, V=7, H=5):
    rng = np.random.default_rng(seed)
    cfg = ModelConfig(cell=cell, vocab_size=V, hidden_size=H, n_layers=n_layers, dropout=0.0)
    params = model.init_params(cfg, rng, dtype=np.float64)
    for p in params.values():  # off the init point: zero biases would hide a wrong bias path
        p += rng.normal(0, 0.5, p.shape)
    state = [tuple(rng.normal(0, 0.5, (B, H)) for _ in layer) for layer in model.init_hidden(cfg, B, np.float64)]
    return rng, cfg, params, state


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("n_layers", [1, 2])
def test_forward_matches_the_reference_with_carried_state(cell, n_layers, engine):
    engine = engines.get(engine)
    rng, cfg, params, state = _setup(cell, n_layers)
    x1, x2 = rng.integers(0, cfg.vocab_size, (3, 6)), rng.integers(0, cfg.vocab_size, (3, 4))
    ref1, ref_state = reference.forward(params, cell, n_layers, cfg.vocab_size, x1, state)
    ref2, ref_state = reference.forward(params, cell, n_layers, cfg.vocab_size, x2, ref_state)
    got1, carried, _ = model.forward(params, cfg, x1, state, engine=engine)
    got2, carried, _ = model.forward(params, cfg, x2, carried, engine=engine)  # the second chunk continues the first
    np.testing.assert_allclose(got1, ref1, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got2, ref2, rtol=0, atol=1e-10)
    for ours, theirs in zip(carried, ref_state):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("K", [1, 3])
def test_stepper_matches_the_reference(cell, n_layers, K, engine):
    rng, cfg, params, state = _setup(cell, n_layers, seed=1, B=K)
    x = rng.integers(0, cfg.vocab_size, (K, 8))
    ref, _ = reference.forward(params, cell, n_layers, cfg.vocab_size, x, state)
    stepper = Stepper(params, cfg, state, engine=engines.get(engine))
    for t in range(x.shape[1]):
        np.testing.assert_allclose(stepper.step(x[:, t]), ref[t], rtol=0, atol=1e-10)


def _torch_logits(torch, params, cfg, x, state):
    """The same network built from PyTorch's layers, in float64, with charrnn's weights."""
    H, V, L = cfg.hidden_size, cfg.vocab_size, cfg.n_layers
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cfg.cell]
    rnn = cls(V, H, num_layers=L, dtype=torch.float64)
    # charrnn's LSTM gate blocks are i,f,o,g; PyTorch's are i,f,g,o
    order = {"rnn": [0], "lstm": [0, 1, 3, 2], "gru": [0, 1, 2]}[cfg.cell]

    def blocks(w):  # (in, G) columns in charrnn's order -> (G, in) rows in PyTorch's
        return np.concatenate([w[..., j * H : (j + 1) * H] for j in order], axis=-1).T

    with torch.no_grad():
        for k in range(L):
            getattr(rnn, f"weight_ih_l{k}").copy_(torch.from_numpy(blocks(params[f"l{k}.Wx"])))
            getattr(rnn, f"weight_hh_l{k}").copy_(torch.from_numpy(blocks(params[f"l{k}.Wh"])))
            getattr(rnn, f"bias_ih_l{k}").copy_(torch.from_numpy(blocks(params[f"l{k}.b"])))
            bhh = np.zeros(len(order) * H)
            if cfg.cell == "gru":
                bhh[2 * H :] = params[f"l{k}.bhn"]  # PyTorch's b_hn sits inside r * (...), as bhn does
            getattr(rnn, f"bias_hh_l{k}").copy_(torch.from_numpy(bhh))
        onehot = torch.nn.functional.one_hot(torch.from_numpy(x.T.astype(np.int64)), V).double()  # (T,B,V)
        h0 = torch.from_numpy(np.stack([layer[0] for layer in state]))
        if cfg.cell == "lstm":
            out, _ = rnn(onehot, (h0, torch.from_numpy(np.stack([layer[1] for layer in state]))))
        else:
            out, _ = rnn(onehot, h0)
        return (out.numpy() @ params["Why"]) + params["by"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("n_layers", [1, 2])
def test_forward_matches_pytorch(cell, n_layers, engine):
    torch = pytest.importorskip("torch", reason="PyTorch is an optional reference (pip install torch)")
    rng, cfg, params, state = _setup(cell, n_layers, seed=2)
    x = rng.integers(0, cfg.vocab_size, (3, 9))
    got, _, _ = model.forward(params, cfg, x, state, engine=engines.get(engine))
    np.testing.assert_allclose(got, _torch_logits(torch, params, cfg, x, state), rtol=0, atol=1e-10)


def test_the_reference_is_not_charrnn():
    """A guard on the guard: the reference must catch a wrong gate order. Swap the
    forget and output gate columns of the weights and the logits must differ."""
    rng, cfg, params, state = _setup("lstm", 1, seed=3)
    x = rng.integers(0, cfg.vocab_size, (3, 5))
    H = cfg.hidden_size
    swapped = {k: v.copy() for k, v in params.items()}
    for name in ("l0.Wx", "l0.Wh", "l0.b"):
        w = swapped[name]
        w[..., H : 2 * H], w[..., 2 * H : 3 * H] = params[name][..., 2 * H : 3 * H], params[name][..., H : 2 * H]
    ours, _, _ = model.forward(params, cfg, x, state, engine=engines.get("numpy"))
    ref, _ = reference.forward(swapped, "lstm", 1, cfg.vocab_size, x, state)
    assert np.abs(ours - ref).max() > 1e-3
