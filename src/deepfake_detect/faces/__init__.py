"""Face detection back-ends and the crop policy."""

from .base import FaceDetector, face_detectors
from .crop import CropPolicy
from .none import WholeFrameDetector
from .retinaface import RetinaFaceDetector

__all__ = ["CropPolicy", "FaceDetector", "RetinaFaceDetector", "WholeFrameDetector", "face_detectors"]
