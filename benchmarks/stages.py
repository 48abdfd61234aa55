"""Each stage of the pipeline alone, and the whole pipeline cold and warm, on real encoded videos.

    cd /work/main && PYTHONPATH=src .venv/bin/python benchmarks/stages.py
    cd /work/main && PYTHONPATH=src .venv/bin/python benchmarks/stages.py --long-minutes 1 10   # + memory

Inputs, made in ``--workdir`` (default ``<tmp>/deepfake_detect_stages``) and reused by later runs:

- the clip: a ``--clip-seconds`` (20) s, ``--clip-size`` (640x480), 25 fps mp4v video written
  with ``cv2.VideoWriter`` by ``make_dataset``: a real face of ../shared/images moving over a
  background;
- a training set of ``--fit-videos`` (8) generated 4 s 640x480 videos, half real, half fake;
- ``--ffpp`` (5) FaceForensics++ c23 videos of ``--data``, to decode real footage too (the
  rows are skipped, with a note, where the folder is absent).

The detector under test: uniform sampler n=32, RetinaFace, MobileNet V1 (alpha 0.5, 128 px,
the shared weights), the paper's softmax head. Rows:

  decode         ``video.sample_frames`` (uniform n=32 and fixed_rate 1 fps), all sampled
                 frames read: on the clip, and per video on the ffpp videos
  detect         ``face_detector.detect`` on the clip's 32 sampled frames, at its detection_size
  crop           ``CropPolicy.choose`` and ``.crop`` of those faces, to the backbone's input size
  embed          ``backbone.embed`` of the clip's face crops; then benchmarks/embed.py's rows on
                 ``--embed-batches`` x ``--embed-batch`` crops, taking turns: the same Keras
                 model under ``model.predict`` (Keras-JAX as shipped), ``embed``, and the model
                 in a TensorFlow ``tf.function`` (a child process run by ``--tf-python``,
                 default this interpreter, where TensorFlow is importable; "not installed"
                 otherwise), with ratios of the best passes
  predict_video  cold: a fresh process loads the saved detector and predicts the clip once
                 (compilation included; its imports and loading are reported apart); warm:
                 the median of ``--repeats`` calls with cache=None; cached: from a warm
                 feature cache
  fit            cold: a fresh process fits on the training set with an empty feature cache
                 and saves the detector; warm: a new detector with a new head re-fits from
                 that cache
  memory         with ``--long-minutes M [M ...]`` only (it takes minutes): benchmarks/memory.py's
                 child measurement, the peak RSS of ``predict_video`` (its default detector) on
                 720p videos M minutes long

A stage row is called once to warm up (that time is in the JSON as "first"), then
``--repeats`` times: its best and median. Prints one table and writes JSON (``--out``) with
the machine (CPUs, load average at start and end, JAX's devices: a GPU run is labelled as
such), versions and the command. Goals (2 CPU cores): embed >= 6x Keras-JAX and >= 1.0x
tf.function; warm predict_video of the 20 s 480p clip <= 0.5 s; peak RSS on a 10-minute
720p video <= 1.5 GB and flat with length.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import embed as embed_bench  # noqa: E402  (benchmarks/embed.py)
import memory as memory_bench  # noqa: E402  (benchmarks/memory.py)

SHARED = memory_bench.SHARED
WEIGHTS, IMAGES = memory_bench.WEIGHTS, memory_bench.IMAGES
FFPP = SHARED / "data" / "ffpp_c23_dev"
CLIP_FPS = 25.0
GB = 1e9
GOAL_EMBED_VS_KERAS, GOAL_EMBED_VS_TF, GOAL_PREDICT_S, GOAL_PEAK_RSS = 6.0, 1.0, 0.5, 1.5 * GB
#: predict_video's peak RSS counts as flat where it grows at most this much from the shortest video
#: to the longest (or, with one length, from the child's RSS after its 2-second warm-up)
FLAT_SLACK = 250e6


# --- inputs ------------------------------------------------------------------------------
def generated(root: Path, seconds: float, fps: float, size: tuple[int, int], n_real: int, n_fake: int) -> Path:
    """`make_dataset`'s videos under `root`, made once: a marker file says they are complete."""
    from deepfake_detect.datasets.synthetic import load_portraits, make_dataset

    marker = root / "complete.json"
    wanted = {"seconds": seconds, "fps": fps, "size": list(size), "n_real": n_real, "n_fake": n_fake}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return root
    make_dataset(root, load_portraits(IMAGES), n_real=n_real, n_fake=n_fake, seconds=seconds, fps=fps, size=size)
    marker.write_text(json.dumps(wanted))
    return root


