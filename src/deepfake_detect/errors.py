"""The library's exception types. Every message says what was wrong and what to do."""

from __future__ import annotations


class DeepfakeDetectError(Exception):
    """Base class of every error this library raises on purpose."""


class VideoReadError(DeepfakeDetectError, OSError):
    """A video or image is missing, unreadable, empty or corrupt."""


class NoFaceFoundError(DeepfakeDetectError):
    """No face was found where the caller asked to be strict about it."""


class DatasetError(DeepfakeDetectError, ValueError):
    """A dataset folder is empty, has one class only, or has an unknown layout."""


class NotFittedError(DeepfakeDetectError, AttributeError):
    """A detector was used for prediction before `fit` or `load`."""


class IncompatibleModelError(DeepfakeDetectError):
    """A saved model cannot be used with the parts installed here."""


class SaveError(DeepfakeDetectError, OSError):
    """A model could not be written (a full disk, no permission); the fitted detector is unchanged
    in memory, so it can be saved elsewhere. `errno` is that of the `OSError` behind it."""


class CacheError(DeepfakeDetectError):
    """The feature cache file is foreign, damaged, or cannot be read or written."""


class WeightsUnavailableError(DeepfakeDetectError):
    """A backbone's weights cannot be had here: no internet for Keras' download, or a file not found."""
