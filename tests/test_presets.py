"""Presets: the paper's exact configuration, the registry, overrides and errors."""

from __future__ import annotations

import pytest

from deepfake_detect import DeepfakeDetector
from deepfake_detect.presets import PRESETS, Preset, get_preset, list_presets, preset_config, register_preset

PAPER = {
    "sampler": {"name": "fixed_rate", "fps": 1.0},
    "backbone": {"name": "mobilenet_v1", "alpha": 0.5, "input_size": 128, "weights": "imagenet"},
    "head": {"name": "softmax", "learning_rate": 0.005, "optimizer": "sgd", "batch_size": 5, "steps": 2500},
}


def test_paper_preset_is_the_papers_configuration():
    detector = DeepfakeDetector.from_preset("paper")
    config = detector.get_config()
    assert config["sampler"]["name"] == "fixed_rate" and config["sampler"]["fps"] == 1.0
    assert config["sampler"]["max_frames"] is None
    backbone = config["backbone"]
    assert {k: backbone[k] for k in ("name", "alpha", "input_size", "weights")} == PAPER["backbone"]
    head = config["head"]
    assert {k: head[k] for k in PAPER["head"]} == PAPER["head"]
    assert head["class_weight"] is None  # plain softmax cross-entropy, as the paper
    assert config["aggregator"]["name"] == "mean"
    assert detector.preset_.train == "fit"
    assert not hasattr(detector, "head_")  # a recipe, untrained


def test_list_presets_names_and_describes_them():
    presets = list_presets()
    assert "paper" in presets and "MobileNet V1 0.5" in presets["paper"]
    assert list(presets) == sorted(presets)
    assert all(isinstance(d, str) and d for d in presets.values())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_and_round_trips(name, weights):
    detector = DeepfakeDetector.from_preset(name, weights=weights, cache=None)
    config = detector.get_config()
    assert config["backbone"]["weights"] == weights
    twin = DeepfakeDetector.from_config(config).get_config()
    assert twin == config
    assert detector.part("backbone").input_size == config["backbone"]["input_size"]


def test_unknown_preset_is_a_clear_key_error():
    with pytest.raises(KeyError, match=r"unknown preset 'nope'.*paper"):
        DeepfakeDetector.from_preset("nope")


def test_overrides(weights):
    config = preset_config("paper", backbone_weights=weights, head={"steps": 10}, threshold=0.7)
    assert config["backbone"]["weights"] == weights
    assert config["head"] == {**get_preset("paper").config["head"], "steps": 10}  # a dict without "name" updates
    assert config["threshold"] == 0.7
    assert preset_config("paper", head="logistic")["head"] == "logistic"  # anything else replaces
    assert get_preset("paper").config["head"]["steps"] == 2500  # the registry is not changed
    with pytest.raises(TypeError, match="once"):
        preset_config("paper", weights="a.h5", backbone_weights="b.h5")


def test_register_preset_refuses_taken_names():
    with pytest.raises(ValueError, match="exists"):
        register_preset(Preset("paper", "again", {}))
    with pytest.raises(ValueError, match="fit"):
        register_preset(Preset("new-one", "bad", {}, train="train"))


def test_best_presets_and_their_training_recipes(monkeypatch):
    assert {"paper", "face_region", "face_region_finetune"} <= set(list_presets())
    best = get_preset("face_region")
    assert best.train == "fit" and best.config["backbone"]["name"] == "mobilenet_v1_multiblock"
    assert get_preset("face_region_finetune").train == "fine_tune"
    seen = {}

    class Recipe(Exception):
        """Raised by the stand-in: the recipe it was given is all this test wants."""

    def fine_tune(extractor, head, data, **kwargs):
        seen.update(kwargs)
        raise Recipe

    monkeypatch.setattr("deepfake_detect.fine_tuning.fine_tune", fine_tune)
    with pytest.raises(Recipe):
        DeepfakeDetector.from_preset("face_region_finetune", weights="bundled").fine_tune("data/", epochs=2)
    assert seen == {**get_preset("face_region_finetune").train_kwargs, "epochs": 2}  # the preset's recipe as defaults
    seen.clear()
    with pytest.raises(Recipe):
        DeepfakeDetector.from_preset("paper", weights="bundled").fine_tune("data/")
    assert seen == {}  # a preset trained by fit gives no fine-tuning defaults


def test_weights_none_clears_the_presets_weights():
    """None is a choice of weights (random initialisation), not "keep the preset's"."""
    assert get_preset("paper").config["backbone"]["weights"] == "imagenet"
    assert preset_config("paper", weights=None)["backbone"]["weights"] is None
    assert preset_config("paper", backbone_weights=None)["backbone"]["weights"] is None
    assert preset_config("paper")["backbone"]["weights"] == "imagenet"
    assert DeepfakeDetector.from_preset("paper", weights=None, cache=None).part("backbone").weights is None


def test_list_presets_is_exported_like_the_other_lists():
    import deepfake_detect

    assert deepfake_detect.list_presets() == list_presets() and "list_presets" in deepfake_detect.__all__
