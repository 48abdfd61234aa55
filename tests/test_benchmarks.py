"""benchmarks/stages.py runs end to end: on tiny inputs, its JSON has every stage's row, with times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import IMAGES, WEIGHTS, require

ROOT = Path(__file__).resolve().parents[1]


def test_stage_benchmark_writes_every_row(tmp_path):
    require(WEIGHTS), require(IMAGES)
    data = tmp_path / "work" / "train_4x1s"  # the generated training videos stand in for FaceForensics++
    out = tmp_path / "stages.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "stages.py"), "--workdir", str(tmp_path / "work"),
               "--data", str(data), "--ffpp", "1", "--clip-seconds", "0.6", "--clip-size", "160x120",
               "--fit-videos", "4", "--fit-seconds", "1", "--head-steps", "5", "--repeats", "1",
               "--embed-batch", "4", "--embed-batches", "1", "--out", str(out)]
    # a persistent JAX compilation cache shared by the run's processes: the 0.6 s clip's 15 crops and the
    # training videos' 10 use one embedding batch size, compiled once instead of in each of 3 processes
    jax_cache = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                 "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "DEEPFAKE_DETECT_CACHE": "none", **jax_cache}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())

    assert report["command"].endswith(" ".join(command[2:]))
    assert report["machine"]["cpus"] >= 1 and report["machine"]["jax_devices"]
    assert len(report["machine"]["load_average"]["start"]) == 3
    rows = report["rows"]
    whats = [(r["stage"], r["what"]) for r in rows]
    for stage, what in [("decode", "clip 160x120, uniform n=32"), ("decode", "clip 160x120, fixed_rate 1 fps"),
                        ("decode", "train_4x1s, uniform n=32"), ("decode", "train_4x1s, fixed_rate 1 fps"),
                        ("detect", "retinaface"), ("crop", ""), ("embed", "backbone.embed"),
                        ("embed", "Keras-JAX model.predict"), ("embed", "embed, "), ("embed", "tf.function"),
                        ("predict_video", "cold"), ("predict_video", "warm, cache=None"),
                        ("predict_video", "warm feature cache"), ("fit", "cold"), ("fit", "warm")]:
        assert any(s == stage and w.startswith(what) for s, w in whats), (stage, what, whats)
    timed = [r for r in rows if r["best"] is not None]
    assert len(timed) >= 14
    for r in timed:
        assert 0 < r["best"] <= r["median"], r
        assert r["throughput"] is None or r["throughput"] > 0, r
    goals = {r["goal"]: r for r in rows if r["goal"]}
    assert goals[">= 6x Keras-JAX"]["ratio"] > 0 and goals[">= 6x Keras-JAX"]["met"] in (True, False)
    assert goals["median <= 0.5 s"]["met"] in (True, False)
    assert "stage" in done.stdout and "predict_video" in done.stdout  # the table is printed


def test_collection_benchmark_writes_every_row(tmp_path, dataset_dir):
    """benchmarks/collection.py on 2 generated videos: each round has decode, extract and predict, timed."""
    out = tmp_path / "collection.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "collection.py"), "--data", str(dataset_dir),
               "--videos", "2", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "DEEPFAKE_DETECT_CACHE": "none"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["videos"] == 2 and report["command"].endswith(" ".join(command[2:]))
    [rounds] = report["rounds"]
    assert set(rounds) == {"decode", "extract", "predict"}
    assert rounds["decode"]["frames"] > 0 and rounds["extract"]["faces"] > 0
    assert sum(rounds["predict"]["labels"].values()) == 2 and "error" not in rounds["predict"]["labels"]
    for row in rounds.values():
        assert row["wall_s"] > 0 and row["videos_per_s"] > 0 and row["vs_decode"] > 0
    assert "extract" in done.stdout and "vs decode" in done.stdout
