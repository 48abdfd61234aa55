"""The PyAV reader against the OpenCV reader, on real encoded videos.

Both must give the same ``(frame_index, rgb_frame)`` stream: the same indices and the same
pixels (bit for bit: the cache keys features by sampler, not by reader), the same warnings
and errors on broken files. Test videos are written here: mp4v with `cv2.VideoWriter` (a
keyframe every 12 frames), H.264 with B-frames through PyAV's libx264 (skipped where the
`av` wheel lacks it; a keyframe every 10 frames, and one only, as FaceForensics++'s keyframe
every 250 frames), and a few FaceForensics++ c23 videos of ../shared (skipped where absent).
"""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepfake_detect import video as video_mod
from deepfake_detect.video import auto, pyav
from deepfake_detect.errors import VideoReadError
from deepfake_detect.sampling import FixedRateSampler, RandomSampler, StrideSampler, UniformSampler
from deepfake_detect.video import VideoInfo, decode_limits, sample_frames

from .conftest import FFPP, require
from .test_bad_inputs import avi_with_frame_count, faststart
from .test_fuzz import corrupt, mutation_st, originals, read_corrupt, sampler_st  # noqa: F401  (originals: a fixture)
from .test_synthetic import decode_all
from .test_video import H, W, check_frame, make_frame, write_video

av = pytest.importorskip("av", minversion="15")

N = 90  # frames of the generated clips: 3 s at 30 fps
FFPP_FILES = ["real/055.mp4", "fake/Deepfakes_055_147.mp4", "fake/FaceSwap_134_192.mp4"]
SAMPLERS = [UniformSampler(5), UniformSampler(32), UniformSampler(200), FixedRateSampler(fps=1.0),
            FixedRateSampler(fps=10.0, max_frames=3), StrideSampler(7, offset=2), StrideSampler(1),
            RandomSampler(9, seed=4), StrideSampler(40)]


class _NoClock:
    def check(self) -> None:
        pass

    pause = resume = check


