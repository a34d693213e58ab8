"""The sampler's controls against their definitions: top-p (nucleus) and top-k by
counting many draws from a model whose next-character distribution is fixed, and
priming from a file (--seed-file) through the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import ENGINES, fails, make_text, ok, run, train

from charrnn import engines, rundir, sampling
from charrnn.config import ModelConfig, SampleOptions
from charrnn.data import Vocab
from charrnn.model import init_params

CHARS = "abcdefgh"
LOGITS = np.array([2.0, 1.5, 1.2, 0.4, 0.0, -0.3, -1.0, -2.5])
DRAWS = 40_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("controls")
    (root / "c.txt").write_text(make_text(6000, seed=4), encoding="utf-8")
    ok(train(root / "c.txt", root / "ck", "--max-steps", "30"))
    return root / "ck"


def fixed_model():
    """A model whose logits are LOGITS whatever it has read: output weights zero."""
    cfg = ModelConfig(cell="lstm", vocab_size=len(CHARS), hidden_size=4, n_layers=1)
    params = init_params(cfg, np.random.default_rng(0), dtype=np.float64)
    params["Why"][:] = 0.0
    params["by"][:] = LOGITS
    return params, cfg, Vocab(CHARS)


def expected(temperature: float, top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
    """The definitions, written out: softmax(logits / T); top-k keeps the k most likely;
    top-p then keeps the smallest set of the most likely whose probability (renormalised
    after top-k) sums to at least P; what is kept is renormalised."""
    p = np.exp(LOGITS / temperature)
    p /= p.sum()
    order = list(np.argsort(-p))
    kept = order[:top_k] if top_k else order
    q = p[kept] / p[kept].sum()
    if top_p < 1:
        total, n = 0.0, 0
        while total < top_p:
            total += q[n]
            n += 1
        kept = kept[:n]
    out = np.zeros_like(p)
    out[kept] = p[kept] / p[kept].sum()
    return out


def drawn(temperature: float, top_k: int = 0, top_p: float = 1.0, rng_seed: int = 5) -> np.ndarray:
    params, cfg, vocab = fixed_model()
    options = SampleOptions(n=DRAWS, temperature=temperature, top_k=top_k, top_p=top_p)
    (sample,) = sampling.generate(params, cfg, vocab, "a", options, rng_seed=rng_seed)
    text = "".join(sample)
    return np.array([text.count(c) for c in CHARS]) / len(text)


def assert_matches(freq: np.ndarray, p: np.ndarray) -> None:
    assert np.all(freq[p == 0] == 0), (freq, p)  # what the filters remove is never drawn
    sigma = np.sqrt(p * (1 - p) / DRAWS)
    assert np.all(np.abs(freq - p) <= 5 * sigma + 1e-12), (freq, p)


@pytest.mark.parametrize("temperature,top_p", [(1.0, 0.5), (1.0, 0.9), (0.7, 0.8), (1.6, 0.95), (1.0, 0.3)])
def test_top_p_draws_from_the_nucleus_with_its_probabilities(temperature, top_p):
    p = expected(temperature, top_p=top_p)
    assert 1 <= np.count_nonzero(p) < len(CHARS)  # each case really cuts the tail
    assert_matches(drawn(temperature, top_p=top_p), p)


@pytest.mark.parametrize("top_k,top_p", [(3, 0.9), (5, 0.6), (2, 0.99)])
def test_top_p_with_top_k_applies_both(top_k, top_p):
    p = expected(1.0, top_k=top_k, top_p=top_p)
    assert_matches(drawn(1.0, top_k=top_k, top_p=top_p), p)


def test_top_p_1_changes_nothing_and_a_tiny_p_is_the_argmax():
    params, cfg, vocab = fixed_model()

    def text(**kw):
        return "".join(next(sampling.generate(params, cfg, vocab, "a", SampleOptions(n=500, **kw), rng_seed=9)))

    assert text(top_p=1.0) == text()
    assert text(top_p=1e-9) == text(greedy=True) == CHARS[int(np.argmax(LOGITS))] * 500


def test_top_p_is_the_same_in_batched_samples():
    # sample k is the same text whether it is drawn alone or among 300 (two batches)
    params, cfg, vocab = fixed_model()
    options = SampleOptions(n=40, top_p=0.8)
    many = ["".join(s) for s in sampling.generate(params, cfg, vocab, "a", options, rng_seed=2, num_samples=300)]
    alone = ["".join(s) for s in sampling.generate(params, cfg, vocab, "a", options, rng_seed=2, num_samples=1)]
    assert many[0] == alone[0] and len(set(many)) > 200


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("top_k,top_p", [(0, 1.0), (0, 0.9), (0, 0.3), (4, 1.0), (4, 0.8), (60, 0.95)])
def test_one_stream_draws_what_it_draws_among_many(top_k, top_p, engine):
    # one stream has its own cheaper loop (sampling._one_stream, _Picker.one, or the
    # engine's compiled stream); on a model whose logits change every step, each stream
    # of a batch must be the text that stream draws alone. The NumPy engine computes
    # the same float32 logits on both paths; the numba engine's compiled stream sums
    # its products in another order, equal to float32 rounding, which can tip a near
    # tie: in float64 (exact here) the draws must agree
    engine = engines.get(engine)
    dtype = np.float32 if engine.name == "numpy" else np.float64
    cfg = ModelConfig(cell="lstm", vocab_size=len(CHARS), hidden_size=16, n_layers=2)
    params = init_params(cfg, np.random.default_rng(3), dtype=dtype)
    params["Why"] *= 8.0  # peaked distributions, so the filters cut something
    vocab = Vocab(CHARS)
    args = (params, cfg, vocab, "ab", SampleOptions(n=300, temperature=0.9, top_k=top_k, top_p=top_p))
    together = ["".join(p) for p in zip(*sampling._steps(*args, sampling.sample_rngs(7, 5), engine))]
    for k in range(5):
        alone = "".join(sampling._one_stream(*args, [sampling.sample_rngs(7, 5)[k]], engine))
        assert alone == together[k]
    assert len(set(together)) == 5


def test_keep_row_is_keep_mask_on_one_row():
    # ties (small integer logits) and -inf included: the same characters kept
    rng = np.random.default_rng(11)
    for _ in range(300):
        logits = rng.integers(-3, 4, size=(1, 12)).astype(np.float32)
        if rng.random() < 0.2:
            logits[0, rng.integers(12)] = -np.inf
        for top_k, top_p in [(0, 0.5), (0, 0.95), (3, 1.0), (5, 0.7)]:
            keep, p, least = sampling._keep_row(logits[0], top_k, top_p)
            row = np.ones(12, bool) if keep is None else keep
            if p is not None:
                row = row & (p >= least)
            assert np.array_equal(row, sampling.keep_mask(logits, top_k, top_p)[0])


@pytest.mark.parametrize("value", ["0", "-0.1", "1.5", "nan"])
def test_invalid_top_p_is_a_usage_error(value, trained):
    fails(run("sample", "-c", trained, "--top-p", value, "-n", "5"), 2, "top-p")


# ------------------------------------------------------------- --seed-file


@pytest.fixture
def vocabulary(trained):
    from charrnn import checkpoint

    return checkpoint.load(str(trained / rundir.BEST)).vocab.chars


def test_seed_file_primes_like_seed(trained, tmp_path, vocabulary):
    seed = "The cat sat"
    (tmp_path / "seed.txt").write_text(seed, encoding="utf-8")
    from_file = ok(run("sample", "-c", trained, "--seed-file", tmp_path / "seed.txt", "-n", "40", "--rng-seed", "4"))
    given = ok(run("sample", "-c", trained, "--seed", seed, "-n", "40", "--rng-seed", "4"))
    assert from_file.stdout == given.stdout and from_file.stdout.startswith(seed)


def test_seed_file_from_standard_input(trained):
    from click.testing import CliRunner

    from charrnn.cli import cli

    result = CliRunner().invoke(cli, ["sample", "-c", str(trained), "--seed-file", "-", "-n", "30"], input="The dog")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("The dog") and len(result.stdout) == len("The dog") + 30 + 1


def test_empty_seed_file_means_the_default_seed(trained, tmp_path):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    from_file = ok(run("sample", "-c", trained, "--seed-file", tmp_path / "empty.txt", "-n", "30", "--rng-seed", "4"))
    default = ok(run("sample", "-c", trained, "-n", "30", "--rng-seed", "4"))
    assert from_file.stdout == default.stdout


def test_seed_file_with_characters_the_model_never_saw(trained, tmp_path):
    (tmp_path / "odd.txt").write_text("caf\u00e9 \u2014 the \u00e9t\u00e9", encoding="utf-8")
    fails(
        run("sample", "-c", trained, "--seed-file", tmp_path / "odd.txt", "-n", "10"),
        2,
        "the seed contains characters the model never saw: '\u00e9', '\u2014'",
    )
    result = ok(run("sample", "-c", trained, "--seed-file", tmp_path / "odd.txt", "--drop-unknown", "-n", "10"))
    assert "note: dropped 4 characters the model never saw: '\u00e9' x3, '\u2014' x1" in result.stderr
    assert result.stdout.startswith("caf  the t")


def test_seed_and_seed_file_together_are_refused(trained, tmp_path):
    (tmp_path / "s.txt").write_text("a", encoding="utf-8")
    fails(run("sample", "-c", trained, "--seed", "a", "--seed-file", tmp_path / "s.txt"), 2, "not both")


def test_expected_is_a_distribution():
    for args in ((1.0, 0, 0.5), (0.5, 3, 0.9), (2.0, 0, 1.0)):
        assert math.isclose(expected(*args).sum(), 1.0)
