"""Tests for the backbones: `FastDepthwiseConv2D` against Keras' layer, and MobileNet V1 on real faces."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from deepfake_detect import backbones  # first: chooses Keras' backend before Keras is imported

import keras  # noqa: E402
from deepfake_detect.backbones import MobileNetV1
from deepfake_detect.backbones.depthwise import FastDepthwiseConv2D, with_fast_depthwise
from deepfake_detect.faces import CropPolicy
from deepfake_detect.results import FaceBox

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WEIGHTS = SHARED / "weights"
IMAGES = SHARED / "images"
W050, W025, W050_TOP = (WEIGHTS / f"mobilenet_v1_{n}.weights.h5" for n in ("0.50_no_top", "0.25_no_top", "0.50_top"))
needs_shared = pytest.mark.skipif(
    not all(p.exists() for p in (W050, W025, W050_TOP, IMAGES / "face.jpg", IMAGES / "grace_hopper.bmp",
                                 IMAGES / "parrot.jpg", IMAGES / "imagenet_labels.txt")),
    reason=f"real weights and images not found in {SHARED}")

#: RetinaFace's boxes (x1, y1, x2, y2) on the shared photos.
FACES = {"face.jpg": [(256, 47, 347, 169), (434, 117, 491, 184), (130, 85, 220, 201), (5, 100, 48, 158)],
         "grace_hopper.bmp": [(177, 107, 353, 327)]}


def _rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(IMAGES / name)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    policy = CropPolicy()
    return np.stack([policy.crop(_rgb(name), FaceBox(*box, score=1.0), 128)
                     for name, boxes in FACES.items() for box in boxes])


@pytest.fixture(scope="module")
def backbone() -> MobileNetV1:
    return MobileNetV1(weights=str(W050))


@pytest.mark.parametrize("kernel_size", [3, (5, 2)])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_fast_depthwise_equals_keras(kernel_size, strides, padding, use_bias):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 11, 8, 5)).astype(np.float32)
    config = dict(kernel_size=kernel_size, strides=strides, padding=padding, use_bias=use_bias)
    stock, fast = keras.layers.DepthwiseConv2D(**config), FastDepthwiseConv2D(**config)
    stock.build(x.shape)
    fast.build(x.shape)
    assert [(v.path.split("/")[-1], v.shape) for v in fast.weights] == \
        [(v.path.split("/")[-1], v.shape) for v in stock.weights]
    stock.set_weights([rng.normal(size=v.shape).astype(np.float32) for v in stock.weights])
    fast.set_weights(stock.get_weights())
    expected = keras.ops.convert_to_numpy(stock(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fast(x)), expected, atol=1e-4, rtol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="shift-and-add runs on JAX; gradients via jax.grad")
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_fast_depthwise_gradients_equal_keras(strides, padding):
    """Fine-tuning sees the same gradients, for the weights and for the input."""
    import jax

    x = np.random.default_rng(2).normal(size=(2, 11, 8, 5)).astype(np.float32)
    layers = [cls(3, strides=strides, padding=padding) for cls in (keras.layers.DepthwiseConv2D, FastDepthwiseConv2D)]
    for layer in layers:
        layer.build(x.shape)
    layers[1].set_weights(layers[0].get_weights())

    def gradients(layer: keras.layers.Layer) -> list:
        def loss(weights, x):
            return jax.numpy.sin(layer.stateless_call(weights, [], x)[0]).sum()

        grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
        return jax.tree.leaves(grad([v.value for v in layer.trainable_variables], x))

    for expected, got in zip(*map(gradients, layers), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-4)


def test_fast_depthwise_falls_back_and_serializes():
    x = np.random.default_rng(1).normal(size=(1, 6, 6, 3)).astype(np.float32)
    stock = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")
    stock.build(x.shape)
    fast = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(
        FastDepthwiseConv2D.from_config(stock.get_config())))
    assert type(fast) is FastDepthwiseConv2D and fast.get_config() == stock.get_config()
    fast.build(x.shape)
    fast.set_weights(stock.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fast(x)), keras.ops.convert_to_numpy(stock(x)), atol=1e-5)


def _structure(model: keras.Model) -> list[tuple[str, str]]:
    """Class names, and names of the layers with weights (others' names are auto-generated)."""
    return [(type(layer).__name__, layer.weights and layer.name) for layer in model.layers]


@needs_shared
def test_fast_mobilenet_equals_stock_on_faces(backbone, crops):
    stock = MobileNetV1(weights=str(W050), fast_depthwise=False)
    assert _structure(backbone.model) == _structure(stock.model)
    assert sum(isinstance(layer, FastDepthwiseConv2D) for layer in backbone.model.layers) == 13
    assert not any(isinstance(layer, FastDepthwiseConv2D) for layer in stock.model.layers)
    expected = stock.embed(crops)
    assert np.abs(expected).max() > 1.0 and np.abs(expected[0] - expected[-1]).max() > 0.1  # real features
    np.testing.assert_allclose(backbone.embed(crops), expected, atol=1e-4, rtol=1e-4)


@needs_shared
def test_weight_files_interchange(backbone, tmp_path):
    """Keras' weights file loads into the fast model, and the fast model's file into Keras' model."""
    fast = MobileNetV1(weights=None)
    fast.model.load_weights(W050)
    fast.model.save_weights(tmp_path / "fast.weights.h5")
    stock = MobileNetV1(weights=str(tmp_path / "fast.weights.h5"), fast_depthwise=False)
    for expected, got in zip(backbone.model.weights, stock.model.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(expected))


@needs_shared
@pytest.mark.parametrize("n", [0, 1, 3, 70])
def test_embed_shape_and_padding(backbone, crops, n):
    images = crops[np.arange(n) % len(crops)]
    features = backbone.embed(images)
    assert features.shape == (n, 512) and features.dtype == np.float32
    if n:  # splitting into buckets and padding do not change a crop's features
        reference = backbone.embed(crops)
        np.testing.assert_allclose(features, reference[np.arange(n) % len(crops)], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape", [(2, 64, 64, 3), (128, 128, 3), (1, 128, 128, 1)])
def test_embed_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="crops of shape"):
        MobileNetV1(weights=None).embed(np.zeros(shape, np.uint8))


def test_config_round_trip():
    part = MobileNetV1(alpha=0.25, input_size=160, weights=None, fast_depthwise=False)
    config = backbones.serialize(part)
    assert config == {"name": "mobilenet_v1", "alpha": 0.25, "input_size": 160, "weights": None,
                      "fast_depthwise": False}
    assert backbones.create(config) == part
    assert MobileNetV1.from_config(part.get_config()) == part
    with pytest.raises(ValueError, match="fast_depthwise"):
        MobileNetV1(weights=None, fast_depthwise="yes")


@needs_shared
def test_fingerprint(backbone):
    assert MobileNetV1(weights=str(W050), fast_depthwise=False).fingerprint == backbone.fingerprint
    assert MobileNetV1(weights=str(W050)).fingerprint == backbone.fingerprint
    assert MobileNetV1(alpha=0.25, weights=str(W025)).fingerprint != backbone.fingerprint
    assert MobileNetV1(weights=str(W050), input_size=160).fingerprint != backbone.fingerprint
    assert MobileNetV1(weights=None).fingerprint != backbone.fingerprint


@needs_shared
def test_imagenet_weights_are_real():
    """The top weights call the parrot a macaw, through Keras' layers and through ours."""
    model = keras.applications.MobileNet(alpha=0.5, input_shape=(128, 128, 3), include_top=True,
                                         weights=str(W050_TOP))
    image = cv2.resize(_rgb("parrot.jpg"), (128, 128), interpolation=cv2.INTER_AREA)
    x = image[None].astype(np.float32) / 127.5 - 1.0
    labels = (IMAGES / "imagenet_labels.txt").read_text().splitlines()
    stock, fast = model.predict_on_batch(x), with_fast_depthwise(model).predict_on_batch(x)
    assert stock.argmax() == fast.argmax() == 88 and labels[88 + 1] == "macaw"
    np.testing.assert_allclose(fast, stock, atol=1e-5)


def _first_embed_in_a_fresh_process(weights, env):
    import subprocess
    import sys

    code = ("import numpy as np, deepfake_detect as dd, jax; "
            f"b = dd.get_backbone('mobilenet_v1', weights={weights!r}); "
            "b.embed(np.zeros((2, 128, 128, 3), np.uint8)); print(jax.config.jax_compilation_cache_dir)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_compiled_backbones_are_kept_on_disk_for_the_next_process(weights, tmp_path):
    import os

    # JAX stores programs that took over a second to compile: on a fast machine the small one here may not
    env = {**os.environ, "DEEPFAKE_DETECT_JAX_CACHE": str(tmp_path / "jax"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    assert _first_embed_in_a_fresh_process(weights, env) == str(tmp_path / "jax")
    assert any(name.startswith("jit_") for name in os.listdir(tmp_path / "jax"))  # the embedding's program
    assert _first_embed_in_a_fresh_process(weights, {**env, "DEEPFAKE_DETECT_JAX_CACHE": "none"}) == "None"
    unset = {k: v for k, v in env.items() if k != "DEEPFAKE_DETECT_JAX_CACHE"}
    assert _first_embed_in_a_fresh_process(weights, unset) == "None"  # opt-in: the user's JAX is left as it is
