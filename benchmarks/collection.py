"""A collection of videos, cold: extraction and prediction against decoding alone, in one run.

    PYTHONPATH=src .venv/bin/python benchmarks/collection.py --data ../shared/data/ffpp_c23_dev

The detector is the pretrained one (`DeepfakeDetector.from_pretrained()`: the recommended
preset, face_region_calibrated: 32 uniformly sampled frames, RetinaFace, 288 px crops of
MobileNet V1 0.5 blocks 3-9, the bundled weights). It first warms up on one video (compiles the
models; not timed), then takes `--rounds` rounds of these rows, in alternating order, over the
same `--videos` videos of `--data`:

  decode    ``video.sample_frames`` of each video with the detector's sampler and reader, every
            sampled frame read, one video after the other in one thread: the time decoding
            alone takes
  extract   ``detector.extract_features(videos)`` into a fresh, empty feature cache (what
            ``fit`` and ``deepfake-detect extract`` do on new data): decoding, detection,
            cropping, embedding and the cache writes, with decoding overlapped
  predict   ``detector.predict_videos(videos)`` without a feature cache (what
            ``deepfake-detect predict FOLDER --no-cache`` does)

Each row: wall seconds, videos/s, CPU seconds a video (all threads of the process), the
ratio of its wall time to decode's in the same round, and the seconds per stage that the
pipeline measured (decode in its thread, detect, crop, embed in the calling thread: they
overlap, so they add up to more than the wall time). Goals (issue 17, 2 CPU cores): extract
at least 1 video/s and within 1.25x of decode. Writes the rows, the machine and the command to
``--out`` (default benchmarks/results/collection.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

GOAL_VIDEOS_PER_S, GOAL_VS_DECODE = 1.0, 1.25
STAGES = ("decode", "detect", "crop", "embed")


def videos_of(data: Path, n: int) -> list[Path]:
    from deepfake_detect.video import is_media

    found = sorted(p for p in data.rglob("*") if p.is_file() and is_media(p))
    if not found:
        sys.exit(f"no videos under {data}")
    return found[:n]


def decode_row(detector, videos: list[Path]) -> dict:
    from deepfake_detect.video import sample_frames

    sampler = detector.part("sampler")
    frames = 0
    for path in videos:
        _, stream = sample_frames(path, sampler)
        frames += sum(1 for _ in stream)
    return {"frames": frames}


def extract_row(detector, videos: list[Path]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        detector.set_params(cache=Path(tmp) / "features.sqlite")  # fresh and empty: nothing is found
        try:
            spent = dict.fromkeys(STAGES, 0.0)
            faces = 0
            for features, timings in detector.extractor.extract_many(videos):
                faces += len(features)
                for stage in STAGES:
                    spent[stage] += timings.get(stage, 0.0)
        finally:
            detector.extractor.cache.close()
            detector.set_params(cache=None)
    return {"faces": faces, "stages": spent}


def predict_row(detector, videos: list[Path]) -> dict:
    spent = dict.fromkeys(STAGES, 0.0)
    labels: dict[str, int] = {}
    for prediction in detector.predict_videos(videos):
        if isinstance(prediction, Exception):
            labels["error"] = labels.get("error", 0) + 1
            continue
        labels[prediction.label] = labels.get(prediction.label, 0) + 1
        for stage in STAGES:
            spent[stage] += prediction.timings.get(stage, 0.0)
    return {"labels": labels, "stages": spent}


ROWS = {"decode": decode_row, "extract": extract_row, "predict": predict_row}


def timed(row, detector, videos: list[Path]) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    out = row(detector, videos)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {**out, "wall_s": wall, "videos_per_s": len(videos) / wall, "cpu_s_per_video": cpu / len(videos)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ffpp_c23_dev"))
    parser.add_argument("--videos", type=int, default=70, help="the first N videos of --data, by path")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the rows, in alternating order")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "collection.json")
    args = parser.parse_args()

    from deepfake_detect import DeepfakeDetector

    videos = videos_of(args.data, args.videos)
    detector = DeepfakeDetector.from_pretrained(cache=None)
    load = [os.getloadavg()[0]]
    t = time.perf_counter()
    detector.predict_video(videos[0])
    print(f"warm-up on {videos[0].name}: {time.perf_counter() - t:.1f} s (not timed)", flush=True)

    rounds = []
    for r in range(args.rounds):
        order = args.rows if r % 2 == 0 else args.rows[::-1]
        result = {}
        for name in order:
            result[name] = timed(ROWS[name], detector, videos)
            print(f"round {r + 1} {name}: {result[name]['wall_s']:.1f} s", flush=True)
        if "decode" in result:
            for name in result:
                result[name]["vs_decode"] = result[name]["wall_s"] / result["decode"]["wall_s"]
        rounds.append(result)
    load.append(os.getloadavg()[0])

    print(f"\n{len(videos)} videos of {args.data}; {os.cpu_count()} CPUs, load average {load[0]:.2f} at start, "
          f"{load[1]:.2f} at end")
    print(f"{'round':>5}  {'row':8} {'wall s':>7} {'videos/s':>9} {'CPU s/video':>12} {'vs decode':>10}  "
          + "  ".join(f"{s:>7}" for s in STAGES) + "   goal")
    for r, result in enumerate(rounds, start=1):
        for name in args.rows:
            row = result[name]
            ratio = f"{row['vs_decode']:.2f}x" if "vs_decode" in row else "-"
            stages = "  ".join(f"{row['stages'][s]:7.1f}" if "stages" in row else f"{'-':>7}" for s in STAGES)
            goal = ""
            if name == "extract":
                met = row["videos_per_s"] >= GOAL_VIDEOS_PER_S and row.get("vs_decode", 0) <= GOAL_VS_DECODE
                goal = f">= {GOAL_VIDEOS_PER_S:g} video/s, <= {GOAL_VS_DECODE}x decode: {'yes' if met else 'NO'}"
            print(f"{r:>5}  {name:8} {row['wall_s']:7.1f} {row['videos_per_s']:9.2f} {row['cpu_s_per_video']:12.2f} "
                  f"{ratio:>10}  {stages}   {goal}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    versions = {name: metadata.version(name) for name in ("keras", "jax", "onnxruntime", "opencv-python", "av")}
    args.out.write_text(json.dumps({
        "command": shlex.join(["python", *sys.argv]), "videos": len(videos), "data": str(args.data),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "load_average": load},
        "versions": versions, "rounds": rounds}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
