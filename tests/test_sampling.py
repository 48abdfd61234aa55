"""Property-based tests of the frame samplers (`deepfake_detect.sampling`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from deepfake_detect.registry import Configurable
from deepfake_detect.sampling import (
    FixedRateSampler,
    FrameSampler,
    RandomSampler,
    StrideSampler,
    UniformSampler,
    samplers,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------

max_frames_st = st.one_of(st.none(), st.integers(1, 500))

fixed_rate_st = st.builds(
    FixedRateSampler,
    fps=st.one_of(
        st.floats(min_value=0.01, max_value=240.0),
        st.sampled_from([0.5, 1, 1.0, 2, 5, 30]),
        st.floats(min_value=1e-9, max_value=1e9),  # extreme but valid rates
    ),
    max_frames=max_frames_st,
    fallback_fps=st.one_of(st.floats(min_value=0.1, max_value=240.0), st.just(25.0)),
)
uniform_st = st.builds(UniformSampler, n=st.integers(1, 300))
stride_st = st.builds(StrideSampler, k=st.integers(1, 300), offset=st.integers(0, 300), max_frames=max_frames_st)
random_st = st.builds(RandomSampler, n=st.integers(1, 300), seed=st.integers(0, 2**32))
any_sampler_st = st.one_of(fixed_rate_st, uniform_st, stride_st, random_st)

# frame counts: mostly ordinary, sometimes degenerate (negative, 0, 1) or long
frame_count_st = st.one_of(
    st.integers(-10, 2_000),
    st.sampled_from([-1, 0, 1, 2, 3]),
    st.integers(2_000, 50_000),
)
# a container's fps: ordinary, broken (0, negative, NaN, inf), tiny or huge, int or float
good_fps_st = st.one_of(
    st.sampled_from([24.0, 25.0, 30.0, 30000 / 1001, 50.0, 60.0, 120.0]),
    st.floats(min_value=0.1, max_value=1000.0),
)
any_fps_st = st.one_of(
    good_fps_st,
    st.sampled_from([0, 0.0, -0.0, -1.0, -25.0, math.nan, math.inf, -math.inf, 5e-324, 1e-300, 1e300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-100, 10_000),
    st.floats(min_value=0.1, max_value=1000.0).map(np.float32),
    st.integers(1, 240).map(np.int64),
)


def effective_fps(sampler: FixedRateSampler, fps: object) -> float:
    """The video frame rate FixedRateSampler is documented to use (fallback for a broken header)."""
    if isinstance(fps, (str, bytes, bool)):
        return sampler.fallback_fps
    try:
        f = float(fps)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return sampler.fallback_fps
    return f if math.isfinite(f) and f > 0 else sampler.fallback_fps


def check_valid(idx: np.ndarray, frame_count: int) -> None:
    assert isinstance(idx, np.ndarray)
    assert idx.dtype == np.int64
    assert idx.ndim == 1
    if idx.size:
        assert np.all(np.diff(idx) > 0), "indices must be strictly increasing (sorted and unique)"
        assert idx[0] >= 0
        assert idx[-1] < frame_count
    else:
        assert idx.shape == (0,)


# ---------------------------------------------------------------------------------------------
# properties common to every sampler
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(sampler=any_sampler_st, frame_count=frame_count_st, fps=any_fps_st)
def test_output_is_valid_for_any_input(sampler: FrameSampler, frame_count: int, fps: float) -> None:
    idx = sampler.indices(frame_count, fps)
    check_valid(idx, frame_count)
    if frame_count <= 0:
        assert idx.size == 0


@SETTINGS
@given(sampler=any_sampler_st, frame_count=frame_count_st, fps=any_fps_st)
def test_deterministic_and_call_equals_indices(sampler: FrameSampler, frame_count: int, fps: float) -> None:
    a = sampler.indices(frame_count, fps)
    b = sampler.indices(frame_count, fps)
    twin = type(sampler)(**sampler.get_config())
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, twin.indices(frame_count, fps))
    np.testing.assert_array_equal(a, sampler(frame_count, fps))


@SETTINGS
@given(sampler=any_sampler_st)
def test_config_round_trip(sampler: FrameSampler) -> None:
    assert isinstance(sampler, Configurable)
    config = sampler.get_config()
    rebuilt = type(sampler).from_config(config)
    assert rebuilt == sampler
    assert rebuilt.get_config() == config
    assert hash(rebuilt) == hash(sampler)
    # through the registry, as saved models do
    spec = samplers.serialize(sampler)
    assert spec["name"] == type(sampler).registry_name
    again = samplers.create(spec)
    assert type(again) is type(sampler) and again == sampler
    np.testing.assert_array_equal(again.indices(1234, 30.0), sampler.indices(1234, 30.0))


@pytest.mark.parametrize(
    "sampler",
    [FixedRateSampler(), FixedRateSampler(fps=1000.0), UniformSampler(1), UniformSampler(32), StrideSampler(5),
     RandomSampler(8, seed=3)],
    ids=repr,
)
@pytest.mark.parametrize("fps", [0, 0.0, -1, -30.0, math.nan, math.inf, -math.inf, None, "30", 30.0])
def test_degenerate_frame_counts(sampler: FrameSampler, fps: object) -> None:
    for frame_count in (-(10**9), -5, -1, 0):
        idx = sampler.indices(frame_count, fps)  # type: ignore[arg-type]
        check_valid(idx, 0)
        assert idx.size == 0
    idx = sampler.indices(1, fps)  # type: ignore[arg-type]
    check_valid(idx, 1)
    assert idx.tolist() == [0]
    idx = sampler.indices(2, fps)  # type: ignore[arg-type]
    check_valid(idx, 2)
    assert 1 <= idx.size <= 2


# ---------------------------------------------------------------------------------------------
# FixedRateSampler
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(
    fps=st.floats(min_value=0.05, max_value=120.0),
    fallback=st.floats(min_value=0.1, max_value=240.0),
    frame_count=frame_count_st.filter(lambda n: n > 0),
    video_fps=any_fps_st,
)
def test_fixed_rate_count_and_spacing(fps: float, fallback: float, frame_count: int, video_fps: float) -> None:
    sampler = FixedRateSampler(fps=fps, fallback_fps=fallback)
    idx = sampler.indices(frame_count, video_fps)
    check_valid(idx, frame_count)
    vfps = effective_fps(sampler, video_fps)
    duration = frame_count / vfps
    # about duration * fps samples (never more than there are frames, never none)
    assert idx.size >= 1
    assert abs(idx.size - min(frame_count, duration * fps)) <= 1 + 1e-6
    assert idx[0] == 0
    if idx.size >= 2:
        step = max(vfps / fps, 1.0)  # video frames between samples
        gaps = np.diff(idx)
        assert np.all(np.abs(gaps - step) < 1 + 1e-6), (gaps, step)


@SETTINGS
@given(
    fps=st.floats(min_value=0.05, max_value=120.0),
    max_frames=st.integers(1, 200),
    frame_count=frame_count_st.filter(lambda n: n > 0),
    video_fps=any_fps_st,
)
def test_fixed_rate_max_frames(fps: float, max_frames: int, frame_count: int, video_fps: float) -> None:
    full = FixedRateSampler(fps=fps).indices(frame_count, video_fps)
    capped = FixedRateSampler(fps=fps, max_frames=max_frames).indices(frame_count, video_fps)
    check_valid(capped, frame_count)
    assert capped.size == min(full.size, max_frames)
    assert set(capped.tolist()) <= set(full.tolist())
    if full.size <= max_frames:
        np.testing.assert_array_equal(capped, full)
    elif max_frames >= 2:
        # evenly thinned: spread over the whole video, not just its start
        assert capped[-1] >= full[full.size // 2]


@SETTINGS
@given(frame_count=frame_count_st, video_fps=any_fps_st, fallback=st.floats(min_value=0.1, max_value=240.0))
def test_fixed_rate_broken_header_uses_fallback(frame_count: int, video_fps: float, fallback: float) -> None:
    sampler = FixedRateSampler(fps=1.0, fallback_fps=fallback)
    expected = sampler.indices(frame_count, effective_fps(sampler, video_fps))
    np.testing.assert_array_equal(sampler.indices(frame_count, video_fps), expected)


@pytest.mark.parametrize("broken", [0, 0.0, -0.0, -1, -29.97, math.nan, math.inf, -math.inf, None, "25"])
def test_fixed_rate_fallback_fps_examples(broken: object) -> None:
    sampler = FixedRateSampler(fps=1.0, fallback_fps=10.0)
    # 100 frames at the fallback 10 fps: 10 s of video, one frame per second
    assert sampler.indices(100, broken).tolist() == list(range(0, 100, 10))  # type: ignore[arg-type]


def test_fixed_rate_examples() -> None:
    s = FixedRateSampler(fps=1.0)
    assert s.indices(300, 30.0).tolist() == list(range(0, 300, 30))
    assert s.indices(301, 30.0).tolist() == list(range(0, 301, 30))
    assert s.indices(10, 30.0).tolist() == [0]
    assert FixedRateSampler(fps=2.0).indices(90, 30.0).tolist() == list(range(0, 90, 15))
    # NTSC rate: one frame a second, gaps of 29 or 30 frames
    idx = s.indices(3000, 30000 / 1001)
    assert set(np.diff(idx).tolist()) <= {29, 30}
    assert idx.size == math.floor(2999 / (30000 / 1001)) + 1
    # a rate above the video's: every frame, once
    assert FixedRateSampler(fps=60.0).indices(7, 25.0).tolist() == list(range(7))
    assert FixedRateSampler(fps=1.0).indices(3, 0.5).tolist() == [0, 1, 2]
    # numpy scalars from a header or a table are frame rates too
    assert s.indices(100, np.float32(50.0)).tolist() == [0, 50]
    assert s.indices(100, np.int64(50)).tolist() == [0, 50]
    # max_frames thins evenly
    assert FixedRateSampler(fps=1.0, max_frames=3).indices(300, 10.0).tolist() == [50, 150, 250]


@pytest.mark.parametrize("video_fps", [5e-324, 1e-300, 1e-12, 1e12, 1e300, 1.7976931348623157e308])
@pytest.mark.parametrize("fps", [1e-9, 1.0, 1e9, 1e300])
def test_fixed_rate_extreme_rates_do_not_blow_up(video_fps: float, fps: float) -> None:
    sampler = FixedRateSampler(fps=fps, max_frames=16)
    for frame_count in (1, 2, 1000, 50_000):
        idx = sampler.indices(frame_count, video_fps)
        check_valid(idx, frame_count)
        assert 1 <= idx.size <= 16


# ---------------------------------------------------------------------------------------------
# UniformSampler
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(n=st.integers(1, 400), frame_count=frame_count_st, fps=any_fps_st)
def test_uniform_count_and_even_spacing(n: int, frame_count: int, fps: float) -> None:
    idx = UniformSampler(n).indices(frame_count, fps)
    check_valid(idx, frame_count)
    assert idx.size == min(n, max(frame_count, 0))
    if idx.size >= 2:
        gaps = np.diff(idx)
        assert gaps.max() - gaps.min() <= 1
    if idx.size:
        # centred: the margins at both ends are about half a gap
        seg = frame_count / idx.size
        assert idx[0] <= seg / 2 + 1
        assert frame_count - 1 - idx[-1] <= seg / 2 + 1
    # the frame rate plays no part
    np.testing.assert_array_equal(idx, UniformSampler(n).indices(frame_count, 25.0))


def test_uniform_examples() -> None:
    assert UniformSampler(4).indices(100, 30.0).tolist() == [12, 37, 62, 87]
    assert UniformSampler(5).indices(5, 30.0).tolist() == [0, 1, 2, 3, 4]
    assert UniformSampler(32).indices(3, 30.0).tolist() == [0, 1, 2]
    assert UniformSampler(1).indices(10, 30.0).tolist() == [5]


# ---------------------------------------------------------------------------------------------
# StrideSampler
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(
    k=st.integers(1, 300),
    offset=st.integers(0, 300),
    max_frames=max_frames_st,
    frame_count=frame_count_st,
    fps=any_fps_st,
)
def test_stride_count_and_spacing(k: int, offset: int, max_frames: int | None, frame_count: int, fps: float) -> None:
    idx = StrideSampler(k, offset=offset, max_frames=max_frames).indices(frame_count, fps)
    check_valid(idx, frame_count)
    expected = math.ceil((frame_count - offset) / k) if frame_count > offset else 0
    if max_frames is not None:
        expected = min(expected, max_frames)
    assert idx.size == expected
    if idx.size:
        assert idx[0] == offset
        np.testing.assert_array_equal(idx, offset + k * np.arange(idx.size))
    np.testing.assert_array_equal(idx, StrideSampler(k, offset=offset, max_frames=max_frames).indices(frame_count, 1.0))


def test_stride_examples() -> None:
    assert StrideSampler(3).indices(10, 30.0).tolist() == [0, 3, 6, 9]
    assert StrideSampler(3, offset=1).indices(10, 30.0).tolist() == [1, 4, 7]
    assert StrideSampler(3, offset=10).indices(10, 30.0).tolist() == []
    assert StrideSampler(1, max_frames=2).indices(10, 30.0).tolist() == [0, 1]


# ---------------------------------------------------------------------------------------------
# RandomSampler
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(n=st.integers(1, 400), seed=st.integers(0, 2**63), frame_count=frame_count_st, fps=any_fps_st)
def test_random_count_and_determinism(n: int, seed: int, frame_count: int, fps: float) -> None:
    idx = RandomSampler(n, seed=seed).indices(frame_count, fps)
    check_valid(idx, frame_count)
    assert idx.size == min(n, max(frame_count, 0))
    np.testing.assert_array_equal(idx, RandomSampler(n, seed=seed).indices(frame_count, fps))
    np.testing.assert_array_equal(idx, RandomSampler(n, seed=seed).indices(frame_count, 12.5))
    if n >= frame_count > 0:
        np.testing.assert_array_equal(idx, np.arange(frame_count))


@SETTINGS
@given(seed=st.integers(0, 2**32), frame_count=st.integers(1_000, 100_000), n=st.integers(8, 64))
def test_random_different_seeds_differ(seed: int, frame_count: int, n: int) -> None:
    a = RandomSampler(n, seed=seed).indices(frame_count, 30.0)
    b = RandomSampler(n, seed=seed + 1).indices(frame_count, 30.0)
    # two draws of >= 8 distinct frames out of >= 1000 coincide with probability < 1e-20
    assert not np.array_equal(a, b)


def test_random_seeds_usually_differ() -> None:
    draws = {tuple(RandomSampler(10, seed=s).indices(1000, 30.0).tolist()) for s in range(50)}
    assert len(draws) == 50
    # a different length gives a different draw too, from the same seed
    assert RandomSampler(10).indices(1000, 30.0).tolist() != RandomSampler(10).indices(1001, 30.0).tolist()


# ---------------------------------------------------------------------------------------------
# constructor argument checks
# ---------------------------------------------------------------------------------------------

BAD_POSITIVE_INT = [0, -1, -100, True, False, 1.5, 2.0, math.nan, math.inf, "3", None, [3]]
BAD_POSITIVE_FLOAT = [0, 0.0, -0.0, -1, -0.5, True, False, math.nan, math.inf, -math.inf, "1", None]
BAD_NON_NEGATIVE_INT = [-1, -100, True, False, 1.5, math.nan, math.inf, "0", None]
BAD_OPTIONAL_POSITIVE_INT = [0, -1, True, False, 1.5, math.nan, math.inf, "4"]


@pytest.mark.parametrize("bad", BAD_POSITIVE_FLOAT, ids=repr)
def test_fixed_rate_rejects_bad_fps(bad: object) -> None:
    with pytest.raises(ValueError, match="fps"):
        FixedRateSampler(fps=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fallback_fps"):
        FixedRateSampler(fallback_fps=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", BAD_OPTIONAL_POSITIVE_INT, ids=repr)
def test_max_frames_rejects_bad_values(bad: object) -> None:
    with pytest.raises(ValueError, match="max_frames"):
        FixedRateSampler(max_frames=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_frames"):
        StrideSampler(max_frames=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", BAD_POSITIVE_INT, ids=repr)
def test_counts_reject_bad_values(bad: object) -> None:
    with pytest.raises(ValueError, match="n must"):
        UniformSampler(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must"):
        RandomSampler(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must"):
        StrideSampler(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", BAD_NON_NEGATIVE_INT, ids=repr)
def test_offset_and_seed_reject_bad_values(bad: object) -> None:
    with pytest.raises(ValueError, match="offset"):
        StrideSampler(offset=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        RandomSampler(seed=bad)  # type: ignore[arg-type]


def test_constructors_accept_numpy_integers_and_edge_values() -> None:
    assert UniformSampler(np.int64(4)).indices(100, 30.0).tolist() == [12, 37, 62, 87]
    assert StrideSampler(np.int32(2), offset=np.int64(0), max_frames=np.int64(2)).indices(10, 1.0).tolist() == [0, 2]
    assert RandomSampler(np.int64(3), seed=np.uint32(0)).indices(10, 1.0).size == 3
    FixedRateSampler(fps=1, max_frames=None, fallback_fps=30)
    FixedRateSampler(fps=1e-9)
    StrideSampler(offset=0)
    RandomSampler(seed=0)


@SETTINGS
@given(bad=st.one_of(st.integers(max_value=0), st.floats(), st.booleans()))
def test_uniform_rejects_any_non_positive_or_non_int(bad: object) -> None:
    with pytest.raises(ValueError):
        UniformSampler(bad)  # type: ignore[arg-type]


@SETTINGS
@given(bad=st.one_of(st.floats(max_value=0.0), st.floats(allow_nan=True).filter(lambda x: not math.isfinite(x)), st.booleans()))
def test_fixed_rate_rejects_any_non_positive_or_non_finite(bad: object) -> None:
    assume(not (isinstance(bad, float) and math.isfinite(bad) and bad > 0))
    with pytest.raises(ValueError):
        FixedRateSampler(fps=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------


def test_registry_names() -> None:
    assert {"fixed_rate", "uniform", "stride", "random"} <= set(samplers.names())
    assert samplers.get_class("fixed_rate") is FixedRateSampler
    assert samplers.get_class("uniform") is UniformSampler
    assert samplers.get_class("stride") is StrideSampler
    assert samplers.get_class("random") is RandomSampler


def test_registry_create_by_name_with_kwargs() -> None:
    s = samplers.create("uniform", n=4)
    assert isinstance(s, UniformSampler) and s.n == 4
    assert s == UniformSampler(4)
    assert s.indices(100, 30.0).tolist() == [12, 37, 62, 87]
    assert samplers.create("fixed_rate") == FixedRateSampler()


def test_registry_create_from_dict_spec() -> None:
    spec = {"name": "stride", "k": 3}
    s = samplers.create(spec)
    assert isinstance(s, StrideSampler) and s.k == 3 and s.offset == 0 and s.max_frames is None
    assert spec == {"name": "stride", "k": 3}, "create must not mutate the spec"
    assert samplers.create({"name": "stride", "k": 3}, offset=1).offset == 1
    assert samplers.serialize(s) == {"name": "stride", "k": 3, "offset": 0, "max_frames": None}


def test_registry_create_from_instance() -> None:
    s = RandomSampler(5, seed=7)
    assert samplers.create(s) is s
    with pytest.raises(TypeError):
        samplers.create(s, n=3)


def test_registry_unknown_name_lists_known_names() -> None:
    with pytest.raises(KeyError) as excinfo:
        samplers.create("no_such_sampler")
    message = str(excinfo.value)
    assert "no_such_sampler" in message
    for name in ("fixed_rate", "uniform", "stride", "random"):
        assert name in message
    with pytest.raises(KeyError) as excinfo:
        samplers.create({"name": "no_such_sampler", "n": 3})
    assert "uniform" in str(excinfo.value)


def test_registry_bad_specs() -> None:
    with pytest.raises(ValueError, match="name"):
        samplers.create({"k": 3})
    with pytest.raises(TypeError):
        samplers.create(42)
    with pytest.raises(ValueError):
        samplers.create("uniform", n=0)
    with pytest.raises(TypeError):
        samplers.create("uniform", bogus=1)
