"""Splits grouped by source video: no group on both sides, classes balanced where possible.

`grouped_split` and `grouped_folds` work on label and group arrays (scikit-learn's
`StratifiedGroupKFold`, seeded); `train_test_split` on discovered samples;
`official_split` reads FaceForensics++'s ``splits/{train,val,test}.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .discovery import Sample, ffpp_ids

SPLIT_NAMES = ("train", "val", "test")


def grouped_folds(labels: np.ndarray, groups: np.ndarray, folds: int = 5,
                  seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """`folds` pairs of indices (train, test): each index is tested once, every group
    stays on one side of every pair, and each side keeps the classes' proportions as
    far as the groups allow. `DatasetError` where the data has too few groups or inputs."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    labels, groups = np.asarray(labels), np.asarray(groups)
    _check_splittable(labels, groups, folds)
    if len(np.unique(groups)) == len(groups):  # one input per group: the same folds, without the per-group loop
        return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(groups, labels))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels, groups))


def grouped_split(labels: np.ndarray, groups: np.ndarray, test_size: float = 0.15,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with every group on one side only, stratified by label, and
    both classes on each side.

    Uses scikit-learn's `StratifiedGroupKFold` with about ``1 / test_size`` folds (fewer
    where there are fewer groups, or fewer inputs in the smaller class, so the test side
    can be larger than asked) and keeps the first fold whose sides both hold both classes.
    `DatasetError` where no fold does.
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1); got {test_size!r}")
    n_groups = len(np.unique(groups))
    smallest_class = int(np.bincount(labels.astype(np.int64), minlength=2).min()) if len(labels) else 0
    n_splits = min(max(2, round(1.0 / test_size)), n_groups, smallest_class)
    if n_splits < 2:
        raise DatasetError(f"a grouped split needs at least 2 groups and 2 inputs of each class; got {n_groups} "
                           f"groups, {smallest_class} input(s) in the smaller class. "
                           "Add data or set validation_split=0.")
    for train, test in grouped_folds(labels, groups, n_splits, seed):
        if len(np.unique(labels[train])) == 2 and len(np.unique(labels[test])) == 2:
            return train, test
    raise DatasetError(f"no grouped split of these {n_groups} groups keeps both classes on both sides; "
                       "add data or set validation_split=0.")


def train_test_split(samples: Sequence[Sample], test_size: float = 0.2,
                     seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """Samples (train, test), grouped and stratified as `grouped_split`."""
    train, test = grouped_split(np.array([s.label for s in samples]), np.array([s.group for s in samples]),
                                test_size, seed)
    return [samples[i] for i in train], [samples[i] for i in test]


def official_split(samples: Sequence[Sample], splits_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Indices of `samples` in each of FaceForensics++'s official splits.

    `splits_dir` holds ``train.json``, ``val.json`` and ``test.json``, each a list of
    ``[target, source]`` id pairs. A real video ``<id>`` belongs to the split with a pair
    holding its id, a fake ``[<Method>_]<target>_<source>`` to the split with the pair
    holding both. Inputs whose ids are in no split are left out; `DatasetError` for one
    in two splits, or a name without FaceForensics++ ids.
    """
    home: dict[str, str] = {}
    pairs: dict[frozenset[str], str] = {}
    for name in SPLIT_NAMES:
        path = Path(splits_dir) / f"{name}.json"
        try:
            listed = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DatasetError(f"{path}: cannot read FaceForensics++'s split ({e}); expected a JSON list of "
                               "[target, source] pairs.") from e
        for pair in listed:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise DatasetError(f"{path}: {pair!r} is not a [target, source] pair.")
            pairs[frozenset(map(str, pair))] = name
            for video_id in map(str, pair):
                if home.setdefault(video_id, name) != name:
                    raise DatasetError(f"{splits_dir}: video {video_id} is in both {home[video_id]} and {name}.")
    out: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for i, sample in enumerate(samples):
        people, _ = ffpp_ids(Path(sample.path).stem)
        ids = [p.partition(":")[2] for p in people]
        if not ids:
            raise DatasetError(f"{sample.path}: not a FaceForensics++ name (<id>.mp4 or "
                               "[<Method>_]<target>_<source>.mp4); the official split cannot place it.")
        name = pairs.get(frozenset(ids)) if len(ids) == 2 else home.get(ids[0])
        if name is not None:
            out[name].append(i)
    return {name: np.array(rows, dtype=np.int64) for name, rows in out.items()}


def _check_splittable(labels: np.ndarray, groups: np.ndarray, folds: int) -> None:
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2; got {folds!r}")
    n_groups = len(np.unique(groups))
    counts = np.bincount(labels.astype(np.int64), minlength=2)
    if n_groups < folds or counts.min() < folds:
        raise DatasetError(f"{folds} grouped folds need at least {folds} groups and {folds} inputs of each class; "
                           f"got {n_groups} groups, {counts[0]} real and {counts[1]} fake input(s).")
