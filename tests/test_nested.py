"""Nested cross-validation, cross-fitted `fit`, calibration and one-class evaluation."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from deepfake_detect import DeepfakeDetector, evaluation
from deepfake_detect import detector as detector_module
from deepfake_detect.calibration import (Calibrator, Decision, choose_band, choose_decision, choose_threshold,
                                         expected_calibration_error)
from deepfake_detect.datasets import discover
from deepfake_detect.evaluation import (Candidate, Recipe, cross_source_false_positives, feature_bank,
                                        leave_one_method_out, nested_cross_validate)
from deepfake_detect.heads import heads

HEAD = {"name": "logistic", "steps": 60, "batch_size": 16, "learning_rate": 0.01}


@pytest.fixture(scope="module")
def config(detector_config) -> dict:
    return {**detector_config, "head": HEAD}


@pytest.fixture(scope="module")
def only_real(dataset_dir, tmp_path_factory) -> Path:
    """A folder of real videos only (as another source's real footage would be)."""
    root = tmp_path_factory.mktemp("only_real")
    rows = ["path,label,group"] + [f"{dataset_dir / 'real' / f'real_{i:03d}.mp4'},real,person-{i}" for i in range(6)]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


class Spy:
    """Records, per outer fold, the videos every head trains on and the groups every decision sees."""

    def __init__(self, bank):
        self.path_of = {row.tobytes(): bank.samples[bank.kept[v]].path
                        for table in bank.tables.values() for v, row in zip(table.owner, table.x)}
        self.fold = -1
        self.trained: list[list[set[str]]] = []
        self.decided: list[list[set[str]]] = []
        self.fit_on: list[set[str]] = []

    def create(self, spec):
        head = heads.create(spec)
        fit = head.fit

        def recording_fit(x, y, *args, **kwargs):
            self.trained[self.fold].append({self.path_of[row.tobytes()] for row in np.asarray(x, np.float32)})
            return fit(x, y, *args, **kwargs)

        head.fit = recording_fit
        return head


def test_nested_cv_makes_every_choice_without_the_outer_test_fold(monkeypatch, config, paired):
    temporal = {**config, "head": {"name": "temporal", "steps": 60, "batch_size": 16, "learning_rate": 0.01}}
    recipe = Recipe("two", (Candidate("logistic", config), Candidate("temporal", temporal)), inner_folds=2,
                    max_abstain=0.2)
    bank = feature_bank(recipe.candidates, paired)
    spy = Spy(bank)
    monkeypatch.setattr(evaluation, "heads", spy)
    real_fit_recipe, real_decide = evaluation.fit_recipe, evaluation.choose_decision

    def spied_fit_recipe(recipe, bank, train, *args, **kwargs):
        spy.fold += 1
        spy.trained.append([])
        spy.decided.append([])
        spy.fit_on.append({bank.samples[bank.kept[v]].path for v in train})
        return real_fit_recipe(recipe, bank, train, *args, **kwargs)

    def spied_decide(scores, labels, groups, *args, **kwargs):
        spy.decided[spy.fold].append(set(np.asarray(groups).tolist()))
        return real_decide(scores, labels, groups, *args, **kwargs)

    monkeypatch.setattr(evaluation, "fit_recipe", spied_fit_recipe)
    monkeypatch.setattr(evaluation, "choose_decision", spied_decide)
    result = nested_cross_validate(recipe, bank, outer_folds=3, bootstrap=50)

    samples = discover(paired)
    group = {s.path: s.group for s in samples}
    assert len(result.choices) == 3 and len(spy.fit_on) == 3
    tested = [set(c["tested"]) for c in result.choices]
    assert sorted(p for t in tested for p in t) == sorted(group)  # each video tested exactly once
    for k in range(3):
        test_groups = {group[p] for p in tested[k]}
        assert spy.fit_on[k] == set(group) - tested[k]
        # inner folds: 2 per candidate, then the refit: every head trained without the outer test fold
        assert len(spy.trained[k]) == 2 * 2 + 1
        for videos in spy.trained[k]:
            assert not {group[p] for p in videos} & test_groups
        assert spy.trained[k][-1] == spy.fit_on[k]  # the final head: every outer-training video
        assert spy.decided[k] and all(not (g & test_groups) for g in spy.decided[k])
        assert result.choices[k]["candidate"] in ("logistic", "temporal")
    report = result.report
    assert report.n_videos == 12 and set(report.by_method) == {"swap_a", "swap_b"}
    assert {"refit", "bag", "uncalibrated", "threshold balanced"} <= set(result.variants)
    assert np.isnan(report.video_auc_ci[0])  # 6 groups: too few for a bootstrap interval ("n/a")
    assert "n/a" in report.summary()
    json.dumps(result.to_dict())


def test_leave_one_method_out_and_cross_source_protocols(config, paired, only_real):
    recipe = Recipe.single("logistic", config, inner_folds=2)
    bank = feature_bank(recipe.candidates, paired, only_real)
    lomo = leave_one_method_out(recipe, bank, outer_folds=6, bootstrap=0)
    method_of = {s.path: s.method for s in discover(paired)}
    assert set(lomo) == {"swap_a", "swap_b"}
    for method, result in lomo.items():
        fakes = [p.path for p, y in zip(result.report.predictions, result.report.labels) if y == 1]
        assert fakes and {method_of[p] for p in fakes} == {method}  # tested on the left-out method only
        assert sum(result.report.labels) < len(result.report.labels)  # with held-out real videos
    source = cross_source_false_positives(recipe, bank, True, bootstrap=0)
    assert source.report.one_class == "real" and source.report.n_videos == 6
    assert 0.0 <= source.report.video["called_fake_rate"] <= 1.0
    folded = cross_source_false_positives(recipe, bank, True, folds=3, train_on_other=True, bootstrap=0)
    assert folded.report.n_videos == 6 and len(folded.choices) == 3
    for choice in folded.choices:  # each fold trained on the dev set and the other folds' other-source videos
        assert choice["n_train"] == 12 + 4


def test_fit_cross_fits_then_trains_the_final_head_on_every_video(monkeypatch, config, paired, tmp_path):
    fits = []

    class Counting:
        def create(self, spec):
            head = heads.create(spec)
            fit = head.fit

            def counting_fit(x, y, *args, **kwargs):
                fits.append(len(x))
                return fit(x, y, *args, **kwargs)

            head.fit = counting_fit
            return head

        serialize = staticmethod(heads.serialize)

    monkeypatch.setattr(detector_module, "heads", Counting())
    detector = DeepfakeDetector(**config)
    detector.fit(paired, verbose=0, cross_fit=3)
    total = sum(len(f) for f in detector.extract_features([s.path for s in discover(paired)], 0))
    assert total == 96
    assert len(fits) == 3 + 1 and fits[-1] == total  # 3 cross-fitting folds, then every labelled frame
    assert all(n < total for n in fits[:-1])
    assert detector.decision_ is not None and detector.crossfit_["folds"] == 3
    assert detector.crossfit_["videos"] == 12

    pred = detector.predict_video(discover(paired)[0].path)
    assert pred.threshold == detector.decision_.threshold == detector.operating_threshold
    raw = DeepfakeDetector.load(detector.save(tmp_path / "m.dfd"))
    assert raw.decision_.to_dict() == detector.decision_.to_dict()  # calibration stored with the model
    again = raw.predict_video(pred.path)
    assert again.p_fake == pytest.approx(pred.p_fake) and again.label == pred.label
    raw.decision_ = None
    uncalibrated = raw.predict_video(pred.path)
    assert pred.p_fake == pytest.approx(float(detector.decision_.calibrator(uncalibrated.p_fake)))
    assert [f.p_fake for f in pred.frames] == pytest.approx(
        list(detector.decision_.calibrator(np.array([f.p_fake for f in uncalibrated.frames]))))


def test_a_model_saved_without_calibration_still_loads(config, paired, tmp_path):
    detector = DeepfakeDetector(**config)
    detector.fit(paired, verbose=0, cross_fit=2)
    path = detector.save(tmp_path / "m.dfd")
    old = tmp_path / "old.dfd"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "metadata.json":
                meta = json.loads(data)
                meta.pop("decision"), meta.pop("crossfit")
                data = json.dumps(meta)
            dst.writestr(name, data)
    loaded = DeepfakeDetector.load(old)
    assert loaded.decision_ is None and loaded.operating_threshold == 0.5
    pred = loaded.predict_video(discover(paired)[0].path)
    assert pred.label == ("fake" if pred.p_fake >= 0.5 else "real")
    bad = tmp_path / "bad.dfd"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "metadata.json":
                meta = json.loads(data)
                meta["decision"]["calibration"] = {"method": "platt", "a": "os.system"}
                data = json.dumps(meta)
            dst.writestr(name, data)
    from deepfake_detect.errors import IncompatibleModelError

    with pytest.raises(IncompatibleModelError, match="decision"):
        DeepfakeDetector.load(bad)


def test_evaluating_one_class_reports_the_rate_called_fake(config, paired, only_real):
    detector = DeepfakeDetector(**config)
    detector.fit(paired, verbose=0, cross_fit=2)
    report = detector.evaluate(only_real, verbose=0, bootstrap=50)
    assert report.one_class == "real" and report.n_videos == 6
    v = report.video
    assert v["called_fake_rate"] == pytest.approx(v["fp"] / 6) and v["accuracy"] == pytest.approx(1 - v["fp"] / 6)
    assert np.isnan(v["roc_auc"]) and np.isfinite(v["ece"]) and np.isfinite(v["brier"])
    assert "one class only (real)" in report.summary() and "called fake" in report.summary()
    assert report.to_dict()["one_class"] == "real"


def test_calibration_improves_ece_on_generated_scores():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.95, 4000)
    y = (rng.uniform(size=4000) < truth).astype(int)
    logit = np.log(truth / (1 - truth))
    raw = 1 / (1 + np.exp(-(3.0 * logit + 1.0)))  # overconfident and biased towards fake
    fit, test = slice(0, 2000), slice(2000, None)
    before = expected_calibration_error(y[test], raw[test])
    for method in ("platt", "isotonic"):
        calibrator = Calibrator.fit(raw[fit], y[fit], method)
        after = expected_calibration_error(y[test], calibrator(raw[test]))
        assert after < before / 3 and after < 0.05
        again = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
        assert again(raw[test][:10]) == pytest.approx(calibrator(raw[test][:10]))
    assert np.all(np.diff(Calibrator.fit(raw, y, "platt")(np.linspace(0.01, 0.99, 50))) > 0)  # keeps the order


