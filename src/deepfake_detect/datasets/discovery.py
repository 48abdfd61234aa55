"""Finding the labelled inputs of a dataset folder, and the groups that keep splits honest.

Three layouts are understood:

- ``real/`` and ``fake/`` folders, at any depth, holding videos and/or images at any depth
  below them;
- FaceForensics++'s own tree: ``original_sequences/<source>/<compression>/videos`` (real)
  and ``manipulated_sequences/<Method>/<compression>/videos`` (fake, the method named by
  its folder); ``masks`` folders are skipped;
- a ``labels.csv`` with columns ``path, label`` (``real``/``fake`` or ``0``/``1``) and
  optionally ``group``, ``method`` and ``source`` (the video a fake was made from: a path
  as in the ``path`` column, a file name or its stem); paths are relative to the CSV's folder.

Groups: a ``group`` column wins. Otherwise every input is its own group, except that
FaceForensics++ names are understood: ``<target>.mp4`` shows person `target`, a fake
``[<Method>_]<target>_<source>.mp4`` shows both (DeepFakeDetection's ``<actor>__<scene>``
and ``<target>_<source>__<scene>__<code>`` likewise), a ``source`` column joins a fake to
its source, and every input that shares a person (directly or through a chain of fakes)
lands in one group, so no person is on both sides of a split.

Files with the same bytes under two names are counted once, with a warning.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..digests import file_sha256
from ..errors import DatasetError
from ..video import is_media

LABELS = {"real": 0, "fake": 1, "0": 0, "1": 1}
FFPP_REAL, FFPP_FAKE = "original_sequences", "manipulated_sequences"
_COMPRESSION = re.compile(r"^(raw|c\d+)$")
_NAMES = (  # (pattern, namespace of the ids it finds)
    (re.compile(r"^(?:(?P<method>[A-Za-z][A-Za-z0-9]*)_)?(?P<target>\d+)_(?P<source>\d+)$"), "person"),
    (re.compile(r"^(?P<target>\d+)$"), "person"),
    (re.compile(r"^(?P<target>\d+)_(?P<source>\d+)__.+__[A-Za-z0-9]+$"), "actor"),
    (re.compile(r"^(?P<target>\d+)__[^_].*$"), "actor"),
)


@dataclass(frozen=True)
class Sample:
    """One labelled input: `label` is 0 (real) or 1 (fake); `method` names the manipulation."""

    path: str
    label: int
    group: str
    method: str = ""


@dataclass(frozen=True)
class _Found:
    path: str
    label: int
    method: str = ""
    group: str = ""
    source: str = ""


def discover(dataset_dir: str | os.PathLike, compression: str | None = None,
             allow_one_class: bool = False) -> list[Sample]:
    """The labelled inputs of `dataset_dir`, sorted by path; `DatasetError` if unusable.

    Args:
        compression: for a FaceForensics++ tree holding several compressions, which one
            to use ("raw", "c23", "c40"); not needed where it holds one.
        allow_one_class: accept a folder of only real (or only fake) inputs, as evaluation
            does (it reports the rate called fake); training needs both classes.
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder. A dataset is a folder with real/ and fake/ subfolders, "
                           "FaceForensics++'s original_sequences/ and manipulated_sequences/, or a labels.csv.")
    if (root / "labels.csv").is_file():
        found = _from_csv(root / "labels.csv")
    else:
        found = _from_folders(root, compression)
    if not found:
        raise DatasetError(f"{root}: no videos or images found. Put them under {root}/real/ and {root}/fake/.")
    found = _without_duplicates(found)
    present = {f.label for f in found}
    if present != {0, 1} and not allow_one_class:
        only = "real" if 0 in present else "fake"
        raise DatasetError(f"{root}: every input is {only}; training and evaluation need both real and fake examples.")
    return sorted(_with_groups(found), key=lambda s: s.path)


def _walk_media(folder: Path) -> Iterator[Path]:
    """Media files below `folder`, following folder links but entering each folder once
    (so a link loop ends), in sorted order."""
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if is_media(path) and path.is_file():
                yield path


def _label_of(parts: tuple[str, ...], path: Path) -> tuple[int, str, str] | None:
    """(label, method, compression) that a path's folders say, or None where they say nothing."""
    lower = [p.lower() for p in parts]
    if FFPP_REAL in lower or FFPP_FAKE in lower:
        if "masks" in lower:
            return None
        compression = next((p for p in lower if _COMPRESSION.match(p)), "")
        if FFPP_FAKE in lower:
            at = lower.index(FFPP_FAKE)
            return 1, parts[at + 1] if at + 1 < len(parts) else "", compression
        return 0, "", compression
    labels = {LABELS[p] for p in lower if p in ("real", "fake")}
    if len(labels) > 1:
        raise DatasetError(f"{path} is below both a real/ and a fake/ folder; move it, or label it in a labels.csv.")
    return (labels.pop(), "", "") if labels else None


