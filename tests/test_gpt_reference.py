"""benchmarks/gpt_reference.py: the peer transformer's scoring covers the held-out text
exactly as charrnn's validation does, and a short run reports a finite loss."""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "benchmarks", "gpt_reference.py")
sys.path.insert(0, os.path.dirname(SCRIPT))

import gpt_reference  # noqa: E402


@pytest.mark.parametrize("n, first, block", [(200, 64, 64), (200, 1, 64), (65, 64, 64), (1000, 129, 33), (10, 3, 2)])
def test_scoring_windows_predict_every_character_once_with_half_a_block_of_context(n, first, block):
    seen = []
    for a, j0, j1 in gpt_reference.scoring_windows(n, first, block):
        assert 0 <= a and a + block + 1 <= n  # the window and its targets lie in the text
        for j in range(j0, j1):
            p = j - a - 1  # the output position that predicts character j
            assert 0 <= p < block
            if a > 0:
                assert p + 1 >= block - block // 2 + 1  # characters of context
        seen.extend(range(j0, j1))
    assert seen == list(range(first, n))


def test_a_short_run_reports_a_finite_held_out_loss(tiny_corpus):
    pytest.importorskip("torch", reason="PyTorch is an optional reference (pip install torch)")
    args = ["--corpus", str(tiny_corpus), "--layers", "1", "--heads", "2", "--embd", "16", "--block", "16"]
    args += ["--batch", "4", "--max-steps", "3", "--time-limit", "0", "--eval-every", "2", "--warmup", "1"]
    proc = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["steps"] == 3 and [e["step"] for e in out["evals"]] == [2, 3]
    assert 0 < out["best_val_loss"] < 10
