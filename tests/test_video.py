"""Real OpenCV encode/decode tests of `deepfake_detect.video`.

Every test video is written here with `cv2.VideoWriter`; each frame carries its own index
in two ways: as 8 black/white bit blocks along the top (robust to compression) and as a
grey level in the bottom right. The bottom left is pure red, to catch BGR/RGB mix-ups.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepfake_detect import video as video_mod
from deepfake_detect.errors import DeepfakeDetectError, VideoReadError
from deepfake_detect.sampling import FixedRateSampler, RandomSampler, StrideSampler, UniformSampler
from deepfake_detect.video import (
    VideoInfo,
    is_image,
    is_media,
    probe,
    read_image,
    sample_frames,
    to_rgb8,
)

W, H = 128, 64
N_FRAMES = 45
FPS = 30.0


def grey_level(i: int) -> int:
    return 20 + (5 * i) % 216


def make_frame(i: int) -> np.ndarray:
    """A BGR frame that encodes `i` (0 <= i < 256)."""
    f = np.zeros((H, W, 3), np.uint8)
    for b in range(8):
        if (i >> b) & 1:
            f[:32, b * 16 : (b + 1) * 16] = 255
    f[32:, :64] = (0, 0, 255)  # red, in BGR
    f[32:, 64:] = grey_level(i)
    return f


def write_video(path: Path, n: int = N_FRAMES, fps: float = FPS, fourcc: str = "mp4v") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path}"
    try:
        for i in range(n):
            writer.write(make_frame(i))
    finally:
        writer.release()
    assert path.stat().st_size > 0
    return path


def decode_index(rgb: np.ndarray) -> int:
    """The frame index an RGB frame of `make_frame` carries."""
    return sum(1 << b for b in range(8) if rgb[8:24, b * 16 + 4 : b * 16 + 12].mean() > 128)


def check_frame(index: int, rgb: np.ndarray) -> None:
    assert isinstance(rgb, np.ndarray)
    assert rgb.dtype == np.uint8
    assert rgb.shape == (H, W, 3)
    assert decode_index(rgb) == index, f"frame {index} decodes as {decode_index(rgb)}"
    grey = rgb[40:56, 72:120].astype(float).mean(axis=(0, 1))
    assert np.all(np.abs(grey - grey_level(index)) <= 10), (index, grey, grey_level(index))
    red = rgb[40:56, 8:56].astype(float).mean(axis=(0, 1))
    assert red[0] > 200 and red[1] < 50 and red[2] < 50, f"the red block is {red} in RGB order"


def all_frames_rgb(path: Path) -> list[np.ndarray]:
    """Every frame, decoded plainly in order: the reference for sampled reads."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return frames


def write_image(path: Path, image: np.ndarray) -> Path:
    ok, buf = cv2.imencode(path.suffix, image)
    assert ok
    buf.tofile(str(path))  # works for non-ASCII names too
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


@pytest.fixture(scope="module")
def reference(video: Path) -> list[np.ndarray]:
    frames = all_frames_rgb(video)
    assert len(frames) == N_FRAMES
    return frames


def sampled(path: Path, sampler) -> tuple[VideoInfo, list[tuple[int, np.ndarray]]]:
    info, frames = sample_frames(path, sampler)
    return info, list(frames)


# ---------------------------------------------------------------------------------------------
# videos
# ---------------------------------------------------------------------------------------------


def test_written_video_is_what_we_think(reference: list[np.ndarray]) -> None:
    for i, rgb in enumerate(reference):
        check_frame(i, rgb)


def test_probe(video: Path) -> None:
    info = probe(video)
    assert isinstance(info, VideoInfo)
    assert info.path == str(video)
    assert info.frame_count == N_FRAMES
    assert info.fps == pytest.approx(FPS, abs=1e-3)
    assert (info.width, info.height) == (W, H)
    assert info.duration == pytest.approx(N_FRAMES / FPS, rel=1e-3)
    assert probe(str(video)) == info


@pytest.mark.parametrize(
    "sampler, expected",
    [
        (UniformSampler(5), [4, 13, 22, 31, 40]),
        (UniformSampler(1), [22]),
        (UniformSampler(100), list(range(N_FRAMES))),
        (FixedRateSampler(fps=1.0), [0, 30]),
        (FixedRateSampler(fps=2.0), [0, 15, 30]),
        (FixedRateSampler(fps=10.0), list(range(0, N_FRAMES, 3))),
        (FixedRateSampler(fps=10.0, max_frames=3), [6, 21, 36]),
        (FixedRateSampler(fps=1000.0), list(range(N_FRAMES))),
        (StrideSampler(7, offset=2), [2, 9, 16, 23, 30, 37, 44]),
        (StrideSampler(1), list(range(N_FRAMES))),
        (StrideSampler(1, offset=N_FRAMES - 1), [N_FRAMES - 1]),
    ],
    ids=repr,
)
def test_sample_frames_returns_the_right_frames(
    video: Path, reference: list[np.ndarray], sampler, expected: list[int]
) -> None:
    assert sampler.indices(N_FRAMES, FPS).tolist() == expected  # what the sampler asks for ...
    info, frames = sampled(video, sampler)
    assert info.frame_count == N_FRAMES and info.fps == pytest.approx(FPS, abs=1e-3)
    assert [i for i, _ in frames] == expected  # ... is what comes back
    for index, rgb in frames:
        check_frame(index, rgb)
        # bit-identical to a plain decode in order: the grab()-skipping lands on the right frame
        np.testing.assert_array_equal(rgb, reference[index])