def test_threshold_rules_and_the_inconclusive_band():
    y = np.array([0] * 10 + [1] * 10)
    p = np.concatenate([np.linspace(0.0, 0.55, 10), np.linspace(0.45, 1.0, 10)])
    balanced = choose_threshold(p, y, "balanced")
    assert 0.4 < balanced < 0.6
    strict = choose_threshold(p, y, "fpr<=0.05")
    assert (p[y == 0] >= strict).mean() <= 0.05
    low, high = choose_band(p, y, balanced, max_abstain=0.3, target_error=0.0)
    decided = (p < low) | (p >= high)
    assert low < balanced <= high and ((p[decided] >= balanced) == y[decided].astype(bool)).all()
    assert (~decided).mean() <= 0.3
    decision = choose_decision(p, y, calibration="none", threshold="balanced", max_abstain=0.3, target_error=0.0)
    assert decision.label(decision.band[0]) == "inconclusive" and decision.label(1.0) == "fake"
    assert Decision.from_dict(json.loads(json.dumps(decision.to_dict()))).to_dict() == decision.to_dict()
    with pytest.raises(ValueError):
        Decision.from_dict({"threshold": 2})


def test_fit_chooses_among_head_candidates_by_cross_fitted_auc(config, paired, tmp_path):
    temporal = {"name": "temporal", "steps": 60, "batch_size": 16, "learning_rate": 0.01}
    detector = DeepfakeDetector(**config)
    detector.fit(paired, verbose=0, cross_fit=2, head_candidates=[HEAD, temporal])
    aucs = detector.crossfit_["head_candidates_oof_auc"]
    chosen = ("logistic", "temporal")[int(np.argmax(aucs))]
    assert detector.head_.registry_name == chosen
    loaded = DeepfakeDetector.load(detector.save(tmp_path / "m.dfd"))
    assert loaded.head_.registry_name == chosen
    video = discover(paired)[0].path
    assert loaded.predict_video(video).p_fake == pytest.approx(detector.predict_video(video).p_fake)


def test_the_recommended_presets_carry_their_fit_recipe():
    from deepfake_detect.presets import get_preset

    recommended = get_preset("face_region_calibrated")
    assert recommended.config == get_preset("face_region").config and "head_candidates" not in recommended.train_kwargs
    assert recommended.train_kwargs == {"cross_fit": 5, "calibration": "platt", "threshold": "balanced",
                                        "max_abstain": 0.2}
    preset = get_preset("face_region_auto")
    assert preset.train == "fit" and preset.train_kwargs["calibration"] == "platt"
    assert preset.train_kwargs["max_abstain"] == 0.2 and preset.train_kwargs["threshold"] == "balanced"
    assert [h["name"] for h in preset.train_kwargs["head_candidates"]] == ["logistic", "temporal"]
    assert preset.config == get_preset("face_region").config  # the same features
