"""The engines against each other and the numba engine's approximation.

The gradient checks (test_gradcheck.py) and the reference forward tests
(test_reference.py) run on every engine in float64. Here: in float32, where the numba
engine uses its rational tanh, its logits, gradients and generation steps equal the
NumPy engine's to float32 rounding; the approximation stays within its documented
bound over the whole float32 range; and choosing an engine works as the CLI promises.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import ENGINES, NEEDS_NUMBA, ok, run, train

from charrnn import checkpoint, data, engines, model, optim
from charrnn.config import ModelConfig
from charrnn.stepper import Stepper

needs_numba = NEEDS_NUMBA
REL = 1e-5  # float32 agreement between engines, relative to each array's largest entry


def _close(a, b, what):
    scale = max(float(np.abs(b).max()), 1e-30)
    err = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) / scale
    assert err <= REL, f"{what}: max difference {err:.2e} of the largest entry"


def _setup(cell, n_layers, B=8, T=64, V=20, H=48, seed=0):
    rng = np.random.default_rng(seed)
    cfg = ModelConfig(cell=cell, vocab_size=V, hidden_size=H, n_layers=n_layers, dropout=0.25)
    params = model.init_params(cfg, rng)
    # off the init point as training moves it: weights at their scale (recurrences that
    # neither explode nor are chaotic, where any rounding difference grows without
    # bound) and biases large enough that some gates saturate
    for name, p in params.items():
        scale = 1.0 if name.split(".")[-1] in ("b", "by", "bhn") else 1.0 / np.sqrt(H)
        p += rng.normal(0, scale, p.shape).astype(np.float32)
    x, y = rng.integers(0, V, (2, B, T))
    state = [
        tuple(rng.uniform(-0.9, 0.9, (B, H)).astype(np.float32) for _ in layer) for layer in model.init_hidden(cfg, B)
    ]
    return cfg, params, x, y, state


@needs_numba
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_numba_equals_numpy_in_float32_over_a_chunk(cell, n_layers):
    cfg, params, x, y, state = _setup(cell, n_layers)
    out = {}
    for name in ("numpy", "numba"):
        rng = np.random.default_rng(5)  # the same dropout masks on both
        e = engines.get(name)
        loss, grads, new_state = model.loss_and_grads(params, cfg, x, y, state, cfg.dropout, rng, engine=e)
        logits, _, _ = model.forward(params, cfg, x, state, engine=e)
        out[name] = (loss, grads, new_state, logits)
    (l0, g0, s0, z0), (l1, g1, s1, z1) = out["numpy"], out["numba"]
    assert l1 == pytest.approx(l0, rel=REL)
    _close(z1, z0, "logits")
    for k in g0:
        _close(g1[k], g0[k], f"gradient of {k}")
    for layer0, layer1 in zip(s0, s1):
        for a0, a1 in zip(layer0, layer1):
            _close(a1, a0, "carried state")


@needs_numba
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("K", [1, 4])
def test_numba_generation_equals_training_forward_in_float32(cell, K):
    cfg, params, x, _, state = _setup(cell, 2, B=K, T=20)
    logits, _, _ = model.forward(params, cfg, x, state, engine=engines.get("numpy"))
    stepper = Stepper(params, cfg, state, engine=engines.get("numba"))
    for t in range(x.shape[1]):
        _close(stepper.step(x[:, t]), logits[t], f"logits at step {t}")


# ------------------------------------------------------------- the approximation


def _tanh32(x: np.ndarray) -> np.ndarray:
    from charrnn.engines import numba_kernels

    out = np.empty_like(x)
    numba_kernels.tanh_array(x, out)
    return out


def _errors(x: np.ndarray) -> tuple[float, float]:
    """Largest absolute and relative error of the approximation on x against float64 tanh."""
    ref = np.tanh(x.astype(np.float64))
    err = np.abs(_tanh32(x).astype(np.float64) - ref)
    nz = ref != 0
    return float(err.max()), float((err[nz] / np.abs(ref[nz])).max()) if nz.any() else 0.0


@needs_numba
def test_tanh_approximation_bound_over_the_whole_float32_range():
    from charrnn.engines.numba_kernels import SATURATE, TANH_MAX_ERROR, TANH_MAX_REL_ERROR, TINY

    worst_abs = worst_rel = 0.0
    # every float32 where the rational function is evaluated, both signs by symmetry of
    # the code (tested below on the sweep) ...
    lo, hi = (int(np.float32(v).view(np.uint32)) for v in (TINY, SATURATE))
    for start in range(lo, hi + 1, 1 << 24):
        x = np.arange(start, min(start + (1 << 24), hi + 1), dtype=np.uint32).view(np.float32)
        a, r = _errors(x)
        worst_abs, worst_rel = max(worst_abs, a), max(worst_rel, r)
    # ... and a sweep of all 2^32 bit patterns: both signs, zeros, denormals, huge values, infinities
    bits = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    finite_or_inf = bits[~np.isnan(bits)]
    a, r = _errors(finite_or_inf)
    worst_abs, worst_rel = max(worst_abs, a), max(worst_rel, r)
    assert worst_abs <= TANH_MAX_ERROR, worst_abs
    assert worst_rel <= TANH_MAX_REL_ERROR, worst_rel


@needs_numba
def test_tanh_approximation_keeps_nan_signs_and_limits():
    special = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38], np.float32)
    out = _tanh32(special)
    assert np.isnan(out[:2]).all()  # a diverging run stays visibly diverged
    assert out[2] == 1.0 and out[3] == -1.0 and out[8] == 1.0 and out[9] == -1.0
    assert out[4] == 0 and not np.signbit(out[4]) and np.signbit(out[5])
    assert out[6] == special[6] and out[7] == special[7]
    x = np.linspace(-12, 12, 10001, dtype=np.float32)
    assert np.array_equal(_tanh32(-x), -_tanh32(x))  # odd, as the dense test assumes


@needs_numba
def test_a_nan_in_training_still_reads_as_divergence():
    cfg, params, x, y, state = _setup("lstm", 2)
    params["l0.Wh"][3, 5] = np.nan
    loss, _, _ = model.loss_and_grads(params, cfg, x, y, state, 0.0, None, engine=engines.get("numba"))
    assert not np.isfinite(loss)


# ------------------------------------------------------------------- selection


def test_import_and_help_do_not_import_numba():
    code = (
        "import sys, charrnn, charrnn.cli; from click.testing import CliRunner; "
        "CliRunner().invoke(charrnn.cli.cli, ['--help']); print('numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("command", ["train", "sample", "eval"])
def test_the_numpy_engine_never_imports_numba(command, tiny_corpus, tmp_path):
    """Importing numba costs about 60 MB of resident memory and LLVM's set-up: a run on
    the NumPy engine must not pay it, whether or not numba is installed."""
    from helpers import TINY

    ck = tmp_path / "ck"
    if command != "train":
        ok(train(tiny_corpus, ck, "--engine", "numpy"))
    args = {
        "train": ["train", tiny_corpus, "--checkpoint-dir", ck, *TINY, "-q"],
        "sample": ["sample", "-c", ck, "-n", "20"],
        "eval": ["eval", "-c", ck],
    }[command]
    code = (
        "import sys; from charrnn.cli import cli; "
        "cli.main(sys.argv[1:], standalone_mode=False); "
        "assert 'numba' not in sys.modules, 'numba was imported'"
    )
    argv = [sys.executable, "-c", code, *map(str, args), "--engine", "numpy"]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_auto_falls_back_to_numpy_with_a_note_the_first_time(monkeypatch, tmp_path):
    monkeypatch.setattr(engines, "numba_missing", lambda: "No module named 'numba'")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # a machine that has not seen the note
    notes = []
    assert engines.get("auto", note=notes.append).name == "numpy"
    assert engines.get("auto", note=notes.append).name == "numpy"
    assert len(notes) == 1 and "numba is not installed" in notes[0] and "charrnn[fast]" in notes[0]
    with pytest.raises(Exception, match=r"charrnn\[fast\]"):
        engines.get("numba")


def test_the_fallback_note_reaches_stderr_once(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(engines, "numba_missing", lambda: "No module named 'numba'")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(engines.ENV, raising=False)
    first = ok(train(tiny_corpus, tmp_path / "a"))  # -q: notes are quiet, the marker is not written
    assert "numba is not installed" not in first.stderr
    second = ok(run("train", tiny_corpus, "--checkpoint-dir", tmp_path / "b", "--max-steps", "2", "--time-limit", "0"))
    third = ok(run("train", tiny_corpus, "--checkpoint-dir", tmp_path / "c", "--max-steps", "2", "--time-limit", "0"))
    assert second.stderr.count("numba is not installed") == 1
    assert "numba is not installed" not in third.stderr


def test_the_environment_names_the_default(monkeypatch):
    monkeypatch.setenv(engines.ENV, "numpy")
    assert engines.get().name == "numpy"
    monkeypatch.setenv(engines.ENV, "cuda")
    with pytest.raises(Exception, match="unknown engine 'cuda'"):
        engines.get()


def test_naming_a_missing_numba_is_a_usage_error(tiny_corpus, tmp_path, monkeypatch):
    from helpers import fails

    monkeypatch.setattr(engines, "numba_missing", lambda: "No module named 'numba'")
    line = fails(train(tiny_corpus, tmp_path / "ck", "--engine", "numba"), 2, "pip install 'charrnn[fast]'")
    assert "numba" in line


@pytest.mark.parametrize("engine", ENGINES)
def test_the_engine_is_recorded_and_shown(tiny_corpus, tmp_path, engine):
    ck = tmp_path / "ck"
    ok(train(tiny_corpus, ck, "--engine", engine))
    assert checkpoint.load(str(ck / "latest.npz")).progress["engine"] == engine
    with open(ck / "metrics.jsonl") as f:
        assert {json.loads(line)["engine"] for line in f} == {engine}
    assert f"on the {engine} engine" in ok(run("info", ck)).output
    assert json.loads(ok(run("info", ck, "--json")).output)["engine"] == engine


@needs_numba
def test_resuming_with_the_other_engine_says_the_figures_differ(tiny_corpus, tmp_path):
    ck = tmp_path / "ck"
    ok(train(tiny_corpus, ck, "--engine", "numpy"))
    result = ok(run("train", tiny_corpus, "--checkpoint-dir", ck, "--resume", "--max-steps", "15", "--engine", "numba"))
    assert "trained on the numpy engine and goes on with the numba engine" in result.stderr
    assert checkpoint.load(str(ck / "latest.npz")).progress["engine"] == "numba"


@pytest.mark.parametrize("command", ["sample", "eval", "vis"])
def test_every_reading_command_takes_the_engine(tiny_corpus, tmp_path, command):
    ck = tmp_path / "ck"
    ok(train(tiny_corpus, ck))
    args = {
        "sample": ["sample", "-c", ck, "-n", "20", "--engine", "numpy"],
        "eval": ["eval", "-c", ck, "--engine", "numpy"],
        "vis": ["vis", "-c", ck, "--text", "the cat", "-o", tmp_path / "p.html", "--engine", "numpy"],
    }[command]
    ok(run(*args))
    bad = run(*args[:-1], "nope")
    assert bad.exit_code == 2 and "nope" in bad.stderr


def test_a_checkpoint_may_name_every_engine_and_only_those():
    assert set(engines.ENGINES) == set(engines.NAMES) - {"auto"}


@needs_numba
def test_numba_adam_equals_numpy_adam():
    from charrnn import optim

    rng = np.random.default_rng(0)
    params = {"w": rng.normal(0, 1, (40, 30)).astype(np.float32), "b": rng.normal(0, 1, 30).astype(np.float32)}
    runs = {}
    for name, kernel in (("numpy", None), ("numba", engines.get("numba").adam)):
        p = {k: v.copy() for k, v in params.items()}
        state = optim.init_state("adam", p)
        for t in range(1, 6):
            grads = {k: np.random.default_rng(t).normal(0, 1, v.shape).astype(np.float32) for k, v in p.items()}
            optim.update("adam", p, grads, state, 1e-2, t, {"w": 2.0}, beta2=0.99, adam_kernel=kernel)
        runs[name] = (p, state)
    for k in params:
        _close(runs["numba"][0][k], runs["numpy"][0][k], f"parameter {k}")
    for k in runs["numpy"][1]:
        _close(runs["numba"][1][k], runs["numpy"][1][k], f"optimizer state {k}")


@needs_numba
def test_numba_lookup_equals_the_one_hot_product():
    cfg, params, x, _, state = _setup("gru", 1, V=600)  # above the one-hot limit too
    for V in (20, 600):
        cfg_v = ModelConfig(cell="gru", vocab_size=V, hidden_size=cfg.hidden_size, n_layers=1)
        p = model.init_params(cfg_v, np.random.default_rng(1))
        ids = np.random.default_rng(2).integers(0, V, x.shape)
        a, _, _ = model.forward(p, cfg_v, ids, state[:1], engine=engines.get("numpy"))
        b, _, _ = model.forward(p, cfg_v, ids, state[:1], engine=engines.get("numba"))
        _close(b, a, f"logits, V={V}")


@needs_numba
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_warm_up_compiles_what_a_training_step_runs(cell):
    """After warm_up, a step on ids of every type a vocabulary has (data.id_dtype: uint8,
    uint16 above 256 characters, uint32 above 65,536) and on the probe's int64 compiles
    nothing: no compilation inside a timed step."""
    from numba.core.registry import CPUDispatcher  # numba only where it is installed

    from charrnn.engines import numba_kernels

    engine = engines.get("numba")
    engines.warm_up(engine, cell)
    kernels = {n: f for n, f in vars(numba_kernels).items() if isinstance(f, CPUDispatcher)}
    before = {n: len(f.signatures) for n, f in kernels.items()}
    cfg, params, x, y, state = _setup(cell, 2)
    for ids in [x.astype(data.id_dtype(n)) for n in (cfg.vocab_size, 300, 70_000)] + [x.astype(np.int64)]:
        _, grads, _ = model.loss_and_grads(params, cfg, ids, y, state, 0.25, np.random.default_rng(0), engine=engine)
    state = optim.init_state("adam", params)
    optim.update("adam", params, grads, state, 1e-3, 1, beta2=0.999, adam_kernel=engine.adam)
    assert {n: len(f.signatures) for n, f in kernels.items()} == before


@pytest.mark.parametrize("engine", ENGINES)
def test_the_same_step_on_one_core_and_on_two(engine):
    """The shard layout depends on the batch only: shards one after the other (one core)
    and in parallel threads (two) give the same numbers, bit for bit."""
    from charrnn.parallel import ShardRunner

    cfg, params, x, y, state = _setup("lstm", 2, B=32, T=16)
    e = engines.get(engine)
    out = []
    for threads in (1, 2):
        runner = ShardRunner(32, threads=threads)
        out.append(runner.loss_and_grads(params, cfg, x, y, state, 0.25, np.random.default_rng(9), engine=e))
        runner.close()
    (l1, g1, s1), (l2, g2, s2) = out
    assert l1 == l2
    assert all(np.array_equal(g1[k], g2[k]) for k in g1)
    assert all(np.array_equal(a, b) for la, lb in zip(s1, s2) for a, b in zip(la, lb))
