"""Augmentation throughput: `transforms.py` (numpy/OpenCV) examples/s against `augment.py` (TF).

One example's full training augmentation: its geometry and a copy-paste scene's, copy-paste, a
background crop and replacement, colour; on generated uint8 examples (480x512) to a 256x256
input, all in one process. The baselines, timed in the same process on the same examples, are
augment.py's TensorFlow ops run eagerly one example at a time, and inside a tf.data map with
num_parallel_calls=1 (one example at a time, no eager overhead). OpenCV and TensorFlow are held
to `--threads` threads (1: one core for each). Each side is warmed up once, then the best of
`--repeats` passes is kept, the sides taking turns.

    .venv/bin/python benchmarks/augment_throughput.py [--examples 48] [--side 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from backdrop.data import transforms
from backdrop.data.synthetic import generate_sample

PROBABILITY = 0.5  # of copy-paste and of a new background, as both happen in half the examples


def numpy_pass(examples, backgrounds, shape, seed=0):
    """transforms.py: one generator per example, every stage in the pipeline's order."""
    for index, example in enumerate(examples):
        rng = np.random.default_rng([seed, index])
        parts = transforms.augment_geometry(*example, shape, rng)
        scene = transforms.augment_geometry(*examples[index - 1], shape, rng)
        image, mask, ignore = transforms.copy_paste(parts, scene, PROBABILITY, rng)
        background = transforms.background_crop(backgrounds[index], shape, rng)
        image = transforms.replace_background(image, mask, background, PROBABILITY, rng)
        np.concatenate([mask, ignore], axis=-1)
        transforms.jitter_colour(image, rng)


def tensorflow_baselines(examples, backgrounds, shape, threads):
    """The eager pass and the tf.data pass over the same examples, with augment.py's ops."""
    from backdrop.data import augment
    from backdrop.tf_setup import import_tensorflow

    tf = import_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    height, width = shape

    def background_crop(image, seed):
        """background_dataset's `load`, less the file read."""
        scale_seed, crop_seed = augment.split_seed(seed, 2)
        image = tf.cast(image, tf.float32) / 255.0
        size = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = tf.reduce_max(tf.constant([height, width], tf.float32) / size)
        scale *= augment._uniform(scale_seed, 1.0, 1.5)
        image = tf.image.resize(
            image, tf.maximum(tf.cast(tf.math.ceil(size * scale), tf.int32), shape)
        )
        return tf.image.stateless_random_crop(image, [height, width, 3], crop_seed)

    def augment_one(example, scene, background, seed):
        seeds = augment.split_seed(seed, 6)
        parts = augment.augment_geometry(example, shape, seeds[0])
        other = augment.augment_geometry(scene, shape, seeds[1])
        image, mask, ignore = augment.copy_paste(parts, other, PROBABILITY, seeds[2])
        background = background_crop(background, seeds[3])
        image = augment.replace_background(image, mask, background, PROBABILITY, seeds[4])
        return augment.jitter_colour(image, seeds[5]), tf.concat([mask, ignore], axis=-1)

    def as_dict(image, mask, ignore):
        return {"image": image, "mask": mask[..., None], "ignore": ignore[..., None]}

    items = [tf.constant(np.stack(column)) for column in zip(*examples, strict=True)]
    tensors = [as_dict(*(column[i] for column in items)) for i in range(len(examples))]
    background_tensors = [tf.constant(b) for b in backgrounds]

    def eager_pass():
        for index, example in enumerate(tensors):
            seed = tf.constant([0, index])
            augment_one(example, tensors[index - 1], background_tensors[index], seed)

    scenes = [np.roll(column, 1, axis=0) for column in items]
    dataset = tf.data.Dataset.zip(
        tf.data.Dataset.from_tensor_slices(tuple(items)).map(as_dict),
        tf.data.Dataset.from_tensor_slices(tuple(scenes)).map(as_dict),
        tf.data.Dataset.from_tensor_slices(np.stack(backgrounds)),
        tf.data.Dataset.range(len(examples)).map(lambda i: tf.stack([tf.constant(0, tf.int64), i])),
    ).map(augment_one, num_parallel_calls=1)
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = threads
    dataset = dataset.with_options(options)

    def dataset_pass():
        for _ in dataset:
            pass

    return eager_pass, dataset_pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    shape = (args.side, args.side)
    examples = []
    for seed in range(args.examples):
        image, mask = generate_sample(seed, 480, 512)
        mask = mask.astype(np.float32) / 255
        examples.append((image, mask, np.zeros_like(mask)))
    backgrounds = [generate_sample(10_000 + seed, 480, 640)[0] for seed in range(args.examples)]

    eager_pass, dataset_pass = tensorflow_baselines(examples, backgrounds, shape, args.threads)
    sides = {
        "transforms.py (numpy/OpenCV)": lambda: numpy_pass(examples, backgrounds, shape),
        "augment.py, eager per example": eager_pass,
        "augment.py, tf.data map (1 call)": dataset_pass,
    }
    fastest = dict.fromkeys(sides, float("inf"))
    for run in sides.values():
        run()  # warm-up: tracing, allocation
    for _ in range(args.repeats):
        for name, run in sides.items():
            started = time.perf_counter()
            run()
            fastest[name] = min(fastest[name], time.perf_counter() - started)
    rates = {name: args.examples / seconds for name, seconds in fastest.items()}
    ours = rates["transforms.py (numpy/OpenCV)"]
    print(f"{args.examples} examples 480x512 -> {args.side}x{args.side}, threads {args.threads}")
    for name, rate in rates.items():
        print(f"{name:34s} {rate:8.1f} examples/s   transforms.py is {ours / rate:5.2f}x")


if __name__ == "__main__":
    main()
