"""Binary detection metrics (fake = positive class), from scikit-learn, and the report they make."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .datasets import Sample
from .errors import DatasetError
from .results import EvaluationReport, VideoPrediction


def equal_error_rate(y_true: np.ndarray, p_fake: np.ndarray) -> float:
    """The error rate where false-positive and false-negative rates are equal (ROC-based)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y_true, p_fake)
    fnr = 1.0 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2.0)


def binary_metrics(y_true: np.ndarray, p_fake: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, balanced accuracy, ROC AUC, average precision, EER, log loss, the confusion counts,
    the rate called fake, and how calibrated `p_fake` is (Brier score, expected calibration error).

    Metrics that need both classes (AUC, AP, EER, balanced accuracy) are NaN where only one is
    present; the others, the rate called fake among them, are defined for one class too.
    """
    from sklearn import metrics

    from .calibration import brier_score, expected_calibration_error

    y = np.asarray(y_true, dtype=np.int64)
    p = np.clip(np.asarray(p_fake, dtype=np.float64), 1e-7, 1 - 1e-7)
    pred = (p >= threshold).astype(np.int64)
    tn, fp, fn, tp = metrics.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float(metrics.accuracy_score(y, pred)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y, pred)) if both else float("nan"),
        "roc_auc": float(metrics.roc_auc_score(y, p)) if both else float("nan"),
        "average_precision": float(metrics.average_precision_score(y, p)) if both else float("nan"),
        "eer": equal_error_rate(y, p) if both else float("nan"),
        "log_loss": float(metrics.log_loss(y, p, labels=[0, 1])),
        "tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp),
        "called_fake_rate": float(pred.mean()) if len(pred) else float("nan"),
        "brier": brier_score(y, p),
        "ece": expected_calibration_error(y, p),
    }


#: Fewer groups than this and a bootstrap over groups says little: `bootstrap_ci(min_groups=...)` gives NaN ("n/a").
MIN_BOOTSTRAP_GROUPS = 8


def bootstrap_ci(y_true: np.ndarray, p_fake: np.ndarray, groups: np.ndarray | None = None, n: int = 1000,
                 level: float = 0.95, seed: int = 0, statistic=None, min_groups: int = 1) -> tuple[float, float]:
    """A percentile bootstrap confidence interval of the ROC AUC (or of ``statistic(y, p)``).

    With `groups`, whole groups are resampled (a cluster bootstrap), since inputs of one
    group (one person's videos) are not independent. For the AUC, resamples with one class only
    are skipped; (NaN, NaN) where none has both classes, or where there are fewer than
    `min_groups` groups (too few for the interval to mean much: report it as n/a).
    """
    from sklearn.metrics import roc_auc_score

    y, p = np.asarray(y_true, dtype=np.int64), np.asarray(p_fake, dtype=np.float64)
    auc = statistic is None
    if n < 1 or (auc and len(np.unique(y)) < 2) or not len(y):
        return float("nan"), float("nan")
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    names, members = np.unique(groups, return_inverse=True)
    if len(names) < min_groups:
        return float("nan"), float("nan")
    rows = [np.flatnonzero(members == g) for g in range(len(names))]
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(n):
        pick = np.concatenate([rows[g] for g in rng.integers(0, len(rows), len(rows))])
        if not auc:
            scores.append(statistic(y[pick], p[pick]))
        elif len(np.unique(y[pick])) == 2:
            scores.append(roc_auc_score(y[pick], p[pick]))
    if not scores:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(scores, [alpha, 1.0 - alpha])
    return float(low), float(high)


#: The fewest groups (people) a bootstrap interval of the AUC is given for by default: with fewer,
#: resampling them says little about unseen people, and the interval would look more precise than it is.
MIN_CI_GROUPS = 5


def summarize(samples: Sequence[Sample], predictions: Sequence[VideoPrediction], protocol: str,
              threshold: float | Sequence[float],
              folds: tuple[EvaluationReport, ...] = (), leaky: bool = False, bootstrap: int = 1000,
              seed: int = 0, min_groups: int = MIN_CI_GROUPS) -> EvaluationReport:
    """The report on `predictions` of the labelled `samples` (aligned): metrics at video and
    frame level, per manipulation method, and bootstrap intervals by group (the video AUC's, and
    the rate called fake's). A dataset of one class only (all real, or all fake) is reported too:
    its rate called fake and accuracy, with AUC-like metrics NaN. Predictions labelled
    "inconclusive" count in `video["inconclusive_rate"]`; `video["decided_accuracy"]` is the
    accuracy of the others. Intervals need `min_groups` groups (NaN, "n/a: N groups", below). `threshold` may
    give each input its own (a nested cross-validation's folds each choose one)."""
    each = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (len(samples),))
    scored_at = [i for i, p in enumerate(predictions) if p.p_fake is not None]
    threshold = each[scored_at]
    scored = [(s, p) for s, p in zip(samples, predictions) if p.p_fake is not None]
    if not scored:
        raise DatasetError("no face found in any input; nothing to evaluate")
    y = np.array([s.label for s, _ in scored])
    p = np.array([pred.p_fake for _, pred in scored])
    frame_y = np.concatenate([np.full(pred.faces_found, s.label) for s, pred in scored])
    frame_p = np.concatenate([[f.p_fake for f in pred.frames] for _, pred in scored])
    methods = sorted({s.method for s, _ in scored if s.label == 1 and s.method})
    by_method = {}
    for method in methods:
        rows = np.array([s.label == 0 or s.method == method for s, _ in scored])
        by_method[method] = binary_metrics(y[rows], p[rows], threshold[rows])
    groups = np.array([s.group for s, _ in scored])
    video = binary_metrics(y, p, threshold)
    inconclusive = np.array([pred.label == "inconclusive" for _, pred in scored])
    decided = ~inconclusive
    video["inconclusive_rate"] = float(inconclusive.mean())
    right = (p >= threshold) == (y == 1)
    video["decided_accuracy"] = float(right[decided].mean()) if decided.any() else float("nan")
    called = (p >= threshold).astype(np.float64)
    rate_ci = bootstrap_ci(y, called, groups, n=bootstrap, seed=seed, min_groups=max(min_groups, 2),
                           statistic=lambda yy, cc: float(cc.mean()))
    n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
    video["false_positive_rate"] = video["fp"] / n_real if n_real else float("nan")
    video["true_positive_rate"] = video["tp"] / n_fake if n_fake else float("nan")
    frame_threshold = np.concatenate([np.full(pred.faces_found, t) for (_, pred), t in zip(scored, threshold)])
    return EvaluationReport(
        protocol=protocol,
        n_videos=len(samples),
        n_frames=len(frame_y),
        video=video,
        frame=binary_metrics(frame_y, frame_p, frame_threshold),
        videos_without_face=len(samples) - len(scored),
        predictions=tuple(predictions),
        labels=tuple(int(s.label) for s in samples),
        by_method=by_method,
        video_auc_ci=bootstrap_ci(y, p, groups, n=bootstrap, seed=seed, min_groups=min_groups),
        folds=folds,
        leaky=leaky,
        called_fake_rate_ci=rate_ci,
        n_groups=len(np.unique(groups)),
    )
