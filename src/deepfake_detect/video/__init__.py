"""The decode stage: opening videos and images, probing them, and reading their sampled frames.

Frames come out as RGB uint8 arrays of shape (H, W, 3), whatever the file holds
(grayscale, 16-bit, alpha, CMYK). Only the sampled frames are decoded to pixels: the others
are `grab()`-ed and skipped, and frames stream one at a time, so memory does not grow with
the length of a video.

Hostile or broken files are bounded in time and memory:

- a header's frame count is not trusted where it cannot be true (more frames than the file
  has bytes): the frames are counted instead, at most `frame_budget` of them;
- reading stops at the end of the stream, whatever the header promised, with a
  `VideoWarning` that says how much was read (a truncated file, or a header that lies);
- `decode_timeout` bounds the seconds spent decoding one file (opening, counting, grabbing
  and decoding frames; not the time the caller spends between frames): past it,
  `VideoReadError`. It is checked between frames, so one frame that blocks inside FFmpeg
  is not interrupted. The limits default to `DEFAULT_DECODE_TIMEOUT` and
  `DEFAULT_FRAME_BUDGET`; a `decode_limits(...)` block changes the defaults for the code it
  runs (as `DeepfakeDetector.predict_video(decode_timeout=...)` does), so a limit reaches
  the reader without every layer in between passing it on.

Two readers decode, one module each: OpenCV (`.opencv`, `cv2.VideoCapture`) and PyAV
(`.pyav`, `av`). They give the same indices and the same pixels; PyAV can seek to a keyframe
where sampled frames lie further apart than keyframes, and skips the non-reference frames of
H.264 between sampled ones, where OpenCV decodes every frame in between. ``reader="auto"``
(the default; `sample_frames(reader=...)` or `decode_limits(reader=...)`) reads a file with
PyAV where that is planned to save decoding, and with OpenCV otherwise, where `av` is not
importable, or where PyAV fails on the file (silently: a debug log on the
"deepfake_detect.video.auto" logger says why); `.auto` decides. `.prefetch` decodes in a
background thread, ahead of the caller.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..digests import not_a_regular_file
from ..errors import VideoReadError
from ..sampling import FrameSampler
from . import auto, opencv, pyav
from .notices import VideoWarning, warn
from .opencv import to_rgb8

__all__ = ["DEFAULT_DECODE_TIMEOUT", "DEFAULT_FRAME_BUDGET", "DEFAULT_READER", "IMAGE_EXTENSIONS", "READERS",
           "VIDEO_EXTENSIONS", "VideoInfo", "VideoWarning", "decode_limits", "is_image", "is_media", "probe",
           "read_image", "sample_frames", "to_rgb8"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})

#: Seconds of decoding one file may take by default (10 minutes: a 10-minute 1080p video
#: decodes in a fraction of that on one CPU core); `math.inf`: no limit.
DEFAULT_DECODE_TIMEOUT = 600.0
#: Frames counted at most where a header gives no usable frame count (over 2 h at 25 fps).
DEFAULT_FRAME_BUDGET = 200_000
#: Frames read past the last sampled one to check that the stream ends where its header says.
_TAIL_CHECK = 32

#: The readers `sample_frames` accepts: "auto" chooses one per file.
READERS = ("auto", "pyav", "opencv")
#: The reader used by default: "auto" (PyAV where it saves decoding, else OpenCV), "pyav" or "opencv".
DEFAULT_READER = "auto"

_limits: ContextVar[tuple[float, int]] = ContextVar("deepfake_detect_decode_limits",
                                                    default=(DEFAULT_DECODE_TIMEOUT, DEFAULT_FRAME_BUDGET))
_reader: ContextVar[str] = ContextVar("deepfake_detect_reader", default=DEFAULT_READER)


def _resolve(decode_timeout: float | None, frame_budget: int | None) -> tuple[float, int]:
    """The limits to use: the given ones, checked, with None standing for the current default."""
    default_timeout, default_budget = _limits.get()
    timeout = default_timeout if decode_timeout is None else decode_timeout
    budget = default_budget if frame_budget is None else frame_budget
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:  # NaN fails too
        raise ValueError(f"decode_timeout must be a positive number of seconds (math.inf: no limit); "
                         f"got {decode_timeout!r}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"frame_budget must be a positive integer; got {frame_budget!r}")
    return float(timeout), int(budget)


def _resolve_reader(reader: object) -> str:
    """The reader to use: the given one, checked, or the current default for None."""
    if reader is None:
        return _reader.get()
    if not isinstance(reader, str) or reader not in READERS:
        raise ValueError(f"reader must be one of {', '.join(repr(r) for r in READERS)}; got {reader!r}")
    return reader


@contextmanager
def decode_limits(decode_timeout: float | None = None, frame_budget: int | None = None, reader: str | None = None):
    """Within the block, `sample_frames` calls that leave a limit or the reader unset (None)
    use these; one left None here keeps its current value. Context-local: other threads keep
    theirs. `reader`: "auto", "pyav" or "opencv" (see `sample_frames`)."""
    limits, chosen = _resolve(decode_timeout, frame_budget), _resolve_reader(reader)
    token, reader_token = _limits.set(limits), _reader.set(chosen)
    try:
        yield
    finally:
        _reader.reset(reader_token)
        _limits.reset(token)


class _Clock:
    """Seconds spent decoding one file, against its `decode_timeout`."""

    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout, self.spent = path, timeout, 0.0
        self.since = time.monotonic()

    def check(self) -> None:
        if self.spent + time.monotonic() - self.since > self.timeout:
            raise VideoReadError(
                f"{self.path}: decoding took longer than decode_timeout={self.timeout:g} s; the file is damaged "
                "or pathological (or very long: raise decode_timeout, e.g. predict_video(..., decode_timeout=...)).")

    def pause(self) -> None:  # the caller has the frame: its time is not decoding time
        self.spent += time.monotonic() - self.since

    def resume(self) -> None:
        self.since = time.monotonic()


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_media(path: str | os.PathLike) -> bool:
    suffix = Path(path).suffix.lower()
    return suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoInfo:
    """What a container says about itself (`fps` may be 0 or NaN in broken headers)."""

    path: str
    frame_count: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps and math.isfinite(self.fps) and self.fps > 0 else float("nan")


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise VideoReadError(f"{p}: no such file. Check the path.")
    if p.is_dir():
        raise VideoReadError(f"{p} is a directory, not a video or image file. Give a file, or use a dataset method "
                             "for folders.")
    why = not_a_regular_file(p)  # a FIFO or a device could block the reader or never end
    if why is not None:
        raise VideoReadError(f"{why}: give a video or image file.")
    if p.stat().st_size == 0:
        raise VideoReadError(f"{p} is empty (0 bytes): the file was not written completely. Copy or download it again.")
    return p


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3); `VideoReadError` if it cannot be decoded."""
    p = _check_file(path)
    data = np.fromfile(p, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None or image.size == 0:
        raise VideoReadError(f"{p}: not a readable image (corrupt, or not the format its name says).")
    return to_rgb8(image)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Frame count, fps and size of a video or image, as the file's header says (a count or
    size the header does not give, or gives as NaN or negative, is 0)."""
    p = _check_file(path)
    if is_image(p):
        h, w = read_image(p).shape[:2]
        return VideoInfo(str(p), 1, 0.0, w, h)
    return VideoInfo(str(p), *opencv.header(p))


def sample_frames(
    path: str | os.PathLike, sampler: FrameSampler, frame_budget: int | None = None,
    decode_timeout: float | None = None, reader: str | None = None,
) -> tuple[VideoInfo, Iterator[tuple[int, np.ndarray]]]:
    """The header info and an iterator of ``(frame_index, rgb_frame)`` for the sampled frames.

    A header with no frame count, or one that cannot be true (more frames than the file has
    bytes), is checked by counting, up to `frame_budget` frames. The iterator stops at the
    end of the stream where the header promised more frames (with a `VideoWarning`), and
    raises `VideoReadError` if no frame at all can be decoded, or once decoding this file has
    taken `decode_timeout` seconds (`math.inf`: no limit). Limits left None take the current
    defaults (see `decode_limits`).

    `reader` decodes: "opencv", "pyav" (PyAV, seeking to keyframes where that saves decoding and
    skipping H.264's non-reference frames;
    `VideoReadError` where PyAV cannot read the file) or "auto" (the default: PyAV where its
    plan decodes markedly fewer frames than OpenCV would, else OpenCV; OpenCV too where `av`
    is not importable or PyAV fails on the file). Either gives the same indices and pixels.
    The header info and the frame count are OpenCV's in every case.
    """
    timeout, budget = _resolve(decode_timeout, frame_budget)
    chosen = _resolve_reader(reader)
    clock = _Clock(Path(path), timeout)
    info = probe(path)
    p = Path(info.path)
    if is_image(p):
        return info, iter([(0, read_image(p))])
    frame_count = info.frame_count
    header_count = frame_count
    if frame_count <= 0 or frame_count > p.stat().st_size:  # every frame takes at least a byte
        frame_count = opencv.count_frames(p, budget, clock)
        info = VideoInfo(info.path, frame_count, info.fps, info.width, info.height)
        if frame_count == 0:
            raise VideoReadError(f"{p}: the video holds no decodable frame (empty or corrupt stream).")
        if frame_count == budget:
            warn(f"{p}: its header gives {'no' if header_count <= 0 else 'an impossible'} frame count "
                 f"({header_count}); only its first {budget} frames (frame_budget) were counted and sampled.",
                 stacklevel=2)
    wanted = sampler.indices(frame_count, info.fps)
    if chosen == "pyav" and pyav.import_av() is None:
        raise ImportError("reader='pyav' needs PyAV 15 or newer: pip install 'av>=15' (or use reader='auto' or "
                          "'opencv')")
    if chosen == "auto" and frame_count != header_count:  # a header that lies: the counting reader reads it
        chosen = "opencv"
    clock.pause()
    return info, _iter_indices(p, wanted, lambda count: sampler.indices(count, info.fps), frame_count, clock,
                               check_tail=frame_count == header_count, reader=chosen, size=(info.width, info.height))


def _iter_indices(path: Path, wanted: np.ndarray, sample, frame_count: int, clock: _Clock,
                  check_tail: bool, reader: str = "opencv",
                  size: tuple[int, int] = (0, 0)) -> Iterator[tuple[int, np.ndarray]]:
    """The `wanted` frames of the `frame_count` the header says. Where the stream ends before
    the first of them, the frames it holds are sampled instead (`sample(count)`: indices)."""
    clock.resume()
    read = auto.reader_for(path, reader, wanted, frame_count, clock, check_tail, size, _TAIL_CHECK)
    position, yielded, ended, longer = yield from read(path, wanted, frame_count, clock, check_tail)
    if yielded == 0 and len(wanted) and ended and position > 0:
        warn(f"{path}: the stream ends after {position} frame(s), before the first sampled one, but its header "
             f"says {frame_count}: the file is truncated or its header lies; sampling the {position} frame(s) it "
             "holds instead.", stacklevel=2)
        frame_count, wanted = position, sample(position)
        read = auto.reader_for(path, "opencv" if reader == "auto" else reader, wanted, frame_count, clock, False, size,
                               _TAIL_CHECK)
        position, yielded, ended, longer = yield from read(path, wanted, frame_count, clock, False)
    if yielded == 0 and len(wanted):
        raise VideoReadError(f"{path}: no sampled frame could be decoded: the stream ends after {position} frame(s) "
                             f"though its header says {frame_count} (corrupt or truncated video).")
    if ended:
        warn(f"{path}: the stream ends after {position} frame(s) but its header says {frame_count}: the file is "
             f"truncated or its header lies; {yielded} of the {len(wanted)} sampled frames were read.", stacklevel=2)
    elif longer:
        warn(f"{path}: the stream goes on past the {frame_count} frame(s) its header says: the header lies, and "
             "frames after that were not sampled.", stacklevel=2)
