"""Decoding sampled frames: OpenCV, PyAV seeking and skipping (in 1 or 2 threads), and `auto`.

    PYTHONPATH=src .venv/bin/python benchmarks/readers.py [--data ../shared/data/ffpp_c23_dev] [--ffpp 10] [--repeats 3]
        [--consumer-ms 30]

Inputs: `--ffpp` real FaceForensics++ c23 videos of `--data` (a keyframe every 250 frames), a
generated 20 s 640x480 clip at 25 fps written by `cv2.VideoWriter` (mp4v, a keyframe every 12
frames), and the same clip re-encoded to H.264 by PyAV's libx264 with a keyframe every 12 and
every 50 frames (kept in `--workdir`). For each input set and sampler (32 evenly spaced
frames; 1 frame a second) the readers take turns file by file, in an order that rotates, round
after round (the first round warms the page cache); each reader's median wall and CPU time
(all threads) over the rounds is printed with its median speed-up over OpenCV in the same
round, and the CPU seconds per file. `--consumer-ms` decodes in a thread beside a consumer
that spends that much CPU on each frame (face detection's place in the pipeline). The PyAV
rows: "pyav seek" seeks to keyframes without skipping, in FFmpeg's AUTO threads (the reader
before skipping); "pyav skip" also skips non-reference frames (H.264 only), in one thread, or
in 2 FRAME or AUTO (frame and slice) threads (each seeks too, where that pays). "auto" is
the library's default.
"""

from __future__ import annotations

import argparse
import os
import queue
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from memory import SHARED  # benchmarks/memory.py

H264 = frozenset({"h264"})
#: name: (reader, the `pyav` settings it reads with; the others are the library's defaults)
READERS = {"opencv": ("opencv", {}),
           "pyav seek AUTO": ("pyav", {"SKIP_CODECS": frozenset(), "THREAD_TYPE": "AUTO", "THREAD_COUNT": 0}),
           "pyav skip 1 thread": ("pyav", {"SKIP_CODECS": H264, "THREAD_TYPE": None}),
           "pyav skip FRAME x2": ("pyav", {"SKIP_CODECS": H264, "THREAD_TYPE": "FRAME", "THREAD_COUNT": 2}),
           "pyav skip AUTO x2": ("pyav", {"SKIP_CODECS": H264, "THREAD_TYPE": "AUTO", "THREAD_COUNT": 2}),
           "auto": ("auto", {})}


def clip(workdir: Path) -> Path:
    """The generated 20 s 640x480 mp4v clip of a real face."""
    from deepfake_detect.datasets.synthetic import load_portraits, make_dataset

    path = workdir / "clip" / "real" / "real_000.mp4"
    if not path.exists():
        make_dataset(workdir / "clip", load_portraits(SHARED / "images"), n_real=1, n_fake=1, seconds=20, fps=25,
                     size=(640, 480))
    return path


def h264(source: Path, gop: int, workdir: Path) -> Path:
    """`source` re-encoded to H.264 with a keyframe every `gop` frames (PyAV's libx264)."""
    import av
    import cv2

    out = workdir / f"h264_gop{gop}.mp4"
    if out.exists():
        return out
    cap = cv2.VideoCapture(str(source))
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"crf": "23", "keyint_min": str(gop)}
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cap.release()
    return out


def busy(ms: float):
    """A stand-in for face detection: a function that spends about `ms` of one core (matrix
    products; set OPENBLAS_NUM_THREADS=1 for one core)."""
    a = np.random.default_rng(0).random((400, 400), np.float32)
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 0.5:
        a @ a
        n += 1
    count = max(1, round(n / 500 * ms))

    def work() -> None:
        for _ in range(count):
            a @ a
    return work


def decode(files: list[Path], sampler, variant: str, consume=None) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) to read the sampled frames of `files` as `variant`
    does; with `consume`, decoding runs in a thread and the caller runs `consume()` on each
    frame, as the pipeline's prefetching decoder and face detector do."""
    from deepfake_detect.video import pyav, sample_frames

    reader, settings = READERS[variant]
    saved = {name: getattr(pyav, name) for name in settings}
    for name, value in settings.items():
        setattr(pyav, name, value)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        frames = queue.Queue(8)

        def produce() -> None:
            for path in files:
                for item in sample_frames(path, sampler, reader=reader)[1]:
                    if consume:
                        frames.put(item)
            frames.put(None)

        if consume:
            thread = threading.Thread(target=produce)
            thread.start()
            while frames.get() is not None:
                consume()
            thread.join()
        else:
            produce()
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        for name, value in saved.items():
            setattr(pyav, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "ffpp_c23_dev")
    parser.add_argument("--ffpp", type=int, default=10, help="real videos of --data to decode (0: none)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--consumer-ms", type=float, default=0.0,
                        help="decode in a thread beside a consumer that spends this many ms of CPU on each frame")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "deepfake_detect_readers")
    args = parser.parse_args()

    import av
    import cv2

    from deepfake_detect import get_sampler

    args.workdir.mkdir(parents=True, exist_ok=True)
    consume = busy(args.consumer_ms) if args.consumer_ms else None
    generated = clip(args.workdir)
    sets = {"mp4v 640x480, keyframe/12": [generated],
            "H.264 640x480, keyframe/12": [h264(generated, 12, args.workdir)],
            "H.264 640x480, keyframe/50": [h264(generated, 50, args.workdir)]}
    ffpp = sorted((args.data / "real").glob("*.mp4"))[:args.ffpp]
    if ffpp:
        sets = {f"ffpp_c23_dev, {len(ffpp)} videos": ffpp, **sets}
    samplers = {"uniform n=32": get_sampler("uniform", n=32), "fixed_rate 1 fps": get_sampler("fixed_rate", fps=1.0)}
    print(f"av {av.__version__}, cv2 {cv2.__version__}, {os.cpu_count()} cores; load average at start "
          f"{os.getloadavg()[0]:.2f}; medians of {args.repeats} rounds; speed-up over OpenCV in brackets", flush=True)
    for set_name, files in sets.items():
        for sampler_name, sampler in samplers.items():
            rounds = []  # per round: reader -> [wall, CPU] summed over the files
            for round_ in range(args.repeats + 1):
                totals = {reader: np.zeros(2) for reader in READERS}
                for n, path in enumerate(files):  # file by file, the readers in turn: load changes hit all alike
                    order = list(READERS)[(n + round_) % len(READERS):] + list(READERS)[:(n + round_) % len(READERS)]
                    for reader in order[::-1] if round_ % 2 else order:
                        totals[reader] += decode([path], sampler, reader, consume)
                if round_:
                    rounds.append(totals)
            print(f"{set_name}, {sampler_name}:", flush=True)
            for reader in READERS:
                wall, cpu = (float(np.median([r[reader][k] for r in rounds])) for k in (0, 1))
                speed = [float(np.median([r["opencv"][k] / r[reader][k] for r in rounds])) for k in (0, 1)]
                print(f"    {reader:20} wall {wall:7.2f} s ({speed[0]:.2f}x)   CPU {cpu:7.2f} s ({speed[1]:.2f}x), "
                      f"{cpu / len(files):.3f} s a file", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
