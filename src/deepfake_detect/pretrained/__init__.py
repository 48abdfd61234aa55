"""Files shipped inside the package, so a detector works offline right after ``pip install``.

- ``mobilenet_v1_0.50_no_top.weights.h5``: ImageNet MobileNet V1 0.5 weights (Apache-2.0; see
  ``PROVENANCE.md``), what a backbone with ``weights="bundled"`` loads.
- ``default.dfd``: the pretrained detector (`DeepfakeDetector.from_pretrained("default")`,
  ``deepfake-detect predict VIDEO``), rebuilt bit for bit by ``tools/build_pretrained.py``;
  ``MODEL_CARD.md`` says what it is and how far to trust it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ..digests import file_sha256

HERE = Path(__file__).resolve().parent
#: The `weights` value that names the bundled MobileNet V1 0.5 file.
BUNDLED = "bundled"
BUNDLED_ALPHA = 0.5
WEIGHTS_FILE = HERE / "mobilenet_v1_0.50_no_top.weights.h5"
MODEL_CARD = HERE / "MODEL_CARD.md"
#: Pretrained detectors by name: their model files in this folder.
MODELS = {"default": "default.dfd"}


def weights_path(weights: str | os.PathLike | None) -> str | os.PathLike | None:
    """What a backbone loads for `weights`: the bundled file's path for "bundled", else `weights`."""
    return str(WEIGHTS_FILE) if weights == BUNDLED else weights


@functools.cache
def bundled_sha256() -> str:
    """The sha256 (hex) of the bundled weights file."""
    return file_sha256(WEIGHTS_FILE)


def model_file(name: str = "default") -> Path:
    """The model file of the pretrained detector `name`; KeyError naming the known ones otherwise,
    FileNotFoundError where the package was installed without it."""
    if name not in MODELS:
        raise KeyError(f"unknown pretrained detector {name!r}; known: {', '.join(sorted(MODELS))}")
    path = HERE / MODELS[name]
    if not path.is_file():
        raise FileNotFoundError(f"the pretrained detector {name!r} is missing from this installation ({path}); "
                                "rebuild it with tools/build_pretrained.py or reinstall deepfake-detect")
    return path


def model_card() -> str:
    """The pretrained detector's model card (Markdown)."""
    return MODEL_CARD.read_text(encoding="utf-8")
