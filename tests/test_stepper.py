"""The generation fast path computes exactly what the training model computes."""

import numpy as np
import pytest
from helpers import ENGINES

from charrnn import engines, model
from charrnn.config import ModelConfig
from charrnn.stepper import Stepper


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("n_layers", [1, 3])
def test_stepper_matches_forward(cell, n_layers, engine):
    engine = engines.get(engine)
    rng = np.random.default_rng(0)
    cfg = ModelConfig(cell=cell, vocab_size=9, hidden_size=5, n_layers=n_layers, dropout=0.0)
    params = model.init_params(cfg, rng, dtype=np.float64)
    for p in params.values():
        p += rng.normal(0, 0.3, p.shape)
    K, T = 3, 7
    x = rng.integers(0, 9, (K, T))
    state = [tuple(rng.normal(0, 0.5, (K, 5)) for _ in layer) for layer in model.init_hidden(cfg, K, np.float64)]
    logits, _, _ = model.forward(params, cfg, x, state, engine=engine)
    stepper = Stepper(params, cfg, state, engine=engine)
    for t in range(T):
        np.testing.assert_allclose(stepper.step(x[:, t]), logits[t], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_single_stream_path_matches_forward(cell, engine):
    """K = 1 takes its own path (row adds instead of a gather)."""
    engine = engines.get(engine)
    rng = np.random.default_rng(1)
    cfg = ModelConfig(cell=cell, vocab_size=9, hidden_size=5, n_layers=2, dropout=0.0)
    params = model.init_params(cfg, rng, dtype=np.float64)
    x = rng.integers(0, 9, (1, 6))
    state = model.init_hidden(cfg, 1, np.float64)
    logits, _, _ = model.forward(params, cfg, x, state, engine=engine)
    stepper = Stepper(params, cfg, state, logit_scale=0.5, engine=engine)
    for t in range(6):
        np.testing.assert_allclose(stepper.step(x[:, t]), 0.5 * logits[t], rtol=1e-10, atol=1e-12)
