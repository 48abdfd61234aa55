"""A small synthetic deepfake dataset of real encoded videos, for tests, examples and benchmarks.

Real videos show a portrait's face region moving smoothly over a seeded background. Fake
videos move the same way, but every frame's face is replaced by another portrait's face
that carries the face-swap artefacts FaceForensics++ describes: a resolution mismatch
(downscaled 3-5x, then upscaled), a colour shift, and a feathered elliptical blend seam.

Identity says nothing about the label: the portraits form casts (consecutive pairs; an odd
one joins the last cast), fakes swap faces within a cast, and reals and fakes cycle through
the portraits alike, so each portrait is shown as often real as fake, as the target and as
the pasted face. A cast's videos share a `group` (in ``labels.csv``), so no person is on
both sides of a grouped split: only the artefacts separate the classes.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..faces import RetinaFaceDetector
from ..video import read_image

_MARGIN = 0.3  # context kept around a face box, as a fraction of its size on each side
_JITTER = 0.05  # relative scale jitter of the moving face


def make_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Writes RGB uint8 (H, W, 3) frames to an 'mp4v' video, atomically; returns its path."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    writer = None
    try:
        for frame in frames:
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frames must be RGB uint8 (H, W, 3); got {frame.dtype} {frame.shape}")
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
                if not writer.isOpened():
                    raise OSError(f"{path}: cv2.VideoWriter cannot open an 'mp4v' writer at {fps} fps, size {size}")
            elif (frame.shape[1], frame.shape[0]) != size:
                raise ValueError(f"all frames must be {size[0]}x{size[1]}; got {frame.shape[1]}x{frame.shape[0]}")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if writer is None:
            raise ValueError(f"{path}: no frames to write")
        writer.release()
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)
    return path


def _face_boxes(images: Sequence[np.ndarray]) -> list[list[tuple[float, float, float, float]]]:
    """Each image's faces as (x1, y1, x2, y2), largest first; ValueError naming a faceless image."""
    found = RetinaFaceDetector().detect(list(images))
    for i, boxes in enumerate(found):
        if not boxes:
            raise ValueError(f"portrait {i} has no face that RetinaFace can find")
    return [[(b.x1, b.y1, b.x2, b.y2) for b in sorted(boxes, key=lambda b: -b.area)] for boxes in found]


def _crop(image: np.ndarray, box: tuple[float, float, float, float], margin: float) -> tuple[np.ndarray, np.ndarray]:
    """The box grown by `margin` on each side, clipped to the image: (crop, box in crop coordinates)."""
    x1, y1, x2, y2 = box
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    h, w = image.shape[:2]
    cx1, cy1 = max(int(x1 - dx), 0), max(int(y1 - dy), 0)
    cx2, cy2 = min(int(np.ceil(x2 + dx)), w), min(int(np.ceil(y2 + dy)), h)
    return image[cy1:cy2, cx1:cx2], np.array([x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1])


def load_portraits(images_dir: str | os.PathLike) -> list[np.ndarray]:
    """Portraits of distinct people: the two largest faces of `face.jpg`, `grace_hopper.bmp`,
    and scikit-image's astronaut when scikit-image is installed. RGB uint8 each."""
    folder = Path(images_dir)
    group, hopper = read_image(folder / "face.jpg"), read_image(folder / "grace_hopper.bmp")
    boxes = _face_boxes([group])[0]
    if len(boxes) < 2:
        raise ValueError(f"{folder / 'face.jpg'}: expected two faces, found {len(boxes)}")
    portraits = [np.ascontiguousarray(_crop(group, box, _MARGIN)[0]) for box in boxes[:2]] + [hopper]
    try:
        from skimage.data import astronaut
    except ImportError:
        return portraits
    return portraits + [astronaut()]


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A random smooth colour gradient or low-frequency noise texture."""
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        x, y = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
        t = (np.cos(angle) * x + np.sin(angle) * y)[..., None]
        t = (t - t.min()) / max(np.ptp(t), 1e-6)
        a, b = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
        return (a * (1 - t) + b * t).astype(np.uint8)
    grid = (max(height // 32, 2), max(width // 32, 2))
    coarse = rng.uniform(40, 215, 3) + rng.normal(0, 35, (*grid, 1)) + rng.normal(0, 12, (*grid, 3))
    texture = cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(cv2.GaussianBlur(texture, (0, 0), 4), 0, 255).astype(np.uint8)


def _swap(frame: np.ndarray, box: np.ndarray, source: np.ndarray, factor: float, shift: np.ndarray) -> None:
    """Blends `source` (a face crop) over the frame's face box, degraded and colour-shifted, in place."""
    x1, y1 = np.floor(box[:2]).astype(int).clip(0)
    x2, y2 = np.minimum(np.ceil(box[2:]).astype(int), frame.shape[1::-1])
    w, h = x2 - x1, y2 - y1
    face = cv2.resize(source, (w, h), interpolation=cv2.INTER_AREA)
    small = cv2.resize(face, (max(round(w / factor), 1), max(round(h / factor), 1)), interpolation=cv2.INTER_AREA)
    face = np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR) + shift, 0, 255)
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (int(w * 0.4), int(h * 0.44)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.06 * min(w, h))[..., None]
    region = frame[y1:y2, x1:x2].astype(np.float32)
    frame[y1:y2, x1:x2] = (mask * face + (1 - mask) * region).round().astype(np.uint8)


