"""One model trained by several MPI ranks (`mpiexec -n 2 charrnn train ...`).

The runs here start real MPI jobs of two ranks on this machine. They need mpi4py and an
``mpiexec`` (`pip install '.[mpi]'` brings both); without them they skip, saying why,
unless CHARRNN_REQUIRE_MPI is set (CI sets it), where a missing MPI fails the suite.
The World of a single process, which every other run uses, is tested in-process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import ENGINES, NEEDS_NUMBA, assert_same_run, make_text, spawn

from charrnn import checkpoint, distributed


def _mpiexec() -> str | None:
    """The launcher beside this Python (the mpich wheel's), else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.access(here, os.X_OK) else shutil.which("mpiexec")


def _why_no_mpi() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install '.[mpi]')"
    if _mpiexec() is None:
        return "no mpiexec on PATH or beside this Python (pip install '.[mpi]')"
    return None


WHY = _why_no_mpi()
if WHY and os.environ.get("CHARRNN_REQUIRE_MPI"):
    raise RuntimeError(f"CHARRNN_REQUIRE_MPI is set, but MPI cannot run: {WHY}")
NEEDS_MPI = pytest.mark.skipif(WHY is not None, reason=WHY or "")


def _why_no_slurm() -> str | None:
    if WHY is not None:
        return WHY
    if shutil.which("sbatch") is None:
        return "no Slurm here (sbatch); .ci/slurm-up starts a one-machine cluster"
    idle = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if "idle" not in idle.stdout.split():
        return f"Slurm has no idle node (sinfo: {(idle.stdout + idle.stderr).strip() or 'nothing'})"
    return None


WHY_NO_SLURM = _why_no_slurm()
if WHY_NO_SLURM and os.environ.get("CHARRNN_REQUIRE_SLURM"):
    raise RuntimeError(f"CHARRNN_REQUIRE_SLURM is set, but Slurm cannot run: {WHY_NO_SLURM}")
NEEDS_SLURM = pytest.mark.skipif(WHY_NO_SLURM is not None, reason=WHY_NO_SLURM or "")
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

# small enough for a step of a few milliseconds, large enough to split (B=64: 32 a rank)
MODEL = ["--hidden-size", "32", "--layers", "2", "--seq-len", "16", "--batch-size", "64", "--dropout", "0.2"]
LIMITS = ["--time-limit", "0", "--lr-schedule", "constant", "--engine", "numpy", "--sample-chars", "0"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(make_text(40_000), encoding="utf-8")
    return path


def charrnn(*args) -> list[str]:
    return [sys.executable, "-m", "charrnn", *map(str, args)]


def mpi(n: int, *args) -> list[str]:
    return [_mpiexec(), "-n", str(n), *charrnn(*args)]


def launch(cmd, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def trained(result) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


def params(path) -> dict:
    return checkpoint.load(str(path)).params


def max_relative_difference(a: dict, b: dict) -> float:
    """The largest |a - b| of any array, relative to the largest |a| of that array."""
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max() / np.abs(a[k]).max()) for k in a)


# ------------------------------------------------------------------ in one process


def test_a_process_without_a_launcher_is_a_world_of_one():
    world = distributed.World()
    assert (world.rank, world.size, world.root) == (0, 1, True)
    assert world.streams(64) == (0, 64)
    flat = np.arange(4.0)
    assert world.sum_(flat) is flat and list(flat) == [0, 1, 2, 3]
    assert world.gather("x") == ["x"] and world.bcast("y") == "y"
    assert world.leaving_together()


def test_a_run_without_a_launcher_never_imports_mpi4py(corpus, tmp_path):
    code = (
        "import sys; from charrnn.cli import cli; "
        "cli.main(sys.argv[1:], standalone_mode=False); "
        "assert 'mpi4py' not in sys.modules, 'mpi4py was imported'"
    )
    args = ["train", corpus, *MODEL, *LIMITS, "--max-steps", "2", "--checkpoint-dir", tmp_path / "ck", "-q"]
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ck" / "latest.npz").exists()


def launched_size(environ: dict) -> int:
    return distributed.launcher(environ)[1]


def test_the_launchers_say_how_many_processes_they_started():
    assert launched_size({}) == 1
    assert launched_size({"PMI_SIZE": "4"}) == 4  # MPICH's Hydra
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "3"}) == 3  # Open MPI
    assert launched_size({"SLURM_STEP_NUM_TASKS": "8"}) == 8  # srun
    assert launched_size({"PMI_SIZE": "x"}) == 1


@pytest.mark.parametrize("batch, ranks", [(64, 2), (65, 2), (64, 3), (3, 4)])
def test_the_ranks_streams_are_contiguous_and_cover_the_batch(batch, ranks):
    parts = [distributed.World(rank, ranks).streams(batch) for rank in range(ranks)]
    assert parts[0][0] == 0 and parts[-1][1] == batch
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    sizes = [b - a for a, b in parts]
    assert max(sizes) - min(sizes) <= 1


