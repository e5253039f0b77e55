"""Output folders: a manifest of what Backdrop wrote, refusals for anything else, one writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from backdrop.outputs import MANIFEST, OutputError, OutputFolder, UnsafeRemovalError, temporary_path


def test_claimed_files_are_recorded_before_they_are_written(tmp_path):
    with OutputFolder(tmp_path / "out", "test") as folder:
        path = folder.path("a.txt")
        assert not path.exists()
        manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
        assert "a.txt" in manifest["files"] and manifest["writer"]["pid"] == os.getpid()
        path.write_text("x")
    with OutputFolder(tmp_path / "out", "test") as folder:
        assert folder.owns("a.txt") and not folder.owns("b.txt")
        folder.path("a.txt").write_text("replaced")  # its own file may be replaced


def test_a_file_backdrop_did_not_write_is_never_claimed_replaced_or_removed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.tflite").write_text("user")
    (out / "tensorboard").mkdir()
    (out / "tensorboard" / "events").write_text("user")
    with OutputFolder(out, "test", "--output") as folder:
        for name in ("mine.tflite", "tensorboard/"):
            with pytest.raises(OutputError, match="in the way.*--output"):
                folder.claim("new.txt", name)
        assert not folder.owns("new.txt"), "a refused claim claims nothing"
        folder.path("new.txt").write_text("backdrop")
        with pytest.raises(OutputError, match="did not write"):
            folder.remove("mine.tflite")
        assert folder.remove_all() == ["new.txt"]
    assert (out / "mine.tflite").read_text() == "user"
    assert (out / "tensorboard" / "events").read_text() == "user"
    assert not (out / "new.txt").exists()


def test_temporaries_belong_to_the_owner_of_their_final_name(tmp_path):
    with OutputFolder(tmp_path, "test") as folder:
        final = folder.path("epoch-0001.keras")
        temporary = temporary_path(final)
        assert temporary.name == ".epoch-0001.keras.tmp.keras"
        assert folder.owns(temporary.name) and not folder.owns(".other.keras.tmp.keras")
        temporary.write_text("half")
        folder.remove("epoch-0001.keras")
        assert not temporary.exists()


def test_claimed_subfolders_own_everything_inside(tmp_path):
    with OutputFolder(tmp_path, "test") as folder:
        folder.claim("images/")
        assert (tmp_path / "images").is_dir() and folder.owns("images/x/y.png")
        (tmp_path / "images" / "a.png").write_text("x")
        folder.remove("images/")
    assert not (tmp_path / "images").exists()


def test_outputs_never_go_into_inputs(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with OutputFolder(tmp_path, "test", "--output", inputs=[data]) as folder:
        with pytest.raises(OutputError, match="would overwrite the input"):
            folder.path("data/a.png")
    # A folder inside an input is refused before it is made.
    with pytest.raises(OutputError, match="would overwrite the input"):
        OutputFolder(data / "out", "test", "--output", inputs=[data]).__enter__()
    assert list(data.iterdir()) == []


def test_a_file_given_as_the_folder_and_a_broken_manifest_are_one_line_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder; give -d a folder"):
        OutputFolder(tmp_path / "file", "test", "-d").__enter__()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / MANIFEST).write_text("{")
    with pytest.raises(OutputError, match="unreadable"):
        OutputFolder(tmp_path / "broken", "test").__enter__()


def test_remove_all_keeps_the_safety_refusals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with OutputFolder(".", "test") as folder:
        with pytest.raises(UnsafeRemovalError, match="current folder"):
            folder.remove_all()
        assert folder.clear_leftovers(r".*") == []  # clearing its own leftovers is fine


HOLD = textwrap.dedent(
    """
    import sys, time
    from backdrop.outputs import OutputFolder
    with OutputFolder(sys.argv[1], "prepare"):
        print("holding", flush=True)
        time.sleep(60)
    """
)


def hold_lock(folder) -> subprocess.Popen:
    """A process holding `folder` as `backdrop prepare` would, until it is killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "holding"
    return process


