"""Dataset discovery (layouts, groups, errors, duplicates, links) and grouped / official splits."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from deepfake_detect.datasets import discover, grouped_folds, grouped_split, official_split, train_test_split
from deepfake_detect.errors import DatasetError


def touch(root: Path, *names: str) -> None:
    """Tiny stand-in media files, each with its own bytes (discovery never decodes them)."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def by_name(samples) -> dict:
    return {Path(s.path).name: s for s in samples}


def test_real_and_fake_folders_at_any_depth(tmp_path):
    touch(tmp_path, "part1/real/a/clip1.mp4", "part1/fake/clip2.avi", "part2/deep/real/photo.jpg",
          "part2/fake/x/y/clip3.mp4", "part2/notes.txt", "unlabelled/clip4.mp4")
    found = by_name(discover(tmp_path))
    assert {n: s.label for n, s in found.items()} == {"clip1.mp4": 0, "photo.jpg": 0, "clip2.avi": 1, "clip3.mp4": 1}
    assert len({s.group for s in found.values()}) == 4  # each input its own group


def test_faceforensics_tree_methods_groups_and_masks(tmp_path):
    touch(tmp_path, *(f"original_sequences/youtube/c23/videos/{i}.mp4" for i in ("000", "001", "002", "003")),
          "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4",
          "manipulated_sequences/Face2Face/c23/videos/001_000.mp4",
          "manipulated_sequences/FaceSwap/c23/videos/002_003.mp4",
          "manipulated_sequences/Deepfakes/masks/videos/000_001.mp4")
    found = by_name(discover(tmp_path))
    assert len(found) == 7  # the mask video is not an input
    assert [found[n].label for n in ("000.mp4", "003.mp4", "000_001.mp4", "002_003.mp4")] == [0, 0, 1, 1]
    assert {found[n].method for n in ("000_001.mp4", "001_000.mp4", "002_003.mp4")} == {"Deepfakes", "Face2Face",
                                                                                         "FaceSwap"}
    assert found["000.mp4"].group == found["001.mp4"].group == found["000_001.mp4"].group == found["001_000.mp4"].group
    assert found["002.mp4"].group == found["003.mp4"].group == found["002_003.mp4"].group != found["000.mp4"].group


def test_faceforensics_tree_with_several_compressions_needs_a_choice(tmp_path):
    touch(tmp_path, "original_sequences/youtube/c23/videos/000.mp4", "original_sequences/youtube/c40/videos/000.mp4",
          "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4",
          "manipulated_sequences/Deepfakes/c40/videos/000_001.mp4")
    with pytest.raises(DatasetError, match="several compressions.*c23, c40"):
        discover(tmp_path)
    assert all("/c40/" in s.path for s in discover(tmp_path, compression="c40"))
    with pytest.raises(DatasetError, match="'raw'"):
        discover(tmp_path, compression="raw")


def test_flattened_faceforensics_names_share_a_group_with_their_target(tmp_path):
    touch(tmp_path, "real/000.mp4", "real/003.mp4", "real/010.mp4", "real/other.mp4", "fake/000_003.mp4",
          "fake/Deepfakes_010_011.mp4", "real/01__walking.mp4", "fake/02_01__talking__X1Y2Z3.mp4")
    found = by_name(discover(tmp_path))
    assert found["01__walking.mp4"].group == found["02_01__talking__X1Y2Z3.mp4"].group  # DeepFakeDetection actors
    assert found["000.mp4"].group == found["003.mp4"].group == found["000_003.mp4"].group
    assert found["010.mp4"].group == found["Deepfakes_010_011.mp4"].group != found["000.mp4"].group
    assert found["Deepfakes_010_011.mp4"].method == "Deepfakes"
    assert found["other.mp4"].group == found["other.mp4"].path


