"""End to end on real parts: generated real-encoded videos, RetinaFace, real MobileNet weights."""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np
import pytest

from deepfake_detect import DeepfakeDetector, errors
from deepfake_detect.datasets.synthetic import make_dataset

from .conftest import FFPP, require


@pytest.fixture(scope="module")
def fitted(dataset_dir, detector_config):
    detector = DeepfakeDetector(**detector_config)
    history = detector.fit(dataset_dir, validation_split=0, verbose=0)  # all 12 videos: `held_out` tests it
    return detector, history


@pytest.fixture(scope="module")
def held_out(tmp_path_factory, portraits):
    """Videos the detector never saw: another seed, so other motion, backgrounds and pairings."""
    return make_dataset(tmp_path_factory.mktemp("held_out"), portraits, n_real=4, n_fake=4, seconds=3.0, fps=10.0,
                        seed=7)


def test_fit_returns_keras_history_and_sets_learned_state(fitted):
    detector, history = fitted
    import keras

    assert isinstance(history, keras.callbacks.History)
    assert "loss" in history.history and "val_loss" not in history.history
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert detector.n_features_in_ == 512
    assert detector.inputs_without_face_ == 0


def test_fit_verbose_levels_write_to_stderr_only(dataset_dir, detector_config, capsys):
    config = {**detector_config, "head": {"name": "logistic", "epochs": 3}}
    seen = {}
    for verbose in (0, 1, 2):
        history = DeepfakeDetector(**config).fit(dataset_dir, verbose=verbose, validation_split=0.15)
        assert "val_loss" in history.history  # a grouped validation: one of its two groups of people
        seen[verbose] = capsys.readouterr()
    assert [seen[v].out for v in seen] == ["", "", ""]
    assert seen[0].err == ""
    summary = r"fit: trained on \d+ videos \(\d+ face frames\); validated on \d+ videos .*: video ROC AUC [01]\.\d{3}, accuracy"
    assert re.search(summary, seen[1].err) and "extracting features" in seen[1].err
    assert "Epoch" not in seen[1].err
    assert seen[2].err.count("Epoch ") == 3 and re.search(summary, seen[2].err)


def test_fit_on_a_tiny_dataset_trains_without_validation_and_warns(portraits, detector_config, tmp_path):
    tiny = make_dataset(tmp_path, portraits, n_real=2, n_fake=2, seconds=1.0, fps=5.0)  # one group: portraits 0 and 1
    detector = DeepfakeDetector(**detector_config)
    with pytest.warns(UserWarning) as warned:
        history = detector.fit(tiny, verbose=0, validation_split=0.15)
    said = [str(w.message) for w in warned]
    assert any("training on all 4 videos, without validation" in m for m in said)
    assert any("too few groups or videos of a class to cross-fit" in m for m in said)
    assert "loss" in history.history and "val_loss" not in history.history
    assert detector.decision_ is None  # uncalibrated: nothing held out to calibrate on
    assert detector.predict_video(next((tiny / "fake").glob("*.mp4"))).label in ("real", "fake")


def test_predict_video_reports_frames_boxes_and_timings(fitted, held_out):
    detector, _ = fitted
    video = sorted((held_out / "fake").glob("*.mp4"))[0]
    pred = detector.predict_video(video)
    assert pred.label in ("real", "fake") and 0.0 <= pred.p_fake <= 1.0
    assert pred.frames_sampled == 8 and pred.faces_found >= 6
    assert [f.index for f in pred.frames] == sorted(f.index for f in pred.frames)
    for frame in pred.frames:
        assert 0 <= frame.box.x1 < frame.box.x2 <= 320 and 0 <= frame.box.y1 < frame.box.y2 <= 240
        assert frame.time == pytest.approx(frame.index / 10.0)
    stages = set(pred.timings) - {"classify", "cache"}
    assert stages in (set(), {"decode", "detect", "crop", "embed"})  # a cache hit, or every stage timed
    # p(fake) is calibrated (fit's cross-fitted Platt scaling) from the mean of the raw frame scores;
    # each frame's score goes through the same monotone map
    detector.decision_, decision = None, detector.decision_
    try:
        raw = detector.predict_video(video)
    finally:
        detector.decision_ = decision
    assert pred.p_fake == pytest.approx(float(decision.calibrator(np.mean([f.p_fake for f in raw.frames]))))


def test_held_out_synthetic_fakes_are_detected_well_above_chance(fitted, held_out):
    detector, _ = fitted
    report = detector.evaluate(held_out, verbose=0)
    assert report.n_videos == 8 and report.videos_without_face == 0
    assert report.video["roc_auc"] >= 0.85
    assert report.frame["roc_auc"] >= 0.8
    assert report.video["accuracy"] >= 0.75


