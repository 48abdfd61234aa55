"""Reading sampled frames with PyAV (FFmpeg's Python binding), and choosing a reader per file.

`deepfake_detect.video` reads with OpenCV or with PyAV; both give the same stream of
``(frame_index, rgb_frame)``: an index is a frame's position among the frames the decoder
presents (OpenCV's `grab()` count), and the pixels are OpenCV's (PyAV converts with the same
swscale call as OpenCV's FFmpeg backend, BGR24 bicubic, then `cv2.cvtColor`; rotation
metadata is applied as OpenCV applies it).

PyAV's gain is seeking. Its demuxer gives, without decoding, each packet's timestamp and
whether it is a keyframe (`scan`); where sampled frames lie further apart than keyframes do,
it seeks to the last clean keyframe before the next sampled frame instead of decoding every
frame in between (OpenCV's `grab()` decodes them all). A clean keyframe is one that starts a
closed group of pictures: every packet before it in decode order is presented before it, and
every one after it, after it (no open-GOP leading pictures), so decoding from it gives exactly
the frames from its index on. After a seek each frame's timestamp is checked against the
scanned table; any mismatch restarts the read from the beginning, decoding sequentially.

Decoding one frame costs PyAV what it costs OpenCV (the same FFmpeg decoders): reading
sequentially gains nothing, so `choose` picks PyAV only where seeking saves decoding (see
`AUTO_MIN_PIXELS`, `AUTO_MAX_RATIO`, `AUTO_MIN_SAVED`), and only where PyAV's FFmpeg is of the
same major releases as OpenCV's (`same_ffmpeg`), so that the pixels are the same; see
docs/concepts.md for the measurements.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import VideoReadError

log = logging.getLogger("deepfake_detect.video")

#: The readers `sample_frames` accepts: "auto" chooses one per file.
READERS = ("auto", "pyav", "opencv")

#: Decoding a frame after a seek costs about this many frames' decoding more than decoding on
#: (the decoder is flushed and its threads restarted; the keyframe itself costs more than most
#: frames; with B-frames and frame threads it decodes ahead). Measured: 2-8 frames' CPU time on
#: H.264 and MPEG-4 part 2 from 480p to 720p.
SEEK_COST = 6
#: Packets scanned past the last sampled frame: timestamps up to there are final (reordering
#: never reaches that far), so the table's presentation order holds for what is read.
_SCAN_MARGIN = 64
#: Consecutive packets that fail to decode before the stream counts as ended.
_MAX_BAD_PACKETS = 64

#: "auto" tries PyAV only where OpenCV would decode at least this many pixels (frames x width
#: x height: about 100 frames of 640x480); below, PyAV's opening and scanning cost more than
#: seeking can save.
AUTO_MIN_PIXELS = 30_000_000
#: "auto" reads with PyAV where its planned decoding (seeks counted as `SEEK_COST` frames) is at
#: most this fraction of OpenCV's, and saves at least `AUTO_MIN_SAVED` frames.
AUTO_MAX_RATIO = 0.75
AUTO_MIN_SAVED = 16


def check_reader(reader: object) -> str:
    if not isinstance(reader, str) or reader not in READERS:
        raise ValueError(f"reader must be one of {', '.join(repr(r) for r in READERS)}; got {reader!r}")
    return reader


def import_av():
    """The `av` module, or None where PyAV is not installed, fails to import, or is older than
    15 (which gives no frame rotation: rotated videos would not come out as OpenCV turns them)."""
    try:
        import av
        import av.error  # noqa: F401
    except Exception as e:  # a broken binary install raises more than ImportError
        log.debug("PyAV is not importable (%s: %s): reading with OpenCV", type(e).__name__, e)
        return None
    if not hasattr(av.VideoFrame, "rotation"):
        log.debug("PyAV %s is too old (reader='pyav' needs av>=15): reading with OpenCV", av.__version__)
        return None
    return av


@functools.cache
def opencv_ffmpeg() -> dict[str, int]:
    """The major versions of the FFmpeg libraries OpenCV's video I/O was built with ({} where
    it has no FFmpeg backend)."""
    info = cv2.getBuildInformation()
    found = {lib: re.search(rf"\b{lib}:\s+YES \((\d+)\.\d+\.\d+\)", info) for lib in ("avcodec", "swscale")}
    return {lib: int(m.group(1)) for lib, m in found.items() if m}


def same_ffmpeg(av) -> bool:
    """Whether PyAV's FFmpeg is of the same major releases (libavcodec, libswscale) as OpenCV's:
    then both decode and convert alike (checked bit for bit by tests/test_readers.py), and
    "auto" may read a file with either."""
    theirs = opencv_ffmpeg()
    ours = {lib: av.library_versions.get(f"lib{lib}", (None,))[0] for lib in ("avcodec", "swscale")}
    return bool(theirs) and theirs == ours


class PyAVFailed(Exception):
    """PyAV could not open or read a file (`cause`): "auto" falls back to OpenCV, "pyav" raises."""

    def __init__(self, what: str, cause: BaseException | None = None):
        super().__init__(what if cause is None else f"{what}: {type(cause).__name__}: {cause}")
        self.cause = cause


@dataclass
class Table:
    """The video packets of a file's first part, from its demuxer, in decode order (no decoding)."""

    pts: list[int]  # presentation timestamp of each packet
    dts: list[int | None]
    keyframe: list[bool]
    complete: bool  # the scan reached the end of the stream
    rank: dict[int, int] = field(default_factory=dict)  # pts -> presentation index
    keys: list[int] = field(default_factory=list)  # clean keyframes: their indices (= packet numbers), ascending

    def __post_init__(self) -> None:
        self.rank = {t: i for i, t in enumerate(sorted(self.pts))}
        highest = -math.inf  # the latest presentation time of the packets before
        for d, (t, key) in enumerate(zip(self.pts, self.keyframe)):
            if key and t > highest and self.rank[t] == d:
                self.keys.append(d)
            highest = max(highest, t)

    def __len__(self) -> int:
        return len(self.pts)



