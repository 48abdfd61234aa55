"""FeatureCache: keyed by content and by every upstream stage, safe across processes and crashes.

Pipeline tests use real encoded videos of a real face photo, RetinaFace and MobileNet V1 with
real weights; they count calls to decoding, detection and the backbone to prove what the
cache saves. Storage tests use a real SQLite file (no mocks).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from deepfake_detect import DeepfakeDetector, FeatureCache, video
from deepfake_detect.backbones import Backbone, MobileNetV1, backbones
from deepfake_detect.cache import ENV_VAR, FILENAME, default_path, open_cache
from deepfake_detect.errors import CacheError
from deepfake_detect.faces import RetinaFaceDetector
from deepfake_detect.results import FaceFeatures

SRC = Path(__file__).resolve().parents[1] / "src"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WEIGHTS = SHARED / "weights" / "mobilenet_v1_0.50_no_top.weights.h5"
PORTRAIT = SHARED / "images" / "grace_hopper.bmp"
needs_shared = pytest.mark.skipif(not (WEIGHTS.exists() and PORTRAIT.exists()),
                                  reason=f"real weights and face photo not found under {SHARED}")


# --- inputs ---------------------------------------------------------------------------------
def _write_video(path: Path, seed: int, fake: bool) -> Path:
    """A 2 s, 10 fps mp4v video of the portrait moving over a smooth random background."""
    face = cv2.resize(video.read_image(PORTRAIT), (110, 130), interpolation=cv2.INTER_AREA)
    if fake:  # a face-swap-like resolution mismatch and colour shift
        face = cv2.resize(cv2.resize(face, (28, 32), interpolation=cv2.INTER_AREA), (110, 130))
        face = np.clip(face.astype(int) + [20, -10, 0], 0, 255).astype(np.uint8)
    rng = np.random.default_rng(seed)
    background = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (256, 192), interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (256, 192))
    assert writer.isOpened()
    for t in range(20):
        frame = background.copy()
        x, y = 50 + 2 * t + seed, 30 + t % 5
        frame[y:y + 130, x:x + 110] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """real/ and fake/ with two videos each, and a real still image."""
    if not PORTRAIT.exists():
        pytest.skip(f"real face photo not found under {SHARED}")
    root = tmp_path_factory.mktemp("dataset")
    for label in ("real", "fake"):
        (root / label).mkdir()
        for seed in (1, 2):
            _write_video(root / label / f"{label}{seed}.mp4", seed, fake=label == "fake")
    shutil.copy(PORTRAIT, root / "real" / "portrait.bmp")
    return root


@backbones.register("test_pooled_pixels")
class PooledPixels(Backbone):
    """A second, small backbone (average-pooled pixels): a real Keras model, quick to build."""

    def __init__(self, input_size: int = 128, pool: int = 32):
        self.input_size = input_size
        self.pool = pool

    def build_model(self):
        import keras

        s = self.input_size
        return keras.Sequential([keras.Input((s, s, 3)), keras.layers.AveragePooling2D(self.pool),
                                 keras.layers.Flatten()])

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        return images.astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def parts():
    """One RetinaFace and one real-weights MobileNet shared by every detector (built once)."""
    if not WEIGHTS.exists():
        pytest.skip(f"real MobileNet weights not found under {SHARED}")
    return {"face_detector": RetinaFaceDetector(), "backbone": MobileNetV1(weights=str(WEIGHTS))}


def _detector(parts, cache, **kwargs) -> DeepfakeDetector:
    config = {**parts, "sampler": {"name": "fixed_rate", "fps": 1.0}, "head": {"name": "logistic", "epochs": 2},
              **kwargs}
    return DeepfakeDetector(cache=cache, **config)


class Calls:
    """Counts calls to decoding (`video.sample_frames`), face detection and embedding."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.counts = {"decode": 0, "detect": 0, "embed": 0}
        self._wrap(video, "sample_frames", "decode")

    def _wrap(self, owner, name: str, what: str) -> None:
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            self.counts[what] += 1
            return original(*args, **kwargs)

        self.monkeypatch.setattr(owner, name, counted)

    def watch(self, detector: DeepfakeDetector) -> DeepfakeDetector:
        extractor = detector.extractor
        if "detect" not in vars(extractor.face_detector):
            self._wrap(extractor.face_detector, "detect", "detect")
        if "embed" not in vars(extractor.backbone):
            self._wrap(extractor.backbone, "embed", "embed")
        return detector

    def take(self) -> dict[str, int]:
        counts, self.counts = self.counts, dict.fromkeys(self.counts, 0)
        return counts


