"""`DeepfakeDetector`: composes sampler, face detector, crop policy, backbone, head and aggregator."""

from __future__ import annotations

import functools
import io
import json
import math
import os
import stat
import time
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import __version__
from .aggregation import Aggregator, aggregators
from .backbones import Backbone, backbones
from .cache import FeatureCache, open_cache
from .datasets import Sample, discover, grouped_split
from .errors import DatasetError, IncompatibleModelError, NoFaceFoundError, NotFittedError
from .extraction import FeatureExtractor
from .faces import CropPolicy, FaceDetector, face_detectors
from .fine_tuning import BACKBONE_WEIGHTS, is_fine_tuned, read_backbone_weights, restore_fine_tuned
from .heads import Head, heads
from .progress import progress
from .registry import Registry
from .results import EvaluationReport, FaceBox, FaceFeatures, FramePrediction, VideoPrediction
from .sampling import FrameSampler, samplers
from .video import decode_limits, is_image

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
        cache: where features and face crops are kept, so nothing is decoded, detected or
            embedded twice: "default" (the path in the ``DEEPFAKE_DETECT_CACHE``
            environment variable, "none" there for no cache; else
            ``$XDG_CACHE_HOME/deepfake_detect/features.sqlite``, ``~/.cache`` without
            XDG), a path (a file, or a folder for ``features.sqlite``), a `FeatureCache`,
            or None (no cache).
    """

    def __init__(self, sampler: PartSpec = "fixed_rate", face_detector: PartSpec = "retinaface",
                 backbone: PartSpec = "mobilenet_v1", head: PartSpec = "softmax", aggregator: PartSpec = "mean",
                 crop: CropPolicy | dict | None = None, threshold: float = 0.5,
                 cache: str | os.PathLike | FeatureCache | None = "default"):
        self.sampler = sampler
        self.face_detector = face_detector
        self.backbone = backbone
        self.head = head
        self.aggregator = aggregator
        self.crop = crop
        self.threshold = threshold
        self.cache = cache

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
        """The stages up to the features (sampler, face detector, crop policy, backbone), read
        through the cache."""
        if "_extractor" not in self.__dict__:
            self._extractor = FeatureExtractor(self._part("sampler"), self._part("face_detector"), self._part("crop"),
                                               self._part("backbone"), cache=open_cache(self.cache))
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

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> DeepfakeDetector:
        """An untrained detector configured as preset `name` (see `deepfake_detect.presets`;
        `list_presets()` names them). `weights=` (or `backbone_weights=`) points the backbone at
        a weights file; any other keyword replaces that constructor argument (a part given as a
        dict without "name" updates the preset's part). The preset's training recipe is kept in
        `preset_`: `fine_tune` takes its arguments as defaults."""
        from .presets import get_preset, preset_config

        detector = cls(**preset_config(name, **overrides))
        detector.preset_ = get_preset(name)
        return detector

    def _features(self, paths: list[str], verbose: int, what: str) -> list[FaceFeatures]:
        extracted = self.extractor.extract_many(paths)  # cache reads and writes batched
        return [feats for feats, _ in progress(extracted, verbose, what, total=len(paths))]

    # --- training ----------------------------------------------------------------------
    def fit(self, dataset_dir: str | os.PathLike, validation_split: float = 0.0, seed: int = 0,
            verbose: int = 1, callbacks: list | None = None, cross_fit: int | None = None,
            calibration: str | tuple[str, ...] | None = None, threshold: str | float | None = None,
            max_abstain: float | None = None, head_candidates: list | None = None):
        """Extract features of every input of `dataset_dir` and train the head on them.

        The choices that need held-out predictions are made by *cross-fitting*: `cross_fit` grouped
        folds (by source video and person, stratified) each train a head on the other folds and
        score their own videos; on those out-of-fold video scores `fit` calibrates p(fake)
        (`calibration`: "platt", "isotonic", "none", or several to choose from by cross-validated
        log loss), chooses the `threshold` on calibrated p(fake) ("balanced": the best balanced
        accuracy; "fpr<=0.05"; or a number) and, where `max_abstain` > 0, an "inconclusive" band
        holding at most that share of videos. Then the final head trains on every labelled video.
        `head_candidates` (head configs) lets the cross-fitting choose the head too: the one with the
        best out-of-fold video AUC is trained and saved (`head_`; the constructor's `head` is then
        not used). A preset's `train_kwargs` give the defaults (else 5 folds, Platt, "balanced", no
        band, the constructor's head). With too few groups to cross-fit, it warns and keeps the raw
        scores, the first head and `threshold`.

        `validation_split` > 0 holds out that share of the videos by group, for the validation
        curves in the returned Keras `History` of the head only (the final head then trains on
        the rest). Fitted state: `head_`, `decision_` (`calibration.Decision`, or None),
        `crossfit_` (what cross-fitting measured).
        """
        from .calibration import choose_decision
        from .crossfit import FeatureTable, crossfit, usable_folds

        preset = self.__dict__.get("preset_")
        recipe = dict(preset.train_kwargs) if preset is not None and preset.train == "fit" else {}
        cross_fit = recipe.get("cross_fit", 5) if cross_fit is None else cross_fit
        calibration = recipe.get("calibration", "platt") if calibration is None else calibration
        threshold = recipe.get("threshold", "balanced") if threshold is None else threshold
        max_abstain = recipe.get("max_abstain", 0.0) if max_abstain is None else max_abstain
        head_candidates = recipe.get("head_candidates") if head_candidates is None else head_candidates
        configs = [heads.serialize(heads.create(c)) for c in head_candidates] if head_candidates \
            else [heads.serialize(self._part("head"))]
        samples = discover(dataset_dir)
        feats = self._features([s.path for s in samples], verbose, "extracting features")
        kept = [(s, f) for s, f in zip(samples, feats) if len(f)]
        if {s.label for s, _ in kept} != {0, 1}:
            raise DatasetError(f"{dataset_dir}: after face detection, only one class has faces "
                               f"({len(samples) - len(kept)} of {len(samples)} inputs had none); check the inputs.")
        x, y, rows = _stack(kept)
        video_labels = np.array([s.label for s, _ in kept])
        video_groups = np.array([s.group for s, _ in kept])
        validation = None
        train_v = np.arange(len(kept))
        if validation_split:
            train_v, val_v = grouped_split(video_labels, video_groups, validation_split, seed)
            val_rows = np.flatnonzero(np.isin(rows, val_v))
            validation = (x[val_rows], y[val_rows])
        train_rows = np.flatnonzero(np.isin(rows, train_v))
        decision, measured = None, {"folds": 0}
        k = usable_folds(video_labels[train_v], video_groups[train_v], cross_fit) if cross_fit else 0
        if k >= 2:
            table = FeatureTable(x, rows, video_labels, video_groups.astype(str), np.array([s.method for s, _ in kept]))
            fits = [crossfit(c, table, train_v, self._part("aggregator"), k, seed, registry=heads) for c in configs]
            aucs = [_oof_measures(video_labels[train_v], f.scores, None)["oof_video_auc"] for f in fits]
            best = int(np.argmax(aucs))  # the first of equals
            configs, cf = [configs[best]], fits[best]
            decision = choose_decision(cf.scores, video_labels[train_v], video_groups[train_v], calibration,
                                       threshold, max_abstain, seed=seed)
            measured = {"folds": k, "videos": len(train_v), **_oof_measures(video_labels[train_v], cf.scores,
                                                                           decision)}
            if len(fits) > 1:
                measured["head_candidates_oof_auc"] = aucs
        elif cross_fit:
            warnings.warn(f"{dataset_dir}: too few groups or videos of a class to cross-fit ({k} fold(s) possible); "
                          "p(fake) stays uncalibrated and the threshold stays at the constructor's", UserWarning,
                          stacklevel=2)
        head: Head = heads.create(configs[0])
        history = head.fit(x[train_rows], y[train_rows], validation_data=validation,
                           verbose=2 if verbose else 0, callbacks=callbacks, videos=rows[train_rows])
        self.head_ = head
        self.decision_ = decision
        self.crossfit_ = measured
        self.n_features_in_ = int(x.shape[1])
        self.fingerprint_ = self.extractor.fingerprint
        self.history_ = history
        self.inputs_without_face_ = len(samples) - len(kept)
        return history

    def fine_tune(self, dataset_dir: str | os.PathLike | list[Sample], **kwargs: Any):
        """Train the backbone (all of it, or its top `trainable_blocks` blocks) and the head end to
        end on the cached face crops of `dataset_dir`, with augmentation, a class-balanced loss
        and early stopping on a grouped validation split; see `deepfake_detect.fine_tuning.fine_tune`
        for the arguments (a preset's recipe gives the defaults). The backbone's fingerprint
        changes with its weights, and `save` stores them. Returns the Keras `History`."""
        from .fine_tuning import fine_tune

        preset = self.__dict__.get("preset_")
        defaults = dict(preset.train_kwargs) if preset is not None and preset.train == "fine_tune" else {}
        self.decision_ = None  # a calibration fitted on another head's scores would not apply
        return fine_tune(self, dataset_dir, **{**defaults, **kwargs})

    def _check_fitted(self) -> Head:
        head = self.__dict__.get("head_")
        if head is None:
            raise NotFittedError("this DeepfakeDetector is not fitted yet: call fit(dataset_dir) or DeepfakeDetector.load(path)")
        return head

    # --- prediction --------------------------------------------------------------------
    def predict_video(self, path: str | os.PathLike, strict: bool = False,
                      decode_timeout: float | None = None) -> VideoPrediction:
        """The verdict on one video (or image). Without a face the detector abstains
        (label "unknown"), or raises `NoFaceFoundError` when `strict`.

        `decode_timeout` bounds the seconds spent decoding the file (default
        `video.DEFAULT_DECODE_TIMEOUT`, 600; `math.inf`: no limit): a damaged or hostile file
        raises `VideoReadError` instead of hanging. `fit` and `evaluate` take the limit of a
        surrounding ``with video.decode_limits(decode_timeout=...):`` block."""
        head = self._check_fitted()
        with decode_limits(decode_timeout):
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
        decision = self.__dict__.get("decision_")
        if decision is not None:  # calibrated: the video's aggregated score, and each frame's by the same map
            p, p_frames = float(decision.calibrator(p)), decision.calibrator(p_frames)
        timings = {**timings, "classify": time.perf_counter() - t}
        frames = tuple(
            FramePrediction(int(i), float(s), float(pf), FaceBox(*map(float, b), score=float(sc)))
            for i, s, pf, b, sc in zip(feats.frame_indices, feats.times, p_frames, feats.boxes, feats.scores)
        )
        label = decision.label(p) if decision is not None else ("fake" if p >= self.threshold else "real")
        return VideoPrediction(path, label, p, frames, feats.frames_sampled, self.operating_threshold, timings)

    @property
    def operating_threshold(self) -> float:
        """The threshold on p(fake) that verdicts use: the one `fit` chose on cross-fitted scores, or
        the constructor's `threshold` (an unfitted detector, a model saved without one)."""
        decision = self.__dict__.get("decision_")
        return decision.threshold if decision is not None else self.threshold

    def evaluate(self, dataset_dir: str | os.PathLike | list[Sample], verbose: int = 1,
                 bootstrap: int = 1000) -> EvaluationReport:
        """Frame- and video-level metrics on a labelled dataset (a folder, or discovered
        samples); `fake` is the positive class. Metrics per manipulation method where the
        dataset names methods, and a bootstrap 95% interval (`bootstrap` resamples of the
        groups) of the video ROC AUC. Inputs without a face are counted, not scored. A folder of
        one class (only real, or only fake videos) reports the rate called fake and the accuracy.
        ECE and Brier score say how calibrated p(fake) is."""
        from .evaluation import summarize

        head = self._check_fitted()
        samples = discover(dataset_dir, allow_one_class=True) if isinstance(dataset_dir, (str, os.PathLike)) \
            else list(dataset_dir)
        feats = self._features([s.path for s in samples], verbose, "evaluating")
        preds = [self._verdict(s.path, f, head, {}, False) for s, f in zip(samples, feats)]
        return summarize(samples, preds, "held-out dataset", self.operating_threshold, bootstrap=bootstrap)

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
        decision = self.__dict__.get("decision_")
        if decision is not None:  # calibration, threshold and band: plain numbers (older readers ignore them)
            metadata["decision"] = decision.to_dict()
            metadata["crossfit"] = self.__dict__.get("crossfit_", {})
        fine_tuned = None
        if is_fine_tuned(self._part("backbone")):  # its weights are the model's own: stored with it
            buffer = io.BytesIO()
            np.savez(buffer, *self._part("backbone").model.get_weights())
            fine_tuned = buffer.getvalue()
            metadata["fine_tuned_backbone"] = True
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_beside(target)
        try:
            with os.fdopen(fd, "wb") as f:
                with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
                    config = {**self.get_config(), "head": heads.serialize(head)}  # the head fit trained (or chose)
                    z.writestr("config.json", json.dumps(config, indent=2, default=str))
                    z.writestr("metadata.json", json.dumps(metadata, indent=2))
                    z.writestr("head_weights.npz", weights.getvalue())
                    if fine_tuned is not None:
                        z.writestr(BACKBONE_WEIGHTS, fine_tuned)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | os.PathLike, backbone_weights: str | None = None,
             allow_fingerprint_mismatch: bool = False,
             cache: str | os.PathLike | FeatureCache | None = "default") -> DeepfakeDetector:
        """A detector saved by `save`. `backbone_weights` points the backbone at another copy of
        its weights file; a backbone whose fingerprint differs from the saved one is refused
        (or only warned about with `allow_fingerprint_mismatch=True`). `cache` is the feature
        cache to read through, as in the constructor (it is not part of the saved model).

        Nothing in the file is unpickled or executed: the config names registered parts only,
        the weights are read with ``allow_pickle=False``. A file that is not a model, names an
        unknown part, declares other shapes than its weights have, or holds pickled arrays is
        refused with `IncompatibleModelError`."""
        try:
            with zipfile.ZipFile(path) as z:
                for name, limit in _MEMBER_LIMITS.items():  # a zip bomb is refused before it is inflated
                    if z.getinfo(name).file_size > limit:
                        raise IncompatibleModelError(f"{path}: {name} is {z.getinfo(name).file_size} bytes unpacked, "
                                                     f"more than a model holds ({limit}); refused")
                config = json.loads(z.read("config.json"))
                metadata = json.loads(z.read("metadata.json"))
                weights = _read_weights(path, z.read("head_weights.npz"))
                tuned = read_backbone_weights(path, z) if BACKBONE_WEIGHTS in z.namelist() else None
        except (FileNotFoundError, IncompatibleModelError):
            raise
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, NotImplementedError, RuntimeError,
                zlib.error) as e:
            raise IncompatibleModelError(f"{path}: not a deepfake-detect model file ({e})") from e
        if not isinstance(metadata, dict) or not isinstance(config, dict):
            raise IncompatibleModelError(f"{path}: config.json and metadata.json must each hold a JSON object")
        if metadata.get("format_version") != FORMAT_VERSION:
            raise IncompatibleModelError(f"{path}: model format {metadata.get('format_version')!r}; "
                                         f"this version of deepfake-detect reads format {FORMAT_VERSION}")
        _check_saved(path, config, metadata)
        if backbone_weights is not None:
            spec = config.get("backbone")
            spec = {"name": spec} if isinstance(spec, str) else spec
            config["backbone"] = {**spec, "weights": backbone_weights}
        try:
            detector = cls.from_config({**config, "cache": cache})
            parts = {kind: detector._part(kind) for kind in (*_PARTS, "crop")}
            for kind, part in parts.items():
                unsafe = [k for k in part.unpickled_files if getattr(part, k, None) is not None]
                if unsafe:
                    raise IncompatibleModelError(
                        f"{path}: its {kind} sets {', '.join(unsafe)}, files that would be unpickled (which can run "
                        f"code); a saved model may not name them. Load it without, then set them in code if trusted.")
        except KeyError as e:
            raise IncompatibleModelError(f"{path}: {e.args[0]}. Install the plug-in package that provides it.") from e
        except (TypeError, ValueError, FileNotFoundError) as e:
            raise IncompatibleModelError(f"{path}: its config cannot be used here: {e}") from e
        if tuned is not None:
            restore_fine_tuned(parts["backbone"], tuned)
        found = parts["backbone"].fingerprint
        if found != metadata["backbone_fingerprint"]:
            message = (f"{path}: the backbone here computes other features than the one the model was trained on "
                       f"(fingerprint {found}, saved {metadata['backbone_fingerprint']}). Give the same weights "
                       "file with backbone_weights=..., or pass allow_fingerprint_mismatch=True to use it anyway.")
            if not allow_fingerprint_mismatch:
                raise IncompatibleModelError(message)
            warnings.warn(message, stacklevel=2)
        head: Head = parts["head"]
        try:
            head.model_ = head.build_model(int(metadata["n_features_in"]))
        except (TypeError, ValueError) as e:
            raise IncompatibleModelError(f"{path}: its head cannot be built here: {e}") from e
        expected = [tuple(w.shape) for w in head.model_.get_weights()]
        if [tuple(w.shape) for w in weights] != expected:
            raise IncompatibleModelError(f"{path}: head weights of shapes {[w.shape for w in weights]} do not match "
                                         f"the declared head ({expected})")
        head.model_.set_weights(weights)
        detector.head_ = head
        detector.decision_ = _read_decision(path, metadata)  # None for a model saved before calibration
        detector.crossfit_ = metadata.get("crossfit", {}) if isinstance(metadata.get("crossfit"), dict) else {}
        detector.n_features_in_ = int(metadata["n_features_in"])
        detector.fingerprint_ = metadata["extractor_fingerprint"]
        return detector

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in (*_PARTS, "crop", "threshold"))
        return f"DeepfakeDetector({args})"


