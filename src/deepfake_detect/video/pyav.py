"""The PyAV reader (FFmpeg's Python binding): sampled frames, seeking to keyframes where that saves decoding.

It gives the stream of ``(frame_index, rgb_frame)`` that the OpenCV reader (`.opencv`) gives:
an index is a frame's position among the frames the decoder presents (OpenCV's `grab()`
count), and the pixels are OpenCV's (PyAV converts with the same swscale call as OpenCV's
FFmpeg backend, BGR24 bicubic, then `cv2.cvtColor`; rotation metadata is applied as OpenCV
applies it).

PyAV's gain is seeking. Its demuxer gives, without decoding, each packet's timestamp and
whether it is a keyframe (`Source.scan`); where sampled frames lie further apart than keyframes
do, it seeks to the last clean keyframe before the next sampled frame instead of decoding every
frame in between (OpenCV's `grab()` decodes them all). A clean keyframe is one that starts a
closed group of pictures: every packet before it in decode order is presented before it, and
every one after it, after it (no open-GOP leading pictures), so decoding from it gives exactly
the frames from its index on. After a seek each frame's timestamp is checked against the
scanned table; any mismatch restarts the read from the beginning, decoding sequentially.

Decoding one frame costs PyAV what it costs OpenCV (the same FFmpeg decoders): reading
sequentially gains nothing; `.auto` decides where seeking pays.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import VideoReadError

log = logging.getLogger(__name__)

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
