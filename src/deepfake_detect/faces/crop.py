"""Crop policy: which face of a frame, how much margin, and the square crop itself."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..registry import Configurable
from ..results import FaceBox


class CropPolicy(Configurable):
    """Chooses one face per frame and cuts it out as a square.

    Args:
        margin: side of the square crop as a multiple of the box's longer side (1.3: the box
            enlarged by 30%).
        select: "largest" or "most_confident" face of a frame.
        skip_multiple: skip frames with more than one face (as the paper did).
        min_face: faces whose longer side is below this many pixels are ignored.
    """

    def __init__(self, margin: float = 1.3, select: str = "largest", skip_multiple: bool = False, min_face: int = 20):
        self.margin = margin
        self.select = select
        self.skip_multiple = skip_multiple
        self.min_face = min_face
        if not isinstance(margin, (int, float)) or not 1.0 <= margin <= 4.0:
            raise ValueError(f"margin must be a number in [1, 4]; got {margin!r}")
        if select not in ("largest", "most_confident"):
            raise ValueError(f"select must be 'largest' or 'most_confident'; got {select!r}")
        if not isinstance(min_face, int) or min_face < 0:
            raise ValueError(f"min_face must be a non-negative integer; got {min_face!r}")

    def choose(self, boxes: Sequence[FaceBox]) -> FaceBox | None:
        """The face this policy keeps of a frame's faces, or None."""
        boxes = [b for b in boxes if max(b.width, b.height) >= self.min_face]
        if not boxes or (self.skip_multiple and len(boxes) > 1):
            return None
        key = (lambda b: b.area) if self.select == "largest" else (lambda b: b.score)
        return max(boxes, key=key)

    def crop(self, frame: np.ndarray, box: FaceBox, size: int, whole_frame: bool = False) -> np.ndarray:
        """The square `size`x`size` crop around `box`; parts outside the frame are black."""
        if whole_frame:
            return cv2.resize(frame, (size, size), interpolation=_interpolation(frame.shape[0], size))
        side = max(box.width, box.height) * self.margin
        cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
        x1, y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
        s = max(int(round(side)), 1)
        h, w = frame.shape[:2]
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x1 + s, w), min(y1 + s, h)
        square = np.zeros((s, s, 3), dtype=np.uint8)
        if sx2 > sx1 and sy2 > sy1:
            square[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = frame[sy1:sy2, sx1:sx2]
        return cv2.resize(square, (size, size), interpolation=_interpolation(s, size))


def _interpolation(source: int, target: int) -> int:
    return cv2.INTER_AREA if source > target else cv2.INTER_LINEAR