def ffpp_videos(data: Path, n: int) -> list[Path]:
    """`n` videos of the folder, evenly spread over its sorted list (both classes)."""
    videos = sorted(data.rglob("*.mp4")) if data.is_dir() else []
    if not videos or n < 1:
        return []
    return [videos[int(i)] for i in np.linspace(0, len(videos) - 1, min(n, len(videos)))]


def detector_config(args: argparse.Namespace) -> dict:
    head = {"name": "softmax"} if args.head_steps is None else {"name": "softmax", "steps": args.head_steps}
    return {"sampler": {"name": "uniform", "n": 32},
            "face_detector": {"name": "retinaface", "detection_size": args.detection_size},
            "backbone": {"name": "mobilenet_v1", "alpha": 0.5, "input_size": 128, "weights": str(WEIGHTS)},
            "head": head}


# --- timing ------------------------------------------------------------------------------
def repeat(fn: Callable[[], object], repeats: int) -> tuple[dict, object]:
    """One warm-up call, then `repeats` timed calls: ({first, best, median, times}, last result)."""
    t = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return {"first": first, "best": min(times), "median": statistics.median(times), "times": times}, out


def once(seconds: float) -> dict:
    """The timing of a row measured once (a cold call, a long video)."""
    return {"first": seconds, "best": seconds, "median": seconds, "times": [seconds]}


def row(stage: str, what: str, timing: dict | None = None, items: float | None = None, unit: str = "",
        ratio: float | None = None, goal: str = "", met: bool | None = None, **extra) -> dict:
    """One table row; throughput is `items` per second of the best time (of the median for the pipeline)."""
    timing = timing or {}
    headline = timing.get("median") if stage in ("predict_video", "fit") else timing.get("best")
    throughput = items / headline if items and headline else None
    return {"stage": stage, "what": what, **{k: timing.get(k) for k in ("best", "median", "first")},
            "times": timing.get("times", []), "items": items, "unit": unit, "throughput": throughput,
            "ratio": ratio, "goal": goal, "met": met, **extra}


# --- stages alone --------------------------------------------------------------------------
def decode_rows(clip: Path, ffpp: list[Path], data_name: str, repeats: int) -> tuple[list[dict], list[np.ndarray]]:
    """sample_frames on the clip and on the videos of --data; also the clip's uniform-32 frames."""
    from deepfake_detect import get_sampler
    from deepfake_detect.video import sample_frames

    def read(paths: list[Path], sampler) -> Callable[[], int]:
        return lambda: sum(sum(1 for _ in sample_frames(p, sampler)[1]) for p in paths)

    rows = []
    samplers = {"uniform n=32": get_sampler({"name": "uniform", "n": 32}),
                "fixed_rate 1 fps": get_sampler({"name": "fixed_rate", "fps": 1.0})}
    width, height = clip_size(clip)
    for name, sampler in samplers.items():
        timing, frames = repeat(read([clip], sampler), repeats)
        rows.append(row("decode", f"clip {width}x{height}, {name}", timing, frames, "frames/s"))
    if ffpp:
        for name, sampler in samplers.items():
            timing, frames = repeat(read(ffpp, sampler), repeats)
            per_video = {k: (v / len(ffpp) if k != "times" else [t / len(ffpp) for t in v]) for k, v in timing.items()}
            rows.append(row("decode", f"{data_name}, {name}, per video (mean of {len(ffpp)})", per_video,
                            frames / len(ffpp), "frames/s", videos=[p.name for p in ffpp]))
    frames = [frame for _, frame in sample_frames(clip, samplers["uniform n=32"])[1]]
    return rows, frames


def clip_size(path: Path) -> tuple[int, int]:
    from deepfake_detect.video import probe

    info = probe(path)
    return info.width, info.height


