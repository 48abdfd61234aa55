"""The Apache Beam pipeline (`deepfake_detect.beam`) on the DirectRunner with 2 worker processes.

Skipped where apache-beam is not installed (it is an optional extra, not in CI's locked set).
The default test runs one small pipeline; those on FaceForensics++ clips run with
DEEPFAKE_DETECT_SLOW_TESTS=1 (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("apache_beam")

from deepfake_detect import DeepfakeDetector, FeatureCache, beam, bulk, shards  # noqa: E402
from deepfake_detect.datasets.synthetic import make_dataset  # noqa: E402

from .conftest import FFPP, require  # noqa: E402
from .test_bulk import add_bad_inputs  # noqa: E402

slow = pytest.mark.skipif(not os.environ.get("DEEPFAKE_DETECT_SLOW_TESTS"),
                          reason="slow: set DEEPFAKE_DETECT_SLOW_TESTS=1 to run the Beam tests on FaceForensics++ clips")
TWO_WORKERS = ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]


@pytest.fixture(scope="module")
def config(detector_config):
    return {k: v for k, v in detector_config.items() if k != "head"}


def _rows(folder, kind="features"):
    return {r["video_id"]: r for f in sorted(folder.glob(f"{kind}-*.parquet")) for r in shards.iter_rows(f)}


def _same_files(a, b, pattern="*.parquet"):
    names = sorted(p.name for p in a.glob(pattern))
    assert names == sorted(p.name for p in b.glob(pattern)) and names
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def test_default_options_are_two_direct_workers():
    options = beam.pipeline_options([]).get_all_options()
    assert (options["runner"], options["direct_num_workers"], options["direct_running_mode"]) == (
        "DirectRunner", 2, "multi_processing")
    options = beam.pipeline_options(["--direct_num_workers=3"]).get_all_options()
    assert options["direct_num_workers"] == 3
    options = beam.pipeline_options(["--runner=FlinkRunner", "--flink_master=host:8081"]).get_all_options()
    assert options["runner"] == "FlinkRunner" and options["direct_num_workers"] == 1  # passed on, nothing added


def test_beam_writes_what_the_local_run_writes_bad_inputs_included(portraits, config, tmp_path):
    """A text file of paths read by Beam, 2 worker processes: the same shard bytes as the local run
    (so the same features, bit for bit), and the corrupt and empty files are error rows."""
    root = make_dataset(tmp_path / "data", portraits, n_real=2, n_fake=2, seconds=1.0, fps=8.0, size=(160, 120))
    add_bad_inputs(root)
    listing = tmp_path / "paths.txt"
    listing.write_text("".join(f"{p}\n" for p in sorted(root.rglob("*.mp4"))))
    summary = beam.run(listing, tmp_path / "beam", config=config, beam_args=TWO_WORKERS, num_shards=2, batch=2)
    assert (summary["inputs"], summary["ok"], summary["no_face"], summary["error"]) == (7, 4, 1, 2)
    assert summary["metrics"]["error"] == 2 and summary["metrics"]["ok"] == 4  # Beam's counters agree
    assert json.loads((tmp_path / "beam" / "summary.json").read_text())["inputs"] == 7
    local = bulk.run_local(DeepfakeDetector(**config, cache=None), listing, tmp_path / "local", num_shards=2,
                           verbose=0)
    assert local["fingerprint"] == summary["fingerprint"]
    assert _same_files(tmp_path / "beam", tmp_path / "local")
    rows = _rows(tmp_path / "beam")
    corrupt = rows[str(root / "fake" / "corrupt.mp4")]
    assert corrupt["status"] == "error" and corrupt["error_type"] == "VideoReadError"


@pytest.fixture(scope="module")
def ffpp_dir(tmp_path_factory):
    """6 FaceForensics++ c23 clips (3 real, 3 fake) and a corrupt one, as a labelled folder (links)."""
    root = tmp_path_factory.mktemp("ffpp")
    names = ["real/044.mp4", "real/055.mp4", "real/134.mp4", "fake/Deepfakes_055_147.mp4",
             "fake/FaceSwap_134_192.mp4", "fake/Deepfakes_044_945.mp4"]
    for name in names:
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).symlink_to(require(FFPP / name))
    (root / "fake" / "Deepfakes_999_998.mp4").write_bytes(b"\x00" * 4096)  # corrupt
    return root


@slow
def test_ffpp_clips_on_beam_equal_local_rerun_same_import_serves_all(ffpp_dir, weights, tmp_path):
    config = {"sampler": {"name": "uniform", "n": 16},
              "backbone": {"name": "mobilenet_v1", "alpha": 0.5, "input_size": 128, "weights": weights}}
    first = beam.run(ffpp_dir, tmp_path / "one", config=config, beam_args=TWO_WORKERS, num_shards=3)
    assert (first["ok"], first["error"]) == (6, 1)
    again = beam.run(ffpp_dir, tmp_path / "two", config=config, beam_args=TWO_WORKERS, num_shards=3)
    assert again["inputs"] == 7 and _same_files(tmp_path / "one", tmp_path / "two")  # a rerun: the same bytes
    detector = DeepfakeDetector(**config, cache=None)
    bulk.run_local(detector, ffpp_dir, tmp_path / "local", num_shards=3, verbose=0)
    assert _same_files(tmp_path / "one", tmp_path / "local")  # the same features as the local path
    cache = FeatureCache(tmp_path / "c.sqlite")
    assert cache.import_shards(tmp_path / "one")["ok"] == 6
    good = [str(p) for p in sorted(ffpp_dir.rglob("*.mp4")) if "999" not in p.name]
    served = list(DeepfakeDetector(**config, cache=cache).extractor.extract_many(good))
    assert all(set(t) == {"cache"} for _, t in served)


@slow
def test_predictions_on_beam_are_predict_videos(ffpp_dir, detector_config, dataset_dir, tmp_path):
    detector = DeepfakeDetector(**detector_config, cache=None)
    detector.fit(dataset_dir, verbose=0)
    model = detector.save(tmp_path / "m.dfd")
    summary = beam.run(ffpp_dir, tmp_path / "p", model=model, beam_args=TWO_WORKERS, num_shards=2)
    assert (summary["kind"], summary["ok"], summary["error"]) == ("predictions", 6, 1)
    rows = _rows(tmp_path / "p", "predictions")
    jsonl = {json.loads(line)["video_id"] for f in (tmp_path / "p").glob("predictions-*.jsonl")
             for line in f.read_text().splitlines()}
    assert jsonl == set(rows)
    for video_id in ("real/055.mp4", "fake/FaceSwap_134_192.mp4"):
        expected = detector.predict_video(ffpp_dir / video_id)
        got = rows[video_id]
        assert (got["label"], got["p_fake"], got["faces_found"]) == (expected.label, expected.p_fake,
                                                                     expected.faces_found)
        assert got["frame_p_fake"] == [f.p_fake for f in expected.frames]