@pytest.mark.skipif(sys.platform == "win32", reason="advisory locks are POSIX")
def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_one_frees_it(tmp_path):
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(
            OutputError, match=rf"in use by .*backdrop prepare.*process {holder.pid}"
        ):
            OutputFolder(tmp_path, "train").__enter__()
        # The same process may nest (train, then its export): it shares its own lock.
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with OutputFolder(tmp_path, "train") as outer, OutputFolder(tmp_path, "export") as inner:
        assert inner is outer


def tamper(folder, names: list, command: str = "prepare") -> None:
    """Writes a manifest into `folder` that claims `names`, as a downloaded folder might."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: {"command": command, "run": "elsewhere"} for name in names}
    manifest = {"format": "backdrop-manifest-v1", "writer": {}, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest))


def sacrificial(tmp_path) -> dict:
    """Files and a tree outside the output folder that a tampered manifest aims at."""
    victim = tmp_path / "victim"
    (victim / "tree").mkdir(parents=True)
    (victim / "file.txt").write_text("precious")
    (victim / "tree" / "inside.txt").write_text("precious too")
    return {"victim": victim, "paths": sorted(victim.rglob("*"))}


def tampered_names(tmp_path) -> list[tuple[str, list]]:
    """(case, names) of every kind of manifest name that leaves the folder."""
    victim = tmp_path / "victim"
    return [
        ("absolute file", [str(victim / "file.txt")]),
        ("absolute tree", [f"{victim / 'tree'}/"]),
        ("dot-dot file", ["../victim/file.txt"]),
        ("dot-dot tree", ["../victim/tree/"]),
        ("dot-dot inside", ["sub/../../victim/file.txt"]),
        ("through a symlinked parent", ["link/file.txt"]),
        ("tree through a symlinked parent", ["link/tree/"]),
        ("empty part", ["a//b"]),
        ("dot part", ["./file.txt"]),
        ("the manifest itself", [MANIFEST]),
        ("empty", [""]),
        ("NUL", ["a\0b"]),
        ("a good name beside a bad one", ["mine.txt", "../victim/file.txt"]),
    ]


@pytest.mark.parametrize("requested", [True, False])
def test_a_tampered_manifest_is_refused_as_a_whole_and_deletes_nothing(tmp_path, requested):
    """`requested`: --remove-all-previous-results, or clearing an interrupted run's files."""
    target = sacrificial(tmp_path)
    for case, names in tampered_names(tmp_path):
        out = tmp_path / f"out-{len(case)}-{case.replace(' ', '-')}"
        out.mkdir()
        (out / "link").symlink_to(target["victim"], target_is_directory=True)
        (out / "mine.txt").write_text("written by an earlier run")
        tamper(out, names)
        with pytest.raises(OutputError, match="refused as a whole and nothing was deleted") as info:
            with OutputFolder(out, "prepare", "--destination (-d)") as folder:
                folder.remove_all() if requested else folder.clear_leftovers(r".*")
        assert str(out / MANIFEST) in str(info.value) and "\n" not in str(info.value), case
        assert sorted(target["victim"].rglob("*")) == target["paths"], case
        assert (target["victim"] / "file.txt").read_text() == "precious", case
        assert (out / "mine.txt").exists(), f"{case}: a good name is not deleted either"


def test_a_manifest_of_the_wrong_shape_is_one_line(tmp_path):
    shapes = ["[]", '{"format": "backdrop-manifest-v1", "files": []}', "null", '"x"']
    for text in [*shapes, "[" * 100_000 + "]" * 100_000]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        out.mkdir()
        (out / MANIFEST).write_text(text)
        with pytest.raises(OutputError, match="is unreadable"):
            OutputFolder(out, "test").__enter__()
    non_string = tmp_path / "numbers"
    non_string.mkdir()
    (non_string / MANIFEST).write_text(
        json.dumps({"format": "backdrop-manifest-v1", "files": {"1": {}, "2/": {}}})
    )
    with OutputFolder(non_string, "test") as folder:  # plain names, even if odd, are names
        assert folder.owns("1") and folder.owns("2/x")


