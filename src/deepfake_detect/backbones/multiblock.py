"""`mobilenet_v1_multiblock`: MobileNet V1 features pooled from several blocks, not only the last.

ImageNet's last block describes objects; the artefacts a face swap leaves (blending seams,
a face resampled to another resolution, colour shifts) are low-level texture and are seen
best by the early blocks. This backbone globally pools the output of each chosen block
and concatenates them, so a head (or fine-tuning) can use all levels at once.

`region` pools only the middle of each feature map: the centre of the face crop, where a
swapped or re-enacted face lies (cheeks, nose, eyes, mouth), without the hair, background
and crop border whose texture varies from video to video and says nothing about the fake.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from ..pretrained import weights_path
from .base import backbones
from .mobilenet_v1 import MobileNetV1

#: Output channels of MobileNet V1's stem (block 0) and its 13 depthwise-separable blocks, at alpha 1.
BLOCK_CHANNELS = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
POOLINGS = ("avg", "avg_std")


def block_layer(block: int) -> str:
    """The Keras layer name of a block's output: the stem's ReLU for 0, else the pointwise ReLU."""
    return "conv1_relu" if block == 0 else f"conv_pw_{block}_relu"


def central(size: int, region: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """Cropping2D's ((top, bottom), (left, right)) keeping the central `region` share of a
    `size` x `size` map (at least one position)."""
    lo = int(round(size * (1.0 - region) / 2))
    hi = max(int(round(size * (1.0 + region) / 2)), lo + 1)
    return (lo, size - hi), (lo, size - hi)


@backbones.register("mobilenet_v1_multiblock")
class MobileNetV1MultiBlock(MobileNetV1):
    """MobileNet V1 with the outputs of `blocks` globally pooled and concatenated.

    `alpha`, `input_size`, `weights` and `fast_depthwise` are as `mobilenet_v1`'s, except that
    "imagenet" weights work at any input size (Keras loads its 224 px file for sizes it has none for).

    Args:
        blocks: which blocks to pool: 0 is the stem convolution, 1-13 the depthwise-separable
            blocks (13 is the last, what `mobilenet_v1` pools).
        pooling: "avg" (the mean of each channel) or "avg_std" (its mean and its standard
            deviation over the positions: the second holds the texture energy of a channel).
        region: the side of the central square that is pooled, as a share of the crop's side
            (1.0: all of it; 0.4: the middle 40%, inside the face with the default 1.3x crop margin).

    The feature width is the sum of the pooled blocks' channels (twice that with "avg_std").
    """

    def __init__(self, alpha: float = 0.5, input_size: int = 128, weights: str | None = "imagenet",
                 blocks: Sequence[int] = (3, 5, 11, 13), pooling: str = "avg", region: float = 1.0,
                 fast_depthwise: bool = True):
        # MobileNetV1 refuses "imagenet" at sizes Keras has no file for; for this backbone Keras loads its
        # 224 px weights, which fit any size (convolutions do not depend on it): checked at 224 here.
        checked = 224 if weights == "imagenet" and isinstance(input_size, int) and input_size >= 32 else input_size
        super().__init__(alpha=alpha, input_size=checked, weights=weights, fast_depthwise=fast_depthwise)
        self.input_size = input_size
        self.blocks = blocks
        self.pooling = pooling
        self.region = region
        chosen = list(blocks) if isinstance(blocks, (list, tuple)) else None
        if not chosen or any(isinstance(b, bool) or not isinstance(b, int) or not 0 <= b <= 13 for b in chosen) \
                or len(set(chosen)) != len(chosen):
            raise ValueError(f"blocks must be a non-empty sequence of distinct integers in [0, 13]; got {blocks!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; got {pooling!r}")
        if isinstance(region, bool) or not isinstance(region, (int, float)) or not 0.0 < region <= 1.0:
            raise ValueError(f"region must be a share of the crop's side in (0, 1]; got {region!r}")

    def block_channels(self) -> list[int]:
        """Channels of each pooled block, in the order of `blocks`."""
        return [int(BLOCK_CHANNELS[b] * self.alpha) for b in self.blocks]

    @property
    def feature_dim(self) -> int:
        return sum(self.block_channels()) * (2 if self.pooling == "avg_std" else 1)

    def build_model(self):
        import keras
        from keras import ops

        from .depthwise import with_fast_depthwise

        with warnings.catch_warnings():  # "imagenet" at another size: Keras warns that it loads the 224 weights
            warnings.filterwarnings("ignore", message=".*Weights for input shape")
            base = keras.applications.MobileNet(
                input_shape=(self.input_size, self.input_size, 3), alpha=self.alpha, include_top=False,
                weights=weights_path(self.weights), pooling=None,
            )
        if self.fast_depthwise:
            base = with_fast_depthwise(base)
        pooled = []
        for b in self.blocks:
            x = base.get_layer(block_layer(b)).output
            if self.region < 1.0:
                x = keras.layers.Cropping2D(central(x.shape[1], self.region), name=f"region_{b}")(x)
            mean = keras.layers.GlobalAveragePooling2D(name=f"pool_{b}_mean")(x)
            pooled.append(mean)
            if self.pooling == "avg_std":
                square = keras.layers.GlobalAveragePooling2D(name=f"pool_{b}_sq")(keras.layers.Lambda(
                    ops.square, name=f"square_{b}")(x))
                std = keras.layers.Lambda(lambda t: ops.sqrt(ops.maximum(t[0] - ops.square(t[1]), 0.0) + 1e-6),
                                          name=f"pool_{b}_std")([square, mean])
                pooled.append(std)
        out = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="multiblock")(pooled)
        return keras.Model(base.input, out, name=f"mobilenet_v1_multiblock_{self.alpha}_{self.input_size}")
