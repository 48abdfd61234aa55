"""Box arithmetic shared by the detectors: overlap and non-maximum suppression on (N, 4) x1 y1 x2 y2 arrays."""

from __future__ import annotations

import numpy as np


def overlap(box: np.ndarray, boxes: np.ndarray, mode: str = "union") -> np.ndarray:
    """Intersection of `box` (4,) with each of `boxes` (N, 4), over their union ("union": IoU)
    or over the smaller of the two areas ("min")."""
    if mode not in ("union", "min"):
        raise ValueError(f"mode must be 'union' or 'min'; got {mode!r}")
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    denominator = area + areas - inter if mode == "union" else np.minimum(area, areas)
    return inter / np.maximum(denominator, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first. A box is
    dropped when its overlap (see `overlap`) with a kept, better-scoring box exceeds `threshold`."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        best, order = order[0], order[1:]
        keep.append(best)
        order = order[overlap(boxes[best], boxes[order], mode) <= threshold]
    return np.asarray(keep, dtype=np.int64)
