"""The OpenCV reader (`cv2.VideoCapture`): header numbers, frame counting and sampled-frame reading.

OpenCV decodes every frame up to the last sampled one: `grab()` skips converting the frames
in between to pixels, not decoding them. Its `read` is the reference the other readers match.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from ..errors import VideoReadError


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


def open_capture(path: Path) -> cv2.VideoCapture:
    """`path` opened by OpenCV; `VideoReadError` where it cannot be."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoReadError(
            f"{path}: OpenCV cannot open it as a video (corrupt, truncated, or not a video despite its name)."
        )
    return cap


def header(path: Path) -> tuple[int, float, int, int]:
    """Frame count, fps, width and height as OpenCV reports them; a count or size the header
    does not give, or gives as NaN or negative, is 0."""
    cap = open_capture(path)
    try:
        return (_count(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS)),
                _count(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), _count(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()


def _count(value: float) -> int:
    return int(value) if math.isfinite(value) and value > 0 else 0


def count_frames(path: Path, limit: int, clock) -> int:
    """Frames that really decode, for headers whose count is missing or impossible (at most `limit`)."""
    cap = open_capture(path)
    try:
        return grab_to(cap, 0, limit, clock)
    finally:
        cap.release()


def grab_to(cap: cv2.VideoCapture, position: int, target: int, clock) -> int:
    """Grab (decode without converting) frames until the next one is `target`, or the stream
    ends; returns the new position (the number of frames grabbed so far)."""
    while position < target:
        clock.check()
        if not cap.grab():
            break
        position += 1
    return position


def read(path: Path, wanted: np.ndarray, frame_count: int, clock, check_tail: bool, tail: int):
    """Yields the `wanted` frames as ``(index, rgb)``; returns (position, frames yielded, whether
    the stream ended before `frame_count`, whether it goes on past it). Where `check_tail` and
    the last wanted frame is within `tail` frames of `frame_count`, reads on to see the stream
    end there."""
    cap = open_capture(path)
    yielded = 0
    position = 0  # frames grabbed or read so far: the index of the next frame
    ended = False
    longer = False
    try:
        for start in range(0, len(wanted), 4096):  # in slices: a lying header may ask for millions
            for index in wanted[start:start + 4096].tolist():
                position = grab_to(cap, position, index, clock)
                clock.check()
                ok, frame = cap.read() if position == index else (False, None)
                if not ok or frame is None:
                    ended = True
                    break
                position += 1
                yielded += 1
                rgb = to_rgb8(frame)
                clock.pause()
                yield index, rgb
                clock.resume()
            if ended:
                break
        if check_tail and not ended and yielded and frame_count - position <= tail:
            # cheap here: read on to the header's last frame, and one more, to see the stream end there
            position = grab_to(cap, position, frame_count, clock)
            ended = position < frame_count
            longer = not ended and cap.grab()
    finally:
        cap.release()
    return position, yielded, ended, longer
