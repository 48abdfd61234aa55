"""The seed paper's method on FaceForensics++ under two protocols: grouped (honest) and leaky.

    python benchmarks/ffpp_protocols.py --data ../shared/data/ffpp_c23_dev \
        --weights ../shared/weights/mobilenet_v1_0.50_no_top.weights.h5 --report out/ffpp

Any other dataset folder works too (``--data``; ``--sampler`` and ``--head`` as the CLI takes them).

The paper's configuration: one frame a second, RetinaFace, MobileNet V1 (alpha 0.5, 128 px,
ImageNet weights, frozen), a softmax layer trained by SGD. Features are extracted once (and
kept in the feature cache), then `cross_validate` trains a fresh head per fold, first with
whole groups (a person, their videos and every fake between them) on one side of each fold,
then with frames split at random as the paper did.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from deepfake_detect.cli import parse_part
from deepfake_detect.evaluation import cross_validate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/ffpp_c23_dev", help="dataset folder (labels.csv with groups)")
    parser.add_argument("--weights", default="../shared/weights/mobilenet_v1_0.50_no_top.weights.h5")
    parser.add_argument("--sampler", default="fixed_rate:fps=1.0", help="frame sampler, as the CLI takes it")
    parser.add_argument("--head", default="softmax", help="head, as the CLI takes it")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default="default", help="feature cache file or folder ('default', or 'none')")
    parser.add_argument("--report", default=None, help="write an HTML report per protocol under this folder")
    parser.add_argument("--json", default=None, help="write both reports' numbers to this JSON file")
    args = parser.parse_args()

    config = {
        "sampler": parse_part(args.sampler),
        "face_detector": "retinaface",
        "backbone": {"name": "mobilenet_v1", "alpha": 0.5, "input_size": 128, "weights": args.weights},
        "head": parse_part(args.head),
        "aggregator": "mean",
        "cache": None if args.cache == "none" else args.cache,
    }
    command = shlex.join(["python", *sys.argv])
    results = {}
    for protocol in ("grouped", "leaky"):
        start = time.perf_counter()
        report = cross_validate(config, args.data, folds=args.folds, protocol=protocol, seed=args.seed)
        print(f"\n== {protocol} ({time.perf_counter() - start:.0f} s)\n{report.summary()}", flush=True)
        results[protocol] = report.to_dict()
        if args.report:
            from deepfake_detect.report import write_evaluation_report

            path = write_evaluation_report(report, Path(args.report) / protocol, command=command,
                                           title=f"{Path(args.data).resolve().name}: {protocol} protocol")
            print(f"report: {path}")
    print("\nvideo-level, pooled out-of-fold predictions (mean ± std over folds):")
    for protocol, numbers in results.items():
        folds = numbers["across_folds"]["video"]
        shown = ", ".join(f"{k} {numbers['video'][k]:.3f} ({folds[k][0]:.3f} ± {folds[k][1]:.3f})"
                          for k in ("accuracy", "roc_auc"))
        low, high = numbers["video_auc_ci"]
        print(f"  {protocol:8} {shown}; video AUC 95% CI {low:.3f}-{high:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "config": config, **results}, indent=2))


if __name__ == "__main__":
    main()