def model_stage_rows(detector, frames: list[np.ndarray], repeats: int) -> tuple[list[dict], np.ndarray]:
    """detect, crop and embed on the clip's sampled frames, with the detector's own parts."""
    extractor = detector.extractor
    face_detector, policy, backbone = extractor.face_detector, extractor.crop, extractor.backbone
    size = getattr(face_detector, "detection_size", None)
    h, w = frames[0].shape[:2]
    timing, found = repeat(lambda: face_detector.detect(frames), repeats)
    rows = [row("detect", f"{face_detector.registry_name} at detection_size {size}, {len(frames)} frames {w}x{h}",
                timing, len(frames), "frames/s", ms_per_frame=1000 * timing["best"] / len(frames))]

    def cut() -> list[np.ndarray]:
        crops = []
        for frame, faces in zip(frames, found):
            box = policy.choose(faces)
            if box is not None:
                crops.append(policy.crop(frame, box, backbone.input_size, whole_frame=face_detector.whole_frame))
        return crops

    timing, crops = repeat(cut, repeats)
    if not crops:
        raise RuntimeError("no face found in the clip's sampled frames: the clip is not what this benchmark needs")
    rows.append(row("crop", f"{len(crops)} faces to {backbone.input_size} px", timing, len(crops), "crops/s"))
    crops = np.stack(crops)
    timing, _ = repeat(lambda: backbone.embed(crops), repeats)
    rows.append(row("embed", f"backbone.embed, the clip's {len(crops)} crops, on {device_label()}", timing,
                    len(crops), "faces/s"))
    return rows, crops


