"""Tests for the synthetic deepfake dataset generator (real encoded videos, real face photos)."""

import csv
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepfake_detect.datasets import discover
from deepfake_detect.datasets.synthetic import load_portraits, make_dataset, make_video
from deepfake_detect.evaluation import cross_validate
from deepfake_detect.faces import RetinaFaceDetector

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "images"
pytestmark = pytest.mark.skipif(not (IMAGES / "face.jpg").exists() or not (IMAGES / "grace_hopper.bmp").exists(),
                                reason=f"real test images not found in {IMAGES}")

SIZE, FPS, SECONDS = (320, 240), 5.0, 2.0


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of a video, read plainly in order by OpenCV, as RGB."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def _sharpness(frame: np.ndarray, box) -> float:
    """Laplacian variance (high-frequency energy) of the grey face box."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[int(box.y1):int(box.y2), int(box.x1):int(box.x2)]
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@pytest.fixture(scope="module")
def portraits() -> list[np.ndarray]:
    return load_portraits(IMAGES)


@pytest.fixture(scope="module")
def decoded(portraits, tmp_path_factory) -> dict[str, list[tuple[list[np.ndarray], list]]]:
    """{label: [(frames, per-frame face boxes) per video]} of a 2 real + 2 fake dataset."""
    root = make_dataset(tmp_path_factory.mktemp("synthetic"), portraits, n_real=2, n_fake=2,
                        seconds=SECONDS, fps=FPS, size=SIZE)
    detector = RetinaFaceDetector()
    out = {}
    for label in ("real", "fake"):
        files = sorted((root / label).glob("*.mp4"))
        assert len(files) == 2, files
        out[label] = [(frames, detector.detect(frames)) for frames in map(decode_all, files)]
    return out


def test_load_portraits_gives_distinct_faces(portraits):
    assert len(portraits) >= 3
    boxes = RetinaFaceDetector().detect(portraits)
    assert all(boxes), "every portrait must contain a face"
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in portraits)


def test_videos_decode_with_right_count_and_size(decoded):
    for videos in decoded.values():
        for frames, _ in videos:
            assert len(frames) == round(SECONDS * FPS)
            assert all(f.shape == (SIZE[1], SIZE[0], 3) for f in frames)


def test_face_found_in_most_frames(decoded):
    for label, videos in decoded.items():
        for frames, boxes in videos:
            rate = sum(bool(b) for b in boxes) / len(frames)
            assert rate >= 0.8, f"{label}: face found in only {rate:.0%} of frames"


def test_fake_faces_carry_resolution_mismatch(decoded):
    def mean_sharpness(label):
        values = [_sharpness(f, max(b, key=lambda x: x.area)) for frames, boxes in decoded[label]
                  for f, b in zip(frames, boxes) if b]
        return float(np.mean(values))

    real, fake = mean_sharpness("real"), mean_sharpness("fake")
    assert fake < 0.7 * real, f"fake face Laplacian variance {fake:.0f} not well below real {real:.0f}"


def labels_csv(root: Path) -> list[dict]:
    with open(root / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_identity_is_balanced_across_labels_and_grouped(portraits, tmp_path):
    n = 2 * len(portraits)
    root = make_dataset(tmp_path, portraits, n_real=n, n_fake=n, seconds=0.4, fps=5, size=(64, 64))
    rows = labels_csv(root)
    for role in ("target", "face"):  # whose head and background, whose face: each as often real as fake
        real = Counter(r[role] for r in rows if r["label"] == "real")
        fake = Counter(r[role] for r in rows if r["label"] == "fake")
        assert real == fake == {str(p): 2 for p in range(len(portraits))}, role
    assert all(r["target"] != r["face"] for r in rows if r["label"] == "fake")
    group_of = {}
    for r in rows:  # a portrait is in one group, with its fake partners
        for p in (r["target"], r["face"]):
            assert group_of.setdefault(p, r["group"]) == r["group"]
    groups = {s.group: set() for s in discover(root)}
    for s in discover(root):
        groups[s.group].add(s.label)
    assert len(groups) == len(portraits) // 2 and all(labels == {0, 1} for labels in groups.values())


def test_identity_alone_does_not_beat_chance(portraits, weights, tmp_path):
    """Fakes made without artefacts (plain videos of the person whose face they would paste
    in): a head that can read identity (it tells the people apart when the labels follow
    them) cannot tell these fakes from the reals, whether people are kept to one side of
    the folds (the dataset's groups) or shared by them (one group per video)."""
    root = make_dataset(tmp_path, portraits, n_real=8, n_fake=8, seconds=2, fps=5, artefacts=False)
    config = {"sampler": {"name": "uniform", "n": 8},
              "backbone": {"name": "mobilenet_v1", "alpha": 0.5, "input_size": 128, "weights": weights},
              "head": {"name": "softmax", "steps": 500, "batch_size": 16}}
    samples = discover(root)
    per_video = [replace(s, group=s.path) for s in samples]
    face = {str((root / r["path"]).resolve()): int(r["face"]) for r in labels_csv(root)}
    by_person = [replace(s, label=int(face[s.path] % 2 == 0)) for s in per_video]

    def auc(data, folds):
        return cross_validate(config, data, folds=folds, verbose=0, bootstrap=0).video["roc_auc"]

    assert auc(by_person, 4) >= 0.95  # identity is readable...
    assert auc(per_video, 4) <= 0.65  # ...but says nothing about the label
    groups = len({s.group for s in samples})
    if groups > 1:  # one group where scikit-image's astronaut is missing (3 portraits, one cast)
        assert auc(samples, groups) <= 0.65


def test_same_seed_same_videos(portraits, tmp_path):
    def first_frame(root, seed):
        make_dataset(root, portraits, n_real=1, n_fake=1, seconds=1, fps=2, size=(128, 96), seed=seed)
        return [decode_all(root / label / f"{label}_000.mp4")[0].tobytes() for label in ("real", "fake")]

    a, b = first_frame(tmp_path / "a", 7), first_frame(tmp_path / "b", 7)
    assert a == b
    assert first_frame(tmp_path / "c", 8) != a


@pytest.mark.parametrize("kwargs", [
    {"n_real": 0}, {"n_fake": 0}, {"seconds": 0}, {"fps": -1.0}, {"size": (63, 240)}, {"size": (320, 10)},
])
def test_bad_arguments_raise(portraits, tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_dataset(tmp_path, portraits, **kwargs)


def test_faceless_portrait_is_named(portraits, tmp_path):
    with pytest.raises(ValueError, match="portrait 1"):
        make_dataset(tmp_path, [portraits[0], np.full((200, 160, 3), 128, np.uint8)])


def test_make_video_leaves_no_partial_file(tmp_path):
    target = tmp_path / "v.mp4"
    frames = [np.zeros((64, 64, 3), np.uint8), np.zeros((32, 32, 3), np.uint8)]
    with pytest.raises(ValueError, match="all frames"):
        make_video(target, frames, 5.0)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):
        make_video(tmp_path / "missing" / "v.mp4", frames[:1], 5.0)
