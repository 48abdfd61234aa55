"""Calibration, operating threshold and the inconclusive band, chosen on held-out scores.

Everything here is fitted on *out-of-fold* video scores (each video scored by a head that did not
train on it), never on the scores of the videos a head trained on: those are overconfident.

- `Calibrator`: a monotone map from a raw video score to a calibrated p(fake): Platt scaling (a
  logistic regression on the score's logit; smooth, so frame scores keep their order and spread)
  or isotonic regression (a step function: more flexible, needs more data). Stored as plain
  numbers (`to_dict` / `from_dict`), so a saved model holds no pickle.
- `choose_threshold`: the p(fake) at or above which a video is called fake.
- `choose_band`: an interval around the threshold where the detector says "inconclusive".
- `expected_calibration_error` and `brier_score`: how far probabilities are from frequencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .verdict import decide

CALIBRATIONS = ("platt", "isotonic", "none")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass
class Calibrator:
    """A monotone map of raw p(fake) to calibrated p(fake).

    `method` is "platt" (``sigmoid(a * logit(p) + b)``), "isotonic" (piecewise linear through
    the points `x`, `y`) or "none" (identity).
    """

    method: str = "none"
    a: float = 1.0
    b: float = 0.0
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)

    def __post_init__(self):
        if self.method not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}; got {self.method!r}")

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray, method: str = "platt") -> Calibrator:
        """Fitted on held-out `scores` (raw p(fake)) and their `labels` (0 real, 1 fake)."""
        scores = np.asarray(scores, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64)
        if method == "none" or len(np.unique(labels)) < 2:
            return cls("none") if method == "none" else cls("platt", 0.0, float(_logit(labels.mean())))
        if method == "platt":
            from sklearn.linear_model import LogisticRegression

            # Mildly regularised: with a few dozen videos an unpenalised fit can run to a step function.
            model = LogisticRegression(C=10.0, max_iter=1000).fit(_logit(scores)[:, None], labels)
            return cls("platt", float(model.coef_[0, 0]), float(model.intercept_[0]))
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
            model.fit(scores, labels)
            return cls("isotonic", x=[float(v) for v in model.X_thresholds_],
                       y=[float(v) for v in model.y_thresholds_])
        raise ValueError(f"calibration must be one of {CALIBRATIONS}; got {method!r}")

    def __call__(self, p: np.ndarray | float) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * _logit(p) + self.b)))
        if self.method == "isotonic" and self.x:
            return np.interp(p, self.x, self.y)
        return p

    def to_dict(self) -> dict[str, Any]:
        if self.method == "platt":
            return {"method": "platt", "a": self.a, "b": self.b}
        if self.method == "isotonic":
            return {"method": "isotonic", "x": list(self.x), "y": list(self.y)}
        return {"method": "none"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """From `to_dict`'s output; ValueError for anything else (a saved model is checked with it)."""
        if not isinstance(data, dict) or data.get("method") not in CALIBRATIONS:
            raise ValueError(f"not a calibration: {data!r}")
        numbers = {k: data[k] for k in ("a", "b") if k in data}
        points = {k: data.get(k, []) for k in ("x", "y")}
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) for v in numbers.values()):
            raise ValueError(f"calibration parameters must be finite numbers: {numbers}")
        for k, v in points.items():
            if not isinstance(v, list) or any(isinstance(t, bool) or not isinstance(t, (int, float)) for t in v):
                raise ValueError(f"calibration {k} must be a list of numbers")
        if len(points["x"]) != len(points["y"]) or np.any(np.diff(points["x"]) < 0):
            raise ValueError("isotonic calibration points must be aligned and sorted")
        return cls(data["method"], float(numbers.get("a", 1.0)), float(numbers.get("b", 0.0)),
                   [float(t) for t in points["x"]], [float(t) for t in points["y"]])


def choose_calibration(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None,
                       methods: tuple[str, ...] = ("platt", "isotonic"), folds: int = 5, seed: int = 0) -> str:
    """The method of `methods` whose calibrated held-out scores have the lowest log loss, by a grouped
    cross-validation of the calibrator itself on `scores` (cheap: a calibrator is one or two numbers)."""
    from sklearn.metrics import log_loss

    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, np.int64)
    if len(methods) == 1:
        return methods[0]
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    k = min(folds, len(np.unique(groups)), int(np.bincount(labels, minlength=2).min()))
    if k < 2:
        return methods[0]
    from .datasets import grouped_folds

    losses = {}
    for method in methods:
        p = np.zeros(len(labels))
        for train, test in grouped_folds(labels, groups, k, seed):
            p[test] = Calibrator.fit(scores[train], labels[train], method)(scores[test])
        losses[method] = log_loss(labels, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])
    return min(methods, key=lambda m: (losses[m], methods.index(m)))


