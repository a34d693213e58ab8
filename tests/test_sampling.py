"""charrnn/sampling.py and its options: SampleOptions' defaults and checks, shared by
`charrnn sample`, the server, the samples while training and sampling.generate; and
the sampler's controls against their definitions: top-p (nucleus) and top-k by counting
many draws from a model whose next-character distribution is fixed."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import ENGINES, make_text, ok, run, train

from charrnn import checkpoint, engines, rundir, sampling, training
from charrnn.cli.sample_cmd import sample
from charrnn.config import ModelConfig, SampleOptions
from charrnn.data import Vocab
from charrnn.errors import UsageError
from charrnn.model import init_params
from charrnn.serve import api

CHARS = "abcdefgh"
LOGITS = np.array([2.0, 1.5, 1.2, 0.4, 0.0, -0.3, -1.0, -2.5])
DRAWS = 40_000

# ------------------------------------------------------------- the options


def test_the_defaults():
    assert dataclasses.asdict(SampleOptions()) == {
        "n": 500,
        "temperature": 0.8,
        "top_k": 0,
        "top_p": 1.0,
        "greedy": False,
        "stop": None,
    }


def test_the_cli_the_server_and_the_library_have_the_same_defaults():
    default = dataclasses.asdict(SampleOptions())
    cli = {param.name: param.default for param in sample.params}
    assert {name: cli[name] for name in default} == default
    request = api.parse_generate(b"{}", api.Limits())
    assert {name: request[name] for name in default} == default
    assert api.options(request) == SampleOptions()
    assert inspect.signature(sampling.generate).parameters["options"].default == SampleOptions()


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("n", -1, "n must be 0 or a positive integer, got -1"),
        ("n", 2.5, "n must be 0 or a positive integer, got 2.5"),
        ("temperature", 0, "temperature must be a positive finite number, got 0"),
        ("temperature", -0.5, "temperature must be a positive finite number, got -0.5"),
        ("temperature", float("nan"), "temperature must be a positive finite number, got nan"),
        ("temperature", float("inf"), "temperature must be a positive finite number, got inf"),
        ("top_k", -1, "top-k must be 0 (all characters) or a positive integer, got -1"),
        ("top_k", 2.0, "top-k must be 0 (all characters) or a positive integer, got 2.0"),
        ("top_p", 0, "top-p must be in (0, 1], got 0"),
        ("top_p", 1.5, "top-p must be in (0, 1], got 1.5"),
        ("top_p", float("nan"), "top-p must be in (0, 1], got nan"),
    ],
)
def test_each_bad_option_is_a_usage_error_that_names_it(name, value, message):
    with pytest.raises(UsageError) as info:
        SampleOptions(**{name: value})
    assert str(info.value) == message and info.value.exit_code == 2
    with pytest.raises(UsageError) as info:  # a changed copy is checked too
        dataclasses.replace(SampleOptions(), **{name: value})
    assert str(info.value) == message


def test_the_edges_of_each_range_are_allowed_and_the_options_are_frozen():
    edges = SampleOptions(n=0, temperature=1e-4, top_k=1, top_p=1.0, greedy=True, stop="\n")
    assert SampleOptions(top_p=1e-9).top_p == 1e-9 and SampleOptions(temperature=1e4).temperature == 1e4
    with pytest.raises(dataclasses.FrozenInstanceError):
        edges.n = 5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("sampling")
    (root / "c.txt").write_text(make_text(6000, seed=4), encoding="utf-8")
    ok(train(root / "c.txt", root / "ck", "--max-steps", "30"))
    return root / "ck" / rundir.BEST


def test_the_cli_the_server_training_and_the_library_draw_the_same_default_sample(trained):
    ckpt = checkpoint.load(str(trained))
    numpy = engines.get("numpy")
    library = "".join(next(sampling.generate(ckpt.params, ckpt.model_cfg, ckpt.vocab, "", rng_seed=3, engine=numpy)))
    assert len(library) == SampleOptions().n
    cli = ok(run("sample", "-c", trained, "--rng-seed", "3", "--engine", "numpy", "--json"))
    assert json.loads(cli.stdout)["text"] == library
    request = api.parse_generate(b'{"rng_seed": 3}', api.Limits())
    assert api.generate(ckpt, str(trained), request, numpy)["texts"] == [library]
    # the samples while training: the same draw, --sample-chars long, from --rng-seed
    run_ = SimpleNamespace(
        train_cfg=SimpleNamespace(sample_chars=SampleOptions().n, rng_seed=3),
        vocab=ckpt.vocab,
        model_cfg=ckpt.model_cfg,
        engine=numpy,
    )
    assert training.progress_sample(run_, SimpleNamespace(params=ckpt.params)) == library


# ------------------------------------------------------------- the controls


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


def test_expected_is_a_distribution():
    for args in ((1.0, 0, 0.5), (0.5, 3, 0.9), (2.0, 0, 1.0)):
        assert math.isclose(expected(*args).sum(), 1.0)
