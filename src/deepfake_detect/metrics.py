"""Binary detection metrics (fake = positive class), from scikit-learn."""

from __future__ import annotations

import numpy as np


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


def mean_std(runs: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Each metric's mean and standard deviation over runs (folds), NaN runs left out."""
    out = {}
    for key in runs[0] if runs else ():
        values = np.array([run[key] for run in runs], dtype=np.float64)
        values = values[np.isfinite(values)]
        out[key] = (float(values.mean()), float(values.std())) if values.size else (float("nan"), float("nan"))
    return out
