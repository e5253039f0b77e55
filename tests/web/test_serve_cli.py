"""`backdrop serve` the command: SIGTERM stops it as cleanly as Ctrl-C (nothing left in the
temporary folder, the output folder's lock released), and a host beyond this computer is said."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading

import pytest

from backdrop.outputs import OutputFolder
from tests.web.helpers import request


def lines_of(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


@pytest.mark.parametrize("with_folder", [False, True], ids=["in-memory", "with --folder"])
def test_sigterm_stops_cleanly_and_leaves_nothing_in_the_temporary_folder(
    tmp_path, vendor_cache, model, with_folder
):
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    folder = tmp_path / "site"
    command = [sys.executable, "-m", "backdrop.cli", "serve", str(model), "--port", "0"]
    if with_folder:
        command += ["--folder", str(folder)]
    environment = {**os.environ, "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout = lines_of(process.stdout)
        line = stdout.get(timeout=120)
        assert line and line.startswith("serving "), (line, process.stderr.read())
        port = int(re.search(r"http://localhost:(\d+)/", line).group(1))
        assert request(port, "/")[0] == 200
        assert request(port, "/%00")[0] in (400, 404)
        assert request(port, "/../" * 2000)[0] in (400, 404)
        assert request(port, "/models/0-person.tflite")[2] == model.read_bytes()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert stdout.get(timeout=5) == "stopped\n"
        error = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in error and "warning" not in error, error
    assert list(scratch.iterdir()) == []
    if with_folder:
        with OutputFolder(folder, "test"):  # the lock went with the process
            pass
        assert (folder / "index.html").is_file()


def test_a_host_beyond_this_computer_is_said_on_the_console(
    vendor_cache, model, monkeypatch, capsys
):
    from backdrop.cli import main
    from backdrop.web import server

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(server._Server, "serve_forever", interrupted)
    assert main(["serve", str(model), "--host", "0.0.0.0", "--port", "0"]) == 0
    console = capsys.readouterr()
    warning = [line for line in console.err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "other machines on the network" in warning[0]
    assert str(model) in warning[0]
    assert console.out.startswith(f"serving {model} on http://localhost:")
    assert console.out.endswith("stopped\n")

    assert main(["serve", str(model), "--port", "0"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_three_models_are_one_line(model, capsys):
    from backdrop.cli import main

    assert main(["serve", str(model), str(model), str(model)]) == 1
    assert capsys.readouterr().err == (
        "backdrop: error: give one model, or two to compare side by side\n"
    )