def test_labels_csv_group_source_and_method_columns(tmp_path):
    touch(tmp_path, "v/a.mp4", "v/b.mp4", "v/c.mp4", "v/d.mp4", "v/e.mp4")
    (tmp_path / "labels.csv").write_text("path,label,group,method,source\n"
                                         "v/a.mp4,real,,,\n"
                                         "v/b.mp4,fake,,swap,v/a.mp4\n"  # joins a's group through its source
                                         "v/c.mp4,1,,reenact,a\n"  # a source given by file stem
                                         "v/d.mp4,0,people-7,,\n"  # a group column wins
                                         "v/e.mp4,FAKE,people-7,swap,\n")
    found = by_name(discover(tmp_path))
    assert [found[f"{n}.mp4"].label for n in "abcde"] == [0, 1, 1, 0, 1]
    assert found["a.mp4"].group == found["b.mp4"].group == found["c.mp4"].group
    assert found["d.mp4"].group == found["e.mp4"].group == "people-7"
    assert (found["b.mp4"].method, found["c.mp4"].method) == ("swap", "reenact")


@pytest.mark.parametrize("rows, message", [
    ("v/a.mp4,real\nv/b.mp4,deepfake\n", "line 3: unknown label 'deepfake'"),
    ("v/a.mp4,real\nv/missing.mp4,fake\n", "line 3: v/missing.mp4 does not exist"),
])
def test_labels_csv_errors_name_the_line(tmp_path, rows, message):
    touch(tmp_path, "v/a.mp4", "v/b.mp4")
    (tmp_path / "labels.csv").write_text("path,label\n" + rows)
    with pytest.raises(DatasetError, match=message):
        discover(tmp_path)


def test_unusable_folders_raise_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        discover(tmp_path / "absent")
    (tmp_path / "empty" / "real").mkdir(parents=True)
    (tmp_path / "empty" / "fake").mkdir()
    with pytest.raises(DatasetError, match="no videos or images"):
        discover(tmp_path / "empty")
    touch(tmp_path, "one/real/a.mp4", "one/real/b.mp4")
    with pytest.raises(DatasetError, match="every input is real"):
        discover(tmp_path / "one")
    touch(tmp_path, "flat/a.mp4", "flat/b.mp4")
    with pytest.raises(DatasetError, match="unknown layout"):
        discover(tmp_path / "flat")
    touch(tmp_path, "both/real/fake/a.mp4", "both/fake/b.mp4")
    with pytest.raises(DatasetError, match="both a real/ and a fake/ folder"):
        discover(tmp_path / "both")


def test_duplicated_files_are_counted_once_with_a_warning(tmp_path):
    touch(tmp_path, "real/a.mp4", "fake/b.mp4")
    (tmp_path / "real" / "a_copy.mp4").write_bytes((tmp_path / "real" / "a.mp4").read_bytes())
    (tmp_path / "real" / "a_link.mp4").symlink_to(tmp_path / "real" / "a.mp4")
    with pytest.warns(UserWarning, match="2 input.*same bytes.*counted once"):
        found = discover(tmp_path)
    assert sorted(Path(s.path).name for s in found) == ["a.mp4", "b.mp4"]
    (tmp_path / "fake" / "a_as_fake.mp4").write_bytes((tmp_path / "real" / "a.mp4").read_bytes())
    with pytest.raises(DatasetError, match="same bytes but are labelled"):
        discover(tmp_path)


