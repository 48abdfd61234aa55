"""Fine-tuning end to end on the generated dataset, the multi-block backbone, and the augmenter."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from deepfake_detect import DeepfakeDetector, errors, get_backbone
from deepfake_detect.fine_tuning import Augmenter, layer_block, set_trainable
from deepfake_detect.saving import BACKBONE_WEIGHTS


@pytest.fixture(scope="module")
def tuned(dataset_dir, detector_config, tmp_path_factory):
    """A detector fine-tuned for one short epoch (top 2 blocks), its state before, and its saved file."""
    config = {**detector_config, "head": {"name": "logistic", "standardize": True, "epochs": 5, "batch_size": 16},
              "cache": tmp_path_factory.mktemp("ft_cache") / "cache.sqlite"}
    detector = DeepfakeDetector(**config)
    backbone = detector.part("backbone")
    before = {"weights": backbone.model.get_weights(), "fingerprint": backbone.fingerprint,
              "extractor": detector.extractor.fingerprint}
    history = detector.fine_tune(dataset_dir, trainable_blocks=2, epochs=1, batch_size=16, learning_rate=1e-3,
                                 verbose=0, seed=1)
    path = detector.save(tmp_path_factory.mktemp("ft_model") / "model.dfd")
    return detector, before, history, path


def test_fine_tune_trains_the_top_blocks_only(tuned):
    detector, before, history, _ = tuned
    after = detector.part("backbone").model
    changed = {layer.name for layer, old in zip(after.layers, _by_layer(after, before["weights"]))
               if any(not np.array_equal(w, o) for w, o in zip(layer.get_weights(), old))}
    assert changed and all(layer_block(name) in (12, 13) for name in changed)
    assert any(name.startswith("conv_pw_13") for name in changed)
    assert history.fine_tune_["epochs_run"] == 1 and history.fine_tune_["validation_videos"] > 0
    assert not after.trainable  # frozen again for inference


def test_fine_tune_updates_the_fingerprints(tuned):
    detector, before, _, _ = tuned
    backbone = detector.part("backbone")
    assert backbone.fingerprint != before["fingerprint"]
    assert detector.extractor.fingerprint != before["extractor"]
    assert detector.fingerprint_ == detector.extractor.fingerprint
    assert detector.extractor.crops_fingerprint  # crops are keyed as before: the crop cache is reused


def test_saved_fine_tuned_model_restores_identical_predictions(tuned, dataset_dir, monkeypatch):
    detector, _, _, path = tuned
    with zipfile.ZipFile(path) as z:
        assert BACKBONE_WEIGHTS in z.namelist()
    monkeypatch.setenv("DEEPFAKE_DETECT_CACHE", "none")  # the loaded model computes its features afresh
    loaded = DeepfakeDetector.load(path)
    assert loaded.part("backbone").fingerprint == detector.part("backbone").fingerprint
    for video in (sorted((dataset_dir / "fake").glob("*.mp4"))[0], sorted((dataset_dir / "real").glob("*.mp4"))[0]):
        ours, theirs = detector.predict_video(video), loaded.predict_video(video)
        np.testing.assert_allclose([f.p_fake for f in theirs.frames], [f.p_fake for f in ours.frames], rtol=0,
                                   atol=1e-6)


def test_load_refuses_pickled_backbone_weights(tuned, tmp_path):
    _, _, _, path = tuned
    bad = tmp_path / "bad.dfd"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            if name != BACKBONE_WEIGHTS:
                dst.writestr(name, src.read(name))
        buffer = io.BytesIO()
        np.savez(buffer, np.array([{"x": 1}], dtype=object))
        dst.writestr(BACKBONE_WEIGHTS, buffer.getvalue())
    with pytest.raises(errors.IncompatibleModelError, match=BACKBONE_WEIGHTS):
        DeepfakeDetector.load(bad)


def test_fine_tune_twice_is_refused(tuned, dataset_dir):
    detector, *_ = tuned
    with pytest.raises(ValueError, match="fine-tuned already"):
        detector.fine_tune(dataset_dir, epochs=1)


def test_multiblock_width_is_the_sum_of_the_pooled_blocks(weights):
    backbone = get_backbone("mobilenet_v1_multiblock", alpha=0.5, input_size=128, weights=weights, blocks=(1, 3, 13))
    assert backbone.block_channels() == [32, 64, 512]
    crops = np.random.default_rng(0).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    features = backbone.embed(crops)
    assert features.shape == (3, 32 + 64 + 512) == (3, backbone.feature_dim)
    assert backbone.model.output_shape[-1] == backbone.feature_dim
    last = get_backbone("mobilenet_v1", alpha=0.5, input_size=128, weights=weights).embed(crops)
    np.testing.assert_allclose(features[:, -512:], last, rtol=1e-4, atol=1e-5)  # block 13 is mobilenet_v1's pool
    both = get_backbone("mobilenet_v1_multiblock", alpha=0.25, input_size=64, weights=None, blocks=(0, 5),
                        pooling="avg_std")
    assert both.feature_dim == 2 * (8 + 64) == both.model.output_shape[-1]


def test_multiblock_region_pools_the_centre_of_each_block(weights):
    import keras

    from deepfake_detect.backbones.multiblock import block_layer, central

    assert central(16, 0.4) == ((5, 5), (5, 5)) and central(4, 0.1) == ((2, 1), (2, 1))  # at least one position
    crops = np.random.default_rng(1).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    centre = get_backbone("mobilenet_v1_multiblock", alpha=0.5, input_size=128, weights=weights, blocks=(3, 9),
                          pooling="avg_std", region=0.4)
    features = centre.embed(crops)
    maps = keras.Model(centre.model.input, [centre.model.get_layer(block_layer(b)).output for b in (3, 9)])
    expected = []
    for fmap in maps.predict(centre.preprocess(crops), verbose=0):
        (top, bottom), (left, right) = central(fmap.shape[1], 0.4)
        middle = fmap[:, top:fmap.shape[1] - bottom, left:fmap.shape[2] - right].reshape(len(crops), -1, fmap.shape[-1])
        expected += [middle.mean(axis=1), middle.std(axis=1)]
    np.testing.assert_allclose(features, np.concatenate(expected, axis=1), rtol=1e-3, atol=1e-3)
    whole = get_backbone("mobilenet_v1_multiblock", alpha=0.5, input_size=128, weights=weights, blocks=(3, 9),
                         pooling="avg_std").embed(crops)
    assert not np.allclose(whole, features, atol=1e-3)  # the border is left out
    with pytest.raises(ValueError, match="region"):
        get_backbone("mobilenet_v1_multiblock", weights=None, region=0.0)


def test_multiblock_rejects_bad_blocks():
    with pytest.raises(ValueError, match="blocks"):
        get_backbone("mobilenet_v1_multiblock", weights=None, blocks=(3, 14))
    with pytest.raises(ValueError, match="pooling"):
        get_backbone("mobilenet_v1_multiblock", weights=None, pooling="max")


def test_trainable_blocks_needs_numbered_blocks():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    with pytest.raises(ValueError, match="trainable_blocks"):
        set_trainable(model, 2)
    assert set_trainable(model, None) == 2


def test_augmenter_keeps_shape_and_is_seeded():
    images = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    always = Augmenter(color=1, resize=1, blur=1, jpeg=1, flip=1)
    a = always.batch(images, np.random.default_rng(3))
    b = always.batch(images, np.random.default_rng(3))
    assert a.shape == images.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, images)
    never = Augmenter(color=0, resize=0, blur=0, jpeg=0, flip=0)
    np.testing.assert_array_equal(never.batch(images, np.random.default_rng(0)), images)
    with pytest.raises(ValueError, match="probability"):
        Augmenter(jpeg=1.5)


def test_standardized_head_folds_its_scaling_exactly():
    from deepfake_detect.heads import fold_standardization, heads

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 6)) * [1, 10, 100, 0.1, 1, 1e-9] + [5, 0, -3, 2, 0, 7]).astype(np.float32)
    y = (x[:, 0] + x[:, 1] / 10 > 5).astype(np.int32)
    head = heads.create({"name": "logistic", "standardize": True})
    head.fit(x, y)
    assert ((head.predict(x) > 0.5) == y).mean() > 0.85
    mean, scale = head.standardization_
    raw = head.model_.predict_on_batch(x)
    fold_standardization(head.model_, mean, scale, inverse=True)
    np.testing.assert_allclose(head.model_.predict_on_batch((x - mean) * scale), raw, rtol=1e-4, atol=1e-5)
    assert np.all(np.isfinite(scale)) and scale.max() < 1e9  # a constant feature is not blown up


def _by_layer(model, flat):
    """Split a model's flat weight list into per-layer lists."""
    out, i = [], 0
    for layer in model.layers:
        n = len(layer.get_weights())
        out.append(flat[i:i + n])
        i += n
    return out
