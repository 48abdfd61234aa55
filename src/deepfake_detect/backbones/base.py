"""The `Backbone` interface and its registry: a Keras model from face crops to features."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from ..digests import config_digest, file_sha256, not_a_regular_file
from ..errors import IncompatibleModelError, WeightsUnavailableError
from ..locations import env_bytes
from ..registry import Configurable, Registry

BACKBONE_BUDGET_VAR = "DEEPFAKE_DETECT_MAX_BACKBONE_BYTES"
#: The most bytes a backbone's weights may take (a weights file, or a fine-tuned model's member):
#: above the largest Keras application's (ConvNeXt XLarge, about 1.4 GB as float32).
DEFAULT_BACKBONE_BUDGET = 2 << 30


def backbone_budget() -> int:
    """The most bytes a backbone's weights may take, in a weights file or a fine-tuned model's
    member: `DEFAULT_BACKBONE_BUDGET` (2 GiB), or the size in the
    ``DEEPFAKE_DETECT_MAX_BACKBONE_BYTES`` environment variable (e.g. "4GB")."""
    return env_bytes(BACKBONE_BUDGET_VAR, DEFAULT_BACKBONE_BUDGET)


def check_weights_file(weights: str | os.PathLike | None) -> None:
    """Refuse, before anything opens or hashes it, a weights path that is not "imagenet",
    "bundled" or None and is not an existing regular file (`FileNotFoundError`) or is a FIFO, a device or a socket,
    or larger than `backbone_budget()` (`ValueError`, saying the limit)."""
    if weights in ("imagenet", "bundled", None):
        return
    try:
        st = os.stat(str(weights))
    except OSError:
        raise FileNotFoundError(f"weights file {weights!r} not found; give --weights FILE (Python: weights=FILE) "
                                "with an existing path, 'imagenet', 'bundled' or None") from None
    why = not_a_regular_file(str(weights), st)
    if why is not None:
        raise ValueError(f"weights: {why}; give a Keras weights file")
    budget = backbone_budget()
    if st.st_size > budget:
        raise ValueError(f"weights file {weights} is {st.st_size / 1e9:.1f} GB, more than any backbone's weights take "
                         f"(the limit is {budget / 1e9:.1f} GB; the {BACKBONE_BUDGET_VAR} environment variable "
                         "raises it); refused before reading it")


class Backbone(Configurable):
    """Embeds RGB uint8 face crops (N, S, S, 3), S = `input_size`, into float32 features (N, D).

    Subclasses implement `build_model()` (a Keras model from preprocessed images to
    features) and `preprocess()`; the Keras model is built on first use. `weights` is
    "imagenet" (Keras' own download), a weights file path, or None (random initialisation).
    A backbone owns its weights: fine-tuned values replace them through `set_fine_tuned`, and
    `fingerprint` identifies them by content.
    """

    weights: str | None = None
    input_size: int = 0
    #: Batch sizes that inputs are padded to, so a compiled function serves every video.
    buckets: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    #: Config keys that change how, not what, features are computed: left out of `fingerprint`.
    non_semantic: tuple[str, ...] = ()
    #: Whether the model holds fine-tuned values (`set_fine_tuned`) rather than those of `weights`.
    fine_tuned_: bool = False

    @property
    def feature_dim(self) -> int:
        return int(self.model.output_shape[-1])

    def build_model(self):
        raise NotImplementedError

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def preprocess_ops(self, images: Any) -> Any:
        """`preprocess` in `keras.ops`, for a uint8 tensor inside the compiled forward pass on JAX
        (where `embed` then hands over the crops as uint8: a quarter of the bytes, and the scaling
        fuses into the first layer). A backbone that does not override it preprocesses on the host."""
        raise NotImplementedError

    @cached_property
    def model(self):
        """The Keras model (built once, frozen: inference mode). Named Keras weights that cannot
        be downloaded raise `WeightsUnavailableError`, which says what to pass instead."""
        try:
            model = self.build_model()
        except Exception as e:
            if isinstance(self.weights, str) and self.weights_file() is None and _download_failed(e):
                raise WeightsUnavailableError(
                    f"no internet: Keras cannot download the {self.weights!r} weights of {self.registry_name} ({e}). "
                    "Pass --weights FILE (a Keras weights file; in Python weights=FILE) or use the bundled weights "
                    "(--weights bundled; MobileNet V1 alpha 0.5 only)") from e
            raise
        model.trainable = False
        return model

    def weights_file(self) -> str | None:
        """The weights file the backbone loads (the bundled copy for "bundled"); None for Keras'
        named weights ("imagenet") and random weights."""
        from ..pretrained import weights_path

        if self.weights is None or self.weights == "imagenet":
            return None
        path = str(weights_path(self.weights))
        if not os.path.exists(path):
            return None
        check_weights_file(path)  # there, but a FIFO, a device or far too large: refused before it is read
        return path

    def embed(self, images: np.ndarray) -> np.ndarray:
        """Features of a batch of RGB uint8 crops, float32 (N, `feature_dim`)."""
        images = np.asarray(images)
        s = self.input_size
        if images.ndim != 4 or images.shape[1:] != (s, s, 3):
            raise ValueError(f"{self.registry_name} embeds crops of shape (N, {s}, {s}, 3); got {images.shape}")
        if len(images) == 0:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        forward = self._forward
        largest = self.buckets[-1]

        def batch(start: int) -> np.ndarray:
            chunk = images[start:start + largest]
            n = len(chunk)
            if not forward.takes_uint8:
                chunk = self.preprocess(chunk)
            padded = next(b for b in self.buckets if b >= n)
            if padded > n:
                chunk = np.concatenate([chunk, np.zeros((padded - n, *chunk.shape[1:]), chunk.dtype)])
            return np.asarray(forward.call(chunk), dtype=np.float32)[:n]

        starts = range(0, len(images), largest)
        if len(starts) == 1 or not forward.concurrent:
            return np.concatenate([batch(start) for start in starts])
        return np.concatenate(list(_batch_pool().map(batch, starts)))

    @cached_property
    def _forward(self) -> _Forward:
        """How `embed` runs a batch: `model.predict_on_batch` of preprocessed crops, or on JAX a
        jitted stateless call (no Keras per-call bookkeeping) that preprocesses inside the
        compiled function where the backbone has `preprocess_ops`, and runs batches side by
        side (one XLA CPU computation alone keeps about one core and a quarter busy: measured
        1.25-1.35x faces/s with two at a time on 2 cores)."""
        import keras

        if keras.backend.backend() != "jax":
            return _Forward(self.model.predict_on_batch, takes_uint8=False, concurrent=False)
        model = self.inference_model()
        import jax

        from .._backend import enable_compilation_cache

        enable_compilation_cache()
        takes_uint8 = type(self).preprocess_ops is not Backbone.preprocess_ops

        def call(trainable, other, x):
            return model.stateless_call(trainable, other, self.preprocess_ops(x) if takes_uint8 else x,
                                        training=False)[0]

        forward = jax.jit(call)
        return _Forward(lambda x: forward([v.value for v in model.trainable_variables],
                                          [v.value for v in model.non_trainable_variables], x),
                        takes_uint8=takes_uint8, concurrent=True)

    def inference_model(self):
        """The model `embed` runs on JAX: `model`, or a subclass's rewrite of it that computes the
        same features within float32 rounding, faster (e.g. `inference.inference_model`)."""
        return self.model

    def set_fine_tuned(self, arrays: Sequence[np.ndarray]) -> None:
        """Make `arrays` (fine-tuned values, as `keras.Model.get_weights` gives them) its weights:
        its model is rebuilt without the weights it started from (neither the file nor a download
        is needed), frozen, and its fingerprint becomes that of the values."""
        model = self.fresh_model()
        expected = [tuple(w.shape) for w in model.get_weights()]
        if [tuple(np.shape(w)) for w in arrays] != expected:
            raise IncompatibleModelError(f"fine-tuned backbone weights of {len(arrays)} arrays do not match the "
                                         f"declared {self.registry_name} backbone ({len(expected)} arrays)")
        model.set_weights(list(arrays))
        model.trainable = False
        self.__dict__.pop("_forward", None)  # both were made from the weights it had
        self.__dict__.pop("fingerprint", None)
        self.__dict__["model"] = model
        self.fine_tuned_ = True

    def fine_tuned_weights(self) -> list[np.ndarray] | None:
        """The fine-tuned values that a saved model stores; None where the weights are `weights`."""
        return self.model.get_weights() if self.fine_tuned_ else None

    def fresh_model(self):
        """A new Keras model of this architecture with random weights (no file, no download)."""
        return type(self).from_config({**self.get_config(), "weights": None}).build_model()

    def weights_digest(self) -> str:
        """Identifies the weights by content: a file's sha256 (``sha256:``), or a digest of the
        values: fine-tuned (``fine-tuned:``), Keras' named weights (``keras:imagenet:``, the same
        under every Keras version that loads the same values) or random (``values:``)."""
        if self.fine_tuned_:
            return "fine-tuned:" + values_digest(self.model.get_weights())
        if self.weights is None:
            h = hashlib.sha256()
            for w in self.model.get_weights():
                h.update(np.ascontiguousarray(w).tobytes())
            return "values:" + h.hexdigest()
        path = self.weights_file()
        if path is not None:
            from ..pretrained import WEIGHTS_FILE, bundled_sha256

            if path == str(WEIGHTS_FILE):
                return "sha256:" + bundled_sha256()
            check_weights_file(path)  # checked again: the file may have changed since
            return "sha256:" + file_sha256(path)
        return f"keras:{self.weights}:" + values_digest(self.model.get_weights())

    @cached_property
    def fingerprint(self) -> str:
        """Identifies the features this backbone computes: name, config and weights."""
        return self._fingerprint(self.weights_digest())

    def legacy_fingerprint(self) -> str | None:
        """The fingerprint deepfake-detect 0.1.0 gave Keras' named weights, which the models it
        saved carry: the weights named with the running Keras version (so such a model loads
        under the Keras version it was saved with). None for other weights."""
        if self.fine_tuned_ or self.weights is None or self.weights_file() is not None:
            return None
        import keras

        return self._fingerprint(f"keras:{self.weights}:{keras.__version__}")

    def _fingerprint(self, weights_digest: str) -> str:
        config = {k: v for k, v in self.get_config().items() if k not in ("weights", *self.non_semantic)}
        return config_digest({"name": self.registry_name, "config": config, "weights": weights_digest})


def values_digest(arrays: Sequence[np.ndarray]) -> str:
    """sha256 of arrays' dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for w in arrays:
        w = np.ascontiguousarray(w)
        h.update(f"{w.dtype.str}{w.shape}".encode())
        h.update(w.tobytes())
    return h.hexdigest()


def _download_failed(error: BaseException) -> bool:
    """Whether `error` (or its cause) is Keras' failure to fetch a weights file."""
    import urllib.error

    while error is not None:
        if "URL fetch failure" in str(error) or isinstance(error, (urllib.error.URLError, ConnectionError)):
            return True
        error = error.__cause__ or error.__context__
    return False


@dataclass(frozen=True)
class _Forward:
    """A backbone's batch function (`Backbone._forward`): `call` takes the uint8 crops where
    `takes_uint8`, else `preprocess`'s output; `concurrent`: batches may run in threads side by side."""

    call: Callable[[np.ndarray], Any]
    takes_uint8: bool
    concurrent: bool


@lru_cache(maxsize=1)
def _batch_pool() -> ThreadPoolExecutor:
    """The threads `embed` runs batches in, one a CPU core (at most 4), made on first use."""
    return ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="deepfake_detect-embed")


backbones: Registry[Backbone] = Registry("backbone", Backbone)
