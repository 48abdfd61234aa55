"""`inference_model`: a frozen Keras model rewritten for faster inference on JAX, same features.

Two rewrites, each exact up to float32 rounding (features within ~1e-5 relative of the model's):

- **Batch norms folded** into the convolution before them: a `BatchNormalization` (inference:
  ``x * g + h`` per channel, ``g = gamma / sqrt(var + eps)``) that follows a bias-less linear
  `Conv2D` or `DepthwiseConv2D` becomes part of it (kernel ``* g``, bias ``h``), and the norm
  a pass-through. One multiply-add per activation less, and the convolution's bias-add and the
  ReLU after it fuse into one loop.
- **Convolutions of few input channels** (the RGB stem: 3) become `FastConv2D`: a sum of
  shifted slices times kernel rows, which XLA fuses into one loop; its grouped-GEMM
  convolution spends ~4x longer on MobileNet V1's 3-channel stem on CPU (measured).

The rewritten model shares the unchanged layers (and their variables) with the model it came
from; only the folded convolutions get new variables. It is for `Backbone._forward`, not for
training or saving: fine-tuning and weight files use the model itself.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .depthwise import biased_and_activated, padded_for

#: Most input channels for which `FastConv2D` takes the shift-and-add path (the RGB stem).
FAST_CONV_MAX_CHANNELS = 4


class FastConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` computed on JAX as kh x kw x C_in shifted slices, each times a kernel
    row (C_out values) and added up: fast where C_in is small (an RGB stem). Channels-last,
    groups 1 and dilation 1 only (`inference_model` checks); anything else runs Keras' call."""

    def call(self, inputs):
        if (keras.backend.backend() != "jax" or self.data_format != "channels_last" or self.groups != 1
                or self.dilation_rate != (1, 1) or None in tuple(inputs.shape[1:3])):
            return super().call(inputs)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        cin = inputs.shape[3]
        inputs, oh, ow = padded_for(inputs, self.kernel_size, self.strides, self.padding)
        kernel = ops.cast(self.kernel, inputs.dtype)  # (kh, kw, C_in, C_out)
        outputs = None
        for i in range(kh):
            for j in range(kw):
                tap = inputs[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]
                for c in range(cin):
                    term = tap[..., c:c + 1] * kernel[i, j, c]
                    outputs = term if outputs is None else outputs + term
        return biased_and_activated(self, outputs)


class FoldedBatchNormalization(keras.layers.Layer):
    """Where a folded batch norm was: passes its input on (accepting the norm's `mask` argument)."""

    def call(self, inputs, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def _producer(layer: keras.layers.Layer):
    """The layer whose output `layer` (called once, on one tensor) takes; None otherwise."""
    nodes = getattr(layer, "_inbound_nodes", [])
    if len(nodes) != 1 or len(nodes[0].parent_nodes) != 1:
        return None
    return nodes[0].parent_nodes[0].operation


def _foldable(conv, norm) -> bool:
    """Whether batch norm `norm` can be folded into `conv`, the only consumer of its output."""
    if not isinstance(conv, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
        return False
    if isinstance(conv, keras.layers.Conv2D) and conv.groups != 1:
        return False
    config = conv.get_config()
    return (not conv.use_bias and config.get("activation") in ("linear", None) and conv.data_format == "channels_last"
            and len(getattr(conv, "_inbound_nodes", [])) == 1 and len(getattr(conv, "_outbound_nodes", [])) == 1
            and norm.axis in (-1, 3, [3], [-1]) and len(conv.weights) == 1)


def _fast_conv(layer) -> bool:
    return (type(layer) is keras.layers.Conv2D and layer.groups == 1 and layer.data_format == "channels_last"
            and layer.dilation_rate == (1, 1) and layer.kernel.shape[2] <= FAST_CONV_MAX_CHANNELS)


def inference_model(model: keras.Model) -> keras.Model:
    """`model` (Functional) with its batch norms folded into the convolutions before them and its
    few-channel convolutions as `FastConv2D` (module docstring); the same outputs within float32
    rounding. Layers it does not change are shared with `model`."""
    folds = {}  # convolution name -> the batch norm folded into it
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            conv = _producer(layer)
            if conv is not None and _foldable(conv, layer):
                folds[conv.name] = layer
    norms = {norm.name for norm in folds.values()}
    changed = set(folds) | {layer.name for layer in model.layers if _fast_conv(layer)}
    if not changed:
        return model

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in norms:
            return FoldedBatchNormalization(name=layer.name)
        if layer.name not in changed:
            return layer
        config = layer.get_config()
        config["use_bias"] = config["use_bias"] or layer.name in folds
        return (FastConv2D if _fast_conv(layer) else type(layer)).from_config(config)

    twin = keras.models.clone_model(model, clone_function=clone)
    for name in changed:
        layer, new = model.get_layer(name), twin.get_layer(name)
        kernel = keras.ops.convert_to_numpy(layer.kernel).astype(np.float64)
        bias = keras.ops.convert_to_numpy(layer.bias).astype(np.float64) if layer.use_bias else 0.0
        if name in folds:
            norm = folds[name]
            mean, var = (keras.ops.convert_to_numpy(v).astype(np.float64) for v in
                         (norm.moving_mean, norm.moving_variance))
            scale = 1.0 / np.sqrt(var + norm.epsilon)
            if norm.scale:
                scale = scale * keras.ops.convert_to_numpy(norm.gamma)
            shift = -mean * scale + (keras.ops.convert_to_numpy(norm.beta) if norm.center else 0.0)
            if isinstance(layer, keras.layers.DepthwiseConv2D):  # (kh, kw, C, multiplier): channel c*m + k
                kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
            else:
                kernel = kernel * scale
            bias = bias * scale + shift
        new.kernel.assign(kernel.astype(np.float32))
        if new.use_bias:
            new.bias.assign(np.broadcast_to(bias, new.bias.shape).astype(np.float32))
    twin.trainable = False
    return twin
