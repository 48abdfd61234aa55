"""Compare backbones (and heads) under grouped cross-validation, on one dataset, in one table.

    python examples/compare_backbones.py --data DIR \
        --candidate mobilenet_v1:weights=../shared/weights/mobilenet_v1_0.50_no_top.weights.h5 \
        --candidate mobilenet_v1:alpha=0.25,weights=../shared/weights/mobilenet_v1_0.25_no_top.weights.h5 \
        --head logistic --folds 5

Each `--candidate` is a backbone as the command line takes it (NAME or NAME:key=value,...).
Decoding and face detection are shared through the feature cache: after the first candidate,
only the backbone runs for the next ones, and each fold trains only a head.
"""

from __future__ import annotations

import argparse
import time

from deepfake_detect.cli import parse_part
from deepfake_detect.evaluation import cross_validate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder: real/ and fake/, FaceForensics++, or labels.csv")
    parser.add_argument("--candidate", action="append", required=True, help="a backbone: NAME or NAME:key=value,...")
    parser.add_argument("--head", default="logistic", help="the head of every candidate (default: logistic)")
    parser.add_argument("--sampler", default="fixed_rate", help="the frame sampler (default: fixed_rate, 1 fps)")
    parser.add_argument("--folds", type=int, default=5, help="grouped cross-validation folds (default: 5)")
    args = parser.parse_args()

    print(f"{'backbone':60} {'video AUC':>17} {'video acc':>17} {'frame AUC':>17} {'seconds':>8}")
    for candidate in args.candidate:
        config = {"sampler": parse_part(args.sampler), "backbone": parse_part(candidate), "head": parse_part(args.head)}
        start = time.perf_counter()
        report = cross_validate(config, args.data, folds=args.folds, protocol="grouped", bootstrap=0, verbose=0)
        spread = report.across_folds()
        cells = [spread["video"]["roc_auc"], spread["video"]["accuracy"], spread["frame"]["roc_auc"]]
        shown = " ".join(f"{m:8.3f} ± {s:5.3f}" for m, s in cells)
        print(f"{candidate:60} {shown} {time.perf_counter() - start:8.1f}")


if __name__ == "__main__":
    main()
