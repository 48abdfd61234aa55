"""Fuzzing with hypothesis: corrupt video bytes and random dataset trees.

Video bytes start from small valid files (an mp4v MP4 and an MJPG AVI, written by OpenCV) and
are damaged the ways uploads and re-muxers damage them: byte flips anywhere or in the container
header, truncations, insertions and deletions. Reading one must give frames as the sampler
asked (or fewer, where the stream ends early) or `VideoReadError` naming the file: never
another exception, never a hang (a decode timeout bounds every file). Dataset trees mix
real/fake and FaceForensics++ folders with videos, images, text, empty files, duplicates,
dangling links and link loops: `discover` returns consistent samples or raises `DatasetError`.

The run is bounded by `max_examples` (about a minute on two busy cores). `-s` prints what the
cases did.
"""

from __future__ import annotations

import collections
import os
import struct
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepfake_detect import DeepfakeDetector
from deepfake_detect.datasets import discover
from deepfake_detect.errors import DatasetError, VideoReadError
from deepfake_detect.sampling import FixedRateSampler, RandomSampler, StrideSampler, UniformSampler
from deepfake_detect.video import VideoWarning, decode_limits, sample_frames

from .test_bad_inputs import TinyConv, faststart  # noqa: F401  (registers the "test_tiny_conv" backbone)

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TALLY: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print("\nfuzz outcomes:", ", ".join(f"{k}: {v}" for k, v in sorted(TALLY.items())))


# --- corrupt video bytes -------------------------------------------------------------------------
def _frames(n: int = 12, w: int = 64, h: int = 48) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, : w // 2] = (40 + 15 * i, 90, 200)
        cv2.circle(f, (w // 2 + i, h // 2), 10, (255, 255, 255), -1)
        frames.append(f)
    return frames


def _header_span(data: bytes, container: str) -> tuple[int, int]:
    """Where the container's index/header lies: the moov atom of an MP4, what precedes movi in an AVI."""
    if container == "avi":
        return 0, data.find(b"movi")
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"moov":
            return at, at + size
        at += size
    raise AssertionError("no moov atom")


# the header fields that say how many frames, how fast and how large: (box, offset of the field after
# the start of the box's 4-character name); lying values there are how re-muxed and hostile files mislead
_FIELDS = {
    "avi": [(b"avih", 8), (b"avih", 24), (b"avih", 40), (b"avih", 44), (b"strh", 28), (b"strh", 32), (b"strh", 40)],
    "mp4": [(b"mvhd", 16), (b"mdhd", 16), (b"mdhd", 20), (b"stts", 8), (b"stts", 12), (b"stts", 16), (b"stsz", 12),
            (b"stsz", 8), (b"stco", 8), (b"tkhd", 80), (b"tkhd", 84)],
}


def _fields(data: bytes, container: str) -> list[int]:
    return [data.find(box) + offset for box, offset in _FIELDS[container[:3]] if data.find(box) >= 0]


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, tuple[bytes, tuple[int, int], list[int]]]:
    folder = tmp_path_factory.mktemp("originals")
    out = {}
    for container, fourcc in (("mp4", "mp4v"), ("avi", "MJPG")):
        path = folder / f"clip.{container}"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (64, 48))
        for frame in _frames():
            writer.write(frame)
        writer.release()
        out[container] = path.read_bytes()
    out["mp4 streamable"] = faststart(out["mp4"])  # the index first, as streaming uploads have it: a cut keeps it
    return {name: (data, _header_span(data, name[:3]), _fields(data, name)) for name, data in out.items()}


_U32 = [0, 1, 7, 1000, 2**31 - 1, 2**32 - 1, 0xFFFF0000]
mutation_st = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2**31), st.integers(1, 255)),
    st.tuples(st.just("flip header"), st.integers(0, 2**31), st.integers(1, 255)),
    st.tuples(st.just("set header u32"), st.integers(0, 2**31), st.sampled_from(_U32)),
    st.tuples(st.just("set field"), st.integers(0, 2**31), st.sampled_from(_U32)),
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(st.just("insert"), st.integers(0, 2**31), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.integers(0, 2**31), st.integers(1, 256)),
)
sampler_st = st.sampled_from([UniformSampler(4), FixedRateSampler(fps=5.0, max_frames=6),
                              StrideSampler(3, max_frames=5), RandomSampler(3, seed=1), FixedRateSampler()])


