"""From an input file to its face features: decode → detect → crop → embed.

Frames stream through in chunks, so memory stays flat with video length: only the small
face crops of the sampled frames are kept until they are embedded.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator

import numpy as np

from .backbones import Backbone
from .faces import CropPolicy, FaceDetector
from .results import FaceFeatures
from .sampling import FrameSampler
from .video import sample_frames


class FeatureExtractor:
    """The stages upstream of the head, composed; `fingerprint` names what they compute."""

    def __init__(self, sampler: FrameSampler, face_detector: FaceDetector, crop: CropPolicy, backbone: Backbone,
                 chunk: int = 16):
        self.sampler = sampler
        self.face_detector = face_detector
        self.crop = crop
        self.backbone = backbone
        self.chunk = chunk

    @property
    def fingerprint(self) -> str:
        payload = json.dumps({
            "sampler": [self.sampler.registry_name, self.sampler.get_config()],
            "face_detector": self.face_detector.fingerprint,
            "crop": self.crop.get_config(),
            "backbone": self.backbone.fingerprint,
        }, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def extract(self, path: str | os.PathLike) -> tuple[FaceFeatures, dict[str, float]]:
        """The face features of one video or image, and the seconds spent per stage."""
        timings = {"decode": 0.0, "detect": 0.0, "crop": 0.0, "embed": 0.0}
        info, frames = sample_frames(path, self.sampler)
        fps = info.fps if info.fps and np.isfinite(info.fps) and info.fps > 0 else 0.0
        size = self.backbone.input_size
        indices, boxes, scores, crops = [], [], [], []
        sampled = 0
        for chunk in _chunks(frames, self.chunk, timings):
            sampled += len(chunk)
            t = time.perf_counter()
            found = self.face_detector.detect([frame for _, frame in chunk])
            timings["detect"] += time.perf_counter() - t
            t = time.perf_counter()
            for (index, frame), faces in zip(chunk, found):
                box = self.crop.choose(faces)
                if box is None:
                    continue
                indices.append(index)
                boxes.append((box.x1, box.y1, box.x2, box.y2))
                scores.append(box.score)
                crops.append(self.crop.crop(frame, box, size, whole_frame=self.face_detector.whole_frame))
            timings["crop"] += time.perf_counter() - t
        t = time.perf_counter()
        features = self.backbone.embed(np.stack(crops)) if crops else np.zeros((0, 0), np.float32)
        timings["embed"] += time.perf_counter() - t
        idx = np.asarray(indices, dtype=np.int64)
        return FaceFeatures(
            frame_indices=idx,
            times=idx / fps if fps else np.zeros(len(idx)),
            boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            scores=np.asarray(scores, dtype=np.float32),
            features=features,
            frames_sampled=sampled,
        ), timings


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
