"""TensorFlow Datasets builders of face crops with labels and groups (``pip install "deepfake-detect[tfds]"``).

- `DeepfakeFolder` ("deepfake_folder"): any dataset folder that `discover` reads, split
  into ``train`` and ``test`` by group (no video, and no person where names tell, on both
  sides);
- `FaceForensics` ("face_forensics"): a FaceForensics++ download, one config per
  compression and method set (``c23``, ``c40_deepfakes``, ...), with the official
  ``train``/``validation``/``test`` split read from ``splits/{train,val,test}.json``.

Both read their videos from the manual download folder, offline::

    import deepfake_detect.datasets.tfds_builders  # registers the builders
    config = tfds.download.DownloadConfig(manual_dir="data/")
    ds = tfds.data_source("deepfake_folder", data_dir="tfds/",
                          download_and_prepare_kwargs={"download_config": config})

Each example is one sampled frame's face: ``image`` (RGB, crop_size square), ``label``
(real/fake), ``group`` (a video on its own is its own group, named by its ``video``),
``method``, ``video`` (path below the manual folder), ``frame`` and ``time`` (seconds).
Records are written as Parquet, the one TFDS format that is both written and read without
TensorFlow (`tfds.data_source`, random access) and read by `tfds.load` where TensorFlow
is installed; pass ``file_format=`` to the builder for another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

try:
    import tensorflow_datasets as tfds
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError('the TFDS builders need tensorflow-datasets: pip install "deepfake-detect[tfds]"') from e

from ..faces import CropPolicy, face_detectors
from ..sampling import samplers
from ..extraction import face_crops
from .discovery import Sample, discover
from .splits import grouped_split, official_split

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
FFPP_COMPRESSIONS = ("c23", "c40", "raw")


@dataclasses.dataclass(eq=False)
class FaceCropConfig(tfds.core.BuilderConfig):
    """How faces are cut from the videos: which frames (`sampler`, a registry spec), which
    face detector, the crop policy (a `CropPolicy` config dict) and the crop's side in pixels."""

    sampler: Any = dataclasses.field(default_factory=lambda: {"name": "fixed_rate", "fps": 1.0})
    face_detector: Any = "retinaface"
    crop: dict = dataclasses.field(default_factory=dict)
    crop_size: int = 128


@dataclasses.dataclass(eq=False)
class DeepfakeFolderConfig(FaceCropConfig):
    """`test_size`: the share of groups held out as ``test`` (0: everything in ``train``)."""

    test_size: float = 0.2
    seed: int = 0


@dataclasses.dataclass(eq=False)
class FaceForensicsConfig(FaceCropConfig):
    """One compression ("c23", "c40", "raw") and the manipulation methods taken as fakes."""

    compression: str = "c23"
    methods: tuple[str, ...] = FFPP_METHODS


class _FaceCropBuilder(tfds.core.GeneratorBasedBuilder):
    """Shared by the builders: the features, Parquet files, and the face-crop examples."""

    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, *, file_format: str | None = None, **kwargs):
        super().__init__(file_format=file_format or "parquet", **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.crop_size
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(size, size, 3), encoding_format="png"),
                "label": tfds.features.ClassLabel(names=["real", "fake"]),
                "group": tfds.features.Text(),
                "method": tfds.features.Text(),
                "video": tfds.features.Text(),
                "frame": np.int64,
                "time": np.float32,
            }),
            supervised_keys=("image", "label"),
        )

    def _generate_examples(self, samples: Sequence[Sample], root: Path) -> Iterator[tuple[str, dict]]:
        config = self.builder_config
        sampler = samplers.create(config.sampler)
        detector = face_detectors.create(config.face_detector)
        policy = CropPolicy(**config.crop)
        for sample in samples:
            path = Path(sample.path)
            video = path.relative_to(root).as_posix() if path.is_relative_to(root) else sample.path
            group = video if sample.group == sample.path else sample.group
            found = face_crops(path, sampler, detector, policy, config.crop_size)
            for index, time, face in zip(found.frame_indices.tolist(), found.times.tolist(), found.crops):
                ok, png = cv2.imencode(".png", cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
                if not ok:
                    raise ValueError(f"{sample.path}, frame {index}: cannot encode the face crop as PNG")
                yield f"{video}#{index}", {
                    "image": png.tobytes(), "label": sample.label, "group": group,
                    "method": sample.method, "video": video, "frame": index, "time": time,
                }

class DeepfakeFolder(_FaceCropBuilder):
    """Face crops of a deepfake dataset folder (real/ and fake/, FaceForensics++'s tree, or a
    labels.csv), split into train and test by group."""

    BUILDER_CONFIGS = [DeepfakeFolderConfig(name="default", description="1 frame a second, 128 px crops")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Pass the dataset folder as the manual dir: real/ and fake/ subfolders, "
                                    "FaceForensics++'s tree, or a labels.csv (see deepfake_detect.datasets).")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        root = Path(dl_manager.manual_dir).resolve()
        samples = discover(root)
        config = self.builder_config
        if not config.test_size:
            return {"train": self._generate_examples(samples, root)}
        train, test = grouped_split(np.array([s.label for s in samples]), np.array([s.group for s in samples]),
                                    config.test_size, config.seed)
        return {"train": self._generate_examples([samples[i] for i in train], root),
                "test": self._generate_examples([samples[i] for i in test], root)}


def _ffpp_configs() -> list[FaceForensicsConfig]:
    configs = []
    for compression in FFPP_COMPRESSIONS:
        configs.append(FaceForensicsConfig(name=compression, compression=compression,
                                           description=f"{compression}, every method"))
        configs += [FaceForensicsConfig(name=f"{compression}_{m.lower()}", compression=compression, methods=(m,),
                                        description=f"{compression}, {m} fakes only") for m in FFPP_METHODS]
    return configs


class FaceForensics(_FaceCropBuilder):
    """Face crops of FaceForensics++ (Rössler et al., 2019) with its official split."""

    BUILDER_CONFIGS = _ffpp_configs()
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download FaceForensics++ with its official script (access is granted by its authors) into the manual "
        "dir, keeping its tree: original_sequences/youtube/<compression>/videos and "
        "manipulated_sequences/<Method>/<compression>/videos. Put the official split files train.json, "
        "val.json and test.json (dataset/splits in the FaceForensics GitHub repository) in <manual_dir>/splits/.")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        root = Path(dl_manager.manual_dir).resolve()
        config = self.builder_config
        samples = [s for s in discover(root, compression=config.compression)
                   if s.label == 0 or s.method in config.methods]
        sides = official_split(samples, root / "splits")
        names = {"train": "train", "val": "validation", "test": "test"}
        return {names[side]: self._generate_examples([samples[i] for i in rows], root)
                for side, rows in sides.items() if len(rows)}  # a partial download may miss a split
