"""Checkpoints: saves that survive faults, and loads that trust nothing. Every bad
file is refused with one CheckpointError (exit 1 on the command line) before any
large allocation, and nothing in a file is ever unpickled."""

import errno
import io
import json
import os
import pickle
import random
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from helpers import fails, leftovers, run, sha256

from charrnn import checkpoint, model, optim, rundir
from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import Vocab
from charrnn.errors import CheckpointError

FUZZ_MUTATIONS = 1500


def make_checkpoint(seed: int = 0) -> checkpoint.Checkpoint:
    rng = np.random.default_rng(seed)
    model_cfg = ModelConfig(cell="lstm", vocab_size=5, hidden_size=8, n_layers=2)
    train_cfg = TrainConfig(batch_size=2, seq_len=4)
    params = model.init_params(model_cfg, rng)
    opt_state = {k: rng.random(v.shape, dtype=np.float32) for k, v in optim.init_state("adam", params).items()}
    state = model.flatten_hidden(model_cfg, [tuple(rng.random((2, 8), dtype=np.float32) for _ in range(2))] * 2)
    progress = {
        "step": 7,
        "epoch": 0,
        "chunk": 7,
        "smoothed_loss": 1.5,
        "elapsed": 0.25,
        "best_val": 1.6,
        "last_val": 1.6,
    }
    return checkpoint.Checkpoint(
        model_cfg,
        train_cfg,
        Vocab("\n abc"),
        params,
        opt_state,
        state,
        progress,
        rng.bit_generator.state,
        {"name": "t", "sha256": "0" * 64, "encoding": "utf-8"},
    )


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "latest.npz"
    checkpoint.save(make_checkpoint(), str(path))
    return path


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def write_zip(path, entries: dict[str, bytes], deflate=()) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data, zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED)


def npy(array) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=True)
    return buf.getvalue()


