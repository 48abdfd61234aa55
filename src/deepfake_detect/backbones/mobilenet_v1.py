"""`mobilenet_v1`: Keras' MobileNet V1 without its top, globally average-pooled (the paper's backbone)."""

from __future__ import annotations


import numpy as np

from ..pretrained import BUNDLED, BUNDLED_ALPHA, weights_path
from .base import Backbone, backbones, check_weights_file

_ALPHAS = (0.25, 0.5, 0.75, 1.0)
_IMAGENET_SIZES = (128, 160, 192, 224)


@backbones.register("mobilenet_v1")
class MobileNetV1(Backbone):
    """MobileNet V1 (Howard et al. 2017) as `keras.applications.MobileNet`.

    Args:
        alpha: width multiplier, one of 0.25, 0.5, 0.75, 1.0 (the paper: 0.5).
        input_size: side of the square input in pixels, at least 32 (the paper: 128).
        weights: "imagenet" (Keras' download), "bundled" (the ImageNet file shipped in the
            package: alpha 0.5 only, works offline), a path to a Keras weights file, or None.
        fast_depthwise: compute the depthwise convolutions with `FastDepthwiseConv2D`
            (shift-and-add on the JAX backend: the whole model ~8x faster on CPU; other
            backends run their own kernel) instead of Keras' layer, and let `embed` on JAX run
            `inference.inference_model` of the model (batch norms folded into the
            convolutions, the RGB stem by shift-and-add: ~1.15x less CPU at 128 px). Same weights and
            weight files, same features within float32 rounding, so it is not part of the
            fingerprint. False: Keras' layers as they are (the reference).
    """

    non_semantic = ("fast_depthwise",)
    #: Pixels a batch holds at most: 16 crops of 128 px keep activations in cache, ~25% less CPU
    #: time per face than 64 (JAX, CPU); at 288 px batches of 2 (4: the same CPU time, 8: 1.25x, 16: 1.4x).
    batch_pixels = 16 * 128 * 128

    @property
    def buckets(self) -> tuple[int, ...]:
        """Batch sizes `embed` pads to: powers of two up to the most crops of `input_size` that
        `batch_pixels` holds, at most 64 (16 at 128 px, 2 at 288 px)."""
        most = min(max(self.batch_pixels // (self.input_size * self.input_size), 1), 64)
        return tuple(1 << i for i in range(most.bit_length()))

    def __init__(self, alpha: float = 0.5, input_size: int = 128, weights: str | None = "imagenet",
                 fast_depthwise: bool = True):
        self.alpha = alpha
        self.input_size = input_size
        self.weights = weights
        self.fast_depthwise = fast_depthwise
        if alpha not in _ALPHAS:
            raise ValueError(f"alpha must be one of {_ALPHAS}; got {alpha!r}")
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 32:
            raise ValueError(f"input_size must be an integer >= 32; got {input_size!r}")
        if not isinstance(fast_depthwise, bool):
            raise ValueError(f"fast_depthwise must be True or False; got {fast_depthwise!r}")
        if weights == "imagenet" and input_size not in _IMAGENET_SIZES:
            raise ValueError(f"Keras' imagenet weights exist for input sizes {_IMAGENET_SIZES}; got {input_size}")
        if weights == BUNDLED and alpha != BUNDLED_ALPHA:
            raise ValueError(f"the bundled weights are MobileNet V1 alpha {BUNDLED_ALPHA}; got alpha {alpha!r}")
        check_weights_file(weights)

    @property
    def feature_dim(self) -> int:
        return int(1024 * self.alpha)

    def build_model(self):
        import keras

        from .depthwise import with_fast_depthwise

        model = keras.applications.MobileNet(
            input_shape=(self.input_size, self.input_size, 3), alpha=self.alpha, include_top=False,
            weights=weights_path(self.weights), pooling="avg",
        )
        return with_fast_depthwise(model) if self.fast_depthwise else model

    def inference_model(self):
        if not self.fast_depthwise:
            return self.model
        from .inference import inference_model

        return inference_model(self.model)

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        x = np.multiply(images, np.float32(1 / 127.5), dtype=np.float32)  # [-1, 1], in two passes
        x -= 1.0
        return x

    def preprocess_ops(self, images):
        from keras import ops

        return ops.cast(images, "float32") * np.float32(1 / 127.5) - np.float32(1.0)
