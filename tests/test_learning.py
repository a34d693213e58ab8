"""It really learns: on a corpus whose entropy per character is known exactly, and where
predicting well needs memory several steps back, training gets close to that entropy."""

import math

import numpy as np
import pytest

from charrnn import data, evaluation, training
from charrnn.config import ModelConfig, TrainConfig

LETTERS = "abcd"
GAPS = (3, 4, 5)


def copy_corpus(n_segments: int, seed: int) -> str:
    """Segments 'x---x\\n': a uniform letter, 3-5 dashes (uniform), the same letter again.

    The letter carries ln 4 nats and the gap length ln 3; everything else is determined,
    but only for a model that remembers the letter across the dashes. Segments are
    independent and self-delimiting, so the entropy rate is ln 12 / E[segment length].
    """
    rng = np.random.default_rng(seed)
    letters = rng.integers(0, len(LETTERS), n_segments)
    gaps = rng.integers(0, len(GAPS), n_segments)
    return "".join(LETTERS[a] + "-" * GAPS[g] + LETTERS[a] + "\n" for a, g in zip(letters, gaps))


def entropy_rate() -> float:
    mean_len = 3 + np.mean(GAPS)  # letter, dashes, letter, newline
    return math.log(len(LETTERS) * len(GAPS)) / mean_len


def memoryless_rate() -> float:
    """What a model that forgets the letter pays: ln 4 again at the copy."""
    return (math.log(len(LETTERS) * len(GAPS)) + math.log(len(LETTERS))) / (3 + np.mean(GAPS))


# Each setting learns the task on every one of seeds 0-5 (the tanh RNN's on 0-11) with
# the loss within 0.5% of the entropy-to-memoryless gap. A setting that learns on only
# some seeds (the tanh RNN at H 32, lr 3e-2, 1,500 steps learns all of the memory on
# some and a quarter short of it on others) makes a test of luck, not of learning: a
# change in the last bits of a gradient's rounding can turn a pass into a failure.
@pytest.mark.parametrize(
    "cell,steps,lr,hidden", [("lstm", 1200, 3e-2, 32), ("gru", 1200, 3e-2, 32), ("rnn", 2000, 1e-2, 64)]
)
def test_learns_to_the_entropy(tmp_path, cell, steps, lr, hidden):
    text = copy_corpus(6000, seed=1)
    tc = TrainConfig(seq_len=32, batch_size=16, lr=lr, max_steps=steps, time_limit=0, eval_every=10**6, rng_seed=0)
    path = _write(tmp_path, text)
    corpus = data.load_corpus(path)
    cfg = ModelConfig(cell=cell, vocab_size=corpus.vocab.size, hidden_size=hidden, n_layers=1, dropout=0.0)
    run = training.prepare(corpus, path, cfg, tc, str(tmp_path / "ck"))
    st = training.new_state(run)
    streams = data.Streams(run.train_ids, tc.batch_size, tc.seq_len)
    for _ in range(steps):
        training.train_step(run, st, streams)
    val = float(evaluation.char_losses(st.params, run.model_cfg, run.val_ids, run.n_context).mean())
    h, forgetful = entropy_rate(), memoryless_rate()
    # within 10% of the gap between the entropy and what a memoryless model can do
    assert val < h + 0.1 * (forgetful - h), (val, h, forgetful)
    assert val > h - 0.02  # nobody beats the entropy by more than sampling noise


def _write(tmp_path, text):
    p = tmp_path / "copy.txt"
    p.write_text(text, encoding="utf-8")
    return str(p)
