"""Hostile model files, special files and full disks (issue 19): bounded memory, no crash, one-line
errors, and a feature cache that never stops a prediction.

Every crafted file is built here, cheaply: a deflate stream of zeros is one flushed block
repeated, so a 5 KB file that inflates to gigabytes costs milliseconds to make (its CRC is left
0: the reader must refuse it on its declared sizes, before inflating anything). The table's rows
run in one child process, which loads each file with `DeepfakeDetector.load` and runs
``deepfake-detect info`` and ``deepfake-detect predict`` on it; its peak RSS (``ru_maxrss``,
a high-water mark) after each row shows that no row allocates what the file claims.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import sqlite3
import struct
import subprocess
import sys
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from deepfake_detect import DeepfakeDetector, FeatureCache, errors, saving
from deepfake_detect.cache import CacheWriter
from deepfake_detect.cli import main
from deepfake_detect.results import FaceFeatures

from .test_bad_inputs import TinyConv  # noqa: F401  registers the "test_tiny_conv" backbone
from .test_crash_safety import image_dataset

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"sampler": {"name": "uniform", "n": 1}, "face_detector": "none", "backbone": {"name": "test_tiny_conv"},
          "head": {"name": "softmax", "steps": 10, "batch_size": 4}}
MB = 1 << 20


# --- crafting -----------------------------------------------------------------------------------------
def zero_deflate(prefix: bytes, zeros: int, suffix: bytes = b"") -> bytes:
    """A raw deflate stream of `prefix`, `zeros` zero bytes and `suffix`, made in milliseconds: after
    a full flush, 16 MiB of zeros always compress to the same block, so it is made once and repeated."""
    chunk = 16 * MB
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)]
    block = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH) if zeros >= chunk else b""
    parts += [block] * (zeros // chunk)
    parts.append(c.compress(bytes(zeros % chunk)) + c.compress(suffix) + c.flush())
    return b"".join(parts)


def raw_zip(entries: list[tuple]) -> bytes:
    """A zip of (name, method, packed bytes, declared unpacked size[, crc]) entries, written by hand
    so that packed data can be given as is (CRC 0 where none is given)."""
    out, central = bytearray(), bytearray()
    for name, method, data, size, *crc in entries:
        crc = crc[0] if crc else 0
        offset, n = len(out), name.encode()
        out += struct.pack("<4sHHHHHLLLHH", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0)
        out += n + data
        central += struct.pack("<4sHHHHHHLLLHHHHHLL", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(n), 0, 0, 0, 0, 0, offset) + n
    start = len(out)
    out += central + struct.pack("<4sHHHHLLH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), start, 0)
    return bytes(out)


def npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def stored_npz_of_zeros(shape: tuple[int, ...]) -> tuple[bytes, int]:
    """(the deflated bytes, the unpacked size) of an .npz (stored) of one float32 array of zeros."""
    header = npy_header(shape)
    size = len(header) + 4 * int(np.prod(shape))
    local = struct.pack("<4sHHHHHLLLHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, 0, size, size, 10, 0) + b"arr_0.npy"
    central = struct.pack("<4sHHHHHHLLLHHHHHLL", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, 0, size, size, 10, 0, 0, 0,
                          0, 0, 0) + b"arr_0.npy"
    end = struct.pack("<4sHHHHLLH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + size, 0)
    return zero_deflate(local + header, size - len(header), central + end), len(local) + size + len(central) + len(end)


def members(model: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(model) as z:
        return {name: z.read(name) for name in z.namelist()}


def rewrite(model: Path, out: Path, config=None, metadata=None, raw: dict | None = None, **replace: bytes) -> Path:
    """A copy of `model` with JSON members edited (`config`, `metadata`: functions), members
    replaced (`replace`, by name with "." as "_") and raw entries (`raw`: name -> (method, packed,
    size)) instead of written ones."""
    found = members(model)
    if config is not None:
        found["config.json"] = json.dumps(config(json.loads(found["config.json"]))).encode()
    if metadata is not None:
        found["metadata.json"] = json.dumps(metadata(json.loads(found["metadata.json"]))).encode()
    for key, data in replace.items():
        found[key.replace("_json", ".json").replace("_npz", ".npz")] = data
    raw = raw or {}
    entries = []
    for name, data in found.items():
        if name in raw:
            continue
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        entries.append((name, 8, c.compress(data) + c.flush(), len(data), zlib.crc32(data)))
    entries += [(name, *spec) for name, spec in raw.items()]
    out.write_bytes(raw_zip(entries))
    return out


def _set(key, value):
    def change(d):
        return {**d, key: value}
    return change


# --- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return image_dataset(tmp_path_factory.mktemp("images"), n=3)


@pytest.fixture(scope="module")
def model(images, tmp_path_factory) -> Path:
    """A small real model: the tiny seeded backbone, the whole image as the face, a softmax head."""
    detector = DeepfakeDetector(**CONFIG, cache=None)
    detector.fit(images, verbose=0, validation_split=0)
    return detector.save(tmp_path_factory.mktemp("model") / "model.dfd")


@pytest.fixture(scope="module")
def table(model, tmp_path_factory) -> dict[str, Path]:
    """The issue's table: one crafted file (or special path) per row."""
    d = tmp_path_factory.mktemp("hostile")
    rows = {}
    rows["mlp head of 10^9 units"] = rewrite(model, d / "units.dfd", config=_set("head", {"name": "mlp", "units": 10**9}))
    rows["n_features_in 10^8"] = rewrite(model, d / "n8.dfd", metadata=_set("n_features_in", 10**8))
    rows["n_features_in 10^9"] = rewrite(model, d / "n9.dfd", metadata=_set("n_features_in", 10**9))
    packed, size = stored_npz_of_zeros((256 * MB,))  # 1 GiB of float32 zeros
    rows["head_weights.npz inflating to 1 GiB"] = rewrite(model, d / "head_bomb.dfd",
                                                          raw={"head_weights.npz": (8, packed, size)})
    n = (1 << 30) - 64  # a 4 GB array of float32 zeros, deflated inside the .npz: 4 MB
    header = npy_header((n,))
    inner = raw_zip([("arr_0.npy", 8, zero_deflate(header, 4 * n), len(header) + 4 * n)])
    rows["backbone_weights.npz holding a 4 GB zero array"] = rewrite(
        model, d / "backbone_bomb.dfd", metadata=_set("fine_tuned_backbone", True), backbone_weights_npz=inner)
    lying = io.BytesIO()
    with zipfile.ZipFile(lying, "w") as z:
        z.writestr("arr_0.npy", npy_header((10**11,)) + bytes(64))
        z.writestr("arr_1.npy", npy_header((2,)) + bytes(8))
    rows[".npy header claiming 10^11 floats"] = rewrite(model, d / "npy.dfd", head_weights_npz=lying.getvalue())
    rows["config.json inflating to 2 GiB"] = rewrite(
        model, d / "config_bomb.dfd", raw={"config.json": (8, zero_deflate(b"{\"a\": \"", 2 << 30, b"\"}"), 2 << 30)})
    rows["metadata.json inflating to 3 GiB"] = rewrite(
        model, d / "metadata_bomb.dfd",
        raw={"metadata.json": (8, zero_deflate(b"{\"a\": \"", 3 << 30, b"\"}"), (3 << 30) - 1)})
    rows["config.json inflating to 512 MiB, declaring 100 bytes"] = rewrite(
        model, d / "config_liar.dfd", raw={"config.json": (8, zero_deflate(b"{\"a\": \"", 512 * MB, b"\"}"), 100)})
    fifo = d / "fifo.dfd"
    os.mkfifo(fifo)
    rows["MODEL is a FIFO"] = fifo
    for device in ("zero", "urandom"):  # named as a model file (.dfd), as `predict MODEL INPUTS` takes one
        (d / f"{device}.dfd").symlink_to(f"/dev/{device}")
        rows[f"MODEL is /dev/{device}"] = d / f"{device}.dfd"
    sparse = d / "huge.weights.h5"
    with open(sparse, "wb") as f:
        f.truncate(20 * 10**9)  # 20 GB, sparse: nothing written
    rows["backbone weights a 20 GB sparse file"] = rewrite(
        model, d / "sparse.dfd", config=_set("backbone", {"name": "test_tiny_conv", "weights": str(sparse)}))
    rows["mobilenet weights a 20 GB sparse file"] = rewrite(
        model, d / "sparse_mobilenet.dfd",
        config=_set("backbone", {"name": "mobilenet_v1", "alpha": 0.5, "input_size": 128, "weights": str(sparse)}))
    rows["weights file a FIFO"] = rewrite(
        model, d / "fifo_weights.dfd", config=_set("backbone", {"name": "test_tiny_conv", "weights": str(fifo)}))
    return rows