def _create_beside(target: Path) -> tuple[int, str]:
    """A new, uniquely named temporary file in `target`'s folder, open for writing: with the
    permissions of the file it will replace, or those the umask gives a new file (not
    `tempfile.mkstemp`'s owner-only 0600)."""
    while True:
        tmp = target.parent / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        except FileNotFoundError:
            pass
        return fd, str(tmp)


#: The most bytes each member of a model file may unpack to.
_MEMBER_LIMITS = {"config.json": 1 << 20, "metadata.json": 1 << 20, "head_weights.npz": 1 << 30}


def _read_weights(path: str | os.PathLike, data: bytes) -> list[np.ndarray]:
    """The head's arrays from the bytes of head_weights.npz: numeric arrays only. Every array's
    header is checked before its data is read, so a pickled (object) array is refused without
    being unpickled, and an array cannot claim more memory than its bytes hold."""
    refuse = functools.partial(_refuse, path)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        refuse("head_weights.npz is not an .npz archive of arrays")
    with archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
        names = [f"arr_{i}.npy" for i in range(len(sizes))]
        if sorted(sizes) != sorted(names):
            refuse(f"head_weights.npz holds {sorted(sizes)}, not arr_0.npy, arr_1.npy, ...")
        if sum(sizes.values()) > _MEMBER_LIMITS["head_weights.npz"]:
            refuse("head_weights.npz unpacks to more than a model holds")
        weights = []
        for name in names:
            with archive.open(name) as f:
                version = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                    else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(f)
                if dtype.hasobject:
                    refuse(f"head_weights.npz/{name} holds Python objects (a pickled array); refused without "
                           "unpickling it, as unpickling can run code. A model saved by deepfake-detect holds "
                           "numbers only.")
                if dtype.kind not in "fiu":
                    refuse(f"head_weights.npz/{name} has dtype {dtype}, not numbers")
                if math.prod(shape) * dtype.itemsize > sizes[name]:
                    refuse(f"head_weights.npz/{name} declares shape {shape} but holds fewer bytes")
            with archive.open(name) as f:
                weights.append(np.lib.format.read_array(f, allow_pickle=False))
    return weights


