"""Heads: reproducible training, and the temporal head's video-level part."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from deepfake_detect import DeepfakeDetector
from deepfake_detect.heads import TemporalHead, frame_changes, heads


def flickering_videos(n_videos: int = 40, frames: int = 12, dim: int = 16, seed: int = 0):
    """Frame features whose per-frame distribution is the same for both classes, but whose fakes
    jump between frames (independent noise each frame) where real ones drift smoothly."""
    rng = np.random.default_rng(seed)
    x, y, videos = [], [], []
    for v in range(n_videos):
        label = v % 2
        if label:  # fake: a fresh draw each frame
            rows = rng.normal(size=(frames, dim))
        else:  # real: the same marginal, changing slowly
            rows = np.cumsum(rng.normal(scale=0.15, size=(frames, dim)), axis=0) + rng.normal(size=dim)
            rows = (rows - rows.mean(0)) / (rows.std(0) + 1e-6) * 0.9 + rng.normal(scale=0.4, size=(frames, dim))
        x.append(rows)
        y += [label] * frames
        videos += [v] * frames
    return np.concatenate(x).astype(np.float32), np.array(y, np.int32), np.array(videos)


def video_auc(p, y, videos):
    ids = np.unique(videos)
    return roc_auc_score([y[videos == v][0] for v in ids], [p[videos == v].mean() for v in ids])


@pytest.mark.parametrize("spec", [{"name": "logistic", "epochs": 3}, {"name": "softmax", "steps": 40},
                                  {"name": "mlp", "epochs": 2, "units": 8}])
def test_a_fit_is_reproducible_from_its_seed(spec):
    x, y, _ = flickering_videos(n_videos=10)
    runs = [heads.create(spec) for _ in range(2)]
    for head in runs:
        head.fit(x, y)
    for a, b in zip(runs[0].model_.get_weights(), runs[1].model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = heads.create({**spec, "seed": 1})
    other.fit(x, y)
    assert not np.array_equal(other.model_.get_weights()[0], runs[0].model_.get_weights()[0])


def test_frame_changes_are_per_video_and_in_frame_order():
    x = np.array([[0, 0], [1, 2], [3, 2], [5, 5], [7, 7]], np.float32)
    changes, has = frame_changes(x, np.array([0, 0, 0, 1, 2]))
    np.testing.assert_allclose(changes[:3], [[1.5, 1.0]] * 3)  # |1-0|,|3-1| -> 1.5; |2-0|,|2-2| -> 1.0
    assert has[:, 0].tolist() == [1, 1, 1, 0, 0] and not changes[3:].any()  # one frame: nothing to compare
    assert frame_changes(x[:2])[0].tolist() == [[1, 2], [1, 2]]  # no videos: all rows are one video
    with pytest.raises(ValueError, match="videos"):
        frame_changes(x, np.array([0, 1]))


def test_temporal_head_sees_flicker_that_frames_alone_cannot():
    x, y, videos = flickering_videos()
    tx, ty, tvideos = flickering_videos(seed=1)
    frame_only = heads.create({"name": "logistic", "epochs": 20})
    frame_only.fit(x, y)
    temporal = heads.create({"name": "temporal", "epochs": 20, "temporal_c": 1.0})
    temporal.fit(x, y, videos=videos)
    p = temporal.predict(tx, videos=tvideos)
    assert p.shape == (len(tx),) and np.all((p >= 0) & (p <= 1))
    assert video_auc(p, ty, tvideos) >= 0.95
    assert video_auc(frame_only.predict(tx), ty, tvideos) < 0.8
    one = tvideos == tvideos[0]  # a single video, as predict_video gives it
    np.testing.assert_allclose(temporal.predict(tx[one]), p[one], rtol=1e-6)
    with pytest.raises(ValueError, match="videos"):
        heads.create({"name": "temporal"}).fit(x, y)
    with pytest.raises(ValueError, match="temporal_weight"):
        TemporalHead(temporal_weight=1.5)


def test_temporal_head_with_zero_weight_is_its_frame_head():
    x, y, videos = flickering_videos(n_videos=12)
    temporal = TemporalHead(temporal_weight=0.0, epochs=3)
    temporal.fit(x, y, videos=videos)
    frame = temporal._frame_head()
    frame.fit(x, y)
    np.testing.assert_allclose(temporal.predict(x, videos), frame.predict(x), rtol=1e-5, atol=1e-6)


def test_detector_with_temporal_head_saves_and_loads(dataset_dir, detector_config, tmp_path):
    detector = DeepfakeDetector(**{**detector_config, "head": {"name": "temporal", "epochs": 5}})
    detector.fit(dataset_dir, verbose=0, cross_fit=0)  # uncalibrated: the video's score is its frames' mean
    video = sorted((dataset_dir / "fake").glob("*.mp4"))[0]
    loaded = DeepfakeDetector.load(detector.save(tmp_path / "temporal.dfd"))
    a, b = detector.predict_video(video), loaded.predict_video(video)
    assert a.p_fake == b.p_fake and 0.0 <= a.p_fake <= 1.0
    assert a.p_fake == pytest.approx(np.mean([f.p_fake for f in a.frames]))
    with pytest.raises(ValueError, match="temporal"):
        DeepfakeDetector(**{**detector_config, "head": "temporal"}).fine_tune(dataset_dir, epochs=1)
