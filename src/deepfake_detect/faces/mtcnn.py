"""The `mtcnn` face detector: MTCNN (Zhang et al. 2016), the paper's detector, on Keras 3.

Three cascaded networks: P-Net slides over an image pyramid and proposes boxes, R-Net
rejects and refines them on 24x24 crops, O-Net does so again on 48x48 crops and places
five landmarks. Each stage ends with non-maximum suppression and box regression. Frames of
one shape go through each network together. Weights: `mtcnn_networks`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from functools import cached_property

import cv2
import numpy as np

from ..results import FaceBox
from . import mtcnn_networks
from .base import FaceDetector, face_detectors
from .boxes import nms

_CELL, _STRIDE = 12, 2  # P-Net's window and step, in pixels of a pyramid level
_BUCKETS = (16, 64, 256)  # R-Net and O-Net calls are padded to one of these sizes, so few shapes get compiled


@face_detectors.register("mtcnn")
class MTCNNDetector(FaceDetector):
    """MTCNN with the original weights, read from the `mtcnn` PyPI package (no TensorFlow needed).

    Args:
        min_face_size: smallest face side looked for, in pixels of the frame as detected.
        scale_factor: ratio between successive levels of the image pyramid, in (0, 1).
        thresholds: face probability each of P-Net, R-Net and O-Net requires.
        detection_size: frames whose longer side exceeds this are downscaled to it before
            detection (boxes are mapped back); None detects at full size.
        batch_size: frames per network call.
        weights: folder with pnet.lz4, rnet.lz4 and onet.lz4; None: the `mtcnn` package's.
            The files are joblib pickles: give only a folder you trust.
    """

    unpickled_files = ("weights",)  # joblib files

    def __init__(self, min_face_size: int = 20, scale_factor: float = 0.709,
                 thresholds: Sequence[float] = (0.6, 0.7, 0.7), detection_size: int | None = 640,
                 batch_size: int = 8, weights: str | None = None):
        self.min_face_size = min_face_size
        self.scale_factor = scale_factor
        self.thresholds = thresholds
        self.detection_size = detection_size
        self.batch_size = batch_size
        self.weights = weights
        if isinstance(min_face_size, bool) or not isinstance(min_face_size, int) or min_face_size < _CELL:
            raise ValueError(f"min_face_size must be an integer >= {_CELL}; got {min_face_size!r}")
        if not isinstance(scale_factor, (int, float)) or not 0.1 <= scale_factor < 1.0:
            raise ValueError(f"scale_factor must be in [0.1, 1); got {scale_factor!r}")
        if len(thresholds) != 3 or not all(isinstance(t, (int, float)) and 0 < t < 1 for t in thresholds):
            raise ValueError(f"thresholds must be three probabilities in (0, 1); got {thresholds!r}")
        if detection_size is not None and (isinstance(detection_size, bool) or not isinstance(detection_size, int)
                                           or detection_size < 48):
            raise ValueError(f"detection_size must be an integer >= 48 or None; got {detection_size!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")

    @cached_property
    def _networks(self):
        return mtcnn_networks.load_all(mtcnn_networks.weights_dir(self.weights).resolve())

    def model_digest(self) -> str:
        folder = mtcnn_networks.weights_dir(self.weights)
        h = hashlib.sha256()
        for name in mtcnn_networks.NETWORKS:
            h.update((folder / f"{name}.lz4").read_bytes())
        return h.hexdigest()[:16]

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        results: list[list[FaceBox]] = [[] for _ in frames]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(i)
        for shape, members in by_shape.items():
            scale = 1.0 if self.detection_size is None else min(1.0, self.detection_size / max(shape[:2]))
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                images = np.stack([_resize(frames[i], scale) for i in chunk])
                for i, faces in zip(chunk, self._detect(images)):
                    results[i] = [_to_box(face, 1.0 / scale) for face in faces]
        return results

    def _detect(self, images: np.ndarray) -> list[np.ndarray]:
        """Per image of a batch (N, H, W, 3): rows x1 y1 x2 y2 score and 10 landmark coordinates."""
        pnet, rnet, onet = self._networks
        t1, t2, t3 = self.thresholds
        boxes = self._propose(pnet, images, t1)
        boxes = [_square(b) for b in self._refine(rnet, images, boxes, t2, 24, "union")[0]]
        boxes, landmarks = self._refine(onet, images, boxes, t3, 48, "min")
        h, w = images.shape[1:3]
        out = []
        for i in range(len(images)):
            corners = np.clip(boxes[i][:, :4], 0, [w, h, w, h])
            out.append(np.concatenate([corners, boxes[i][:, 4:5], landmarks[i]], axis=1))
        return out

    def _pyramid(self, height: int, width: int) -> list[float]:
        scale = _CELL / self.min_face_size
        scales = []
        while min(height, width) * scale >= _CELL:
            scales.append(scale)
            scale *= self.scale_factor
        return scales

    def _propose(self, pnet, images: np.ndarray, threshold: float) -> list[np.ndarray]:
        """P-Net over the pyramid: each image's square candidate boxes, rows x1 y1 x2 y2 score."""
        n, h, w = images.shape[:3]
        found: list[list[np.ndarray]] = [[] for _ in range(n)]
        for scale in self._pyramid(h, w):
            size = (math.ceil(w * scale), math.ceil(h * scale))
            level = _normalize(np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images]))
            offsets, probs = (np.asarray(o) for o in pnet.predict_on_batch(level))
            for i in range(n):
                ys, xs = np.nonzero(probs[i, :, :, 1] > threshold)
                if not len(ys):
                    continue
                cells = np.stack([xs, ys, xs, ys], axis=1) * _STRIDE + np.array([0, 0, _CELL, _CELL])
                rows = np.concatenate([cells / scale, probs[i, ys, xs, 1:2], offsets[i, ys, xs]], axis=1)
                found[i].append(rows[nms(rows[:, :4], rows[:, 4], 0.5)])
        proposals = []
        for rows in found:
            rows = np.concatenate(rows) if rows else np.zeros((0, 9))
            rows = rows[nms(rows[:, :4], rows[:, 4], 0.7)]
            proposals.append(_square(np.concatenate([_regress(rows[:, :4], rows[:, 5:9]), rows[:, 4:5]], axis=1)))
        return proposals

    def _refine(self, network, images: np.ndarray, boxes: list[np.ndarray], threshold: float, size: int,
                mode: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """R-Net or O-Net on each candidate's crop: the kept boxes (x1 y1 x2 y2 score, regressed
        and suppressed) of each image, and their landmarks (O-Net; empty for R-Net)."""
        counts = [len(b) for b in boxes]
        crops = [_crop(images[i], box, size) for i, b in enumerate(boxes) for box in b]
        if crops:
            outputs = _predict(network, _normalize(np.stack(crops)))
        else:
            outputs = [np.zeros((0, d)) for d in ([4, 10, 2] if len(network.outputs) == 3 else [4, 2])]
        offsets, probs = outputs[0], outputs[-1]
        marks = outputs[1] if len(outputs) == 3 else np.zeros((len(probs), 0))
        kept_boxes, kept_marks = [], []
        ends = np.cumsum(counts)
        for b, stop, count in zip(boxes, ends, counts):
            rows = slice(stop - count, stop)
            keep = probs[rows, 1] > threshold
            cand, score, off, lm = b[keep, :4], probs[rows, 1][keep], offsets[rows][keep], marks[rows][keep]
            if lm.shape[1]:  # x1..x5 y1..y5 as fractions of the box → x1 y1 ... x5 y5 in pixels
                extent = np.tile(cand[:, 2:4] - cand[:, 0:2], 5)
                lm = np.tile(cand[:, 0:2], 5) + lm[:, [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]] * extent
            cand = _regress(cand, off)
            order = nms(cand, score, 0.7, mode)
            kept_boxes.append(np.concatenate([cand, score[:, None]], axis=1)[order])
            kept_marks.append(lm[order])
        return kept_boxes, kept_marks


def _resize(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return frame
    return cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _normalize(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) - 127.5) / 128.0


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boxes moved by the networks' offsets, which are fractions of the box's width and height."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    return boxes + offsets * np.concatenate([wh, wh], axis=1)


def _square(rows: np.ndarray) -> np.ndarray:
    """Boxes (first four columns) grown to squares about their centres; other columns kept."""
    rows = rows.copy()
    side = np.maximum(rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1])
    centre = (rows[:, 0:2] + rows[:, 2:4]) / 2
    rows[:, 0:2] = centre - side[:, None] / 2
    rows[:, 2:4] = rows[:, 0:2] + side[:, None]
    return rows