def test_sample_frames_random_sampler(video: Path, reference: list[np.ndarray]) -> None:
    for seed in range(3):
        sampler = RandomSampler(9, seed=seed)
        expected = sampler.indices(N_FRAMES, FPS).tolist()
        info, frames = sampled(video, sampler)
        assert [i for i, _ in frames] == expected
        for index, rgb in frames:
            check_frame(index, rgb)
            np.testing.assert_array_equal(rgb, reference[index])


def test_fixed_rate_on_other_frame_rates(tmp_path: Path) -> None:
    path = write_video(tmp_path / "ten_fps.mp4", n=35, fps=10.0)
    info = probe(path)
    assert info.frame_count == 35 and info.fps == pytest.approx(10.0, abs=1e-3)
    assert info.duration == pytest.approx(3.5, rel=1e-3)
    _, frames = sampled(path, FixedRateSampler(fps=1.0))
    assert [i for i, _ in frames] == [0, 10, 20, 30]  # about duration * 1 fps
    for index, rgb in frames:
        check_frame(index, rgb)


def test_sample_frames_is_repeatable(video: Path) -> None:
    a = sampled(video, UniformSampler(4))[1]
    b = sampled(video, UniformSampler(4))[1]
    assert [i for i, _ in a] == [i for i, _ in b]
    for (_, x), (_, y) in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_sample_frames_iterator_can_be_abandoned(video: Path) -> None:
    _, it = sample_frames(video, StrideSampler(1))
    index, rgb = next(it)
    check_frame(index, rgb)
    it.close()  # releases the capture; no error
    _, frames = sampled(video, StrideSampler(1))
    assert len(frames) == N_FRAMES


def test_non_ascii_path_with_spaces(tmp_path: Path) -> None:
    folder = tmp_path / "dossier à part"
    folder.mkdir()
    path = folder / "vidéo clip ü.mp4"
    write_video(path, n=12)
    info = probe(path)
    assert info.path == str(path)
    assert info.frame_count == 12 and (info.width, info.height) == (W, H)
    _, frames = sampled(path, UniformSampler(3))
    assert [i for i, _ in frames] == [2, 6, 10]
    for index, rgb in frames:
        check_frame(index, rgb)
    image = write_image(folder / "ïmage 1 ß.png", make_frame(5))
    check_frame(5, read_image(image))
    _, frames = sampled(image, UniformSampler(8))
    assert [i for i, _ in frames] == [0]
    check_frame(5, frames[0][1])


@pytest.mark.parametrize("name", ["100%.mp4", "clip_%03d.mp4", "a%20b.mp4", "-dash.mp4", "quote's \"x\".mp4"])
def test_odd_file_names(tmp_path: Path, name: str) -> None:
    # printf patterns or URL-like escapes must not be taken for an image sequence or a URL
    path = write_video(tmp_path / "plain.mp4", n=12).rename(tmp_path / name)
    info, frames = sampled(path, UniformSampler(3))
    assert info.frame_count == 12
    assert [i for i, _ in frames] == [2, 6, 10]
    for index, rgb in frames:
        check_frame(index, rgb)


@pytest.mark.parametrize("fourcc, ext", [("MJPG", ".avi"), ("mp4v", ".mkv")])
def test_other_containers(tmp_path: Path, fourcc: str, ext: str) -> None:
    path = write_video(tmp_path / f"clip{ext}", n=20, fps=25.0, fourcc=fourcc)
    info = probe(path)
    assert info.frame_count == 20 and info.fps == pytest.approx(25.0, abs=1e-3)
    _, frames = sampled(path, StrideSampler(3))
    assert [i for i, _ in frames] == list(range(0, 20, 3))
    for index, rgb in frames:
        check_frame(index, rgb)


def test_truncated_video_stops_early_with_right_frames(tmp_path: Path) -> None:
    # MJPG in AVI: the header still promises every frame once the file is cut in half
    full = write_video(tmp_path / "full.avi", n=50, fps=25.0, fourcc="MJPG")
    cut = tmp_path / "cut.avi"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    info, frames = sampled(cut, StrideSampler(5))
    assert info.frame_count == 50
    got = [i for i, _ in frames]
    assert 1 <= len(got) < 10
    assert got == list(range(0, 5 * len(got), 5))
    for index, rgb in frames:
        check_frame(index, rgb)


