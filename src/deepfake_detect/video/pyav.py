"""The PyAV reader (FFmpeg's Python binding): sampled frames, seeking and skipping where that saves decoding.

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

It also skips. For H.264 (`SKIP_CODECS`) each packet of a frame that is not wanted is sent
with ``skip_frame = "NONREF"``: the decoder drops it if no other frame references it (on
FaceForensics++ c23 about 45% of the frames), and decodes the reference frames as before, so the
wanted frames come out bit for bit as a full decode gives them. Skipped frames give no output,
so each output frame's index comes from its timestamp through the scanned table; a frame whose
timestamp is missing, not in the table, or past the next wanted index restarts the read from
the beginning, decoding every frame. The demuxer does not say which packets are references:
`Source.scan` reads it from the H.264 NAL headers (AVCC packets, as in mp4), for `.auto`'s plan.

Decoding one frame costs PyAV what it costs OpenCV (the same FFmpeg decoders): reading every
frame gains nothing; `.auto` decides where seeking and skipping pay.
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
#: Codecs whose non-reference frames are skipped (tests/test_readers.py and
#: benchmarks/reader_pixels.py check that the wanted frames stay bit for bit OpenCV's).
SKIP_CODECS = frozenset({"h264"})
#: FFmpeg's threading for PyAV's decoder: None decodes in one thread (the least CPU time; see
#: docs/benchmarks.md), "FRAME", "SLICE" or "AUTO" in `THREAD_COUNT` threads (0: FFmpeg's
#: choice, one more than the cores for frame threads).
THREAD_TYPE: str | None = None
THREAD_COUNT = 0


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
    skips: bool = False  # the codec's non-reference frames may be skipped (`SKIP_CODECS`)
    ref: list[bool] | None = None  # whether each packet is a reference frame (None: not known)
    rank: dict[int, int] = field(default_factory=dict)  # pts -> presentation index
    keys: list[int] = field(default_factory=list)  # clean keyframes: their indices (= packet numbers), ascending
    _refs_before: list[int] = field(default_factory=list)  # reference frames before each presentation index

    def __post_init__(self) -> None:
        self.rank = {t: i for i, t in enumerate(sorted(self.pts))}
        highest = -math.inf  # the latest presentation time of the packets before
        for d, (t, key) in enumerate(zip(self.pts, self.keyframe)):
            if key and t > highest and self.rank[t] == d:
                self.keys.append(d)
            highest = max(highest, t)
        if self.skips and self.ref is not None:
            by_index = [True] * len(self.pts)
            for t, ref in zip(self.pts, self.ref):
                by_index[self.rank[t]] = ref
            self._refs_before = [0, *np.cumsum(by_index).tolist()]

    def work(self, start: int, stop: int) -> int:
        """Frames decoded to get from presenting frame `start` to `stop` (none of them wanted):
        the reference frames only, where they are skipped and known, else all of them."""
        if not self._refs_before:
            return stop - start
        n = len(self.pts)
        inside = self._refs_before[min(max(stop, 0), n)] - self._refs_before[min(max(start, 0), n)]
        return inside + max(stop, n) - max(start, n)

    def __len__(self) -> int:
        return len(self.pts)


def _all(start: int, stop: int) -> int:
    return stop - start


def seek_target(keys: list[int] | None, index: int, position: int, work=_all) -> int | None:
    """The clean keyframe to seek to before decoding frame `index` from `position` (the next
    frame the decoder would present), or None where decoding on is cheaper (`work(a, b)`: the
    frames decoded from presenting a to b, `Table.work`)."""
    if not keys:
        return None
    at = bisect.bisect_right(keys, index)
    key = keys[at - 1] if at else None
    return key if key is not None and key > position and work(position, key) > SEEK_COST else None


def planned_work(wanted: list[int], keys: list[int] | None, work=_all) -> int:
    """Frames decoded to read the `wanted` indices (ascending), seeking as `read` does; a seek
    counts as `SEEK_COST` frames; `work` as for `seek_target`."""
    position = total = 0
    for w in wanted:
        key = seek_target(keys, w, position, work)
        total += (work(position, w) if key is None else SEEK_COST + work(key, w)) + 1
        position = w + 1
    return total


def nal_ref(data, length_size: int) -> bool | None:
    """Whether an AVCC H.264 packet (NAL units, each after its `length_size`-byte length) is a
    reference picture: its first slice's nal_ref_idc is not 0. None where it does not parse."""
    at, end = 0, len(data)
    while at + length_size < end:
        length = int.from_bytes(data[at:at + length_size], "big")
        at += length_size
        if length == 0 or at + length > end:
            return None
        if data[at] & 31 in (1, 5):  # a slice: non-IDR or IDR
            return data[at] >> 5 != 0  # (the forbidden zero bit is 0)
        at += length
    return None


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
        self.decoded = 0  # frames the decoder has given
        self._open()

    def _open(self) -> None:
        self.close()
        try:
            self.container = self.av.open(str(self.path))
            streams = self.container.streams.video
            if not streams:
                raise PyAVFailed(f"{self.path}: PyAV finds no video stream")
            self.stream = streams[0]
            if THREAD_TYPE is not None:
                self.stream.thread_type = THREAD_TYPE
                self.stream.codec_context.thread_count = THREAD_COUNT
            else:
                self.stream.codec_context.thread_count = 1
            self.skips = self.stream.codec_context.name in SKIP_CODECS
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
        timestamps, keyframe flags and, for H.264 in AVCC packets, whether they are reference
        frames. None where timestamps are missing or repeated (no seeking or skipping then).
        Leaves the demuxer past them: `rewind` before reading."""
        pts, dts, key, ref = [], [], [], []
        extradata = self.stream.codec_context.extradata or b""
        avcc = self.skips and len(extradata) > 4 and extradata[0] == 1  # else Annex B: no lengths to parse
        length_size = (extradata[4] & 3) + 1 if avcc else 0
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
                if avcc:
                    ref.append(nal_ref(memoryview(packet), length_size) is not False)
        except VideoReadError:
            raise
        except Exception as e:
            raise PyAVFailed(f"{self.path}: PyAV cannot demux it", e) from e
        if len(set(pts)) != len(pts):
            return None
        self.table = Table(pts, dts, key, complete, self.skips, ref if avcc else None)
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

    def frames(self, wanted: set[int] | None = None) -> Iterator[Any]:
        """Decoded frames from the demuxer's position on, in presentation order; a packet that
        fails to decode is skipped (as OpenCV does), `_MAX_BAD_PACKETS` in a row end the stream.
        With `wanted` (presentation indices), the packets in the table that present an unwanted
        frame before the last wanted one are sent with skip_frame "NONREF"."""
        av_error = self.av.error.FFmpegError
        context = self.stream.codec_context
        rank, last = (self.table.rank, max(wanted)) if wanted else ({}, -1)
        mode = context.skip_frame = "DEFAULT"
        bad = 0
        for packet in self.container.demux(self.stream):
            self.clock.check()
            if wanted:
                index = rank.get(packet.pts, last)  # FFmpeg copies skip_frame to a frame thread per packet
                skip = "NONREF" if index < last and index not in wanted else "DEFAULT"
                if skip != mode:
                    mode = context.skip_frame = skip
            try:
                decoded = packet.decode()
            except av_error as e:
                bad += 1
                log.debug("%s: PyAV skips a packet that fails to decode (%s)", self.path, e)
                if bad > _MAX_BAD_PACKETS:
                    return
                continue
            bad = 0
            self.decoded += len(decoded)
            yield from decoded


@dataclass
class Progress:
    """What a read has done so far (for a fallback to take over from)."""

    last: int = -1  # the last index yielded
    yielded: int = 0
    seeks: int = 0  # seeks that landed where the table says
    restarts: int = 0  # reads restarted from the beginning after a seek or skip that went wrong
    skipping: bool = False  # whether non-reference frames were skipped (until a restart)
    decoded: int = 0  # frames the decoder gave (set when the read ends)


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
        progress.decoded = source.decoded
        source.close()


def _read(source: Source, wanted: np.ndarray, frame_count: int, clock, check_tail: bool, tail: int,
          progress: Progress, seek: bool):
    table = source.table
    if table is None and seek and len(wanted):
        table = source.scan(int(wanted[-1]))
    if source.scanned:
        source.rewind()
    keys = table.keys if (seek and table is not None) else None
    work = table.work if keys is not None else _all
    skipping = progress.skipping = seek and table is not None and table.skips and len(wanted) > 0
    position = 0  # the index of the next frame the decoder presents
    checked = skipping  # whether presentation timestamps are checked against the table (skipping, after a seek)
    landing = False  # after a seek, until the keyframe sought is presented
    wanted_set = set(wanted[wanted < len(table)].tolist()) if skipping else None
    frames = source.frames(wanted_set)
    ended = longer = False

    def restart() -> None:  # after a seek or skip that did not land where the table says: read on from the start
        nonlocal frames, position, checked, keys, work, skipping, landing
        log.debug("%s: a frame PyAV decoded after a seek or skip is not where its index says: reading on "
                  "sequentially", source.path)
        frames.close()
        progress.restarts += 1
        progress.skipping = False
        source.table = None
        source.rewind()
        frames, position, checked, keys, work, skipping = source.frames(), 0, False, None, _all, False
        landing = False

    for start in range(0, len(wanted), 4096):  # in slices: a lying header may ask for millions
        for index in wanted[start:start + 4096].tolist():
            key = seek_target(keys, index, position, work)
            if key is not None:
                frames.close()
                try:
                    source.seek(key)
                    frames, position, checked, landing = source.frames(wanted_set), key, True, True
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
                    if rank is None or rank > (index if skipping and not landing else position):
                        restart()  # (skipped frames give no output: a rank may jump, but not past `index`)
                        continue
                    if rank < position:  # landed before the keyframe: decode on to it
                        continue
                    position, landing = rank, False
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
