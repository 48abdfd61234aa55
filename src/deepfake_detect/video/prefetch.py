"""Decoding ahead, in a background thread: the sampled frames of each input, into a bounded queue.

A `Decoder` owns one thread, started on the first `submit` and joined by `close`; each input
submitted to it is decoded in turn into its own `Stream` of at most `depth` frames, which the
calling thread iterates (OpenCV and FFmpeg release the GIL, so decoding runs beside the
caller's work). ``depth=0`` decodes in the calling thread instead (`InlineStream`), with the
same results.

What the reader raises in the thread (`VideoReadError`, a `VideoWarning` turned into an error)
is raised in the caller, unchanged, where the stream reaches it. The reader's `VideoWarning`s
are recorded in the thread (`notices.recording`: nothing process-wide is patched) and issued
in the caller in order with the frames, under the caller's filters. The thread runs in a copy
of the caller's context, so the caller's `decode_limits` reach it. A stream stops decoding as
soon as its consumer closes it.
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading
import time
from collections.abc import Iterator

import numpy as np

from .. import video
from ..sampling import FrameSampler
from . import notices

_END = object()
_POLL = 0.1  # seconds between checks for a stop request while a queue is full or empty
THREAD_NAME = "deepfake_detect-decode"


class InlineStream:
    """The sampled frames of one input, decoded in the calling thread as they are asked for
    (``depth=0``); `seconds`: the time spent decoding, `info` once the file is opened."""

    def __init__(self, path: str | os.PathLike, sampler: FrameSampler):
        self.path, self.sampler = path, sampler
        self.info = None
        self.seconds = 0.0
        self._frames: Iterator | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        t = time.perf_counter()
        self.info, self._frames = video.sample_frames(self.path, self.sampler)
        self.seconds += time.perf_counter() - t
        while True:
            t = time.perf_counter()
            item = next(self._frames, None)
            self.seconds += time.perf_counter() - t
            if item is None:
                return
            yield item

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()


class Stream:
    """The sampled frames of one input, decoded by a `Decoder`'s thread into a queue of at most
    `depth` items, and taken from it by the calling thread (`__iter__`).

    Items: ("info", VideoInfo) first, then ("frame", (index, frame)) and ("warning",
    WarningMessage) in the order the reader produced them, then ("end", None) or ("error",
    exception). `seconds` (decoding time, measured in the thread) is final once "end" or
    "error" is taken.
    """

    def __init__(self, path: str | os.PathLike, sampler: FrameSampler, depth: int, decoder: Decoder):
        self.path, self.sampler, self.decoder = path, sampler, decoder
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.context = contextvars.copy_context()  # the caller's decode_limits
        self.stopped = threading.Event()
        self.finished = False  # the consumer took "end" or "error"
        self.info = None
        self.seconds = 0.0

    # -- in the decoding thread
    def decode(self) -> None:
        with notices.recording() as recorded:
            self._decode(recorded)

    def _decode(self, recorded: list) -> None:
        frames = None
        try:
            t = time.perf_counter()
            try:
                info, frames = video.sample_frames(self.path, self.sampler)
            finally:
                self.seconds += time.perf_counter() - t
            if not (self._pass_warnings(recorded) and self._put(("info", info))):
                return
            while not self.stopped.is_set():
                t = time.perf_counter()
                try:
                    item = next(frames, _END)
                finally:
                    self.seconds += time.perf_counter() - t
                if not self._pass_warnings(recorded) or item is _END or not self._put(("frame", item)):
                    break
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # releases the capture now, also where the consumer stopped early
            self._put(("end", None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, who raises it
            self._pass_warnings(recorded)
            self._put(("error", e))

    def _pass_warnings(self, recorded: list) -> bool:
        while recorded:
            if not self._put(("warning", recorded.pop(0))):
                return False
        return True

    def _put(self, item) -> bool:
        """Queue `item`, waiting for room; False where the consumer stopped."""
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    # -- in the calling thread
    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        while not self.finished:
            try:
                kind, value = self.queue.get(timeout=_POLL)
            except queue.Empty:
                self.decoder.check_alive()
                continue
            if kind == "frame":
                yield value
            elif kind == "warning":
                notices.reissue(value)
            elif kind == "info":
                self.info = value
            else:
                self.finished = True
                if kind == "error":
                    raise value

    def close(self) -> None:
        """Stop the decoding of this input (where it is not finished) and drop what is queued."""
        self.stopped.set()
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break


class Decoder:
    """One background thread that decodes the inputs submitted to it, one after the other, each
    into its own bounded `Stream`; started on the first submission, stopped and joined by
    `close`. ``depth=0``: no thread, `submit` returns an `InlineStream`."""

    def __init__(self, depth: int):
        self.depth = depth
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._open: list[Stream] = []
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def submit(self, path: str | os.PathLike, sampler: FrameSampler) -> Stream | InlineStream:
        """Start decoding `path` (after the inputs submitted before it); its frames, as a stream."""
        if self.depth <= 0:
            return InlineStream(path, sampler)
        stream = Stream(path, sampler, self.depth, self)
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=THREAD_NAME, daemon=True)
            self._thread.start()
        self._open = [s for s in self._open if not s.finished]
        self._open.append(stream)
        self._jobs.put(stream)
        return stream

    def _work(self) -> None:
        while (stream := self._jobs.get()) is not None:
            if not stream.stopped.is_set():
                stream.context.run(stream.decode)

    def check_alive(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the frame decoding thread ended without a result")

    def close(self) -> None:
        """Stop every stream not finished, and wait for the thread to end."""
        if self._thread is None:
            return
        for stream in self._open:
            stream.close()
        self._open = []
        self._jobs.put(None)
        self._thread.join()
        self._thread = None
