"""charrnn/sampling.py and its options: SampleOptions' defaults and checks, shared by
`charrnn sample`, the server, the samples while training and sampling.generate."""

from __future__ import annotations

import dataclasses
import inspect
import json
from types import SimpleNamespace

import pytest
from helpers import make_text, ok, run, train

from charrnn import checkpoint, engines, rundir, sampling, training
from charrnn.cli.sample_cmd import sample
from charrnn.config import SampleOptions
from charrnn.errors import UsageError
from charrnn.serve import api

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
