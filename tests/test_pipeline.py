"""Pipeline overlap: frames are decoded in a background thread while the caller detects and embeds.

Real encoded videos (generated here and by the shared `dataset_dir` fixture), RetinaFace, and
MobileNet V1 with the real weights. What is tested: the results are the same with and without
the decoding thread, errors and warnings of the reader reach the caller as they did, the
caller's decode limits reach the thread, the thread never outlives the consumer, and decoding
runs a bounded number of frames (and at most one input) ahead.
"""

from __future__ import annotations

import contextvars
import threading
import time
import tracemalloc
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepfake_detect import FeatureCache, backbones, errors, video
from deepfake_detect.extraction import FeatureExtractor, face_crops
from deepfake_detect.faces import CropPolicy, FaceDetector, RetinaFaceDetector
from deepfake_detect.faces.none import WholeFrameDetector
from deepfake_detect.sampling import StrideSampler, UniformSampler
from deepfake_detect.video import VideoWarning, decode_limits

THREAD = "deepfake_detect-decode"


def decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


@pytest.fixture(autouse=True)
def no_thread_left():
    """Every test here ends with no decoding thread alive."""
    yield
    assert not decode_threads()


@pytest.fixture(scope="module")
def backbone(weights):
    return backbones.create({"name": "mobilenet_v1", "alpha": 0.5, "input_size": 128, "weights": weights})


@pytest.fixture(scope="module")
def retinaface():
    return RetinaFaceDetector()


@pytest.fixture(scope="module")
def videos(dataset_dir) -> list[Path]:
    """4 real and 4 fake generated videos (30 frames, 320x240, a real face)."""
    return sorted((dataset_dir / "real").glob("*.mp4"))[:4] + sorted((dataset_dir / "fake").glob("*.mp4"))[:4]


def extractor(backbone, detector, prefetch, cache=None, sampler=None, chunk=3) -> FeatureExtractor:
    return FeatureExtractor(sampler or UniformSampler(8), detector, CropPolicy(), backbone, chunk=chunk, cache=cache,
                            prefetch=prefetch)


def write_video(path: Path, n: int, size=(160, 120)) -> Path:
    rng = np.random.default_rng(n)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    assert writer.isOpened()
    for i in range(n):
        frame = np.full((size[1], size[0], 3), 40, np.uint8)
        frame[:, : (i * 7) % size[0]] = rng.integers(0, 255, 3, dtype=np.uint8)
        writer.write(frame)
    writer.release()
    return path


def assert_same(a, b) -> None:
    fa, ta = a
    fb, tb = b
    assert fa.frames_sampled == fb.frames_sampled
    for name in ("frame_indices", "times", "boxes", "scores", "features"):
        assert np.array_equal(getattr(fa, name), getattr(fb, name)), name
    assert set(ta) == set(tb)


class Produced:
    """Wraps `video.sample_frames`: which thread opened each file, the decode limits it saw,
    and how many frames of each were produced so far."""

    def __init__(self, monkeypatch):
        self.threads: dict[str, str] = {}
        self.limits: dict[str, tuple] = {}
        self.count: dict[str, int] = {}
        self.opened: dict[str, int] = {}
        real = video.sample_frames

        def sample_frames(path, sampler, *args, **kwargs):
            name = Path(path).name
            self.threads[name] = threading.current_thread().name
            context = {var.name: value for var, value in contextvars.copy_context().items()}  # as `decode_limits` set it
            self.limits[name] = context.get("deepfake_detect_decode_limits", (video.DEFAULT_DECODE_TIMEOUT,
                                                                            video.DEFAULT_FRAME_BUDGET))
            self.count[name] = 0
            self.opened[name] = self.opened.get(name, 0) + 1
            info, frames = real(path, sampler, *args, **kwargs)

            def counted():
                for item in frames:
                    self.count[name] += 1
                    yield item

            return info, counted()

        monkeypatch.setattr(video, "sample_frames", sample_frames)


