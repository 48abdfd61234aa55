"""Tests for `backbones.inference`: batch norms folded, the RGB stem by shift-and-add, same features."""

from pathlib import Path

import numpy as np
import pytest

from deepfake_detect import backbones  # noqa: F401  (first: chooses Keras' backend before Keras is imported)

import keras  # noqa: E402
from deepfake_detect.backbones import MobileNetV1, MobileNetV1MultiBlock
from deepfake_detect.backbones.inference import FastConv2D, FoldedBatchNormalization, inference_model

W050 = Path(__file__).resolve().parents[1].parent / "shared" / "weights" / "mobilenet_v1_0.50_no_top.weights.h5"
needs_weights = pytest.mark.skipif(not W050.exists(), reason=f"real weights not found at {W050}")


@pytest.mark.parametrize("kernel_size", [3, (2, 4)])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("channels", [1, 3])
def test_fast_conv_equals_keras(kernel_size, strides, padding, channels):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 11, 8, channels)).astype(np.float32)
    config = dict(filters=6, kernel_size=kernel_size, strides=strides, padding=padding)
    stock, fast = keras.layers.Conv2D(**config), FastConv2D(**config)
    stock.build(x.shape)
    fast.build(x.shape)
    stock.set_weights([rng.normal(size=v.shape).astype(np.float32) for v in stock.weights])
    fast.set_weights(stock.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fast(x)), keras.ops.convert_to_numpy(stock(x)),
                               atol=1e-5, rtol=1e-5)


def _toy_model() -> keras.Model:
    """Conv (3 channels) → BN → ReLU6 → depthwise (multiplier 2) → BN; a conv whose output a BN and an add
    both take (not folded); a conv with a bias (not folded); BN statistics far from 0 and 1."""
    rng = np.random.default_rng(3)
    x = inputs = keras.Input((9, 9, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(epsilon=1e-3)(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    shared = keras.layers.Conv2D(16, 1, use_bias=False)(x)
    x = keras.layers.Add()([keras.layers.BatchNormalization()(shared), shared])
    x = keras.layers.Conv2D(4, 1)(x)
    x = keras.layers.BatchNormalization(center=False)(x)
    model = keras.Model(inputs, x)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):  # gamma and variance positive, beta and mean any
            layer.set_weights([(rng.normal(size=v.shape) if v.path.endswith(("beta", "mean"))
                                else rng.uniform(0.5, 2.0, size=v.shape)).astype(np.float32) for v in layer.weights])
        elif layer.weights:
            layer.set_weights([rng.normal(scale=0.3, size=v.shape).astype(np.float32) for v in layer.weights])
    model.trainable = False
    return model


def test_folded_model_equals_model():
    model = _toy_model()
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    folded = inference_model(model)
    kinds = [type(layer).__name__ for layer in folded.layers]
    assert kinds.count("FoldedBatchNormalization") == 2 and kinds.count("BatchNormalization") == 2
    assert type(folded.layers[1]) is FastConv2D and folded.layers[1].use_bias
    x = np.random.default_rng(4).normal(size=(3, 9, 9, 3)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(x))
    assert np.isfinite(expected).all() and np.abs(expected).max() > 1.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(folded(x)), expected, atol=1e-5 * np.abs(expected).max())
    for expected, w in zip(before, model.weights, strict=True):  # the model itself is left as it was
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), expected)


def test_nothing_to_rewrite_returns_the_model():
    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert inference_model(model) is model


@needs_weights
@pytest.mark.parametrize("backbone", [
    MobileNetV1(weights=str(W050)),
    MobileNetV1MultiBlock(weights=str(W050), input_size=288, blocks=[3, 4, 5, 6, 7, 8, 9], pooling="avg_std",
                          region=0.4),
], ids=["mobilenet_v1", "face_region"])
def test_embed_runs_the_rewrite_with_the_same_features(backbone):
    stock = type(backbone).from_config({**backbone.get_config(), "fast_depthwise": False})
    assert stock.inference_model() is stock.model  # the reference runs Keras' layers as they are
    rewritten = backbone.inference_model()
    assert sum(isinstance(layer, FoldedBatchNormalization) for layer in rewritten.layers) == \
        sum(isinstance(layer, keras.layers.BatchNormalization) for layer in backbone.model.layers) > 0
    assert sum(isinstance(layer, FastConv2D) for layer in rewritten.layers) == 1  # the stem
    s = backbone.input_size
    crops = np.random.default_rng(5).integers(0, 256, (5, s, s, 3), np.uint8)
    expected = stock.model.predict(stock.preprocess(crops), verbose=0)
    np.testing.assert_allclose(backbone.embed(crops), expected, atol=1e-4, rtol=1e-4)
    assert np.abs(backbone.embed(crops) - expected).max() <= 1e-5 * np.abs(expected).max() * 10
    assert backbone.fingerprint == stock.fingerprint


def test_buckets_follow_the_input_size():
    assert MobileNetV1(weights=None).buckets == (1, 2, 4, 8, 16)
    assert MobileNetV1(weights=None, input_size=224).buckets == (1, 2, 4)
    assert MobileNetV1MultiBlock(weights=None, input_size=288).buckets == (1, 2)
    assert MobileNetV1(weights=None, input_size=32).buckets[-1] == 64
