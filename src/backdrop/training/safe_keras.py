"""A `.keras` file checked as data before Keras loads it: it can name nothing that runs code.

A `.keras` file is a zip of config.json (the objects to build, by module and class name),
metadata.json and model.weights.h5. Keras builds whatever class or function config.json names,
and its safe mode has been bypassed before (CVE-2025-1550: any module's function; CVE-2025-8747:
`keras.utils.get_file`; CVE-2025-9906: `keras.config.enable_unsafe_deserialization`). So every
object config.json names must be a Keras built-in layer, loss, metric, optimizer, schedule,
initializer, regularizer, constraint, activation or dtype policy, or one Backdrop registers; the
Keras layers that run code or read other files (`Lambda`, `TFSMLayer`, ...) are refused, and the
weights file may link or point to no other file and hold no more numbers than it has bytes for.
"""

from __future__ import annotations

import inspect
import json
import zipfile
import zlib
from pathlib import Path

from backdrop.tf_setup import quiet_tensorflow
from backdrop.training.config import RunFileError

quiet_tensorflow()
import h5py  # noqa: E402
import keras  # noqa: E402

import backdrop.models.tflite_layers  # noqa: E402, F401  (registers DepthToSpace)
import backdrop.training.losses  # noqa: E402, F401  (registers the loss and metric)
import backdrop.training.quantize_aware  # noqa: E402, F401  (registers FakeQuant)

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_WEIGHTS_BYTES = 8 * 1024 * 1024 * 1024
MAX_NESTING = 256  # of config.json's objects; Backdrop's models nest about 10 deep
# The objects Backdrop registers with `keras.saving.register_keras_serializable`.
BACKDROP_OBJECTS = frozenset(
    name for name in keras.saving.get_custom_objects() if name.startswith("backdrop>")
)
# Keras's public namespaces whose classes and functions a model file may name.
CLASS_MODULES = (
    "layers",
    "losses",
    "metrics",
    "optimizers",
    "optimizers.schedules",
    "initializers",
    "regularizers",
    "constraints",
    "dtype_policies",
)
FUNCTION_MODULES = ("activations", "losses", "metrics")
MODELS = ("Functional", "Sequential", "Model")
MODEL_MODULES = (
    "keras",
    "keras.models",
    "keras.src.models.functional",
    "keras.src.models.sequential",
    "keras.src.models.model",
)
# Built-in layers that run Python or another file's graph, or read a file a path names.
REFUSED_CLASSES = frozenset(
    {
        "Lambda",
        "TFSMLayer",
        "TorchModuleWrapper",
        "JaxLayer",
        "FlaxLayer",
        "TextVectorization",
        "StringLookup",
        "IntegerLookup",
    }
)
REFUSED_FUNCTIONS = frozenset({"get", "serialize", "deserialize"})
# Values config.json holds, not objects it names (`__lambda__` and `__typespec__` are not here).
DATA_CLASSES = frozenset(
    {"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__", "__slice__"}
)
ALLOWED = (
    "Backdrop loads only Keras's built-in layers, losses, metrics and optimizers and its own "
    f"({', '.join(sorted(name.partition('>')[2] for name in BACKDROP_OBJECTS))})"
)


class _Refused(Exception):
    """Why the file is refused; `corrupt` when it is damaged rather than unsafe."""

    def __init__(self, reason: str, corrupt: bool = False):
        super().__init__(reason)
        self.corrupt = corrupt


def _names(what: str) -> _Refused:
    """A config that names `what`, which Backdrop does not load."""
    return _Refused(f"its {CONFIG} names {what}; {ALLOWED}")


def check_keras_file(path: Path, remedy: str = "") -> None:
    """Raises unless `path` is a `.keras` file Keras can load without running anything but its
    own layers and Backdrop's.

    Raises:
        RunFileError: one line naming the file: damaged ("corrupt or unreadable") or naming
            code, another file or more weights than it holds ("refused"), then `remedy`.
    """
    ending = f"; {remedy}" if remedy else ""
    try:
        _check(Path(path))
    except _Refused as refused:
        if refused.corrupt:
            raise RunFileError(
                f"checkpoint {path} is corrupt or unreadable ({refused}){ending}"
            ) from None
        raise RunFileError(f"checkpoint {path} is refused: {refused}{ending}") from None


