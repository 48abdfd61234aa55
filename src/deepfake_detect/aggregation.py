"""Aggregators: from the frame probabilities of one video to one video probability."""

from __future__ import annotations

import numpy as np

from .registry import Configurable, Registry


class Aggregator(Configurable):
    """Maps frame p(fake) values (N ≥ 1,) to one p(fake) for the video."""

    def __call__(self, p_frames: np.ndarray) -> float:
        p = np.asarray(p_frames, dtype=np.float64)
        if p.ndim != 1 or p.size == 0:
            raise ValueError(f"an aggregator needs a non-empty 1-D array of frame probabilities; got shape {p.shape}")
        return float(self.aggregate(p))

    def aggregate(self, p: np.ndarray) -> float:
        raise NotImplementedError


aggregators: Registry[Aggregator] = Registry("aggregator", Aggregator)


@aggregators.register("mean")
class MeanAggregator(Aggregator):
    """The mean frame probability."""

    def __init__(self):
        pass

    def aggregate(self, p: np.ndarray) -> float:
        return p.mean()


@aggregators.register("median")
class MedianAggregator(Aggregator):
    """The median frame probability (robust to a few wild frames)."""

    def __init__(self):
        pass

    def aggregate(self, p: np.ndarray) -> float:
        return np.median(p)


@aggregators.register("max")
class MaxAggregator(Aggregator):
    """The highest frame probability (one convincing fake frame suffices)."""

    def __init__(self):
        pass

    def aggregate(self, p: np.ndarray) -> float:
        return p.max()


@aggregators.register("vote")
class VoteAggregator(Aggregator):
    """The share of frames whose p(fake) is at least `threshold`."""

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1]; got {threshold!r}")

    def aggregate(self, p: np.ndarray) -> float:
        return (p >= self.threshold).mean()


@aggregators.register("confident")
class ConfidentAggregator(Aggregator):
    """The DFDC winner's rule: where at least `min_share` of the frames are confidently fake
    (p ≥ `threshold`), the mean of those frames; else the mean of all frames."""

    def __init__(self, threshold: float = 0.8, min_share: float = 0.25):
        self.threshold = threshold
        self.min_share = min_share
        if not 0.5 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0.5, 1]; got {threshold!r}")
        if not 0.0 < min_share <= 1.0:
            raise ValueError(f"min_share must be in (0, 1]; got {min_share!r}")

    def aggregate(self, p: np.ndarray) -> float:
        confident = p[p >= self.threshold]
        return confident.mean() if confident.size >= self.min_share * p.size else p.mean()
