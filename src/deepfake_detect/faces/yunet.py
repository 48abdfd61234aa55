"""The `yunet` face detector: YuNet through OpenCV's `cv2.FaceDetectorYN`, from a model file."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import cached_property

import cv2
import numpy as np

from ..results import FaceBox
from .base import FaceDetector, check_detection_args, face_detectors

MODEL_SOURCE = ("https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet "
                "(face_detection_yunet_2023mar.onnx, MIT licence)")


@face_detectors.register("yunet")
class YuNetDetector(FaceDetector):
    """YuNet (Wu et al. 2023), a small, fast CNN face detector, run by OpenCV's DNN module.

    Args:
        model_path: the YuNet ONNX file. It is not on PyPI: get it from OpenCV's model zoo
            (see `MODEL_SOURCE`).
        detection_size: frames whose longer side exceeds this are downscaled to it before
            detection (boxes are mapped back).
        score_threshold: minimum face confidence.
        nms_threshold: IoU above which overlapping boxes are merged.
    """

    def __init__(self, model_path: str, detection_size: int = 640, score_threshold: float = 0.8,
                 nms_threshold: float = 0.3):
        self.model_path = model_path
        self.detection_size = detection_size
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        if not os.path.isfile(str(model_path)):
            raise FileNotFoundError(f"YuNet model file {model_path!r} not found; download it from {MODEL_SOURCE} "
                                    "and pass its path as model_path")
        check_detection_args(detection_size, score_threshold, nms_threshold)

    @cached_property
    def _detector(self):
        return cv2.FaceDetectorYN.create(str(self.model_path), "", (320, 320), self.score_threshold,
                                         self.nms_threshold)

    def model_digest(self) -> str:
        with open(self.model_path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:16]

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame: np.ndarray) -> list[FaceBox]:
        scale = min(1.0, self.detection_size / max(frame.shape[:2]))
        if scale < 1.0:
            frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        detector = self._detector
        detector.setInputSize((frame.shape[1], frame.shape[0]))
        _, faces = detector.detect(np.ascontiguousarray(frame[..., ::-1]))  # the model reads BGR
        if faces is None:
            return []
        boxes = []
        for row in faces.astype(np.float64) / scale:  # x y w h, 5 landmarks (x, y), score
            x, y, w, h = (float(v) for v in row[:4])
            marks = tuple((float(row[4 + 2 * k]), float(row[5 + 2 * k])) for k in range(5))
            boxes.append(FaceBox(x, y, x + w, y + h, float(row[14] * scale), marks))
        return boxes