def npy_header(shape, descr="<f4") -> bytes:
    """A .npy header with no data behind it: what a hostile file declares."""
    h = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin-1")
    h += b" " * (-(10 + len(h) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h


def with_meta(path, edit) -> dict[str, bytes]:
    entries = members(path)
    meta = json.loads(np.load(io.BytesIO(entries["meta.npy"])).tobytes())
    edit(meta)
    entries["meta.npy"] = npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    return entries


class Payload:
    """Unpickling this creates a file: the proof that a loader ran code from a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_roundtrip_is_exact(saved):
    original, loaded = make_checkpoint(), checkpoint.load(str(saved))
    for name in ("params", "opt_state", "hidden"):
        a, b = getattr(original, name), getattr(loaded, name)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert loaded.progress == original.progress and loaded.rng_state == original.rng_state


# ---------------------------------------------------------------- refused files


def _truncated(p, t):
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _empty(p, t):
    p.write_bytes(b"")


def _random(p, t):
    p.write_bytes(np.random.default_rng(0).bytes(4000))


def _bitflip(p, t):
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 0x10  # inside param data: the CRC-32 catches it
    p.write_bytes(bytes(data))


def _pickle(p, t):
    p.write_bytes(pickle.dumps(Payload(t / "marker")))


def _object_array(p, t):
    write_zip(p, {**members(p), "param/Why.npy": npy(np.array([Payload(t / "marker")], dtype=object))})


def _missing(p, t):
    write_zip(p, {k: v for k, v in members(p).items() if k != "opt/v.Why.npy"})


def _extra(p, t):
    write_zip(p, {**members(p), "param/extra.npy": npy(np.zeros(3, np.float32))})


def _shape(p, t):
    write_zip(p, {**members(p), "param/Why.npy": npy(np.zeros((8, 6), np.float32))})


def _dtype(p, t):
    write_zip(p, {**members(p), "param/by.npy": npy(np.zeros(5, np.int64))})


def _version(p, t):
    write_zip(p, with_meta(p, lambda m: m.update(format_version=99)))


def _hidden(p, t):
    write_zip(p, with_meta(p, lambda m: m["model"].update(hidden_size=9)))


def _layers(p, t):
    write_zip(p, with_meta(p, lambda m: m["model"].update(n_layers=10**12)))


def _progress(p, t):
    write_zip(p, with_meta(p, lambda m: m["progress"].update(step="7")))


def _rng(p, t):
    write_zip(p, with_meta(p, lambda m: m["rng_state"].update(bit_generator="MT19937")))


def _header_bomb(p, t):
    write_zip(p, {**members(p), "param/Why.npy": npy_header((2**40,))})


def _meta_bomb(p, t):
    write_zip(p, {**members(p), "meta.npy": npy_header((2**40,), "|u1")})


def _zip_bomb(p, t):
    # 64 MB of zeros that deflate to about 64 KB
    write_zip(p, {**members(p), "param/Why.npy": npy_header((2**24,)) + bytes(2**26)}, {"param/Why.npy"})


def _declared_size(p, t):
    """A stored member whose directory entry claims 1 GB: sizes are checked against the file."""
    data = bytearray(p.read_bytes())
    entry = data.rindex(b"PK\x01\x02")  # the last central directory entry
    data[entry + 20 : entry + 28] = struct.pack("<II", 2**30, 2**30)
    p.write_bytes(bytes(data))


def _duplicate(p, t):
    with zipfile.ZipFile(p, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("param/by.npy", npy(np.ones(5, np.float32)))


REFUSED = {
    "truncated": (_truncated, "corrupt or unreadable"),
    "empty": (_empty, "corrupt or unreadable (File is not a zip file)"),
    "random bytes": (_random, "corrupt or unreadable (File is not a zip file)"),
    "bit flip": (_bitflip, "Bad CRC-32"),
    "pickle renamed .npz": (_pickle, "corrupt or unreadable (File is not a zip file)"),
    "object array": (_object_array, "array param/Why is not a plain numeric array"),
    "missing array": (_missing, "array opt/v.Why is missing"),
    "extra array": (_extra, "unexpected array param/extra"),
    "wrong shape": (_shape, "array param/Why has shape (8, 6) but the configuration implies (8, 5)"),
    "wrong dtype": (_dtype, "array param/by has dtype int64, expected float32 or float64"),
    "future version": (_version, "format_version 99 is not supported"),
    "config contradicts arrays": (_hidden, "has shape (5, 32) but the configuration implies (5, 36)"),
    "endless layers": (_layers, "model.n_layers 1000000000000 implies more arrays than the 29 in the file"),
    "malformed progress": (_progress, "progress field 'step' is '7', not a count"),
    "malformed rng state": (_rng, "metadata field 'rng_state' is malformed"),
    "huge declared shape": (_header_bomb, "has shape (1099511627776,) but the configuration implies"),
    "huge metadata": (_meta_bomb, "array meta declares 1099511627776 bytes of data that the archive does not hold"),
    "zip bomb": (_zip_bomb, "array param/Why is compressed; charrnn checkpoints are stored uncompressed"),
    "declared size beyond the file": (_declared_size, "bytes but the file holds only"),
    "duplicate member": (_duplicate, "it names an array twice"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_bad_checkpoint_is_refused_with_one_line(case, saved, tmp_path):
    corrupt, message = REFUSED[case]
    corrupt(saved, tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as err:
            checkpoint.load(str(saved))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak:,} bytes allocated while refusing the file"
    assert message in str(err.value) and str(saved) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "marker").exists()
    line = fails(run("sample", "-c", saved), 1, f"Error: checkpoint {saved} is", message)
    assert len(line) < 400


def test_payloads_are_live(tmp_path):
    """The hostile files above would run code if unpickled: the tests are not vacuous."""
    pickle.loads(pickle.dumps(Payload(tmp_path / "marker"))).close()

    assert (tmp_path / "marker").exists()


def test_non_regular_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    with pytest.raises(CheckpointError, match="not a regular file"):
        checkpoint.load(str(fifo))


# ------------------------------------------------------------------------ fuzz


def _mutations(src: bytes, path, rng: random.Random):
    """Truncations, bit flips, random overwrites, flips in the zip headers, and
    re-zipped archives with an edited .npy header or metadata value (valid CRCs)."""
    headers = [i for i in range(len(src)) if src.startswith((b"PK\x03\x04", b"PK\x01\x02"), i)]
    entries = members(path)
    meta = json.loads(np.load(io.BytesIO(entries["meta.npy"])).tobytes())
    values = [None, -1, 0, 1, 2**40, 1e308, float("nan"), "x", "", [], {}, True, "\ud800"]
    for _ in range(FUZZ_MUTATIONS):
        data = bytearray(src)
        kind = rng.choice(["truncate", "flip", "overwrite", "zip header", "npy header", "meta"])
        if kind == "truncate":
            del data[rng.randrange(len(data)) :]
        elif kind == "flip":
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == "overwrite":
            for _ in range(rng.randint(2, 16)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == "zip header":
            data[rng.choice(headers) + rng.randrange(4, 46)] = rng.randrange(256)
        elif kind == "npy header":
            name = rng.choice(sorted(entries))
            raw = bytearray(entries[name])
            raw[rng.randrange(8, 128)] = rng.choice(b"0123456789(),: '<>|fiuObU\n\x00")
            buf = io.BytesIO()
            write_zip(buf, {**entries, name: bytes(raw)})
            data = bytearray(buf.getvalue())
        else:
            edited = json.loads(json.dumps(meta))
            section = rng.choice(["model", "train", "progress", "corpus", "rng_state", None])
            if section is None:
                edited[rng.choice(sorted(edited))] = rng.choice(values)
            else:
                edited[section][rng.choice(sorted(edited[section]))] = rng.choice(values)
            buf = io.BytesIO()
            raw = json.dumps(edited).encode("utf-8", "surrogatepass")
            write_zip(buf, {**entries, "meta.npy": npy(np.frombuffer(raw, dtype=np.uint8))})
            data = bytearray(buf.getvalue())
        yield kind, bytes(data)


def test_fuzz_every_load_succeeds_exactly_or_raises_checkpoint_error(saved, tmp_path):
    original = checkpoint.load(str(saved))
    target = tmp_path / "mutant.npz"
    outcomes = {"loaded": 0, "refused": 0}
    for kind, data in _mutations(saved.read_bytes(), saved, random.Random(4)):
        target.write_bytes(data)
        try:
            loaded = checkpoint.load(str(target))
        except CheckpointError as exc:
            assert "unexpected" not in str(exc), (kind, str(exc))  # a failure we did not foresee
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        for name in ("params", "opt_state", "hidden"):
            a, b = getattr(original, name), getattr(loaded, name)
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), (kind, name)
    assert sum(outcomes.values()) == FUZZ_MUTATIONS
    assert min(outcomes.values()) > 0, outcomes  # both branches were exercised


# ---------------------------------------------------------------------- saving


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    "where,message",
    [
        ("savez", "disk full while saving"),
        ("fsync", "disk full while saving"),
        ("replace", "cannot save"),
    ],
)
def test_failed_save_keeps_the_previous_checkpoint(where, message, saved, monkeypatch):
    before = sha256(saved)
    if where == "savez":

        def partial_write(f, **arrays):  # a few bytes reach the temp file, then the disk is full
            f.write(b"PK\x03\x04partial")
            _enospc()

        monkeypatch.setattr(checkpoint.np, "savez", partial_write)
    elif where == "fsync":
        monkeypatch.setattr(checkpoint.os, "fsync", _enospc)
    else:
        monkeypatch.setattr(checkpoint.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(CheckpointError, match=f"{message} .*; the previous checkpoint was kept"):
        checkpoint.save(make_checkpoint(seed=1), str(saved))
    monkeypatch.undo()
    assert sha256(saved) == before and leftovers(saved.parent) == []
    checkpoint.load(str(saved))


def test_interrupt_inside_a_save_leaves_no_temp_file(saved, monkeypatch):
    before = sha256(saved)

    def interrupted(f, **arrays):
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(make_checkpoint(seed=1), str(saved))
    assert sha256(saved) == before and leftovers(saved.parent) == []


def test_non_finite_parameters_are_never_saved(saved):
    ckpt = make_checkpoint()
    ckpt.params["Why"][0, 0] = np.nan
    before = sha256(saved)
    with pytest.raises(CheckpointError, match="refusing to save non-finite parameter Why"):
        checkpoint.save(ckpt, str(saved))
    assert sha256(saved) == before


def test_prune_keeps_the_newest_and_deletes_after_the_new_one_exists(tmp_path, monkeypatch):
    for i, step in enumerate([10, 20, 30, 5, 40]):  # step 5 was written after resuming an older run
        p = tmp_path / f"step-{step:08d}.npz"
        p.write_bytes(b"x")
        os.utime(p, ns=(i * 10**9, i * 10**9))
    (tmp_path / "step-notmine.npz").write_bytes(b"x")
    rundir.prune_steps(str(tmp_path), 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000005.npz", "step-00000040.npz", "step-notmine.npz"]


def test_a_checkpoint_from_before_adam_beta2_resumes_with_the_beta2_it_was_trained_with(saved, tmp_path):
    """Checkpoints written before --adam-beta2 existed were trained with 0.999, whatever
    the default is now: a resumed run must keep it to continue as it would have."""
    path = tmp_path / "old.npz"
    write_zip(path, with_meta(saved, lambda meta: meta["train"].pop("adam_beta2")))
    assert checkpoint.load(str(path)).train_cfg.adam_beta2 == 0.999
    assert checkpoint.load(str(saved)).train_cfg.adam_beta2 == TrainConfig().adam_beta2
