"""Starting from a fresh state: the cold-start measurement, resets while training, and
clipping by value."""

import json

import numpy as np
import pytest
import reference

from charrnn import cold_start, evaluation, model, optim
from charrnn.config import ModelConfig


def _tiny(seed=0):
    rng = np.random.default_rng(seed)
    cfg = ModelConfig(cell="lstm", vocab_size=6, hidden_size=5, n_layers=2, dropout=0.0)
    params = model.init_params(cfg, rng, dtype=np.float64)
    for p in params.values():
        p += rng.normal(0, 0.5, p.shape)
    return rng, cfg, params


def test_cold_start_against_a_hand_computation():
    """Each window is read from the zero state, as sampling starts; its losses are
    recomputed here with the independent reference forward pass and a plain
    log-softmax, window by window. The warm side is the given per-character losses at
    the same places."""
    rng, cfg, params = _tiny()
    ids = rng.integers(0, cfg.vocab_size, 400)
    n_context, windows = 10, 7
    warm = rng.random(len(ids) - n_context)  # any per-character losses: only their places matter
    got = cold_start.measure(params, cfg, ids, n_context, warm, windows=windows, seed=3)

    C = cold_start.CHARS
    starts = np.random.default_rng(3).integers(0, len(ids) - n_context - C + 1, size=windows)
    cold, hot = [], []
    for s in starts:
        x = ids[n_context - 1 + s : n_context - 1 + s + C][None, :]
        y = ids[n_context + s : n_context + s + C]
        zero = [tuple(np.zeros((1, 5)) for _ in range(2)) for _ in range(2)]
        logits, _ = reference.forward(params, "lstm", 2, cfg.vocab_size, x, zero)
        z = logits[:, 0, :]
        logp = z - z.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        cold.append(-logp[np.arange(C), y])
        hot.append(warm[s : s + C])
    cold, hot = np.array(cold), np.array(hot)
    expected = {
        "cold_0_15": cold[:, :16].mean(),
        "warm_0_15": hot[:, :16].mean(),
        "cold_0_63": cold.mean(),
        "warm_0_63": hot.mean(),
    }
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-10), key


def test_cold_start_needs_one_window_of_text():
    _, cfg, params = _tiny()
    ids = np.zeros(40, dtype=np.int64)
    assert cold_start.measure(params, cfg, ids, 1, np.zeros(39)) is None


def test_char_losses_score_each_character_after_the_context_once():
    rng, cfg, params = _tiny(1)
    ids = rng.integers(0, cfg.vocab_size, 300)
    losses = evaluation.char_losses(params, cfg, ids, 20)
    assert len(losses) == 280 and np.all(losses > 0)


def test_scoring_calls_are_sized_by_the_vocabulary_and_the_model():
    assert evaluation.chunk_steps(65, 64) == evaluation.EVAL_CHUNK
    huge = evaluation.chunk_steps(1_114_112, 64)
    assert huge == 1  # one step of (V, 64) float32 logits is 285 MB: never more than one step
    mid = evaluation.chunk_steps(70_000, 64)
    assert mid * 70_000 * 64 * 4 <= evaluation.CALL_BYTES or mid == 1
    wide = ModelConfig(cell="lstm", vocab_size=65, hidden_size=384, n_layers=2)
    assert evaluation.call_width(wide) == 4 * 384  # the gates, not the logits, are widest


def test_cold_start_memory_is_bounded_for_a_wide_model():
    # 300 windows of an LSTM 2x384 in one call would make a (64, 1536, 300) float32 array
    # of 118 MB for each layer's gates; NumPy reports its allocations to tracemalloc
    import tracemalloc

    rng = np.random.default_rng(0)
    cfg = ModelConfig(cell="lstm", vocab_size=65, hidden_size=384, n_layers=2)
    params = model.init_params(cfg, rng)
    ids = rng.integers(0, 65, 3000)
    warm = evaluation.char_losses(params, cfg, ids, 1)
    tracemalloc.start()
    try:
        cold_start.measure(params, cfg, ids, 1, warm)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 48 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_clip_by_value_clips_each_element_and_keeps_the_rest():
    g = {"a": np.array([-7.0, 0.5, 3.0]), "b": np.array([[6.0, -0.1]])}
    norm = optim.clip_by_value(g, 5.0)
    assert norm == pytest.approx(np.sqrt(49 + 0.25 + 9 + 36 + 0.01))
    np.testing.assert_array_equal(g["a"], [-5.0, 0.5, 3.0])
    np.testing.assert_array_equal(g["b"], [[5.0, -0.1]])


def test_reset_prob_starts_streams_from_the_zero_state(tmp_path):
    """With --reset-prob 1 every chunk is read from the zero state: the loss of the
    second step equals a forward pass of that chunk from zeros, which a carried state
    would change."""
    from charrnn import data, training
    from charrnn.config import TrainConfig

    text = "".join(np.random.default_rng(0).choice(list("abcdef \n"), 3000))
    path = tmp_path / "t.txt"
    path.write_text(text)
    losses = {}
    for p in (0.0, 1.0):
        tc = TrainConfig(seq_len=8, batch_size=4, reset_prob=p, time_limit=0, max_steps=2, lr=1e-9)
        corpus = data.load_corpus(str(path))
        cfg = ModelConfig(cell="gru", vocab_size=corpus.vocab.size, hidden_size=6, n_layers=1, dropout=0.0)
        run = training.prepare(corpus, str(path), cfg, tc, str(tmp_path / "ck"))
        st = training.new_state(run)
        streams = data.Streams(run.train_ids, 4, 8)
        training.train_step(run, st, streams)
        params = {k: v.copy() for k, v in st.params.items()}
        losses[p] = training.train_step(run, st, streams)
        x, y = streams.chunk(1)
        nll, _ = model.sequence_nll(params, run.model_cfg, x, y, model.init_hidden(run.model_cfg, 4))
        losses[p, "zero state"] = float(nll.mean())
    assert losses[1.0] == pytest.approx(losses[1.0, "zero state"], rel=1e-5)
    assert losses[0.0] != pytest.approx(losses[0.0, "zero state"], rel=1e-5)


def test_a_repeated_word_is_repeated_right_after_the_seed(tmp_path):
    """Each line of the corpus is a random word, a space and the same word again. Right
    after --seed "<newline>abcde " the model holds everything it needs, and it must
    write "abcde" (then the line end) from the state sampling starts from."""
    from helpers import ok, run

    rng = np.random.default_rng(1)
    lines, n = [], 0
    while n < 400_000:
        word = "".join(rng.choice(list("abcdefgh"), rng.integers(3, 7)))
        lines.append(f"{word} {word}\n")
        n += len(lines[-1])
    corpus = tmp_path / "repeats.txt"
    corpus.write_text("".join(lines))
    ck = tmp_path / "ck"
    ok(
        run(
            "train",
            corpus,
            "--checkpoint-dir",
            ck,
            "--hidden-size",
            "128",
            "--layers",
            "1",
            "--batch-size",
            "32",
            "--seq-len",
            "64",
            "--max-steps",
            "800",
            "--time-limit",
            "0",
            "--eval-every",
            "400",
            "--dropout",
            "0",
            "-q",
        )
    )
    result = ok(
        run(
            "sample",
            "-c",
            ck,
            "--seed",
            "\nabcde ",
            "-n",
            "6",
            "--num-samples",
            "40",
            "--stop",
            "\n",
            "--rng-seed",
            "0",
            "--json",
        )
    )
    texts = [json.loads(line)["text"] for line in result.stdout.splitlines()]
    assert len(texts) == 40
    assert sum(t == "abcde\n" for t in texts) >= 36, texts
