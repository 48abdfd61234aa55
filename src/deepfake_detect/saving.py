"""The saved-model file: one zip of JSON and numeric arrays, never a pickle.

Members: ``config.json`` (the detector's config), ``metadata.json`` (versions, shapes,
fingerprints), ``head_weights.npz`` (the head's arrays) and, for a fine-tuned backbone,
``backbone_weights.npz``. `write_model` writes a file atomically; `ModelReader` (and
`read_model`, built on it) is the one checked reader, used by `DeepfakeDetector.load` and
``deepfake-detect info``.

Loading plans before it allocates. Before anything is inflated or built, the reader checks:
that the path is a regular file (not a FIFO or a device) of at most `max_file_bytes()`; the
zip's directory (at most `MAX_MEMBERS` entries, `MAX_ARRAYS` arrays in a weights member); each
member's packed and declared sizes; the JSON members (`JSON_LIMIT` each); ``n_features_in`` (at
most `MAX_FEATURES`); the parameters of the declared head, computed from its config without
building it (`Head.weight_shapes`), against the head budget (`head_budget()`, 256 MiB, `DEEPFAKE_DETECT_MAX_HEAD_BYTES`); the
head member against what those parameters take; and every array's shape, from its .npy
header, against the declared head (or, for a fine-tuned backbone, against the backbone budget,
`backbone_budget()`, 2 GiB, `DEEPFAKE_DETECT_MAX_BACKBONE_BYTES`, and the declared backbone's
shapes) before its data is read. Every refusal is an `IncompatibleModelError` naming the file
and the member; so is running out of memory while reading.
"""

from __future__ import annotations

import errno
import functools
import io
import json
import math
import os
import re
import shutil
import stat
import struct
import time
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from .backbones.base import backbone_budget
from .digests import not_a_regular_file
from .errors import IncompatibleModelError, SaveError
from .locations import env_bytes

FORMAT_VERSION = 1
CONFIG, METADATA, HEAD_WEIGHTS, BACKBONE_WEIGHTS = ("config.json", "metadata.json", "head_weights.npz",
                                                    "backbone_weights.npz")
#: The most bytes ``config.json`` and ``metadata.json`` may each unpack to.
JSON_LIMIT = 1 << 20
#: The widest features a saved head may declare (``n_features_in``); backbones give 256 to 4096.
MAX_FEATURES = 1 << 16
#: The most entries a model file's zip may list.
MAX_MEMBERS = 64
#: The most arrays a weights member (.npz) may hold: a fine-tuned MobileNet V1 has 135, the
#: largest Keras applications a few hundred.
MAX_ARRAYS = 4096
#: Bytes an .npz may spend per array beyond the array's data (its zip and .npy headers).
ARRAY_OVERHEAD = 4096
HEAD_BUDGET_VAR = "DEEPFAKE_DETECT_MAX_HEAD_BYTES"
DEFAULT_HEAD_BUDGET = 256 << 20
#: Temporary files of a save (``.<name>.<pid>.<hex>.tmp``) older than this are left-overs of a
#: killed save, whatever their process: the next save to that path removes them.
STALE_SECONDS = 600.0


def head_budget() -> int:
    """The most bytes a saved head's weights may take (float32): `DEFAULT_HEAD_BUDGET`, or the
    size in the ``DEEPFAKE_DETECT_MAX_HEAD_BYTES`` environment variable (e.g. "1GB")."""
    return env_bytes(HEAD_BUDGET_VAR, DEFAULT_HEAD_BUDGET)


def max_file_bytes() -> int:
    """The largest model file read: both JSON members, the head and backbone budgets, and slack."""
    return 2 * JSON_LIMIT + head_budget() + backbone_budget() + (1 << 20)


@dataclass(frozen=True)
class SavedModel:
    """What a model file holds, checked: configs, metadata and arrays (None: no fine-tuned backbone)."""

    config: dict[str, Any]
    metadata: dict[str, Any]
    head_weights: list[np.ndarray]
    backbone_weights: list[np.ndarray] | None = None


