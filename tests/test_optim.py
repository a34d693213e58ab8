"""The optimizers' updates against plainly written references."""

import numpy as np
import pytest

from charrnn import optim


def adam_reference(p, grads, lr, b1, b2, eps, scale=1.0):
    """Adam as Kingma & Ba write it, one step per gradient, in float64."""
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * scale * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("beta2", [0.999, 0.98, 0.5])
def test_adam_follows_its_definition_with_the_given_beta2(beta2):
    rng = np.random.default_rng(0)
    start = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(4)]
    params = {k: v.copy() for k, v in start.items()}
    state = optim.init_state("adam", params)
    for t, g in enumerate(grads, start=1):
        optim.update("adam", params, {k: x.copy() for k, x in g.items()}, state, 0.01, t, {"b": 3.0}, beta2=beta2)
    for k, scale in (("a", 1.0), ("b", 3.0)):
        want = adam_reference(start[k], [g[k] for g in grads], 0.01, optim.ADAM_BETA1, beta2, optim.EPS, scale)
        np.testing.assert_allclose(params[k], want, rtol=1e-12, atol=1e-14)


def test_beta2_changes_the_adam_step_and_nothing_else():
    """A different beta2 moves Adam's weights differently; the other optimizers ignore it."""
    results = {}
    for name in ("adam", "rmsprop"):
        for beta2 in (0.999, 0.9):
            params = {"w": np.ones(6)}
            state = optim.init_state(name, params)
            for t in range(1, 4):
                g = {"w": np.random.default_rng(t).standard_normal(6)}
                optim.update(name, params, g, state, 0.1, t, beta2=beta2)
            results[name, beta2] = params["w"]
    assert not np.allclose(results["adam", 0.999], results["adam", 0.9])
    np.testing.assert_array_equal(results["rmsprop", 0.999], results["rmsprop", 0.9])