def _frames(rng: np.random.Generator, portrait: np.ndarray, box: tuple, n: int, fps: float,
            size: tuple[int, int], swap: tuple[np.ndarray, float, np.ndarray] | None) -> Iterable[np.ndarray]:
    """One video's frames: the portrait's face region moving over a background, optionally face-swapped."""
    width, height = size
    patch, face = _crop(portrait, box, _MARGIN)
    room = (1 - _JITTER) * min(width / patch.shape[1], height / patch.shape[0])
    scale = min(rng.uniform(90, 140) / (face[3] - face[1]), room)
    patch = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    face = face * scale
    ph, pw = patch.shape[:2]
    amp = np.maximum((np.array([width, height]) - (1 + _JITTER) * np.array([pw, ph])) / 2, 0)
    freq, phase = rng.uniform(0.1, 0.3, 3), rng.uniform(0, 2 * np.pi, 3)
    background = _background(rng, width, height)
    for i in range(n):
        wave = np.sin(2 * np.pi * freq * i / fps + phase)
        k = 1 + _JITTER * wave[2]
        tx, ty = np.array([width, height]) / 2 + amp * wave[:2] - k * np.array([pw, ph]) / 2
        frame = background.copy()
        cv2.warpAffine(patch, np.float32([[k, 0, tx], [0, k, ty]]), (width, height), dst=frame,
                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
        if swap is not None:
            _swap(frame, face * k + np.array([tx, ty, tx, ty]), *swap)
        yield frame


def _casts(n: int) -> list[tuple[int, ...]]:
    """Portraits 0..n-1 in casts: consecutive pairs, an odd one out joining the last."""
    casts = [tuple(range(i, i + 2)) for i in range(0, n - n % 2, 2)]
    return casts[:-1] + [casts[-1] + ((n - 1,) if n % 2 else ())]


def make_dataset(root: str | os.PathLike, faces: Sequence[np.ndarray], n_real: int = 6, n_fake: int = 6,
                 seconds: float = 3.0, fps: float = 10.0, size: tuple[int, int] = (320, 240),
                 seed: int = 0, artefacts: bool = True) -> Path:
    """Writes `root/real/real_NNN.mp4`, `root/fake/fake_NNN.mp4` and `root/labels.csv`
    (columns ``path,label,group,target,face``: the portraits whose head and whose face a
    video shows, by index in `faces`); returns `root`.

    Video i of each class shows portrait ``i % len(faces)``; fake i pastes
    in the face of another portrait of its cast, a different one on each pass over the
    portraits. With `n_real` and `n_fake` multiples of ``len(faces)``, every portrait is
    equally often real, fake target and pasted face.

    Args:
        faces: at least two RGB uint8 portraits, each with one clearly visible face.
        size: (width, height) of the frames, at least 64x64.
        seed: the same seed gives the same videos.
        artefacts: False makes each fake a plain video of the portrait whose face it would
            paste in, so only who is shown could tell the classes apart: a control for tests.
    """
    if n_real < 1 or n_fake < 1:
        raise ValueError(f"n_real and n_fake must be >= 1; got {n_real} and {n_fake}")
    if not seconds > 0 or not fps > 0:
        raise ValueError(f"seconds and fps must be > 0; got {seconds} and {fps}")
    if len(size) != 2 or min(size) < 64:
        raise ValueError(f"size must be (width, height), each >= 64; got {size}")
    if len(faces) < 2:
        raise ValueError(f"faces must hold at least two portraits (fakes swap in another face); got {len(faces)}")
    boxes = [found[0] for found in _face_boxes(faces)]
    casts = _casts(len(faces))
    order = [(portrait, cast) for cast in casts for portrait in cast]
    n = max(round(seconds * fps), 1)
    rng = np.random.default_rng(seed)
    root = Path(root)
    rows = []
    for label, count in (("real", n_real), ("fake", n_fake)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            target, cast = order[i % len(order)]
            donor, swap = target, None
            if label == "fake":
                turn = 1 + (i // len(order)) % (len(cast) - 1)
                donor = cast[(cast.index(target) + turn) % len(cast)]
                shift = np.zeros(3, np.float32)
                shift[rng.integers(3)] = rng.uniform(15, 25) * rng.choice([-1, 1])
                swap = (_crop(faces[donor], boxes[donor], 0.0)[0], rng.uniform(3, 5), shift)
            if artefacts:
                frames = _frames(rng, faces[target], boxes[target], n, fps, tuple(size), swap)
            else:
                frames = _frames(rng, faces[donor], boxes[donor], n, fps, tuple(size), None)
            name = f"{label}/{label}_{i:03d}.mp4"
            make_video(root / name, frames, fps)
            rows.append((name, label, "portraits_" + "_".join(map(str, cast)), target, donor))
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("path", "label", "group", "target", "face"), *rows])
    return root
