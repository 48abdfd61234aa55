"""Issue 18: one video, one command, a verdict a verification desk can trust and file.

One test (or more) per point of the issue: (1) the pretrained model, offline; (2) errors before
work; (3) fit keeps its best epoch and warns at chance; (4) how far to trust a score; (5) moved
models; (6) readable objects; (7) batches; (8) --cache everywhere; (9) reports; (10) the README.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from deepfake_detect import DeepfakeDetector, errors, pretrained
from deepfake_detect.cli import main
from deepfake_detect.datasets import discover
from deepfake_detect.metrics import summarize
from deepfake_detect.results import FaceBox, FramePrediction, VideoPrediction
from deepfake_detect.verdict import decide, operating_point

from .conftest import FFPP, require

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--sampler", "uniform:n=4", "--head", "softmax:steps=200,batch_size=16", "-q"]


def offline_env(tmp_path: Path) -> dict[str, str]:
    """An environment with a fresh HOME and caches, no ../shared in sight, and every proxy dead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFAKE_DETECT")}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    dead = "http://127.0.0.1:9"
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), KERAS_HOME=str(home / ".keras"),
               PYTHONPATH=str(ROOT / "src"), http_proxy=dead, https_proxy=dead, HTTP_PROXY=dead, HTTPS_PROXY=dead,
               no_proxy="", NO_PROXY="")
    return env


def cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """`deepfake-detect ARGS` in a fresh process, offline, run from an empty folder."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", "from deepfake_detect.cli import main; main()", *args],
                          cwd=cwd, env=offline_env(tmp_path), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def model(runner, dataset_dir, weights, tmp_path_factory) -> Path:
    """A model fitted with a RELATIVE --weights path (from its own folder), as the desk did."""
    folder = tmp_path_factory.mktemp("desk")
    (folder / "wcopy").mkdir()
    shutil.copy(weights, folder / "wcopy" / "w.weights.h5")
    before = os.getcwd()
    os.chdir(folder)
    try:
        result = runner.invoke(main, ["fit", str(dataset_dir), "-o", "m.dfd", "--weights", "wcopy/w.weights.h5",
                                      "--validation-split", "0", *FAST])
    finally:
        os.chdir(before)
    assert result.exit_code == 0, result.output
    return folder / "m.dfd"


# --- (1) a shipped, ready-to-use detector --------------------------------------------------------

def test_the_pretrained_model_ships_with_its_weights_licence_and_card():
    assert pretrained.model_file("default").stat().st_size > 1000
    assert pretrained.WEIGHTS_FILE.is_file() and (pretrained.HERE / "LICENSE-Apache-2.0.txt").is_file()
    provenance = (pretrained.HERE / "PROVENANCE.md").read_text()
    assert pretrained.bundled_sha256() in provenance
    card = pretrained.model_card()
    for needed in ("FaceForensics++", "non-commercial research", "face_region", "grouped", "real_other",
                   "evidence, not proof", "Known failure modes", "tools/build_pretrained.py"):
        assert needed in card, needed
    assert (ROOT / "docs" / "model-card.md").read_text() == card  # the docs page is the card
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"deepfake_detect.pretrained" = ["*.dfd", "*.h5", "*.md", "*.txt"]' in pyproject


def test_predict_without_a_model_offline_on_a_generated_clip_and_two_dev_clips(dataset_dir, tmp_path):
    """`deepfake-detect predict clip.mp4`: no model, no --weights, no network, no ../shared, a fresh HOME."""
    real, fake = require(FFPP / "real" / "044.mp4"), require(FFPP / "fake" / "Deepfakes_044_945.mp4")
    clips = tmp_path / "clips"
    clips.mkdir()
    for source in (real, fake, dataset_dir / "real" / "real_000.mp4"):
        shutil.copy(source, clips / source.name)  # outside ../shared
    result = cli(["predict", str(clips / "044.mp4"), str(clips / "Deepfakes_044_945.mp4"),
                  str(clips / "real_000.mp4"), "--json", "-q"], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["044.mp4"]["label"] == "real" and rows["Deepfakes_044_945.mp4"]["label"] == "fake"
    assert rows["real_000.mp4"]["label"] in ("real", "fake", "inconclusive") and rows["real_000.mp4"]["faces_found"] > 0
    chosen = DeepfakeDetector.from_pretrained().operating_threshold  # chosen by the model's cross-fitting
    assert all(r["error"] is None and r["threshold"] == chosen for r in rows.values())


def test_from_pretrained_and_info_show_the_card(dataset_dir, runner):
    detector = DeepfakeDetector.from_pretrained()
    assert detector.part("backbone").weights == "bundled"
    pred = detector.predict_video(dataset_dir / "fake" / "fake_000.mp4")
    assert pred.label in ("real", "fake", "inconclusive") and pred.faces_found > 20
    shown = runner.invoke(main, ["info"])
    assert shown.exit_code == 0 and "# Model card" in shown.stdout and "sha256" in shown.stdout
    with pytest.raises(KeyError, match="known: default"):
        DeepfakeDetector.from_pretrained("nope")


def test_build_script_is_documented_and_takes_a_preset():
    script = (ROOT / "tools" / "build_pretrained.py").read_text()
    assert "--preset" in script and "--check" in script and "set_random_seed" in script
    assert "tools/build_pretrained.py" in (ROOT / "README.md").read_text()


def test_a_model_file_is_the_same_bytes_when_saved_twice(model, tmp_path):
    detector = DeepfakeDetector.load(model)
    a, b = detector.save(tmp_path / "a.dfd"), None
    time.sleep(2.1)  # zip dates have a 2-second resolution
    b = detector.save(tmp_path / "b.dfd")
    assert a.read_bytes() == b.read_bytes()


# --- (2) errors a user can act on, before work starts -------------------------------------------

def offline_keras(monkeypatch):
    """Keras' download fails as it does without internet."""
    from keras.src.utils import file_utils

    def no_network(fname, origin=None, *args, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(file_utils, "get_file", no_network)
    monkeypatch.setenv("KERAS_HOME", "/nonexistent-keras-home")


def test_offline_imagenet_fails_in_one_line_before_extraction(runner, dataset_dir, tmp_path, monkeypatch):
    offline_keras(monkeypatch)
    started = time.perf_counter()
    result = runner.invoke(main, ["fit", str(dataset_dir), "--preset", "face_region", "-o", str(tmp_path / "m.dfd")])
    assert result.exit_code == 1
    assert time.perf_counter() - started < 60
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and "extracting" not in result.stderr, lines
    assert "no internet" in lines[0] and "--weights FILE" in lines[0] and "bundled" in lines[0]
    debug = runner.invoke(main, ["--debug", "fit", str(dataset_dir), "--preset", "face_region", "-o",
                                 str(tmp_path / "m.dfd"), "-q"])
    assert isinstance(debug.exception, errors.WeightsUnavailableError)  # --debug: the exception, traceback and all


def test_fit_with_the_bundled_weights_needs_no_download(runner, dataset_dir, tmp_path, monkeypatch):
    offline_keras(monkeypatch)
    result = runner.invoke(main, ["fit", str(dataset_dir), "-o", str(tmp_path / "m.dfd"), "--weights", "bundled",
                                  *FAST])
    assert result.exit_code == 0, result.output


# --- (3) fit keeps its best epoch and warns at chance -------------------------------------------

def test_fit_restores_the_best_epoch_and_says_which(dataset_dir, detector_config, capsys):
    detector = DeepfakeDetector(**{**detector_config, "head": {"name": "logistic", "epochs": 8,
                                                               "learning_rate": 0.05}})
    history = detector.fit(dataset_dir, verbose=1, validation_split=0.15)
    best = int(np.argmin(history.history["val_loss"])) + 1
    assert f"kept epoch {best} of 8 (lowest validation loss)" in capsys.readouterr().err


def test_fit_warns_when_validation_is_at_chance(dataset_dir, detector_config, monkeypatch):
    import deepfake_detect.detector as module

    real = module.binary_metrics
    monkeypatch.setattr(module, "binary_metrics", lambda y, p, t=0.5: {**real(y, p, t), "roc_auc": 0.42})
    with pytest.warns(UserWarning, match="video ROC AUC is 0.420, at chance or worse"):
        DeepfakeDetector(**{**detector_config, "head": {"name": "logistic", "epochs": 2}}).fit(
            dataset_dir, verbose=0, validation_split=0.15)


# --- (4) how far to trust a score ----------------------------------------------------------------

def test_plain_output_has_a_header_and_says_what_the_score_means(runner, model, dataset_dir):
    video = str(dataset_dir / "real" / "real_000.mp4")
    result = runner.invoke(main, ["predict", str(model), video, "-q"])
    assert result.exit_code == 0, result.output
    header, columns, row = result.stdout.splitlines()
    assert header.startswith("# model m.dfd (fingerprint ") and "p_fake: the model's score" in header
    threshold = DeepfakeDetector.load(model).operating_threshold  # the one fit chose on cross-fitted scores
    assert f"fake at p_fake >= {threshold:.3g}" in header and "evidence, not proof" in header
    assert columns.split()[1:] == ["p_fake", "verdict", "faces", "input"]
    assert re.match(r"\s+\d\.\d{3} -> (real|fake)\s+\d+/4\s+" + re.escape(video), row)


def test_threshold_and_inconclusive_band_decide_the_label(runner, model, dataset_dir):
    video = str(dataset_dir / "fake" / "fake_001.mp4")
    p = json.loads(runner.invoke(main, ["predict", str(model), video, "--json", "-q"]).stdout)["p_fake"]
    above = json.loads(runner.invoke(main, ["predict", str(model), video, "--json", "-q", "--threshold",
                                            str(min(p + 0.01, 1.0))]).stdout)
    assert above["label"] == "real" and above["threshold"] == pytest.approx(min(p + 0.01, 1.0))
    band = runner.invoke(main, ["predict", str(model), video, "-q", "--inconclusive", str(max(p - 0.01, 0)),
                                str(min(p + 0.01, 1))])
    assert "-> inconclusive" in band.stdout and "inconclusive for" in band.stdout.splitlines()[0]
    bad = runner.invoke(main, ["predict", str(model), video, "--inconclusive", "0.7", "0.3"])
    assert bad.exit_code == 2 and "low <= high" in bad.output
    detector = DeepfakeDetector.load(model)
    pred = detector.predict_video(video, inconclusive=(max(p - 0.01, 0), min(p + 0.01, 1)))
    assert pred.label == "inconclusive" and "inconclusive" in str(pred)


def test_decide_is_the_one_place_labels_come_from():
    assert decide(0.26) == "real" and decide(0.5) == "fake" and decide(None) == "unknown"
    assert decide(0.55, 0.5, (0.4, 0.6)) == "inconclusive" and decide(0.65, 0.5, (0.4, 0.6)) == "fake"

    class Calibrated:  # what a fitted calibration decision gives: it wins over the arguments
        threshold, inconclusive = 0.7, (0.6, 0.8)

    detector = DeepfakeDetector()
    assert operating_point(detector).source == "default"
    detector.decision_ = Calibrated()
    point = operating_point(detector)
    assert (point.threshold, point.inconclusive, point.source) == (0.7, (0.6, 0.8), "model")
    assert operating_point(detector, threshold=0.3).threshold == 0.3


def test_bootstrap_interval_needs_enough_groups(dataset_dir):
    samples = discover(dataset_dir)
    samples = [dataclasses.replace(s, group=f"g{i % 2}") for i, s in enumerate(samples)]
    preds = [VideoPrediction(s.path, "real", 0.3 + 0.4 * s.label, (FramePrediction(0, 0.0, 0.3 + 0.4 * s.label,
                                                                                    FaceBox(0, 0, 9, 9, 1)),), 1, 0.5)
             for s in samples]
    report = summarize(samples, preds, "test", 0.5, bootstrap=50)
    assert np.isnan(report.video_auc_ci).all() and "[95% CI n/a: 2 groups]" in report.summary()


# --- (5) moved models ----------------------------------------------------------------------------

def test_a_model_fitted_with_a_relative_weights_path_predicts_from_another_folder(model, dataset_dir, tmp_path):
    config = json.loads(zipfile.ZipFile(model).read("config.json"))
    assert os.path.isabs(config["backbone"]["weights"])
    metadata = json.loads(zipfile.ZipFile(model).read("metadata.json"))
    assert metadata["backbone_weights"] == {"file": "w.weights.h5", "sha256": pretrained.bundled_sha256()}
    result = cli(["predict", str(model), str(dataset_dir / "real" / "real_000.mp4"), "--json", "-q"], tmp_path)
    assert result.returncode == 0, result.stderr


def moved_model(model: Path, weights_file: str, tmp_path: Path) -> Path:
    """A copy of `model` whose weights path names `weights_file` (which may not exist)."""
    target = tmp_path / "moved.dfd"
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(target, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json":
                config = json.loads(data)
                config["backbone"]["weights"] = weights_file
                data = json.dumps(config).encode()
            dst.writestr(name, data)
    return target


def test_a_moved_weights_file_is_found_by_content_or_named_by_flag(runner, model, dataset_dir, tmp_path, weights):
    video = str(dataset_dir / "real" / "real_000.mp4")
    gone = moved_model(model, str(tmp_path / "gone" / "w.weights.h5"), tmp_path)
    detector = DeepfakeDetector.load(gone)  # same sha256 as the bundled copy: that is used
    assert detector.part("backbone").weights == "bundled"

    other = tmp_path / "other.weights.h5"  # weights of another content: not the bundled copy, not found
    import h5py

    shutil.copy(weights, other)
    with h5py.File(other, "r+") as f:
        def first_dataset(name, obj):
            return name if isinstance(obj, h5py.Dataset) else None
        name = f.visititems(first_dataset)
        f[name][...] = np.asarray(f[name]) + 0.5
    from deepfake_detect.digests import file_sha256

    metadata = json.loads(zipfile.ZipFile(model).read("metadata.json"))
    metadata["backbone_weights"] = {"file": "w.weights.h5", "sha256": file_sha256(other)}
    lost = tmp_path / "lost.dfd"
    with zipfile.ZipFile(gone) as src, zipfile.ZipFile(lost, "w") as dst:
        for member in src.namelist():
            dst.writestr(member, json.dumps(metadata) if member == "metadata.json" else src.read(member))
    missing = runner.invoke(main, ["predict", str(lost), video, "-q"])
    assert missing.exit_code == 1 and "is not found here" in missing.stderr and "--weights FILE" in missing.stderr
    assert "backbone_weights=" not in missing.stderr.split("(Python")[0]
    beside = tmp_path / "w.weights.h5"  # the same name beside the model, the right content: found
    shutil.copy(other, beside)
    with pytest.warns(UserWarning, match="other features"):  # found; its values are not those trained with
        found = DeepfakeDetector.load(lost, allow_fingerprint_mismatch=True)
    assert found.part("backbone").weights == str(beside.resolve())
    beside.unlink()

    mismatch = runner.invoke(main, ["predict", str(model), video, "-q", "--weights", str(other)])
    assert mismatch.exit_code == 1 and "--weights FILE" in mismatch.stderr
    assert "--allow-fingerprint-mismatch" in mismatch.stderr
    allowed = runner.invoke(main, ["predict", str(model), video, "-q", "--weights", str(other),
                                   "--allow-fingerprint-mismatch"])
    assert allowed.exit_code == 0, allowed.output


# --- (6) readable objects ------------------------------------------------------------------------

def test_a_prediction_prints_in_one_line(model, dataset_dir):
    pred = DeepfakeDetector.load(model).predict_video(dataset_dir / "fake" / "fake_000.mp4")
    text = str(pred)
    assert "\n" not in text and len(text) < 160
    assert re.fullmatch(r"fake_000\.mp4: (real|fake) \(p_fake \d\.\d{3}, threshold 0\.\d+; a face in 4 of 4 sampled "
                        r"frames\)", text)
    assert len(repr(pred)) < 160 and repr(pred).startswith("VideoPrediction(path=")
    assert len(pred.to_dict()["frames"]) == 4  # the detail is still there


# --- (7) batches -----------------------------------------------------------------------------------

def test_failed_inputs_are_rows_with_an_error(runner, model, dataset_dir, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    good = str(dataset_dir / "real" / "real_000.mp4")
    as_json = runner.invoke(main, ["predict", str(model), good, str(bad), "--json", "-q"])
    assert as_json.exit_code == 1
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["error"] is None for r in rows] == [True, False] and rows[1]["label"] == "error"
    assert "cannot open" in rows[1]["error"]
    as_csv = runner.invoke(main, ["predict", str(model), good, str(bad), "--csv", "-q"])
    header, _, failed = as_csv.stdout.splitlines()
    assert header.endswith(",error") and failed.startswith(f"{bad},error,") and "cannot open" in failed


def test_an_empty_input_folder_is_an_error(runner, model, tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(main, ["predict", str(model), str(tmp_path / "empty")])
    assert result.exit_code == 1 and "no videos or images" in result.stderr


def test_evaluate_a_folder_of_real_videos_only(runner, model, dataset_dir, tmp_path):
    (tmp_path / "real").mkdir()
    for video in (dataset_dir / "real").glob("*.mp4"):
        (tmp_path / "real" / video.name).symlink_to(video)
    result = runner.invoke(main, ["evaluate", str(model), str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    assert "6 inputs, all real" in result.stdout and re.search(r"called fake \d of 6", result.stdout)
    metrics = json.loads(runner.invoke(main, ["evaluate", str(model), str(tmp_path), "-q", "--json"]).stdout)
    assert metrics["called_fake_rate"] == pytest.approx(1 - metrics["video"]["accuracy"])


def test_report_over_several_inputs_writes_a_page_each_and_an_index(runner, model, dataset_dir, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    out = tmp_path / "reports"
    result = runner.invoke(main, ["predict", str(model), str(dataset_dir / "real" / "real_000.mp4"),
                                  str(dataset_dir / "fake" / "fake_000.mp4"), str(bad), "--report", str(out), "-q"])
    assert result.exit_code == 1  # one input failed: said, and shown in the index
    index = (out / "index.html").read_text()
    pages = sorted(out.glob("*/report.html"))
    assert [p.parent.name for p in pages] == ["001_real_000", "002_fake_000"]
    assert all(f'href="{p.relative_to(out)}"' in index for p in pages)
    assert "broken.mp4" in index and "cannot open" in index


# --- (8) --cache on every command that extracts --------------------------------------------------

def test_every_extracting_command_takes_the_cache_options():
    for name in ("fit", "extract", "predict", "evaluate"):
        options = {o for p in main.commands[name].params for o in p.opts}
        assert {"--cache", "--no-cache"} <= options, name


# --- (9) a report a desk can file ----------------------------------------------------------------

@pytest.fixture(scope="module")
def desk_report(runner, model, dataset_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("desk_report")
    result = runner.invoke(main, ["predict", str(model), str(dataset_dir / "fake" / "fake_000.mp4"), "--report",
                                  str(out), "--explain", "--inconclusive", "0.45", "0.55", "-q"])
    assert result.exit_code == 0, result.output
    return out


def test_the_report_says_what_was_checked_by_what_and_when(desk_report, model, dataset_dir):
    from deepfake_detect import __version__
    from deepfake_detect.digests import file_sha256

    html = (desk_report / "report.html").read_text()
    video = dataset_dir / "fake" / "fake_000.mp4"
    assert file_sha256(video) in html and f"{video.stat().st_size:,} bytes" in html and "3.00 s" in html
    detector = DeepfakeDetector.load(model)
    assert detector.fingerprint_ in html and "m.dfd" in html and f"deepfake-detect {__version__}" in html
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", html)  # date and time
    assert "evidence, not proof" in html and "inconclusive band 0.45-0.55" in html
    assert "Thumbnail borders:" in html and "its time in the video" in html
    details = html.index("<details>")  # stage timings: in the details, last, in words
    assert html.index("seconds per stage") > details > html.index("Frame scores and faces")
    assert "finding the faces" in html[details:] or "reading the feature cache" in html[details:]


def test_explain_draws_occlusion_maps_of_the_most_suspicious_frames(desk_report):
    maps = sorted(p.name for p in desk_report.glob("explain_*"))
    assert maps == [f"explain_{k:02d}_{kind}.png" for k in (1, 2, 3) for kind in ("face", "map")]
    html = (desk_report / "report.html").read_text()
    assert "What moved the score" in html and html.count("occlusion map") == 3


def test_occlusion_map_finds_what_the_head_looks_at(model, dataset_dir):
    from deepfake_detect.explain import most_suspicious, occlusion_maps

    detector = DeepfakeDetector.load(model)
    pred = detector.predict_video(dataset_dir / "fake" / "fake_000.mp4")
    [ex] = occlusion_maps(detector, pred.path, most_suspicious(pred, 1), grid=4)
    assert ex.heat.shape == (4, 4) and np.isfinite(ex.heat).all() and np.abs(ex.heat).max() > 0
    assert ex.crop.shape == (128, 128, 3) and ex.p_fake == pytest.approx(max(f.p_fake for f in pred.frames), abs=1e-4)


def test_desk_report_renders_in_headless_chromium(desk_report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium is absent: install the Debian package 'chromium' (as .ci/run does)")
    import cv2

    shot = tmp_path / "screenshot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    "--hide-scrollbars", "--window-size=1200,2400", f"--screenshot={shot}",
                    (desk_report / "report.html").as_uri()], check=True, capture_output=True, timeout=120)
    image = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (2400, 1200)
    b, g, r = (image[..., k].astype(int) for k in range(3))
    caveat = (abs(r - 0xff) < 8) & (abs(g - 0xf6) < 8) & (abs(b - 0xd6) < 8)  # the caveat's background
    assert caveat.sum() > 5000, "the caveat did not render"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 500  # figures and maps drawn


# --- (10) the README -------------------------------------------------------------------------------

def test_readme_parts_table_lists_every_registered_part():
    listing = ("import json, deepfake_detect as dd; print(json.dumps({k: getattr(dd, 'list_' + k)() for k in "
               "('samplers', 'face_detectors', 'backbones', 'heads', 'aggregators')}))")
    # a fresh process: parts that other tests register in this one are not the library's
    out = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, check=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    registered = json.loads(out.stdout.strip().splitlines()[-1])
    readme = (ROOT / "README.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|")[3] for line in readme.splitlines()
            if line.startswith("| ") and line.count("|") == 4}
    listed = {"sampler": registered["samplers"], "face detector": registered["face_detectors"],
              "backbone": registered["backbones"], "head": registered["heads"], "aggregator": registered["aggregators"]}
    for part, names in listed.items():
        assert set(re.findall(r"`([a-z0-9_]+)`", rows[part])) == set(names), part


def test_readme_starts_with_the_one_command_check_and_explains_the_score():
    readme = (ROOT / "README.md").read_text()
    first_command = re.search(r"deepfake-detect (\w+)", readme)
    assert first_command.group(0) == "deepfake-detect predict"
    for needed in ("--report", "--threshold", "--inconclusive", "p_fake", "evidence, not proof", "cache info",
                   "model-card.md"):
        assert needed in readme, needed
