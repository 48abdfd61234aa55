"""The visual report: figures, a self-contained HTML checked in headless Chromium, and the CLI's --report."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from deepfake_detect import DeepfakeDetector
from deepfake_detect.cli import main
from deepfake_detect.datasets import discover
from deepfake_detect.metrics import summarize
from deepfake_detect.report import face_thumbnails, write_evaluation_report
from deepfake_detect.results import FaceBox, FramePrediction, VideoPrediction

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model(tmp_path_factory, dataset_dir, detector_config) -> Path:
    detector = DeepfakeDetector(**{**detector_config, "head": {"name": "logistic", "steps": 100, "batch_size": 16,
                                                               "learning_rate": 0.01}})
    detector.fit(dataset_dir, validation_split=0, verbose=0)
    return detector.save(tmp_path_factory.mktemp("model") / "model.dfd")


@pytest.fixture(scope="module")
def evaluation_report(model, dataset_dir, tmp_path_factory) -> Path:
    """The report folder that `deepfake-detect evaluate MODEL DATA --report DIR` writes."""
    out = tmp_path_factory.mktemp("report") / "evaluation"
    result = CliRunner().invoke(main, ["evaluate", str(model), str(dataset_dir), "--report", str(out), "-q"],
                                prog_name="deepfake-detect")
    assert result.exit_code == 0, result.output
    assert "protocol: held-out dataset" in result.stdout
    return out


def inline_images(html: str) -> list[bytes]:
    """The bytes of every <img> of the page; fails on an image that is not an inline PNG."""
    sources = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", html)
    assert len(sources) == html.count("<img"), "an <img> tag without a src"
    images = []
    for src in sources:
        assert src.startswith("data:image/png;base64,"), f"not an inline PNG: {src[:60]}"
        data = base64.b64decode(src.partition(",")[2], validate=True)
        assert data.startswith(PNG_SIGNATURE)
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
        images.append(data)
    return images


def test_evaluate_report_writes_figures_and_a_self_contained_page(evaluation_report, model):
    names = sorted(p.name for p in evaluation_report.iterdir())
    assert names == ["confusion.png", "report.html", "roc.png", "scores.png",
                     *(f"timeline_{k:02d}.png" for k in range(1, 7))]
    html = (evaluation_report / "report.html").read_text()
    images = inline_images(html)
    assert len(images) == 9
    assert images[0] == (evaluation_report / "roc.png").read_bytes()
    assert "held-out dataset" in html and f"deepfake-detect evaluate {model}" in html and 'class="leaky"' not in html
    assert "src=\"http" not in html and "<script" not in html  # nothing to fetch


def test_report_renders_in_headless_chromium(evaluation_report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium is absent: install the Debian package 'chromium' (as .ci/run does)")
    shot = tmp_path / "screenshot.png"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
               "--hide-scrollbars", "--window-size=1200,1800", f"--screenshot={shot}",
               (evaluation_report / "report.html").as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    image = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (1800, 1200)
    assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 200  # not blank
    b, g, r = (image[..., k].astype(int) for k in range(3))
    orange = (abs(r - 255) < 40) & (abs(g - 127) < 40) & (b < 60)  # the frame ROC curve, drawn in the PNG
    assert orange.sum() > 100, "the ROC figure did not render"


def test_leaky_report_says_so_on_the_page(dataset_dir, tmp_path):
    samples = discover(dataset_dir)
    rng = np.random.default_rng(0)
    preds = []
    for s in samples:
        frames = tuple(FramePrediction(i, i / 10, float(np.clip(rng.normal(0.3 + 0.4 * s.label, 0.2), 0, 1)),
                                       FaceBox(100, 60, 220, 200, 0.99)) for i in range(2, 30, 4))
        p = float(np.mean([f.p_fake for f in frames]))
        preds.append(VideoPrediction(s.path, "fake" if p >= 0.5 else "real", p, frames, len(frames), 0.5))
    report = summarize(samples, preds, "LEAKY frame-level random split", 0.5, leaky=True, bootstrap=50)
    html = write_evaluation_report(report, tmp_path, timelines=1).read_text()
    assert 'class="leaky"' in html and "not how well it detects fakes in unseen videos" in html
    assert len(inline_images(html)) == 4


def test_predict_report_for_one_video(model, dataset_dir, tmp_path):
    video = dataset_dir / "fake" / "fake_000.mp4"
    result = CliRunner().invoke(main, ["predict", str(model), str(video), "--report", str(tmp_path / "one"), "-q"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "one" / "report.html").read_text()
    assert [p.name for p in sorted((tmp_path / "one").iterdir())] == ["report.html", "timeline.png"]
    assert "fake_000.mp4" in html and "Verdict" in html and len(inline_images(html)) == 1
    many = CliRunner().invoke(main, ["predict", str(model), str(dataset_dir / "real"), "--report",
                                     str(tmp_path / "many"), "-q"])
    assert many.exit_code == 0 and len(list((tmp_path / "many").glob("*/report.html"))) == 6  # and an index


def test_face_thumbnails_come_from_the_predicted_frames(model, dataset_dir):
    pred = DeepfakeDetector.load(model).predict_video(dataset_dir / "real" / "real_001.mp4")
    missing = FramePrediction(10_000, 0.0, 0.5, pred.frames[0].box)
    faces = face_thumbnails(pred.path, [*pred.frames[:3], missing], size=48)
    assert [f.shape for f in faces] == [(48, 48, 3)] * 4
    assert all(f.std() > 10 for f in faces[:3])  # a face, not a flat square
    assert (faces[3] == 128).all()  # a frame past the end: grey
