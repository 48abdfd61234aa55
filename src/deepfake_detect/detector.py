"""`DeepfakeDetector`: composes sampler, face detector, crop policy, backbone, head and aggregator."""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from . import fine_tuning
from .aggregation import Aggregator, aggregators
from .backbones import Backbone, backbones
from .backbones.base import backbone_budget
from .cache import FeatureCache, failure_warning, is_transient, open_cache
from .calibration import Decision, brier_score, choose_decision, expected_calibration_error
from .crossfit import FeatureTable, crossfit, usable_folds
from .datasets import Sample, discover, grouped_split
from .errors import CacheError, DatasetError, IncompatibleModelError, NoFaceFoundError, NotFittedError, \
    VideoReadError, WeightsUnavailableError
from .extraction import FeatureExtractor
from .faces import CropPolicy, FaceDetector, face_detectors
from .heads import Head, heads
from .metrics import binary_metrics, summarize
from .presets import get_preset, preset_config, with_weights
from .progress import progress
from .registry import Registry
from .results import EvaluationReport, FaceBox, FaceFeatures, FramePrediction, VideoPrediction
from .sampling import FrameSampler, samplers
from .saving import BACKBONE_WEIGHTS, FORMAT_VERSION, HEAD_WEIGHTS, ModelReader, SavedModel, write_model
from .verdict import checked, decide, operating_point
from .version import __version__
from .video import decode_limits, is_image

