"""Cross-fitting on extracted features: out-of-fold video scores over grouped folds.

`fit` and the nested evaluation (`deepfake_detect.evaluation`) share it. A `FeatureTable`
holds the frame rows of many videos with each video's label, group and method; `crossfit`
trains a fresh head per grouped fold on some videos and scores the others, so every video
gets a score from a head that never saw it (its *out-of-fold* score). Choices that need held-out
scores (calibration, threshold, the inconclusive band, a head's hyper-parameters) are made on
those, and the final head can still train on every video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .aggregation import Aggregator
from .heads import Head, heads as _heads
from .results import FaceFeatures


@dataclass(frozen=True)
class FeatureTable:
    """Frame rows `x` (N, D) of `n` videos: `owner` (N,) names each row's video (0..n-1, rows of
    one video in frame order); `labels`, `groups`, `methods` are per video."""

    x: np.ndarray
    owner: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    methods: np.ndarray

    @classmethod
    def build(cls, feats: Sequence[FaceFeatures], labels, groups, methods=None) -> FeatureTable:
        """From per-video features (each with at least one face row)."""
        x = np.concatenate([f.features for f in feats]).astype(np.float32)
        owner = np.concatenate([np.full(len(f), i) for i, f in enumerate(feats)])
        methods = [""] * len(feats) if methods is None else methods
        return cls(x, owner, np.asarray(labels, np.int64), np.asarray(groups).astype(str),
                   np.asarray(methods).astype(str))

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, videos: np.ndarray) -> np.ndarray:
        """The frame rows of `videos`, in video then frame order."""
        starts = self._starts()
        return np.concatenate([np.arange(starts[v], starts[v + 1]) for v in np.asarray(videos, int)]) \
            if len(videos) else np.zeros(0, int)

    def _starts(self) -> np.ndarray:
        cached = self.__dict__.get("_starts_cache")
        if cached is None:
            counts = np.bincount(self.owner, minlength=len(self.labels))
            cached = np.concatenate([[0], np.cumsum(counts)])
            object.__setattr__(self, "_starts_cache", cached)
        return cached


def train_head(head_config, table: FeatureTable, videos: np.ndarray, registry=None) -> Head:
    """A fresh head of `head_config` trained on every frame row of `videos`."""
    registry = _heads if registry is None else registry
    rows = table.rows(videos)
    head = registry.create(head_config)
    head.fit(table.x[rows], table.labels[table.owner[rows]], videos=table.owner[rows])
    return head


def score_videos(head_or_heads, table: FeatureTable, videos: np.ndarray,
                 aggregator: Aggregator) -> tuple[np.ndarray, np.ndarray]:
    """Each video's score (its frame p(fake) aggregated) and the frame scores (rows of `videos` in
    order). Several heads (a bagged ensemble) are averaged frame by frame."""
    models = head_or_heads if isinstance(head_or_heads, (list, tuple)) else [head_or_heads]
    rows = table.rows(videos)
    if not len(rows):
        return np.zeros(0), np.zeros(0)
    frame_p = np.mean([m.predict(table.x[rows], videos=table.owner[rows]) for m in models], axis=0)
    owner = table.owner[rows]
    video_p = np.array([aggregator(frame_p[owner == v]) for v in np.asarray(videos, int)])
    return video_p, frame_p


@dataclass
class CrossFit:
    """Out-of-fold scores of `videos` (aligned), the heads of each fold and the videos each tested."""

    videos: np.ndarray
    scores: np.ndarray
    heads: list
    tested: list


def crossfit(head_config, table: FeatureTable, videos: np.ndarray, aggregator: Aggregator, folds: int = 5,
             seed: int = 0, registry=None, fixed_train: np.ndarray | None = None) -> CrossFit:
    """Grouped, stratified `folds`-fold cross-fitting of a head over `videos`: each fold trains a
    fresh head on the other folds' videos (plus `fixed_train`, videos always trained on and never
    scored) and scores its own. Groups never straddle a fold."""
    from .datasets import grouped_folds

    videos = np.asarray(videos, int)
    extra = np.zeros(0, int) if fixed_train is None else np.asarray(fixed_train, int)
    scores = np.full(len(videos), np.nan)
    fitted, tested = [], []
    for train, test in grouped_folds(table.labels[videos], table.groups[videos], folds, seed):
        head = train_head(head_config, table, np.concatenate([videos[train], extra]), registry)
        scores[test] = score_videos(head, table, videos[test], aggregator)[0]
        fitted.append(head)
        tested.append(videos[test])
    return CrossFit(videos, scores, fitted, tested)


def usable_folds(labels: np.ndarray, groups: np.ndarray, wanted: int) -> int:
    """At most `wanted`, no more than the groups or the smaller class allow (0 or 1: cannot cross-fit)."""
    labels = np.asarray(labels, np.int64)
    return int(min(wanted, len(np.unique(groups)), np.bincount(labels, minlength=2).min()))
