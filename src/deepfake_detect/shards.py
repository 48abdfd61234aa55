"""Sharded Parquet files of a collection's features or predictions: the interchange format of bulk runs.

A bulk run (`deepfake_detect.bulk` in one process, `deepfake_detect.beam` on Apache Beam)
writes one row per input, into ``<kind>-SSSSS-of-NNNNN.parquet`` files in one folder
(`kind` "features" or "predictions"). Which shard holds an input is decided by its
`video_id` alone (`shard_of`), and rows are sorted by `video_id` within a shard, so the same
collection and configuration give the same files, byte for byte, however the work was split.

Every row carries its status: "ok", "no_face" (no face in any sampled frame: still a row,
with ``frames_sampled`` and no faces) or "error" (``error_type`` and ``error_message`` say
what went wrong; nothing else is known of it). Columns of a features row (`FEATURES_SCHEMA`):

- ``video_id`` (the key: the path relative to the collection, or as listed), ``path``,
  ``label`` (0 real, 1 fake, null: unknown), ``group``, ``method``;
- ``digest``: the sha256 of the input file's bytes, the `FeatureCache`'s key;
- ``status``, ``error_type``, ``error_message``;
- ``frames_sampled``; per face frame, aligned: ``frame_indices`` (int64), ``times`` (float64
  seconds), ``boxes`` (float32, x1 y1 x2 y2 of each face, flattened: 4 values a frame),
  ``scores`` (float32);
- ``feature_dim`` and ``features`` (float32, the (frames, feature_dim) matrix flattened row
  by row: exactly the values `FeatureExtractor` computed).

A predictions row (`PREDICTIONS_SCHEMA`) has the same key, input and status columns, the
verdict (``label`` "fake", "real" or "unknown", ``p_fake``, ``threshold``, ``reason``,
``faces_found``, ``frames_sampled``) and per face frame ``frame_indices``, ``times``,
``frame_p_fake``, ``boxes`` and ``scores``; the dataset's own label is ``true_label``.

The file's key-value metadata holds, under ``deepfake_detect``, a JSON object: the kind, the
format version, the library version, the extraction ``fingerprint`` and the ``stages`` it
stands for (and, for predictions, the model's config). `FeatureCache.import_shards` reads
features shards into the cache under that fingerprint.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .results import FaceFeatures, VideoPrediction

FORMAT_VERSION = 1
METADATA_KEY = b"deepfake_detect"
KINDS = ("features", "predictions")
STATUSES = ("ok", "no_face", "error")


def _pa():
    try:
        import pyarrow
    except ImportError as e:  # pragma: no cover - pyarrow comes with the beam and tfds extras
        raise ImportError('Parquet shards need pyarrow: pip install "deepfake-detect[beam]" (or pyarrow)') from e
    return pyarrow


def features_schema():
    """The pyarrow schema of a features shard (without its metadata)."""
    pa = _pa()
    return pa.schema([
        ("video_id", pa.string()), ("path", pa.string()), ("label", pa.int8()), ("group", pa.string()),
        ("method", pa.string()), ("digest", pa.string()), ("status", pa.string()), ("error_type", pa.string()),
        ("error_message", pa.string()), ("frames_sampled", pa.int64()), ("frame_indices", pa.list_(pa.int64())),
        ("times", pa.list_(pa.float64())), ("boxes", pa.list_(pa.float32())), ("scores", pa.list_(pa.float32())),
        ("feature_dim", pa.int32()), ("features", pa.list_(pa.float32())),
    ])


def predictions_schema():
    """The pyarrow schema of a predictions shard (without its metadata)."""
    pa = _pa()
    return pa.schema([
        ("video_id", pa.string()), ("path", pa.string()), ("true_label", pa.int8()), ("group", pa.string()),
        ("method", pa.string()), ("digest", pa.string()), ("status", pa.string()), ("error_type", pa.string()),
        ("error_message", pa.string()), ("label", pa.string()), ("p_fake", pa.float64()),
        ("threshold", pa.float64()), ("reason", pa.string()), ("faces_found", pa.int64()),
        ("frames_sampled", pa.int64()), ("frame_indices", pa.list_(pa.int64())), ("times", pa.list_(pa.float64())),
        ("frame_p_fake", pa.list_(pa.float64())), ("boxes", pa.list_(pa.float32())),
        ("scores", pa.list_(pa.float32())),
    ])


def schema(kind: str):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    return features_schema() if kind == "features" else predictions_schema()


# --- the inputs of a collection ----------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One input of a collection: `video_id` keys its row; `label` is 0, 1 or None (unknown)."""

    video_id: str
    path: str
    label: int | None = None
    group: str = ""
    method: str = ""