def seek_target(keys: list[int] | None, index: int, position: int) -> int | None:
    """The clean keyframe to seek to before decoding frame `index` from `position` (the next
    frame the decoder would present), or None where decoding on is cheaper."""
    if not keys:
        return None
    at = bisect.bisect_right(keys, index)
    key = keys[at - 1] if at else None
    return key if key is not None and key > position + SEEK_COST else None


def planned_work(wanted: list[int], keys: list[int] | None) -> int:
    """Frames decoded to read the `wanted` indices (ascending), seeking as `read` does; a seek
    counts as `SEEK_COST` frames."""
    position = work = 0
    for w in wanted:
        key = seek_target(keys, w, position)
        work += w - position + 1 if key is None else SEEK_COST + w - key + 1
        position = w + 1
    return work


def opencv_work(wanted: list[int], frame_count: int, check_tail: bool, tail: int) -> int:
    """Frames OpenCV's reader decodes for `wanted` (it grabs every frame up to the last one)."""
    if not wanted:
        return 0
    end = wanted[-1] + 1
    if check_tail and frame_count - end <= tail:
        end = frame_count + 1
    return end


def to_rgb(frame: Any) -> np.ndarray:
    """A decoded PyAV frame as RGB uint8, pixel for pixel as OpenCV's FFmpeg backend gives it:
    swscale to BGR24 with SWS_BICUBIC, then BGR->RGB; rotated by its display matrix."""
    rgb = cv2.cvtColor(frame.to_ndarray(format="bgr24", interpolation="BICUBIC"), cv2.COLOR_BGR2RGB)
    rotation = round(frame.rotation or 0) % 360  # counter-clockwise degrees
    if rotation == 90:
        return cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if rotation == 180:
        return cv2.rotate(rgb, cv2.ROTATE_180)
    if rotation == 270:
        return cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    return rgb


