"""deepfake-detect: tell real videos from deepfakes with transfer learning, honestly evaluated.

Keras runs on JAX unless ``KERAS_BACKEND`` says otherwise (set before Keras is imported).
"""

from . import _backend  # noqa: F401  (before anything imports Keras)
from . import errors  # noqa: E402
from .aggregation import Aggregator, aggregators  # noqa: E402
from .backbones import Backbone, backbones  # noqa: E402
from .cache import FeatureCache  # noqa: E402
from .detector import DeepfakeDetector  # noqa: E402
from .faces import CropPolicy, FaceDetector, face_detectors  # noqa: E402
from .heads import Head, heads  # noqa: E402
from .presets import list_presets  # noqa: E402
from .results import EvaluationReport, FaceBox, FaceFeatures, FramePrediction, VideoPrediction  # noqa: E402
from .sampling import FrameSampler, samplers  # noqa: E402
from .version import __version__  # noqa: E402

get_sampler, register_sampler, list_samplers = samplers.create, samplers.register, samplers.names
get_face_detector, register_face_detector, list_face_detectors = (
    face_detectors.create, face_detectors.register, face_detectors.names)
get_backbone, register_backbone, list_backbones = backbones.create, backbones.register, backbones.names
get_head, register_head, list_heads = heads.create, heads.register, heads.names
get_aggregator, register_aggregator, list_aggregators = aggregators.create, aggregators.register, aggregators.names

__all__ = [
    "Aggregator", "Backbone", "CropPolicy", "DeepfakeDetector", "EvaluationReport", "FaceBox", "FaceDetector",
    "FaceFeatures", "FeatureCache", "FramePrediction", "FrameSampler", "Head", "VideoPrediction", "errors",
    "get_aggregator", "get_backbone", "get_face_detector", "get_head", "get_sampler",
    "list_aggregators", "list_backbones", "list_face_detectors", "list_heads", "list_presets", "list_samplers",
    "register_aggregator", "register_backbone", "register_face_detector", "register_head", "register_sampler",
]
