"""Plug-ins: the keras.applications backbones, registry filters, and a third-party backbone
found through a real entry point (a dist-info on sys.path) and used end to end."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import deepfake_detect as dd
from deepfake_detect import DeepfakeDetector
from deepfake_detect.backbones import MobileNetV3Small, backbones
from deepfake_detect.errors import IncompatibleModelError
from deepfake_detect.faces import CropPolicy
from deepfake_detect.results import FaceBox

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
IMAGES = SHARED / "images"
PLUGIN = Path(__file__).resolve().parent / "plugin_pkg"
#: Faces of the shared photos (x1, y1, x2, y2), as RetinaFace finds them.
FACES = {"face.jpg": [(256, 47, 347, 169), (434, 117, 491, 184), (130, 85, 220, 201)],
         "grace_hopper.bmp": [(177, 107, 353, 327)]}
needs_images = pytest.mark.skipif(not all((IMAGES / n).exists() for n in FACES),
                                  reason=f"the shared photos are absent from {IMAGES}")

#: Building a model compiles an initializer per weight shape (10-25 s of CPU a family): the three
#: slowest to build run only in CI (CI=true) or with DEEPFAKE_DETECT_SLOW_TESTS=1.
slow = pytest.mark.skipif(not (os.environ.get("CI") or os.environ.get("DEEPFAKE_DETECT_SLOW_TESTS")),
                          reason="a slow build: runs in CI, or with DEEPFAKE_DETECT_SLOW_TESTS=1")

#: name → (default input size, feature width at the defaults, a smaller config for the build test)
FAMILIES = {
    "mobilenet_v2": (224, 1280, {"alpha": 0.35, "input_size": 96}),
    "mobilenet_v3_small": (224, 576, {"alpha": 0.75, "input_size": 96}),
    "mobilenet_v3_large": (224, 960, {"input_size": 96}),
    "efficientnet_b0": (224, 1280, {"input_size": 96}),
    "xception": (299, 2048, {"input_size": 96}),
    "resnet50": (224, 2048, {"input_size": 96}),
}
SLOW_TO_BUILD = ("efficientnet_b0", "xception", "resnet50")


def _photo(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(IMAGES / name)), cv2.COLOR_BGR2RGB)


def _crops(size: int) -> np.ndarray:
    policy = CropPolicy()
    return np.stack([policy.crop(_photo(name), FaceBox(*box, score=1.0), size)
                     for name, boxes in FACES.items() for box in boxes])


# --- keras.applications backbones --------------------------------------------------------
def test_list_backbones_filters():
    assert {"mobilenet_v1", *FAMILIES} <= set(dd.list_backbones())
    assert dd.list_backbones("mobilenet_v3*") == ["mobilenet_v3_large", "mobilenet_v3_small"]
    assert dd.list_backbones(["x*", "res*"]) == ["resnet50", "xception"]
    assert dd.list_backbones("nothing*") == []
    assert {"softmax", "logistic", "mlp"} <= set(dd.list_heads()) and dd.list_heads("m*") == ["mlp"]


@pytest.mark.parametrize("name", FAMILIES)
def test_defaults_and_config_round_trip(name):
    size, width, _ = FAMILIES[name]
    part = dd.get_backbone(name, weights=None)
    assert part.input_size == size and part.feature_dim == width
    config = json.loads(json.dumps(backbones.serialize(part)))
    assert config["name"] == name and config["weights"] is None
    assert backbones.create(config) == part
    assert type(part).from_config(part.get_config()) == part


@pytest.fixture(scope="module")
def built() -> dict:
    """Backbones built once per module (building compiles each weight shape's initializer: seconds)."""
    return {}


@needs_images
@pytest.mark.parametrize("name", [pytest.param(n, marks=slow) if n in SLOW_TO_BUILD else n for n in FAMILIES])
def test_builds_and_embeds_real_faces(name, built):
    """Random weights: the model's width is `feature_dim`, features are float32 and differ per face."""
    part = built[name] = dd.get_backbone(name, weights=None, **FAMILIES[name][2])
    crops = _crops(part.input_size)
    features = part.embed(crops)
    assert features.shape == (len(crops), part.feature_dim) == (len(crops), part.model.output_shape[-1])
    assert features.dtype == np.float32 and np.isfinite(features).all()
    assert np.abs(features[0] - features[-1]).max() > 0


@needs_images
def test_fast_depthwise_same_features(built):
    fast = built.get("mobilenet_v3_small") or MobileNetV3Small(**FAMILIES["mobilenet_v3_small"][2], weights=None)
    stock = MobileNetV3Small(**FAMILIES["mobilenet_v3_small"][2], weights=None, fast_depthwise=False)
    stock.model.set_weights(fast.model.get_weights())
    crops = _crops(96)
    np.testing.assert_allclose(fast.embed(crops), stock.embed(crops), atol=1e-4, rtol=1e-4)
    assert fast.get_config()["fast_depthwise"] and "fast_depthwise" in fast.non_semantic


@pytest.mark.parametrize("name, expected", [
    ("mobilenet_v2", lambda x: x / 127.5 - 1), ("xception", lambda x: x / 127.5 - 1),
    ("resnet50", lambda x: x[..., ::-1] - np.array([103.939, 116.779, 123.68])),
    ("mobilenet_v3_small", lambda x: x), ("mobilenet_v3_large", lambda x: x), ("efficientnet_b0", lambda x: x),
])
def test_preprocessing_is_the_applications_own(name, expected):
    """MobileNet V2 and Xception scale to [-1, 1], ResNet-50 is Caffe's BGR minus means, and
    MobileNet V3 and EfficientNet take 0..255 (their models normalise)."""
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    got = dd.get_backbone(name, weights=None).preprocess(images)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected(images.astype(np.float64)), atol=1e-4)


