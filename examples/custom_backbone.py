"""Custom backbone: register a small Keras CNN as a backbone and use it end to end.

    python examples/custom_backbone.py --images ../shared/images

A backbone is a `deepfake_detect.Backbone` subclass: its constructor stores its arguments
(they are its config, saved with the detector), `build_model()` returns a Keras model from
preprocessed crops to features, and `preprocess()` turns RGB uint8 crops into its input.
Here it is registered by calling `register_backbone`. A package registers it instead through
an entry point, so that it is found by name as soon as the package is installed:

    # pyproject.toml of the plug-in package
    [project.entry-points."deepfake_detect.backbones"]
    small_cnn = "my_package.backbones:SmallCNN"

(face detectors: group "deepfake_detect.face_detectors"; heads: "deepfake_detect.heads").
A saved detector names its backbone by that registry name; loading it where the plug-in is
not installed fails with a message naming the backbone and the entry-point group.

The CNN here is untrained (seeded random weights), so its held-out scores are near chance:
the example shows how a backbone plugs in, not a good one. Give trained weights with
``weights=`` for real use.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from deepfake_detect import Backbone, DeepfakeDetector, list_backbones, register_backbone
from deepfake_detect.datasets.synthetic import load_portraits, make_dataset


@register_backbone("small_cnn")
class SmallCNN(Backbone):
    """Three strided convolutions with batch normalisation, globally average-pooled.

    Args:
        width: channels of the last convolution (the feature width).
        input_size: side of the square input crops.
        weights: a Keras weights file, or None for the seeded random initialisation.
        seed: seed of that initialisation, so a rebuilt backbone computes the same features.
    """

    def __init__(self, width: int = 32, input_size: int = 96, weights: str | None = None, seed: int = 0):
        self.width = width
        self.input_size = input_size
        self.weights = weights
        self.seed = seed
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer; got {width!r}")
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 16:
            raise ValueError(f"input_size must be an integer >= 16; got {input_size!r}")

    @property
    def feature_dim(self) -> int:
        return self.width

    def build_model(self):
        import keras

        x = inputs = keras.Input((self.input_size, self.input_size, 3))
        for i, filters in enumerate((self.width // 4, self.width // 2, self.width)):
            init = keras.initializers.HeNormal(seed=self.seed + i)
            x = keras.layers.Conv2D(max(filters, 1), 3, strides=2, use_bias=False, kernel_initializer=init)(x)
            x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
        model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="small_cnn")
        if self.weights is not None:
            model.load_weights(self.weights)
        return model

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        return images.astype(np.float32) / 127.5 - 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="folder with face photos (face.jpg, grace_hopper.bmp)")
    parser.add_argument("--workdir", default=None, help="where to write the data and the model (default: a temp dir)")
    args = parser.parse_args()

    print(f"backbones: {', '.join(list_backbones())}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="deepfake-detect-"))
    portraits = load_portraits(args.images)
    train = make_dataset(work / "train", portraits, n_real=6, n_fake=6, seed=0)
    test = make_dataset(work / "test", portraits, n_real=4, n_fake=4, seed=1)

    detector = DeepfakeDetector(sampler={"name": "uniform", "n": 8},
                                backbone={"name": "small_cnn", "width": 32}, cache=None)
    history = detector.fit(train, verbose=0)
    print(f"trained on small_cnn features: final loss {history.history['loss'][-1]:.3f}")

    model = detector.save(work / "detector.dfd")
    loaded = DeepfakeDetector.load(model)  # the backbone is rebuilt by name: it must be registered here
    report = loaded.evaluate(test, verbose=0)
    print(f"saved {model}; its backbone: {loaded.get_config()['backbone']}")
    print(f"held-out videos (an untrained CNN: near chance is expected):\n{report.summary()}")


if __name__ == "__main__":
    main()
