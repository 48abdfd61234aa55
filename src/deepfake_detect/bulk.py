"""Bulk runs over a collection: one row per input, bad inputs included, written as Parquet shards.

The code shared by the local run (``deepfake-detect extract --runner direct --output DIR``)
and the Apache Beam pipeline (`deepfake_detect.beam`):

- `list_collection`: the inputs of a dataset folder (`discover`: labels and groups), a
  ``labels.csv`` (columns ``path, label[, group, method]``, paths relative to it) or a text
  file of paths, one a line;
- `extract_rows`: `FeatureExtractor.extract_each` over a list of inputs, so each input goes
  through exactly the code of the local path (sample → decode → detect → crop → embed, the
  next input decoded while this one is detected and embedded); an input that raises (a
  corrupt or empty file) becomes an "error" row and the run goes on with the next one;
- `prediction_rows`: the same, then the detector's verdict on each input's features
  (`DeepfakeDetector.verdict`), as `predict_video` gives it;
- `run_local`: all of it in this process, through the detector's feature cache, written with
  `shards.write_local`.

See `deepfake_detect.shards` for the rows and files.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import shards
from .datasets import discover
from .detector import DeepfakeDetector
from .errors import DatasetError
from .extraction import FeatureExtractor
from .results import FaceFeatures
from .shards import Item

LABELS = {"real": 0, "fake": 1, "0": 0, "1": 1}
TIMED = ("decode", "detect", "crop", "embed")


def items_of_samples(samples, root: str | os.PathLike) -> list[Item]:
    """`Item`s of discovered samples; ids are their paths relative to `root` (POSIX), where below it."""
    root = Path(root)
    out = []
    for s in samples:
        path = Path(s.path)
        try:
            video_id = path.relative_to(root).as_posix()
        except ValueError:
            video_id = str(path)
        out.append(Item(video_id, str(path), s.label, s.group, s.method))
    return out


def parse_labels_csv(text: str, base: str, join=os.path.join) -> list[Item]:
    """The `Item`s of a labels.csv's text; relative paths are joined to `base` with `join`."""
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip().lower() for c in reader.fieldnames or []}
    if not {"path", "label"} <= columns:
        raise ValueError(f"a labels.csv needs columns 'path' and 'label'; has {sorted(columns)}")
    items = []
    for line, raw in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        label = row["label"].lower()
        if label not in LABELS:
            raise ValueError(f"labels.csv line {line}: unknown label {row['label']!r}; use real or fake (or 0 or 1)")
        path = row["path"]
        full = path if "://" in path or os.path.isabs(path) else join(base, path)
        items.append(Item(path, full, LABELS[label], row.get("group") or path, row.get("method", "")))
    return items


def parse_path_list(text: str) -> list[Item]:
    """The `Item`s of a text file of paths, one a line (blank lines and ``#`` comments skipped);
    each path is its own id."""
    return [Item(line, line) for line in map(str.strip, text.splitlines()) if line and not line.startswith("#")]


def list_collection(collection: str | os.PathLike) -> list[Item]:
    """The inputs of a local collection: a dataset folder (a folder that is not a labelled
    dataset: every video and image below it, unlabelled), a ``*.csv`` of labels, or a text
    file of paths."""
    path = Path(collection)
    if path.is_dir():
        try:
            return items_of_samples(discover(path), path)
        except DatasetError:  # not a labelled dataset (one class, or no real/ and fake/): every media file
            from .video import is_media

            return [Item(p.relative_to(path).as_posix(), str(p))
                    for p in sorted(path.rglob("*")) if p.is_file() and is_media(p)]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset folder, labels.csv or list of paths")
    if path.name == "labels.csv":
        return items_of_samples(discover(path.parent), path.parent)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        return parse_labels_csv(text, str(path.parent))
    return parse_path_list(text)


def _digest(path: str | os.PathLike) -> str | None:
    from .digests import file_sha256

    try:
        return file_sha256(path)
    except OSError:
        return None


def extract_rows(extractor: FeatureExtractor, items: Sequence[Item],
                 local_paths: Sequence[str | os.PathLike] | None = None
                 ) -> Iterator[tuple[dict[str, Any], dict[str, float]]]:
    """``(features row, seconds per stage)`` of each item, in order (`local_paths`: where each
    item's bytes are, if not at its `path`; an error row has no seconds)."""
    paths = [it.path for it in items] if local_paths is None else list(local_paths)
    for i, features, spent, error in extractor.extract_each(paths):
        yield shards.features_row(items[i], _digest(paths[i]), features, error), spent or {}


