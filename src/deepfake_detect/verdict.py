"""From p(fake) to a label: the one place where a threshold and an inconclusive band decide.

    decide(0.26, 0.5)                  # "real"
    decide(0.55, 0.5, (0.4, 0.6))      # "inconclusive": inside the band, the score says too little
    decide(None, 0.5)                  # "unknown": no face, no score

`operating_point` picks the threshold and band a prediction uses: those given to the call,
else a fitted decision of the detector (``decision_``, which calibration sets: its
``threshold`` and ``inconclusive`` band), else the detector's ``threshold`` and
``inconclusive`` arguments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LABELS = ("real", "fake", "inconclusive", "unknown")


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold, an optional inconclusive band (low, high) and where they came from."""

    threshold: float = 0.5
    inconclusive: tuple[float, float] | None = None
    source: str = "default"

    def label(self, p_fake: float | None) -> str:
        return decide(p_fake, self.threshold, self.inconclusive)

    def describe(self) -> str:
        """'threshold 0.5' or 'threshold 0.5, inconclusive 0.4-0.6'."""
        text = f"threshold {self.threshold:.3g}"
        if self.inconclusive is not None:
            text += f", inconclusive {self.inconclusive[0]:.3g}-{self.inconclusive[1]:.3g}"
        return text


def decide(p_fake: float | None, threshold: float = 0.5, inconclusive: Sequence[float] | None = None) -> str:
    """The label of a video whose p(fake) is `p_fake`: "unknown" without a score, "inconclusive"
    where ``low <= p_fake <= high`` for the band ``inconclusive = (low, high)``, else "fake"
    at or above `threshold` and "real" below it."""
    if p_fake is None or (isinstance(p_fake, float) and math.isnan(p_fake)):
        return "unknown"
    if inconclusive is not None and inconclusive[0] <= p_fake <= inconclusive[1]:
        return "inconclusive"
    return "fake" if p_fake >= threshold else "real"


def checked(threshold: Any, inconclusive: Any) -> tuple[float, tuple[float, float] | None]:
    """`threshold` and `inconclusive` validated: a number in [0, 1], and None or (low, high) with
    0 <= low <= high <= 1; ValueError saying what is wrong otherwise."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ValueError(f"the threshold must be a number in [0, 1]; got {threshold!r}")
    if inconclusive is None:
        return float(threshold), None
    try:
        low, high = (float(v) for v in inconclusive)
    except (TypeError, ValueError):
        raise ValueError(f"the inconclusive band must be two numbers (low, high); got {inconclusive!r}") from None
    if not 0 <= low <= high <= 1:
        raise ValueError(f"the inconclusive band must have 0 <= low <= high <= 1; got ({low:.3g}, {high:.3g})")
    return float(threshold), (low, high)


def operating_point(detector: Any, threshold: float | None = None,
                    inconclusive: Sequence[float] | None = None) -> OperatingPoint:
    """The threshold and band `detector` decides with: those given here win; else its fitted
    decision ``decision_`` (an object or dict with ``threshold`` and optionally
    ``inconclusive``), if it has one; else its ``threshold`` and ``inconclusive`` arguments."""
    fitted = getattr(detector, "decision_", None)
    if fitted is not None:
        get = fitted.get if isinstance(fitted, dict) else lambda k, d=None: getattr(fitted, k, d)
        base_t, base_band, source = get("threshold", detector.threshold), get("inconclusive"), "model"
    else:
        base_t, base_band = getattr(detector, "threshold", 0.5), getattr(detector, "inconclusive", None)
        source = "model" if base_t != 0.5 or base_band is not None else "default"
    given = threshold is not None or inconclusive is not None
    t, band = checked(base_t if threshold is None else threshold, base_band if inconclusive is None else inconclusive)
    return OperatingPoint(t, band, "given" if given else source)