#: What each row's one-line refusal says.
EXPECTED = {
    "mlp head of 10^9 units": r"head \(.*\) declares [\d,]+ parameters .* more than the head budget",
    "n_features_in 10^8": "n_features_in is 100000000, wider than any backbone",
    "n_features_in 10^9": "n_features_in is 1000000000, wider than any backbone",
    "head_weights.npz inflating to 1 GiB": r"head_weights.npz is \d+ bytes unpacked, more than",
    "backbone_weights.npz holding a 4 GB zero array": r"backbone_weights.npz unpacks to more than a model holds",
    ".npy header claiming 10^11 floats": r"head_weights.npz/arr_0.npy declares shape \(100000000000,\)",
    "config.json inflating to 2 GiB": r"config.json is \d+ bytes unpacked, more than a model holds",
    "metadata.json inflating to 3 GiB": r"metadata.json is \d+ bytes unpacked, more than a model holds",
    "config.json inflating to 512 MiB, declaring 100 bytes": r"not a deepfake-detect model file \(Bad CRC",
    "MODEL is a FIFO": r"is a FIFO \(named pipe\), not a regular file",
    "MODEL is /dev/zero": "is a character device, not a regular file",
    "MODEL is /dev/urandom": "is a character device, not a regular file",
    "backbone weights a 20 GB sparse file": r"is 20.0 GB, more than any backbone's weights take .* limit is 2.1 GB",
    "mobilenet weights a 20 GB sparse file": r"is 20.0 GB, more than any backbone's weights take",
    "weights file a FIFO": r"is a FIFO \(named pipe\), not a regular file",
}

