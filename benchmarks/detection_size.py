"""How RetinaFace's detection settings trade speed for boxes, on real videos.

    python benchmarks/detection_size.py --data ../shared/data/ffpp_c23_dev [--every 1] [--videos 70]
        [--frames 32] [--chunk 16] [--sizes 640 320] [--coarse 192] [--window 1.75]
        [--variant '{"coarse_size": 256, "window": 2}' ...] [--threads 2]

Samples `--frames` evenly spaced frames of every `--every`-th video of `--data` (up to
`--videos`) and gives them, `--chunk` at a time and in order as extraction does, to RetinaFace
configured each way (a row each): the whole frame at each of `--sizes` (`coarse_size=None`; the
first size is the reference); coarse to fine at the reference size for each `--coarse` and
`--window`: one window per onnxruntime call (`batch_size=1`) and windows of one shape batched
(the default detector's way, at `--coarse 192 --window 1.75`); the default detector with
`--threads` onnxruntime threads; and each `--variant` (a JSON dict of RetinaFace arguments). For
each it prints the faces found, the reference's faces it missed (none of its boxes at IoU > 0.5)
and the faces it found that the reference did not, the IoU of its largest face with the
reference's largest face (what the crop uses; median, 5th percentile, min, the fraction at or
above 0.95, and the frames where they are different faces), and milliseconds per frame with the
speed-up over the reference, in wall-clock time and in this process's CPU time (the steadier
of the two on a shared machine, but blind to the gain of a second thread). The detectors take
turns on each video, in alternating order, so they share the machine's load; compare the
ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def iou(a, b) -> float:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter)


def largest(boxes):
    return max(boxes, key=lambda f: (f.x2 - f.x1) * (f.y2 - f.y1)) if boxes else None


def variants(args) -> dict[str, dict]:
    """Row name → RetinaFace arguments; the first row is the reference."""
    rows = {f"whole frame {size}": {"detection_size": size, "coarse_size": None} for size in args.sizes}
    for coarse in args.coarse:
        for window in args.window:
            at = {"detection_size": args.sizes[0], "coarse_size": coarse, "window": window}
            name = f"coarse {coarse}, window {window:g}"
            rows[f"{name}, 1 window a call"] = {**at, "batch_size": 1}
            rows[f"{name}, batched"] = at
    if args.threads:
        rows[f"default, {args.threads} threads"] = {"threads": args.threads}
    for text in args.variant:
        rows[text] = json.loads(text)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/ffpp_c23_dev")
    parser.add_argument("--sizes", type=int, nargs="+", default=[640, 320])
    parser.add_argument("--coarse", type=int, nargs="*", default=[192],
                        help="coarse sizes of coarse-to-fine detection at the reference size (none: skip it)")
    parser.add_argument("--window", type=float, nargs="+", default=[1.75], help="its window sizes")
    parser.add_argument("--threads", type=int, default=0, help="also the default detector on this many threads")
    parser.add_argument("--variant", action="append", default=[], help="a JSON dict of RetinaFace arguments")
    parser.add_argument("--every", type=int, default=3, help="take every n-th video")
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=16, help="frames per detect call (extraction's chunk)")
    args = parser.parse_args()

    from deepfake_detect import get_face_detector, get_sampler
    from deepfake_detect.video import sample_frames

    videos = sorted(Path(args.data).rglob("*.mp4"))[::args.every][:args.videos]
    sampler = get_sampler("uniform", n=args.frames)
    detectors = {name: get_face_detector("retinaface", **kwargs) for name, kwargs in variants(args).items()}
    names = list(detectors)
    reference = names[0]
    found = dict.fromkeys(names, 0)
    missed = dict.fromkeys(names, 0)
    extra = dict.fromkeys(names, 0)
    other_face = dict.fromkeys(names, 0)
    seconds = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    overlap: dict[str, list[float]] = {name: [] for name in names}
    frames_seen = 0
    for k, path in enumerate(videos):
        frames = [frame for _, frame in sample_frames(path, sampler)[1]]
        frames_seen += len(frames)
        boxes = {}
        for name in (names if k % 2 == 0 else names[::-1]):
            detector = detectors[name]
            detector.detect(frames[:1])  # warm: the session, and this frame shape
            start, start_cpu = time.perf_counter(), time.process_time()
            boxes[name] = [faces for i in range(0, len(frames), args.chunk)
                           for faces in detector.detect(frames[i:i + args.chunk])]
            seconds[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
        for name in names:
            for ref, got in zip(boxes[reference], boxes[name]):
                found[name] += len(got)
                missed[name] += sum(not got or max(iou(r, g) for g in got) <= 0.5 for r in ref)
                extra[name] += sum(not ref or max(iou(g, r) for r in ref) <= 0.5 for g in got)
                a, b = largest(ref), largest(got)
                if a and b:
                    overlap[name].append(iou(a, b))
                    other_face[name] += overlap[name][-1] <= 0.5
    print(f"{len(videos)} videos, {frames_seen} frames ({args.chunk} a call); reference: {reference} "
          f"({1000 * seconds[reference] / frames_seen:.1f} ms/frame)")
    for name in names:
        line = (f"{name:>42}: {found[name]} faces ({missed[name]} missed, {extra[name]} extra), "
                f"{1000 * seconds[name] / frames_seen:.1f} ms/frame, {seconds[reference] / seconds[name]:.2f}x "
                f"(CPU {1000 * cpu[name] / frames_seen:.1f} ms/frame, {cpu[reference] / cpu[name]:.2f}x)")
        if name != reference and overlap[name]:
            ious = np.array(overlap[name])
            line += (f"; largest face's IoU: median {np.median(ious):.3f}, 5th percentile "
                     f"{np.percentile(ious, 5):.3f}, min {ious.min():.3f}, >= 0.95 {np.mean(ious >= 0.95):.1%}, "
                     f"another face {other_face[name]}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
