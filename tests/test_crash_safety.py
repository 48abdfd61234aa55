"""Crash safety and concurrency, with real processes: SIGKILL mid-save, two fits on one cache,
a cache reader during writes.

(A cache write killed mid-transaction, and two processes filling one cache, are covered in
test_cache.py.) Child processes import this repository's tests package for the tiny backbone
of test_bad_inputs, so they start in seconds and compute what this process computes.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepfake_detect import DeepfakeDetector, FeatureCache
from deepfake_detect.results import FaceFeatures

from .test_bad_inputs import TinyConv  # registers the "test_tiny_conv" backbone

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
CONFIG = {"sampler": {"name": "uniform", "n": 1}, "face_detector": "none", "backbone": {"name": "test_tiny_conv"}}


def python(script: str, *args: str, **kwargs) -> subprocess.Popen:
    """A child Python running `script` with this repository's src and tests importable."""
    path = os.pathsep.join(filter(None, [str(SRC), str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-c", script, *args], env={**os.environ, "PYTHONPATH": path},
                            stdout=subprocess.PIPE, text=True, **kwargs)


def write_images(folder: Path, names: list[str], seed: int) -> list[Path]:
    """Distinct small random PNG images (the "none" face detector takes them as face crops)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        rng = np.random.default_rng([seed, i])
        image = cv2.resize(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (48, 48), interpolation=cv2.INTER_CUBIC)
        path = folder / name
        assert cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def image_dataset(root: Path, n: int = 4) -> Path:
    write_images(root / "real", [f"r{i}.png" for i in range(n)], seed=1)
    write_images(root / "fake", [f"f{i}.png" for i in range(n)], seed=2)
    return root


# --- a model save killed by SIGKILL ------------------------------------------------------------------
# One child loads both models once, then forks a saver per round: the saver writes the two models
# in turn to the round's file, forever, until the test kills it. The child runs Keras on its
# NumPy backend: no threads, so forking is safe, and it starts in a second or two. Saving is
# the same code on every backend (the models' backbone is keyed by its weights file, so they load
# there too).
_SAVER = """
import itertools, os, sys, time, zipfile
os.environ["KERAS_BACKEND"] = "numpy"
import tests.test_bad_inputs  # registers the tiny backbone the models use
from deepfake_detect import DeepfakeDetector

old, new = sys.argv[1:3]
models = [DeepfakeDetector.load(new), DeepfakeDetector.load(old)]
write = zipfile.ZipFile.writestr

def slow_write(self, *args, **kwargs):  # a slow disk: each save stays half-written for a while
    write(self, *args, **kwargs)
    time.sleep(0.01)

zipfile.ZipFile.writestr = slow_write
print("ready", flush=True)
for line in sys.stdin:  # one round per line: the file to save to
    pid = os.fork()
    if pid == 0:
        print("started", flush=True)
        for i in itertools.count():
            models[i % 2].save(line.strip())
            print("saved", flush=True)
    _, status = os.waitpid(pid, 0)
    print("reaped", os.WTERMSIG(status) if os.WIFSIGNALED(status) else "exit", flush=True)
"""


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> tuple[Path, Path, list[np.ndarray], list[np.ndarray]]:
    """Two saved models that differ in their head weights only, and those weights."""
    root = image_dataset(tmp_path_factory.mktemp("images"))
    backbone_weights = str(root.parent / "tiny.weights.h5")
    TinyConv().model.save_weights(backbone_weights)
    old = DeepfakeDetector(**{**CONFIG, "backbone": {"name": "test_tiny_conv", "weights": backbone_weights}},
                           head={"name": "logistic", "epochs": 1}, cache=None)
    old.fit(root, verbose=0, validation_split=0)
    old_weights = old.head_.model_.get_weights()
    new_weights = [0.5 - w for w in old_weights]
    new = DeepfakeDetector.load(old.save(root.parent / "old.dfd"))
    new.head_.model_.set_weights(new_weights)
    return root.parent / "old.dfd", new.save(root.parent / "new.dfd"), old_weights, new_weights


def test_save_killed_at_random_moments_leaves_the_old_or_the_new_model(two_models, tmp_path):
    old, new, old_weights, new_weights = two_models
    rng = random.Random(os.getpid())
    saver = python(_SAVER, str(old), str(new), stdin=subprocess.PIPE)
    interrupted, rounds = 0, 5
    try:
        assert saver.stdout.readline().strip() == "ready"
        for k in range(rounds):
            target = tmp_path / f"round{k}" / "model.dfd"
            target.parent.mkdir()
            shutil.copy(old, target)
            saver.stdin.write(f"{target}\n")
            saver.stdin.flush()
            assert saver.stdout.readline().strip() == "started"
            for _ in range(rng.randint(0, 3)):
                assert saver.stdout.readline().strip() == "saved"
            time.sleep(rng.uniform(0.0, 0.05))
            # the forked saver is the child's only child: find it by its parent
            found = subprocess.run(["pgrep", "-P", str(saver.pid)], capture_output=True, text=True, check=False)
            pids = found.stdout.split()
            assert len(pids) == 1, pids
            os.kill(int(pids[0]), signal.SIGKILL)
            while (line := saver.stdout.readline().strip()) == "saved":
                pass
            assert line == f"reaped {int(signal.SIGKILL)}"

            leftovers = list(target.parent.glob(".model.dfd.*.tmp"))  # a save killed before its rename
            interrupted += len(leftovers)
            assert {p.name for p in target.parent.iterdir()} - {p.name for p in leftovers} == {"model.dfd"}
            weights = DeepfakeDetector.load(target).head_.model_.get_weights()
            is_old = all(np.array_equal(a, b) for a, b in zip(weights, old_weights))
            is_new = all(np.array_equal(a, b) for a, b in zip(weights, new_weights))
            assert is_old or is_new, f"{target}: neither the old nor the new model"
    finally:
        saver.stdin.close()
        try:
            saver.wait(timeout=30)
        finally:
            saver.kill()
            saver.stdout.close()
    assert saver.returncode == 0
    print(f"\n{interrupted} of {rounds} kills landed mid-save")
    assert interrupted >= 1, f"none of {rounds} kills landed mid-save; the test proved nothing"


def test_save_gives_a_new_model_the_umask_permissions_and_keeps_those_of_one_it_replaces(two_models, tmp_path):
    old, _, _, _ = two_models
    detector = DeepfakeDetector.load(old)
    umask = os.umask(0o022)
    os.umask(umask)
    path = detector.save(tmp_path / "model.dfd")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not a temporary file's owner-only 0600
    path.chmod(0o640)
    detector.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["model.dfd"]


# --- two processes fitting with one cache ------------------------------------------------------------
_FITTER = """
import os, sys, time
import tests.test_bad_inputs  # registers the tiny backbone
from deepfake_detect import DeepfakeDetector
from tests.test_crash_safety import CONFIG

root, cache, go = sys.argv[1:4]
detector = DeepfakeDetector(**CONFIG, head={"name": "logistic", "epochs": 1}, cache=cache)
print(detector.extractor.fingerprint, flush=True)  # built: ready
while not os.path.exists(go):
    time.sleep(0.01)
detector.fit(root, verbose=0, validation_split=0)
print("done", flush=True)
"""


def test_two_processes_fitting_overlapping_data_with_one_cache_compute_what_one_process_does(tmp_path):
    everything = image_dataset(tmp_path / "all", n=6)
    halves = []
    for name, keep in (("first", range(4)), ("second", range(2, 6))):  # r2, r3, f2, f3 in both
        for label, prefix in (("real", "r"), ("fake", "f")):
            (tmp_path / name / label).mkdir(parents=True)
            for i in keep:
                shutil.copy(everything / label / f"{prefix}{i}.png", tmp_path / name / label)
        halves.append(tmp_path / name)
    cache_path, go = tmp_path / "shared.sqlite", tmp_path / "go"
    child = python(_FITTER, str(halves[1]), str(cache_path), str(go))  # the other process; it starts ...
    try:
        alone = DeepfakeDetector(**CONFIG, cache=None).extractor  # ... while this one computes, with no cache,
        paths = sorted(everything.rglob("*.png"))
        expected = [alone.extract(path)[0] for path in paths]  # what one process computes
        here = DeepfakeDetector(**CONFIG, head={"name": "logistic", "epochs": 1}, cache=str(cache_path))
        assert child.stdout.readline().strip() == here.extractor.fingerprint == alone.fingerprint
        go.touch()  # both fit and write at the same time
        here.fit(halves[0], verbose=0, validation_split=0)
        assert child.stdout.readline().strip() == "done"
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
        child.stdout.close()

    cache = FeatureCache(cache_path)
    digests = cache.digests(paths)
    stored = cache.get_features(digests, alone.fingerprint)
    assert sorted(stored) == sorted(digests)  # every input once, the overlap not twice
    assert cache.info()["entries"] == 2 * len(paths)  # features and crops of each input
    assert cache.verify() == []
    for path, digest, want in zip(paths, digests, expected):
        got = stored[digest]
        assert got.frames_sampled == want.frames_sampled == 1
        np.testing.assert_array_equal(got.frame_indices, want.frame_indices)
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_allclose(got.features, want.features, rtol=1e-6, atol=1e-7, err_msg=str(path))


# --- a cache reader while another process writes -----------------------------------------------------
_WRITER = """
import sys
import numpy as np
from deepfake_detect.cache import FeatureCache
from deepfake_detect.results import FaceFeatures

def version(v, n=32, d=1024):
    rng = np.random.default_rng(v)
    idx = np.arange(n, dtype=np.int64) * (v + 1)
    return FaceFeatures(frame_indices=idx, times=idx / 25.0, boxes=rng.random((n, 4), dtype=np.float32),
                        scores=rng.random(n, dtype=np.float32), features=rng.standard_normal((n, d), dtype=np.float32),
                        frames_sampled=n + v)

cache = FeatureCache(sys.argv[1])
for i in range(int(sys.argv[2])):
    cache.put_features("key", "fp", version(i % 2))  # the old entry, then the new one over it, ...
    if i == 0:
        print("first", flush=True)
print("done", flush=True)
"""


def _version(v: int, n: int = 32, d: int = 1024) -> FaceFeatures:  # as _WRITER writes it
    rng = np.random.default_rng(v)
    idx = np.arange(n, dtype=np.int64) * (v + 1)
    return FaceFeatures(frame_indices=idx, times=idx / 25.0, boxes=rng.random((n, 4), dtype=np.float32),
                        scores=rng.random(n, dtype=np.float32), features=rng.standard_normal((n, d), dtype=np.float32),
                        frames_sampled=n + v)


def test_a_reader_during_writes_sees_the_old_or_the_new_entry_whole(tmp_path):
    path = tmp_path / "cache.sqlite"
    versions = [_version(0), _version(1)]
    writer = python(_WRITER, str(path), "200")
    seen = [0, 0]
    try:
        assert writer.stdout.readline().strip() == "first"
        cache = FeatureCache(path)
        while writer.poll() is None:
            got = cache.get_features(["key"], "fp")["key"]  # present from the first write on
            v = got.frames_sampled - 32
            assert v in (0, 1), f"frames_sampled {got.frames_sampled}"
            want = versions[v]
            for field in ("frame_indices", "times", "boxes", "scores", "features"):
                np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
            seen[v] += 1
        assert writer.wait(timeout=60) == 0
    finally:
        writer.kill()
        writer.stdout.close()
    assert seen[0] >= 1 and seen[1] >= 1, f"reads saw old/new {seen} times: the writes did not overlap the reads"