def _input_columns(item: Item, digest: str | None) -> dict[str, Any]:
    return {"video_id": item.video_id, "path": item.path, "group": item.group, "method": item.method,
            "digest": digest}


def features_row(item: Item, digest: str | None, features: FaceFeatures | None = None,
                 error: BaseException | None = None) -> dict[str, Any]:
    """The features row of one input: its features, else the error that stopped it."""
    row = {**_input_columns(item, digest), "label": item.label, "error_type": None, "error_message": None}
    if error is not None or features is None:
        return {**row, "status": "error", "error_type": type(error).__name__ if error else "Error",
                "error_message": str(error) if error else "no result", "frames_sampled": 0, "frame_indices": [],
                "times": [], "boxes": [], "scores": [], "feature_dim": 0, "features": []}
    n = len(features)
    matrix = np.ascontiguousarray(features.features, dtype=np.float32)
    return {**row, "status": "ok" if n else "no_face", "frames_sampled": int(features.frames_sampled),
            "frame_indices": np.asarray(features.frame_indices, np.int64),
            "times": np.asarray(features.times, np.float64),
            "boxes": np.asarray(features.boxes, np.float32).reshape(-1),
            "scores": np.asarray(features.scores, np.float32),
            "feature_dim": int(matrix.shape[1]) if matrix.ndim == 2 else 0, "features": matrix.reshape(-1)}


def prediction_row(item: Item, digest: str | None, prediction: VideoPrediction | None = None,
                   error: BaseException | None = None) -> dict[str, Any]:
    """The predictions row of one input: its verdict, else the error that stopped it."""
    row = {**_input_columns(item, digest), "true_label": item.label, "error_type": None, "error_message": None}
    if error is not None or prediction is None:
        return {**row, "status": "error", "error_type": type(error).__name__ if error else "Error",
                "error_message": str(error) if error else "no result", "label": None, "p_fake": None,
                "threshold": None, "reason": None, "faces_found": 0, "frames_sampled": 0, "frame_indices": [],
                "times": [], "frame_p_fake": [], "boxes": [], "scores": []}
    frames = prediction.frames
    return {**row, "status": "ok" if frames else "no_face", "label": prediction.label, "p_fake": prediction.p_fake,
            "threshold": prediction.threshold, "reason": prediction.reason, "faces_found": len(frames),
            "frames_sampled": int(prediction.frames_sampled), "frame_indices": [f.index for f in frames],
            "times": [f.time for f in frames], "frame_p_fake": [f.p_fake for f in frames],
            "boxes": np.array([(f.box.x1, f.box.y1, f.box.x2, f.box.y2) for f in frames], np.float32).reshape(-1),
            "scores": np.array([f.box.score for f in frames], np.float32)}


def features_of(row: dict[str, Any]) -> FaceFeatures:
    """The `FaceFeatures` a features row holds (status "ok" or "no_face")."""
    if row["status"] == "error":
        raise ValueError(f"{row['video_id']}: an error row holds no features ({row['error_type']})")
    idx = np.asarray(row["frame_indices"], np.int64)
    n, dim = len(idx), int(row["feature_dim"])
    return FaceFeatures(frame_indices=idx, times=np.asarray(row["times"], np.float64),
                        boxes=np.asarray(row["boxes"], np.float32).reshape(n, 4),
                        scores=np.asarray(row["scores"], np.float32),
                        features=np.asarray(row["features"], np.float32).reshape(n, dim),
                        frames_sampled=int(row["frames_sampled"]))


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its arrays as lists and NaN as None: one JSON Lines object."""
    out = {}
    for key, value in row.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, float) and not np.isfinite(value):
            value = None
        out[key] = value
    return out


# --- shards ------------------------------------------------------------------------------
def shard_of(video_id: str, num_shards: int) -> int:
    """The shard that holds `video_id`'s row: stable across runs, processes and machines."""
    return int.from_bytes(hashlib.sha256(video_id.encode("utf-8")).digest()[:8], "big") % num_shards


