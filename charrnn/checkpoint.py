"""Checkpoints: one uncompressed ``.npz`` file, written atomically, loaded without pickle.

Layout of the archive (every member is a plain numeric .npy array)::

    meta.npy         uint8   UTF-8 JSON: format, format_version, model and train config,
                             vocabulary, progress counters, RNG state, corpus identity
    param/<name>     float   the model parameters (names from model.param_shapes)
    opt/<slot.name>  float   optimizer state, one array per slot and parameter
    state/<name>     float   the hidden state carried into the next chunk, (B,H) each

Loading trusts nothing: before any array is read, the member list, each member's
declared size and each .npy header's dtype and shape are checked against what the
JSON configuration implies, so a corrupt, truncated, hostile or incompatible file is
refused with a CheckpointError before any large allocation. Pickle is never allowed.
Members must be stored uncompressed (np.savez does that): then every declared size is
bounded by the file's real size, which rules out decompression bombs without a cap
on how large a genuine model may be.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
import tokenize
import zipfile
from dataclasses import dataclass, field

import numpy as np

from charrnn import engines, model, optim, rundir
from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import Vocab
from charrnn.errors import CharRNNError, CheckpointError

FORMAT = "charrnn-checkpoint"
FORMAT_VERSION = 1
MAX_META_BYTES = 1 << 20  # the JSON is a few KB; anything near this is not ours
MAX_NPY_HEADER = 4096  # numpy writes 128-byte headers for our arrays
MAX_MEMBERS = 4096  # a 64-layer GRU with Adam has ~800 arrays
ALLOWED_DTYPES = ("<f4", "<f8")


@dataclass
class Checkpoint:
    """Everything needed to sample from a model or to resume its training exactly."""

    model_cfg: ModelConfig
    train_cfg: TrainConfig
    vocab: Vocab
    params: dict[str, np.ndarray]
    opt_state: dict[str, np.ndarray] = field(default_factory=dict)
    hidden: dict[str, np.ndarray] = field(default_factory=dict)  # carried hidden state, (B,H) each
    progress: dict = field(default_factory=dict)  # step, epoch, chunk, smoothed_loss, ...
    rng_state: dict | None = None  # np.random.Generator bit_generator.state
    corpus: dict = field(default_factory=dict)  # path, chars, sha256 of the training text

    def meta(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model_cfg.to_dict(),
            "train": self.train_cfg.to_dict(),
            "vocab": self.vocab.chars,
            "progress": self.progress,
            "rng_state": self.rng_state,
            "corpus": self.corpus,
            "state_batch": _state_batch(self.hidden),
        }


def _state_batch(hidden: dict[str, np.ndarray]) -> int:
    return int(next(iter(hidden.values())).shape[0]) if hidden else 0


# -------------------------------------------------------------------------- saving


def save(ckpt: Checkpoint, path: str) -> None:
    """Write ``ckpt`` to ``path`` atomically: a temp file in the same directory, fsync,
    then os.replace. The previous file at ``path`` survives any failure, and no temp
    file is left behind."""
    for name, p in ckpt.params.items():
        if not np.all(np.isfinite(p)):
            raise CheckpointError(f"refusing to save non-finite parameter {name} to {path}")
    directory = os.path.dirname(os.path.abspath(path))
    meta = np.frombuffer(json.dumps(ckpt.meta()).encode("utf-8"), dtype=np.uint8)
    arrays = {"meta": meta}
    arrays.update({f"param/{k}": v for k, v in ckpt.params.items()})
    arrays.update({f"opt/{k}": v for k, v in ckpt.opt_state.items()})
    arrays.update({f"state/{k}": v for k, v in ckpt.hidden.items()})
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=rundir.TEMP_PREFIXES[0], suffix=rundir.TEMP_SUFFIX)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a checkpoint is an ordinary file
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(directory)
    except OSError as exc:
        raise CheckpointError(_save_error(path, exc)) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _save_error(path: str, exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"disk full while saving {path}; the previous checkpoint was kept"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {path}: permission denied; the previous checkpoint was kept"
    return f"cannot save {path}: {exc.strerror or exc}; the previous checkpoint was kept"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: str) -> None:
    """Make the rename itself durable (where the platform allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------- loading


# What zipfile, numpy's header parser (tokenize, ast) and json raise on damaged input.
_CORRUPT = (
    OSError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    OverflowError,
    RuntimeError,
    NotImplementedError,
    SyntaxError,
    RecursionError,
    MemoryError,
    tokenize.TokenError,
)


def load(path: str) -> Checkpoint:
    """Load and validate a checkpoint. Every failure is a CheckpointError naming the file."""
    try:
        return _load(path)
    except CharRNNError as exc:
        raise CheckpointError(f"checkpoint {path} is unusable: {exc}") from None
    except _CORRUPT as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({_clip(reason)})") from None
    except Exception as exc:  # noqa: BLE001 - untrusted input: a surprise must still be one clear line
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable (unexpected {type(exc).__name__}: {_clip(str(exc))})"
        ) from None


