"""From an input file to its face features: decode → detect → crop → embed, read through the cache.

Frames stream through in chunks, so memory stays flat with video length: only the small
face crops of the sampled frames are kept until they are embedded. With a `FeatureCache`,
a file whose features were computed by the same stages is not decoded again, and one whose
crops were cut by the same stages is only embedded.

Decoding overlaps the rest: a background thread (OpenCV and onnxruntime release the GIL)
decodes the sampled frames into a bounded queue of `prefetch` frames while the calling thread
detects, crops and embeds; in `FeatureExtractor.extract_many` it goes on to the next input that
needs decoding, one input ahead at most, so at most two inputs' decoded frames (and face crops)
are held at a time. What the reader raises in the thread (`VideoReadError`, a `VideoWarning`
turned into an error) is raised in the caller, unchanged; the `VideoWarning`s it emits are
recorded there and re-emitted in the caller, in order with the frames; the caller's
`decode_limits` reach it. The thread stops, and is joined, as soon as the consumer stops or
raises (close the `extract_many` iterator, or let it go, to stop it early). ``prefetch=0``
decodes in the calling thread, as before, with the same results.

Per-input timings (seconds): "decode" is the time spent opening, probing and decoding the
file, measured in the thread that decoded it; with overlap it runs concurrently with "detect",
"crop" (choosing and cutting the face) and "embed" (all measured in the calling thread), so
the stages can add up to more than the wall time: the wall time is about the longest of
decode and detect + crop + embed, plus what does not overlap (the first frames of an input).
"cache" is the time spent in cache look-ups.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import queue
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from . import video
from .backbones import Backbone
from .cache import CacheWriter, FaceCrops, FeatureCache, batched
from .faces import CropPolicy, FaceDetector
from .results import FaceFeatures
from .sampling import FrameSampler


class FeatureExtractor:
    """The stages upstream of the head, composed; `fingerprint` names what they compute.

    `fingerprint` keys the features in the cache; `crops_fingerprint` (everything upstream
    of the backbone: sampler, face detector, crop policy, crop size) keys the face crops.
    `chunk` frames go to the face detector at a time; `prefetch` frames are decoded ahead in
    a background thread (None: one chunk; 0: no thread, decoding in the calling thread).
    Neither changes what is computed.
    """

    def __init__(self, sampler: FrameSampler, face_detector: FaceDetector, crop: CropPolicy, backbone: Backbone,
                 chunk: int = 16, cache: FeatureCache | None = None, prefetch: int | None = None):
        self.sampler = sampler
        self.face_detector = face_detector
        self.crop = crop
        self.backbone = backbone
        self.chunk = chunk
        self.cache = cache
        self.prefetch = chunk if prefetch is None else prefetch
        if isinstance(self.prefetch, bool) or not isinstance(self.prefetch, int) or self.prefetch < 0:
            raise ValueError(f"prefetch must be a non-negative integer (0: no decoding thread); got {prefetch!r}")

    @cached_property
    def crop_stages(self) -> dict[str, Any]:
        """The configs of the stages that cut the face crops."""
        return {
            "sampler": [self.sampler.registry_name, self.sampler.get_config()],
            "face_detector": self.face_detector.fingerprint,
            "crop": self.crop.get_config(),
            "crop_size": self.backbone.input_size,
        }

    @cached_property
    def stages(self) -> dict[str, Any]:
        """The configs of the stages that compute the features."""
        crop = {k: v for k, v in self.crop_stages.items() if k != "crop_size"}
        return {**crop, "backbone": self.backbone.fingerprint}

    @cached_property
    def fingerprint(self) -> str:
        return _digest(self.stages)

    @cached_property
    def crops_fingerprint(self) -> str:
        return _digest(self.crop_stages)

    def extract(self, path: str | os.PathLike) -> tuple[FaceFeatures, dict[str, float]]:
        """The face features of one video or image, and the seconds spent per stage
        ("cache": looking it up, and all there is on a hit; see the module doc for what the
        stages' seconds mean when decoding overlaps the rest)."""
        [result] = self.extract_many([path])
        return result

    def extract_many(self, paths: Iterable[str | os.PathLike],
                     batch: int = 64) -> Iterator[tuple[FaceFeatures, dict[str, float]]]:
        """``(features, timings)`` of each input, in order, as a stream.

        Cache look-ups go `batch` inputs at a time; what is computed is written in batched
        transactions, committed at least every second, so an interrupted run keeps its work.
        Inputs with the same bytes are computed once. While one input is detected and
        embedded, the next one that needs decoding is decoded in a background thread (its
        cache look-ups done one input early); closing the iterator stops and joins it.
        """
        decoder = _Decoder(self.prefetch)
        try:
            if self.cache is None:
                yield from self._run(self._uncached_jobs(paths, decoder), decoder, None)
            else:
                with self.cache.writer() as writer:
                    yield from self._run(self._cached_jobs(paths, batch, decoder), decoder, writer)
        finally:
            decoder.close()

    def _uncached_jobs(self, paths: Iterable[str | os.PathLike], decoder: _Decoder) -> Iterator[_Job]:
        for path in paths:
            yield _Job(path, None, None, stream=decoder.submit(path, self.sampler))

    def _cached_jobs(self, paths: Iterable[str | os.PathLike], batch: int, decoder: _Decoder) -> Iterator[_Job]:
        """One job per input, planned one input ahead of the one computed: a hit carries its
        features, a miss its cached crops or the stream that decodes it. An input with the
        bytes of the one before it (whose features are not computed yet) takes them when it
        is reached."""
        previous: _Job | None = None
        for chunk in batched(paths, batch):
            t = time.perf_counter()
            digests = self.cache.digests(chunk)
            found = self.cache.get_features([d for d in digests if d], self.fingerprint)
            share = (time.perf_counter() - t) / len(chunk)
            for path, digest in zip(chunk, digests):
                if digest in found:
                    job = _Job(path, digest, share, features=found[digest])
                elif digest and previous is not None and previous.digest == digest:
                    job = _Job(path, digest, share, same_as=previous)
                else:
                    job = self._miss(path, digest, share, decoder)
                    if digest:
                        job.found = found  # where its features go once computed, for later duplicates
                previous = job
                yield job

    def _miss(self, path: str | os.PathLike, digest: str | None, share: float, decoder: _Decoder) -> _Job:
        """A job for features not in the cache: from cached crops if there are, else from the file."""
        job = _Job(path, digest, share)
        if digest is None:  # unreadable: decoding raises the reading error, in order
            job.stream = decoder.submit(path, self.sampler)
            return job
        t = time.perf_counter()
        job.crops = self.cache.get_crops([digest], self.crops_fingerprint).get(digest)
        job.cache_seconds += time.perf_counter() - t
        if job.crops is None:
            job.stream = decoder.submit(path, self.sampler)
        return job

    def _run(self, jobs: Iterator[_Job], decoder: _Decoder,
             writer: CacheWriter | None) -> Iterator[tuple[FaceFeatures, dict[str, float]]]:
        """Computes the jobs in order, planning (and so submitting the decoding of) the next
        one before computing the current one."""
        for job in _one_ahead(jobs):
            if job.same_as is not None:
                same_as, job.same_as = job.same_as, None  # no chain of jobs kept alive
                if same_as.result is not None:
                    job.features = same_as.result
                else:  # not computed (cannot happen once the job before it returned): compute it
                    job = self._miss(job.path, job.digest, job.cache_seconds, decoder)
            if job.features is not None:
                job.result = job.features
                yield job.features, {"cache": job.cache_seconds}
                continue
            timings = _timings() if job.cache_seconds is None else {**_timings(), "cache": job.cache_seconds}
            crops = job.crops
            if crops is None:
                crops = _face_crops(job.stream, self.face_detector, self.crop, self.backbone.input_size,
                                    self.chunk, timings)
                if writer is not None and job.digest:
                    writer.put_crops(job.digest, self.crops_fingerprint, crops, self.crop_stages)
            job.crops = job.stream = None  # held no longer than needed
            feats = self._embed(crops, timings)
            del crops
            if writer is not None:
                if job.digest:
                    writer.put_features(job.digest, self.fingerprint, feats, self.stages)
                    if job.found is not None:
                        job.found[job.digest] = feats
                job.result = feats
                writer.commit_if_due()
            yield feats, timings

    def crops(self, path: str | os.PathLike, timings: dict[str, float]) -> FaceCrops:
        """The face crops of one input, computed (not read from the cache); adds to `timings`."""
        return face_crops(path, self.sampler, self.face_detector, self.crop, self.backbone.input_size,
                          self.chunk, timings, prefetch=self.prefetch)

    def _embed(self, crops: FaceCrops, timings: dict[str, float]) -> FaceFeatures:
        t = time.perf_counter()
        features = self.backbone.embed(crops.crops) if len(crops) else np.zeros((0, 0), np.float32)
        timings["embed"] += time.perf_counter() - t
        return FaceFeatures(frame_indices=crops.frame_indices, times=crops.times, boxes=crops.boxes,
                            scores=crops.scores, features=features, frames_sampled=crops.frames_sampled)


@dataclass(eq=False)
class _Job:
    """One input of `extract_many`: what is known of it before it is computed, and its result."""

    path: str | os.PathLike
    digest: str | None
    cache_seconds: float | None  # None: no cache
    features: FaceFeatures | None = None  # a cache hit
    crops: FaceCrops | None = None  # cached crops: only embedding is left
    stream: _Stream | _InlineStream | None = None  # decoding, submitted
    same_as: _Job | None = None  # the input before, with the same bytes
    result: FaceFeatures | None = None
    found: dict | None = None


def _one_ahead(items: Iterator):
    """The items of `items`, each one yielded after the next one has been taken; an error in
    taking the next one is raised after the current one is yielded, where it was before."""
    items = iter(items)
    try:
        current = next(items)
    except StopIteration:
        return
    while True:
        try:
            following = next(items)
        except StopIteration:
            yield current
            return
        except Exception:
            yield current
            raise
        yield current
        current = following


def face_crops(path: str | os.PathLike, sampler: FrameSampler, face_detector: FaceDetector, crop: CropPolicy,
               size: int, chunk: int = 16, timings: dict[str, float] | None = None,
               prefetch: int | None = None) -> FaceCrops:
    """Decode the sampled frames of `path`, find the faces, cut one `size`-pixel crop per frame
    with a face; seconds per stage are added to `timings` where given. `prefetch` frames are
    decoded ahead in a background thread (None: `chunk`; 0: no thread)."""
    timings = _timings() if timings is None else timings
    decoder = _Decoder(chunk if prefetch is None else prefetch)
    try:
        return _face_crops(decoder.submit(path, sampler), face_detector, crop, size, chunk, timings)
    finally:
        decoder.close()


def _face_crops(stream: _Stream | _InlineStream, face_detector: FaceDetector, crop: CropPolicy, size: int,
                chunk: int, timings: dict[str, float]) -> FaceCrops:
    """`face_crops` of the frames that `stream` decodes."""
    indices, boxes, scores, crops = [], [], [], []
    sampled = 0
    try:
        for group in batched(stream, chunk):
            sampled += len(group)
            t = time.perf_counter()
            found = face_detector.detect([frame for _, frame in group])
            timings["detect"] += time.perf_counter() - t
            t = time.perf_counter()
            for (index, frame), faces in zip(group, found):
                box = crop.choose(faces)
                if box is None:
                    continue
                indices.append(index)
                boxes.append((box.x1, box.y1, box.x2, box.y2))
                scores.append(box.score)
                crops.append(crop.crop(frame, box, size, whole_frame=face_detector.whole_frame))
            timings["crop"] += time.perf_counter() - t
    finally:
        stream.close()  # stops the decoding where the consumer stopped early or raised
        timings["decode"] += stream.seconds
    info = stream.info
    fps = info.fps if info.fps and np.isfinite(info.fps) and info.fps > 0 else 0.0
    idx = np.asarray(indices, dtype=np.int64)
    return FaceCrops(
        frame_indices=idx,
        times=idx / fps if fps else np.zeros(len(idx)),
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        scores=np.asarray(scores, dtype=np.float32),
        crops=np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8),
        frames_sampled=sampled,
    )