class Source:
    """One file opened with PyAV: its container, video stream and (once scanned) packet table."""

    def __init__(self, av, path: Path, clock):
        self.av, self.path, self.clock = av, path, clock
        self.table: Table | None = None
        self.scanned = False  # the demuxer has moved: rewind before decoding
        self.container = None
        self._open()

    def _open(self) -> None:
        self.close()
        try:
            self.container = self.av.open(str(self.path))
            streams = self.container.streams.video
            if not streams:
                raise PyAVFailed(f"{self.path}: PyAV finds no video stream")
            self.stream = streams[0]
            self.stream.thread_type = "AUTO"  # frame and slice threads, as OpenCV's FFmpeg backend
        except PyAVFailed:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise PyAVFailed(f"{self.path}: PyAV cannot open it as a video", e) from e

    def close(self) -> None:
        if self.container is not None:
            try:
                self.container.close()
            except Exception:  # closing a broken container must not hide why it broke
                pass
            self.container = None

    def scan(self, upto: int) -> Table | None:
        """Demux (without decoding) the packets up to decode position `upto` + a margin: their
        timestamps and keyframe flags. None where timestamps are missing or repeated (no
        seeking then). Leaves the demuxer past them: `rewind` before reading."""
        pts, dts, key = [], [], []
        complete = True
        self.scanned = True
        try:
            for n, packet in enumerate(self.container.demux(self.stream)):
                if n % 256 == 0:
                    self.clock.check()
                if packet.size == 0 or getattr(packet, "is_discard", False):
                    continue
                if len(pts) > upto + _SCAN_MARGIN:
                    complete = False
                    break
                if packet.pts is None:
                    return None
                pts.append(int(packet.pts))
                dts.append(None if packet.dts is None else int(packet.dts))
                key.append(bool(packet.is_keyframe))
        except VideoReadError:
            raise
        except Exception as e:
            raise PyAVFailed(f"{self.path}: PyAV cannot demux it", e) from e
        if len(set(pts)) != len(pts):
            return None
        self.table = Table(pts, dts, key, complete)
        return self.table

    def rewind(self) -> None:
        """Back to the first packet: a seek where it lands exactly there, else the file reopened."""
        table = self.table
        if table and table.pts and table.keyframe[0]:
            try:
                self.container.seek(table.pts[0], stream=self.stream, backward=True, any_frame=False)
                first = next((p for p in self.container.demux(self.stream)
                              if p.size and not getattr(p, "is_discard", False)), None)
                if first is not None and first.pts == table.pts[0] and first.dts == table.dts[0]:
                    self.container.seek(table.pts[0], stream=self.stream, backward=True, any_frame=False)
                    self.scanned = False
                    return
            except Exception as e:
                log.debug("%s: PyAV cannot seek to the start (%s): reopening it", self.path, e)
        self._open()
        self.scanned = False

    def seek(self, key: int) -> None:
        """To clean keyframe `key` (an index of the table), to decode on from there. Demuxers
        seek by presentation time, to the last keyframe at or before it."""
        self.container.seek(self.table.pts[key], stream=self.stream, backward=True, any_frame=False)

    def frames(self) -> Iterator[Any]:
        """Decoded frames from the demuxer's position on, in presentation order; a packet that
        fails to decode is skipped (as OpenCV does), `_MAX_BAD_PACKETS` in a row end the stream."""
        av_error = self.av.error.FFmpegError
        bad = 0
        for packet in self.container.demux(self.stream):
            self.clock.check()
            try:
                decoded = packet.decode()
            except av_error as e:
                bad += 1
                log.debug("%s: PyAV skips a packet that fails to decode (%s)", self.path, e)
                if bad > _MAX_BAD_PACKETS:
                    return
                continue
            bad = 0
            yield from decoded


@dataclass
class Progress:
    """What a read has done so far (for a fallback to take over from)."""

    last: int = -1  # the last index yielded
    yielded: int = 0
    seeks: int = 0  # seeks that landed where the table says
    restarts: int = 0  # reads restarted from the beginning after a seek that did not


def read(source: Source, wanted: np.ndarray, frame_count: int, clock, check_tail: bool, tail: int,
         progress: Progress, seek: bool = True):
    """Yields the `wanted` frames as ``(index, rgb)``; returns (position, frames yielded,
    whether the stream ended before `frame_count`, whether it goes on past it), as OpenCV's
    reader does. PyAV errors other than a packet that fails to decode raise `PyAVFailed`.
    Closes `source`."""
    try:
        return (yield from _read(source, wanted, frame_count, clock, check_tail, tail, progress, seek))
    except (VideoReadError, PyAVFailed, GeneratorExit):
        raise
    except Exception as e:
        raise PyAVFailed(f"{source.path}: PyAV failed while reading it", e) from e
    finally:
        source.close()


