"""Honest evaluation: cross-validation with videos (and people) kept on one side of every split.

`cross_validate` takes a detector (or its arguments), extracts the features of every input
once (`DeepfakeDetector.extract_features`, through its cache), then trains a fresh head per
fold on them. Protocols:

- ``"grouped"`` (default): k folds of whole groups (a video, its fakes, its person),
  stratified by label (scikit-learn's `StratifiedGroupKFold`);
- ``"leaky"``: the seed paper's protocol, k folds of frames drawn at random, so frames of
  one video are trained on and tested; reproducible, and labelled leaky in the report;
- ``"official"``: FaceForensics++'s official split (train on ``train``, test on ``test``),
  from ``splits/{train,val,test}.json``.

Video probabilities aggregate each video's tested frame probabilities with the detector's
aggregator. Pooled metrics use every input's out-of-fold prediction; `folds` keep each fold's.

Import it as ``from deepfake_detect.evaluation import cross_validate``: the module is named
for what it holds, and ``evaluate`` stays the name of the detector's method and CLI command.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .aggregation import Aggregator
from .datasets import Sample, discover, grouped_folds, official_split
from .detector import DeepfakeDetector
from .errors import DatasetError
from .heads import heads
from .metrics import summarize
from .results import EvaluationReport, FaceBox, FaceFeatures, FramePrediction, VideoPrediction

PROTOCOLS = {
    "grouped": "grouped {k}-fold cross-validation (no group on both sides of a fold)",
    "leaky": "LEAKY frame-level random {k}-fold split (the seed paper's protocol: frames of one video are "
             "trained on and tested)",
    "official": "FaceForensics++ official split (train → test)",
}


def cross_validate(detector: DeepfakeDetector | dict[str, Any], dataset_dir: str | os.PathLike | Sequence[Sample],
                   folds: int = 5, protocol: str = "grouped", seed: int = 0,
                   splits_dir: str | os.PathLike | None = None, bootstrap: int = 1000,
                   verbose: int = 1) -> EvaluationReport:
    """Cross-validated metrics of `detector`'s configuration.

    Args:
        detector: a `DeepfakeDetector` (fitted or not: its parts are used, its fitted head is
            not), or its arguments (as `get_config()` gives them).
        dataset_dir: a dataset folder, or samples already discovered.
        folds: how many folds (not used by "official").
        protocol: "grouped", "leaky" or "official" (see the module's doc).
        seed: seeds the fold assignment and the bootstrap.
        splits_dir: the folder of FaceForensics++'s train/val/test.json, for "official".
        bootstrap: resamples for the video AUC's confidence interval (0: none).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}; got {protocol!r}")
    if protocol == "official" and splits_dir is None:
        raise ValueError("protocol='official' needs splits_dir, the folder of FaceForensics++'s train/val/test.json")
    samples = discover(dataset_dir) if isinstance(dataset_dir, (str, os.PathLike)) else list(dataset_dir)
    if not isinstance(detector, DeepfakeDetector):
        detector = DeepfakeDetector(**detector)
    feats = detector.extract_features([s.path for s in samples], verbose)
    kept = [i for i, f in enumerate(feats) if len(f)]
    if {samples[i].label for i in kept} != {0, 1}:
        raise DatasetError(f"after face detection only one class has faces ({len(samples) - len(kept)} of "
                           f"{len(samples)} inputs had none); nothing to cross-validate")
    x = np.concatenate([feats[i].features for i in kept]).astype(np.float32)
    y = np.concatenate([np.full(len(feats[i]), samples[i].label, dtype=np.int32) for i in kept])
    owner = np.concatenate([np.full(len(feats[i]), i) for i in kept])  # the sample each frame row came from
    rows, evaluated = _frame_splits(protocol, samples, kept, owner, y, folds, seed, splits_dir)

    head_config = detector.get_config()["head"]
    aggregator, threshold = detector.part("aggregator"), detector.threshold
    p = np.full(len(y), np.nan)
    reports = []
    for k, (train, test) in enumerate(rows, start=1):
        head = heads.create(head_config)  # a fresh head per fold
        head.fit(x[train], y[train], videos=owner[train])
        p[test] = head.predict(x[test], videos=owner[test])
        tested = np.zeros(len(y), bool)
        tested[test] = True
        fold = _predictions(samples, feats, owner, tested, p, aggregator, threshold)
        reports.append(summarize([samples[i] for i in fold], list(fold.values()), f"fold {k} of {len(rows)}",
                                 threshold, bootstrap=0))
    pooled = _predictions(samples, feats, owner, np.isfinite(p), p, aggregator, threshold)
    for i in set(evaluated.tolist()) - set(kept):  # no face: the detector abstains, as `evaluate` reports it
        pooled[i] = _abstain(samples[i], feats[i], threshold)
    order = sorted(pooled)
    return summarize([samples[i] for i in order], [pooled[i] for i in order],
                     PROTOCOLS[protocol].format(k=len(rows)), threshold, folds=tuple(reports) if len(rows) > 1 else (),
                     leaky=protocol == "leaky", bootstrap=bootstrap, seed=seed)


def _frame_splits(protocol: str, samples: Sequence[Sample], kept: list[int], owner: np.ndarray, y: np.ndarray,
                  folds: int, seed: int, splits_dir) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The (train, test) frame rows of each fold, and the samples evaluated (tested, or tested but faceless)."""
    everyone = np.arange(len(samples))
    if protocol == "leaky":
        from sklearn.model_selection import StratifiedKFold

        return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)), everyone
    if protocol == "official":
        sides = official_split(samples, splits_dir)
        train, test = (np.intersect1d(sides[name], kept) for name in ("train", "test"))
        if not len(train) or not len(test):
            raise DatasetError(f"{splits_dir}: the official split leaves no input with a face in train or in test")
        return [(np.flatnonzero(np.isin(owner, train)), np.flatnonzero(np.isin(owner, test)))], sides["test"]
    kept_index = np.asarray(kept)
    video_folds = grouped_folds([samples[i].label for i in kept], [samples[i].group for i in kept], folds, seed)
    return [(np.flatnonzero(np.isin(owner, kept_index[train])), np.flatnonzero(np.isin(owner, kept_index[test])))
            for train, test in video_folds], everyone


def _predictions(samples: Sequence[Sample], feats: Sequence[FaceFeatures], owner: np.ndarray, tested: np.ndarray,
                 p: np.ndarray, aggregator: Aggregator, threshold: float) -> dict[int, VideoPrediction]:
    """Each sample with tested frames → its prediction from those frames, by sample index."""
    out = {}
    for i in np.unique(owner[tested]).tolist():
        rows = np.flatnonzero(owner == i)  # this sample's frame rows, in order
        mine = tested[rows]
        f = feats[i]
        frames = tuple(FramePrediction(int(f.frame_indices[j]), float(f.times[j]), float(p[rows[j]]),
                                       FaceBox(*map(float, f.boxes[j]), score=float(f.scores[j])))
                       for j in np.flatnonzero(mine))
        p_video = aggregator(np.array([fp.p_fake for fp in frames]))
        out[i] = VideoPrediction(samples[i].path, "fake" if p_video >= threshold else "real", p_video, frames,
                                 f.frames_sampled, threshold)
    return out


def _abstain(sample: Sample, feats: FaceFeatures, threshold: float) -> VideoPrediction:
    return VideoPrediction(sample.path, "unknown", None, (), feats.frames_sampled, threshold,
                           reason=f"no face found in {feats.frames_sampled} sampled frame(s)")