_PARTS: dict[str, Registry] = {
    "sampler": samplers, "face_detector": face_detectors, "backbone": backbones, "head": heads,
    "aggregator": aggregators,
}
Kind = Literal["sampler", "face_detector", "crop", "backbone", "head", "aggregator"]

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
        inconclusive: None, or a band (low, high) of p(fake) inside which a video is called
            "inconclusive" rather than real or fake (see `deepfake_detect.verdict`).
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
                 cache: str | os.PathLike | FeatureCache | None = "default",
                 inconclusive: tuple[float, float] | None = None):
        self.sampler = sampler
        self.face_detector = face_detector
        self.backbone = backbone
        self.head = head
        self.aggregator = aggregator
        self.crop = crop
        self.threshold = threshold
        self.cache = cache
        self.inconclusive = inconclusive

    # --- parameters and parts ----------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, as stored (scikit-learn's protocol; parts are not
        estimators, so `deep` changes nothing)."""
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> DeepfakeDetector:
        """Replace constructor arguments (as assigning the attributes does); the parts they
        describe are built anew on next use. The fitted state stays until the next fit."""
        unknown = sorted(set(params) - set(_PARAMS))
        if unknown:
            raise ValueError(f"DeepfakeDetector has no parameters {unknown}; it has {list(_PARAMS)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    @overload
    def part(self, kind: Literal["sampler"]) -> FrameSampler: ...
    @overload
    def part(self, kind: Literal["face_detector"]) -> FaceDetector: ...
    @overload
    def part(self, kind: Literal["crop"]) -> CropPolicy: ...
    @overload
    def part(self, kind: Literal["backbone"]) -> Backbone: ...
    @overload
    def part(self, kind: Literal["head"]) -> Head: ...
    @overload
    def part(self, kind: Literal["aggregator"]) -> Aggregator: ...

    def part(self, kind: Kind) -> Any:
        """The part built from the argument `kind` ("sampler", "face_detector", "crop",
        "backbone", "head" or "aggregator"): built on first use, and again after the argument
        changes. The head is the unfitted one the argument describes; the fitted head is `head_`."""
        spec = getattr(self, kind)
        built = self.__dict__.setdefault("_built", {})
        if kind not in built or not _same(built[kind][0], spec):
            if kind == "crop":
                part = spec if isinstance(spec, CropPolicy) else CropPolicy(**(spec or {}))
            else:
                part = _PARTS[kind].create(spec)
            built[kind] = (_snapshot(spec), part)
        return built[kind][1]

    @property
    def extractor(self) -> FeatureExtractor:
        """The stages up to the features (sampler, face detector, crop policy, backbone), read
        through the cache."""
        parts = tuple(self.part(kind) for kind in ("sampler", "face_detector", "crop", "backbone"))
        built = self.__dict__.get("_extractor")
        if built is None or any(a is not b for a, b in zip(built[0], parts)) or not _same(built[1], self.cache):
            try:
                cache = open_cache(self.cache)
            except CacheError as e:  # a full disk, an I/O error: the cache is an optimisation, not a need
                if not is_transient(e):
                    raise
                warnings.warn(failure_warning(e), RuntimeWarning, stacklevel=2)
                cache = None
            self._extractor = (parts, _snapshot(self.cache), FeatureExtractor(*parts, cache=cache))
        return self._extractor[2]

    def get_config(self) -> dict[str, Any]:
        """A JSON-able config that `from_config` turns back into an unfitted twin."""
        config = {kind: registry.serialize(self.part(kind)) for kind, registry in _PARTS.items()}
        config["crop"] = self.part("crop").get_config()
        config["threshold"] = self.threshold
        if self.inconclusive is not None:
            config["inconclusive"] = list(checked(self.threshold, self.inconclusive)[1])
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DeepfakeDetector:
        return cls(**config)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> DeepfakeDetector:
        """An untrained detector configured as preset `name` (see `deepfake_detect.presets`;
        `list_presets()` names them). `weights=` (or `backbone_weights=`) points the backbone at
        a weights file ("imagenet", or None for random weights); any other keyword replaces that
        constructor argument (a part given as a dict without "name" updates the preset's part).
        The preset's training recipe is kept in `preset_`: `fine_tune` takes its arguments as
        defaults."""
        detector = cls(**preset_config(name, **overrides))
        detector.preset_ = get_preset(name)
        return detector

    @classmethod
    def from_pretrained(cls, name: str = "default",
                        cache: str | os.PathLike | FeatureCache | None = "default") -> DeepfakeDetector:
        """The trained detector shipped in the package (`deepfake_detect.pretrained`): works
        offline right after ``pip install``, with the bundled backbone weights. Its model card
        (`deepfake_detect.pretrained.model_card()`, ``deepfake-detect info``) says what it was
        trained on, what it measured and how far to trust it."""
        from .pretrained import model_file

        return cls.load(model_file(name), cache=cache)

    def check_weights(self) -> None:
        """Make sure the backbone's weights can be had, before any video is read: named Keras
        weights ("imagenet") are downloaded now, and `WeightsUnavailableError` says what to pass
        instead where that fails (no internet)."""
        backbone = self.part("backbone")
        if isinstance(backbone.weights, str) and backbone.weights_file() is None and not backbone.fine_tuned_:
            backbone.model  # noqa: B018  (builds the model: the download happens here)

    def extract_features(self, inputs: Sequence[str | os.PathLike], verbose: int = 1,
                         description: str = "extracting features") -> list[FaceFeatures]:
        """The face features of each input (a video or an image), in order: what `fit`,
        `evaluate` and `evaluation.cross_validate` train and score on. Read through the cache
        (look-ups and writes batched), so nothing is decoded, detected or embedded twice;
        `verbose` 1 shows a progress bar labelled `description`."""
        self.check_weights()
        extracted = self.extractor.extract_many(inputs)
        return [feats for feats, _ in progress(extracted, verbose, description, total=len(inputs))]

    def _set_fitted(self, head: Head, n_features_in: int, fingerprint: str, history: Any = None,
                    inputs_without_face: int | None = None, decision: Decision | None = None,
                    crossfit: dict | None = None) -> None:
        """The fitted state, set by `fit`, `fine_tune` and `load` alike."""
        self.head_ = head
        self.decision_ = decision
        self.crossfit_ = crossfit or {}
        self.n_features_in_ = n_features_in
        self.fingerprint_ = fingerprint
        self.history_ = history
        self.inputs_without_face_ = inputs_without_face

    # --- training ----------------------------------------------------------------------
    def fit(self, dataset_dir: str | os.PathLike, validation_split: float = 0.0, seed: int = 0,
            verbose: int = 1, callbacks: list | None = None, cross_fit: int | None = None,
            calibration: str | tuple[str, ...] | None = None, threshold: str | float | None = None,
            max_abstain: float | None = None, head_candidates: list | None = None,
            restore_best_weights: bool = True):
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

        `validation_split` > 0 holds out that share of the videos by group (both classes on each
        side; with too little data for that, a warning and no validation), for the validation
        curves in the returned Keras `History` of the head (the final head then trains on the
        rest); the head then ends with the weights of its epoch of lowest validation loss
        (`restore_best_weights`, as Keras' ``EarlyStopping(restore_best_weights=True)``; no early
        stop), and a validation video AUC at chance or worse is warned about. `verbose`: 0 silent;
        1 a progress bar of the extraction and a one-line summary (videos trained on, the
        cross-fitted out-of-fold video ROC AUC and threshold, the validation's video ROC AUC and
        accuracy); 2 also Keras' line per epoch. Both go to standard error. Fitted state: `head_`,
        `decision_` (`calibration.Decision`, or None), `crossfit_` (what cross-fitting measured).
        """
        preset = self.__dict__.get("preset_")
        recipe = dict(preset.train_kwargs) if preset is not None and preset.train == "fit" else {}
        cross_fit = recipe.get("cross_fit", 5) if cross_fit is None else cross_fit
        calibration = recipe.get("calibration", "platt") if calibration is None else calibration
        threshold = recipe.get("threshold", "balanced") if threshold is None else threshold
        max_abstain = recipe.get("max_abstain", 0.0) if max_abstain is None else max_abstain
        head_candidates = recipe.get("head_candidates") if head_candidates is None else head_candidates
        configs = [heads.serialize(heads.create(c)) for c in head_candidates] if head_candidates \
            else [heads.serialize(self.part("head"))]
        samples = discover(dataset_dir)
        feats = self.extract_features([s.path for s in samples], verbose)
        kept = [(s, f) for s, f in zip(samples, feats) if len(f)]
        if {s.label for s, _ in kept} != {0, 1}:
            raise DatasetError(f"{dataset_dir}: after face detection, only one class has faces "
                               f"({len(samples) - len(kept)} of {len(samples)} inputs had none); check the inputs.")
        x, y, rows = _stack(kept)
        video_labels = np.array([s.label for s, _ in kept])
        video_groups = np.array([s.group for s, _ in kept])
        train_v, val_v = np.arange(len(kept)), np.arange(0)
        if validation_split:
            try:
                train_v, val_v = grouped_split(video_labels, video_groups, validation_split, seed)
            except DatasetError as e:
                warnings.warn(f"{dataset_dir}: training on all {len(kept)} videos, without validation: {e}",
                              UserWarning, stacklevel=2)
        train_rows, val_rows = np.flatnonzero(np.isin(rows, train_v)), np.flatnonzero(np.isin(rows, val_v))
        validation = (x[val_rows], y[val_rows]) if len(val_rows) else None
        decision, measured = None, {"folds": 0}
        k = usable_folds(video_labels[train_v], video_groups[train_v], cross_fit) if cross_fit else 0
        if k >= 2:
            table = FeatureTable(x, rows, video_labels, video_groups.astype(str), np.array([s.method for s, _ in kept]))
            fits = [crossfit(c, table, train_v, self.part("aggregator"), k, seed, registry=heads) for c in configs]
            aucs = [_oof_measures(video_labels[train_v], f.scores, None)["oof_video_auc"] for f in fits]
            chosen = int(np.argmax(aucs))  # the first of equals
            configs, cf = [configs[chosen]], fits[chosen]
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
        callbacks = list(callbacks or [])
        best = None
        if validation is not None and restore_best_weights and not any(
                type(c).__name__ == "EarlyStopping" for c in callbacks):
            import keras

            best = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1 << 30, restore_best_weights=True)
            callbacks.append(best)
        with contextlib.redirect_stdout(sys.stderr):  # Keras prints its epoch lines on standard output
            history = head.fit(x[train_rows], y[train_rows], validation_data=validation, verbose=2 * (verbose > 1),
                               callbacks=callbacks, videos=rows[train_rows])
        self._set_fitted(head, int(x.shape[1]), self.extractor.fingerprint, history, len(samples) - len(kept),
                         decision, measured)
        scores = None
        if len(val_v):
            p = head.predict(x[val_rows], videos=rows[val_rows])
            p_videos = np.array([self.part("aggregator")(p[rows[val_rows] == v]) for v in val_v])
            if decision is not None:
                p_videos = decision.calibrator(p_videos)
            scores = binary_metrics(video_labels[val_v], p_videos, self.operating_threshold)
            if scores["roc_auc"] <= 0.5:
                warnings.warn(f"{dataset_dir}: on the {len(val_v)} validation videos (groups not trained on) the "
                              f"video ROC AUC is {scores['roc_auc']:.3f}, at chance or worse: this detector does not "
                              "tell these fakes apart; do not trust its verdicts", UserWarning, stacklevel=2)
        if verbose:
            summary = f"fit: trained on {len(train_v)} videos ({len(train_rows)} face frames)"
            if decision is not None:
                summary += (f"; cross-fitted over {k} grouped folds: out-of-fold video ROC AUC "
                            f"{measured['oof_video_auc']:.3f}, threshold {decision.threshold:.3f}")
            if scores is not None:
                summary += (f"; validated on {len(val_v)} videos of groups not trained on: "
                            f"video ROC AUC {scores['roc_auc']:.3f}, accuracy {scores['accuracy']:.3f}")
                if best is not None and best.best_weights is not None:
                    summary += f"; kept epoch {best.best_epoch + 1} of {len(history.epoch)} (lowest validation loss)"
            elif decision is None:
                summary += ", without validation"
            if self.inputs_without_face_:
                summary += f"; {self.inputs_without_face_} of {len(samples)} inputs had no face"
            print(summary, file=sys.stderr)
        return history

    def fine_tune(self, dataset_dir: str | os.PathLike | list[Sample], **kwargs: Any):
        """Train the backbone (all of it, or its top `trainable_blocks` blocks) and the head end to
        end on the cached face crops of `dataset_dir`, with augmentation, a class-balanced loss
        and early stopping on a grouped validation split; see `deepfake_detect.fine_tuning.fine_tune`
        for the arguments (a preset's recipe gives the defaults). The backbone's fingerprint
        changes with its weights, and `save` stores them. Returns the Keras `History`."""
        backbone = self.part("backbone")
        if backbone.fine_tuned_:
            raise ValueError("this detector's backbone is fine-tuned already; build a fresh detector to fine-tune again")
        self.check_weights()  # before any video is read
        preset = getattr(self, "preset_", None)
        defaults = dict(preset.train_kwargs) if preset is not None and preset.train == "fine_tune" else {}
        tuned = fine_tuning.fine_tune(self.extractor, self.part("head"), dataset_dir, **{**defaults, **kwargs})
        backbone.set_fine_tuned(tuned.backbone_weights)
        self.__dict__.pop("_extractor", None)  # its fingerprints name the weights the backbone had
        self._set_fitted(tuned.head, backbone.feature_dim, self.extractor.fingerprint, tuned.history,
                         tuned.inputs_without_face)  # no calibration: one fitted on another head would not apply
        return tuned.history

    def _check_fitted(self) -> Head:
        head = self.__dict__.get("head_")
        if head is None:
            raise NotFittedError("this DeepfakeDetector is not fitted yet: call fit(dataset_dir) or DeepfakeDetector.load(path)")
        return head

    # --- prediction --------------------------------------------------------------------
    def predict_video(self, path: str | os.PathLike, strict: bool = False,
                      decode_timeout: float | None = None, threshold: float | None = None,
                      inconclusive: tuple[float, float] | None = None) -> VideoPrediction:
        """The verdict on one video (or image). Without a face the detector abstains
        (label "unknown"), or raises `NoFaceFoundError` when `strict`.

        `threshold` and `inconclusive` (a band (low, high) of p(fake) called "inconclusive")
        replace the detector's own for this call (see `verdict.operating_point`).

        `decode_timeout` bounds the seconds spent decoding the file (default
        `video.DEFAULT_DECODE_TIMEOUT`, 600; `math.inf`: no limit): a damaged or hostile file
        raises `VideoReadError` instead of hanging. `fit` and `evaluate` take the limit of a
        surrounding ``with video.decode_limits(decode_timeout=...):`` block."""
        head = self._check_fitted()
        point = operating_point(self, threshold, inconclusive)
        self.check_weights()
        with decode_limits(decode_timeout):
            feats, timings = self.extractor.extract(path, store_crops=False)  # a verdict keeps no face images
        return self._verdict(str(path), feats, head, timings, strict, point)

    def predict_videos(self, paths: Sequence[str | os.PathLike], decode_timeout: float | None = None,
                       threshold: float | None = None, inconclusive: tuple[float, float] | None = None
                       ) -> Iterator[VideoPrediction | VideoReadError]:
        """The verdict on each of `paths`, in order, as `predict_video` gives it, as a stream:
        the next input is decoded while the current one is detected and embedded. An input
        that cannot be read yields its `VideoReadError` (the others go on); one without a face
        is "unknown". Arguments as `predict_video`'s."""
        head = self._check_fitted()
        point = operating_point(self, threshold, inconclusive)
        self.check_weights()
        paths = list(paths)
        with decode_limits(decode_timeout):
            for i, feats, timings, error in self.extractor.extract_each(paths, store_crops=False):
                if error is None:
                    yield self._verdict(str(paths[i]), feats, head, timings, False, point)
                elif isinstance(error, VideoReadError):
                    yield error
                else:
                    raise error

    def predict_image(self, path: str | os.PathLike, strict: bool = False) -> VideoPrediction:
        """The verdict on one image file (a single frame)."""
        if not is_image(path):
            raise ValueError(f"{path}: not an image file name (.jpg, .png, .bmp, ...); use predict_video for videos")
        return self.predict_video(path, strict=strict)

    def verdict(self, path: str | os.PathLike, features: FaceFeatures, timings: dict[str, float] | None = None,
                strict: bool = False) -> VideoPrediction:
        """The verdict on an input from its features (as `extract_features` gives them): what
        `predict_video` returns for it, without extracting again (bulk runs extract first)."""
        return self._verdict(str(path), features, self._check_fitted(), dict(timings or {}), strict)

    def score_frames(self, features: np.ndarray, videos: np.ndarray | None = None) -> np.ndarray:
        """p(fake) of each row of `features` (frames of one video, or of the videos `videos` names):
        the head's score, calibrated where `fit` calibrated it, as `predict_video` gives frames."""
        return self._calibrated(self._check_fitted().predict(features, videos=videos))

    def _calibrated(self, p: Any) -> Any:
        """Scores (a number or an array) through the calibration `fit` chose; unchanged without one."""
        decision = self.__dict__.get("decision_")
        return decision.calibrator(p) if decision is not None else p

    def _verdict(self, path: str, feats: FaceFeatures, head: Head, timings: dict[str, float],
                 strict: bool, point=None) -> VideoPrediction:
        point = point or operating_point(self)
        if not len(feats):
            reason = f"no face found in {feats.frames_sampled} sampled frame(s)"
            if strict:
                raise NoFaceFoundError(f"{path}: {reason}")
            return VideoPrediction(path, "unknown", None, (), feats.frames_sampled, point.threshold, timings, reason,
                                   point.inconclusive)
        t = time.perf_counter()
        p_frames = head.predict(feats.features)
        # calibrated: the video's aggregated score, and each frame's by the same map
        p, p_frames = float(self._calibrated(self.part("aggregator")(p_frames))), self._calibrated(p_frames)
        timings = {**timings, "classify": time.perf_counter() - t}
        frames = tuple(
            FramePrediction(int(i), float(s), float(pf), FaceBox(*map(float, b), score=float(sc)))
            for i, s, pf, b, sc in zip(feats.frame_indices, feats.times, p_frames, feats.boxes, feats.scores)
        )
        label = decide(float(p), point.threshold, point.inconclusive)
        return VideoPrediction(path, label, float(p), frames, feats.frames_sampled, point.threshold, timings,
                               None, point.inconclusive)

    @property
    def operating_threshold(self) -> float:
        """The threshold on p(fake) that verdicts use (see `verdict.operating_point`): the one `fit`
        chose on cross-fitted scores, or the constructor's `threshold`."""
        return operating_point(self).threshold

    def evaluate(self, dataset_dir: str | os.PathLike | list[Sample], verbose: int = 1,
                 bootstrap: int = 1000) -> EvaluationReport:
        """Frame- and video-level metrics on a labelled dataset (a folder, or discovered
        samples); `fake` is the positive class. Metrics per manipulation method where the
        dataset names methods, and a bootstrap 95% interval (`bootstrap` resamples of the
        groups) of the video ROC AUC. Inputs without a face are counted, not scored. A dataset of one
        class (only real videos of another source, say) gives accuracy and the share called fake.
        ECE and Brier score say how calibrated p(fake) is."""
        head = self._check_fitted()
        samples = discover(dataset_dir, allow_one_class=True) if isinstance(dataset_dir, (str, os.PathLike)) \
            else list(dataset_dir)
        feats = self.extract_features([s.path for s in samples], verbose, "evaluating")
        point = operating_point(self)
        preds = [self._verdict(s.path, f, head, {}, False, point) for s, f in zip(samples, feats)]
        return summarize(samples, preds, "held-out dataset", point.threshold, bootstrap=bootstrap)

    # --- persistence -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted detector to one zip file (config, metadata, head weights and a
        fine-tuned backbone's weights; no pickle: see `deepfake_detect.saving`).

        The file is written under a temporary name and renamed, so a crash never leaves a
        half-written model and an existing file stays intact until the new one is complete.
        """
        head = self._check_fitted()
        import keras

        backbone = self.part("backbone")
        metadata = {
            "format_version": FORMAT_VERSION, "library_version": __version__, "keras_version": keras.__version__,
            "backend": keras.backend.backend(), "n_features_in": self.n_features_in_,
            "backbone_fingerprint": backbone.fingerprint, "extractor_fingerprint": self.fingerprint_,
        }
        decision = self.__dict__.get("decision_")
        if decision is not None:  # calibration, threshold and band: plain numbers (older readers ignore them)
            metadata["decision"] = decision.to_dict()
            metadata["crossfit"] = self.__dict__.get("crossfit_") or {}
        weights_file = backbone.weights_file()
        if weights_file is not None and not backbone.fine_tuned_:  # found again by content where the file moves
            metadata["backbone_weights"] = {"file": os.path.basename(weights_file),
                                            "sha256": backbone.weights_digest().removeprefix("sha256:")}
        tuned = backbone.fine_tuned_weights()  # fine-tuned weights are the model's own: stored with it
        if tuned is not None:
            metadata["fine_tuned_backbone"] = True
        config = {**self.get_config(), "head": heads.serialize(head)}  # the head fit trained (or chose)
        return write_model(path, SavedModel(config, metadata, head.model_.get_weights(), tuned))

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
        with ModelReader(path) as reader:  # checked and planned: sizes and shapes before anything is built
            detector = cls._load(path, reader, backbone_weights, allow_fingerprint_mismatch, cache)
        return detector

    @classmethod
    def _load(cls, path: str | os.PathLike, reader: ModelReader, backbone_weights: str | None,
              allow_fingerprint_mismatch: bool, cache: Any) -> DeepfakeDetector:
        config, metadata = dict(reader.config), reader.metadata
        if backbone_weights is not None:
            config["backbone"] = with_weights(config["backbone"], backbone_weights)
        elif not reader.has(BACKBONE_WEIGHTS):  # a fine-tuned backbone carries its own weights
            config["backbone"] = _found_weights(path, config["backbone"], metadata.get("backbone_weights"))
        try:
            detector = cls.from_config({**config, "cache": cache})
            parts = {kind: detector.part(kind) for kind in (*_PARTS, "crop")}
            for kind, part in parts.items():
                unsafe = [k for k in part.unpickled_files if getattr(part, k, None) is not None]
                if unsafe:
                    raise IncompatibleModelError(
                        f"{path}: its {kind} sets {', '.join(unsafe)}, files that would be unpickled (which can run "
                        f"code); a saved model may not name them. Load it without, then set them in code if trusted.")
        except KeyError as e:
            raise IncompatibleModelError(f"{path}: {str(e.args[0]).rstrip('.')}. Install the plug-in package that "
                                         "provides it.") from e
        except (TypeError, ValueError, FileNotFoundError) as e:
            raise IncompatibleModelError(f"{path}: its config cannot be used here: {e}") from e
        if reader.has(BACKBONE_WEIGHTS):
            with _building(path, BACKBONE_WEIGHTS, "its fine-tuned backbone"):
                expected = [tuple(w.shape) for w in parts["backbone"].fresh_model().weights]
                parts["backbone"].set_fine_tuned(reader.arrays(BACKBONE_WEIGHTS, expected, "the declared backbone"))
        try:
            with _building(path, "config.json", "its backbone's fingerprint"):
                found = parts["backbone"].fingerprint
        except (ValueError, OSError) as e:  # a weights file that is not one (a FIFO, a device, far too large)
            raise IncompatibleModelError(f"{path}: its backbone's weights cannot be used here: {e}") from e
        if metadata["backbone_fingerprint"] not in (found, parts["backbone"].legacy_fingerprint()):
            message = (f"{path}: the backbone here computes other features than the one the model was trained on "
                       f"(fingerprint {found}, saved {metadata['backbone_fingerprint']}). Give the weights file it was "
                       f"trained with{_sha_hint(metadata)}: --weights FILE (Python: backbone_weights=FILE); or, to use "
                       "it anyway, --allow-fingerprint-mismatch (Python: allow_fingerprint_mismatch=True).")
            if not allow_fingerprint_mismatch:
                raise IncompatibleModelError(message)
            warnings.warn(message, stacklevel=3)
        head: Head = parts["head"]
        n_features = int(metadata["n_features_in"])
        weights = reader.arrays(HEAD_WEIGHTS, reader.head_shapes, "the declared head")  # shapes checked first
        try:
            with _building(path, HEAD_WEIGHTS, "its head"):
                head.model_ = head.build_model(n_features)
        except (TypeError, ValueError) as e:
            raise IncompatibleModelError(f"{path}: its head cannot be built here: {e}") from e
        expected = [tuple(w.shape) for w in head.model_.weights]
        if [tuple(w.shape) for w in weights] != expected:
            raise IncompatibleModelError(f"{path}: head weights of shapes {[w.shape for w in weights]} do not match "
                                         f"the declared head ({expected})")
        head.model_.set_weights(weights)
        crossfit = metadata.get("crossfit") if isinstance(metadata.get("crossfit"), dict) else {}
        detector._set_fitted(head, n_features, metadata["extractor_fingerprint"],
                             decision=_read_decision(path, metadata), crossfit=crossfit)  # None: saved before calibration
        return detector

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in (*_PARTS, "crop", "threshold", "inconclusive"))
        return f"DeepfakeDetector({args})"


_PARAMS = tuple(inspect.signature(DeepfakeDetector.__init__).parameters)[1:]


def _snapshot(spec: Any) -> Any:
    """What a part was built from, kept to tell a later change: a copy of a dict (it may be
    changed in place), the spec itself otherwise."""
    return copy.deepcopy(spec) if isinstance(spec, dict) else spec


def _same(snapshot: Any, spec: Any) -> bool:
    """Whether `spec` still describes what was built from `snapshot`: equal names, dicts and
    paths; the very same instance."""
    if snapshot is spec:
        return True
    return isinstance(spec, (str, dict, os.PathLike)) and type(snapshot) is type(spec) and snapshot == spec


def _read_decision(path: str | os.PathLike, metadata: dict):
    """The saved calibration, threshold and band (`calibration.Decision`), or None where the file
    predates them; `IncompatibleModelError` where they are malformed."""
    if "decision" not in metadata:
        return None
    try:
        return Decision.from_dict(metadata["decision"])
    except (ValueError, TypeError, AttributeError) as e:
        raise IncompatibleModelError(f"{path}: metadata.json's decision is malformed: {e}") from e


def _oof_measures(labels: np.ndarray, scores: np.ndarray, decision) -> dict[str, float]:
    """Out-of-fold AUC and calibration of the cross-fitted scores, before and after calibration."""
    if decision is None:
        return {"oof_video_auc": binary_metrics(labels, scores)["roc_auc"]}
    p = decision.calibrator(scores)
    return {"oof_video_auc": binary_metrics(labels, scores)["roc_auc"],
            "oof_ece_raw": expected_calibration_error(labels, scores), "oof_ece": expected_calibration_error(labels, p),
            "oof_brier_raw": brier_score(labels, scores), "oof_brier": brier_score(labels, p)}


@contextlib.contextmanager
def _building(path: str | os.PathLike, member: str, what: str):
    """Running out of memory (host or device) while building `what` of a loaded model is an
    `IncompatibleModelError` naming the file and `member`, not an abort."""
    try:
        yield
    except MemoryError as e:
        raise IncompatibleModelError(f"{path}: out of memory building {what} ({member}); refused") from e
    except RuntimeError as e:  # JAX/XLA: RESOURCE_EXHAUSTED and the like
        if "RESOURCE_EXHAUSTED" in str(e) or "out of memory" in str(e).lower():
            raise IncompatibleModelError(f"{path}: out of memory building {what} ({member}); refused: "
                                         f"{str(e).splitlines()[0][:200]}") from e
        raise


def _stack(kept: list[tuple[Sample, FaceFeatures]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame rows of all inputs: features, labels, and the input (row of `kept`) each came from."""
    x = np.concatenate([f.features for _, f in kept]).astype(np.float32)
    y = np.concatenate([np.full(len(f), s.label, dtype=np.int32) for s, f in kept])
    rows = np.concatenate([np.full(len(f), i) for i, (_, f) in enumerate(kept)])
    return x, y, rows