def test_a_failure_in_a_step_taken_together_is_raised_where_it_happened():
    from charrnn.errors import DataError

    with pytest.raises(DataError, match="unreadable"):
        with distributed.World().together():
            raise DataError("unreadable")


def test_parts_of_a_batch_sum_to_the_whole_batchs_step():
    """Two ranks' parts of a step, summed, are the whole batch's loss and gradient to
    float32 rounding, and their new states are the whole batch's rows."""
    from charrnn import model, parallel
    from charrnn.config import ModelConfig

    cfg = ModelConfig(vocab_size=20, cell="lstm", hidden_size=16, n_layers=2, dropout=0.3)
    rng = np.random.default_rng(0)
    params_ = model.init_params(cfg, rng)
    x = rng.integers(0, 20, (64, 12))
    y = rng.integers(0, 20, (64, 12))
    state = model.init_hidden(cfg, 64)
    whole = parallel.ShardRunner(64).loss_and_grads(params_, cfg, x, y, state, 0.3, np.random.default_rng(5))
    parts = [
        parallel.ShardRunner(64, part=distributed.split(64, 2, r)).loss_and_grads(
            params_, cfg, x, y, state, 0.3, np.random.default_rng(5)
        )
        for r in range(2)
    ]
    assert parts[0][0] + parts[1][0] == pytest.approx(whole[0], rel=1e-6)
    for name, g in whole[1].items():
        np.testing.assert_allclose(parts[0][1][name] + parts[1][1][name], g, rtol=1e-4, atol=1e-6 * np.abs(g).max())
    for layer, (a, b) in zip(whole[2], zip(parts[0][2], parts[1][2])):
        for s, sa, sb in zip(layer, a, b):
            np.testing.assert_allclose(np.concatenate([sa, sb]), s, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ real MPI jobs


@NEEDS_MPI
@pytest.mark.parametrize("engine", ENGINES)
def test_two_ranks_of_32_streams_equal_one_process_of_64_to_float32_rounding(corpus, tmp_path, engine):
    steps = ["--max-steps", "20", "--eval-every", "10", "--engine", engine]
    trained(launch(charrnn("train", corpus, *MODEL, *LIMITS, *steps, "--checkpoint-dir", tmp_path / "one", "-q")))
    two = trained(launch(mpi(2, "train", corpus, *MODEL, *LIMITS, *steps, "--checkpoint-dir", tmp_path / "two")))
    assert "2 MPI ranks" in two.stderr
    a, b = params(tmp_path / "one" / "latest.npz"), params(tmp_path / "two" / "latest.npz")
    assert max_relative_difference(a, b) < 1e-4  # measured: about 1e-6
    lines = [
        [json.loads(line) for line in open(tmp_path / d / "metrics.jsonl", encoding="utf-8")] for d in ("one", "two")
    ]
    assert [line["step"] for line in lines[0]] == [line["step"] for line in lines[1]] == [10, 20]
    for x, y in zip(*lines):
        assert y["train_loss"] == pytest.approx(x["train_loss"], rel=1e-5)
        assert y["val_loss"] == pytest.approx(x["val_loss"], rel=1e-5)
    assert lines[1][-1]["ranks"] == 2 and checkpoint.load(str(tmp_path / "two" / "latest.npz")).progress["ranks"] == 2


@NEEDS_MPI
def test_two_ranks_repeat_bit_for_bit_and_resume_exactly(corpus, tmp_path):
    def two_ranks(directory, *extra):
        return trained(launch(mpi(2, "train", corpus, *MODEL, *LIMITS, "--checkpoint-dir", directory, *extra)))

    two_ranks(tmp_path / "a", "--max-steps", "20", "--eval-every", "10")
    two_ranks(tmp_path / "b", "--max-steps", "20", "--eval-every", "10")
    two_ranks(tmp_path / "c", "--max-steps", "10", "--eval-every", "10")
    two_ranks(tmp_path / "c", "--max-steps", "20", "--eval-every", "10", "--resume")
    a, b, c = (checkpoint.load(str(tmp_path / d / "latest.npz")) for d in "abc")
    assert_same_run(a, b)
    assert_same_run(a, c)


@NEEDS_MPI
def test_a_two_rank_run_resumes_in_one_process(corpus, tmp_path):
    steps = ["--eval-every", "10"]
    trained(
        launch(
            mpi(2, "train", corpus, *MODEL, *LIMITS, *steps, "--max-steps", "20", "--checkpoint-dir", tmp_path / "a")
        )
    )
    trained(
        launch(
            mpi(2, "train", corpus, *MODEL, *LIMITS, *steps, "--max-steps", "10", "--checkpoint-dir", tmp_path / "b")
        )
    )
    alone = trained(
        launch(
            charrnn(
                "train", corpus, *LIMITS, *steps, "--max-steps", "20", "--checkpoint-dir", tmp_path / "b", "--resume"
            )
        )
    )
    assert "resuming from" in alone.stderr
    resumed = checkpoint.load(str(tmp_path / "b" / "latest.npz"))
    assert resumed.progress["step"] == 20 and resumed.progress["ranks"] == 1
    assert max_relative_difference(params(tmp_path / "a" / "latest.npz"), resumed.params) < 1e-4


def without_launcher_lines(text: str) -> str:
    """``text`` without the lines MPICH's mpiexec prints itself ("[mpiexec@host] Sending
    Ctrl-C to processes as requested"), which are not charrnn's."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("[mpiexec@"))


def _wait_for(predicate, proc, seconds=120):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _ranks(marker: str) -> dict[int, int]:
    """{rank: pid} of the charrnn processes whose command line holds ``marker``."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
            if marker.encode() not in cmdline or b"charrnn" not in cmdline:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        rank = env.get(b"PMI_RANK") or env.get(b"OMPI_COMM_WORLD_RANK")
        if rank is not None:
            found[int(rank)] = int(pid)
    return found


@NEEDS_MPI
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_launcher_saves_and_stops_every_rank(corpus, tmp_path, signum):
    ck = tmp_path / f"ck-{signum}"
    cmd = mpi(2, "train", corpus, *MODEL, *LIMITS, "--max-steps", "100000", "--eval-every", "5", "--checkpoint-dir", ck)
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (ck / "latest.npz").exists(), proc)
    assert len(_ranks(str(ck))) == 2
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert not without_launcher_lines(out).strip() and "Traceback" not in err  # charrnn printed nothing on stdout
    notes = [line for line in err.splitlines() if line.startswith("note: interrupted")]
    assert len(notes) == 1 and signal.Signals(signum).name in notes[0], err  # rank 0 speaks for all
    saved = checkpoint.load(str(ck / "latest.npz"))
    assert saved.progress["step"] > 0 and f"at step {saved.progress['step']}" in notes[0]
    assert "resume with: mpiexec -n 2 charrnn train" in notes[0]
    assert _ranks(str(ck)) == {}


