"""Opening and reading videos and images with OpenCV: probing and sampled-frame iteration.

Frames come out as RGB uint8 arrays of shape (H, W, 3), whatever the file holds
(grayscale, 16-bit, alpha). Only the sampled frames are decoded to pixels: the others are
`grab()`-ed and skipped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import VideoReadError
from .sampling import FrameSampler

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})


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
        raise VideoReadError(f"{p} is a directory, not a video or image file. Give a file, or use a dataset method for folders.")
    if p.stat().st_size == 0:
        raise VideoReadError(f"{p} is empty (0 bytes): the file was not written completely. Copy or download it again.")
    return p


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Any OpenCV image (BGR, BGRA, grayscale; 8 or 16 bit; float) as RGB uint8 (H, W, 3)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float64) * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3); `VideoReadError` if it cannot be decoded."""
    p = _check_file(path)
    data = np.fromfile(p, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None or image.size == 0:
        raise VideoReadError(f"{p}: not a readable image (corrupt, or not the format its name says).")
    return to_rgb8(image)


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoReadError(
            f"{path}: OpenCV cannot open it as a video (corrupt, truncated, or not a video despite its name)."
        )
    return cap


def probe(path: str | os.PathLike) -> VideoInfo:
    """Frame count, fps and size of a video or image, as the file's header says."""
    p = _check_file(path)
    if is_image(p):
        h, w = read_image(p).shape[:2]
        return VideoInfo(str(p), 1, 0.0, w, h)
    cap = _open(p)
    try:
        return VideoInfo(
            str(p),
            max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
            float(cap.get(cv2.CAP_PROP_FPS)),
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        cap.release()


def _count_frames(path: Path, limit: int) -> int:
    """Frames that really decode, for containers whose header gives no count (at most `limit`)."""
    cap = _open(path)
    try:
        n = 0
        while n < limit and cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def sample_frames(
    path: str | os.PathLike, sampler: FrameSampler, frame_budget: int = 200_000
) -> tuple[VideoInfo, Iterator[tuple[int, np.ndarray]]]:
    """The header info and an iterator of ``(frame_index, rgb_frame)`` for the sampled frames.

    A header with no frame count is checked by counting (up to `frame_budget` frames). The
    iterator stops early where the header promised more frames than the stream holds, and
    raises `VideoReadError` if no frame at all can be decoded.
    """
    info = probe(path)
    p = Path(info.path)
    if is_image(p):
        return info, iter([(0, read_image(p))])
    frame_count = info.frame_count
    if frame_count <= 0:
        frame_count = _count_frames(p, frame_budget)
        info = VideoInfo(info.path, frame_count, info.fps, info.width, info.height)
        if frame_count == 0:
            raise VideoReadError(f"{p}: the video holds no decodable frame (empty or corrupt stream).")
    wanted = sampler.indices(frame_count, info.fps)
    return info, _iter_indices(p, wanted)


def _iter_indices(path: Path, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    cap = _open(path)
    yielded = 0
    try:
        position = 0
        for index in wanted.tolist():
            ok = True
            while position < index and ok:
                ok = cap.grab()
                position += 1
            if not ok:
                break
            ok, frame = cap.read()
            position += 1
            if not ok or frame is None:
                break
            yielded += 1
            yield index, to_rgb8(frame)
    finally:
        cap.release()
    if yielded == 0 and len(wanted):
        raise VideoReadError(f"{path}: no frame could be decoded (corrupt or truncated video).")
