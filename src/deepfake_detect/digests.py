"""Content digests: what a file or a configuration is, in a short stable string.

Every fingerprint and cache key of the library is built from these two functions, so a key
computed in one module is the same key in another.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Any


def not_a_regular_file(path: str | os.PathLike, st: os.stat_result | None = None) -> str | None:
    """Why `path` cannot be read as a file's bytes (a folder, a FIFO, a device or a socket, which
    could block a reader forever or never end), or None for a regular file. Checked with
    `os.stat` before anything opens it; `OSError` where it cannot be stat'ed."""
    mode = (os.stat(path) if st is None else st).st_mode
    if stat.S_ISREG(mode):
        return None
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    return f"{path} is {kind}, not a regular file"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 (hex) of a file's bytes, read in chunks. `OSError` for anything but a regular
    file (a FIFO or a device could block or never end)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO opens without waiting for a writer
    with open(fd, "rb") as f:
        why = not_a_regular_file(path, os.fstat(fd))
        if why is not None:
            raise OSError(why)
        h = hashlib.sha256()
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_digest(config: Any) -> str:
    """16 hex digits identifying a JSON-able config (keys sorted, other objects by `str`)."""
    payload = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