def _clip(reason: str, limit: int = 200) -> str:
    """numpy quotes a whole damaged header in its messages; one line is enough."""
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[:limit] + "..."


def _load(path: str) -> Checkpoint:
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        raise CheckpointError("it is not a regular file")
    with zipfile.ZipFile(path) as zf:
        _check_directory(zf, st.st_size)
        infos = {i.filename: i for i in zf.infolist()}
        if "meta.npy" not in infos:
            raise CheckpointError("it is not a charrnn checkpoint (no meta.npy)")
        meta_info = infos["meta.npy"]
        if meta_info.file_size > MAX_META_BYTES + MAX_NPY_HEADER:
            raise CheckpointError("its metadata is implausibly large")
        meta_arr = _read_member(zf, meta_info, np.dtype(np.uint8), None)
        meta = _parse_meta(meta_arr.tobytes())
        model_cfg = ModelConfig.from_dict(meta["model"])
        train_cfg = TrainConfig.from_dict(meta["train"])
        vocab = Vocab(meta["vocab"])
        vocab.chars.encode("utf-8")  # refuses lone surrogates, which could not be printed
        if vocab.size != model_cfg.vocab_size:
            raise CheckpointError(
                f"vocabulary has {vocab.size} characters but model.vocab_size is {model_cfg.vocab_size}"
            )
        expected = _expected_members(meta, model_cfg, train_cfg, len(infos))

        present = set(infos) - {"meta.npy"}
        missing = sorted(set(expected) - present)
        extra = sorted(present - set(expected))
        if missing:
            raise CheckpointError(f"array {missing[0][:-4]} is missing")
        if extra:
            raise CheckpointError(f"unexpected array {extra[0][:-4]}")
        dtype = None
        arrays = {}
        for member, shape in expected.items():
            arr = _read_member(zf, infos[member], dtype, shape)
            dtype = dtype or arr.dtype  # every float array shares the parameters' dtype
            arrays[member[:-4]] = arr
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    for name, p in params.items():
        if not np.all(np.isfinite(p)):
            raise CheckpointError(f"parameter {name} holds NaN or infinite values")
    return Checkpoint(
        model_cfg=model_cfg,
        train_cfg=train_cfg,
        vocab=vocab,
        params=params,
        opt_state={k[4:]: v for k, v in arrays.items() if k.startswith("opt/")},
        hidden={k[6:]: v for k, v in arrays.items() if k.startswith("state/")},
        progress=meta["progress"],
        rng_state=meta["rng_state"],
        corpus=meta["corpus"],
    )