def test_header_without_frame_count_is_counted(video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_probe = video_mod.probe

    def probe_without_count(path):
        info = real_probe(path)
        return VideoInfo(info.path, 0, info.fps, info.width, info.height)

    monkeypatch.setattr(video_mod, "probe", probe_without_count)
    info, frames = sample_frames(video, UniformSampler(5))
    assert info.frame_count == N_FRAMES
    frames = list(frames)
    assert [i for i, _ in frames] == [4, 13, 22, 31, 40]
    for index, rgb in frames:
        check_frame(index, rgb)
    info, _ = sample_frames(video, UniformSampler(5), frame_budget=10)
    assert info.frame_count == 10


# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------


def bgr_pattern(dtype=np.uint8, scale: int = 1) -> np.ndarray:
    """Left half blue, right half green (BGR order), 48 x 64."""
    img = np.zeros((48, 64, 3), dtype)
    img[:, :32] = (255 * scale, 0, 0)
    img[:, 32:] = (0, 255 * scale, 0)
    return img


def check_rgb_pattern(rgb: np.ndarray, tol: int = 0) -> None:
    assert rgb.dtype == np.uint8
    assert rgb.shape == (48, 64, 3)
    left = rgb[8:40, 4:24].astype(int)
    right = rgb[8:40, 40:60].astype(int)
    assert np.abs(left - (0, 0, 255)).max() <= tol, "blue must come out as (0, 0, 255) in RGB"
    assert np.abs(right - (0, 255, 0)).max() <= tol


@pytest.mark.parametrize("ext, tol", [(".png", 0), (".bmp", 0), (".jpg", 40), (".jpeg", 40), (".tiff", 0), (".webp", 40)])
def test_read_colour_image(tmp_path: Path, ext: str, tol: int) -> None:
    path = write_image(tmp_path / f"img{ext}", bgr_pattern())
    check_rgb_pattern(read_image(path), tol)
    info = probe(path)
    assert (info.frame_count, info.width, info.height) == (1, 64, 48)
    assert math.isnan(info.duration)


def test_read_uppercase_extension(tmp_path: Path) -> None:
    path = write_image(tmp_path / "img.png", bgr_pattern())
    upper = path.rename(tmp_path / "IMG.PNG")
    check_rgb_pattern(read_image(upper))
    _, frames = sampled(upper, UniformSampler(3))
    assert len(frames) == 1


def test_read_grayscale_png(tmp_path: Path) -> None:
    grey = np.full((48, 64), 77, np.uint8)
    grey[:, 32:] = 200
    path = write_image(tmp_path / "grey.png", grey)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).ndim == 2  # really stored as 1 channel
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (48, 64, 3)
    assert np.all(rgb[:, :32] == 77) and np.all(rgb[:, 32:] == 200)


def test_read_16_bit_png(tmp_path: Path) -> None:
    img = np.zeros((48, 64, 3), np.uint16)
    img[:] = (0x1000, 0x80FF, 0xFF00)  # BGR
    path = write_image(tmp_path / "deep.png", img)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (48, 64, 3)
    assert np.all(rgb == np.array([0xFF, 0x80, 0x10], np.uint8))
    check_rgb_pattern(read_image(write_image(tmp_path / "deep2.png", bgr_pattern(np.uint16, 257))))


def test_read_16_bit_grayscale_png(tmp_path: Path) -> None:
    path = write_image(tmp_path / "deepgrey.png", np.full((48, 64), 0xC3A0, np.uint16))
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (48, 64, 3)
    assert np.all(rgb == 0xC3)


def test_read_png_with_alpha(tmp_path: Path) -> None:
    img = np.zeros((48, 64, 4), np.uint8)
    img[:, :32] = (255, 0, 0, 128)
    img[:, 32:] = (0, 255, 0, 0)  # fully transparent: the colour is kept, alpha dropped
    path = write_image(tmp_path / "alpha.png", img)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape[2] == 4
    check_rgb_pattern(read_image(path))


