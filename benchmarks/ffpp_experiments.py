"""Grouped cross-validation of the paper's preset and each candidate on FaceForensics++, in one run.

    python benchmarks/ffpp_experiments.py --data ../shared/data/ffpp_c23_dev \
        --weights-dir ../shared/weights [--folds 5] [--candidates paper,face_region,...] \
        [--max-minutes 180] [--detection-size 320] [--coarse-size 192] [--json out/ffpp_experiments.json]

Every candidate is cross-validated on the same grouped folds (scikit-learn's
StratifiedGroupKFold over the dataset's `group` column, seeded: no person on both sides of a
fold). The paper's preset is also run under its own, leaky protocol (frames of one video split
at random), so its honest and its leaky numbers stand side by side. For each candidate it prints
video ROC AUC, video accuracy and frame ROC AUC as mean ± std over folds, the pooled video AUC
of all out-of-fold predictions, and the seconds each fold took to train:

- frozen-feature candidates (`fit`): the features of all videos are extracted once, through the
  feature cache (`extract s` says how long; near 0 on a warm cache), and `cross_validate` trains
  a fresh head per fold; `train s/fold` is its wall time divided by the folds (head training and
  scoring);
- fine-tuned candidates (`fine_tune`): each fold fine-tunes a fresh detector on the training
  videos' face crops (read from the crop cache) and scores the held-out videos; `train s/fold`
  is the mean `fine_tune` time, capped by `--fold-minutes`.

Candidates run in the order given; one that would start after `--max-minutes` is skipped and
listed as such. Crops and features are kept in the feature cache (`--cache`), so a second run
only trains. The videos stay where they are; nothing of them is written into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

CANDIDATES: dict[str, dict] = {
    # name: {"preset": ..., "overrides": {...}, "train": "fit" | "fine_tune", "fine_tune": {...}, "about": ...}
    "paper": {"preset": "paper", "about": "the seed paper: last block, softmax layer (1 fps, 128 px)"},
    "paper_logistic": {
        "preset": "paper", "overrides": {"head": {"name": "logistic", "standardize": True}},
        "about": "paper features, standardized logistic head",
    },
    "paper_temporal": {
        "preset": "paper", "overrides": {"head": {"name": "temporal", "l2": 0.03, "epochs": 50}},
        "about": "paper features, temporal head (frame changes between sampled frames)",
    },
    "multiblock": {
        "preset": "face_region",
        "overrides": {"sampler": {"name": "fixed_rate", "fps": 1.0},
                      "backbone": {"input_size": 128, "region": 1.0}},
        "about": "+ blocks 3-9 pooled (mean and std), whole crop (1 fps, 128 px)",
    },
    "multiblock_region": {
        "preset": "face_region",
        "overrides": {"sampler": {"name": "fixed_rate", "fps": 1.0}, "backbone": {"input_size": 128}},
        "about": "+ pooled over the face's central 40% only (1 fps, 128 px)",
    },
    "face_region_224": {
        "preset": "face_region", "overrides": {"backbone": {"input_size": 224}},
        "about": "+ 32 frames a video, 224 px crops",
    },
    "face_region": {"preset": "face_region", "about": "+ 288 px crops: the face_region preset"},
    "face_region_temporal": {
        "preset": "face_region_temporal",
        "about": "+ temporal head: how much the features change between frames (the face_region_temporal preset)",
    },
    "finetune": {
        "preset": "paper", "overrides": {"head": {"name": "logistic", "standardize": True}}, "train": "fine_tune",
        "fine_tune": {"epochs": 12, "patience": 3, "learning_rate": 1e-4},
        "about": "paper backbone fine-tuned end to end (augmented, balanced, early stopping; 1 fps, 128 px)",
    },
    "finetune_region": {
        "preset": "face_region_finetune", "train": "fine_tune",
        "about": "face-region multi-block backbone fine-tuned end to end (1 fps, 128 px)",
    },
}
SHOWN = (("video", "roc_auc"), ("video", "accuracy"), ("frame", "roc_auc"), ("frame", "accuracy"))


def weights_file(weights_dir: str, alpha: float) -> str:
    return str(Path(weights_dir) / f"mobilenet_v1_{alpha:.2f}_no_top.weights.h5")


def candidate_config(spec: dict, weights_dir: str, cache) -> tuple[dict, dict]:
    """The detector config of a candidate (its preset with overrides, weights from `weights_dir`)
    and its training arguments."""
    from deepfake_detect.presets import get_preset, preset_config

    preset = get_preset(spec["preset"])
    overrides = dict(spec.get("overrides", {}))
    backbone = {**preset.config["backbone"], **overrides.pop("backbone", {})}
    backbone["weights"] = weights_file(weights_dir, backbone["alpha"])
    config = preset_config(spec["preset"], backbone=backbone, cache=cache, **overrides)
    train_kwargs = {**(preset.train_kwargs if preset.train == "fine_tune" else {}), **spec.get("fine_tune", {})}
    return config, train_kwargs


def run_frozen(config: dict, samples, folds: int, seed: int, protocol: str = "grouped") -> tuple:
    from deepfake_detect import DeepfakeDetector
    from deepfake_detect.evaluation import cross_validate

    start = time.perf_counter()
    DeepfakeDetector(**config).extract_features([s.path for s in samples], 0, "extracting")  # cached after the first run
    extract = time.perf_counter() - start
    start = time.perf_counter()
    report = cross_validate(config, samples, folds=folds, protocol=protocol, seed=seed, verbose=0)
    per_fold = (time.perf_counter() - start) / max(len(report.folds), 1)
    return report, extract, [per_fold] * max(len(report.folds), 1), {}


def run_fine_tune(config: dict, train_kwargs: dict, samples, folds: int, seed: int, fold_seconds: float) -> tuple:
    """Each fold: fine-tune a fresh detector on its training videos, predict its held-out videos."""
    from deepfake_detect import DeepfakeDetector
    from deepfake_detect.datasets import grouped_folds
    from deepfake_detect.metrics import summarize
    from deepfake_detect.fine_tuning import cached_face_crops

    start = time.perf_counter()
    probe = DeepfakeDetector(**config)
    crops = cached_face_crops(probe.extractor, [s.path for s in samples])
    extract = time.perf_counter() - start
    kept = [i for i, c in enumerate(crops) if len(c)]  # as cross_validate: folds over inputs with a face
    split = grouped_folds([samples[i].label for i in kept], [samples[i].group for i in kept], folds, seed)
    pooled, reports, seconds, details = {}, [], [], []
    for k, (train, test) in enumerate(split, start=1):
        detector = DeepfakeDetector(**config)
        t = time.perf_counter()
        history = detector.fine_tune([samples[kept[i]] for i in train], verbose=0, seed=seed,
                                     **{"max_seconds": fold_seconds, **train_kwargs})
        seconds.append(time.perf_counter() - t)
        details.append(history.fine_tune_)
        tested = [kept[i] for i in test]
        predictions = [detector.predict_video(samples[i].path) for i in tested]
        pooled.update(zip(tested, predictions))
        reports.append(summarize([samples[i] for i in tested], predictions, f"fold {k} of {len(split)}",
                                 detector.threshold, bootstrap=0))
        print(f"    fold {k}: video AUC {reports[-1].video['roc_auc']:.3f}, fine-tune {seconds[-1]:.0f} s "
              f"({details[-1]['epochs_run']} epochs, best {details[-1]['best_epoch']}, "
              f"{details[-1]['stopped_for']})", flush=True)
    order = sorted(pooled)
    report = summarize([samples[i] for i in order], [pooled[i] for i in order],
                       f"grouped {len(split)}-fold cross-validation, backbone fine-tuned per fold", 0.5,
                       folds=tuple(reports), bootstrap=1000, seed=seed)
    return report, extract, seconds, {"fine_tune": details}


def row(name: str, report, extract: float, seconds: list[float], about: str) -> dict:
    spread = report.across_folds()
    out = {"candidate": name, "about": about, "protocol": report.protocol, "leaky": report.leaky,
           "pooled_video_auc": report.video["roc_auc"], "video_auc_ci": list(report.video_auc_ci),
           "by_method_video_auc": {m: v["roc_auc"] for m, v in report.by_method.items()},
           "extract_s": extract, "train_s_per_fold": float(np.mean(seconds)),
           "train_s_max_fold": float(np.max(seconds))}
    for level, metric in SHOWN:
        out[f"{level}_{metric}"] = list(spread[level][metric])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/ffpp_c23_dev", help="dataset folder (labels.csv with groups)")
    parser.add_argument("--weights-dir", default="../shared/weights",
                        help="folder of the mobilenet_v1_<alpha>_no_top weights files")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", default=",".join(CANDIDATES),
                        help=f"comma-separated, in order (default: all): {', '.join(CANDIDATES)}")
    parser.add_argument("--no-leaky", action="store_true", help="skip the paper's leaky protocol")
    parser.add_argument("--detection-size", type=int, default=None,
                        help="RetinaFace's detection_size for every candidate (default: the presets', 640)")
    parser.add_argument("--coarse-size", type=int, default=None,
                        help="RetinaFace's coarse_size (coarse-to-fine detection) for every candidate (default: none)")
    parser.add_argument("--max-minutes", type=float, default=240.0, help="start no candidate after this many minutes")
    parser.add_argument("--fold-minutes", type=float, default=20.0, help="cap on one fold's fine-tuning")
    parser.add_argument("--cache", default="default", help="feature cache file or folder ('default', or 'none')")
    parser.add_argument("--json", default=None, help="write the rows, command and machine to this JSON file")
    args = parser.parse_args()

    from deepfake_detect.datasets import discover

    names = [n.strip() for n in args.candidates.split(",") if n.strip()]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidate(s) {unknown}; known: {', '.join(CANDIDATES)}")
    samples = discover(args.data)
    cache = None if args.cache == "none" else args.cache
    command = shlex.join(["python", *sys.argv])
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "load_at_start": os.getloadavg()}
    print(f"{command}\n{len(samples)} videos; {os.cpu_count()} CPU cores, load average {machine['load_at_start']}",
          flush=True)
    began = time.perf_counter()
    rows, skipped = [], []
    for name in names:
        elapsed = (time.perf_counter() - began) / 60
        if elapsed > args.max_minutes:
            skipped.append(name)
            print(f"\n== {name}: skipped ({elapsed:.0f} min past, budget {args.max_minutes:.0f})", flush=True)
            continue
        spec = CANDIDATES[name]
        config, train_kwargs = candidate_config(spec, args.weights_dir, cache)
        if args.detection_size is not None or args.coarse_size is not None:
            config["face_detector"] = {"name": "retinaface", "detection_size": args.detection_size or 640,
                                       "coarse_size": args.coarse_size}
        print(f"\n== {name}: {spec['about']}", flush=True)
        if spec.get("train", "fit") == "fine_tune":
            fold_seconds = args.fold_minutes * 60 - 120  # room for crops, the head's warm start, compiling
            result = run_fine_tune(config, train_kwargs, samples, args.folds, args.seed, fold_seconds)
        else:
            result = run_frozen(config, samples, args.folds, args.seed)
        rows.append({**row(name, *result[:3], spec["about"]), **result[3], "config": _jsonable(config),
                     "train_kwargs": train_kwargs})
        print(result[0].summary(), flush=True)
        if name == "paper" and not args.no_leaky:
            print("\n== paper, LEAKY protocol (frames of one video on both sides; the paper's number)", flush=True)
            result = run_frozen(config, samples, args.folds, args.seed, protocol="leaky")
            rows.append({**row("paper (leaky)", *result[:3], "the paper's protocol: random frame folds"),
                         "config": _jsonable(config)})
            print(result[0].summary(), flush=True)

    print(f"\n{command}\nmachine: {os.cpu_count()} CPU cores (shared; load average at start "
          f"{', '.join(f'{x:.1f}' for x in machine['load_at_start'])}, at end "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}); {args.folds} folds, seed {args.seed}")
    header = f"{'candidate':22} {'video AUC':>13} {'video acc':>13} {'frame AUC':>13} {'frame acc':>13} " \
             f"{'pooled AUC':>10} {'train s/fold':>12} {'extract s':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = [f"{r[f'{level}_{metric}'][0]:.3f}±{r[f'{level}_{metric}'][1]:.3f}" for level, metric in SHOWN]
        print(f"{r['candidate']:22} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} {cells[3]:>13} "
              f"{r['pooled_video_auc']:>10.3f} "
              f"{r['train_s_per_fold']:>12.0f} {r['extract_s']:>9.0f}")
    for name in skipped:
        print(f"{name:22} skipped (time budget)")
    print("mean ± std over folds; pooled AUC: all out-of-fold predictions together. 'paper (leaky)' splits frames "
          "of one video across folds and measures memorisation, not detection.")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"command": command, "machine": machine, "rows": rows,
                                               "skipped": skipped, "minutes": (time.perf_counter() - began) / 60},
                                              indent=2, default=str))


def _jsonable(config: dict) -> dict:
    return json.loads(json.dumps({k: v for k, v in config.items() if k != "cache"}, default=str))


if __name__ == "__main__":
    main()
