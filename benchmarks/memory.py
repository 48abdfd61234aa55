"""predict_video's peak memory stays flat with video length: frames are streamed, never all held.

    cd /work/main && .venv/bin/python benchmarks/memory.py                  # 1, 5 and 10 minutes
    cd /work/main && .venv/bin/python benchmarks/memory.py --minutes 1 2    # a quicker check

Writes 720p (1280x720), 25 fps videos with ``cv2.VideoWriter`` ('mp4v'): a real face (from
../shared/images) drifting over a textured background, 1, 5 and 10 minutes long (kept in
``--workdir`` and reused by later runs). Fits the default detector (fixed-rate sampler at
1 frame per second, RetinaFace, MobileNet V1 0.5 with the real weights, the paper's softmax
head) on a small generated dataset and saves it. Then, for each video, a fresh child process
loads the model, warms up on a 2-second clip (so the compiled models are in its baseline) and
runs ``predict_video`` on the long video without a feature cache, so every frame is decoded
(grabbed) and every sampled frame goes through detection and embedding. The child reports its
resident memory after the warm-up, the peak during the long prediction (``/proc/self/statm``
sampled every 10 ms) and its ``ru_maxrss``.

Goal: peak RSS ≤ 1.5 GB and flat with length. Holding the frames instead would take
1280 x 720 x 3 bytes x 25 fps = 4.1 GB per minute of video.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WEIGHTS = SHARED / "weights" / "mobilenet_v1_0.50_no_top.weights.h5"
IMAGES = SHARED / "images"
SIZE, FPS = (1280, 720), 25.0


def write_video(path: Path, seconds: float, portrait: np.ndarray) -> Path:
    """A 720p, 25 fps mp4v video of the portrait drifting over a fixed textured background."""
    n = round(seconds * FPS)
    if path.exists() and cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == n:
        return path  # made by an earlier run
    w, h = SIZE
    rng = np.random.default_rng(0)
    coarse = cv2.resize(rng.integers(40, 215, (9, 16, 3), dtype=np.uint8), SIZE, interpolation=cv2.INTER_CUBIC)
    face = cv2.resize(portrait, None, fx=360 / portrait.shape[0], fy=360 / portrait.shape[0],
                      interpolation=cv2.INTER_AREA)
    fh, fw = face.shape[:2]
    tmp = path.with_suffix(".partial.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    assert writer.isOpened(), "OpenCV cannot write mp4v"
    bgr_face = cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
    for i in range(n):
        t = i / FPS
        x = int((w - fw) / 2 + (w - fw) / 2.5 * np.sin(2 * np.pi * t / 17))
        y = int((h - fh) / 2 + (h - fh) / 3 * np.sin(2 * np.pi * t / 11))
        frame = coarse.copy()
        frame[y:y + fh, x:x + fw] = bgr_face
        writer.write(frame)
    writer.release()
    os.replace(tmp, path)
    return path


def fit_model(workdir: Path) -> Path:
    """The default detector, fitted on 4 generated 2-second videos, saved."""
    from deepfake_detect import DeepfakeDetector
    from deepfake_detect.datasets.synthetic import load_portraits, make_dataset

    model = workdir / "model.dfd"
    if model.exists():
        return model
    root = make_dataset(workdir / "train", load_portraits(IMAGES), n_real=2, n_fake=2, seconds=2.0, fps=5.0)
    detector = DeepfakeDetector(backbone={"name": "mobilenet_v1", "weights": str(WEIGHTS)},
                                head={"name": "softmax", "steps": 200}, cache=None)
    detector.fit(root, verbose=0, validation_split=0)
    return detector.save(model)


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(model: str, warmup: str, video: str) -> None:
    """In a fresh process: load, warm up, predict the long video while sampling RSS; print JSON."""
    from deepfake_detect import DeepfakeDetector

    detector = DeepfakeDetector.load(model)
    detector.cache = None  # every frame decoded: what is measured is the reading, not a cache hit
    detector.predict_video(warmup)
    baseline, peak, done = rss(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    pred = detector.predict_video(video)
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    print(json.dumps({
        "baseline_rss": baseline, "peak_rss": max(peak[0], rss()),
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "seconds": seconds, "timings": pred.timings, "frames_sampled": pred.frames_sampled,
        "faces_found": pred.faces_found, "label": pred.label,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 10])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "deepfake_detect_memory")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "WARMUP", "VIDEO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from deepfake_detect.datasets.synthetic import load_portraits

    args.workdir.mkdir(parents=True, exist_ok=True)
    portrait = load_portraits(IMAGES)[0]
    started = time.perf_counter()
    warmup = write_video(args.workdir / "warmup_2s.mp4", 2.0, portrait)
    videos = {m: write_video(args.workdir / f"video_{m:g}min.mp4", 60 * m, portrait) for m in args.minutes}
    print(f"videos ready in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{m:g} min {p.stat().st_size / 1e6:.0f} MB" for m, p in videos.items()), flush=True)
    model = fit_model(args.workdir)
    print(f"{'minutes':>7} {'frames':>7} {'sampled':>7} {'faces':>5} {'baseline MB':>11} {'peak MB':>8} "
          f"{'ru_maxrss MB':>12} {'predict s':>9} {'decode s':>8}", flush=True)
    for minutes, video in videos.items():
        out = subprocess.run([sys.executable, __file__, "--child", str(model), str(warmup), str(video)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{minutes:>7g} {int(60 * minutes * FPS):>7} {r['frames_sampled']:>7} {r['faces_found']:>5} "
              f"{r['baseline_rss'] / 1e6:>11.0f} {r['peak_rss'] / 1e6:>8.0f} {r['ru_maxrss'] / 1e6:>12.0f} "
              f"{r['seconds']:>9.1f} {r['timings'].get('decode', 0):>8.1f}", flush=True)


if __name__ == "__main__":
    main()