def _crop(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The box's pixels (black outside the image) resized to `size` x `size`."""
    x1, y1, x2, y2 = (round(float(v)) for v in box[:4])
    w, h = max(x2 - x1, 1), max(y2 - y1, 1)
    patch = np.zeros((h, w, 3), dtype=image.dtype)
    sx1, sy1 = max(x1, 0), max(y1, 0)
    sx2, sy2 = min(x1 + w, image.shape[1]), min(y1 + h, image.shape[0])
    if sx2 > sx1 and sy2 > sy1:
        patch[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = image[sy1:sy2, sx1:sx2]
    shrink = max(w, h) > size
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _predict(model, x: np.ndarray) -> list[np.ndarray]:
    """The model's outputs on a batch of crops `x`, in calls padded to a size of `_BUCKETS`."""
    outputs = []
    for start in range(0, len(x), _BUCKETS[-1]):
        chunk = x[start:start + _BUCKETS[-1]]
        n = len(chunk)
        padded = next(b for b in _BUCKETS if b >= n)
        if padded > n:
            chunk = np.concatenate([chunk, np.zeros((padded - n, *chunk.shape[1:]), chunk.dtype)])
        outputs.append([np.asarray(o)[:n] for o in model.predict_on_batch(chunk)])
    return [np.concatenate(parts) for parts in zip(*outputs)]


def _to_box(row: np.ndarray, factor: float) -> FaceBox:
    x1, y1, x2, y2, score = (float(v) for v in row[:5])
    marks = tuple((float(row[5 + 2 * k]) * factor, float(row[6 + 2 * k]) * factor) for k in range(5))
    return FaceBox(x1 * factor, y1 * factor, x2 * factor, y2 * factor, score, marks)
