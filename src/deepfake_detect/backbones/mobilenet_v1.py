"""`mobilenet_v1`: Keras' MobileNet V1 without its top, globally average-pooled (the paper's backbone)."""

from __future__ import annotations

import os

import numpy as np

from .base import Backbone, backbones

_ALPHAS = (0.25, 0.5, 0.75, 1.0)
_IMAGENET_SIZES = (128, 160, 192, 224)


@backbones.register("mobilenet_v1")
class MobileNetV1(Backbone):
    """MobileNet V1 (Howard et al. 2017) as `keras.applications.MobileNet`.

    Args:
        alpha: width multiplier, one of 0.25, 0.5, 0.75, 1.0 (the paper: 0.5).
        input_size: side of the square input in pixels, at least 32 (the paper: 128).
        weights: "imagenet", a path to a Keras weights file, or None.
    """

    def __init__(self, alpha: float = 0.5, input_size: int = 128, weights: str | None = "imagenet"):
        self.alpha = alpha
        self.input_size = input_size
        self.weights = weights
        if alpha not in _ALPHAS:
            raise ValueError(f"alpha must be one of {_ALPHAS}; got {alpha!r}")
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 32:
            raise ValueError(f"input_size must be an integer >= 32; got {input_size!r}")
        if weights == "imagenet" and input_size not in _IMAGENET_SIZES:
            raise ValueError(f"Keras' imagenet weights exist for input sizes {_IMAGENET_SIZES}; got {input_size}")
        if weights not in ("imagenet", None) and not os.path.isfile(str(weights)):
            raise FileNotFoundError(f"weights file {weights!r} not found; give 'imagenet', None or an existing path")

    @property
    def feature_dim(self) -> int:
        return int(1024 * self.alpha)

    def build_model(self):
        import keras

        return keras.applications.MobileNet(
            input_shape=(self.input_size, self.input_size, 3), alpha=self.alpha, include_top=False,
            weights=self.weights, pooling="avg",
        )

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        return images.astype(np.float32) / 127.5 - 1.0
