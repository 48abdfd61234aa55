"""Throughput of the Beam pipeline (DirectRunner, 2 worker processes) against the local `extract`,
and the CPU seconds per clip of each stage: the numbers docs/how-to/scale-out.md plans capacity from.

    PYTHONPATH=src /tmp/beamvenv/bin/python benchmarks/beam_extract.py --videos 70 --rounds 2

1. **Stages** (`--stage-videos` clips, after one warm-up clip): per clip, the CPU seconds (this
   process, every thread: `time.process_time`) of decoding the sampled frames, detecting the
   faces, cropping and embedding, one stage after the other (no overlap), with the detector's
   parts. CPU seconds, unlike wall seconds, do not grow with other processes' load.
2. **Throughput**: `--rounds` rounds, each running both, in alternating order (local first in
   odd rounds, Beam first in even ones), each a fresh command in a child process, so start-up
   counts for both: ``deepfake-detect extract DATA --runner direct --output DIR --cache FRESH``
   (the local path, into a fresh cache) and ``deepfake-detect extract DATA --runner beam --output
   DIR`` (DirectRunner, 2 worker processes). Both read JAX's compiled programs from one warm
   persistent cache (filled by a warm-up run first), as a user's second run does. It reports
   wall seconds, the child processes' CPU seconds, videos per second and the ratio Beam/local
   of throughput per round (goal: >= 0.9), and checks that both wrote the same shard bytes.

The detector is the command's default (the paper's: 1 frame a second, RetinaFace, MobileNet V1
0.5 at 128 px) with the shared weights. Writes everything, with the machine's load average, to
`--out` (benchmarks/results/beam_extract.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def stage_cpu(videos: list[Path], weights: str) -> dict:
    """Mean CPU seconds per clip of decode, detect, crop and embed, run one after the other."""
    from deepfake_detect import DeepfakeDetector, video

    detector = DeepfakeDetector(backbone={"name": "mobilenet_v1", "weights": weights}, cache=None)
    sampler, faces, crop, backbone = (detector.part(k) for k in ("sampler", "face_detector", "crop", "backbone"))
    import numpy as np

    size = backbone.input_size
    for n in backbone.buckets:  # compile every batch size first: a process does so once, not per clip
        backbone.embed(np.zeros((n, size, size, 3), np.uint8))
    per: dict[str, list[float]] = {k: [] for k in ("decode", "detect", "crop", "embed")}
    frames, found = [], []
    for i, path in enumerate([videos[0], *videos]):
        t = time.process_time()
        _, stream = video.sample_frames(path, sampler)
        sampled = list(stream)
        decode = time.process_time() - t
        t = time.process_time()
        boxes = faces.detect([f for _, f in sampled])
        detect = time.process_time() - t
        t = time.process_time()
        crops = []
        for (_, frame), candidates in zip(sampled, boxes):
            box = crop.choose(candidates)
            if box is not None:
                crops.append(crop.crop(frame, box, backbone.input_size, whole_frame=faces.whole_frame))
        cropping = time.process_time() - t
        t = time.process_time()
        if crops:
            backbone.embed(np.stack(crops))
        embed = time.process_time() - t
        if i == 0:
            continue  # warm-up: the face detector's session, the first decode
        for key, value in zip(per, (decode, detect, cropping, embed)):
            per[key].append(value)
        frames.append(len(sampled))
        found.append(len(crops))
    return {"videos": len(videos), "frames_per_video": statistics.mean(frames), "faces_per_video": statistics.mean(found),
            "cpu_seconds_per_video": {k: statistics.mean(v) for k, v in per.items()},
            "cpu_seconds_per_video_total": sum(statistics.mean(v) for v in per.values())}


def timed(command: list[str], env: dict) -> dict:
    """Wall and CPU seconds (user + system, of the child and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "stderr_tail": done.stderr.strip().splitlines()[-1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED / "data" / "ffpp_c23_dev"))
    parser.add_argument("--weights", default=str(SHARED / "weights" / "mobilenet_v1_0.50_no_top.weights.h5"))
    parser.add_argument("--videos", type=int, default=70, help="the first N videos of DATA (sorted)")
    parser.add_argument("--stage-videos", type=int, default=10, help="clips for the per-stage CPU seconds (0: skip)")
    parser.add_argument("--rounds", type=int, default=2, help="0: the per-stage CPU seconds only")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "beam_extract.json"))
    args = parser.parse_args()
    load_start = os.getloadavg()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="beam_extract-"))
    work.mkdir(parents=True, exist_ok=True)

    from deepfake_detect import bulk

    every = bulk.list_collection(args.data)
    items = every[:args.videos]
    collection = Path(args.data)
    if len(items) < len(every):  # the same first N inputs for both, as a list of paths
        collection = work / "inputs.txt"
        collection.write_text("".join(f"{it.path}\n" for it in items))
    videos = [Path(it.path) for it in items]
    stages = stage_cpu(videos[:args.stage_videos], args.weights) if args.stage_videos else None
    if stages:
        print(json.dumps(stages, indent=1), flush=True)

    env = {**os.environ, "DEEPFAKE_DETECT_JAX_CACHE": str(work / "jax"), "PYTHONPATH": str(ROOT / "src")}
    cli = [str(Path(sys.executable).parent / "deepfake-detect")]
    base = ["extract", str(collection), "--weights", args.weights, "-q"]

    def local(tag: str) -> dict:
        shutil.rmtree(work / tag, ignore_errors=True)
        return timed([*cli, *base, "--runner", "direct", "--output", str(work / tag), "--cache",
                      str(work / f"{tag}.sqlite")], env)

    def beam(tag: str) -> dict:
        return timed([*cli, *base, "--runner", "beam", "--output", str(work / tag)], env)

    if not args.rounds:  # the stages only
        Path(args.out).write_text(json.dumps({"command": " ".join([Path(sys.executable).name, *sys.argv]),
                                              "load_average": {"start": load_start, "end": os.getloadavg()},
                                              "stages": stages}, indent=1) + "\n")
        return
    warm = work / "warm.txt"  # fills JAX's persistent cache (both paths compile the same programs)
    warm.write_text(f"{videos[0]}\n")
    timed([*cli, "extract", str(warm), "--weights", args.weights, "-q", "--output", str(work / "warm"),
           "--cache", "none"], env)
    rounds = []
    for r in range(1, args.rounds + 1):
        order = ("local", "beam") if r % 2 else ("beam", "local")
        run = {}
        for which in order:
            run[which] = (local if which == "local" else beam)(f"{which}{r}")
            print(f"round {r} {which}: {run[which]['wall']:.1f} s wall, {run[which]['cpu']:.1f} s CPU", flush=True)
        names = sorted(p.name for p in (work / f"local{r}").glob("*.parquet"))
        same = names == sorted(p.name for p in (work / f"beam{r}").glob("*.parquet")) and all(
            (work / f"local{r}" / n).read_bytes() == (work / f"beam{r}" / n).read_bytes() for n in names)
        summary = json.loads((work / f"beam{r}" / "summary.json").read_text())
        local_summary = json.loads((work / f"local{r}" / "summary.json").read_text())
        rounds.append({"round": r, "order": list(order), "local": run["local"], "beam": run["beam"],
                       "ratio": run["local"]["wall"] / run["beam"]["wall"], "same_shards": same,
                       "beam_stage_seconds": summary.get("metrics", {}).get("stage_seconds"),
                       "local_stage_seconds": local_summary.get("stage_seconds"),
                       "statuses": {k: summary[k] for k in ("ok", "no_face", "error")}})
        print(f"round {r}: Beam/local throughput {rounds[-1]['ratio']:.2f}x, same shards: {same}", flush=True)
    ratios = [r["ratio"] for r in rounds] or [float("nan")]
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average": {"start": load_start, "end": os.getloadavg()}},
        "videos": len(videos), "stages": stages, "rounds": rounds,
        "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "goal": 0.9},
        "videos_per_second": {"local": [len(videos) / r["local"]["wall"] for r in rounds],
                              "beam": [len(videos) / r["beam"]["wall"] for r in rounds]},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"Beam/local throughput: median {report['ratio']['median']:.2f}x (rounds: "
          f"{', '.join(f'{x:.2f}' for x in ratios)}); goal >= 0.9x; written to {args.out}")


if __name__ == "__main__":
    main()
