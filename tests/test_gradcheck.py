"""The gold standard: analytic BPTT gradients against central finite differences in float64,
for every parameter of every cell type, with 1 and 2 layers, on random small shapes, on
every engine (in float64 the numba engine's kernels use libm's tanh, so the check
tests their equations; their float32 approximation is tested in test_engines.py)."""

import numpy as np
import pytest
from helpers import ENGINES

from charrnn import engines, model
from charrnn.config import ModelConfig

EPS = 1e-5


def _loss(params, cfg, x, y, state, dropout, seed, engine):
    # a fresh generator per call: the same dropout masks in every evaluation
    rng = np.random.default_rng(seed)
    return model.loss_and_grads(params, cfg, x, y, state, dropout, rng, engine=engine)


def _max_rel_error(cell, n_layers, dropout, seed, engine="numpy"):
    engine = engines.get(engine)
    rng = np.random.default_rng(seed)
    V, H = int(rng.integers(3, 7)), int(rng.integers(2, 6))
    B, T = int(rng.integers(1, 4)), int(rng.integers(2, 6))
    cfg = ModelConfig(cell=cell, vocab_size=V, hidden_size=H, n_layers=n_layers, dropout=dropout)
    params = model.init_params(cfg, rng, dtype=np.float64)
    for p in params.values():  # move off the init point (zero biases hide bugs)
        p += rng.normal(0, 0.3, p.shape)
    x = rng.integers(0, V, (B, T))
    y = rng.integers(0, V, (B, T))
    # a nonzero carried state, as in the middle of an epoch
    state = [tuple(rng.normal(0, 0.5, (B, H)) for _ in layer) for layer in model.init_hidden(cfg, B, np.float64)]
    _, grads, _ = _loss(params, cfg, x, y, state, dropout, seed, engine)
    worst = {}
    for name, p in params.items():
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + EPS
            plus = _loss(params, cfg, x, y, state, dropout, seed, engine)[0]
            p[idx] = old - EPS
            minus = _loss(params, cfg, x, y, state, dropout, seed, engine)[0]
            p[idx] = old
            num[idx] = (plus - minus) / (2 * EPS)
        # relative error of the whole gradient array (as in cs231n's gradient checks):
        # elementwise ratios of two near-zero numbers would only measure rounding noise
        diff = np.linalg.norm(num - grads[name])
        worst[name] = float(diff / max(np.linalg.norm(num) + np.linalg.norm(grads[name]), 1e-12))
    return worst


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_gradients_match_finite_differences(cell, n_layers, engine):
    for seed in range(3):
        worst = _max_rel_error(cell, n_layers, dropout=0.0, seed=seed, engine=engine)
        assert set(worst) == set(
            model.param_shapes(ModelConfig(cell=cell, vocab_size=3, n_layers=n_layers, hidden_size=2))
        )
        bad = {k: v for k, v in worst.items() if v > 1e-6}
        assert not bad, f"relative errors above 1e-6: {bad}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_with_dropout(cell, engine):
    worst = _max_rel_error(cell, 2, dropout=0.3, seed=5, engine=engine)
    bad = {k: v for k, v in worst.items() if v > 1e-6}
    assert not bad, f"relative errors above 1e-6: {bad}"


@pytest.mark.parametrize("engine", ENGINES)
def test_gradcheck_detects_a_wrong_gradient(monkeypatch, engine):
    """The check itself must be able to fail: break the recurrent gradient and see it caught."""
    import dataclasses

    cells = engines.get(engine).cells
    real = cells["rnn"].backward

    def broken(dHs, cache, Wh):
        dZx, dR, extra = real(dHs, cache, Wh)
        return dZx, dR * 1.001, extra  # dWh = sum h dR^T comes out 0.1% too large

    monkeypatch.setitem(cells, "rnn", dataclasses.replace(cells["rnn"], backward=broken))
    worst = _max_rel_error("rnn", 1, dropout=0.0, seed=0, engine=engine)
    assert worst["l0.Wh"] > 1e-4
