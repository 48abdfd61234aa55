"""Do PyAV and OpenCV decode the same pixels with the FFmpeg builds installed?

    PYTHONPATH=src .venv/bin/python benchmarks/reader_pixels.py [--data ../shared/data/ffpp_c23_dev] [--every 1]
        [--sample uniform32|fps1]

Every `--every`-th frame of each video of `--data` (real/ and fake/), and of generated clips
(mp4v and MJPG by `cv2.VideoWriter`, H.264 with B-frames by PyAV's libx264, upright and
rotated), is read with ``reader="opencv"`` and ``reader="pyav"`` through `sample_frames`, and
compared: the indices, and the pixels (frames that differ, the largest absolute difference).
`--sample` reads sparse frames instead (32 evenly spaced; 1 a second), where PyAV skips the
non-reference frames of H.264 between them: it also prints how many files it skipped in and
the frames its decoder gave against the frames up to the last sampled one.
The answer decides whether ``reader="auto"`` may read with PyAV without checking a file first
(see `deepfake_detect.video.auto`); it prints the FFmpeg releases each wheel carries.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from memory import SHARED  # benchmarks/memory.py


def generated(folder: Path) -> list[Path]:
    """Clips of a moving pattern: mp4v, MJPG, and H.264 with B-frames, upright and rotated."""
    import av
    import cv2

    def frame(i: int) -> np.ndarray:
        y, x = np.mgrid[0:240, 0:320]
        return np.stack([(x + 3 * i) % 256, (y * 2 + i) % 256, ((x ^ y) + 5 * i) % 256], -1).astype(np.uint8)

    paths = []
    for name, fourcc in (("mp4v.mp4", "mp4v"), ("mjpg.avi", "MJPG")):
        writer = cv2.VideoWriter(str(folder / name), cv2.VideoWriter_fourcc(*fourcc), 30.0, (320, 240))
        for i in range(90):
            writer.write(frame(i))
        writer.release()
        paths.append(folder / name)
    for rotation in (None, 90, 180, 270):
        path = folder / f"h264_rot{rotation or 0}.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
            stream.codec_context.gop_size = 10
            stream.options = {"keyint_min": "10", "bframes": "3"}
            if rotation is not None:
                stream.set_display_rotation(rotation)
            for i in range(90):
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame(i), format="bgr24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        paths.append(path)
    return paths


def opencv_ffmpeg() -> dict[str, str]:
    """The FFmpeg library versions OpenCV's video I/O was built with, from its build information."""
    import cv2

    info = cv2.getBuildInformation()
    return {lib: m.group(1) for lib in ("avcodec", "swscale") if (m := re.search(rf"\b{lib}:\s+YES \(([\d.]+)\)", info))}


class Tally:
    """What PyAV's reads did since `reset`: files read skipping, restarts, frames decoded, frames
    up to where each read stopped. Made once: it wraps `pyav.read`."""

    def __init__(self):
        from deepfake_detect.video import pyav

        self.reset()
        read = pyav.read

        def counting(source, wanted, *args, **kwargs):  # `pyav.read`, noting its progress
            progress = args[4] if len(args) > 4 else kwargs["progress"]  # after frame_count, clock, check_tail, tail
            result = yield from read(source, wanted, *args, **kwargs)
            self.skipped += progress.skipping
            self.restarts += progress.restarts
            self.decoded += progress.decoded
            self.span += result[0]  # the frames up to where it stopped (OpenCV decodes them all)
            return result

        pyav.read = counting

    def reset(self) -> None:
        self.skipped = self.decoded = self.span = self.restarts = 0


def compare(path: Path, sampler) -> tuple[int, int, int]:
    """(frames compared, frames that differ, largest absolute pixel difference) of one file."""
    from deepfake_detect.video import sample_frames

    opencv = sample_frames(path, sampler, reader="opencv")[1]
    pyav = sample_frames(path, sampler, reader="pyav")[1]
    compared = differ = worst = 0
    for (i, a), (j, b) in zip(opencv, pyav, strict=True):
        if i != j or a.shape != b.shape:
            raise AssertionError(f"{path}: frame {i} (OpenCV) against {j} {b.shape} (PyAV) {a.shape}")
        diff = int(np.abs(a.astype(np.int16) - b).max())
        compared, differ, worst = compared + 1, differ + (diff > 0), max(worst, diff)
    return compared, differ, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "ffpp_c23_dev")
    parser.add_argument("--every", type=int, default=1, help="compare every N-th frame (1: all)")
    parser.add_argument("--sample", choices=("uniform32", "fps1"), help="compare sparse frames instead")
    args = parser.parse_args()

    import av
    import cv2

    from deepfake_detect import get_sampler

    sampler = {None: lambda: get_sampler("stride", k=args.every), "uniform32": lambda: get_sampler("uniform", n=32),
               "fps1": lambda: get_sampler("fixed_rate", fps=1.0)}[args.sample]()
    ours = {lib: ".".join(map(str, av.library_versions[f"lib{lib}"])) for lib in ("avcodec", "swscale")}
    print(f"av {av.__version__} (FFmpeg {ours}), cv2 {cv2.__version__} (FFmpeg {opencv_ffmpeg()})")
    tally = Tally()
    with tempfile.TemporaryDirectory() as folder:
        sets = {args.data.name: sorted(args.data.glob("*/*.mp4")), "generated": generated(Path(folder))}
        for name, files in sets.items():
            start, totals, differing = time.perf_counter(), np.zeros(3, np.int64), []
            tally.reset()
            for path in files:
                compared, differ, worst = compare(path, sampler)
                totals += (compared, differ, 0)
                totals[2] = max(totals[2], worst)
                if differ:
                    differing.append(f"{path.name} ({differ} frames, max {worst})")
            print(f"{name}: {len(files)} files, {totals[0]} frames compared, {totals[1]} differ, max abs diff "
                  f"{totals[2]}; {time.perf_counter() - start:.0f} s" + (f"; differ: {differing}" if differing else ""),
                  flush=True)
            print(f"    PyAV skipped in {tally.skipped} files (restarts {tally.restarts}); its decoder gave "
                  f"{tally.decoded} frames for the {tally.span} up to where it stopped", flush=True)


if __name__ == "__main__":
    main()
