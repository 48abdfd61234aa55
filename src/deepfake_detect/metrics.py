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
    """Accuracy, balanced accuracy, ROC AUC, average precision, EER, log loss and the confusion counts.

    Metrics that need both classes (AUC, AP, EER) are NaN where only one is present.
    """
    from sklearn import metrics

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
    }
