"""Shared fixtures: paths to ../shared, a generated video dataset, a fitted detector."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WEIGHTS = SHARED / "weights" / "mobilenet_v1_0.50_no_top.weights.h5"
IMAGES = SHARED / "images"
FFPP = SHARED / "data" / "ffpp_c23_dev"


def require(path: Path) -> Path:
    """Skip the calling test, with a reason, where a file of ../shared is absent."""
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the shared weights/images/data beside the repository")
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test session gets its own feature cache and JAX compilation cache, never the user's ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("DEEPFAKE_DETECT_CACHE", str(tmp_path_factory.mktemp("cache") / "features.sqlite"))
    patch.setenv("DEEPFAKE_DETECT_JAX_CACHE", str(tmp_path_factory.mktemp("jax_cache")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def weights() -> str:
    return str(require(WEIGHTS))


@pytest.fixture(scope="session")
def portraits():
    from deepfake_detect.datasets.synthetic import load_portraits

    return load_portraits(require(IMAGES))


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory, portraits) -> Path:
    """6 real and 6 fake generated videos (3 s at 10 fps, 320x240) under real/ and fake/."""
    from deepfake_detect.datasets.synthetic import make_dataset

    return make_dataset(tmp_path_factory.mktemp("dataset"), portraits, n_real=6, n_fake=6, seconds=3.0, fps=10.0)


@pytest.fixture(scope="session")
def paired(dataset_dir, tmp_path_factory) -> Path:
    """The generated videos in 6 groups (real_00i with fake_00i), fakes of two named methods."""
    root = tmp_path_factory.mktemp("paired")
    rows = ["path,label,group,method"]
    for i in range(6):
        rows.append(f"{dataset_dir / 'real' / f'real_{i:03d}.mp4'},real,pair-{i},")
        rows.append(f"{dataset_dir / 'fake' / f'fake_{i:03d}.mp4'},fake,pair-{i},{'swap_a' if i % 2 else 'swap_b'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def detector_config(weights) -> dict:
    """A detector config for the generated data: 8 frames a video, the real MobileNet weights."""
    return {
        "sampler": {"name": "uniform", "n": 8},
        "backbone": {"name": "mobilenet_v1", "alpha": 0.5, "input_size": 128, "weights": weights},
        "head": {"name": "softmax", "steps": 500, "batch_size": 16},
    }
