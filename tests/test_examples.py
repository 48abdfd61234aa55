"""Every script in examples/ runs, on small generated data, so none can rot.

Each example has an entry in `EXAMPLES`: the runs to make (arguments built from the shared
inputs) and lines its output must hold. A new example without an entry fails
`test_every_example_has_an_entry`: add one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import IMAGES, WEIGHTS, require

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"
TIMEOUT_S = 900


@dataclass(frozen=True)
class Inputs:
    """What an example may need: a small generated dataset (3 real and 3 fake videos, 2 s at
    5 fps, in two groups of people), the face photos, the MobileNet V1 0.5 weights file, and a fresh folder of its own."""

    data: Path
    images: Path
    weights: Path
    workdir: Path


@dataclass(frozen=True)
class Run:
    args: Callable[[Inputs], list[str]]
    expect: tuple[str, ...]  # substrings of standard output
    check: Callable[[subprocess.CompletedProcess], None] | None = None  # more asserts on the finished run


def quickstart_convinces(result: subprocess.CompletedProcess) -> None:
    """One summary line from `fit` (on stderr, as its progress), right verdicts on a real and a
    fake held-out video, and a held-out video ROC AUC of at least 0.95."""
    assert len(re.findall(r"^fit: trained on \d+ videos", result.stderr, re.M)) == 1
    assert "Epoch" not in result.stderr + result.stdout
    verdicts = re.findall(r"^held-out (real|fake)/\S+: (real|fake) \(p_fake", result.stdout, re.M)
    assert sorted(verdicts) == [("fake", "fake"), ("real", "real")], verdicts
    auc = float(re.search(r"held-out videos: video ROC AUC ([\d.]+)", result.stdout)[1])
    assert auc >= 0.95, f"held-out video ROC AUC {auc}"


EXAMPLES: dict[str, list[Run]] = {
    "quickstart.py": [
        Run(lambda i: ["--images", str(i.images), "--weights", str(i.weights), "--workdir", str(i.workdir)],
            ("generated", "held-out real/", "held-out fake/", "video ROC AUC"), quickstart_convinces),
    ],
    "paper_reproduction.py": [
        Run(lambda i: ["--data", str(i.data), "--weights", str(i.weights), "--folds", "2"],
            ("grouped 2-fold cross-validation", "frame accuracy", "(grouped: no video on both sides")),
        Run(lambda i: ["--data", str(i.data), "--weights", str(i.weights), "--folds", "3", "--protocol", "leaky"],
            ("WARNING: leaky protocol", "frame accuracy", "(LEAKY:")),
    ],
    "compare_backbones.py": [
        Run(lambda i: ["--data", str(i.data), "--folds", "2", "--sampler", "uniform:n=4",
                       "--candidate", f"mobilenet_v1:weights={i.weights}",
                       "--candidate", f"mobilenet_v1:weights={i.weights},input_size=160"],
            ("video AUC", "mobilenet_v1:weights=", "input_size=160")),
    ],
    "custom_backbone.py": [
        Run(lambda i: ["--images", str(i.images), "--workdir", str(i.workdir)],
            ("trained on small_cnn features", "its backbone: {'name': 'small_cnn'", "held-out videos")),
    ],
}


@pytest.fixture(scope="session")
def example_data(tmp_path_factory) -> Path:
    from deepfake_detect.datasets.synthetic import load_portraits, make_dataset

    return make_dataset(tmp_path_factory.mktemp("example_data"), load_portraits(require(IMAGES)),
                        n_real=3, n_fake=3, seconds=2, fps=5)


@pytest.fixture(scope="session")
def example_cache(tmp_path_factory) -> Path:
    """One feature cache for every example run, so a second run on the same data reads it."""
    return tmp_path_factory.mktemp("example_cache") / "features.sqlite"


def test_every_example_has_an_entry():
    scripts = {p.name for p in EXAMPLES_DIR.glob("*.py")}
    assert not scripts - EXAMPLES.keys(), (
        f"examples without an entry in tests/test_examples.py EXAMPLES: {sorted(scripts - EXAMPLES.keys())}; "
        "add the arguments each needs and the output lines it must print")
    assert not EXAMPLES.keys() - scripts, f"EXAMPLES names missing scripts: {sorted(EXAMPLES.keys() - scripts)}"


@pytest.mark.parametrize("script, k", [(s, k) for s, runs in EXAMPLES.items() for k in range(len(runs))],
                         ids=lambda v: v if isinstance(v, str) else f"run{v}")
def test_example_runs(script, k, example_data, example_cache, tmp_path):
    run = EXAMPLES[script][k]
    inputs = Inputs(data=example_data, images=require(IMAGES), weights=require(WEIGHTS), workdir=tmp_path / "work")
    env = {**os.environ, "DEEPFAKE_DETECT_CACHE": str(example_cache)}
    result = subprocess.run([sys.executable, str(EXAMPLES_DIR / script), *run.args(inputs)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    tail = f"\n--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{script} exited with {result.returncode}{tail}"
    missing = [line for line in run.expect if line not in result.stdout]
    assert not missing, f"{script} did not print {missing}{tail}"
    if run.check is not None:
        try:
            run.check(result)
        except AssertionError as e:
            raise AssertionError(f"{script}: {e}{tail}") from e