def _read_decision(path: str | os.PathLike, metadata: dict):
    """The saved calibration, threshold and band (`calibration.Decision`), or None where the file
    predates them; `IncompatibleModelError` where they are malformed."""
    if "decision" not in metadata:
        return None
    from .calibration import Decision

    try:
        return Decision.from_dict(metadata["decision"])
    except (ValueError, TypeError, AttributeError) as e:
        raise IncompatibleModelError(f"{path}: metadata.json's decision is malformed: {e}") from e


def _oof_measures(labels: np.ndarray, scores: np.ndarray, decision) -> dict[str, float]:
    """Out-of-fold AUC and calibration of the cross-fitted scores, before and after calibration."""
    from .calibration import brier_score, expected_calibration_error
    from .metrics import binary_metrics

    if decision is None:
        return {"oof_video_auc": binary_metrics(labels, scores)["roc_auc"]}
    p = decision.calibrator(scores)
    return {"oof_video_auc": binary_metrics(labels, scores)["roc_auc"],
            "oof_ece_raw": expected_calibration_error(labels, scores), "oof_ece": expected_calibration_error(labels, p),
            "oof_brier_raw": brier_score(labels, scores), "oof_brier": brier_score(labels, p)}


def _refuse(path: str | os.PathLike, why: str) -> NoReturn:
    raise IncompatibleModelError(f"{path}: {why}")