#: Rows where the model file is sound but names a hostile weights file: `info` shows it (it opens
#: no weights file); `load` and `predict` refuse it.
NAMES_ITS_WEIGHTS = {"backbone weights a 20 GB sparse file", "mobilenet weights a 20 GB sparse file",
                     "weights file a FIFO"}

_CHILD = """
import json, resource, sys, time, warnings
import tests.test_bad_inputs  # registers the tiny backbone
from click.testing import CliRunner
from deepfake_detect import DeepfakeDetector
from deepfake_detect.cli import main

rows, image = json.loads(sys.argv[1]), sys.argv[2]
runner = CliRunner()
out = {}
for name, path in rows:
    got = {}
    t = time.perf_counter()
    try:
        DeepfakeDetector.load(path, cache=None)
        got["load"] = ["loaded", ""]
    except Exception as e:
        got["load"] = [type(e).__name__, str(e)]
    got["load_s"] = time.perf_counter() - t
    for command, args in (("info", ["info", path]), ("predict", ["predict", "-q", "--no-cache", path, image])):
        t = time.perf_counter()
        r = runner.invoke(main, args)
        got[command] = [r.exit_code, r.output, None if isinstance(r.exception, SystemExit) else repr(r.exception)]
        got[command + "_s"] = time.perf_counter() - t
    got["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out[name] = got
print(json.dumps(out))
"""