def _sha_hint(metadata: dict) -> str:
    saved = metadata.get("backbone_weights")
    if isinstance(saved, dict) and isinstance(saved.get("sha256"), str):
        return f" ({saved.get('file', 'a file')}, sha256 {saved['sha256'][:16]}...)"
    return ""


def _found_weights(model_path: str | os.PathLike, backbone: Any, saved: Any) -> Any:
    """The backbone spec of a model being loaded, its weights file found again where it moved.

    A model keeps its weights file's path and sha256. Where the path is not a file here (the
    model or the file moved, or a relative path meant another folder), the file is looked for by
    content: the bundled copy when its sha256 matches, then the same name beside the model
    file. Nothing found: `WeightsUnavailableError` naming ``--weights``."""
    from .digests import file_sha256
    from .pretrained import BUNDLED, bundled_sha256

    weights = backbone.get("weights") if isinstance(backbone, dict) else None
    if not isinstance(weights, str) or weights in ("imagenet", BUNDLED) or os.path.exists(weights):
        return backbone  # there (a FIFO, a device or a huge file there is refused by the backbone's checks)
    sha = saved.get("sha256") if isinstance(saved, dict) else None
    if isinstance(sha, str):
        if sha == bundled_sha256():
            return with_weights(backbone, BUNDLED)
        for candidate in (Path(model_path).parent / weights, Path(model_path).parent / Path(weights).name):
            if candidate.is_file() and candidate.stat().st_size <= backbone_budget() and file_sha256(candidate) == sha:
                return with_weights(backbone, str(candidate.resolve()))
    raise WeightsUnavailableError(
        f"{model_path}: its backbone weights file {weights!r} is not found here (moved?). Pass a copy with --weights "
        f"FILE (Python: backbone_weights=FILE){_sha_hint({'backbone_weights': saved})}.")