def embed_comparison_rows(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """benchmarks/embed.py's rows, taking turns in this run: Keras-JAX predict, embed, tf.function."""
    import keras

    notes = []
    if keras.backend.backend() != "jax":
        return [], [f"embed comparison skipped: Keras runs on {keras.backend.backend()}, not JAX"]
    bench = argparse.Namespace(alpha=0.5, size=128, batch=args.embed_batch, batches=args.embed_batches,
                               weights=str(WEIGHTS), backbone="mobilenet_v1", tf_python=args.tf_python)
    runs = dict(embed_bench.workloads(bench, "jax"))
    passes = {name: (lambda fn=fn: embed_bench.clock(fn)) for name, fn in runs.items()}
    try:
        tf = embed_bench.tf_pass(bench)
    except RuntimeError as e:
        tf = None
        notes.append(f"tf.function row failed: {e}")
    if tf is not None:
        passes["tf.function"] = tf
    for run in passes.values():  # warm-up (compile)
        run()
    walls: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(args.repeats):
        for name, run in passes.items():
            walls[name].append(run()[0])
    n = args.embed_batch * args.embed_batches
    timing = {name: {"best": min(t), "median": statistics.median(t), "times": t} for name, t in walls.items()}
    rate = {name: n / t["best"] for name, t in timing.items()}
    what = f"{n} crops in batches of {args.embed_batch}"
    rows = [row("embed", f"Keras-JAX model.predict, {what}", timing["keras-jax"], n, "faces/s", 1.0),
            row("embed", f"embed, {what}", timing["embed"], n, "faces/s", rate["embed"] / rate["keras-jax"],
                f">= {GOAL_EMBED_VS_KERAS:g}x Keras-JAX", rate["embed"] / rate["keras-jax"] >= GOAL_EMBED_VS_KERAS)]
    if tf is None:
        rows.append(row("embed", "tf.function (TensorFlow): not installed",
                        goal=f">= {GOAL_EMBED_VS_TF:.1f}x tf.function"))
    else:
        vs_tf = rate["embed"] / rate["tf.function"]
        rows += [row("embed", f"tf.function (TensorFlow {embed_bench.TF_CHILD.get('tensorflow', '?')}, child "
                     f"process), {what}", timing["tf.function"], n,
                     "faces/s", rate["tf.function"] / rate["keras-jax"]),
                 row("embed", "embed / tf.function", ratio=vs_tf, goal=f">= {GOAL_EMBED_VS_TF:.1f}x tf.function",
                     met=vs_tf >= GOAL_EMBED_VS_TF)]
    return rows, notes


# --- the whole pipeline ----------------------------------------------------------------------
def cold_child(kind: str, spec: str) -> None:
    """`--cold-child`: in a fresh process, the first fit or predict_video, imports timed apart; prints JSON."""
    job = json.loads(spec)
    t = time.perf_counter()
    from deepfake_detect import DeepfakeDetector  # first: it chooses Keras' backend

    import keras  # imported by the first call otherwise: timed with the imports

    out = {"import": time.perf_counter() - t, "keras_backend": keras.backend.backend()}
    if kind == "fit":
        detector = DeepfakeDetector(**job["config"], cache=job["cache"])
        t = time.perf_counter()
        detector.fit(job["data"], verbose=0)
        out["first"] = time.perf_counter() - t
        detector.save(job["model"])
    else:
        t = time.perf_counter()
        detector = DeepfakeDetector.load(job["model"], cache=None)
        out["load"] = time.perf_counter() - t
        t = time.perf_counter()
        pred = detector.predict_video(job["clip"])
        out["first"] = time.perf_counter() - t
        out["timings"], out["frames_sampled"] = pred.timings, pred.frames_sampled
    print(json.dumps(out), flush=True)


def run_cold(kind: str, **job) -> dict:
    out = subprocess.run([sys.executable, __file__, "--cold-child", kind, json.dumps(job, default=str)],
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the cold {kind} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def pipeline_rows(args: argparse.Namespace, clip: Path, train: Path, model: Path, cache: Path,
                  cold_fit: dict, warm) -> list[dict]:
    """predict_video cold, warm and cached; fit cold and warm (re-fit from the feature cache)."""
    from deepfake_detect import DeepfakeDetector
    from deepfake_detect.datasets import discover

    n_videos = len(discover(train))
    cold = run_cold("predict", model=model, clip=clip)
    rows = [row("predict_video", f"cold: first call in a fresh process, compile included "
                f"(+{cold['import']:.1f} s import, {cold['load']:.1f} s load)", once(cold["first"]),
                cold["frames_sampled"], "frames/s", child=cold)]
    timing, pred = repeat(lambda: warm.predict_video(clip), args.repeats)
    rows.append(row("predict_video", f"warm, cache=None, {pred.frames_sampled} frames, {pred.faces_found} faces",
                    timing, pred.frames_sampled, "frames/s", goal=f"median <= {GOAL_PREDICT_S:g} s",
                    met=timing["median"] <= GOAL_PREDICT_S, timings=pred.timings))
    cached = DeepfakeDetector.load(model, cache=cache)
    timing, pred = repeat(lambda: cached.predict_video(clip), args.repeats)
    rows.append(row("predict_video", "warm feature cache (after one call that fills it)", timing,
                    pred.frames_sampled, "frames/s", timings=pred.timings))
    rows.append(row("fit", f"cold: fresh process, empty feature cache, {n_videos} videos "
                    f"(+{cold_fit['import']:.1f} s import)", once(cold_fit["first"]), n_videos, "videos/s",
                    child=cold_fit))

    def refit():
        return DeepfakeDetector(**detector_config(args), cache=cache).fit(train, verbose=0)

    timing, _ = repeat(refit, min(args.repeats, 3))
    rows.append(row("fit", f"warm: new detector and head, re-fit from the feature cache, {n_videos} videos", timing,
                    n_videos, "videos/s"))
    return rows


# --- memory --------------------------------------------------------------------------------
def memory_rows(minutes: list[float], workdir: Path) -> list[dict]:
    """benchmarks/memory.py's measurement: a fresh child per video, peak RSS of predict_video."""
    from deepfake_detect.datasets.synthetic import load_portraits

    workdir.mkdir(parents=True, exist_ok=True)
    portrait = load_portraits(IMAGES)[0]
    warmup = memory_bench.write_video(workdir / "warmup_2s.mp4", 2.0, portrait)
    model = memory_bench.fit_model(workdir)
    results = {}
    for m in sorted(minutes):
        video = memory_bench.write_video(workdir / f"video_{m:g}min.mp4", 60 * m, portrait)
        # the child sees this repository's code only: TensorFlow on the path (for the tf.function row) would be
        # imported by Keras and add hundreds of MB that a user of this library does not have
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        out = subprocess.run([sys.executable, memory_bench.__file__, "--child", str(model), str(warmup), str(video)],
                             capture_output=True, text=True, check=True, env=env)
        results[m] = json.loads(out.stdout.strip().splitlines()[-1])
    peaks = [r["peak_rss"] for r in results.values()]
    shortest = min(results)
    growth = max(peaks) - (results[shortest]["peak_rss"] if len(results) > 1 else results[shortest]["baseline_rss"])
    rows = []
    for m, r in results.items():
        last = m == max(results)
        rows.append(row("memory", f"peak RSS, predict_video on 720p 25 fps {m:g} min, fixed_rate 1 fps "
                        f"({r['frames_sampled']} frames)", once(r["seconds"]), goal="<= 1.5 GB, flat" if last else "",
                        met=(max(peaks) <= GOAL_PEAK_RSS and growth <= FLAT_SLACK) if last else None,
                        peak_rss=r["peak_rss"], baseline_rss=r["baseline_rss"], ru_maxrss=r["ru_maxrss"],
                        growth_bytes=growth if last else None, frames_sampled=r["frames_sampled"]))
    return rows


# --- report --------------------------------------------------------------------------------
def device_label() -> str:
    import jax

    devices = jax.devices()
    return f"{devices[0].platform} ({devices[0].device_kind}) x{len(devices)}"


def machine(load_start: tuple[float, ...]) -> dict:
    import jax
    import keras

    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu_model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                     platform.processor())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpus": os.cpu_count(), "cpus_usable": usable, "cpu_model": cpu_model, "platform": platform.platform(),
            "load_average": {"start": load_start, "end": os.getloadavg()}, "keras_backend": keras.backend.backend(),
            "jax_devices": [str(d) for d in jax.devices()], "jax_platform": jax.devices()[0].platform,
            "device": device_label()}


