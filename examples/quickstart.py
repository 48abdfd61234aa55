"""Quickstart: generate a small video dataset, fit a detector, predict and evaluate.

    python examples/quickstart.py --images ../shared/images \
        --weights ../shared/weights/mobilenet_v1_0.50_no_top.weights.h5

`--weights` is a MobileNet V1 0.5 weights file; leave it out on a machine with internet
to use Keras' own ImageNet download. `--images` is a folder with face photos
(face.jpg and grace_hopper.bmp, as in ../shared/images).

The detector is the `face_region` preset. The generated people are as often real as fake,
so it can only learn the face-swap artefacts, not who is shown; it is judged on held-out
videos made with another seed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from deepfake_detect import DeepfakeDetector
from deepfake_detect.datasets.synthetic import load_portraits, make_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="folder with face photos (face.jpg, grace_hopper.bmp)")
    parser.add_argument("--weights", default="imagenet", help="MobileNet V1 0.5 weights file, or 'imagenet'")
    parser.add_argument("--workdir", default=None, help="where to write the data and the model (default: a temp dir)")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="deepfake-detect-"))
    portraits = load_portraits(args.images)
    n = 2 * len(portraits)  # each person twice real and twice fake
    train = make_dataset(work / "train", portraits, n_real=n, n_fake=n, seconds=2.0, seed=0)
    test = make_dataset(work / "test", portraits, n_real=len(portraits), n_fake=len(portraits), seconds=2.0, seed=1)
    print(f"generated {2 * n} training and {2 * len(portraits)} held-out videos of {len(portraits)} people "
          f"under {work}")

    detector = DeepfakeDetector.from_preset("face_region", weights=args.weights)
    detector.fit(train)  # a progress bar and a one-line summary on standard error

    for label in ("real", "fake"):
        video = sorted((test / label).glob("*.mp4"))[0]
        prediction = detector.predict_video(video)
        verdict = "correct" if prediction.label == label else "WRONG"
        print(f"held-out {label}/{video.name}: {prediction.label} (p_fake {prediction.p_fake:.3f}, "
              f"faces in {prediction.faces_found} of {prediction.frames_sampled} frames) - {verdict}")

    model = detector.save(work / "detector.dfd")
    report = DeepfakeDetector.load(model).evaluate(test)
    video = report.video
    print(f"saved {model}; reloaded, on the {report.n_videos} held-out videos: video ROC AUC {video['roc_auc']:.3f}, "
          f"accuracy {video['accuracy']:.3f}")


if __name__ == "__main__":
    main()
