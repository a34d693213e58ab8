"""Model-level properties: batching is exact, state carries across chunks, float32 agrees."""

import numpy as np
import pytest

from charrnn import model
from charrnn.config import ModelConfig


def _setup(cell, n_layers=2, V=7, H=6, B=4, T=9, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    cfg = ModelConfig(cell=cell, vocab_size=V, hidden_size=H, n_layers=n_layers, dropout=0.0)
    params = model.init_params(cfg, rng, dtype=dtype)
    for p in params.values():
        p += rng.normal(0, 0.2, p.shape).astype(dtype)
    x = rng.integers(0, V, (B, T))
    y = rng.integers(0, V, (B, T))
    return cfg, params, x, y


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_batched_equals_unbatched(cell):
    cfg, params, x, y = _setup(cell)
    B, T = x.shape
    loss, grads, state = model.loss_and_grads(params, cfg, x, y, model.init_hidden(cfg, B, np.float64))
    logits, _, _ = model.forward(params, cfg, x, model.init_hidden(cfg, B, np.float64))
    single_losses, single_grads = [], []
    for b in range(B):
        lb, gb, sb = model.loss_and_grads(
            params, cfg, x[b : b + 1], y[b : b + 1], model.init_hidden(cfg, 1, np.float64)
        )
        logit_b, _, _ = model.forward(params, cfg, x[b : b + 1], model.init_hidden(cfg, 1, np.float64))
        np.testing.assert_allclose(logit_b[:, 0], logits[:, b], rtol=1e-12, atol=1e-12)
        for k in range(cfg.n_layers):
            for s_all, s_one in zip(state[k], sb[k]):
                np.testing.assert_allclose(s_one[0], s_all[b], rtol=1e-12, atol=1e-12)
        single_losses.append(lb)
        single_grads.append(gb)
    # the batch loss is the mean over all B*T positions, so it is the mean of the B stream losses
    assert loss == pytest.approx(np.mean(single_losses), rel=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(g, np.mean([sg[name] for sg in single_grads], axis=0), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_state_carries_across_chunks(cell):
    """Two chunks of T with the state carried equal one chunk of 2T (forward)."""
    cfg, params, x, _ = _setup(cell, T=10)
    B = x.shape[0]
    whole, s_whole, _ = model.forward(params, cfg, x, model.init_hidden(cfg, B, np.float64))
    a, s_mid, _ = model.forward(params, cfg, x[:, :5], model.init_hidden(cfg, B, np.float64))
    b, s_end, _ = model.forward(params, cfg, x[:, 5:], s_mid)
    np.testing.assert_allclose(np.concatenate([a, b]), whole, rtol=1e-12, atol=1e-12)
    for k in range(cfg.n_layers):
        for u, v in zip(s_end[k], s_whole[k]):
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_float32_agrees_with_float64(cell):
    cfg, p64, x, y = _setup(cell)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    B = x.shape[0]
    l64, g64, _ = model.loss_and_grads(p64, cfg, x, y, model.init_hidden(cfg, B, np.float64))
    l32, g32, _ = model.loss_and_grads(p32, cfg, x, y, model.init_hidden(cfg, B, np.float32))
    assert l32 == pytest.approx(l64, rel=1e-5)
    for k in g64:
        assert g32[k].dtype == np.float32
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_biases_start_at_zero_and_weights_at_their_scale(cell):
    cfg = ModelConfig(cell=cell, vocab_size=5, hidden_size=16, n_layers=2)
    params = model.init_params(cfg, np.random.default_rng(0))
    for name, p in params.items():
        if name.endswith((".b", ".bhn")) or name == "by":
            assert np.all(p == 0), name
        else:
            bound = 1.0 if name == "l0.Wx" else 0.25  # U(-1, 1) for the embedding, else 1/sqrt(H)
            assert 0.5 * bound < np.abs(p).max() <= bound, name


def test_initial_loss_is_log_vocab():
    """An untrained model predicts about uniformly: loss near ln V."""
    cfg, params, x, y = _setup("lstm", V=30, H=16)
    params = model.init_params(cfg, np.random.default_rng(1), dtype=np.float64)
    loss, _, _ = model.loss_and_grads(params, cfg, x, y, model.init_hidden(cfg, x.shape[0], np.float64))
    assert abs(loss - np.log(30)) < 0.1


def test_embedding_grad_sums_like_add_at():
    """The sorted reduceat used for large vocabularies gives np.add.at's sums."""
    rng = np.random.default_rng(0)
    T, G, B = 10, 12, 50
    dZ = rng.normal(size=(T, G, B))
    for V in (700, 50):
        ids = rng.integers(0, V, T * B)
        ref = np.zeros((V, G))
        np.add.at(ref, ids, dZ.transpose(0, 2, 1).reshape(T * B, G))
        np.testing.assert_allclose(model._embedding_grad(ids, dZ, V), ref, rtol=1e-12, atol=1e-12)


def test_step_outer_is_the_sum_of_outer_products():
    rng = np.random.default_rng(1)
    T = model.STEP_BLOCK * 2 + 3  # a last block shorter than the others
    A, Z = rng.normal(size=(T, 5, 4)), rng.normal(size=(T, 3, 4))
    W = rng.normal(size=(2, 5))
    (got,), total, down = model._step_outer(A, [Z], W)
    np.testing.assert_allclose(got, np.einsum("tqb,tpb->qp", Z, A), rtol=1e-12)
    np.testing.assert_allclose(total, A.sum(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(down, np.einsum("rp,tpb->trb", W, A), rtol=1e-12)
    assert model._step_outer(A, [Z])[2] is None


def test_step_outer_may_write_the_gradient_below_over_an_input_it_reads():
    rng = np.random.default_rng(2)
    T = model.STEP_BLOCK * 2 + 3
    A, Z, W = rng.normal(size=(T, 5, 4)), rng.normal(size=(T, 3, 4)), rng.normal(size=(3, 5))
    expected = model._step_outer(A, [Z], W)
    out = Z.copy()
    (got,), total, down = model._step_outer(A, [out], W, out)
    assert down is out
    np.testing.assert_array_equal(got, expected[0][0])
    np.testing.assert_array_equal(down, expected[2])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_large_vocabulary_path_matches_one_hot(cell, monkeypatch):
    """Above ONE_HOT_MAX_V the embedding is a column gather and its gradient a sorted
    sum; both must give what the one-hot products give."""
    cfg, params, x, y = _setup(cell, V=9, H=5)
    params = model.init_params(cfg, np.random.default_rng(3), dtype=np.float64)
    state = model.init_hidden(cfg, x.shape[0], np.float64)
    loss, grads, s = model.loss_and_grads(params, cfg, x, y, state, 0.2, np.random.default_rng(0))
    monkeypatch.setattr(model, "ONE_HOT_MAX_V", 0)
    loss2, grads2, s2 = model.loss_and_grads(params, cfg, x, y, state, 0.2, np.random.default_rng(0))
    assert loss2 == pytest.approx(loss, rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=1e-10, atol=1e-12)
    for a, b in zip(s, s2):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_sharded_step_equals_whole_batch(cell):
    """Two shards in parallel threads give the loss and gradients of the whole batch."""
    from charrnn.parallel import ShardRunner

    cfg, params, x, y = _setup(cell, B=18, T=5)
    state = model.init_hidden(cfg, 18, np.float64)
    runner = ShardRunner(18, threads=2)
    assert len(runner.bounds) == 2
    loss, grads, new_state = runner.loss_and_grads(params, cfg, x, y, state, 0.0, np.random.default_rng(0))
    ref_loss, ref_grads, ref_state = model.loss_and_grads(params, cfg, x, y, state)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-9, atol=1e-12)
    for a, b in zip(new_state, ref_state):
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, rtol=1e-12)
    runner.close()
