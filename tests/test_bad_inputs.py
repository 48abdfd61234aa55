"""The bad-input matrix: hostile and broken files meet `predict_video`, `discover` and `load`.

Every case is a file generated here. Each ends in a typed error whose message says what was
wrong, or, where the input is valid, in a prediction (label "real"/"fake" from the frames that
exist, with a `VideoWarning` where the file is not what its header says) or an abstention
(label "unknown" with a reason): never a crash, a hang or a silent 0.5. Cases that other test
modules already cover (zero-byte, text and random-byte .mp4, a missing file, no face at all,
one-class and empty datasets, folder link loops) are not repeated here.

The detector is real (RetinaFace, a Keras head) but its backbone is a tiny seeded CNN, so the
module fits in seconds: what is tested is the handling of the input, not accuracy.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepfake_detect import Backbone, DeepfakeDetector, backbones, errors
from deepfake_detect import video as video_mod
from deepfake_detect.datasets import discover
from deepfake_detect.datasets.synthetic import make_dataset
from deepfake_detect.sampling import FixedRateSampler, RandomSampler, StrideSampler, UniformSampler
from deepfake_detect.video import VideoWarning, decode_limits, read_image, sample_frames


@backbones.register("test_tiny_conv")
class TinyConv(Backbone):
    """One strided convolution and global pooling: a real, seeded Keras backbone that builds fast
    (`weights`: a Keras weights file, else the seeded initialisation)."""

    def __init__(self, width: int = 8, input_size: int = 32, seed: int = 0, weights: str | None = None):
        self.width = width
        self.input_size = input_size
        self.seed = seed
        self.weights = weights

    @property
    def feature_dim(self) -> int:
        return self.width

    def build_model(self):
        import keras

        inputs = keras.Input((self.input_size, self.input_size, 3))
        conv = keras.layers.Conv2D(self.width, 3, strides=4, activation="relu",
                                   kernel_initializer=keras.initializers.GlorotUniform(seed=self.seed))
        model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(conv(inputs)))
        if self.weights is not None:
            model.load_weights(self.weights)
        return model

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        return images.astype(np.float32) / 255.0


CONFIG = {
    "sampler": {"name": "fixed_rate", "fps": 5.0, "max_frames": 6},
    "backbone": {"name": "test_tiny_conv"},
    "head": {"name": "softmax", "steps": 20, "batch_size": 8},
}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, portraits) -> DeepfakeDetector:
    root = make_dataset(tmp_path_factory.mktemp("tiny"), portraits, n_real=2, n_fake=2, seconds=1.0, fps=5.0)
    detector = DeepfakeDetector(**CONFIG, cache=None)  # no cache: every prediction really reads its file
    detector.fit(root, verbose=0, validation_split=0, cross_fit=0)  # uncalibrated: p_fake is the frames' mean
    return detector


@pytest.fixture(scope="module")
def scene(portraits) -> np.ndarray:
    """A 320x240 RGB frame with one clearly visible face."""
    return face_scene(portraits[0], 320, 240)


def face_scene(portrait: np.ndarray, width: int, height: int) -> np.ndarray:
    frame = np.full((height, width, 3), 90, np.uint8)
    frame[:, : width // 2] = (60, 110, 150)
    scale = 0.7 * height / portrait.shape[0]
    face = cv2.resize(portrait, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:, : int(0.9 * width)]
    y, x = (height - face.shape[0]) // 2, (width - face.shape[1]) // 2
    frame[y:y + face.shape[0], x:x + face.shape[1]] = face
    return frame


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0, fourcc: str = "mp4v",
                color: bool = True) -> Path:
    """RGB (or, with color=False, single-channel) frames to a video file with cv2.VideoWriter."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h), color)
    assert writer.isOpened(), f"cannot write {fourcc} to {path}"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if color else frame)
    writer.release()
    return path