def _check_directory(zf: zipfile.ZipFile, file_size: int) -> None:
    """The archive's directory, checked before any member is opened: a bounded number
    of uniquely named, uncompressed members whose sizes fit in the file itself."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise CheckpointError(f"it has {len(infos)} members, far more than any model needs")
    if len({i.filename for i in infos}) != len(infos):
        raise CheckpointError("it names an array twice")
    for info in infos:
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(
                f"array {name} is compressed; charrnn checkpoints are stored "
                f"uncompressed, so that sizes can be checked before reading"
            )
        if info.file_size != info.compress_size:
            raise CheckpointError(f"array {name} declares {info.file_size} bytes but stores {info.compress_size}")
    declared = sum(i.compress_size for i in infos)
    if declared > file_size:
        raise CheckpointError(f"its arrays declare {declared:,} bytes but the file holds only {file_size:,}")


# Progress counters a resumed run reads back: name -> may it be None?
PROGRESS_INTS = ("step", "epoch", "chunk")
PROGRESS_FLOATS = {"smoothed_loss": True, "elapsed": False, "best_val": True, "last_val": True}


def _check_progress(progress: dict) -> None:
    """Each known counter, when present, has a sane value (an exported model may carry none)."""
    for key in PROGRESS_INTS:
        if key in progress:
            v = progress[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise CheckpointError(f"progress field {key!r} is {v!r}, not a count")
    for key, nullable in PROGRESS_FLOATS.items():
        if key in progress:
            v = progress[key]
            if v is None and nullable:
                continue
            if (
                not isinstance(v, (int, float))
                or isinstance(v, bool)
                or not math.isfinite(v)
                or (key == "elapsed" and v < 0)
            ):
                raise CheckpointError(f"progress field {key!r} is {v!r}, not a finite number")
    ranks = progress.get("ranks", 1)
    if not isinstance(ranks, int) or isinstance(ranks, bool) or ranks < 1:
        raise CheckpointError(f"progress field 'ranks' is {ranks!r}, not a number of processes")
    if "engine" in progress and progress["engine"] not in engines.ENGINES:
        raise CheckpointError(f"progress field 'engine' is {progress['engine']!r}, not an engine's name")
    cold = progress.get("cold_start")
    if cold is not None and not (
        isinstance(cold, dict)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in cold.values())
    ):
        raise CheckpointError("progress field 'cold_start' is malformed")


def _check_rng_state(rng_state) -> None:
    """The generator state must be one that a fresh np.random.default_rng() accepts."""
    if rng_state is None:
        return
    try:
        np.random.default_rng().bit_generator.state = rng_state
    except (TypeError, ValueError, KeyError, OverflowError):
        raise CheckpointError("metadata field 'rng_state' is malformed") from None


def _parse_meta(raw: bytes) -> dict:
    meta = json.loads(raw.decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError("it is not a charrnn checkpoint")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"format_version {version!r} is not supported by this charrnn (it reads version "
            f"{FORMAT_VERSION}); upgrade charrnn or retrain"
        )
    for key, kind in (
        ("model", dict),
        ("train", dict),
        ("vocab", str),
        ("progress", dict),
        ("corpus", dict),
        ("state_batch", int),
    ):
        if not isinstance(meta.get(key), kind):
            raise CheckpointError(f"metadata field {key!r} is missing or malformed")
    if meta.get("rng_state") is not None and not isinstance(meta["rng_state"], dict):
        raise CheckpointError("metadata field 'rng_state' is malformed")
    _check_rng_state(meta.get("rng_state"))
    _check_progress(meta["progress"])
    return meta


def _expected_members(meta, model_cfg: ModelConfig, train_cfg: TrainConfig, n_members: int) -> dict[str, tuple]:
    """Every array the configuration implies, with its exact shape."""
    if 3 * model_cfg.n_layers > n_members:  # each layer has at least Wx, Wh and b; and a huge
        raise CheckpointError(  # n_layers would take forever to enumerate
            f"model.n_layers {model_cfg.n_layers} implies more arrays than the {n_members} in the file"
        )

    shapes = model.param_shapes(model_cfg)
    expected = {f"param/{k}.npy": s for k, s in shapes.items()}
    expected.update({f"opt/{k}.npy": s for k, s in optim.state_shapes(train_cfg.optimizer, shapes).items()})
    B = meta["state_batch"]
    if B not in (0, train_cfg.batch_size):  # the carried state is one (B,H) row per stream
        raise CheckpointError(f"state_batch {B} contradicts batch_size {train_cfg.batch_size}")
    if B:
        expected.update({f"state/{k}.npy": (B, model_cfg.hidden_size) for k in model.hidden_names(model_cfg)})
    return expected


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dtype, shape) -> np.ndarray:
    """Read one .npy member after checking its header against the expected dtype and
    shape and its size against the archive's directory: no surprise allocations."""
    name = info.filename[:-4]
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            hshape, fortran, hdtype = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_NPY_HEADER)
        elif version == (2, 0):
            hshape, fortran, hdtype = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_NPY_HEADER)
        else:
            raise CheckpointError(f"array {name} has an unsupported .npy version {version}")
        if hdtype.hasobject or fortran:
            raise CheckpointError(f"array {name} is not a plain numeric array")
        if shape is None:  # meta: a 1-D byte string
            if hdtype != np.uint8 or len(hshape) != 1:
                raise CheckpointError(f"array {name} has dtype {hdtype} shape {hshape}, expected uint8 bytes")
        else:
            if hdtype.str not in ALLOWED_DTYPES or (dtype is not None and hdtype != dtype):
                raise CheckpointError(f"array {name} has dtype {hdtype}, expected float32 or float64")
            if tuple(hshape) != tuple(shape):
                raise CheckpointError(
                    f"array {name} has shape {tuple(hshape)} but the configuration implies {tuple(shape)}"
                )
        nbytes = math.prod(hshape) * hdtype.itemsize  # Python ints: no overflow to a small number
        if f.tell() + nbytes != info.file_size:
            raise CheckpointError(f"array {name} declares {nbytes} bytes of data that the archive does not hold")
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise CheckpointError(f"array {name} is truncated")
    return np.frombuffer(data, dtype=hdtype).reshape(hshape).copy()