def test_every_hostile_model_is_refused_fast_in_one_line_with_bounded_memory(model, table, images):
    """Each row: `load` raises `IncompatibleModelError` naming the file and what is wrong; `info` and
    `predict` print that one line and exit 1 (`info` shows a sound file that names a hostile weights
    file); each in under 2 s; peak RSS stays near the baseline
    (a good model loaded and predicted first)."""
    image = str(next((images / "real").iterdir()))
    rows = [("good model", str(model)), *((name, str(path)) for name, path in table.items())]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(rows), image], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    good = found.pop("good model")
    assert good["load"][0] == "loaded" and good["info"][0] == 0 and good["predict"][0] == 0, good
    report = [f"\n{'row':52} {'load s':>7} {'info s':>7} {'predict s':>9} {'peak RSS MB':>11}"]
    for name, got in found.items():
        report.append(f"{name:52} {got['load_s']:7.3f} {got['info_s']:7.3f} {got['predict_s']:9.3f} "
                      f"{got['maxrss_mb']:11.0f}")
        message = EXPECTED[name]
        assert got["load"][0] == "IncompatibleModelError", (name, got["load"])
        import re

        assert re.search(message, got["load"][1]), (name, got["load"][1])
        for command in ("info", "predict"):
            code, output, exception = got[command]
            lines = output.strip().splitlines()
            if command == "info" and name in NAMES_ITS_WEIGHTS:  # the file is sound: info shows it, opening nothing
                assert code == 0 and json.loads(output)["config"]["backbone"]["weights"], (name, output)
                continue
            assert code == 1 and exception is None, (name, command, got[command])
            assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(message, lines[0]), \
                (name, command, output)
        for key in ("load_s", "info_s", "predict_s"):
            assert got[key] < 2.0, (name, key, got[key])
    peak = max(got["maxrss_mb"] for got in found.values())
    print("\n".join(report) + f"\nbaseline (good model loaded and predicted): {good['maxrss_mb']:.0f} MB")
    assert peak < good["maxrss_mb"] + 200, f"a hostile file took {peak - good['maxrss_mb']:.0f} MB more than a good one"


# --- regular files only: inputs ---------------------------------------------------------------------------
@pytest.mark.parametrize("cache", [None, "tmp"], ids=["no cache", "cache"])
def test_a_fifo_or_device_given_as_a_video_is_refused_at_once(model, tmp_path, cache):
    detector = DeepfakeDetector.load(model, cache=None if cache is None else tmp_path / "c.sqlite")
    fifo = tmp_path / "video.mp4"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO"), ("/dev/zero", "a character device")):
        t = time.perf_counter()
        with pytest.raises(errors.VideoReadError, match=f"is {kind}.*not a regular file"):
            detector.predict_video(path)
        assert time.perf_counter() - t < 2