def _from_folders(root: Path, compression: str | None) -> list[_Found]:
    found: list[tuple[_Found, str]] = []
    media = 0
    for path in _walk_media(root):
        media += 1
        said = _label_of(path.relative_to(root).parts[:-1], path)
        if said is not None:
            label, method, comp = said
            found.append((_Found(str(path), label, method), comp))
    if media and not found:
        raise DatasetError(f"{root}: unknown layout. Expected real/ and fake/ subfolders, FaceForensics++'s "
                           "original_sequences/ and manipulated_sequences/, or a labels.csv.")
    compressions = sorted({c for _, c in found if c})
    if compression is not None:
        if compression not in compressions:
            raise DatasetError(f"{root}: no FaceForensics++ videos at compression {compression!r}; "
                               f"found {compressions or 'none'}.")
        return [f for f, c in found if c == compression]
    if len(compressions) > 1:
        raise DatasetError(f"{root}: holds FaceForensics++ videos at several compressions ({', '.join(compressions)}); "
                           "choose one with compression=...")
    return [f for f, _ in found]


def _from_csv(csv_path: Path) -> list[_Found]:
    root = csv_path.parent
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = {c.strip().lower() for c in reader.fieldnames or []}
        if not {"path", "label"} <= columns:
            raise DatasetError(f"{csv_path}: needs columns 'path' and 'label'; has {sorted(columns)}")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    found = []
    for line, row in enumerate(rows, start=2):
        label = row["label"].lower()
        if label not in LABELS:
            raise DatasetError(f"{csv_path}, line {line}: unknown label {row['label']!r}; "
                               "use 'real' or 'fake' (or 0 or 1).")
        try:
            path = Path(row["path"]) if os.path.isabs(row["path"]) else (root / row["path"]).resolve()
            exists = path.is_file()
            source = row.get("source", "")
            if source and not os.path.isabs(source) and (root / source).is_file():
                source = str((root / source).resolve())
        except (OSError, RuntimeError) as e:  # a symbolic link loop (RuntimeError from resolve on 3.11)
            raise DatasetError(f"{csv_path}, line {line}: {row['path']} cannot be resolved ({e}).") from e
        if not exists:
            raise DatasetError(f"{csv_path}, line {line}: {row['path']} does not exist.")
        found.append(_Found(str(path), LABELS[label], row.get("method", ""), row.get("group", ""), source))
    return found


def _without_duplicates(found: list[_Found]) -> list[_Found]:
    """The first (by path) of the inputs with the same bytes; a warning names the others."""
    by_size: dict[int, list[_Found]] = defaultdict(list)
    for f in sorted(found, key=lambda f: f.path):
        by_size[os.path.getsize(f.path)].append(f)
    dropped: list[tuple[_Found, _Found]] = []
    for same_size in by_size.values():
        first: dict[str, _Found] = {}
        for f in same_size if len(same_size) > 1 else ():
            kept = first.setdefault(file_sha256(f.path), f)
            if kept is not f:
                if kept.label != f.label:
                    raise DatasetError(f"{kept.path} and {f.path} hold the same bytes but are labelled "
                                       f"{'fake' if kept.label else 'real'} and {'fake' if f.label else 'real'}.")
                dropped.append((f, kept))
    if dropped:
        shown = "; ".join(f"{f.path} = {k.path}" for f, k in dropped[:3])
        warnings.warn(f"{len(dropped)} input(s) hold the same bytes as another and are counted once: {shown}"
                      f"{' ...' if len(dropped) > 3 else ''}", stacklevel=3)
        gone = {id(f) for f, _ in dropped}
        found = [f for f in found if id(f) not in gone]
    return found


def ffpp_ids(stem: str) -> tuple[list[str], str]:
    """The people a FaceForensics++ file name shows (namespaced ids), and the method it names."""
    for pattern, namespace in _NAMES:
        match = pattern.match(stem)
        if match:
            ids = [match["target"]] + ([match["source"]] if "source" in pattern.groupindex else [])
            method = match["method"] if "method" in pattern.groupindex and match["method"] else ""
            return [f"{namespace}:{i}" for i in ids], method
    return [], ""


def _with_groups(found: list[_Found]) -> list[Sample]:
    """Attach groups: the given ones, else people and sources joined (union-find), else the file itself."""
    parent: dict[str, str] = {}
    paths = {f.path for f in found}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:  # the root is a person or source where there is one, for readable groups
        ra, rb = sorted((find(a), find(b)), key=lambda node: (node in paths, node))
        parent[rb] = ra

    names: dict[str, list[str]] = defaultdict(list)  # a file's path, name and stem → its node
    for f in found:
        for name in (f.path, Path(f.path).name, Path(f.path).stem):
            names[name].append(f.path)
    methods = {}
    for f in found:
        people, methods[f.path] = ffpp_ids(Path(f.path).stem)
        for person in people:
            union(f.path, person)
        if f.source:
            for other in names.get(f.source, [f"source:{f.source}"]):
                union(f.path, other)
    samples = []
    for f in found:
        method = f.method or (methods[f.path] if f.label == 1 else "")
        samples.append(Sample(f.path, f.label, f.group or find(f.path), method))
    return samples