# --- decoding in a background thread --------------------------------------------------------
class _InlineStream:
    """The sampled frames of one input, decoded in the calling thread as they are asked for
    (``prefetch=0``); `seconds`: the time spent decoding, `info` once the file is opened."""

    def __init__(self, path: str | os.PathLike, sampler: FrameSampler):
        self.path, self.sampler = path, sampler
        self.info: video.VideoInfo | None = None
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


_END = object()
_POLL = 0.1  # seconds between checks for a stop request while a queue is full or empty


class _Stream:
    """The sampled frames of one input, decoded by a `_Decoder`'s thread into a queue of at most
    `depth` items, and taken from it by the calling thread (`__iter__`).

    Items: ("info", VideoInfo) first, then ("frame", (index, frame)) and ("warning",
    WarningMessage) in the order the reader produced them, then ("end", None) or ("error",
    exception). `seconds` (decoding time, measured in the thread) is final once "end" or
    "error" is taken.
    """

    def __init__(self, path: str | os.PathLike, sampler: FrameSampler, depth: int, decoder: _Decoder):
        self.path, self.sampler, self.decoder = path, sampler, decoder
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.context = contextvars.copy_context()  # the caller's decode_limits (and warnings context)
        self.stopped = threading.Event()
        self.finished = False  # the consumer took "end" or "error"
        self.info: video.VideoInfo | None = None
        self.seconds = 0.0

    # -- in the decoding thread
    def decode(self, sink: list) -> None:
        frames = None
        try:
            t = time.perf_counter()
            try:
                info, frames = video.sample_frames(self.path, self.sampler)
            finally:
                self.seconds += time.perf_counter() - t
            if not (self._pass_warnings(sink) and self._put(("info", info))):
                return
            while not self.stopped.is_set():
                t = time.perf_counter()
                try:
                    item = next(frames, _END)
                finally:
                    self.seconds += time.perf_counter() - t
                if not self._pass_warnings(sink) or item is _END or not self._put(("frame", item)):
                    break
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # releases the capture now, also where the consumer stopped early
            self._put(("end", None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, who raises it
            self._pass_warnings(sink)
            self._put(("error", e))

    def _pass_warnings(self, sink: list) -> bool:
        while sink:
            if not self._put(("warning", sink.pop(0))):
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
                warnings._showwarnmsg(value)  # filtered in the thread (the caller's filters): shown here
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


class _Decoder:
    """One background thread that decodes the inputs submitted to it, one after the other, each
    into its own bounded `_Stream`; started on the first submission, stopped and joined by
    `close`. ``depth=0``: no thread, `submit` returns an `_InlineStream`."""

    def __init__(self, depth: int):
        self.depth = depth
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._open: list[_Stream] = []
        self._thread: threading.Thread | None = None

    def submit(self, path: str | os.PathLike, sampler: FrameSampler) -> _Stream | _InlineStream:
        if self.depth <= 0:
            return _InlineStream(path, sampler)
        stream = _Stream(path, sampler, self.depth, self)
        if self._thread is None:
            _route_warnings()
            self._thread = threading.Thread(target=self._work, name="deepfake_detect-decode", daemon=True)
            self._thread.start()
        self._open = [s for s in self._open if not s.finished]
        self._open.append(stream)
        self._jobs.put(stream)
        return stream

    def _work(self) -> None:
        _thread_warnings.sink = sink = []
        try:
            while (stream := self._jobs.get()) is not None:
                if not stream.stopped.is_set():
                    stream.context.run(stream.decode, sink)
                sink.clear()
        finally:
            _thread_warnings.sink = None

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


# Warnings raised in the decoding thread are filtered there, by the filters in force (the
# caller's: `warnings.filters` is process-wide, and on interpreters with context-local warnings
# the thread runs in a copy of the caller's context), then recorded instead of shown, and shown
# in the calling thread when it reaches them in the stream, so the caller's `catch_warnings`
# (recording, as `pytest.warns` does) and `showwarning` get them. The hook replaces the
# `warnings` module's delivery function once, process-wide; it passes every other thread's
# warnings on unchanged.
_thread_warnings = threading.local()
_route_lock = threading.Lock()


def _route_warnings() -> None:
    with _route_lock:
        deliver = getattr(warnings, "_showwarnmsg", None)
        if deliver is None or getattr(deliver, "_deepfake_detect_route", False):
            return

        def route(message, _deliver=deliver):
            sink = getattr(_thread_warnings, "sink", None)
            if sink is None:
                _deliver(message)
            else:
                sink.append(message)

        route._deepfake_detect_route = True
        warnings._showwarnmsg = route


def _timings() -> dict[str, float]:
    return {"decode": 0.0, "detect": 0.0, "crop": 0.0, "embed": 0.0}


def _digest(stages: dict[str, Any]) -> str:
    payload = json.dumps(stages, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
