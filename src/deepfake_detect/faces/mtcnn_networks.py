"""MTCNN's three networks (Zhang et al. 2016) as Keras 3 models, and their released weights.

The weights are the original Caffe ones as the `mtcnn` PyPI package ships them
(``mtcnn/assets/weights/{pnet,rnet,onet}.lz4``: joblib files holding each network's arrays
in layer order). That package's own code needs TensorFlow; only its weight files are read
here, so MTCNN runs on any Keras backend.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

NETWORKS = ("pnet", "rnet", "onet")
INSTALL = "pip install mtcnn"

def weights_dir(folder: str | os.PathLike | None = None) -> Path:
    """The folder holding pnet.lz4, rnet.lz4 and onet.lz4: `folder`, or the installed `mtcnn`
    package's assets (found without importing it, which would import TensorFlow)."""
    if folder is None:
        from importlib.metadata import PackageNotFoundError, distribution

        try:
            path = Path(distribution("mtcnn").locate_file("mtcnn/assets/weights"))
        except PackageNotFoundError:
            raise ImportError(f"the 'mtcnn' face detector reads the weights shipped in the mtcnn package: {INSTALL} "
                              "(TensorFlow is not needed), or pass weights=<folder with pnet.lz4, rnet.lz4, onet.lz4>"
                              ) from None
    else:
        path = Path(folder)
    missing = [f"{n}.lz4" for n in NETWORKS if not (path / f"{n}.lz4").is_file()]
    if missing:
        raise FileNotFoundError(f"{path}: MTCNN weights file(s) {', '.join(missing)} not found; they ship in the "
                                f"mtcnn package ({INSTALL}, under mtcnn/assets/weights/)")
    return path


class _Arrays:
    """Hands out a weights file's arrays, in order, as Keras initializers: the variables are
    created holding the released values (no random initialisation to compute)."""

    def __init__(self, arrays: list, source: str):
        self.arrays, self.source, self.used = list(arrays), source, 0

    def __call__(self):
        if self.used == len(self.arrays):
            raise ValueError(f"{self.source}: too few arrays for the network")
        array = np.asarray(self.arrays[self.used], dtype=np.float32)
        self.used += 1

        def initializer(shape, dtype=None):
            if tuple(shape) != array.shape:
                raise ValueError(f"{self.source}: an array of shape {array.shape} where the network needs "
                                 f"{tuple(shape)}")
            return array

        return initializer

    def check_all_used(self) -> None:
        if self.used != len(self.arrays):
            raise ValueError(f"{self.source}: {len(self.arrays)} arrays, the network uses {self.used}")


def _conv_block(x, w: _Arrays, filters: int, kernel: int, pool: tuple[int, int, str] | None):
    from keras import layers

    x = layers.Conv2D(filters, kernel, kernel_initializer=w(), bias_initializer=w())(x)
    x = layers.PReLU(alpha_initializer=w(), shared_axes=[1, 2])(x)
    if pool:
        size, stride, padding = pool
        x = layers.MaxPooling2D(size, stride, padding=padding)(x)
    return x


def _dense(x, w: _Arrays, units: int, activation: str | None = None):
    from keras import layers

    return layers.Dense(units, activation=activation, kernel_initializer=w(), bias_initializer=w())(x)


def _dense_trunk(x, w: _Arrays, units: int):
    """Flatten in Caffe's (width, height, channels) order, then a PReLU dense layer."""
    from keras import layers

    x = _dense(layers.Flatten()(layers.Permute((2, 1, 3))(x)), w, units)
    return layers.PReLU(alpha_initializer=w())(x)


def load(name: str, folder: Path):
    """P-Net (fully convolutional: box offsets (N, h, w, 4), face probability (N, h, w, 2)),
    R-Net (24x24 crops: offsets, probability) or O-Net (48x48 crops: offsets, 5 landmarks as
    x1..x5 y1..y5 fractions of the box, probability), holding the weights in `folder` (see
    `weights_dir`). Inputs are RGB scaled as (x - 127.5) / 128."""
    try:
        import joblib
        import lz4  # noqa: F401  (joblib reads .lz4 files through it)
    except ImportError as e:
        raise ImportError(f"reading MTCNN's weights needs joblib and lz4: {INSTALL} (brings both)") from e
    import keras
    from keras import layers

    path = folder / f"{name}.lz4"
    w = _Arrays(joblib.load(path), str(path))
    if name == "pnet":
        x = inputs = keras.Input((None, None, 3))
        x = _conv_block(x, w, 10, 3, (2, 2, "same"))
        x = _conv_block(x, w, 16, 3, None)
        x = _conv_block(x, w, 32, 3, None)
        conv = {"kernel_size": 1}
        outputs = [layers.Conv2D(4, **conv, kernel_initializer=w(), bias_initializer=w())(x),
                   layers.Conv2D(2, **conv, activation="softmax", kernel_initializer=w(), bias_initializer=w())(x)]
    elif name == "rnet":
        x = inputs = keras.Input((24, 24, 3))
        x = _conv_block(x, w, 28, 3, (3, 2, "same"))
        x = _conv_block(x, w, 48, 3, (3, 2, "valid"))
        x = _dense_trunk(_conv_block(x, w, 64, 2, None), w, 128)
        outputs = [_dense(x, w, 4), _dense(x, w, 2, "softmax")]
    elif name == "onet":
        x = inputs = keras.Input((48, 48, 3))
        x = _conv_block(x, w, 32, 3, (3, 2, "same"))
        x = _conv_block(x, w, 64, 3, (3, 2, "valid"))
        x = _conv_block(x, w, 64, 3, (2, 2, "same"))
        x = _dense_trunk(_conv_block(x, w, 128, 2, None), w, 256)
        outputs = [_dense(x, w, 4), _dense(x, w, 10), _dense(x, w, 2, "softmax")]
    else:
        raise ValueError(f"name must be one of {NETWORKS}; got {name!r}")
    w.check_all_used()
    return keras.Model(inputs, outputs, name=name)


@functools.lru_cache(maxsize=4)
def load_all(folder: Path) -> tuple:
    """(P-Net, R-Net, O-Net) from `folder`, loaded once per process: detectors that share the
    weights share the networks, and so the functions compiled for each input shape."""
    return tuple(load(name, folder) for name in NETWORKS)
