"""Cross-validation protocols on the generated videos: grouped folds, the leaky protocol, the official split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepfake_detect import DeepfakeDetector, evaluation
from deepfake_detect.datasets import discover
from deepfake_detect.evaluation import cross_validate
from deepfake_detect.heads import heads
from deepfake_detect.metrics import bootstrap_ci
from deepfake_detect.results import mean_std

HEAD = {"name": "logistic", "steps": 100, "batch_size": 16, "learning_rate": 0.01}


@pytest.fixture(scope="module")
def config(detector_config) -> dict:
    return {**detector_config, "head": HEAD}


class HeadSpy:
    """Stands in for the head registry in `evaluation`: records the features each fold trains on."""

    def __init__(self):
        self.trained_on: list[np.ndarray] = []

    def create(self, spec):
        head = heads.create(spec)
        fit = head.fit

        def recording_fit(x, y, *args, **kwargs):
            self.trained_on.append(np.asarray(x))
            return fit(x, y, *args, **kwargs)

        head.fit = recording_fit
        return head


def spied_run(monkeypatch, config, data, **kwargs):
    """A cross-validation, the training rows of each fold traced back to their videos."""
    spy = HeadSpy()
    monkeypatch.setattr(evaluation, "heads", spy)
    report = cross_validate(config, data, verbose=0, bootstrap=100, **kwargs)
    samples = discover(data)
    feats = DeepfakeDetector(**config).extract_features([s.path for s in samples], 0)  # cache hits
    video_of = {row.tobytes(): s.path for s, f in zip(samples, feats) for row in f.features.astype(np.float32)}
    trained = [[video_of[row.tobytes()] for row in x] for x in spy.trained_on]
    return report, samples, trained


def test_grouped_five_fold_keeps_every_group_on_one_side(monkeypatch, config, paired):
    report, samples, trained = spied_run(monkeypatch, config, paired, folds=5)
    group = {s.path: s.group for s in samples}
    assert len(report.folds) == 5 and len(trained) == 5 and not report.leaky
    assert report.protocol.startswith("grouped 5-fold")
    tested = [[p.path for p in fold.predictions] for fold in report.folds]
    assert sorted(sum(tested, [])) == sorted(group)  # every video tested exactly once
    for train_videos, test_videos in zip(trained, tested):
        assert not {group[v] for v in train_videos} & {group[v] for v in test_videos}
        assert set(train_videos) | set(test_videos) == set(group)
    assert report.n_videos == 12 and report.n_frames == 96 and report.labels.count(1) == 6
    assert set(report.by_method) == {"swap_a", "swap_b"}
    low, high = report.video_auc_ci
    assert 0.0 <= low <= high <= 1.0
    spread = report.across_folds()
    assert set(spread) == {"video", "frame"} and np.isfinite(spread["frame"]["accuracy"]).all()
    assert "folds:" in report.summary() and "95% CI" in report.summary()


def test_leaky_protocol_splits_frames_of_a_video_and_says_so(monkeypatch, config, paired):
    report, samples, trained = spied_run(monkeypatch, config, paired, folds=5, protocol="leaky")
    assert report.leaky and "LEAKY" in report.protocol and "seed paper" in report.protocol
    assert "WARNING: leaky protocol" in report.summary() and report.to_dict()["leaky"] is True
    tested = [{p.path for p in fold.predictions} for fold in report.folds]
    assert all(set(train) & test for train, test in zip(trained, tested))  # a video on both sides of each fold
    assert sum(p.faces_found for p in report.predictions) == report.n_frames == 96  # each frame tested once


def test_official_split_trains_on_train_and_tests_on_test(monkeypatch, config, dataset_dir, tmp_path):
    for i in range(6):  # FaceForensics++ names for the generated videos: fake 00i_00j shows j's face in i
        (tmp_path / "real").mkdir(exist_ok=True)
        (tmp_path / "fake").mkdir(exist_ok=True)
        (tmp_path / "real" / f"{i:03d}.mp4").symlink_to(dataset_dir / "real" / f"real_{i:03d}.mp4")
        (tmp_path / "fake" / f"{i:03d}_{i ^ 1:03d}.mp4").symlink_to(dataset_dir / "fake" / f"fake_{i:03d}.mp4")
    splits = tmp_path / "splits"
    splits.mkdir()
    for name, pairs in (("train", [["000", "001"], ["002", "003"]]), ("val", []), ("test", [["004", "005"]])):
        (splits / f"{name}.json").write_text(json.dumps(pairs))
    report, samples, trained = spied_run(monkeypatch, config, tmp_path, protocol="official", splits_dir=splits)
    assert report.protocol.startswith("FaceForensics++ official split") and not report.folds
    assert sorted(Path(p.path).name for p in report.predictions) == ["004.mp4", "004_005.mp4", "005.mp4",
                                                                     "005_004.mp4"]
    assert {Path(v).name[:3] for v in trained[0]} == {"000", "001", "002", "003"}


def test_cross_validate_rejects_unknown_protocols(config, paired):
    with pytest.raises(ValueError, match="protocol must be one of"):
        cross_validate(config, paired, protocol="random")
    with pytest.raises(ValueError, match="needs splits_dir"):
        cross_validate(config, paired, protocol="official")


def test_evaluate_breaks_down_by_method_with_a_bootstrap_interval(config, paired):
    detector = DeepfakeDetector(**config)
    detector.fit(paired, validation_split=0, verbose=0)
    report = detector.evaluate(paired, verbose=0, bootstrap=100)
    assert report.protocol == "held-out dataset" and not report.leaky and not report.folds
    assert set(report.by_method) == {"swap_a", "swap_b"}
    assert all(m["tn"] + m["fp"] == 6 and m["fn"] + m["tp"] == 3 for m in report.by_method.values())
    low, high = report.video_auc_ci
    assert low <= report.video["roc_auc"] <= high
    assert [p.path for p in report.predictions] == [s.path for s in discover(paired)]


def test_bootstrap_interval_is_seeded_and_resamples_whole_groups():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    p = np.clip(y * 0.3 + rng.normal(0.35, 0.2, 40), 0, 1)
    a, b = bootstrap_ci(y, p, n=100, seed=1), bootstrap_ci(y, p, n=100, seed=1)
    assert a == b and a[0] < roc_auc_score(y, p) < a[1]
    one_group = bootstrap_ci(y, p, groups=np.zeros(40), n=20)  # every resample is the whole data set
    assert one_group == pytest.approx((roc_auc_score(y, p),) * 2)
    assert np.isnan(bootstrap_ci(np.zeros(5), np.linspace(0, 1, 5))).all()


def test_mean_std_leaves_out_undefined_folds():
    spread = mean_std([{"auc": 0.5, "acc": 1.0}, {"auc": float("nan"), "acc": 0.0}, {"auc": 0.7, "acc": 0.5}])
    assert spread["auc"] == pytest.approx((0.6, 0.1)) and spread["acc"] == pytest.approx((0.5, np.std([1, 0, 0.5])))