def _check(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        raise _Refused("not a .keras file: not a zip archive", corrupt=True)
    try:
        with zipfile.ZipFile(path) as archive:
            members = _members(archive, path.stat().st_size)
            bad = archive.testzip()  # every member's CRC: a flipped bit is found here
            if bad is not None:
                raise _Refused(f"{bad} fails its checksum", corrupt=True)
            config = _json(archive, CONFIG)
            if METADATA in members:
                _json(archive, METADATA)
            _check_config(config)
            with archive.open(WEIGHTS) as weights:
                _check_weights(weights, members[WEIGHTS])
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as error:
        raise _Refused(f"{type(error).__name__}: {error}", corrupt=True) from None
    except RuntimeError as error:  # an encrypted member, or a zip that lies about itself
        raise _Refused(str(error), corrupt=True) from None


def _members(archive: zipfile.ZipFile, size: int) -> dict[str, int]:
    """Member name -> uncompressed size, once each checked against the zip's own bytes."""
    members: dict[str, int] = {}
    for info in archive.infolist():
        name = info.filename
        if name not in (CONFIG, METADATA, WEIGHTS):
            raise _Refused(
                f"it holds {name!r}: a .keras file holds only {CONFIG}, {METADATA} and {WEIGHTS}"
            )
        if name in members:
            raise _Refused(f"it holds {name} twice")
        if info.flag_bits & 1:
            raise _Refused(f"{name} is encrypted", corrupt=True)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Refused(f"{name} is compressed in a way Keras never writes", corrupt=True)
        bound = MAX_WEIGHTS_BYTES if name == WEIGHTS else MAX_JSON_BYTES
        # Deflate never shrinks data more than about 1032 times.
        if info.file_size > bound or info.file_size > 1100 * info.compress_size + 1024:
            raise _Refused(f"{name} claims {info.file_size} bytes", corrupt=True)
        if info.compress_size > size:
            raise _Refused(f"{name} claims more bytes than the file has", corrupt=True)
        members[name] = info.file_size
    for needed in (CONFIG, WEIGHTS):
        if needed not in members:
            raise _Refused(f"it has no {needed}", corrupt=True)
    return members


def _json(archive: zipfile.ZipFile, name: str) -> dict:
    try:
        value = json.loads(archive.read(name).decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise _Refused(f"its {name} is not JSON ({type(error).__name__})", corrupt=True) from None
    if not isinstance(value, dict):
        raise _Refused(f"its {name} is not a JSON object", corrupt=True)
    return value


def _check_config(config: dict) -> None:
    """Refuses every object `config` names that is neither Keras's nor Backdrop's (walked without
    recursion, so no nesting overflows the stack)."""
    custom = set(keras.saving.get_custom_objects())  # every plain string naming one loads it
    pending = [(config, 0)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_NESTING:
            raise _Refused(f"its {CONFIG} nests deeper than {MAX_NESTING}")
        if isinstance(value, dict):
            if {"class_name", "module", "registered_name"} & value.keys():
                _check_object(value)
            pending += [(item, depth + 1) for item in value.values()]
        elif isinstance(value, list):
            pending += [(item, depth + 1) for item in value]
        elif isinstance(value, str) and value in custom and value not in BACKDROP_OBJECTS:
            raise _names(repr(value))


def _check_object(entry: dict) -> None:
    """Refuses one `{"module", "class_name", "config", "registered_name"}` entry unless it names a
    Keras built-in, a value, or an object Backdrop registers."""
    class_name, module = entry.get("class_name"), entry.get("module")
    registered = entry.get("registered_name")
    shown = f"{module}.{class_name}" if module else repr(class_name)
    if not all(isinstance(v, str | None) for v in (class_name, module, registered)) or (
        class_name is None
    ):
        raise _Refused(f"its {CONFIG} holds an object without a class name: {_short(entry)}")
    if class_name in DATA_CLASSES and module is None and registered is None:
        return
    if class_name == "function":
        name = entry.get("config")
        if isinstance(name, str) and (
            name in BACKDROP_OBJECTS or f"backdrop>{name}" in BACKDROP_OBJECTS
        ):
            return
        if registered in (None, "function", name) and _keras_function(module, name):
            return
        raise _names(f"the function {module}.{name}")
    if registered in BACKDROP_OBJECTS:
        return  # Keras takes a registered object by that name alone
    if registered not in (None, class_name):
        raise _names(repr(registered))
    if not _keras_class(module, class_name):
        raise _names(shown)


def _keras_class(module: str | None, name: str) -> bool:
    if name in MODELS:
        return module in MODEL_MODULES
    if name in REFUSED_CLASSES or not name.isidentifier():
        return False
    namespaces = {f"keras.{space}": space for space in CLASS_MODULES}
    namespaces["keras"] = "dtype_policies"  # how Keras names the dtype policies
    if module not in namespaces:
        return False
    found = _attribute(namespaces[module], name)
    return inspect.isclass(found)


def _keras_function(module: str | None, name) -> bool:
    if not isinstance(name, str) or not name.isidentifier() or name in REFUSED_FUNCTIONS:
        return False
    if module == "builtins":  # Keras looks the name up in its built-in modules
        spaces = FUNCTION_MODULES
    elif module in {f"keras.{space}" for space in FUNCTION_MODULES}:
        spaces = (module.removeprefix("keras."),)
    else:
        return False
    return any(inspect.isfunction(_attribute(space, name)) for space in spaces)


def _attribute(space: str, name: str):
    namespace = keras
    for part in space.split("."):
        namespace = getattr(namespace, part)
    return getattr(namespace, name, None)


def _check_weights(weights, size: int) -> None:
    """Refuses an HDF5 weights file that links or points to another file, or whose arrays hold
    more numbers than its bytes (a compression bomb)."""
    try:
        problem, total = _weights_problem(h5py.File(weights, "r"))
    except _Refused:
        raise
    except Exception as error:  # noqa: BLE001 - h5py fails on damaged files in many ways
        raise _Refused(f"its {WEIGHTS} is not readable HDF5 ({error})", corrupt=True) from None
    if problem:
        raise _Refused(problem)
    if total > size + 1024 * 1024:
        raise _Refused(f"its {WEIGHTS} claims {total} bytes of weights in {size}")


def _weights_problem(handle: h5py.File) -> tuple[str | None, int]:
    """What in an HDF5 file points elsewhere (if anything), and the bytes its arrays claim."""
    found: list[str] = []
    total = 0

    def visit_link(name, link):
        if not isinstance(link, h5py.HardLink):
            found.append(f"its {WEIGHTS} links {name!r} to another place")
        return True if found else None

    def visit_item(name, item):
        nonlocal total
        if isinstance(item, h5py.Dataset):
            if item.is_virtual or item.external:
                found.append(f"its {WEIGHTS} reads {name!r} from another file")
                return True
            total += int(item.size or 0) * item.dtype.itemsize
        return None

    with handle:
        handle.visititems_links(visit_link)
        if not found:
            handle.visititems(visit_item)
    return (found[0] if found else None), total


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
