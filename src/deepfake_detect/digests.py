"""Content digests: what a file or a configuration is, in a short stable string.

Every fingerprint and cache key of the library is built from these two functions, so a key
computed in one module is the same key in another.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 (hex) of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_digest(config: Any) -> str:
    """16 hex digits identifying a JSON-able config (keys sorted, other objects by `str`)."""
    payload = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
