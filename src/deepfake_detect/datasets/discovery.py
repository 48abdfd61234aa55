"""Finding the labelled inputs of a dataset folder, and the groups that keep splits honest.

Two layouts are understood:

- ``real/`` and ``fake/`` folders (any depth below them) holding videos and/or images;
- a ``labels.csv`` with columns ``path, label`` and optionally ``group`` and ``method``
  (paths relative to the CSV's folder).

Groups: a ``group`` column wins. Otherwise every input is its own group, except that
FaceForensics++ names are understood: ``<target>.mp4`` shows person `target`, a fake
``[<Method>_]<target>_<source>.mp4`` shows both, and every input that shares a person
(directly or through a chain of fakes) lands in one group, so no person is on both sides
of a split.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError
from ..video import is_media

LABELS = {"real": 0, "fake": 1}
_FFPP_FAKE = re.compile(r"^(?:(?P<method>[A-Za-z][A-Za-z0-9]*)_)?(?P<target>\d+)_(?P<source>\d+)$")
_FFPP_REAL = re.compile(r"^(?P<target>\d+)$")


@dataclass(frozen=True)
class Sample:
    """One labelled input: `label` is 0 (real) or 1 (fake)."""

    path: str
    label: int
    group: str
    method: str = ""


def discover(dataset_dir: str | os.PathLike) -> list[Sample]:
    """The labelled inputs of `dataset_dir`, sorted by path; `DatasetError` if unusable."""
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder. A dataset is a folder with real/ and fake/ subfolders or a labels.csv.")
    samples = _from_csv(root / "labels.csv") if (root / "labels.csv").is_file() else _from_folders(root)
    if not samples:
        raise DatasetError(f"{root}: no videos or images found. Put them under {root}/real/ and {root}/fake/.")
    present = {s.label for s in samples}
    if present != {0, 1}:
        only = "real" if 0 in present else "fake"
        raise DatasetError(f"{root}: every input is {only}; training and evaluation need both real and fake examples.")
    return sorted(samples, key=lambda s: s.path)


def _from_folders(root: Path) -> list[Sample]:
    found: list[tuple[str, int, str]] = []
    for name, label in LABELS.items():
        folder = next((p for p in root.iterdir() if p.is_dir() and p.name.lower() == name), None)
        if folder is None:
            continue
        for dirpath, _, filenames in os.walk(folder, followlinks=False):
            for filename in filenames:
                path = Path(dirpath) / filename
                if is_media(path) and path.is_file():
                    found.append((str(path), label, ""))
    if not found and not any((root / n).is_dir() for n in LABELS):
        raise DatasetError(f"{root}: unknown layout. Expected real/ and fake/ subfolders, or a labels.csv.")
    return _with_groups(found, {})


def _from_csv(csv_path: Path) -> list[Sample]:
    root = csv_path.parent
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = {c.strip().lower() for c in reader.fieldnames or []}
        if not {"path", "label"} <= columns:
            raise DatasetError(f"{csv_path}: needs columns 'path' and 'label'; has {sorted(columns)}")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    found, groups = [], {}
    for line, row in enumerate(rows, start=2):
        label = row["label"].lower()
        if label not in LABELS:
            raise DatasetError(f"{csv_path}, line {line}: unknown label {row['label']!r}; use 'real' or 'fake'.")
        path = (root / row["path"]).resolve() if not os.path.isabs(row["path"]) else Path(row["path"])
        if not path.is_file():
            raise DatasetError(f"{csv_path}, line {line}: {row['path']} does not exist.")
        found.append((str(path), LABELS[label], row.get("method", "")))
        if row.get("group"):
            groups[str(path)] = row["group"]
    return _with_groups(found, groups)


def _with_groups(found: list[tuple[str, int, str]], given: dict[str, str]) -> list[Sample]:
    """Attach groups: the given ones, else FaceForensics++ identities joined, else the file itself."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    people: dict[str, list[str]] = {}
    for path, _, _ in found:
        stem = Path(path).stem
        fake, real = _FFPP_FAKE.match(stem), _FFPP_REAL.match(stem)
        ids = [fake["target"], fake["source"]] if fake else [real["target"]] if real else []
        people[path] = [f"person:{i}" for i in ids]
        for other in people[path][1:]:
            parent[find(other)] = find(people[path][0])
    samples = []
    for path, label, method in found:
        if path in given:
            group = given[path]
        elif people[path]:
            group = find(people[path][0])
        else:
            group = path
        if not method and label == 1:
            fake = _FFPP_FAKE.match(Path(path).stem)
            method = (fake["method"] or "") if fake else ""
        samples.append(Sample(path, label, group, method))
    return samples
