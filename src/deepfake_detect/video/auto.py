"""Which reader reads a file: the one asked for, or for ``reader="auto"`` the one planned to decode less.

Decoding one frame costs PyAV what it costs OpenCV (the same FFmpeg decoders): reading every
frame gains nothing. So "auto" picks PyAV only where seeking to keyframes and skipping
non-reference frames (H.264) save decoding (see `AUTO_MIN_PIXELS`, `AUTO_MAX_RATIO`,
`AUTO_MIN_SAVED`), and falls back to OpenCV where `av` is not importable or PyAV fails on the
file, silently (a debug log says why).

Both readers give the same frames bit for bit, whichever FFmpeg releases the `av` and
`opencv-python` wheels carry: on av 18.1 (libavcodec 62) against OpenCV 5.1 (libavcodec 63),
every frame of 70 FaceForensics++ c23 videos and of generated mp4v, MJPG and H.264 clips
(upright and rotated) was identical (`benchmarks/reader_pixels.py`; tests/test_readers.py
checks it on the builds installed). So "auto" asks nothing of the FFmpeg versions.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import VideoReadError
from . import opencv, pyav

log = logging.getLogger(__name__)

#: "auto" tries PyAV only where OpenCV would decode at least this many pixels (frames x width
#: x height: about 100 frames of 640x480); below, PyAV's opening and scanning cost more than
#: seeking can save.
AUTO_MIN_PIXELS = 30_000_000
#: "auto" reads with PyAV where its planned decoding (seeks counted as `pyav.SEEK_COST` frames,
#: skipped frames not at all) is at most this fraction of OpenCV's, and saves at least
#: `AUTO_MIN_SAVED` frames.
AUTO_MAX_RATIO = 0.75
AUTO_MIN_SAVED = 16


def opencv_work(wanted: list[int], frame_count: int, check_tail: bool, tail: int) -> int:
    """Frames OpenCV's reader decodes for `wanted` (it grabs every frame up to the last one)."""
    if not wanted:
        return 0
    end = wanted[-1] + 1
    if check_tail and frame_count - end <= tail:
        end = frame_count + 1
    return end


def choose(path: Path, wanted: np.ndarray, frame_count: int, width: int, height: int, clock, check_tail: bool,
           tail: int) -> pyav.Source | None:
    """An opened and scanned PyAV `Source` where reading with it is planned to decode enough
    fewer frames than OpenCV would, else None (read with OpenCV). Never raises for PyAV's sake
    (only `VideoReadError` of the clock)."""
    if len(wanted) == 0:
        return None
    wanted_list = wanted[:4096].tolist()  # a lying header may ask for millions: the first ones decide
    cv_work = opencv_work(wanted_list, frame_count, check_tail, tail)
    if cv_work * max(width, 1) * max(height, 1) < AUTO_MIN_PIXELS:
        log.debug("%s: reading with OpenCV: too little to decode for PyAV to pay (%d frames)", path, cv_work)
        return None
    if wanted_list[-1] + 1 == len(wanted_list):
        log.debug("%s: reading with OpenCV: every frame up to the last sampled one is sampled", path)
        return None
    av = pyav.import_av()
    if av is None:
        return None
    source = None
    try:
        source = pyav.Source(av, path, clock)
        table = source.scan(int(wanted_list[-1]))
        if table is None:
            why = "its packets lack distinct timestamps"
        elif table.complete and len(table) != frame_count:
            why = f"its demuxer finds {len(table)} frames where its header says {frame_count}"
        else:
            av_work = pyav.planned_work(wanted_list, table.keys, table.work) + (cv_work - wanted_list[-1] - 1)
            how = "seeking and skipping" if table.skips else "seeking"
            if av_work <= AUTO_MAX_RATIO * cv_work and cv_work - av_work >= AUTO_MIN_SAVED:
                log.debug("%s: reading with PyAV, %s: about %d frames to decode instead of %d",
                          path, how, av_work, cv_work)
                return source
            why = f"{how} saves too little ({av_work} frames to decode instead of {cv_work})"
    except VideoReadError:
        if source is not None:
            source.close()
        raise
    except Exception as e:  # PyAVFailed, or anything else PyAV raises: OpenCV reads it
        why = f"PyAV fails on it ({e})"
    if source is not None:
        source.close()
    log.debug("%s: reading with OpenCV: %s", path, why)
    return None


def reader_for(path: Path, reader: str, wanted: np.ndarray, frame_count: int, clock, check_tail: bool,
               size: tuple[int, int], tail: int) -> Callable:
    """The function that reads `wanted` from `path` with `reader` ("auto": chosen now, see
    `choose`), called as ``read(path, wanted, frame_count, clock, check_tail)``: a generator of
    ``(index, rgb)`` that returns (position, frames yielded, ended early, goes on past the end)."""
    if reader == "opencv":
        return functools.partial(opencv.read, tail=tail)
    if reader == "pyav":
        return functools.partial(_pyav, av=pyav.import_av(), tail=tail)
    source = choose(path, wanted, frame_count, size[0], size[1], clock, check_tail, tail)
    if source is None:
        return functools.partial(opencv.read, tail=tail)
    return functools.partial(_auto, source=source, tail=tail)


def _pyav(path, wanted, frame_count, clock, check_tail, av, tail):
    try:
        source = pyav.Source(av, path, clock)
        return (yield from pyav.read(source, wanted, frame_count, clock, check_tail, tail, pyav.Progress()))
    except pyav.PyAVFailed as e:
        raise VideoReadError(f"{e} (corrupt, truncated, or not a video despite its name; "
                             "reader='auto' or 'opencv' reads with OpenCV).") from e.cause


def _auto(path, wanted, frame_count, clock, check_tail, source, tail):
    """PyAV from `source`; where it fails midway, OpenCV reads on from the frame after the last one given."""
    progress = pyav.Progress()
    try:
        return (yield from pyav.read(source, wanted, frame_count, clock, check_tail, tail, progress))
    except pyav.PyAVFailed as e:
        log.debug("%s: PyAV failed after %d frame(s) (%s): OpenCV reads on", path, progress.yielded, e)
    position, yielded, ended, longer = yield from opencv.read(path, wanted[wanted > progress.last], frame_count,
                                                              clock, check_tail, tail)
    return position, progress.yielded + yielded, ended, longer
