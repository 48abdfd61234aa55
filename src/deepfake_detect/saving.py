"""The saved-model file: one zip of JSON and numeric arrays, never a pickle.

Members: ``config.json`` (the detector's config), ``metadata.json`` (versions, shapes,
fingerprints), ``head_weights.npz`` (the head's arrays) and, for a fine-tuned backbone,
``backbone_weights.npz``. `write_model` writes a file atomically; `read_model` is the one
checked reader (size limits before inflating, numeric arrays only, the format version and the
metadata's types), used by `DeepfakeDetector.load` and ``deepfake-detect info``.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from .errors import IncompatibleModelError

FORMAT_VERSION = 1
CONFIG, METADATA, HEAD_WEIGHTS, BACKBONE_WEIGHTS = ("config.json", "metadata.json", "head_weights.npz",
                                                    "backbone_weights.npz")
#: The most bytes each member of a model file may unpack to.
MEMBER_LIMITS = {CONFIG: 1 << 20, METADATA: 1 << 20, HEAD_WEIGHTS: 1 << 30, BACKBONE_WEIGHTS: 1 << 31}


@dataclass(frozen=True)
class SavedModel:
    """What a model file holds, checked: configs, metadata and arrays (None: no fine-tuned backbone)."""

    config: dict[str, Any]
    metadata: dict[str, Any]
    head_weights: list[np.ndarray]
    backbone_weights: list[np.ndarray] | None = None


def write_model(path: str | os.PathLike, model: SavedModel) -> Path:
    """Write `model` to `path` under a temporary name, then rename: a crash never leaves a
    half-written file, and an existing file stays intact until the new one is complete."""
    target = Path(path)
    members = {CONFIG: json.dumps(model.config, indent=2, default=str).encode(),
               METADATA: json.dumps(model.metadata, indent=2).encode(), HEAD_WEIGHTS: _npz(model.head_weights)}
    if model.backbone_weights is not None:
        members[BACKBONE_WEIGHTS] = _npz(model.backbone_weights)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_beside(target)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
                for name, data in members.items():  # fixed dates: the same model gives the same bytes
                    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                    info.external_attr = 0o644 << 16
                    z.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_model(path: str | os.PathLike) -> SavedModel:
    """The checked content of a model file; `IncompatibleModelError` says what is wrong with
    one that is not a model of this format (`FileNotFoundError` where there is no file)."""
    try:
        with zipfile.ZipFile(path) as z:
            for name, limit in MEMBER_LIMITS.items():  # a zip bomb is refused before it is inflated
                if name in z.namelist() and z.getinfo(name).file_size > limit:
                    _refuse(path, f"{name} is {z.getinfo(name).file_size} bytes unpacked, more than a model holds "
                                  f"({limit}); refused")
            config = json.loads(z.read(CONFIG))
            metadata = json.loads(z.read(METADATA))
            head = _read_arrays(path, HEAD_WEIGHTS, z.read(HEAD_WEIGHTS))
            backbone = _read_arrays(path, BACKBONE_WEIGHTS, z.read(BACKBONE_WEIGHTS)) \
                if BACKBONE_WEIGHTS in z.namelist() else None
    except (FileNotFoundError, IncompatibleModelError):
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, NotImplementedError, RuntimeError,
            zlib.error) as e:
        raise IncompatibleModelError(f"{path}: not a deepfake-detect model file ({e})") from e
    if not isinstance(metadata, dict) or not isinstance(config, dict):
        _refuse(path, "config.json and metadata.json must each hold a JSON object")
    if metadata.get("format_version") != FORMAT_VERSION:
        _refuse(path, f"model format {metadata.get('format_version')!r}; this version of deepfake-detect reads "
                      f"format {FORMAT_VERSION}")
    _check(path, config, metadata)
    return SavedModel(config, metadata, head, backbone)


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


def _read_arrays(path: str | os.PathLike, member: str, data: bytes) -> list[np.ndarray]:
    """The arrays of an .npz member: numeric arrays only. Every array's header is checked before
    its data is read, so a pickled (object) array is refused without being unpickled, and an
    array cannot claim more memory than its bytes hold."""
    refuse = functools.partial(_refuse, path)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        refuse(f"{member} is not an .npz archive of arrays")
    with archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
        names = [f"arr_{i}.npy" for i in range(len(sizes))]
        if sorted(sizes) != sorted(names):
            refuse(f"{member} holds {sorted(sizes)}, not arr_0.npy, arr_1.npy, ...")
        if sum(sizes.values()) > MEMBER_LIMITS[member]:
            refuse(f"{member} unpacks to more than a model holds")
        arrays = []
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
                    refuse(f"{member}/{name} declares shape {shape} but holds fewer bytes")
            with archive.open(name) as f:
                arrays.append(np.lib.format.read_array(f, allow_pickle=False))
    return arrays


def _refuse(path: str | os.PathLike, why: str) -> NoReturn:
    raise IncompatibleModelError(f"{path}: {why}")


def _check(path: str | os.PathLike, config: dict, metadata: dict) -> None:
    """What `DeepfakeDetector.save` writes, checked before anything is built from it."""
    n = metadata.get("n_features_in")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        _refuse(path, f"metadata.json's n_features_in is {n!r}, not a positive integer")
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
