"""Backbones: Keras models from face crops to feature vectors."""

from .base import Backbone, backbones
from .keras_applications import EfficientNetB0, MobileNetV2, MobileNetV3Large, MobileNetV3Small, ResNet50, Xception
from .mobilenet_v1 import MobileNetV1
from .multiblock import MobileNetV1MultiBlock

__all__ = [
    "Backbone", "EfficientNetB0", "MobileNetV1", "MobileNetV1MultiBlock", "MobileNetV2", "MobileNetV3Large",
    "MobileNetV3Small", "ResNet50", "Xception", "backbones",
]
