"""Decoding sampled frames: OpenCV, PyAV seeking and skipping (in 1 or 2 threads), and `auto`.

    PYTHONPATH=src .venv/bin/python benchmarks/readers.py [--data ../shared/data/ffpp_c23_dev] [--ffpp 10] [--repeats 3]

Inputs: `--ffpp` real FaceForensics++ c23 videos of `--data` (a keyframe every 250 frames), a
generated 20 s 640x480 clip at 25 fps written by `cv2.VideoWriter` (mp4v, a keyframe every 12
frames), and the same clip re-encoded to H.264 by PyAV's libx264 with a keyframe every 12 and
every 50 frames (kept in `--workdir`). For each input set and sampler (32 evenly spaced
frames; 1 frame a second) the readers take turns, round after round (the first round warms
the page cache), and the best wall and CPU time of each is printed with its speed-up over
OpenCV, and the CPU seconds per file. The PyAV rows: "pyav seek" seeks to keyframes without
skipping, in FFmpeg's AUTO threads (the reader before skipping); "pyav skip" also skips
non-reference frames (H.264 only), in one thread, or in 2 FRAME or AUTO (frame and slice)
threads (each seeks too, where that pays). "auto" is the library's default.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

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


def decode(files: list[Path], sampler, variant: str) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) to read the sampled frames of `files` as `variant` does."""
    from deepfake_detect.video import pyav, sample_frames

    reader, settings = READERS[variant]
    saved = {name: getattr(pyav, name) for name in settings}
    for name, value in settings.items():
        setattr(pyav, name, value)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for path in files:
            for _ in sample_frames(path, sampler, reader=reader)[1]:
                pass
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        for name, value in saved.items():
            setattr(pyav, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "ffpp_c23_dev")
    parser.add_argument("--ffpp", type=int, default=10, help="real videos of --data to decode (0: none)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "deepfake_detect_readers")
    args = parser.parse_args()

    import av
    import cv2

    from deepfake_detect import get_sampler

    args.workdir.mkdir(parents=True, exist_ok=True)
    generated = clip(args.workdir)
    sets = {"mp4v 640x480, keyframe/12": [generated],
            "H.264 640x480, keyframe/12": [h264(generated, 12, args.workdir)],
            "H.264 640x480, keyframe/50": [h264(generated, 50, args.workdir)]}
    ffpp = sorted((args.data / "real").glob("*.mp4"))[:args.ffpp]
    if ffpp:
        sets = {f"ffpp_c23_dev, {len(ffpp)} videos": ffpp, **sets}
    samplers = {"uniform n=32": get_sampler("uniform", n=32), "fixed_rate 1 fps": get_sampler("fixed_rate", fps=1.0)}
    print(f"av {av.__version__}, cv2 {cv2.__version__}, {os.cpu_count()} cores; load average at start "
          f"{os.getloadavg()[0]:.2f}; best of {args.repeats} rounds; speed-up over OpenCV in brackets", flush=True)
    for set_name, files in sets.items():
        for sampler_name, sampler in samplers.items():
            best = {reader: (float("inf"), float("inf")) for reader in READERS}
            for round_ in range(args.repeats + 1):
                order = list(READERS) if round_ % 2 else list(READERS)[::-1]  # alternate: no reader always first
                for reader in order:
                    wall, cpu = decode(files, sampler, reader)
                    if round_:
                        best[reader] = (min(best[reader][0], wall), min(best[reader][1], cpu))
            base_wall, base_cpu = best["opencv"]
            print(f"{set_name}, {sampler_name}:", flush=True)
            for reader, (wall, cpu) in best.items():
                print(f"    {reader:20} wall {wall:7.2f} s ({base_wall / wall:.2f}x)   CPU {cpu:7.2f} s "
                      f"({base_cpu / cpu:.2f}x), {cpu / len(files):.3f} s a file", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