@pytest.mark.parametrize("name", ["img.png", "img.jpg", "img.bmp", "grey.png", "deep.png", "alpha.png"])
def test_image_is_a_one_frame_input(tmp_path: Path, name: str) -> None:
    images = {
        "img.png": bgr_pattern(),
        "img.jpg": bgr_pattern(),
        "img.bmp": bgr_pattern(),
        "grey.png": np.full((48, 64), 90, np.uint8),
        "deep.png": bgr_pattern(np.uint16, 257),
        "alpha.png": np.dstack([bgr_pattern(), np.full((48, 64), 100, np.uint8)]),
    }
    path = write_image(tmp_path / name, images[name])
    expected = read_image(path)
    for sampler in (UniformSampler(8), FixedRateSampler(), RandomSampler(4), StrideSampler(30)):
        info, frames = sampled(path, sampler)
        assert info.frame_count == 1 and (info.width, info.height) == (64, 48)
        assert len(frames) == 1
        index, rgb = frames[0]
        assert index == 0
        assert rgb.dtype == np.uint8 and rgb.shape == (48, 64, 3)
        np.testing.assert_array_equal(rgb, expected)


def test_to_rgb8_other_dtypes() -> None:
    f = np.zeros((4, 4, 3), np.float32)
    f[..., 2] = 1.0  # red in BGR, [0, 1] range
    assert to_rgb8(f)[0, 0].tolist() == [255, 0, 0]
    f = np.full((4, 4), 300.0)
    assert to_rgb8(f)[0, 0].tolist() == [255, 255, 255]
    g = np.full((4, 4, 1), 9, np.uint8)
    assert to_rgb8(g).shape == (4, 4, 3)


def test_is_image_and_is_media() -> None:
    assert is_image("a/b.PNG") and is_image("x.jpeg") and not is_image("x.mp4")
    assert is_media("x.MP4") and is_media("x.webp") and not is_media("x.txt") and not is_media("noext")


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    folder = tmp_path / "a folder.mp4"
    folder.mkdir()
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    noise_png = tmp_path / "noise.png"
    noise_png.write_bytes(rng.integers(0, 256, 5_000, dtype=np.uint8).tobytes())
    ok, buf = cv2.imencode(".png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    truncated_png = tmp_path / "truncated.png"
    truncated_png.write_bytes(buf.tobytes()[: len(buf) // 2])
    header_png = tmp_path / "header only.png"
    header_png.write_bytes(buf.tobytes()[:33])
    zero_png = tmp_path / "zero.png"
    zero_png.write_bytes(b"")
    text_jpg = tmp_path / "notes.jpg"
    text_jpg.write_text("not a jpeg")
    truncated_mp4 = tmp_path / "truncated.mp4"
    data = write_video(tmp_path / "whole.mp4", n=20).read_bytes()
    truncated_mp4.write_bytes(data[: len(data) // 2])
    return {
        "missing": tmp_path / "no such file.mp4",
        "missing image": tmp_path / "nope.png",
        "directory": folder,
        "zero-byte mp4": zero,
        "text mp4": text,
        "random mp4": noise,
        "truncated mp4": truncated_mp4,
        "random png": noise_png,
        "truncated png": truncated_png,
        "header-only png": header_png,
        "zero-byte png": zero_png,
        "text jpg": text_jpg,
    }


BAD_KINDS = [
    "missing",
    "missing image",
    "directory",
    "zero-byte mp4",
    "text mp4",
    "random mp4",
    "truncated mp4",
    "random png",
    "truncated png",
    "header-only png",
    "zero-byte png",
    "text jpg",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_inputs_raise_video_read_error(tmp_path: Path, kind: str) -> None:
    path = _bad_inputs(tmp_path)[kind]

    with pytest.raises(VideoReadError) as excinfo:
        probe(path)
    assert str(path) in str(excinfo.value)

    with pytest.raises(VideoReadError) as excinfo:
        info, frames = sample_frames(path, UniformSampler(4))
        list(frames)
    assert str(path) in str(excinfo.value)

    # the library's own error type, and an OSError for callers that catch those
    assert isinstance(excinfo.value, DeepfakeDetectError) and isinstance(excinfo.value, OSError)

    if is_image(path) or kind in ("missing", "directory", "zero-byte mp4"):
        with pytest.raises(VideoReadError) as excinfo:
            read_image(path)
        assert str(path) in str(excinfo.value)


def test_error_messages_mention_non_ascii_path(tmp_path: Path) -> None:
    path = tmp_path / "vidéo cassée ü.mp4"
    path.write_text("nope")
    with pytest.raises(VideoReadError, match="vidéo cassée ü.mp4"):
        probe(path)
    with pytest.raises(VideoReadError, match="nope ü.png"):
        read_image(tmp_path / "nope ü.png")


def test_video_info_duration_with_broken_fps() -> None:
    assert VideoInfo("x", 10, 0.0, 1, 1).duration != VideoInfo("x", 10, 0.0, 1, 1).duration  # NaN
    assert math.isnan(VideoInfo("x", 10, float("nan"), 1, 1).duration)
    assert math.isnan(VideoInfo("x", 10, -5.0, 1, 1).duration)
    assert math.isnan(VideoInfo("x", 10, float("inf"), 1, 1).duration)
    assert VideoInfo("x", 10, 5.0, 1, 1).duration == 2.0