def write_h264(path: Path, n: int = N, gop: int = 10, rotation: int | None = None) -> Path:
    """`make_frame`'s frames as H.264 with B-frames, a keyframe every `gop` frames, by PyAV."""
    if "libx264" not in av.codecs_available:
        pytest.skip("this av wheel has no libx264 encoder")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"keyint_min": str(gop), "bframes": "3"}
        if rotation is not None:
            if not hasattr(stream, "set_display_rotation"):
                pytest.skip(f"PyAV {av.__version__} cannot write a display matrix")
            stream.set_display_rotation(rotation)
        for i in range(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(make_frame(i), format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def outcome(path: Path, sampler, reader: str, **kwargs):
    """What reading gives: ("frames", info, indices, frames, warning messages) or ("error", type, message)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            info, frames = sample_frames(path, sampler, reader=reader, **kwargs)
            got = list(frames)
        except VideoReadError as e:
            return "error", type(e), str(e)
    return "frames", info, [i for i, _ in got], [f for _, f in got], [f"{w.category.__name__}: {w.message}"
                                                                      for w in caught]


def assert_same(a, b) -> None:
    assert a[0] == b[0], (a[:3], b[:3])
    if a[0] == "error":
        assert a[1:] == b[1:]
        return
    assert a[1] == b[1]  # the header info
    assert a[2] == b[2]  # the indices
    assert a[4] == b[4]  # the warnings
    for x, y in zip(a[3], b[3]):
        assert x.dtype == y.dtype == np.uint8 and x.shape == y.shape
        np.testing.assert_array_equal(x, y)  # bit for bit


def read_direct(path: Path, wanted: list[int], seek: bool = True, source=None):
    """`pyav.read` itself: the frames, its result and its progress (seeks, restarts, skipping)."""
    info = video_mod.probe(path)
    progress = pyav.Progress()
    source = source or pyav.Source(av, path, _NoClock())
    gen = pyav.read(source, np.asarray(wanted, np.int64), info.frame_count, _NoClock(), True, 32, progress,
                       seek=seek)
    got = []
    while True:
        try:
            got.append(next(gen))
        except StopIteration as stop:
            return got, stop.value, progress


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("readers")
    return {"mp4v": write_video(folder / "mp4v.mp4", n=N), "h264": write_h264(folder / "h264.mp4"),
            "h264 1 key": write_h264(folder / "h264_1key.mp4", gop=250),
            "mjpg": write_video(folder / "mjpg.avi", n=40, fourcc="MJPG")}


@pytest.fixture(scope="module")
def references(clips) -> dict[str, list[np.ndarray]]:
    """Every frame of each clip, read plainly in order by OpenCV."""
    return {name: decode_all(path) for name, path in clips.items()}


# --- the same frames -----------------------------------------------------------------------------
@pytest.mark.parametrize("clip", ["mp4v", "h264", "h264 1 key", "mjpg"])
@pytest.mark.parametrize("sampler", SAMPLERS, ids=repr)
def test_pyav_gives_opencvs_indices_and_pixels(clips, clip, sampler):
    path = clips[clip]
    expected = outcome(path, sampler, "opencv")
    got = outcome(path, sampler, "pyav")
    assert_same(got, expected)
    assert got[2] and not got[4]
    for index, frame in zip(got[2], got[3]):
        check_frame(index, frame)
    assert_same(outcome(path, sampler, "auto"), expected)


@pytest.mark.parametrize("clip", ["mp4v", "h264"])
def test_seeking_lands_on_the_frames_a_sequential_decode_gives(clips, references, clip):
    path = clips[clip]
    wanted = [3, 25, 26, 47, 60, 89]
    got, result, progress = read_direct(path, wanted)
    assert progress.seeks >= 3 and progress.restarts == 0, progress
    assert [i for i, _ in got] == wanted
    assert result == (N, len(wanted), False, False)  # the tail read to the end: no more, no fewer frames
    for index, frame in got:
        np.testing.assert_array_equal(frame, references[clip][index])
    sequential, result, progress = read_direct(path, wanted, seek=False)
    assert progress.seeks == 0 and result == (N, len(wanted), False, False)
    for (i, a), (j, b) in zip(got, sequential):
        assert i == j
        np.testing.assert_array_equal(a, b)


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_sorted_indices_read_by_seeking_are_opencvs_frames(clips, references, data):
    clip = data.draw(st.sampled_from(["mp4v", "h264", "h264 1 key"]))
    wanted = sorted(data.draw(st.sets(st.integers(0, N - 1), min_size=1, max_size=12)))
    got, (position, yielded, ended, longer), progress = read_direct(clips[clip], wanted)
    assert [i for i, _ in got] == wanted and yielded == len(wanted) and not ended and not longer
    assert progress.restarts == 0 and progress.skipping == clip.startswith("h264")
    for index, frame in got:
        np.testing.assert_array_equal(frame, references[clip][index])


# --- skipping non-reference frames -------------------------------------------------------------------
@pytest.mark.parametrize("thread_type", [None, "FRAME", "AUTO"])
def test_skipping_decodes_fewer_frames_and_gives_opencvs_pixels(clips, references, monkeypatch, thread_type):
    """Sparse frames of H.264 with B-frames and one keyframe: the unwanted non-reference frames
    are not decoded (FFmpeg hands skip_frame to its frame threads packet by packet: the same
    count in every threading), and the wanted ones are OpenCV's."""
    monkeypatch.setattr(pyav, "THREAD_TYPE", thread_type)
    path, wanted = clips["h264 1 key"], [4, 31, 32, 50, 77, 88]
    got, result, progress = read_direct(path, wanted)
    assert [i for i, _ in got] == wanted and result == (N, len(wanted), False, False)
    for index, frame in got:
        np.testing.assert_array_equal(frame, references["h264 1 key"][index])
    assert progress.skipping and progress.seeks == 0 and progress.restarts == 0
    source = pyav.Source(av, path, _NoClock())
    table = source.scan(10**9)
    source.close()
    non_ref = table.ref.count(False)  # from the NAL headers: x264's B-frames that no frame references
    assert table.skips and non_ref >= 15 and table.keys == [0]
    skipped = sum(1 for d, ref in enumerate(table.ref) if not ref and table.rank[table.pts[d]] not in wanted
                  and table.rank[table.pts[d]] < wanted[-1])
    assert progress.decoded == N - skipped  # decoded: all but the skipped (the tail up to the end included)
    assert pyav.planned_work(wanted, table.keys, table.work) == wanted[-1] + 1 - skipped
    _, _, sequential = read_direct(path, wanted, seek=False)
    assert not sequential.skipping and sequential.decoded == N


def test_no_skipping_for_codecs_not_checked(clips):
    for clip in ("mp4v", "mjpg"):
        got, _, progress = read_direct(clips[clip], [3, 30])
        assert not progress.skipping and [i for i, _ in got] == [3, 30]


def test_nal_ref_reads_avcc_packets():
    sei, ref_slice, b_slice, idr = b"\x06\x05\x01\x00", b"\x41\x9a\x00", b"\x01\x9e\x00", b"\x65\x88"

    def packet(*nals: bytes) -> bytes:
        return b"".join(len(n).to_bytes(4, "big") + n for n in nals)

    assert pyav.nal_ref(packet(sei, ref_slice), 4) is True
    assert pyav.nal_ref(packet(sei, b_slice), 4) is False
    assert pyav.nal_ref(packet(idr), 4) is True
    assert pyav.nal_ref(packet(sei), 4) is None  # no slice
    assert pyav.nal_ref(packet(b_slice)[:-1], 4) is None  # cut short
    assert pyav.nal_ref(len(b_slice).to_bytes(2, "big") + b_slice, 2) is False


def _read_with_bad_timestamps(path: Path, wanted: list[int], spoil, monkeypatch):
    """`read_direct` where `spoil(frame)` damages the frames of the first (skipping) decode."""
    real, calls = pyav.Source.frames, []

    def frames(self, wanted_set=None):
        calls.append(wanted_set)
        for frame in real(self, wanted_set):
            if len(calls) == 1:
                spoil(frame)
            yield frame

    monkeypatch.setattr(pyav.Source, "frames", frames)
    return read_direct(path, wanted)


@pytest.mark.parametrize("damage", ["missing pts", "pts not in the table", "pts of a later frame"])
def test_skipping_falls_back_to_reading_every_frame_where_a_timestamp_is_wrong(clips, references, monkeypatch,
                                                                              damage):
    path, wanted = clips["h264 1 key"], [20, 45, 80]
    table = pyav.Source(av, path, _NoClock()).scan(10**9)
    later = sorted(table.pts)[60]
    seen = []

    def spoil(frame):
        seen.append(frame.pts)
        if len(seen) == 3:
            frame.pts = {"missing pts": None, "pts not in the table": 10**9 + 7, "pts of a later frame": later}[damage]

    got, result, progress = _read_with_bad_timestamps(path, wanted, spoil, monkeypatch)
    assert progress.restarts == 1 and not progress.skipping  # read again from the start, every frame decoded
    assert [i for i, _ in got] == wanted and result == (N, 3, False, False)
    for index, frame in got:
        np.testing.assert_array_equal(frame, references["h264 1 key"][index])


def test_auto_reads_h264_with_pyav_where_skipping_saves_decoding(clips, monkeypatch, caplog):
    monkeypatch.setattr(auto, "AUTO_MIN_PIXELS", 0)
    sampler = UniformSampler(8)  # one keyframe: no seek pays; skipping does
    with caplog.at_level(logging.DEBUG, logger="deepfake_detect.video"):
        got = outcome(clips["h264 1 key"], sampler, "auto")
    assert "reading with PyAV, seeking and skipping" in caplog.text
    assert_same(got, outcome(clips["h264 1 key"], sampler, "opencv"))
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="deepfake_detect.video"):
        outcome(clips["mp4v"], sampler, "auto")  # no B-frames, a keyframe every 12 frames: OpenCV
    assert "reading with OpenCV: seeking saves too little" in caplog.text


def test_keyframe_table_of_an_mp4v_clip(clips):
    source = pyav.Source(av, clips["mp4v"], _NoClock())
    try:
        table = source.scan(10**9)
    finally:
        source.close()
    assert table.complete and len(table) == N and sorted(table.pts) == table.pts  # no B-frames in mp4v
    # OpenCV's mp4v writer: a keyframe at least every 12 frames (more at the pattern's jumps)
    assert table.keys[:2] == [0, 12] and max(b - a for a, b in zip(table.keys, table.keys[1:])) <= 12
    assert all(table.keyframe[k] for k in table.keys)
    keys = list(range(0, N, 12))
    assert pyav.seek_target(keys, 30, 0) == 24
    assert pyav.seek_target(keys, 30, 22) is None  # decoding on from 22 is cheaper than a seek to 24
    assert pyav.planned_work([5, 30, 80], keys) == 6 + (pyav.SEEK_COST + 7) + (pyav.SEEK_COST + 9)
    assert auto.opencv_work([5, 30, 80], N, True, 32) == N + 1  # every frame, and one past the end


def test_rotated_video_is_turned_as_opencv_turns_it(tmp_path):
    for rotation in (90, 180, 270):
        path = write_h264(tmp_path / f"rot{rotation}.mp4", n=12, rotation=rotation)
        expected = outcome(path, UniformSampler(3), "opencv")
        got = outcome(path, UniformSampler(3), "pyav")
        assert_same(got, expected)
        assert got[3][0].shape == ((W, H, 3) if rotation in (90, 270) else (H, W, 3))


@pytest.mark.parametrize("name", FFPP_FILES)
def test_faceforensics_videos_give_the_same_frames(name):
    path = require(FFPP / name)
    for sampler in (UniformSampler(8), FixedRateSampler(fps=1.0, max_frames=6)):
        expected = outcome(path, sampler, "opencv")
        assert_same(outcome(path, sampler, "pyav"), expected)
        assert len(expected[2]) >= 6


def test_faceforensics_video_read_by_seeking(monkeypatch):
    path = require(FFPP / FFPP_FILES[0])
    info = video_mod.probe(path)
    wanted = [0, 10, info.frame_count - 30, info.frame_count - 1]  # the last two past the second keyframe
    got, _, progress = read_direct(path, wanted)
    assert progress.seeks == 1 and progress.restarts == 0
    expected = dict(sample_frames(path, StrideSampler(1), reader="opencv")[1])
    for index, frame in got:
        np.testing.assert_array_equal(frame, expected[index])


# --- choosing the reader ---------------------------------------------------------------------------
def test_auto_reads_with_pyav_where_seeking_saves_decoding(clips, monkeypatch, caplog):
    path, sampler = clips["mp4v"], StrideSampler(30)  # frames 0, 30, 60: keyframes every 12
    monkeypatch.setattr(auto, "AUTO_MIN_PIXELS", 0)  # the clip is small
    with caplog.at_level(logging.DEBUG, logger="deepfake_detect.video"):
        got = outcome(path, sampler, "auto")
    assert "reading with PyAV, seeking" in caplog.text
    assert_same(got, outcome(path, sampler, "opencv"))
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="deepfake_detect.video"):
        outcome(path, StrideSampler(2), "auto")  # every other frame: no seek can pay, no B-frame to skip
    assert "reading with OpenCV: seeking saves too little" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="deepfake_detect.video"):
        outcome(path, StrideSampler(8), "auto")  # a keyframe every 12 frames: seeks would save a frame or two
    assert "reading with OpenCV: seeking saves too little" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="deepfake_detect.video"):
        outcome(path, StrideSampler(1), "auto")  # every frame: PyAV is not even opened
    assert "reading with OpenCV: every frame up to the last sampled one is sampled" in caplog.text


