"""Splits grouped by source video: no group on both sides, classes balanced where possible."""

from __future__ import annotations

import numpy as np

from ..errors import DatasetError


def grouped_split(labels: np.ndarray, groups: np.ndarray, test_size: float = 0.15,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with every group on one side only, stratified by label.

    Uses scikit-learn's `StratifiedGroupKFold` with about ``1 / test_size`` folds and
    keeps one fold as the test side.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels, groups = np.asarray(labels), np.asarray(groups)
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1); got {test_size!r}")
    n_groups = len(np.unique(groups))
    n_splits = min(max(2, round(1.0 / test_size)), n_groups)
    if n_splits < 2:
        raise DatasetError(f"a grouped split needs at least 2 groups (videos); got {n_groups}")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return train, test
