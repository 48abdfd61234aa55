"""Presets: named detector configurations, as keras-hub's ``from_preset``.

    DeepfakeDetector.from_preset("paper")                       # the seed paper, exactly
    DeepfakeDetector.from_preset("face_region_calibrated", weights=path)   # the recommended recipe
    list_presets()                                                # {name: description}

A preset is a recipe, not trained weights: a detector config (every part, by registry name
and arguments), how it is trained (`fit` on frozen features, or `fine_tune`, with its
arguments), and what it measured. `from_preset` gives an untrained detector whose `preset_`
is the `Preset`: `preset_.train` names the training method to call (``fit`` or
``fine_tune``), and `DeepfakeDetector.fine_tune` takes `preset_.train_kwargs` as defaults.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """One named configuration.

    Attributes:
        name: the preset's name.
        description: one line for `list_presets`.
        config: `DeepfakeDetector` arguments (JSON-able).
        train: "fit" (head on frozen features) or "fine_tune" (backbone and head end to end).
        train_kwargs: arguments of that training method (`fit`'s or `fine_tune`'s; each takes
            them as defaults).
        measured: what the preset scored, and under which protocol (for the documentation).
    """

    name: str
    description: str
    config: dict[str, Any]
    train: str = "fit"
    train_kwargs: dict[str, Any] = field(default_factory=dict)
    measured: str = ""


_PAPER = Preset(
    name="paper",
    description=("The seed paper (Deepfake Video Forensics based on Transfer Learning, 2020): 1 frame/s, frozen "
                 "ImageNet MobileNet V1 0.5 at 128 px, a softmax layer trained by SGD (lr 0.005, 2,500 steps of 5)."),
    config={
        "sampler": {"name": "fixed_rate", "fps": 1.0},
        "face_detector": "retinaface",
        "backbone": {"name": "mobilenet_v1", "alpha": 0.5, "input_size": 128, "weights": "imagenet"},
        "head": {"name": "softmax", "learning_rate": 0.005, "optimizer": "sgd", "batch_size": 5, "steps": 2500,
                 "class_weight": None},
        "aggregator": "mean",
    },
    train="fit",
    measured=("FaceForensics++ c23 dev set (70 videos), 5-fold grouped cross-validation: close to chance; frames "
              "split at random (the paper's leaky protocol): far higher. See docs/how-to/presets.md."),
)

#: Blocks 3-9 of MobileNet V1 (0.5), each pooled to its channels' mean and standard deviation over the
#: central 40% of the crop: the middle of the face, where a swapped or re-enacted face lies.
_FACE_REGION_BACKBONE = {"name": "mobilenet_v1_multiblock", "alpha": 0.5, "input_size": 288, "weights": "imagenet",
                         "blocks": [3, 4, 5, 6, 7, 8, 9], "pooling": "avg_std", "region": 0.4}

_FACE_REGION = Preset(
    name="face_region",
    description=("32 frames a video, 288 px face crops, frozen "
                 "ImageNet MobileNet V1 0.5 pooled from blocks 3-9 (mean and std) over the face's centre, "
                 "standardized logistic head."),
    config={
        "sampler": {"name": "uniform", "n": 32},
        "face_detector": "retinaface",
        "backbone": _FACE_REGION_BACKBONE,
        "head": {"name": "logistic", "standardize": True, "l2": 0.03, "epochs": 50},
        "aggregator": "mean",
    },
    train="fit",
    measured=("FaceForensics++ c23 dev set, 5-fold grouped cross-validation: see docs/how-to/presets.md "
              "(benchmarks/ffpp_experiments.py)."),
)

_FACE_REGION_TEMPORAL = Preset(
    name="face_region_temporal",
    description=("The face_region features with the temporal "
                 "head (each frame's logistic score averaged with a video-level model of how much the features "
                 "change between sampled frames)."),
    config={**_FACE_REGION.config,
            "head": {"name": "temporal", "temporal_weight": 0.5, "temporal_c": 0.01, "l2": 0.03, "epochs": 50}},
    train="fit",
    measured=("FaceForensics++ c23 dev set, 5-fold grouped cross-validation: see docs/how-to/presets.md "
              "(benchmarks/ffpp_experiments.py)."),
)

_FACE_REGION_FINETUNE = Preset(
    name="face_region_finetune",
    description=("The face_region features at 128 px, 1 frame/s, with the backbone fine-tuned end to end "
                 "(augmented, class-balanced, early stopping on a grouped validation split): sized for a CPU."),
    config={
        "sampler": {"name": "fixed_rate", "fps": 1.0},
        "face_detector": "retinaface",
        "backbone": {**_FACE_REGION_BACKBONE, "input_size": 128},
        "head": {"name": "logistic", "standardize": True, "l2": 0.03, "epochs": 50},
        "aggregator": "mean",
    },
    train="fine_tune",
    train_kwargs={"epochs": 12, "patience": 3, "learning_rate": 1e-4, "batch_size": 32},
    measured="See docs/how-to/presets.md (benchmarks/ffpp_experiments.py).",
)

_KEPT = object()  # `preset_config`'s default: the preset's own weights

_FIT_RECIPE = {"cross_fit": 5, "calibration": "platt", "threshold": "balanced", "max_abstain": 0.2}

_FACE_REGION_CALIBRATED = Preset(
    name="face_region_calibrated",
    description=("Recommended: the face_region detector; fit calibrates p(fake) (Platt), chooses the threshold of best "
                 "balanced accuracy and an inconclusive band (at most 20% of videos) on 5-fold cross-fitted scores, "
                 "then trains on every video. Add real videos of other sources to the training data."),
    config={**_FACE_REGION.config},
    train="fit",
    train_kwargs=dict(_FIT_RECIPE),
    measured=("Nested grouped cross-validation on the FaceForensics++ c23 dev set with 19 other-source real videos "
              "added to training (benchmarks/selection.py, recipe face_region+other): video AUC 0.855 "
              "[0.81-0.93], other-source real videos called fake 0.263; see docs/how-to/presets.md."),
)

_FACE_REGION_AUTO = Preset(
    name="face_region_auto",
    description=("The face_region features; fit chooses the logistic or the temporal head by cross-fitted video AUC, "
                 "then calibrates, chooses threshold and band as face_region_calibrated. For datasets large enough "
                 "to trust the inner choice."),
    config={**_FACE_REGION.config},
    train="fit",
    train_kwargs={**_FIT_RECIPE,
                  "head_candidates": [_FACE_REGION.config["head"], _FACE_REGION_TEMPORAL.config["head"]]},
    measured=("Nested grouped cross-validation on the FaceForensics++ c23 dev set with other-source real videos "
              "added to training (benchmarks/selection.py, recipe select+other): video AUC 0.897 [0.86-0.96], "
              "other-source real videos called fake 0.316; see docs/how-to/presets.md."),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (_PAPER, _FACE_REGION, _FACE_REGION_TEMPORAL, _FACE_REGION_FINETUNE,
                                                  _FACE_REGION_CALIBRATED, _FACE_REGION_AUTO)}


def register_preset(preset: Preset) -> Preset:
    """Add a preset (a name already taken is refused)."""
    if preset.name in PRESETS:
        raise ValueError(f"a preset named {preset.name!r} exists already")
    if preset.train not in ("fit", "fine_tune"):
        raise ValueError(f"a preset trains by 'fit' or 'fine_tune'; got {preset.train!r}")
    PRESETS[preset.name] = preset
    return preset


def list_presets() -> dict[str, str]:
    """Preset names and their one-line descriptions, sorted by name."""
    return {name: PRESETS[name].description for name in sorted(PRESETS)}


def get_preset(name: str) -> Preset:
    """The preset called `name`; KeyError naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}") from None