def test_auto_reads_small_jobs_with_opencv_without_opening_pyav(clips, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("PyAV opened")

    monkeypatch.setattr(pyav.Source, "__init__", refuse)
    assert_same(outcome(clips["mp4v"], StrideSampler(30), "auto"), outcome(clips["mp4v"], StrideSampler(30), "opencv"))


def test_auto_falls_back_to_opencv_where_av_is_not_importable(clips, monkeypatch, caplog):
    monkeypatch.setattr(auto, "AUTO_MIN_PIXELS", 0)
    expected = outcome(clips["mp4v"], StrideSampler(30), "opencv")
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    assert pyav.import_av() is None
    with caplog.at_level(logging.DEBUG, logger="deepfake_detect.video"):
        assert_same(outcome(clips["mp4v"], StrideSampler(30), "auto"), expected)  # no warning either
    assert "PyAV is not importable" in caplog.text
    with pytest.raises(ImportError, match=r"reader='pyav' needs PyAV 15 or newer: pip install 'av>=15'"):
        sample_frames(clips["mp4v"], StrideSampler(30), reader="pyav")


def test_auto_falls_back_to_opencv_where_pyav_cannot_open_the_file(clips, monkeypatch, caplog):
    monkeypatch.setattr(auto, "AUTO_MIN_PIXELS", 0)
    expected = outcome(clips["mp4v"], StrideSampler(30), "opencv")

    def broken_open(*args, **kwargs):
        raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")

    monkeypatch.setattr(av, "open", broken_open)
    with caplog.at_level(logging.DEBUG, logger="deepfake_detect.video"):
        assert_same(outcome(clips["mp4v"], StrideSampler(30), "auto"), expected)
    assert "reading with OpenCV: PyAV fails on it" in caplog.text
    got = outcome(clips["mp4v"], StrideSampler(30), "pyav")
    assert got[0] == "error" and str(clips["mp4v"]) in got[2] and "PyAV cannot open it as a video" in got[2]


def test_auto_hands_over_to_opencv_where_pyav_fails_midway(clips, monkeypatch, caplog):
    monkeypatch.setattr(auto, "AUTO_MIN_PIXELS", 0)
    sampler = StrideSampler(30)
    expected = outcome(clips["mp4v"], sampler, "opencv")
    real, calls = pyav.to_rgb, []

    def failing(frame):
        calls.append(frame)
        if len(calls) == 3:
            raise RuntimeError("decoder died")
        return real(frame)

    monkeypatch.setattr(pyav, "to_rgb", failing)
    with caplog.at_level(logging.DEBUG, logger="deepfake_detect.video"):
        got = outcome(clips["mp4v"], sampler, "auto")
    assert_same(got, expected)  # frames 0 and 30 from PyAV, then 60 from OpenCV: none twice, none lost
    assert "PyAV failed after 2 frame(s)" in caplog.text
    calls.clear()
    got = outcome(clips["mp4v"], sampler, "pyav")
    assert got[0] == "error" and "PyAV failed while reading it: RuntimeError: decoder died" in got[2]


def test_auto_reads_with_pyav_whatever_ffmpeg_releases_the_wheels_carry(clips, monkeypatch, caplog):
    """PyAV and OpenCV decode the same pixels across FFmpeg major releases (benchmarks/reader_pixels.py;
    the tests above check it on the builds installed), so "auto" does not look at the versions."""
    monkeypatch.setattr(auto, "AUTO_MIN_PIXELS", 0)
    expected = outcome(clips["mp4v"], StrideSampler(30), "opencv")
    for major in (58, 61, 99):
        monkeypatch.setitem(av.library_versions, "libavcodec", (major, 0, 0))
        monkeypatch.setitem(av.library_versions, "libswscale", (major % 10, 0, 0))
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="deepfake_detect.video"):
            got = outcome(clips["mp4v"], StrideSampler(30), "auto")
        assert "reading with PyAV, seeking" in caplog.text
        assert_same(got, expected)


