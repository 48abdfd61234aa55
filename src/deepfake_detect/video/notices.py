"""`VideoWarning`, and how the readers issue it: at once, or recorded for another thread to issue.

A reader running in a decoding thread (`video.prefetch`) must not show its warnings there:
the caller's `catch_warnings`, `pytest.warns` and `showwarning` are the caller thread's. So
within `recording()` (a context-local switch: other threads and contexts are untouched, and no
`warnings` state is patched) `warn` records each warning with its location instead, and the
caller issues it with `reissue`, under the filters in force there.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class VideoWarning(UserWarning):
    """A video was read, but not all of it as its header says (truncated, or a lying header)."""


_recorded: ContextVar[list[warnings.WarningMessage] | None] = ContextVar("deepfake_detect_video_warnings",
                                                                         default=None)
#: The `__warningregistry__` of re-issued warnings: "default" and "module" filters show one once.
_REGISTRY: dict = {}


def warn(message: str, stacklevel: int = 1) -> None:
    """A `VideoWarning` attributed to the caller `stacklevel` frames up, as `warnings.warn`
    attributes it; recorded instead where a `recording()` block is active in this context."""
    sink = _recorded.get()
    if sink is None:
        warnings.warn(message, VideoWarning, stacklevel=stacklevel + 1)
        return
    frame = sys._getframe(stacklevel)
    sink.append(warnings.WarningMessage(VideoWarning(message), VideoWarning, frame.f_code.co_filename,
                                        frame.f_lineno))


@contextmanager
def recording() -> Iterator[list[warnings.WarningMessage]]:
    """Within the block, `warn` appends to the list it yields (in this context only)."""
    sink: list[warnings.WarningMessage] = []
    token = _recorded.set(sink)
    try:
        yield sink
    finally:
        _recorded.reset(token)


def reissue(record: warnings.WarningMessage) -> None:
    """Issue a recorded warning in this thread, at its recorded location, under this thread's filters."""
    warnings.warn_explicit(record.message, record.category, record.filename, record.lineno, registry=_REGISTRY)
