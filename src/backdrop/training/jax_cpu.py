"""Faster depthwise and 1x1 convolutions for training under JAX on a CPU.

XLA's CPU backend runs a grouped convolution (how Keras's JAX backend does a depthwise one) and a
1x1 convolution through its generic convolution code: on a 2-core machine the mobile students'
training step ran at 0.16x TensorFlow's images/s (`benchmarks/backend_throughput.py`). Written as
what they are, the same operations run several times faster there:

- a depthwise convolution as a sum of kernel-size shifted slices, each times its kernel row
  (XLA fuses these into one loop), with its gradients written out too (`shifted_depthwise`
  says why);
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
    """A depthwise convolution as a sum of shifted slices, with its gradients written out.

    Args:
        inputs: `(batch, height, width, channels)`.
        kernel: `(kernel_height, kernel_width, channels)`, one filter per channel.
        strides: (rows, columns).
        padding: "same" (XLA's and TensorFlow's split: the extra row or column at the end) or
            "valid".

    Returns:
        `(batch, out_height, out_width, channels)`, as `lax.conv_general_dilated` with
        `feature_group_count=channels` gives it.

    The padded input is split into stride-by-stride phases (`_phases`), so that every kernel tap
    reads one phase at a stride of 1. Autodiff would give the gradients as a pad of the output
    gradient per tap and the kernel's as slices of the input reduced, which XLA's CPU code ran at
    a sixth of TensorFlow's speed on one layer; `_depthwise_gradients` writes them as reads of the
    output gradient, placed or shifted, which it ran 5.8x faster at stride 1, 1.4x at stride 2.
    """
    import jax.numpy as jnp

    inputs = jnp.asarray(inputs)
    kernel = jnp.asarray(kernel, dtype=inputs.dtype)
    return _depthwise()(inputs, kernel, tuple(strides), padding)


@functools.cache
def _depthwise():
    import jax

    depthwise = jax.custom_vjp(
        lambda inputs, kernel, strides, padding: _depthwise_forward(
            inputs, kernel, strides, padding
        )[0],
        nondiff_argnums=(2, 3),
    )
    depthwise.defvjp(_depthwise_forward, _depthwise_gradients)
    return depthwise


def _plan(shape, kernel_size, strides, padding: str) -> list[tuple[int, int, int]]:
    """Per spatial axis: the output's length, the padding before the input, and the padded
    length, a multiple of the stride long enough for every tap's phase slice."""
    plan = []
    for size, k, stride in zip(shape[1:3], kernel_size, strides, strict=True):
        if padding == "same":
            out = -(-size // stride)
            total = max((out - 1) * stride + k - size, 0)
        else:
            out = (size - k) // stride + 1
            total = 0
        length = stride * max(-(-(size + total) // stride), (k - 1) // stride + out)
        plan.append((out, total // 2, length))
    return plan


def _phases(inputs, plan, strides):
    """`phases[a][b]`: the padded input's rows a, a + stride, ... and columns b, b + stride, ..."""
    import jax.numpy as jnp

    (_, top, rows), (_, left, columns) = plan
    (row_step, column_step), (batch, height, width, channels) = strides, inputs.shape
    padded = jnp.pad(
        inputs,
        ((0, 0), (top, rows - height - top), (left, columns - width - left), (0, 0)),
    )
    split = padded.reshape(
        batch, rows // row_step, row_step, columns // column_step, column_step, channels
    )
    return [[split[:, :, a, :, b, :] for b in range(column_step)] for a in range(row_step)]


def _depthwise_forward(inputs, kernel, strides, padding):
    plan = _plan(inputs.shape, kernel.shape[:2], strides, padding)
    phases = _phases(inputs, plan, strides)
    (rows, _, _), (columns, _, _) = plan
    row_step, column_step = strides
    result = None
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            t, u = i // row_step, j // column_step
            window = phases[i % row_step][j % column_step][:, t : t + rows, u : u + columns]
            term = window * kernel[i, j]
            result = term if result is None else result + term
    return result, (phases, kernel, plan, inputs.shape[1:3])


def _depthwise_gradients(strides, padding, saved, gradient):
    """The input's and the kernel's gradients, from the output's."""
    import jax.numpy as jnp
    from jax import lax

    phases, kernel, plan, (height, width) = saved
    kernel_rows, kernel_columns = kernel.shape[:2]
    row_step, column_step = strides
    (rows, top, padded_rows), (columns, left, padded_columns) = plan
    phase_rows, phase_columns = padded_rows // row_step, padded_columns // column_step
    zero = jnp.zeros((), gradient.dtype)

    # The kernel's: tap (i, j) is its phase times the output gradient placed at the tap's
    # offset, summed. Each sum on its own (the barrier): XLA fused as one they ran 5x slower.
    taps = []
    for i in range(kernel_rows):
        for j in range(kernel_columns):
            t, u = i // row_step, j // column_step
            placed = lax.pad(
                gradient,
                zero,
                [
                    (0, 0, 0),
                    (t, phase_rows - rows - t, 0),
                    (u, phase_columns - columns - u, 0),
                    (0, 0, 0),
                ],
            )
            phase = phases[i % row_step][j % column_step]
            taps.append(lax.optimization_barrier(jnp.sum(phase * placed, axis=(0, 1, 2))))
    kernel_gradient = jnp.stack(taps).reshape(kernel.shape)

    # The input's, phase by phase: every tap reading a phase, its kernel weight times the
    # output gradient shifted back by the tap's offset.
    most_rows, most_columns = (kernel_rows - 1) // row_step, (kernel_columns - 1) // column_step
    shifted = lax.pad(
        gradient,
        zero,
        [
            (0, 0, 0),
            (most_rows, phase_rows - rows, 0),
            (most_columns, phase_columns - columns, 0),
            (0, 0, 0),
        ],
    )
    phase_gradients = []
    for a in range(row_step):
        row = []
        for b in range(column_step):
            total = jnp.zeros_like(phases[a][b])
            for i in range(a, kernel_rows, row_step):
                for j in range(b, kernel_columns, column_step):
                    t, u = most_rows - i // row_step, most_columns - j // column_step
                    window = shifted[:, t : t + phase_rows, u : u + phase_columns]
                    total = total + window * kernel[i, j]
            row.append(total)
        phase_gradients.append(jnp.stack(row, axis=3))
    padded = jnp.stack(phase_gradients, axis=2).reshape(
        gradient.shape[0], padded_rows, padded_columns, -1
    )
    return padded[:, top : top + height, left : left + width], kernel_gradient