def test_auto_leaves_a_lying_header_to_opencv(monkeypatch, scene_frames, tmp_path, caplog):
    monkeypatch.setattr(auto, "AUTO_MIN_PIXELS", 0)
    path = avi_with_frame_count(tmp_path / "more.avi", scene_frames, claimed=200)
    with caplog.at_level(logging.DEBUG, logger="deepfake_detect.video"):
        got = outcome(path, StrideSampler(12), "auto")
    assert "its demuxer finds 20 frames where its header says 200" in caplog.text
    assert_same(got, outcome(path, StrideSampler(12), "opencv"))


# --- settings ----------------------------------------------------------------------------------------
def test_reader_argument_and_context_are_checked(clips):
    for bad in ("PyAV", "ffmpeg", "", 1, True):
        with pytest.raises(ValueError, match=r"reader must be one of 'auto', 'pyav', 'opencv'; got"):
            sample_frames(clips["mp4v"], UniformSampler(3), reader=bad)
        with pytest.raises(ValueError, match="reader must be one of"):
            with decode_limits(reader=bad):
                pass
    assert video_mod.DEFAULT_READER == "auto" and video_mod.READERS == ("auto", "pyav", "opencv")


def test_decode_limits_reader_reaches_sample_frames(clips, monkeypatch):
    monkeypatch.setattr(pyav, "Source", None)  # any PyAV read would fail
    with decode_limits(reader="opencv"):
        assert len(list(sample_frames(clips["mp4v"], StrideSampler(30))[1])) == 3
        with decode_limits(decode_timeout=30.0):  # a nested block keeps the reader
            assert len(list(sample_frames(clips["mp4v"], StrideSampler(30))[1])) == 3
        with pytest.raises(TypeError):
            list(sample_frames(clips["mp4v"], StrideSampler(30), reader="pyav")[1])  # the argument wins