@NEEDS_MPI
def test_a_rank_that_dies_ends_the_run_and_leaves_the_last_checkpoint(corpus, tmp_path):
    ck = tmp_path / "ck"
    cmd = mpi(2, "train", corpus, *MODEL, *LIMITS, "--max-steps", "100000", "--eval-every", "5", "--checkpoint-dir", ck)
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (ck / "latest.npz").exists(), proc)
    os.kill(_ranks(str(ck))[1], signal.SIGKILL)
    started = time.monotonic()
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert time.monotonic() - started < 30
    assert checkpoint.load(str(ck / "latest.npz")).progress["step"] > 0
    assert _ranks(str(ck)) == {}


def _two_places(tmp_path, text_a: str | None, text_b: str | None):
    """Two working directories whose text.txt differ (None: none there), one per rank."""
    places = []
    for name, text in (("a", text_a), ("b", text_b)):
        place = tmp_path / name
        place.mkdir()
        if text is not None:
            (place / "text.txt").write_text(text, encoding="utf-8")
        places.append(place)
    return places


def _one_rank_each(places, ck, *extra) -> subprocess.CompletedProcess:
    """mpiexec running rank 0 in places[0] and rank 1 in places[1] (MPMD form)."""
    args = ["train", "text.txt", *MODEL, *LIMITS, "--max-steps", "5", "--checkpoint-dir", ck, *extra]
    return launch(
        [
            _mpiexec(),
            "-n",
            "1",
            "-wdir",
            places[0],
            *charrnn(*args),
            ":",
            "-n",
            "1",
            "-wdir",
            places[1],
            *charrnn(*args),
        ]
    )


def _one_error(result, code: int, *fragments: str) -> str:
    assert result.returncode == code, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


@NEEDS_MPI
def test_ranks_that_read_different_texts_stop_with_one_error(tmp_path):
    places = _two_places(tmp_path, make_text(20_000, seed=1), make_text(20_000, seed=2))
    _one_error(_one_rank_each(places, tmp_path / "ck"), 2, "rank 1 of 2 has a different text in text.txt from rank 0")
    assert not (tmp_path / "ck" / "latest.npz").exists()


@NEEDS_MPI
def test_a_rank_that_cannot_read_the_text_stops_every_rank_with_one_error(tmp_path):
    places = _two_places(tmp_path, make_text(20_000), None)
    alone = launch(charrnn("train", "text.txt"), cwd=places[1])
    assert alone.returncode == 2 and "Error: text.txt: no such file" in alone.stderr
    _one_error(_one_rank_each(places, tmp_path / "ck"), 2, "rank 1: text.txt: no such file")


