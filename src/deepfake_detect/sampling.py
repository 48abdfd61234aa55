"""Frame samplers: which frames of a video are looked at.

`FrameSampler.indices(frame_count, fps)` is pure: sorted, unique indices in
``[0, frame_count)``, the same for the same config and inputs. A broken header (fps 0,
negative or NaN) never raises: rate-based samplers fall back to `fallback_fps`.

The work and memory of `indices` grow with the number of indices returned, never with
`frame_count` itself: a header claiming 2**40 frames costs no more than a short video where
`max_frames` (or `n`) bounds the result. Counts above `MAX_FRAME_COUNT` are taken as that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .registry import Configurable, Registry


def _check_positive_int(name: str, value: object, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}; got {value!r}")


def _check_positive_float(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")


#: The largest frame count a sampler works with (no container holds more; it keeps int64 exact).
MAX_FRAME_COUNT = 2**62


def _frame_count(value: object) -> int:
    """A header's frame count as an int in [0, MAX_FRAME_COUNT]."""
    return min(max(int(value), 0), MAX_FRAME_COUNT)


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


def _evenly_spaced(frame_count: int, n: int) -> np.ndarray:
    """`n` indices at the centres of `n` equal segments of the video (fewer if it is short)."""
    n = min(n, frame_count)
    if n <= 0:
        return _empty()
    return np.floor((np.arange(n) + 0.5) * frame_count / n).astype(np.int64)


class FrameSampler(Configurable):
    """Chooses frame indices from a frame count and a frame rate."""

    def indices(self, frame_count: int, fps: float) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, frame_count: int, fps: float) -> np.ndarray:
        return self.indices(frame_count, fps)


samplers: Registry[FrameSampler] = Registry("sampler", FrameSampler)


@samplers.register("fixed_rate")
class FixedRateSampler(FrameSampler):
    """`fps` frames per second of video (the paper: 1), at most `max_frames`, evenly thinned."""

    def __init__(self, fps: float = 1.0, max_frames: int | None = None, fallback_fps: float = 25.0):
        self.fps = fps
        self.max_frames = max_frames
        self.fallback_fps = fallback_fps
        _check_positive_float("fps", fps)
        _check_positive_int("max_frames", max_frames, allow_none=True)
        _check_positive_float("fallback_fps", fallback_fps)

    def indices(self, frame_count: int, fps: float) -> np.ndarray:
        frame_count = _frame_count(frame_count)
        if frame_count == 0:
            return _empty()
        ok = isinstance(fps, (int, float, np.integer, np.floating)) and math.isfinite(fps) and fps > 0
        video_fps = float(fps) if ok else self.fallback_fps
        # frames between samples: at least 1 (at most one sample per frame, so n <= frame_count) and at
        # most frame_count (only frame 0), which keeps n finite for extreme fps ratios
        step = min(max(video_fps / self.fps, 1.0), float(frame_count))
        n = max(int(math.floor((frame_count - 1) / step)) + 1, 1)
        # sample k is frame floor(k * step) (strictly increasing, as step >= 1); with max_frames only
        # the evenly spaced k are computed, so the work is O(max_frames) however long the header says
        # the video is
        k = np.arange(n, dtype=np.int64) if self.max_frames is None or n <= self.max_frames \
            else _evenly_spaced(n, self.max_frames)
        return np.unique(np.minimum(np.floor(k * step).astype(np.int64), frame_count - 1))


@samplers.register("uniform")
class UniformSampler(FrameSampler):
    """`n` frames evenly spaced over the whole video (as DFDC and DeepfakeBench do)."""

    def __init__(self, n: int = 32):
        self.n = n
        _check_positive_int("n", n)

    def indices(self, frame_count: int, fps: float) -> np.ndarray:
        return _evenly_spaced(_frame_count(frame_count), self.n)


@samplers.register("stride")
class StrideSampler(FrameSampler):
    """Every `k`-th frame, from frame `offset`, at most `max_frames` (the first ones)."""

    def __init__(self, k: int = 30, offset: int = 0, max_frames: int | None = None):
        self.k = k
        self.offset = offset
        self.max_frames = max_frames
        _check_positive_int("k", k)
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
            raise ValueError(f"offset must be a non-negative integer; got {offset!r}")
        _check_positive_int("max_frames", max_frames, allow_none=True)

    def indices(self, frame_count: int, fps: float) -> np.ndarray:
        frame_count = _frame_count(frame_count)
        if frame_count <= self.offset:
            return _empty()
        n = (frame_count - 1 - self.offset) // self.k + 1  # computed, not listed: O(max_frames) with max_frames
        if self.max_frames is not None:
            n = min(n, self.max_frames)
        return self.offset + self.k * np.arange(n, dtype=np.int64)


@samplers.register("random")
class RandomSampler(FrameSampler):
    """`n` distinct frames drawn at random, the same ones for the same `seed` and length."""

    def __init__(self, n: int = 32, seed: int = 0):
        self.n = n
        self.seed = seed
        _check_positive_int("n", n)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {seed!r}")

    def indices(self, frame_count: int, fps: float) -> np.ndarray:
        frame_count = _frame_count(frame_count)
        n = min(self.n, frame_count)
        if n == 0:
            return _empty()
        rng = np.random.default_rng([self.seed, frame_count])
        return np.sort(rng.choice(frame_count, size=n, replace=False)).astype(np.int64)


class Exactly(FrameSampler):
    """The given frame indices (those inside the video): re-reading frames a prediction named
    (report thumbnails, explanations). Not registered: it is not a sampling policy."""

    def __init__(self, wanted: Sequence[int]):
        self.wanted = wanted

    def indices(self, frame_count: int, fps: float) -> np.ndarray:
        idx = np.unique(np.asarray(self.wanted, dtype=np.int64))
        return idx[(idx >= 0) & (idx < frame_count)]
