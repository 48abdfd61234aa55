"""From an input file to its face features: decode → detect → crop → embed, read through the cache.

Frames stream through in chunks, so memory stays flat with video length: only the small
face crops of the sampled frames are kept until they are embedded.

With a `FeatureCache`, extraction plans, then computes: the inputs are looked up `batch` at a
time, in one trip to the cache each (`FeatureCache.lookup`: features, else face crops, else
nothing), and only what is missing is computed: an input whose features were computed by the
same stages is not decoded again, one whose crops were cut by the same stages is only
embedded (the crops found for a batch are held until they are), and an input with the bytes
of one before it is computed once. What is computed is written in batched transactions
(`CacheWriter`), committed at least every second, so an interrupted run keeps its work.
The cache is an optimisation, never a point of failure: a look-up or write that fails (a
full disk, a lock held too long, a damaged file) warns once and the extractor goes on without
the cache; no result is lost to it.

Decoding overlaps the rest (`video.prefetch`): a background thread decodes the sampled frames
into a bounded queue of `prefetch` frames while the calling thread detects, crops and embeds;
in `FeatureExtractor.extract_many` it goes on to the next input that needs decoding, one input
ahead at most, so at most two inputs' decoded frames are held at a time. What the reader raises
or warns in the thread reaches the caller, in order with the frames; the caller's
`decode_limits` reach the thread. The thread stops, and is joined, as soon as the consumer
stops or raises (close the `extract_many` iterator, or let it go, to stop it early).
``prefetch=0`` decodes in the calling thread, with the same results.

Per-input timings (seconds): "decode" is the time spent opening, probing and decoding the
file, measured in the thread that decoded it; with overlap it runs concurrently with "detect",
"crop" (choosing and cutting the face) and "embed" (all measured in the calling thread), so
the stages can add up to more than the wall time: the wall time is about the longest of
decode and detect + crop + embed, plus what does not overlap (the first frames of an input).
"cache" is the input's share of its batch's cache look-up (all there is on a hit).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .backbones import Backbone
from .cache import CacheWriter, FeatureCache, Found, batched, failure_warning
from .errors import CacheError
from .digests import config_digest
from .faces import CropPolicy, FaceDetector
from .results import FaceCrops, FaceFeatures
from .sampling import FrameSampler
from .video.prefetch import Decoder, InlineStream, Stream


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
        self.cache_failed_: CacheError | None = None

    def cache_failed(self, error: CacheError) -> None:
        """A cache read or write failed: warn (once) and use no cache from now on."""
        if self.cache_failed_ is None:
            warnings.warn(failure_warning(error), RuntimeWarning, stacklevel=2)
        self.cache_failed_ = error

    @property
    def active_cache(self) -> FeatureCache | None:
        """The cache, unless none is set or it failed (`cache_failed`)."""
        return None if self.cache_failed_ is not None else self.cache

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
        return config_digest(self.stages)

    @cached_property
    def crops_fingerprint(self) -> str:
        return config_digest(self.crop_stages)

    def extract(self, path: str | os.PathLike, store_crops: bool = True) -> tuple[FaceFeatures, dict[str, float]]:
        """The face features of one video or image, and the seconds spent per stage
        ("cache": looking it up, and all there is on a hit; see the module doc for what the
        stages' seconds mean when decoding overlaps the rest). `store_crops`: as in `extract_many`."""
        [result] = self.extract_many([path], store_crops=store_crops)
        return result

    def extract_many(self, paths: Iterable[str | os.PathLike], batch: int = 64,
                     store_crops: bool = True) -> Iterator[tuple[FaceFeatures, dict[str, float]]]:
        """``(features, timings)`` of each input, in order, as a stream.

        With a cache, inputs are looked up `batch` at a time and only what is missing is
        computed (see the module doc); `store_crops=False` keeps the face crops it cuts out of
        the cache (only the features are stored: what prediction needs; fine-tuning needs the
        crops). While one input is detected and embedded, the next one that needs decoding is
        decoded in a background thread; closing the iterator stops and joins it.
        """
        with Decoder(self.prefetch) as decoder:
            if self.active_cache is None:
                yield from self._compute(self._submitted((_Job(p) for p in paths), decoder), None, store_crops)
            else:
                with self.cache.writer(on_error=self.cache_failed) as writer:
                    yield from self._compute(self._submitted(self._plan(paths, batch), decoder), writer, store_crops)

    def extract_each(self, paths: Sequence[str | os.PathLike], store_crops: bool = True
                     ) -> Iterator[tuple[int, FaceFeatures | None, dict[str, float] | None, Exception | None]]:
        """``(index, features, timings, error)`` of each of `paths`, in order, through
        `extract_many`; where an input raises, its error, then the next inputs go on through a
        fresh `extract_many`."""
        start = 0
        while start < len(paths):
            stream = self.extract_many(paths[start:], store_crops=store_crops)
            i = start
            try:
                for features, timings in stream:
                    yield i, features, timings, None
                    i += 1
            except Exception as e:  # noqa: BLE001 - any failure of one input is that input's row
                yield i, None, None, e
                i += 1
            finally:
                stream.close()
            start = i

    def _plan(self, paths: Iterable[str | os.PathLike], batch: int) -> Iterator[_Job]:
        """One job per input, from one cache look-up per `batch` inputs: a hit carries its
        features, a crops hit its crops; an input with the bytes of a miss before it (of this
        batch or the one before) takes that one's features once they are computed."""
        earlier: dict[str, _Job] = {}
        for chunk in batched(paths, batch):
            t = time.perf_counter()
            found = [Found(None)] * len(chunk)  # no cache (it failed): every input computed, none stored
            if self.active_cache is not None:
                try:
                    found = self.cache.lookup(chunk, self.fingerprint, self.crops_fingerprint)
                except CacheError as e:
                    self.cache_failed(e)
            share = (time.perf_counter() - t) / len(chunk)
            misses: dict[str, _Job] = {}
            for path, entry in zip(chunk, found):
                job = _Job(path, entry.digest, share, features=entry.features, crops=entry.crops)
                if entry.digest is not None and entry.features is None:
                    first = misses.get(entry.digest) or earlier.get(entry.digest)
                    if first is None:
                        misses[entry.digest] = job
                    else:
                        job.same_as, job.crops = first, None
                yield job
            earlier = misses

    def _submitted(self, jobs: Iterable[_Job], decoder: Decoder) -> Iterator[_Job]:
        """The jobs, each one that needs decoding submitted to `decoder` as it is taken."""
        for job in jobs:
            if job.features is None and job.crops is None and job.same_as is None:
                job.stream = decoder.submit(job.path, self.sampler)
            yield job

    def _compute(self, jobs: Iterator[_Job], writer: CacheWriter | None,
                 store_crops: bool) -> Iterator[tuple[FaceFeatures, dict[str, float]]]:
        """Computes the jobs in order, taking (and so submitting the decoding of) the next one
        before computing the current one; what is computed goes to `writer`."""
        for job in _one_ahead(jobs):
            if job.same_as is not None:
                job.features, job.same_as = job.same_as.result, None  # no chain of jobs kept alive
            if job.features is not None:
                yield job.features, {"cache": job.cache_seconds}
                continue
            timings = _timings() if job.cache_seconds is None else {**_timings(), "cache": job.cache_seconds}
            crops, job.crops = job.crops, None  # held no longer than needed
            if crops is None:
                crops, job.stream = _face_crops(job.stream, self.face_detector, self.crop, self.backbone.input_size,
                                                self.chunk, timings), None
                if writer is not None and job.digest and store_crops:
                    writer.put_crops(job.digest, self.crops_fingerprint, crops, self.crop_stages)
            job.result = feats = self._embed(crops, timings)
            del crops
            if writer is not None:
                if job.digest:
                    writer.put_features(job.digest, self.fingerprint, feats, self.stages)
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
    """One input of `extract_many`: what the cache holds of it, and its result once computed."""

    path: str | os.PathLike
    digest: str | None = None  # None: no cache, or a file that cannot be read
    cache_seconds: float | None = None  # None: no cache
    features: FaceFeatures | None = None  # a cache hit
    crops: FaceCrops | None = None  # cached crops: only embedding is left
    stream: Stream | InlineStream | None = None  # decoding, submitted
    same_as: _Job | None = None  # a miss before it, with the same bytes
    result: FaceFeatures | None = None


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
    with Decoder(chunk if prefetch is None else prefetch) as decoder:
        return _face_crops(decoder.submit(path, sampler), face_detector, crop, size, chunk, timings)


def _face_crops(stream: Stream | InlineStream, face_detector: FaceDetector, crop: CropPolicy, size: int,
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


def _timings() -> dict[str, float]:
    return {"decode": 0.0, "detect": 0.0, "crop": 0.0, "embed": 0.0}
