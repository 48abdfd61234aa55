"""Where the library keeps files of its own on this machine."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/deepfake_detect`, else `~/.cache/deepfake_detect`: the folder of the
    feature cache and of the JAX compilation cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deepfake_detect"


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_bytes(text: str | int) -> int:
    """A size in bytes from an integer or a text such as "2GB", "500 MB", "1.5GiB" (kB, MB, GB and
    TB are powers of 1000; KiB, MiB, GiB and TiB of 1024). `ValueError` for anything else."""
    if isinstance(text, bool):
        raise ValueError(f"not a size in bytes: {text!r}")
    if isinstance(text, int):
        value, unit = float(text), ""
    else:
        stripped = str(text).strip().lower().replace("_", "")
        number = stripped.rstrip("abcdefghijklmnopqrstuvwxyz ")
        unit = stripped[len(number):].strip()
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"not a size in bytes: {text!r} (say e.g. 2000000000, 500MB or 2GiB)") from None
    if unit not in _UNITS or not value >= 0 or value == float("inf"):
        raise ValueError(f"not a size in bytes: {text!r} (say e.g. 2000000000, 500MB or 2GiB)")
    return int(value * _UNITS[unit])


def env_bytes(name: str, default: int) -> int:
    """The size in bytes that environment variable `name` gives (see `parse_bytes`), else `default`."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return parse_bytes(text)
    except ValueError as e:
        raise ValueError(f"environment variable {name}: {e}") from None
