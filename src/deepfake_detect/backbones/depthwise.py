"""`FastDepthwiseConv2D`: depthwise convolution as a sum of shifted, per-channel products.

XLA's grouped convolution, which `keras.layers.DepthwiseConv2D` lowers to on JAX, is far
slower on CPU (~75x on a 64x64x16 stride-1 layer, measured) than the same arithmetic written
as kh x kw shifted slices times per-channel weights, added up, which XLA fuses into one loop. This layer is a
`DepthwiseConv2D` (same variables, same config, same path in weight files) whose `call`
does the latter on JAX.
"""

from __future__ import annotations

import keras
from keras import ops


def padded_for(inputs, kernel_size: tuple[int, int], strides: tuple[int, int], padding: str):
    """(`inputs` padded as Keras pads for `padding` "same", unchanged for "valid"; the output's
    height and width) of a convolution with `kernel_size` and `strides` on channels-last `inputs`."""
    (kh, kw), (sh, sw) = kernel_size, strides
    h, w = inputs.shape[1], inputs.shape[2]
    if padding != "same":
        return inputs, (h - kh) // sh + 1, (w - kw) // sw + 1
    oh, ow = -(-h // sh), -(-w // sw)
    ph, pw = max((oh - 1) * sh + kh - h, 0), max((ow - 1) * sw + kw - w, 0)
    return ops.pad(inputs, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))), oh, ow


def biased_and_activated(layer, outputs):
    """A convolution `layer`'s `outputs` with its bias added and its activation applied, as Keras does."""
    if layer.use_bias:
        outputs = outputs + ops.cast(layer.bias, outputs.dtype)
    return outputs if layer.activation is None else layer.activation(outputs)


@keras.saving.register_keras_serializable(package="deepfake_detect")
class FastDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D` computed by shift-and-add (pad once, kh x kw strided slices).

    The JAX backend takes this path for channels-last inputs of known spatial size with
    depth_multiplier 1 and dilation 1 (any kernel size, strides, "same"/"valid" padding).
    Anything else runs Keras' own `DepthwiseConv2D.call`: other backends have fast native
    depthwise kernels (on CPU, TensorFlow's is several times faster than shift-and-add).
    """

    def _fast_path(self, inputs) -> bool:
        return (keras.backend.backend() == "jax" and self.data_format == "channels_last"
                and self.depth_multiplier == 1 and self.dilation_rate == (1, 1)
                and None not in tuple(inputs.shape[1:3]))

    def call(self, inputs):
        if not self._fast_path(inputs):
            return super().call(inputs)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        inputs, oh, ow = padded_for(inputs, self.kernel_size, self.strides, self.padding)
        kernel = ops.cast(self.kernel[..., 0], inputs.dtype)  # (kh, kw, C)
        outputs = None
        for i in range(kh):
            for j in range(kw):
                tap = inputs[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :] * kernel[i, j]
                outputs = tap if outputs is None else outputs + tap
        return biased_and_activated(self, outputs)


# Keras 3 weight files address a layer by its class name in snake case ("depthwise_conv2d_3"),
# not by its own name: answering to Keras' class name keeps weight files interchangeable.
FastDepthwiseConv2D.__name__ = "DepthwiseConv2D"


def with_fast_depthwise(model: keras.Model) -> keras.Model:
    """A copy of a Functional or Sequential `model`, each of its `keras.layers.DepthwiseConv2D`
    (top level) replaced by a `FastDepthwiseConv2D`: same layer names and order, weights copied,
    so the model's weight files load into the copy and the copy's into the model.
    """

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        cls = FastDepthwiseConv2D if type(layer) is keras.layers.DepthwiseConv2D else type(layer)
        return cls.from_config(layer.get_config())

    twin = keras.models.clone_model(model, clone_function=clone)
    for src, dst in zip(model.weights, twin.weights, strict=True):
        dst.assign(src.value)
    return twin