# --- same results ---------------------------------------------------------------------------------
def test_overlap_gives_the_results_of_decoding_in_the_calling_thread(videos, backbone, retinaface, monkeypatch):
    inline = list(extractor(backbone, retinaface, prefetch=0).extract_many(videos))
    produced = Produced(monkeypatch)
    for prefetch in (1, 16):
        overlapped = list(extractor(backbone, retinaface, prefetch=prefetch).extract_many(videos))
        assert len(overlapped) == len(videos)
        for a, b in zip(inline, overlapped):
            assert_same(a, b)
    assert set(produced.threads.values()) == {THREAD}  # decoded in the background thread
    assert all(len(f) >= 6 and f.frames_sampled == 8 for f, _ in inline)
    for _, timings in overlapped:
        assert set(timings) == {"decode", "detect", "crop", "embed"}
        assert all(v > 0 for v in timings.values())
    default = FeatureExtractor(UniformSampler(8), retinaface, CropPolicy(), backbone)
    assert default.prefetch == default.chunk == 16
    assert_same(default.extract(videos[0]), inline[0])
    one = face_crops(videos[1], UniformSampler(8), retinaface, CropPolicy(), 128, chunk=3)
    assert np.array_equal(one.crops, face_crops(videos[1], UniformSampler(8), retinaface, CropPolicy(), 128,
                                                chunk=3, prefetch=0).crops)


def test_overlap_keeps_the_cache_semantics(videos, backbone, retinaface, tmp_path, monkeypatch):
    expected = {p: r for p, r in zip(videos, extractor(backbone, retinaface, prefetch=0).extract_many(videos))}
    a, b, c, d = videos[:4]
    paths = [a, b, b, c, a, d, d]  # the same bytes: neighbours, further apart, and across a batch boundary
    produced = Produced(monkeypatch)
    cache = FeatureCache(tmp_path / "cache.sqlite")
    first = list(extractor(backbone, retinaface, prefetch=2, cache=cache).extract_many(paths, batch=6))
    assert produced.opened == {p.name: 1 for p in paths}  # each file decoded once
    for path, (feats, _) in zip(paths, first):
        assert_same((feats, {}), (expected[path][0], {}))
    computed, hit = {"decode", "detect", "crop", "embed", "cache"}, {"cache"}
    assert [set(t) for _, t in first] == [computed, computed, hit, computed, hit, computed, hit]  # each once
    produced.count.clear()
    produced.opened.clear()
    again = list(extractor(backbone, retinaface, prefetch=2, cache=cache).extract_many(paths, batch=3))
    assert not produced.opened and all(set(t) == {"cache"} for _, t in again)  # all hits: nothing decoded
    for (f1, _), (f2, _) in zip(first, again):
        assert_same((f1, {}), (f2, {}))
    other = extractor(backbone, retinaface, prefetch=2, cache=cache)
    other.fingerprint = "another-backbone"  # other features, the same crops: embedding only
    embedded = list(other.extract_many(paths, batch=3))
    assert not produced.opened
    assert [set(t) for _, t in embedded][:2] == [{"decode", "detect", "crop", "embed", "cache"}] * 2
    assert all(t["decode"] == t["detect"] == 0 for _, t in embedded if "decode" in t)


def test_the_cache_is_asked_once_per_batch_not_once_per_input(videos, backbone, retinaface, tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path / "cache.sqlite")
    list(extractor(backbone, retinaface, prefetch=2, cache=cache).extract_many(videos[:4]))
    reads = []
    for name in ("digests", "get_features", "get_crops"):
        real = getattr(cache, name)
        monkeypatch.setattr(cache, name, lambda *a, _real=real, _name=name, **k: reads.append(_name) or _real(*a, **k))
    other = extractor(backbone, retinaface, prefetch=2, cache=cache)
    other.fingerprint = "another-backbone"  # the crops of all 4 are cached: embedding only
    assert len(list(other.extract_many(videos[:4]))) == 4
    assert reads == ["digests", "get_features", "get_crops"]  # one trip for the 4 inputs
    reads.clear()
    assert len(list(other.extract_many(videos[:4], batch=3))) == 4  # now features hits: no crops read
    assert reads == ["digests", "get_features", "get_crops"] * 2