def write_model(path: str | os.PathLike, model: SavedModel) -> Path:
    """Write `model` to `path` under a temporary name, then rename: a crash never leaves a
    half-written file, and an existing file stays intact until the new one is complete.
    Temporary files that killed saves left beside `path` (their process is gone, or they are
    older than `STALE_SECONDS`) are removed first. A write that fails (a full disk, no
    permission) raises `SaveError`, one line naming the path and, for a full disk, the space
    needed and free; nothing is left behind."""
    target = Path(path)
    members = {CONFIG: json.dumps(model.config, indent=2, default=str).encode(),
               METADATA: json.dumps(model.metadata, indent=2).encode(), HEAD_WEIGHTS: _npz(model.head_weights)}
    if model.backbone_weights is not None:
        members[BACKBONE_WEIGHTS] = _npz(model.backbone_weights)
    needed = sum(map(len, members.values())) + 1024 * len(members)  # stored as is at worst, with zip headers
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        fd, tmp = _create_beside(target)
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
                for name, data in members.items():  # fixed dates: the same model gives the same bytes
                    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                    info.external_attr = 0o644 << 16
                    z.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise _save_error(target, e, needed) from e
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _save_error(target: Path, error: OSError, needed: int) -> SaveError:
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        try:
            free = f"{shutil.disk_usage(target.parent).free / 1e6:.1f} MB free"
        except OSError:
            free = "free space unknown"
        why = (f"the disk is full (the model needs {needed / 1e6:.1f} MB; {free} in {target.parent}). "
               "Free some space, or save it elsewhere")
    else:
        why = f"{error.strerror or error}. Save it elsewhere"
    out = SaveError(f"{target}: cannot save the model: {why}; the fitted detector is unchanged in memory.")
    out.errno = error.errno
    return out


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that saves to `target` left when they were killed: those of a
    process that is gone, and any older than `STALE_SECONDS` (a save never takes that long);
    returns them. Those of a running save are kept."""
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    removed = []
    try:
        candidates = [p for p in target.parent.iterdir() if pattern.fullmatch(p.name)]
    except OSError:
        return removed
    for p in candidates:
        pid = int(pattern.fullmatch(p.name).group(1))
        try:
            age = time.time() - p.lstat().st_mtime
            if age > STALE_SECONDS or (pid != os.getpid() and not _alive(pid)):
                p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def read_model(path: str | os.PathLike, arrays: bool = True) -> SavedModel:
    """The checked content of a model file; `IncompatibleModelError` says what is wrong with
    one that is not a model of this format (`FileNotFoundError` where there is no file).
    `arrays` False: the arrays' headers are checked but their data not read (the arrays are
    empty lists)."""
    with ModelReader(path) as reader:
        if not arrays:
            reader.headers(HEAD_WEIGHTS, reader.head_shapes, "the declared head")
            if reader.has(BACKBONE_WEIGHTS):
                reader.headers(BACKBONE_WEIGHTS)
            return SavedModel(reader.config, reader.metadata, [], [] if reader.has(BACKBONE_WEIGHTS) else None)
        head = reader.arrays(HEAD_WEIGHTS, reader.head_shapes, "the declared head")
        backbone = reader.arrays(BACKBONE_WEIGHTS) if reader.has(BACKBONE_WEIGHTS) else None
        return SavedModel(reader.config, reader.metadata, head, backbone)


class ModelReader:
    """An open model file, checked as far as it can be without its arrays' data (see the module
    doc): `config`, `metadata`, and `head_shapes` (the shapes the declared head's weights must
    have; None for a head that cannot tell them without being built). `headers` and `arrays`
    read a weights member, each array's header checked before its data. Use it as a context
    manager."""

    def __init__(self, path: str | os.PathLike):
        self.path = path
        self._members: dict[str, zipfile.ZipFile] = {}
        try:
            self._file = _open_regular(path, max_file_bytes())
        except IncompatibleModelError:
            raise
        except FileNotFoundError:
            raise
        except OSError as e:
            self._refuse(f"cannot be read ({e})")
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ModelReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for archive in self._members.values():
            archive.close()
        self._members.clear()
        if getattr(self, "_zip", None) is not None:
            self._zip.close()
        self._file.close()

    def _refuse(self, why: str) -> NoReturn:
        _refuse(self.path, why)

    def _open(self) -> None:
        try:
            _check_directory(self._file, f"{self.path}", MAX_MEMBERS, "a model file holds a few")
            self._zip = zipfile.ZipFile(self._file)
            names = self._zip.namelist()
            for name in (CONFIG, METADATA, HEAD_WEIGHTS):
                if name not in names:
                    self._refuse(f"not a deepfake-detect model file (no {name})")
            self._limits = {CONFIG: JSON_LIMIT, METADATA: JSON_LIMIT,
                            HEAD_WEIGHTS: head_budget() + ARRAY_OVERHEAD * MAX_ARRAYS,
                            BACKBONE_WEIGHTS: backbone_budget() + ARRAY_OVERHEAD * MAX_ARRAYS}
            for name, limit in self._limits.items():
                if name in names:
                    info = self._zip.getinfo(name)
                    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                        self._refuse(f"{name} is packed with zip method {info.compress_type}; a model file uses "
                                     "deflate (or none)")
                    if max(info.file_size, info.compress_size) > limit:  # a zip bomb, refused before inflating
                        self._refuse(f"{name} is {max(info.file_size, info.compress_size)} bytes unpacked, more than "
                                     f"a model holds ({limit}); refused")
            config = _json(self._read(CONFIG))
            metadata = _json(self._read(METADATA))
        except IncompatibleModelError:
            raise
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, NotImplementedError, RuntimeError,
                RecursionError, zlib.error) as e:
            raise IncompatibleModelError(f"{self.path}: not a deepfake-detect model file ({e})") from e
        if not isinstance(metadata, dict) or not isinstance(config, dict):
            self._refuse("config.json and metadata.json must each hold a JSON object")
        if metadata.get("format_version") != FORMAT_VERSION:
            self._refuse(f"model format {metadata.get('format_version')!r}; this version of deepfake-detect reads "
                         f"format {FORMAT_VERSION}")
        _check(self.path, config, metadata)
        self.config, self.metadata = config, metadata
        self.head_shapes = _planned_head(config.get("head"), metadata["n_features_in"])
        if self.head_shapes is not None:
            params = sum(math.prod(s) for s in self.head_shapes)
            budget = head_budget()
            if 4 * params > budget:
                self._refuse(f"its head ({_describe(config.get('head'))}) declares {params:,} parameters "
                             f"({_size(4 * params)} as float32), more than the head budget of {_size(budget)} (the "
                             f"{HEAD_BUDGET_VAR} environment variable raises it)")
            limit = 8 * params + ARRAY_OVERHEAD * (len(self.head_shapes) + 1)
            info = self._zip.getinfo(HEAD_WEIGHTS)
            if max(info.file_size, info.compress_size) > limit:
                self._refuse(f"{HEAD_WEIGHTS} is {max(info.file_size, info.compress_size)} bytes unpacked, more than "
                             f"the declared head's {params:,} parameters take ({limit} bytes at most); refused")
            self._limits[HEAD_WEIGHTS] = limit

    def _read(self, name: str) -> bytes:
        """A member's bytes, never more than its limit (whatever its header declares)."""
        limit = self._limits[name]
        with self._zip.open(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            self._refuse(f"{name} unpacks to more than a model holds ({limit} bytes); refused")
        return data

    def has(self, member: str) -> bool:
        return member in self._zip.namelist()

    def _archive(self, member: str) -> zipfile.ZipFile:
        if member not in self._members:
            try:
                data = io.BytesIO(self._read(member))
                _check_directory(data, f"{self.path}: {member}", MAX_ARRAYS,
                                 f"a weights member holds at most {MAX_ARRAYS} arrays")
                self._members[member] = zipfile.ZipFile(data)
            except IncompatibleModelError:
                raise
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, RuntimeError,
                    zlib.error) as e:
                self._refuse(f"{member} is not an .npz archive of arrays ({e})")
            except MemoryError:
                self._refuse(f"{member}: out of memory reading it; refused")
        return self._members[member]

    def headers(self, member: str, expected: Sequence[tuple[int, ...]] | None = None,
                declared: str = "") -> list[tuple[tuple[int, ...], np.dtype]]:
        """``(shape, dtype)`` of each array of `member`, from the .npy headers alone: numeric
        arrays only (a pickled array is refused without being unpickled), each holding the
        bytes its shape claims, all of them within the member's limit and, where `expected`
        shapes are given, of those shapes (`declared` names what expects them)."""
        refuse = functools.partial(_refuse, self.path)
        archive = self._archive(member)
        sizes = {info.filename: info.file_size for info in archive.infolist()}
        names = [f"arr_{i}.npy" for i in range(len(sizes))]
        if sorted(sizes) != sorted(names):
            refuse(f"{member} holds {sorted(sizes)[:8]}, not arr_0.npy, arr_1.npy, ...")
        if sum(sizes.values()) > self._limits[member]:
            refuse(f"{member} unpacks to more than a model holds ({self._limits[member]} bytes); refused")
        found = []
        try:
            for name in names:
                with archive.open(name) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                        else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read_header(f)
                if dtype.hasobject:
                    refuse(f"{member}/{name} holds Python objects (a pickled array); refused without unpickling "
                           "it, as unpickling can run code. A model saved by deepfake-detect holds numbers only.")
                if dtype.kind not in "fiu":
                    refuse(f"{member}/{name} has dtype {dtype}, not numbers")
                if math.prod(shape) * dtype.itemsize > sizes[name]:
                    refuse(f"{member}/{name} declares shape {shape} ({math.prod(shape) * dtype.itemsize} bytes) "
                           f"but holds {sizes[name]} bytes; refused")
                found.append((tuple(shape), dtype))
        except IncompatibleModelError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as e:
            refuse(f"{member} holds an unreadable array ({e})")
        if expected is not None and [s for s, _ in found] != [tuple(s) for s in expected]:
            what = "head" if member == HEAD_WEIGHTS else "backbone"
            refuse(f"{what} weights of shapes {[s for s, _ in found]} do not match {declared or 'the declared model'} "
                   f"({[tuple(s) for s in expected]})")
        return found

    def arrays(self, member: str, expected: Sequence[tuple[int, ...]] | None = None,
               declared: str = "") -> list[np.ndarray]:
        """The arrays of `member`, after `headers` checked them; then their data, read one at a
        time. Running out of memory is an `IncompatibleModelError` naming the member."""
        self.headers(member, expected, declared)
        archive = self._archive(member)
        out = []
        try:
            for i in range(len(archive.infolist())):
                with archive.open(f"arr_{i}.npy") as f:
                    out.append(np.lib.format.read_array(f, allow_pickle=False))
        except MemoryError:
            out.clear()
            self._refuse(f"{member}: out of memory reading its arrays; refused")
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            self._refuse(f"{member} holds an unreadable array ({e})")
        return out


