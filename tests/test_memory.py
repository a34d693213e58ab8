"""process.keep_freed_memory: freed step temporaries are reused, not faulted in again."""

import os
import platform
import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import numpy as np
from charrnn.process import keep_freed_memory
ok = keep_freed_memory() if sys.argv[1] == "on" else False
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1
def step():
    a = [np.ones((64, 1024, 32), dtype=np.float32) for _ in range(N)]  # 8 MB each, like (T,G,B) arrays
    b = a[0] * 2.0
    return float(b[0, 0, 0])
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(ok, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode, env_extra=None, arrays=1):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    env.update(env_extra or {})
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode, str(arrays)], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_arrays_are_reused_without_page_faults():
    ok, faults_on = _faults("on")
    _, faults_off = _faults("off")
    assert ok
    # 10 steps of two 8 MB arrays: without the setting, glibc gives them back to the
    # system and faults all their pages in again every step; with it, none
    assert faults_off > 5_000
    assert faults_on < 500


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_step_larger_than_128_mb_is_not_given_back_after_every_step():
    # 21 arrays of 8 MB live at once, 168 MB: the step of an LSTM 2x448 on War and
    # Peace frees about that much at once, more than a 128 MB trim threshold, which
    # would hand the heap's top back to the system after every step
    ok, faults = _faults("on", arrays=21)
    assert ok
    assert faults < 500


def test_user_malloc_settings_are_left_alone():
    ok, _ = _faults("on", {"MALLOC_TRIM_THRESHOLD_": "1000000"})
    assert not ok
