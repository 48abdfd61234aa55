"""The `none` face detector: the input already is a face crop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..results import FaceBox
from .base import FaceDetector, face_detectors


@face_detectors.register("none")
class WholeFrameDetector(FaceDetector):
    """Returns the whole frame as the one face (for datasets of face crops)."""

    whole_frame = True

    def __init__(self):
        pass

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        return [[FaceBox(0.0, 0.0, float(f.shape[1]), float(f.shape[0]), 1.0)] for f in frames]
