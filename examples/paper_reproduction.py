"""Reproduce *Deepfake Video Forensics based on Transfer Learning* (2020) on your own data.

    python examples/paper_reproduction.py --data DIR \
        --weights ../shared/weights/mobilenet_v1_0.50_no_top.weights.h5 [--protocol grouped|leaky]

The paper's configuration: one frame a second (`fixed_rate` sampler), ImageNet MobileNet V1
(alpha 0.5, 128 px) as a frozen feature extractor, and one dense softmax layer trained by
gradient descent (learning rate 0.005, 2,500 random batches of 100). The paper found faces
with MTCNN; this example uses the library's default detector, RetinaFace.

`--data` is a dataset folder (`real/` and `fake/`, FaceForensics++'s own tree, or a
`labels.csv`). Features are extracted once (and cached); each fold trains a fresh head.

- `--protocol grouped` (default, honest): k-fold cross-validation over whole videos, with a
  source video, its fakes and (for FaceForensics++ names) its people on one side only.
- `--protocol leaky` (the paper's protocol): frames are split at random, so frames of one
  video are trained on and tested. Its numbers measure memorisation of the videos, not
  detection of unseen ones, and are printed as LEAKY.
"""

from __future__ import annotations

import argparse

from deepfake_detect.evaluation import cross_validate


def paper_config(weights: str) -> dict:
    """The paper's detector: 1 fps, MobileNet V1 0.5 at 128 px, softmax head (lr 0.005, 2,500 steps)."""
    return {
        "sampler": {"name": "fixed_rate", "fps": 1.0},
        "backbone": {"name": "mobilenet_v1", "alpha": 0.5, "input_size": 128, "weights": weights},
        "head": {"name": "softmax", "learning_rate": 0.005, "optimizer": "sgd", "batch_size": 100, "steps": 2500},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder: real/ and fake/, FaceForensics++, or labels.csv")
    parser.add_argument("--weights", default="imagenet", help="MobileNet V1 0.5 weights file, or 'imagenet'")
    parser.add_argument("--protocol", choices=("grouped", "leaky"), default="grouped",
                        help="grouped: whole videos per fold (honest); leaky: random frames (the paper's)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    args = parser.parse_args()

    report = cross_validate(paper_config(args.weights), args.data, folds=args.folds, protocol=args.protocol,
                            seed=args.seed)
    print(report.summary())
    label = ("LEAKY: frames of the same videos were trained on and tested; not a measure of detection"
             if report.leaky else "grouped: no video on both sides of a fold")
    print(f"frame accuracy {report.frame['accuracy']:.3f}, video accuracy {report.video['accuracy']:.3f} ({label})")


if __name__ == "__main__":
    main()
