"""`DeepfakeDetector`: composes sampler, face detector, crop policy, backbone, head and aggregator."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .aggregation import Aggregator, aggregators
from .backbones import Backbone, backbones
from .datasets import Sample, discover, grouped_split
from .errors import DatasetError, IncompatibleModelError, NoFaceFoundError, NotFittedError
from .extraction import FeatureExtractor
from .faces import CropPolicy, FaceDetector, face_detectors
from .heads import Head, heads
from .metrics import binary_metrics
from .registry import Registry
from .results import EvaluationReport, FaceBox, FaceFeatures, FramePrediction, VideoPrediction
from .sampling import FrameSampler, samplers
from .video import is_image

FORMAT_VERSION = 1
_PARTS: dict[str, Registry] = {
    "sampler": samplers, "face_detector": face_detectors, "backbone": backbones, "head": heads,
    "aggregator": aggregators,
}

PartSpec = str | dict | Any


class DeepfakeDetector:
    """Tells real videos from deepfakes: sample frames, find the face, embed it, classify, aggregate.

    Each part is a registry name, a config dict ``{"name": ..., **arguments}`` or an
    instance. The constructor only stores its arguments; parts are built on first use.

    Args:
        sampler: which frames to look at (default: the paper's one frame per second).
        face_detector: where the face is (default: RetinaFace MobileNet-0.25).
        backbone: the feature extractor (default: ImageNet MobileNet V1, alpha 0.5, 128 px).
        head: the classifier trained on the features (default: the paper's softmax layer).
        aggregator: frame probabilities → video probability (default: mean).
        crop: the crop policy, a `CropPolicy` or its config dict (default: largest face, 1.3x).
        threshold: p(fake) at or above which a video is called fake.
    """

    def __init__(self, sampler: PartSpec = "fixed_rate", face_detector: PartSpec = "retinaface",
                 backbone: PartSpec = "mobilenet_v1", head: PartSpec = "softmax", aggregator: PartSpec = "mean",
                 crop: CropPolicy | dict | None = None, threshold: float = 0.5):
        self.sampler = sampler
        self.face_detector = face_detector
        self.backbone = backbone
        self.head = head
        self.aggregator = aggregator
        self.crop = crop
        self.threshold = threshold

    # --- composition -------------------------------------------------------------------
    def _part(self, kind: str):
        built = self.__dict__.setdefault("_built", {})
        if kind not in built:
            if kind == "crop":
                spec = self.crop
                built[kind] = spec if isinstance(spec, CropPolicy) else CropPolicy(**(spec or {}))
            else:
                built[kind] = _PARTS[kind].create(getattr(self, kind))
        return built[kind]

    @property
    def extractor(self) -> FeatureExtractor:
        """The stages up to the features (sampler, face detector, crop policy, backbone)."""
        if "_extractor" not in self.__dict__:
            self._extractor = FeatureExtractor(self._part("sampler"), self._part("face_detector"),
                                               self._part("crop"), self._part("backbone"))
        return self._extractor

    def get_config(self) -> dict[str, Any]:
        """A JSON-able config that `from_config` turns back into an unfitted twin."""
        config = {kind: registry.serialize(self._part(kind)) for kind, registry in _PARTS.items()}
        config["crop"] = self._part("crop").get_config()
        config["threshold"] = self.threshold
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DeepfakeDetector:
        return cls(**config)

    def _features(self, paths: list[str], verbose: int, what: str) -> list[FaceFeatures]:
        progress = _progress(paths, verbose, what)
        out = []
        for path in progress:
            out.append(self.extractor.extract(path)[0])
        return out

    # --- training ----------------------------------------------------------------------
    def fit(self, dataset_dir: str | os.PathLike, validation_split: float = 0.15, seed: int = 0,
            verbose: int = 1, callbacks: list | None = None):
        """Extract features of every input of `dataset_dir` and train the head on them.

        The validation split is grouped by source video (and by person where names tell),
        so no video has frames on both sides. Returns the Keras `History` of the head.
        """
        samples = discover(dataset_dir)
        feats = self._features([s.path for s in samples], verbose, "extracting features")
        kept = [(s, f) for s, f in zip(samples, feats) if len(f)]
        if {s.label for s, _ in kept} != {0, 1}:
            raise DatasetError(f"{dataset_dir}: after face detection, only one class has faces "
                               f"({len(samples) - len(kept)} of {len(samples)} inputs had none); check the inputs.")
        x, y, rows = _stack(kept)
        validation = None
        train_rows = np.arange(len(y))
        if validation_split:
            video_labels = np.array([s.label for s, _ in kept])
            video_groups = np.array([s.group for s, _ in kept])
            train_v, val_v = grouped_split(video_labels, video_groups, validation_split, seed)
            train_rows = np.flatnonzero(np.isin(rows, train_v))
            val_rows = np.flatnonzero(np.isin(rows, val_v))
            validation = (x[val_rows], y[val_rows])
        head: Head = heads.create(heads.serialize(self._part("head")))
        history = head.fit(x[train_rows], y[train_rows], validation_data=validation,
                           verbose=2 if verbose else 0, callbacks=callbacks)
        self.head_ = head
        self.n_features_in_ = int(x.shape[1])
        self.fingerprint_ = self.extractor.fingerprint
        self.history_ = history
        self.inputs_without_face_ = len(samples) - len(kept)
        return history

    def _check_fitted(self) -> Head:
        head = self.__dict__.get("head_")
        if head is None:
            raise NotFittedError("this DeepfakeDetector is not fitted yet: call fit(dataset_dir) or DeepfakeDetector.load(path)")
        return head

    # --- prediction --------------------------------------------------------------------
    def predict_video(self, path: str | os.PathLike, strict: bool = False) -> VideoPrediction:
        """The verdict on one video (or image). Without a face the detector abstains
        (label "unknown"), or raises `NoFaceFoundError` when `strict`."""
        head = self._check_fitted()
        feats, timings = self.extractor.extract(path)
        return self._verdict(str(path), feats, head, timings, strict)

    def predict_image(self, path: str | os.PathLike, strict: bool = False) -> VideoPrediction:
        """The verdict on one image file (a single frame)."""
        if not is_image(path):
            raise ValueError(f"{path}: not an image file name (.jpg, .png, .bmp, ...); use predict_video for videos")
        return self.predict_video(path, strict=strict)

    def _verdict(self, path: str, feats: FaceFeatures, head: Head, timings: dict[str, float],
                 strict: bool) -> VideoPrediction:
        if not len(feats):
            reason = f"no face found in {feats.frames_sampled} sampled frame(s)"
            if strict:
                raise NoFaceFoundError(f"{path}: {reason}")
            return VideoPrediction(path, "unknown", None, (), feats.frames_sampled, self.threshold, timings, reason)
        t = time.perf_counter()
        p_frames = head.predict(feats.features)
        p = self._part("aggregator")(p_frames)
        timings = {**timings, "classify": time.perf_counter() - t}
        frames = tuple(
            FramePrediction(int(i), float(s), float(pf), FaceBox(*map(float, b), score=float(sc)))
            for i, s, pf, b, sc in zip(feats.frame_indices, feats.times, p_frames, feats.boxes, feats.scores)
        )
        label = "fake" if p >= self.threshold else "real"
        return VideoPrediction(path, label, p, frames, feats.frames_sampled, self.threshold, timings)

    def evaluate(self, dataset_dir: str | os.PathLike, verbose: int = 1) -> EvaluationReport:
        """Frame- and video-level metrics on a labelled dataset (`fake` is the positive class)."""
        head = self._check_fitted()
        samples = discover(dataset_dir)
        feats = self._features([s.path for s in samples], verbose, "evaluating")
        preds = [self._verdict(s.path, f, head, {}, False) for s, f in zip(samples, feats)]
        scored = [(s, p) for s, p in zip(samples, preds) if p.p_fake is not None]
        if not scored:
            raise DatasetError(f"{dataset_dir}: no face found in any input; nothing to evaluate")
        frame_y = np.concatenate([np.full(p.faces_found, s.label) for s, p in scored])
        frame_p = np.concatenate([[f.p_fake for f in p.frames] for _, p in scored])
        return EvaluationReport(
            protocol="held-out dataset",
            n_videos=len(samples),
            n_frames=len(frame_y),
            video=binary_metrics([s.label for s, _ in scored], [p.p_fake for _, p in scored], self.threshold),
            frame=binary_metrics(frame_y, frame_p, self.threshold),
            videos_without_face=len(samples) - len(scored),
            predictions=tuple(preds),
        )

    # --- persistence -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted detector to one zip file (config, metadata, head weights; no pickle).

        The file is written under a temporary name and renamed, so a crash never leaves a
        half-written model and an existing file stays intact until the new one is complete.
        """
        head = self._check_fitted()
        import keras

        target = Path(path)
        weights = io.BytesIO()
        np.savez(weights, *head.model_.get_weights())
        metadata = {
            "format_version": FORMAT_VERSION, "library_version": __version__, "keras_version": keras.__version__,
            "backend": keras.backend.backend(), "n_features_in": self.n_features_in_,
            "backbone_fingerprint": self._part("backbone").fingerprint, "extractor_fingerprint": self.fingerprint_,
        }
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
                    z.writestr("config.json", json.dumps(self.get_config(), indent=2, default=str))
                    z.writestr("metadata.json", json.dumps(metadata, indent=2))
                    z.writestr("head_weights.npz", weights.getvalue())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | os.PathLike, backbone_weights: str | None = None,
             allow_fingerprint_mismatch: bool = False) -> DeepfakeDetector:
        """A detector saved by `save`. `backbone_weights` points the backbone at another copy of
        its weights file; a backbone whose fingerprint differs from the saved one is refused
        (or only warned about with `allow_fingerprint_mismatch=True`)."""
        try:
            with zipfile.ZipFile(path) as z:
                config = json.loads(z.read("config.json"))
                metadata = json.loads(z.read("metadata.json"))
                arrays = np.load(io.BytesIO(z.read("head_weights.npz")), allow_pickle=False)
                weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        except FileNotFoundError:
            raise
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
            raise IncompatibleModelError(f"{path}: not a deepfake-detect model file ({e})") from e
        if metadata.get("format_version") != FORMAT_VERSION:
            raise IncompatibleModelError(f"{path}: model format {metadata.get('format_version')!r}; "
                                         f"this version of deepfake-detect reads format {FORMAT_VERSION}")
        if backbone_weights is not None:
            config["backbone"] = {**config["backbone"], "weights": backbone_weights}
        try:
            detector = cls.from_config(config)
            parts = {kind: detector._part(kind) for kind in (*_PARTS, "crop")}
        except KeyError as e:
            raise IncompatibleModelError(f"{path}: {e.args[0]}. Install the plug-in package that provides it.") from e
        except (TypeError, ValueError, FileNotFoundError) as e:
            raise IncompatibleModelError(f"{path}: its config cannot be used here: {e}") from e
        found = parts["backbone"].fingerprint
        if found != metadata["backbone_fingerprint"]:
            message = (f"{path}: the backbone here computes other features than the one the model was trained on "
                       f"(fingerprint {found}, saved {metadata['backbone_fingerprint']}). Give the same weights "
                       "file with backbone_weights=..., or pass allow_fingerprint_mismatch=True to use it anyway.")
            if not allow_fingerprint_mismatch:
                raise IncompatibleModelError(message)
            warnings.warn(message, stacklevel=2)
        head: Head = parts["head"]
        head.model_ = head.build_model(int(metadata["n_features_in"]))
        expected = [tuple(w.shape) for w in head.model_.get_weights()]
        if [tuple(w.shape) for w in weights] != expected:
            raise IncompatibleModelError(f"{path}: head weights of shapes {[w.shape for w in weights]} do not match "
                                         f"the declared head ({expected})")
        head.model_.set_weights(weights)
        detector.head_ = head
        detector.n_features_in_ = int(metadata["n_features_in"])
        detector.fingerprint_ = metadata["extractor_fingerprint"]
        return detector

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in (*_PARTS, "crop", "threshold"))
        return f"DeepfakeDetector({args})"


def _stack(kept: list[tuple[Sample, FaceFeatures]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame rows of all inputs: features, labels, and the input (row of `kept`) each came from."""
    x = np.concatenate([f.features for _, f in kept]).astype(np.float32)
    y = np.concatenate([np.full(len(f), s.label, dtype=np.int32) for s, f in kept])
    rows = np.concatenate([np.full(len(f), i) for i, (_, f) in enumerate(kept)])
    return x, y, rows


def _progress(items: list, verbose: int, what: str):
    if not verbose:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=what, unit="input", file=sys.stderr)
