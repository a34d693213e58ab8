"""The cell table (charrnn/cells.py): each cell's facts are the ones the model and the
engines act on. The equations themselves are tested per engine in test_reference.py
(forward against a plain reference) and test_gradcheck.py (backward)."""

import numpy as np
import pytest

from charrnn import cells, model
from charrnn.config import ModelConfig

H, V = 5, 7


@pytest.mark.parametrize("name", sorted(cells.SPECS))
def test_a_cells_parameters_and_state_follow_its_table_row(name):
    spec = cells.SPECS[name]
    cfg = ModelConfig(vocab_size=V, cell=name, hidden_size=H, n_layers=2)
    params = model.init_params(cfg, np.random.default_rng(0))
    G = spec.gates * H
    assert cfg.gates == G
    for layer, inputs in (("l0", V), ("l1", H)):
        assert params[f"{layer}.Wx"].shape == (inputs, G)
        assert params[f"{layer}.Wh"].shape == (H, G)
        assert params[f"{layer}.b"].shape == (G,)
        assert {k.split(".", 1)[1] for k in params if k.startswith(layer + ".")} == {"Wx", "Wh", "b", *spec.extra}
    assert model.n_params(cfg) == sum(p.size for p in params.values())
    state = model.init_hidden(cfg, 3)
    assert [len(layer) for layer in state] == [len(spec.state)] * 2
    assert model.hidden_names(cfg) == [f"l{i}.{s}" for i in range(2) for s in spec.state]
    assert spec.state[0] == "h"  # the layer above and the output read h, the first of the state


@pytest.mark.parametrize("name", sorted(cells.SPECS))
def test_gate_scale_halves_exactly_the_sigmoid_rows(name):
    spec = cells.SPECS[name]
    scale = cells.gate_scale(spec, H, np.float32)
    if spec.sigmoid_gates == 0:
        assert scale is None
        return
    assert scale.shape == (spec.gates * H,) and scale.dtype == np.float32
    assert np.all(scale[: spec.sigmoid_gates * H] == 0.5) and np.all(scale[spec.sigmoid_gates * H :] == 1.0)


def test_one_tanh_serves_the_sigmoid_gates():
    """Why the σ rows are halved: σ(x) = 0.5 tanh(x/2) + 0.5."""
    x = np.linspace(-30, 30, 2001)
    np.testing.assert_allclose(0.5 * np.tanh(x / 2) + 0.5, 1 / (1 + np.exp(-x)), rtol=0, atol=1e-15)