def test_a_parent_turned_symlink_after_the_manifest_was_read_is_not_followed(tmp_path):
    target = sacrificial(tmp_path)
    out = tmp_path / "out"
    with OutputFolder(out, "test") as folder:
        folder.claim("sub/")
        (out / "sub" / "file.txt").write_text("mine")
        folder.claim("sub/file.txt")
        # Between the read and the deletion, sub/ becomes a link to the victim.
        (out / "sub" / "file.txt").unlink()
        (out / "sub").rmdir()
        (out / "sub").symlink_to(target["victim"], target_is_directory=True)
        with pytest.raises(OutputError, match="passes through the symlink"):
            folder.remove("sub/file.txt")
        with pytest.raises(OutputError, match="passes through the symlink"):
            folder.path("sub/file.txt")  # nor written through
        folder.remove("sub/")  # the link itself goes; what it points at stays
    assert not (out / "sub").exists()
    assert sorted(target["victim"].rglob("*")) == target["paths"]


def test_temporaries_of_a_name_with_glob_characters_are_only_its_own(tmp_path):
    with OutputFolder(tmp_path, "test") as folder:
        folder.path("*")
        (tmp_path / "*").write_text("x")
        other = tmp_path / ".a.tmp"
        other.write_text("someone's")
        folder.remove("*")
    assert other.exists()


def test_a_failed_run_leaves_nothing_that_looks_like_a_result(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(RuntimeError), OutputFolder(out, "test") as folder:
        folder.claim("a.json", "images/")
        temporary_path(out / "a.json").write_text("half")
        raise RuntimeError("failed before writing")
    assert not out.exists(), "a folder it made holds nothing: it goes"

    kept = tmp_path / "kept"
    with OutputFolder(kept, "test") as folder:
        folder.path("old.json").write_text("an earlier run's")
    with pytest.raises(KeyboardInterrupt), OutputFolder(kept, "test") as folder:
        folder.claim("new.json", "written.json")[1].write_text("this run's")
        raise KeyboardInterrupt
    with OutputFolder(kept, "test") as folder:
        assert sorted(folder.files) == ["old.json", "written.json"], "unwritten claims dropped"


def test_a_refused_claim_leaves_no_manifest_in_the_users_folder(tmp_path):
    (tmp_path / "index.html").write_text("mine")
    with pytest.raises(OutputError, match="in the way"), OutputFolder(tmp_path, "serve") as folder:
        folder.claim("index.html")
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_unasked_only_the_commands_own_names_go_and_never_an_input(tmp_path):
    """A manifest planted in a dataset bundle or a working folder claimed the input dataset and
    the user's files; a plain `prepare` (no flag) deleted them as an interrupted run's."""
    bundle = tmp_path / "bundle"
    (bundle / "portrait" / "images").mkdir(parents=True)
    (bundle / "portrait" / "images" / "p0.png").write_bytes(b"picture")
    (bundle / "notes.txt").write_text("mine")
    (bundle / "train-00000.tfrecord").write_bytes(b"left by an interrupted run")
    tamper(bundle, ["portrait/", "notes.txt", "train-00000.tfrecord"])
    with OutputFolder(bundle, "prepare", inputs=[bundle / "portrait"]) as folder:
        assert folder.clear_leftovers(r"train-\d{5}\.tfrecord") == ["train-00000.tfrecord"]
        with pytest.raises(OutputError, match="it is or holds the input"):
            folder.remove("portrait/")
    assert (bundle / "portrait" / "images" / "p0.png").exists()
    assert (bundle / "notes.txt").read_text() == "mine"
    assert not (bundle / "train-00000.tfrecord").exists()
