"""Faster depthwise and 1x1 convolutions for training under JAX on a CPU.

XLA's CPU backend runs a grouped convolution (how Keras's JAX backend does a depthwise one) and a
1x1 convolution through its generic convolution code: on a 2-core machine the mobile students'
training step ran at 0.16x TensorFlow's images/s (`benchmarks/backend_throughput.py`). Written as
what they are, the same operations run several times faster there:

- a depthwise convolution as a sum of kernel-size shifted slices, each times its kernel row
  (XLA fuses these into one loop; autodiff gives its gradients as more slices and sums);
- a 1x1 convolution as a matrix product.

`use_fast_cpu_convolutions()` swaps them into Keras's JAX backend, for this process, when JAX's
devices are CPUs; every other case (other shapes, dilation, channels first, GPUs, TensorFlow) runs
Keras's own code. The values are the same up to float rounding; `tests/training/test_backends.py`
checks them and their gradients against Keras's own.
"""

from __future__ import annotations

import functools

_installed = False


def use_fast_cpu_convolutions() -> bool:
    """Route Keras's JAX depthwise and 1x1 convolutions through the faster forms, when JAX
    computes on CPUs. Returns whether they are in use. Does nothing on other backends."""
    global _installed
    from backdrop.tf_setup import keras_backend

    if keras_backend() != "jax":
        return False
    if _installed:
        return True
    import jax
    from keras.src.backend.jax import nn

    if jax.default_backend() != "cpu":
        return False
    nn.depthwise_conv = _depthwise_or(nn.depthwise_conv)
    nn.conv = _pointwise_or(nn.conv)
    _installed = True
    return True


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _channels_last(data_format) -> bool:
    from keras.src import backend

    return backend.standardize_data_format(data_format) == "channels_last"


def _depthwise_or(original):
    @functools.wraps(original)
    def depthwise_conv(
        inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1
    ):
        if (
            getattr(inputs, "ndim", 0) == 4
            and len(kernel.shape) == 4
            and kernel.shape[-1] == 1
            and _pair(dilation_rate) == (1, 1)
            and padding.lower() in ("same", "valid")
            and _channels_last(data_format)
        ):
            return shifted_depthwise(inputs, kernel[:, :, :, 0], _pair(strides), padding.lower())
        return original(inputs, kernel, strides, padding, data_format, dilation_rate)

    return depthwise_conv


def _pointwise_or(original):
    @functools.wraps(original)
    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        if (
            getattr(inputs, "ndim", 0) == 4
            and tuple(kernel.shape[:2]) == (1, 1)
            and kernel.shape[2] == inputs.shape[-1]
            and _pair(strides) == (1, 1)
            and _channels_last(data_format)
        ):
            import jax.numpy as jnp

            kernel = jnp.asarray(kernel)
            inputs = jnp.asarray(inputs, dtype=kernel.dtype)  # as Keras's conv does
            flat = inputs.reshape(-1, inputs.shape[-1]) @ kernel[0, 0]
            return flat.reshape(*inputs.shape[:-1], kernel.shape[-1])
        return original(inputs, kernel, strides, padding, data_format, dilation_rate)

    return conv


def shifted_depthwise(inputs, kernel, strides: tuple[int, int], padding: str):
    """A depthwise convolution as a sum of shifted slices.

    Args:
        inputs: `(batch, height, width, channels)`.
        kernel: `(kernel_height, kernel_width, channels)`, one filter per channel.
        strides: (rows, columns).
        padding: "same" (XLA's and TensorFlow's split: the extra row or column at the end) or
            "valid".

    Returns:
        `(batch, out_height, out_width, channels)`, as `lax.conv_general_dilated` with
        `feature_group_count=channels` gives it.
    """
    import jax.numpy as jnp

    inputs = jnp.asarray(inputs)
    kernel = jnp.asarray(kernel, dtype=inputs.dtype)
    kernel_size = kernel.shape[:2]
    pads, outs = [], []
    for size, k, stride in zip(inputs.shape[1:3], kernel_size, strides, strict=True):
        if padding == "same":
            out = -(-size // stride)
            total = max((out - 1) * stride + k - size, 0)
            pads.append((total // 2, total - total // 2))
        else:
            out = (size - k) // stride + 1
            pads.append((0, 0))
        outs.append(out)
    padded = jnp.pad(inputs, ((0, 0), pads[0], pads[1], (0, 0)))
    (rows, columns), (row_step, column_step) = outs, strides
    result = None
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            window = padded[
                :,
                i : i + (rows - 1) * row_step + 1 : row_step,
                j : j + (columns - 1) * column_step + 1 : column_step,
                :,
            ]
            term = window * kernel[i, j]
            result = term if result is None else result + term
    return result