NONE = {"decode": 0, "detect": 0, "embed": 0}


@pytest.fixture
def calls(monkeypatch) -> Calls:
    return Calls(monkeypatch)


# --- the pipeline through the cache ------------------------------------------------------------
@needs_shared
def test_second_fit_with_a_new_head_decodes_detects_and_embeds_nothing(dataset, parts, calls, tmp_path):
    first = calls.watch(_detector(parts, tmp_path / "cache"))
    first.fit(dataset, validation_split=0, verbose=0)
    assert all(calls.take().values())

    second = calls.watch(_detector(parts, tmp_path / "cache", head={"name": "mlp", "units": 8, "epochs": 1}))
    second.fit(dataset, validation_split=0, verbose=0)
    report = second.evaluate(dataset, verbose=0)
    clip = dataset / "fake" / "fake1.mp4"
    cached = second.predict_video(clip)
    image = second.predict_image(dataset / "real" / "portrait.bmp")
    assert calls.take() == NONE
    assert report.n_videos == 5 and report.videos_without_face == 0
    assert set(cached.timings) == {"cache", "classify"} and image.faces_found == 1

    uncached = calls.watch(_detector(parts, None))
    uncached.head_, uncached.decision_ = second.head_, second.decision_  # the same head and calibration
    fresh = uncached.predict_video(clip)
    assert calls.take()["decode"] == 1
    assert fresh.p_fake == cached.p_fake and [f.box for f in fresh.frames] == [f.box for f in cached.frames]