def choose_threshold(p: np.ndarray, labels: np.ndarray, rule: str | float = "balanced") -> float:
    """The operating threshold for (calibrated, held-out) `p`:

    - "balanced": the one with the highest balanced accuracy (Youden's J), midway between scores;
    - "fpr<=X" (e.g. "fpr<=0.05"): the lowest threshold whose false-positive rate on the real
      videos is at most X;
    - a number: that number.
    """
    if not isinstance(rule, str):
        return float(rule)
    p, labels = np.asarray(p, np.float64), np.asarray(labels, np.int64)
    if len(np.unique(labels)) < 2:
        return 0.5
    cuts = np.unique(p)
    candidates = np.concatenate([[0.0], (cuts[1:] + cuts[:-1]) / 2, [1.0]]) if len(cuts) > 1 else np.array([0.5])
    real, fake = p[labels == 0], p[labels == 1]
    fpr = np.array([(real >= t).mean() for t in candidates])
    tpr = np.array([(fake >= t).mean() for t in candidates])
    if rule == "balanced":
        j = tpr - fpr
        best = np.flatnonzero(j == j.max())
        return float(np.median(candidates[best]))
    if rule.startswith("fpr<="):
        target = float(rule[5:])
        ok = np.flatnonzero(fpr <= target)
        return float(candidates[ok].min()) if len(ok) else 1.0
    raise ValueError(f"threshold rule must be 'balanced', 'fpr<=X' or a number; got {rule!r}")


def choose_band(p: np.ndarray, labels: np.ndarray, threshold: float, max_abstain: float = 0.2,
                target_error: float = 0.05) -> tuple[float, float]:
    """An "inconclusive" interval ``[low, high)`` around `threshold` on held-out `p`: the narrowest
    one (growing by one held-out video at a time, on the side with the nearer error) after which
    the videos decided outside it err at most `target_error`, holding at most `max_abstain` of
    them. ``(threshold, threshold)`` (no band) where no abstention is allowed or none is needed."""
    p, labels = np.asarray(p, np.float64), np.asarray(labels, np.int64)
    low = high = float(threshold)
    if max_abstain <= 0 or not len(p):
        return low, high
    order_below = np.sort(p[p < threshold])[::-1]  # nearest the threshold first
    order_above = np.sort(p[p >= threshold])
    i = j = 0
    budget = int(np.floor(max_abstain * len(p)))

    def error(lo, hi):
        decided = (p < lo) | (p >= hi)
        if not decided.any():
            return 0.0
        called = p[decided] >= threshold
        return float((called != labels[decided].astype(bool)).mean())

    while error(low, high) > target_error and i + j < budget:
        # widen towards the nearer remaining score
        below = order_below[i] if i < len(order_below) else -np.inf
        above = order_above[j] if j < len(order_above) else np.inf
        if threshold - below <= above - threshold:
            i += 1
            low = float(below) if np.isfinite(below) else low
        else:
            j += 1
            high = float(np.nextafter(above, np.inf)) if np.isfinite(above) else high
    return low, high


def expected_calibration_error(labels: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """The mean |frequency of fakes - mean p(fake)| over `bins` equal-width bins of p, weighted by
    how many inputs each holds (the usual ECE, on p(fake))."""
    labels, p = np.asarray(labels, np.float64), np.clip(np.asarray(p, np.float64), 0.0, 1.0)
    if not len(p):
        return float("nan")
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        rows = which == b
        total += rows.sum() * abs(labels[rows].mean() - p[rows].mean())
    return float(total / len(p))


def brier_score(labels: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between p(fake) and the label (0 real, 1 fake)."""
    labels, p = np.asarray(labels, np.float64), np.asarray(p, np.float64)
    return float(np.mean((p - labels) ** 2)) if len(p) else float("nan")


@dataclass
class Decision:
    """What `fit` chooses on out-of-fold scores: the calibrator, the threshold on calibrated
    p(fake), and the inconclusive band ``[low, high)`` (empty when low == high)."""

    calibrator: Calibrator
    threshold: float = 0.5
    band: tuple[float, float] = (0.5, 0.5)

    @property
    def inconclusive(self) -> tuple[float, float] | None:
        """The band as `verdict.decide` takes it: None where it is empty."""
        return self.band if self.band[0] < self.band[1] else None

    def label(self, p: float) -> str:
        return decide(p, self.threshold, self.inconclusive)

    def to_dict(self) -> dict[str, Any]:
        return {"calibration": self.calibrator.to_dict(), "threshold": self.threshold, "inconclusive": list(self.band)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        threshold = data.get("threshold", 0.5)
        band = data.get("inconclusive", [threshold, threshold])
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ValueError(f"threshold {threshold!r} is not a number in [0, 1]")
        if (not isinstance(band, list) or len(band) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in band) or band[0] > band[1]):
            raise ValueError(f"inconclusive band {band!r} is not [low, high]")
        return cls(Calibrator.from_dict(data.get("calibration", {"method": "none"})), float(threshold),
                   (float(band[0]), float(band[1])))


def choose_decision(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None,
                    calibration: str | tuple[str, ...] = "platt", threshold: str | float = "balanced",
                    max_abstain: float = 0.0, target_error: float = 0.05, seed: int = 0) -> Decision:
    """Calibrator, threshold and band from held-out `scores` of labelled videos (see the module doc).
    `calibration` may list methods: the one with the lowest cross-validated log loss is kept."""
    methods = (calibration,) if isinstance(calibration, str) else tuple(calibration)
    method = choose_calibration(scores, labels, groups, methods, seed=seed)
    calibrator = Calibrator.fit(scores, labels, method)
    p = calibrator(scores)
    cut = choose_threshold(p, labels, threshold)
    return Decision(calibrator, cut, choose_band(p, labels, cut, max_abstain, target_error))