def corrupt(data: bytes, span: tuple[int, int], fields: list[int], mutations) -> bytes:
    out = bytearray(data)
    order = "<I" if data[:4] == b"RIFF" else ">I"
    for kind, *args in mutations:
        if not out:
            break
        if kind == "flip":
            out[args[0] % len(out)] ^= args[1]
        elif kind == "flip header":
            start, end = span
            out[min(start + args[0] % max(end - start, 1), len(out) - 1)] ^= args[1]
        elif kind == "set header u32":
            start, end = span
            at = min(start + args[0] % max(end - start - 4, 1), max(len(out) - 4, 0))
            out[at:at + 4] = struct.pack(order, args[1])
        elif kind == "set field":  # at the original offset, even if earlier mutations moved things
            at = min(fields[args[0] % len(fields)], max(len(out) - 4, 0))
            out[at:at + 4] = struct.pack(order, args[1])
        elif kind == "truncate":
            del out[int(args[0] * len(out)):]
        elif kind == "insert":
            at = args[0] % (len(out) + 1)
            out[at:at] = args[1]
        else:
            at = args[0] % len(out)
            del out[at:at + args[1]]
    return bytes(out)


def read_corrupt(path: Path, sampler) -> str:
    """Reads a damaged file as the library would; returns what happened, asserting it is allowed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            info, frames = sample_frames(path, sampler, decode_timeout=10.0, frame_budget=2_000)
            got = list(frames)
        except VideoReadError as e:
            assert str(path) in str(e), e
            return "VideoReadError"
    assert all(issubclass(w.category, VideoWarning) for w in caught), [str(w.message) for w in caught]
    indices = [i for i, _ in got]
    assert indices == sorted(set(indices)) and all(0 <= i < max(info.frame_count, 1) for i in indices)
    for _, rgb in got:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.size > 0
    if not got:
        return "no frame sampled"
    return "frames, with a VideoWarning" if caught else "frames"


@settings(FUZZ, max_examples=500)
@given(container=st.sampled_from(["mp4", "mp4 streamable", "avi"]),
       mutations=st.lists(mutation_st, min_size=1, max_size=6), sampler=sampler_st)
def test_corrupt_video_bytes_give_frames_or_a_typed_error(originals, container, mutations, sampler):
    data, span, fields = originals[container]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzzed.{container[:3]}"
        path.write_bytes(corrupt(data, span, fields, mutations))
        TALLY[f"video bytes ({container}): {read_corrupt(path, sampler)}"] += 1


@pytest.fixture(scope="module")
def crops_detector(tmp_path_factory) -> DeepfakeDetector:
    """A fitted detector that takes every frame as a face ("none" detector): the whole pipeline
    runs on whatever a damaged file decodes to."""
    root = tmp_path_factory.mktemp("crops")
    for label, colour in (("real", 60), ("fake", 180)):
        (root / label).mkdir()
        for i in range(3):
            cv2.imwrite(str(root / label / f"{i}.png"), np.full((32, 32, 3), colour + 10 * i, np.uint8))
    detector = DeepfakeDetector(sampler={"name": "uniform", "n": 4}, face_detector="none",
                                backbone={"name": "test_tiny_conv"}, head={"name": "logistic", "epochs": 1},
                                cache=None)
    detector.fit(root, verbose=0, validation_split=0)
    return detector


@settings(FUZZ, max_examples=60)
@given(container=st.sampled_from(["mp4", "mp4 streamable", "avi"]),
       mutations=st.lists(mutation_st, min_size=1, max_size=4))
def test_corrupt_videos_through_predict_video(originals, crops_detector, container, mutations):
    data, span, fields = originals[container]
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoWarning)
        path = Path(folder) / f"fuzzed.{container[:3]}"
        path.write_bytes(corrupt(data, span, fields, mutations))
        try:
            with decode_limits(decode_timeout=10.0, frame_budget=2_000):
                pred = crops_detector.predict_video(path)
        except VideoReadError as e:
            assert str(path) in str(e)
            TALLY["predict_video: VideoReadError"] += 1
            return
    if pred.label == "unknown":
        assert pred.p_fake is None and pred.reason and pred.frames_sampled == 0
    else:
        assert pred.label in ("real", "fake") and 0.0 <= pred.p_fake <= 1.0 and pred.faces_found >= 1
    TALLY[f"predict_video: {pred.label}"] += 1


# --- random dataset trees -----------------------------------------------------------------------------
FOLDERS = ["real", "fake", "Real", "FAKE", "x", "a b", "vidéos", "original_sequences", "manipulated_sequences",
           "Deepfakes", "youtube", "c23", "c40", "masks", "videos", "real fake"]
NAMES = ["000.mp4", "000_003.mp4", "Deepfakes_000_003.mp4", "clip.MP4", "a.png", "b.jpg", "notes.txt",
         "01__walk.mp4", "noext", ".hidden.mp4", "ü.avi"]
entry_st = st.tuples(
    st.one_of(st.tuples(st.sampled_from(["real", "fake"])).map(list), st.lists(st.sampled_from(FOLDERS), max_size=4)),
    st.sampled_from(NAMES),
    st.sampled_from(["bytes", "bytes", "bytes", "same bytes", "empty", "folder", "link to file", "link to folder",
                     "dangling link", "link loop", "unreadable"]),
)
csv_st = st.one_of(st.none(), st.none(), st.none(),
                   st.lists(st.tuples(st.sampled_from(NAMES + ["missing.mp4", "../out.mp4"]),
                                      st.sampled_from(["real", "fake", "0", "1", "REAL", "maybe", ""]),
                                      st.sampled_from(["", "g1", "g2"])), max_size=6))


def build_tree(root: Path, entries, csv_rows) -> None:
    root.mkdir()
    for n, (folders, name, kind) in enumerate(entries):
        parent = root.joinpath(*folders)
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            continue  # a file already has that name
        path = parent / name
        if path.exists() or path.is_symlink():
            continue
        if kind == "bytes":
            path.write_bytes(b"frame data %d" % n)
        elif kind == "same bytes":
            path.write_bytes(b"shared bytes")
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "folder":
            path.mkdir()
        elif kind == "link to file":
            path.symlink_to(root / "target.mp4")
        elif kind == "link to folder":
            path.symlink_to(root, target_is_directory=True)
        elif kind == "dangling link":
            path.symlink_to(root / "gone")
        elif kind == "link loop":
            path.symlink_to(path.name)
        else:
            path.write_bytes(b"secret")
            path.chmod(0)
    if csv_rows is not None:
        lines = ["path,label,group"] + [",".join(row) for row in csv_rows]
        (root / "labels.csv").write_text("\n".join(lines) + "\n")


@settings(FUZZ, max_examples=200)
@given(entries=st.lists(entry_st, max_size=14), csv_rows=csv_st)
def test_random_dataset_trees_discover_or_raise_dataset_error(entries, csv_rows):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "target.mp4").write_bytes(b"linked bytes")
        build_tree(root / "data", entries, csv_rows)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                samples = discover(root / "data")
        except DatasetError as e:
            assert str(root / "data") in str(e) or "labels.csv" in str(e) or "/" in str(e)
            TALLY["dataset tree: DatasetError"] += 1
            return
        finally:
            for path in root.rglob("*"):  # let the temporary folder be removed
                if not path.is_symlink() and path.exists():
                    os.chmod(path, 0o755)
        assert all("same bytes" in str(w.message) for w in caught), [str(w.message) for w in caught]
        assert {s.label for s in samples} == {0, 1}
        assert [s.path for s in samples] == sorted(s.path for s in samples)
        assert len({s.path for s in samples}) == len(samples)
        for s in samples:
            assert os.path.isfile(s.path) and isinstance(s.group, str) and s.group
        TALLY["dataset tree: samples"] += 1
