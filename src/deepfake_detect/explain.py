"""Which part of the face moved the score: occlusion sensitivity of p(fake) over the face crop.

For one frame, the face crop the backbone saw is cut again from the video; then each cell of a
`grid` x `grid` partition of the crop is covered in turn by a grey square (twice the cell's
side, centred on it) and the frame's p(fake) recomputed. A cell's value is how much covering it
lowers p(fake): where it is high, that part of the face pushed the score towards "fake".
Computed on demand only (``deepfake-detect predict --report DIR --explain``): it embeds
``grid**2 + 1`` crops per frame.

This shows what the model reacts to, not where a manipulation is; a model can react to
compression or lighting as well as to a blending seam.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .results import FramePrediction, VideoPrediction


@dataclass(frozen=True)
class Explanation:
    """One frame's occlusion map: the face crop (RGB uint8, S x S), the map (grid x grid, in
    p(fake) units: drop of p when the cell is covered) and the frame's p(fake) uncovered."""

    frame: FramePrediction
    crop: np.ndarray
    heat: np.ndarray
    p_fake: float


def most_suspicious(prediction: VideoPrediction, k: int = 3) -> list[FramePrediction]:
    """The `k` frames of highest p(fake), in time order."""
    top = sorted(prediction.frames, key=lambda f: -f.p_fake)[:k]
    return sorted(top, key=lambda f: f.index)


def occlusion_maps(detector, path: str | os.PathLike, frames: Sequence[FramePrediction],
                   grid: int = 7) -> list[Explanation]:
    """The occlusion maps of `frames` of the video at `path`, as `detector` (fitted) scores them."""
    from .errors import NotFittedError
    from .sampling import Exactly
    from .video import sample_frames

    if getattr(detector, "head_", None) is None:
        raise NotFittedError("explaining needs a fitted detector: fit it or load one")
    extractor = detector.extractor
    size = extractor.backbone.input_size
    _, decoded = sample_frames(path, Exactly([f.index for f in frames]))
    pixels = dict(decoded)
    out = []
    for f in frames:
        image = pixels.get(f.index)
        if image is None:
            continue
        crop = extractor.crop.crop(image, f.box, size, whole_frame=extractor.face_detector.whole_frame)
        variants = [crop]
        cell = size / grid
        for i in range(grid):
            for j in range(grid):
                covered = crop.copy()
                cy, cx = (i + 0.5) * cell, (j + 0.5) * cell
                y1, y2 = int(max(cy - cell, 0)), int(min(cy + cell, size))
                x1, x2 = int(max(cx - cell, 0)), int(min(cx + cell, size))
                covered[y1:y2, x1:x2] = 128
                variants.append(covered)
        features = extractor.backbone.embed(np.stack(variants))
        p = detector.score_frames(features, videos=np.arange(len(variants)))  # each crop alone: no temporal context
        out.append(Explanation(f, crop, (p[0] - p[1:]).reshape(grid, grid), float(p[0])))
    return out
