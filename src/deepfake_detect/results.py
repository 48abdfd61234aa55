"""Result types: what the stages hand each other and what the detector returns."""

from __future__ import annotations

import dataclasses
import math
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
class FaceCrops:
    """The face crops of one input, one per frame with a face: what the backbone embeds.

    Aligned like `FaceFeatures`, with `crops` (N, S, S, 3) RGB uint8 in place of features.
    """

    frame_indices: np.ndarray
    times: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    crops: np.ndarray
    frames_sampled: int

    def __len__(self) -> int:
        return int(self.frame_indices.shape[0])


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

    `label` is "fake" (p_fake at or above `threshold`), "real", "inconclusive" (p_fake inside
    the `inconclusive` band, where one was asked for) or "unknown" (the detector abstains,
    `reason` says why). `timings` holds seconds per stage (decode, detect, embed, classify;
    "cache" on a hit). `str()` is a one-line summary; `to_dict()` holds every detail.
    """

    path: str
    label: str
    p_fake: float | None
    frames: tuple[FramePrediction, ...]
    frames_sampled: int
    threshold: float
    timings: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    inconclusive: tuple[float, float] | None = None

    def __str__(self) -> str:
        """'clip.mp4: real (p_fake 0.262, threshold 0.5; a face in 20 of 20 sampled frames)'."""
        name = self.path.replace("\\", "/").rsplit("/", 1)[-1]
        if self.p_fake is None:
            return f"{name}: {self.label} ({self.reason or 'no score'})"
        rule = f"threshold {self.threshold:.3g}"
        if self.inconclusive is not None:
            rule += f", inconclusive {self.inconclusive[0]:.3g}-{self.inconclusive[1]:.3g}"
        return (f"{name}: {self.label} (p_fake {self.p_fake:.3f}, {rule}; a face in {self.faces_found} of "
                f"{self.frames_sampled} sampled frames)")

    def __repr__(self) -> str:
        p = "None" if self.p_fake is None else f"{self.p_fake:.3f}"
        return (f"VideoPrediction(path={self.path!r}, label={self.label!r}, p_fake={p}, "
                f"faces={self.faces_found}/{self.frames_sampled})")

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
    """Metrics of a detector on a labelled dataset, at frame and at video level.

    `video` and `frame` hold `metrics.binary_metrics` (fake is the positive class);
    `by_method` the video metrics of the real inputs against the fakes of each
    manipulation method; `video_auc_ci` a bootstrap 95% interval of the video ROC AUC.
    A cross-validation keeps each fold's own report in `folds` (`across_folds` gives mean
    and std). `predictions` and `labels` (0 real, 1 fake) are aligned, one per input.
    `leaky` marks a protocol that puts frames of one video on both sides of a split: its
    numbers measure memorisation of videos, not detection of unseen ones. A dataset of one
    class (`one_class`) has no AUC: its `video["called_fake_rate"]` (with
    `called_fake_rate_ci`) and accuracy are what it measures.
    """

    protocol: str
    n_videos: int
    n_frames: int
    video: dict[str, float]
    frame: dict[str, float]
    videos_without_face: int
    predictions: tuple[VideoPrediction, ...] = ()
    labels: tuple[int, ...] = ()
    by_method: dict[str, dict[str, float]] = field(default_factory=dict)
    video_auc_ci: tuple[float, float] = (float("nan"), float("nan"))
    folds: tuple[EvaluationReport, ...] = ()
    leaky: bool = False
    called_fake_rate_ci: tuple[float, float] = (float("nan"), float("nan"))
    n_groups: int = 0

    @property
    def one_class(self) -> str | None:
        """"real" or "fake" where every scored input is of that class (AUC is then undefined and the
        rate called fake is the number to read), else None."""
        scored = {y for y, p in zip(self.labels, self.predictions) if p.p_fake is not None}
        return None if len(scored) != 1 else ("fake" if scored == {1} else "real")

    def across_folds(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Mean and standard deviation of each metric over the folds, per level ("video", "frame")."""
        return {level: mean_std([getattr(f, level) for f in self.folds]) for level in ("video", "frame")}

    def summary(self) -> str:
        inputs = f"{self.n_videos} inputs, all {self.one_class};" if self.one_class else f"{self.n_videos} inputs,"
        lines = [f"protocol: {self.protocol}; {inputs} {self.n_frames} frames with a face"]
        if self.leaky:
            lines.append("WARNING: leaky protocol: frames of one video are on both sides of the split; these numbers "
                         "do not measure detection of unseen videos")
        shown = ("accuracy", "balanced_accuracy", "roc_auc", "average_precision", "eer", "log_loss")
        if self.one_class:
            v = self.video
            n = v["tn"] + v["fp"] + v["fn"] + v["tp"]
            called = v["fp"] + v["tp"]
            low, high = self.called_fake_rate_ci
            ci = f" [95% CI {low:.3f}-{high:.3f}]" if np.isfinite(low) else " [95% CI n/a: too few groups]"
            lines.append(f"one class only ({self.one_class}): called fake {called} of {n} (rate "
                         f"{v['called_fake_rate']:.3f}{ci}); accuracy {v['accuracy']:.3f}; "
                         f"ECE {v['ece']:.3f}, Brier {v['brier']:.3f}")
            shown = ("accuracy", "log_loss")
        spread = self.across_folds() if self.folds else {}
        for level in ("video", "frame"):
            metrics = getattr(self, level)
            parts = []
            for k in shown:
                text = f"{k} {metrics[k]:.3f}"
                if k in spread.get(level, {}):
                    text += " (folds: {:.3f} ± {:.3f})".format(*spread[level][k])
                if level == "video" and k == "roc_auc":
                    text += " [95% CI {}]".format(self.ci_text())
                parts.append(text)
            lines.append(f"{level}: " + ", ".join(parts))
            lines.append(f"{level} confusion: tn {metrics['tn']}, fp {metrics['fp']}, "
                         f"fn {metrics['fn']}, tp {metrics['tp']}")
            if level == "video" and "ece" in metrics:
                extra = f"video calibration: ECE {metrics['ece']:.3f}, Brier {metrics['brier']:.3f}"
                if metrics.get("inconclusive_rate"):
                    extra += (f"; inconclusive {metrics['inconclusive_rate']:.3f}, accuracy of the rest "
                              f"{metrics['decided_accuracy']:.3f}")
                lines.append(extra)
        for method, metrics in self.by_method.items():
            lines.append(f"real vs {method}: " + ", ".join(f"{k} {metrics[k]:.3f}" for k in shown[:3]))
        if self.videos_without_face:
            lines.append(f"{self.videos_without_face} inputs had no face and were left out of the video metrics")
        return "\n".join(lines)

    def ci_text(self) -> str:
        """The video AUC's bootstrap interval as text, or why there is none ('n/a: 2 groups')."""
        if all(map(math.isfinite, self.video_auc_ci)):
            return "{:.3f}-{:.3f}".format(*self.video_auc_ci)
        return f"n/a: {self.n_groups} groups" if self.n_groups else "n/a"

    def to_dict(self) -> dict[str, Any]:
        """The numbers as plain JSON-able values (NaN as None), without the predictions."""
        def clean(value):
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (tuple, list)):
                return [clean(v) for v in value]
            return None if isinstance(value, float) and math.isnan(value) else value

        out = {"protocol": self.protocol, "leaky": self.leaky, "n_videos": self.n_videos, "n_frames": self.n_frames,
               "videos_without_face": self.videos_without_face, "video": self.video, "frame": self.frame,
               "video_auc_ci": self.video_auc_ci, "n_groups": self.n_groups, "by_method": self.by_method,
               "one_class": self.one_class, "called_fake_rate_ci": self.called_fake_rate_ci}
        scored = [p for p in self.predictions if p.p_fake is not None]
        if scored:
            out["called_fake"] = sum(p.p_fake >= p.threshold for p in scored)
            out["called_fake_rate"] = out["called_fake"] / len(scored)
        if self.folds:
            out["across_folds"] = self.across_folds()
            out["folds"] = [f.to_dict() for f in self.folds]
        return clean(out)


def mean_std(runs: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Each metric's mean and standard deviation over runs (folds), NaN runs left out."""
    out = {}
    for key in runs[0] if runs else ():
        values = np.array([run[key] for run in runs], dtype=np.float64)
        values = values[np.isfinite(values)]
        out[key] = (float(values.mean()), float(values.std())) if values.size else (float("nan"), float("nan"))
    return out
