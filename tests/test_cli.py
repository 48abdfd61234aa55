"""The `deepfake-detect` command, run through click's test runner on generated data."""

from __future__ import annotations

import json
import zipfile

import pytest
from click.testing import CliRunner

from deepfake_detect.cli import main, parse_part


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def model(runner, dataset_dir, weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "detector.dfd"
    result = runner.invoke(main, ["fit", str(dataset_dir), "-o", str(path), "--weights", weights,
                                  "--sampler", "uniform:n=4", "--head", "softmax:steps=200,batch_size=16", "-q"])
    assert result.exit_code == 0, result.output
    return path


def test_parse_part():
    assert parse_part("uniform") == "uniform"
    assert parse_part("uniform:n=16") == {"name": "uniform", "n": 16}
    assert parse_part("mlp:units=64,dropout=0.5,optimizer=adam") == {"name": "mlp", "units": 64, "dropout": 0.5,
                                                                     "optimizer": "adam"}


def test_predict_json_lines_one_per_video(runner, model, dataset_dir):
    result = runner.invoke(main, ["predict", str(model), str(dataset_dir / "fake"), "--json", "-q"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 6
    assert all(r["label"] in ("real", "fake") and 0 <= r["p_fake"] <= 1 and r["faces_found"] == 4 for r in rows)


def test_predict_csv_has_a_header(runner, model, dataset_dir):
    video = next((dataset_dir / "real").glob("*.mp4"))
    result = runner.invoke(main, ["predict", str(model), str(video), "--csv", "-q"])
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.startswith("path,label,p_fake") and row.startswith(str(video))


def test_predict_bad_file_exits_1_with_a_message(runner, model, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    result = runner.invoke(main, ["predict", str(model), str(bad), "-q"])
    assert result.exit_code == 1
    assert "cannot open" in result.stderr


def test_usage_error_exits_2(runner, model, dataset_dir):
    result = runner.invoke(main, ["predict", str(model), str(dataset_dir), "--json", "--csv"])
    assert result.exit_code == 2


def test_evaluate_json(runner, model, dataset_dir):
    result = runner.invoke(main, ["evaluate", str(model), str(dataset_dir), "--json", "-q"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n_videos"] == 12 and 0.0 <= metrics["video"]["roc_auc"] <= 1.0


def test_info_and_list(runner, model):
    info = json.loads(runner.invoke(main, ["info", str(model)]).stdout)
    assert info["config"]["sampler"] == {"name": "uniform", "n": 4}
    assert info["metadata"]["n_features_in"] == 512
    assert "mobilenet_v1" in runner.invoke(main, ["list", "backbones"]).stdout.split()


def _rewritten(model, tmp_path, name: str, data: bytes):
    """A copy of `model` with member `name` replaced by `data`."""
    path = tmp_path / f"{name}.dfd"
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for member in src.namelist():
            dst.writestr(member, data if member == name else src.read(member))
    return path


def test_info_reads_the_model_as_load_checks_it(runner, model, tmp_path):
    """`info` refuses what `load` refuses (it used to open the zip without load's checks)."""
    metadata = json.loads(zipfile.ZipFile(model).read("metadata.json"))
    bomb = _rewritten(model, tmp_path, "metadata.json",
                      json.dumps({**metadata, "padding": " " * (2 << 20)}).encode())  # 2 MiB unpacked
    result = runner.invoke(main, ["info", str(bomb)])
    assert result.exit_code == 1 and "more than a model holds" in result.stderr
    future = _rewritten(model, tmp_path, "metadata.json", json.dumps({**metadata, "format_version": 99}).encode())
    result = runner.invoke(main, ["info", str(future)])
    assert result.exit_code == 1 and "model format 99" in result.stderr


def test_predict_and_evaluate_take_the_cache_options(runner, model, dataset_dir, tmp_path):
    store = tmp_path / "cache.sqlite"
    video = str(next((dataset_dir / "real").glob("*.mp4")))
    assert runner.invoke(main, ["predict", str(model), video, "--cache", str(store), "-q"]).exit_code == 0
    stored = json.loads(runner.invoke(main, ["cache", "--path", str(store), "info"]).stdout)
    kinds = [entry["kind"] for entry in stored["fingerprints"].values()]
    assert stored["entries"] == 1 and kinds == ["features"]  # a verdict keeps no face images
    fresh = tmp_path / "unused.sqlite"
    result = runner.invoke(main, ["predict", str(model), video, "--no-cache", "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["evaluate", str(model), str(dataset_dir), "--no-cache", "--cache", str(fresh), "-q"])
    assert result.exit_code == 0 and not fresh.exists()


def test_extract_fills_the_cache_and_cache_commands_manage_it(runner, dataset_dir, weights, tmp_path):
    store = tmp_path / "cache.sqlite"
    result = runner.invoke(main, ["extract", str(dataset_dir), "--weights", weights, "--sampler", "uniform:n=2",
                                  "--cache", str(store), "-q"])
    assert result.exit_code == 0, result.output
    info = json.loads(runner.invoke(main, ["cache", "--path", str(store), "info"]).stdout)
    assert info["entries"] == 24  # 12 inputs x (crops + features)
    verify = runner.invoke(main, ["cache", "--path", str(store), "verify"])
    assert verify.exit_code == 0 and "0 bad entries" in verify.stderr
    assert runner.invoke(main, ["cache", "--path", str(store), "prune"]).exit_code == 2
    assert runner.invoke(main, ["cache", "--path", str(store), "clear", "--yes"]).exit_code == 0
    assert json.loads(runner.invoke(main, ["cache", "--path", str(store), "info"]).stdout)["entries"] == 0


def test_fit_on_a_one_class_folder_exits_1(runner, dataset_dir, weights, tmp_path):
    (tmp_path / "real").mkdir()
    for video in (dataset_dir / "real").glob("*.mp4"):
        (tmp_path / "real" / video.name).symlink_to(video)
    result = runner.invoke(main, ["fit", str(tmp_path), "-o", str(tmp_path / "m.dfd"), "--weights", weights, "-q"])
    assert result.exit_code == 1 and "both real and fake" in result.stderr


def test_fit_from_a_preset_with_overrides(runner, dataset_dir, weights, tmp_path):
    listed = runner.invoke(main, ["list", "presets"])
    assert listed.exit_code == 0 and "face_region_temporal: " in listed.stdout and "paper: " in listed.stdout
    path = tmp_path / "preset.dfd"
    result = runner.invoke(main, ["fit", str(dataset_dir), "-o", str(path), "--preset", "face_region_temporal",
                                  "--weights", weights, "--sampler", "uniform:n=6", "-q"])
    assert result.exit_code == 0, result.output
    config = json.loads(runner.invoke(main, ["info", str(path)]).stdout)["config"]
    assert config["sampler"] == {"name": "uniform", "n": 6}  # the option replaces the preset's part
    assert config["head"]["name"] == "temporal" and config["backbone"]["region"] == 0.4
    assert config["backbone"]["weights"] == weights and config["backbone"]["input_size"] == 288
    unknown = runner.invoke(main, ["fit", str(dataset_dir), "-o", str(tmp_path / "x.dfd"), "--preset", "nope"])
    assert unknown.exit_code == 2 and "known presets" in unknown.output
