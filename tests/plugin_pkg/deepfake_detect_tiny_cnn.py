"""`tiny_cnn`: a two-layer CNN backbone, provided to deepfake-detect by an entry point.

The class is not decorated: the entry point ``tiny_cnn`` in this package's pyproject.toml
(group ``deepfake_detect.backbones``) is its registration.
"""

from __future__ import annotations

import numpy as np

from deepfake_detect import Backbone


class TinyCNN(Backbone):
    """Two strided 3x3 convolutions and global average pooling: `width` features.

    Args:
        width: channels of the second convolution (the feature width).
        input_size: side of the square input crops.
        weights: a Keras weights file, or None for the seeded random initialisation.
        seed: seed of that initialisation (so a rebuilt backbone has the same fingerprint).
    """

    def __init__(self, width: int = 16, input_size: int = 64, weights: str | None = None, seed: int = 0):
        self.width = width
        self.input_size = input_size
        self.weights = weights
        self.seed = seed
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer; got {width!r}")
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 8:
            raise ValueError(f"input_size must be an integer >= 8; got {input_size!r}")

    @property
    def feature_dim(self) -> int:
        return self.width

    def build_model(self):
        import keras

        init = keras.initializers.GlorotUniform(seed=self.seed)
        inputs = keras.Input((self.input_size, self.input_size, 3))
        x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", kernel_initializer=init)(inputs)
        x = keras.layers.Conv2D(self.width, 3, strides=2, activation="relu", kernel_initializer=init)(x)
        model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="tiny_cnn")
        if self.weights is not None:
            model.load_weights(self.weights)
        return model

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        return images.astype(np.float32) / 255.0
