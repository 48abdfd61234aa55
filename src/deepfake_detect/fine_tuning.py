"""Fine-tuning: the backbone trained with the head, end to end, on the cached face crops.

Frozen ImageNet features describe objects; a face swap is told by low-level artefacts
(blending seams, a face resampled to another resolution, colour shifts). Fine-tuning lets
the backbone learn them. The recipe, in `fine_tune`:

1. the face crops of every input come from the crop cache (decoding and face detection run
   only for inputs not cached yet);
2. the training videos are split by group into a training and a validation side (no
   person on both);
3. the head is first trained alone on the frozen backbone's features (a warm start, so the
   first gradients reaching the backbone are not those of a random head);
4. then backbone (all of it, or its top `trainable_blocks` blocks) and head train together
   on augmented crops (`Augmenter`: JPEG re-compression, blur, down- and up-sizing, colour
   jitter, horizontal flip: the shifts a video meets between platforms), with a
   class-balanced loss, BatchNorm frozen (in inference mode);
5. after each epoch the validation side is scored; training stops when its ROC AUC has not
   improved for `patience` epochs (or when `max_seconds` have passed) and the weights of the
   best epoch are restored.

`fine_tune` trains a copy of the extractor's backbone model and returns what it trained
(`FineTuned`: the head, the backbone's weights, the history); it changes neither the
extractor nor the head it was given. `DeepfakeDetector.fine_tune` hands the weights to its
backbone (`Backbone.set_fine_tuned`: a new fingerprint, a digest of the values, so features
cached for the original weights are never served for the new ones) and the head to itself;
`save` stores the weights (``backbone_weights.npz``, no pickle) and `load` restores them.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .cache import FaceCrops
from .datasets import Sample, discover, grouped_split
from .errors import CacheError, DatasetError
from .extraction import FeatureExtractor
from .heads import Head, TemporalHead, fold_standardization, heads
from .registry import Configurable


# --- augmentation -------------------------------------------------------------------------
class Augmenter(Configurable):
    """Random changes of a face crop that mimic how a video is altered on its way to a viewer.

    Each transform is applied with its own probability, in this order: colour jitter
    (brightness, contrast, saturation), down- and up-sizing (a resolution change), Gaussian
    blur, JPEG re-compression at a random quality, horizontal flip.

    Args:
        color: probability of colour jitter; `brightness`, `contrast`, `saturation` are the
            largest relative changes.
        resize: probability of resizing down to a random share in `resize_scale` of the side
            and back up.
        blur: probability of a Gaussian blur with sigma in `blur_sigma` pixels.
        jpeg: probability of JPEG re-compression at a quality in `jpeg_quality`.
        flip: probability of a horizontal flip.
    """

    def __init__(self, color: float = 0.5, brightness: float = 0.15, contrast: float = 0.15, saturation: float = 0.15,
                 resize: float = 0.3, resize_scale: Sequence[float] = (0.5, 0.9), blur: float = 0.2,
                 blur_sigma: Sequence[float] = (0.3, 1.2), jpeg: float = 0.5, jpeg_quality: Sequence[int] = (40, 95),
                 flip: float = 0.5):
        self.color = color
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.resize = resize
        self.resize_scale = resize_scale
        self.blur = blur
        self.blur_sigma = blur_sigma
        self.jpeg = jpeg
        self.jpeg_quality = jpeg_quality
        self.flip = flip
        for name in ("color", "resize", "blur", "jpeg", "flip"):
            p = getattr(self, name)
            if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1]; got {p!r}")
        lo, hi = resize_scale
        if not 0.1 <= lo <= hi <= 1.0:
            raise ValueError(f"resize_scale must be (low, high) with 0.1 <= low <= high <= 1; got {resize_scale!r}")
        lo, hi = jpeg_quality
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"jpeg_quality must be (low, high) within [1, 100]; got {jpeg_quality!r}")

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One augmented copy of an RGB uint8 image (H, W, 3)."""
        out = image
        if rng.random() < self.color:
            x = out.astype(np.float32)
            x = x * (1 + rng.uniform(-self.brightness, self.brightness))
            mean = x.mean()
            x = (x - mean) * (1 + rng.uniform(-self.contrast, self.contrast)) + mean
            gray = x.mean(axis=2, keepdims=True)
            x = (x - gray) * (1 + rng.uniform(-self.saturation, self.saturation)) + gray
            out = np.clip(x, 0, 255).astype(np.uint8)
        h, w = out.shape[:2]
        if rng.random() < self.resize:
            s = rng.uniform(*self.resize_scale)
            small = cv2.resize(out, (max(int(w * s), 8), max(int(h * s), 8)), interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if rng.random() < self.blur:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*self.blur_sigma))
        if rng.random() < self.jpeg:
            quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])  # channel order is irrelevant
            if ok:
                out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if rng.random() < self.flip:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    def batch(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.stack([self(image, rng) for image in images])


def _augmenter(spec: bool | dict | Augmenter | None) -> Augmenter | None:
    if spec is None or spec is False:
        return None
    if spec is True:
        return Augmenter()
    if isinstance(spec, dict):
        return Augmenter(**spec)
    if isinstance(spec, Augmenter):
        return spec
    raise TypeError(f"augment is True, False, a dict of Augmenter arguments or an Augmenter; got {spec!r}")


# --- face crops ---------------------------------------------------------------------------
def cached_face_crops(extractor: FeatureExtractor, paths: Sequence[str]) -> list[FaceCrops]:
    """The face crops of each input, read from the extractor's cache; inputs not cached are
    decoded and detected once, and their crops stored."""
    cache = extractor.active_cache
    if cache is not None:
        try:
            digests = cache.digests(list(paths))
            found = cache.get_crops([d for d in digests if d], extractor.crops_fingerprint)
        except CacheError as e:  # an optimisation only: warn once, go on without it
            extractor.cache_failed(e)
            cache = None
    if cache is None:
        return [extractor.crops(p, _timings()) for p in paths]
    out = []
    with cache.writer(on_error=extractor.cache_failed) as writer:
        for path, digest in zip(paths, digests):
            crops = found.get(digest) if digest else None
            if crops is None:
                crops = extractor.crops(path, _timings())
                if digest:
                    writer.put_crops(digest, extractor.crops_fingerprint, crops, extractor.crop_stages)
                    found[digest] = crops
                    writer.commit_if_due()
            out.append(crops)
    return out


def _timings() -> dict[str, float]:
    return {"decode": 0.0, "detect": 0.0, "crop": 0.0, "embed": 0.0}


# --- which layers train ---------------------------------------------------------------------
_BLOCK = re.compile(r"^conv_(?:dw|pw)_(\d+)(?:_|$)|^conv1(?:_|$)|^conv_pad_(\d+)$")


def layer_block(name: str) -> int | None:
    """The MobileNet block a layer belongs to: 0 for the stem (``conv1*``), i for ``conv_dw_i*``
    and ``conv_pw_i*``; None for layers of no block (input, pooling, concatenation)."""
    m = _BLOCK.match(name)
    if m is None:
        return None
    number = m.group(1) or m.group(2)
    return int(number) if number else 0


def set_trainable(model, trainable_blocks: int | None) -> int:
    """Make the model trainable: every layer (None), or the layers of its last `trainable_blocks`
    blocks. BatchNormalization layers stay frozen, which in Keras keeps them in inference mode
    (their moving statistics, not a batch's): a small batch's statistics would shift every
    feature. Returns how many weight tensors train."""
    import keras

    model.trainable = True
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    if trainable_blocks is not None:
        blocks = {layer_block(layer.name) for layer in model.layers if layer.weights}
        blocks.discard(None)
        if not blocks:
            raise ValueError(f"{model.name}: trainable_blocks needs a backbone of numbered blocks (MobileNet V1); "
                             "pass trainable_blocks=None to train every layer")
        if isinstance(trainable_blocks, bool) or not isinstance(trainable_blocks, int) or trainable_blocks < 1:
            raise ValueError(f"trainable_blocks must be a positive integer or None; got {trainable_blocks!r}")
        first = max(blocks) - trainable_blocks + 1
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                continue
            block = layer_block(layer.name)
            layer.trainable = block is None or block >= first
    return len(model.trainable_weights)


# --- the training loop ---------------------------------------------------------------------
def _callback_type():
    import keras

    class ValidationStopping(keras.callbacks.Callback):
        """Scores the validation crops after each epoch (frame and video ROC AUC), keeps the best
        weights, stops after `patience` epochs without improvement or past `deadline`."""

        def __init__(self, predict, x_val, y_val, owner_val, monitor, patience, deadline, verbose):
            super().__init__()
            self.predict, self.x_val, self.y_val, self.owner_val = predict, x_val, y_val, owner_val
            self.monitor, self.patience, self.deadline, self.verbose = monitor, patience, deadline, verbose
            self.best, self.best_epoch, self.best_weights, self.wait = -np.inf, -1, None, 0
            self.stopped_for = ""

        def on_train_batch_end(self, batch, logs=None):
            if self.deadline is not None and time.monotonic() > self.deadline:
                self.model.stop_training = True
                self.stopped_for = "time budget"

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            if self.x_val is not None:
                p = self.predict(self.x_val)
                videos = np.unique(self.owner_val)
                vp = np.array([p[self.owner_val == v].mean() for v in videos])
                vy = np.array([self.y_val[self.owner_val == v][0] for v in videos])
                logs["val_auc"] = _auc(self.y_val, p)
                logs["val_video_auc"] = _auc(vy, vp)
                score = logs[self.monitor]
            else:
                score = -logs.get("loss", np.inf)
            if score > self.best:
                self.best, self.best_epoch, self.wait = score, epoch, 0
                self.best_weights = self.model.get_weights()
            else:
                self.wait += 1
                if self.patience is not None and self.wait >= self.patience:
                    self.model.stop_training = True
                    self.stopped_for = self.stopped_for or "early stopping"
            if self.verbose:
                shown = ", ".join(f"{k} {v:.4f}" for k, v in logs.items() if isinstance(v, (int, float)))
                print(f"fine-tune epoch {epoch + 1}: {shown}", flush=True)

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return ValidationStopping


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC; 0.5 where one class is missing (nothing to rank)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else 0.5


def _batches_type():
    import keras

    class AugmentedBatches(keras.utils.PyDataset):
        """An epoch of shuffled, augmented, preprocessed batches with class-balanced weights."""

        def __init__(self, x, y, w, batch_size, augmenter, preprocess, seed):
            super().__init__()
            self.x, self.y, self.w = x, y, w
            self.batch_size, self.augmenter, self.preprocess = batch_size, augmenter, preprocess
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x))

        def __len__(self):
            return math.ceil(len(self.x) / self.batch_size)

        def __getitem__(self, index):
            rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
            if len(rows) < self.batch_size:  # a full last batch: one compiled shape
                rows = np.concatenate([rows, self.rng.choice(len(self.x), self.batch_size - len(rows))])
            images = self.x[rows]
            if self.augmenter is not None:
                images = self.augmenter.batch(images, self.rng)
            return self.preprocess(images), self.y[rows], self.w[rows]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(self.x))

    return AugmentedBatches