def test_pyav_reader_keeps_decode_timeout_and_frame_budget(clips, monkeypatch):
    with pytest.raises(VideoReadError, match=r"mp4v.mp4: decoding took longer than decode_timeout=1e-09 s"):
        list(sample_frames(clips["mp4v"], StrideSampler(4), reader="pyav", decode_timeout=1e-9)[1])
    with decode_limits(decode_timeout=1e-9, reader="pyav"):
        with pytest.raises(VideoReadError, match="decode_timeout=1e-09"):
            list(sample_frames(clips["mp4v"], StrideSampler(4))[1])
    real_probe = video_mod.probe

    def probe_without_count(path):
        info = real_probe(path)
        return VideoInfo(info.path, 0, info.fps, info.width, info.height)

    monkeypatch.setattr(video_mod, "probe", probe_without_count)
    with pytest.warns(video_mod.VideoWarning, match=r"only its first 20 frames \(frame_budget\)"):
        info, frames = sample_frames(clips["mp4v"], UniformSampler(4), frame_budget=20, reader="pyav")
    assert info.frame_count == 20 and [i for i, _ in frames] == [2, 7, 12, 17]


def test_pyav_iterator_can_be_abandoned(clips):
    _, frames = sample_frames(clips["h264"], StrideSampler(1), reader="pyav")
    index, rgb = next(frames)
    check_frame(index, rgb)
    frames.close()
    assert len(list(sample_frames(clips["h264"], StrideSampler(1), reader="pyav")[1])) == N


