"""Honest evaluation: cross-validation with videos (and people) kept on one side of every split.

`cross_validate` takes a detector (or its arguments), extracts the features of every input
once (`DeepfakeDetector.extract_features`, through its cache), then trains a fresh head per
fold on them. Protocols:

- ``"grouped"`` (default): k folds of whole groups (a video, its fakes, its person),
  stratified by label (scikit-learn's `StratifiedGroupKFold`);
- ``"leaky"``: the seed paper's protocol, k folds of frames drawn at random, so frames of
  one video are trained on and tested; reproducible, and labelled leaky in the report;
- ``"official"``: FaceForensics++'s official split (train on ``train``, test on ``test``),
  from ``splits/{train,val,test}.json``.

Video probabilities aggregate each video's tested frame probabilities with the detector's
aggregator. Pooled metrics use every input's out-of-fold prediction; `folds` keep each fold's.

Import it as ``from deepfake_detect.evaluation import cross_validate``: the module is named
for what it holds, and ``evaluate`` stays the name of the detector's method and CLI command.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .aggregation import Aggregator, aggregators
from .calibration import Decision, brier_score, choose_decision, choose_threshold, expected_calibration_error
from .crossfit import FeatureTable
from .datasets import Sample, discover, grouped_folds, official_split
from .detector import DeepfakeDetector
from .errors import DatasetError
from .heads import heads
from .metrics import MIN_BOOTSTRAP_GROUPS, bootstrap_ci, summarize
from .results import EvaluationReport, FaceBox, FaceFeatures, FramePrediction, VideoPrediction

PROTOCOLS = {
    "grouped": "grouped {k}-fold cross-validation (no group on both sides of a fold)",
    "leaky": "LEAKY frame-level random {k}-fold split (the seed paper's protocol: frames of one video are "
             "trained on and tested)",
    "official": "FaceForensics++ official split (train → test)",
}


def cross_validate(detector: DeepfakeDetector | dict[str, Any], dataset_dir: str | os.PathLike | Sequence[Sample],
                   folds: int = 5, protocol: str = "grouped", seed: int = 0,
                   splits_dir: str | os.PathLike | None = None, bootstrap: int = 1000,
                   verbose: int = 1) -> EvaluationReport:
    """Cross-validated metrics of `detector`'s configuration.

    Args:
        detector: a `DeepfakeDetector` (fitted or not: its parts are used, its fitted head is
            not), or its arguments (as `get_config()` gives them).
        dataset_dir: a dataset folder, or samples already discovered.
        folds: how many folds (not used by "official").
        protocol: "grouped", "leaky" or "official" (see the module's doc).
        seed: seeds the fold assignment and the bootstrap.
        splits_dir: the folder of FaceForensics++'s train/val/test.json, for "official".
        bootstrap: resamples for the video AUC's confidence interval (0: none).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}; got {protocol!r}")
    if protocol == "official" and splits_dir is None:
        raise ValueError("protocol='official' needs splits_dir, the folder of FaceForensics++'s train/val/test.json")
    samples = discover(dataset_dir) if isinstance(dataset_dir, (str, os.PathLike)) else list(dataset_dir)
    if not isinstance(detector, DeepfakeDetector):
        detector = DeepfakeDetector(**detector)
    feats = detector.extract_features([s.path for s in samples], verbose)
    kept = [i for i, f in enumerate(feats) if len(f)]
    if {samples[i].label for i in kept} != {0, 1}:
        raise DatasetError(f"after face detection only one class has faces ({len(samples) - len(kept)} of "
                           f"{len(samples)} inputs had none); nothing to cross-validate")
    x = np.concatenate([feats[i].features for i in kept]).astype(np.float32)
    y = np.concatenate([np.full(len(feats[i]), samples[i].label, dtype=np.int32) for i in kept])
    owner = np.concatenate([np.full(len(feats[i]), i) for i in kept])  # the sample each frame row came from
    rows, evaluated = _frame_splits(protocol, samples, kept, owner, y, folds, seed, splits_dir)

    head_config = detector.get_config()["head"]
    aggregator, threshold = detector.part("aggregator"), detector.threshold
    p = np.full(len(y), np.nan)
    reports = []
    for k, (train, test) in enumerate(rows, start=1):
        head = heads.create(head_config)  # a fresh head per fold
        head.fit(x[train], y[train], videos=owner[train])
        p[test] = head.predict(x[test], videos=owner[test])
        tested = np.zeros(len(y), bool)
        tested[test] = True
        fold = _predictions(samples, feats, owner, tested, p, aggregator, threshold)
        reports.append(summarize([samples[i] for i in fold], list(fold.values()), f"fold {k} of {len(rows)}",
                                 threshold, bootstrap=0))
    pooled = _predictions(samples, feats, owner, np.isfinite(p), p, aggregator, threshold)
    for i in set(evaluated.tolist()) - set(kept):  # no face: the detector abstains, as `evaluate` reports it
        pooled[i] = _abstain(samples[i], feats[i], threshold)
    order = sorted(pooled)
    return summarize([samples[i] for i in order], [pooled[i] for i in order],
                     PROTOCOLS[protocol].format(k=len(rows)), threshold, folds=tuple(reports) if len(rows) > 1 else (),
                     leaky=protocol == "leaky", bootstrap=bootstrap, seed=seed)


def _frame_splits(protocol: str, samples: Sequence[Sample], kept: list[int], owner: np.ndarray, y: np.ndarray,
                  folds: int, seed: int, splits_dir) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The (train, test) frame rows of each fold, and the samples evaluated (tested, or tested but faceless)."""
    everyone = np.arange(len(samples))
    if protocol == "leaky":
        from sklearn.model_selection import StratifiedKFold

        return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)), everyone
    if protocol == "official":
        sides = official_split(samples, splits_dir)
        train, test = (np.intersect1d(sides[name], kept) for name in ("train", "test"))
        if not len(train) or not len(test):
            raise DatasetError(f"{splits_dir}: the official split leaves no input with a face in train or in test")
        return [(np.flatnonzero(np.isin(owner, train)), np.flatnonzero(np.isin(owner, test)))], sides["test"]
    kept_index = np.asarray(kept)
    video_folds = grouped_folds([samples[i].label for i in kept], [samples[i].group for i in kept], folds, seed)
    return [(np.flatnonzero(np.isin(owner, kept_index[train])), np.flatnonzero(np.isin(owner, kept_index[test])))
            for train, test in video_folds], everyone


def _predictions(samples: Sequence[Sample], feats: Sequence[FaceFeatures], owner: np.ndarray, tested: np.ndarray,
                 p: np.ndarray, aggregator: Aggregator, threshold: float) -> dict[int, VideoPrediction]:
    """Each sample with tested frames → its prediction from those frames, by sample index."""
    out = {}
    for i in np.unique(owner[tested]).tolist():
        rows = np.flatnonzero(owner == i)  # this sample's frame rows, in order
        mine = tested[rows]
        f = feats[i]
        frames = tuple(FramePrediction(int(f.frame_indices[j]), float(f.times[j]), float(p[rows[j]]),
                                       FaceBox(*map(float, f.boxes[j]), score=float(f.scores[j])))
                       for j in np.flatnonzero(mine))
        p_video = aggregator(np.array([fp.p_fake for fp in frames]))
        out[i] = VideoPrediction(samples[i].path, "fake" if p_video >= threshold else "real", p_video, frames,
                                 f.frames_sampled, threshold)
    return out


def _abstain(sample: Sample, feats: FaceFeatures, threshold: float) -> VideoPrediction:
    return VideoPrediction(sample.path, "unknown", None, (), feats.frames_sampled, threshold,
                           reason=f"no face found in {feats.frames_sampled} sampled frame(s)")


# --- nested cross-validation -----------------------------------------------------------------------------------------
#
# Every choice a recipe makes (which candidate, i.e. features and head hyper-parameters; the calibration; the
# threshold; the inconclusive band) is made on out-of-fold scores of inner grouped folds drawn from the outer
# training videos only; the outer test videos are scored once, by the final model, after every choice is made.


@dataclass(frozen=True)
class Candidate:
    """One configuration a recipe may choose: a detector config (its extractor gives the features,
    its head and aggregator the scores)."""

    name: str
    config: dict


@dataclass(frozen=True)
class Recipe:
    """How a detector is chosen and trained on a set of labelled videos.

    Args:
        name: for the reports.
        candidates: the configurations to choose among (by inner grouped cross-validation AUC;
            the first wins a tie). One candidate: nothing to choose but the calibration,
            threshold and band.
        calibration: "platt", "isotonic", "none", or several (chosen by cross-validated log loss).
        threshold: the threshold rule on calibrated p(fake) (`calibration.choose_threshold`).
        max_abstain: the most held-out videos the inconclusive band may hold (0: no band).
        final: "refit" (the chosen head trained again on every training video) or "bag" (the
            inner folds' heads averaged).
        inner_folds: inner grouped folds (fewer where the groups or classes allow fewer).
    """

    name: str
    candidates: tuple[Candidate, ...]
    calibration: str | tuple[str, ...] = "platt"
    threshold: str | float = "balanced"
    max_abstain: float = 0.2
    final: str = "refit"
    inner_folds: int = 3

    @classmethod
    def single(cls, name: str, config: dict, **kwargs) -> Recipe:
        return cls(name, (Candidate(name, config),), **kwargs)


def _extractor_key(config: dict) -> str:
    import json

    return json.dumps({k: v for k, v in config.items() if k not in ("head", "aggregator", "threshold", "cache")},
                      sort_keys=True, default=str)


class FeatureBank:
    """The features of every video under every candidate's extractor, each extracted once (through
    the cache) and reused by every fold of every protocol. Videos without a face under some
    candidate are left out (counted in `without_face`); `add` extracts more candidates' features
    (and may leave out more videos)."""

    def __init__(self, candidates: Sequence[Candidate], samples: Sequence[Sample], verbose: int = 0):
        self.samples = list(samples)
        self.verbose = verbose
        self._all: dict[str, list[FaceFeatures]] = {}
        self.add(candidates)

    def add(self, candidates: Sequence[Candidate]) -> FeatureBank:
        from .detector import DeepfakeDetector

        new = False
        for c in candidates:
            key = _extractor_key(c.config)
            if key not in self._all:
                self._all[key] = DeepfakeDetector(**c.config).extract_features([s.path for s in self.samples],
                                                                                self.verbose)
                new = True
        if new or not hasattr(self, "kept"):
            self._index()
        return self

    def _index(self) -> None:
        self.kept = np.array([i for i in range(len(self.samples)) if all(len(f[i]) for f in self._all.values())], int)
        self.without_face = len(self.samples) - len(self.kept)
        kept = [self.samples[i] for i in self.kept]
        self.labels = np.array([s.label for s in kept], np.int64)
        self.groups = np.array([s.group for s in kept]).astype(str)
        self.methods = np.array([s.method for s in kept]).astype(str)
        self.feats = {key: [f[i] for i in self.kept] for key, f in self._all.items()}
        self.tables = {key: FeatureTable.build(f, self.labels, self.groups, self.methods)
                       for key, f in self.feats.items()}

    def table(self, candidate: Candidate) -> FeatureTable:
        return self.tables[_extractor_key(candidate.config)]

    def features(self, candidate: Candidate) -> list[FaceFeatures]:
        return self.feats[_extractor_key(candidate.config)]


@dataclass
class FittedRecipe:
    """What a recipe chose and trained on some videos: the candidate, its inner AUCs, the
    `Decision` (calibration, threshold, band), the threshold every rule would have chosen, the
    final head(s) (refit and bagged)."""

    candidate: Candidate
    inner_auc: dict[str, float]
    decision: Decision
    thresholds: dict[str, float]
    refit: Any
    bag: list
    inner_videos: np.ndarray


THRESHOLD_RULES = ("balanced", 0.5, "fpr<=0.05", "fpr<=0.1", "fpr<=0.2")


def fit_recipe(recipe: Recipe, bank: FeatureBank, train: np.ndarray, seed: int = 0,
               refit: bool = True) -> FittedRecipe:
    """Choose and train `recipe` on the videos `train` (rows of `bank`) alone."""
    from sklearn.metrics import roc_auc_score

    from .crossfit import crossfit, train_head, usable_folds

    train = np.asarray(train, int)
    k = usable_folds(bank.labels[train], bank.groups[train], recipe.inner_folds)
    if k < 2:
        raise DatasetError(f"{len(train)} training videos in {len(np.unique(bank.groups[train]))} groups: too few "
                           "for inner folds")
    fits, auc = {}, {}
    for c in recipe.candidates:
        aggregator = aggregators.create(c.config.get("aggregator", "mean"))
        fits[c.name] = crossfit(c.config["head"], bank.table(c), train, aggregator, k, seed, registry=heads)
        auc[c.name] = float(roc_auc_score(bank.labels[train], fits[c.name].scores))
    best = max(recipe.candidates, key=lambda c: auc[c.name])  # max keeps the first of equals
    oof = fits[best.name].scores
    decision = choose_decision(oof, bank.labels[train], bank.groups[train], recipe.calibration, recipe.threshold,
                               recipe.max_abstain, seed=seed)
    p = decision.calibrator(oof)
    thresholds = {str(rule): choose_threshold(p, bank.labels[train], rule) for rule in THRESHOLD_RULES}
    final = train_head(best.config["head"], bank.table(best), train, heads) if refit else None
    return FittedRecipe(best, auc, decision, thresholds, final, fits[best.name].heads, train)


@dataclass
class NestedReport:
    """A nested cross-validation's result.

    `report` is the `EvaluationReport` of the recipe as `fit` would deliver it (calibrated p(fake),
    threshold and band chosen inside); `variants` holds, for the same outer folds, the metrics of
    the alternatives measured on the way (``refit`` and ``bag`` final models, ``uncalibrated``
    scores, each threshold rule); `choices` what each outer fold chose."""

    recipe: str
    protocol: str
    report: EvaluationReport
    variants: dict[str, dict[str, Any]]
    choices: list[dict[str, Any]]

    def summary(self) -> str:
        lines = [f"recipe {self.recipe}: {self.protocol}", self.report.summary()]
        for name, v in self.variants.items():
            lines.append(f"  {name}: " + ", ".join(f"{k} {_fmt(x)}" for k, x in v.items()))
        for c in self.choices:
            lines.append(f"  outer fold {c['fold']}: chose {c['candidate']} (inner AUC {c['inner_auc']:.3f}), "
                         f"{c['calibration']} calibration, threshold {c['threshold']:.3f}, band "
                         f"[{c['band'][0]:.3f}, {c['band'][1]:.3f})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "protocol": self.protocol, "report": self.report.to_dict(),
                "variants": json_ready(self.variants), "choices": json_ready(self.choices)}


def _fmt(x) -> str:
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else \
        (f"{x:.3f}" if isinstance(x, float) else str(x))


def json_ready(value):
    """`value` with numpy numbers as Python numbers, tuples and arrays as lists, NaN and inf as None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def run_outer(recipe: Recipe, bank: FeatureBank, splits: Sequence[tuple[np.ndarray, np.ndarray]], protocol: str,
              seed: int = 0, bootstrap: int = 1000, verbose: int = 0) -> NestedReport:
    """Fit `recipe` on each split's training videos (every choice inside) and score its test videos;
    the pooled report over all test videos (each tested once)."""
    from .crossfit import score_videos

    tested, raw, raw_bag, cal, cal_bag, frames, decisions, rules = {}, {}, {}, {}, {}, {}, {}, {}
    choices, chosen = [], {}
    for k, (train, test) in enumerate(splits, start=1):
        fitted = fit_recipe(recipe, bank, train, seed, refit=True)
        table, agg = bank.table(fitted.candidate), aggregators.create(fitted.candidate.config.get("aggregator", "mean"))
        r, fr = score_videos(fitted.refit, table, test, agg)
        b, _ = score_videos(fitted.bag, table, test, agg)
        d = fitted.decision
        final_r, final_b = (r, b) if recipe.final == "refit" else (b, r)
        for j, v in enumerate(np.asarray(test, int)):
            if v in tested:
                raise ValueError(f"video {v} is tested by two outer splits")
            tested[v] = k
            raw[v], raw_bag[v] = final_r[j], final_b[j]
            cal[v], cal_bag[v] = float(d.calibrator(final_r[j])), float(d.calibrator(final_b[j]))
            decisions[v] = d
            rules[v] = fitted.thresholds
            chosen[v] = fitted.candidate
        frames.update(_frame_scores(table, test, fr if recipe.final == "refit" else
                                    score_videos(fitted.bag, table, test, agg)[1]))
        name = fitted.candidate.name
        choices.append({"fold": k, "candidate": name, "inner_auc": fitted.inner_auc[name],
                        "inner_aucs": fitted.inner_auc, "calibration": d.calibrator.method,
                        "threshold": d.threshold, "band": list(d.band), "thresholds": fitted.thresholds,
                        "n_train": len(train), "n_test": len(test),
                        "tested": [bank.samples[bank.kept[v]].path for v in np.asarray(test, int)]})
        if verbose:
            print(f"    {recipe.name} fold {k}/{len(splits)}: chose {fitted.candidate.name} "
                  f"(inner AUC {fitted.inner_auc[fitted.candidate.name]:.3f}), threshold {d.threshold:.3f}", flush=True)
    order = sorted(tested)
    samples = [bank.samples[bank.kept[v]] for v in order]
    y = bank.labels[order]
    groups = bank.groups[order]
    preds = []
    for v in order:
        d = decisions[v]
        fp = d.calibrator(frames[v])
        feats = bank.features(chosen[v])[v]
        preds.append(VideoPrediction(
            bank.samples[bank.kept[v]].path, d.label(cal[v]), cal[v],
            tuple(FramePrediction(int(feats.frame_indices[j]), float(feats.times[j]), float(fp[j]),
                                  FaceBox(*map(float, feats.boxes[j]), score=float(feats.scores[j])))
                  for j in range(len(fp))), feats.frames_sampled, d.threshold))
    # one threshold for the pooled report's metrics is not defined (each fold chose its own): the
    # accuracy-type metrics use each video's own verdict, computed here and patched in
    report = summarize(samples, preds, protocol, [decisions[v].threshold for v in order], bootstrap=bootstrap,
                       seed=seed, min_groups=MIN_BOOTSTRAP_GROUPS)
    variants = {}
    for name, scores, calibrated in (("refit" if recipe.final == "refit" else "bag", raw, cal),
                                     ("bag" if recipe.final == "refit" else "refit", raw_bag, cal_bag)):
        s_raw = np.array([scores[v] for v in order])
        s_cal = np.array([calibrated[v] for v in order])
        variants[name] = _variant_metrics(y, s_cal, groups, np.array([decisions[v].threshold for v in order]),
                                          bootstrap, seed)
        if name == ("refit" if recipe.final == "refit" else "bag"):
            variants["uncalibrated"] = _variant_metrics(y, s_raw, groups, np.full(len(order), 0.5), bootstrap, seed)
            for rule in THRESHOLD_RULES:
                variants[f"threshold {rule}"] = _variant_metrics(
                    y, s_cal, groups, np.array([rules[v][str(rule)] for v in order]), 0, seed)
    return NestedReport(recipe.name, protocol, report, variants, choices)


def _frame_scores(table: FeatureTable, videos: np.ndarray, frame_p: np.ndarray) -> dict[int, np.ndarray]:
    owner = table.owner[table.rows(videos)]
    return {int(v): frame_p[owner == v] for v in np.asarray(videos, int)}


def _variant_metrics(y: np.ndarray, p: np.ndarray, groups: np.ndarray, thresholds: np.ndarray, bootstrap: int,
                     seed: int) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    called = p >= thresholds
    both = len(np.unique(y)) == 2
    out = {"roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
           "auc_ci": list(bootstrap_ci(y, p, groups, n=bootstrap, seed=seed, min_groups=MIN_BOOTSTRAP_GROUPS))
           if bootstrap else None,
           "accuracy": float((called == (y == 1)).mean()),
           "false_positive_rate": float(called[y == 0].mean()) if (y == 0).any() else float("nan"),
           "true_positive_rate": float(called[y == 1].mean()) if (y == 1).any() else float("nan"),
           "ece": expected_calibration_error(y, p), "brier": brier_score(y, p)}
    return out


def grouped_outer_splits(bank: FeatureBank, videos: np.ndarray, folds: int, seed: int):
    videos = np.asarray(videos, int)
    return [(videos[a], videos[b]) for a, b in grouped_folds(bank.labels[videos], bank.groups[videos], folds, seed)]


def nested_cross_validate(recipe: Recipe, dataset_dir: str | os.PathLike | Sequence[Sample] | FeatureBank,
                          outer_folds: int = 5, seed: int = 0, extra_real: str | os.PathLike | Sequence[Sample] | None
                          = None, bootstrap: int = 1000, verbose: int = 0) -> NestedReport:
    """Nested grouped cross-validation of `recipe`: outer grouped folds estimate, and every choice
    (candidate, calibration, threshold, band) is made by inner grouped folds of the outer training
    part only. `extra_real` (videos of other sources, all real) joins every training part and is
    never tested (the cross-source rate is `cross_source_false_positives`'s)."""
    bank, dev, extra = _bank(recipe, dataset_dir, extra_real, verbose)
    splits = [(np.concatenate([train, extra]), test)
              for train, test in grouped_outer_splits(bank, dev, outer_folds, seed)]
    protocol = (f"nested grouped {outer_folds}-fold cross-validation (inner {recipe.inner_folds} folds choose "
                f"candidate, calibration, threshold)" + (f"; {len(extra)} extra real videos in every training part"
                                                         if len(extra) else ""))
    return run_outer(recipe, bank, splits, protocol, seed, bootstrap, verbose)


def leave_one_method_out(recipe: Recipe, dataset_dir, outer_folds: int = 5, seed: int = 0, extra_real=None,
                         bootstrap: int = 1000, verbose: int = 0) -> dict[str, NestedReport]:
    """For each manipulation method M: nested cross-validation trained without any of M's fakes and
    tested on M's fakes with the held-out real videos (outer grouped folds as
    `nested_cross_validate`'s, so a person is never on both sides)."""
    bank, dev, extra = _bank(recipe, dataset_dir, extra_real, verbose)
    out = {}
    for method in sorted({m for m, y in zip(bank.methods[dev], bank.labels[dev]) if y == 1 and m}):
        splits = []
        for train, test in grouped_outer_splits(bank, dev, outer_folds, seed):
            is_m = (bank.labels == 1) & (bank.methods == method)
            splits.append((np.concatenate([train[~is_m[train]], extra]),
                           test[(bank.labels[test] == 0) | is_m[test]]))
        out[method] = run_outer(recipe, bank, splits, f"leave-one-method-out: trained without {method}, tested on "
                                f"{method} and held-out real videos (nested grouped {outer_folds}-fold)",
                                seed, bootstrap, verbose)
    return out


def cross_source_false_positives(recipe: Recipe, dataset_dir, other_real, folds: int = 5, seed: int = 0,
                                 train_on_other: bool = False, bootstrap: int = 1000,
                                 verbose: int = 0) -> NestedReport:
    """The rate of real videos from another source (`other_real`) called fake by `recipe` trained
    on `dataset_dir` (every choice inside, as `nested_cross_validate`). With `train_on_other`,
    grouped folds over `other_real`'s groups: each fold trains on all of `dataset_dir` plus the other
    folds' real videos, and is tested on its own, so no tested video (or person) was trained on."""
    bank, dev, extra = _bank(recipe, dataset_dir, other_real, verbose)
    if train_on_other:
        groups = bank.groups[extra]
        k = min(folds, len(np.unique(groups)))
        from sklearn.model_selection import GroupKFold

        splits = [(np.concatenate([dev, extra[a]]), extra[b])
                  for a, b in GroupKFold(k, shuffle=True, random_state=seed).split(extra, groups=groups)]
        protocol = (f"cross-source false positives: trained on the dev set + other-source real videos of "
                    f"{k - 1} of {k} group folds, tested on the rest")
    else:
        splits = [(dev, extra)]
        protocol = "cross-source false positives: trained on the dev set, tested on other-source real videos"
    return run_outer(recipe, bank, splits, protocol, seed, bootstrap, verbose)


def _bank(recipe: Recipe, dataset_dir, extra, verbose: int) -> tuple[FeatureBank, np.ndarray, np.ndarray]:
    """The feature bank of the dataset's videos and `extra` (real, other sources) together, with the
    rows of each (no extra rows where `extra` is None)."""
    if isinstance(dataset_dir, FeatureBank):
        bank = dataset_dir.add(recipe.candidates)
    else:
        bank = feature_bank(recipe.candidates, dataset_dir, extra, verbose)
    is_extra = np.array([s.group.startswith("other:") for s in (bank.samples[i] for i in bank.kept)], bool)
    return bank, np.flatnonzero(~is_extra), np.flatnonzero(is_extra) if extra is not None else np.zeros(0, int)


def feature_bank(candidates: Sequence[Candidate], dataset_dir, other_real=None, verbose: int = 0) -> FeatureBank:
    """One `FeatureBank` of a dataset and (optionally) other-source real videos, to share between
    protocols: pass it as their `dataset_dir`, with ``extra_real=True`` / ``other_real=True`` to use
    the other-source videos it holds."""
    samples = discover(dataset_dir) if isinstance(dataset_dir, (str, os.PathLike)) else list(dataset_dir)
    more = [] if other_real is None else (discover(other_real, allow_one_class=True)
                                          if isinstance(other_real, (str, os.PathLike)) else list(other_real))
    more = [Sample(s.path, s.label, f"other:{s.group}", s.method or "other") for s in more]
    return FeatureBank(candidates, samples + more, verbose)