# --- errors, warnings, limits ---------------------------------------------------------------------
def test_reading_errors_from_the_decoding_thread_reach_the_caller_unchanged(videos, backbone, retinaface, tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    missing = tmp_path / "missing.mp4"
    for bad in (garbage, missing):
        with pytest.raises(errors.VideoReadError) as inline:
            extractor(backbone, retinaface, prefetch=0).extract(bad)
        with pytest.raises(errors.VideoReadError) as threaded:
            extractor(backbone, retinaface, prefetch=4).extract(bad)
        assert type(threaded.value) is type(inline.value) and str(threaded.value) == str(inline.value)
    got = []
    with pytest.raises(errors.VideoReadError, match="garbage.mp4"):  # after the inputs before it, in order
        for feats, _ in extractor(backbone, retinaface, prefetch=4).extract_many([videos[0], videos[1], garbage,
                                                                                  videos[2]]):
            got.append(feats)
    assert len(got) == 2


def test_the_callers_decode_limits_reach_the_decoding_thread(videos, backbone, retinaface, monkeypatch):
    produced = Produced(monkeypatch)
    with decode_limits(decode_timeout=1e-9):
        with pytest.raises(errors.VideoReadError, match="decode_timeout=1e-09"):
            extractor(backbone, retinaface, prefetch=4).extract(videos[0])
    assert produced.threads[videos[0].name] == THREAD
    with decode_limits(decode_timeout=123.0, frame_budget=456):
        list(extractor(backbone, retinaface, prefetch=4).extract_many(videos[:2]))
    assert produced.limits[videos[1].name] == (123.0, 456)  # also for the input decoded ahead
    extractor(backbone, retinaface, prefetch=4).extract(videos[0])
    assert produced.limits[videos[0].name] == (video.DEFAULT_DECODE_TIMEOUT, video.DEFAULT_FRAME_BUDGET)


class LyingCapture:
    """A `cv2.VideoCapture` whose header claims 200 frames."""

    real = cv2.VideoCapture

    def __init__(self, *args):
        self._cap = self.real(*args)

    def get(self, prop: int) -> float:
        return 200.0 if prop == cv2.CAP_PROP_FRAME_COUNT else self._cap.get(prop)

    def __getattr__(self, name):
        return getattr(self._cap, name)


def test_reader_warnings_are_re_emitted_in_the_caller(videos, backbone, retinaface, monkeypatch):
    monkeypatch.setattr(cv2, "VideoCapture", LyingCapture)
    truncated = r"stream ends after 30 frame\(s\) but its header says 200"
    for prefetch in (0, 4):
        with pytest.warns(VideoWarning, match=truncated):
            feats, _ = extractor(backbone, retinaface, prefetch=prefetch).extract(videos[0])
        assert feats.frames_sampled == 1  # of the 8 sampled of 200 claimed frames, only frame 12 exists
    shown = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, category, *a, **k: shown.append(
            (category, str(message), threading.current_thread().name))
        list(extractor(backbone, retinaface, prefetch=4).extract_many(videos[:3]))
    assert [(c, n) for c, _, n in shown if c is VideoWarning] == [(VideoWarning, "MainThread")] * 3
    assert [Path(m.split(":")[0]).name for c, m, _ in shown if c is VideoWarning] == [p.name for p in videos[:3]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoWarning)  # the caller's filters apply
        with pytest.raises(VideoWarning, match=truncated):
            extractor(backbone, retinaface, prefetch=4).extract(videos[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", VideoWarning)
        extractor(backbone, retinaface, prefetch=4).extract(videos[0])
    assert not [w for w in caught if w.category is VideoWarning]


def test_warnings_of_other_threads_are_untouched(videos, backbone, retinaface):
    extractor(backbone, retinaface, prefetch=4).extract(videos[0])  # the warnings hook is installed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thread = threading.Thread(target=lambda: warnings.warn("from a user thread", UserWarning))
        thread.start()
        thread.join()
        warnings.warn("from the main thread", UserWarning)
    assert [str(w.message) for w in caught] == ["from a user thread", "from the main thread"]


# --- the thread stops with the consumer -------------------------------------------------------------
class Failing(FaceDetector):
    """RetinaFace that raises on its `fail_at`-th call."""

    def __init__(self, inner, fail_at: int):
        self.inner, self.fail_at, self.calls = inner, fail_at, 0

    def detect(self, frames):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("detector failed")
        return self.inner.detect(frames)


def slow_grab(monkeypatch, seconds: float) -> None:
    class Slow(LyingCapture):
        def get(self, prop: int) -> float:
            return self._cap.get(prop)

        def grab(self) -> bool:
            time.sleep(seconds)
            return self._cap.grab()

    monkeypatch.setattr(cv2, "VideoCapture", Slow)


def test_no_decoding_thread_outlives_an_early_stop(videos, backbone, retinaface, monkeypatch):
    it = extractor(backbone, retinaface, prefetch=2).extract_many(videos)
    next(it)
    assert len(decode_threads()) == 1  # decoding the next input meanwhile
    it.close()
    assert not decode_threads()
    for _ in extractor(backbone, retinaface, prefetch=2).extract_many(videos):
        break  # the dropped iterator is closed
    assert not decode_threads()
    long = write_video(Path(videos[0]).parent.parent / "long_for_pipeline.mp4", 300)
    slow_grab(monkeypatch, 0.02)  # decoding the long video: over 6 s
    it = extractor(backbone, WholeFrameDetector(), prefetch=2, sampler=StrideSampler(3)).extract_many([videos[0],
                                                                                                        long])
    next(it)  # the long one is being decoded ahead now
    started = time.monotonic()
    it.close()
    assert time.monotonic() - started < 2.0
    assert not decode_threads()


def test_no_decoding_thread_outlives_an_error_in_detection(videos, backbone, retinaface, tmp_path):
    for fail_at in (1, 2, 5):
        with pytest.raises(RuntimeError, match="detector failed"):
            list(extractor(backbone, Failing(retinaface, fail_at), prefetch=2).extract_many(videos))
        assert not decode_threads()
    cache = FeatureCache(tmp_path / "cache.sqlite")
    with pytest.raises(RuntimeError, match="detector failed"):
        list(extractor(backbone, Failing(retinaface, 4), prefetch=2, cache=cache).extract_many(videos))
    assert not decode_threads()
    with pytest.raises(RuntimeError, match="detector failed"):
        face_crops(videos[0], UniformSampler(8), Failing(retinaface, 2), CropPolicy(), 128, chunk=2)


def test_an_early_stop_does_not_wait_for_the_rest_of_a_slow_video(videos, backbone, monkeypatch):
    long = write_video(Path(videos[0]).parent.parent / "long_for_pipeline.mp4", 300)
    slow_grab(monkeypatch, 0.02)  # the whole video: over 6 s of decoding

    class Stop(Exception):
        pass

    class StopAtOnce(FaceDetector):
        def detect(self, frames):
            raise Stop

    started = time.monotonic()
    with pytest.raises(Stop):
        face_crops(long, StrideSampler(1), StopAtOnce(), CropPolicy(), 32, chunk=2, prefetch=2)
    assert time.monotonic() - started < 2.0
    assert not decode_threads()


# --- bounded ---------------------------------------------------------------------------------------
class Watching(FaceDetector):
    """The real detector, slowed down, recording how far decoding ran ahead at each call."""

    def __init__(self, inner, produced: Produced, order: list[str]):
        self.inner, self.produced, self.order = inner, produced, order
        self.consumed: dict[str, int] = {}
        self.seen: list[dict] = []
        self.current = 0

    def detect(self, frames):
        time.sleep(0.05)  # lets the decoding thread run as far ahead as it may
        name = self.order[self.current]
        if self.consumed.get(name, 0) == 8:  # the previous input was done: this is the next one
            self.current += 1
            name = self.order[self.current]
        self.consumed[name] = self.consumed.get(name, 0) + len(frames)
        self.seen.append({"current": self.current, "ahead": self.produced.count[name] - self.consumed[name],
                          "started": [n in self.produced.count for n in self.order]})
        return self.inner.detect(frames)


def test_decoding_runs_at_most_prefetch_frames_and_one_input_ahead(videos, backbone, retinaface, monkeypatch):
    produced = Produced(monkeypatch)
    order = [p.name for p in videos]
    watching = Watching(retinaface, produced, order)
    results = list(extractor(backbone, watching, prefetch=2, chunk=2).extract_many(videos))
    assert len(results) == len(videos) and watching.current == len(videos) - 1
    assert max(s["ahead"] for s in watching.seen) <= 2 + 1  # the queue, and one frame waiting for room
    assert max(s["ahead"] for s in watching.seen) >= 2  # it did run ahead
    for s in watching.seen:
        started = s["started"]
        assert not any(started[s["current"] + 2:])  # at most one input ahead was opened
    assert any(s["started"][s["current"] + 1] for s in watching.seen[:-1] if s["current"] + 1 < len(order))


def test_memory_stays_flat_with_video_length(videos):
    frame_bytes = 160 * 120 * 3

    def peak(path):
        tracemalloc.start()
        try:
            crops = face_crops(path, StrideSampler(1), WholeFrameDetector(), CropPolicy(), 8, chunk=4, prefetch=4)
            return tracemalloc.get_traced_memory()[1], crops
        finally:
            tracemalloc.stop()

    long = write_video(Path(videos[0]).parent.parent / "long_for_memory.mp4", 400)
    used, crops = peak(long)
    assert crops.frames_sampled == 400
    assert used < 25 * frame_bytes, f"{used / frame_bytes:.0f} frames' worth held"  # all 400: 23 MB; about 14 held