# --- broken files: what OpenCV's reader does ---------------------------------------------------------
@pytest.fixture(scope="module")
def scene_frames() -> list[np.ndarray]:
    return [make_frame(i)[:, :, ::-1].copy() for i in range(20)]  # RGB


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, scene_frames) -> dict[str, Path]:
    from .test_bad_inputs import write_video as write_rgb

    tmp_path = tmp_path_factory.mktemp("hostile")
    files = {}
    whole = write_video(tmp_path / "whole.avi", n=50, fps=25.0, fourcc="MJPG").read_bytes()
    files["truncated avi"] = tmp_path / "cut.avi"
    files["truncated avi"].write_bytes(whole[: len(whole) // 2])
    fast = faststart(write_rgb(tmp_path / "w.mp4", scene_frames + scene_frames[:10], fps=10.0).read_bytes())
    files["truncated streamable mp4"] = tmp_path / "cut.mp4"
    files["truncated streamable mp4"].write_bytes(fast[: len(fast) // 2])
    files["header: more frames"] = avi_with_frame_count(tmp_path / "more.avi", scene_frames, claimed=200)
    files["header: fewer frames"] = avi_with_frame_count(tmp_path / "fewer.avi", scene_frames, claimed=5)
    files["header: more frames than bytes"] = avi_with_frame_count(tmp_path / "huge.avi", scene_frames[:12],
                                                                   claimed=2**32 - 1)
    data = bytearray(write_rgb(tmp_path / "t.mp4", scene_frames, fps=10.0).read_bytes())
    mdhd = data.find(b"mdhd")
    data[mdhd + 16:mdhd + 20] = b"\0\0\0\0"  # a media timescale of 0
    files["timescale 0"] = tmp_path / "timescale0.mp4"
    files["timescale 0"].write_bytes(bytes(data))
    whole = write_video(tmp_path / "w2.mp4", n=20).read_bytes()
    files["truncated mp4 (no index)"] = tmp_path / "cut2.mp4"
    files["truncated mp4 (no index)"].write_bytes(whole[: len(whole) // 2])
    rng = np.random.default_rng(0)
    files["random bytes"] = tmp_path / "noise.mp4"
    files["random bytes"].write_bytes(rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    files["text"] = tmp_path / "notes.mp4"
    files["text"].write_text("this is not a video\n" * 50)
    return files


HOSTILE = ["truncated avi", "truncated streamable mp4", "header: more frames", "header: fewer frames",
           "header: more frames than bytes", "timescale 0", "truncated mp4 (no index)", "random bytes", "text"]


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("sampler", [StrideSampler(5), UniformSampler(4), FixedRateSampler(fps=5.0, max_frames=6)],
                         ids=repr)
def test_broken_files_read_by_pyav_as_by_opencv(hostile, kind, sampler):
    path = hostile[kind]
    expected = outcome(path, sampler, "opencv")
    for reader in ("pyav", "auto"):
        got = outcome(path, sampler, reader)
        if expected[0] == "error":
            assert got[0] == "error" and str(path) in got[2]
        else:
            assert_same(got, expected)
    if kind.startswith(("truncated", "header: more frames", "header: fewer", "timescale")) and "bytes" not in kind:
        assert expected[0] == "error" or expected[4], "a broken file warns"  # (an impossible count is recounted)


def test_a_file_neither_reader_can_read_raises_video_read_error(tmp_path, monkeypatch):
    monkeypatch.setattr(auto, "AUTO_MIN_PIXELS", 0)
    path = tmp_path / "vidéo cassée.mp4"
    path.write_bytes(b"\0\0\0\x18ftypisom" + bytes(range(256)) * 40)
    for reader in video_mod.READERS:
        with pytest.raises(VideoReadError, match="vidéo cassée.mp4"):
            list(sample_frames(path, UniformSampler(4), reader=reader)[1])


def test_video_info_is_opencvs_whatever_the_reader(clips):
    for reader in video_mod.READERS:
        info, _ = sample_frames(clips["h264"], UniformSampler(2), reader=reader)
        assert info == video_mod.probe(clips["h264"])
        assert info.frame_count == N and info.fps == pytest.approx(30.0) and not math.isnan(info.duration)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(container=st.sampled_from(["mp4", "mp4 streamable", "avi"]),
       mutations=st.lists(mutation_st, min_size=1, max_size=6), sampler=sampler_st,
       reader=st.sampled_from(["pyav", "auto"]))
def test_corrupt_video_bytes_read_by_pyav_give_frames_or_a_typed_error(originals, monkeypatch, container, mutations,
                                                                       sampler, reader):
    """test_fuzz's damaged files, read with PyAV (and by "auto", made to consider PyAV however
    small the file): frames as asked (or fewer), or `VideoReadError` naming the file."""
    monkeypatch.setattr(auto, "AUTO_MIN_PIXELS", 0)
    data, span, fields = originals[container]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzzed.{container[:3]}"
        path.write_bytes(corrupt(data, span, fields, mutations))
        with decode_limits(reader=reader):
            read_corrupt(path, sampler)
