"""Face detection back-ends and the crop policy."""

from .base import FaceDetector, face_detectors
from .crop import CropPolicy
from .mtcnn import MTCNNDetector
from .none import WholeFrameDetector
from .retinaface import RetinaFaceDetector
from .retinaface_resnet50 import RetinaFaceResNet50Detector
from .yunet import YuNetDetector

__all__ = [
    "CropPolicy", "FaceDetector", "MTCNNDetector", "RetinaFaceDetector", "RetinaFaceResNet50Detector",
    "WholeFrameDetector", "YuNetDetector", "face_detectors",
]