@NEEDS_MPI
def test_a_rank_that_cannot_read_the_checkpoint_it_resumes_stops_every_rank_with_one_error(tmp_path):
    text = make_text(20_000)
    places = _two_places(tmp_path, text, text)
    args = ["train", "text.txt", *MODEL, *LIMITS, "--max-steps", "5", "--checkpoint-dir", "ck"]
    trained(launch(charrnn(*args), cwd=places[0]))  # rank 0's directory holds the run, rank 1's none
    _one_error(_one_rank_each(places, "ck", "--max-steps", "10", "--resume"), 1, "rank 1:", "ck")
    assert checkpoint.load(str(places[0] / "ck" / "latest.npz")).progress["step"] == 5


def test_the_batch_grows_with_the_ranks_so_that_each_has_enough_streams():
    from charrnn import autosize

    assert autosize.batch_for_ranks(64, 1) == 64
    assert autosize.batch_for_ranks(64, 4) == 64  # 16 a rank
    assert autosize.batch_for_ranks(64, 8) == 8 * autosize.RANK_STREAMS
    assert autosize.batch_for_ranks(256, 8) == 256


@NEEDS_MPI
def test_a_batch_smaller_than_the_ranks_is_refused_on_every_rank(corpus, tmp_path):
    args = ["train", corpus, *MODEL, *LIMITS, "--batch-size", "1", "--checkpoint-dir", tmp_path / "ck"]
    _one_error(launch(mpi(2, *args)), 2, "a batch of 1 stream cannot be shared by 2 MPI ranks")


@NEEDS_MPI
def test_two_ranks_choose_their_batch_and_say_so(corpus, tmp_path):
    args = ["train", corpus, "--hidden-size", "16", "--seq-len", "8", *LIMITS, "--max-steps", "2"]
    result = trained(launch(mpi(2, *args, "--checkpoint-dir", tmp_path / "ck")))
    assert "auto: batch of 64 streams on 2 ranks, 32 on each" in result.stderr


@NEEDS_SLURM
def test_the_slurm_example_trains_and_resumes_with_two_tasks(corpus, tmp_path):
    script = os.path.join(EXAMPLES, "slurm_train.sbatch")
    sbatch = ["sbatch", "--wait", "--nodes", "1", "--ntasks-per-node", "2", script, corpus, *MODEL, *LIMITS]
    run_dir = {**os.environ, "RUN_DIR": str(tmp_path / "ck")}
    first = subprocess.run([*sbatch, "--max-steps", "10"], cwd=tmp_path, env=run_dir, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr + "".join(p.read_text() for p in tmp_path.glob("charrnn-*.log"))
    again = {**run_dir, "RESUME": "1"}
    second = subprocess.run([*sbatch, "--max-steps", "20"], cwd=tmp_path, env=again, capture_output=True, text=True)
    logs = {p.name: p.read_text() for p in tmp_path.glob("charrnn-*.log")}
    assert second.returncode == 0, second.stderr + "".join(logs.values())
    assert len(logs) == 2 and all("2 MPI ranks" in log for log in logs.values())
    assert sum("resuming from" in log for log in logs.values()) == 1
    saved = checkpoint.load(str(tmp_path / "ck" / "latest.npz"))
    assert saved.progress["step"] == 20 and saved.progress["ranks"] == 2


@NEEDS_MPI
@NEEDS_NUMBA
def test_ranks_on_different_engines_stop_with_one_error(corpus, tmp_path):
    args = ["train", corpus, *MODEL, *LIMITS, "--max-steps", "5", "--checkpoint-dir", tmp_path / "ck"]
    result = launch([_mpiexec(), "-n", "1", *charrnn(*args), ":", "-n", "1", *charrnn(*args, "--engine", "numba")])
    _one_error(result, 2, "rank 1 of 2 has a different engine from rank 0", "--engine")


@NEEDS_MPI
def test_a_launcher_whose_processes_mpi_cannot_see_is_refused(corpus, tmp_path):
    """srun starting processes that this MPI library cannot join into one world: each
    would train a model of its own into the same directory."""
    env = {**os.environ, "SLURM_STEP_NUM_TASKS": "2"}
    args = ["train", corpus, *MODEL, *LIMITS, "--max-steps", "2", "--checkpoint-dir", tmp_path / "ck"]
    result = subprocess.run(charrnn(*args), capture_output=True, text=True, env=env, timeout=120)
    _one_error(result, 2, "started as one of 2 processes (SLURM_STEP_NUM_TASKS=2), but MPI sees 1")
    assert not (tmp_path / "ck").exists()
