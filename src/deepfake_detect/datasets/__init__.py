"""Datasets: discovering labelled inputs, grouped splits, and generated test data."""

from .discovery import Sample, discover
from .splits import grouped_split

__all__ = ["Sample", "discover", "grouped_split"]
