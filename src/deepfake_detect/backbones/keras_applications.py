"""Backbones from `keras.applications`: MobileNet V2 and V3, EfficientNet-B0, Xception, ResNet-50.

Each is the application without its top, globally average-pooled, with its own default
input size and its own preprocessing (the application's ``preprocess_input``: MobileNet V2
and Xception scale pixels to [-1, 1], ResNet-50 subtracts the Caffe BGR means, MobileNet V3
and EfficientNet take 0..255 pixels and normalise inside the model).
"""

from __future__ import annotations


import numpy as np

from .base import Backbone, backbones, check_weights_file


def _check_size(name: str, input_size: int, minimum: int) -> None:
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < minimum:
        raise ValueError(f"{name}: input_size must be an integer >= {minimum}; got {input_size!r}")


def _check_weights(weights: str | None) -> None:
    check_weights_file(weights)


def _divisible(value: float, divisor: int = 8) -> int:
    """Keras' rounding of channel counts: to the nearest multiple of `divisor`, at most 10% down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class KerasApplication(Backbone):
    """A `keras.applications` model without its top, globally average-pooled.

    Subclasses name the application (`application`), the module whose ``preprocess_input``
    applies (`preprocessing`), and pass their own constructor arguments in `arguments()`.
    """

    application: str = ""
    preprocessing: str = ""
    #: Swap Keras' depthwise convolutions for `FastDepthwiseConv2D` (models that have any).
    fast_depthwise: bool = False

    def arguments(self) -> dict:
        """Constructor arguments of the application besides input shape, top, weights, pooling."""
        return {}

    def build_model(self):
        import keras

        from .depthwise import with_fast_depthwise

        model = getattr(keras.applications, self.application)(
            input_shape=(self.input_size, self.input_size, 3), include_top=False, weights=self.weights,
            pooling="avg", **self.arguments())
        return with_fast_depthwise(model) if self.fast_depthwise else model

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        import keras

        return getattr(keras.applications, self.preprocessing).preprocess_input(images.astype(np.float32))


@backbones.register("mobilenet_v2")
class MobileNetV2(KerasApplication):
    """MobileNet V2 (Sandler et al. 2018) as `keras.applications.MobileNetV2`.

    Args:
        alpha: width multiplier; ImageNet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3, 1.4.
        input_size: side of the square input, at least 32; ImageNet weights exist for 96, 128,
            160, 192, 224.
        weights: "imagenet", a path to a Keras weights file, or None.
        fast_depthwise: compute the depthwise convolutions with `FastDepthwiseConv2D` (same
            features, faster on CPU under JAX; not part of the fingerprint).
    """

    application, preprocessing = "MobileNetV2", "mobilenet_v2"
    non_semantic = ("fast_depthwise",)
    imagenet_alphas = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
    imagenet_sizes = (96, 128, 160, 192, 224)

    def __init__(self, alpha: float = 1.0, input_size: int = 224, weights: str | None = "imagenet",
                 fast_depthwise: bool = True):
        self.alpha = alpha
        self.input_size = input_size
        self.weights = weights
        self.fast_depthwise = fast_depthwise
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise ValueError(f"alpha must be a positive number; got {alpha!r}")
        _check_size("mobilenet_v2", input_size, 32)
        if weights == "imagenet" and alpha not in self.imagenet_alphas:
            raise ValueError(f"Keras' imagenet weights exist for alpha in {self.imagenet_alphas}; got {alpha}")
        if weights == "imagenet" and input_size not in self.imagenet_sizes:
            raise ValueError(f"Keras' imagenet weights exist for input sizes {self.imagenet_sizes}; got {input_size}")
        _check_weights(weights)

    @property
    def feature_dim(self) -> int:
        return 1280 if self.alpha <= 1.0 else _divisible(1280 * self.alpha)

    def arguments(self) -> dict:
        return {"alpha": self.alpha}


class MobileNetV3(KerasApplication):
    """MobileNet V3 (Howard et al. 2019) as `keras.applications.MobileNetV3Small` / `Large`.

    The model scales its 0..255 input itself (Keras' ``include_preprocessing``).

    Args:
        alpha: width multiplier; ImageNet weights exist for 0.75 and 1.0 (1.0 only when minimalistic).
        minimalistic: the variant without squeeze-excite, hard-swish and 5x5 convolutions.
        input_size: side of the square input, at least 32 (ImageNet weights were trained at 224).
        weights: "imagenet", a path to a Keras weights file, or None.
        fast_depthwise: compute the depthwise convolutions with `FastDepthwiseConv2D` (same
            features, faster on CPU under JAX; not part of the fingerprint).
    """

    preprocessing = "mobilenet_v3"
    non_semantic = ("fast_depthwise",)
    last_block_channels = 0  # before the final 1x1 convolution, which widens 6x

    def __init__(self, alpha: float = 1.0, minimalistic: bool = False, input_size: int = 224,
                 weights: str | None = "imagenet", fast_depthwise: bool = True):
        self.alpha = alpha
        self.minimalistic = minimalistic
        self.input_size = input_size
        self.weights = weights
        self.fast_depthwise = fast_depthwise
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise ValueError(f"alpha must be a positive number; got {alpha!r}")
        if not isinstance(minimalistic, bool):
            raise ValueError(f"minimalistic must be True or False; got {minimalistic!r}")
        _check_size(self.registry_name, input_size, 32)
        if weights == "imagenet" and alpha not in ((1.0,) if minimalistic else (0.75, 1.0)):
            raise ValueError("Keras' imagenet weights exist for alpha 0.75 and 1.0 (1.0 only when minimalistic); "
                             f"got alpha={alpha}, minimalistic={minimalistic}")
        _check_weights(weights)

    @property
    def feature_dim(self) -> int:
        return _divisible(_divisible(self.last_block_channels * self.alpha) * 6)

    def arguments(self) -> dict:
        return {"alpha": self.alpha, "minimalistic": self.minimalistic, "include_preprocessing": True}


@backbones.register("mobilenet_v3_small")
class MobileNetV3Small(MobileNetV3):
    __doc__ = MobileNetV3.__doc__
    application, last_block_channels = "MobileNetV3Small", 96


@backbones.register("mobilenet_v3_large")
class MobileNetV3Large(MobileNetV3):
    __doc__ = MobileNetV3.__doc__
    application, last_block_channels = "MobileNetV3Large", 160


@backbones.register("efficientnet_b0")
class EfficientNetB0(KerasApplication):
    """EfficientNet-B0 (Tan and Le 2019) as `keras.applications.EfficientNetB0`.

    The model scales and normalises its 0..255 input itself.

    Args:
        input_size: side of the square input, at least 32 (ImageNet weights were trained at 224).
        weights: "imagenet", a path to a Keras weights file, or None.
        fast_depthwise: compute the depthwise convolutions with `FastDepthwiseConv2D` (same
            features, faster on CPU under JAX; not part of the fingerprint).
    """

    application, preprocessing = "EfficientNetB0", "efficientnet"
    non_semantic = ("fast_depthwise",)

    def __init__(self, input_size: int = 224, weights: str | None = "imagenet", fast_depthwise: bool = True):
        self.input_size = input_size
        self.weights = weights
        self.fast_depthwise = fast_depthwise
        _check_size("efficientnet_b0", input_size, 32)
        _check_weights(weights)

    @property
    def feature_dim(self) -> int:
        return 1280


@backbones.register("xception")
class Xception(KerasApplication):
    """Xception (Chollet 2017) as `keras.applications.Xception`: pixels scaled to [-1, 1].

    Args:
        input_size: side of the square input, at least 71 (ImageNet weights were trained at 299).
        weights: "imagenet", a path to a Keras weights file, or None.
    """

    application, preprocessing = "Xception", "xception"

    def __init__(self, input_size: int = 299, weights: str | None = "imagenet"):
        self.input_size = input_size
        self.weights = weights
        _check_size("xception", input_size, 71)
        _check_weights(weights)

    @property
    def feature_dim(self) -> int:
        return 2048


@backbones.register("resnet50")
class ResNet50(KerasApplication):
    """ResNet-50 (He et al. 2016) as `keras.applications.ResNet50`: BGR, ImageNet means subtracted.

    Args:
        input_size: side of the square input, at least 32 (ImageNet weights were trained at 224).
        weights: "imagenet", a path to a Keras weights file, or None.
    """

    application, preprocessing = "ResNet50", "resnet50"

    def __init__(self, input_size: int = 224, weights: str | None = "imagenet"):
        self.input_size = input_size
        self.weights = weights
        _check_size("resnet50", input_size, 32)
        _check_weights(weights)

    @property
    def feature_dim(self) -> int:
        return 2048