@needs_shared
def test_a_copy_hits_and_a_changed_byte_misses(dataset, parts, calls, tmp_path):
    detector = calls.watch(_detector(parts, tmp_path / "cache"))
    original = dataset / "real" / "real1.mp4"
    before, _ = detector.extractor.extract(original)
    calls.take()

    copy = tmp_path / "renamed copy.mp4"
    shutil.copy(original, copy)
    hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(copy, ns=(hour_ago, hour_ago))  # old enough for its stat to be trusted
    again, timings = detector.extractor.extract(copy)
    assert calls.take() == NONE and set(timings) == {"cache"}
    assert np.array_equal(again.features, before.features) and np.array_equal(again.boxes, before.boxes)
    detector.extractor.extract(copy)
    assert calls.take() == NONE

    data = bytearray(copy.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the video data; same size, and the mtime is put back
    copy.write_bytes(bytes(data))
    os.utime(copy, ns=(hour_ago, hour_ago))
    detector.extractor.extract(copy)
    assert calls.take() == {"decode": 1, "detect": 1, "embed": 1}


@needs_shared
def test_every_upstream_stage_keys_the_entries(dataset, parts, calls, tmp_path):
    clip = dataset / "fake" / "fake2.mp4"
    cache = FeatureCache(tmp_path / "cache.sqlite")
    base = calls.watch(_detector(parts, cache))
    base.extractor.extract(clip)
    assert calls.take() == {"decode": 1, "detect": 1, "embed": 1}

    twice_a_second = calls.watch(_detector(parts, cache, sampler={"name": "fixed_rate", "fps": 2.0}))
    feats, _ = twice_a_second.extractor.extract(clip)
    assert calls.take() == {"decode": 1, "detect": 1, "embed": 1} and feats.frames_sampled == 4

    wider = calls.watch(_detector(parts, cache, crop={"margin": 1.6}))
    wider.extractor.extract(clip)
    assert calls.take() == {"decode": 1, "detect": 1, "embed": 1}

    other_backbone = calls.watch(_detector(parts, cache, backbone=PooledPixels()))
    feats, _ = other_backbone.extractor.extract(clip)
    assert calls.take() == {"decode": 0, "detect": 0, "embed": 1}  # the crops were reused
    assert feats.features.shape == (2, 4 * 4 * 3)

    for detector in (base, twice_a_second, wider, other_backbone):
        detector.extractor.extract(clip)
    assert calls.take() == NONE
    assert len(cache.info()["fingerprints"]) == 4 + 3  # features of 4 stage sets, crops of 3


@needs_shared
def test_prediction_may_keep_the_face_crops_out_of_the_cache(dataset, parts, calls, tmp_path):
    cache = FeatureCache(tmp_path / "cache.sqlite")
    clip = dataset / "fake" / "fake1.mp4"
    predicting = calls.watch(_detector(parts, cache))
    predicting.extractor.extract(clip, store_crops=False)
    assert calls.take() == {"decode": 1, "detect": 1, "embed": 1}
    assert [v["kind"] for v in cache.info()["fingerprints"].values()] == ["features"]  # no crops stored
    predicting.extractor.extract(clip, store_crops=False)
    assert calls.take() == NONE  # the features serve the next prediction
    fitting = calls.watch(_detector(parts, cache, crop={"margin": 1.6}))
    fitting.extractor.extract(clip)  # as fit and extract do: the crops are kept, for fine-tuning
    assert sorted(v["kind"] for v in cache.info()["fingerprints"].values()) == ["crops", "features", "features"]


@needs_shared
def test_unreadable_inputs_raise_as_without_a_cache(parts, tmp_path):
    from deepfake_detect.errors import VideoReadError

    detector = _detector(parts, tmp_path / "cache")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    for path in (tmp_path / "missing.mp4", tmp_path / "broken.mp4", tmp_path):
        with pytest.raises(VideoReadError):
            detector.extractor.extract(path)
    assert detector.extractor.cache.info()["entries"] == 0


@needs_shared
def test_cache_keys_do_not_change_by_accident():
    """The keys of the default detector's entries, pinned: every user's cache is keyed by them, so
    a refactor that changes one silently invalidates every cache. Change the pinned values only
    with a change to what the stages compute (and say so in the changelog). The derivation is
    spelled out: each key is the first 16 hex digits of the sha256 of the sorted-keys JSON of
    the stage configs, the backbone's fingerprint naming its weights file by its sha256."""
    import hashlib
    import json

    from deepfake_detect.digests import config_digest, file_sha256

    detector = DeepfakeDetector(backbone={"name": "mobilenet_v1", "alpha": 0.5, "weights": str(WEIGHTS)}, cache=None)
    extractor = detector.extractor
    backbone = extractor.backbone
    config = {k: v for k, v in backbone.get_config().items() if k not in ("weights", "fast_depthwise")}
    by_hand = {"name": "mobilenet_v1", "config": config, "weights": "sha256:" + file_sha256(WEIGHTS)}
    assert backbone.fingerprint == hashlib.sha256(json.dumps(by_hand, sort_keys=True).encode()).hexdigest()[:16]
    assert extractor.fingerprint == config_digest(extractor.stages)
    assert extractor.crops_fingerprint == config_digest(extractor.crop_stages)
    assert (extractor.fingerprint, extractor.crops_fingerprint) == ("30bdc9a927479500", "ba45b4041479f6d9")
    # RetinaFace coarse to fine became the default (face detector key 303b4e0a8802f2ed): whole-frame
    # detection, the default before, keeps the keys it had
    whole = DeepfakeDetector(backbone={"name": "mobilenet_v1", "alpha": 0.5, "weights": str(WEIGHTS)},
                             face_detector={"name": "retinaface", "coarse_size": None}, cache=None).extractor
    assert (whole.fingerprint, whole.crops_fingerprint) == ("db638a2983672e87", "df044aad476d152f")


# --- storage -----------------------------------------------------------------------------------
def _features(seed: int, n: int = 3, d: int = 8) -> FaceFeatures:
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(1000, n, replace=False)).astype(np.int64)
    return FaceFeatures(idx, idx / 25.0, rng.random((n, 4), dtype=np.float32) * 100,
                        rng.random(n, dtype=np.float32), rng.standard_normal((n, d), dtype=np.float32), n + 2)


def _same(a: FaceFeatures, b: FaceFeatures) -> bool:
    arrays = ("frame_indices", "times", "boxes", "scores", "features")
    return a.frames_sampled == b.frames_sampled and all(
        getattr(a, k).dtype == getattr(b, k).dtype and getattr(a, k).shape == getattr(b, k).shape
        and getattr(a, k).tobytes() == getattr(b, k).tobytes() for k in arrays)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> FeatureCache:
    return FeatureCache(tmp_path_factory.mktemp("roundtrip") / "cache.sqlite")


