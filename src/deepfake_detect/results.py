"""Result types: what the stages hand each other and what the detector returns."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """A detected face in pixel coordinates of the frame it was found in."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def scaled(self, factor: float) -> FaceBox:
        """The same box in a frame `factor` times larger."""
        marks = None if self.landmarks is None else tuple((x * factor, y * factor) for x, y in self.landmarks)
        return FaceBox(self.x1 * factor, self.y1 * factor, self.x2 * factor, self.y2 * factor, self.score, marks)


@dataclass(frozen=True)
class FaceFeatures:
    """What the pipeline keeps of one input up to the backbone: one row per frame with a face.

    `frame_indices`, `times` (seconds), `boxes` (N, 4: x1 y1 x2 y2), `scores` (N,) and
    `features` (N, D) are aligned; `frames_sampled` counts the frames looked at, with or
    without a face.
    """

    frame_indices: np.ndarray
    times: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    features: np.ndarray
    frames_sampled: int

    def __len__(self) -> int:
        return int(self.frame_indices.shape[0])

    @property
    def frames_without_face(self) -> int:
        return self.frames_sampled - len(self)


@dataclass(frozen=True)
class FramePrediction:
    """One sampled frame's verdict."""

    index: int
    time: float
    p_fake: float
    box: FaceBox


@dataclass(frozen=True)
class VideoPrediction:
    """A whole video's (or image's) verdict.

    `label` is "fake", "real" or "unknown" (the detector abstains, `reason` says why).
    `timings` holds seconds per stage (decode, detect, embed, classify; "cache" on a hit).
    """

    path: str
    label: str
    p_fake: float | None
    frames: tuple[FramePrediction, ...]
    frames_sampled: int
    threshold: float
    timings: dict[str, float] = field(default_factory=dict)
    reason: str | None = None

    @property
    def faces_found(self) -> int:
        return len(self.frames)

    @property
    def frames_without_face(self) -> int:
        return self.frames_sampled - len(self.frames)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["faces_found"] = self.faces_found
        out["frames_without_face"] = self.frames_without_face
        return out


@dataclass(frozen=True)
class EvaluationReport:
    """Metrics of a detector on a labelled dataset, at frame and at video level."""

    protocol: str
    n_videos: int
    n_frames: int
    video: dict[str, float]
    frame: dict[str, float]
    videos_without_face: int
    predictions: tuple[VideoPrediction, ...] = ()

    def summary(self) -> str:
        lines = [f"protocol: {self.protocol}; {self.n_videos} inputs, {self.n_frames} frames with a face"]
        for level, metrics in (("video", self.video), ("frame", self.frame)):
            shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float))
            lines.append(f"{level}: {shown}")
        if self.videos_without_face:
            lines.append(f"{self.videos_without_face} inputs had no face and were left out of the video metrics")
        return "\n".join(lines)
