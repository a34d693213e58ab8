"""Dropout masks drawn stream by stream (charrnn/dropout.py): a stream's mask depends on
the step's key and the stream's place in the batch only, never on how the batch is cut."""

import numpy as np
import pytest

from charrnn import model
from charrnn.config import ModelConfig
from charrnn.dropout import StreamMasks
from charrnn.parallel import ShardRunner


def test_a_stream_draws_the_same_mask_in_any_piece_of_the_batch():
    whole = StreamMasks(7).keep((5, 4, 10), 0.3)
    parts = [StreamMasks(7, a).keep((5, 4, b - a), 0.3) for a, b in ((0, 3), (3, 4), (4, 10))]
    assert np.array_equal(np.concatenate(parts, axis=2), whole)
    assert 0.55 < whole.mean() < 0.85  # keeps about 1 - p
    assert not np.array_equal(StreamMasks(8).keep((5, 4, 10), 0.3), whole)  # another step, other masks


def test_layers_draw_one_after_the_other_from_each_stream():
    m = StreamMasks(3)
    first, second = m.keep((6, 5, 4), 0.5), m.keep((6, 5, 4), 0.5)
    assert not np.array_equal(first, second)
    again = StreamMasks(3, 2)
    assert np.array_equal(again.keep((6, 5, 2), 0.5), first[:, :, 2:])
    assert np.array_equal(again.keep((6, 5, 2), 0.5), second[:, :, 2:])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sharded_step_with_dropout_equals_the_whole_batch(cell):
    rng = np.random.default_rng(0)
    cfg = ModelConfig(cell=cell, vocab_size=7, hidden_size=6, n_layers=2, dropout=0.4)
    params = model.init_params(cfg, rng, dtype=np.float64)
    x, y = rng.integers(0, 7, (2, 18, 5))
    state = model.init_hidden(cfg, 18, np.float64)
    runner = ShardRunner(18, threads=2)
    assert len(runner.bounds) == 2
    loss, grads, _ = runner.loss_and_grads(params, cfg, x, y, state, 0.4, np.random.default_rng(11))
    key = StreamMasks.from_rng(np.random.default_rng(11)).key  # the draw the runner took
    ref_loss, ref_grads, _ = model.loss_and_grads(params, cfg, x, y, state, 0.4, StreamMasks(key))
    runner.close()
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-9, atol=1e-12)
