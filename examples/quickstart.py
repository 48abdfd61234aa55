"""Quickstart: generate a small video dataset, fit a detector, predict and evaluate.

    python examples/quickstart.py --images ../shared/images \
        --weights ../shared/weights/mobilenet_v1_0.50_no_top.weights.h5

`--weights` is a MobileNet V1 0.5 weights file; leave it out on a machine with internet
to use Keras' own ImageNet download. `--images` is a folder with face photos
(face.jpg and grace_hopper.bmp, as in ../shared/images).
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
    train = make_dataset(work / "train", portraits, n_real=6, n_fake=6, seed=0)
    test = make_dataset(work / "test", portraits, n_real=4, n_fake=4, seed=1)
    print(f"generated videos under {work}")

    detector = DeepfakeDetector(
        sampler={"name": "uniform", "n": 8},
        backbone={"name": "mobilenet_v1", "alpha": 0.5, "weights": args.weights},
    )
    history = detector.fit(train)
    print(f"trained: final loss {history.history['loss'][-1]:.3f}")

    video = sorted((test / "fake").glob("*.mp4"))[0]
    prediction = detector.predict_video(video)
    print(f"{video.name}: {prediction.label} (p_fake {prediction.p_fake:.3f}, "
          f"faces in {prediction.faces_found} of {prediction.frames_sampled} frames)")

    model = detector.save(work / "detector.dfd")
    report = DeepfakeDetector.load(model).evaluate(test)
    print(f"saved {model}\nheld-out videos:\n{report.summary()}")


if __name__ == "__main__":
    main()