def _open_regular(path: str | os.PathLike, limit: int):
    """`path` opened for reading if it is a regular file of at most `limit` bytes; a FIFO, a
    device or a socket is refused at once, without waiting on it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        why = not_a_regular_file(path, st)
        if why is not None:
            raise IncompatibleModelError(f"{why}; a model is a file written by DeepfakeDetector.save")
        if st.st_size > limit:
            raise IncompatibleModelError(f"{path} is {st.st_size} bytes, more than a model holds ({limit}: two JSON "
                                         f"members, the head budget and the backbone budget); refused")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_directory(f, where: str, most: int, why: str) -> None:
    """Refuse a zip whose central directory lists more than `most` entries (read from its end
    record, before `zipfile` parses them all)."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    tail = min(size, (1 << 16) + 22)
    f.seek(size - tail)
    data = f.read(tail)
    f.seek(0)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or len(data) < at + 22:
        return  # not a zip: zipfile says so
    entries, cd_size = struct.unpack("<H", data[at + 10:at + 12])[0], struct.unpack("<L", data[at + 12:at + 16])[0]
    if (entries > most and entries != 0xFFFF) or (cd_size > most * 1024 and cd_size != 0xFFFFFFFF):
        raise IncompatibleModelError(f"{where}: its zip lists {entries} entries ({cd_size} bytes of directory); "
                                     f"{why}; refused")


