"""Datasets: discovering labelled inputs, grouped splits, and generated test data.

The TFDS builders live in `deepfake_detect.datasets.tfds_builders` (they need the ``tfds`` extra).
"""

from .discovery import Sample, discover
from .splits import grouped_folds, grouped_split, official_split, train_test_split

__all__ = ["Sample", "discover", "grouped_folds", "grouped_split", "official_split", "train_test_split"]