def _read(source: Source, wanted: np.ndarray, frame_count: int, clock, check_tail: bool, tail: int,
          progress: Progress, seek: bool):
    table = source.table
    if table is None and seek and len(wanted):
        table = source.scan(int(wanted[-1]))
    if source.scanned:
        source.rewind()
    keys = table.keys if (seek and table is not None) else None
    position = 0  # the index of the next frame the decoder presents
    checked = False  # whether presentation timestamps are checked against the table (after a seek)
    frames = source.frames()
    ended = longer = False

    def restart() -> None:  # after a seek that did not land where the table says: read on from the start
        nonlocal frames, position, checked, keys
        log.debug("%s: a PyAV seek did not land where its index says: reading on sequentially", source.path)
        frames.close()
        progress.restarts += 1
        source.table = None
        source.rewind()
        frames, position, checked, keys = source.frames(), 0, False, None

    for start in range(0, len(wanted), 4096):  # in slices: a lying header may ask for millions
        for index in wanted[start:start + 4096].tolist():
            key = seek_target(keys, index, position)
            if key is not None:
                frames.close()
                try:
                    source.seek(key)
                    frames, position, checked = source.frames(), key, True
                    progress.seeks += 1
                except (VideoReadError, PyAVFailed):
                    raise
                except Exception as e:  # a demuxer that cannot seek there: read on from the start
                    log.debug("%s: PyAV cannot seek to frame %d (%s)", source.path, key, e)
                    restart()
            while True:
                clock.check()
                frame = next(frames, None)
                if frame is None and checked and index < len(table):  # the seek did not land where it should
                    restart()
                    continue
                if frame is None:
                    ended = True
                    break
                if checked:
                    rank = table.rank.get(frame.pts) if frame.pts is not None else None
                    if rank is None or rank > position:
                        restart()
                        continue
                    if rank < position:  # landed before the keyframe: decode on to it
                        continue
                if position == index:
                    break
                position += 1
            if ended:
                break
            position += 1
            rgb = to_rgb(frame)
            progress.last, progress.yielded = index, progress.yielded + 1
            clock.pause()
            yield index, rgb
            clock.resume()
        if ended:
            break
    if check_tail and not ended and progress.yielded and frame_count - position <= tail:
        # read on to the header's last frame, and one more, to see the stream end there
        while position < frame_count:
            clock.check()
            if next(frames, None) is None:
                break
            position += 1
        ended = position < frame_count
        longer = not ended and next(frames, None) is not None
    frames.close()
    return position, progress.yielded, ended, longer


def choose(path: Path, wanted: np.ndarray, frame_count: int, width: int, height: int, clock, check_tail: bool,
           tail: int) -> Source | None:
    """For reader="auto": an opened and scanned PyAV `Source` where reading with it is planned
    to decode enough fewer frames than OpenCV would, else None (read with OpenCV). Never
    raises for PyAV's sake (only `VideoReadError` of the clock)."""
    if len(wanted) == 0:
        return None
    wanted_list = wanted[:4096].tolist()  # a lying header may ask for millions: the first ones decide
    cv_work = opencv_work(wanted_list, frame_count, check_tail, tail)
    if cv_work * max(width, 1) * max(height, 1) < AUTO_MIN_PIXELS:
        log.debug("%s: reading with OpenCV: too little to decode for PyAV to pay (%d frames)", path, cv_work)
        return None
    if max(b - a - 1 for a, b in zip([-1, *wanted_list], wanted_list)) <= SEEK_COST:
        log.debug("%s: reading with OpenCV: the sampled frames are too close together for a seek to pay", path)
        return None
    av = import_av()
    if av is None:
        return None
    if not same_ffmpeg(av):
        log.debug("%s: reading with OpenCV: PyAV's FFmpeg (%s) is not of OpenCV's major releases (%s), so its "
                  "pixels might differ", path, av.library_versions, opencv_ffmpeg())
        return None
    source = None
    try:
        source = Source(av, path, clock)
        table = source.scan(int(wanted_list[-1]))
        if table is None:
            why = "its packets lack distinct timestamps"
        elif table.complete and len(table) != frame_count:
            why = f"its demuxer finds {len(table)} frames where its header says {frame_count}"
        else:
            av_work = planned_work(wanted_list, table.keys) + (cv_work - wanted_list[-1] - 1)
            if av_work <= AUTO_MAX_RATIO * cv_work and cv_work - av_work >= AUTO_MIN_SAVED:
                log.debug("%s: reading with PyAV, seeking: about %d frames to decode instead of %d",
                          path, av_work, cv_work)
                return source
            why = f"seeking saves too little ({av_work} frames to decode instead of {cv_work})"
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