def test_folder_links_are_followed_and_link_loops_end(tmp_path):
    touch(tmp_path, "data/real/a.mp4", "data/fake/b.mp4", "elsewhere/c.mp4")
    (tmp_path / "data" / "fake" / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "data" / "real" / "loop").symlink_to(tmp_path / "data", target_is_directory=True)
    result = {}
    worker = threading.Thread(target=lambda: result.update(found=discover(tmp_path / "data")), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "discover did not finish: a link loop was followed forever"
    found = by_name(result["found"])
    assert {n: s.label for n, s in found.items()} == {"a.mp4": 0, "b.mp4": 1, "c.mp4": 1}


def groups_of_size(sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and groups: group g has sizes[g] inputs, alternating real and fake."""
    groups = np.concatenate([np.full(n, g) for g, n in enumerate(sizes)])
    labels = np.arange(len(groups)) % 2
    return labels, groups


def test_grouped_folds_keep_groups_whole_and_test_each_input_once():
    labels, groups = groups_of_size([1, 2, 3, 4, 5, 2, 3, 1, 4, 6, 2, 3])
    folds = grouped_folds(labels, groups, folds=5, seed=3)
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(len(labels)))
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        assert set(train) | set(test) == set(range(len(labels)))
        assert set(labels[test]) == {0, 1}
    again = grouped_folds(labels, groups, folds=5, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    other = grouped_folds(labels, groups, folds=5, seed=4)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))


def test_grouped_folds_refuse_too_few_groups():
    labels, groups = groups_of_size([4, 4, 4])
    with pytest.raises(DatasetError, match="5 grouped folds need at least 5 groups"):
        grouped_folds(labels, groups, folds=5)
    with pytest.raises(ValueError, match="folds must be an integer >= 2"):
        grouped_folds(labels, groups, folds=1)


def test_grouped_split_keeps_both_classes_on_both_sides():
    groups = np.repeat(np.arange(4), [3, 2, 2, 1])
    labels = np.isin(groups, [2, 3]).astype(int)  # each group one class: the first of the folds is all real
    train, test = grouped_split(labels, groups, test_size=0.3, seed=0)
    assert set(labels[train]) == set(labels[test]) == {0, 1}
    assert not set(groups[train]) & set(groups[test])
    with pytest.raises(DatasetError, match="keeps both classes on both sides"):
        grouped_split(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1]))  # two groups, each one class


def test_train_test_split_on_samples_is_grouped(tmp_path):
    touch(tmp_path, *(f"real/{i:03d}.mp4" for i in range(10)),
          *(f"fake/{i:03d}_{i + 1:03d}.mp4" for i in range(0, 10, 2)))
    samples = discover(tmp_path)
    train, test = train_test_split(samples, test_size=0.2, seed=0)
    assert len(train) + len(test) == len(samples) and test
    assert not {s.group for s in train} & {s.group for s in test}


def test_official_faceforensics_split(tmp_path):
    touch(tmp_path, *(f"real/{i}.mp4" for i in ("000", "001", "002", "003", "004", "005", "999")),
          "fake/000_001.mp4", "fake/Deepfakes_001_000.mp4", "fake/002_003.mp4", "fake/004_005.mp4",
          "fake/FaceSwap_005_004.mp4")
    splits = tmp_path / "splits"
    splits.mkdir()
    for name, pairs in (("train", [["000", "001"]]), ("val", [["002", "003"]]), ("test", [["004", "005"]])):
        (splits / f"{name}.json").write_text(json.dumps(pairs))
    samples = discover(tmp_path)
    sides = official_split(samples, splits)
    names = {side: sorted(Path(samples[i].path).stem for i in rows) for side, rows in sides.items()}
    assert names == {"train": ["000", "000_001", "001", "Deepfakes_001_000"], "val": ["002", "002_003", "003"],
                     "test": ["004", "004_005", "005", "FaceSwap_005_004"]}  # 999 is in no split
    (splits / "val.json").write_text(json.dumps([["002", "000"]]))
    with pytest.raises(DatasetError, match="video 000 is in both train and val"):
        official_split(samples, splits)


def test_discovery_of_the_generated_dataset(dataset_dir):
    samples = discover(dataset_dir)
    assert Counter(s.label for s in samples) == {0: 6, 1: 6}
    assert {s.group for s in samples} == {"portraits_0_1", "portraits_2_3"}  # its labels.csv: people swapped within


def tfds_config(cls, **kwargs):
    """A small config: 2 frames a video, 64 px crops."""
    return cls(sampler={"name": "uniform", "n": 2}, crop_size=64, **kwargs)


def test_tfds_folder_builder_on_the_generated_dataset(dataset_dir, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets", reason="the TFDS builders need the 'tfds' extra")
    from deepfake_detect.datasets.tfds_builders import DeepfakeFolder, DeepfakeFolderConfig

    builder = DeepfakeFolder(data_dir=tmp_path, config=tfds_config(DeepfakeFolderConfig, name="small", test_size=0.25))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(dataset_dir)))
    data = tfds.data_source("deepfake_folder/small", data_dir=tmp_path, download=False)  # by name, offline
    examples = {split: [data[split][i] for i in range(len(data[split]))] for split in ("train", "test")}
    assert sum(map(len, examples.values())) == 24  # 12 videos, a face in each of 2 frames
    assert len(examples["test"]) == 8  # a whole group: the 4 videos of portraits 2 and 3
    groups = {split: {e["group"] for e in rows} for split, rows in examples.items()}
    assert not groups["train"] & groups["test"]
    first = examples["test"][0]
    assert first["image"].shape == (64, 64, 3) and first["image"].dtype == np.uint8 and first["image"].std() > 10
    assert first["group"] == b"portraits_2_3" and first["video"].decode().split("/")[0] in ("real", "fake")
    assert {e["label"] for rows in examples.values() for e in rows} == {0, 1}


def test_tfds_faceforensics_builder_on_a_miniature_tree(dataset_dir, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets", reason="the TFDS builders need the 'tfds' extra")
    from deepfake_detect.datasets.tfds_builders import FaceForensics, FaceForensicsConfig

    manual = tmp_path / "FaceForensics++"
    methods = ["Deepfakes", "FaceSwap"]
    for i in range(6):
        real = manual / "original_sequences" / "youtube" / "c23" / "videos" / f"{i:03d}.mp4"
        fake = manual / "manipulated_sequences" / methods[i % 2] / "c23" / "videos" / f"{i:03d}_{i ^ 1:03d}.mp4"
        for link, target in ((real, dataset_dir / "real" / f"real_{i:03d}.mp4"),
                             (fake, dataset_dir / "fake" / f"fake_{i:03d}.mp4")):
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)
    mask = manual / "manipulated_sequences" / "Deepfakes" / "masks" / "videos" / "000_001.mp4"
    mask.parent.mkdir(parents=True)
    mask.write_bytes(b"a mask video, never read")
    (manual / "splits").mkdir()
    for name, pairs in (("train", [["000", "001"], ["002", "003"]]), ("val", [["004", "005"]]), ("test", [])):
        (manual / "splits" / f"{name}.json").write_text(json.dumps(pairs))
    config = tfds_config(FaceForensicsConfig, name="mini_deepfakes", compression="c23", methods=("Deepfakes",))
    builder = FaceForensics(data_dir=tmp_path / "tfds", config=config)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    data = builder.as_data_source()
    assert {split: len(rows) for split, rows in data.items()} == {"train": 12, "validation": 6}  # test: no video
    videos = {split: sorted({data[split][i]["video"].decode().split("/")[-1] for i in range(len(data[split]))})
              for split in ("train", "validation")}
    assert videos == {"train": ["000.mp4", "000_001.mp4", "001.mp4", "002.mp4", "002_003.mp4", "003.mp4"],
                      "validation": ["004.mp4", "004_005.mp4", "005.mp4"]}  # FaceSwap fakes are not in this config
    fake = next(data["train"][i] for i in range(12) if data["train"][i]["label"] == 1)
    assert fake["method"] == b"Deepfakes"
    assert {c.name for c in FaceForensics.BUILDER_CONFIGS} >= {"c23", "c40", "raw", "c23_deepfakes", "c40_faceswap"}


def test_tfds_load_reads_a_prepared_folder_dataset(dataset_dir, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets", reason="the TFDS builders need the 'tfds' extra")
    pytest.importorskip("tensorflow", reason="tfds.load returns a tf.data.Dataset: it needs TensorFlow")
    from deepfake_detect.datasets.tfds_builders import DeepfakeFolderConfig

    config = tfds_config(DeepfakeFolderConfig, name="small", test_size=0.25)
    ds = tfds.load("deepfake_folder", split="test", data_dir=tmp_path, as_supervised=True,
                   builder_kwargs={"config": config},
                   download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
                       manual_dir=str(dataset_dir))})
    pairs = [(image.numpy(), int(label)) for image, label in ds]
    assert len(pairs) == 6 and pairs[0][0].shape == (64, 64, 3)
