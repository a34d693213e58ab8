"""The benchmarks' own arithmetic (their timings are printed, never asserted): what
profile_step.py sections and what bench_sample.py counts as one stream's weight bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import ENGINES

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import avx2_only  # noqa: E402
import bench_sample  # noqa: E402
import profile_step  # noqa: E402

from charrnn import engines, model  # noqa: E402
from charrnn.config import ModelConfig  # noqa: E402


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_weight_bytes_are_the_stepper_matrices(cell):
    V, H, L = 5, 8, 2
    cfg = ModelConfig(cell=cell, vocab_size=V, hidden_size=H, n_layers=L)
    G = cfg.gates
    params = model.init_params(cfg, np.random.default_rng(0))
    out = bench_sample.weight_streaming(params, cfg, repeats=3)
    # one matrix-vector product per layer for the recurrence and the input of each
    # layer above the first (stacked or apart, the same floats), and the output layer
    # with its bias; layer 0's input is a row of its table, not a product
    floats = L * G * H + (L - 1) * G * H + V * (H + 1)
    assert out["weight_bytes_per_char"] == 4 * floats
    assert out["ceiling_chars_per_s"] > 0 and set(out["matvec_gb_per_s"]) == {"one_thread", "default_threads"}


@pytest.mark.parametrize("engine", ENGINES)
def test_profile_sections_add_up_and_leave_the_cells_as_they_were(capsys, engine):
    ops = engines.get(engine).cells["lstm"]
    profile_step.main(
        [
            "--hidden",
            "8",
            "--layers",
            "2",
            "--batch",
            "16",
            "--seq-len",
            "4",
            "--steps",
            "2",
            "--json",
            "--engine",
            engine,
        ]
    )
    assert engines.get(engine).cells["lstm"] is ops
    out = json.loads(capsys.readouterr().out)
    s = out["shard_seconds"]
    assert out["shard_streams"] == 8  # the first of two shards of 16
    parts = s["recurrence forward"] + s["recurrence backward"] + s["everything else"]
    assert parts == pytest.approx(s["step"], rel=0.5)  # medians of parts need not add exactly
    assert set(out["batch_seconds"]) <= {"parallel", "one after the other"}


def test_bench_eval_times_each_engine_on_the_held_out_text(tiny_corpus, tmp_path, capsys):
    import bench_eval
    from helpers import ok, train

    ok(train(tiny_corpus, tmp_path / "ck"))
    bench_eval.main(["--checkpoint", str(tmp_path / "ck"), "--rounds", "1", "--engines", "numpy"])
    out = json.loads(capsys.readouterr().out)
    assert out["chars"] == 600 and len(out["seconds"]["numpy"]) == 1 and out["speedup_over_numpy"]["numpy"] == 1.0


def test_avx2_only_holds_numpy_and_numba_to_avx2():
    """What a child of avx2_only.py runs: NumPy without its AVX-512 loops, OpenBLAS's
    Haswell kernels, and (with numba) code generation without an AVX-512 feature. On a
    CPU without AVX-512 the same holds trivially."""
    probe = (
        "import json, os, sys\n"
        f"sys.path.insert(0, {os.path.dirname(avx2_only.__file__)!r})\n"
        "import avx2_only\n"
        "print(json.dumps({'numpy_avx512': avx2_only.numpy_avx512(), 'env': dict(os.environ)}))\n"
    )
    out = subprocess.run(
        [sys.executable, avx2_only.__file__, sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    seen = json.loads(out.stdout)
    assert seen["numpy_avx512"] is False
    assert seen["env"]["OPENBLAS_CORETYPE"] == "Haswell"
    features = avx2_only.numba_features()
    if features is not None:  # llvmlite present: numba's features name no AVX-512 one as on
        assert seen["env"]["NUMBA_CPU_FEATURES"] == features
        assert "+avx2" in features.split(",")
        assert not [f for f in features.split(",") if f.startswith("+") and f[1:].startswith(avx2_only.WIDE)]


def test_avx2_only_says_what_it_could_not_run():
    out = subprocess.run([sys.executable, avx2_only.__file__, "no-such-command-here"], capture_output=True, text=True)
    assert out.returncode == 127
    assert out.stderr.startswith("Error: cannot run no-such-command-here") and out.stderr.count("\n") == 1
