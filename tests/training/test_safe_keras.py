""".keras files are data: a checkpoint that names code, another file or more weights than it holds
is refused in one line naming it, before Keras sees it, and nothing it names ever runs."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import h5py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backdrop.cli import main
from backdrop.tf_setup import import_tensorflow
from backdrop.training.config import RunFileError, TrainingError

import_tensorflow()
import keras  # noqa: E402

from backdrop.training import losses  # noqa: E402
from backdrop.training.checkpoints import load_checkpoint  # noqa: E402
from backdrop.training.quantize_aware import FakeQuant  # noqa: E402
from backdrop.training.safe_keras import check_keras_file  # noqa: E402
from tests.fuzzing import broken  # noqa: E402


def _tiny_checkpoint(path: Path) -> Path:
    """A compiled two-layer model with each of Backdrop's registered objects, as train saves."""
    image = keras.Input((4, 4, 3), name="image")
    rounded = FakeQuant(name="rounded")(image)
    out = keras.layers.Conv2D(1, 1, activation="sigmoid", name="logits")(rounded)
    model = keras.Model(image, out)
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, 10)
    model.compile(keras.optimizers.Adam(schedule), losses.bce_dice_loss, [losses.PersonIoU()])
    model.save(path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> bytes:
    return _tiny_checkpoint(tmp_path_factory.mktemp("good") / "good.keras").read_bytes()


def _members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _with_config(checkpoint: bytes, path: Path, change) -> Path:
    """The checkpoint with its config.json passed through `change` (which edits it in place)."""
    members = _members(checkpoint)
    config = json.loads(members["config.json"])
    change(config)
    return _zip(path, {**members, "config.json": json.dumps(config).encode()})


def _layer(module, class_name, config, registered=None) -> dict:
    return {
        "module": module,
        "class_name": class_name,
        "config": config,
        "registered_name": registered,
        "name": "payload",
        "inbound_nodes": [],
    }


def _refused_in_one_line(path: Path, *fragments: str) -> str:
    with pytest.raises(RunFileError) as caught:
        check_keras_file(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_backdrops_own_checkpoints_pass_and_load(checkpoint, tmp_path):
    path = tmp_path / "good.keras"
    path.write_bytes(checkpoint)
    check_keras_file(path)
    model = load_checkpoint(path)
    assert model.get_layer("rounded").__class__ is FakeQuant


def _payloads(marker: Path) -> dict:
    """config.json edits, each naming something that would run code or read another file."""
    command = f"touch {marker}"

    def layer(entry):
        return lambda config: config["config"]["layers"].append(entry)

    def loss(entry):
        return lambda config: config["compile_config"].update(loss=entry)

    function = {"class_name": "function", "registered_name": "function"}
    return {
        "os.system layer": layer(_layer("os", "system", {"command": command})),
        "posix.system layer": layer(_layer("posix", "system", {"command": command})),
        "subprocess.Popen": layer(_layer("subprocess", "Popen", {"args": ["touch", str(marker)]})),
        "builtins.exec": layer(_layer("builtins", "exec", {"source": command})),
        "os.system function": loss({**function, "module": "os", "config": "system"}),
        "builtins eval": loss({**function, "module": "builtins", "config": "eval"}),
        "get_file function": loss({**function, "module": "keras.utils", "config": "get_file"}),
        "get_file by module": layer(
            _layer("keras.src.utils.file_utils", "get_file", {"origin": "http://x"})
        ),
        "unsafe deserialization": loss(
            {**function, "module": "keras.config", "config": "enable_unsafe_deserialization"}
        ),
        "Lambda": layer(
            _layer(
                "keras.layers",
                "Lambda",
                {"function": {"class_name": "__lambda__", "config": {"value": "4wAAAA=="}}},
            )
        ),
        "__lambda__ alone": loss({"class_name": "__lambda__", "config": {"value": "4wAAAA=="}}),
        "TFSMLayer": layer(
            _layer("keras.layers", "TFSMLayer", {"filepath": str(marker.parent), "trainable": 0})
        ),
        "TorchModuleWrapper": layer(_layer("keras.layers", "TorchModuleWrapper", {"module": ""})),
        "StringLookup reads a file": layer(
            _layer("keras.layers", "StringLookup", {"vocabulary": "/etc/passwd"})
        ),
        "foreign registered name": layer(
            _layer("keras.layers", "Dense", {"units": 1}, registered="evil>Dense")
        ),
        "keras_hub module": layer(_layer("keras_hub.src.utils", "Anything", {})),
        "typespec": loss({"class_name": "__typespec__", "spec_name": "X", "module": "os"}),
        "a function of keras.layers": loss(
            {**function, "module": "keras.layers", "config": "deserialize"}
        ),
        "a model class elsewhere": lambda config: config.update(module="os"),
        "no class name": layer({"module": "keras.layers", "config": {}}),
        "a list for a registered name": layer(_layer("keras.layers", "Dense", {}, registered=[])),
    }


@pytest.mark.parametrize("payload", sorted(_payloads(Path("marker"))))
def test_a_config_naming_code_is_refused_in_one_line(checkpoint, tmp_path, payload):
    marker = tmp_path / "marker"
    path = _with_config(checkpoint, tmp_path / "evil.keras", _payloads(marker)[payload])
    _refused_in_one_line(path, "is refused")
    with pytest.raises(TrainingError, match="evil.keras is refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_real_lambda_checkpoint_never_runs(tmp_path):
    """A Lambda layer saved by Keras itself, whose function writes a file when it is called."""
    marker = tmp_path / "marker"
    image = keras.Input((2,))
    touch = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # no closure to save
    touched = keras.layers.Lambda(touch)(image)
    keras.Model(image, touched).save(tmp_path / "lambda.keras")
    marker.unlink()  # the lambda ran once while the model was built
    _refused_in_one_line(tmp_path / "lambda.keras", "keras.layers.Lambda")
    assert main(["average", str(tmp_path / "lambda.keras"), "-o", str(tmp_path / "a.keras")]) == 1
    assert not marker.exists() and not (tmp_path / "a.keras").exists()
    keras.saving.load_model(tmp_path / "lambda.keras", safe_mode=False)
    assert marker.exists(), "the file is a real payload: loaded unsafely, it runs"


def test_a_string_naming_a_foreign_registered_object_is_refused(checkpoint, tmp_path):
    registry = keras.saving.get_custom_objects()
    registry["evil>run"] = print
    try:
        path = _with_config(
            checkpoint,
            tmp_path / "evil.keras",
            lambda c: c["compile_config"].update(loss="evil>run"),
        )
        _refused_in_one_line(path, "'evil>run'")
    finally:
        del registry["evil>run"]


def _corrupt(checkpoint: bytes, folder: Path) -> dict[str, Path]:
    members = _members(checkpoint)
    flipped = bytearray(checkpoint)
    flipped[len(flipped) // 2] ^= 0x10  # inside the weights: its CRC no longer matches
    files = {
        "not a zip": b"not a zip file",
        "empty": b"",
        "truncated": checkpoint[: len(checkpoint) // 2],
        "bit-flipped": bytes(flipped),
    }
    paths = {name: folder / f"{name}.keras" for name in files}
    for name, content in files.items():
        paths[name].write_bytes(content)
    paths["parent member"] = _zip(folder / "parent.keras", {**members, "../evil.py": b"x"})
    paths["absolute member"] = _zip(folder / "absolute.keras", {**members, "/tmp/evil": b"x"})
    paths["asset member"] = _zip(folder / "asset.keras", {**members, "assets/v.txt": b"x"})
    paths["no weights"] = _zip(folder / "noweights.keras", {"config.json": members["config.json"]})
    paths["config not JSON"] = _zip(folder / "nojson.keras", {**members, "config.json": b"{"})
    paths["config a list"] = _zip(folder / "list.keras", {**members, "config.json": b"[]"})
    deep = b"[" * 100_000 + b"]" * 100_000
    paths["config too deep"] = _zip(folder / "deep.keras", {**members, "config.json": deep})
    nested = json.dumps(json.loads(members["config.json"]) | {"x": [[[[[[[]]]]]]] * 1})
    paths["config nested"] = _zip(folder / "nested.keras", {**members, "config.json": nested})
    paths["weights not HDF5"] = _zip(
        folder / "noh5.keras", {**members, "model.weights.h5": b"\x89HDF\r\n\x1a\n" + bytes(64)}
    )
    return paths


@pytest.mark.parametrize(
    "kind",
    [
        "not a zip",
        "empty",
        "truncated",
        "bit-flipped",
        "parent member",
        "absolute member",
        "asset member",
        "no weights",
        "config not JSON",
        "config a list",
        "config too deep",
        "weights not HDF5",
    ],
)
def test_a_damaged_or_strange_file_is_one_line_naming_it(checkpoint, tmp_path, kind):
    path = _corrupt(checkpoint, tmp_path)[kind]
    _refused_in_one_line(path)
    with pytest.raises(TrainingError, match=path.name):
        load_checkpoint(path, "the remedy")


def test_an_ordinary_extra_nesting_level_still_passes(checkpoint, tmp_path):
    check_keras_file(_corrupt(checkpoint, tmp_path)["config nested"])


def _with_weights(checkpoint: bytes, path: Path, change) -> Path:
    members = _members(checkpoint)
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "a") as weights:
        change(weights)
    return _zip(path, {**members, "model.weights.h5": buffer.getvalue()})


def test_weights_that_point_elsewhere_or_claim_too_much_are_refused(checkpoint, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(bytes(64))
    changes = {
        "external link": lambda f: f.__setitem__("x", h5py.ExternalLink(str(outside), "/")),
        "soft link": lambda f: f.__setitem__("x", h5py.SoftLink("/nowhere")),
        "external data": lambda f: f.create_dataset(
            "x", (16,), "f4", external=[(str(outside), 0, 64)]
        ),
        "unwritten billion": lambda f: f.create_dataset("x", (10**9,), "f4", chunks=(10**6,)),
    }
    for name, change in changes.items():
        path = _with_weights(checkpoint, tmp_path / f"{name}.keras", change)
        message = _refused_in_one_line(path, "model.weights.h5")
        assert "corrupt" not in message, (name, message)


def test_truncated_or_bit_flipped_files_are_checked_or_refused_in_one_line(checkpoint):
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(broken(checkpoint))
    def check(content):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "broken checkpoint.keras"
            path.write_bytes(content)
            try:
                check_keras_file(path)
            except RunFileError as error:
                assert str(path) in str(error) and "\n" not in str(error)

    check()


_NAMES = st.sampled_from(
    ["os", "posix", "builtins", "subprocess", "keras.utils", "keras.config", "keras.layers", None]
)
_CLASSES = st.sampled_from(
    [
        "system",
        "Popen",
        "eval",
        "get_file",
        "Lambda",
        "TFSMLayer",
        "function",
        "Dense",
        "__lambda__",
    ]
)
_REGISTERED = st.sampled_from([None, None, "evil>x", [], {"a": 1}, 3])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def test_any_config_edit_is_checked_or_refused_in_one_line(checkpoint):
    """Objects and values swapped into the config at random: the check passes or refuses in one
    line; an entry naming a module outside Keras or a refused class never passes."""
    members = _members(checkpoint)
    base = json.loads(members["config.json"])

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(0, 10**6), _NAMES, _CLASSES, _JSON, st.booleans(), _REGISTERED)
    def check(where, module, class_name, value, as_object, registered):
        config = json.loads(json.dumps(base))
        layers = config["config"]["layers"]
        layer = layers[where % len(layers)]
        if as_object:
            layer.update(module=module, class_name=class_name, config=value)
            layer["registered_name"] = registered
        else:
            layer["config"]["payload"] = value
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "edited.keras"
            _zip(path, {**members, "config.json": json.dumps(config).encode()})
            try:
                check_keras_file(path)
            except RunFileError as error:
                assert str(path) in str(error) and "\n" not in str(error)
            else:
                named = (module, class_name, registered)
                assert not as_object or named == ("keras.layers", "Dense", None), named

    check()


def test_every_keras_file_is_loaded_through_the_one_checked_loader():
    """No module but checkpoints.py calls Keras's loaders; every caller uses load_checkpoint."""
    import re

    import backdrop

    loaders = re.compile(r"\b(load_model|load_weights|saved_model\.load|TFSMLayer)\(")
    source = Path(backdrop.__file__).parent
    callers = sorted(
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if loaders.search(path.read_text(encoding="utf-8"))
    )
    assert callers == ["training/checkpoints.py"], callers


def test_every_command_refuses_a_hostile_checkpoint_in_one_line(checkpoint, tmp_path, capsys):
    """export, average, fit-int8 and train --init-from all load through the checked loader."""
    from backdrop.training.config import TrainConfig
    from tests import fixtures

    marker, run = tmp_path / "marker", tmp_path / "run"
    run.mkdir()
    evil = _with_config(checkpoint, run / "best.keras", _payloads(marker)["os.system layer"])
    (run / "config.json").write_text(TrainConfig(checkpoints=run, input_shape=(4, 4)).to_json())
    portraits, new = fixtures.make_portrait(tmp_path / "portraits", count=4), str(tmp_path / "new")
    commands = [
        ["export", str(run), "-r", str(tmp_path / "records"), "--modes", "float32"],
        ["average", str(evil), "-o", str(tmp_path / "average.keras")],
        ["fit-int8", str(evil), "-r", str(tmp_path / "records"), "-o", str(tmp_path / "f.keras")],
        ["train", "--portrait", str(portraits), "-o", new, "--init-from", str(evil), "-e", "1"],
    ]
    for command in commands:
        assert main(command) == 1, command
        err = capsys.readouterr().err.strip()
        assert "Traceback" not in err, err
        assert f"{evil} is refused" in err.splitlines()[-1], (command, err)
    assert not marker.exists()
    assert not any((tmp_path / name).exists() for name in ("average.keras", "f.keras"))