@pytest.mark.parametrize("name, kwargs, error, match", [
    ("mobilenet_v2", {"alpha": 0.6}, ValueError, "alpha"),
    ("mobilenet_v2", {"input_size": 100}, ValueError, "input sizes"),
    ("mobilenet_v2", {"alpha": -1, "weights": None}, ValueError, "alpha"),
    ("mobilenet_v3_small", {"alpha": 0.75, "minimalistic": True}, ValueError, "minimalistic"),
    ("mobilenet_v3_large", {"input_size": 16, "weights": None}, ValueError, "input_size"),
    ("xception", {"input_size": 64, "weights": None}, ValueError, ">= 71"),
    ("resnet50", {"input_size": 224.0, "weights": None}, ValueError, "input_size"),
    ("efficientnet_b0", {"weights": "/nonexistent.weights.h5"}, FileNotFoundError, "nonexistent"),
])
def test_argument_checks(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        dd.get_backbone(name, **kwargs)


# --- third-party plug-ins ---------------------------------------------------------------
def _entry_point(group: str, line: str) -> str:
    return f"[{group}]\n{line}\n"


def _dist_info(root: Path, name: str, entry_points: str) -> None:
    """An installed distribution as importlib.metadata finds it: a *.dist-info folder on sys.path."""
    info = root / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def registries():
    """Restores the registries' contents after a test that adds plug-ins to them."""
    saved = [(r, dict(r._classes), dict(r._broken)) for r in (backbones, dd.face_detectors)]
    yield
    for registry, classes, broken in saved:
        registry._classes.clear()
        registry._classes.update(classes)
        registry._broken.clear()
        registry._broken.update(broken)
    sys.modules.pop("deepfake_detect_tiny_cnn", None)


@pytest.fixture
def plugin_installed(tmp_path, monkeypatch, registries):
    """tests/plugin_pkg as pip would install it: its module importable, its entry points (read
    from its pyproject.toml) in a dist-info that importlib.metadata discovers."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    text = "".join(_entry_point(group, "\n".join(f"{k} = {v}" for k, v in eps.items()))
                   for group, eps in project["entry-points"].items())
    _dist_info(tmp_path / "site", project["name"], text)
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return project["name"]


def test_entry_point_discovery(plugin_installed):
    assert "tiny_cnn" not in backbones._classes  # not imported until looked up
    part = dd.get_backbone("tiny_cnn", width=8)
    assert type(part).__module__ == "deepfake_detect_tiny_cnn" and part.registry_name == "tiny_cnn"
    assert "tiny_cnn" in dd.list_backbones("tiny*")
    assert backbones.serialize(part) == {"name": "tiny_cnn", "width": 8, "input_size": 64, "weights": None, "seed": 0}
    features = part.embed(np.zeros((3, 64, 64, 3), np.uint8))
    assert features.shape == (3, 8) and features.dtype == np.float32


def test_a_broken_plug_in_is_named_and_hides_nothing(tmp_path, monkeypatch, registries):
    _dist_info(tmp_path, "broken-plugin", _entry_point("deepfake_detect.backbones",
                                                      "broken = deepfake_detect_no_such_module:Missing"))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "mobilenet_v1" in dd.list_backbones()
    with pytest.raises(KeyError) as e:
        dd.get_backbone("broken")
    message = str(e.value)
    assert "broken-plugin" in message and "deepfake_detect.backbones" in message and "ModuleNotFoundError" in message


def test_direct_registration(registries):
    from deepfake_detect.faces import WholeFrameDetector

    @dd.register_face_detector("whole_frame_again")
    class Again(WholeFrameDetector):
        pass

    assert dd.get_face_detector("whole_frame_again").detect([np.zeros((4, 6, 3), np.uint8)])[0][0].x2 == 6
    assert dd.face_detectors.serialize(Again()) == {"name": "whole_frame_again"}
    with pytest.raises(ValueError, match="already registered"):
        dd.register_face_detector("whole_frame_again")(WholeFrameDetector)
    with pytest.raises(TypeError, match="not a FaceDetector"):
        dd.register_face_detector("nope")(dict)


def _crop_dataset(root: Path) -> Path:
    """Face crops under real/ and fake/: fakes are the same faces, resampled and colour-shifted."""
    crops = _crops(64)
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True)
    for i, crop in enumerate(crops):
        for flip in (False, True):
            image = crop[:, ::-1] if flip else crop
            fake = cv2.resize(cv2.resize(image, (16, 16), interpolation=cv2.INTER_AREA), (64, 64))
            fake = np.clip(fake.astype(int) + [40, -20, 10], 0, 255).astype(np.uint8)
            for label, picture in (("real", image), ("fake", fake)):
                cv2.imwrite(str(root / label / f"{i}{'f' if flip else ''}.png"), picture[..., ::-1])
    return root


@needs_images
def test_plug_in_backbone_end_to_end(plugin_installed, tmp_path, monkeypatch):
    """Found by name, fitted, saved, loaded; without the plug-in, loading names what is missing."""
    data = _crop_dataset(tmp_path / "data")
    detector = DeepfakeDetector(face_detector="none", backbone={"name": "tiny_cnn", "width": 8},
                                head={"name": "softmax", "steps": 30, "batch_size": 8}, cache=None)
    detector.fit(data, validation_split=0.0, verbose=0)
    image = next((data / "fake").glob("*.png"))
    before = detector.predict_image(image)
    assert before.label in ("real", "fake") and 0.0 <= before.p_fake <= 1.0
    model = detector.save(tmp_path / "tiny.dfd")
    with zipfile.ZipFile(model) as z:  # the plug-in is recorded by registry name and config
        assert json.loads(z.read("config.json"))["backbone"] == {"name": "tiny_cnn", "width": 8, "input_size": 64,
                                                                  "weights": None, "seed": 0}
    assert DeepfakeDetector.load(model).predict_image(image).p_fake == pytest.approx(before.p_fake, abs=1e-5)

    monkeypatch.delitem(backbones._classes, "tiny_cnn")  # as in a Python without the plug-in package
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in (str(PLUGIN), str(tmp_path / "site"))])
    with pytest.raises(IncompatibleModelError) as e:
        DeepfakeDetector.load(model)
    message = str(e.value)
    assert "'tiny_cnn'" in message and "'deepfake_detect.backbones'" in message and "plug-in" in message
