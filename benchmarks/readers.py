"""Decoding sampled frames: OpenCV, PyAV reading on, PyAV seeking to keyframes, and `auto`.

    PYTHONPATH=src .venv/bin/python benchmarks/readers.py [--data ../shared/data/ffpp_c23_dev] [--ffpp 10] [--repeats 3]

Inputs: `--ffpp` real FaceForensics++ c23 videos of `--data` (a keyframe every 250 frames), a
generated 20 s 640x480 clip at 25 fps written by `cv2.VideoWriter` (mp4v, a keyframe every 12
frames), and the same clip re-encoded to H.264 by PyAV's libx264 with a keyframe every 12 and
every 50 frames (kept in `--workdir`). For each input set and sampler (32 evenly spaced
frames; 1 frame a second) the readers take turns, round after round (the first round warms
the page cache), and the best wall and CPU time of each is printed with its speed-up over
OpenCV. "pyav sequential" is PyAV with seeking switched off.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from memory import SHARED  # benchmarks/memory.py

READERS = ("opencv", "pyav sequential", "pyav seek", "auto")


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


def decode(files: list[Path], sampler, reader: str) -> tuple[float, float]:
    """Wall and CPU seconds to read the sampled frames of `files` with `reader`."""
    from deepfake_detect.video import pyav, sample_frames

    seek_cost = pyav.SEEK_COST
    if reader == "pyav sequential":
        pyav.SEEK_COST = 10**12  # no seek ever pays
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for path in files:
            for _ in sample_frames(path, sampler, reader=reader.split()[0])[1]:
                pass
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        pyav.SEEK_COST = seek_cost


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
    print(f"av {av.__version__}, cv2 {cv2.__version__}; load average at start {os.getloadavg()[0]:.2f}; best of "
          f"{args.repeats} rounds; speed-up over OpenCV in brackets (wall, then CPU)", flush=True)
    for set_name, files in sets.items():
        for sampler_name, sampler in samplers.items():
            best = {reader: (float("inf"), float("inf")) for reader in READERS}
            for round_ in range(args.repeats + 1):
                for reader in READERS:
                    wall, cpu = decode(files, sampler, reader)
                    if round_:
                        best[reader] = (min(best[reader][0], wall), min(best[reader][1], cpu))
            base_wall, base_cpu = best["opencv"]
            cells = [f"{reader} {wall * 1e3:.0f} ms ({base_wall / wall:.2f}x, {base_cpu / cpu:.2f}x)"
                     for reader, (wall, cpu) in best.items()]
            print(f"{set_name:28} {sampler_name:17} " + "; ".join(cells), flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