def test_predict_goes_on_past_a_fifo_among_its_inputs(model, images, tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    a, b = sorted((images / "real").iterdir())[:2]
    result = CliRunner().invoke(main, ["predict", "-q", "--cache", str(tmp_path / "c.sqlite"), str(model), str(a),
                                       str(fifo), str(b)])
    assert result.exit_code == 1, result.output
    assert "error: " in result.stderr and "FIFO" in result.stderr
    assert _predicted(result.stdout) == [str(a), str(b)]


def _predicted(stdout: str) -> list[str]:
    """The inputs `predict`'s plain output gives a verdict for (not its header, not failed inputs)."""
    return [m.group(2) for m in re.finditer(r"^ +\S+ -> (real|fake|inconclusive|unknown) +\d+/\d+  (\S+)", stdout, re.M)]


# --- the cache never stops a prediction ---------------------------------------------------------------------
def _disk_full(monkeypatch) -> list[int]:
    """Every cache write fails as on a full disk (SQLite's own error, raised inside the write)."""
    calls = []

    def put_rows(self, rows, described):
        calls.append(len(rows))
        with self._write("writing"):
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(FeatureCache, "_put_rows", put_rows)
    return calls


def test_predict_a_b_c_with_the_cache_on_a_full_disk_predicts_all_three_and_warns_once(model, images, tmp_path,
                                                                                         monkeypatch):
    inputs = [str(p) for p in sorted((images / "real").iterdir()) + sorted((images / "fake").iterdir())][:3]
    calls = _disk_full(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(main, ["predict", "-q", "--cache", str(tmp_path / "c.sqlite"), str(model),
                                           *inputs])
    assert result.exit_code == 0, result.output
    assert _predicted(result.stdout) == inputs
    warned = [str(w.message) for w in caught if "feature cache" in str(w.message)]
    assert len(warned) == 1 and "disk is full" in warned[0] and "Going on without the feature cache" in warned[0]
    assert len(calls) == 1  # one failed write (of the entries pending then), then no more tries


@pytest.mark.skipif(os.geteuid() != 0 or sys.platform != "linux", reason="mounts a small tmpfs: needs root on Linux")
def test_a_real_full_disk_neither_stops_predict_nor_loses_a_fit(model, images, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        FeatureCache(disk / "c.sqlite").close()
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)  # fill the disk
        try:
            while os.write(fd, bytes(4096)):
                pass
        except OSError as e:
            assert e.errno == errno.ENOSPC
        finally:
            os.close(fd)
        inputs = [str(p) for p in sorted((images / "real").iterdir())]
        result = CliRunner().invoke(main, ["predict", "-q", "--cache", str(disk / "c.sqlite"), str(model), *inputs])
        assert result.exit_code == 0, result.output
        assert _predicted(result.stdout) == inputs

        detector = DeepfakeDetector.load(model, cache=None)
        with pytest.raises(errors.SaveError, match=rf"{disk}/m.dfd: cannot save the model: the disk is full "
                                                   r"\(the model needs [\d.]+ MB; [\d.]+ MB free"):
            detector.save(disk / "m.dfd")
        assert not [p for p in os.listdir(disk) if p.endswith(".tmp")]
        assert detector.save(tmp_path / "m.dfd").exists()  # the fitted detector is intact: saved elsewhere
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_failed_cache_read_warns_once_and_predicts(model, images, tmp_path, monkeypatch):
    detector = DeepfakeDetector.load(model, cache=tmp_path / "c.sqlite")

    def lookup(self, *args, **kwargs):
        with self._errors("reading"):
            raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(FeatureCache, "lookup", lookup)
    inputs = sorted((images / "real").iterdir())
    with pytest.warns(RuntimeWarning, match="database is locked.*Going on without the feature cache") as caught:
        preds = [detector.predict_video(p) for p in inputs]
    assert [p.label in ("real", "fake") for p in preds] == [True] * len(inputs)
    assert len([w for w in caught if "feature cache" in str(w.message)]) == 1


def test_an_entry_over_the_entry_limit_is_not_stored_and_the_prediction_stands(tmp_path):
    """A very long video's crops (SQLite stores no blob over 1e9 bytes) are skipped, with one warning."""
    cache = FeatureCache(tmp_path / "c.sqlite", max_bytes=40_000)  # entries of at most 10,000 bytes
    small = FaceFeatures(np.arange(2), np.zeros(2), np.zeros((2, 4), np.float32), np.ones(2, np.float32),
                         np.ones((2, 8), np.float32), 2)
    big = FaceFeatures(np.arange(100), np.zeros(100), np.zeros((100, 4), np.float32), np.ones(100, np.float32),
                       np.ones((100, 64), np.float32), 100)  # 25,600 bytes of features
    with pytest.warns(RuntimeWarning, match="more than one cache entry holds") as caught:
        with cache.writer() as w:
            w.put_features("big", "fp", big)
            w.put_features("big2", "fp", big)
            w.put_features("small", "fp", small)
    assert len(caught) == 1
    assert set(cache.get_features(["big", "big2", "small"], "fp")) == {"small"}


def test_the_cache_keeps_to_its_limit_evicting_the_least_recently_used(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_DETECT_CACHE_MAX_BYTES", "20kB")
    cache = FeatureCache(tmp_path / "c.sqlite")
    assert cache.max_bytes == 20_000
    rows = lambda n: FaceFeatures(np.arange(n), np.zeros(n), np.zeros((n, 4), np.float32),  # noqa: E731
                                  np.ones(n, np.float32), np.ones((n, 32), np.float32), n)
    for i in range(12):  # 12 entries of 3,936 bytes: 47 kB written into a 20 kB cache
        cache.put_features(f"d{i}", "fp", rows(24))
        if i == 2:
            with sqlite3.connect(tmp_path / "c.sqlite") as db:  # d0: read recently
                db.execute("UPDATE entries SET used = used + 1e6 WHERE digest = 'd0'")
    assert cache.stored_bytes() <= 20_000
    kept = set(cache.get_features([f"d{i}" for i in range(12)], "fp"))
    assert "d0" in kept and "d11" in kept and "d1" not in kept
    info = cache.info()
    assert info["max_bytes"] == 20_000 and info["stored_bytes"] == cache.stored_bytes() and info["used_percent"] <= 100
    assert FeatureCache(tmp_path / "c.sqlite", max_bytes=None).max_bytes is None
    with pytest.raises(ValueError, match="DEEPFAKE_DETECT_CACHE_MAX_BYTES.*not a size in bytes"):
        monkeypatch.setenv("DEEPFAKE_DETECT_CACHE_MAX_BYTES", "lots")
        FeatureCache(tmp_path / "c.sqlite")


def test_cache_info_shows_usage_against_the_limit_set_on_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_DETECT_CACHE_MAX_BYTES", "")  # the option sets it for the process: undone after
    FeatureCache(tmp_path / "c.sqlite").put_features("d", "fp", FaceFeatures(
        np.arange(1), np.zeros(1), np.zeros((1, 4), np.float32), np.ones(1, np.float32), np.ones((1, 4), np.float32), 1))
    result = CliRunner().invoke(main, ["cache", "--path", str(tmp_path / "c.sqlite"), "--cache-max-bytes", "1MB",
                                       "info"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["max_bytes"] == 1_000_000 and info["stored_bytes"] == 52
    bad = CliRunner().invoke(main, ["cache", "--cache-max-bytes", "lots", "info"])
    assert bad.exit_code == 2 and "not a size in bytes" in bad.output


def test_the_damaged_entry_warning_names_the_cli_command(tmp_path):
    cache = FeatureCache(tmp_path / "c.sqlite")
    feats = FaceFeatures(np.arange(1), np.zeros(1), np.zeros((1, 4), np.float32), np.ones(1, np.float32),
                         np.ones((1, 4), np.float32), 1)
    cache.put_features("d", "fp", feats)
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        db.execute("UPDATE entries SET checksum = 'x'")
    with pytest.warns(RuntimeWarning, match=r"deepfake-detect cache --path .* verify --drop"):
        assert cache.get_features(["d"], "fp") == {}


def test_a_writer_that_fails_raises_unless_told_what_to_do(tmp_path, monkeypatch):
    _disk_full(monkeypatch)
    feats = FaceFeatures(np.arange(1), np.zeros(1), np.zeros((1, 4), np.float32), np.ones(1, np.float32),
                         np.ones((1, 4), np.float32), 1)
    cache = FeatureCache(tmp_path / "c.sqlite")
    with pytest.raises(errors.CacheError, match="disk is full"):
        cache.put_features("d", "fp", feats)
    seen = []
    with CacheWriter(cache, on_error=seen.append) as w:
        w.put_features("d", "fp", feats)
    w.put_features("e", "fp", feats)
    w.commit()
    assert len(seen) == 1 and w.failed


# --- saving: full disks, stale temporaries, messages --------------------------------------------------------
def _full_disk_at(monkeypatch, folder: Path) -> None:
    """Files written into `folder` fail to reach the disk as on a full one (at `os.fsync`)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to tell which file is synced")
    fsync = os.fsync

    def full_fsync(fd):
        if Path(os.readlink(f"/proc/self/fd/{fd}")).parent == folder:
            raise OSError(errno.ENOSPC, "No space left on device")
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", full_fsync)


def test_save_on_a_full_disk_is_one_line_and_the_detector_is_kept(model, tmp_path, monkeypatch):
    full = tmp_path / "full"
    full.mkdir()
    _full_disk_at(monkeypatch, full)
    detector = DeepfakeDetector.load(model, cache=None)
    with pytest.raises(errors.SaveError) as caught:
        detector.save(full / "m.dfd")
    message = str(caught.value)
    assert "\n" not in message and isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
    assert message.startswith(f"{full}/m.dfd: cannot save the model: the disk is full (the model needs ")
    assert "MB free in" in message and "unchanged in memory" in message
    assert detector.save(tmp_path / "m.dfd").exists()


def test_fit_onto_a_full_disk_keeps_the_trained_model_elsewhere_and_says_where(images, tmp_path, monkeypatch):
    full = tmp_path / "full"
    full.mkdir()
    _full_disk_at(monkeypatch, full)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    result = CliRunner().invoke(main, ["fit", "-q", str(images), "-o", str(full / "m.dfd"), "--sampler", "uniform:n=1",
                                       "--face-detector", "none", "--backbone", "test_tiny_conv",
                                       "--head", "softmax:steps=5", "--no-cache"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the disk is full" in lines[0] and "It was saved to " in lines[0], result.stderr
    kept = Path(lines[0].split("It was saved to ")[1].split(" instead")[0])
    assert kept.is_relative_to(tmp_path / "tmp") and DeepfakeDetector.load(kept, cache=None).head_ is not None


def test_the_next_save_removes_temporaries_of_killed_saves_only(model, tmp_path):
    target = tmp_path / "m.dfd"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale_dead = tmp_path / f".m.dfd.{dead}.0123abcd.tmp"
    stale_old = tmp_path / f".m.dfd.{os.getpid()}.89abcdef.tmp"
    running = tmp_path / f".m.dfd.{os.getpid()}.deadbeef.tmp"
    other = tmp_path / f".other.dfd.{dead}.0123abcd.tmp"
    for p in (stale_dead, stale_old, running, other):
        p.write_bytes(b"half a model")
    os.utime(stale_old, (time.time() - 3600, time.time() - 3600))
    DeepfakeDetector.load(model, cache=None).save(target)
    assert not stale_dead.exists() and not stale_old.exists()
    assert running.exists() and other.exists()


def test_unknown_part_message_has_no_doubled_period(model, tmp_path):
    path = rewrite(model, tmp_path / "m.dfd", config=_set("head", {"name": "nope"}))
    with pytest.raises(errors.IncompatibleModelError) as caught:
        DeepfakeDetector.load(path)
    assert ".." not in str(caught.value) and "unknown head 'nope'" in str(caught.value)


def test_budgets_are_configurable(model, tmp_path, monkeypatch):
    path = rewrite(model, tmp_path / "m.dfd", config=_set("head", {"name": "mlp", "units": 1000}),
                   metadata=_set("n_features_in", 8))
    monkeypatch.setenv("DEEPFAKE_DETECT_MAX_HEAD_BYTES", "1kB")
    with pytest.raises(errors.IncompatibleModelError, match="more than the head budget of 1,000 bytes"):
        saving.read_model(path, arrays=False)
    monkeypatch.delenv("DEEPFAKE_DETECT_MAX_HEAD_BYTES")
    with pytest.raises(errors.IncompatibleModelError, match=r"head weights of shapes \[\(8, 2\), \(2,\)\] do not "
                                                            r"match the declared head \(\[\(8, 1000\)"):
        saving.read_model(path)


def test_a_long_videos_crops_over_the_entry_limit_are_skipped_and_its_features_kept(images, tmp_path):
    """The crops of a very long video (over a GB at 1 fps for ~5.7 h) would pass SQLite's blob limit:
    they are not stored, with one warning; its features are, and the extraction stands."""
    cache = FeatureCache(tmp_path / "c.sqlite", max_bytes=8000)  # entries of at most 2,000 bytes: no 32 px crop
    detector = DeepfakeDetector(**CONFIG, cache=cache)
    inputs = sorted((images / "real").iterdir())
    with pytest.warns(RuntimeWarning, match="the crops of an input take .* not cached") as caught:
        feats = detector.extract_features(inputs, verbose=0)
    assert len([w for w in caught if "not cached" in str(w.message)]) == 1
    assert all(len(f) == 1 for f in feats)
    kinds = {fp["kind"]: fp["entries"] for fp in cache.info()["fingerprints"].values()}
    assert kinds == {"features": len(inputs)}
