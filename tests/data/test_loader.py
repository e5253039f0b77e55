"""loader.py: the tf.data pipeline's batches without TensorFlow: same layout, options and
validation pixels; batches a pure function of (seed, epoch, batch), whatever the workers."""

from __future__ import annotations

import dataclasses
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from backdrop.data import transforms
from backdrop.data.loader import memory_batches, record_batches
from backdrop.data.pipeline_config import PipelineConfig
from backdrop.data.prepare import PrepareConfig, prepare
from backdrop.data.readers import create_reader
from backdrop.data.record_index import split_index
from backdrop.data.records import encode_example
from backdrop.data.records_metadata import shard_paths
from backdrop.data.tfrecord import RecordsFileError, record_spans
from tests import fixtures
from tests.fuzzing import one_line_naming

ROOT = Path(__file__).resolve().parents[2]


def random_examples(count, source="test"):
    """`count` records of random images with random masks."""
    rng = np.random.default_rng(0)
    return [
        encode_example(
            f"s{i}",
            source,
            rng.integers(0, 255, (40, 50, 3), dtype=np.uint8),
            (rng.random((40, 50)) > 0.5).astype(np.float32),
            None,
            "png",
        )
        for i in range(count)
    ]


def encoded(count, source, value):
    """`count` records of one flat colour `value`, the whole picture a person."""
    return [
        encode_example(
            f"{source}{i}",
            source,
            np.full((40, 50, 3), value, np.uint8),
            np.ones((40, 50), np.float32),
            None,
            "png",
        )
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    """A records folder of 12 small PNG portraits in shards of 4 (PNG: pixels compare exactly)."""
    root = tmp_path_factory.mktemp("records")
    portraits = fixtures.make_portrait(root / "portraits", count=12)
    config = PrepareConfig(
        root / "records",
        side=32,
        validation_fraction=0.34,
        shard_size=4,
        image_format="png",
        workers=1,
    )
    prepare([create_reader("portrait", portraits)], config, progress=False)
    return root / "records"


@pytest.fixture(scope="module")
def backgrounds(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("backgrounds")
    rng = np.random.default_rng(1)
    for i, size in enumerate([(30, 60), (70, 50)]):
        cv2.imwrite(str(folder / f"b{i}.png"), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return folder


def epochs_of(batches, epochs: int = 2) -> list[list[tuple]]:
    """Every batch of `epochs` epochs, as Keras' `fit` reads them (its workers included)."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(batches, shuffle=False)
    found = []
    for _ in range(epochs):
        adapter.on_epoch_begin()
        found.append([tuple(np.asarray(a) for a in b) for b in adapter.get_numpy_iterator()])
        adapter.on_epoch_end()
    return found


def assert_same(first: list, second: list) -> None:
    assert len(first) == len(second)
    for one, other in zip(first, second, strict=True):
        assert len(one) == len(other)
        for a, b in zip(one, other, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"copy_paste_probability": 0.5, "background_probability": 1.0},
        {"zoom_out_probability": 0.5, "background_probability": 0.0},
        {"source_weights": (("test", 0.5),)},
        {"augment": False},
    ],
)
def test_training_batches_have_the_layout_shapes_dtypes_and_ranges_training_reads(
    options, backgrounds
):
    config = PipelineConfig(
        (24, 32), batch_size=4, seed=1, background_folders=(backgrounds,), **options
    )
    examples = random_examples(10)
    batches, count = memory_batches(examples, config, training=True)
    assert count == 10 and len(batches) == 3
    ours = batches[0]
    assert len(ours) == (3 if "source_weights" in options else 2)
    shapes = [(4, 24, 32, 3), (4, 24, 32, 2), (4,)]
    for mine, shape in zip(ours, shapes, strict=False):
        assert isinstance(mine, np.ndarray) and mine.dtype == np.float32 and mine.shape == shape
    image, target = ours[:2]
    assert 0 <= image.min() and image.max() <= 1 and 0 <= target.min() and target.max() <= 1
    assert set(np.unique(target[..., 1])) <= {0.0, 1.0}
    if len(ours) == 3:
        np.testing.assert_array_equal(ours[2], [0.5] * 4)
    assert batches[2][0].shape == (2, 24, 32, 3)  # the last, partial batch


def test_validation_batches_are_the_stretched_frames_in_order_unweighted(records):
    config = PipelineConfig((24, 32), batch_size=3, source_weights=(("portrait", 2.0),))
    batches, count = record_batches(records, "validation", config, training=False)
    index = split_index(records, "validation")
    assert count == len(index) and len(batches) == -(-count // 3)
    frames = [index.example(i) for i in range(count)]
    expected = [
        transforms.resize_example(f["image"], f["mask"], f["ignore"], (24, 32)) for f in frames
    ]
    found = [part for batch in batches for part in zip(*batch, strict=True)]
    assert all(len(batch) == 2 for batch in batches), "unweighted"
    for (image, target), (want_image, want_mask, want_ignore) in zip(found, expected, strict=True):
        np.testing.assert_array_equal(image, want_image)
        np.testing.assert_array_equal(target[..., :1], want_mask)
        np.testing.assert_array_equal(target[..., 1:], want_ignore)


def test_repeated_sources_appear_that_many_times_and_weights_follow_sources():
    examples = encoded(3, "portrait", 200) + encoded(5, "coco", 20) + encoded(2, "davis", 100)
    config = PipelineConfig(
        (16, 16),
        batch_size=4,
        augment=False,
        seed=0,
        source_repeats=(("portrait", 3), ("coco", 2)),
        source_weights=(("coco", 0.25), ("davis", 0.0)),
    )
    batches, count = memory_batches(examples, config, training=True)
    assert count == 3 * 3 + 5 * 2 + 2 and len(batches) == 6
    means, weights = [], []
    for images, _, weight in batches:
        means += list(np.round(images.mean(axis=(1, 2, 3)) * 255))
        weights += list(weight)
    assert sorted(zip(means, weights, strict=True)) == sorted(
        [(20.0, 0.25)] * 10 + [(100.0, 0.0)] * 2 + [(200.0, 1.0)] * 9
    )
    with pytest.raises(ValueError, match="'voc' to repeat"):
        memory_batches(examples, PipelineConfig(source_repeats=(("voc", 2),)), training=True)
    validation, count = memory_batches(examples, config, training=False)
    assert count == 10 and len(validation[0]) == 2  # no repeats, no weights


def seeded_config(backgrounds: Path) -> PipelineConfig:
    return PipelineConfig(
        (16, 24),
        batch_size=3,
        seed=5,
        copy_paste_probability=0.5,
        background_folders=(backgrounds,),
        source_weights=(("test", 0.5),),
    )


# Keras' worker processes fork. Forking inside a threaded process (pytest-xdist's worker, with
# its execnet threads) can leave a child waiting on a lock held by a thread it did not inherit,
# so this arm runs in a Python of its own and hands its batches back in a file.
IN_PROCESSES = """
import pickle, sys
from pathlib import Path
from backdrop.data.loader import memory_batches
from tests.data.test_loader import epochs_of, random_examples, seeded_config

backgrounds, out = map(Path, sys.argv[1:])
config = seeded_config(backgrounds)
batches = memory_batches(random_examples(8), config, True, workers=2, use_multiprocessing=True)
out.write_bytes(pickle.dumps(epochs_of(batches[0])))
print("processes")
"""


def batches_in_processes(backgrounds: Path, tmp_path: Path) -> list[list[tuple]]:
    """`epochs_of` the seeded batches, read by two worker processes in a child Python."""
    out = tmp_path / "processes.pickle"
    result = subprocess.run(
        [sys.executable, "-c", IN_PROCESSES, str(backgrounds), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0 and "processes" in result.stdout, result.stderr[-2000:]
    return pickle.loads(out.read_bytes())  # written by the child above, this test's own


def test_the_same_seed_gives_the_same_batches_with_any_workers_and_new_ones_each_epoch(
    backgrounds, tmp_path
):
    config = seeded_config(backgrounds)
    examples = random_examples(8)
    alone = epochs_of(memory_batches(examples, config, True, workers=0)[0])
    threads = memory_batches(examples, config, True, workers=2)[0]
    prefetched = memory_batches(examples, config, True, prefetch=2)[0]
    processes = batches_in_processes(backgrounds, tmp_path)
    for other in (processes, epochs_of(threads), epochs_of(prefetched)):
        assert len(other) == len(alone)
        for epoch, batches in enumerate(alone):
            assert_same(batches, other[epoch])
    assert not np.allclose(alone[0][0][0], alone[1][0][0]), "each epoch draws anew"
    assert_same(alone[0], list(memory_batches(examples, config, True)[0]))  # a new run
    fresh = [memory_batches(examples, PipelineConfig((16, 24), 3), True)[0][0] for _ in "ab"]
    assert not np.allclose(fresh[0][0], fresh[1][0]), "no seed: new choices every run"


def test_prefetched_batches_are_never_served_in_another_epoch(backgrounds):
    """Batches made ahead belong to their epoch: asked for after the epoch moved on (a peek
    before `fit`'s first epoch, a restored run setting `epoch`), a batch is the new epoch's."""
    config = PipelineConfig((16, 24), batch_size=2, seed=9, background_folders=(backgrounds,))
    examples = random_examples(10)
    plain = memory_batches(examples, config, True)[0]
    ahead = memory_batches(examples, config, True, prefetch=2)[0]
    for batches in (plain, ahead):
        batches.epoch = 3
    ahead[0]  # the next batches of epoch 3 are being made
    for batches in (plain, ahead):
        batches.on_epoch_end()
    for index in (1, 2, 0, 4, 3):
        assert_same([plain[index]], [ahead[index]])
    assert not np.allclose(plain[1][0], plain.batch(3, 1)[0]), "epoch 4 is not epoch 3"


def test_shuffling_is_a_permutation_per_epoch_and_validation_keeps_the_order():
    examples = [
        encode_example(f"s{i}", "s", np.full((8, 8, 3), i * 20, np.uint8), np.ones((8, 8)), None)
        for i in range(10)
    ]
    config = PipelineConfig((8, 8), batch_size=10, augment=False, seed=2)
    batches = memory_batches(examples, config, training=True)[0]
    orders = []
    for _ in range(3):
        orders.append(list(np.round(batches[0][0].mean(axis=(1, 2, 3)) * 255 / 20)))
        batches.on_epoch_end()
    assert all(sorted(order) == list(range(10)) for order in orders)
    assert len({tuple(order) for order in orders}) == 3
    # No shuffle buffer, and validation: in order.
    for unshuffled, training in (
        (dataclasses.replace(config, shuffle_buffer=0), True),
        (config, False),
    ):
        batches = memory_batches(examples, unshuffled, training)[0]
        assert list(np.round(batches[0][0].mean(axis=(1, 2, 3)) * 255 / 20)) == list(range(10))


def test_copy_paste_pastes_another_record_never_the_example_itself():
    """No person anywhere, so a pasted example shows only its scene: a dark record (weight 0.5,
    three copies an epoch) must always show the light one, and the light one a dark copy."""
    config = PipelineConfig(
        (16, 16),
        batch_size=4,
        copy_paste_probability=1.0,
        source_repeats=(("dark", 3),),
        source_weights=(("dark", 0.5),),
    )
    examples = [
        encode_example(name, name, np.full((20, 20, 3), value, np.uint8), np.zeros((20, 20)), None)
        for name, value in (("dark", 0), ("light", 255))
    ]
    for seed in range(5):
        batches = memory_batches(examples, dataclasses.replace(config, seed=seed), True)[0]
        for _ in range(3):
            images, targets, weights = batches[0]
            for image, target, weight in zip(images, targets, weights, strict=True):
                shown = image[target[..., 1] == 0].mean()  # the scene's own pixels
                assert (shown > 0.5) == (weight == 0.5)
            batches.on_epoch_end()
    # One record (three copies of it): there is no other scene, and nothing is pasted.
    alone = [examples[0]]
    pasted, plain = (
        memory_batches(alone, dataclasses.replace(config, seed=1, copy_paste_probability=p), True)
        for p in (1.0, 0.0)
    )
    assert pasted[1] == plain[1] == 3
    assert pasted[0].scene(0, np.random.default_rng(0)) is None
    assert_same([pasted[0][0]], [plain[0][0]])


def test_zoom_out_shrinks_people_onto_backgrounds_or_onto_other_records(backgrounds):
    """Whole-person records: zoomed out onto backgrounds (which hold no one), a tenth to four
    fifths of each example stays a person; onto another record (a person too), all of it."""
    examples = encoded(6, "people", 200)
    config = PipelineConfig(
        (16, 16), batch_size=6, zoom_out_probability=1.0, background_probability=0.0, seed=2
    )
    onto_backgrounds = dataclasses.replace(config, background_folders=(backgrounds,))
    batches = memory_batches(examples, onto_backgrounds, training=True)[0]
    person = batches[0][1][..., 0].mean(axis=(1, 2))
    low, high = transforms.ZOOM_OUT_SCALES
    assert (person > low**2 * 0.8).all() and (person < high**2 * 1.1).all()
    # Without backgrounds the canvas is another record: people wherever a picture shows (the
    # rotation's corners are ignored, the pixels beside them blend with its zeros).
    targets = memory_batches(examples, config, training=True)[0][0][1]
    shown = targets[..., 1] == 0
    assert shown.mean() > 0.8 and targets[..., 0][shown].mean() > 0.97
    # The same seed gives the same batches; no zoom-out leaves every example whole.
    first, again = (memory_batches(examples, onto_backgrounds, True)[0][0] for _ in range(2))
    assert_same([first], [again])
    plain = dataclasses.replace(onto_backgrounds, zoom_out_probability=0.0)
    targets = memory_batches(examples, plain, True)[0][0][1]
    assert targets[..., 0][targets[..., 1] == 0].mean() > 0.97


def test_drop_remainder_drops_the_last_batch_and_refuses_too_few_examples():
    examples = random_examples(10)
    batches, _ = memory_batches(examples, PipelineConfig((8, 8), 4, drop_remainder=True), True)
    assert len(batches) == 2 and batches[1][0].shape[0] == 4
    with pytest.raises(IndexError):
        batches[2]
    with pytest.raises(ValueError, match="10 examples cannot fill one batch of 16"):
        memory_batches(examples, PipelineConfig((8, 8), 16, drop_remainder=True), True)
    with pytest.raises(ValueError, match="no examples to train on"):
        memory_batches([], PipelineConfig((8, 8)), True)


def test_a_damaged_shard_is_one_line_naming_it(records, tmp_path):
    copied = Path(shutil.copytree(records, tmp_path / "records"))
    first, second = shard_paths(copied, "train")[:2]
    second.write_bytes(second.read_bytes()[:-7])
    with pytest.raises(RecordsFileError, match="backdrop prepare") as caught:
        record_batches(copied, "train", PipelineConfig((16, 16)), training=True)
    one_line_naming(caught.value, second)
    second.unlink()
    with pytest.raises(RecordsFileError, match="is missing") as caught:
        record_batches(copied, "train", PipelineConfig((16, 16)), training=True)
    one_line_naming(caught.value, second)
    # A shard changed after it was indexed: its record fails its CRC where it is read.
    shutil.copy(records / second.name, second)
    batches, _ = record_batches(copied, "train", PipelineConfig((16, 16), 2), training=True)
    offset, length = record_spans(first)[0]
    content = bytearray(first.read_bytes())
    content[offset + length // 2] ^= 0x10  # in the first record's data
    first.write_bytes(bytes(content))
    with pytest.raises(RecordsFileError, match="changed after it was checked") as caught:
        list(batches)
    one_line_naming(caught.value, first)
    with pytest.raises(RecordsFileError, match="fails its CRC") as caught:  # indexed anew
        record_batches(copied, "train", PipelineConfig((16, 16), 2), training=True)
    one_line_naming(caught.value, first)


FORKED = """
import multiprocessing, time
import cv2, numpy as np
from backdrop.data.loader import memory_batches
from backdrop.data.pipeline_config import PipelineConfig
from tests.data.test_loader import random_examples

cv2.setNumThreads(4)
cv2.warpAffine(np.zeros((2000, 2000, 3), np.float32), np.eye(2, 3), (2000, 2000))
time.sleep(1)  # OpenCV's threads wait for work: a child that reconfigured them would hang
batches = memory_batches(random_examples(6), PipelineConfig((16, 16), 2, seed=0), True)[0]
with multiprocessing.get_context("fork").Pool(2) as pool:
    assert pool.apply(cv2.getNumThreads) == 1
    read = pool.map(batches.__getitem__, range(len(batches)))
assert cv2.getNumThreads() == 4
for mine, theirs in zip(read, batches, strict=True):
    np.testing.assert_array_equal(mine[0], theirs[0])
print("forked")
"""


def test_worker_processes_forked_after_opencv_ran_use_one_thread_and_do_not_hang():
    result = subprocess.run(
        [sys.executable, "-c", FORKED], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0 and "forked" in result.stdout, result.stderr[-2000:]


def test_soft_targets_stay_soft_from_records_to_batches():
    """Teacher labels are probabilities: nothing thresholds them on the way in."""
    mask = np.tile(np.linspace(0, 1, 50, dtype=np.float32), (40, 1))
    example = encode_example("soft", "pseudo", np.zeros((40, 50, 3), np.uint8), mask, None, "png")
    config = PipelineConfig((40, 50), batch_size=1, augment=False)
    batches, _ = memory_batches([example], config, training=False)
    values = np.unique(np.round(batches[0][1][0, ..., 0], 2))
    assert len(values) > 40 and values.min() == 0 and values.max() == 1


def test_pipeline_settings_are_checked_on_creation():
    with pytest.raises(ValueError, match="crop_aspect must be one of input, frame"):
        PipelineConfig(crop_aspect="square")
    with pytest.raises(ValueError, match="whole_frame_probability"):
        PipelineConfig(whole_frame_probability=1.5)
    with pytest.raises(ValueError, match="must be >= 0"):
        PipelineConfig((16, 16), source_weights=(("pseudo", -1.0),))
