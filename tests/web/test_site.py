"""The page `backdrop serve` builds: each model checked first (one line naming a refused file),
and `--folder` an output folder like any other (a manifest; only Backdrop's own files replaced)."""

from __future__ import annotations

import json
import struct

import pytest

from backdrop.outputs import MANIFEST, OutputError
from backdrop.runtime.contract import sha256_of
from backdrop.web import ServeError, build_site
from tests.web.helpers import servable


def one_line_naming(error: pytest.ExceptionInfo, path) -> str:
    message = str(error.value)
    assert "\n" not in message and str(path) in message, message
    return message


def files_in(folder) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and path.name != MANIFEST
    }


def test_the_folder_holds_the_served_files_and_a_manifest(tmp_path, vendor_cache, model):
    folder = tmp_path / "site"
    site = build_site([model], folder)
    served = {path.lstrip("/"): data for path, data in site.files.items() if path != "/"}
    assert files_in(folder) == served
    manifest = json.loads((folder / MANIFEST).read_text())
    assert set(manifest["files"]) == {
        "index.html",
        "app.js",
        "models.json",
        "models/",
        "tasks-vision/",
    }
    assert {entry["command"] for entry in manifest["files"].values()} == {"serve"}
    assert json.loads(site.files["/models.json"]) == [
        {"label": "person.tflite", "path": "models/0-person.tflite"}
    ]
    assert not list(folder.rglob(".*.tmp*"))


def test_a_users_own_index_html_is_refused_and_left_alone(tmp_path, vendor_cache, model):
    folder = tmp_path / "my-site"
    folder.mkdir()
    (folder / "index.html").write_text("<p>my own page</p>")
    with pytest.raises(OutputError, match="move it away or choose another --folder") as error:
        build_site([model], folder)
    one_line_naming(error, folder / "index.html")
    assert (folder / "index.html").read_text() == "<p>my own page</p>"
    assert files_in(folder) == {"index.html": b"<p>my own page</p>"}


