"""From an input file to its face features: decode → detect → crop → embed, read through the cache.

Frames stream through in chunks, so memory stays flat with video length: only the small
face crops of the sampled frames are kept until they are embedded. With a `FeatureCache`,
a file whose features were computed by the same stages is not decoded again, and one whose
crops were cut by the same stages is only embedded.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
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
    """

    def __init__(self, sampler: FrameSampler, face_detector: FaceDetector, crop: CropPolicy, backbone: Backbone,
                 chunk: int = 16, cache: FeatureCache | None = None):
        self.sampler = sampler
        self.face_detector = face_detector
        self.crop = crop
        self.backbone = backbone
        self.chunk = chunk
        self.cache = cache

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
        ("cache": looking it up, and all there is on a hit)."""
        [result] = self.extract_many([path])
        return result

    def extract_many(self, paths: Iterable[str | os.PathLike],
                     batch: int = 64) -> Iterator[tuple[FaceFeatures, dict[str, float]]]:
        """``(features, timings)`` of each input, in order, as a stream.

        Cache look-ups go `batch` inputs at a time; what is computed is written in batched
        transactions, committed at least every second, so an interrupted run keeps its work.
        Inputs with the same bytes are computed once.
        """
        if self.cache is None:
            for path in paths:
                timings = _timings()
                yield self._embed(self._crops(path, timings), timings), timings
            return
        with self.cache.writer() as writer:
            for chunk in batched(paths, batch):
                t = time.perf_counter()
                digests = self.cache.digests(chunk)
                found = self.cache.get_features([d for d in digests if d], self.fingerprint)
                share = (time.perf_counter() - t) / len(chunk)
                for path, digest in zip(chunk, digests):
                    if digest in found:
                        yield found[digest], {"cache": share}
                        continue
                    timings = {**_timings(), "cache": share}
                    feats = self._extract_miss(path, digest, writer, timings)
                    if digest:
                        found[digest] = feats
                    writer.commit_if_due()
                    yield feats, timings

    def _extract_miss(self, path: str | os.PathLike, digest: str | None, writer: CacheWriter,
                      timings: dict[str, float]) -> FaceFeatures:
        """Features not in the cache: from cached crops if there are, else from the file."""
        if digest is None:  # unreadable: computing raises the reading error
            return self._embed(self._crops(path, timings), timings)
        t = time.perf_counter()
        crops = self.cache.get_crops([digest], self.crops_fingerprint).get(digest)
        timings["cache"] += time.perf_counter() - t
        if crops is None:
            crops = self._crops(path, timings)
            writer.put_crops(digest, self.crops_fingerprint, crops, self.crop_stages)
        feats = self._embed(crops, timings)
        writer.put_features(digest, self.fingerprint, feats, self.stages)
        return feats

    def _crops(self, path: str | os.PathLike, timings: dict[str, float]) -> FaceCrops:
        return face_crops(path, self.sampler, self.face_detector, self.crop, self.backbone.input_size,
                          self.chunk, timings)

    def _embed(self, crops: FaceCrops, timings: dict[str, float]) -> FaceFeatures:
        t = time.perf_counter()
        features = self.backbone.embed(crops.crops) if len(crops) else np.zeros((0, 0), np.float32)
        timings["embed"] += time.perf_counter() - t
        return FaceFeatures(frame_indices=crops.frame_indices, times=crops.times, boxes=crops.boxes,
                            scores=crops.scores, features=features, frames_sampled=crops.frames_sampled)


def face_crops(path: str | os.PathLike, sampler: FrameSampler, face_detector: FaceDetector, crop: CropPolicy,
               size: int, chunk: int = 16, timings: dict[str, float] | None = None) -> FaceCrops:
    """Decode the sampled frames of `path`, find the faces, cut one `size`-pixel crop per frame
    with a face; seconds per stage are added to `timings` where given."""
    timings = _timings() if timings is None else timings
    info, frames = video.sample_frames(path, sampler)
    fps = info.fps if info.fps and np.isfinite(info.fps) and info.fps > 0 else 0.0
    indices, boxes, scores, crops = [], [], [], []
    sampled = 0
    for group in _chunks(frames, chunk, timings):
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


def _digest(stages: dict[str, Any]) -> str:
    payload = json.dumps(stages, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _chunks(frames: Iterator[tuple[int, np.ndarray]], n: int, timings: dict[str, float]):
    """Lists of up to `n` (index, frame) pairs; time spent decoding goes to timings["decode"]."""
    chunk: list[tuple[int, np.ndarray]] = []
    while True:
        t = time.perf_counter()
        item = next(frames, None)
        timings["decode"] += time.perf_counter() - t
        if item is None:
            break
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