def _json(data: bytes) -> Any:
    return json.loads(data)


def _planned_head(spec: Any, n_features: int) -> list[tuple[int, ...]] | None:
    """The shapes of the weights the head `spec` declares for `n_features`-wide features,
    computed without building it; None where the head cannot be created here (an unknown
    name or bad arguments: `load` says so) or cannot tell its shapes."""
    from .heads import heads

    try:
        shapes = heads.create(spec).weight_shapes(n_features)
    except Exception:  # noqa: BLE001 -- any head that cannot plan is checked after building instead
        return None
    return None if shapes is None else [tuple(int(d) for d in s) for s in shapes]


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 100_000 else f"{n / 1e6:,.1f} MB"


def _describe(spec: Any) -> str:
    text = json.dumps(spec, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _npz(arrays: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return buffer.getvalue()


def _create_beside(target: Path) -> tuple[int, str]:
    """A new, uniquely named temporary file in `target`'s folder, open for writing: with the
    permissions of the file it will replace, or those the umask gives a new file (not
    `tempfile.mkstemp`'s owner-only 0600)."""
    while True:
        tmp = target.parent / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        except FileNotFoundError:
            pass
        return fd, str(tmp)


def _refuse(path: str | os.PathLike, why: str) -> NoReturn:
    raise IncompatibleModelError(f"{path}: {why}")


def _check(path: str | os.PathLike, config: dict, metadata: dict) -> None:
    """What `DeepfakeDetector.save` writes, checked before anything is built from it."""
    n = metadata.get("n_features_in")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        _refuse(path, f"metadata.json's n_features_in is {n!r}, not a positive integer")
    if n > MAX_FEATURES:
        _refuse(path, f"metadata.json's n_features_in is {n}, wider than any backbone's features "
                      f"(at most {MAX_FEATURES}); refused before building the head")
    for key in ("backbone_fingerprint", "extractor_fingerprint"):
        if not isinstance(metadata.get(key), str):
            _refuse(path, f"metadata.json has no {key}")
    if "cache" in config:  # where features are kept is this machine's choice, never a model file's
        _refuse(path, "its config names a feature cache; a saved model never does")
    threshold = config.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        _refuse(path, f"its threshold {threshold!r} is not a number in [0, 1]")
    if not isinstance(config.get("backbone"), (str, dict)):
        _refuse(path, "its config gives no backbone")