def test_save_load_gives_identical_probabilities(fitted, held_out, tmp_path, weights):
    detector, _ = fitted
    path = detector.save(tmp_path / "model.dfd")
    with zipfile.ZipFile(path) as z:
        assert set(z.namelist()) == {"config.json", "metadata.json", "head_weights.npz"}
        metadata = json.loads(z.read("metadata.json"))
    assert metadata["backend"] == "jax" and metadata["n_features_in"] == 512
    loaded = DeepfakeDetector.load(path)
    assert loaded.get_config() == detector.get_config()
    video = sorted((held_out / "real").glob("*.mp4"))[0]
    a, b = detector.predict_video(video), loaded.predict_video(video)
    assert a.p_fake == b.p_fake
    assert [f.p_fake for f in a.frames] == [f.p_fake for f in b.frames]


def test_load_refuses_a_backbone_with_other_weights(fitted, tmp_path):
    detector, _ = fitted
    path = detector.save(tmp_path / "model.dfd")
    other = require(FFPP.parents[1] / "weights" / "mobilenet_v1_0.50_top.weights.h5")
    with pytest.raises(errors.IncompatibleModelError, match="fingerprint"):
        DeepfakeDetector.load(path, backbone_weights=str(other))


def test_load_refuses_a_file_that_is_not_a_model(tmp_path):
    bogus = tmp_path / "model.dfd"
    bogus.write_text("not a model")
    with pytest.raises(errors.IncompatibleModelError, match="not a deepfake-detect model"):
        DeepfakeDetector.load(bogus)


def test_config_round_trip_and_lazy_constructor(detector_config):
    detector = DeepfakeDetector(**detector_config)
    assert "_built" not in vars(detector)  # nothing heavy is built by the constructor
    twin = DeepfakeDetector.from_config(detector.get_config())
    assert twin.get_config() == detector.get_config()
    assert json.loads(json.dumps(detector.get_config())) == detector.get_config()


def test_unfitted_detector_raises_not_fitted(detector_config, dataset_dir):
    video = next((dataset_dir / "real").glob("*.mp4"))
    with pytest.raises(errors.NotFittedError, match="fit"):
        DeepfakeDetector(**detector_config).predict_video(video)


def test_no_face_abstains_or_raises_when_strict(fitted, tmp_path):
    detector, _ = fitted
    from deepfake_detect.datasets.synthetic import make_video

    rng = np.random.default_rng(0)
    frames = [np.full((240, 320, 3), rng.integers(0, 255), np.uint8) for _ in range(20)]
    video = make_video(tmp_path / "empty_room.mp4", frames, fps=10)
    pred = detector.predict_video(video)
    assert pred.label == "unknown" and pred.p_fake is None and "no face" in pred.reason
    with pytest.raises(errors.NoFaceFoundError):
        detector.predict_video(video, strict=True)


def test_predict_image_on_a_real_photo(fitted):
    detector, _ = fitted
    pred = detector.predict_image(require(FFPP.parents[1] / "images" / "grace_hopper.bmp"))
    assert pred.frames_sampled == 1 and pred.faces_found == 1 and pred.label in ("real", "fake")


@pytest.mark.parametrize("name, content, message", [
    ("missing.mp4", None, "no such file"),
    ("empty.mp4", b"", "empty"),
    ("notes.mp4", b"hello, not a video", "cannot open"),
    ("noise.mp4", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "cannot open"),
])
def test_bad_video_input_raises_typed_error(fitted, tmp_path, name, content, message):
    detector, _ = fitted
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(errors.VideoReadError, match=message):
        detector.predict_video(path)


def test_dataset_with_one_class_or_none_is_refused(dataset_dir, detector_config, tmp_path):
    one_class = tmp_path / "one"
    (one_class / "real").mkdir(parents=True)
    for video in (dataset_dir / "real").glob("*.mp4"):
        (one_class / "real" / video.name).symlink_to(video)
    with pytest.raises(errors.DatasetError, match="both real and fake"):
        DeepfakeDetector(**detector_config).fit(one_class, verbose=0)
    (tmp_path / "empty" / "real").mkdir(parents=True)
    (tmp_path / "empty" / "fake").mkdir()
    with pytest.raises(errors.DatasetError, match="no videos or images"):
        DeepfakeDetector(**detector_config).fit(tmp_path / "empty", verbose=0)


def test_real_faceforensics_videos(fitted):
    """RetinaFace finds the face in most sampled frames of real FF++ clips, and predict runs on them."""
    detector, _ = fitted
    videos = [require(FFPP / "real" / "055.mp4"), require(FFPP / "fake" / "Deepfakes_055_147.mp4"),
              require(FFPP / "fake" / "FaceSwap_134_192.mp4")]
    for video in videos:
        pred = detector.predict_video(video)
        assert pred.frames_sampled == 8
        assert pred.faces_found >= 7, f"{video.name}: faces in {pred.faces_found} of 8 frames"
        assert pred.label in ("real", "fake")