def test_the_command_refuses_a_users_own_file_in_one_line(tmp_path, vendor_cache, model, capsys):
    from backdrop.cli import main

    folder = tmp_path / "my-site"
    folder.mkdir()
    (folder / "models").write_text("my notes")
    assert main(["serve", str(model), "--folder", str(folder), "--port", "0"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(folder / "models") in error, error
    assert (folder / "models").read_text() == "my notes"


def test_a_rerun_replaces_its_own_files_and_keeps_the_users(
    tmp_path, vendor_cache, model, tiny_models
):
    folder = tmp_path / "site"
    build_site([model], folder)
    (folder / "notes.txt").write_text("mine")
    (folder / "app.js").write_text("tampered")
    (folder / "models" / "0-person.tflite").write_bytes(b"old")
    second = servable(tiny_models["float32"], tmp_path / "other" / "second model.tflite")
    site = build_site([second, model], folder)
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "app.js").read_bytes() == site.files["/app.js"]
    assert sorted(path.name for path in (folder / "models").iterdir()) == [
        "0-second_model.tflite",
        "1-person.tflite",
    ]
    assert (folder / "models" / "1-person.tflite").read_bytes() == model.read_bytes()
    assert json.loads(site.files["/models.json"])[0] == {
        "label": "second model.tflite",
        "path": "models/0-second_model.tflite",
    }


def test_a_link_in_place_of_its_own_subfolder_is_not_written_through(tmp_path, vendor_cache, model):
    folder = tmp_path / "site"
    build_site([model], folder)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    for path in (folder / "models").iterdir():
        path.unlink()
    (folder / "models").rmdir()
    (folder / "models").symlink_to(elsewhere)
    with pytest.raises(OutputError, match="link") as error:
        build_site([model], folder)
    one_line_naming(error, folder / "models")
    assert sorted(path.name for path in elsewhere.iterdir()) == ["keep.txt"]


def test_a_link_planted_in_its_own_subfolder_is_removed_not_followed(tmp_path, vendor_cache, model):
    folder = tmp_path / "site"
    build_site([model], folder)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (folder / "tasks-vision" / "wasm").rename(tmp_path / "old-wasm")
    (folder / "tasks-vision" / "wasm").symlink_to(elsewhere)
    site = build_site([model], folder)
    assert not (folder / "tasks-vision" / "wasm").is_symlink()
    assert sorted(path.name for path in elsewhere.iterdir()) == ["keep.txt"]
    assert (
        files_in(folder)["tasks-vision/wasm/vision_wasm_internal.wasm"]
        == (site.files["/tasks-vision/wasm/vision_wasm_internal.wasm"])
    )


def test_the_input_model_inside_the_folder_is_not_deleted(tmp_path, vendor_cache, model):
    folder = tmp_path / "site"
    build_site([model], folder)
    inside = folder / "models" / "0-person.tflite"
    site = build_site([inside], folder)
    assert inside.read_bytes() == model.read_bytes() == site.files["/models/0-0-person.tflite"]
    assert (folder / "models" / "0-0-person.tflite").read_bytes() == model.read_bytes()


def corruptions(data: bytes) -> dict[str, bytes]:
    (root,) = struct.unpack_from("<I", data, 0)
    marker = b"TFLITE_METADATA"
    return {
        "empty": b"",
        "cut to 6 bytes": data[:6],
        "cut in half": data[: len(data) // 2],
        "cut in half, marker kept": data[: len(data) // 2] + marker,
        "identifier flipped": data[:4] + b"TFL2" + data[8:],
        "root offset past the end": struct.pack("<I", len(data) + 8) + data[4:],
        "vtable past the end": data[:root] + struct.pack("<i", -len(data)) + data[root + 4 :],
        "cut to the root table": data[: root + 8] + marker,
    }


@pytest.mark.parametrize("kind", list(corruptions(b"\x1c\0\0\0TFL3" + bytes(40))))
def test_a_truncated_or_corrupt_model_is_refused_in_one_line(tmp_path, vendor_cache, model, kind):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(corruptions(model.read_bytes())[kind])
    with pytest.raises(ServeError) as error:
        build_site([model, bad], tmp_path / "site")
    message = one_line_naming(error, bad)
    assert "export it again" in message
    assert not (tmp_path / "site").exists(), "nothing is written before every model passes"


def exported(path, data: bytes, sha256: str):
    path.write_bytes(data)
    path.with_name(path.name + ".json").write_text(
        json.dumps({"mode": "float32", "sha256": sha256})
    )
    return path


def test_a_model_its_contract_does_not_name_is_refused(tmp_path, vendor_cache, model):
    data = model.read_bytes()
    build_site([exported(tmp_path / "good.tflite", data, sha256_of(data))])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01  # a weight: LiteRT would load it
    cases = {
        "flipped.tflite": bytes(flipped),
        "truncated.tflite": data[:-1],
        "replaced.tflite": data,
    }
    for name, content in cases.items():
        sha256 = sha256_of(b"another export") if name == "replaced.tflite" else sha256_of(data)
        path = exported(tmp_path / name, content, sha256)
        with pytest.raises(ServeError, match="its sha256 differs") as error:
            build_site([path])
        one_line_naming(error, path)


def test_an_unreadable_contract_is_refused_in_one_line(tmp_path, vendor_cache, model):
    model.with_name(model.name + ".json").write_text("{not json")
    with pytest.raises(ServeError, match="not a readable contract") as error:
        build_site([model])
    one_line_naming(error, model.with_name(model.name + ".json"))


def test_a_model_without_metadata_or_of_another_kind_is_refused(
    tmp_path, vendor_cache, tiny_models
):
    with pytest.raises(ServeError, match="no TFLite metadata") as error:
        build_site([tiny_models["float32"]])
    one_line_naming(error, tiny_models["float32"])
    text = tmp_path / "model.onnx"
    text.write_bytes(b"x")
    with pytest.raises(ServeError, match="not a .tflite model"):
        build_site([text])
    with pytest.raises(ServeError, match="not found"):
        build_site([tmp_path / "missing.tflite"])
