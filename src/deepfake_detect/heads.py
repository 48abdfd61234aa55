"""Heads: the small Keras classifiers trained on backbone features, giving p(fake).

Labels are 0 for real and 1 for fake. A head's constructor holds its architecture and its
training hyper-parameters; `fit` builds a fresh Keras model (`model_`) and returns Keras'
`History`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .errors import NotFittedError
from .registry import Configurable, Registry


_ROUNDS = 10  # Keras epochs that a step-based training run is reported in


@functools.cache
def _random_batches_type():
    """A `keras.utils.PyDataset` type (defined on first use, so importing this module skips Keras)."""
    import keras

    class RandomBatches(keras.utils.PyDataset):
        """`steps` mini-batches of rows drawn at random with replacement, with their sample weights."""

        def __init__(self, x, y, w, batch_size, steps, seed):
            super().__init__()
            self.x, self.y, self.w = x, y, w
            self.batch_size, self.steps = batch_size, steps
            self.rng = np.random.default_rng(seed)

        def __len__(self):
            return self.steps

        def __getitem__(self, index):
            rows = self.rng.integers(0, len(self.x), self.batch_size)
            return self.x[rows], self.y[rows], self.w[rows]

    return RandomBatches


class Head(Configurable):
    """A classifier from features (N, D) to p(fake) (N,).

    Args:
        learning_rate: optimizer step size.
        optimizer: "sgd" (the paper's gradient descent) or "adam".
        batch_size: examples per step.
        steps: random mini-batches to train on (wins over `epochs` when given).
        epochs: passes over the data when `steps` is None.
        class_weight: "balanced" weighs classes inversely to their frequency; None does not.
        seed: seed of the weight initialisation.
    """

    def __init__(self, learning_rate: float = 1e-3, optimizer: str = "adam", batch_size: int = 64,
                 steps: int | None = None, epochs: int = 30, class_weight: str | None = "balanced", seed: int = 0):
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.steps = steps
        self.epochs = epochs
        self.class_weight = class_weight
        self.seed = seed
        self._check()

    def _check(self) -> None:
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be positive; got {self.learning_rate!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam'; got {self.optimizer!r}")
        for name in ("batch_size", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1):
            raise ValueError(f"steps must be a positive integer or None; got {self.steps!r}")
        if self.class_weight not in ("balanced", None):
            raise ValueError(f"class_weight must be 'balanced' or None; got {self.class_weight!r}")

    # Subclasses define the network and how its output reads as p(fake).
    def _layers(self, keras, init) -> list:
        raise NotImplementedError

    def _loss(self) -> str:
        return "binary_crossentropy"

    def _p_fake(self, output: np.ndarray) -> np.ndarray:
        return output[:, 0]

    def build_model(self, feature_dim: int):
        """A fresh, compiled Keras model for `feature_dim`-wide features."""
        import keras

        init = keras.initializers.GlorotUniform(seed=self.seed)
        model = keras.Sequential([keras.Input((feature_dim,)), *self._layers(keras, init)], name=self.registry_name)
        opt = (keras.optimizers.SGD if self.optimizer == "sgd" else keras.optimizers.Adam)(self.learning_rate)
        model.compile(optimizer=opt, loss=self._loss(), metrics=["accuracy"])
        return model

    def fit(self, x: np.ndarray, y: np.ndarray, validation_data: tuple[np.ndarray, np.ndarray] | None = None,
            verbose: int = 0, callbacks: list | None = None):
        """Train a fresh model on features `x` and labels `y` (0 real, 1 fake); returns `History`.

        With `steps`, training draws `steps` random mini-batches with replacement (the
        paper's retraining regime), reported as `_ROUNDS` Keras epochs; else it makes
        `epochs` shuffled passes over the data.
        """
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.int32)
        self.model_ = self.build_model(x.shape[1])
        if getattr(self, "standardize", False):  # train on standardized features, then fold the scaling in
            mean, scale = _standardization(x)
            x = (x - mean) * scale
            if validation_data is not None:
                validation_data = ((np.asarray(validation_data[0], np.float32) - mean) * scale, validation_data[1])
            history = self._fit(x, y, validation_data, verbose, callbacks)
            _fold_standardization(self.model_, mean, scale)
            return history
        return self._fit(x, y, validation_data, verbose, callbacks)

    def _fit(self, x: np.ndarray, y: np.ndarray, validation_data, verbose: int, callbacks: list | None):
        weights = np.ones(len(y), dtype=np.float32)
        if self.class_weight == "balanced":
            counts = np.bincount(y, minlength=2).astype(np.float64)
            weights = (len(y) / (2 * counts[y])).astype(np.float32)
        if self.steps is None:
            return self.model_.fit(x, y, sample_weight=weights, batch_size=self.batch_size, epochs=self.epochs,
                                   validation_data=validation_data, verbose=verbose, callbacks=callbacks, shuffle=True)
        rounds = min(_ROUNDS, self.steps)
        batches = _random_batches_type()(x, y, weights, self.batch_size, math.ceil(self.steps / rounds), self.seed)
        return self.model_.fit(batches, epochs=rounds, validation_data=validation_data, verbose=verbose,
                               callbacks=callbacks)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """p(fake) for each row of features, float64 (N,)."""
        model = getattr(self, "model_", None)
        if model is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted; call fit first")
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return np.zeros(0)
        return self._p_fake(np.asarray(model.predict_on_batch(x), dtype=np.float64))


def _standardization(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and 1/std of `x` (1 for constant features)."""
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    return mean.astype(np.float32), np.where(std > 1e-8, 1.0 / np.maximum(std, 1e-8), 1.0).astype(np.float32)


def _fold_standardization(model, mean: np.ndarray, scale: np.ndarray) -> None:
    """Make `model`, trained on ``(x - mean) * scale``, take raw `x`: its first Dense layer absorbs
    the affine map exactly (W' = scale W, b' = b - (mean scale) W), so the saved head is unchanged in shape."""
    dense = next(layer for layer in model.layers if layer.weights)
    kernel, bias = (w.astype(np.float64) for w in dense.get_weights())
    shift = (mean.astype(np.float64) * scale) @ kernel
    dense.set_weights([(kernel * scale[:, None].astype(np.float64)).astype(np.float32), (bias - shift).astype(np.float32)])


heads: Registry[Head] = Registry("head", Head)


@heads.register("softmax")
class SoftmaxHead(Head):
    """The paper's head: one dense layer with a 2-way softmax, plain gradient descent at lr 0.005."""

    def __init__(self, learning_rate: float = 0.005, optimizer: str = "sgd", batch_size: int = 100,
                 steps: int | None = 2500, epochs: int = 30, class_weight: str | None = None, seed: int = 0):
        super().__init__(learning_rate, optimizer, batch_size, steps, epochs, class_weight, seed)

    def _layers(self, keras, init) -> list:
        return [keras.layers.Dense(2, activation="softmax", kernel_initializer=init)]

    def _loss(self) -> str:
        return "sparse_categorical_crossentropy"

    def _p_fake(self, output: np.ndarray) -> np.ndarray:
        return output[:, 1]


@heads.register("logistic")
class LogisticHead(Head):
    """Logistic regression: one sigmoid unit, with optional L2 penalty `l2`. With `standardize`,
    it trains on features scaled to zero mean and unit variance (statistics of the training
    features, folded into the saved weights afterwards, so the model still takes raw features)."""

    def __init__(self, l2: float = 1e-4, learning_rate: float = 1e-3, optimizer: str = "adam", batch_size: int = 64,
                 steps: int | None = None, epochs: int = 30, class_weight: str | None = "balanced", seed: int = 0,
                 standardize: bool = False):
        self.l2 = l2
        self.standardize = standardize
        super().__init__(learning_rate, optimizer, batch_size, steps, epochs, class_weight, seed)

    def _layers(self, keras, init) -> list:
        reg = keras.regularizers.L2(self.l2) if self.l2 else None
        return [keras.layers.Dense(1, activation="sigmoid", kernel_initializer=init, kernel_regularizer=reg)]


@heads.register("mlp")
class MLPHead(Head):
    """A hidden ReLU layer of `units` with dropout, then one sigmoid unit (`standardize`: as `logistic`)."""

    def __init__(self, units: int = 256, dropout: float = 0.3, learning_rate: float = 1e-3, optimizer: str = "adam",
                 batch_size: int = 64, steps: int | None = None, epochs: int = 30,
                 class_weight: str | None = "balanced", seed: int = 0, standardize: bool = False):
        self.units = units
        self.dropout = dropout
        self.standardize = standardize
        super().__init__(learning_rate, optimizer, batch_size, steps, epochs, class_weight, seed)

    def _layers(self, keras, init) -> list:
        return [
            keras.layers.Dense(self.units, activation="relu", kernel_initializer=init),
            keras.layers.Dropout(self.dropout, seed=self.seed),
            keras.layers.Dense(1, activation="sigmoid", kernel_initializer=keras.initializers.GlorotUniform(self.seed + 1)),
        ]