def test_load_refuses_a_model_naming_files_to_unpickle(fitted, tmp_path):
    """MTCNN's weights are joblib pickles: a model file may not point the detector at a folder of them."""
    detector, _ = fitted
    saved = detector.save(tmp_path / "model.dfd")
    evil = tmp_path / "evil.dfd"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(evil, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json":
                config = json.loads(data)
                config["face_detector"] = {"name": "mtcnn", "weights": str(tmp_path / "pickles")}
                data = json.dumps(config).encode()
            dst.writestr(name, data)
    with pytest.raises(errors.IncompatibleModelError, match="unpickled"):
        DeepfakeDetector.load(evil)


# --- issue 14: the contract of parameters, parts and fingerprints ---------------------------
def test_changed_parameters_rebuild_the_parts(detector_config):
    """scikit-learn's contract: a parameter changed after first use (assigned, set_params, or a
    dict changed in place) is what the detector uses next."""
    import copy

    from sklearn.base import clone

    detector = DeepfakeDetector(**copy.deepcopy({**detector_config, "cache": None}))  # its dicts change below
    assert detector.get_config()["head"]["name"] == "softmax"  # parts built
    sampler = detector.extractor.sampler
    detector.head = "mlp"
    assert detector.get_config()["head"]["name"] == "mlp"
    assert detector.set_params(head={"name": "logistic", "l2": 0.5}) is detector
    assert detector.part("head").l2 == 0.5
    detector.head["l2"] = 0.25  # the dict it was built from, changed in place
    assert detector.part("head").l2 == 0.25
    assert detector.extractor.sampler is sampler  # the head is not upstream of the features
    detector.sampler["n"] = 3
    assert detector.extractor.sampler.n == 3
    detector.set_params(crop={"margin": 1.5})
    assert detector.extractor.crop.margin == 1.5
    assert detector.get_params()["crop"] == {"margin": 1.5}
    twin = clone(detector)
    assert twin.get_params() == detector.get_params() and twin is not detector
    with pytest.raises(ValueError, match="no parameters"):
        detector.set_params(heads="mlp")


def test_a_keras_upgrade_keeps_saved_models_with_keras_named_weights(fitted, weights, tmp_path, monkeypatch):
    """The fingerprint of weights="imagenet" names the weights' values, not the Keras version:
    a model saved under Keras 3.x loads under 3.y when the weights are the same bytes."""
    import keras

    from deepfake_detect.backbones import MobileNetV1
    from deepfake_detect.digests import file_sha256

    def offline_imagenet(self):  # Keras' file, from the shared copy (no download here)
        return keras.applications.MobileNet(input_shape=(128, 128, 3), alpha=0.5, include_top=False,
                                            weights=weights, pooling="avg")

    monkeypatch.setattr(MobileNetV1, "build_model", offline_imagenet)
    detector, _ = fitted
    twin = DeepfakeDetector.load(detector.save(tmp_path / "path.dfd"))
    twin.set_params(backbone={**twin.get_config()["backbone"], "weights": "imagenet"})
    monkeypatch.setattr(keras, "__version__", "3.8.0")
    saved = twin.save(tmp_path / "imagenet.dfd")
    monkeypatch.setattr(keras, "__version__", "3.99.0")
    loaded = DeepfakeDetector.load(saved)  # refused before: "keras:imagenet:3.8.0" != "keras:imagenet:3.99.0"
    assert loaded.part("backbone").fingerprint == twin.part("backbone").fingerprint
    assert loaded.part("backbone").weights_digest().startswith("keras:imagenet:")
    path = MobileNetV1(weights=weights)
    assert path.weights_digest() == "sha256:" + file_sha256(weights)  # a path keeps its file digest
    assert path.fingerprint != loaded.part("backbone").fingerprint
    legacy = tmp_path / "legacy.dfd"  # as deepfake-detect 0.1.0 saved it under Keras 3.8.0
    monkeypatch.setattr(keras, "__version__", "3.8.0")
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(legacy, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "metadata.json":
                metadata = {**json.loads(data), "backbone_fingerprint": loaded.part("backbone").legacy_fingerprint()}
                data = json.dumps(metadata).encode()
            dst.writestr(name, data)
    DeepfakeDetector.load(legacy)  # loads under the Keras version it was saved with


def test_predict_videos_streams_the_verdicts_of_predict_video_and_yields_read_errors(fitted, held_out, tmp_path):
    detector, _ = fitted
    videos = sorted(held_out.rglob("*.mp4"))[:3]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"hello, not a video")
    paths = [videos[0], broken, *videos[1:]]
    results = list(detector.predict_videos(paths))
    assert len(results) == len(paths)
    assert isinstance(results[1], errors.VideoReadError) and "cannot open" in str(results[1])
    for path, got in zip(videos, [results[0], *results[2:]]):
        alone = detector.predict_video(path)
        assert (got.path, got.label, got.frames_sampled, got.faces_found) == (alone.path, alone.label,
                                                                                alone.frames_sampled, alone.faces_found)
        assert got.p_fake == pytest.approx(alone.p_fake, abs=1e-6)
        assert "classify" in got.timings and ("cache" in got.timings or {"decode", "detect", "embed"} <= set(got.timings))