def shard_name(kind: str, shard: int, num_shards: int, suffix: str = "parquet") -> str:
    return f"{kind}-{shard:05d}-of-{num_shards:05d}.{suffix}"


def metadata(kind: str, fingerprint: str, stages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The JSON object each shard of a run carries (`METADATA_KEY`)."""
    from .version import __version__

    return {"kind": kind, "format_version": FORMAT_VERSION, "library_version": __version__,
            "fingerprint": fingerprint, "stages": stages, **extra}


def encode(kind: str, rows: Iterable[dict[str, Any]], meta: dict[str, Any], suffix: str = "parquet") -> bytes:
    """One shard's bytes: its rows, one per `video_id` (the first of duplicates: a retried
    input is counted once), sorted by `video_id`; Parquet with `meta`, or JSON Lines."""
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["video_id"], row)
    ordered = [unique[k] for k in sorted(unique)]
    if suffix == "jsonl":
        return "".join(json.dumps(jsonable(r), sort_keys=True) + "\n" for r in ordered).encode()
    pa = _pa()
    import pyarrow.parquet as pq

    sch = schema(kind).with_metadata({METADATA_KEY: json.dumps(meta, sort_keys=True, default=str).encode()})
    table = pa.Table.from_pylist([jsonable(r) for r in ordered], schema=sch)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def write_local(kind: str, rows: Iterable[dict[str, Any]], output: str | os.PathLike, num_shards: int,
                meta: dict[str, Any], suffixes: Sequence[str] = ("parquet",)) -> list[Path]:
    """Write `rows` as `num_shards` shards in the folder `output` (each file written under a
    temporary name and renamed); returns the files written (a shard without rows is not written)."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    by_shard: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_shard.setdefault(shard_of(row["video_id"], num_shards), []).append(row)
    written = []
    for shard in sorted(by_shard):
        for suffix in suffixes:
            path = out / shard_name(kind, shard, num_shards, suffix)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_bytes(encode(kind, by_shard[shard], meta, suffix))
            os.replace(tmp, path)
            written.append(path)
    return written


def shard_files(paths: str | os.PathLike | Sequence[str | os.PathLike], kind: str = "features") -> list[Path]:
    """The Parquet shards `paths` name: files, folders (their ``<kind>-*.parquet``) or glob patterns."""
    import glob

    found: list[Path] = []
    for p in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        p = Path(p)
        if p.is_dir():
            found += sorted(p.glob(f"{kind}-*.parquet"))
        elif p.is_file():
            found.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(str(p)))
            if not matches:
                raise FileNotFoundError(f"{p}: no such shard file, folder or pattern")
            found += matches
    return found


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The `METADATA_KEY` object of one shard; ValueError where it has none."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in meta:
        raise ValueError(f"{path}: not a deepfake-detect shard (no {METADATA_KEY.decode()} metadata)")
    return json.loads(meta[METADATA_KEY])


def iter_rows(path, columns: Sequence[str] | None = None, batch_size: int = 256) -> Iterator[dict[str, Any]]:
    """The rows of one shard (a path or an open binary file) as dicts, `batch_size` at a time
    (a large shard is not read whole)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as f:
        for batch in f.iter_batches(batch_size=batch_size, columns=list(columns) if columns else None):
            yield from batch.to_pylist()


def status_counts(paths: Sequence) -> dict[str, int]:
    """How many rows of each status the shards (paths or open binary files) hold: their
    ``status`` column only is read."""
    counts = dict.fromkeys(STATUSES, 0)
    for path in paths:
        for row in iter_rows(path, ["status"]):
            counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts
