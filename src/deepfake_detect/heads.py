"""Heads: the small Keras classifiers trained on backbone features, giving p(fake).

Labels are 0 for real and 1 for fake. A head's constructor holds its architecture and its
training hyper-parameters; `fit` builds a fresh Keras model (`model_`) and returns Keras'
`History`.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from .errors import NotFittedError
from .registry import Configurable, Registry


_ROUNDS = 10  # Keras epochs that a step-based training run is reported in


@functools.cache
def _batches_type():
    """A `keras.utils.PyDataset` type (defined on first use, so importing this module skips Keras)."""
    import keras

    class Batches(keras.utils.PyDataset):
        """Mini-batches of rows with their sample weights, drawn from a seeded generator so a fit
        is reproducible: `steps` batches drawn with replacement per epoch, or (`steps` None)
        one shuffled pass over the rows per epoch."""

        def __init__(self, x, y, w, batch_size, steps, seed):
            super().__init__()
            self.x, self.y, self.w = x, y, w
            self.batch_size, self.steps = batch_size, steps
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x))

        def __len__(self):
            return self.steps if self.steps is not None else math.ceil(len(self.x) / self.batch_size)

        def __getitem__(self, index):
            if self.steps is not None:
                rows = self.rng.integers(0, len(self.x), self.batch_size)
            else:
                rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
            return self.x[rows], self.y[rows], self.w[rows]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(self.x))

    return Batches


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

    def loss(self) -> str:
        """The Keras loss the model trains with (fine-tuning trains it with the backbone)."""
        return "binary_crossentropy"

    def p_fake(self, output: np.ndarray) -> np.ndarray:
        """p(fake) (N,) from the model's output."""
        return output[:, 0]

    def weight_shapes(self, feature_dim: int) -> list[tuple[int, ...]] | None:
        """The shapes of the arrays `build_model(feature_dim)` holds, in `get_weights()` order,
        computed without building the model (a saved model is checked against them before
        anything is allocated); None where they cannot be told without building it.

        This default reads the layers of `_layers` (created, not built): Dense layers and
        layers without weights (dropout, activations); any other layer gives None."""
        import keras

        shapes: list[tuple[int, ...]] = []
        width = feature_dim
        for layer in self._layers(keras, keras.initializers.GlorotUniform(seed=self.seed)):
            if type(layer) is keras.layers.Dense:
                units = int(layer.units)
                shapes += [(width, units), (units,)] if layer.use_bias else [(width, units)]
                width = units
            elif not isinstance(layer, (keras.layers.Dropout, keras.layers.Activation, keras.layers.ReLU,
                                        keras.layers.Softmax)):
                return None
        return shapes

    def build_model(self, feature_dim: int):
        """A fresh, compiled Keras model for `feature_dim`-wide features."""
        import keras

        from ._backend import enable_compilation_cache

        enable_compilation_cache()

        init = keras.initializers.GlorotUniform(seed=self.seed)
        model = keras.Sequential([keras.Input((feature_dim,)), *self._layers(keras, init)], name=self.registry_name)
        opt = (keras.optimizers.SGD if self.optimizer == "sgd" else keras.optimizers.Adam)(self.learning_rate)
        model.compile(optimizer=opt, loss=self.loss(), metrics=["accuracy"])
        return model

    def fit(self, x: np.ndarray, y: np.ndarray, validation_data: tuple[np.ndarray, np.ndarray] | None = None,
            verbose: int = 0, callbacks: list | None = None, videos: np.ndarray | None = None):
        """Train a fresh model on features `x` and labels `y` (0 real, 1 fake); returns `History`.

        With `steps`, training draws `steps` random mini-batches with replacement (the
        paper's retraining regime), reported as `_ROUNDS` Keras epochs; else it makes
        `epochs` shuffled passes over the data. Batches come from a generator seeded with
        `seed`, so a fit is reproducible. `videos` names the video of each row (rows of one
        video in frame order); frame heads do not use it, the `temporal` head does.
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
            fold_standardization(self.model_, mean, scale)
            self.standardization_ = (mean, scale)  # fine-tuning unfolds it to keep training on this scale
            return history
        return self._fit(x, y, validation_data, verbose, callbacks)

    def _fit(self, x: np.ndarray, y: np.ndarray, validation_data, verbose: int, callbacks: list | None):
        weights = np.ones(len(y), dtype=np.float32)
        if self.class_weight == "balanced":
            counts = np.bincount(y, minlength=2).astype(np.float64)
            weights = (len(y) / (2 * counts[y])).astype(np.float32)
        epochs = self.epochs if self.steps is None else min(_ROUNDS, self.steps)
        per_epoch = None if self.steps is None else math.ceil(self.steps / epochs)
        batches = _batches_type()(x, y, weights, self.batch_size, per_epoch, self.seed)
        return self.model_.fit(batches, epochs=epochs, validation_data=validation_data, verbose=verbose,
                               callbacks=callbacks, shuffle=False)  # `batches` shuffles, seeded

    def predict(self, x: np.ndarray, videos: np.ndarray | None = None) -> np.ndarray:
        """p(fake) for each row of features, float64 (N,); `videos` as in `fit` (None: one video)."""
        model = getattr(self, "model_", None)
        if model is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted; call fit first")
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return np.zeros(0)
        return self._predict(model, x, videos)

    def _predict(self, model, x: np.ndarray, videos: np.ndarray | None) -> np.ndarray:
        return self.p_fake(np.asarray(model.predict_on_batch(x), dtype=np.float64))


def _standardization(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and 1/std of `x`. A std below 1% of the median std counts as that much, so
    a nearly constant feature is not blown up (which would make the head brittle to tiny shifts)."""
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    positive = std[std > 0]
    floor = 0.01 * float(np.median(positive)) if len(positive) else 1.0
    return mean.astype(np.float32), (1.0 / np.maximum(std, floor)).astype(np.float32)


def fold_standardization(model, mean: np.ndarray, scale: np.ndarray, inverse: bool = False) -> None:
    """Make `model`, trained on ``(x - mean) * scale``, take raw `x`: its first Dense layer absorbs
    the affine map exactly, so the saved head keeps its shape. `inverse` undoes it (the model
    takes standardized features again)."""
    dense = next(layer for layer in model.layers if layer.weights)
    kernel, bias = (w.astype(np.float64) for w in dense.get_weights())
    mean, scale = mean.astype(np.float64), scale.astype(np.float64)
    if inverse:  # W = W' / scale, b = b' + mean @ W'
        kernel, bias = kernel / scale[:, None], bias + mean @ kernel
    else:  # W' = scale W, b' = b - (mean scale) @ W
        kernel, bias = kernel * scale[:, None], bias - (mean * scale) @ kernel
    dense.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])


heads: Registry[Head] = Registry("head", Head)


@heads.register("softmax")
class SoftmaxHead(Head):
    """The paper's head: one dense layer with a 2-way softmax, plain gradient descent at lr 0.005."""

    def __init__(self, learning_rate: float = 0.005, optimizer: str = "sgd", batch_size: int = 100,
                 steps: int | None = 2500, epochs: int = 30, class_weight: str | None = None, seed: int = 0):
        super().__init__(learning_rate, optimizer, batch_size, steps, epochs, class_weight, seed)

    def _layers(self, keras, init) -> list:
        return [keras.layers.Dense(2, activation="softmax", kernel_initializer=init)]

    def weight_shapes(self, feature_dim: int) -> list[tuple[int, ...]]:
        return [(feature_dim, 2), (2,)]

    def loss(self) -> str:
        return "sparse_categorical_crossentropy"

    def p_fake(self, output: np.ndarray) -> np.ndarray:
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

    def weight_shapes(self, feature_dim: int) -> list[tuple[int, ...]]:
        return [(feature_dim, 1), (1,)]


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
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"units must be a positive integer; got {units!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {dropout!r}")

    def weight_shapes(self, feature_dim: int) -> list[tuple[int, ...]]:
        return [(feature_dim, self.units), (self.units,), (self.units, 1), (1,)]

    def _layers(self, keras, init) -> list:
        return [
            keras.layers.Dense(self.units, activation="relu", kernel_initializer=init),
            keras.layers.Dropout(self.dropout, seed=self.seed),
            keras.layers.Dense(1, activation="sigmoid", kernel_initializer=keras.initializers.GlorotUniform(self.seed + 1)),
        ]


def frame_changes(x: np.ndarray, videos: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the mean absolute change of its video's features between consecutive rows (the
    video's sampled frames with a face, in order), and whether the video has two rows to compare.

    A face swapped or re-enacted frame by frame flickers: its features change more from one
    sampled frame to the next than a real face's do.
    """
    x = np.asarray(x, dtype=np.float32)
    videos = np.zeros(len(x), np.int64) if videos is None else np.asarray(videos)
    if videos.shape != (len(x),):
        raise ValueError(f"videos must name the video of each of the {len(x)} rows; got shape {videos.shape}")
    changes = np.zeros_like(x)
    has = np.zeros((len(x), 1), np.float32)
    for video in np.unique(videos):
        rows = np.flatnonzero(videos == video)
        if len(rows) > 1:
            changes[rows] = np.abs(np.diff(x[rows], axis=0)).mean(axis=0)
            has[rows] = 1.0
    return changes, has


@heads.register("temporal")
class TemporalHead(LogisticHead):
    """A `logistic` frame head plus a video-level logistic model on `frame_changes` (how much a
    video's features change between consecutive sampled frames). Each frame's p(fake) is
    ``(1 - temporal_weight) * p_frame + temporal_weight * p_video``, so the `mean` aggregator
    gives the same mix for the video; a video with one face frame gets `p_frame` alone.

    Args:
        temporal_weight: the share of the video-level model in each p(fake).
        temporal_c: inverse L2 strength of the video-level model (scikit-learn's `C`; it sees
            one row per training video, on standardized changes, classes balanced).
        others: as `logistic` (its frame head; `standardize` defaults to True here).

    `fit` needs `videos` (the video of each row) and returns the frame head's `History`.
    """

    def __init__(self, temporal_weight: float = 0.5, temporal_c: float = 0.01, l2: float = 1e-4,
                 learning_rate: float = 1e-3, optimizer: str = "adam", batch_size: int = 64, steps: int | None = None,
                 epochs: int = 30, class_weight: str | None = "balanced", seed: int = 0, standardize: bool = True):
        self.temporal_weight = temporal_weight
        self.temporal_c = temporal_c
        super().__init__(l2, learning_rate, optimizer, batch_size, steps, epochs, class_weight, seed, standardize)
        if isinstance(temporal_weight, bool) or not isinstance(temporal_weight, (int, float)) \
                or not 0.0 <= temporal_weight <= 1.0:
            raise ValueError(f"temporal_weight must be in [0, 1]; got {temporal_weight!r}")
        if isinstance(temporal_c, bool) or not isinstance(temporal_c, (int, float)) or not temporal_c > 0:
            raise ValueError(f"temporal_c must be positive; got {temporal_c!r}")

    def _frame_head(self) -> LogisticHead:
        config = {k: v for k, v in self.get_config().items() if k not in ("temporal_weight", "temporal_c")}
        return LogisticHead(**config)

    def weight_shapes(self, feature_dim: int) -> list[tuple[int, ...]]:
        return [(feature_dim, 1), (1,), (feature_dim, 1), (1,)]

    def build_model(self, feature_dim: int):
        """The inference model: inputs (features, frame changes, has changes), output p(fake)."""
        import keras

        features = keras.Input((feature_dim,), name="features")
        changes = keras.Input((feature_dim,), name="changes")
        has = keras.Input((1,), name="has_changes")
        p_frame = keras.layers.Dense(1, activation="sigmoid", name="frame")(features)
        p_video = keras.layers.Dense(1, activation="sigmoid", name="temporal")(changes)
        w = float(self.temporal_weight)
        p = keras.layers.Lambda(lambda t: (1.0 - w * t[2]) * t[0] + w * t[2] * t[1], name="mix")(
            [p_frame, p_video, has])
        return keras.Model([features, changes, has], p, name=self.registry_name)

    def fit(self, x: np.ndarray, y: np.ndarray, validation_data: tuple[np.ndarray, np.ndarray] | None = None,
            verbose: int = 0, callbacks: list | None = None, videos: np.ndarray | None = None):
        if videos is None:
            raise ValueError("the temporal head needs `videos`, the video of each training row")
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.int32)
        frame = self._frame_head()
        history = frame.fit(x, y, validation_data, verbose, callbacks)
        changes, has = frame_changes(x, videos)
        _, first = np.unique(np.asarray(videos), return_index=True)
        first = first[has[first, 0] > 0]  # one row per video with two frames to compare
        kernel = np.zeros((x.shape[1], 1), np.float32)
        bias = np.zeros(1, np.float32)
        if len(np.unique(y[first])) < 2:
            warnings.warn("the temporal head saw one class among the training videos with two or more face "
                          "frames: its video-level part stays at p = 0.5", UserWarning, stacklevel=2)
        else:
            mean, scale = _standardization(changes[first])
            model = LogisticRegression(C=float(self.temporal_c), class_weight="balanced", max_iter=5000)
            model.fit((changes[first] - mean) * scale, y[first])
            kernel = (model.coef_[0] * scale)[:, None].astype(np.float32)  # folded: takes raw changes
            bias = (model.intercept_ - (mean * scale) @ model.coef_[0]).astype(np.float32)
        self.model_ = self.build_model(x.shape[1])
        self.model_.set_weights([*frame.model_.get_weights(), kernel, bias])
        self.standardization_ = frame.standardization_ if self.standardize else None
        return history

    def _predict(self, model, x: np.ndarray, videos: np.ndarray | None) -> np.ndarray:
        changes, has = frame_changes(x, videos)
        return np.asarray(model.predict_on_batch([x, changes, has]), dtype=np.float64)[:, 0]