def preset_config(name: str, weights: str | None | object = _KEPT, backbone_weights: str | None | object = _KEPT,
                  **overrides: Any) -> dict[str, Any]:
    """The `DeepfakeDetector` arguments of preset `name`, with overrides.

    `weights` (or its alias `backbone_weights`) replaces the backbone's weights ("imagenet",
    a weights file, or None: random weights); any other keyword replaces that detector argument
    whole (``sampler=...``, ``head=...``, ``cache=...``). A part given as a dict with no "name"
    updates the preset's part instead (``head={"steps": 100}``).
    """
    preset = get_preset(name)
    config = copy.deepcopy(preset.config)
    if weights is not _KEPT and backbone_weights is not _KEPT and weights != backbone_weights:
        raise TypeError("give the backbone's weights once: weights=... or backbone_weights=..., not both")
    chosen = weights if weights is not _KEPT else backbone_weights
    for key, value in overrides.items():
        current = config.get(key)
        if isinstance(value, dict) and "name" not in value and isinstance(current, dict):
            config[key] = {**current, **copy.deepcopy(value)}
        else:
            config[key] = copy.deepcopy(value)
    if chosen is not _KEPT:
        config["backbone"] = with_weights(config["backbone"], chosen)
    return config


def with_weights(backbone: str | dict[str, Any], weights: str | None) -> dict[str, Any]:
    """The backbone spec `backbone` (a registry name or a config dict) with `weights` as its
    weights ("imagenet", a weights file, or None)."""
    if isinstance(backbone, str):
        return {"name": backbone, "weights": weights}
    if not isinstance(backbone, dict):
        raise TypeError(f"weights=... needs the backbone as a name or a config dict, not {type(backbone).__name__}")
    return {**backbone, "weights": weights}