def avi_with_frame_count(path: Path, frames: list[np.ndarray], claimed: int) -> Path:
    """An MJPG AVI whose stream header (strh dwLength) claims `claimed` frames."""
    data = bytearray(write_video(path, frames, fourcc="MJPG").read_bytes())
    strh = data.find(b"strh")
    length = strh + 8 + 32  # fccType, fccHandler, flags, priority+language, initialFrames, scale, rate, start
    assert struct.unpack("<I", data[length:length + 4])[0] == len(frames)
    data[length:length + 4] = struct.pack("<I", claimed)
    path.write_bytes(bytes(data))
    return path


def faststart(data: bytes) -> bytes:
    """An mp4 with its moov atom moved in front of mdat (as streaming uploads are), offsets fixed."""
    atoms, i = {}, 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        atoms[kind] = (i, size)
        i += size
    (mo, ms), (fo, fs) = atoms[b"moov"], atoms[b"ftyp"]
    assert mo > atoms[b"mdat"][0], "OpenCV writes moov last"
    moov = bytearray(data[mo:mo + ms])
    stco = moov.find(b"stco")
    for e in range(struct.unpack(">I", moov[stco + 8:stco + 12])[0]):
        at = stco + 12 + 4 * e
        moov[at:at + 4] = struct.pack(">I", struct.unpack(">I", moov[at:at + 4])[0] + ms)
    rest = data[:mo] + data[mo + ms:]
    return rest[:fo + fs] + bytes(moov) + rest[fo + fs:]


def assert_predicted(pred, path: Path, faces: int | None = None) -> None:
    """A real verdict: from frames with a face, p_fake their aggregate (never a default 0.5)."""
    assert pred.path == str(path)
    assert pred.label in ("real", "fake") and pred.reason is None
    assert pred.faces_found >= 1 and (faces is None or pred.faces_found == faces)
    assert pred.p_fake == pytest.approx(np.mean([f.p_fake for f in pred.frames]))
    assert (pred.label == "fake") == (pred.p_fake >= pred.threshold)


class LyingCapture:
    """`cv2.VideoCapture` whose header fields say what a test wants; `grab(real_capture)`, where
    given, stands in for grabbing a frame."""

    real = cv2.VideoCapture

    def __init__(self, *args, header: dict[int, float], grab=None):
        self._cap = self.real(*args)
        self._header, self._grab = header, grab

    def get(self, prop: int) -> float:
        return self._header.get(prop, self._cap.get(prop))

    def grab(self) -> bool:
        return self._grab(self._cap) if self._grab else self._cap.grab()

    def __getattr__(self, name):
        return getattr(self._cap, name)


def lying_capture(monkeypatch, grab=None, **header) -> None:
    props = {getattr(cv2, f"CAP_PROP_{k.upper()}"): v for k, v in header.items()}
    monkeypatch.setattr(cv2, "VideoCapture", lambda *a: LyingCapture(*a, header=props, grab=grab))


