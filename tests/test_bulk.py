"""Bulk runs in one process (`deepfake_detect.bulk`), their Parquet shards (`deepfake_detect.shards`),
importing them into the cache, and the CLI's ``extract --output``, ``predict --output`` and ``cache import``.

Beam itself is tested in test_beam.py (skipped where apache-beam is not installed)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("pyarrow")

from deepfake_detect import DeepfakeDetector, FeatureCache, bulk, shards  # noqa: E402
from deepfake_detect.cli import main  # noqa: E402
from deepfake_detect.datasets.synthetic import make_dataset  # noqa: E402


def add_bad_inputs(root) -> None:
    """A corrupt and an empty video, and one without a face, listed in `root`/labels.csv."""
    (root / "fake" / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    (root / "real" / "empty.mp4").write_bytes(b"")
    writer = cv2.VideoWriter(str(root / "real" / "blank.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 8, (160, 120))
    for i in range(8):
        writer.write(np.full((120, 160, 3), 80 + 10 * i, np.uint8))
    writer.release()
    with open(root / "labels.csv", "a") as f:
        f.write("fake/corrupt.mp4,fake\nreal/empty.mp4,real\nreal/blank.mp4,real\n")


@pytest.fixture(scope="module")
def collection(tmp_path_factory, portraits):
    """2 real and 2 fake generated videos, a corrupt one, an empty one and one without a face."""
    root = make_dataset(tmp_path_factory.mktemp("bulk"), portraits, n_real=2, n_fake=2, seconds=1.0, fps=8.0,
                        size=(160, 120))
    add_bad_inputs(root)
    return root


@pytest.fixture(scope="module")
def config(detector_config):
    return {k: v for k, v in detector_config.items() if k != "head"}


@pytest.fixture(scope="module")
def local_run(collection, config, tmp_path_factory):
    out = tmp_path_factory.mktemp("local_shards")
    summary = bulk.run_local(DeepfakeDetector(**config, cache=None), collection, out, num_shards=3, verbose=0)
    return out, summary


def test_every_input_is_a_row_and_bad_ones_say_why(local_run):
    out, summary = local_run
    assert (summary["inputs"], summary["ok"], summary["no_face"], summary["error"]) == (7, 4, 1, 2)
    assert json.loads((out / "summary.json").read_text())["error"] == 2
    rows = {r["video_id"]: r for f in shards.shard_files(out) for r in shards.iter_rows(f)}
    assert sorted(rows) == ["fake/corrupt.mp4", "fake/fake_000.mp4", "fake/fake_001.mp4", "real/blank.mp4",
                            "real/empty.mp4", "real/real_000.mp4", "real/real_001.mp4"]
    assert rows["fake/corrupt.mp4"]["status"] == "error" and rows["fake/corrupt.mp4"]["error_type"] == "VideoReadError"
    assert "empty" in rows["real/empty.mp4"]["error_message"]
    assert rows["real/blank.mp4"]["status"] == "no_face" and rows["real/blank.mp4"]["frames_sampled"] == 8
    ok = rows["real/real_000.mp4"]
    assert ok["label"] == 0 and rows["fake/fake_000.mp4"]["label"] == 1 and len(ok["digest"]) == 64
    assert len(ok["features"]) == len(ok["frame_indices"]) * ok["feature_dim"] and len(ok["boxes"]) == 4 * 8


def test_shards_hold_exactly_the_local_features(local_run, collection, config):
    out, summary = local_run
    meta = shards.read_metadata(next(out.glob("features-*.parquet")))
    extractor = DeepfakeDetector(**config, cache=None).extractor
    assert meta["fingerprint"] == extractor.fingerprint == summary["fingerprint"] and meta["kind"] == "features"
    rows = {r["video_id"]: r for f in shards.shard_files(out) for r in shards.iter_rows(f)}
    for video_id in ("real/real_000.mp4", "fake/fake_001.mp4", "real/blank.mp4"):
        expected, _ = extractor.extract(collection / video_id)
        got = shards.features_of(rows[video_id])
        for field in ("frame_indices", "times", "boxes", "scores", "features"):
            a, b = getattr(got, field), getattr(expected, field)
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), field
        assert got.frames_sampled == expected.frames_sampled


def test_a_rerun_writes_the_same_bytes_and_no_stale_shards(local_run, collection, config, tmp_path):
    out, _ = local_run
    again = tmp_path / "again"
    (again).mkdir()
    (again / "features-00007-of-00009.parquet").write_bytes(b"stale")
    bulk.run_local(DeepfakeDetector(**config, cache=None), collection, again, num_shards=3, verbose=0)
    assert sorted(p.name for p in again.glob("*.parquet")) == sorted(p.name for p in out.glob("*.parquet"))
    for f in out.glob("*.parquet"):
        assert (again / f.name).read_bytes() == f.read_bytes(), f.name


def test_imported_shards_serve_every_input_without_extracting(local_run, collection, config, tmp_path):
    out, _ = local_run
    cache = FeatureCache(tmp_path / "imported.sqlite")
    assert cache.import_shards(out) == {"files": 3, "ok": 4, "no_face": 1, "error": 2}
    detector = DeepfakeDetector(**config, cache=cache)
    good = [collection / v for v in ("real/real_000.mp4", "real/real_001.mp4", "fake/fake_000.mp4",
                                     "real/blank.mp4")]
    results = list(detector.extractor.extract_many(good))
    assert [set(timings) for _, timings in results] == [{"cache"}] * 4  # looked up only: nothing extracted
    fresh = DeepfakeDetector(**config, cache=None).extractor
    assert results[0][0].features.tobytes() == fresh.extract(good[0])[0].features.tobytes()
    with pytest.raises(Exception, match="fingerprint"):
        cache.import_shards(out, fingerprint="0" * 16)


def test_a_list_of_paths_is_a_collection(collection, tmp_path):
    listing = tmp_path / "paths.txt"
    listing.write_text(f"# videos\n{collection / 'real' / 'real_000.mp4'}\n\n{collection / 'fake' / 'corrupt.mp4'}\n")
    items = bulk.list_collection(listing)
    assert [i.video_id for i in items] == [str(collection / "real" / "real_000.mp4"),
                                          str(collection / "fake" / "corrupt.mp4")]
    assert items[0].label is None
    assert [i.video_id for i in bulk.list_collection(collection / "labels.csv")][:2] == ["fake/corrupt.mp4",
                                                                                         "fake/fake_000.mp4"]


def test_cli_extract_output_then_cache_import(collection, weights, tmp_path):
    runner = CliRunner()
    out = tmp_path / "shards"
    result = runner.invoke(main, ["extract", str(collection), "--weights", weights, "--sampler", "uniform:n=8",
                                  "--cache", str(tmp_path / "a.sqlite"), "--output", str(out), "--shards", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert "7 inputs: 4 ok, 1 without a face, 2 errors" in result.stderr
    assert len(list(out.glob("features-*-of-00002.parquet"))) == 2
    result = runner.invoke(main, ["cache", "--path", str(tmp_path / "b.sqlite"), "import", str(out)])
    assert result.exit_code == 0, result.output
    assert "imported 5 inputs (1 without a face)" in result.stderr and "2 error rows skipped" in result.stderr


def test_cli_predict_output_writes_predictions(collection, detector_config, tmp_path):
    detector = DeepfakeDetector(**detector_config, cache=None)
    detector.fit(_good_only(collection, tmp_path), verbose=0, validation_split=0)
    model = detector.save(tmp_path / "m.dfd")
    out = tmp_path / "predictions"
    result = CliRunner().invoke(main, ["predict", str(model), str(collection), "--output", str(out), "--no-cache",
                                       "-q"])
    assert result.exit_code == 0, result.output
    rows = {r["video_id"]: r for f in sorted(out.glob("predictions-*.jsonl"))
            for r in map(json.loads, f.read_text().splitlines())}
    assert len(rows) == 7 and rows["fake/corrupt.mp4"]["status"] == "error"
    assert rows["real/blank.mp4"]["label"] == "unknown" and rows["real/blank.mp4"]["p_fake"] is None
    expected = detector.predict_video(collection / "fake" / "fake_000.mp4")
    got = rows["fake/fake_000.mp4"]
    assert got["p_fake"] == expected.p_fake and got["label"] == expected.label and got["true_label"] == 1
    assert got["frame_p_fake"] == [f.p_fake for f in expected.frames] and got["faces_found"] == 8


def _good_only(collection, tmp_path):
    """A dataset folder of the collection's good videos (links)."""
    root = tmp_path / "good"
    for video in [*collection.glob("real/real_*.mp4"), *collection.glob("fake/fake_*.mp4")]:
        (root / video.parent.name).mkdir(parents=True, exist_ok=True)
        (root / video.parent.name / video.name).symlink_to(video)
    return root