_matrices = st.tuples(st.integers(0, 40), st.integers(0, 300), st.sampled_from([np.float32, np.float16, np.float64])) \
    .flatmap(lambda s: hnp.arrays(s[2], (s[0], s[1]), elements=hnp.from_dtype(np.dtype(s[2]), allow_nan=True)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(matrix=_matrices, frames_sampled=st.integers(0, 10**6))
def test_a_feature_matrix_round_trips_exactly(shared_cache, matrix, frames_sampled):
    n = len(matrix)
    idx = np.arange(n, dtype=np.int64) * 7
    feats = FaceFeatures(idx, idx / 30.0, np.full((n, 4), 1.5, np.float32), np.linspace(0, 1, n, dtype=np.float32),
                         matrix, frames_sampled)
    digest = f"{matrix.dtype}-{matrix.shape}-{hash(matrix.tobytes())}-{frames_sampled}"
    shared_cache.put_features(digest, "fp", feats)
    back = shared_cache.get_features([digest], "fp")[digest]
    assert _same(back, feats)
    assert back.features.flags.writeable


def test_a_foreign_file_is_a_clear_cache_error(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("these are my notes, not a cache\n" * 10)
    with pytest.raises(CacheError, match="not a readable deepfake-detect feature cache.*DEEPFAKE_DETECT_CACHE"):
        FeatureCache(text)
    assert text.read_text().startswith("these are my notes")  # left as it was

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(CacheError, match="SQLite database of another application"):
        FeatureCache(other)
    with pytest.raises(CacheError):
        _ = DeepfakeDetector(cache=text).extractor


def test_verify_finds_and_drops_damaged_entries(tmp_path):
    cache = FeatureCache(tmp_path / "cache.sqlite")
    for i in range(4):
        cache.put_features(f"d{i}", "fp", _features(i))
    with sqlite3.connect(cache.path) as db:
        blob = bytearray(db.execute("SELECT array FROM entries WHERE digest = 'd1'").fetchone()[0])
        blob[5] ^= 1
        db.execute("UPDATE entries SET array = ? WHERE digest = 'd1'", (bytes(blob),))
        db.execute("UPDATE entries SET shape = '[3, 9]' WHERE digest = 'd2'")
    assert cache.verify() == ["features:fp:d1", "features:fp:d2"]
    with pytest.warns(RuntimeWarning, match="2 damaged features entries"):
        found = cache.get_features(["d0", "d1", "d2", "d3"], "fp")
    assert sorted(found) == ["d0", "d3"] and _same(found["d3"], _features(3))
    assert cache.verify(drop=True) == ["features:fp:d1", "features:fp:d2"]
    assert cache.verify() == [] and cache.info()["entries"] == 2


def test_info_prune_clear_and_streaming(tmp_path):
    cache = FeatureCache(tmp_path / "cache.sqlite")
    with cache.writer() as writer:
        for i in range(10):
            writer.put_features(f"d{i}", "fpA" if i < 6 else "fpB", _features(i), stages={"backbone": "x"})
    info = cache.info()
    assert info["entries"] == 10 and info["size_bytes"] > 0 and info["path"] == str(cache.path)
    assert {fp: v["entries"] for fp, v in info["fingerprints"].items()} == {"fpA": 6, "fpB": 4}
    assert info["fingerprints"]["fpA"]["stages"] == {"backbone": "x"}

    streamed = list(cache.iter_features([f"d{i}" for i in (5, 0, 99, 3)], "fpA", batch_size=2))
    assert [d for d, _ in streamed] == ["d5", "d0", "d99", "d3"] and streamed[2][1] is None
    assert _same(streamed[0][1], _features(5))

    assert cache.prune() == 0
    assert cache.prune(fingerprint="fpB") == 4
    with sqlite3.connect(cache.path) as db:
        db.execute("UPDATE entries SET used = used - 40 * 86400 WHERE digest IN ('d0', 'd1')")
    assert cache.prune(older_than_days=30) == 2
    per_entry = cache.info()["fingerprints"]["fpA"]["bytes"] // 4
    assert cache.prune(max_bytes=2 * per_entry) == 2 and cache.info()["entries"] == 2
    cache.clear()
    assert cache.info()["entries"] == 0 and cache.info()["fingerprints"] == {}


def test_clear_leaves_nothing_of_what_was_stored(tmp_path, monkeypatch):
    from deepfake_detect.results import FaceCrops

    cache = FeatureCache(tmp_path / "cache.sqlite")
    cache._db().execute("PRAGMA secure_delete=OFF")  # as SQLite builds without SQLITE_SECURE_DELETE delete
    monkeypatch.setattr("deepfake_detect.cache.RACY_NS", -10**18)  # files just written: their paths recorded too
    paths = [tmp_path / f"a-private-video-name-{i:03d}.mp4" for i in range(100)]
    for path in paths:
        path.write_bytes(os.urandom(100))
    digests = cache.digests(paths)
    pattern = b"PRIVATE-FACE-CROP"
    pixels = np.frombuffer((pattern * 800)[:4 * 32 * 32 * 3], np.uint8).reshape(4, 32, 32, 3)
    idx = np.arange(4, dtype=np.int64)
    crops = FaceCrops(idx, idx / 25.0, np.zeros((4, 4), np.float32), np.ones(4, np.float32), pixels, 4)
    with cache.writer() as writer:
        for digest in digests[:50]:
            writer.put_crops(digest, "crops-fp", crops, stages={"sampler": "secret-stage"})
            writer.put_features(digest, "features-fp", _features(1), stages={"backbone": "x"})

    def stored() -> bytes:
        return b"".join(p.read_bytes() for p in (cache.path, *(cache.path.with_name(cache.path.name + s)
                                                                 for s in ("-wal", "-shm"))) if p.exists())

    markers = (pattern, b"a-private-video-name", b"secret-stage", digests[0].encode())
    assert all(marker in stored() for marker in markers)
    cache.clear()
    assert not [marker for marker in markers if marker in stored()]  # in the file, its log and its index
    assert cache.info()["entries"] == 0 and cache.info()["fingerprints"] == {}
    assert cache.get_crops(digests, "crops-fp") == {}
    cache.put_features(digests[0], "features-fp", _features(1))  # still a working cache
    assert _same(cache.get_features([digests[0]], "features-fp")[digests[0]], _features(1))


def test_a_changed_file_is_hashed_again(tmp_path):
    cache = FeatureCache(tmp_path / "cache.sqlite")
    path = tmp_path / "input.bin"
    path.write_bytes(b"a" * 1000)
    old = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(old, old))
    [first] = cache.digests([path])
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(old, old))  # same size, same mtime: only the ctime tells
    [second] = cache.digests([path])
    assert first != second and cache.digests([path, tmp_path / "missing"]) == [second, None]


def test_where_the_cache_lives(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_path() == tmp_path / "xdg" / "deepfake_detect" / FILENAME
    assert open_cache("default").path == default_path()
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.sqlite"))
    assert open_cache("default").path == tmp_path / "env.sqlite"
    assert open_cache(tmp_path / "folder").path == tmp_path / "folder" / FILENAME
    monkeypatch.setenv(ENV_VAR, "none")
    assert open_cache("default") is None and open_cache(None) is None
    cache = FeatureCache(tmp_path / "mine.sqlite")
    assert open_cache(cache) is cache
    assert DeepfakeDetector().cache == "default"


# --- several processes -------------------------------------------------------------------------
_WRITER = """
import sys
import numpy as np
from deepfake_detect import FeatureCache
from deepfake_detect.results import FaceFeatures

def features(key, n, d):
    rng = np.random.default_rng(key)
    idx = np.arange(n, dtype=np.int64)
    return FaceFeatures(idx, idx / 25.0, rng.random((n, 4), dtype=np.float32), rng.random(n, dtype=np.float32),
                        rng.standard_normal((n, d), dtype=np.float32), n)

cache = FeatureCache(sys.argv[1])
mode, first, last = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode == "batched":
    with cache.writer(max_entries=7) as writer:
        for key in range(first, last):
            writer.put_features(f"k{key}", "fp", features(key, 8, 256))
            writer.commit_if_due()
elif mode == "single":
    for key in range(first, last):
        cache.put_features(f"k{key}", "fp", features(key, 8, 256))
else:  # forever, one entry per transaction, reporting each commit
    key = 0
    while True:
        cache.put_features(f"k{key}", "fp", features(key, 64, 2048))
        print(key, flush=True)
        key += 1
"""


def _expected(key: int, n: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(key)
    rng.random((n, 4), dtype=np.float32), rng.random(n, dtype=np.float32)
    return rng.standard_normal((n, d), dtype=np.float32)


def _python(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-c", _WRITER, *args], env=env, **kwargs)


def test_two_processes_fill_one_cache_at_once(tmp_path):
    path = str(tmp_path / "shared.sqlite")  # neither process finds it: both race to create it
    procs = [_python(path, "batched", "0", "120"), _python(path, "single", "60", "180")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    cache = FeatureCache(path)
    keys = [f"k{i}" for i in range(180)]
    found = cache.get_features(keys, "fp")
    assert sorted(found) == sorted(keys)
    assert all(np.array_equal(found[f"k{i}"].features, _expected(i, 8, 256)) for i in range(180))
    assert cache.verify() == []


def test_a_process_killed_mid_write_leaves_a_readable_cache(tmp_path):
    path = str(tmp_path / "killed.sqlite")
    child = _python(path, "forever", "0", "0", stdout=subprocess.PIPE, text=True)
    try:
        committed = [int(child.stdout.readline()) for _ in range(15)]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL and committed == list(range(15))
    cache = FeatureCache(path)
    assert cache.verify() == []
    stored = cache.info()["entries"]
    assert stored >= 15
    found = cache.get_features([f"k{i}" for i in range(stored)], "fp")
    assert len(found) == stored  # the committed entries, and only whole ones
    assert all(np.array_equal(found[f"k{i}"].features, _expected(i, 64, 2048)) for i in range(stored))