# --- files that cannot be read: a typed error that says why ---------------------------------------
def test_truncated_mp4_cut_at_half_raises_typed_error(fitted, scene, tmp_path):
    whole = write_video(tmp_path / "whole.mp4", [scene] * 20).read_bytes()
    cut = tmp_path / "upload.mp4"
    cut.write_bytes(whole[: len(whole) // 2])  # OpenCV writes the index (moov) last: it is gone
    with pytest.raises(errors.VideoReadError, match="cannot open it as a video.*truncated"):
        fitted.predict_video(cut)


def test_truncated_streamable_mp4_predicts_on_what_is_there_and_warns(fitted, scene, tmp_path):
    whole = faststart(write_video(tmp_path / "whole.mp4", [scene] * 30, fps=10.0).read_bytes())
    (tmp_path / "whole_fast.mp4").write_bytes(whole)
    assert video_mod.probe(tmp_path / "whole_fast.mp4").frame_count == 30  # the moved index still reads
    cut = tmp_path / "upload.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.warns(VideoWarning, match=r"stream ends after \d+ frame\(s\) but its header says 30"):
        pred = fitted.predict_video(cut)
    assert_predicted(pred, cut)
    assert 1 <= pred.frames_sampled < 6 and max(f.index for f in pred.frames) < 29


def test_directory_given_as_a_video_raises_typed_error(fitted, tmp_path):
    folder = tmp_path / "clip.mp4"
    folder.mkdir()
    with pytest.raises(errors.VideoReadError, match="is a directory, not a video"):
        fitted.predict_video(folder)


def test_missing_path_with_spaces_and_non_ascii_names_it(fitted, tmp_path):
    with pytest.raises(errors.VideoReadError, match="vidéo manquante ü.mp4: no such file"):
        fitted.predict_video(tmp_path / "dossier à part" / "vidéo manquante ü.mp4")


# --- broken headers -----------------------------------------------------------------------------
@pytest.mark.parametrize("fps", [0.0, math.nan], ids=["zero", "nan"])
def test_zero_or_nan_fps_header_falls_back_and_predicts(fitted, scene, tmp_path, monkeypatch, fps):
    path = write_video(tmp_path / "clip.mp4", [scene] * 20, fps=10.0)
    lying_capture(monkeypatch, fps=fps)
    info, frames = sample_frames(path, FixedRateSampler(fps=5.0))
    assert info.frame_count == 20 and not info.fps > 0 and math.isnan(info.duration)
    assert [i for i, _ in frames] == [0, 5, 10, 15]  # fallback_fps 25: one frame in 5
    pred = fitted.predict_video(path)
    assert_predicted(pred, path)
    assert all(f.time == 0.0 for f in pred.frames)  # no frame rate: no times made up


def test_mp4_whose_header_has_zero_timescale_predicts_on_the_frame_it_holds(fitted, scene, tmp_path):
    data = bytearray(write_video(tmp_path / "clip.mp4", [scene] * 20, fps=10.0).read_bytes())
    mdhd = data.find(b"mdhd")
    data[mdhd + 16:mdhd + 20] = struct.pack(">I", 0)  # the media timescale: 0 ticks per second
    path = tmp_path / "timescale0.mp4"
    path.write_bytes(bytes(data))
    info = video_mod.probe(path)
    assert info.frame_count == 20 and 0 < info.fps < 0.01  # FFmpeg: a near-zero rate; it decodes one frame
    with pytest.warns(VideoWarning, match=r"ends after 1 frame\(s\), before the first sampled one.*sampling the 1"):
        pred = fitted.predict_video(path)
    assert_predicted(pred, path, faces=1)
    assert pred.frames[0].index == 0


def test_header_claiming_more_frames_than_exist_stops_at_end_of_stream(fitted, scene, tmp_path):
    path = avi_with_frame_count(tmp_path / "more.avi", [scene] * 20, claimed=200)
    assert video_mod.probe(path).frame_count == 200
    started = time.monotonic()
    with pytest.warns(VideoWarning, match=r"stream ends after 20 frame\(s\) but its header says 200.*header lies"):
        pred = fitted.predict_video(path)
    assert time.monotonic() - started < 30
    assert_predicted(pred, path)
    assert all(f.index < 20 for f in pred.frames)


def test_header_claiming_fewer_frames_than_exist_is_reported(fitted, scene, tmp_path):
    path = avi_with_frame_count(tmp_path / "fewer.avi", [scene] * 20, claimed=5)
    with pytest.warns(VideoWarning, match=r"goes on past the 5 frame\(s\) its header says"):
        pred = fitted.predict_video(path)
    assert_predicted(pred, path)
    assert [f.index for f in pred.frames] == [0, 2, 4]  # 5 fps of the 5 frames the header admits


def test_header_claiming_more_frames_than_bytes_is_counted_instead(scene, tmp_path):
    path = avi_with_frame_count(tmp_path / "huge.avi", [scene] * 12, claimed=2**32 - 1)
    assert video_mod.probe(path).frame_count == 2**32 - 1 > path.stat().st_size
    info, frames = sample_frames(path, UniformSampler(4))
    assert info.frame_count == 12
    assert [i for i, _ in frames] == [1, 4, 7, 10]


@pytest.mark.parametrize("sampler", [FixedRateSampler(fps=1000.0, max_frames=32), FixedRateSampler(max_frames=32),
                                     StrideSampler(1, max_frames=32), UniformSampler(32), RandomSampler(32)],
                         ids=lambda s: type(s).__name__)
def test_samplers_cost_nothing_for_a_header_claiming_2_to_the_40_frames(sampler):
    tracemalloc.start()
    try:
        idx = sampler.indices(2**40, 25.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(idx) == 32 and np.all(np.diff(idx) > 0) and 0 <= idx[0] and idx[-1] < 2**40
    assert peak < 100_000, f"{peak} bytes for 32 indices"


def test_endless_stream_behind_a_lying_header_is_stopped_by_decode_timeout(tmp_path, scene, monkeypatch):
    path = write_video(tmp_path / "clip.mp4", [scene] * 5)
    lying_capture(monkeypatch, grab=lambda cap: time.sleep(0.001) or True, frame_count=2**40)  # never ends
    started = time.monotonic()
    with pytest.raises(errors.VideoReadError, match=r"decoding took longer than decode_timeout=0.5 s"):
        list(sample_frames(path, UniformSampler(4), decode_timeout=0.5)[1])  # counting (2**40 > bytes) goes on
    assert time.monotonic() - started < 10


def test_frame_budget_bounds_counting_a_header_without_count(tmp_path, scene, monkeypatch):
    path = write_video(tmp_path / "clip.mp4", [scene] * 5)
    lying_capture(monkeypatch, grab=lambda cap: True, frame_count=0)
    with pytest.warns(VideoWarning, match=r"only its first 50 frames \(frame_budget\)"):
        info, _ = sample_frames(path, UniformSampler(4), frame_budget=50)
    assert info.frame_count == 50


def test_slow_decoder_cannot_hang_predict_video(fitted, scene, tmp_path, monkeypatch):
    path = write_video(tmp_path / "slow.mp4", [scene] * 40)

    def slow(cap) -> bool:
        time.sleep(0.05)
        return cap.grab()

    lying_capture(monkeypatch, grab=slow)  # OpenCV's grab: the reader that decodes frames it skips
    started = time.monotonic()
    with decode_limits(reader="opencv"), pytest.raises(
            errors.VideoReadError, match=r"slow.mp4: decoding took longer than decode_timeout=0.3 s"):
        fitted.predict_video(path, decode_timeout=0.3)
    assert time.monotonic() - started < 10
    monkeypatch.undo()
    assert_predicted(fitted.predict_video(path, decode_timeout=30.0), path)


def test_decode_timeout_counts_decoding_not_the_callers_time(tmp_path, scene):
    path = write_video(tmp_path / "clip.mp4", [scene] * 12)
    _, frames = sample_frames(path, StrideSampler(4), decode_timeout=1.0)
    got = []
    for index, _ in frames:
        got.append(index)
        time.sleep(0.4)  # face detection and embedding are not decoding: 1.2 s here, within the timeout
    assert got == [0, 4, 8]
    with decode_limits(decode_timeout=1e-9):  # the context default reaches sample_frames
        with pytest.raises(errors.VideoReadError, match="decode_timeout=1e-09"):
            list(sample_frames(path, StrideSampler(4))[1])
        assert sample_frames(path, StrideSampler(4), decode_timeout=math.inf)[0].frame_count == 12
    for bad in (0, -1.0, math.nan, "10"):
        with pytest.raises(ValueError, match="decode_timeout must be a positive number"):
            sample_frames(path, StrideSampler(4), decode_timeout=bad)


def test_reading_a_long_video_holds_one_frame_at_a_time(tmp_path, scene):
    path = write_video(tmp_path / "long.mp4", [scene] * 300)
    tracemalloc.start()
    try:
        _, frames = sample_frames(path, StrideSampler(1))
        count = sum(1 for _ in frames)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 300
    assert peak < 8 * scene.nbytes, f"{peak / scene.nbytes:.1f} frames' worth held at once"  # all: 300


# --- valid but odd inputs: a verdict, or an abstention with a reason --------------------------------
def test_one_frame_video_predicts_from_its_frame(fitted, scene, tmp_path):
    path = write_video(tmp_path / "one.mp4", [scene])
    pred = fitted.predict_video(path)
    assert_predicted(pred, path, faces=1)
    assert pred.frames_sampled == 1 and pred.frames[0].index == 0


def test_8k_frame_is_read_and_its_face_found(fitted, portraits, tmp_path):
    frame = face_scene(portraits[0], 7680, 4320)
    path = tmp_path / "8k.jpg"
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert ok
    data.tofile(str(path))
    assert video_mod.probe(path).width == 7680 and video_mod.probe(path).height == 4320
    pred = fitted.predict_video(path)
    assert_predicted(pred, path, faces=1)
    box = pred.frames[0].box
    assert 0 <= box.x1 < box.x2 <= 7680 and 0 <= box.y1 < box.y2 <= 4320 and box.y2 - box.y1 > 1000


def test_tiny_16x16_video_abstains_with_a_reason(fitted, scene, tmp_path):
    path = write_video(tmp_path / "tiny.mp4", [cv2.resize(scene, (16, 16), interpolation=cv2.INTER_AREA)] * 10)
    pred = fitted.predict_video(path)
    assert pred.label == "unknown" and pred.p_fake is None and pred.faces_found == 0
    assert pred.reason == "no face found in 5 sampled frame(s)"  # 10 frames at 10 fps, sampled at 5 fps


def test_grayscale_video_predicts(fitted, scene, tmp_path):
    grey = cv2.cvtColor(scene, cv2.COLOR_RGB2GRAY)
    path = write_video(tmp_path / "grey.mp4", [grey] * 10, color=False)
    _, frames = sample_frames(path, UniformSampler(1))
    rgb = next(frames)[1]
    assert rgb.shape == (240, 320, 3) and np.abs(rgb[..., 0].astype(int) - rgb[..., 2]).max() <= 3
    assert_predicted(fitted.predict_video(path), path)


def _image_16bit(scene: np.ndarray, path: Path) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(scene, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)


def _image_cmyk(scene: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(scene).convert("CMYK").save(path, quality=95)


def _image_alpha(scene: np.ndarray, path: Path) -> None:
    alpha = np.full(scene.shape[:2], 255, np.uint8)
    alpha[:, :40] = 0  # a transparent strip: the colour is kept, the alpha dropped
    cv2.imwrite(str(path), np.dstack([cv2.cvtColor(scene, cv2.COLOR_RGB2BGR), alpha]))


@pytest.mark.parametrize("name, write, channels, tol", [
    ("deep.png", _image_16bit, 3, 1), ("cmyk.jpg", _image_cmyk, 4, 12), ("alpha.png", _image_alpha, 4, 0)],
    ids=["16-bit png", "cmyk jpeg", "rgba png"])
def test_unusual_image_formats_are_read_as_rgb_and_predicted(fitted, scene, tmp_path, name, write, channels, tol):
    path = tmp_path / name
    write(scene, path)
    if name == "cmyk.jpg":
        from PIL import Image

        assert Image.open(path).mode == "CMYK"
    else:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert raw.shape[2] == channels and raw.dtype == (np.uint16 if "deep" in name else np.uint8)
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == scene.shape
    assert np.abs(rgb.astype(int) - scene).mean() <= tol, "colours must survive (RGB order, no CMYK mix-up)"
    assert_predicted(fitted.predict_video(path), path, faces=1)


def test_path_with_spaces_and_non_ascii_predicts(fitted, scene, tmp_path):
    folder = tmp_path / "dossier à part 証拠"
    folder.mkdir()
    path = write_video(folder / "vidéo du témoin ü.mp4", [scene] * 10)
    pred = fitted.predict_video(path)
    assert_predicted(pred, path)


def test_faces_in_only_one_frame_predicts_from_that_frame(fitted, scene, tmp_path):
    empty = np.full_like(scene, 90)
    path = write_video(tmp_path / "glimpse.mp4", [scene if i == 10 else empty for i in range(20)])
    pred = fitted.predict_video(path)  # 5 fps of 10: frames 0, 2, ..., 18 thinned to 6, one of them 10
    assert [f.index for f in pred.frames] == [10]
    assert_predicted(pred, path, faces=1)
    assert pred.frames_sampled == 6 and pred.frames_without_face == 5
    assert pred.p_fake == pred.frames[0].p_fake


# --- datasets --------------------------------------------------------------------------------------
def test_dataset_with_file_link_loops_is_discovered_without_them(tmp_path):
    for label in ("real", "fake"):
        (tmp_path / label).mkdir()
        (tmp_path / label / f"{label}.mp4").write_bytes(label.encode() * 10)
    (tmp_path / "real" / "a.mp4").symlink_to("b.mp4")  # a -> b -> a
    (tmp_path / "real" / "b.mp4").symlink_to("a.mp4")
    (tmp_path / "fake" / "self.mp4").symlink_to("self.mp4")
    (tmp_path / "fake" / "again").symlink_to(tmp_path / "fake", target_is_directory=True)
    found = discover(tmp_path)
    assert sorted(Path(s.path).name for s in found) == ["fake.mp4", "real.mp4"]


# --- model files: nothing unpickled, nothing built that the file does not truly describe -------------
@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory) -> Path:
    return fitted.save(tmp_path_factory.mktemp("model") / "model.dfd")


def edited(saved: Path, tmp_path: Path, **members) -> Path:
    """A copy of the saved model with members replaced: a callable edits the parsed JSON (or the
    arrays), bytes replace a member outright."""
    out = tmp_path / "edited.dfd"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            change = members.get(name.replace(".", "_"))
            if callable(change) and name.endswith(".json"):
                data = json.dumps(change(json.loads(data))).encode()
            elif callable(change):
                with np.load(io.BytesIO(data)) as arrays:
                    new = change([arrays[f"arr_{i}"] for i in range(len(arrays.files))])
                buf = io.BytesIO()
                np.savez(buf, *new)
                data = buf.getvalue()
            elif change is not None:
                data = change
            dst.writestr(name, data)
    return out


def test_unedited_model_loads(saved):
    assert DeepfakeDetector.load(saved).get_config()["backbone"] == {"name": "test_tiny_conv", "width": 8,
                                                                     "input_size": 32, "seed": 0, "weights": None}


@pytest.mark.parametrize("kind", ["head", "backbone", "sampler", "aggregator", "face_detector"])
def test_model_naming_an_unknown_class_is_refused(saved, tmp_path, kind):
    def rename(config):
        spec = config[kind]
        config[kind] = {**spec, "name": "os.system"} if isinstance(spec, dict) else "os.system"
        return config

    with pytest.raises(errors.IncompatibleModelError, match=f"unknown {kind} 'os.system'.*plug-in"):
        DeepfakeDetector.load(edited(saved, tmp_path, config_json=rename))


def test_model_config_with_unexpected_arguments_is_refused(saved, tmp_path):
    def inject(config):
        config["head"]["__class__"] = "subprocess.Popen"
        return config

    with pytest.raises(errors.IncompatibleModelError, match="config cannot be used here.*__class__"):
        DeepfakeDetector.load(edited(saved, tmp_path, config_json=inject))


@pytest.mark.parametrize("change, message", [
    (lambda w: [w[0][:-1], w[1]], "head weights of shapes .* do not match the declared head"),
    (lambda w: [w[0]], "head weights of shapes .* do not match the declared head"),
    (lambda w: [*w, w[1]], "head weights of shapes .* do not match the declared head"),
], ids=["fewer rows", "an array missing", "an array too many"])
def test_model_whose_weights_do_not_match_declared_shapes_is_refused(saved, tmp_path, change, message):
    with pytest.raises(errors.IncompatibleModelError, match=message):
        DeepfakeDetector.load(edited(saved, tmp_path, head_weights_npz=change))


def test_model_declaring_another_head_than_its_weights_is_refused(saved, tmp_path):
    def logistic(config):
        config["head"] = {"name": "logistic"}  # one sigmoid unit, where the weights hold a 2-way softmax
        return config

    with pytest.raises(errors.IncompatibleModelError, match="do not match the declared head"):
        DeepfakeDetector.load(edited(saved, tmp_path, config_json=logistic))

    def wider(metadata):
        metadata["n_features_in"] = 9
        return metadata

    with pytest.raises(errors.IncompatibleModelError, match="do not match the declared head"):
        DeepfakeDetector.load(edited(saved, tmp_path, metadata_json=wider))


def test_model_for_another_backbone_is_refused_or_allowed_with_a_warning(saved, tmp_path):
    def other(metadata):
        metadata["backbone_fingerprint"] = "0123456789abcdef"
        return metadata

    path = edited(saved, tmp_path, metadata_json=other)
    with pytest.raises(errors.IncompatibleModelError, match="fingerprint .*saved 0123456789abcdef"):
        DeepfakeDetector.load(path)
    with pytest.warns(UserWarning, match="computes other features"):
        loaded = DeepfakeDetector.load(path, allow_fingerprint_mismatch=True)
    assert loaded.n_features_in_ == 8


def test_model_with_a_pickled_object_array_is_refused_without_unpickling(saved, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch '{marker}'",))

    buf = io.BytesIO()
    np.savez(buf, np.array([Payload()], dtype=object), np.zeros(2, np.float32))
    path = edited(saved, tmp_path, head_weights_npz=buf.getvalue())
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(io.BytesIO(z.read("head_weights.npz"))) as npz:
        assert b"system" in npz.read("arr_0.npy")  # the pickle really is in there
    with pytest.raises(errors.IncompatibleModelError, match=r"arr_0.npy holds Python objects \(a pickled array\)"):
        DeepfakeDetector.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("member, data, message", [
    ("head_weights_npz", b"\x80\x04K\x01.", "head_weights.npz is not an .npz archive"),
    ("metadata_json", b"[1, 2]", "must each hold a JSON object"),
    ("metadata_json", b"{\"format_version\": 1}", "n_features_in is None"),
    ("config_json", b"{not json", "not a deepfake-detect model file"),
], ids=["pickle instead of npz", "metadata a list", "metadata without fields", "config not json"])
def test_model_with_malformed_members_is_refused(saved, tmp_path, member, data, message):
    with pytest.raises(errors.IncompatibleModelError, match=message):
        DeepfakeDetector.load(edited(saved, tmp_path, **{member: data}))


def test_model_naming_a_cache_or_a_bad_threshold_is_refused(saved, tmp_path):
    def cache(config):
        config["cache"] = str(tmp_path / "elsewhere.sqlite")
        return config

    with pytest.raises(errors.IncompatibleModelError, match="names a feature cache"):
        DeepfakeDetector.load(edited(saved, tmp_path, config_json=cache))
    assert not (tmp_path / "elsewhere.sqlite").exists()

    def threshold(config):
        config["threshold"] = "0.5"
        return config

    with pytest.raises(errors.IncompatibleModelError, match="threshold '0.5' is not a number"):
        DeepfakeDetector.load(edited(saved, tmp_path, config_json=threshold))
