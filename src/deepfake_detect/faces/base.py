"""The `FaceDetector` interface and its registry."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..digests import config_digest
from ..registry import Configurable, Registry
from ..results import FaceBox


class FaceDetector(Configurable):
    """Finds faces in a batch of RGB uint8 frames.

    `detect(frames)` returns, for each frame, its faces as `FaceBox`es in that frame's pixel
    coordinates. Back-ends import their heavy packages on first use, so listing and
    configuring detectors costs nothing.
    """

    #: True where the boxes are the whole input (the input is already a face crop).
    whole_frame: bool = False
    #: Config keys that change how fast, not what, a detector finds: left out of `fingerprint`,
    #: so changing them keeps the cached crops.
    non_semantic: tuple[str, ...] = ("batch_size", "threads")

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        raise NotImplementedError

    def model_digest(self) -> str:
        """A digest of the model's weights ("" for a detector without weights)."""
        return ""

    def fingerprint_config(self) -> dict:
        """The config that `fingerprint` identifies: `get_config()` less `non_semantic`. A detector
        may also leave out options at values that reproduce an older config, to keep its key."""
        return {k: v for k, v in self.get_config().items() if k not in self.non_semantic}

    @property
    def fingerprint(self) -> str:
        """Identifies what this detector outputs: its name, config and model digest."""
        config = self.fingerprint_config()
        return config_digest({"name": self.registry_name, "config": config, "model": self.model_digest()})


def check_detection_args(detection_size: object, score_threshold: object, nms_threshold: object,
                         batch_size: object = 1) -> None:
    """The argument checks that the detectors with a detection size and thresholds share."""
    if isinstance(detection_size, bool) or not isinstance(detection_size, int) or detection_size < 32:
        raise ValueError(f"detection_size must be an integer >= 32; got {detection_size!r}")
    if not isinstance(score_threshold, (int, float)) or not 0.0 < score_threshold < 1.0:
        raise ValueError(f"score_threshold must be in (0, 1); got {score_threshold!r}")
    if not isinstance(nms_threshold, (int, float)) or not 0.0 < nms_threshold <= 1.0:
        raise ValueError(f"nms_threshold must be in (0, 1]; got {nms_threshold!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")


face_detectors: Registry[FaceDetector] = Registry("face_detector", FaceDetector)
