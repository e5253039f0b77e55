"""Training and validation batches without TensorFlow: a Keras PyDataset over indexed records.

The batches training reads, on every Keras backend, with `transforms.py` for augmentation (it
replaced a tf.data pipeline with the same layout, options and distributions). Batch `i` of
epoch `e` is a pure function of `(seed, e, i)` (`RecordBatches.batch`): each example draws from
generators keyed by its place in the epoch, so batches come out the same whatever the number of
workers and whichever finishes first. Under TensorFlow, training carries that same function
through tf.data (`training.datasets.fit_data`).
Importing this module imports Keras (which imports TensorFlow only under its TensorFlow backend),
never TensorFlow itself.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import keras
import numpy as np

from backdrop.data import transforms
from backdrop.data.parallel import one_opencv_thread
from backdrop.data.pipeline_config import PipelineConfig
from backdrop.data.record_index import RecordIndex, memory_index, split_index
from backdrop.data.sample import find_images

# Decoded backgrounds kept per process while they fit: each is drawn again and again, and
# decoding one costs as much as augmenting an example.
BACKGROUND_MEMORY = 512 * 1024 * 1024
_backgrounds: dict[str, np.ndarray] = {}

# Random streams, each keyed by (seed, stream, epoch, ...): the epoch's order, and one per job of
# each example, so that skipping a paste or a background leaves the other choices as they were.
_ORDER, _GEOMETRY, _SCENE, _PASTE, _BACKGROUND, _COLOUR, _ZOOM = range(7)


def _generator(entropy: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=key))


def background_files(folders: Sequence[Path]) -> list[str]:
    """The pictures of `folders`, as `augment.background_dataset` finds them."""
    files = sorted(str(path) for folder in folders for path in find_images(Path(folder)))
    if not files:
        raise ValueError(f"no images in background folders {[str(f) for f in folders]}")
    return files


def read_background(path: str, input_shape: tuple[int, int], rng: np.random.Generator):
    """A random crop of `input_shape` of the picture at `path` (`transforms.background_crop`).

    Returns:
        `(height, width, 3)` float32 RGB in [0, 1].
    """
    picture = _backgrounds.get(path)
    if picture is None:
        # EXIF orientation ignored, as tf.io.decode_image ignores it: a background has no up.
        picture = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if picture is None:
            raise ValueError(f"{path}: cannot decode this background picture; remove it")
        if sum(kept.nbytes for kept in _backgrounds.values()) + picture.nbytes <= BACKGROUND_MEMORY:
            _backgrounds[path] = picture
    # Converted after the crop: fewer pixels.
    return cv2.cvtColor(transforms.background_crop(picture, input_shape, rng), cv2.COLOR_BGR2RGB)


class RecordBatches(keras.utils.PyDataset):
    """Batches of `(image, target)`, or `(image, target, weight)`, as numpy float32.

    `image` `(batch, H, W, 3)` RGB in [0, 1]; `target` `(batch, H, W, 2)`: the person mask, then
    the ignore mask (1 = ignore); `weight` `(batch,)`: the example's source weight, for training
    batches when `config.source_weights` names any.

    Training examples come in a new order each epoch (unless `config.shuffle_buffer` is 0: with
    random access the whole epoch is shuffled, whatever the buffer), each source as many times as
    `config.source_repeats` says, augmented per `config`; copy-paste pastes an example's people
    over another record of the epoch (never its own). Validation examples are stretched whole
    frames, in order. Keras calls `on_epoch_end`, which moves to the next epoch (`fit` calls it
    once before its first epoch too, so that one reads epoch 1; a restored run sets `epoch`);
    give `fit` `shuffle=False` to keep the order of batches too.

    `prefetch` threads make the next batches while the model trains on this one, each asked for
    by (epoch, batch) so that none is ever served in another epoch. Keras's own workers are not
    used for this: its queue can hand out batches made before an epoch's end in the next epoch
    (seen under JAX, where a restored run then read other batches than the run it continued).
    """

    def __init__(
        self,
        records: RecordIndex,
        config: PipelineConfig,
        training: bool,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
        prefetch: int = 0,
    ):
        """Batches of `records` per `config`.

        Args:
            training: Shuffle, repeat, weigh and augment per `config`; else stretch-resize only.
            workers, use_multiprocessing, max_queue_size: Keras' `PyDataset` arguments: the
                threads (or processes) that make batches ahead, and how many they keep ready.
            prefetch: Threads of this process making the next batches ahead (twice as many
                batches as threads), instead of Keras's workers.

        Raises:
            ValueError: a repeated source has no examples, no background picture is found, or
                `config.drop_remainder` and too few examples fill one batch.
        """
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        self.records = records.loaded() if config.cache else records
        self.config, self.training, self.epoch = config, training, 0
        seed = config.seed
        self.entropy = np.random.SeedSequence().entropy if seed is None else seed % 2**64
        named = training and bool(config.source_repeats or config.source_weights)
        sources = np.array(self.records.sources() if named else [""] * len(self.records))
        self.times = np.ones(len(self.records), np.int64)
        for source, times in config.source_repeats if training else ():
            if not (sources == source).any():
                raise ValueError(f"no training examples of source {source!r} to repeat")
            self.times[sources == source] = times
        # Sorted by record: the copies of a record are neighbours, and start at `self.first`.
        self.entries = np.repeat(np.arange(len(self.records)), self.times)
        self.first = np.cumsum(self.times) - self.times
        self.weights = None
        if training and config.source_weights:
            weights = dict(config.source_weights)
            self.weights = np.array([weights.get(s, 1.0) for s in sources], np.float32)
        if config.drop_remainder and self.count < config.batch_size:
            raise ValueError(f"{self.count} examples cannot fill one batch of {config.batch_size}")
        self.augment = training and config.augment
        self.backgrounds = []
        wanted = config.background_probability > 0 or config.zoom_out_probability > 0
        if self.augment and config.background_folders and wanted:
            self.backgrounds = background_files(config.background_folders)
        self._owner, self._order = os.getpid(), (None, None)
        self.prefetch = prefetch
        self._pool, self._ahead, self._lock = None, {}, threading.Lock()

    def __getstate__(self):
        # A worker process gets the batches' recipe, not this process's threads.
        return {**self.__dict__, "_pool": None, "_ahead": {}, "_lock": None}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.Lock())

    @property
    def count(self) -> int:
        """Examples per epoch, repeated sources counted."""
        return len(self.entries)

    def __len__(self) -> int:
        batches = self.count / self.config.batch_size
        return math.floor(batches) if self.config.drop_remainder else math.ceil(batches)

    def on_epoch_end(self):
        self.epoch += 1

    def order(self, epoch: int) -> np.ndarray:
        """The records of `epoch`, in the order its batches hold them."""
        cached, order = self._order  # one read: threads may make other epochs' batches
        if cached != epoch:
            order = self.entries
            if self.training and self.config.shuffle_buffer:
                order = order[_generator(self.entropy, _ORDER, epoch).permutation(self.count)]
            self._order = (epoch, order)
        return order

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        if os.getpid() != self._owner:
            one_opencv_thread()
            return self.batch(self.epoch, index)
        if not self.prefetch:
            return self.batch(self.epoch, index)
        epoch = self.epoch
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.prefetch, thread_name_prefix="batches")
            for key in [key for key in self._ahead if key[0] != epoch]:
                self._ahead.pop(key).cancel()  # another epoch's: never served
            made = self._ahead.pop((epoch, index), None)
            for ahead in range(index + 1, min(index + 1 + 2 * self.prefetch, len(self))):
                if (epoch, ahead) not in self._ahead:
                    self._ahead[epoch, ahead] = self._pool.submit(self.batch, epoch, ahead)
        return self.batch(epoch, index) if made is None else made.result()

    def batch(self, epoch: int, index: int):
        """Batch `index` of `epoch`: `(image, target[, weight])`."""
        size = self.config.batch_size
        order = self.order(epoch)
        positions = range(index * size, min((index + 1) * size, self.count))
        examples = (self.example(int(order[p]), p, epoch) for p in positions)
        images, targets = zip(*examples, strict=True)
        batch = (np.stack(images), np.stack(targets))
        if self.weights is not None:
            batch += (self.weights[order[positions.start : positions.stop]],)
        return batch

    def example(self, record: int, position: int, epoch: int | None = None):
        """`(image, target)` of `record` at `position` of `epoch` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        example = self.records.example(record)
        parts = (example["image"], example["mask"], example["ignore"])
        if self.augment:
            image, mask, ignore = self._augmented(parts, record, position, epoch)
        else:
            image, mask, ignore = transforms.resize_example(*parts, self.config.input_shape)
        return image, np.concatenate([mask, ignore], axis=-1)

    def scene(self, record: int, rng: np.random.Generator) -> int | None:
        """A random other record of the epoch (as often as it is repeated), or None if none."""
        others = self.count - self.times[record]
        if not others:
            return None
        chosen = int(rng.integers(others))  # a place in the epoch, the record's copies skipped
        if chosen >= self.first[record]:
            chosen += int(self.times[record])
        return int(self.entries[chosen])

    def _augmented(self, parts, record: int, position: int, epoch: int):
        """The augmentation, in its order: geometry, copy-paste, zoom-out, background, colour."""
        config, shape = self.config, self.config.input_shape

        def rng(stream: int) -> np.random.Generator:
            return _generator(self.entropy, stream, epoch, position)

        crop = self._crop_options()
        parts = transforms.augment_geometry(*parts, shape, rng(_GEOMETRY), **crop)
        paste = rng(_PASTE)
        # Decided first (probability 1 below), so that a scene is decoded only to be pasted.
        if config.copy_paste_probability and paste.random() < config.copy_paste_probability:
            scene_rng = rng(_SCENE)
            scene = self.scene(record, scene_rng)
            if scene is not None:
                other = self.records.example(scene)
                other = (other["image"], other["mask"], other["ignore"])
                other = transforms.augment_geometry(*other, shape, scene_rng, **crop)
                parts = transforms.copy_paste(parts, other, 1.0, paste)
        zoom = rng(_ZOOM)
        if config.zoom_out_probability and zoom.random() < config.zoom_out_probability:
            canvas = self._canvas(record, zoom)
            if canvas is not None:
                parts = transforms.zoom_out(parts, canvas, zoom)
        image, mask, ignore = parts
        background = rng(_BACKGROUND)
        if self.backgrounds and background.random() < config.background_probability:
            path = self.backgrounds[int(background.integers(len(self.backgrounds)))]
            picture = read_background(path, shape, background)
            image = transforms.replace_background(image, mask, picture, 1.0, background)
        return transforms.jitter_colour(image, rng(_COLOUR)), mask, ignore

    def _canvas(self, record: int, rng: np.random.Generator):
        """What a zoomed-out example is placed on: a background picture (no people) when the
        config names any, else another record of the epoch, augmented (its people labelled);
        None when there is neither."""
        shape = self.config.input_shape
        if self.backgrounds:
            path = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
            empty = np.zeros((*shape, 1), np.float32)
            return read_background(path, shape, rng), empty, empty
        scene = self.scene(record, rng)
        if scene is None:
            return None
        other = self.records.example(scene)
        parts = (other["image"], other["mask"], other["ignore"])
        return transforms.augment_geometry(*parts, shape, rng, **self._crop_options())

    def _crop_options(self) -> dict:
        """`augment_geometry`'s crop settings from the config."""
        return {
            "crop_aspect": self.config.crop_aspect,
            "whole_frame_probability": self.config.whole_frame_probability,
        }


def record_batches(folder: str | Path, split: str, config: PipelineConfig, training: bool, **kw):
    """`RecordBatches` of one split of a `backdrop prepare` folder (`split_index` checks it).

    Args:
        kw: `RecordBatches`' `workers`, `use_multiprocessing` and `max_queue_size`.

    Returns:
        `(batches, count)`: count is the examples per epoch, repeated sources counted.
    """
    batches = RecordBatches(split_index(folder, split), config, training, **kw)
    return batches, batches.count


def memory_batches(examples: Sequence[bytes], config: PipelineConfig, training: bool, **kw):
    """`RecordBatches` of serialized examples held in memory (the folder-dataset path).

    Returns:
        `(batches, count)` as `record_batches`.
    """
    batches = RecordBatches(memory_index(examples), config, training, **kw)
    return batches, batches.count
