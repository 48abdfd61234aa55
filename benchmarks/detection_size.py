"""How the face detector's `detection_size` trades speed for boxes, on real videos.

    python benchmarks/detection_size.py --data ../shared/data/ffpp_c23_dev [--sizes 640 320] [--videos 20] [--frames 8]

Samples `--frames` evenly spaced frames of every third video of `--data` (up to `--videos`),
runs RetinaFace at each size (the first size is the reference) on the same frames, and prints
the faces found, the IoU of each size's largest face with the reference's, and the
milliseconds per frame (sizes take turns on each video, so they share the machine's load).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def iou(a, b) -> float:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/ffpp_c23_dev")
    parser.add_argument("--sizes", type=int, nargs="+", default=[640, 320])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()

    from deepfake_detect import get_face_detector, get_sampler
    from deepfake_detect.video import sample_frames

    videos = sorted(Path(args.data).rglob("*.mp4"))[::3][:args.videos]
    sampler = get_sampler("uniform", n=args.frames)
    detectors = {size: get_face_detector("retinaface", detection_size=size) for size in args.sizes}
    reference = args.sizes[0]
    found = dict.fromkeys(args.sizes, 0)
    seconds = dict.fromkeys(args.sizes, 0.0)
    overlap: dict[int, list[float]] = {size: [] for size in args.sizes[1:]}
    frames_seen = 0
    for path in videos:
        frames = [frame for _, frame in sample_frames(path, sampler)[1]]
        frames_seen += len(frames)
        largest = {}
        for size, detector in detectors.items():
            detector.detect(frames[:1])  # warm: the session, and this frame shape
            start = time.perf_counter()
            boxes = detector.detect(frames)
            seconds[size] += time.perf_counter() - start
            largest[size] = [max(b, key=lambda f: (f.x2 - f.x1) * (f.y2 - f.y1)) if b else None for b in boxes]
            found[size] += sum(b is not None for b in largest[size])
        for size in overlap:
            overlap[size] += [iou(a, b) for a, b in zip(largest[reference], largest[size]) if a and b]
    print(f"{len(videos)} videos, {frames_seen} frames; reference detection_size {reference}")
    for size in args.sizes:
        line = f"detection_size {size:5}: {found[size]} faces, {1000 * seconds[size] / frames_seen:.1f} ms/frame"
        if size in overlap and overlap[size]:
            ious = np.array(overlap[size])
            line += (f", IoU with {reference}: median {np.median(ious):.3f}, 5th percentile "
                     f"{np.percentile(ious, 5):.3f}, min {ious.min():.3f}")
        print(line)


if __name__ == "__main__":
    main()
