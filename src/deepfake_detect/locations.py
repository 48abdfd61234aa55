"""Where the library keeps files of its own on this machine."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/deepfake_detect`, else `~/.cache/deepfake_detect`: the folder of the
    feature cache and of the JAX compilation cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deepfake_detect"
