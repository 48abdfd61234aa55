"""Re-fitting a head on cached features costs seconds, not another pass of decoding and embedding.

    cd /work/main && PYTHONPATH=src .venv/bin/python benchmarks/cache_refit.py

Generates a dataset of 15,000 face crops (``--faces``) from the real faces in
../shared/images (found by RetinaFace, then augmented: scale, shift, rotation, flip,
brightness, contrast, noise, JPEG quality; "fake" crops also get a face-swap-like
resolution mismatch and colour shift), saved as JPEG files under real/ and fake/ of a
temporary folder. Then, with ``face_detector="none"`` and MobileNet V1 (real weights):

1. fits the paper's softmax head on a cold cache (decode, embed, store everything);
2. re-fits a new head (logistic) on the warm cache: the time the cache is for;
3. predicts one FaceForensics++ video twice with RetinaFace and the re-fitted head: the
   second, cached call is timed (median of repeats).

Goals on the 2-core development machine: re-fit ≤ 5 s, cached predict_video ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from deepfake_detect import DeepfakeDetector, get_head
from deepfake_detect.backbones import MobileNetV1
from deepfake_detect.datasets import discover, grouped_split
from deepfake_detect.faces import RetinaFaceDetector
from deepfake_detect.video import read_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WEIGHTS = SHARED / "weights" / "mobilenet_v1_0.50_no_top.weights.h5"
IMAGES = SHARED / "images"
VIDEO = SHARED / "data" / "ffpp_c23_dev" / "real" / "044.mp4"


def source_faces() -> list[np.ndarray]:
    """Square regions (face box enlarged 2x) around every clear face of the shared photos."""
    detector = RetinaFaceDetector()
    faces = []
    for name in ("grace_hopper.bmp", "face.jpg"):
        image = read_image(IMAGES / name)
        for box in detector.detect([image])[0]:
            if box.score < 0.9 or min(box.width, box.height) < 40:
                continue
            side = int(2 * max(box.width, box.height))
            cx, cy = int((box.x1 + box.x2) / 2), int((box.y1 + box.y2) / 2)
            padded = cv2.copyMakeBorder(image, side, side, side, side, cv2.BORDER_REFLECT)
            faces.append(padded[cy + side // 2:cy + side // 2 + side, cx + side // 2:cx + side // 2 + side])
    return faces


def augment(face: np.ndarray, fake: bool, rng: np.random.Generator) -> np.ndarray:
    """One crop of `face` (a 2x face region) as a face detector and crop policy would give it."""
    side = face.shape[0]
    angle, scale = rng.uniform(-15, 15), rng.uniform(1.4, 1.8)
    shift = rng.uniform(-0.06, 0.06, 2) * side
    m = cv2.getRotationMatrix2D((side / 2, side / 2), angle, scale)
    m[:, 2] += shift
    crop = cv2.warpAffine(face, m, (side, side), borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if fake:  # the inner face, pasted back after a resolution drop and a colour shift
        a, b = side // 4, 3 * side // 4
        inner = crop[a:b, a:b]
        factor = 1 / rng.uniform(2.5, 5)
        small = cv2.resize(inner, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        inner = cv2.resize(small, (b - a, b - a), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        crop = crop.copy()
        crop[a:b, a:b] = np.clip(inner + rng.uniform(-15, 15, 3), 0, 255).astype(np.uint8)
    out = crop.astype(np.float32) * rng.uniform(0.75, 1.25) + rng.uniform(-25, 25)
    out += rng.normal(0, rng.uniform(0, 6), out.shape)
    size = int(rng.integers(96, 161))
    return cv2.resize(np.clip(out, 0, 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_AREA)


def make_dataset(root: Path, n: int, seed: int = 0) -> Path:
    faces = source_faces()
    rng = np.random.default_rng(seed)
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        label = "fake" if i % 2 else "real"
        crop = augment(faces[i % len(faces)], label == "fake", rng)
        quality = int(rng.integers(60, 96))
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        (root / label / f"{i:06d}.jpg").write_bytes(data.tobytes())
    return root


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=15_000, help="face crops in the dataset (default 15000)")
    parser.add_argument("--workdir", type=Path,
                        help="folder for the dataset and the cache (default: a temporary one, removed at the end)")
    args = parser.parse_args()
    if not (WEIGHTS.exists() and IMAGES.exists()):
        sys.exit(f"needs the shared weights and images under {SHARED}")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cache_refit_"))
    try:
        t, data = timed(make_dataset, workdir / "data", args.faces)
        print(f"dataset: {args.faces} face crops generated in {t:.1f} s under {data}")
        backbone = MobileNetV1(weights=str(WEIGHTS))  # one instance: its Keras model is built once
        cache = workdir / "cache.sqlite"
        common = {"face_detector": "none", "backbone": backbone, "cache": cache}

        first = DeepfakeDetector(head="softmax", **common)
        t_first, _ = timed(first.fit, data, verbose=1)
        print(f"first fit (cold cache, softmax head): {t_first:.1f} s")

        head = {"name": "logistic", "epochs": 5, "batch_size": 256}
        refit = DeepfakeDetector(head=head, **common)
        t_refit, _ = timed(refit.fit, data, verbose=0)
        print(f"re-fit (warm cache, {head}): {t_refit:.2f} s; ratio first / re-fit: {t_first / t_refit:.0f}x")
        print("  where the re-fit's time goes, each part timed again alone:")
        t_discover, samples = timed(discover, data)
        t_read, feats = timed(lambda: [f for f, _ in refit.extractor.extract_many([s.path for s in samples])])
        labels, groups = np.array([s.label for s in samples]), np.array([s.group for s in samples])
        t_split, (train, val) = timed(grouped_split, labels, groups, 0.15, 0)
        x = np.concatenate([f.features for f in feats])
        t_head, _ = timed(get_head(head).fit, x[train], labels[train], validation_data=(x[val], labels[val]))
        print(f"  discover {t_discover:.2f} s | features of {len(x)} faces through the cache {t_read:.2f} s | "
              f"grouped split {t_split:.2f} s | head training {t_head:.2f} s")
        print(f"cache: {refit.extractor.cache.info()['size_bytes'] / 2**20:.0f} MiB at {cache}")

        if VIDEO.exists():
            video = DeepfakeDetector(face_detector="retinaface", backbone=backbone, cache=cache)
            video.head_ = refit.head_  # the re-fitted head, on RetinaFace crops of a real video
            t_cold, pred = timed(video.predict_video, VIDEO)
            t_warm_first, _ = timed(video.predict_video, VIDEO)
            warm = [timed(video.predict_video, VIDEO)[0] for _ in range(30)]
            print(f"predict_video {VIDEO.name} ({pred.frames_sampled} frames sampled, {pred.faces_found} faces): "
                  f"uncached {t_cold:.2f} s; cached: first {t_warm_first * 1e3:.1f} ms, "
                  f"median {statistics.median(warm) * 1e3:.1f} ms, max {max(warm) * 1e3:.1f} ms over {len(warm)}")
        else:
            print(f"predict_video skipped: {VIDEO} not found")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