def _check_saved(path: str | os.PathLike, config: dict, metadata: dict) -> None:
    """What `save` writes, checked before anything is built from it."""
    n = metadata.get("n_features_in")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise IncompatibleModelError(f"{path}: metadata.json's n_features_in is {n!r}, not a positive integer")
    for key in ("backbone_fingerprint", "extractor_fingerprint"):
        if not isinstance(metadata.get(key), str):
            raise IncompatibleModelError(f"{path}: metadata.json has no {key}")
    if "cache" in config:  # where features are kept is this machine's choice, never a model file's
        raise IncompatibleModelError(f"{path}: its config names a feature cache; a saved model never does")
    threshold = config.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise IncompatibleModelError(f"{path}: its threshold {threshold!r} is not a number in [0, 1]")
    spec = config.get("backbone")
    if not isinstance(spec, (str, dict)):
        raise IncompatibleModelError(f"{path}: its config gives no backbone")


def _stack(kept: list[tuple[Sample, FaceFeatures]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame rows of all inputs: features, labels, and the input (row of `kept`) each came from."""
    x = np.concatenate([f.features for _, f in kept]).astype(np.float32)
    y = np.concatenate([np.full(len(f), s.label, dtype=np.int32) for s, f in kept])
    rows = np.concatenate([np.full(len(f), i) for i, (_, f) in enumerate(kept)])
    return x, y, rows