def prediction_rows(detector: DeepfakeDetector, items: Sequence[Item],
                    local_paths: Sequence[str | os.PathLike] | None = None
                    ) -> Iterator[tuple[dict[str, Any], dict[str, float]]]:
    """``(predictions row, seconds per stage)`` of each item, in order, from the fitted
    `detector` (its extractor computes the features, `DeepfakeDetector.verdict` turns them
    into the verdict that `predict_video` gives)."""
    paths = [it.path for it in items] if local_paths is None else list(local_paths)
    for i, features, spent, error in detector.extractor.extract_each(paths):
        prediction = None
        if error is None:
            try:
                prediction = detector.verdict(items[i].path, features, spent)
            except Exception as e:  # noqa: BLE001
                error = e
        yield shards.prediction_row(items[i], _digest(paths[i]), prediction, error), spent or {}


def add_timings(total: dict[str, float], spent: dict[str, float]) -> None:
    """Add one input's seconds per stage to `total`."""
    for key, value in spent.items():
        total[key] = total.get(key, 0.0) + value


def auto_shards(n: int | None) -> int:
    """Shards of a run of `n` inputs: one per 1,000; 16 for a list of paths (`n` None: on Beam
    its length is not known until it is read, and a local run writes the same shards)."""
    return 16 if n is None else max(1, -(-n // 1000))


def is_path_list(collection: str | os.PathLike) -> bool:
    """Whether `collection` names a text file of paths (not a folder, nor a ``*.csv``)."""
    return not str(collection).lower().endswith(".csv") and not Path(collection).is_dir()


def clear_output(output: str | os.PathLike, kinds: Iterable[str] = shards.KINDS) -> None:
    """Remove a previous run's shards and summary from the folder `output` (local)."""
    out = Path(output)
    if not out.is_dir():
        return
    for kind in kinds:
        for old in [*out.glob(f"{kind}-*-of-*.parquet"), *out.glob(f"{kind}-*-of-*.jsonl")]:
            old.unlink()
    (out / "summary.json").unlink(missing_ok=True)


def run_local(detector: DeepfakeDetector, collection: str | os.PathLike, output: str | os.PathLike,
              kind: str = "features", num_shards: int = 0, verbose: int = 1,
              suffixes: Sequence[str] = ("parquet",)) -> dict[str, Any]:
    """Extract (or, with a fitted `detector` and ``kind="predictions"``, predict) every input of
    `collection` in this process, through the detector's cache, into shards in `output`;
    returns the run's summary (also written to ``summary.json``). `num_shards` 0: `auto_shards`."""
    import json

    from .progress import progress

    items = list_collection(collection)
    num_shards = num_shards or auto_shards(None if is_path_list(collection) else len(items))
    clear_output(output, [kind])
    started = time.perf_counter()
    spent: dict[str, float] = {}
    extractor = detector.extractor
    if kind == "features":
        pairs = extract_rows(extractor, items)
        meta = shards.metadata(kind, extractor.fingerprint, extractor.stages)
    else:
        pairs = prediction_rows(detector, items)
        meta = shards.metadata(kind, extractor.fingerprint, extractor.stages, model=detector.get_config())

    def rows():
        for row, seconds in progress(pairs, verbose, "extracting" if kind == "features" else "predicting",
                                     total=len(items)):
            add_timings(spent, seconds)
            yield row

    written = shards.write_local(kind, rows(), output, num_shards, meta, suffixes)
    parquet = [p for p in written if p.suffix == ".parquet"]
    summary = summarize(kind, shards.status_counts(parquet), [p.name for p in parquet], extractor.fingerprint,
                        runner="direct", seconds=time.perf_counter() - started, stage_seconds=spent)
    Path(output, "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def summarize(kind: str, counts: dict[str, int], files: Sequence[str], fingerprint: str,
              **extra: Any) -> dict[str, Any]:
    """A run's summary: how many inputs of each status its shards hold (`counts`), the shard
    file names, the fingerprint and `extra`."""
    return {"kind": kind, "inputs": sum(counts.values()), **counts, "fingerprint": fingerprint,
            "shards": sorted(os.path.basename(str(f)) for f in files), **extra}


def describe(summary: dict[str, Any]) -> str:
    """One line: inputs, and how many of each status."""
    return (f"{summary['inputs']} inputs: {summary['ok']} ok, {summary['no_face']} without a face, "
            f"{summary['error']} errors; {len(summary['shards'])} shard(s)")