@dataclass(frozen=True)
class FineTuned:
    """What `fine_tune` trained: the fitted head, the backbone's weights (for
    `Backbone.set_fine_tuned`), the Keras `History` of the end-to-end training (its
    ``fine_tune_`` dict sums the run up) and how many inputs had no face."""

    head: Head
    backbone_weights: list[np.ndarray]
    history: Any
    inputs_without_face: int


def fine_tune(extractor: FeatureExtractor, head: Head, dataset_dir: str | os.PathLike | Sequence[Sample], *,
              trainable_blocks: int | None = None, epochs: int = 10, batch_size: int = 32,
              learning_rate: float = 1e-4, weight_decay: float = 0.0, augment: bool | dict | Augmenter = True,
              class_weight: str | None = "balanced", validation_split: float = 0.15, patience: int | None = 3,
              monitor: str = "val_auc", warm_start: bool = True, max_seconds: float | None = None,
              seed: int = 0, verbose: int = 1, callbacks: list | None = None) -> FineTuned:
    """Train a copy of `extractor`'s backbone and a fresh copy of `head` together on the face
    crops of `dataset_dir`; neither argument is changed.

    See the module's doc for the recipe. Args:
        extractor: the stages up to the features; its cache serves the face crops.
        head: the head to train (its config; a fresh one is trained).
        dataset_dir: a dataset folder, or samples already discovered.
        trainable_blocks: None trains every layer; N trains the last N blocks of a MobileNet V1
            backbone (the stem and the blocks below stay frozen).
        epochs: most passes over the training crops.
        batch_size: crops per step.
        learning_rate: Adam's step size for backbone and head (after the head's warm start).
        weight_decay: AdamW's decoupled weight decay (0: plain Adam).
        augment: True (the default `Augmenter`), False, a dict of `Augmenter` arguments, or one.
        class_weight: "balanced" weighs each frame inversely to its class's share; None does not.
        validation_split: share of the training groups held out for early stopping (0: no
            validation; training runs `epochs` and keeps the weights of the lowest loss).
        patience: epochs without a better validation score before stopping (None: never).
        monitor: "val_auc" (frame ROC AUC) or "val_video_auc" of the validation videos.
        warm_start: first train the head alone on the frozen backbone's features.
        max_seconds: stop after this many seconds of end-to-end training.
        seed: seeds the split, the order of the crops, the augmentation and the head's init.
    """
    import keras

    if isinstance(head, TemporalHead):
        raise ValueError("fine-tuning trains a frame head with the backbone; the temporal head is video-level: "
                         "fine-tune with the logistic head, or fit the temporal head on frozen features")
    if monitor not in ("val_auc", "val_video_auc"):
        raise ValueError(f"monitor must be 'val_auc' or 'val_video_auc'; got {monitor!r}")
    if class_weight not in ("balanced", None):
        raise ValueError(f"class_weight must be 'balanced' or None; got {class_weight!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer; got {epochs!r}")
    augmenter = _augmenter(augment)
    samples = discover(dataset_dir) if isinstance(dataset_dir, (str, os.PathLike)) else list(dataset_dir)
    backbone = extractor.backbone
    crops = cached_face_crops(extractor, [s.path for s in samples])
    kept = [i for i, c in enumerate(crops) if len(c)]
    if {samples[i].label for i in kept} != {0, 1}:
        raise DatasetError(f"after face detection, only one class has faces ({len(samples) - len(kept)} of "
                           f"{len(samples)} inputs had none); check the inputs.")
    train_v = np.arange(len(kept))
    val_v = np.zeros(0, dtype=np.int64)
    if validation_split:
        labels = np.array([samples[i].label for i in kept])
        groups = np.array([samples[i].group for i in kept])
        train_v, val_v = grouped_split(labels, groups, validation_split, seed)

    def frames(videos):
        x = np.concatenate([crops[kept[v]].crops for v in videos]) if len(videos) else None
        y = np.concatenate([np.full(len(crops[kept[v]]), samples[kept[v]].label, np.int32) for v in videos])
        owner = np.concatenate([np.full(len(crops[kept[v]]), v) for v in videos])
        return x, y, owner

    x_tr, y_tr, _ = frames(train_v)
    x_val, y_val, owner_val = frames(val_v) if len(val_v) else (None, None, None)
    weights = np.ones(len(y_tr), np.float32)
    if class_weight == "balanced":
        counts = np.bincount(y_tr, minlength=2).astype(np.float64)
        weights = (len(y_tr) / (2 * counts[y_tr])).astype(np.float32)

    # 1. the head alone, on frozen features
    head = heads.create(heads.serialize(head))
    if warm_start:
        head.fit(backbone.embed(x_tr), y_tr, verbose=0)
    else:
        head.model_ = head.build_model(backbone.feature_dim)

    # 2. backbone and head end to end, on a copy of the backbone's model
    model = backbone.fresh_model()
    model.set_weights(backbone.model.get_weights())
    set_trainable(model, trainable_blocks)
    size = backbone.input_size
    inputs = keras.Input((size, size, 3))
    features = model(inputs, training=False)
    standardization = getattr(head, "standardization_", None) if warm_start else None
    if standardization is not None:  # train the head on the scale it was fitted on (its L2 penalty means that)
        mean, scale = standardization
        fold_standardization(head.model_, mean, scale, inverse=True)
        features = keras.layers.Lambda(lambda t: (t - mean) * scale, name="standardize")(features)
    outputs = head.model_(features)
    trained = keras.Model(inputs, outputs, name="fine_tune")
    if weight_decay:
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    else:
        optimizer = keras.optimizers.Adam(learning_rate)
    trained.compile(optimizer=optimizer, loss=head.loss())

    def predict(x: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(x), batch_size):
            chunk = backbone.preprocess(x[start:start + batch_size])
            n = len(chunk)
            if n < batch_size:
                chunk = np.concatenate([chunk, np.zeros((batch_size - n, *chunk.shape[1:]), chunk.dtype)])
            out.append(head.p_fake(np.asarray(trained.predict_on_batch(chunk), np.float64))[:n])
        return np.concatenate(out)

    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    stopper = _callback_type()(predict, x_val, y_val, owner_val, monitor, patience if x_val is not None else None,
                               deadline, verbose)
    data = _batches_type()(x_tr, y_tr, weights, batch_size, augmenter, backbone.preprocess, seed)
    started = time.perf_counter()
    try:
        history = trained.fit(data, epochs=epochs, verbose=2 if verbose > 1 else 0,
                              callbacks=[stopper, *(callbacks or [])])
    finally:
        if standardization is not None:
            fold_standardization(head.model_, *standardization)
    history.fine_tune_ = {
        "seconds": time.perf_counter() - started, "best_epoch": stopper.best_epoch + 1,
        "epochs_run": len(history.epoch), "stopped_for": stopper.stopped_for or "epochs",
        "best_score": float(stopper.best), "train_frames": int(len(y_tr)),
        "validation_frames": int(0 if y_val is None else len(y_val)), "validation_videos": int(len(val_v)),
    }
    head.model_.trainable = True
    return FineTuned(head, model.get_weights(), history, len(samples) - len(kept))
