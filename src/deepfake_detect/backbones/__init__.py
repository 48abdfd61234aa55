"""Backbones: Keras models from face crops to feature vectors."""

from .base import Backbone, backbones
from .mobilenet_v1 import MobileNetV1

__all__ = ["Backbone", "MobileNetV1", "backbones"]