def video_reader() -> str:
    """The reader `sample_frames` uses by default (OpenCV where the library has no choice of reader)."""
    from deepfake_detect import video

    return getattr(video, "DEFAULT_READER", "opencv")


def versions() -> dict:
    found = embed_bench.versions()
    for name in ("deepfake-detect", "numpy", "opencv-python", "opencv-python-headless", "onnxruntime", "av"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def print_table(rows: list[dict]) -> None:
    def seconds(v):
        return "" if v is None else (f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s")

    def rate(r):
        if r["stage"] == "memory":
            return f"peak {r['peak_rss'] / 1e6:.0f} MB"
        return "" if r["throughput"] is None else f"{r['throughput']:.1f} {r['unit']}"

    header = ("stage", "what", "best", "median", "throughput", "ratio", "goal", "met?")
    table = [header] + [(r["stage"], r["what"], seconds(r["best"]), seconds(r["median"]), rate(r),
                         "" if r["ratio"] is None else f"{r['ratio']:.2f}x", r["goal"],
                         {True: "yes", False: "NO", None: "n/a" if r["goal"] else ""}[r["met"]]) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for i, line in enumerate(table):
        print("  ".join(cell.ljust(w) if j < 2 else cell.rjust(w) for j, (cell, w) in enumerate(zip(line, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "deepfake_detect_stages",
                        help="where the generated videos, the model and the feature cache go (reused)")
    parser.add_argument("--data", type=Path, default=FFPP, help="a folder of real videos to decode (FaceForensics++)")
    parser.add_argument("--ffpp", type=int, default=5, help="videos of --data to decode (0: none)")
    parser.add_argument("--clip-seconds", type=float, default=20.0)
    parser.add_argument("--clip-size", default="640x480", help="WIDTHxHEIGHT of the clip")
    parser.add_argument("--fit-videos", type=int, default=8, help="generated training videos, half of them fake")
    parser.add_argument("--fit-seconds", type=float, default=4.0, help="length of each training video (10 fps)")
    parser.add_argument("--head-steps", type=int, help="softmax head's training steps (default: the paper's 2500)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of each row after its warm-up")
    parser.add_argument("--detection-size", type=int, default=640,
                        help="RetinaFace's detection_size (640, its default; 320 is the fast setting)")
    parser.add_argument("--embed-batch", type=int, default=64)
    parser.add_argument("--embed-batches", type=int, default=4, help="batches a pass of the embed comparison embeds")
    parser.add_argument("--tf-python", metavar="PATH",
                        help="interpreter of the embed comparison's tf.function child, one that imports tensorflow, "
                             "keras and numpy, e.g. a separate venv's (default: this one)")
    parser.add_argument("--long-minutes", type=float, nargs="+", metavar="M",
                        help="also measure predict_video's peak RSS on 720p videos M minutes long (slow)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "stages.json")
    parser.add_argument("--cold-child", nargs=2, metavar=("KIND", "JOB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_child:
        return cold_child(*args.cold_child)
    if min(args.repeats, args.embed_batch, args.embed_batches, args.fit_videos - 1) < 1:
        parser.error("--repeats, --embed-batch and --embed-batches must be >= 1, --fit-videos >= 2")
    if not (WEIGHTS.exists() and IMAGES.exists()):
        sys.exit(f"needs the shared weights and images under {SHARED}")
    size = tuple(int(v) for v in args.clip_size.lower().split("x"))
    load_start, started = os.getloadavg(), time.perf_counter()
    command = shlex.join([Path(sys.executable).name, *sys.argv])

    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    clip_root = generated(workdir / f"clip_{size[0]}x{size[1]}_{args.clip_seconds:g}s", args.clip_seconds, CLIP_FPS,
                          size, 1, 1)
    clip = clip_root / "real" / "real_000.mp4"
    n_fake = args.fit_videos // 2
    train = generated(workdir / f"train_{args.fit_videos}x{args.fit_seconds:g}s", args.fit_seconds, 10.0, (640, 480),
                      args.fit_videos - n_fake, n_fake)
    ffpp = ffpp_videos(args.data, args.ffpp)
    notes = [] if ffpp or args.ffpp < 1 else [f"ffpp decode rows skipped: no videos under {args.data}"]
    print(f"inputs ready in {time.perf_counter() - started:.0f} s under {workdir}: clip {clip.name} "
          f"({size[0]}x{size[1]}, {args.clip_seconds:g} s), {args.fit_videos} training videos, "
          f"{len(ffpp)} ffpp videos", flush=True)

    model, cache = workdir / "model.dfd", workdir / "cache.sqlite"
    for stale in (model, *workdir.glob("cache.sqlite*")):
        stale.unlink(missing_ok=True)
    cold_fit = run_cold("fit", config=detector_config(args), cache=cache, data=train, model=model)
    print(f"cold fit done ({cold_fit['first']:.1f} s)", flush=True)

    from deepfake_detect import DeepfakeDetector

    warm = DeepfakeDetector.load(model, cache=None)
    rows, frames = decode_rows(clip, ffpp, args.data.name, args.repeats)
    stage_rows, _ = model_stage_rows(warm, frames, args.repeats)
    rows += stage_rows
    print("stages done; embed comparison", flush=True)
    compare, more = embed_comparison_rows(args)
    rows += compare
    notes += more
    print("embed comparison done; pipeline", flush=True)
    rows += pipeline_rows(args, clip, train, model, cache, cold_fit, warm)
    if args.long_minutes:
        print(f"memory: {', '.join(f'{m:g}' for m in args.long_minutes)} minute(s) of 720p", flush=True)
        rows += memory_rows(args.long_minutes, workdir / "memory")

    info = machine(load_start)
    print(f"\n{command}\n{info['cpus']} CPUs ({info['cpu_model']}), JAX on {info['device']}, load average "
          f"{info['load_average']['start'][0]:.2f} at start, {info['load_average']['end'][0]:.2f} at end, "
          f"{time.perf_counter() - started:.0f} s in all")
    print_table(rows)
    breakdown = next(r["timings"] for r in rows if r["what"].startswith("warm, cache=None"))
    print("warm predict_video, where its time goes: "
          + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in breakdown.items()))
    for note in notes:
        print(f"note: {note}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"command": command, "machine": info, "versions": versions(), "tf_child": embed_bench.TF_CHILD,
              "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "cold_child"},
              "detector": detector_config(args), "video_reader": video_reader(),
              "inputs": {"clip": str(clip), "train": str(train), "ffpp": [str(p) for p in ffpp]},
              "seconds": time.perf_counter() - started, "rows": rows, "notes": notes}
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
